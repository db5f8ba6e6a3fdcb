"""Differential checks: the same scripted scenario against Apache Kafka 4.4 (the
`kafka_reference` fixture) and Weir, comparing what is deterministic. A difference is either a
Weir defect to fix or listed here with its reason (KNOWN_* below)."""
from __future__ import annotations

import random
import struct
import time
import uuid

import pytest
from confluent_kafka import ConsumerGroupState, TopicPartition
from confluent_kafka.admin import ConfigResource, OffsetSpec, ResourceType
from kafka.protocol.produce import ProduceRequest

import helpers as h
import kwire
from kafka_ref import SHARED_OVERRIDES

# ---------------------------------------------------------------------------------------------
# ApiVersions

def test_api_versions_are_a_subset_of_kafkas(broker, kafka_reference):
    """Every API Weir advertises, Kafka 4.4 has, and Weir's range lies within Kafka's: a client
    never negotiates with Weir a version Kafka would refuse."""
    weir, kafka = broker.api_versions, kafka_reference.api_versions
    outside = {k: (weir[k], kafka.get(k)) for k in weir
               if k not in kafka or not (kafka[k][0] <= weir[k][0] <= weir[k][1] <= kafka[k][1])}
    assert not outside, f"api key: (Weir's range, Kafka's range): {outside}"


# ---------------------------------------------------------------------------------------------
# Bad requests: each hostile input of test_bad_input.py, the outcome compared

def _closed(bootstrap, data: bytes, wait: float) -> str:
    with kwire.Conn(bootstrap) as c:
        c.send_raw(data)
        try:
            return "closed" if c.closed_by_peer(wait) else "open"
        except kwire.WireError:
            return "answered"


def _random_bytes(seed):
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))


