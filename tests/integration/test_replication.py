"""Replication with real processes and real clients (issue #15): three combined KRaft nodes,
RF=3, min.insync.replicas=2, confluent-kafka idempotent acks=all producers and a consumer group
running while partition leaders are killed with -9 (and restarted), or frozen with SIGSTOP past
their session and woken again, round after round.

The checks are the acknowledged-write ones: every acknowledged message is read back exactly once,
at the offset its producer was told, per partition in the order acknowledged; the group keeps its
committed offsets across coordinator moves. Waits are bounded; nothing asserts speed.
"""
from __future__ import annotations

import struct
import threading
import time
import uuid
from collections import defaultdict

from confluent_kafka import Consumer, TopicPartition

import helpers as h
from cluster import wait_until

COMBINED = {i: ["broker", "controller"] for i in (1, 2, 3)}
REPLICATED = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "offsets.topic.num.partitions": "3",
    # A follower that missed a round rejoins the ISR as soon as it is caught up; one that is
    # gone leaves it after this long (Kafka's default is 30 s: too slow for a test).
    "replica.lag.time.max.ms": "5000",
}
PARTITIONS = 3
ROUNDS = 3
# Bounds on waiting, not speed assertions (a loaded 2-core CI machine).
ELECTION_BOUND_S = 45.0
REJOIN_BOUND_S = 90.0


def partition_state(bootstrap: str, topic: str) -> dict[int, tuple[int, tuple[int, ...]]]:
    """{partition: (leader, isr)} as a broker's metadata tells it (librdkafka's view)."""
    md = h.admin(bootstrap).list_topics(topic, timeout=10)
    t = md.topics[topic]
    if t.error is not None:
        raise AssertionError(f"metadata for {topic}: {t.error}")
    return {p.id: (p.leader, tuple(sorted(p.isrs))) for p in t.partitions.values()}


class Workload:
    """An idempotent acks=all producer writing numbered values round-robin over the partitions,
    and a group consumer committing what it read, each on its own thread until stopped."""

    def __init__(self, bootstrap: str, topic: str, group: str):
        self.topic, self.group, self.bootstrap = topic, group, bootstrap
        self.acked: list[tuple[int, int, bytes]] = []  # (partition, offset, value) in ack order
        self.failed: list[tuple[bytes, str]] = []
        self.committed: dict[int, int] = {}  # the highest offset the group committed, per partition
        self.consumed = 0
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._produce, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self, timeout: float = 120.0):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), "workload thread did not stop"

    def _produce(self):
        p = h.producer(self.bootstrap, **{
            "enable.idempotence": True, "acks": "all", "linger.ms": 2,
            "message.timeout.ms": 120000, "request.timeout.ms": 10000})

        def cb(err, msg):
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed.append((msg.value(), str(err)))

        seq = 0
        while not self.stop.is_set():
            try:
                p.produce(self.topic, value=b"%08d" % seq, partition=seq % PARTITIONS,
                          on_delivery=cb)
                seq += 1
            except BufferError:
                pass
            p.poll(0.002)
        left = p.flush(120)
        if left:
            self.errors.append(f"{left} messages never got a delivery report")

    def _consume(self):
        c = Consumer({**h.common_conf(self.bootstrap), "group.id": self.group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 30000})
        c.subscribe([self.topic])
        try:
            while not self.stop.is_set():
                msgs = c.consume(num_messages=500, timeout=0.5)
                got = [m for m in msgs if m.error() is None]
                if not got:
                    continue
                self.consumed += len(got)
                last = {}
                for m in got:
                    last[m.partition()] = m.offset() + 1
                offsets = [TopicPartition(self.topic, p, o) for p, o in last.items()]
                try:
                    done = c.commit(offsets=offsets, asynchronous=False)
                except Exception:  # noqa: BLE001 - a commit during a coordinator move may fail
                    continue
                for tp in done or []:
                    if tp.error is None and tp.offset >= 0:
                        self.committed[tp.partition] = max(self.committed.get(tp.partition, 0),
                                                           tp.offset)
        finally:
            c.close()

    def acked_count(self) -> int:
        return len(self.acked)


