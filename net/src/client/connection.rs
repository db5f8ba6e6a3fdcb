//! One outbound connection as callers see it: connect and negotiate versions, frame requests,
//! and wait for answers ([`super::tasks`] runs the socket).
//!
//! A call registers its correlation id before its frame is queued, so the reader always finds
//! whom a response is for; the registration is removed when the call ends for any reason
//! (answered, timed out, or its future dropped), so a late answer is recognised and dropped.
//! When either task sees the connection fail, it records the cause once, shuts the socket
//! down and drops every registration: each waiting caller wakes and reads that cause.

use super::config::ClientConfig;
use super::error::{ClientError, CloseCause, ProtocolError};
use super::oneshot;
use super::tasks::{read_responses, write_requests, Registration, Shared};
use super::versions::PeerVersions;
use crate::frame::FRAME_PREFIX_BYTES;
use crate::response::UNSUPPORTED_VERSION;
use crate::sendfile::set_nonblocking;
use crate::socket::SharedStream;
use crate::weir_api::{WeirApi, WEIR_REQUEST_HEADER_VERSION, WEIR_RESPONSE_HEADER_VERSION};
use bytes::{BufMut, Bytes, BytesMut};
use futures_lite::io::BufReader;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::TcpStream;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::cell::Cell;
use std::net::ToSocketAddrs;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

/// The ApiVersions version asked first: the newest Weir and Kafka 3/4 brokers answer
/// (flexible, with the KIP-511 software name). An older peer answers UNSUPPORTED_VERSION with
/// its range, and the request is repeated at the newest it takes.
const API_VERSIONS_PREFERRED: i16 = 3;

/// A connection to one peer, shared by the tasks of one executor through `Rc`. Dropping the
/// last handle sends what is queued (for at most the request timeout), then closes.
pub struct Connection {
    shared: Rc<Shared>,
    // Kafka's `client.id`, named in every request header.
    client_id: StrBytes,
    // Kafka's `request.timeout.ms`, for every call.
    request_timeout: Duration,
    // The writer's queue: bounded, so callers feel a slow socket; closed by this handle's
    // drop, which tells the writer to finish.
    frames: LocalSender<Vec<Bytes>>,
    next_correlation_id: Cell<i32>,
    // What the peer answered to ApiVersions at connect.
    versions: PeerVersions,
}

impl Connection {
    /// Connects to `peer` ("host:port"), starts the reader and writer, and asks the peer
    /// which versions it speaks. A host name is resolved on this thread (`getaddrinfo`
    /// blocks): brokers should name peers by address.
    pub async fn connect(peer: &str, config: &ClientConfig) -> Result<Rc<Connection>, ClientError> {
        config.validate()?;
        let connect_error = |reason: String| ClientError::Connect {
            peer: peer.to_string(),
            reason,
        };
        let addr = peer
            .to_socket_addrs()
            .map_err(|e| connect_error(e.to_string()))?
            .next()
            .ok_or_else(|| connect_error("the name resolves to no address".to_string()))?;
        let stream = TcpStream::connect_timeout(addr, config.connect_timeout)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| connect_error(format!("TCP_NODELAY: {e}")))?;
        let stream = SharedStream::new(stream);
        // The writer gathers frames with `sendmsg(MSG_DONTWAIT)` and parks on a full socket
        // through glommio, as the server's writer does.
        set_nonblocking(stream.as_raw_fd()).map_err(|e| connect_error(e.to_string()))?;

        let shared = Rc::new(Shared::new(
            peer.to_string(),
            stream.clone(),
            config.max_in_flight_requests,
        ));
        let (frames, queue) = local_channel::new_bounded(config.write_queue_frames);
        let reader = BufReader::with_capacity(config.read_buffer_bytes, stream.clone());
        glommio::spawn_local(read_responses(
            shared.clone(),
            reader,
            config.response_max_bytes,
        ))
        .detach();
        glommio::spawn_local(write_requests(
            shared.clone(),
            stream,
            queue,
            config.request_timeout,
        ))
        .detach();

