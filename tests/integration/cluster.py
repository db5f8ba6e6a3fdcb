"""Harness for multi-node tests: a Weir cluster of real processes on 127.0.0.1.

* `Cluster(workdir, layout)` writes one config file per node (Kafka's KRaft property names, as
  config/kraft/*.properties), each node on free loopback ports (a client port for brokers, a
  controller port for controllers), `weir.cores=1` each (CI machines have two cores), and
  starts them as separate processes.
* Readiness: a broker is ready once its client listener answers ApiVersions and Metadata lists
  it (it serves only once registered and unfenced); a controller-only node has no client
  listener, so its CONTROLLER listener is probed with ApiVersions.
* Node control by PID: `stop` (SIGTERM, bounded wait), `kill9`, `pause` (SIGSTOP), `resume`
  (SIGCONT), `start`, `restart`. Cleanup always kills what is left, by PID.
* `describe_quorum(addr)`: DescribeQuorum (api 55) written out by hand, as no Python client has
  it; `active_controller()` asks it of any live node.
* Partitions: `partition_state(addr, topic)` is one broker's Metadata answer for a partition
  (leader, leader epoch, replicas, ISR), asked of exactly that broker; `Cluster.partition()`
  asks any live broker, `Cluster.create_topic()` creates a topic and waits for full ISRs.
* `weir_admin(bootstrap, *args)`: weir-admin's JSON answer.

Every wait is bounded; nothing here asserts speed.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import NewTopic
from kafka.protocol.metadata import MetadataRequest

import helpers as h
import kwire
from conftest import REPO, READY_TIMEOUT_S, STOP_TIMEOUT_S, _die_with_parent, free_port, weir_bin

API_DESCRIBE_QUORUM = 55
METADATA_TOPIC = "__cluster_metadata"

# Settings every test cluster gets (Kafka's names). Sessions are shorter than Kafka's 9 s so
# fencing tests finish quickly; the ratio to the heartbeat is Kafka's (4.5 heartbeats).
BASE_CONFIG = {
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "2250",
    "weir.cores": "1",
}


class ClusterError(AssertionError):
    pass


def wait_until(what: str, check, timeout: float, interval: float = 0.1, detail=None):
    """Polls `check()` until it returns a truthy value (returned), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - a probe may fail while the cluster changes
            last_error = e
        if time.monotonic() >= deadline:
            extra = f"; last error: {last_error!r}" if last_error else ""
            more = f"\n{detail()}" if detail else ""
            raise ClusterError(f"{what}: not within {timeout:.0f} s{extra}{more}")
        time.sleep(interval)


