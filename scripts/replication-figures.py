#!/usr/bin/env python3
"""Replication figures on this machine, each node its own process on 127.0.0.1
(tests/integration/cluster.py), in one run so the ratios compare like with like:

  * produce throughput and broker CPU per produced MB: acks=all on a 3-node cluster with RF=3
    and min.insync.replicas=2, against acks=1 on one node with RF=1 (same bench arguments);
  * which system calls carry the followers' fetches on a leader (strace -c while it runs:
    sendfile is how the leader serves them);
  * e2e latency (weir-bench e2e) at a fixed rate with acks=all on the RF=3 cluster;
  * failover: a broker leading a third of N partitions (RF=3) is killed with -9 while weir-bench
    e2e runs; the time until every partition has a new leader (from the kill, and from the
    fencing, which `broker.session.timeout.ms` adds), and the longest gap the bench saw.

    cargo build --release -p weir -p weir-bench -p weir-tools --locked
    python3 scripts/replication-figures.py [--seconds 10] [--rate 10000] [--failover-partitions 2000]

WEIR_BIN and WEIR_BENCH_BIN default to target/release/. Everything started is stopped by PID.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
os.environ.setdefault("WEIR_BIN", str(REPO / "target" / "release" / "weir"))

from kafka.protocol.metadata import MetadataRequest  # noqa: E402

import kwire  # noqa: E402
from cluster import Cluster, wait_until  # noqa: E402

BENCH = os.environ.get("WEIR_BENCH_BIN", str(REPO / "target" / "release" / "weir-bench"))
COMBINED = {i: ["broker", "controller"] for i in (1, 2, 3)}
REPLICATED = {"default.replication.factor": "3", "min.insync.replicas": "2",
              "offsets.topic.replication.factor": "3"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(args: list[str], timeout: float = 600) -> dict:
    """Runs weir-bench with --json; its summary object."""
    out = subprocess.run([BENCH, *args, "--json"], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"weir-bench {' '.join(args)} failed: {out.stderr[-2000:]}")
    text = out.stdout.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text[text.rindex("\n{") + 1:])


def leaders(addr: str) -> dict[tuple[str, int], int]:
    with kwire.Conn(addr, timeout=30) as c:
        resp = c.call(MetadataRequest[5](topics=None, allow_auto_topic_creation=False),
                      timeout=30)
    return {(t[1], p[1]): p[2] for t in resp.topics if t[0] == 0 for p in t[3]}


def produce_run(bootstrap: str, pids: list[int], topic: str, acks: str, rf: int,
                seconds: int, strace_pid: int | None = None) -> dict:
    """A timed produce run; throughput and the brokers' CPU per MB produced."""
    before = sum(cpu_seconds(p) for p in pids)
    trace = None
    if strace_pid and shutil.which("strace"):
        trace = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=sendfile,write,writev,"
                                  "sendmsg,pwritev,pwrite64", "-p", str(strace_pid)],
                                 stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    s = bench(["produce", "--bootstrap-server", bootstrap, "--topic", topic,
               "--partitions", "8", "--replication-factor", str(rf), "--acks", acks,
               "--message-size", "1024", "--duration", f"{seconds}s", "--warmup", "2s"])
    wall = time.monotonic() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - before
    syscalls = None
    if trace:
        trace.terminate()
        syscalls = trace.communicate(timeout=30)[1]
    # The brokers' CPU over the whole run (warm-up included) per MB acknowledged in it.
    acked_mb = s["produce"]["acked"] * 1024 / 1e6
    return {"summary": s, "cpu_s": cpu, "wall_s": wall, "acked_mb": acked_mb,
            "cpu_ms_per_mb": 1000 * cpu / max(acked_mb, 1e-9), "syscalls": syscalls}