        let mut connection = Connection {
            shared,
            client_id: StrBytes::from_string(config.client_id.clone()),
            request_timeout: config.request_timeout,
            frames,
            next_correlation_id: Cell::new(0),
            versions: PeerVersions::default(),
        };
        connection.versions = connection.negotiate(config).await?;
        Ok(Rc::new(connection))
    }

    /// The peer as it was dialled.
    pub fn peer(&self) -> &str {
        &self.shared.peer
    }

    /// What the peer said it speaks.
    pub fn versions(&self) -> &PeerVersions {
        &self.versions
    }

    /// The version to use for a Kafka api: the highest both sides speak within
    /// `oldest..=preferred`.
    pub fn version(&self, api: ApiKey, oldest: i16, preferred: i16) -> Result<i16, ClientError> {
        self.versions.pick(api as i16, oldest, preferred)
    }

    /// The version to use for a private api; only a listener that accepts it offers it.
    pub fn weir_version(
        &self,
        api: WeirApi,
        oldest: i16,
        preferred: i16,
    ) -> Result<i16, ClientError> {
        self.versions.pick(api.key(), oldest, preferred)
    }

    /// Whether the connection has died; a cheap check before reusing it.
    pub fn is_closed(&self) -> bool {
        self.shared.failed.borrow().is_some()
    }

    /// What ended the connection, if it has ended.
    pub fn close_cause(&self) -> Option<CloseCause> {
        self.shared.failed.borrow().clone()
    }

    /// Resolves when the connection dies, with the reason: a task can wait on it to
    /// reconnect without polling.
    pub async fn closed(&self) -> CloseCause {
        // Never granted: the semaphore has no units, so only closing it ends the wait.
        let _ = self.shared.dead.acquire(1).await;
        self.close_cause().unwrap_or(CloseCause::ByClient)
    }

    /// Sends `request` at `version` and waits for its response, at most the request timeout.
    /// Many calls may be in flight at once. Byte fields of the response (a Fetch's records)
    /// are slices of the frame as it was read, not copies.
    pub async fn call_at<R: Request>(
        &self,
        request: R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let correlation_id = self.next_correlation_id();
        let frame = self.kafka_frame(&request, version, correlation_id)?;
        drop(request);
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let mut body = self
            .exchange(R::KEY, version, correlation_id, header_version, frame)
            .await?;
        R::Response::decode(&mut body, version).map_err(|e| {
            self.protocol_error(ProtocolError::Body {
                api_key: R::KEY,
                api_version: version,
                reason: format!("{e:#}"),
            })
        })
    }

    /// Sends a request that gets no response (Produce with acks=0). Returns once it is
    /// queued for the socket.
    pub async fn send_only<R: Request>(&self, request: R, version: i16) -> Result<(), ClientError> {
        self.check_open()?;
        let frame = self.kafka_frame(&request, version, self.next_correlation_id())?;
        self.enqueue(frame).await
    }

    /// Calls a private api with `body` (its encoding is the caller's) and returns the
    /// response body: the frame's bytes after the response header, not a copy.
    pub async fn call_raw(
        &self,
        api: WeirApi,
        version: i16,
        body: Bytes,
    ) -> Result<Bytes, ClientError> {
        let correlation_id = self.next_correlation_id();
        let frame = self.weir_frame(api, version, correlation_id, body)?;
        self.exchange(
            api.key(),
            version,
            correlation_id,
            WEIR_RESPONSE_HEADER_VERSION,
            frame,
        )
        .await
    }

    /// Sends a private request that gets no response (`WeirRaft`). Returns once it is
    /// queued for the socket.
    pub async fn send_raw(
        &self,
        api: WeirApi,
        version: i16,
        body: Bytes,
    ) -> Result<(), ClientError> {
        self.check_open()?;
        let frame = self.weir_frame(api, version, self.next_correlation_id(), body)?;
        self.enqueue(frame).await
    }

    /// ApiVersions at the newest version the peer takes; the answer's table.
    async fn negotiate(&self, config: &ClientConfig) -> Result<PeerVersions, ClientError> {
        let mut version = API_VERSIONS_PREFERRED;
        loop {
            let request = if version >= 3 {
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_string(config.software_name.clone()))
                    .with_client_software_version(StrBytes::from_string(
                        config.software_version.clone(),
                    ))
            } else {
                ApiVersionsRequest::default()
            };
            let correlation_id = self.next_correlation_id();
            let frame = self.kafka_frame(&request, version, correlation_id)?;
            let body = self
                .exchange(
                    ApiKey::ApiVersions as i16,
                    version,
                    correlation_id,
                    ApiVersionsResponse::header_version(version),
                    frame,
                )
                .await?;
            let response = decode_api_versions(body, version).map_err(|reason| {
                self.protocol_error(ProtocolError::Body {
                    api_key: ApiKey::ApiVersions as i16,
                    api_version: version,
                    reason,
                })
            })?;
            match response.error_code {
                0 => return Ok(PeerVersions::new(self.peer(), &response.api_keys)),
                UNSUPPORTED_VERSION => {
                    // KIP-511: the answer lists the peer's ApiVersions range; ask again at the
                    // newest it takes, once (a lower version than this one, or give up).
                    let offered = response
                        .api_keys
                        .iter()
                        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                        .map(|k| k.max_version.min(API_VERSIONS_PREFERRED));
                    match offered {
                        Some(lower) if (0..version).contains(&lower) => version = lower,
                        _ => {
                            return Err(self.protocol_error(ProtocolError::ApiVersions {
                                error_code: response.error_code,
                            }))
                        }
                    }
                }
                error_code => {
                    return Err(self.protocol_error(ProtocolError::ApiVersions { error_code }))
                }
            }
        }
    }

    /// Queues `frame` and waits for the response to `correlation_id`, within the request
    /// timeout (waiting for an in-flight slot and for the queue included).
    async fn exchange(
        &self,
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
        header_version: i16,
        frame: Vec<Bytes>,
    ) -> Result<Bytes, ClientError> {
        let call = async {
            self.check_open()?;
            let _slot = self
                .shared
                .in_flight
                .acquire_permit(1)
                .await
                .map_err(|_| self.closed_error())?;
            // Checked again with no await before registering: a registration made after the
            // connection failed would never be woken.
            self.check_open()?;
            let (reply, response) = oneshot::channel();
            let _registered =
                Registration::new(&self.shared, correlation_id, header_version, reply);
            self.enqueue(frame).await?;
            response.await.ok_or_else(|| self.closed_error())
        };
        let timeout = async {
            glommio::timer::sleep(self.request_timeout).await;
            Err(ClientError::Timeout {
                peer: self.shared.peer.clone(),
                api_key,
                api_version,
                correlation_id,
                timeout: self.request_timeout,
            })
        };
        futures_lite::future::or(call, timeout).await
    }

    async fn enqueue(&self, frame: Vec<Bytes>) -> Result<(), ClientError> {
        self.frames
            .send(frame)
            .await
            .map_err(|_| self.closed_error())
    }

    fn next_correlation_id(&self) -> i32 {
        let id = self.next_correlation_id.get();
        // Wraps after 2^31 requests; an id is reused only long after its call ended.
        self.next_correlation_id.set(id.wrapping_add(1) & i32::MAX);
        id
    }

    fn header(&self, api_key: i16, version: i16, correlation_id: i32) -> RequestHeader {
        RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()))
    }

    /// A Kafka request as one buffer: size, header, body.
    fn kafka_frame<R: Request>(
        &self,
        request: &R,
        version: i16,
        correlation_id: i32,
    ) -> Result<Vec<Bytes>, ClientError> {
        let encode_error = |reason: String| ClientError::Encode {
            peer: self.shared.peer.clone(),
            api_key: R::KEY,
            api_version: version,
            reason,
        };
        let header = self.header(R::KEY, version, correlation_id);
        let header_version = R::header_version(version);
        let size = header
            .compute_size(header_version)
            .and_then(|h| Ok(h + request.compute_size(version)?))
            .map_err(|e| encode_error(format!("{e:#}")))?;
        let prefix = frame_size(size).map_err(encode_error)?;
        let mut buf = BytesMut::with_capacity(FRAME_PREFIX_BYTES + size);
        buf.put_i32(prefix);
        header
            .encode(&mut buf, header_version)
            .and_then(|()| request.encode(&mut buf, version))
            .map_err(|e| encode_error(format!("{e:#}")))?;
        Ok(vec![buf.freeze()])
    }

    /// A private request: size and header v2 in one buffer, then the caller's body as it is.
    fn weir_frame(
        &self,
        api: WeirApi,
        version: i16,
        correlation_id: i32,
        body: Bytes,
    ) -> Result<Vec<Bytes>, ClientError> {
        let encode_error = |reason: String| ClientError::Encode {
            peer: self.shared.peer.clone(),
            api_key: api.key(),
            api_version: version,
            reason,
        };
        let header = self.header(api.key(), version, correlation_id);
        let header_size = header
            .compute_size(WEIR_REQUEST_HEADER_VERSION)
            .map_err(|e| encode_error(format!("{e:#}")))?;
        let prefix = frame_size(header_size + body.len()).map_err(encode_error)?;
        let mut head = BytesMut::with_capacity(FRAME_PREFIX_BYTES + header_size);
        head.put_i32(prefix);
        header
            .encode(&mut head, WEIR_REQUEST_HEADER_VERSION)
            .map_err(|e| encode_error(format!("{e:#}")))?;
        Ok(vec![head.freeze(), body])
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match self.close_cause() {
            Some(_) => Err(self.closed_error()),
            None => Ok(()),
        }
    }

    fn closed_error(&self) -> ClientError {
        ClientError::ConnectionClosed {
            peer: self.shared.peer.clone(),
            cause: self.close_cause().unwrap_or(CloseCause::ByClient),
        }
    }

    fn protocol_error(&self, error: ProtocolError) -> ClientError {
        ClientError::Protocol {
            peer: self.shared.peer.clone(),
            error,
        }
    }
}