@dataclass
class Node:
    node_id: int
    roles: list[str]
    workdir: Path
    client_port: int | None
    controller_port: int | None
    config: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @property
    def bootstrap(self) -> str | None:
        return f"127.0.0.1:{self.client_port}" if self.client_port else None

    @property
    def controller_addr(self) -> str | None:
        return f"127.0.0.1:{self.controller_port}" if self.controller_port else None

    @property
    def config_file(self) -> Path:
        return self.workdir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "weir.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def name(self) -> str:
        return f"node-{self.node_id}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_config(self):
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in self.config.items()))

    # -- process control ------------------------------------------------------------------
    def launch(self):
        """Starts the process; does not wait (a broker waits for the quorum, which needs the
        other voters running)."""
        if self.alive():
            raise ClusterError(f"{self.name} already running (pid {self.pid})")
        argv = [weir_bin(), "--config", str(self.config_file)]
        if not os.access(argv[0], os.X_OK):
            raise ClusterError(f"broker binary {argv[0]} not found (cargo build -p weir or WEIR_BIN)")
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== harness: start #{self.starts}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, preexec_fn=_die_with_parent)

    def ready(self) -> bool:
        """One readiness probe (raises while not ready)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise ClusterError(f"{self.name} exited with code {self.proc.returncode}\n"
                               f"--- log tail ---\n{self.log_tail()}")
        if self.is_broker:
            kwire.probe(self.bootstrap, timeout=2.0)
        else:
            with kwire.Conn(self.controller_addr, timeout=2.0) as c:
                err, _ = c.api_versions_v0()
                if err != kwire.NONE:
                    raise kwire.WireError(f"ApiVersions error {err}")
        return True

    def wait_ready(self, timeout: float = READY_TIMEOUT_S):
        def probe():
            if self.proc.poll() is not None:
                raise ClusterError(f"{self.name} exited with code {self.proc.returncode} before "
                                   f"becoming ready\n--- log tail ---\n{self.log_tail()}")
            try:
                return self.ready()
            except (OSError, kwire.WireError):
                return False
        wait_until(f"{self.name} ready", probe, timeout, detail=lambda: self.log_tail())

    def start(self, timeout: float = READY_TIMEOUT_S):
        self.launch()
        self.wait_ready(timeout)

    def send_signal(self, sig: int):
        if not self.alive():
            raise ClusterError(f"{self.name} is not running")
        os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signals the node and waits (bounded) for it to exit; its exit code. A node that does
        not exit in time is killed and the test fails."""
        if self.proc is None:
            raise ClusterError(f"{self.name} was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise ClusterError(f"{self.name} did not exit within {timeout:.0f} s of signal "
                                   f"{sig}; killed\n--- log tail ---\n{self.log_tail()}")
        return self.proc.returncode

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def pause(self):
        self.send_signal(signal.SIGSTOP)

    def resume(self):
        self.send_signal(signal.SIGCONT)

    def restart(self, sig: int = signal.SIGTERM, timeout: float = READY_TIMEOUT_S):
        rc = self.stop(sig)
        if sig == signal.SIGTERM and rc != 0:
            raise ClusterError(f"{self.name} exited with code {rc} on SIGTERM\n{self.log_tail()}")
        self.start(timeout)

    def cleanup(self):
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            p.send_signal(signal.SIGCONT)  # a paused node cannot act on SIGTERM
            p.kill()
            p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass

    # -- diagnostics ------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __repr__(self):
        return (f"<Node {self.node_id} {','.join(self.roles)} client={self.client_port} "
                f"controller={self.controller_port} pid={self.pid}>")


