#!/usr/bin/env python3
"""Two brokers side by side in one run: the same weir-bench workloads and Kafka's own
kafka-producer-perf-test against each, visited alternately, with the broker's CPU time read
from /proc. Prints a table of medians and the ratio A/B per figure.

    cargo build --release -p weir -p weir-bench
    scripts/bench-compare.py                               # weir vs kafka (Apache Kafka 4.4)
    scripts/bench-compare.py --a weir --b kafka --rounds 3 --duration 10s --out bench-compare
    scripts/bench-compare.py --a mine=127.0.0.1:9092@4242 --b kafka   # a broker already running

A broker is `weir` (target/release/weir, a fresh data directory each visit), `kafka` (Apache
Kafka 4.4 through scripts/kafka-reference.sh, a fresh data directory each visit), or
NAME=HOST:PORT@PID for one already running (its PID for the CPU figures; topics are named per
visit, so runs do not collide). On a small machine the broker and the load are pinned apart:
the broker to --broker-cpus (Weir: weir.cores=1 and weir.cpus; Kafka's JVM: taskset), the
load generators to --bench-cpus.

Figures: throughput (MB/s of payload, MB = 10^6 bytes), latency percentiles in ms, and broker
CPU per MB: the broker's CPU time (utime + stime of its process, all threads) over the command's
wall time, divided by the measured MB/s, i.e. CPU-seconds per MB if the rate held.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
READY_TIMEOUT_S = 120


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, proc=None, timeout=READY_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{host}:{port} not reachable within {timeout}s")


# Per-partition retention and a short check interval on both brokers: full-rate runs write
# hundreds of MB/s, and a visit must not fill the disk (with 256 MiB per partition and a 5 s
# check, one visit peaked at ~15 GB).
RETENTION = {
    "log.retention.bytes": str(64 << 20),
    "log.retention.check.interval.ms": "2000",
    "log.segment.bytes": str(32 << 20),
    "num.partitions": "1",
    "auto.create.topics.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
}


class Broker:
    """One broker for one visit."""

    def __init__(self, spec: str, broker_cpus: str, workdir: Path):
        self.spec, self.cpus, self.workdir = spec, broker_cpus, workdir
        self.proc = None
        if spec == "weir":
            self.name = "weir"
        elif spec == "kafka":
            self.name = "kafka"
        else:
            m = re.fullmatch(r"([\w.-]+)=([\w.-]+):(\d+)@(\d+)", spec)
            if not m:
                raise SystemExit(f"broker spec {spec!r}: expected weir, kafka or NAME=HOST:PORT@PID")
            self.name = m.group(1)
            self.bootstrap, self.pid = f"{m.group(2)}:{m.group(3)}", int(m.group(4))

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.spec == "weir":
            port = free_port()
            self.bootstrap = f"127.0.0.1:{port}"
            data = self.workdir / "data"
            conf = {"node.id": "1", "listeners": f"PLAINTEXT://{self.bootstrap}",
                    "log.dirs": str(data), "weir.cores": str(len(cpu_list(self.cpus))),
                    "weir.cpus": self.cpus, **RETENTION}
            (self.workdir / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in conf.items()))
            self.log = open(self.workdir / "weir.log", "wb")
            self.proc = subprocess.Popen([str(REPO / "target/release/weir"), "--config",
                                          str(self.workdir / "server.properties")],
                                         stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
            self.pid = self.proc.pid
            wait_port("127.0.0.1", port, self.proc)
        elif self.spec == "kafka":
            env = dict(os.environ, KAFKA_CPUS=self.cpus)
            env.setdefault("KAFKA_HEAP_OPTS", "-Xmx1G -Xms1G")
            out = subprocess.run([str(REPO / "scripts/kafka-reference.sh"), "start", str(self.workdir)]
                                 + [f"{k}={v}" for k, v in RETENTION.items()],
                                 env=env, capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"kafka did not start: {out.stderr[-2000:]}")
            self.bootstrap = (self.workdir / "bootstrap").read_text().strip()
            self.pid = int((self.workdir / "kafka.pid").read_text())

    def stop(self):
        if self.spec == "weir" and self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.log.close()
        elif self.spec == "kafka":
            subprocess.run([str(REPO / "scripts/kafka-reference.sh"), "stop", str(self.workdir)], timeout=120)
        if self.spec in ("weir", "kafka"):
            subprocess.run(["rm", "-rf", str(self.workdir / "data")])


def cpu_list(spec: str) -> list[int]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def run_measured(broker: Broker, argv: list[str], timeout: float) -> tuple[str, float, float]:
    """Runs one load command; returns its stdout, the broker's CPU seconds and the wall time."""
    c0, t0 = cpu_seconds(broker.pid), time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    c1, t1 = cpu_seconds(broker.pid), time.monotonic()
    if p.returncode != 0:
        log(f"  ! {' '.join(map(shlex.quote, argv))} exited {p.returncode}\n{p.stderr[-1500:]}")
    return p.stdout, c1 - c0, t1 - t0