/// The size prefix of a frame body of `len` bytes.
fn frame_size(len: usize) -> Result<i32, String> {
    i32::try_from(len).map_err(|_| format!("a frame of {len} bytes does not fit a Kafka frame"))
}

/// ApiVersions answers are read at the version asked and, failing that, at v0: a peer that
/// does not take the version asked answers at v0 (KIP-511), as Kafka's clients expect.
fn decode_api_versions(body: Bytes, version: i16) -> Result<ApiVersionsResponse, String> {
    match ApiVersionsResponse::decode(&mut body.clone(), version) {
        Ok(response) => Ok(response),
        Err(e) if version > 0 => {
            ApiVersionsResponse::decode(&mut body.clone(), 0).map_err(|_| format!("{e:#}"))
        }
        Err(e) => Err(format!("{e:#}")),
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The writer sees the queue close once it has sent what is left, then closes the
        // connection; this starts its deadline for that.
        self.shared.dropped.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc::allocated_so_far;
    use crate::{ConnectionInfo, Listener, NetConfig, NetCore, Reply, Request, SupportedApis};
    use glommio::{LocalExecutorBuilder, Placement};
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{
        FetchRequest, FetchResponse, RequestKind, ResponseKind, TopicName,
    };
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};

    const RECORDS_BYTES: usize = 4 << 20;

    /// A peer on its own executor thread, so only the client's allocations count on the
    /// test's thread. It answers every Fetch with `RECORDS_BYTES` of records.
    fn fetch_peer(stop: Arc<AtomicBool>) -> (SocketAddr, glommio::ExecutorJoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let core =
                    NetCore::new(NetConfig::default(), SupportedApis::everything_decodable())
                        .expect("config");
                let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), core).expect("bind");
                tx.send(listener.local_addr().expect("addr")).unwrap();
                let records = Bytes::from(vec![7u8; RECORDS_BYTES]);
                let handler = Rc::new(move |_: Rc<ConnectionInfo>, request: Request| {
                    let records = records.clone();
                    async move {
                        let Request::Kafka(request) = request else {
                            return Reply::Close;
                        };
                        match request.body {
                            RequestKind::ApiVersions(_) => {
                                Reply::Message(ResponseKind::ApiVersions(
                                    ApiVersionsResponse::default().with_api_keys(
                                        SupportedApis::everything_decodable().api_versions(),
                                    ),
                                ))
                            }
                            RequestKind::Fetch(_) => Reply::Message(ResponseKind::Fetch(
                                FetchResponse::default().with_responses(vec![
                                    FetchableTopicResponse::default()
                                        .with_topic(TopicName(StrBytes::from_static_str("t")))
                                        .with_partitions(vec![
                                            PartitionData::default().with_records(Some(records))
                                        ]),
                                ]),
                            )),
                            _ => Reply::Close,
                        }
                    }
                });
                listener
                    .serve(handler, async move {
                        while !stop.load(Ordering::SeqCst) {
                            glommio::timer::sleep(Duration::from_millis(5)).await;
                        }
                    })
                    .await;
            })
            .expect("executor");
        (rx.recv().expect("address"), handle)
    }

    /// The frame is read from the socket into one buffer and the records handed over as a
    /// slice of it: the client allocates about one frame per response, not two.
    #[test]
    fn a_fetch_response_costs_one_frame_buffer() {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, peer) = fetch_peer(stop.clone());
        LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let config = ClientConfig::new("zero-copy-test");
                let connection = Connection::connect(&addr.to_string(), &config)
                    .await
                    .expect("connect");
                for _ in 0..3 {
                    let before = allocated_so_far();
                    let response = connection
                        .call_at(FetchRequest::default(), 12)
                        .await
                        .expect("fetch");
                    let allocated = allocated_so_far() - before;
                    let records = response.responses[0].partitions[0]
                        .records
                        .clone()
                        .expect("records");
                    assert_eq!(records.len(), RECORDS_BYTES);
                    assert!(
                        allocated < RECORDS_BYTES as u64 * 5 / 4,
                        "{allocated} bytes allocated for a {RECORDS_BYTES}-byte response"
                    );
                    assert!(
                        allocated >= RECORDS_BYTES as u64,
                        "the frame itself is counted"
                    );
                }
            })
            .expect("executor")
            .join()
            .expect("client");
        stop.store(true, Ordering::SeqCst);
        peer.join().expect("peer");
    }
}
