//! The outbound client against servers on 127.0.0.1, all inside one glommio executor: the
//! crate's own listener (as a Weir peer serves), and hand-written servers that misbehave in
//! ways a real peer can (answering out of order or late, closing mid-response, oversized
//! frames).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Semaphore;
use glommio::{LocalExecutorBuilder, Placement};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, ProduceResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use weir_net::client::{
    BackoffConfig, ClientConfig, ClientError, CloseCause, Connection, ProtocolError, Reconnecting,
};
use weir_net::{
    ConnectionInfo, Handler, KafkaRequest, Listener, NetConfig, NetCore, Part, Reply, Request,
    SupportedApis, WeirApi, WeirApis, WeirRequest,
};

/// Every test finishes well within this or fails: nothing here may hang.
const TEST_BOUND: Duration = Duration::from_secs(30);

/// Runs `test` on a fresh executor with the 10 ms heartbeat every Weir executor runs (see
/// docs/ARCHITECTURE.md), bounded by [`TEST_BOUND`].
fn run<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("weir-client-test")
        .spawn(move || async move {
            glommio::spawn_local(async {
                loop {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            })
            .detach();
            let bound = async {
                glommio::timer::sleep(TEST_BOUND).await;
                panic!("test still running after {TEST_BOUND:?}");
            };
            futures_lite::future::or(test(), bound).await;
        })
        .expect("executor")
        .join()
        .expect("test passed");
}

fn config() -> ClientConfig {
    ClientConfig::new("weir-client-test")
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn metadata_for(name: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic(name)))
    ]))
}

fn first_topic(m: &MetadataResponse) -> String {
    m.topics
        .first()
        .and_then(|t| t.name.as_ref())
        .map(|n| n.0.to_string())
        .unwrap_or_default()
}

fn supported() -> SupportedApis {
    let v = |min, max| VersionRange { min, max };
    SupportedApis::new([
        (ApiKey::Produce, v(3, 9)),
        (ApiKey::Fetch, v(4, 12)),
        (ApiKey::Metadata, v(1, 12)),
        (ApiKey::Heartbeat, v(0, 4)),
        (ApiKey::ApiVersions, v(0, 3)),
    ])
    .expect("valid table")
}

/// The crate's listener with a handler that echoes what identifies each request.
struct EchoHandler {
    supported: SupportedApis,
    events: RefCell<Vec<String>>,
    fetch_records: Bytes,
}

impl Handler for EchoHandler {
    async fn handle(&self, _connection: Rc<ConnectionInfo>, request: Request) -> Reply {
        match request {
            Request::Kafka(request) => self.kafka(request).await,
            Request::Weir(request) => self.weir(request),
        }
    }
}

impl EchoHandler {
    async fn kafka(&self, request: KafkaRequest) -> Reply {
        match request.body {
            RequestKind::ApiVersions(_) => Reply::Message(ResponseKind::ApiVersions(
                ApiVersionsResponse::default().with_api_keys(self.supported.api_versions()),
            )),
            RequestKind::Metadata(m) => {
                let name = m
                    .topics
                    .and_then(|t| t.into_iter().next())
                    .and_then(|t| t.name)
                    .map(|n| n.0.to_string())
                    .unwrap_or_default();
                // Later requests finish first; the server restores order, the client must
                // still hand each answer to its caller.
                let delay = 1 + (request.header.correlation_id % 7) as u64;
                glommio::timer::sleep(Duration::from_millis(delay)).await;
                Reply::Message(ResponseKind::Metadata(
                    MetadataResponse::default().with_topics(vec![
                        MetadataResponseTopic::default().with_name(Some(topic(&name)))
                    ]),
                ))
            }
            RequestKind::Produce(p) => {
                let name = p.topic_data.first().map(|t| t.name.0.to_string());
                self.events
                    .borrow_mut()
                    .push(format!("produce {}", name.unwrap_or_default()));
                if p.acks == 0 {
                    Reply::NoResponse
                } else {
                    Reply::Message(ResponseKind::Produce(ProduceResponse::default()))
                }
            }
            RequestKind::Fetch(_) => Reply::Message(ResponseKind::Fetch(
                FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                    .with_topic(topic("orders-zero-copy"))
                    .with_partitions(vec![PartitionData::default()
                        .with_high_watermark(1)
                        .with_records(Some(self.fetch_records.clone()))])]),
            )),
            // Lets a test make the server drop the connection.
            _ => Reply::Close,
        }
    }

    fn weir(&self, request: WeirRequest) -> Reply {
        self.events
            .borrow_mut()
            .push(format!("{} {:?}", request.api, request.body));
        match request.api {
            WeirApi::Raft => Reply::NoResponse,
            WeirApi::MetadataFetch | WeirApi::Controller => {
                let mut body = request.body.to_vec();
                body.reverse();
                Reply::Raw(vec![Part::Bytes(Bytes::from(body))])
            }
        }
    }
}