def throughput_of(s: dict) -> float:
    return float(s["produce"]["throughput"]["mb_per_sec"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--failover-partitions", type=int, default=2000)
    ap.add_argument("--skip", default="", help="comma list of: throughput,e2e,failover")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="weir-repl-figures-"))
    results = {}
    try:
        if "throughput" not in skip:
            one = Cluster(work / "single", {1: ["broker", "controller"]})
            one.start()
            try:
                r1 = produce_run(one.node(1).bootstrap, [one.node(1).pid], "rf1", "1", 1, a.seconds)
            finally:
                one.cleanup()
            three = Cluster(work / "three", COMBINED, REPLICATED)
            three.start()
            try:
                leader_pid = three.node(1).pid
                r3 = produce_run(three.node(1).bootstrap, [n.pid for n in three.nodes.values()],
                                 "rf3", "all", 3, a.seconds)
                # The system calls in a separate run: strace slows the traced broker down
                # (every traced call stops it), so its run's figures are not kept.
                traced = produce_run(three.node(1).bootstrap, [leader_pid], "rf3", "all", 3,
                                     5, strace_pid=leader_pid)
                r3["syscalls"] = traced["syscalls"]
            finally:
                three.cleanup()
            for name, r in (("acks=1 RF=1, 1 node", r1), ("acks=all RF=3, 3 nodes", r3)):
                mbps = throughput_of(r["summary"])
                print(f"{name}: {mbps:.1f} MB/s produced; brokers' CPU {r['cpu_s']:.2f} s "
                      f"over {r['wall_s']:.1f} s for {r['acked_mb']:.0f} MB acknowledged: "
                      f"{r['cpu_ms_per_mb']:.2f} CPU-ms per MB")
            print(f"ratios RF=3 acks=all / RF=1 acks=1: throughput "
                  f"{throughput_of(r3['summary']) / throughput_of(r1['summary']):.2f}x, "
                  f"CPU per MB {r3['cpu_ms_per_mb'] / r1['cpu_ms_per_mb']:.2f}x (three brokers "
                  f"each storing every byte, against one)")
            results["throughput"] = {"rf1": r1["summary"], "rf3": r3["summary"],
                                     "cpu_ms_per_mb_rf1": r1["cpu_ms_per_mb"],
                                     "cpu_ms_per_mb_rf3": r3["cpu_ms_per_mb"],
                                     "wall_rf1_s": r1["wall_s"], "wall_rf3_s": r3["wall_s"]}
            if r3["syscalls"]:
                print("system calls of node 1 (leader of about a third of the partitions) "
                      "during the RF=3 run:\n" + r3["syscalls"])
        if "e2e" not in skip or "failover" not in skip:
            c = Cluster(work / "e2e", COMBINED, REPLICATED)
            c.start()
            try:
                if "e2e" not in skip:
                    s = bench(["e2e", "--bootstrap-server", c.node(1).bootstrap, "--topic", "e2e",
                               "--partitions", "8", "--replication-factor", "3",
                               "--acks", "all", "--rate", str(a.rate), "--duration",
                               f"{a.seconds}s", "--warmup", "2s"])
                    results["e2e"] = s
                    print(f"e2e acks=all RF=3 at {a.rate} msg/s: {json.dumps(s)[:1500]}")
                if "failover" not in skip:
                    results["failover"] = failover(c, a)
            finally:
                c.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, default=str)[:4000])


def failover(c: Cluster, a) -> dict:
    """Kill -9 the broker leading a third of N RF=3 partitions while e2e runs."""
    n = a.failover_partitions
    per = 100
    for i in range(0, n, per):
        admin_bin = os.environ.get("WEIR_ADMIN_BIN",
                                   str(REPO / "target" / "release" / "weir-admin"))
        subprocess.run([admin_bin, "topic", "create", f"fo-{i // per}", "--partitions",
                        str(min(per, n - i)), "--replication-factor", "3",
                        "--bootstrap-server", c.node(1).bootstrap], check=True,
                       capture_output=True,
                       timeout=300)
    wait_until("every failover partition led by its preferred leader",
               lambda: sum(1 for (t, _), l in leaders(c.node(1).bootstrap).items()
                           if t.startswith("fo-") and l >= 0) == n, 300)
    victim = 2
    led = [k for k, l in leaders(c.node(1).bootstrap).items() if k[0].startswith("fo-") and l == victim]
    out: dict = {"partitions": n, "led_by_victim": len(led)}
    result: dict = {}

    def run_e2e():
        # A real client (confluent-kafka, idempotent acks=all) at about 1000 msg/s over the
        # 100 partitions of fo-0: weir-bench's producer routes by the leaders it saw at start
        # and does not follow a failover yet. The longest time without any acknowledgement,
        # and the longest a message waited for its acknowledgement, are the gap clients see.
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": c.node(1).bootstrap, "enable.idempotence": True,
                      "acks": "all", "linger.ms": 1, "message.timeout.ms": 120000})
        acks: list[float] = []
        waits: list[float] = []
        errors: list[str] = []

        def cb(err, msg, sent):
            now = time.monotonic()
            if err is None:
                acks.append(now)
                waits.append(now - sent)
            else:
                errors.append(str(err))

        end = time.monotonic() + a.seconds + 20
        i = 0
        while time.monotonic() < end:
            sent = time.monotonic()
            p.produce("fo-0", value=b"x" * 1024, partition=i % 100,
                      on_delivery=lambda err, msg, sent=sent: cb(err, msg, sent))
            i += 1
            p.poll(0)
            time.sleep(max(0.0, sent + 0.001 - time.monotonic()))
        p.flush(120)
        gaps = [b - a_ for a_, b in zip(acks, acks[1:])]
        result["client"] = {"sent": i, "acked": len(acks), "errors": len(errors),
                            "longest_gap_between_acks_s": round(max(gaps, default=0), 3),
                            "longest_ack_wait_s": round(max(waits, default=0), 3)}

    t = threading.Thread(target=run_e2e)
    t.start()
    time.sleep(a.seconds / 2 + 1)
    killed = time.monotonic()
    c.node(victim).kill9()
    boot = c.node(1).bootstrap
    fenced_at = None
    while time.monotonic() - killed < 120:
        now = leaders(boot)
        if fenced_at is None and any(now.get(k) != victim for k in led):
            fenced_at = time.monotonic()
        if all(now.get(k, -1) not in (-1, victim) for k in led):
            break
        time.sleep(0.05)
    done = time.monotonic()
    out["all_new_leaders_after_kill_s"] = round(done - killed, 3)
    out["first_move_after_kill_s"] = round((fenced_at or done) - killed, 3)
    out["all_moved_after_first_move_s"] = round(done - (fenced_at or done), 3)
    t.join(600)
    out["e2e"] = result
    print(f"failover: {json.dumps(out, default=str)[:1500]}")
    return out


if __name__ == "__main__":
    main()
