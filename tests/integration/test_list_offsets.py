"""ListOffsets: earliest, latest, by timestamp (confluent consumer + admin, kafka-python)."""
from __future__ import annotations

import time

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka import KafkaConsumer
from kafka import TopicPartition as KTP

import helpers as h

N = 10
STEP = 1000


def _setup(broker, partitions=1):
    topic = h.topic_name("lo")
    h.create_topic(broker.bootstrap, topic, partitions)
    base = (int(time.time() * 1000) - 3_600_000) // 1000 * 1000  # an hour ago: within any limit
    p = h.producer(broker.bootstrap, acks="all", **{"linger.ms": 0})
    for i in range(N):
        p.produce(topic, key=b"k", value=b"v%d" % i, partition=0, timestamp=base + i * STEP)
        p.flush(10)  # one batch per message, so per-batch indexes are exercised too
    assert p.flush(30) == 0
    return topic, base


def test_confluent_watermarks_and_offsets_for_times(broker):
    topic, base = _setup(broker, partitions=2)
    c = h.consumer(broker.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, N)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 0)
        queries = {
            base - 5000: 0,               # before everything -> first message
            base: 0,
            base + 2000: 2,               # exact hit
            base + 2500: 3,               # first message with timestamp >= query
            base + (N - 1) * STEP: N - 1,
            base + (N - 1) * STEP + 1: -1,  # after the last: no offset (OFFSET_END, -1)
        }
        for ts, want in queries.items():
            [tp] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            assert tp.offset == want, f"timestamp {ts - base:+d}: offset {tp.offset}, want {want}"
    finally:
        c.close()


def test_confluent_admin_list_offsets(broker):
    topic, base = _setup(broker)
    a = h.admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    specs = {
        "earliest": (OffsetSpec.earliest(), 0),
        "latest": (OffsetSpec.latest(), N),
        "ts": (OffsetSpec.for_timestamp(base + 4500), 5),
    }
    for name, (spec, want) in specs.items():
        res = a.list_offsets({tp: spec}, request_timeout=30)[tp].result(timeout=30)
        assert res.offset == want, f"{name}: {res.offset} != {want}"
    res = a.list_offsets({tp: OffsetSpec.for_timestamp(base + 4500)}, request_timeout=30)[tp].result(timeout=30)
    assert res.timestamp == base + 5 * STEP


def test_confluent_admin_list_offsets_max_timestamp(broker):
    """KIP-734 (ListOffsets v7): MAX_TIMESTAMP returns the record with the largest timestamp."""
    topic = h.topic_name("lomax")
    h.create_topic(broker.bootstrap, topic, 1)
    base = int(time.time() * 1000) - 3_600_000
    p = h.producer(broker.bootstrap, acks="all")
    for i, dt in enumerate([0, 5000, 1000, 3000]):  # max at offset 1
        p.produce(topic, value=b"%d" % i, partition=0, timestamp=base + dt)
    assert p.flush(30) == 0
    a = h.admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    res = a.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=30)[tp].result(timeout=30)
    assert (res.offset, res.timestamp) == (1, base + 5000)


def test_kafka_python_offsets(broker):
    topic, base = _setup(broker)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      client_id="weir-it", request_timeout_ms=30000, api_version_auto_timeout_ms=30000)
    try:
        tp = KTP(topic, 0)
        assert c.beginning_offsets([tp]) == {tp: 0}
        assert c.end_offsets([tp]) == {tp: N}
        r = c.offsets_for_times({tp: base + 6500})[tp]
        assert (r.offset, r.timestamp) == (7, base + 7000)
        assert c.offsets_for_times({tp: base + N * STEP})[tp] is None
    finally:
        c.close()
