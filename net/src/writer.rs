//! Writes a [`ResponseFrame`] to a socket: runs of in-memory parts with one gathering
//! `sendmsg`, file regions with `sendfile`. Both park on a full socket by pushing one byte
//! through glommio's `AsyncWrite` (see [`crate::sendfile`]), so a slow reader suspends only
//! the response being written to it.

use crate::response::{Part, ResponseFrame};
use crate::sendfile::{count, send_file_region, SendError};
use bytes::Bytes;
use futures_lite::{AsyncWrite, AsyncWriteExt};
use std::io;
use std::os::fd::AsRawFd;

/// iovecs per `sendmsg`; responses rarely have more in-memory pieces than this in a row.
const MAX_IOVECS_PER_SEND: usize = 64;

/// Writes every part of `frame` in order. The socket must be non-blocking
/// ([`crate::sendfile::set_nonblocking`]).
pub async fn write_frame<S: AsRawFd + AsyncWrite + Unpin>(
    socket: &mut S,
    frame: &ResponseFrame,
) -> Result<(), SendError> {
    let _cork = frame
        .parts()
        .iter()
        .any(|p| matches!(p, Part::File(_)))
        .then(|| Cork::new(socket.as_raw_fd()));
    let mut memory: Vec<Bytes> = Vec::new();
    for part in frame.parts() {
        match part {
            Part::Bytes(b) => memory.push(b.clone()),
            Part::File(region) => {
                send_memory(socket, &memory).await?;
                memory.clear();
                send_file_region(socket, region).await?;
            }
        }
    }
    send_memory(socket, &memory).await
}

/// Holds a TCP socket corked while a response made of several writes (headers, `sendfile`d
/// regions, more headers) goes out, so it leaves in full segments and wakes the reader once
/// instead of once per write (with `TCP_NODELAY` each write is pushed at once: a fetch of 8
/// partitions went out as ~16 small pushes, each a loopback delivery and a wake-up). Dropping
/// it uncorks, which sends what is held. Not a TCP socket (tests): nothing happens.
struct Cork(std::os::fd::RawFd);

impl Cork {
    fn new(fd: std::os::fd::RawFd) -> Self {
        set_cork(fd, true);
        Cork(fd)
    }
}

impl Drop for Cork {
    fn drop(&mut self) {
        set_cork(self.0, false);
    }
}

fn set_cork(fd: std::os::fd::RawFd, on: bool) {
    let value: libc::c_int = on.into();
    // SAFETY: setsockopt reads `value` for the given length; a failure (not TCP) is harmless.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Sends in-memory parts with gathering `sendmsg`, parking on a full socket the same way
/// [`send_file_region`] does.
pub async fn send_memory<S: AsRawFd + AsyncWrite + Unpin>(
    socket: &mut S,
    parts: &[Bytes],
) -> Result<(), SendError> {
    let sock = socket.as_raw_fd();
    let mut index = 0;
    let mut offset = 0;
    loop {
        while index < parts.len() && offset == parts[index].len() {
            index += 1;
            offset = 0;
        }
        if index == parts.len() {
            return Ok(());
        }
        let iov: Vec<libc::iovec> = std::iter::once(&parts[index][offset..])
            .chain(parts[index + 1..].iter().map(|b| &b[..]))
            .filter(|s| !s.is_empty())
            .take(MAX_IOVECS_PER_SEND)
            .map(|s| libc::iovec {
                iov_base: s.as_ptr() as *mut libc::c_void,
                iov_len: s.len(),
            })
            .collect();
        // SAFETY: zeroed msghdr is valid (no name, no control); we then point it at `iov`,
        // which outlives the call and references live `Bytes`.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = iov.len() as _;
        // SAFETY: see above; the kernel only reads the iovecs.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
        let sent = if n >= 0 {
            n as usize
        } else {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    socket.write_all(&parts[index][offset..offset + 1]).await?;
                    1
                }
                _ => return Err(err.into()),
            }
        };
        count(|s| s.memory_bytes += sent as u64);
        let mut left = sent;
        while left > 0 {
            let here = (parts[index].len() - offset).min(left);
            offset += here;
            left -= here;
            if offset == parts[index].len() {
                index += 1;
                offset = 0;
            }
        }
        glommio::yield_if_needed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::FileRegion;
    use crate::sendfile::send_stats;
    use crate::test_socket::slow_pair;
    use futures_lite::future::block_on;
    use std::io::Write;
    use std::rc::Rc;

    #[test]
    fn many_memory_parts_and_regions_arrive_in_order() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        let file_bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        tmp.write_all(&file_bytes).unwrap();
        let file: Rc<dyn AsRawFd> = Rc::new(std::fs::File::open(tmp.path()).unwrap());

        // More in-memory parts than one sendmsg takes, some empty, around two file regions.
        let mut body = Vec::new();
        let mut expected = Vec::new();
        for i in 0..150usize {
            let part = vec![i as u8; i * 37 % 1000];
            expected.extend_from_slice(&part);
            body.push(Part::Bytes(Bytes::from(part)));
            if i == 60 || i == 149 {
                let (off, len) = (i as u64 * 100, 150_000 - i as u64 * 100);
                expected.extend_from_slice(&file_bytes[off as usize..(off + len) as usize]);
                body.push(Part::File(FileRegion::new(file.clone(), off, len)));
            }
        }
        let frame = ResponseFrame::from_body_parts(body).unwrap();
        let mut wire = (expected.len() as i32).to_be_bytes().to_vec();
        wire.extend_from_slice(&expected);

        let (mut sock, drain) = slow_pair(1500);
        let before = send_stats();
        block_on(write_frame(&mut sock, &frame)).expect("written");
        let after = send_stats();
        let stalls = sock.stalls;
        drop(sock);
        let got = drain.join().expect("reader");
        assert_eq!(got.len(), wire.len());
        assert!(got == wire, "bytes differ");
        let memory = after.memory_bytes - before.memory_bytes;
        let files = (after.file_bytes_zero_copy + after.file_bytes_copied)
            - (before.file_bytes_zero_copy + before.file_bytes_copied);
        assert_eq!(memory + files, frame.len());
        assert!(stalls > 0, "the socket never filled");
    }
}
