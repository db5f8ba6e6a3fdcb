#!/usr/bin/env python3
"""Chaos run: three Weir brokers in network namespaces, idempotent acks=all producers and a
consumer group, one seeded fault per round, and at the end a check that every acknowledged
message is in the log exactly once, in order, at the offset it was acknowledged at.

Usage (as root; scripts/chaos.sh builds the broker and calls this):
    python3 tests/chaos/run.py --rounds 20 --seed 42 [--weir-bin target/release/weir]

Progress lines go to stdout as it runs; the last line is one JSON object (docs/CHAOS.md).
Exit status: 0 all checks passed; 1 a safety check failed (lost, duplicated, reordered, wrong
offset, phantom or diverged read) or a broker crashed; 2 the run could not be completed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

import checker  # noqa: E402
import faults  # noqa: E402
from cluster import Cluster  # noqa: E402
from topology import Topology, netns_works, remove_stale  # noqa: E402
from workload import (ConsumerThread, History, ProducerThread, client_config,  # noqa: E402
                      create_assigned_topic, log_clients_to, read_all)

TOPIC = "chaos"
PROBE_TOPIC = "chaos-probe"
GROUP = "chaos-group"
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


class HarnessError(Exception):
    pass


def wait_for(what: str, pred, timeout_s: float, step_s: float = 1.0):
    """Polls pred() until it returns a truthy value; raises HarnessError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        ok, last = pred()
        if ok:
            return last
        time.sleep(step_s)
    raise HarnessError(f"timed out after {timeout_s:.0f} s waiting for {what}: {last}")


def health(cluster: Cluster, admin: AdminClient, topics: list[str]):
    """(healthy, why not): every broker up, registered and in every ISR of the topics; a
    controller quorum leader known."""
    down = [i for i, n in cluster.nodes.items() if not n.alive()]
    if down:
        return False, f"brokers not running: {down}"
    # A broker restarted within broker.session.timeout.ms is still in every ISR of the
    # metadata; it is back only once it registered again and serves clients.
    starting = [i for i in cluster.nodes if not cluster.serving(i)]
    if starting:
        return False, f"brokers still starting: {starting}"
    try:
        md = admin.list_topics(timeout=5)
    except Exception as e:  # noqa: BLE001
        return False, f"metadata: {e}"
    if len(md.brokers) != len(cluster.nodes):
        return False, f"metadata lists brokers {sorted(md.brokers)}"
    bad = []
    for name in topics + ["__consumer_offsets"]:
        t = md.topics.get(name)
        if t is None:
            if name == "__consumer_offsets":
                continue
            return False, f"topic {name} missing"
        for p, pm in t.partitions.items():
            if pm.leader not in cluster.nodes or len(pm.isrs) != len(cluster.nodes):
                bad.append(f"{name}-{p} leader {pm.leader} isr {sorted(pm.isrs)}")
    if bad:
        return False, f"{len(bad)} partitions not fully replicated, e.g. {bad[:3]}"
    if cluster.quorum_leader() is None:
        return False, "no controller quorum leader"
    return True, "ok"