struct Served {
    addr: SocketAddr,
    handler: Rc<EchoHandler>,
    stop: Rc<Semaphore>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.close();
    }
}

fn serve(net: NetConfig, supported: SupportedApis, weir: WeirApis) -> Served {
    let core = NetCore::new(net, supported.clone()).expect("config");
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), core)
        .expect("bind")
        .accepting_weir_apis(weir);
    let addr = listener.local_addr().expect("addr");
    let records: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let handler = Rc::new(EchoHandler {
        supported,
        events: RefCell::new(Vec::new()),
        fetch_records: Bytes::from(records),
    });
    let stop = Rc::new(Semaphore::new(0));
    let (h, s) = (handler.clone(), stop.clone());
    glommio::spawn_local(async move {
        listener
            .serve(h, async move {
                let _ = s.acquire(1).await;
            })
            .await;
    })
    .detach();
    Served {
        addr,
        handler,
        stop,
    }
}

fn serve_default() -> Served {
    serve(NetConfig::default(), supported(), WeirApis::none())
}

fn controller_apis() -> WeirApis {
    let v = |min, max| VersionRange { min, max };
    WeirApis::new([
        (WeirApi::Raft, v(0, 0)),
        (WeirApi::MetadataFetch, v(0, 1)),
        (WeirApi::Controller, v(0, 0)),
    ])
    .unwrap()
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    panic!("{what}: not within 5 s");
}

// ---- a hand-written peer ----

/// A request as the raw peer reads it.
struct RawRequest {
    api_key: i16,
    version: i16,
    correlation_id: i32,
    header: RequestHeader,
    body: Bytes,
}

async fn read_raw(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.ok()?;
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame).await.ok()?;
    let mut frame = Bytes::from(frame);
    let (api_key, version) = ((&frame[..]).get_i16(), (&frame[2..]).get_i16());
    let header_version = match ApiKey::try_from(api_key) {
        Ok(key) => key.request_header_version(version),
        Err(()) => 2,
    };
    let header = RequestHeader::decode(&mut frame, header_version).ok()?;
    Some(RawRequest {
        api_key,
        version,
        correlation_id: header.correlation_id,
        header,
        body: frame,
    })
}

fn response_frame<M: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: &M,
    version: i16,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

fn metadata_answer(request: &RawRequest) -> Vec<u8> {
    let asked = MetadataRequest::decode(&mut request.body.clone(), request.version).unwrap();
    let name = asked.topics.unwrap()[0].name.clone().unwrap();
    let body = MetadataResponse::default()
        .with_topics(vec![MetadataResponseTopic::default().with_name(Some(name))]);
    let hv = ApiKey::Metadata.response_header_version(request.version);
    response_frame(request.correlation_id, hv, &body, request.version)
}

