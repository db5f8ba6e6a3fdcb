"""Topic administration: CreateTopics, Metadata, DeleteTopics, CreatePartitions, with both
kafka-python's KafkaAdminClient and confluent-kafka's AdminClient."""
from __future__ import annotations

import time

import kafka.errors as kerr
import pytest
from confluent_kafka.admin import NewPartitions, NewTopic
from confluent_kafka import TopicCollection
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KNewPartitions
from kafka.admin import NewTopic as KNewTopic

import helpers as h
import kwire

T = h.OP_TIMEOUT_S


@pytest.fixture
def kadmin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="weir-it",
                         request_timeout_ms=30000, api_version_auto_timeout_ms=30000)
    yield a
    a.close()


def _create(admin, *topics, **kw):
    futs = admin.create_topics(list(topics), operation_timeout=T, request_timeout=T + 5, **kw)
    return {name: f for name, f in futs.items()}


def _error_code(fut) -> int:
    with pytest.raises(Exception) as ei:
        fut.result(timeout=T)
    return h.kafka_error_of(ei.value).code()


def _wait_gone(bootstrap, name, timeout=30.0):
    a = h.admin(bootstrap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name not in a.list_topics(timeout=10).topics:
            return
        time.sleep(0.2)
    raise AssertionError(f"topic {name} still listed {timeout}s after deletion")


# -- confluent AdminClient ----------------------------------------------------------------------

def test_confluent_create_list_describe_delete(broker):
    a = h.admin(broker.bootstrap)
    name = h.topic_name("admin")
    futs = _create(a, NewTopic(name, num_partitions=3, replication_factor=1,
                               config={"retention.ms": "3600000", "cleanup.policy": "delete"}))
    assert futs[name].result(timeout=T) is None
    h.wait_for_topic(broker.bootstrap, name, 3)

    md = a.list_topics(timeout=T)
    assert name in md.topics
    assert 1 in md.brokers and md.brokers[1].host == "127.0.0.1" and md.brokers[1].port == broker.port
    t = md.topics[name]
    assert sorted(t.partitions) == [0, 1, 2]
    for p in t.partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1], p

    desc = a.describe_topics(TopicCollection([name]), request_timeout=T)[name].result(timeout=T)
    assert desc.name == name
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    for p in desc.partitions:
        assert p.leader.id == 1 and [n.id for n in p.replicas] == [1] and [n.id for n in p.isr] == [1]

    dfuts = a.delete_topics([name], operation_timeout=T, request_timeout=T + 5)
    assert dfuts[name].result(timeout=T) is None
    _wait_gone(broker.bootstrap, name)


def test_confluent_create_existing_topic_fails(broker):
    a = h.admin(broker.bootstrap)
    name = h.topic_name("dup")
    h.create_topic(broker.bootstrap, name, 2)
    futs = _create(a, NewTopic(name, num_partitions=2, replication_factor=1))
    assert _error_code(futs[name]) == kwire.TOPIC_ALREADY_EXISTS


@pytest.mark.parametrize("bad", ["bad/name", "..", ".", "a" * 250, "with space", "", "\u00fc"])
def test_confluent_invalid_topic_name(broker, bad):
    """Legal names: 1..249 chars of [a-zA-Z0-9._-], not "." or ".." (librdkafka sends them all)."""
    a = h.admin(broker.bootstrap)
    futs = _create(a, NewTopic(bad, num_partitions=1, replication_factor=1))
    assert _error_code(futs[bad]) == kwire.INVALID_TOPIC_EXCEPTION
    assert bad not in a.list_topics(timeout=T).topics


def test_confluent_longest_legal_topic_name_works(broker):
    """249 characters is Kafka's maximum (partition dirs are `<topic>-<partition>`)."""
    name = ("x" * 237 + h.topic_name("")[1:])[:249]
    assert len(name) == 249
    h.create_topic(broker.bootstrap, name, 1)
    p = h.producer(broker.bootstrap, acks="all")
    reports = h.produce_and_collect(p, [(b"k", b"v")], name)
    assert reports[0][0] is None and reports[0][2] == 0
    msgs = h.consume_all(broker.bootstrap, name, [0], expected=1, timeout=30)
    assert [(m.key(), m.value(), m.offset()) for m in msgs] == [(b"k", b"v", 0)]


def test_confluent_invalid_partitions_and_replication(broker):
    a = h.admin(broker.bootstrap)
    n1, n2 = h.topic_name("zero"), h.topic_name("rf3")
    futs = _create(a, NewTopic(n1, num_partitions=0, replication_factor=1))
    assert _error_code(futs[n1]) == kwire.INVALID_PARTITIONS
    futs = _create(a, NewTopic(n2, num_partitions=1, replication_factor=3))  # one broker only
    assert _error_code(futs[n2]) == kwire.INVALID_REPLICATION_FACTOR
    topics = a.list_topics(timeout=T).topics
    assert n1 not in topics and n2 not in topics


