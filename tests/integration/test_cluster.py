"""A Weir cluster of real processes (tests/integration/cluster.py): three combined nodes, and
three controllers with two broker-only nodes, each from its own config file on loopback ports.

What a client sees: the same metadata on every broker, RF=3 replicas on three brokers, a new
active controller after the old one is killed, a killed broker fenced within its session and
back once restarted, DescribeQuorum and DescribeCluster as Kafka's tools and clients read them.
Bad input: raft from a non-voter, a second broker with a taken node.id, a stale broker epoch —
refused with Kafka's codes, logged, nothing corrupted.

Waits are bounded (a failure says what was awaited); nothing asserts speed. The session timeout
is 2.25 s (cluster.BASE_CONFIG) instead of Kafka's 9 s so fencing is quick to see.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time

from confluent_kafka.admin import NewTopic
from kafka.protocol.metadata import MetadataRequest

import helpers as h
import kwire
from cluster import (BASE_CONFIG, Cluster, describe_cluster, describe_quorum,
                     describe_quorum_request, raft_frame, raft_heartbeat_from,
                     send_raw_and_wait_close, wait_until)
from kafka_ref import kafka_tool
from test_admin import admin_bin

COMBINED = {i: ["broker", "controller"] for i in (1, 2, 3)}
SPLIT = {1: ["controller"], 2: ["controller"], 3: ["controller"], 4: ["broker"], 5: ["broker"]}
# One combined node (a quorum of one) and two broker-only nodes: a broker-only node id can be
# taken by a second process (a voter's id cannot: a broker-only node whose id is a voter is a
# configuration error, as in Kafka).
MIXED = {1: ["broker", "controller"], 2: ["broker"], 3: ["broker"]}
SESSION_S = int(BASE_CONFIG["broker.session.timeout.ms"]) / 1000
# Bounds on waiting (not speed assertions): what a busy 2-core CI machine may need on top of
# the protocol's own timers.
SLACK_S = 15.0
ELECTION_BOUND_S = 30.0


def metadata(addr: str) -> tuple[list, dict]:
    """Metadata v5 asked of exactly this broker (kafka-python's protocol structs): its brokers
    and every topic's partitions as (partition, leader, replicas, isr)."""
    with kwire.Conn(addr) as c:
        resp = c.call(MetadataRequest[5](topics=None, allow_auto_topic_creation=False))
    brokers = sorted((b[0], b[1], b[2]) for b in resp.brokers)
    topics = {t[1]: sorted((p[1], p[2], tuple(p[3]), tuple(sorted(p[4]))) for p in t[3])
              for t in resp.topics if t[0] == 0}
    return brokers, topics


def same_metadata_everywhere(c: Cluster, topic: str | None = None):
    """The metadata every live broker answers, once all answer the same (bounded wait)."""
    def agree():
        seen = [metadata(n.bootstrap) for n in c.brokers()]
        if topic is not None and any(topic not in t for _, t in seen):
            return None
        return seen[0] if all(s == seen[0] for s in seen) else None
    return wait_until("the same metadata on every broker", agree, 30, detail=c.logs)


def create_topic(bootstrap: str, name: str, partitions: int, rf: int, timeout: float = 60):
    """CreateTopics through confluent-kafka, retried (bounded) while no controller answers."""
    a = h.admin(bootstrap)

    def attempt():
        fut = a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=rf)],
                              operation_timeout=10, request_timeout=15)[name]
        try:
            fut.result(timeout=20)
            return True
        except Exception as e:  # noqa: BLE001
            code = h.kafka_error_of(e).code()
            if code == 36:  # TOPIC_ALREADY_EXISTS: an earlier attempt got through
                return True
            raise
    wait_until(f"CreateTopics {name}", attempt, timeout, interval=0.2)