/// Accepts one connection and answers its ApiVersions with Metadata v0..=12.
async fn accept_and_negotiate(listener: &TcpListener) -> TcpStream {
    let mut stream = listener.accept().await.expect("accept");
    let request = read_raw(&mut stream).await.expect("ApiVersions");
    assert_eq!(request.api_key, ApiKey::ApiVersions as i16);
    assert_eq!(request.version, 3);
    assert_eq!(
        request.header.client_id.as_deref(),
        Some("weir-client-test"),
        "client.id is in every header"
    );
    let body = ApiVersionsResponse::default().with_api_keys(vec![
        ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_max_version(3),
        ApiVersion::default()
            .with_api_key(ApiKey::Metadata as i16)
            .with_max_version(12),
    ]);
    let frame = response_frame(request.correlation_id, 0, &body, 3);
    stream.write_all(&frame).await.expect("answer");
    stream
}

fn raw_peer() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    (listener, addr)
}

/// Runs `calls` concurrent Metadata calls, each for its own topic, as tasks.
fn spawn_calls(
    connection: &Rc<Connection>,
    names: impl IntoIterator<Item = String>,
) -> Vec<glommio::task::JoinHandle<(String, Result<MetadataResponse, ClientError>)>> {
    names
        .into_iter()
        .map(|name| {
            let c = connection.clone();
            glommio::spawn_local(async move {
                let r = c.call_at(metadata_for(&name), 12).await;
                (name, r)
            })
            .detach()
        })
        .collect()
}

// ---- tests ----

#[test]
fn pipelined_calls_get_their_own_answers_even_out_of_order() {
    run(|| async {
        let (listener, addr) = raw_peer();
        let peer = glommio::spawn_local(async move {
            let mut stream = accept_and_negotiate(&listener).await;
            let mut requests = Vec::new();
            for _ in 0..20 {
                requests.push(read_raw(&mut stream).await.expect("request"));
            }
            // All 20 were in flight at once; answer them last first.
            for request in requests.iter().rev() {
                stream.write_all(&metadata_answer(request)).await.unwrap();
            }
            let ids: Vec<i32> = requests.iter().map(|r| r.correlation_id).collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                ids.len(),
                "correlation ids are unique: {ids:?}"
            );
            stream
        });
        let connection = Connection::connect(&addr, &config())
            .await
            .expect("connect");
        assert_eq!(connection.version(ApiKey::Metadata, 1, 12), Ok(12));
        let calls = spawn_calls(&connection, (0..20).map(|i| format!("topic-{i}")));
        for call in calls {
            let (name, response) = call.await.expect("task");
            assert_eq!(first_topic(&response.expect("answered")), name);
        }
        drop(peer.await);
    });
}

#[test]
fn many_calls_through_a_weir_listener_with_a_small_in_flight_limit() {
    run(|| async {
        let server = serve_default();
        let mut config = config();
        config.max_in_flight_requests = 8;
        let connection = Connection::connect(&server.addr.to_string(), &config)
            .await
            .expect("connect");
        let calls = spawn_calls(&connection, (0..300).map(|i| format!("t{i}")));
        for call in calls {
            let (name, response) = call.await.expect("task");
            assert_eq!(first_topic(&response.expect("answered")), name);
        }
        assert!(!connection.is_closed());
    });
}

