"""The faults, one per round, chosen from the seed. Each applies its fault, holds it for a
seeded duration while the workload runs, heals it, and returns what it did.

The seed fixes the sequence of kinds, durations and choices (which partition's leader, which
loss rate); the brokers they land on depend on where leadership happens to be, which the
progress lines print, so a failing round can be repeated by hand.
"""
from __future__ import annotations

import errno
import os
import random
import threading
import time

from confluent_kafka import Producer

from workload import client_config, create_assigned_topic
from confluent_kafka.admin import AdminClient

KINDS = ("kill9", "pause", "isolate_peers", "isolate_clients", "link_down", "packet_loss",
         "kill_controller", "disk_full")


class Context:
    def __init__(self, cluster, topo, admin: AdminClient, topic: str, partitions: int,
                 probe_topic: str, log):
        self.cluster = cluster
        self.topo = topo
        self.admin = admin
        self.topic = topic
        self.partitions = partitions
        self.probe_topic = probe_topic
        self.log = log
        self.storage_probes: dict[str, int] = {}
        self.probes_made = 0


class Deck:
    """Kinds in seeded shuffled decks: every kind comes up once per len(kinds) rounds, so even a
    short run covers them, in an order the seed fixes."""

    def __init__(self, rng: random.Random, kinds):
        self.rng = rng
        self.kinds = list(kinds)
        self.cards: list[str] = []

    def draw(self) -> str:
        if not self.cards:
            self.cards = list(self.kinds)
            self.rng.shuffle(self.cards)
        return self.cards.pop()


def leaders(ctx: Context, topic: str) -> dict[int, int]:
    try:
        md = ctx.admin.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return {}
        return {p: pm.leader for p, pm in t.partitions.items()}
    except Exception:  # noqa: BLE001 - metadata may be briefly unreachable mid-fault
        return {}


def _pick_leader(ctx: Context, rng: random.Random) -> tuple[int, str]:
    """The leader of a seeded partition of the workload topic (the broker whose loss hurts),
    or a seeded broker if no leader is known."""
    part = rng.randrange(ctx.partitions)
    fallback = rng.choice(sorted(ctx.cluster.nodes))
    lead = leaders(ctx, ctx.topic).get(part, -1)
    if lead in ctx.cluster.nodes:
        return lead, f"leader of p{part}"
    return fallback, "no leader known: seeded broker"


def _sleep(s: float) -> None:
    time.sleep(s)


def kill9(ctx, rng):
    t, why = _pick_leader(ctx, rng)
    down = round(rng.uniform(0.5, 10.0), 1)
    ctx.cluster.kill(t)
    _sleep(down)
    ctx.cluster.start(t)
    return {"broker": t, "why": why, "down_s": down}


def pause(ctx, rng):
    t, why = _pick_leader(ctx, rng)
    # Below and above broker.session.timeout.ms (9 s): a leader back in time, and one fenced.
    held = round(rng.uniform(2.0, 16.0), 1)
    ctx.cluster.pause(t)
    try:
        _sleep(held)
    finally:
        ctx.cluster.resume(t)
    return {"broker": t, "why": why, "frozen_s": held}


def _network(ctx, rng, apply, lo, hi, **extra):
    t, why = _pick_leader(ctx, rng)
    held = round(rng.uniform(lo, hi), 1)
    apply(t)
    try:
        _sleep(held)
    finally:
        ctx.topo.heal(t)
    return {"broker": t, "why": why, "held_s": held, **extra}


def isolate_peers(ctx, rng):
    return _network(ctx, rng, ctx.topo.cut_from_peers, 4.0, 20.0)


def isolate_clients(ctx, rng):
    return _network(ctx, rng, ctx.topo.cut_from_clients, 4.0, 20.0)


def link_down(ctx, rng):
    return _network(ctx, rng, lambda t: ctx.topo.link(t, False), 4.0, 16.0)


def packet_loss(ctx, rng):
    pct = rng.choice([10, 30, 50, 70])
    return _network(ctx, rng, lambda t: ctx.topo.loss(t, pct), 8.0, 20.0, loss_pct=pct)


