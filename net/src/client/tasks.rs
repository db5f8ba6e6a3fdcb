//! A connection's two tasks and what calls share with them: the reader matches response
//! frames to registered callers by correlation id, the writer drains the queue into the
//! socket; whichever sees the connection fail records why, shuts the socket down and wakes
//! every caller.

use super::error::{CloseCause, ProtocolError};
use super::oneshot;
use crate::frame::{read_frame_body, read_frame_len, FrameError};
use crate::sendfile::SendError;
use crate::socket::SharedStream;
use crate::writer::send_memory;
use bytes::{Buf, Bytes};
use futures_lite::io::BufReader;
use glommio::channels::local_channel::LocalReceiver;
use glommio::sync::Semaphore;
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::Decodable;
use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

/// What the calls and the two tasks share.
pub(super) struct Shared {
    pub(super) peer: String,
    // Kept so a failure can shut the socket down while either task still holds it: the fd
    // stays valid as long as anything can call `fail`.
    stream: SharedStream,
    pending: RefCell<HashMap<i32, Waiting>>,
    pub(super) failed: RefCell<Option<CloseCause>>,
    // Never holds units: closing it is the broadcast that the connection died, waking every
    // `closed()` waiter at once.
    pub(super) dead: Semaphore,
    // max.in.flight.requests.per.connection; closed with the connection so waiters wake.
    pub(super) in_flight: Semaphore,
    // Never holds units: closed when the last handle is dropped, which starts the writer's
    // deadline for sending what is still queued.
    pub(super) dropped: Semaphore,
}

/// A caller waiting for its response.
struct Waiting {
    // The response header's version depends on the request's api and version.
    header_version: i16,
    reply: oneshot::Sender<Bytes>,
}

/// A call's place in the pending table, removed when the call ends however it ends.
pub(super) struct Registration<'a> {
    shared: &'a Shared,
    correlation_id: i32,
}

impl<'a> Registration<'a> {
    pub(super) fn new(
        shared: &'a Shared,
        correlation_id: i32,
        header_version: i16,
        reply: oneshot::Sender<Bytes>,
    ) -> Self {
        shared.pending.borrow_mut().insert(
            correlation_id,
            Waiting {
                header_version,
                reply,
            },
        );
        Registration {
            shared,
            correlation_id,
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared
            .pending
            .borrow_mut()
            .remove(&self.correlation_id);
    }
}

impl Shared {
    pub(super) fn new(peer: String, stream: SharedStream, max_in_flight_requests: usize) -> Self {
        Shared {
            peer,
            stream,
            pending: RefCell::new(HashMap::new()),
            failed: RefCell::new(None),
            dead: Semaphore::new(0),
            in_flight: Semaphore::new(max_in_flight_requests as u64),
            dropped: Semaphore::new(0),
        }
    }

    /// Records why the connection ended (the first cause wins), shuts the socket down so
    /// both tasks stop, and wakes every waiting caller.
    fn fail(&self, cause: CloseCause) {
        if self.failed.borrow().is_some() {
            return;
        }
        tracing::debug!(peer = %self.peer, "outbound connection closed: {cause}");
        *self.failed.borrow_mut() = Some(cause);
        // SAFETY: shutdown on a descriptor `self.stream` keeps open; no memory is passed. A
        // failure (already shut down) changes nothing.
        unsafe {
            libc::shutdown(self.stream.as_raw_fd(), libc::SHUT_RDWR);
        }
        self.dead.close();
        self.in_flight.close();
        // Dropping the reply senders wakes their callers, which read the cause.
        let waiting = std::mem::take(&mut *self.pending.borrow_mut());
        drop(waiting);
    }

    /// Hands one response frame to its caller.
    fn deliver(&self, mut frame: Bytes) -> Result<(), CloseCause> {
        if frame.len() < 4 {
            return Err(ProtocolError::ShortFrame { len: frame.len() }.into());
        }
        let correlation_id = (&frame[..4]).get_i32();
        let Some(waiting) = self.pending.borrow_mut().remove(&correlation_id) else {
            // The late answer to a call that timed out or was dropped.
            tracing::debug!(peer = %self.peer, correlation_id, "dropping a response nobody waits for");
            return Ok(());
        };
        ResponseHeader::decode(&mut frame, waiting.header_version).map_err(|e| {
            ProtocolError::Header {
                correlation_id,
                reason: format!("{e:#}"),
            }
        })?;
        waiting.reply.send(frame);
        Ok(())
    }
}

/// Reads response frames until the connection ends, handing each to its caller.
pub(super) async fn read_responses(
    shared: Rc<Shared>,
    mut reader: BufReader<SharedStream>,
    limit: usize,
) {
    let cause = loop {
        let frame = match read_frame_len(&mut reader, limit).await {
            Ok(Some(len)) => read_frame_body(&mut reader, len).await,
            Ok(None) => break CloseCause::ByPeer,
            Err(e) => Err(e),
        };
        let delivered = match frame {
            Ok(frame) => shared.deliver(frame),
            Err(e) => Err(frame_cause(e)),
        };
        if let Err(cause) = delivered {
            break cause;
        }
    };
    shared.fail(cause);
}

fn frame_cause(e: FrameError) -> CloseCause {
    match e {
        FrameError::SizeOutOfRange { size, limit } => {
            ProtocolError::FrameSize { size, limit }.into()
        }
        FrameError::Truncated { expected, received } => CloseCause::MidFrame { expected, received },
        FrameError::Io(e) => e.into(),
    }
}

/// Drains the queue into the socket, every frame that is waiting in one gathering write.
/// Once the last handle is dropped it sends what is left, for at most `drain_timeout` (a peer
/// that stopped reading cannot keep the socket open), and closes the connection.
pub(super) async fn write_requests(
    shared: Rc<Shared>,
    mut stream: SharedStream,
    queue: LocalReceiver<Vec<Bytes>>,
    drain_timeout: Duration,
) {
    let drain = async {
        let mut parts = Vec::new();
        while let Some(first) = queue.recv().await {
            parts.extend(first);
            // Only what is already queued: senders woken by the space freed here run after.
            while let Some(Some(frame)) = futures_lite::future::poll_once(queue.recv()).await {
                parts.extend(frame);
            }
            send_memory(&mut stream, &parts)
                .await
                .map_err(|e| match e {
                    SendError::Io(e) => CloseCause::from(e),
                    other => CloseCause::Io {
                        kind: std::io::ErrorKind::Other,
                        message: other.to_string(),
                    },
                })?;
            parts.clear();
        }
        Err::<Infallible, _>(CloseCause::ByClient)
    };
    let cutoff = async {
        // Closed by the last handle's drop.
        let _ = shared.dropped.acquire(1).await;
        glommio::timer::sleep(drain_timeout).await;
        Err::<Infallible, _>(CloseCause::ByClient)
    };
    let Err(cause) = futures_lite::future::or(drain, cutoff).await;
    shared.fail(cause);
}
