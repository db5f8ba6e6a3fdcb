//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`: parsed as Kafka
//! parses them, with the listener Weir serves clients on.

use std::fmt;
use std::str::FromStr;

use super::parse::Reader;
use super::{csv, invalid, ConfigError};

/// Kafka's `SecurityProtocol`; Weir serves only `PLAINTEXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl FromStr for SecurityProtocol {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(Self::Plaintext),
            "SSL" => Ok(Self::Ssl),
            "SASL_PLAINTEXT" => Ok(Self::SaslPlaintext),
            "SASL_SSL" => Ok(Self::SaslSsl),
            _ => Err(()),
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        })
    }
}

/// One `NAME://host:port` entry of `listeners` / `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Upper-cased, as Kafka normalises listener names.
    pub name: String,
    /// Empty means every interface (when binding) or the machine's hostname (when advertising).
    pub host: String,
    pub port: u16,
    /// From `listener.security.protocol.map`.
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// The address to bind, e.g. `0.0.0.0:9092` or `[::1]:9092`.
    pub fn bind_addr(&self) -> String {
        match self.host.as_str() {
            "" => format!("0.0.0.0:{}", self.port),
            h if h.contains(':') => format!("[{h}]:{}", self.port),
            h => format!("{h}:{}", self.port),
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// Splits `host:port` or `[host]:port` as Kafka's `Utils.getHost`/`getPort` do. The host may be
/// empty (a listener on every interface); its characters are those Kafka's host pattern allows.
pub(super) fn split_host_port(addr: &str) -> Result<(&str, u16), &'static str> {
    let (host, port) = match addr.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").ok_or("expected [host]:port")?,
        None => addr.rsplit_once(':').ok_or("expected host:port")?,
    };
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-%._:".contains(c))
    {
        return Err("expected host:port");
    }
    let port = port.parse().map_err(|_| "port must be 0-65535")?;
    Ok((host, port))
}

/// Parses `NAME://host:port[,...]` into (name, host, port), as Kafka's listener regex does.
fn parse_endpoints(key: &str, raw: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out: Vec<(String, String, u16)> = Vec::new();
    for item in csv(raw) {
        let bad = |why: &str| invalid(key, raw, format!("{item:?}: {why}"));
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        if name.is_empty() {
            return Err(bad("expected NAME://host:port"));
        }
        let (host, port) = split_host_port(addr).map_err(|why| match why {
            "expected host:port" => bad("expected NAME://host:port"),
            why => bad(why),
        })?;
        let name = name.to_ascii_uppercase();
        if out.iter().any(|(n, _, _)| *n == name) {
            return Err(bad("each listener must have a different name"));
        }
        out.push((name, host.to_owned(), port));
    }
    if out.is_empty() {
        return Err(invalid(key, raw, "expected at least one NAME://host:port"));
    }
    Ok(out)
}

/// `listeners` and `advertised.listeners` with their security protocols, and the map they come
/// from (which the cluster rules also consult for listeners this node does not bind).
pub(super) struct Resolved {
    pub(super) listeners: Vec<Listener>,
    pub(super) advertised: Vec<Listener>,
    /// The effective `listener.security.protocol.map`, names upper-cased.
    pub(super) protocols: Vec<(String, SecurityProtocol)>,
}

/// Kafka's `listener.security.protocol.map`, with its KRaft rule: when the map is left at its
/// default and nothing uses SSL or SASL, each controller listener maps to PLAINTEXT.
fn protocol_map(
    r: &Reader<'_>,
    controller_names: &[String],
) -> Result<Vec<(String, SecurityProtocol)>, ConfigError> {
    let map_raw = r.required(MAP)?;
    let mut map: Vec<(String, SecurityProtocol)> = Vec::new();
    for item in csv(map_raw) {
        let (name, proto) = item
            .split_once(':')
            .and_then(|(n, p)| Some((n.trim(), p.trim().parse().ok()?)))
            .ok_or_else(|| invalid(MAP, map_raw, format!("{item:?}: expected NAME:PROTOCOL")))?;
        map.push((name.to_ascii_uppercase(), proto));
    }
    let secured = |name: &str| {
        ["SSL", "SASL_PLAINTEXT", "SASL_SSL"].contains(&name.to_ascii_uppercase().as_str())
    };
    let listener_names = r
        .raw("listeners")
        .into_iter()
        .flat_map(csv)
        .filter_map(|l| l.split_once("://").map(|(name, _)| name));
    let uses_security =
        controller_names.iter().any(|n| secured(n)) || listener_names.into_iter().any(secured);
    if r.props.get(MAP).is_none() && !uses_security {
        for name in controller_names {
            if !map.iter().any(|(n, _)| n == name) {
                map.push((name.clone(), SecurityProtocol::Plaintext));
            }
        }
    }
    Ok(map)
}

