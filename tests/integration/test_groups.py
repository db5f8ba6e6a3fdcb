"""Consumer groups with real clients: subscribe, commit, resume, split partitions, survive
restarts (confluent-kafka, kafka-python, kcat -G). Every loop has a deadline."""
from __future__ import annotations

import logging
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

import helpers as h

T = 30.0


def group_name(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def group_consumer(bootstrap, group, **extra):
    conf = h.common_conf(bootstrap)
    conf.update({
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    })
    conf.update(extra)
    return Consumer(conf)


def broker_log(broker, group):
    """The broker's log lines that name `group` (every test's group id is unique)."""
    text = broker.stderr_path.read_text(errors="replace")
    return [line for line in text.splitlines() if group in line]


def generations(broker, group):
    """The generations the broker logged the group stabilizing in, in order."""
    pattern = re.compile(rf"Stabilized group {re.escape(group)} generation (\d+) with")
    return [int(m.group(1)) for line in broker_log(broker, group) for m in [pattern.search(line)] if m]


def produce(bootstrap, topic, n, partitions=None):
    p = h.producer(bootstrap, acks="all")
    items = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(n)]
    kw = {}
    reports = []
    if partitions is None:
        reports = h.produce_and_collect(p, items, topic, **kw)
    else:
        for part in range(partitions):
            chunk = [it for i, it in enumerate(items) if i % partitions == part]
            reports += h.produce_and_collect(p, chunk, topic, partition=part)
    assert all(r[0] is None for r in reports), reports[:3]
    return reports


def poll_n(c, n, timeout=T):
    """Polls until n messages were received (or the deadline); returns them."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise AssertionError(f"consumer error: {m.error()}")
        got.append(m)
    return got


def wait_assignment(consumers, total, timeout=T):
    """Polls all consumers until their assignments cover `total` partitions between them."""
    deadline = time.monotonic() + timeout
    msgs = {id(c): [] for c in consumers}
    while time.monotonic() < deadline:
        for c in consumers:
            m = c.poll(0.2)
            if m is not None and not m.error():
                msgs[id(c)].append(m)
        parts = [tp.partition for c in consumers for tp in c.assignment()]
        if len(parts) == total and len(set(parts)) == total and all(c.assignment() for c in consumers):
            return msgs
    raise AssertionError(f"assignment never settled: {[c.assignment() for c in consumers]}")


def test_commit_close_and_resume_after_committed_offset(broker):
    topic, group = h.topic_name("grp"), group_name()
    h.create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 100)
    c = group_consumer(broker.bootstrap, group)
    c.subscribe([topic])
    first = poll_n(c, 50)
    assert len(first) == 50
    assert [m.offset() for m in first] == list(range(50))
    c.commit(message=first[-1], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0)], timeout=T)
    assert committed[0].offset == 50 and committed[0].error is None
    c.close()

    c2 = group_consumer(broker.bootstrap, group)
    c2.subscribe([topic])
    rest = poll_n(c2, 50)
    c2.close()
    assert [m.offset() for m in rest] == list(range(50, 100)), "did not resume after the commit"
    assert [m.value() for m in rest] == [f"v{i}".encode() for i in range(50, 100)]


def test_two_consumers_split_six_partitions(broker):
    topic, group = h.topic_name("split"), group_name()
    h.create_topic(broker.bootstrap, topic, 6)
    a = group_consumer(broker.bootstrap, group)
    b = group_consumer(broker.bootstrap, group)
    try:
        a.subscribe([topic])
        b.subscribe([topic])
        early = wait_assignment([a, b], 6)
        assert not early[id(a)] and not early[id(b)]
        pa = {tp.partition for tp in a.assignment()}
        pb = {tp.partition for tp in b.assignment()}
        assert pa and pb and not (pa & pb) and pa | pb == set(range(6)), (pa, pb)
        produce(broker.bootstrap, topic, 600, partitions=6)
        got = {id(a): [], id(b): []}
        deadline = time.monotonic() + T
        while sum(map(len, got.values())) < 600 and time.monotonic() < deadline:
            for c in (a, b):
                m = c.poll(0.2)
                if m is not None and not m.error():
                    got[id(c)].append((m.partition(), m.offset()))
        # A short extra poll: nothing more (no duplicates) arrives.
        for _ in range(5):
            for c in (a, b):
                m = c.poll(0.2)
                if m is not None and not m.error():
                    got[id(c)].append((m.partition(), m.offset()))
        keys = got[id(a)] + got[id(b)]
        assert len(keys) == len(set(keys)) == 600, f"{len(keys)} received, {len(set(keys))} distinct"
        assert set(keys) == {(p, o) for p in range(6) for o in range(100)}
        assert {p for p, _ in got[id(a)]} == pa and {p for p, _ in got[id(b)]} == pb
        a.commit(asynchronous=False)
        b.commit(asynchronous=False)
        committed = a.committed([TopicPartition(topic, p) for p in range(6)], timeout=T)
        assert sorted(tp.offset for tp in committed) == [100] * 6
    finally:
        a.close()
        b.close()


def test_consumer_leaving_hands_its_partitions_over(broker):
    topic, group = h.topic_name("handover"), group_name()
    h.create_topic(broker.bootstrap, topic, 4)
    a = group_consumer(broker.bootstrap, group)
    b = group_consumer(broker.bootstrap, group)
    a.subscribe([topic])
    b.subscribe([topic])
    wait_assignment([a, b], 4)
    b.close()
    deadline = time.monotonic() + T
    while len(a.assignment()) < 4 and time.monotonic() < deadline:
        a.poll(0.2)
    assert len(a.assignment()) == 4
    a.close()


CHILD_CONSUMER = r"""
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
c.subscribe([sys.argv[3]])
deadline = time.monotonic() + 30
while not c.assignment() and time.monotonic() < deadline:
    c.poll(0.2)
