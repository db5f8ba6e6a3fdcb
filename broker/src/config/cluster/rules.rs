//! Kafka's rules between `process.roles`, the controller quorum and the listeners (the KRaft
//! part of `KafkaConfig.validateValues`), plus the two Weir adds because it speaks PLAINTEXT
//! only: the controller and inter-broker listeners must be PLAINTEXT. Each broken rule stops the
//! start with an error naming the key to fix.

use super::voters::{BOOTSTRAP_SERVERS, VOTERS};
use super::ProcessRole;
use crate::config::parse::Reader;
use crate::config::{invalid, BrokerConfig, ConfigError, Listener, SecurityProtocol};

const NAMES: &str = "controller.listener.names";

impl BrokerConfig {
    /// Checks the cluster rules on a parsed configuration. `protocols` is the effective
    /// `listener.security.protocol.map`.
    pub(in crate::config) fn check_cluster(
        &self,
        r: &Reader<'_>,
        protocols: &[(String, SecurityProtocol)],
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let raw = |key: &'static str| r.raw(key).unwrap_or("");
        let roles = roles_text(&self.process_roles);
        let combined = self.is_broker() && self.is_controller();
        if !self.has_configured_quorum() && !combined {
            return Err(invalid(
                VOTERS,
                "",
                format!(
                    "process.roles={roles} needs the controller quorum: set {VOTERS} \
                     ({{id}}@{{host}}:{{port}},...) or {BOOTSTRAP_SERVERS}; only a node with \
                     both roles may leave them unset (a quorum of one, itself)"
                ),
            ));
        }
        let voter_ids: Vec<i32> = self
            .cluster
            .controller_quorum_voters
            .iter()
            .map(|v| v.id)
            .collect();
        if self.is_controller() {
            self.check_controller(&roles, &voter_ids, raw(VOTERS), raw(NAMES), warnings)?;
        } else {
            self.check_broker_only(&voter_ids, raw(VOTERS), raw(NAMES), protocols, warnings)?;
        }
        if self.is_broker() {
            self.check_broker_listeners(r, protocols)?;
        }
        Ok(())
    }

    fn is_controller_listener(&self, l: &Listener) -> bool {
        self.controller_listener_names.contains(&l.name)
    }

    /// A node with the controller role: a voter, listening on its controller listeners.
    fn check_controller(
        &self,
        roles: &str,
        voter_ids: &[i32],
        voters_raw: &str,
        names_raw: &str,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let id = self.node_id;
        if !voter_ids.is_empty() && !voter_ids.contains(&id) {
            return Err(invalid(
                VOTERS,
                voters_raw,
                format!(
                    "process.roles={roles} has the controller role, so node.id {id} must be one \
                     of the voters (ids {voter_ids:?})"
                ),
            ));
        }
        for name in &self.controller_listener_names {
            if !self.listeners.iter().any(|l| l.name == *name) {
                return Err(invalid(
                    NAMES,
                    names_raw,
                    format!(
                        "{name} is not a listener of listeners: a node with the controller role \
                         must listen on each controller listener"
                    ),
                ));
            }
        }
        let Some(own) = self.controller_listener() else {
            if self.has_configured_quorum() {
                return Err(invalid(
                    NAMES,
                    names_raw,
                    format!(
                        "must name at least one listener of listeners when process.roles={roles} \
                         and the quorum ({VOTERS} or {BOOTSTRAP_SERVERS}) is set"
                    ),
                ));
            }
            return Ok(());
        };
        if let Some(l) = self.listeners.iter().find(|l| {
            self.is_controller_listener(l) && l.security_protocol != SecurityProtocol::Plaintext
        }) {
            return Err(invalid(
                NAMES,
                names_raw,
                format!(
                    "controller listener {l} uses {}; Weir's controllers speak PLAINTEXT only",
                    l.security_protocol
                ),
            ));
        }
        if !self.is_broker() {
            if let Some(l) = self
                .listeners
                .iter()
                .find(|l| !self.is_controller_listener(l))
            {
                return Err(invalid(
                    "listeners",
                    &self.listeners_text(),
                    format!(
                        "must only contain controller listeners ({NAMES}) when \
                         process.roles=controller; {l} is not one"
                    ),
                ));
            }
        }
        let voter = self
            .cluster
            .controller_quorum_voters
            .iter()
            .find(|v| v.id == id);
        if let Some(voter) = voter {
            let advertised = self.advertised_controller_listener().unwrap_or(own);
            if advertised.port != 0 && advertised.port != voter.port {
                warnings.push(format!(
                    "{VOTERS} gives this node ({id}) port {}, but its controller listener is \
                     {advertised}: the other voters will not reach it unless something forwards \
                     the port",
                    voter.port
                ));
            }
        }
        Ok(())
    }