#[test]
fn a_call_times_out_and_the_connection_stays_usable() {
    run(|| async {
        let (listener, addr) = raw_peer();
        let peer = glommio::spawn_local(async move {
            let mut stream = accept_and_negotiate(&listener).await;
            let held = read_raw(&mut stream).await.expect("held request");
            let next = read_raw(&mut stream).await.expect("next request");
            stream.write_all(&metadata_answer(&next)).await.unwrap();
            // Long after the held call gave up: its late answer, then the next one's.
            let last = read_raw(&mut stream).await.expect("last request");
            stream.write_all(&metadata_answer(&held)).await.unwrap();
            stream.write_all(&metadata_answer(&last)).await.unwrap();
            stream
        });
        let mut config = config();
        config.request_timeout = Duration::from_millis(200);
        let connection = Connection::connect(&addr, &config).await.expect("connect");
        match connection.call_at(metadata_for("held"), 12).await {
            Err(ClientError::Timeout {
                api_key: 3,
                api_version: 12,
                timeout,
                ..
            }) => assert_eq!(timeout, Duration::from_millis(200)),
            other => panic!("expected a timeout, got {other:?}"),
        }
        let next = connection.call_at(metadata_for("next"), 12).await;
        assert_eq!(first_topic(&next.expect("answered")), "next");
        let last = connection.call_at(metadata_for("last"), 12).await;
        assert_eq!(
            first_topic(&last.expect("answered")),
            "last",
            "the late answer went to nobody"
        );
        assert!(!connection.is_closed());
        drop(peer.await);
    });
}

#[test]
fn a_peer_closing_mid_response_wakes_every_caller_with_the_cause() {
    run(|| async {
        let (listener, addr) = raw_peer();
        let peer = glommio::spawn_local(async move {
            let mut stream = accept_and_negotiate(&listener).await;
            for _ in 0..5 {
                read_raw(&mut stream).await.expect("request");
            }
            // A frame that announces 100 bytes and brings 10, then the end of the stream.
            let mut partial = 100i32.to_be_bytes().to_vec();
            partial.extend_from_slice(&[0u8; 10]);
            stream.write_all(&partial).await.unwrap();
            stream.close().await.unwrap();
        });
        // A request timeout far beyond the test's bound: the callers must be woken by the
        // close, not by a timer.
        let mut config = config();
        config.request_timeout = Duration::from_secs(3600);
        let connection = Connection::connect(&addr, &config).await.expect("connect");
        let calls = spawn_calls(&connection, (0..5).map(|i| format!("t{i}")));
        let cause = CloseCause::MidFrame {
            expected: 100,
            received: 10,
        };
        for call in calls {
            match call.await.expect("task").1 {
                Err(ClientError::ConnectionClosed { cause: c, .. }) => assert_eq!(c, cause),
                other => panic!("expected ConnectionClosed, got {other:?}"),
            }
        }
        peer.await;
        assert_eq!(connection.closed().await, cause);
        assert!(connection.is_closed());
        // Later calls fail at once with the same cause.
        match connection.call_at(metadata_for("late"), 12).await {
            Err(ClientError::ConnectionClosed { cause: c, .. }) => assert_eq!(c, cause),
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
        assert!(connection
            .call_at(metadata_for("x"), 12)
            .await
            .unwrap_err()
            .is_connection_lost());
    });
}

#[test]
fn a_response_frame_over_the_limit_closes_the_connection() {
    run(|| async {
        for size in [2000i32, -1] {
            let (listener, addr) = raw_peer();
            let peer = glommio::spawn_local(async move {
                let mut stream = accept_and_negotiate(&listener).await;
                let request = read_raw(&mut stream).await.expect("request");
                // The frame declares `size` bytes; only the prefix and a little is sent, so
                // the client must refuse it from the prefix alone.
                let mut frame = size.to_be_bytes().to_vec();
                frame.extend_from_slice(&request.correlation_id.to_be_bytes());
                stream.write_all(&frame).await.unwrap();
                stream
            });
            let mut config = config();
            config.response_max_bytes = 1024;
            let connection = Connection::connect(&addr, &config).await.expect("connect");
            let cause = CloseCause::Protocol(ProtocolError::FrameSize { size, limit: 1024 });
            match connection.call_at(metadata_for("big"), 12).await {
                Err(ClientError::ConnectionClosed { cause: c, .. }) => assert_eq!(c, cause),
                other => panic!("size {size}: expected ConnectionClosed, got {other:?}"),
            }
            assert_eq!(connection.closed().await, cause);
            drop(peer.await);
        }
    });
}

#[test]
fn a_request_over_the_servers_limit_closes_the_connection() {
    run(|| async {
        let net = NetConfig {
            socket_request_max_bytes: 4096,
            ..NetConfig::default()
        };
        let server = serve(net, supported(), WeirApis::none());
        let connection = Connection::connect(&server.addr.to_string(), &config())
            .await
            .expect("connect");
        let produce = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic("big"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_records(Some(Bytes::from(vec![0u8; 8192])))])]);
        let error = connection.call_at(produce, 9).await.unwrap_err();
        assert!(
            matches!(error, ClientError::ConnectionClosed { .. }),
            "{error:?}"
        );
        assert!(server.handler.events.borrow().is_empty());
    });
}

