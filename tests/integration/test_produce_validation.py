"""What the leader does to a producer's batches, as Kafka's LogValidator does, seen through a real
client (confluent-kafka / librdkafka): LogAppendTime topics, CreateTime bounds
(message.timestamp.before/after.max.ms), per-record errors (KIP-467), and compression.type."""
from __future__ import annotations

import struct
import time

import pytest
from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, KafkaError,
                             TopicPartition)
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

import helpers as h

T = 30
LOG_APPEND_TIME_FLAG = 0x08
CODECS = {"none": 0, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def now_ms():
    return int(time.time() * 1000)


def stored_batches(data_dir, topic, partition=0):
    """(base_offset, attributes, record_count, max_timestamp) of each batch in the partition's
    segment files, read from disk: what the broker stored, not what a consumer decodes."""
    out = []
    for seg in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        b = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(b):
            base, length = struct.unpack_from(">qi", b, pos)
            if length <= 0:
                break
            (attributes,) = struct.unpack_from(">h", b, pos + 21)
            (max_ts,) = struct.unpack_from(">q", b, pos + 35)
            (count,) = struct.unpack_from(">i", b, pos + 57)
            out.append((base, attributes, count, max_ts))
            pos += 12 + length
    return out


def produce_each(p, topic, values, **kw):
    """Produce values to partition 0; returns the delivered Message objects (error or not)."""
    got = []
    for v in values:
        p.produce(topic, value=v, partition=0, on_delivery=lambda err, msg: got.append(msg), **kw)
    assert p.flush(T) == 0
    assert len(got) == len(values)
    return got


def test_log_append_time_topic(broker):
    """message.timestamp.type=LogAppendTime: the broker stamps the batch with the time it
    appends it; the producer's CreateTime (a day old here) is gone for consumers, the produce
    response carries the append time, and ListOffsets by timestamp finds the records by it."""
    topic = h.topic_name("lat")
    h.create_topic(broker.bootstrap, topic, 1, config={"message.timestamp.type": "LogAppendTime"})
    day_old = now_ms() - 86_400_000
    before = now_ms()
    delivered = produce_each(h.producer(broker.bootstrap, acks="all"), topic,
                             [b"a", b"b", b"c"], timestamp=day_old)
    after = now_ms()
    for m in delivered:
        assert m.error() is None, m.error()
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, (ts_type, ts)
        assert before - 1000 <= ts <= after + 1000, (before, ts, after)
    msgs = h.consume_all(broker.bootstrap, topic, [0], expected=3, timeout=T)
    stamps = {m.timestamp() for m in msgs}
    assert len(stamps) == 1, stamps
    ((ts_type, ts),) = stamps
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= after + 1000
    assert ts != day_old
    [(_, attributes, count, max_ts)] = stored_batches(broker.data_dir, topic)
    assert attributes & LOG_APPEND_TIME_FLAG and count == 3 and max_ts == ts

    # The records are found by their append time, not by the day-old CreateTime.
    c = h.consumer(broker.bootstrap)
    try:
        [found] = c.offsets_for_times([TopicPartition(topic, 0, now_ms() - 3_600_000)],
                                      timeout=T)
        assert found.error is None and found.offset == 0, found
    finally:
        c.close()


def test_broker_wide_log_append_time(broker_factory):
    """log.message.timestamp.type on the broker is every topic's default, and DescribeConfigs
    names it as the source."""
    b = broker_factory({"log.message.timestamp.type": "LogAppendTime"})
    topic = h.topic_name("blat")
    h.create_topic(b.bootstrap, topic, 1)
    produce_each(h.producer(b.bootstrap, acks="all"), topic, [b"x"], timestamp=1_000_000)
    [m] = h.consume_all(b.bootstrap, topic, [0], expected=1, timeout=T)
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and ts > 1_000_000
    res = ConfigResource(ResourceType.TOPIC, topic)
    a = h.admin(b.bootstrap)
    e = a.describe_configs([res], request_timeout=T)[res].result(timeout=T)[
        "message.timestamp.type"]
    assert e.value == "LogAppendTime" and e.source == ConfigSource.STATIC_BROKER_CONFIG.value


def test_create_time_bounds(broker):
    """message.timestamp.before.max.ms refuses records older than now minus the bound, and
    Kafka 4's default message.timestamp.after.max.ms (an hour) refuses records from further in
    the future: INVALID_TIMESTAMP, nothing appended."""
    topic = h.topic_name("tsb")
    h.create_topic(broker.bootstrap, topic, 1, config={"message.timestamp.before.max.ms": "60000"})
    p = h.producer(broker.bootstrap, acks="all", retries=0, **{"enable.idempotence": False})
    [old] = produce_each(p, topic, [b"old"], timestamp=now_ms() - 3_600_000)
    assert old.error() is not None and old.error().code() == KafkaError.INVALID_TIMESTAMP, \
        old.error()
    [fresh] = produce_each(p, topic, [b"fresh"], timestamp=now_ms() - 1000)
    assert fresh.error() is None and fresh.offset() == 0, fresh.error()

    plain = h.topic_name("tsa")
    h.create_topic(broker.bootstrap, plain, 1)
    [future] = produce_each(p, plain, [b"future"], timestamp=now_ms() + 2 * 3_600_000)
    assert future.error() is not None and future.error().code() == KafkaError.INVALID_TIMESTAMP
    [soon] = produce_each(p, plain, [b"soon"], timestamp=now_ms() + 600_000)
    assert soon.error() is None and soon.offset() == 0, soon.error()
    msgs = h.consume_all(broker.bootstrap, plain, [0], expected=1, timeout=T)
    assert [m.value() for m in msgs] == [b"soon"]
    assert msgs[0].timestamp()[0] == TIMESTAMP_CREATE_TIME


def test_keyless_records_of_a_compacted_topic_fail_alone(broker):
    """One batch of 100 records to a compacted topic, 10 without a key. The broker refuses the
    batch and lists the 10 by index (Produce v8+ record_errors, KIP-467): the client fails those
    with INVALID_RECORD and the 90 others as failed by a different record, so it can send them
    again; before, all 100 came back as INVALID_RECORD alike."""
    topic = h.topic_name("keyless")
    h.create_topic(broker.bootstrap, topic, 1, config={"cleanup.policy": "compact"})
    p = h.producer(broker.bootstrap, acks="all", retries=0, **{
        "enable.idempotence": False, "linger.ms": 2000, "batch.num.messages": 1000})
    results = {}

    def cb(err, msg):
        results[msg.value()] = err

    keyless = {i for i in range(100) if i % 10 == 3}
    for i in range(100):
        key = None if i in keyless else b"k%d" % i
        p.produce(topic, key=key, value=b"v%d" % i, partition=0, on_delivery=cb)
    assert p.flush(T) == 0 and len(results) == 100
    for i in range(100):
        err = results[b"v%d" % i]
        assert err is not None, i
        want = KafkaError.INVALID_RECORD if i in keyless else KafkaError._INVALID_DIFFERENT_RECORD
        assert err.code() == want, (i, err)
    assert stored_batches(broker.data_dir, topic) == [], "a refused batch must not be stored"

    # Sent again without the keyless ones, the rest go through.
    again = h.produce_and_collect(p, [(b"k%d" % i, b"v%d" % i) for i in range(100)
                                      if i not in keyless], topic, partition=0)
    assert all(r[0] is None for r in again)
    assert sorted(r[2] for r in again) == list(range(90))


@pytest.mark.parametrize("topic_codec,producer_codec,level", [
    ("zstd", "none", ("compression.zstd.level", "-5")),
    ("gzip", "lz4", ("compression.gzip.level", "9")),
    ("lz4", "zstd", ("compression.lz4.level", "12")),
    ("snappy", "gzip", None),
    ("uncompressed", "lz4", None),
    ("producer", "snappy", None),
])
def test_compression_type_recompresses(broker, topic_codec, producer_codec, level):
    """compression.type=<codec> stores every batch in that codec whatever the producer used
    (the broker recompresses it), `uncompressed` stores it plain, `producer` keeps the
    producer's; consumers read the same records either way."""
    topic = h.topic_name(f"cmp-{topic_codec}")
    config = {"compression.type": topic_codec}
    if level:
        config[level[0]] = level[1]
    h.create_topic(broker.bootstrap, topic, 1, config=config)
    items = [(b"k%d" % (i % 7), (b"message %d " % i) * 30) for i in range(300)]
    p = h.producer(broker.bootstrap, acks="all", **{"compression.type": producer_codec,
                                                    "linger.ms": 50})
    reports = h.produce_and_collect(p, items, topic, partition=0)
    assert all(r[0] is None for r in reports)
    assert sorted(r[2] for r in reports) == list(range(len(items)))

    stored = stored_batches(broker.data_dir, topic)
    assert stored and sum(count for _, _, count, _ in stored) == len(items)
    want = CODECS[producer_codec if topic_codec == "producer" else topic_codec]
    assert {attributes & 0x07 for _, attributes, _, _ in stored} == {want}, stored

    msgs = h.consume_all(broker.bootstrap, topic, [0], expected=len(items), timeout=60)
    assert [(m.key(), m.value()) for m in msgs] == items
    h.assert_contiguous_from_zero(msgs, topic)