    /// A node with only the broker role: not a voter, and it reaches the controllers over a
    /// listener it does not bind.
    fn check_broker_only(
        &self,
        voter_ids: &[i32],
        voters_raw: &str,
        names_raw: &str,
        protocols: &[(String, SecurityProtocol)],
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let id = self.node_id;
        if voter_ids.contains(&id) {
            return Err(invalid(
                VOTERS,
                voters_raw,
                format!("node.id {id} is a voter, but process.roles=broker has no controller role"),
            ));
        }
        let Some(first) = self.controller_listener_names.first() else {
            return Err(invalid(
                NAMES,
                names_raw,
                "must name the controllers' listener when process.roles=broker",
            ));
        };
        if let Some(l) = self
            .listeners
            .iter()
            .find(|l| self.is_controller_listener(l))
        {
            return Err(invalid(
                "listeners",
                &self.listeners_text(),
                format!(
                    "must not contain the controller listener {l} when process.roles=broker (the \
                     controllers serve it)"
                ),
            ));
        }
        for name in &self.controller_listener_names {
            match protocols.iter().find(|(n, _)| n == name) {
                None => {
                    return Err(invalid(
                        NAMES,
                        names_raw,
                        format!(
                            "controller listener {name} is not in listener.security.protocol.map \
                             (each controller listener needs an explicit mapping when the map is \
                             set)"
                        ),
                    ))
                }
                Some((_, p)) if *p != SecurityProtocol::Plaintext && name == first => {
                    return Err(invalid(
                        NAMES,
                        names_raw,
                        format!(
                            "controller listener {name} uses {p}; Weir's controllers speak \
                             PLAINTEXT only"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if self.controller_listener_names.len() > 1 {
            warnings.push(format!(
                "{NAMES} has several entries; a node with process.roles=broker uses only the \
                 first, {first}"
            ));
        }
        Ok(())
    }

    /// A node with the broker role: a client listener, and an inter-broker listener that the
    /// other brokers can be told about.
    fn check_broker_listeners(
        &self,
        r: &Reader<'_>,
        protocols: &[(String, SecurityProtocol)],
    ) -> Result<(), ConfigError> {
        if self.client_listener().is_none() {
            return Err(invalid(
                "listeners",
                &self.listeners_text(),
                "Weir needs a PLAINTEXT listener that is not a controller listener",
            ));
        }
        let name = &self.cluster.inter_broker_listener_name;
        let (key, value) = match r.props.get("inter.broker.listener.name") {
            Some(v) if !v.is_empty() => ("inter.broker.listener.name", v),
            _ => (
                "security.inter.broker.protocol",
                r.raw("security.inter.broker.protocol").unwrap_or(""),
            ),
        };
        let Some((_, protocol)) = protocols.iter().find(|(n, _)| n == name) else {
            return Err(invalid(
                key,
                value,
                format!("listener {name} is not defined in listener.security.protocol.map"),
            ));
        };
        let advertised: Vec<&str> = self
            .advertised_listeners
            .iter()
            .filter(|l| !self.is_controller_listener(l))
            .map(|l| l.name.as_str())
            .collect();
        if !advertised.contains(&name.as_str()) {
            return Err(invalid(
                key,
                value,
                format!(
                    "the inter-broker listener {name} must be a listener name defined in \
                     advertised.listeners (or listeners, when that is unset) and not a controller \
                     listener; the valid options are {}",
                    advertised.join(",")
                ),
            ));
        }
        if *protocol != SecurityProtocol::Plaintext {
            return Err(invalid(
                key,
                value,
                format!("the inter-broker listener {name} uses {protocol}; Weir replicates over PLAINTEXT only"),
            ));
        }
        Ok(())
    }

    fn listeners_text(&self) -> String {
        let all: Vec<String> = self.listeners.iter().map(|l| l.to_string()).collect();
        all.join(",")
    }
}

/// Roles as `process.roles` lists them, for messages.
fn roles_text(roles: &[ProcessRole]) -> String {
    let names: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::tests::{broker, broker_err};

    /// The error for `text`, checked to name `key` as the value to fix.
    fn refused(text: &str, key: &str) -> String {
        let e = broker_err(text);
        assert!(e.contains(&format!("for {key}:")), "{text}: {e}");
        e
    }

    const COMBINED_2: &str = "node.id=2\ncontroller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093\n\
         listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n";
    const BROKER_4: &str = "node.id=4\nprocess.roles=broker\n\
         controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093\n\
         listeners=PLAINTEXT://:9092\ncontroller.listener.names=CONTROLLER\n";
    const CONTROLLER_1: &str = "node.id=1\nprocess.roles=controller\n\
         controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093\n\
         listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n";

    #[test]
    fn kafkas_stock_kraft_file_loads() {
        let (c, w) = broker(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@localhost:9093\n\
             listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://localhost:9092\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL\n\
             num.network.threads=3\nlog.dirs=/tmp/kraft-combined-logs\n\
             offsets.topic.replication.factor=1\nlog.retention.hours=168\n",
        );
        assert!(w.iter().all(|w| !w.starts_with("unknown")), "{w:?}");
        assert_eq!(c.client_listener().unwrap().bind_addr(), "0.0.0.0:9092");
        assert_eq!(
            c.advertised_client_listener().unwrap().to_string(),
            "PLAINTEXT://localhost:9092"
        );
        assert_eq!(c.voters(), c.cluster.controller_quorum_voters);
        assert_eq!(c.voters()[0].to_string(), "1@localhost:9093");
        assert_eq!(c.controller_listener().unwrap().port, 9093);
        assert_eq!(c.log_dir(), Path::new("/tmp/kraft-combined-logs"));
        // The controller listener is opened by the controller: no warning about it.
        assert!(!w.iter().any(|w| w.contains("CONTROLLER://:9093")), "{w:?}");
    }

    #[test]
    fn a_single_node_needs_no_quorum_and_no_controller_listener() {
        let (c, w) = broker("listeners=PLAINTEXT://127.0.0.1:9092");
        assert!(w.is_empty(), "{w:?}");
        assert!(!c.has_configured_quorum());
        assert_eq!(c.voters().len(), 1);
        // A controller listener may be given, and is then this voter's address.
        let (c, _) = broker(
            "listeners=PLAINTEXT://:9092,CONTROLLER://h:9093\ncontroller.listener.names=CONTROLLER",
        );
        assert_eq!(c.voters()[0].to_string(), "1@h:9093");
    }

    #[test]
    fn only_a_combined_node_may_leave_the_quorum_unset() {
        let e = refused("process.roles=broker", "controller.quorum.voters");
        assert!(
            e.contains("process.roles=broker needs the controller quorum"),
            "{e}"
        );
        let e = refused(
            "process.roles=controller\nlisteners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER",
            "controller.quorum.voters",
        );
        assert!(e.contains("process.roles=controller needs"), "{e}");
    }

    #[test]
    fn a_combined_voter() {
        let (c, w) = broker(COMBINED_2);
        assert!(w.is_empty(), "{w:?}"); // the controller listener is opened, no warning
        assert!(c.is_broker() && c.is_controller());
        assert_eq!(c.voters().len(), 3);
        // Its node id must be a voter.
        let e = refused(
            &COMBINED_2.replace("node.id=2", "node.id=5"),
            "controller.quorum.voters",
        );
        assert!(
            e.contains("node.id 5 must be one of the voters (ids [1, 2, 3])"),
            "{e}"
        );
        // It must listen on every controller listener...
        let e = refused(
            &COMBINED_2.replace("names=CONTROLLER", "names=CONTROLLER,CTL2"),
            "controller.listener.names",
        );
        assert!(e.contains("CTL2 is not a listener of listeners"), "{e}");
        // ...and have one once the quorum is set.
        let e = refused(
            &COMBINED_2
                .replace("controller.listener.names=CONTROLLER\n", "")
                .replace(",CONTROLLER://:9093", ""),
            "controller.listener.names",
        );
        assert!(
            e.contains("must name at least one listener of listeners"),
            "{e}"
        );
        // PLAINTEXT only.
        let e = refused(
            &format!(
                "{COMBINED_2}listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
            ),
            "controller.listener.names",
        );
        assert!(e.contains("PLAINTEXT only"), "{e}");
        // A voter entry whose port is not its controller listener's is most likely a typo.
        let (_, w) = broker(&COMBINED_2.replace("2@h2:9093", "2@h2:9095"));
        assert!(w.iter().any(|w| w.contains("port 9095")), "{w:?}");
    }

    #[test]
    fn a_controller_only_node() {
        let (c, w) = broker(CONTROLLER_1);
        assert!(w.is_empty(), "{w:?}");
        assert!(c.is_controller() && !c.is_broker());
        assert_eq!(c.client_listener(), None);
        assert_eq!(c.inter_broker_listener(), None);
        assert_eq!(c.controller_listener().unwrap().port, 9093);
        // Only controller listeners.
        let e = refused(
            &CONTROLLER_1.replace(
                "listeners=CONTROLLER://:9093",
                "listeners=CONTROLLER://:9093,PLAINTEXT://:9092",
            ),
            "listeners",
        );
        assert!(e.contains("must only contain controller listeners"), "{e}");
        refused(
            &CONTROLLER_1.replace("node.id=1", "node.id=4"),
            "controller.quorum.voters",
        );
    }

    #[test]
    fn a_broker_only_node() {
        let (c, w) = broker(BROKER_4);
        assert!(w.is_empty(), "{w:?}");
        assert!(c.is_broker() && !c.is_controller());
        assert_eq!(c.controller_listener(), None);
        assert_eq!(c.controller_listener_name(), Some("CONTROLLER"));
        assert_eq!(c.voters().len(), 3);
        assert_eq!(c.client_listener().unwrap().port, 9092);
        // Not a voter.
        let e = refused(
            &BROKER_4.replace("node.id=4", "node.id=3"),
            "controller.quorum.voters",
        );
        assert!(e.contains("node.id 3 is a voter"), "{e}");
        // It must know the controllers' listener, and not bind it.
        refused(
            &BROKER_4.replace("controller.listener.names=CONTROLLER\n", ""),
            "controller.listener.names",
        );
        let e = refused(
            &BROKER_4.replace(
                "listeners=PLAINTEXT://:9092",
                "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            ),
            "listeners",
        );
        assert!(
            e.contains("must not contain the controller listener"),
            "{e}"
        );
        // With an explicit map, the controller listener needs its entry.
        let e = refused(
            &format!("{BROKER_4}listener.security.protocol.map=PLAINTEXT:PLAINTEXT"),
            "controller.listener.names",
        );
        assert!(e.contains("not in listener.security.protocol.map"), "{e}");
        // Several names: the first is used, as Kafka warns.
        let (_, w) = broker(&BROKER_4.replace("names=CONTROLLER", "names=CONTROLLER,CTL2"));
        assert!(
            w.iter()
                .any(|w| w.contains("uses only the first, CONTROLLER")),
            "{w:?}"
        );
        // A dynamic quorum (KIP-853) is accepted and parsed.
        let (c, _) = broker(&BROKER_4.replace(
            "controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093",
            "controller.quorum.bootstrap.servers=h1:9093,h2:9093",
        ));
        assert_eq!(c.cluster.controller_quorum_bootstrap_servers.len(), 2);
        assert!(c.voters().is_empty());
    }

    #[test]
    fn a_broker_needs_its_client_and_inter_broker_listeners() {
        let e = refused("listeners=SSL://:1", "listeners");
        assert!(e.contains("PLAINTEXT listener"), "{e}");
        // The default inter-broker listener, PLAINTEXT, must exist.
        let e = refused(
            "listeners=CLIENT://:9092\nlistener.security.protocol.map=CLIENT:PLAINTEXT",
            "security.inter.broker.protocol",
        );
        assert!(
            e.contains("PLAINTEXT is not defined in listener.security.protocol.map"),
            "{e}"
        );
        let e = refused(
            "listeners=CLIENT://:9092\nlistener.security.protocol.map=CLIENT:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "security.inter.broker.protocol",
        );
        assert!(e.contains("the valid options are CLIENT"), "{e}");
        refused(
            "inter.broker.listener.name=INTERNAL",
            "inter.broker.listener.name",
        );
        // It must be advertised when advertised.listeners is set...
        let text = "listeners=PLAINTEXT://:9092,INTERNAL://:9192\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT\n\
             inter.broker.listener.name=INTERNAL\nadvertised.listeners=PLAINTEXT://h:9092";
        refused(text, "inter.broker.listener.name");
        // ...and may not be a controller listener...
        refused(
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=CONTROLLER",
            "inter.broker.listener.name",
        );
        // ...nor anything but PLAINTEXT.
        let e = refused(
            "listeners=PLAINTEXT://:9092,SSL://:9093\nsecurity.inter.broker.protocol=SSL",
            "security.inter.broker.protocol",
        );
        assert!(e.contains("PLAINTEXT only"), "{e}");
        // A separate inter-broker listener, advertised.
        let (c, _) =
            broker(&text.replace("PLAINTEXT://h:9092", "PLAINTEXT://h:9092,INTERNAL://i:9192"));
        assert_eq!(
            c.advertised_inter_broker_listener().unwrap().to_string(),
            "INTERNAL://i:9192"
        );
    }
}