#[test]
fn fetched_records_are_slices_of_the_response_frame_not_copies() {
    run(|| async {
        let server = serve_default();
        let connection = Connection::connect(&server.addr.to_string(), &config())
            .await
            .expect("connect");
        let version = connection.version(ApiKey::Fetch, 4, 12).expect("fetch");
        let request = FetchRequest::default().with_topics(vec![FetchTopic::default()
            .with_topic(topic("orders-zero-copy"))
            .with_partitions(vec![FetchPartition::default()])]);
        let response = connection.call_at(request, version).await.expect("fetch");
        let t = &response.responses[0];
        let records = t.partitions[0].records.clone().expect("records");
        assert_eq!(records, server.handler.fetch_records);

        // Where the topic name and the records sit in the encoded response...
        let mut wire = BytesMut::new();
        response.encode(&mut wire, version).unwrap();
        let find = |needle: &[u8]| {
            wire.windows(needle.len())
                .position(|w| w == needle)
                .expect("in the encoding")
        };
        let on_wire = find(&records[..64]) - find(b"orders-zero-copy");
        // ...is where they sit in memory: both are views of one buffer, the frame as read
        // from the socket. A copied `records` would live in an allocation of its own.
        let name = t.topic.0.as_ptr() as usize;
        let in_memory = (records.as_ptr() as usize).wrapping_sub(name);
        assert_eq!(in_memory, on_wire);
    });
}

#[test]
fn private_apis_round_trip_through_the_client() {
    run(|| async {
        let server = serve(NetConfig::default(), supported(), controller_apis());
        let connection = Connection::connect(&server.addr.to_string(), &config())
            .await
            .expect("connect");
        assert_eq!(connection.weir_version(WeirApi::Controller, 0, 3), Ok(0));
        assert_eq!(connection.weir_version(WeirApi::MetadataFetch, 0, 3), Ok(1));
        assert_eq!(connection.version(ApiKey::Metadata, 1, 12), Ok(12));

        connection
            .send_raw(WeirApi::Raft, 0, Bytes::from_static(b"append entries"))
            .await
            .expect("queued");
        let answer = connection
            .call_raw(WeirApi::Controller, 0, Bytes::from_static(b"register"))
            .await
            .expect("answered");
        assert_eq!(&answer[..], b"retsiger");
        let answer = connection
            .call_raw(WeirApi::MetadataFetch, 1, Bytes::from_static(&[1, 2, 3]))
            .await
            .expect("answered");
        assert_eq!(&answer[..], &[3, 2, 1]);
        // Kafka calls share the connection.
        let m = connection.call_at(metadata_for("mixed"), 12).await;
        assert_eq!(first_topic(&m.expect("answered")), "mixed");
        assert_eq!(
            *server.handler.events.borrow(),
            vec![
                "WeirRaft(32000) b\"append entries\"".to_string(),
                "WeirController(32002) b\"register\"".to_string(),
                "WeirMetadataFetch(32001) b\"\\x01\\x02\\x03\"".to_string(),
            ]
        );
    });
}

