"""The seeds' doomsday, both ways (issue #15), with real processes and real clients: three
controller-only nodes (so the quorum survives) and three broker-only nodes holding one RF=3
partition. confluent-kafka writes with acks=all; the three brokers die one after another, the
leader last.

* `unclean.leader.election.enable=false` (choice 1): the partition stays offline while the first
  two return, and comes back with nothing acknowledged lost when the last leader returns.
* `unclean.leader.election.enable=true` (choice 2): the first broker back leads at once; what the
  others held beyond it is lost, and what was lost is exactly what they recorded
  (`weir-admin topic unclean`).
* `min.insync.replicas=2` (KIP-966, Kafka 4.1's default ELR): the follower that left the ISR
  while it was at min ISR (the first to die) may not lead; the one that left it below min ISR is
  an eligible leader replica and leads cleanly, with everything acks=all acknowledged.

The classic doomsday needs `min.insync.replicas=1` for the topic: only then does the leader go on
acknowledging alone, so that only it holds the last writes. Kill -9 loses no written data here
(the page cache survives a process), so "lost" means lost to an election, never to the disk.

Between a write and the next kill the test waits for the replicas' high-watermark checkpoints
(`replica.high.watermark.checkpoint.interval.ms`, 1 s here), so a recorded COMMITTED count is
what that replica knew, not what its last checkpoint missed.

The figures the tests print (`-s`): how long the partition was offline, what was lost, what was
recorded. Waits are bounded; nothing asserts speed.
"""
from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

import helpers as h
from cluster import Cluster, ClusterError, Node, wait_until, weir_admin

SPLIT6 = {1: ["controller"], 2: ["controller"], 3: ["controller"],
          4: ["broker"], 5: ["broker"], 6: ["broker"]}
CHECKPOINT_MS = 1000
OVERRIDES = {
    "default.replication.factor": "3",
    # The returning old leader must not take leadership back by rebalancing while the test
    # looks at who leads.
    "auto.leader.rebalance.enable": "false",
    "replica.high.watermark.checkpoint.interval.ms": str(CHECKPOINT_MS),
}
BATCH = 25
# Time for a follower to learn the high watermark of the last write (its next fetch answer) and
# for every replica to checkpoint it; a bound on a wait, not on speed.
SETTLE_S = 3 * CHECKPOINT_MS / 1000
# How long an offline partition is watched for an election that must not happen: longer than a
# session (2.25 s) plus several controller ticks and broker heartbeats.
HOLD_S = 6.0
BOUND_S = 60.0  # a bound on waiting for the cluster to act


def acks_all(c: Cluster, topic: str, tag: bytes, n: int = BATCH,
             timeout_ms: int = 30000) -> tuple[list[tuple[int, bytes]], list[tuple[bytes, str]]]:
    """Writes `n` values with an idempotent acks=all producer; (acknowledged (offset, value)s,
    refused (value, error)s)."""
    p = h.producer(c.bootstrap(), acks="all", **{"enable.idempotence": True,
                                                 "message.timeout.ms": timeout_ms})
    reports = h.produce_and_collect(p, [(None, b"%s-%03d" % (tag, i)) for i in range(n)], topic,
                                    timeout=timeout_ms / 1000 + 30, partition=0)
    acked = [(r[2], r[4]) for r in reports if r[0] is None]
    refused = [(r[4], str(r[0])) for r in reports if r[0] is not None]
    return acked, refused


def acked_all(c: Cluster, topic: str, tag: bytes) -> list[tuple[int, bytes]]:
    acked, refused = acks_all(c, topic, tag)
    assert not refused, refused
    return acked


def read_back(c: Cluster, topic: str, expected: int) -> dict[int, bytes]:
    return {m.offset(): m.value()
            for m in h.consume_all(c.bootstrap(), topic, [0], expected=expected, timeout=BOUND_S)}


