"""Log compaction (cleanup.policy=compact) with real clients: after the cleaner ran, a consumer
reading from the beginning sees exactly the latest value per key (tombstones included) at the
offsets the producer was given; compressed batches survive cleaning; keyless records are refused;
committed offsets in a compacted __consumer_offsets survive cleaning and a restart.

The cleaner is a background task: tests wait for its broker log line, bounded by deadlines."""
from __future__ import annotations

import signal
import time
import uuid

from confluent_kafka import KafkaError, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition

import helpers as h

T = 30.0
CLEANER = {"log.cleaner.backoff.ms": "1000"}


def compacted_topic(bootstrap, prefix, **config):
    topic = h.topic_name(prefix)
    conf = {
        "cleanup.policy": "compact",
        "segment.bytes": "4096",
        "min.cleanable.dirty.ratio": "0.01",
        "segment.ms": "500",
    }
    conf.update(config)
    h.create_topic(bootstrap, topic, 1, config=conf)
    return topic


def wait_cleaned(broker, partition_name, since=0, timeout=60.0):
    """Waits until the broker logged more than `since` "log cleaned" lines for `partition_name`;
    returns how many it logged."""
    needle = f"partition={partition_name} "
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        text = broker.stderr_path.read_text(errors="replace")
        count = sum(1 for line in text.splitlines()
                    if "log cleaned" in line and needle in line + " ")
        if count > since:
            return count
        time.sleep(0.3)
    raise AssertionError(f"no cleaning of {partition_name} within {timeout}s ({count} seen)")


def roll_past(bootstrap, topic, wait_s=0.8):
    """Closes the active segment: after segment.ms, the next append rolls it (as in Kafka)."""
    time.sleep(wait_s)
    p = h.producer(bootstrap, acks="all")
    [r] = h.produce_and_collect(p, [(b"roll-" + uuid.uuid4().hex.encode(), b"x")], topic)
    assert r[0] is None, r
    return r[2]


def latest_by_key(reports):
    """key -> (offset, value) of the last acknowledged write per key."""
    latest = {}
    for err, _, offset, key, value in reports:
        assert err is None, err
        if key not in latest or latest[key][0] < offset:
            latest[key] = (offset, value)
    return latest


def test_compacted_topic_keeps_latest_value_per_key_at_original_offsets(broker_factory):
    b = broker_factory(CLEANER, name="weir-compaction")
    topic = compacted_topic(b.bootstrap, "compact")
    reports = []
    # Two producers with different codecs interleave rounds: cleaning must decompress each
    # batch and rewrite it with its own codec.
    producers = [h.producer(b.bootstrap, acks="all", **{"compression.type": c})
                 for c in ("gzip", "zstd", "lz4", "snappy", "none")]
    for rnd in range(30):
        items = [(f"k{k}".encode(), f"v{rnd}-{k}".encode() * 8) for k in range(20) if (k + rnd) % 4]
        if rnd % 7 == 3:
            items.append((b"k5", None))  # a tombstone, later overwritten or kept
        reports += h.produce_and_collect(producers[rnd % len(producers)], items, topic)
    reports += h.produce_and_collect(producers[0], [(b"gone", b"1"), (b"gone", None)], topic)
    expected = latest_by_key(reports)
    end_of_data = max(r[2] for r in reports) + 1
    roll_offset = roll_past(b.bootstrap, topic)
    assert roll_offset == end_of_data
    wait_cleaned(b, f"{topic}-0")
    # A pass may stop short of the end (one group at a time is swapped): wait for the one that
    # covers everything up to the rolled segment.
    deadline = time.monotonic() + 60
    while True:
        msgs = h.consume_all(b.bootstrap, topic, [0])
        seen = [(m.key(), m.offset(), m.value()) for m in msgs if m.offset() < end_of_data]
        if len(seen) == len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    got = {k: (o, v) for k, o, v in seen}
    assert len(seen) == len(got), "a key appears twice after cleaning"
    assert got == expected
    assert got[b"gone"][1] is None, "a fresh tombstone stays (delete.retention.ms)"
    offsets = [o for _, o, _ in seen]
    assert offsets == sorted(offsets)
    # The roll record after the cleaned range is still there, at its offset.
    assert any(m.offset() == roll_offset for m in msgs)

    # kafka-python reads the same compacted log (gaps between offsets).
    kc = KafkaConsumer(bootstrap_servers=b.bootstrap, enable_auto_commit=False,
                       consumer_timeout_ms=5000, request_timeout_ms=30000,
                       api_version_auto_timeout_ms=30000)
    try:
        tp = KTopicPartition(topic, 0)
        kc.assign([tp])
        kc.seek_to_beginning(tp)
        kp = {}
        deadline = time.monotonic() + T
        while len(kp) < len(expected) and time.monotonic() < deadline:
            for recs in kc.poll(timeout_ms=500).values():
                for r in recs:
                    if r.offset < end_of_data:
                        kp[r.key] = (r.offset, r.value)
        assert kp == expected
    finally:
        kc.close()


def test_keyless_records_are_refused_by_a_compacted_topic(broker):
    topic = compacted_topic(broker.bootstrap, "nokey")
    p = h.producer(broker.bootstrap, acks="all", retries=0)
    reports = h.produce_and_collect(p, [(None, b"no key")], topic)
    [(err, *_)] = reports
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    ok = h.produce_and_collect(p, [(b"k", b"with key")], topic)
    assert ok[0][0] is None


def test_committed_offsets_survive_compaction_and_restart(broker_factory):
    b = broker_factory({**CLEANER, "offsets.topic.num.partitions": "1",
                        "offsets.topic.segment.bytes": "2048",
                        "log.cleaner.min.cleanable.ratio": "0.01"},
                       name="weir-offsets-compaction")
    topic = h.topic_name("oc")
    h.create_topic(b.bootstrap, topic, 2)
    h.produce_and_collect(h.producer(b.bootstrap), [(b"k", b"v")] * 10, topic, partition=0)
    group = f"g-{uuid.uuid4().hex[:8]}"
    conf = h.common_conf(b.bootstrap)
    conf.update({"group.id": group, "enable.auto.commit": False})
    from confluent_kafka import Consumer
    c = Consumer(conf)
    try:
        # Many commits of the same two keys: segments roll at 2 KiB, the cleaner drops all
        # but the latest commit per partition.
        for i in range(400):
            c.commit(offsets=[TopicPartition(topic, 0, i), TopicPartition(topic, 1, 1000 + i)],
                     asynchronous=False)
        wait_cleaned(b, "__consumer_offsets-0")
        c.commit(offsets=[TopicPartition(topic, 0, 400), TopicPartition(topic, 1, 1400)],
                 asynchronous=False)
        got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=T)
        assert [tp.offset for tp in got] == [400, 1400]
    finally:
        c.close()

    def committed_after_restart():
        c = Consumer(conf)
        try:
            got = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=T)
            assert [tp.offset for tp in got] == [400, 1400]
        finally:
            c.close()

    b.restart(signal.SIGTERM)
    committed_after_restart()
    b.kill9()
    b.start()
    committed_after_restart()