print("assigned", len(c.assignment()), flush=True)
while time.monotonic() < deadline + 60:
    c.poll(0.2)
"""


def test_consumer_that_stops_heartbeating_loses_its_partitions(broker):
    """A member killed with SIGKILL sends no LeaveGroup: the coordinator expires it after its
    session timeout and the survivor gets every partition."""
    import sys
    topic, group = h.topic_name("expire"), group_name()
    h.create_topic(broker.bootstrap, topic, 4)
    child = subprocess.Popen([sys.executable, "-c", CHILD_CONSUMER, broker.bootstrap, group, topic],
                             stdout=subprocess.PIPE, text=True)
    a = group_consumer(broker.bootstrap, group)
    try:
        line = child.stdout.readline()
        assert line.startswith("assigned"), line
        a.subscribe([topic])
        deadline = time.monotonic() + T
        while not (a.assignment() and len(a.assignment()) < 4) and time.monotonic() < deadline:
            a.poll(0.2)
        assert 0 < len(a.assignment()) < 4, a.assignment()
        child.kill()
        child.wait(timeout=10)
        killed = time.monotonic()
        while len(a.assignment()) < 4 and time.monotonic() < killed + T:
            a.poll(0.2)
        assert len(a.assignment()) == 4, a.assignment()
        assert time.monotonic() - killed > 3, "partitions moved before the session could expire"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        a.close()


def test_offsets_survive_restart_and_kill9(broker_factory):
    b = broker_factory(name="weir-groups-restart")
    topic, group = h.topic_name("durable-grp"), group_name()
    h.create_topic(b.bootstrap, topic, 2)
    produce(b.bootstrap, topic, 40, partitions=2)
    c = group_consumer(b.bootstrap, group)
    c.commit(offsets=[TopicPartition(topic, 0, 7), TopicPartition(topic, 1, 11)], asynchronous=False)
    c.close()

    b.restart(signal.SIGTERM)
    h.wait_for_topic(b.bootstrap, topic, 2)
    c = group_consumer(b.bootstrap, group)
    got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=T)
    assert [tp.offset for tp in got] == [7, 11]
    c.commit(offsets=[TopicPartition(topic, 0, 15)], asynchronous=False)
    c.close()

    b.kill9()
    b.start()
    h.wait_for_topic(b.bootstrap, topic, 2)
    c = group_consumer(b.bootstrap, group)
    c.subscribe([topic])
    msgs = poll_n(c, 5 + 9)
    c.close()
    by_part = {}
    for m in msgs:
        by_part.setdefault(m.partition(), []).append(m.offset())
    assert by_part == {0: list(range(15, 20)), 1: list(range(11, 20))}


def test_kafka_python_group(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    topic, group = h.topic_name("kpy-grp"), group_name("kpy")
    h.create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 20, partitions=2)
    c = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=15000, request_timeout_ms=30000,
                      session_timeout_ms=10000, heartbeat_interval_ms=1000)
    got = []
    deadline = time.monotonic() + T
    while len(got) < 20 and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            got.extend(recs)
    assert sorted((r.partition, r.offset) for r in got) == [(p, o) for p in range(2) for o in range(10)]
    c.commit()
    assert c.committed(KTP(topic, 0)) == 10 and c.committed(KTP(topic, 1)) == 10
    c.close()


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_balanced_consumer(broker):
    topic, group = h.topic_name("kcat-grp"), group_name("kcat")
    h.create_topic(broker.bootstrap, topic, 3)
    produce(broker.bootstrap, topic, 30, partitions=3)
    out = subprocess.run(
        ["kcat", "-b", broker.bootstrap, "-G", group, "-o", "beginning", "-e", "-q",
         "-f", "%p:%o\n", "-X", "session.timeout.ms=6000", topic],
        capture_output=True, timeout=60, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = sorted(tuple(map(int, l.split(":"))) for l in out.stdout.split())
    assert seen == [(p, o) for p in range(3) for o in range(10)], out.stderr[-2000:]


def test_admin_lists_describes_and_deletes_groups(broker):
    from confluent_kafka.admin import AdminClient
    topic, group = h.topic_name("adm-grp"), group_name("adm")
    h.create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, 5)
    c = group_consumer(broker.bootstrap, group)
    c.subscribe([topic])
    assert len(poll_n(c, 5)) == 5
    c.commit(asynchronous=False)
    a = AdminClient(h.common_conf(broker.bootstrap))
    listed = a.list_consumer_groups(request_timeout=T).result(timeout=T)
    assert group in {g.group_id for g in listed.valid}
    desc = a.describe_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
    assert str(desc.state).endswith("STABLE") and len(desc.members) == 1
    c.close()
    deleted = a.delete_consumer_groups([group], request_timeout=T)[group]
    assert deleted.result(timeout=T) is None
    c2 = group_consumer(broker.bootstrap, group)
    got = c2.committed([TopicPartition(topic, 0)], timeout=T)
    c2.close()
    assert got[0].offset < 0, "offsets of a deleted group are gone"


def test_bad_group_requests_get_kafkas_error_codes(broker):
    """Raw requests (kafka-python protocol structs): Kafka's error codes, and the group stays
    usable afterwards."""
    import kwire
    from kafka.protocol.commit import OffsetCommitRequest_v2
    from kafka.protocol.group import HeartbeatRequest_v1, JoinGroupRequest_v5, SyncGroupRequest_v1
    topic, group = h.topic_name("badgrp"), group_name("bad")
    h.create_topic(broker.bootstrap, topic, 1)

    def join(c, member, protocols, session=10000, grp=group):
        r = c.call(JoinGroupRequest_v5(group=grp, session_timeout=session, rebalance_timeout=10000,
                                       member_id=member, group_instance_id=None, protocol_type="consumer",
                                       group_protocols=[(p, b"meta") for p in protocols]), timeout=T)
        return r.error_code, r.generation_id, r.member_id

    def commit(c, generation, member, metadata="", grp=group, partition=0):
        r = c.call(OffsetCommitRequest_v2(consumer_group=grp, consumer_group_generation_id=generation,
                                          consumer_id=member, retention_time=-1,
                                          topics=[(topic, [(partition, 5, metadata)])]), timeout=T)
        return r.topics[0][1][0][1]

    with kwire.Conn(broker.bootstrap, timeout=T) as c:
        assert join(c, "", ["range"], grp="")[0] == 24  # INVALID_GROUP_ID
        assert join(c, "", ["range"], session=10)[0] == 26  # INVALID_SESSION_TIMEOUT
        err, _, member = join(c, "", ["range"])
        assert err == 79 and member  # MEMBER_ID_REQUIRED
        err, gen, _ = join(c, member, ["range"])
        assert (err, gen) == (0, 1)
        r = c.call(SyncGroupRequest_v1(group=group, generation_id=1, member_id=member,
                                       group_assignment=[(member, b"a")]), timeout=T)
        assert r.error_code == 0
        # A protocol no member supports.
        assert join(c, "", ["roundrobin"])[0] == 23  # INCONSISTENT_GROUP_PROTOCOL
        assert join(c, "nobody", ["range"])[0] == 25  # UNKNOWN_MEMBER_ID
        assert commit(c, 1, "nobody") == 25
        assert commit(c, 7, member) == 22  # ILLEGAL_GENERATION
        assert commit(c, 1, member, metadata="x" * 5000) == 12  # OFFSET_METADATA_TOO_LARGE
        assert commit(c, 1, member, partition=9) == 3  # UNKNOWN_TOPIC_OR_PARTITION
        assert c.call(HeartbeatRequest_v1(group=group, generation_id=1, member_id="nobody"),
                      timeout=T).error_code == 25
        assert c.call(HeartbeatRequest_v1(group=group, generation_id=2, member_id=member),
                      timeout=T).error_code == 22
        # The group is unharmed: the real member still heartbeats and commits.
        assert c.call(HeartbeatRequest_v1(group=group, generation_id=1, member_id=member),
                      timeout=T).error_code == 0
        assert commit(c, 1, member) == 0
    cons = group_consumer(broker.bootstrap, group)
    got = cons.committed([TopicPartition(topic, 0)], timeout=T)
    cons.close()
    assert got[0].offset == 5


def test_group_membership_survives_restart(broker_factory):
    """The group metadata record: after a restart the group is Stable with the same member,
    which carries on consuming without a new member id."""
    from confluent_kafka.admin import AdminClient
    b = broker_factory(name="weir-groups-membership")
    topic, group = h.topic_name("member"), group_name("mem")
    h.create_topic(b.bootstrap, topic, 2)
    c = group_consumer(b.bootstrap, group, **{"session.timeout.ms": 30000})
    try:
        c.subscribe([topic])
        wait_assignment([c], 2)
        member = c.memberid()
        assert member
        b.restart(signal.SIGTERM)
        h.wait_for_topic(b.bootstrap, topic, 2)
        a = AdminClient(h.common_conf(b.bootstrap))
        desc = a.describe_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
        assert str(desc.state).endswith("STABLE"), desc.state
        assert [m.member_id for m in desc.members] == [member]
        assert {tp.partition for m in desc.members for tp in m.assignment.topic_partitions} == {0, 1}
        produce(b.bootstrap, topic, 10, partitions=2)
        got = poll_n(c, 10)
        assert len(got) == 10
        assert c.memberid() == member
    finally:
        c.close()


def test_static_member_restart_keeps_its_partitions_without_a_rebalance(broker):
    """KIP-345: a consumer with group.instance.id that restarts within its session gets its old
    partitions back, and the other members see no rebalance (no revoke, no new assignment)."""
    topic, group = h.topic_name("static"), group_name()
    h.create_topic(broker.bootstrap, topic, 4)
    events = {"a": 0}

    def on_assign(consumer, partitions):
        events["a"] += 1

    def on_revoke(consumer, partitions):
        events["a"] += 1

    static = {"session.timeout.ms": 30000}
    a = group_consumer(broker.bootstrap, group, **{"group.instance.id": "inst-a"}, **static)
    a.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    wait_assignment([a], 4)  # a joins first: the group's leader
    b = group_consumer(broker.bootstrap, group, **{"group.instance.id": "inst-b"}, **static)
    b.subscribe([topic])
    wait_assignment([a, b], 4)
    b_parts = sorted(tp.partition for tp in b.assignment())
    a_parts = sorted(tp.partition for tp in a.assignment())
    b.close()  # a static member sends no LeaveGroup: its partitions wait for it
    settled = events["a"]
    b2 = group_consumer(broker.bootstrap, group, **{"group.instance.id": "inst-b"}, **static)
    try:
        b2.subscribe([topic])
        deadline = time.monotonic() + T
        while not b2.assignment() and time.monotonic() < deadline:
            b2.poll(0.2)
            a.poll(0.1)
        assert sorted(tp.partition for tp in b2.assignment()) == b_parts
        # Keep polling a while: a rebalance would show as a revoke/assign on a.
        for _ in range(15):
            a.poll(0.1)
            b2.poll(0.1)
        assert events["a"] == settled, "the other member went through a rebalance"
        assert sorted(tp.partition for tp in a.assignment()) == a_parts
    finally:
        b2.close()
        a.close()


class _LogRecords(logging.Handler):
    """Keeps the messages of a logger: kafka-python reports each JoinGroup answer in its own
    log, which is how the tests see what the client went through."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record):
        with self._lock:
            self.messages.append(record.getMessage())

    def about(self, group):
        with self._lock:
            return [m for m in self.messages if group in m]


