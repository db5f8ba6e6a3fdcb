//! One Kafka connection on a glommio executor: length-prefixed frames, a writer task fed through
//! a bounded queue (so callers feel backpressure), a reader task that matches responses to
//! requests by correlation id, and any number of requests in flight at once.

use super::oneshot;
use anyhow::{anyhow, bail, Context};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::TcpStream;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

const CLIENT_ID: &str = "weir-bench";
/// Frames waiting for the socket before `send` waits: the per-connection write queue.
const WRITE_QUEUE: usize = 64;
/// Longest a request waits for its response before it fails (the broker's own timeouts, such as
/// a produce timeout, are shorter).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest response frame accepted.
const MAX_FRAME: usize = 256 << 20;

type Pending = HashMap<i32, (i16, oneshot::Sender<Bytes>)>;

struct Shared {
    pending: RefCell<Pending>,
    /// Why the connection stopped, once it has.
    failed: RefCell<Option<String>>,
}

/// A connection to one broker. Cheap to share between tasks of the same executor via `Rc`.
pub struct Conn {
    addr: String,
    frames: LocalSender<Vec<u8>>,
    shared: Rc<Shared>,
    next_correlation: Cell<i32>,
    /// The broker's (min, max) version per API key, from ApiVersions.
    versions: HashMap<i16, (i16, i16)>,
}

impl Conn {
    /// Connects, starts the reader and writer tasks, and negotiates API versions.
    pub async fn connect(addr: &str) -> anyhow::Result<Rc<Conn>> {
        let stream = TcpStream::connect_timeout(addr, Duration::from_secs(10))
            .await
            .map_err(|e| anyhow!("connecting to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| anyhow!("TCP_NODELAY: {e}"))?;
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let (frames, rx) = local_channel::new_bounded::<Vec<u8>>(WRITE_QUEUE);
        let shared = Rc::new(Shared {
            pending: RefCell::new(HashMap::new()),
            failed: RefCell::new(None),
        });

        let s = shared.clone();
        glommio::spawn_local(async move {
            while let Some(frame) = rx.recv().await {
                if let Err(e) = writer.write_all(&frame).await {
                    s.fail(format!("write: {e}"));
                    return;
                }
            }
            let _ = writer.close().await;
        })
        .detach();

        let s = shared.clone();
        let peer = addr.to_string();
        glommio::spawn_local(async move {
            let why = match read_loop(&mut reader, &s).await {
                Ok(()) => format!("connection to {peer} closed by the broker"),
                Err(e) => format!("connection to {peer}: {e:#}"),
            };
            s.fail(why);
        })
        .detach();

        let mut conn = Conn {
            addr: addr.to_string(),
            frames,
            shared,
            next_correlation: Cell::new(1),
            versions: HashMap::new(),
        };
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let resp: ApiVersionsResponse = conn.call_at(req, 3).await?;
        if let Some(e) = kafka_protocol::ResponseError::try_from_code(resp.error_code) {
            bail!("ApiVersions from {addr}: {e}");
        }
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(Rc::new(conn))
    }

    /// The version to use for `key`: the highest both sides speak, capped at `preferred`
    /// (the newest layout this client fills in) and at least `oldest` (the oldest it can use).
    pub fn version(&self, key: ApiKey, oldest: i16, preferred: i16) -> anyhow::Result<i16> {
        let (min, max) = *self
            .versions
            .get(&(key as i16))
            .ok_or_else(|| anyhow!("{} does not support {key:?}", self.addr))?;
        let v = preferred.min(max);
        if v < oldest.max(min) {
            bail!(
                "{} supports {key:?} v{min}..=v{max}, this client needs v{oldest}..=v{preferred}",
                self.addr
            );
        }
        Ok(v)
    }

    fn frame<R: Request>(&self, req: &R, version: i16) -> anyhow::Result<(i32, Vec<u8>)> {
        let correlation_id = self.next_correlation.get();
        self.next_correlation.set(correlation_id.wrapping_add(1));
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let hv = R::header_version(version);
        let size = header.compute_size(hv)? + req.compute_size(version)?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size as i32);
        header.encode(&mut buf, hv)?;
        req.encode(&mut buf, version)?;
        Ok((correlation_id, buf.to_vec()))
    }

    fn check_open(&self) -> anyhow::Result<()> {
        if let Some(why) = self.shared.failed.borrow().as_ref() {
            bail!("{why}");
        }
        Ok(())
    }

    /// Sends a request at `version` and waits for its response. Many calls may be in flight.
    pub async fn call_at<R: Request>(&self, req: R, version: i16) -> anyhow::Result<R::Response> {
        self.check_open()?;
        let (correlation_id, frame) = self.frame(&req, version)?;
        drop(req);
        let (tx, rx) = oneshot::channel();
        let response_header = <R::Response as HeaderVersion>::header_version(version);
        self.shared
            .pending
            .borrow_mut()
            .insert(correlation_id, (response_header, tx));
        if self.frames.send(frame).await.is_err() {
            self.shared.pending.borrow_mut().remove(&correlation_id);
            self.check_open()?;
            bail!("connection to {} is closed", self.addr);
        }
        let waited = futures_lite::future::or(async { Ok(rx.await) }, async {
            glommio::timer::sleep(RESPONSE_TIMEOUT).await;
            Err(())
        })
        .await;
        let mut body = match waited {
            Ok(Some(body)) => body,
            Ok(None) => {
                self.check_open()?;
                bail!("connection to {} closed", self.addr);
            }
            Err(()) => {
                self.shared.pending.borrow_mut().remove(&correlation_id);
                bail!(
                    "no response from {} to API key {} within {RESPONSE_TIMEOUT:?}",
                    self.addr,
                    R::KEY
                );
            }
        };
        let resp = R::Response::decode(&mut body, version)
            .with_context(|| format!("decoding response to API key {}", R::KEY))?;
        Ok(resp)
    }

    /// Sends a request that gets no response (Produce with acks=0). Returns once it is queued.
    pub async fn send_only<R: Request>(&self, req: R, version: i16) -> anyhow::Result<()> {
        self.check_open()?;
        let (_, frame) = self.frame(&req, version)?;
        if self.frames.send(frame).await.is_err() {
            self.check_open()?;
            bail!("connection to {} is closed", self.addr);
        }
        Ok(())
    }
}

impl Shared {
    fn fail(&self, why: String) {
        let mut f = self.failed.borrow_mut();
        if f.is_none() {
            *f = Some(why);
        }
        drop(f);
        // Dropping the senders wakes every waiting caller with "closed".
        let pending: Vec<_> = self.pending.borrow_mut().drain().collect();
        drop(pending);
    }
}

async fn read_loop<R: futures_lite::AsyncRead + Unpin>(
    reader: &mut R,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut size = [0u8; 4];
    loop {
        match reader.read_exact(&mut size).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let len = i32::from_be_bytes(size);
        if len < 4 || len as usize > MAX_FRAME {
            bail!("bad response frame size {len}");
        }
        let mut body = vec![0u8; len as usize];
        reader.read_exact(&mut body).await?;
        let mut body = Bytes::from(body);
        let correlation_id = (&body[..4]).get_i32();
        let Some((header_version, tx)) = shared.pending.borrow_mut().remove(&correlation_id) else {
            continue; // the late answer to a request that timed out
        };
        ResponseHeader::decode(&mut body, header_version).context("response header")?;
        tx.send(body);
    }
}