BAD_FRAMES = {
    **{f"random-bytes-{s}": (lambda s=s: _random_bytes(s)) for s in range(1, 6)},
    "random-payload-in-valid-frame": lambda: kwire.frame(
        struct.pack(">h", 0x7ABC) + bytes(random.Random(42).getrandbits(8) for _ in range(200))),
    "truncated-frame": lambda: struct.pack(">i", 100) + kwire.request_header_v1(kwire.API_API_VERSIONS, 0, 1),
    "truncated-header": lambda: kwire.frame(struct.pack(">hhih", kwire.API_API_VERSIONS, 0, 1, 50)),
    "size-0x80000000": lambda: struct.pack(">I", 0x80000000) + b"\x00" * 64,
    "size-0x7FFFFFFF": lambda: struct.pack(">I", 0x7FFFFFFF) + b"\x00" * 64,
    "size-0xFFFFFFFF": lambda: struct.pack(">I", 0xFFFFFFFF) + b"\x00" * 64,
    "size-0": lambda: struct.pack(">I", 0) + b"\x00" * 64,
    "unknown-api-key": lambda: kwire.frame(kwire.request_header_v1(32000, 0, 1) + b"\x00" * 16),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frames_same_outcome(broker, kafka_reference, case):
    data = BAD_FRAMES[case]()
    # 3 s: long enough for either broker to close a connection it refuses (both do it at once).
    weir = _closed(broker.bootstrap, data, 3)
    kafka = _closed(kafka_reference.bootstrap, data, 3)
    assert weir == kafka, f"{case}: Weir {weir}, Kafka {kafka}"
    assert broker.alive()


def _api_versions_future(bootstrap):
    with kwire.Conn(bootstrap) as c:
        header = struct.pack(">hhi", kwire.API_API_VERSIONS, 127, 42) + b"\x00\x07weir-it" + b"\x00"
        c.send_raw(kwire.frame(header + b"\x08weir-it" + b"\x061.0.0" + b"\x00"))
        err, apis = kwire.parse_api_versions_v0(c.recv_response_raw(42))
        again, _ = c.api_versions_v0()  # the connection stays usable
        return err, kwire.API_API_VERSIONS in apis, again


def test_api_versions_of_a_future_version_same_answer(broker, kafka_reference):
    assert _api_versions_future(broker.bootstrap) == _api_versions_future(kafka_reference.bootstrap)


def _produce_corrupt(bootstrap, topic):
    from test_bad_input import _batch
    good = _batch()
    results = []
    for flip in (-3, 17):  # inside a record's value; the CRC field itself
        bad = bytearray(good)
        bad[flip] ^= 0xFF if flip < 0 else 0x01
        req = ProduceRequest[7](transactional_id=None, required_acks=-1, timeout=10000,
                                topics=[(topic, [(0, bytes(bad))])])
        with kwire.Conn(bootstrap) as c:
            [(_, [part])] = c.call(req).topics
        results.append(part[1])
    return results


def test_corrupt_batches_same_error(broker, kafka_reference):
    codes = []
    for b in (broker.bootstrap, kafka_reference.bootstrap):
        t = h.topic_name("crc")
        h.create_topic(b, t, 1)
        codes.append(_produce_corrupt(b, t))
    assert codes[0] == codes[1] == [kwire.CORRUPT_MESSAGE] * 2, f"Weir {codes[0]}, Kafka {codes[1]}"


def _admin_errors(bootstrap):
    """Bad admin requests, each answered with an error code: CreateTopics, CreatePartitions,
    configs and DeleteTopics, as librdkafka sends them."""
    from confluent_kafka.admin import NewPartitions, NewTopic
    a = h.admin(bootstrap)
    existing = h.topic_name("exists")
    h.create_topic(bootstrap, existing, 2)
    out = {}

    def code(fut):
        try:
            h.future_result(fut)
            return "NO_ERROR"
        except Exception as e:  # noqa: BLE001 - the error's name is the result compared
            return h.kafka_error_of(e).name()

    cases = {
        "create-exists": NewTopic(existing, 1, 1),
        "create-bad-name": NewTopic("bad/name", 1, 1),
        "create-dot-dot": NewTopic("..", 1, 1),
        "create-zero-partitions": NewTopic(h.topic_name("z"), 0, 1),
        "create-rf-3": NewTopic(h.topic_name("rf"), 1, 3),
        "create-bad-config": NewTopic(h.topic_name("c"), 1, 1, config={"retention.ms": "soon"}),
        "create-unknown-config": NewTopic(h.topic_name("u"), 1, 1, config={"no.such.config": "1"}),
        "create-name-too-long": NewTopic("x" * 250, 1, 1),
    }
    for name, nt in cases.items():
        out[name] = code(a.create_topics([nt], operation_timeout=30)[nt.topic])
    for name, np in {"partitions-fewer": NewPartitions(existing, 1),
                     "partitions-same": NewPartitions(existing, 2),
                     "partitions-unknown-topic": NewPartitions(h.topic_name("none"), 3)}.items():
        out[name] = code(a.create_partitions([np], operation_timeout=30)[np.topic])
    missing = h.topic_name("missing")
    out["delete-unknown"] = code(a.delete_topics([missing], operation_timeout=30)[missing])
    res = ConfigResource(ResourceType.TOPIC, h.topic_name("nocfg"))
    out["describe-configs-unknown-topic"] = code(a.describe_configs([res])[res])
    res = ConfigResource(ResourceType.BROKER, "999")
    out["describe-configs-unknown-broker"] = code(a.describe_configs([res])[res])
    return out


# Differences kept on purpose, with the reason. (error case -> (Weir's, Kafka's))
KNOWN_ADMIN_ERRORS = {}


def test_bad_admin_requests_same_errors(broker, kafka_reference):
    weir = _admin_errors(broker.bootstrap)
    kafka = _admin_errors(kafka_reference.bootstrap)
    diff = {k: (weir[k], kafka[k]) for k in kafka if weir.get(k) != kafka[k] and k not in KNOWN_ADMIN_ERRORS}
    assert not diff, f"case: (Weir, Kafka): {diff}"


# ---------------------------------------------------------------------------------------------
# DescribeConfigs defaults

# Weir reports these topic configs with a value Kafka 4.4 does not have, on purpose.
KNOWN_TOPIC_DEFAULT_DIFFS: dict[str, str] = {}


def _describe(bootstrap, rtype, name):
    a = h.admin(bootstrap)
    res = ConfigResource(rtype, name)
    return h.future_result(a.describe_configs([res])[res])


def test_topic_config_defaults_match_kafka(broker, kafka_reference):
    t = h.topic_name("cfgdef")
    for b in (broker.bootstrap, kafka_reference.bootstrap):
        h.create_topic(b, t, 1)
    weir = _describe(broker.bootstrap, ResourceType.TOPIC, t)
    kafka = _describe(kafka_reference.bootstrap, ResourceType.TOPIC, t)
    unknown = sorted(set(weir) - set(kafka))
    assert not unknown, f"Weir reports topic configs Kafka does not have: {unknown}"
    diff = {k: (weir[k].value, kafka[k].value) for k in weir
            if weir[k].value != kafka[k].value and k not in KNOWN_TOPIC_DEFAULT_DIFFS}
    assert not diff, f"config: (Weir, Kafka): {diff}"
    # The source of a default: DEFAULT_CONFIG in both, except where Kafka's cluster holds a
    # dynamic default (min.insync.replicas, set by Kafka 4.4's controller for ELR).
    sources = {k: (weir[k].source, kafka[k].source) for k in weir
               if weir[k].source != kafka[k].source and k != "min.insync.replicas"}
    assert not sources, f"config: (Weir's source, Kafka's source): {sources}"


# Broker configs whose value is the machine's or the run's, not a default.
BROKER_CONFIGS_OF_THE_RUN = {
    "listeners", "advertised.listeners", "log.dirs", "log.dir", "node.id", "broker.id",
    "cluster.id", "process.roles", "controller.listener.names", "controller.quorum.voters",
    "listener.security.protocol.map", "inter.broker.listener.name", "log.cleaner.backoff.ms",
    "group.initial.rebalance.delay.ms", "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
    "num.partitions", "default.replication.factor", "auto.create.topics.enable",
}


def test_broker_config_defaults_match_kafka(broker, kafka_reference):
    weir = _describe(broker.bootstrap, ResourceType.BROKER, "1")
    kafka = _describe(kafka_reference.bootstrap, ResourceType.BROKER, "1")
    # Weir's own keys: weir.*, and cluster.id (Kafka takes the id from `kafka-storage format`).
    unknown = sorted(k for k in set(weir) - set(kafka) if not k.startswith("weir.") and k != "cluster.id")
    assert not unknown, f"Weir reports broker configs Kafka does not have: {unknown}"

    def norm(v):  # Kafka describes an unset config as null
        return None if v in (None, "", "null") else v
    diff = {k: (weir[k].value, kafka[k].value) for k in weir
            if k in kafka and k not in BROKER_CONFIGS_OF_THE_RUN and norm(weir[k].value) != norm(kafka[k].value)}
    assert not diff, f"config: (Weir, Kafka): {diff}"
    # A key neither properties file sets is DEFAULT_CONFIG on both, and null where unset
    # (min.insync.replicas aside: Kafka 4.4's controller holds a cluster default for it, for ELR).
    sources = {k: (weir[k].source, kafka[k].source) for k in weir
               if k in kafka and k not in BROKER_CONFIGS_OF_THE_RUN | {"min.insync.replicas"}
               and weir[k].source != kafka[k].source}
    assert not sources, f"config: (Weir's source, Kafka's source): {sources}"
    nulls = {k: (weir[k].value, kafka[k].value) for k in weir
             if k in kafka and k not in BROKER_CONFIGS_OF_THE_RUN
             and (weir[k].value is None) != (kafka[k].value is None)}
    assert not nulls, f"config: (Weir, Kafka): {nulls}"


def test_config_synonyms_match_kafka(broker, kafka_reference):
    t = h.topic_name("syn")
    out = []
    for b in (broker.bootstrap, kafka_reference.bootstrap):
        h.create_topic(b, t, 1, config={"cleanup.policy": "compact", "retention.ms": "100000"})
        desc = _describe(b, ResourceType.TOPIC, t)
        out.append({k: [(s.name, s.value, s.source) for s in desc[k].synonyms.values()]
                    for k in ("cleanup.policy", "retention.ms", "segment.bytes", "max.message.bytes")})
    assert out[0] == out[1], f"Weir {out[0]}\nKafka {out[1]}"


# ---------------------------------------------------------------------------------------------
# ListOffsets and timestamp lookups

TIMESTAMPS = [1_000, 5_000, 3_000, 5_000, 9_000, 2_000, 9_000, 12_000]  # not monotonic on purpose


def _offsets_scenario(bootstrap):
    t = h.topic_name("lo")
    h.create_topic(bootstrap, t, 1)
    base = 1_700_000_000_000
    p = h.producer(bootstrap, acks="all", **{"linger.ms": 0})
    for i, ts in enumerate(TIMESTAMPS):
        p.produce(t, key=b"k%d" % i, value=b"v%d" % i, partition=0, timestamp=base + ts)
        p.flush(30)  # one batch per record: the index sees every timestamp
    a = h.admin(bootstrap)
    tp = TopicPartition(t, 0)
    specs = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest(),
             "max": OffsetSpec.max_timestamp()}
    for ts in (0, 1_000, 1_500, 3_000, 4_999, 5_000, 9_000, 11_000, 12_000, 12_001):
        specs[f"ts+{ts}"] = OffsetSpec.for_timestamp(base + ts)
    out = {}
    for name, spec in specs.items():
        r = h.future_result(a.list_offsets({tp: spec})[tp])
        out[name] = (r.offset, r.timestamp - base if r.timestamp >= 0 else r.timestamp)
    return out