def test_kafka_python_consumers_joining_together_get_no_unknown_member_id(broker):
    """Issue 12: two kafka-python consumers start together. Each is given its member id with
    MEMBER_ID_REQUIRED; the first to join with it completes a generation (no initial delay)
    while the other's id is still pending. Kafka keeps pending ids until they join or their
    session times out, so the second joins with the id it was given: no UNKNOWN_MEMBER_ID
    round, and each consumer is handed exactly one member id."""
    from kafka import KafkaConsumer
    topic, group = h.topic_name("kpy-two"), group_name("kpy2")
    h.create_topic(broker.bootstrap, topic, 4)
    records = _LogRecords()
    log = logging.getLogger("kafka.coordinator")
    level = log.level
    log.addHandler(records)
    log.setLevel(logging.INFO)
    consumers = [KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                               auto_offset_reset="earliest", enable_auto_commit=False,
                               request_timeout_ms=30000, session_timeout_ms=10000,
                               heartbeat_interval_ms=500) for _ in range(2)]
    assigned = [set(), set()]
    start = threading.Barrier(len(consumers), timeout=T)

    def run(i):
        start.wait()
        deadline = time.monotonic() + T
        while time.monotonic() < deadline:
            consumers[i].poll(timeout_ms=200)
            assigned[i] = {tp.partition for tp in consumers[i].assignment()}
            if all(assigned) and set().union(*assigned) == set(range(4)) \
                    and sum(map(len, assigned)) == 4:
                return

    try:
        for c in consumers:
            c.subscribe([topic])
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(consumers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=T + 10)
        assert not any(t.is_alive() for t in threads)
        said = records.about(group)
        assert all(assigned) and sum(map(len, assigned)) == 4, (assigned, said)
        assert not [m for m in said if "unknown member id" in m], said
        assert len([m for m in said if m.startswith("Received member id")]) == 2, said
        # The broker's account agrees: two ids handed out, both joined with them.
        lines = broker_log(broker, group)
        assert len([l for l in lines if "Dynamic member with unknown member id joins" in l]) == 2, lines
        assert len([l for l in lines if "Pending dynamic member with id" in l]) == 2, lines
    finally:
        log.removeHandler(records)
        log.setLevel(level)
        for c in consumers:
            c.close()