def wait_isr(c: Cluster, topic: str, via: Node, isr: tuple[int, ...]):
    wait_until(f"{topic}: ISR {isr} on {via.name}",
               lambda: c.partition(topic, via=via).isr == tuple(sorted(isr)), BOUND_S,
               detail=c.logs)


def wait_leader(c: Cluster, topic: str, leader: int, timeout: float = BOUND_S):
    """Until every live broker says `leader` leads; that broker's leader epoch."""
    def led():
        states = [c.partition(topic, via=n) for n in c.brokers()]
        return all(s.leader == leader for s in states) and states[0].leader_epoch
    return wait_until(f"{topic} led by {leader} on every live broker", led, timeout,
                      detail=c.logs)


def hold_offline(c: Cluster, topic: str, seconds: float = HOLD_S):
    """The partition has no leader on any live broker, and keeps none for `seconds`. A probe
    that gets no answer (a loaded machine) proves nothing either way and is asked again; every
    broker must have answered within the hold."""
    def offline():
        return all(c.partition(topic, via=n).leader == -1 for n in c.brokers())
    wait_until(f"{topic} offline", offline, BOUND_S, detail=c.logs)
    answered: set[int] = set()
    deadline = time.monotonic() + seconds
    while True:
        for n in c.brokers():
            try:
                st = c.partition(topic, via=n)
            except ClusterError:
                continue
            answered.add(n.node_id)
            assert st.leader == -1, f"{topic} got leader {st.leader} on {n.name}: {st}\n{c.logs()}"
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    missing = {n.node_id for n in c.brokers()} - answered
    assert not missing, f"brokers {missing} never answered Metadata during the hold\n{c.logs()}"


def assert_no_errors(c: Cluster):
    """Dying, returning and truncating are the cluster's ordinary business: no node logs an
    error or panics over them."""
    bad = [f"{n.name}: {line}" for n in c.nodes.values() for line in n.log_text().splitlines()
           if " ERROR " in line or "panicked" in line]
    assert not bad, "\n".join(bad[:20])


def unclean_rows(c: Cluster, topic: str, via: Node) -> dict:
    return weir_admin(via.bootstrap, "topic", "unclean", topic)


@dataclass
class Doomsday:
    """One partition brought down: `first` and `second` are the followers in the order they
    died, `leader` died last. `acked` is every acknowledged (offset, value), by batch."""
    c: Cluster
    topic: str
    leader: Node
    first: Node
    second: Node
    batches: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    refused: list[tuple[bytes, str]] = field(default_factory=list)
    leader_died: float = 0.0

    @property
    def acked(self) -> dict[int, bytes]:
        return {o: v for b in self.batches.values() for o, v in b}


def bring_down(c: Cluster, topic: str, second_stops_cleanly: bool = False,
               alone_refused: bool = False) -> Doomsday:
    """Acknowledged writes, then the followers die one after the other (kill -9; the second
    with SIGTERM if `second_stops_cleanly`) with a batch of writes after each death, then the
    leader dies (kill -9). With min.insync.replicas=2 (`alone_refused`) the last batch is
    refused, the ISR being the leader alone, and `batches["leader alone"]` is empty."""
    st = c.partition(topic)
    leader = c.node(st.leader)
    first, second = (c.node(r) for r in st.replicas if r != st.leader)
    d = Doomsday(c, topic, leader, first, second)
    d.batches["all three"] = acked_all(c, topic, b"all3")
    time.sleep(SETTLE_S)
    first.kill9()
    wait_isr(c, topic, leader, (leader.node_id, second.node_id))
    d.batches["leader and second"] = acked_all(c, topic, b"two")
    time.sleep(SETTLE_S)
    if second_stops_cleanly:
        assert second.stop(signal.SIGTERM) == 0, second.log_tail()
    else:
        second.kill9()
    wait_isr(c, topic, leader, (leader.node_id,))
    # Below min.insync.replicas the writes are refused (retried by the client until its
    # message timeout, kept short then); at min ISR 1 the leader acknowledges them alone.
    d.batches["leader alone"], d.refused = acks_all(
        c, topic, b"alone", timeout_ms=8000 if alone_refused else 30000)
    time.sleep(SETTLE_S)
    leader.kill9()
    d.leader_died = time.monotonic()
    return d


