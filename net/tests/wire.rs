//! End-to-end tests of the wire edge: a glommio executor serves a listener on 127.0.0.1 with a
//! toy handler, and blocking std clients on the test thread speak Kafka frames to it.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use glommio::sync::Semaphore;
use glommio::{LocalExecutorBuilder, Placement};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, HeartbeatRequest,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, RequestKind,
    ResponseHeader, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use weir_net::fetch_response::{
    encode_fetch_response, FetchPartitionData, FetchResponseData, FetchTopicData,
};
use weir_net::{
    send_stats, ConnectionInfo, FileRegion, Handler, KafkaRequest, Listener, NetConfig, NetCore,
    Part, Reply, Request, SendStats, SupportedApis, WeirApi, WeirApis, WeirRequest,
};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn supported() -> SupportedApis {
    SupportedApis::new([
        (ApiKey::Produce, VersionRange { min: 3, max: 9 }),
        (ApiKey::Fetch, VersionRange { min: 4, max: 16 }),
        (ApiKey::Metadata, VersionRange { min: 1, max: 12 }),
        (ApiKey::Heartbeat, VersionRange { min: 0, max: 4 }),
        (ApiKey::ApiVersions, VersionRange { min: 0, max: 3 }),
    ])
    .expect("valid table")
}

/// The toy broker: behaviour keyed by api, events recorded for the test to inspect.
struct TestHandler {
    supported: SupportedApis,
    events: Rc<RefCell<Vec<String>>>,
    // Produce to topic "hold" waits here until a Produce to "release" signals it.
    gate: Semaphore,
    running: Cell<usize>,
    max_running: Cell<usize>,
    fetch_file: Option<(Rc<std::fs::File>, u64)>,
}

impl Handler for TestHandler {
    async fn handle(&self, _connection: Rc<ConnectionInfo>, request: Request) -> Reply {
        let request = match request {
            Request::Kafka(request) => request,
            Request::Weir(request) => return self.weir(request),
        };
        let id = request.correlation_id();
        self.events
            .borrow_mut()
            .push(format!("start {:?} {id}", request.api_key));
        self.running.set(self.running.get() + 1);
        self.max_running
            .set(self.max_running.get().max(self.running.get()));
        let reply = self.reply(request).await;
        self.running.set(self.running.get() - 1);
        reply
    }
}

impl TestHandler {
    /// Private apis: WeirRaft is recorded and not answered; the others answer their body
    /// reversed, so the test sees the handler had exactly the bytes sent.
    fn weir(&self, request: WeirRequest) -> Reply {
        self.events.borrow_mut().push(format!(
            "{} v{} {} {:?}",
            request.api,
            request.api_version(),
            request.correlation_id(),
            request.body
        ));
        match request.api {
            WeirApi::Raft => Reply::NoResponse,
            WeirApi::MetadataFetch | WeirApi::Controller => {
                let mut body = request.body.to_vec();
                body.reverse();
                Reply::Raw(vec![Part::Bytes(Bytes::from(body))])
            }
        }
    }

    async fn reply(&self, request: KafkaRequest) -> Reply {
        let id = request.correlation_id();
        match request.body {
            RequestKind::ApiVersions(_) => Reply::Message(ResponseKind::ApiVersions(
                ApiVersionsResponse::default().with_api_keys(self.supported.api_versions()),
            )),
            RequestKind::Metadata(_) => {
                // Later requests finish first, so only the connection can restore order.
                let delay = 20 * (10 - (id % 10)) as u64;
                glommio::timer::sleep(Duration::from_millis(delay)).await;
                Reply::Message(ResponseKind::Metadata(
                    MetadataResponse::default().with_throttle_time_ms(id),
                ))
            }
            RequestKind::Produce(p) => {
                let topic = p
                    .topic_data
                    .first()
                    .map(|t| t.name.0.to_string())
                    .unwrap_or_default();
                match topic.as_str() {
                    "hold" => {
                        let _ = self.gate.acquire(1).await;
                    }
                    "release" => self.gate.signal(1),
                    _ => {}
                }
                self.events
                    .borrow_mut()
                    .push(format!("done Produce {id} {topic}"));
                if p.acks == 0 {
                    Reply::NoResponse
                } else {
                    Reply::Message(ResponseKind::Produce(ProduceResponse::default()))
                }
            }
            RequestKind::Fetch(_) => {
                let Some((file, len)) = &self.fetch_file else {
                    return Reply::Close;
                };
                let fd: Rc<dyn AsRawFd> = file.clone();
                let mut partition = FetchPartitionData::new(0);
                partition.high_watermark = 1;
                partition.records = vec![Part::File(FileRegion::new(fd, 0, *len))];
                let data = FetchResponseData {
                    topics: vec![FetchTopicData {
                        name: StrBytes::from_static_str("big"),
                        partitions: vec![partition],
                        ..FetchTopicData::default()
                    }],
                    ..FetchResponseData::default()
                };
                match encode_fetch_response(request.api_version(), id, &data) {
                    Ok(frame) => Reply::Frame(frame),
                    Err(_) => Reply::Close,
                }
            }
            RequestKind::Heartbeat(_) => Reply::Close,
            _ => Reply::Close,
        }
    }
}

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<glommio::ExecutorJoinHandle<(SendStats, Vec<String>, usize)>>,
}