def wait_acked_more(w: Workload, than: int, what: str, timeout: float = ELECTION_BOUND_S):
    wait_until(f"{what}: acknowledgements beyond {than}", lambda: w.acked_count() > than + 50,
               timeout, detail=lambda: f"acked {w.acked_count()}, failed {len(w.failed)}")


def check_everything_acknowledged_is_there(bootstrap: str, w: Workload):
    assert not w.errors, w.errors
    assert w.acked, "nothing was acknowledged"
    read = h.consume_all(bootstrap, w.topic, range(PARTITIONS), expected=len(w.acked),
                         timeout=120)
    at = {(m.partition(), m.offset()): m.value() for m in read}
    lost = [(p, o, v) for p, o, v in w.acked if at.get((p, o)) != v]
    assert not lost, (f"{len(lost)} of {len(w.acked)} acknowledged messages are not at their "
                      f"acknowledged offset: first {lost[:5]}")
    values = defaultdict(int)
    for m in read:
        values[m.value()] += 1
    dups = {v: n for v, n in values.items() if n > 1}
    assert not dups, f"{len(dups)} values read more than once: {list(dups.items())[:5]}"
    for p in range(PARTITIONS):
        seqs = [int(m.value()) for m in read if m.partition() == p]
        assert seqs == sorted(seqs), f"partition {p}: values out of the order they were sent"
        acked_order = [o for q, o, _ in w.acked if q == p]
        assert acked_order == sorted(acked_order), f"partition {p}: acknowledged out of order"


def check_group_kept_its_offsets(bootstrap: str, w: Workload):
    """What the group committed last is what the (possibly moved) coordinator answers now."""
    c = Consumer({**h.common_conf(bootstrap), "group.id": w.group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(w.topic, p) for p in range(PARTITIONS)], timeout=30)
    finally:
        c.close()
    now = {tp.partition: tp.offset for tp in tps}
    behind = {p: (now.get(p), o) for p, o in w.committed.items() if now.get(p, -1) < o}
    assert not behind, f"committed offsets went back (now, last committed): {behind}"
    assert w.committed, "the group committed nothing"


def start_cluster(cluster_factory):
    c = cluster_factory(COMBINED, REPLICATED)
    topic = h.topic_name("repl")
    h.create_topic(c.bootstrap(), topic, PARTITIONS, replication_factor=3)
    wait_until("every partition with a leader and a full ISR",
               lambda: all(l >= 0 and len(isr) == 3
                           for l, isr in partition_state(c.bootstrap(), topic).values()),
               30, detail=c.logs)
    return c, topic


def full_isr(c, topic: str, what: str):
    wait_until(f"{what}: every partition led, with all three replicas in sync",
               lambda: all(l >= 0 and len(isr) == 3
                           for l, isr in partition_state(c.bootstrap(), topic).values()),
               REJOIN_BOUND_S, detail=c.logs)


def test_leaders_killed_round_after_round_lose_nothing(cluster_factory):
    c, topic = start_cluster(cluster_factory)
    w = Workload(c.bootstrap(), topic, f"grp-{uuid.uuid4().hex[:8]}")
    w.start()
    try:
        wait_acked_more(w, 0, "before the first kill")
        for rnd in range(ROUNDS):
            victim = partition_state(c.bootstrap(), topic)[rnd % PARTITIONS][0]
            before = w.acked_count()
            c.node(victim).kill9()
            wait_until(f"round {rnd}: partition {rnd % PARTITIONS} led by a survivor",
                       lambda: partition_state(c.bootstrap(exclude=(victim,)),
                                               topic)[rnd % PARTITIONS][0] not in (-1, victim),
                       ELECTION_BOUND_S, detail=c.logs)
            wait_acked_more(w, before, f"round {rnd} with node {victim} down")
            c.node(victim).start()
            full_isr(c, topic, f"round {rnd}: node {victim} back")
        wait_acked_more(w, w.acked_count(), "after the last round")
    finally:
        w.finish()
    check_everything_acknowledged_is_there(c.bootstrap(), w)
    check_group_kept_its_offsets(c.bootstrap(), w)


