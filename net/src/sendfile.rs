//! Writes file regions to a socket with `sendfile(2)`, never reading them into user space.
//!
//! glommio has no sendfile and keeps its write-readiness poll private. So the socket is
//! `O_NONBLOCK` (glommio's own sends use `MSG_DONTWAIT`, so they are unaffected) and we
//! `sendfile` until `EAGAIN`; then we send the region's next single byte through glommio's
//! `AsyncWrite`, which parks this task (only this response, never the executor) until the
//! socket is writable, and resume `sendfile` after it. That byte, read with a 1-byte `pread`,
//! is the only user-space copy per stall.
//!
//! Relies on SIGPIPE being ignored (the Rust runtime's default) so a vanished peer is an
//! `EPIPE` error rather than a signal.

use crate::response::FileRegion;
use futures_lite::{AsyncWrite, AsyncWriteExt};
use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use thiserror::Error;

/// Largest count Linux transfers in one `sendfile` call.
const SENDFILE_MAX_PER_CALL: u64 = 0x7fff_f000;

/// Bytes this core has sent, by route. Plain per-thread counters (one executor per core).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// File-region bytes sent by `sendfile`, never entering user space.
    pub file_bytes_zero_copy: u64,
    /// File-region bytes copied through user space (the 1-byte parks on a full socket).
    pub file_bytes_copied: u64,
    /// In-memory bytes (encoded headers, small responses).
    pub memory_bytes: u64,
}

thread_local! {
    static STATS: Cell<SendStats> = const { Cell::new(SendStats {
        file_bytes_zero_copy: 0,
        file_bytes_copied: 0,
        memory_bytes: 0,
    }) };
}

/// This core's send counters.
pub fn send_stats() -> SendStats {
    STATS.with(Cell::get)
}

pub(crate) fn count(update: impl FnOnce(&mut SendStats)) {
    STATS.with(|s| {
        let mut v = s.get();
        update(&mut v);
        s.set(v);
    });
}

/// A response part that could not be sent.
#[derive(Debug, Error)]
pub enum SendError {
    /// The file ended before the region did (truncated or wrong region).
    #[error("file region {offset}+{len} is past the end of the file at offset {at}")]
    FileShorter {
        /// Region start.
        offset: u64,
        /// Region length.
        len: u64,
        /// Where the file ended.
        at: u64,
    },
    /// The socket or file failed.
    #[error("i/o error sending response: {0}")]
    Io(#[from] io::Error),
}

/// Puts a socket in non-blocking mode so `sendfile` returns `EAGAIN` instead of blocking the
/// core's only thread.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we were handed; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `region` to `socket` (which must be non-blocking, see [`set_nonblocking`]).
pub async fn send_file_region<S: AsRawFd + AsyncWrite + Unpin>(
    socket: &mut S,
    region: &FileRegion,
) -> Result<(), SendError> {
    let sock = socket.as_raw_fd();
    let file = region.raw_fd();
    let end = region.offset() + region.len();
    let mut at = region.offset();
    while at < end {
        let mut off = libc::off_t::try_from(at)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset overflow"))?;
        let want = (end - at).min(SENDFILE_MAX_PER_CALL) as usize;
        // SAFETY: both descriptors are open (the region holds its file); `off` is a valid
        // local the kernel advances.
        let n = unsafe { libc::sendfile(sock, file, &mut off, want) };
        if n > 0 {
            at += n as u64;
            count(|s| s.file_bytes_zero_copy += n as u64);
            glommio::yield_if_needed().await;
            continue;
        }
        if n == 0 {
            return Err(SendError::FileShorter {
                offset: region.offset(),
                len: region.len(),
                at,
            });
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => {
                let byte = pread_byte(file, at)?.ok_or(SendError::FileShorter {
                    offset: region.offset(),
                    len: region.len(),
                    at,
                })?;
                socket.write_all(&[byte]).await?;
                at += 1;
                count(|s| s.file_bytes_copied += 1);
            }
            _ => return Err(err.into()),
        }
    }
    Ok(())
}

fn pread_byte(fd: RawFd, at: u64) -> io::Result<Option<u8>> {
    let off = libc::off_t::try_from(at)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset overflow"))?;
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a local.
        let n = unsafe { libc::pread(fd, (&mut byte as *mut u8).cast(), 1, off) };
        match n {
            1 => return Ok(Some(byte)),
            0 => return Ok(None),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_socket::slow_pair;
    use futures_lite::future::block_on;
    use std::io::Write;
    use std::rc::Rc;

    fn file_with(len: usize) -> (tempfile::NamedTempFile, Rc<std::fs::File>, Vec<u8>) {
        let content: Vec<u8> = (0..len)
            .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
            .collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&content).unwrap();
        tmp.flush().unwrap();
        let file = Rc::new(std::fs::File::open(tmp.path()).unwrap());
        (tmp, file, content)
    }

    #[test]
    fn region_reaches_a_slow_reader_intact_and_mostly_zero_copy() {
        let (_tmp, file, content) = file_with(3 << 20);
        let (mut sock, drain) = slow_pair(4096);
        let region = FileRegion::new(file, 1000, (2 << 20) + 17);
        let before = send_stats();
        block_on(send_file_region(&mut sock, &region)).expect("sent");
        let after = send_stats();
        drop(sock);
        let got = drain.join().expect("reader");
        assert!(got == content[1000..1000 + (2 << 20) + 17], "bytes differ");
        let zero_copy = after.file_bytes_zero_copy - before.file_bytes_zero_copy;
        let copied = after.file_bytes_copied - before.file_bytes_copied;
        assert_eq!(zero_copy + copied, region.len());
        assert!(copied >= 1, "the socket never filled, park path untested");
        assert!(
            copied * 100 < region.len(),
            "copied {copied} of {}",
            region.len()
        );
    }

    #[test]
    fn region_past_end_of_file_is_an_error_not_a_hang() {
        let (_tmp, file, _) = file_with(1000);
        let (mut sock, drain) = slow_pair(4096);
        let region = FileRegion::new(file, 900, 500);
        match block_on(send_file_region(&mut sock, &region)) {
            Err(SendError::FileShorter {
                offset: 900,
                len: 500,
                at: 1000,
            }) => {}
            other => panic!("expected FileShorter, got {other:?}"),
        }
        drop(sock);
        assert_eq!(drain.join().expect("reader").len(), 100);
    }

    #[test]
    fn set_nonblocking_sets_the_flag() {
        let (sock, drain) = slow_pair(16);
        let fd = sock.as_raw_fd();
        set_nonblocking(fd).unwrap();
        // SAFETY: reads flags of our own descriptor.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_ne!(flags & libc::O_NONBLOCK, 0);
        drop(sock);
        assert!(drain.join().unwrap().is_empty());
    }
}
