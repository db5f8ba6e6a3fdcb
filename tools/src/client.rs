//! A small blocking Kafka client: one request at a time per connection, which is all an operator's
//! command needs (weir-bench has the pipelined, glommio-based one for load).
//!
//! [`Conn`] is one broker connection: length-prefixed frames, API versions negotiated once.
//! [`Client`] is the cluster as the tool sees it: the bootstrap connection, the broker addresses
//! learned from Metadata, and a connection per broker opened on first use (partition leaders,
//! group coordinators).

use crate::error::{check, AdminError, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FindCoordinatorRequest,
    MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const CLIENT_ID: &str = "weir-admin";
/// How long a connection attempt may take per resolved address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait for one response. Broker-side waits (fetch `max_wait_ms`, request timeouts)
/// are all shorter, so hitting this means the broker is stuck or gone.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response frame accepted: a fetch asks for far less, so anything bigger is garbage.
const MAX_FRAME_BYTES: usize = 256 << 20;

pub fn sb(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(sb(s))
}

/// One connection to one broker.
pub struct Conn {
    addr: String,
    stream: TcpStream,
    next_correlation: i32,
    /// The broker's (min, max) version per API key, from ApiVersions.
    versions: HashMap<i16, (i16, i16)>,
}

impl Conn {
    /// Connects and negotiates API versions.
    pub fn connect(addr: &str) -> Result<Conn> {
        let connect_err = |source| AdminError::Connect {
            addr: addr.to_string(),
            source,
        };
        let addrs: Vec<_> = addr.to_socket_addrs().map_err(connect_err)?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address resolved");
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| connect_err(last))?;
        let io_err = |source| AdminError::Io {
            addr: addr.to_string(),
            source,
        };
        stream.set_nodelay(true).map_err(io_err)?;
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .map_err(io_err)?;
        stream
            .set_write_timeout(Some(RESPONSE_TIMEOUT))
            .map_err(io_err)?;
        let mut conn = Conn {
            addr: addr.to_string(),
            stream,
            next_correlation: 1,
            versions: HashMap::new(),
        };
        conn.negotiate()?;
        Ok(conn)
    }

    /// ApiVersions v3; a broker that does not know v3 answers UNSUPPORTED_VERSION with its own
    /// ranges in a v0 body (KIP-511), so retry once at v0.
    fn negotiate(&mut self) -> Result<()> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(sb(CLIENT_ID))
            .with_client_software_version(sb(env!("CARGO_PKG_VERSION")));
        let mut resp: ApiVersionsResponse = self.call(&req, 3)?;
        if resp.error_code == kafka_protocol::ResponseError::UnsupportedVersion.code() {
            resp = self.call(&ApiVersionsRequest::default(), 0)?;
        }
        check(resp.error_code, None, || {
            format!("ApiVersions from {}", self.addr)
        })?;
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// The version to use for `key`: the highest both sides speak, capped at `preferred` (the
    /// newest layout this tool fills in) and at least `oldest`.
    pub fn version(&self, key: ApiKey, oldest: i16, preferred: i16) -> Result<i16> {
        pick_version(
            &self.addr,
            key,
            self.versions.get(&(key as i16)).copied(),
            oldest,
            preferred,
        )
    }

    fn io(&self, source: std::io::Error) -> AdminError {
        AdminError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    fn send<R: Request>(&mut self, req: &R, version: i16) -> Result<i32> {
        let correlation_id = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(sb(CLIENT_ID)));
        let hv = R::header_version(version);
        let size = header
            .compute_size(hv)
            .and_then(|h| Ok(h + req.compute_size(version)?))
            .map_err(AdminError::protocol)?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size as i32);
        header
            .encode(&mut buf, hv)
            .and_then(|_| req.encode(&mut buf, version))
            .map_err(AdminError::protocol)?;
        self.stream.write_all(&buf).map_err(|e| self.io(e))?;
        Ok(correlation_id)
    }

    /// Sends a request and reads its response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> Result<R::Response> {
        let correlation_id = self.send(req, version)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(|e| self.io(e))?;
        let len = i32::from_be_bytes(size);
        if len < 4 || len as usize > MAX_FRAME_BYTES {
            return Err(AdminError::Protocol(format!(
                "{} sent a response frame of {len} bytes",
                self.addr
            )));
        }
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body).map_err(|e| self.io(e))?;
        let mut body = Bytes::from(body);
        let got = (&body[..4]).get_i32();
        if got != correlation_id {
            return Err(AdminError::Protocol(format!(
                "{} answered correlation id {got}, expected {correlation_id}",
                self.addr
            )));
        }
        let hv = <R::Response as HeaderVersion>::header_version(version);
        ResponseHeader::decode(&mut body, hv).map_err(AdminError::protocol)?;
        R::Response::decode(&mut body, version).map_err(|e| {
            AdminError::Protocol(format!("decoding response to API key {}: {e:#}", R::KEY))
        })
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub fn send_only<R: Request>(&mut self, req: &R, version: i16) -> Result<()> {
        self.send(req, version).map(|_| ())
    }
}