def test_a_frozen_leader_acknowledges_nothing_and_loses_nothing(cluster_factory):
    """SIGSTOP a leader past its session: the others elect a new leader and go on; woken, the
    old leader must not acknowledge anything on its own (it is fenced and no longer in the ISR),
    and rejoins as a follower."""
    c, topic = start_cluster(cluster_factory)
    w = Workload(c.bootstrap(), topic, f"grp-{uuid.uuid4().hex[:8]}")
    w.start()
    try:
        wait_acked_more(w, 0, "before the first freeze")
        for rnd in range(2):
            victim = partition_state(c.bootstrap(), topic)[rnd % PARTITIONS][0]
            before = w.acked_count()
            c.node(victim).pause()
            try:
                wait_until(f"round {rnd}: a new leader while node {victim} is frozen",
                           lambda: partition_state(c.bootstrap(exclude=(victim,)),
                                                   topic)[rnd % PARTITIONS][0] not in (-1, victim),
                           ELECTION_BOUND_S, detail=c.logs)
                wait_acked_more(w, before, f"round {rnd} with node {victim} frozen")
            finally:
                c.node(victim).resume()
            full_isr(c, topic, f"round {rnd}: node {victim} woken")
    finally:
        w.finish()
    check_everything_acknowledged_is_there(c.bootstrap(), w)
    check_group_kept_its_offsets(c.bootstrap(), w)


def _produce_v11(topic: str, partition: int, records: bytes) -> bytes:
    """Produce v11 written out by hand (flexible: compact arrays and strings, tagged fields):
    kafka-python has no version that carries KIP-951's leader hints."""
    from cluster import _compact_str, _uvarint
    body = (_uvarint(0)                                   # transactional_id: null
            + struct.pack(">hi", -1, 5000)                # acks=all, timeout_ms
            + _uvarint(2) + _compact_str(topic)           # one topic
            + _uvarint(2) + struct.pack(">i", partition)  # one partition
            + _uvarint(len(records) + 1) + records + _uvarint(0)
            + _uvarint(0)                                 # topic's tagged fields
            + _uvarint(0))                                # request's tagged fields
    return body


def _parse_produce_v11(body: bytes):
    """(error code, current leader (id, epoch) or None, node endpoints {id: (host, port)})."""
    from cluster import _FlexReader
    r = _FlexReader(body)
    answers = []
    for _ in range(r.compact_len()):
        r.compact_str()
        for _ in range(r.compact_len()):
            r.i32()
            err = r.i16()
            r.i64(), r.i64(), r.i64()
            for _ in range(r.compact_len()):
                r.i32(), r.compact_str(), r.tags()
            r.compact_str()
            leader = None
            for _ in range(r.uvarint()):
                tag, size = r.uvarint(), r.uvarint()
                if tag == 0:
                    leader = (r.i32(), r.i32())
                    r.tags()
                else:
                    r._take(size)
            answers.append((err, leader))
        r.tags()
    r.i32()  # throttle_time_ms
    endpoints = {}
    for _ in range(r.uvarint()):
        tag, size = r.uvarint(), r.uvarint()
        if tag == 0:
            for _ in range(r.compact_len()):
                node, host, port = r.i32(), r.compact_str(), r.i32()
                r.compact_str(), r.tags()
                endpoints[node] = (host, port)
        else:
            r._take(size)
    [(err, leader)] = answers
    return err, leader, endpoints


