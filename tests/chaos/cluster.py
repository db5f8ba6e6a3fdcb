"""The three Weir processes of the chaos harness: configuration, start, kill -9, SIGSTOP/SIGCONT,
SIGTERM, health, and the few wire calls the harness needs that confluent-kafka does not make
(DescribeQuorum: who leads the controller quorum).

Each broker is a combined broker+controller KRaft node (config/kraft/server-N.properties with
this topology's addresses) running in its own network namespace. Processes are started with
`ip netns exec` (which execs the broker, so the PID we hold is the broker's) and a parent-death
signal, so they cannot outlive the harness even if it is killed with -9.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

from topology import Topology, run

PLAINTEXT_PORT = 9092
CONTROLLER_PORT = 9093
# Bounds on process control: a broker killed with -9 is reaped in milliseconds; SIGTERM
# (controlled shutdown) is given Kafka's controlled-shutdown scale before -9.
KILL_REAP_S = 10
TERM_WAIT_S = 40


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG = 1: the broker gets SIGKILL when the harness dies, even by -9.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class Node:
    def __init__(self, i: int, ip: str, data_dir: Path, log_path: Path, conf_path: Path):
        self.id = i
        self.ip = ip
        self.data_dir = data_dir
        self.log_path = log_path
        self.conf_path = conf_path
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0
        # Exits the harness caused (kill, term); anything else is a crash.
        self.expected_exit = False
        self.crashes: list[str] = []
        # Where the scan of the log got to, and what it found since the last start: the
        # latest raft transition, and whether the broker serves clients ("Weir started",
        # logged once registered and caught up with the metadata).
        self.raft_pos = 0
        self.raft_state: tuple[str, int] | None = None
        self.serving = False

    @property
    def bootstrap(self) -> str:
        return f"{self.ip}:{PLAINTEXT_PORT}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, weir_bin: str, topo: Topology, workdir: Path, overrides: dict[str, str],
                 tmpfs_node: int | None, tmpfs_mb: int):
        self.weir_bin = weir_bin
        self.topo = topo
        self.workdir = workdir
        self.overrides = overrides
        self.tmpfs_node = tmpfs_node
        self.tmpfs_mb = tmpfs_mb
        self.mounted: list[Path] = []
        self.describe_quorum_served = True
        self.nodes: dict[int, Node] = {}
        for i, ip in topo.ips.items():
            d = workdir / f"node-{i}"
            d.mkdir(parents=True, exist_ok=True)
            self.nodes[i] = Node(i, ip, d / "data", workdir / f"node-{i}.log",
                                 d / "server.properties")

    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def write_configs(self) -> None:
        voters = ",".join(f"{i}@{n.ip}:{CONTROLLER_PORT}" for i, n in self.nodes.items())
        ncpu = os.cpu_count() or 1
        for i, n in self.nodes.items():
            n.data_dir.mkdir(parents=True, exist_ok=True)
            if i == self.tmpfs_node:
                # The disk-full fault's data directory: a small tmpfs of its own, so filling it
                # fills nobody else's disk.
                run("mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_mb}m", "tmpfs", str(n.data_dir))
                self.mounted.append(n.data_dir)
            props = {
                "process.roles": "broker,controller",
                "node.id": str(i),
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://{n.ip}:{PLAINTEXT_PORT},CONTROLLER://{n.ip}:{CONTROLLER_PORT}",
                "advertised.listeners": f"PLAINTEXT://{n.ip}:{PLAINTEXT_PORT},CONTROLLER://{n.ip}:{CONTROLLER_PORT}",
                "inter.broker.listener.name": "PLAINTEXT",
                "controller.listener.names": "CONTROLLER",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "log.dirs": str(n.data_dir),
                "num.partitions": "1",
                "default.replication.factor": "3",
                "min.insync.replicas": "2",
                "offsets.topic.replication.factor": "3",
                "transaction.state.log.replication.factor": "3",
                # One executor per broker, spread over the machine's CPUs.
                "weir.cores": "1",
                "weir.cpus": str((i - 1) % ncpu),
            }
            if i == self.tmpfs_node:
                # Block reservation ahead of writes (Weir's, for ext4's allocation latency)
                # buys nothing on tmpfs, and with it a full disk would reach only partitions
                # that outgrew their reservation: off, so ENOSPC hits every write at once.
                props["weir.log.preallocate.step.bytes"] = "0"
            props.update(self.overrides)
            n.conf_path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    # ---- processes ----------------------------------------------------------------------

    def start(self, i: int) -> None:
        n = self.nodes[i]
        assert not n.alive(), f"broker {i} is already running"
        log = open(n.log_path, "ab")
        log.write(f"\n===== chaos: start #{n.starts + 1} of broker {i} at {time.time():.3f}\n".encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("WEIR_LOG", "info")
        n.proc = subprocess.Popen(
            self.topo.exec_prefix(i) + [self.weir_bin, "--config", str(n.conf_path)],
            cwd=n.data_dir.parent, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, preexec_fn=_die_with_parent)
        log.close()
        n.starts += 1
        n.paused = False
        n.expected_exit = False

    def kill(self, i: int) -> None:
        """kill -9, then reap (bounded)."""
        n = self.nodes[i]
        if n.proc is None:
            return
        n.expected_exit = True
        if n.proc.poll() is None:
            os.kill(n.proc.pid, signal.SIGKILL)
        n.proc.wait(timeout=KILL_REAP_S)
        n.paused = False

    def terminate(self, i: int) -> bool:
        """SIGTERM (controlled shutdown), -9 after TERM_WAIT_S; True if it stopped by itself."""
        n = self.nodes[i]
        if n.proc is None or n.proc.poll() is not None:
            return True
        n.expected_exit = True
        if n.paused:
            self.resume(i)
        os.kill(n.proc.pid, signal.SIGTERM)
        try:
            n.proc.wait(timeout=TERM_WAIT_S)
            return True
        except subprocess.TimeoutExpired:
            self.kill(i)
            return False

    def pause(self, i: int) -> None:
        n = self.nodes[i]
        os.kill(n.proc.pid, signal.SIGSTOP)
        n.paused = True

    def resume(self, i: int) -> None:
        n = self.nodes[i]
        if n.proc is not None and n.proc.poll() is None:
            os.kill(n.proc.pid, signal.SIGCONT)
        n.paused = False

    def check_exits(self) -> list[str]:
        """Brokers that exited without the harness asking: each is a crash, reported once."""
        found = []
        for n in self.nodes.values():
            if n.proc is not None and n.proc.poll() is not None and not n.expected_exit:
                msg = f"broker {n.id} exited with {n.proc.returncode}: " + self.log_tail(n.id, 15)
                n.crashes.append(msg)
                n.expected_exit = True  # reported
                found.append(msg)
        return found

    def log_tail(self, i: int, lines: int) -> str:
        try:
            data = self.nodes[i].log_path.read_bytes()[-20000:].decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.splitlines()[-lines:])

    def panics(self) -> list[str]:
        out = []
        for n in self.nodes.values():
            try:
                text = n.log_path.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                if "panicked" in line:
                    out.append(f"broker {n.id}: {line.strip()}")
        return out

    def stop_all(self) -> None:
        """Every broker stopped by PID (SIGCONT first if frozen), then the tmpfs unmounted."""
        for i, n in self.nodes.items():
            if n.proc is not None and n.proc.poll() is None:
                try:
                    self.resume(i)
                    self.kill(i)
                except (OSError, subprocess.TimeoutExpired):
                    pass
        for m in self.mounted:
            run("umount", "-l", str(m), check=False)
        self.mounted = []

    # ---- wire calls ---------------------------------------------------------------------

    def quorum_leader(self, timeout_s: float = 3.0) -> int | None:
        """The controller quorum's leader: DescribeQuorum where a broker serves it, else the
        raft transitions the brokers log ("became leader at term T"): the running, unfrozen
        node whose latest transition made it leader, at the highest term."""
        for n in self.nodes.values():
            if not n.alive() or n.paused or not self.describe_quorum_served:
                continue
            try:
                leader = describe_quorum_leader(n.ip, PLAINTEXT_PORT, timeout_s)
            except (OSError, ValueError, struct.error, IndexError):
                # Not served (Weir has no DescribeQuorum yet; the broker closes the
                # connection): read the logs from now on.
                self.describe_quorum_served = False
                break
            if leader is not None and leader >= 0:
                return leader
        best = None
        for n in self.nodes.values():
            if not n.alive() or n.paused:
                continue
            state = self._raft_state(n)
            if state and state[0] == "leader" and (best is None or state[1] > best[1]):
                best = (n.id, state[1])
        return best[0] if best else None

    def _scan_log(self, n: Node) -> None:
        """Reads what n's log gained since the previous call: raft transitions and whether
        it serves clients, since its last start."""
        try:
            with open(n.log_path, "rb") as f:
                f.seek(n.raft_pos)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        n.raft_pos += end
        text = chunk[:end].decode(errors="replace")
        start = text.rfind("===== chaos: start")
        if start >= 0:
            n.raft_state = None
            n.serving = False
            text = text[start:]
        for m in _BECAME.finditer(text):
            n.raft_state = (m.group(1), int(m.group(2)))
        if "Weir started" in text:
            n.serving = True

    def _raft_state(self, n: Node) -> tuple[str, int] | None:
        self._scan_log(n)
        return n.raft_state

    def serving(self, i: int) -> bool:
        """Whether broker i, running, logged that it serves clients since its last start."""
        n = self.nodes[i]
        self._scan_log(n)
        return n.alive() and n.serving


_BECAME = re.compile(r"became (leader|follower|candidate|pre-candidate) at term (\d+)")


def _uvarint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _recv_exact(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("connection closed")
        out += chunk
    return out


def describe_quorum_leader(host: str, port: int, timeout_s: float) -> int | None:
    """DescribeQuorum v0 (api 55, flexible) for __cluster_metadata-0; returns LeaderId."""
    topic = b"__cluster_metadata"
    client = b"weir-chaos"
    header = struct.pack(">hhih", 55, 0, 7, len(client)) + client + b"\x00"
    body = (_uvarint(2) + _uvarint(len(topic) + 1) + topic  # one topic
            + _uvarint(2) + struct.pack(">i", 0) + b"\x00"  # one partition, no tags
            + b"\x00" + b"\x00")  # topic tags, request tags
    frame = header + body
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.settimeout(timeout_s)
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        resp = _recv_exact(s, size)
    pos = 4  # correlation id
    _, pos = _read_uvarint(resp, pos)  # header tags (assumed empty)
    (err,) = struct.unpack_from(">h", resp, pos)
    pos += 2
    if err != 0:
        return None
    ntopics, pos = _read_uvarint(resp, pos)
    if ntopics < 2:
        return None
    nlen, pos = _read_uvarint(resp, pos)
    pos += nlen - 1
    nparts, pos = _read_uvarint(resp, pos)
    if nparts < 2:
        return None
    _, perr, leader = struct.unpack_from(">ihi", resp, pos)
    return leader if perr == 0 else None