impl Server {
    fn start(config: NetConfig, fetch_file: Option<(std::path::PathBuf, u64)>) -> Server {
        Server::start_on("127.0.0.1:0".parse().unwrap(), config, fetch_file)
    }

    /// A controller listener: accepts the given private apis.
    fn start_accepting(weir: WeirApis) -> Server {
        Server::start_full(
            "127.0.0.1:0".parse().unwrap(),
            NetConfig::default(),
            None,
            weir,
        )
    }

    /// Like a broker core: its own executor, its own listening socket on `bind`.
    fn start_on(
        bind: SocketAddr,
        config: NetConfig,
        fetch_file: Option<(std::path::PathBuf, u64)>,
    ) -> Server {
        Server::start_full(bind, config, fetch_file, WeirApis::none())
    }

    fn start_full(
        bind: SocketAddr,
        config: NetConfig,
        fetch_file: Option<(std::path::PathBuf, u64)>,
        weir: WeirApis,
    ) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stop_flag = stop.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name("weir-net-test")
            .spawn(move || async move {
                let core = NetCore::new(config, supported()).expect("config");
                let listener = Listener::bind(bind, core.clone())
                    .expect("bind")
                    .accepting_weir_apis(weir);
                addr_tx.send(listener.local_addr().expect("addr")).unwrap();
                let handler = Rc::new(TestHandler {
                    supported: supported(),
                    events: Rc::new(RefCell::new(Vec::new())),
                    gate: Semaphore::new(0),
                    running: Cell::new(0),
                    max_running: Cell::new(0),
                    fetch_file: fetch_file.map(|(path, len)| {
                        (Rc::new(std::fs::File::open(path).expect("open")), len)
                    }),
                });
                let shutdown = async {
                    while !stop_flag.load(Ordering::SeqCst) {
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }
                };
                listener.serve(handler.clone(), shutdown).await;
                let events = handler.events.borrow().clone();
                (send_stats(), events, handler.max_running.get())
            })
            .expect("executor");
        let addr = addr_rx.recv_timeout(IO_TIMEOUT).expect("server address");
        Server {
            addr,
            stop,
            handle: Some(handle),
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    /// Stops accepting and returns the core's send counters, handler events and the peak
    /// number of concurrently running handlers. Panics if the executor panicked.
    fn stop(mut self) -> (SendStats, Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .expect("running")
            .join()
            .expect("executor exited cleanly")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn request(key: ApiKey, version: i16, correlation_id: i32, body: &RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

fn api_versions(correlation_id: i32) -> Vec<u8> {
    let body = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("wire-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    request(
        ApiKey::ApiVersions,
        3,
        correlation_id,
        &RequestKind::ApiVersions(body),
    )
}

fn produce(correlation_id: i32, topic: &'static str, acks: i16, payload: usize) -> Vec<u8> {
    let body = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(vec![0u8; payload])))])]);
    request(
        ApiKey::Produce,
        9,
        correlation_id,
        &RequestKind::Produce(body),
    )
}

fn read_frame(s: &mut TcpStream) -> Bytes {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("response body");
    Bytes::from(body)
}

fn read_response(s: &mut TcpStream, key: ApiKey, version: i16) -> (i32, ResponseKind) {
    let mut body = read_frame(s);
    let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
        .expect("response header");
    let kind = ResponseKind::decode(key, &mut body, version).expect("response body");
    assert!(body.is_empty(), "{key:?} v{version}: trailing bytes");
    (header.correlation_id, kind)
}