def test_list_offsets_and_timestamp_lookups_match(broker, kafka_reference):
    weir = _offsets_scenario(broker.bootstrap)
    kafka = _offsets_scenario(kafka_reference.bootstrap)
    diff = {k: (weir[k], kafka[k]) for k in kafka if weir[k] != kafka[k]}
    assert not diff, f"spec: (Weir, Kafka) as (offset, timestamp-base): {diff}"


# ---------------------------------------------------------------------------------------------
# OffsetForLeaderEpoch (KIP-320: what consumers ask after a leader change)

def _epoch_scenario(bootstrap):
    from kafka.protocol.offset_for_leader_epoch import (OffsetForLeaderEpochRequest_v3,
                                                        OffsetForLeaderEpochRequest_v4)

    class OffsetForLeaderEpochRequestV4(OffsetForLeaderEpochRequest_v4):
        FLEXIBLE_VERSION = True  # kafka-python 2.3 forgets it: header v1 on a flexible version

    t = h.topic_name("ofle")
    h.create_topic(bootstrap, t, 2)
    p = h.producer(bootstrap, acks="all", **{"linger.ms": 0})
    for i in range(5):
        p.produce(t, value=b"v%d" % i, partition=0)
    assert p.flush(30) == 0
    # (partition, current_leader_epoch, leader_epoch): the epoch in use, an epoch newer than
    # any (undefined answer), a current epoch the leader has not reached (UNKNOWN_LEADER_EPOCH),
    # no current epoch (-1: unchecked), an empty partition, a partition that does not exist.
    asks = [(0, 0, 0), (0, 0, 3), (0, 4, 0), (0, -1, 0), (1, -1, 0), (7, -1, 0)]
    out = {}
    with kwire.Conn(bootstrap) as c:
        for version, req in ((3, OffsetForLeaderEpochRequest_v3),
                             (4, OffsetForLeaderEpochRequestV4)):
            tags = ({},) if version == 4 else ()
            parts = [(part, cur, ep) + tags for part, cur, ep in asks]
            resp = c.call(req(-1, [(t, parts) + tags], *tags))
            [(_name, answers, *_)] = resp.topics
            for (err, part, epoch, end, *_), ask in zip(answers, asks):
                assert part == ask[0]
                out[(version,) + ask] = (err, epoch, end)
        resp = c.call(OffsetForLeaderEpochRequest_v3(-1, [(h.topic_name("none"), [(0, -1, 0)])]))
        [(_name, [(err, _p, epoch, end)])] = resp.topics
        out["missing topic"] = (err, epoch, end)
    return out