def test_static_leader_restart_keeps_the_generation_and_every_assignment(broker):
    """Issue 13 (KIP-345, KIP-814): the static member that leads the group is closed without
    leaving (librdkafka sends no LeaveGroup for a static member) and started again with the
    same group.instance.id within its session. It takes its old member's place: the group
    stays in its generation, the other member sees no revoke, the leader keeps its
    partitions, and the old member id is fenced."""
    import kwire
    from confluent_kafka.admin import AdminClient
    from kafka.protocol.group import HeartbeatRequest_v3
    topic, group = h.topic_name("static-lead"), group_name()
    h.create_topic(broker.bootstrap, topic, 4)
    events = []

    def track(who):
        def assign(consumer, partitions):
            events.append((who, "assign", sorted(tp.partition for tp in partitions)))

        def revoke(consumer, partitions):
            events.append((who, "revoke", sorted(tp.partition for tp in partitions)))
        return {"on_assign": assign, "on_revoke": revoke}

    static = {"session.timeout.ms": 30000}
    a = group_consumer(broker.bootstrap, group, **{"group.instance.id": "lead-a"}, **static)
    a.subscribe([topic], **track("a"))
    wait_assignment([a], 4)  # a joins first and alone: the group's leader
    b = group_consumer(broker.bootstrap, group, **{"group.instance.id": "inst-b"}, **static)
    b.subscribe([topic], **track("b"))
    wait_assignment([a, b], 4)
    a_parts = sorted(tp.partition for tp in a.assignment())
    b_parts = sorted(tp.partition for tp in b.assignment())
    a_member, b_member = a.memberid(), b.memberid()
    b_events = [e for e in events if e[0] == "b"]
    settled = generations(broker, group)
    leaders = re.findall(rf"Assignment received from leader (\S+) for group {re.escape(group)} ",
                         "\n".join(broker_log(broker, group)))
    a.close()  # static: no LeaveGroup, its partitions wait for it
    a2 = group_consumer(broker.bootstrap, group, **{"group.instance.id": "lead-a"}, **static)
    try:
        a2.subscribe([topic], **track("a2"))
        deadline = time.monotonic() + T
        while not a2.assignment() and time.monotonic() < deadline:
            a2.poll(0.2)
            b.poll(0.1)
        # Keep polling a while: a rebalance would show as a revoke and an assign on b.
        for _ in range(15):
            a2.poll(0.1)
            b.poll(0.1)
        assert [e for e in events if e[0] == "b"] == b_events, "the other member went through a rebalance"
        assert sorted(tp.partition for tp in a2.assignment()) == a_parts
        assert sorted(tp.partition for tp in b.assignment()) == b_parts
        assert b.memberid() == b_member
        assert a2.memberid() not in ("", a_member)
        admin = AdminClient(h.common_conf(broker.bootstrap))  # kept alive until answered
        desc = admin.describe_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
        assert str(desc.state).endswith("STABLE"), desc.state
        members = {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions)
                   for m in desc.members}
        assert members == {a2.memberid(): a_parts, b_member: b_parts}
        # The broker's account: a led, and no new generation came after the restart.
        assert leaders and leaders[-1] == a_member, leaders
        assert settled and generations(broker, group) == settled
        # The closed incarnation's member id is fenced (Kafka: FENCED_INSTANCE_ID).
        with kwire.Conn(broker.bootstrap, timeout=T) as conn:
            r = conn.call(HeartbeatRequest_v3(group=group, generation_id=settled[-1],
                                              member_id=a_member, group_instance_id="lead-a"),
                          timeout=T)
            assert r.error_code == 82, r  # FENCED_INSTANCE_ID
    finally:
        a2.close()
        b.close()