fn assert_api_versions_ok(s: &mut TcpStream, correlation_id: i32) {
    let (id, kind) = read_response(s, ApiKey::ApiVersions, 3);
    assert_eq!(id, correlation_id);
    match kind {
        ResponseKind::ApiVersions(r) => {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.api_keys.len(), 5);
        }
        other => panic!("expected ApiVersions, got {other:?}"),
    }
}

/// The server must close the connection on its own (EOF or reset), within the timeout.
fn assert_closed_by_server(s: &mut TcpStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) => panic!("{what}: connection not closed by server: {e}"),
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_request_order() {
    let server = Server::start(NetConfig::default(), None);
    let mut client = server.connect();
    let mut wire = Vec::new();
    for id in 0..10 {
        let topic = MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("t"))));
        let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![topic])));
        wire.extend(request(ApiKey::Metadata, 12, id, &body));
        if id % 3 == 0 {
            wire.extend(api_versions(1000 + id));
        }
    }
    let started = Instant::now();
    client.write_all(&wire).unwrap();
    for id in 0..10 {
        let (got, kind) = read_response(&mut client, ApiKey::Metadata, 12);
        assert_eq!(got, id, "responses out of request order");
        match kind {
            ResponseKind::Metadata(m) => assert_eq!(m.throttle_time_ms, id),
            other => panic!("expected Metadata, got {other:?}"),
        }
        if id % 3 == 0 {
            assert_api_versions_ok(&mut client, 1000 + id);
        }
    }
    // Handlers sleep 200ms..20ms each (2.2s in sequence): they must have overlapped.
    assert!(started.elapsed() < Duration::from_millis(1500));
    let (_, _, max_running) = server.stop();
    assert!(max_running > 1, "handlers never overlapped");
}

#[test]
fn unsupported_api_versions_is_answered_at_v0_and_connection_stays_usable() {
    let server = Server::start(NetConfig::default(), None);
    let mut client = server.connect();
    // ApiVersions v7: beyond the table, with a flexible (v2) header body we cannot parse.
    let mut frame = Vec::new();
    frame.extend_from_slice(&18i16.to_be_bytes());
    frame.extend_from_slice(&7i16.to_be_bytes());
    frame.extend_from_slice(&4711i32.to_be_bytes());
    frame.extend_from_slice(&[0xff, 0xff, 0, 0x13, 0x37]);
    let mut wire = (frame.len() as i32).to_be_bytes().to_vec();
    wire.extend(frame);
    client.write_all(&wire).unwrap();
    let mut body = read_frame(&mut client);
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 4711);
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert!(body.is_empty(), "must be exactly a v0 body");
    assert_eq!(resp.error_code, 35);
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("ApiVersions range listed");
    assert_eq!((av.min_version, av.max_version), (0, 3));
    // The client retries at a version it now knows is supported, on the same connection.
    client.write_all(&api_versions(4712)).unwrap();
    assert_api_versions_ok(&mut client, 4712);
    server.stop();
}

#[test]
fn bad_input_closes_only_that_connection() {
    let server = Server::start(NetConfig::default(), None);
    let mut good = server.connect();
    good.write_all(&api_versions(1)).unwrap();
    assert_api_versions_ok(&mut good, 1);

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect()
    };
    let unknown_key = {
        let mut f = request(
            ApiKey::Heartbeat,
            0,
            9,
            &RequestKind::Heartbeat(HeartbeatRequest::default()),
        );
        f[4..6].copy_from_slice(&999i16.to_be_bytes());
        f
    };
    let unsupported_produce = produce(3, "t", 1, 10)
        .into_iter()
        .enumerate()
        .map(|(i, b)| if i == 7 { 2 } else { b }) // api_version 9 -> 2
        .collect::<Vec<u8>>();
    let malformed_body = {
        // A Fetch v12 frame whose body is cut to its first 5 bytes, size prefix adjusted.
        let full = request(
            ApiKey::Fetch,
            12,
            4,
            &RequestKind::Fetch(FetchRequest::default()),
        );
        let header_len = 4 + 2 + 2 + 4 + 2 + "wire-test".len() + 1;
        let mut f = full[..header_len + 5].to_vec();
        let len = (f.len() - 4) as i32;
        f[..4].copy_from_slice(&len.to_be_bytes());
        f
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "2 GiB size prefix",
            0x8000_0000u32.to_be_bytes().to_vec(),
            false,
        ),
        (
            "max i32 size prefix",
            i32::MAX.to_be_bytes().to_vec(),
            false,
        ),
        (
            "oversized frame",
            (104_857_601i32).to_be_bytes().to_vec(),
            false,
        ),
        ("unknown api key", unknown_key, false),
        ("unsupported produce version", unsupported_produce, false),
        ("malformed fetch body", malformed_body, false),
        (
            "frame shorter than a header",
            vec![0, 0, 0, 3, 0, 1, 0],
            false,
        ),
        ("random bytes", random(4096), true),
        (
            "random bytes after a valid request",
            [api_versions(2), random(300)].concat(),
            true,
        ),
        (
            "truncated frame",
            [100i32.to_be_bytes().to_vec(), vec![1; 10]].concat(),
            true,
        ),
        ("truncated size prefix", vec![0, 0], true),
    ];
    for (what, bytes, half_close) in cases {
        let mut bad = server.connect();
        bad.write_all(&bytes).unwrap();
        if half_close {
            bad.shutdown(Shutdown::Write).unwrap();
        }
        assert_closed_by_server(&mut bad, what);
        // The good connection is untouched.
        good.write_all(&api_versions(7)).unwrap();
        assert_api_versions_ok(&mut good, 7);
    }
    server.stop();
}

