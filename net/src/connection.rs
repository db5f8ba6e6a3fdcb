//! One client connection: read frames, hand decoded requests to the broker's [`Handler`],
//! write responses strictly in request order.
//!
//! Reading and writing run concurrently in the connection's task (so the next request is read
//! while earlier ones are handled), and each request is handled in its own local task, so
//! handlers overlap. Order is restored by a FIFO of in-flight requests that the writer drains
//! front to back, waiting for each handler in turn (Kafka's per-connection ordering guarantee).
//!
//! Backpressure, in the order it applies to each request:
//! 1. a per-connection slot (`max_in_flight_per_connection`), taken before the size prefix is
//!    read and released once the response is written;
//! 2. the core's byte budget (`queued.max.request.bytes`), taken for the frame's size before
//!    its body is read and released when the handler finishes. A connection waiting on either
//!    is simply not read, so TCP flow control pushes back on the client.

use crate::core_state::NetCore;
use crate::frame::{read_frame_body, read_frame_len, FrameError};
use crate::request::{decode_any_request, Request, RequestError};
use crate::response::{
    api_versions_unsupported, encode_raw_response, encode_response, encode_weir_response,
    EncodeError, Part, ResponseFrame,
};
use crate::sendfile::{set_nonblocking, SendError};
use crate::socket::SharedStream;
use crate::weir_api::{WeirApi, WeirApis};
use crate::writer::write_frame;
use futures_lite::io::BufReader;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::sync::{Semaphore, StaticPermit};
use glommio::task::JoinHandle;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use thiserror::Error;

/// Who is on the other end; handed to the handler with every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Unique on this core for the process's lifetime.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// The private apis this connection's listener accepts (none on client-facing listeners).
    pub weir_apis: Rc<WeirApis>,
}

/// What the handler wants sent for a request.
// A reply is moved once, from the handler's task to the writer; boxing the large variant
// would cost an allocation per response to save a memcpy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Reply {
    /// A kafka-protocol response; encoded at the request's version with the right header.
    Message(ResponseKind),
    /// A frame the broker encoded itself, e.g. a zero-copy Fetch response from
    /// [`crate::fetch_response::encode_fetch_response`].
    Frame(ResponseFrame),
    /// A body the handler encoded itself (the answer to a private request, or a Kafka body
    /// built by hand): the connection frames it behind the response header the request calls
    /// for (Kafka's for the api and version; header v1 for a private api).
    Raw(Vec<Part>),
    /// Nothing, as Kafka does for Produce with acks=0 (and every private request that has no
    /// response, such as `WeirRaft`).
    NoResponse,
    /// Close the connection once earlier responses are written (Kafka closes instead of
    /// answering e.g. a failed acks=0 Produce or a failed SASL authentication).
    Close,
}

/// The broker's request handler. Futures run on the core's executor, so they need not be
/// `Send`; they may borrow the handler.
pub trait Handler: 'static {
    /// Handles one request. Requests of one connection may be handled concurrently; their
    /// replies are still written in request order.
    fn handle(
        &self,
        connection: Rc<ConnectionInfo>,
        request: Request,
    ) -> impl Future<Output = Reply>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Rc<ConnectionInfo>, Request) -> Fut + 'static,
    Fut: Future<Output = Reply>,
{
    fn handle(
        &self,
        connection: Rc<ConnectionInfo>,
        request: Request,
    ) -> impl Future<Output = Reply> {
        self(connection, request)
    }
}

/// How a connection ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed its side between requests and every response was written.
    ByPeer,
    /// The handler replied [`Reply::Close`].
    ByHandler,
}

