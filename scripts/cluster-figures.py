#!/usr/bin/env python3
"""Cluster figures on this machine: controller failover, broker fencing, creating 2000
partitions with RF=3, and restarting a broker that holds them. Each node is its own process on
127.0.0.1 (tests/integration/cluster.py), with Kafka's default timers unless told otherwise.

    cargo build --release -p weir -p weir-tools --locked
    WEIR_BIN=target/release/weir python3 scripts/cluster-figures.py [--runs 5] [--cores 1]
        [--partitions 2000] [--heartbeat-ms 2000 --session-ms 9000] [--only failover,fencing,...]
        [--set key=value ...] [--keep --workdir DIR]

Times are wall-clock on the machine at hand (a shared one gives noisy figures); what each
measures is printed beside it. Everything started is stopped by PID.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from kafka.protocol.admin import CreateTopicsRequest  # noqa: E402
from kafka.protocol.metadata import MetadataRequest  # noqa: E402

import kwire  # noqa: E402
from cluster import Cluster, describe_quorum, wait_until  # noqa: E402

COMBINED = {i: ["broker", "controller"] for i in (1, 2, 3)}
RETRIABLE = {7, 41, 15, 5}  # REQUEST_TIMED_OUT, NOT_CONTROLLER, COORDINATOR_NOT_AVAILABLE, LEADER_NOT_AVAILABLE


def create_topics(addr: str, topics: list[tuple[str, int, int]], timeout_ms: int = 60000,
                  conn_timeout: float = 120.0) -> dict[str, int]:
    """CreateTopics v3 asked of `addr`: {topic: error code}."""
    req = CreateTopicsRequest[3](create_topic_requests=[(name, parts, rf, [], [])
                                                        for name, parts, rf in topics],
                                 timeout=timeout_ms, validate_only=False)
    with kwire.Conn(addr, timeout=conn_timeout) as c:
        resp = c.call(req, timeout=conn_timeout)
    return {t[0]: t[1] for t in resp.topic_errors}


def metadata(addr: str, timeout: float = 30.0):
    with kwire.Conn(addr, timeout=timeout) as c:
        resp = c.call(MetadataRequest[5](topics=None, allow_auto_topic_creation=False),
                      timeout=timeout)
    brokers = sorted(b[0] for b in resp.brokers)
    topics = {t[1]: [(p[1], p[2], tuple(p[3]), tuple(p[4])) for p in t[3]]
              for t in resp.topics if t[0] == 0}
    return brokers, topics


def stats(name: str, xs: list[float], what: str):
    xs = sorted(xs)
    line = (f"{name}: n={len(xs)} median {statistics.median(xs):.3f} s, min {xs[0]:.3f} s, "
            f"max {xs[-1]:.3f} s")
    print(f"{line}\n    ({what})\n    runs: {', '.join(f'{x:.3f}' for x in xs)}", flush=True)


def overrides(args) -> dict:
    return {"broker.heartbeat.interval.ms": str(args.heartbeat_ms),
            "broker.session.timeout.ms": str(args.session_ms),
            "weir.cores": str(args.cores),
            "default.replication.factor": "3",
            "num.partitions": "1",
            **dict(kv.split("=", 1) for kv in args.set)}


def failover(args, workdir: Path):
    c = Cluster(workdir / "failover", COMBINED, overrides(args))
    times = []
    try:
        c.start()
        for run in range(args.runs):
            old = c.active_controller()
            survivor = next(n for n in (1, 2, 3) if n != old)
            addr = c.nodes[survivor].bootstrap
            c.nodes[old].kill9()
            t0 = time.monotonic()
            name = f"failover-{run}-{int(time.time() * 1000)}"
            deadline = t0 + 60
            last = None
            while True:
                try:
                    err = create_topics(addr, [(name, 1, 2)], timeout_ms=5000, conn_timeout=10)[name]
                except (OSError, kwire.WireError):
                    err = -2
                if err in (0, 36):
                    break
                last = err
                if time.monotonic() > deadline:
                    raise SystemExit(f"no CreateTopics within 60 s (last error {err})")
                time.sleep(0.01)
            times.append(time.monotonic() - t0)
            print(f"  run {run}: killed node {old}, CreateTopics ok after {times[-1]:.3f} s "
                  f"(last error before: {last})", flush=True)
            c.nodes[old].start()
            # The old controller is a caught-up follower again before the next run.
            def caught_up():
                q = describe_quorum(c.nodes[old].bootstrap)
                mine = [s for s in q.voters if s.replica_id == old]
                return q.partition_error == 0 and mine and mine[0].log_end_offset >= q.high_watermark
            wait_until("the old controller caught up", caught_up, 60)
    finally:
        c.cleanup()
    stats("controller failover", times, "kill -9 of the active controller -> first CreateTopics "
          "answered without error, retried every 10 ms through a surviving broker")


def fencing(args, workdir: Path):
    c = Cluster(workdir / "fencing", COMBINED, overrides(args))
    times = []
    try:
        c.start()
        for run in range(args.runs):
            controller = c.active_controller()
            victim = next(n for n in (3, 2, 1) if n != controller)
            addr = c.nodes[controller].bootstrap
            c.nodes[victim].kill9()
            t0 = time.monotonic()
            wait_until("fenced", lambda: victim not in metadata(addr)[0], 120, interval=0.02)
            times.append(time.monotonic() - t0)
            c.nodes[victim].start()
    finally:
        c.cleanup()
    stats("broker fencing", times, f"kill -9 of a broker (not the active controller) -> "
          f"Metadata from the active controller no longer lists it; heartbeat "
          f"{args.heartbeat_ms} ms, session {args.session_ms} ms")


def many_partitions(args, workdir: Path):
    c = Cluster(workdir / "partitions", COMBINED, overrides(args))
    total = args.partitions
    per_topic = 100
    topics = [(f"p{i:03d}", per_topic, 3) for i in range(total // per_topic)]
    try:
        c.start()
        controller = c.active_controller()
        addr = c.nodes[controller % 3 + 1].bootstrap
        # One CreateTopics per topic of 100 partitions, one after another: a single request
        # for all 2000 can outlast the broker's forward to the controller
        # (controller.quorum.request.timeout.ms) on a loaded machine, and the retried forward
        # then answers TOPIC_ALREADY_EXISTS for topics the first attempt created.
        t0 = time.monotonic()
        errs = {}
        for topic in topics:
            errs.update(create_topics(addr, [topic], timeout_ms=600000, conn_timeout=900))
        t_answered = time.monotonic() - t0
        assert all(e == 0 for e in errs.values()), errs

        def all_placed():
            for n in c.brokers():
                _, md = metadata(n.bootstrap, timeout=60)
                parts = [p for name, _, _ in topics for p in md.get(name, [])]
                if len(parts) != total or any(p[1] < 0 or len(p[3]) != 3 for p in parts):
                    return False
            return True
        wait_until("every partition led with a full ISR on every broker", all_placed, 900,
                   interval=0.2)
        t_isr = time.monotonic() - t0
        print(f"create {total} partitions RF=3 ({len(topics)} topics x {per_topic}, one "
              f"CreateTopics each, in turn): all answered after {t_answered:.3f} s; every broker's Metadata shows "
              f"each with a leader and 3 in-sync replicas after {t_isr:.3f} s", flush=True)

        # Restart of a broker holding all 2000 (a replica of each; not the active controller).
        for how, stop in (("SIGTERM (clean)", lambda n: n.stop()), ("kill -9", lambda n: n.kill9())):
            times, isr_times = [], []
            for _ in range(args.restart_runs):
                controller = c.active_controller()
                victim = c.nodes[next(n for n in (3, 2, 1) if n != controller)]
                stop(victim)
                t0 = time.monotonic()
                victim.start(timeout=900)  # ready: registered, unfenced, serving
                times.append(time.monotonic() - t0)
                wait_until("ISR full again", all_placed, 900, interval=0.2)
                isr_times.append(time.monotonic() - t0)
            stats(f"restart after {how}, to serving", times,
                  f"process start -> its client listener answers and Metadata lists it "
                  f"(registered, caught up, unfenced); {total} partition replicas")
            stats(f"restart after {how}, to full ISR", isr_times,
                  "process start -> every partition shows 3 in-sync replicas again")
    finally:
        c.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--restart-runs", type=int, default=3)
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=2000)
    ap.add_argument("--heartbeat-ms", type=int, default=2000)
    ap.add_argument("--session-ms", type=int, default=9000)
    ap.add_argument("--only", default="failover,fencing,partitions")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the nodes' data and logs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="another property for every node")
    args = ap.parse_args()
    steps = {"failover": failover, "fencing": fencing, "partitions": many_partitions}
    if args.keep:
        # The nodes' logs stay for a look afterwards.
        workdir = Path(tempfile.mkdtemp(prefix="weir-figures-", dir=args.workdir))
        print(f"logs in {workdir}", flush=True)
        for step in args.only.split(","):
            steps[step](args, workdir)
        return
    with tempfile.TemporaryDirectory(prefix="weir-figures-", dir=args.workdir) as d:
        for step in args.only.split(","):
            steps[step](args, Path(d))


if __name__ == "__main__":
    main()