#[test]
fn produce_with_acks_zero_gets_no_response() {
    let server = Server::start(NetConfig::default(), None);
    let mut client = server.connect();
    let wire = [
        produce(1, "t", 0, 100),
        produce(2, "t", 1, 100),
        produce(3, "t", 0, 100),
        api_versions(4),
    ]
    .concat();
    client.write_all(&wire).unwrap();
    let (id, kind) = read_response(&mut client, ApiKey::Produce, 9);
    assert_eq!(id, 2);
    assert!(matches!(kind, ResponseKind::Produce(_)));
    assert_api_versions_ok(&mut client, 4);
    let (_, events, _) = server.stop();
    assert!(events.contains(&"done Produce 3 t".to_string()));
}

#[test]
fn handler_reply_close_closes_after_earlier_responses() {
    let server = Server::start(NetConfig::default(), None);
    let mut client = server.connect();
    let wire = [
        api_versions(1),
        request(
            ApiKey::Heartbeat,
            4,
            2,
            &RequestKind::Heartbeat(HeartbeatRequest::default()),
        ),
        api_versions(3),
    ]
    .concat();
    client.write_all(&wire).unwrap();
    assert_api_versions_ok(&mut client, 1);
    assert_closed_by_server(&mut client, "handler asked to close");
    server.stop();
}

#[test]
fn request_budget_stops_reading_until_bytes_are_released() {
    let config = NetConfig {
        queued_max_request_bytes: 1000,
        ..NetConfig::default()
    };
    let server = Server::start(config, None);
    let mut a = server.connect();
    let mut b = server.connect();
    let mut c = server.connect();
    // Each holds ~700 budget bytes inside its handler until released; two do not fit, so
    // whichever is read second must not be read until the first finishes.
    a.write_all(&produce(1, "hold", 1, 600)).unwrap();
    b.write_all(&produce(2, "hold", 1, 600)).unwrap();
    for s in [&mut a, &mut b] {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut probe = [0u8; 1];
        let err = s
            .read(&mut probe)
            .expect_err("nothing is answered while held");
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    }
    // Small requests still fit the remaining budget; each releases one held request.
    c.write_all(&produce(3, "release", 1, 10)).unwrap();
    assert_eq!(read_response(&mut c, ApiKey::Produce, 9).0, 3);
    c.write_all(&produce(4, "release", 1, 10)).unwrap();
    assert_eq!(read_response(&mut c, ApiKey::Produce, 9).0, 4);
    assert_eq!(read_response(&mut a, ApiKey::Produce, 9).0, 1);
    assert_eq!(read_response(&mut b, ApiKey::Produce, 9).0, 2);

    // A frame larger than the whole budget still goes through, alone.
    let mut big = server.connect();
    big.write_all(&produce(5, "big", 1, 5000)).unwrap();
    assert_eq!(read_response(&mut big, ApiKey::Produce, 9).0, 5);

    let (_, events, _) = server.stop();
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} missing: {events:?}"))
    };
    let (s1, s2) = (pos("start Produce 1"), pos("start Produce 2"));
    let (first, second_start) = if s1 < s2 { (1, s2) } else { (2, s1) };
    assert!(
        pos(&format!("done Produce {first} hold")) < second_start,
        "the second held request was read while the first held the budget: {events:?}"
    );
}

