"""Harness: runs the real `weir` binary for the integration tests.

* `broker`          - a broker shared by the whole session (default config), for tests that
                      only need topics of their own (they use unique topic names).
* `broker_factory`  - `broker_factory(**overrides)` starts a dedicated broker with extra
                      `--override key=value` properties; it is stopped after the test.
* `cluster_factory` - `cluster_factory(layout)` starts a cluster of real processes (one config
                      file each, `cluster.py`); every node is stopped after the test.

Each broker gets 127.0.0.1 and a free port, a fresh data dir, stderr captured to a file
(its tail is attached to the report of any failing test), and is always cleaned up by PID.
Env: WEIR_BIN (default <repo>/target/debug/weir).
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kwire  # noqa: E402
from kafka_ref import kafka_reference  # noqa: E402,F401  (the reference Kafka 4.4 fixture)

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0  # a bound on waiting, not a timing assertion: busy CI disks can make a recovering start slow
STOP_TIMEOUT_S = 30.0

# The base configuration every test broker gets (Kafka property names).
BASE_CONFIG = {
    "node.id": "1",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "auto.create.topics.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
    "weir.cores": "2",
}


def weir_bin() -> str:
    return os.environ.get("WEIR_BIN") or str(REPO / "target" / "debug" / "weir")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """preexec_fn: the broker gets SIGKILL if the pytest process dies (PR_SET_PDEATHSIG),
    so an interrupted run never leaves a broker behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class BrokerError(AssertionError):
    pass


class Broker:
    def __init__(self, workdir: Path, overrides: dict | None = None, command: list[str] | None = None,
                 name: str = "weir"):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.config_file = self.workdir / "server.properties"
        self.stderr_path = self.workdir / "weir.stderr.log"
        self.overrides = {k: str(v) for k, v in (overrides or {}).items()}
        self._command = command  # for the harness self-test: replaces the weir binary
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.api_versions: dict[int, tuple[int, int]] = {}
        config = dict(BASE_CONFIG)
        config["listeners"] = f"PLAINTEXT://{self.bootstrap}"
        config["log.dirs"] = str(self.data_dir)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in config.items()))

    # -- process control -------------------------------------------------------------------
    def argv(self) -> list[str]:
        base = self._command or [weir_bin()]
        argv = list(base) + ["--config", str(self.config_file)]
        for k, v in self.overrides.items():
            argv += ["--override", f"{k}={v}"]
        return argv

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, ready_timeout: float = READY_TIMEOUT_S):
        if self.alive():
            raise BrokerError(f"{self.name} already running (pid {self.pid})")
        argv = self.argv()
        if not self._command and not os.access(argv[0], os.X_OK):
            raise BrokerError(f"broker binary {argv[0]} not found or not executable "
                              "(build it with `cargo build -p weir` or set WEIR_BIN)")
        self.starts += 1
        with open(self.stderr_path, "ab") as log:
            log.write(f"\n===== harness: start #{self.starts}: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, preexec_fn=_die_with_parent)
        try:
            self.wait_ready(ready_timeout)
        except BaseException:
            self.cleanup()
            raise

    def wait_ready(self, timeout: float = READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerError(f"{self.name} exited with code {rc} before becoming ready\n"
                                  f"--- stderr tail ---\n{self.stderr_tail()}")
            try:
                self.api_versions = kwire.probe(self.bootstrap, timeout=2.0)
                return
            except (OSError, kwire.WireError) as e:
                last = e
                time.sleep(0.1)
        raise BrokerError(f"{self.name} not ready on {self.bootstrap} within {timeout:.0f}s "
                          f"(last probe error: {last!r})\n--- stderr tail ---\n{self.stderr_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signal the broker and wait (bounded). Returns its exit code. If it does not exit in
        time it is killed and BrokerError is raised."""
        if self.proc is None:
            raise BrokerError(f"{self.name} was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise BrokerError(f"{self.name} did not exit within {timeout:.0f}s of signal {sig}; "
                                  f"killed\n--- stderr tail ---\n{self.stderr_tail()}")
        return self.proc.returncode

    def restart(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S):
        """Clean shutdown (must exit 0), then start again on the same port and data dir."""
        rc = self.stop(sig, timeout)
        if rc != 0:
            raise BrokerError(f"{self.name} exited with code {rc} on signal {sig} (expected 0)\n"
                              f"--- stderr tail ---\n{self.stderr_tail()}")
        self.start()

    def kill9(self):
        """SIGKILL, no chance to flush or shut down. Call start() afterwards."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def cleanup(self):
        """Always safe: terminate by PID, bounded wait, then kill."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            p.terminate()
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    # -- diagnostics --------------------------------------------------------------------------
    def stderr_tail(self, lines: int = 60) -> str:
        try:
            data = self.stderr_path.read_bytes()[-64 * 1024:]
        except OSError:
            return "(no stderr file)"
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def rss_kib(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def __repr__(self):
        return f"<Broker {self.name} {self.bootstrap} pid={self.pid} dir={self.workdir}>"


# -- fixtures ------------------------------------------------------------------------------------

def _track(request, broker: Broker):
    request.node.__dict__.setdefault("_weir_brokers", []).append(broker)


@pytest.fixture(scope="session")
def shared_broker(tmp_path_factory):
    b = Broker(tmp_path_factory.mktemp("weir-shared"), name="weir-shared")
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def broker(request, shared_broker: Broker) -> Broker:
    """The session's shared broker. If an earlier test killed it, it is restarted (same data
    dir) so one crash does not cascade, and the test still fails loudly on the crash itself."""
    _track(request, shared_broker)
    if not shared_broker.alive():
        rc = shared_broker.proc.returncode if shared_broker.proc else None
        sys.stderr.write(f"\n[harness] shared broker had died (exit {rc}); restarting it\n"
                         f"{shared_broker.stderr_tail(30)}\n")
        shared_broker.start()
    return shared_broker


@pytest.fixture
def broker_factory(request, tmp_path):
    started: list[Broker] = []

    def make(overrides: dict | None = None, name: str = "weir") -> Broker:
        b = Broker(tmp_path / f"{name}-{len(started)}", overrides, name=name)
        started.append(b)
        _track(request, b)
        b.start()
        return b

    yield make
    for b in started:
        b.cleanup()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in item.__dict__.get("_weir_brokers", []):
            report.sections.append((f"{b.name} stderr tail ({b.stderr_path})", b.stderr_tail()))
        for c in item.__dict__.get("_weir_clusters", []):
            for n in [*c.nodes.values(), *c.extra]:
                report.sections.append((f"{n.workdir.name} log tail ({n.log_path})", n.log_tail()))


@pytest.fixture
def cluster_factory(request, tmp_path):
    """`cluster_factory(layout, overrides=None)` writes a config file per node, starts every
    node as its own process (tests/integration/cluster.py) and waits until each is ready; every
    node is stopped by PID after the test, and the logs of all nodes are attached to a failing
    test's report."""
    from cluster import Cluster

    made: list = []

    def make(layout: dict, overrides: dict | None = None, start: bool = True):
        c = Cluster(tmp_path / f"cluster-{len(made)}", layout, overrides)
        made.append(c)
        request.node.__dict__.setdefault("_weir_clusters", []).append(c)
        if start:
            try:
                c.start()
            except BaseException:
                c.cleanup()
                raise
        return c

    yield make
    for c in made:
        c.cleanup()