def test_confluent_create_partitions(broker):
    a = h.admin(broker.bootstrap)
    name = h.topic_name("grow")
    h.create_topic(broker.bootstrap, name, 3)
    futs = a.create_partitions([NewPartitions(name, 5)], operation_timeout=T, request_timeout=T + 5)
    assert futs[name].result(timeout=T) is None
    h.wait_for_topic(broker.bootstrap, name, 5)

    # the new partitions are usable
    p = h.producer(broker.bootstrap, acks="all")
    reports = h.produce_and_collect(p, [(None, b"new")], name, partition=4)
    assert reports[0][0] is None and (reports[0][1], reports[0][2]) == (4, 0)

    for total in (2, 5):  # decreasing, and "increasing" to the current count, are both refused
        futs = a.create_partitions([NewPartitions(name, total)], operation_timeout=T,
                                   request_timeout=T + 5)
        assert _error_code(futs[name]) == kwire.INVALID_PARTITIONS, total
    assert len(a.list_topics(topic=name, timeout=T).topics[name].partitions) == 5


def test_confluent_create_partitions_unknown_topic(broker):
    a = h.admin(broker.bootstrap)
    name = h.topic_name("nope")
    futs = a.create_partitions([NewPartitions(name, 4)], operation_timeout=T, request_timeout=T + 5)
    assert _error_code(futs[name]) == kwire.UNKNOWN_TOPIC_OR_PARTITION


def test_confluent_delete_unknown_topic(broker):
    a = h.admin(broker.bootstrap)
    name = h.topic_name("nope")
    futs = a.delete_topics([name], operation_timeout=T, request_timeout=T + 5)
    assert _error_code(futs[name]) == kwire.UNKNOWN_TOPIC_OR_PARTITION


def test_delete_then_recreate_starts_empty(broker):
    a = h.admin(broker.bootstrap)
    name = h.topic_name("again")
    h.create_topic(broker.bootstrap, name, 2)
    p = h.producer(broker.bootstrap, acks="all")
    h.produce_and_collect(p, [(b"k%d" % i, b"old") for i in range(20)], name)
    a.delete_topics([name], operation_timeout=T, request_timeout=T + 5)[name].result(timeout=T)
    _wait_gone(broker.bootstrap, name)

    deadline = time.monotonic() + 30
    while True:  # Kafka may briefly answer TOPIC_ALREADY_EXISTS while the deletion completes
        f = _create(a, NewTopic(name, num_partitions=2, replication_factor=1))[name]
        try:
            f.result(timeout=T)
            break
        except Exception as e:  # noqa: BLE001
            if h.kafka_error_of(e).code() != kwire.TOPIC_ALREADY_EXISTS or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    h.wait_for_topic(broker.bootstrap, name, 2)
    p = h.producer(broker.bootstrap, acks="all")
    reports = h.produce_and_collect(p, [(None, b"new")], name, partition=0)
    assert reports[0][2] == 0, "recreated topic must start at offset 0"
    msgs = h.consume_all(broker.bootstrap, name, [0, 1], expected=1, timeout=30)
    assert [m.value() for m in msgs] == [b"new"]


# -- kafka-python KafkaAdminClient --------------------------------------------------------------

def test_kafka_python_create_list_describe_delete(broker, kadmin):
    name = h.topic_name("kp")
    kadmin.create_topics([KNewTopic(name, 4, 1, topic_configs={"retention.ms": "7200000"})],
                         timeout_ms=30000)
    h.wait_for_topic(broker.bootstrap, name, 4)
    assert name in kadmin.list_topics()
    [desc] = kadmin.describe_topics([name])
    assert desc["topic"] == name and desc["error_code"] == 0
    assert sorted(p["partition"] for p in desc["partitions"]) == [0, 1, 2, 3]
    for p in desc["partitions"]:
        assert p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1] and p["error_code"] == 0

    kadmin.create_partitions({name: KNewPartitions(total_count=6)}, timeout_ms=30000)
    h.wait_for_topic(broker.bootstrap, name, 6)
    with pytest.raises(kerr.InvalidPartitionsError):
        kadmin.create_partitions({name: KNewPartitions(total_count=3)}, timeout_ms=30000)

    kadmin.delete_topics([name], timeout_ms=30000)
    _wait_gone(broker.bootstrap, name)


def test_kafka_python_errors(broker, kadmin):
    name = h.topic_name("kpdup")
    kadmin.create_topics([KNewTopic(name, 1, 1)], timeout_ms=30000)
    with pytest.raises(kerr.TopicAlreadyExistsError):
        kadmin.create_topics([KNewTopic(name, 1, 1)], timeout_ms=30000)
    for bad in ["bad/name", "..", "a" * 250]:
        with pytest.raises(kerr.InvalidTopicError):
            kadmin.create_topics([KNewTopic(bad, 1, 1)], timeout_ms=30000)
    with pytest.raises(kerr.UnknownTopicOrPartitionError):
        kadmin.delete_topics([h.topic_name("nope")], timeout_ms=30000)


def test_kafka_python_describe_cluster(broker, kadmin):
    c = kadmin.describe_cluster()
    assert c["controller_id"] == 1
    assert c["cluster_id"], "Metadata v2+ must carry a cluster id"
    assert [(b["node_id"], b["host"], b["port"]) for b in c["brokers"]] == [(1, "127.0.0.1", broker.port)]