def test_produce_to_a_follower_names_the_leader_and_its_endpoint(cluster_factory):
    """KIP-951: a NOT_LEADER_OR_FOLLOWER to Produce v10+ carries the current leader and its
    endpoint, so a client retries at the leader without a metadata refresh."""
    from kafka.record.memory_records import MemoryRecordsBuilder

    import kwire
    c, topic = start_cluster(cluster_factory)
    leader = partition_state(c.bootstrap(), topic)[0][0]
    follower = next(n for n in (1, 2, 3) if n != leader)
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 16)
    b.append(timestamp=None, key=None, value=b"to the wrong broker", headers=[])
    b.close()
    with kwire.Conn(c.node(follower).bootstrap) as conn:
        corr = conn.corr = conn.corr + 1
        header = kwire.request_header_v1(0, 11, corr) + b"\x00"  # request header v2
        conn.send_raw(kwire.frame(header + _produce_v11(topic, 0, bytes(b.buffer()))))
        err, hint, endpoints = _parse_produce_v11(
            conn.recv_response_raw(corr, flexible_header=True))
    assert err == 6, f"produce to a follower answered {err}, want NOT_LEADER_OR_FOLLOWER (6)"
    assert hint is not None and hint[0] == leader, f"leader hint {hint}, leader is {leader}"
    host, port = c.node(leader).bootstrap.rsplit(":", 1)
    assert endpoints.get(leader) == (host, int(port)), endpoints


def test_a_large_create_topics_is_answered_once(cluster_factory):
    """One CreateTopics of 1000 partitions with RF=3, sent to a broker that is not the active
    controller: the forwarded request takes longer than the quorum's 2 s request timeout, and
    must be waited for, not sent again (a second copy answered TOPIC_ALREADY_EXISTS for the
    topics the first had just created)."""
    from confluent_kafka.admin import NewTopic
    c = cluster_factory(COMBINED, REPLICATED)
    active = c.active_controller()
    other = next(n for n in (1, 2, 3) if n != active)
    names = [h.topic_name("big") for _ in range(10)]
    from confluent_kafka.admin import AdminClient
    # Kept in a variable (a dropped client fails its futures); the answer may take a while on
    # a loaded machine, longer than the helpers' 10 s socket timeout.
    a = AdminClient({**h.common_conf(c.node(other).bootstrap), "socket.timeout.ms": 300000})
    futures = a.create_topics(
        [NewTopic(t, 100, 3) for t in names], operation_timeout=120, request_timeout=180)
    errors = {}
    for t, f in futures.items():
        try:
            f.result(timeout=200)
        except Exception as e:  # noqa: BLE001 - every topic's outcome is reported below
            errors[t] = str(e)
    assert not errors, f"{len(errors)} of {len(names)} topics failed: {list(errors.values())[:3]}"


def test_lowering_min_insync_replicas_at_run_time_commits_what_waited(cluster_factory):
    """Below its topic's min.insync.replicas a leader's high watermark holds (KIP-966): acks=1
    writes wait unseen by consumers. Lowering the minimum at run time (IncrementalAlterConfigs,
    as kafka-configs.sh does) reaches the running leader and commits them."""
    from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ResourceType)
    c = cluster_factory(COMBINED, REPLICATED)
    topic = h.topic_name("minisr")
    h.create_topic(c.bootstrap(), topic, 1, config={"min.insync.replicas": "3"},
                   replication_factor=3)
    full_isr(c, topic, "start")
    leader = partition_state(c.bootstrap(), topic)[0][0]
    victim = next(n for n in (1, 2, 3) if n != leader)
    c.node(victim).kill9()
    wait_until(f"node {victim} out of the ISR",
               lambda: victim not in partition_state(c.bootstrap(), topic)[0][1],
               ELECTION_BOUND_S, detail=c.logs)
    p = h.producer(c.bootstrap(), acks="1")
    sent = h.produce_and_collect(p, ((None, b"w%d" % i) for i in range(10)), topic, partition=0)
    assert all(r[0] is None for r in sent), sent[:3]
    consumer = h.consumer(c.bootstrap())
    try:
        lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                                cached=False)
        assert hi == 0, f"committed below min.insync.replicas: high watermark {hi}"
        a = h.admin(c.bootstrap())
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("min.insync.replicas", "2",
                        incremental_operation=AlterConfigOpType.SET)])
        h.future_result(a.incremental_alter_configs([res])[res])
        wait_until("the waiting writes committed once the minimum is 2",
                   lambda: consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10,
                                                          cached=False)[1] == 10,
                   ELECTION_BOUND_S, detail=c.logs)
    finally:
        consumer.close()