class Cluster:
    """Nodes of one cluster. `layout` maps node id to its roles, e.g.
    `{1: ["broker", "controller"], 2: [...], 3: [...]}` or three controllers and two brokers."""

    def __init__(self, workdir: Path, layout: dict[int, list[str]], overrides: dict | None = None,
                 cluster_id: str | None = None):
        self.workdir = Path(workdir)
        self.cluster_id = cluster_id or f"weir-it-{uuid.uuid4().hex[:8]}"
        self.nodes: dict[int, Node] = {}
        # Nodes started beside the cluster's own (e.g. a second process with a taken node.id).
        self.extra: list[Node] = []
        for node_id, roles in sorted(layout.items()):
            d = self.workdir / f"node-{node_id}"
            d.mkdir(parents=True, exist_ok=True)
            self.nodes[node_id] = Node(
                node_id, list(roles), d,
                client_port=free_port() if "broker" in roles else None,
                controller_port=free_port() if "controller" in roles else None)
        self.voters = ",".join(f"{n.node_id}@{n.controller_addr}"
                               for n in self.nodes.values() if n.is_controller)
        for n in self.nodes.values():
            n.config = self.node_config(n, overrides or {})
            n.write_config()

    def node_config(self, n: Node, overrides: dict) -> dict:
        listeners = []
        if n.is_broker:
            listeners.append(f"PLAINTEXT://{n.bootstrap}")
        if n.is_controller:
            listeners.append(f"CONTROLLER://{n.controller_addr}")
        config = dict(BASE_CONFIG)
        config.update({
            "process.roles": ",".join(n.roles),
            "node.id": str(n.node_id),
            "cluster.id": self.cluster_id,
            "controller.quorum.voters": self.voters,
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(n.data_dir),
        })
        if n.is_broker:
            config["inter.broker.listener.name"] = "PLAINTEXT"
        config.update({k: str(v) for k, v in overrides.items()})
        return config

    def add_node(self, node_id: int, roles: list[str], name: str,
                 overrides: dict | None = None) -> Node:
        """A node outside the layout, with its own directory and ports, configured for this
        cluster; not started."""
        d = self.workdir / name
        d.mkdir(parents=True, exist_ok=True)
        n = Node(node_id, list(roles), d,
                 client_port=free_port() if "broker" in roles else None,
                 controller_port=free_port() if "controller" in roles else None)
        n.config = self.node_config(n, overrides or {})
        n.write_config()
        self.extra.append(n)
        return n

    # -- the whole cluster ----------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT_S):
        for n in self.nodes.values():
            n.launch()
        for n in self.nodes.values():
            n.wait_ready(timeout)

    def cleanup(self):
        for n in [*self.nodes.values(), *self.extra]:
            n.cleanup()

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def brokers(self, alive_only: bool = True) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_broker and (n.alive() or not alive_only)]

    def controllers(self, alive_only: bool = True) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_controller and (n.alive() or not alive_only)]

    def bootstrap(self, exclude: tuple[int, ...] = ()) -> str:
        return ",".join(n.bootstrap for n in self.brokers() if n.node_id not in exclude)

    def any_addr(self, exclude: tuple[int, ...] = ()) -> str:
        """An address of a live node that answers Kafka requests (a broker's client listener
        first, else a controller's CONTROLLER listener)."""
        for n in self.brokers():
            if n.node_id not in exclude:
                return n.bootstrap
        for n in self.controllers():
            if n.node_id not in exclude:
                return n.controller_addr
        raise ClusterError("no live node")

    def active_controller(self, timeout: float = 30.0, exclude: tuple[int, ...] = ()) -> int:
        """The quorum leader, as DescribeQuorum tells it (asked of every live node until one
        answers without error)."""
        def ask():
            for n in self.nodes.values():
                if not n.alive() or n.node_id in exclude:
                    continue
                addr = n.bootstrap or n.controller_addr
                try:
                    q = describe_quorum(addr, timeout=5.0)
                except (OSError, kwire.WireError):
                    continue
                if q.error_code == 0 and q.leader_id >= 0 and q.leader_id not in exclude:
                    return q.leader_id
            return None
        return wait_until("an active controller", ask, timeout, interval=0.1)

    def logs(self) -> str:
        return "\n".join(f"--- {n.name} ({n.log_path}) ---\n{n.log_tail()}"
                         for n in [*self.nodes.values(), *self.extra])

    # -- topics and partitions ------------------------------------------------------------
    def partition(self, topic: str, partition: int = 0, via: Node | None = None) -> PartitionState:
        """What `via` (else the first live broker that answers) says of the partition."""
        last = None
        for n in [via] if via is not None else self.brokers():
            try:
                st = partition_state(n.bootstrap, topic, partition, timeout=5.0)
                if st is not None:
                    return st
            except (OSError, kwire.WireError) as e:
                last = e
        raise ClusterError(f"no live broker describes {topic}-{partition} (last error: {last!r})")

    def create_topic(self, name: str, partitions: int = 1, rf: int = 1,
                     config: dict | None = None, timeout: float = 60.0):
        """CreateTopics through confluent-kafka (retried, bounded, while no controller answers),
        then waits until every live broker shows each partition led with all `rf` replicas in
        its ISR."""
        a = h.admin(self.bootstrap())

        def attempt():
            fut = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf,
                                            config=config or {})],
                                  operation_timeout=10, request_timeout=15)[name]
            try:
                fut.result(timeout=20)
            except Exception as e:  # noqa: BLE001
                if h.kafka_error_of(e).code() != 36:  # TOPIC_ALREADY_EXISTS: an earlier try did
                    raise
            return True
        wait_until(f"CreateTopics {name}", attempt, timeout, interval=0.2)

        def full():
            return all(
                (st := partition_state(n.bootstrap, name, p)) is not None
                and st.leader >= 0 and len(st.isr) == rf
                for n in self.brokers() for p in range(partitions))
        wait_until(f"{name}: every partition led with a full ISR on every broker", full, timeout,
                   interval=0.2, detail=self.logs)


# -- partitions and weir-admin ---------------------------------------------------------------------

