//! One glommio `TcpStream` shared by a connection's reader and writer halves.
//!
//! Pipelining needs the next request read while an earlier response is being written, and
//! glommio's stream takes `&mut self` for both. Both halves run in the same task on the same
//! thread and glommio keeps separate read and write readiness sources, so an `Rc<RefCell<_>>`
//! borrowed only for the duration of one `poll_*` call is enough: no lock, no cross-thread
//! state, and a borrow can never be held across an await.

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A cloneable handle on one connection's stream.
#[derive(Clone)]
pub struct SharedStream {
    inner: Rc<RefCell<TcpStream>>,
    fd: RawFd,
}

impl SharedStream {
    /// Wraps `stream`; the descriptor is cached so `sendfile` never needs a borrow.
    pub fn new(stream: TcpStream) -> Self {
        let fd = stream.as_raw_fd();
        SharedStream {
            inner: Rc::new(RefCell::new(stream)),
            fd,
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match self.inner.try_borrow_mut() {
            Ok(mut stream) => f(Pin::new(&mut *stream)),
            // Unreachable by construction (borrows never span a poll); an error, not a panic,
            // if that ever changes.
            Err(_) => Poll::Ready(Err(io::Error::other("connection stream re-entered"))),
        }
    }
}

impl AsRawFd for SharedStream {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.with(|s| s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.with(|s| s.poll_close(cx))
    }
}