/// The version of `key` to speak, given the broker's range (`None`: it lacks the API).
fn pick_version(
    addr: &str,
    key: ApiKey,
    broker: Option<(i16, i16)>,
    oldest: i16,
    preferred: i16,
) -> Result<i16> {
    let Some((min, max)) = broker else {
        return Err(AdminError::Unsupported(format!(
            "broker {addr} does not support {key:?}"
        )));
    };
    let v = preferred.min(max);
    if v < oldest.max(min) {
        return Err(AdminError::Unsupported(format!(
            "broker {addr} speaks {key:?} v{min}..=v{max}; weir-admin needs v{oldest}..=v{preferred}"
        )));
    }
    Ok(v)
}

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerAddr {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The cluster: a bootstrap connection plus one connection per broker, opened when first needed.
pub struct Client {
    bootstrap: Conn,
    brokers: BTreeMap<i32, BrokerAddr>,
    conns: HashMap<i32, Conn>,
}

impl Client {
    /// Connects to the first of `bootstrap`'s comma-separated `host:port`s that answers (as
    /// Kafka's `--bootstrap-server` takes a list: one node down does not stop the tool); the
    /// error is the last one's.
    pub fn connect(bootstrap: &str) -> Result<Client> {
        let mut last = None;
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Conn::connect(addr) {
                Ok(conn) => {
                    return Ok(Client {
                        bootstrap: conn,
                        brokers: BTreeMap::new(),
                        conns: HashMap::new(),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            AdminError::Invalid(format!("no address in --bootstrap-server {bootstrap:?}"))
        }))
    }

    /// The bootstrap connection, for requests any broker answers.
    pub fn any(&mut self) -> &mut Conn {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (`None`: every topic), never creating topics. Remembers the brokers.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        self.metadata_request(topics, false)
    }

    /// Metadata that lets the broker create missing topics if its `auto.create.topics.enable`
    /// says so, as a Kafka producer asks for it.
    pub fn metadata_auto_create(&mut self, topics: &[String]) -> Result<MetadataResponse> {
        self.metadata_request(Some(topics), true)
    }

    fn metadata_request(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse> {
        let v = self.bootstrap.version(ApiKey::Metadata, 1, 12)?;
        let topics = topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(topic_name(n)))
                })
                .collect()
        });
        let req = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(auto_create);
        let resp = self.bootstrap.call(&req, v)?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerAddr {
                        node_id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        Ok(resp)
    }

    pub fn brokers(&self) -> &BTreeMap<i32, BrokerAddr> {
        &self.brokers
    }

    /// The connection to broker `node_id` (learned from the last Metadata), opened on first use.
    pub fn broker(&mut self, node_id: i32) -> Result<&mut Conn> {
        if !self.conns.contains_key(&node_id) {
            if !self.brokers.contains_key(&node_id) {
                self.metadata(Some(&[]))?;
            }
            let b = self.brokers.get(&node_id).ok_or_else(|| {
                AdminError::Protocol(format!("broker {node_id} is not in the cluster metadata"))
            })?;
            let conn = Conn::connect(&b.addr())?;
            self.conns.insert(node_id, conn);
        }
        Ok(self.conns.get_mut(&node_id).expect("inserted above"))
    }

    /// Forgets a broker connection that failed, so the next use reconnects.
    pub fn drop_broker(&mut self, node_id: i32) {
        self.conns.remove(&node_id);
    }

    /// The node id of `group`'s coordinator. COORDINATOR_NOT_AVAILABLE and
    /// COORDINATOR_LOAD_IN_PROGRESS are retried a bounded number of times (a broker creates
    /// `__consumer_offsets` on the first group request).
    pub fn coordinator_id(&mut self, group: &str) -> Result<i32> {
        use kafka_protocol::ResponseError as K;
        const ATTEMPTS: usize = 50;
        let v = self.bootstrap.version(ApiKey::FindCoordinator, 0, 4)?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let mut req = FindCoordinatorRequest::default().with_key_type(0);
            if v >= 4 {
                req = req.with_coordinator_keys(vec![sb(group)]);
            } else {
                req = req.with_key(sb(group));
            }
            let resp = self.bootstrap.call(&req, v)?;
            let (code, msg, node, host, port) = if v >= 4 {
                let c = resp.coordinators.first().ok_or_else(|| {
                    AdminError::Protocol("FindCoordinator answered no coordinator".into())
                })?;
                (
                    c.error_code,
                    c.error_message.as_ref().map(|m| m.to_string()),
                    c.node_id,
                    c.host.to_string(),
                    c.port,
                )
            } else {
                (
                    resp.error_code,
                    resp.error_message.as_ref().map(|m| m.to_string()),
                    resp.node_id,
                    resp.host.to_string(),
                    resp.port,
                )
            };
            let result = check(code, msg.as_deref(), || {
                format!("find the coordinator of group {group}")
            });
            match result {
                Ok(()) => {
                    let BrokerId(id) = node;
                    self.brokers.entry(id).or_insert(BrokerAddr {
                        node_id: id,
                        host,
                        port,
                        rack: None,
                    });
                    return Ok(id);
                }
                Err(e)
                    if matches!(
                        e.kafka_error(),
                        Some(K::CoordinatorNotAvailable | K::CoordinatorLoadInProgress)
                    ) =>
                {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The connection to `group`'s coordinator.
    pub fn coordinator(&mut self, group: &str) -> Result<&mut Conn> {
        let id = self.coordinator_id(group)?;
        self.broker(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_the_highest_both_sides_speak() {
        let pick = |broker, oldest, preferred| {
            pick_version("b:9092", ApiKey::Fetch, broker, oldest, preferred)
        };
        assert_eq!(
            pick(Some((4, 16)), 4, 12).unwrap(),
            12,
            "capped at what we fill in"
        );
        assert_eq!(
            pick(Some((0, 7)), 4, 12).unwrap(),
            7,
            "capped at the broker's newest"
        );
        let too_old = pick(Some((0, 3)), 4, 12).unwrap_err().to_string();
        assert_eq!(
            too_old,
            "broker b:9092 speaks Fetch v0..=v3; weir-admin needs v4..=v12"
        );
        assert!(
            pick(Some((13, 16)), 4, 12).is_err(),
            "broker dropped the versions we speak"
        );
        assert_eq!(
            pick(None, 4, 12).unwrap_err().to_string(),
            "broker b:9092 does not support Fetch"
        );
    }
}