def weir_admin_cluster(bootstrap: str) -> dict:
    out = subprocess.run([admin_bin(), "--json", "cluster", "describe", "--bootstrap-server",
                          bootstrap], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def registered_epochs(node) -> list[int]:
    return [int(m) for m in re.findall(r"registered with the controller.*?epoch=(\d+)",
                                       node.log_text())]


# -- three combined nodes ------------------------------------------------------------------------

def test_three_combined_nodes_agree_on_metadata_and_spread_rf3(cluster_factory):
    c = cluster_factory(COMBINED)
    brokers, _ = same_metadata_everywhere(c)
    assert [b[0] for b in brokers] == [1, 2, 3]
    assert {(h_, p) for _, h_, p in brokers} == {("127.0.0.1", n.client_port) for n in c.brokers()}

    t = h.topic_name("rf3")
    create_topic(c.bootstrap(), t, partitions=6, rf=3)
    _, topics = same_metadata_everywhere(c, t)
    parts = topics[t]
    assert len(parts) == 6
    for _, leader, replicas, isr in parts:
        assert sorted(replicas) == [1, 2, 3] and leader in replicas and isr == (1, 2, 3), parts
    # Leadership is spread: every broker leads some partition (preferred leaders rotate).
    assert {leader for _, leader, _, _ in parts} == {1, 2, 3}, parts

    # A client writes with acks=all to the leaders (spread over the three brokers, each
    # waiting for its two followers) and reads back, bootstrapping from another broker.
    p = h.producer(c.bootstrap(), acks="all")
    reports = h.produce_and_collect(p, [(b"k%d" % i, b"v%d" % i) for i in range(30)], t)
    assert all(err is None for err, *_ in reports), reports[:3]
    msgs = h.consume_all(c.nodes[2].bootstrap, t, range(6), expected=30, timeout=30)
    assert sorted(m.value() for m in msgs) == sorted(b"v%d" % i for i in range(30))

    # DescribeQuorum agrees wherever it is asked (followers forward to the leader), at every
    # version, on both listeners.
    leader = c.active_controller()
    answers = []
    for n in c.nodes.values():
        for addr in (n.bootstrap, n.controller_addr):
            for v in (0, 1, 2):
                q = describe_quorum(addr, version=v)
                assert (q.error_code, q.partition_error) == (0, 0), q
                answers.append((q.leader_id, q.leader_epoch))
                assert [s.replica_id for s in q.voters] == [1, 2, 3]
                assert q.observers == []
                assert q.high_watermark > 0
                if v >= 1:
                    assert all(s.last_fetch_timestamp > 0 for s in q.voters), q
                if v >= 2:
                    assert q.nodes == {m.node_id: [("CONTROLLER", "127.0.0.1", m.controller_port)]
                                       for m in c.nodes.values()}
    assert {a[0] for a in answers} == {leader}
    # Wrong partition: Kafka's per-partition UNKNOWN_TOPIC_OR_PARTITION.
    bad = describe_quorum(c.nodes[1].bootstrap, body=describe_quorum_request("other", 0))
    assert bad.partition_error == kwire.UNKNOWN_TOPIC_OR_PARTITION and bad.topic == "other"

    # Kafka's own tool reads it (through a broker, and straight from the controllers).
    status = kafka_tool("kafka-metadata-quorum", "--bootstrap-server", c.nodes[3].bootstrap,
                        "describe", "--status").check().stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["ClusterId"].strip() == c.cluster_id
    assert int(fields["LeaderId"]) == leader
    assert int(fields["HighWatermark"]) > 0
    voters = json.loads(fields["CurrentVoters"])
    assert [v["id"] for v in voters] == [1, 2, 3]
    assert voters[0]["endpoints"] == [f"CONTROLLER://127.0.0.1:{c.nodes[1].controller_port}"]
    assert json.loads(fields["CurrentObservers"]) == []
    replication = kafka_tool("kafka-metadata-quorum", "--bootstrap-controller",
                             c.nodes[1].controller_addr, "describe",
                             "--replication").check().stdout
    rows = [line.split() for line in replication.splitlines()[1:] if line.strip()]
    assert sorted((int(r[0]), r[-1]) for r in rows) == sorted(
        (n, "Leader" if n == leader else "Follower") for n in (1, 2, 3)), replication

    # weir-admin cluster describe: brokers with their fencing and the quorum.
    described = weir_admin_cluster(c.nodes[1].bootstrap)
    quorum = described["quorum"]
    assert quorum["leader_id"] == leader and quorum["high_watermark"] > 0
    assert [(v["id"], v["status"]) for v in described["voters"]] == [
        (n, "Leader" if n == leader else "Follower") for n in (1, 2, 3)]
    assert [v["endpoint"] for v in described["voters"]] == [
        f"CONTROLLER://{c.nodes[n].controller_addr}" for n in (1, 2, 3)]
    assert described["observers"] == []
    assert [(b["id"], b["port"], b["fenced"]) for b in described["brokers"]] == [
        (n, c.nodes[n].client_port, False) for n in (1, 2, 3)]
    text = subprocess.run([admin_bin(), "cluster", "describe", "--bootstrap-server",
                           c.nodes[2].bootstrap], capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "Controller quorum voters:" in text.stdout, text.stderr


def test_killing_the_active_controller_elects_another(cluster_factory):
    c = cluster_factory(COMBINED)
    old = c.active_controller()
    epoch = describe_quorum(c.nodes[old].bootstrap).leader_epoch
    c.nodes[old].kill9()
    survivors = tuple(n for n in (1, 2, 3) if n != old)

    def new_leader():
        q = describe_quorum(c.nodes[survivors[0]].bootstrap)
        return q.error_code == 0 and q.partition_error == 0 and q.leader_id in survivors \
            and q.leader_epoch > epoch and q
    q = wait_until("a new active controller", new_leader, ELECTION_BOUND_S, detail=c.logs)
    t = h.topic_name("after-failover")
    create_topic(c.bootstrap(), t, partitions=2, rf=2)
    same_metadata_everywhere(c, t)

    # The old controller comes back as a follower and catches up with the quorum.
    c.nodes[old].start()

    def caught_up():
        q2 = describe_quorum(c.nodes[old].bootstrap)
        if q2.partition_error != 0:
            return None
        old_state = next(s for s in q2.voters if s.replica_id == old)
        return q2.leader_id == q.leader_id and old_state.log_end_offset >= q2.high_watermark > 0
    wait_until(f"node {old} back in the quorum and caught up", caught_up, ELECTION_BOUND_S,
               detail=c.logs)
    brokers, topics = same_metadata_everywhere(c, t)
    assert [b[0] for b in brokers] == [1, 2, 3]


def test_a_killed_broker_is_fenced_within_its_session_and_rejoins(cluster_factory):
    c = cluster_factory(COMBINED)
    t = h.topic_name("fence")
    create_topic(c.bootstrap(), t, partitions=6, rf=3)
    same_metadata_everywhere(c, t)
    controller = c.active_controller()
    victim = next(n for n in (1, 2, 3) if n != controller)
    first_epoch = registered_epochs(c.nodes[victim])[-1]
    c.nodes[victim].kill9()
    others = tuple(n for n in (1, 2, 3) if n != victim)

    def fenced():
        for n in others:
            brokers, topics = metadata(c.nodes[n].bootstrap)
            if victim in [b[0] for b in brokers]:
                return False
            if any(leader == victim or victim in isr for _, leader, _, isr in topics[t]):
                return False
        return True
    wait_until(f"broker {victim} fenced and its leaderships moved", fenced, SESSION_S + SLACK_S,
               detail=c.logs)
    info = describe_cluster(c.nodes[controller].bootstrap, include_fenced=True)
    assert {(b.node_id, b.fenced) for b in info.brokers} == {(1, victim == 1), (2, victim == 2),
                                                              (3, victim == 3)}
    assert victim not in [b.node_id for b in describe_cluster(c.nodes[controller].bootstrap,
                                                              include_fenced=False).brokers]
    # A bootstrap list whose first broker is down: weir-admin goes on to the next, as Kafka's
    # tools do.
    described = weir_admin_cluster(f"{c.nodes[victim].bootstrap},{c.nodes[controller].bootstrap}")
    assert [(b["id"], b["fenced"]) for b in described["brokers"]] == [
        (n, n == victim) for n in (1, 2, 3)]

    c.nodes[victim].start()  # ready = registered, unfenced and serving
    brokers, _ = same_metadata_everywhere(c, t)
    assert [b[0] for b in brokers] == [1, 2, 3]
    assert not any(b.fenced for b in describe_cluster(c.nodes[victim].bootstrap).brokers)
    # The restarted broker registered anew: its old epoch is gone.
    assert registered_epochs(c.nodes[victim])[-1] > first_epoch


# -- three controllers and two broker-only nodes -----------------------------------------------

def test_three_controllers_and_two_brokers(cluster_factory):
    c = cluster_factory(SPLIT, {"default.replication.factor": "2"})
    brokers, _ = same_metadata_everywhere(c)
    assert [b[0] for b in brokers] == [4, 5]
    for n in (1, 2, 3):  # controller-only nodes serve no clients
        assert c.nodes[n].client_port is None

    t = h.topic_name("split")
    create_topic(c.bootstrap(), t, partitions=4, rf=2)
    _, topics = same_metadata_everywhere(c, t)
    assert all(sorted(r) == [4, 5] for _, _, r, _ in topics[t])
    # kcat through each broker: produce to partitions 0 and 1 with acks=all (so the high
    # watermark covers both once the producer returns), read both back through each broker.
    for n, part in ((4, 0), (5, 1)):
        p = subprocess.run(["kcat", "-b", c.nodes[n].bootstrap, "-P", "-t", t, "-p", str(part),
                            "-X", "request.required.acks=-1"], input=f"from-{n}\n", text=True,
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
    for n in (4, 5):
        out = subprocess.run(["kcat", "-b", c.nodes[n].bootstrap, "-C", "-t", t, "-e", "-q",
                              "-f", "%s\n"], capture_output=True, text=True, timeout=60)
        assert sorted(out.stdout.split()) == ["from-4", "from-5"], out.stderr

    # The broker-only nodes are the quorum's observers; every node answers alike.
    leader = c.active_controller()
    for n in c.nodes.values():
        q = describe_quorum(n.bootstrap or n.controller_addr)
        assert q.leader_id == leader and [s.replica_id for s in q.voters] == [1, 2, 3]
        assert [s.replica_id for s in q.observers] == [4, 5]
        assert all(s.last_fetch_timestamp > 0 for s in q.observers), q
    status = kafka_tool("kafka-metadata-quorum", "--bootstrap-controller",
                        c.nodes[leader % 3 + 1].controller_addr, "describe",
                        "--status").check().stdout
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert int(fields["LeaderId"]) == leader
    assert [o["id"] for o in json.loads(fields["CurrentObservers"])] == [4, 5]

    # Failover: the brokers follow the new active controller.
    c.nodes[leader].kill9()
    c.active_controller(timeout=ELECTION_BOUND_S, exclude=(leader,))
    t2 = h.topic_name("split-after")
    create_topic(c.bootstrap(), t2, partitions=2, rf=2)
    same_metadata_everywhere(c, t2)


# -- bad input -------------------------------------------------------------------------------------

def test_raft_messages_from_a_non_voter_are_refused(cluster_factory):
    c = cluster_factory(COMBINED)
    leader = c.active_controller()
    before = describe_quorum(c.nodes[leader].bootstrap)
    target = c.nodes[leader % 3 + 1]
    # Node 99 is no voter: the connection is closed, the refusal logged.
    assert send_raw_and_wait_close(target.controller_addr,
                                   raft_frame(1, raft_heartbeat_from(99, target.node_id, 50)))
    wait_until("the refusal in the log", lambda: "raft message from a non-voter refused"
               in target.log_text(), 10)
    # Garbage instead of a raft message: closed too.
    assert send_raw_and_wait_close(target.controller_addr, raft_frame(2, b"\xff\xff\xff\xff"))
    # The client listener takes no private api at all.
    assert send_raw_and_wait_close(target.bootstrap,
                                   raft_frame(3, raft_heartbeat_from(leader, target.node_id)))
    # Nothing changed: same leader and epoch (the forged term 50 was not taken up), and the
    # cluster still works.
    after = describe_quorum(target.bootstrap)
    assert (after.leader_id, after.leader_epoch) == (before.leader_id, before.leader_epoch)
    t = h.topic_name("still")
    create_topic(c.bootstrap(), t, partitions=1, rf=3)
    same_metadata_everywhere(c, t)


def test_a_second_broker_with_a_taken_node_id_is_refused(cluster_factory):
    c = cluster_factory(MIXED)
    before = same_metadata_everywhere(c)
    dup = c.add_node(2, ["broker"], name="dup-2",
                     overrides={"initial.broker.registration.timeout.ms": "4000"})
    dup.launch()
    # Refused with DUPLICATE_BROKER_REGISTRATION (backing off, not flooding), and after
    # initial.broker.registration.timeout.ms the node gives up and exits, as Kafka's does.
    rc = dup.proc.wait(timeout=4 + SLACK_S + 30)
    assert rc != 0
    log = dup.log_text()
    assert "DUPLICATE_BROKER_REGISTRATION" in log, dup.log_tail()
    assert "initial.broker.registration.timeout.ms" in log.splitlines()[-1], dup.log_tail()
    refusals = log.count("registration failed; retrying")
    assert 1 <= refusals <= 12, f"{refusals} registration attempts in 4 s: no backoff?"
    controller_log = c.nodes[c.active_controller()].log_text()
    assert re.search(r"broker registration refused.*broker=2.*DUPLICATE_BROKER_REGISTRATION",
                     controller_log), controller_log[-3000:]
    # The original node 2 was never disturbed.
    assert same_metadata_everywhere(c) == before
    assert describe_cluster(c.nodes[1].bootstrap).brokers[1].port == c.nodes[2].client_port


def test_a_stale_broker_epoch_is_refused_and_the_broker_registers_again(cluster_factory):
    """Broker-only node 3 is paused past its session and fenced; another process takes node id 3 (a new
    registration, a new epoch). When node 3 resumes, its heartbeats carry the old epoch:
    STALE_BROKER_EPOCH, logged on both sides; its new registration is a duplicate while the
    other holds the id, and succeeds once that one stops. Metadata stays consistent."""
    c = cluster_factory(MIXED)
    t = h.topic_name("stale")
    create_topic(c.bootstrap(), t, partitions=3, rf=3)
    same_metadata_everywhere(c, t)
    leader = c.active_controller()
    paused = next(n for n in (3, 2, 1) if n != leader)
    old_epoch = registered_epochs(c.nodes[paused])[-1]
    c.nodes[paused].pause()
    others = [n for n in (1, 2, 3) if n != paused]
    try:
        wait_until(f"node {paused} fenced", lambda: paused not in
                   [b[0] for b in metadata(c.nodes[others[0]].bootstrap)[0]],
                   SESSION_S + SLACK_S, detail=c.logs)
        taker = c.add_node(paused, ["broker"], name=f"taker-{paused}")
        taker.start()
        taker_epoch = registered_epochs(taker)[-1]
        assert taker_epoch > old_epoch
    finally:
        c.nodes[paused].resume()
    wait_until("the stale epoch refused", lambda: "STALE_BROKER_EPOCH" in c.nodes[paused].log_text(),
               SLACK_S, detail=c.logs)
    controller_log = c.nodes[c.active_controller()].log_text()
    assert re.search(rf"broker heartbeat refused.*broker={paused}.*epoch={old_epoch}.*STALE_BROKER_EPOCH",
                     controller_log), controller_log[-3000:]
    # While the other process holds the id, metadata shows its endpoint, on every broker.
    brokers = wait_until("node id held by the other process", lambda: (
        lambda b: b if (paused, "127.0.0.1", taker.client_port) in b else None)(
        metadata(c.nodes[others[0]].bootstrap)[0]), SLACK_S)
    assert len(brokers) == 3
    assert taker.stop() == 0
    # Node 3 registers again (a new epoch) and serves at its own address.
    wait_until(f"node {paused} registered again", lambda: registered_epochs(
        c.nodes[paused])[-1] > taker_epoch, SESSION_S * 2 + SLACK_S, detail=c.logs)
    # Once caught up on the metadata log it is unfenced, and every broker lists it.
    mine = (paused, "127.0.0.1", c.nodes[paused].client_port)
    wait_until(f"node {paused} unfenced at its own address", lambda: all(
        mine in metadata(c.nodes[n].bootstrap)[0] for n in (1, 2, 3)), SESSION_S * 2 + SLACK_S,
        detail=c.logs)
    brokers, topics = same_metadata_everywhere(c, t)
    assert brokers == sorted([mine, *((n, "127.0.0.1", c.nodes[n].client_port) for n in others)])
    assert len(topics[t]) == 3


def test_sigterm_stops_a_cluster_node_cleanly(cluster_factory):
    """A controlled shutdown: the node leaves (leaderships move first) and exits 0; the rest
    go on."""
    c = cluster_factory(COMBINED)
    t = h.topic_name("bye")
    create_topic(c.bootstrap(), t, partitions=3, rf=3)
    same_metadata_everywhere(c, t)
    assert c.nodes[1].stop(signal.SIGTERM) == 0
    _, topics = same_metadata_everywhere(c, t)
    assert all(leader in (2, 3) for _, leader, _, _ in topics[t]), topics[t]