def leaders_everywhere(admin: AdminClient, topic: str, partitions: int):
    try:
        t = admin.list_topics(topic, timeout=5).topics.get(topic)
    except Exception as e:  # noqa: BLE001
        return False, f"metadata: {e}"
    if t is None:
        return False, "no topic"
    led = {p for p, pm in t.partitions.items() if pm.leader >= 0}
    return len(led) == partitions, f"partitions with a leader: {sorted(led)}"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None, help="default: random, printed")
    ap.add_argument("--weir-bin", default=os.environ.get("WEIR_BIN", "target/release/weir"))
    ap.add_argument("--workdir", default=None, help="default /tmp/wchaos-<pid>")
    ap.add_argument("--keep", action="store_true", help="keep the workdir (logs, data) on success")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=80.0, help="messages/s per producer")
    ap.add_argument("--kinds", default=",".join(faults.KINDS),
                    help="comma-separated fault kinds to draw from")
    ap.add_argument("--heal-timeout", type=float, default=120.0,
                    help="seconds a healed cluster has to get every replica back in sync")
    ap.add_argument("--tmpfs-mb", type=int, default=1024,
                    help="size of the disk-full broker's data tmpfs")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="broker config for all three brokers")
    a = ap.parse_args(argv)
    a.kinds = [k for k in a.kinds.split(",") if k]
    unknown = set(a.kinds) - set(faults.KINDS)
    if unknown:
        ap.error(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(faults.KINDS)}")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    if os.geteuid() != 0:
        say("chaos needs root (network namespaces, tmpfs)")
        return 2
    ok, why = netns_works()
    if not ok:
        say(f"network namespaces unavailable: {why}")
        return 2
    weir_bin = str(Path(a.weir_bin).resolve())
    if not os.access(weir_bin, os.X_OK):
        say(f"no broker binary at {weir_bin} (set WEIR_BIN or --weir-bin)")
        return 2

    # SIGTERM and SIGHUP unwind like Ctrl-C, through the finally below.
    def _raise(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGHUP, _raise)

    stale = remove_stale()
    if stale:
        say(f"removed leftovers of earlier runs: {stale}")
    workdir = Path(a.workdir or f"/tmp/wchaos-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    kinds = a.kinds
    say(f"seed {seed}, {a.rounds} rounds, faults from {kinds}, broker {weir_bin}, workdir {workdir}")

    topo = Topology(3)
    cluster = None
    result: dict = {}
    code = 2
    stop = threading.Event()
    threads: list = []
    try:
        topo.create()
        overrides = dict(kv.split("=", 1) for kv in a.override)
        # Kept small on a small machine; Kafka's default is 50.
        overrides.setdefault("offsets.topic.num.partitions", "10")
        tmpfs_node = rng.choice(sorted(topo.ips)) if "disk_full" in kinds else None
        cluster = Cluster(weir_bin, topo, workdir, overrides, tmpfs_node, a.tmpfs_mb)
        cluster.write_configs()
        say(f"network {topo.subnet}: brokers {topo.ips}, clients {topo.client_ip}"
            + (f"; broker {tmpfs_node} on a {a.tmpfs_mb} MB tmpfs" if tmpfs_node else ""))
        for i in cluster.nodes:
            cluster.start(i)
        log_clients_to(workdir / "clients.log")
        admin = AdminClient(client_config(**{"bootstrap.servers": cluster.bootstrap()}))

        def registered():
            try:
                md = admin.list_topics(timeout=5)
            except Exception as e:  # noqa: BLE001
                return False, str(e)
            return (len(md.brokers) == 3 and cluster.quorum_leader() is not None,
                    f"brokers {sorted(md.brokers)}")
        wait_for("three registered brokers and a quorum leader", registered, 120)
        say(f"cluster up: quorum leader {cluster.quorum_leader()}")

        ids = sorted(cluster.nodes)
        for f in admin.create_topics([NewTopic(TOPIC, num_partitions=a.partitions,
                                               replication_factor=3,
                                               config={"min.insync.replicas": "2"})],
                                     operation_timeout=30).values():
            f.result(timeout=60)
        ids = sorted(cluster.nodes)
        # Each broker the preferred leader of one partition (the disk-full probe's).
        create_assigned_topic(cluster.bootstrap(), PROBE_TOPIC,
                              [ids[k:] + ids[:k] for k in range(len(ids))])
        topics = [TOPIC, PROBE_TOPIC]
        wait_for("topics fully replicated", lambda: health(cluster, admin, topics), 120)

        h = History()
        boot = cluster.bootstrap()
        consumer = ConsumerThread(boot, TOPIC, GROUP, h, stop)
        producers = [ProducerThread(f"p{k}", boot, TOPIC, a.partitions, a.rate, h, stop)
                     for k in range(a.producers)]
        threads = [consumer] + producers
        for t in threads:
            t.start()

        def acks_everywhere():
            for t in threads:
                if t.error is not None:
                    raise HarnessError(f"client thread {t.name} failed: {t.error!r}")
            with h.lock:
                parts = {p for p, ts in h.ack_times.items() if ts}
            return len(parts) == a.partitions, f"acks on partitions {sorted(parts)}"
        wait_for("acknowledgements on every partition", acks_everywhere, 120)
        say("workload running: "
            f"{a.producers} idempotent acks=all producers x {a.rate:g} msg/s, one consumer group")

        ctx = faults.Context(cluster, topo, admin, TOPIC, a.partitions, PROBE_TOPIC, say)
        deck = faults.Deck(rng, kinds)
        counts: Counter = Counter()
        windows = []
        crashes: list[str] = []
        recovery_timeouts = 0
        heal_max = 0.0
        run_start = time.monotonic()
        for r in range(1, a.rounds + 1):
            kind = deck.draw()
            t0 = time.monotonic()
            info = faults.FAULTS[kind](ctx, rng)
            counts[kind] += 1
            for msg in cluster.check_exits():
                crashes.append(f"round {r} ({kind}): {msg}")
                say(f"CRASH {msg}")
            for i, n in cluster.nodes.items():
                if not n.alive():
                    cluster.start(i)
            healed_at = time.monotonic()

            def recovered():
                ok, why = health(cluster, admin, topics)
                if not ok:
                    return ok, why
                # Writable again: every partition acknowledged something since the heal.
                with h.lock:
                    stalled = [p for p in range(a.partitions)
                               if not h.ack_times[p] or h.ack_times[p][-1] < healed_at]
                return not stalled, f"no acknowledgement since the heal on partitions {stalled}"
            try:
                wait_for("recovery", recovered, a.heal_timeout, step_s=0.5)
                heal_s = time.monotonic() - healed_at
                heal_max = max(heal_max, heal_s)
                state = f"recovered in {heal_s:.1f} s"
            except HarnessError as e:
                recovery_timeouts += 1
                state = f"NOT RECOVERED: {e}"
            windows.append((kind, t0, time.monotonic()))
            for t in threads:
                if t.error is not None:
                    raise HarnessError(f"client thread {t.name} failed: {t.error!r}")
            with h.lock:
                acked, reads, errs = len(h.acked), len(h.reads), sum(h.errors.values())
            say(f"round {r}/{a.rounds} {kind} {json.dumps(info)}: {state}; "
                f"acked {acked}, read {reads}, produce errors {errs}")
        run_end = time.monotonic()

        say("stopping the producers (each drains what it has in flight)")
        stop.set()
        for t in producers:
            t.join(timeout=200)
        consumer.join(timeout=30)
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            raise HarnessError(f"client threads did not stop: {alive}")
        for t in threads:
            if t.error is not None:
                raise HarnessError(f"client thread {t.name} failed: {t.error!r}")
        try:
            wait_for("final recovery", lambda: health(cluster, admin, topics), a.heal_timeout)
        except HarnessError as e:
            # Not fully replicated (counted above); the check only needs leaders to read from.
            recovery_timeouts += 1
            say(f"NOT RECOVERED before the final read: {e}")
            wait_for("a leader for every partition",
                     lambda: leaders_everywhere(admin, TOPIC, a.partitions), a.heal_timeout)
        say("reading every partition back")
        final = read_all(boot, TOPIC, a.partitions, timeout_s=300)
        for msg in cluster.check_exits():
            crashes.append(f"end: {msg}")

        res = checker.check(h.sent, h.acked, final, h.reads)
        worst, by_kind = checker.unavailability(h.ack_times, windows, run_start, run_end)
        panics = cluster.panics()
        result = {
            "rounds": a.rounds,
            "seed": seed,
            "faults": dict(sorted(counts.items())),
            "acked": res["acked"],
            "lost": res["lost"],
            "duplicated": res["duplicated"],
            "reordered": res["reordered"],
            "phantom": res["phantom"],
            "wrong_offset": res["wrong_offset"],
            "diverged_reads": res["diverged_reads"],
            "unavailable_s_max": worst,
            "unavailable_s_by_fault": by_kind,
            "sent": res["sent"],
            "unacked_present": res["unacked_present"],
            "consumer_reads": len(h.reads),
            "produce_errors": dict(h.errors),
            "producer_fatal": len(h.fatal),
            "unresolved": sum(p.unresolved for p in producers),
            "storage_probes": ctx.storage_probes,
            "crashes": len(crashes) + len(panics),
            "recovery_timeouts": recovery_timeouts,
            "recovery_s_max": round(heal_max, 1),
            "duration_s": round(time.monotonic() - T0, 1),
        }
        for line in crashes + panics:
            say(f"crash: {line}")
        for f in h.fatal[:10]:
            say(f"producer fatal error: {f}")
        if checker.failed(res):
            say(f"CHECK FAILED; examples: {json.dumps(res['examples'])}")
        bad = checker.failed(res) or crashes or panics
        code = 1 if bad else 0
        result["ok"] = not bad
    except (HarnessError, TimeoutError) as e:
        say(f"run not completed: {e}")
        result = {"rounds": a.rounds, "seed": seed, "ok": False, "error": str(e)}
        code = 2
    except Exception as e:  # noqa: BLE001 - the harness's own failure: still clean up, still JSON
        import traceback
        traceback.print_exc(file=sys.stdout)
        result = {"rounds": a.rounds, "seed": seed, "ok": False, "error": repr(e)}
        code = 2
    except KeyboardInterrupt as e:
        say(f"interrupted ({e}); cleaning up")
        result = {"rounds": a.rounds, "seed": seed, "ok": False, "error": "interrupted"}
        code = 130
    finally:
        stop.set()
        if cluster is not None:
            if code != 0 and cluster is not None:
                for i in cluster.nodes:
                    say(f"broker {i} log tail:\n{cluster.log_tail(i, 8)}")
            cluster.stop_all()
        topo.destroy()
        # Kept after a round that did not recover too: its logs are the evidence.
        if code == 0 and not a.keep and not result.get("recovery_timeouts"):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"logs and data kept in {workdir}")
    print(json.dumps(result), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