#[test]
fn max_connections_refuses_the_excess_and_recovers() {
    let config = NetConfig {
        max_connections: 2,
        ..NetConfig::default()
    };
    let server = Server::start(config, None);
    let mut first = server.connect();
    let mut second = server.connect();
    for (i, s) in [&mut first, &mut second].into_iter().enumerate() {
        s.write_all(&api_versions(i as i32)).unwrap();
        assert_api_versions_ok(s, i as i32);
    }
    let mut third = server.connect();
    let _ = third.write_all(&api_versions(9));
    assert_closed_by_server(&mut third, "third connection over max.connections");
    drop(first);
    // The slot frees once the server notices the close; retry, bounded.
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let mut again = server.connect();
        let served = again.write_all(&api_versions(10)).is_ok() && {
            let mut len = [0u8; 4];
            again.read_exact(&mut len).is_ok()
        };
        if served {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(20));
    }
    second.write_all(&api_versions(11)).unwrap();
    assert_api_versions_ok(&mut second, 11);
    server.stop();
}

#[test]
fn large_file_region_goes_zero_copy_to_a_slow_reader() {
    const REGION: u64 = 16 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("segment.log");
    let content: Vec<u8> = (0..REGION)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    std::fs::write(&path, &content).unwrap();
    let server = Server::start(NetConfig::default(), Some((path.clone(), REGION)));

    let mut slow = server.connect();
    // A small receive buffer so the server's send buffer fills and it has to park.
    let rcvbuf: libc::c_int = 64 * 1024;
    // SAFETY: setsockopt on our own socket with a correctly sized int.
    let rc = unsafe {
        libc::setsockopt(
            slow.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&rcvbuf as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let fetch = RequestKind::Fetch(FetchRequest::default().with_max_wait_ms(0));
    slow.write_all(&request(ApiKey::Fetch, 13, 77, &fetch))
        .unwrap();

    let mut wire = Vec::new();
    let mut chunk = vec![0u8; 32 * 1024];
    let mut checked_other_connection = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut expected_len = None;
    while expected_len.is_none_or(|n| wire.len() < n) {
        assert!(Instant::now() < deadline, "slow read did not finish");
        let n = slow.read(&mut chunk).expect("read");
        assert!(n > 0, "server closed mid-response");
        wire.extend_from_slice(&chunk[..n]);
        if expected_len.is_none() && wire.len() >= 4 {
            expected_len = Some(4 + i32::from_be_bytes(wire[..4].try_into().unwrap()) as usize);
        }
        std::thread::sleep(Duration::from_millis(1));
        if !checked_other_connection && wire.len() > (4 << 20) {
            // Mid-transfer, the core still serves others promptly: the slow reader parks
            // only its own response.
            let started = Instant::now();
            let mut other = server.connect();
            other.write_all(&api_versions(5)).unwrap();
            assert_api_versions_ok(&mut other, 5);
            assert!(started.elapsed() < Duration::from_secs(1));
            checked_other_connection = true;
        }
    }
    assert!(checked_other_connection);
    let mut body = Bytes::from(wire).slice(4..);
    let header = ResponseHeader::decode(&mut body, 1).unwrap();
    assert_eq!(header.correlation_id, 77);
    let resp = FetchResponse::decode(&mut body, 13).unwrap();
    let records = resp.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(records.len() as u64, REGION);
    assert!(records == content[..], "bytes differ from the file");

    let (stats, _, _) = server.stop();
    assert_eq!(
        stats.file_bytes_zero_copy + stats.file_bytes_copied,
        REGION,
        "{stats:?}"
    );
    assert!(
        stats.file_bytes_copied >= 1,
        "the socket never filled: {stats:?}"
    );
    assert!(
        stats.file_bytes_copied * 1000 < REGION,
        "too many bytes copied through user space: {stats:?}"
    );
}

#[test]
fn two_cores_share_one_address_with_reuseport() {
    let first = Server::start(NetConfig::default(), None);
    let second = Server::start_on(first.addr, NetConfig::default(), None);
    assert_eq!(first.addr, second.addr);
    const CONNECTIONS: i32 = 40;
    for id in 0..CONNECTIONS {
        let mut client = first.connect();
        client.write_all(&api_versions(id)).unwrap();
        assert_api_versions_ok(&mut client, id);
    }
    let (_, a, _) = first.stop();
    let (_, b, _) = second.stop();
    assert_eq!((a.len() + b.len()) as i32, CONNECTIONS);
    // The kernel hashes connections across both sockets; all 40 on one is a 2^-39 event.
    assert!(!a.is_empty() && !b.is_empty(), "{} vs {}", a.len(), b.len());
}

/// A private request as a Weir client frames it: size, request header v2, body as given.
fn weir_request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header.encode(&mut buf, 2).unwrap();
    buf.put_slice(body);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
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

fn listed(
    keys: &[kafka_protocol::messages::api_versions_response::ApiVersion],
) -> Vec<(i16, i16, i16)> {
    keys.iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .filter(|k| k.0 >= 32000)
        .collect()
}

#[test]
fn private_apis_round_trip_as_raw_bytes_on_a_listener_that_accepts_them() {
    let server = Server::start_accepting(controller_apis());
    let mut client = server.connect();
    // ApiVersions (answered by the handler from the Kafka table) advertises the private
    // apis this listener accepts, and so does the v0 fallback the connection answers itself.
    client.write_all(&api_versions(1)).unwrap();
    let (_, kind) = read_response(&mut client, ApiKey::ApiVersions, 3);
    let ResponseKind::ApiVersions(r) = kind else {
        panic!("expected ApiVersions, got {kind:?}");
    };
    let private = vec![(32000, 0, 0), (32001, 0, 1), (32002, 0, 0)];
    assert_eq!(listed(&r.api_keys), private);
    assert_eq!(r.api_keys.len(), 5 + 3, "Kafka's keys are still all there");
    let mut v4 = api_versions(2);
    v4[7] = 4; // api_version 3 -> 4, beyond the table
    client.write_all(&v4).unwrap();
    let mut body = read_frame(&mut client);
    ResponseHeader::decode(&mut body, 0).unwrap();
    let fallback = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(fallback.error_code, 35);
    assert_eq!(listed(&fallback.api_keys), private);

    // Pipelined: a raft message (never answered), a controller call, a metadata fetch at v1.
    let mut wire = weir_request(32000, 0, 10, b"vote for 2");
    wire.extend(weir_request(32002, 0, 11, b"register"));
    wire.extend(weir_request(32001, 1, 12, &[0, 1, 2, 255]));
    client.write_all(&wire).unwrap();
    for (id, want) in [(11, b"retsiger".to_vec()), (12, vec![255, 2, 1, 0])] {
        let mut frame = read_frame(&mut client);
        // Response header v1: the correlation id, then an empty tagged-field section.
        assert_eq!(frame.get_i32(), id);
        assert_eq!(frame.get_u8(), 0, "no tagged fields");
        assert_eq!(&frame[..], &want[..], "body of {id}");
    }
    // The raft message reached the handler with exactly its bytes, and nothing answered it:
    // the next answer on the connection is the next request's.
    client.write_all(&api_versions(13)).unwrap();
    assert_api_versions_ok_with(&mut client, 13, 5 + 3);
    drop(client);
    let (_, events, _) = server.stop();
    assert!(
        events.contains(&"WeirRaft(32000) v0 10 b\"vote for 2\"".to_string()),
        "{events:?}"
    );
}

fn assert_api_versions_ok_with(s: &mut TcpStream, correlation_id: i32, keys: usize) {
    let (id, kind) = read_response(s, ApiKey::ApiVersions, 3);
    assert_eq!(id, correlation_id);
    match kind {
        ResponseKind::ApiVersions(r) => {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.api_keys.len(), keys);
        }
        other => panic!("expected ApiVersions, got {other:?}"),
    }
}

#[test]
fn private_apis_close_the_connection_where_they_are_not_accepted() {
    // A client-facing listener: any private request is refused like an unknown api key, and
    // its ApiVersions lists no private api.
    let server = Server::start(NetConfig::default(), None);
    let mut client = server.connect();
    client.write_all(&api_versions(1)).unwrap();
    assert_api_versions_ok(&mut client, 1);
    for api in WeirApi::ALL {
        let mut client = server.connect();
        client
            .write_all(&weir_request(api.key(), 0, 2, b"x"))
            .unwrap();
        assert_closed_by_server(&mut client, api.name());
    }
    let (_, events, _) = server.stop();
    assert!(events.iter().all(|e| !e.contains("Weir")), "{events:?}");

    // The controller listener refuses versions it does not accept.
    let server = Server::start_accepting(controller_apis());
    for (key, version) in [(32000, 1), (32001, 2), (32002, 1)] {
        let mut client = server.connect();
        client
            .write_all(&weir_request(key, version, 3, b"x"))
            .unwrap();
        assert_closed_by_server(&mut client, &format!("{key} v{version}"));
    }
    let (_, events, _) = server.stop();
    assert!(events.iter().all(|e| !e.contains("Weir")), "{events:?}");
}
