//! `controller.quorum.voters` (`id@host:port,...`) and `controller.quorum.bootstrap.servers`
//! (`host:port,...`, KIP-853), parsed strictly: a quorum is the one setting a typo in which
//! splits a cluster, so anything Kafka would only trip over later is refused at start.

use std::fmt;

use crate::config::listeners::split_host_port;
use crate::config::{csv, invalid, ConfigError};

pub(crate) const VOTERS: &str = "controller.quorum.voters";
pub(crate) const BOOTSTRAP_SERVERS: &str = "controller.quorum.bootstrap.servers";

/// One voter of the controller quorum: its node id and the address of its controller listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// The voter's `node.id`.
    pub id: i32,
    /// A host name or IP address (IPv6 without brackets); never empty or a meta-address.
    pub host: String,
    /// 1 to 65535.
    pub port: u16,
}

impl Voter {
    /// The address to connect to, e.g. `10.0.0.1:9093` or `[::1]:9093`.
    pub fn addr(&self) -> String {
        host_port(&self.host, self.port)
    }
}

impl fmt::Display for Voter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.addr())
    }
}

/// One `controller.quorum.bootstrap.servers` entry: where a node asks for the quorum's voters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&host_port(&self.host, self.port))
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A host and port another node can connect to: Kafka's `{host}:{port}` with a non-empty,
/// routable host and a port that is not 0.
fn routable(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = split_host_port(addr).map_err(str::to_owned)?;
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    if host == "0.0.0.0" || host == "::" {
        return Err(format!("{host} is not routable"));
    }
    if port == 0 {
        return Err("port must be 1-65535".to_owned());
    }
    Ok((host.to_owned(), port))
}

/// Parses `controller.quorum.voters`. Kafka's own parse keeps the last of two entries with one
/// id; Weir refuses both that and two ids at one address, since either leaves the quorum
/// different from what each node believes it is.
pub(crate) fn parse_voters(raw: &str) -> Result<Vec<Voter>, ConfigError> {
    let mut voters: Vec<Voter> = Vec::new();
    for item in csv(raw) {
        let bad = |why: String| invalid(VOTERS, raw, format!("{item:?}: {why}"));
        let form = "each entry should be in the form {id}@{host}:{port}";
        let Some((id, addr)) = item.split_once('@').filter(|(_, a)| !a.contains('@')) else {
            return Err(bad(form.to_owned()));
        };
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| {
                bad(format!(
                    "the voter id must be a node id (0 or more); {form}"
                ))
            })?;
        let (host, port) = routable(addr.trim()).map_err(|why| bad(format!("{why}; {form}")))?;
        if voters.iter().any(|v| v.id == id) {
            return Err(bad(format!("voter id {id} is listed twice")));
        }
        if let Some(other) = voters.iter().find(|v| v.host == host && v.port == port) {
            return Err(bad(format!(
                "voters {} and {id} have the same address",
                other.id
            )));
        }
        voters.push(Voter { id, host, port });
    }
    Ok(voters)
}

/// Parses `controller.quorum.bootstrap.servers` (KIP-853).
pub(crate) fn parse_bootstrap_servers(raw: &str) -> Result<Vec<HostPort>, ConfigError> {
    csv(raw)
        .map(|item| {
            let (host, port) = routable(item).map_err(|why| {
                invalid(
                    BOOTSTRAP_SERVERS,
                    raw,
                    format!("{item:?}: {why}; each entry should be in the form {{host}}:{{port}}"),
                )
            })?;
            Ok(HostPort { host, port })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_parse_ids_hosts_and_ports() {
        let v = parse_voters(" 1@localhost:9093 , 2@[::1]:9095,3@10.0.0.3:9097").unwrap();
        assert_eq!(
            v[0],
            Voter {
                id: 1,
                host: "localhost".into(),
                port: 9093
            }
        );
        assert_eq!(v[1].host, "::1");
        assert_eq!(v[1].addr(), "[::1]:9095");
        assert_eq!(v[1].to_string(), "2@[::1]:9095");
        assert_eq!(v[2].to_string(), "3@10.0.0.3:9097");
        assert!(parse_voters("").unwrap().is_empty());
    }

    #[test]
    fn voters_parse_strictly() {
        for (raw, why) in [
            ("localhost:9093", "{id}@{host}:{port}"),
            ("1@2@h:1", "{id}@{host}:{port}"),
            ("x@h:1", "node id"),
            ("-1@h:1", "node id"),
            ("1@h", "host:port"),
            ("1@:9093", "host is missing"),
            ("1@0.0.0.0:9093", "not routable"),
            ("1@h:0", "1-65535"),
            ("1@h:65536", "0-65535"),
            ("1@h o:1", "host:port"),
            ("1@a:1,1@b:2", "listed twice"),
            ("1@a:1,2@a:1", "same address"),
        ] {
            let e = parse_voters(raw).unwrap_err().to_string();
            assert!(e.contains(VOTERS), "{raw}: {e}");
            assert!(e.contains(why), "{raw}: {e}");
        }
    }

    #[test]
    fn bootstrap_servers_parse() {
        let b = parse_bootstrap_servers("localhost:9093,[::1]:9095").unwrap();
        assert_eq!(b[0].to_string(), "localhost:9093");
        assert_eq!(b[1].to_string(), "[::1]:9095");
        for raw in ["localhost", "1@localhost:9093", ":9093", "h:0", "0.0.0.0:1"] {
            let e = parse_bootstrap_servers(raw).unwrap_err().to_string();
            assert!(e.contains(BOOTSTRAP_SERVERS), "{raw}: {e}");
        }
    }
}