@dataclass
class PartitionState:
    error_code: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def partition_state(addr: str, topic: str, partition: int = 0,
                    timeout: float = 10.0) -> PartitionState | None:
    """Metadata v7 (which has leader epochs) asked of exactly this broker, with kafka-python's
    protocol structs: the partition as that broker's metadata image has it, or None if the
    broker does not know it (yet). An offline partition answers leader -1 and
    LEADER_NOT_AVAILABLE, as in Kafka."""
    with kwire.Conn(addr, timeout=timeout) as c:
        resp = c.call(MetadataRequest[7](topics=[topic], allow_auto_topic_creation=False),
                      timeout=timeout)
    for t_err, t_name, _internal, parts in resp.topics:
        if t_name != topic or t_err not in (0, kwire.LEADER_NOT_AVAILABLE):
            continue
        for p_err, index, leader, epoch, replicas, isr, _offline in parts:
            if index == partition:
                return PartitionState(p_err, leader, epoch, tuple(replicas), tuple(sorted(isr)))
    return None


def weir_admin_bin() -> str:
    return os.environ.get("WEIR_ADMIN_BIN") or str(REPO / "target" / "debug" / "weir-admin")


def weir_admin(bootstrap: str, *args: str, timeout: float = 60.0):
    """`weir-admin --json ARGS --bootstrap-server BOOTSTRAP`, decoded; fails on a non-zero exit."""
    out = subprocess.run([weir_admin_bin(), "--json", *args, "--bootstrap-server", bootstrap],
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise ClusterError(f"weir-admin {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return json.loads(out.stdout)


# -- DescribeQuorum on the wire (flexible versions: compact arrays and strings, tagged fields) ----

def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _compact_str(s: str) -> bytes:
    b = s.encode()
    return _uvarint(len(b) + 1) + b


class _FlexReader(kwire.Reader):
    def uvarint(self) -> int:
        shift = result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise kwire.WireError("varint too long")

    def compact_len(self) -> int:
        return self.uvarint() - 1

    def compact_str(self) -> str | None:
        n = self.compact_len()
        return None if n < 0 else self._take(n).decode()

    def uuid(self) -> bytes:
        return self._take(16)

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())


@dataclass
class ReplicaState:
    replica_id: int
    log_end_offset: int
    last_fetch_timestamp: int = -1
    last_caught_up_timestamp: int = -1
    directory_id: bytes = b"\0" * 16


@dataclass
class QuorumInfo:
    error_code: int
    partition_error: int
    leader_id: int = -1
    leader_epoch: int = -1
    high_watermark: int = -1
    voters: list[ReplicaState] = field(default_factory=list)
    observers: list[ReplicaState] = field(default_factory=list)
    nodes: dict[int, list[tuple[str, str, int]]] = field(default_factory=dict)
    topic: str | None = None
    error_message: str | None = None


def describe_quorum_request(topic: str = METADATA_TOPIC, partition: int = 0) -> bytes:
    return (_uvarint(2) + _compact_str(topic) + _uvarint(2) + struct.pack(">i", partition)
            + b"\0" + b"\0" + b"\0")


def parse_describe_quorum(body: bytes, version: int) -> QuorumInfo:
    r = _FlexReader(body)
    error = r.i16()
    message = r.compact_str() if version >= 2 else None
    info = QuorumInfo(error_code=error, partition_error=-1, error_message=message)
    for _ in range(r.compact_len()):
        info.topic = r.compact_str()
        for _ in range(r.compact_len()):
            r.i32()  # partition index
            info.partition_error = r.i16()
            if version >= 2:
                pm = r.compact_str()
                info.error_message = info.error_message or pm
            info.leader_id, info.leader_epoch, info.high_watermark = r.i32(), r.i32(), r.i64()
            for target in (info.voters, info.observers):
                for _ in range(r.compact_len()):
                    rid = r.i32()
                    dir_id = r.uuid() if version >= 2 else b"\0" * 16
                    s = ReplicaState(rid, r.i64(), directory_id=dir_id)
                    if version >= 1:
                        s.last_fetch_timestamp, s.last_caught_up_timestamp = r.i64(), r.i64()
                    r.tags()
                    target.append(s)
            r.tags()
        r.tags()
    if version >= 2:
        for _ in range(r.compact_len()):
            node_id = r.i32()
            listeners = []
            for _ in range(r.compact_len()):
                name, host = r.compact_str(), r.compact_str()
                (port,) = struct.unpack(">H", r._take(2))
                r.tags()
                listeners.append((name, host, port))
            r.tags()
            info.nodes[node_id] = listeners
    r.tags()
    if r.remaining():
        raise kwire.WireError("trailing bytes in DescribeQuorum response")
    return info


def describe_quorum(addr: str, version: int = 2, timeout: float = 10.0,
                    body: bytes | None = None) -> QuorumInfo:
    """DescribeQuorum at `version` (request header v2, response header v1)."""
    with kwire.Conn(addr, timeout=timeout) as c:
        c.corr += 1
        client = b"weir-it"
        header = (struct.pack(">hhi", API_DESCRIBE_QUORUM, version, c.corr)
                  + struct.pack(">h", len(client)) + client + b"\0")
        c.send_raw(kwire.frame(header + (body if body is not None else describe_quorum_request())))
        data = c.recv_response_raw(c.corr, flexible_header=True, timeout=timeout)
    return parse_describe_quorum(data, version)


def raft_frame(correlation_id: int, payload: bytes, client_id: str = "intruder") -> bytes:
    """A WeirRaft frame (private api 32000): request header v2, then a raft-rs message."""
    cid = client_id.encode()
    header = struct.pack(">hhi", 32000, 0, correlation_id) + struct.pack(">h", len(cid)) + cid + b"\0"
    return kwire.frame(header + payload)


def raft_heartbeat_from(sender: int, to: int, term: int = 1) -> bytes:
    """A raft-rs `Message` (eraftpb, protobuf) of type MsgHeartbeat (8) from `sender`: the
    fields are msg_type (1), to (2), from (3), term (4). Weir's raft peer id is the node id + 1
    (raft-rs reserves 0 for "no peer"); `sender` and `to` here are node ids."""
    def varint_field(num: int, value: int) -> bytes:
        return _uvarint(num << 3) + _uvarint(value)
    return (varint_field(1, 8) + varint_field(2, to + 1) + varint_field(3, sender + 1)
            + varint_field(4, term))


def send_raw_and_wait_close(addr: str, data: bytes, timeout: float = 10.0) -> bool:
    """Sends bytes and reports whether the peer closed the connection without answering."""
    with kwire.Conn(addr, timeout=timeout) as c:
        c.send_raw(data)
        return c.closed_by_peer(timeout)



# -- DescribeCluster v2 on the wire (KIP-1073: fenced brokers) ------------------------------------

API_DESCRIBE_CLUSTER = 60


@dataclass
class ClusterBroker:
    node_id: int
    host: str
    port: int
    fenced: bool


@dataclass
class ClusterInfo:
    error_code: int
    cluster_id: str | None
    controller_id: int
    brokers: list[ClusterBroker]
    error_message: str | None = None


def describe_cluster(addr: str, include_fenced: bool = True, endpoint_type: int = 1,
                     timeout: float = 10.0) -> ClusterInfo:
    """DescribeCluster v2: `include_fenced` lists fenced brokers too, marked."""
    body = struct.pack(">?b?", False, endpoint_type, include_fenced) + b"\0"
    with kwire.Conn(addr, timeout=timeout) as c:
        c.corr += 1
        client = b"weir-it"
        header = (struct.pack(">hhi", API_DESCRIBE_CLUSTER, 2, c.corr)
                  + struct.pack(">h", len(client)) + client + b"\0")
        c.send_raw(kwire.frame(header + body))
        data = c.recv_response_raw(c.corr, flexible_header=True, timeout=timeout)
    r = _FlexReader(data)
    r.i32()  # throttle
    error = r.i16()
    message = r.compact_str()
    r.i8()  # endpoint type
    cluster_id = r.compact_str()
    controller = r.i32()
    brokers = []
    for _ in range(r.compact_len()):
        node_id, host, port = r.i32(), r.compact_str(), r.i32()
        r.compact_str()  # rack
        fenced = bool(r.i8())
        r.tags()
        brokers.append(ClusterBroker(node_id, host, port, fenced))
    r.i32()  # authorized operations
    r.tags()
    return ClusterInfo(error, cluster_id, controller, brokers, message)