def test_static_member_restart_that_changes_the_group_protocol_rebalances(broker):
    """KIP-345's exception: a static member that comes back with protocols that change the
    group's selected protocol (here: only roundrobin, where both had range first) makes the
    group rebalance, and the group moves to the new protocol."""
    from confluent_kafka.admin import AdminClient
    topic, group = h.topic_name("static-proto"), group_name()
    h.create_topic(broker.bootstrap, topic, 4)
    events = []
    both = {"session.timeout.ms": 30000, "partition.assignment.strategy": "range,roundrobin"}
    a = group_consumer(broker.bootstrap, group, **{"group.instance.id": "p-a"}, **both)
    a.subscribe([topic], on_assign=lambda c, ps: events.append("assign"))
    wait_assignment([a], 4)
    b = group_consumer(broker.bootstrap, group, **{"group.instance.id": "p-b"}, **both)
    b.subscribe([topic])
    wait_assignment([a, b], 4)
    settled = generations(broker, group)
    assigns = len(events)
    b.close()
    b2 = group_consumer(broker.bootstrap, group, **{"group.instance.id": "p-b"},
                        **dict(both, **{"partition.assignment.strategy": "roundrobin"}))
    try:
        b2.subscribe([topic])
        deadline = time.monotonic() + T
        while time.monotonic() < deadline and not (
                len(events) > assigns and b2.assignment()
                and len(a.assignment()) + len(b2.assignment()) == 4):
            a.poll(0.1)
            b2.poll(0.1)
        assert len(events) > assigns, "the other member was not reassigned"
        assert len(a.assignment()) + len(b2.assignment()) == 4
        assert settled and generations(broker, group)[-1] > settled[-1]
        admin = AdminClient(h.common_conf(broker.bootstrap))  # kept alive until answered
        desc = admin.describe_consumer_groups([group], request_timeout=T)[group].result(timeout=T)
        assert desc.partition_assignor == "roundrobin"
    finally:
        b2.close()
        a.close()