def start_all(*nodes: Node):
    for n in nodes:
        n.launch()
    for n in nodes:
        n.wait_ready()


def make_cluster(cluster_factory):
    return cluster_factory(SPLIT6, OVERRIDES)


def test_doomsday_unclean_false_waits_for_the_last_leader_and_loses_nothing(cluster_factory):
    c = make_cluster(cluster_factory)
    t = h.topic_name("doom-wait")
    c.create_topic(t, rf=3, config={"min.insync.replicas": "1",
                                    "unclean.leader.election.enable": "false"})
    d = bring_down(c, t)
    assert not d.refused and all(len(b) == BATCH for b in d.batches.values()), d.batches

    # The first two back: neither holds what the leader acknowledged alone.
    start_all(d.first, d.second)
    hold_offline(c, t)
    # A client's write in the meantime is refused, not taken by a replica that would lose it.
    acked, refused = acks_all(c, t, b"offline", n=3, timeout_ms=4000)
    assert not acked and len(refused) == 3, (acked, refused)
    hold_offline(c, t, 0)

    back = time.monotonic()
    start_all(d.leader)
    epoch = wait_leader(c, t, d.leader.node_id)
    led = time.monotonic()
    got = read_back(c, t, len(d.acked))
    lost = {o: v for o, v in d.acked.items() if got.get(o) != v}
    assert not lost, f"acknowledged records lost: {sorted(lost)}"
    assert sorted(got) == sorted(d.acked), "records beyond the acknowledged ones"
    wait_isr(c, t, d.leader, (4, 5, 6))

    # The old leader came back from kill -9: KIP-966 takes an uncleanly restarted broker out of
    # the ISR, so it leads again as the last known leader, an election Kafka counts as unclean.
    # Weir records it; it cost nothing: the leader had everything, no replica discarded a record.
    def reported():
        rows = unclean_rows(c, t, d.first)
        return rows if all(e["leader_log_end"] is not None for e in rows["elections"]) else None
    rows = wait_until("the election's report", reported, BOUND_S, detail=c.logs)
    for e in rows["elections"]:
        assert (e["leader"], e["leader_epoch"], e["leader_log_end"]) == (
            d.leader.node_id, epoch, len(d.acked)), rows
    assert rows["discarded"] == [], rows
    print(f"\ndoomsday unclean=false: offline {led - d.leader_died:.1f} s from the leader's "
          f"kill -9 (it was restarted after {back - d.leader_died:.1f} s and led "
          f"{led - back:.1f} s later, epoch {epoch}); {len(d.acked)} acknowledged, 0 lost; "
          f"recorded: {rows}")
    assert_no_errors(c)


