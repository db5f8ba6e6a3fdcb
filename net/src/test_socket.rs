//! A non-blocking Unix socket pair for unit-testing the send paths without an executor: the
//! sending end's `AsyncWrite` retries by waking itself (a spin, fine for tests), standing in
//! for glommio's readiness poll. The receiving end is drained by a thread.

use futures_lite::AsyncWrite;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

/// The sending end.
pub struct SpinSocket {
    fd: OwnedFd,
    /// How many times a write found the socket full and had to wait.
    pub stalls: usize,
}

impl AsRawFd for SpinSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsyncWrite for SpinSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: sends from a live slice on our own descriptor.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n >= 0 {
            return Poll::Ready(Ok(n as usize));
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            self.stalls += 1;
            std::thread::sleep(Duration::from_micros(200));
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Err(err))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A connected pair with small buffers: the non-blocking sender, and a thread reading the
/// other end slowly (in `chunk`-byte reads with a pause) until EOF, returning all it got.
pub fn slow_pair(chunk: usize) -> (SpinSocket, JoinHandle<Vec<u8>>) {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two descriptors into the array.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "socketpair: {}", io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (tx, rx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let small: libc::c_int = 16 * 1024;
    for fd in [tx.as_raw_fd(), rx.as_raw_fd()] {
        for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
            // SAFETY: setsockopt with a correctly sized int on our own descriptor.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&small as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
    }
    crate::sendfile::set_nonblocking(tx.as_raw_fd()).expect("nonblocking");
    let mut reader = UnixStream::from(rx);
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let drain = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("test reader failed: {e}"),
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    });
    (SpinSocket { fd: tx, stalls: 0 }, drain)
}