#[test]
fn private_calls_to_a_client_listener_close_the_connection() {
    run(|| async {
        let server = serve_default();
        let connection = Connection::connect(&server.addr.to_string(), &config())
            .await
            .expect("connect");
        assert!(matches!(
            connection.weir_version(WeirApi::Controller, 0, 0),
            Err(ClientError::UnsupportedVersion { offered: None, .. })
        ));
        let error = connection
            .call_raw(WeirApi::Controller, 0, Bytes::from_static(b"register"))
            .await
            .unwrap_err();
        assert!(error.is_connection_lost(), "{error:?}");
        assert!(connection.is_closed());
        assert!(server.handler.events.borrow().is_empty());
    });
}

#[test]
fn api_versions_falls_back_to_the_newest_version_the_peer_takes() {
    run(|| async {
        let v = |min, max| VersionRange { min, max };
        let old = SupportedApis::new([(ApiKey::ApiVersions, v(0, 2)), (ApiKey::Metadata, v(1, 9))])
            .unwrap();
        let server = serve(NetConfig::default(), old, WeirApis::none());
        let connection = Connection::connect(&server.addr.to_string(), &config())
            .await
            .expect("negotiated at v2");
        assert_eq!(connection.version(ApiKey::Metadata, 1, 12), Ok(9));
        assert_eq!(
            connection.versions().range(ApiKey::ApiVersions as i16),
            Some((0, 2))
        );
    });
}

#[test]
fn dropping_the_last_handle_sends_what_is_queued_then_closes() {
    run(|| async {
        let server = serve_default();
        let connection = Connection::connect(&server.addr.to_string(), &config())
            .await
            .expect("connect");
        for i in 0..50 {
            let produce = ProduceRequest::default()
                .with_acks(0)
                .with_timeout_ms(1000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(topic(&format!("p{i}")))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_records(Some(Bytes::from(vec![0u8; 1000])))])]);
            connection.send_only(produce, 9).await.expect("queued");
        }
        drop(connection);
        let events = &server.handler.events;
        eventually("every queued produce arrives", || {
            events.borrow().len() == 50
        })
        .await;
        let expected: Vec<String> = (0..50).map(|i| format!("produce p{i}")).collect();
        assert_eq!(*events.borrow(), expected);
    });
}

#[test]
fn closed_resolves_and_reconnecting_dials_again() {
    run(|| async {
        let server = serve_default();
        let peer = server.addr.to_string();
        let reconnecting = Reconnecting::new(peer, config(), BackoffConfig::default());
        let first = reconnecting.connection().await.expect("connect");
        assert!(Rc::ptr_eq(
            &first,
            &reconnecting.connection().await.unwrap()
        ));
        // The test server closes on Heartbeat: the call fails, `closed` resolves.
        let heartbeat = kafka_protocol::messages::HeartbeatRequest::default();
        let error = first.call_at(heartbeat, 4).await.unwrap_err();
        assert!(error.is_connection_lost(), "{error:?}");
        assert_eq!(first.closed().await, CloseCause::ByPeer);
        assert!(reconnecting.current().is_none());
        let second = reconnecting.connection().await.expect("reconnect");
        assert!(!Rc::ptr_eq(&first, &second));
        let m = second.call_at(metadata_for("again"), 12).await;
        assert_eq!(first_topic(&m.expect("answered")), "again");
    });
}

#[test]
fn reconnecting_waits_out_the_backoff_after_a_failure() {
    run(|| async {
        // A port nobody listens on.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = free.local_addr().unwrap().to_string();
        drop(free);
        let backoff = BackoffConfig {
            initial: Duration::from_millis(300),
            max: Duration::from_secs(1),
        };
        let reconnecting = Reconnecting::new(peer, config(), backoff);
        let error = reconnecting.connection().await.err().expect("refused");
        assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
        let started = Instant::now();
        let error = reconnecting.connection().await.err().expect("refused");
        assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
        // The second attempt waited at least the first backoff, less its 20% jitter.
        assert!(started.elapsed() >= Duration::from_millis(240));
    });
}