def test_offset_for_leader_epoch_matches(broker, kafka_reference):
    weir = _epoch_scenario(broker.bootstrap)
    kafka = _epoch_scenario(kafka_reference.bootstrap)
    diff = {k: (weir[k], kafka[k]) for k in kafka if weir[k] != kafka[k]}
    assert not diff, f"ask: (Weir, Kafka) as (error, epoch, end offset): {diff}"
    assert weir[(4, 0, 0, 0)] == (0, 0, 5), weir


# ---------------------------------------------------------------------------------------------
# Fetch as a replica that is not one (a forged replica id)

def _forged_replica_fetch(bootstrap):
    from kafka.protocol.fetch import FetchRequest
    t = h.topic_name("forged")
    h.create_topic(bootstrap, t, 1)
    p = h.producer(bootstrap, acks="all")
    p.produce(t, value=b"x", partition=0)
    assert p.flush(30) == 0
    out = {}
    with kwire.Conn(bootstrap) as c:
        for replica, epoch in ((99, -1), (99, 0), (-1, -1), (-1, 0)):
            resp = c.call(FetchRequest[11](replica, 100, 1, 1 << 20, 0, 0, -1,
                                           [(t, [(0, epoch, 0, -1, 1 << 20)])], [], ""))
            [(_t, [(_p, err, *_)])] = resp.topics
            out[(replica, epoch)] = err
    return out


