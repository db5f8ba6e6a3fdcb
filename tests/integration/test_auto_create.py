"""Auto topic creation (auto.create.topics.enable, num.partitions) and its opt-outs."""
from __future__ import annotations

import time

from kafka.protocol.metadata import MetadataRequest

import helpers as h
import kwire


def test_produce_to_unknown_topic_auto_creates(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "true", "num.partitions": 5})
    topic = h.topic_name("auto")
    p = h.producer(b.bootstrap, acks="all")
    reports = h.produce_and_collect(p, [(b"k%d" % i, b"v%d" % i) for i in range(50)], topic, timeout=60)
    assert all(r[0] is None for r in reports), [r for r in reports if r[0] is not None][:3]
    md = h.wait_for_topic(b.bootstrap, topic, 5)
    assert len(md.topics[topic].partitions) == 5
    msgs = h.consume_all(b.bootstrap, topic, range(5), expected=50, timeout=30)
    assert sorted(m.value() for m in msgs) == sorted(b"v%d" % i for i in range(50))


def _metadata_v4(bootstrap, topic, allow):
    with kwire.Conn(bootstrap) as c:
        resp = c.call(MetadataRequest[4](topics=[topic], allow_auto_topic_creation=allow))
    [t] = [t for t in resp.topics if t[1] == topic]
    return t[0], len(t[3])  # (error_code, partition count)


def _eventually_exists(bootstrap, topic, partitions, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        err, n = _metadata_v4(bootstrap, topic, False)
        if err == kwire.NONE and n == partitions:
            return
        time.sleep(0.2)
    raise AssertionError(f"{topic} was not auto-created with {partitions} partitions")


def test_metadata_request_flag_controls_auto_creation(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "true", "num.partitions": 3})
    t_no, t_yes = h.topic_name("noauto"), h.topic_name("yesauto")
    err, _ = _metadata_v4(b.bootstrap, t_no, False)
    assert err == kwire.UNKNOWN_TOPIC_OR_PARTITION
    time.sleep(1)
    assert _metadata_v4(b.bootstrap, t_no, False)[0] == kwire.UNKNOWN_TOPIC_OR_PARTITION, \
        "allow_auto_topic_creation=false must not create the topic"

    err, _ = _metadata_v4(b.bootstrap, t_yes, True)
    # Kafka answers the creating request with NONE or LEADER_NOT_AVAILABLE (still being created)
    assert err in (kwire.NONE, kwire.LEADER_NOT_AVAILABLE, kwire.UNKNOWN_TOPIC_OR_PARTITION), err
    _eventually_exists(b.bootstrap, t_yes, 3)


def test_auto_create_disabled(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = h.topic_name("off")
    err, _ = _metadata_v4(b.bootstrap, topic, True)
    assert err == kwire.UNKNOWN_TOPIC_OR_PARTITION
    time.sleep(1)
    assert _metadata_v4(b.bootstrap, topic, True)[0] == kwire.UNKNOWN_TOPIC_OR_PARTITION
    assert topic not in h.admin(b.bootstrap).list_topics(timeout=10).topics


def test_create_topics_with_broker_defaults(broker_factory):
    """KIP-464 (CreateTopics v4+): num_partitions / replication_factor -1 mean the broker's
    num.partitions / default.replication.factor."""
    from confluent_kafka.admin import NewTopic
    b = broker_factory({"num.partitions": 4})
    topic = h.topic_name("dflt")
    # Keep the client alive until the future resolves: a destroyed handle fails its futures.
    admin = h.admin(b.bootstrap)
    futs = admin.create_topics([NewTopic(topic, num_partitions=-1, replication_factor=-1)],
                               operation_timeout=30, request_timeout=35)
    assert futs[topic].result(timeout=30) is None
    md = h.wait_for_topic(b.bootstrap, topic, 4)
    assert all(p.replicas == [1] for p in md.topics[topic].partitions.values())