const MAP: &str = "listener.security.protocol.map";

/// Parses the listeners and reports, as warnings, those Weir does not open. Which listeners a
/// node must have for its roles is checked with the other cluster rules
/// (`BrokerConfig::check_cluster`).
pub(super) fn resolve_listeners(
    r: &Reader<'_>,
    controller_names: &[String],
    warnings: &mut Vec<String>,
) -> Result<Resolved, ConfigError> {
    let map = protocol_map(r, controller_names)?;
    let listeners_raw = r.required("listeners")?;
    let mut listeners = Vec::new();
    for (name, host, port) in parse_endpoints("listeners", listeners_raw)? {
        let Some(&(_, security_protocol)) = map.iter().find(|(n, _)| *n == name) else {
            return Err(invalid(
                "listeners",
                listeners_raw,
                format!("no security protocol defined for listener {name} in {MAP}"),
            ));
        };
        listeners.push(Listener {
            name,
            host,
            port,
            security_protocol,
        });
    }
    let is_controller = |l: &Listener| controller_names.contains(&l.name);
    let client = listeners
        .iter()
        .find(|l| l.security_protocol == SecurityProtocol::Plaintext && !is_controller(l));
    if let Some(client) = client {
        // Controller listeners are opened by the controller (runtime/server.rs).
        for l in listeners
            .iter()
            .filter(|l| *l != client && !is_controller(l))
        {
            warnings.push(if l.security_protocol != SecurityProtocol::Plaintext {
                format!(
                    "listener {l} uses {}, which Weir does not support; it is not opened",
                    l.security_protocol
                )
            } else {
                format!("listener {l} is not opened: Weir serves clients on {client} only")
            });
        }
    }

    let advertised = match r.raw("advertised.listeners") {
        None => listeners
            .iter()
            .filter(|l| !is_controller(l))
            .cloned()
            .collect(),
        Some(raw) => {
            let mut out = Vec::new();
            for (name, host, port) in parse_endpoints("advertised.listeners", raw)? {
                let Some(bound) = listeners.iter().find(|l| l.name == name) else {
                    return Err(invalid(
                        "advertised.listeners",
                        raw,
                        format!("listener {name} is not defined in listeners"),
                    ));
                };
                if host == "0.0.0.0" || host == "::" {
                    return Err(invalid(
                        "advertised.listeners",
                        raw,
                        format!("cannot advertise the non-routable meta-address {host}"),
                    ));
                }
                out.push(Listener {
                    name,
                    host,
                    port,
                    security_protocol: bound.security_protocol,
                });
            }
            out
        }
    };
    Ok(Resolved {
        listeners,
        advertised,
        protocols: map,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{broker, broker_err};
    use super::*;

    #[test]
    fn listeners_parse_names_hosts_and_protocols() {
        let (c, w) = broker(
            "listeners=ssl://h:1,plaintext://[::1]:2,PLAINTEXT2://:3\n\
            listener.security.protocol.map=SSL:SSL,PLAINTEXT:PLAINTEXT,PLAINTEXT2:PLAINTEXT",
        );
        assert_eq!(c.listeners[0].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(c.client_listener().unwrap().bind_addr(), "[::1]:2");
        assert_eq!(
            c.client_listener().unwrap().to_string(),
            "PLAINTEXT://[::1]:2"
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(broker_err("listeners=FOO://:1").contains("no security protocol"));
        assert!(broker_err("listeners=SSL://:1").contains("PLAINTEXT listener"));
        assert!(broker_err("advertised.listeners=OTHER://h:1").contains("advertised.listeners"));
        assert!(broker_err("advertised.listeners=PLAINTEXT://0.0.0.0:1").contains("meta-address"));
        // Kafka maps controller listeners to PLAINTEXT when the map is left at its default.
        let (c, _) = broker(
            "listeners=PLAINTEXT://:1,CONTROLLER://:2\ncontroller.listener.names=CONTROLLER",
        );
        assert_eq!(
            c.listeners[1].security_protocol,
            SecurityProtocol::Plaintext
        );
        assert_eq!(c.advertised_listeners.len(), 1);
    }
}