def kill_controller(ctx, rng):
    down = round(rng.uniform(0.5, 8.0), 1)
    t = ctx.cluster.quorum_leader()
    why = "controller quorum leader"
    if t is None:
        t = rng.choice(sorted(ctx.cluster.nodes))
        why = "no quorum leader known: seeded broker"
    ctx.cluster.kill(t)
    _sleep(down)
    ctx.cluster.start(t)
    return {"broker": t, "why": why, "down_s": down}


def _fill(path: str) -> int:
    """Writes a ballast file until the file system says ENOSPC; returns the bytes written."""
    chunk = b"\0" * (1 << 20)
    written = 0
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                # Fill the last partial chunk too, down to the page.
                small = b"\0" * 4096
                while True:
                    try:
                        written += f.write(small)
                    except OSError:
                        return written


def _probe(ctx, topic: str, target: int) -> str:
    """Produces one message, acks=all and no retries, to the probe topic's partition, which the
    full broker leads: the answer must be KAFKA_STORAGE_ERROR (a full disk refuses the write;
    nothing is acknowledged)."""
    if leaders(ctx, topic).get(0) != target:
        return "probe_partition_not_led_by_the_full_broker"
    part = 0
    outcome = {}
    done = threading.Event()

    def on_delivery(err, msg):
        outcome["r"] = "acknowledged" if err is None else err.name()
        done.set()

    p = Producer(client_config(**{
        "bootstrap.servers": ctx.cluster.bootstrap(), "acks": "all", "enable.idempotence": False,
        "retries": 0, "message.timeout.ms": 15000, "request.timeout.ms": 10000}))
    p.produce(topic, value=b"probe", partition=part, on_delivery=on_delivery)
    deadline = time.monotonic() + 20
    while not done.is_set() and time.monotonic() < deadline:
        p.poll(0.2)
    p.flush(1)
    return outcome.get("r", "no_answer")


def _probe_topic_led_by(ctx, target: int) -> str:
    """A fresh one-partition topic whose preferred (so first) leader is `target`: Weir has no
    ElectLeaders yet to move an existing partition's leadership back to it. Waits at most 20 s
    for the metadata to show `target` leading it."""
    ctx.probes_made += 1
    name = f"{ctx.probe_topic}-{ctx.probes_made}"
    others = [i for i in sorted(ctx.cluster.nodes) if i != target]
    create_assigned_topic(ctx.cluster.bootstrap(), name, [[target] + others])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and leaders(ctx, name).get(0) != target:
        time.sleep(0.5)
    return name


def disk_full(ctx, rng):
    c = ctx.cluster
    t = c.tmpfs_node
    held = round(rng.uniform(4.0, 12.0), 1)
    probe_topic = _probe_topic_led_by(ctx, t)
    ballast = os.path.join(str(c.nodes[t].data_dir), "chaos-ballast")
    filled = _fill(ballast)
    try:
        probe = _probe(ctx, probe_topic, t)
        ctx.storage_probes[probe] = ctx.storage_probes.get(probe, 0) + 1
        _sleep(held)
    finally:
        os.unlink(ballast)
    # Kafka takes a failed log directory offline until the broker restarts; so does this.
    exited_by_itself = not c.nodes[t].alive()
    if exited_by_itself:
        c.nodes[t].expected_exit = True
    stopped_cleanly = c.terminate(t)
    c.start(t)
    return {"broker": t, "ballast_mb": filled >> 20, "held_s": held, "probe": probe,
            "exited_by_itself": exited_by_itself, "sigterm_stopped_it": stopped_cleanly}


FAULTS = {
    "kill9": kill9,
    "pause": pause,
    "isolate_peers": isolate_peers,
    "isolate_clients": isolate_clients,
    "link_down": link_down,
    "packet_loss": packet_loss,
    "kill_controller": kill_controller,
    "disk_full": disk_full,
}
assert set(FAULTS) == set(KINDS)