def test_doomsday_unclean_true_first_back_leads_and_the_loss_is_recorded(cluster_factory):
    c = make_cluster(cluster_factory)
    t = h.topic_name("doom-take")
    c.create_topic(t, rf=3, config={"min.insync.replicas": "1",
                                    "unclean.leader.election.enable": "true"})
    d = bring_down(c, t)
    assert not d.refused and all(len(b) == BATCH for b in d.batches.values()), d.batches
    kept = len(d.batches["all three"])

    # The first to die is the first back, and it leads at once: availability over the writes
    # only the others held.
    back = time.monotonic()
    start_all(d.first)
    epoch = wait_leader(c, t, d.first.node_id)
    led = time.monotonic()
    after = acked_all(c, t, b"after")
    start_all(d.second, d.leader)
    wait_isr(c, t, d.first, (4, 5, 6))

    got = read_back(c, t, kept + len(after))
    expected = {o: v for o, v in d.batches["all three"] + after}
    assert got == expected, (sorted(got.items()), sorted(expected.items()))
    lost = {o: v for o, v in d.acked.items() if got.get(o) != v}
    assert sorted(lost) == list(range(kept, kept + 2 * BATCH)), sorted(lost)

    # What was lost is what the brokers recorded: the election (its leader's log end where the
    # lost range starts), and per returning replica the range it discarded, all of it
    # acknowledged and known to it as committed.
    def recorded():
        rows = unclean_rows(c, t, d.first)
        return rows if len(rows["discarded"]) == 2 else None
    rows = wait_until("both returning replicas' discards recorded", recorded, BOUND_S,
                      detail=c.logs)
    [e] = rows["elections"]
    assert (e["leader"], e["leader_epoch"], e["leader_log_end"]) == (d.first.node_id, epoch,
                                                                    kept), rows
    assert e["replaced_isr"] == [d.leader.node_id], rows
    by_broker = {r["broker"]: r for r in rows["discarded"]}
    end_second = kept + BATCH
    end_leader = kept + 2 * BATCH
    for broker, end in ((d.second.node_id, end_second), (d.leader.node_id, end_leader)):
        r = by_broker[broker]
        assert (r["from_offset"], r["to_offset"]) == (kept, end), rows
        assert r["records"] == r["committed"] == end - kept, rows
        assert r["leader_epoch"] == epoch, rows
    # The leader's range is exactly the acknowledged records lost.
    assert set(range(by_broker[d.leader.node_id]["from_offset"],
                     by_broker[d.leader.node_id]["to_offset"])) == set(lost)
    for n in c.brokers():
        assert unclean_rows(c, t, n) == rows, n.name
    print(f"\ndoomsday unclean=true: offline {led - d.leader_died:.1f} s from the leader's kill -9 "
          f"(the first follower was restarted after {back - d.leader_died:.1f} s and led "
          f"{led - back:.1f} s later, epoch {epoch}); {len(d.acked)} acknowledged, {len(lost)} "
          f"lost (offsets {min(lost)}..{max(lost)}); recorded: {rows}")
    assert_no_errors(c)


def test_doomsday_min_isr_2_the_eligible_leader_replica_leads_cleanly(cluster_factory):
    """min.insync.replicas=2: the first follower leaves the ISR at min ISR (not eligible), the
    second below it (into the ELR). It stops cleanly (SIGTERM): KIP-966 takes a broker that
    restarts after an unclean shutdown out of the ELR, as it may have lost its unflushed tail."""
    c = make_cluster(cluster_factory)
    t = h.topic_name("doom-elr")
    c.create_topic(t, rf=3, config={"min.insync.replicas": "2",
                                    "unclean.leader.election.enable": "false"})
    d = bring_down(c, t, second_stops_cleanly=True, alone_refused=True)
    assert not d.batches["leader alone"], "acks=all acknowledged below min.insync.replicas"
    assert len(d.refused) == BATCH, d.refused
    assert len(d.acked) == 2 * BATCH

    start_all(d.first)
    hold_offline(c, t)
    back = time.monotonic()
    start_all(d.second)
    epoch = wait_leader(c, t, d.second.node_id)
    led = time.monotonic()
    got = read_back(c, t, len(d.acked))
    assert got == d.acked, (sorted(got.items()), sorted(d.acked.items()))
    start_all(d.leader)
    wait_isr(c, t, d.second, (4, 5, 6))
    got = read_back(c, t, len(d.acked))
    assert got == d.acked
    rows = unclean_rows(c, t, d.first)
    assert rows == {"elections": [], "discarded": []}, rows
    print(f"\ndoomsday min.insync.replicas=2: offline {led - d.leader_died:.1f} s; the ELR member "
          f"led {led - back:.1f} s after its restart (epoch {epoch}); {len(d.acked)} acknowledged, "
          f"0 lost, {len(d.refused)} refused while the ISR was the leader alone")
    assert_no_errors(c)