def test_a_fetch_from_a_forged_replica_id_is_refused_as_kafka_refuses_it(broker, kafka_reference):
    weir = _forged_replica_fetch(broker.bootstrap)
    kafka = _forged_replica_fetch(kafka_reference.bootstrap)
    assert weir == kafka, f"(replica id, current leader epoch): error; Weir {weir}, Kafka {kafka}"
    assert weir[(-1, 0)] == 0


# ---------------------------------------------------------------------------------------------
# Compaction

def _compaction_scenario(bootstrap, rounds=5, keys=10):
    t = h.topic_name("cmp")
    h.create_topic(bootstrap, t, 1, config={"cleanup.policy": "compact", "segment.ms": "300",
                                            "min.cleanable.dirty.ratio": "0.01",
                                            "delete.retention.ms": "86400000"})
    p = h.producer(bootstrap, acks="all", **{"linger.ms": 0})
    for r in range(rounds):
        for k in range(keys):
            # round 2 deletes key 3 (a tombstone), round 3 writes it again
            value = None if (r == 2 and k == 3) else b"r%d-k%d" % (r, k)
            p.produce(t, key=b"k%d" % k, value=value, partition=0)
        p.flush(30)
        time.sleep(0.4)  # past segment.ms: the next round rolls the segment
    p.produce(t, key=b"end", value=b"end", partition=0)  # closes the last round's segment
    p.flush(30)
    expected = rounds * keys + 1 - (rounds - 1) * keys  # the last round and "end"
    deadline = time.monotonic() + 90
    got = []
    while time.monotonic() < deadline:
        msgs = h.consume_all(bootstrap, t, [0], timeout=10)
        got = [(m.offset(), m.key(), m.value()) for m in msgs]
        if len(got) == expected:
            return got
        time.sleep(1)
    return got


def test_offsets_and_records_after_compaction_match(broker_factory, kafka_reference):
    weir_broker = broker_factory(SHARED_OVERRIDES, name="weir-compaction")
    weir = _compaction_scenario(weir_broker.bootstrap)
    kafka = _compaction_scenario(kafka_reference.bootstrap)
    assert kafka[0][0] == 40 and len(kafka) == 11, f"the scenario did not compact on Kafka: {kafka}"
    assert weir == kafka


# ---------------------------------------------------------------------------------------------
# Group states seen through DescribeGroups

def _group_states(bootstrap):
    t = h.topic_name("gs")
    h.create_topic(bootstrap, t, 2)
    group = "gs-" + uuid.uuid4().hex[:8]
    a = h.admin(bootstrap)
    seen = []

    def state():
        # A fresh Kafka creates __consumer_offsets at first use: until its partitions are loaded
        # it answers NOT_COORDINATOR, which clients retry (bounded here).
        deadline = time.monotonic() + 30
        while True:
            try:
                d = h.future_result(a.describe_consumer_groups([group])[group])
                return d.state.name, len(d.members), d.partition_assignor
            except Exception as e:  # noqa: BLE001 - only retriable Kafka errors are retried
                err = h.kafka_error_of(e)
                if not err.retriable() and err.name() != "NOT_COORDINATOR" or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def wait_for(cond, consumers=()):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for c in consumers:
                c.poll(0.1)
            s = state()
            if cond(s):
                return s
        return state()

    seen.append(("before", state()))
    conf = {"group.id": group, "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "enable.auto.commit": False, "enable.partition.eof": False,
            "partition.assignment.strategy": "range"}
    c1 = h.consumer(bootstrap, **conf)
    c1.subscribe([t])
    seen.append(("one member", wait_for(lambda s: s[0] == "STABLE" and s[1] == 1, [c1])))
    c2 = h.consumer(bootstrap, **conf)
    c2.subscribe([t])
    seen.append(("two members", wait_for(lambda s: s[0] == "STABLE" and s[1] == 2, [c1, c2])))
    c2.close()
    seen.append(("one left", wait_for(lambda s: s[0] == "STABLE" and s[1] == 1, [c1])))
    c1.close()
    seen.append(("all left", wait_for(lambda s: s[0] == "EMPTY")))
    h.future_result(a.delete_consumer_groups([group])[group])
    seen.append(("deleted", state()))
    return seen


def test_group_state_transitions_match(broker, kafka_reference):
    weir = _group_states(broker.bootstrap)
    kafka = _group_states(kafka_reference.bootstrap)
    assert weir == kafka
    assert ConsumerGroupState.STABLE.name in {s[0] for _, s in kafka}