/// Why a connection was closed abnormally.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// Framing failed (bad size, truncation, socket error while reading).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request could not be decoded or is not supported.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A response could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A response could not be sent.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A handler task ended without a reply (cancelled by the executor).
    #[error("handler for api key {api_key} (correlation id {correlation_id}) was cancelled")]
    HandlerCancelled {
        /// The api key.
        api_key: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// The handler answered a private request with a Kafka message, which has no encoding
    /// for it: a handler bug, reported rather than sent as garbage.
    #[error("handler answered {api} (correlation id {correlation_id}) with a Kafka message")]
    MessageForWeirApi {
        /// The private api.
        api: WeirApi,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// A core semaphore was closed under us (the core is shutting down).
    #[error("core is shutting down")]
    ShuttingDown,
    /// Socket setup failed.
    #[error("socket setup failed: {0}")]
    Setup(io::Error),
}

impl ConnectionError {
    /// Whether the error is just the peer going away (reset, broken pipe), which deserves a
    /// debug line rather than a warning.
    pub fn is_peer_gone(&self) -> bool {
        let io = match self {
            ConnectionError::Frame(FrameError::Io(e)) => e,
            ConnectionError::Send(SendError::Io(e)) => e,
            _ => return false,
        };
        matches!(
            io.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
        )
    }
}

/// Where a request's response will come from.
enum Pending {
    /// Answered by the connection itself (the ApiVersions fallback).
    Ready(ResponseFrame),
    /// Answered by a handler task.
    Handler {
        task: JoinHandle<Reply>,
        to: Answering,
    },
}

/// What a handler's reply answers, which decides how it is framed.
#[derive(Clone, Copy)]
enum Answering {
    Kafka {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
    },
    Weir {
        api: WeirApi,
        api_version: i16,
        correlation_id: i32,
    },
}

impl Answering {
    fn of(request: &Request) -> Self {
        match request {
            Request::Kafka(r) => Answering::Kafka {
                api_key: r.api_key,
                api_version: r.api_version(),
                correlation_id: r.correlation_id(),
            },
            Request::Weir(r) => Answering::Weir {
                api: r.api,
                api_version: r.api_version(),
                correlation_id: r.correlation_id(),
            },
        }
    }

    fn api_key(self) -> i16 {
        match self {
            Answering::Kafka { api_key, .. } => api_key as i16,
            Answering::Weir { api, .. } => api.key(),
        }
    }

    fn correlation_id(self) -> i32 {
        match self {
            Answering::Kafka { correlation_id, .. } | Answering::Weir { correlation_id, .. } => {
                correlation_id
            }
        }
    }

    /// Encodes a handler's Kafka message. A listener that accepts private apis advertises
    /// them in its ApiVersions answers, whoever built the body: the table is this crate's, so
    /// the broker's ApiVersions handler need not know which listener it serves.
    fn message(
        self,
        mut body: ResponseKind,
        weir: &WeirApis,
    ) -> Result<ResponseFrame, ConnectionError> {
        match self {
            Answering::Kafka {
                api_key,
                api_version,
                correlation_id,
            } => {
                if let ResponseKind::ApiVersions(r) = &mut body {
                    weir.advertise(&mut r.api_keys);
                }
                Ok(encode_response(
                    api_key,
                    api_version,
                    correlation_id,
                    &body,
                )?)
            }
            Answering::Weir {
                api,
                correlation_id,
                ..
            } => Err(ConnectionError::MessageForWeirApi {
                api,
                correlation_id,
            }),
        }
    }

    /// Frames a body the handler encoded itself behind the header this request calls for.
    fn raw(self, parts: Vec<Part>) -> Result<ResponseFrame, ConnectionError> {
        Ok(match self {
            Answering::Kafka {
                api_key,
                api_version,
                correlation_id,
            } => encode_raw_response(api_key, api_version, correlation_id, parts)?,
            Answering::Weir {
                api,
                api_version,
                correlation_id,
            } => encode_weir_response(api, api_version, correlation_id, parts)?,
        })
    }
}

struct InFlight {
    pending: Pending,
    // Released when the response is written, letting the reader take the next request.
    _slot: StaticPermit,
}

/// Serves one accepted connection until the client leaves, the handler closes it, or bad
/// input arrives. Sets `TCP_NODELAY` and `O_NONBLOCK` (needed by `sendfile`) first.
pub async fn serve_connection<H: Handler>(
    core: Rc<NetCore>,
    connection: Rc<ConnectionInfo>,
    stream: TcpStream,
    handler: Rc<H>,
) -> Result<Closed, ConnectionError> {
    stream
        .set_nodelay(true)
        .map_err(|e| ConnectionError::Setup(e.into()))?;
    let stream = SharedStream::new(stream);
    set_nonblocking(stream.as_raw_fd()).map_err(ConnectionError::Setup)?;

    let mut reader = BufReader::with_capacity(core.config().read_buffer_bytes, stream.clone());
    let mut writer = stream;
    let slots = Rc::new(Semaphore::new(
        core.config().max_in_flight_per_connection as u64,
    ));
    let (queue_tx, queue_rx) = local_channel::new_unbounded();

    let read_side = async {
        read_requests(&core, &connection, &mut reader, &handler, &slots, queue_tx).await?;
        // Clean EOF: the sender is gone, so the writer drains what is queued and finishes.
        std::future::pending::<Result<Closed, ConnectionError>>().await
    };
    let write_side = write_responses(&mut writer, queue_rx, &connection.weir_apis);
    futures_lite::future::or(read_side, write_side).await
}

async fn read_requests<H: Handler>(
    core: &Rc<NetCore>,
    connection: &Rc<ConnectionInfo>,
    reader: &mut BufReader<SharedStream>,
    handler: &Rc<H>,
    slots: &Rc<Semaphore>,
    queue: LocalSender<InFlight>,
) -> Result<(), ConnectionError> {
    let limit = core.config().socket_request_max_bytes;
    loop {
        let slot = slots
            .acquire_static_permit(1)
            .await
            .map_err(|_| ConnectionError::ShuttingDown)?;
        let Some(len) = read_frame_len(reader, limit).await? else {
            return Ok(());
        };
        let budget = core
            .budget()
            .acquire_static_permit(core.budget_units(len))
            .await
            .map_err(|_| ConnectionError::ShuttingDown)?;
        let frame = read_frame_body(reader, len).await?;
        let pending = match decode_any_request(frame, core.supported(), &connection.weir_apis) {
            Ok(request) => {
                let to = Answering::of(&request);
                let handler = handler.clone();
                let connection = connection.clone();
                let task = glommio::spawn_local(async move {
                    let reply = handler.handle(connection, request).await;
                    // The request's bytes are the handler's to keep or drop now; the budget
                    // covers reading and handling, not whatever the handler retains.
                    drop(budget);
                    reply
                })
                .detach();
                Pending::Handler { task, to }
            }
            Err(e) => match e.unsupported_api_versions() {
                Some(correlation_id) => {
                    tracing::debug!(
                        connection = connection.id,
                        peer = %connection.peer,
                        "answering unsupported ApiVersions at v0: {e}"
                    );
                    Pending::Ready(api_versions_unsupported(
                        correlation_id,
                        core.supported(),
                        &connection.weir_apis,
                    )?)
                }
                None => return Err(e.into()),
            },
        };
        if queue
            .try_send(InFlight {
                pending,
                _slot: slot,
            })
            .is_err()
        {
            // The writer has stopped; its result decides how the connection ends.
            return Ok(());
        }
    }
}

async fn write_responses(
    stream: &mut SharedStream,
    queue: LocalReceiver<InFlight>,
    weir: &WeirApis,
) -> Result<Closed, ConnectionError> {
    while let Some(in_flight) = queue.recv().await {
        let frame = match in_flight.pending {
            Pending::Ready(frame) => frame,
            Pending::Handler { task, to } => match task.await {
                None => {
                    return Err(ConnectionError::HandlerCancelled {
                        api_key: to.api_key(),
                        correlation_id: to.correlation_id(),
                    })
                }
                Some(Reply::NoResponse) => continue,
                Some(Reply::Close) => return Ok(Closed::ByHandler),
                Some(Reply::Frame(frame)) => frame,
                Some(Reply::Message(body)) => to.message(body, weir)?,
                Some(Reply::Raw(parts)) => to.raw(parts)?,
            },
        };
        write_frame(stream, &frame).await?;
    }
    Ok(Closed::ByPeer)
}