def bench_json(stdout: str) -> dict:
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def lat(j: dict, prefix: str) -> dict:
    return {f"{prefix} {k[:-3]} ms": v for k, v in (j or {}).items()
            if k.endswith("_ms") and k[:-3] in ("p50", "p99", "p99.9")}


def visit(broker: Broker, tag: str, a) -> dict:
    """Every workload once against one broker; returns {figure: value}."""
    bench = ["taskset", "-c", a.bench_cpus, str(REPO / "target/release/weir-bench")]
    common = ["--bootstrap-server", broker.bootstrap, "--message-size", "1024",
              "--duration", a.duration, "--warmup", a.warmup, "--json"]
    tmo = 600
    fig = {}

    def with_cpu(name, mbps, cpu, wall):
        fig[f"{name} MB/s"] = mbps
        if mbps:
            fig[f"{name} broker CPU-s/MB"] = (cpu / wall) / mbps

    topic = f"cmp-{tag}-acks1"
    for acks, t in (("1", topic), ("all", f"cmp-{tag}-acksall")):
        out, cpu, wall = run_measured(broker, bench + ["produce", "--topic", t, "--partitions",
                                                      str(a.partitions), "--acks", acks] + common, tmo)
        j = bench_json(out)
        pr = j.get("produce", {})
        with_cpu(f"produce acks={acks}", pr.get("throughput", {}).get("mb_per_sec"), cpu, wall)
        fig.update(lat(pr.get("ack_latency"), f"produce acks={acks} ack"))
        log(f"  {broker.name} produce acks={acks}: {fig.get(f'produce acks={acks} MB/s')}")

    out, cpu, wall = run_measured(broker, bench + ["consume", "--topic", topic, "--from", "earliest",
                                                  "--partitions", str(a.partitions),
                                                  "--consumers", "1", "--bootstrap-server", broker.bootstrap,
                                                  "--message-size", "1024", "--duration", a.duration,
                                                  "--warmup", "0s", "--json"], tmo)
    j = bench_json(out)
    with_cpu("consume", j.get("consume", {}).get("throughput", {}).get("mb_per_sec"), cpu, wall)
    log(f"  {broker.name} consume: {fig.get('consume MB/s')}")

    out, cpu, wall = run_measured(broker, bench + ["e2e", "--topic", f"cmp-{tag}-e2e", "--partitions",
                                                  str(a.partitions), "--rate", "10000"] + common, tmo)
    j = bench_json(out)
    fig.update(lat(j.get("e2e_latency"), "e2e 10k msg/s"))
    fig["e2e 10k msg/s ok"] = 1.0 if j.get("ok") else 0.0
    pr = j.get("produce", {}).get("throughput", {}).get("mb_per_sec")
    if pr:
        fig["e2e 10k msg/s broker CPU-s/MB"] = (cpu / wall) / pr
    log(f"  {broker.name} e2e p99: {fig.get('e2e 10k msg/s p99 ms')}")

    if a.sweep:
        out, cpu, wall = run_measured(broker, bench + ["sweep", "--topic", f"cmp-{tag}-sweep",
                                                      "--partition-counts", a.sweep] + common, 3600)
        for row in bench_json(out).get("sweep", []):
            n = row["partitions"]
            fig[f"sweep {n} partitions MB/s"] = row["throughput"]["mb_per_sec"]
            fig.update(lat(row.get("ack_latency"), f"sweep {n} partitions ack"))
        log(f"  {broker.name} sweep done")

    if a.perf_test_records:
        env = dict(os.environ, KAFKA_TOOL_CPUS=a.bench_cpus, KAFKA_TOOL_JVM_OPTS="-XX:+UseG1GC",
                   KAFKA_HEAP_OPTS="-Xmx1G")
        argv = [str(REPO / "scripts/kafka-tool.sh"), "kafka-producer-perf-test", "--bootstrap-server",
                broker.bootstrap, "--topic", f"cmp-{tag}-perf", "--num-records", str(a.perf_test_records),
                "--record-size", "1024", "--throughput", "-1", "--command-property", "acks=1"]
        c0, t0 = cpu_seconds(broker.pid), time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=tmo, env=env)
        cpu, wall = cpu_seconds(broker.pid) - c0, time.monotonic() - t0
        m = re.search(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
                      r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th",
                      p.stdout)
        if m:
            # The tool's MB is 2^20 bytes; converted to 10^6 like weir-bench's.
            mbps = float(m.group(3)) * 1.048576
            with_cpu("kafka-producer-perf-test", mbps, cpu, wall)
            fig["kafka-producer-perf-test p50 ms"] = float(m.group(6))
            fig["kafka-producer-perf-test p99 ms"] = float(m.group(8))
            fig["kafka-producer-perf-test p99.9 ms"] = float(m.group(9))
        else:
            log(f"  ! kafka-producer-perf-test: {p.stdout[-500:]} {p.stderr[-1500:]}")
        log(f"  {broker.name} kafka-producer-perf-test: {fig.get('kafka-producer-perf-test MB/s')}")
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", default="weir", help="first broker (ratios are A/B); default weir")
    ap.add_argument("--b", default="kafka", help="second broker; default kafka")
    ap.add_argument("--rounds", type=int, default=2, help="visits per broker, alternating A,B then B,A")
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--warmup", default="2s")
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--sweep", default="16,100,500,2000", help="partition counts; empty to skip")
    ap.add_argument("--perf-test-records", type=int, default=300000, help="0 to skip")
    ap.add_argument("--broker-cpus", default="0")
    ap.add_argument("--bench-cpus", default="1")
    ap.add_argument("--out", type=Path, help="writes every visit's figures and the table here")
    a = ap.parse_args()
    for binary in ("weir", "weir-bench"):
        if not (REPO / "target/release" / binary).exists():
            raise SystemExit(f"target/release/{binary} missing: cargo build --release -p weir -p weir-bench")

    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    results: dict[str, list[dict]] = {}
    order = []
    for r in range(a.rounds):
        order += [a.a, a.b] if r % 2 == 0 else [a.b, a.a]
    names = {}
    for i, spec in enumerate(order):
        b = Broker(spec, a.broker_cpus, work / f"visit{i}")
        names[spec] = b.name
        log(f"visit {i + 1}/{len(order)}: {b.name}")
        b.start()
        try:
            fig = visit(b, f"{b.name}-{i}-{int(time.time())}", a)
        finally:
            b.stop()
        results.setdefault(b.name, []).append(fig)
        if a.out:
            a.out.mkdir(parents=True, exist_ok=True)
            (a.out / "visits.json").write_text(json.dumps(results, indent=1) + "\n")

    na, nb = names[a.a], names[a.b]
    keys = [k for k in results[na][0] if k in results[nb][0]]
    rows = [f"| figure | {na} (median of {len(results[na])}) | {nb} (median of {len(results[nb])}) | {na}/{nb} |",
            "|---|---:|---:|---:|"]
    for k in keys:
        va = [v[k] for v in results[na] if v.get(k) is not None]
        vb = [v[k] for v in results[nb] if v.get(k) is not None]
        if not va or not vb:
            continue
        ma, mb = statistics.median(va), statistics.median(vb)
        ratio = f"{ma / mb:.2f}" if mb else "-"
        rows.append(f"| {k} | {ma:.4g} | {mb:.4g} | {ratio} |")
    table = "\n".join(rows)
    print(table)
    if a.out:
        (a.out / "table.md").write_text(table + "\n")
    subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
