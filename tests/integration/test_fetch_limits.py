"""Fetch's size rules as Kafka applies them: `min_bytes` holds a fetch until that much is there
(or `max_wait_ms` passes), and `max_bytes` bounds the whole response (KIP-74), except that the
first batch of the first partition with data is returned whole so a consumer always progresses."""
from __future__ import annotations

import threading
import time

from kafka.protocol.fetch import FetchRequest_v4

import kwire
from helpers import consume_all, create_topic, producer, produce_and_collect, topic_name


def _fetch_v4(bootstrap, topic, partitions, *, min_bytes, max_bytes, max_wait_ms,
              partition_max_bytes, timeout=60.0):
    """One Fetch v4 at offset 0 of `partitions`; returns {partition: (error, record bytes)}."""
    req = FetchRequest_v4(
        replica_id=-1, max_wait_time=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
        isolation_level=0,
        topics=[(topic, [(p, 0, partition_max_bytes) for p in partitions])])
    with kwire.Conn(bootstrap, timeout=timeout) as c:
        resp = c.call(req, timeout=timeout)
    out = {}
    for _name, parts in resp.topics:
        for p in parts:
            # (partition, error, high watermark, last stable offset, aborted, records)
            out[p[0]] = (p[1], p[-1] or b"")
    return out


def test_fetch_waits_for_min_bytes_across_cores(broker):
    """Small records arrive one by one on two partitions (owned by different cores): a fetch
    with min_bytes must not answer with less than min_bytes because one record arrived."""
    topic = topic_name("minbytes")
    create_topic(broker.bootstrap, topic, partitions=2)
    p = producer(broker.bootstrap, **{"linger.ms": 0})
    min_bytes = 6000
    done = threading.Event()

    def trickle():
        # 30 records of ~600 bytes, one at a time: the fetch sees each one arrive.
        for i in range(30):
            if done.is_set():
                break
            produce_and_collect(p, [(None, b"x" * 600)], topic, partition=i % 2)
            time.sleep(0.1)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        got = _fetch_v4(broker.bootstrap, topic, [0, 1], min_bytes=min_bytes,
                        max_bytes=50 << 20, max_wait_ms=30000, partition_max_bytes=1 << 20)
    finally:
        done.set()
        t.join(timeout=60)
    assert all(err == 0 for err, _ in got.values()), got
    total = sum(len(records) for _, records in got.values())
    assert total >= min_bytes, f"answered with {total} bytes of records, min_bytes was {min_bytes}"


def test_fetch_answers_at_max_wait_with_what_there_is(broker):
    topic = topic_name("maxwait")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_and_collect(producer(broker.bootstrap), [(None, b"y" * 100)], topic, partition=0)
    got = _fetch_v4(broker.bootstrap, topic, [0, 1], min_bytes=1 << 20, max_bytes=50 << 20,
                    max_wait_ms=300, partition_max_bytes=1 << 20)
    assert got[0][0] == 0 and len(got[0][1]) > 100, got
    assert got[1] == (0, b""), got


def test_fetch_max_bytes_bounds_the_response(broker):
    """KIP-74 at the wire: 4 partitions of 200 KB batches, max_bytes 500 KB with a 20 MB
    partition limit: the response holds at most 500 KB of records, and a first batch larger
    than max_bytes still comes back whole (alone)."""
    topic = topic_name("maxbytes")
    create_topic(broker.bootstrap, topic, partitions=4)
    prod = producer(broker.bootstrap, **{"linger.ms": 0, "batch.size": 300_000,
                                         "compression.type": "none"})
    for part in range(4):
        produce_and_collect(prod, [(None, bytes([part]) * 200_000)] * 3, topic, partition=part)
    got = _fetch_v4(broker.bootstrap, topic, [0, 1, 2, 3], min_bytes=1, max_bytes=500_000,
                    max_wait_ms=1000, partition_max_bytes=20 << 20)
    sizes = [len(got[p][1]) for p in range(4)]
    assert sum(sizes) <= 500_000, sizes
    assert sizes[0] > 0, f"the first partition must be read: {sizes}"
    # A first batch larger than the whole budget is returned anyway, and nothing else.
    got = _fetch_v4(broker.bootstrap, topic, [0, 1, 2, 3], min_bytes=1, max_bytes=1000,
                    max_wait_ms=1000, partition_max_bytes=20 << 20)
    sizes = [len(got[p][1]) for p in range(4)]
    assert 200_000 < sizes[0] < 201_000 and sizes[1:] == [0, 0, 0], sizes


def test_librdkafka_fetch_max_bytes_with_large_messages(broker):
    """The report that found it: fetch.max.bytes=1000000, max.partition.fetch.bytes=20000000,
    receive.message.max.bytes=1000512, partitions of 900 KB messages. A response past
    receive.message.max.bytes makes librdkafka reconnect and retry forever."""
    topic = topic_name("bigmsgs")
    create_topic(broker.bootstrap, topic, partitions=3)
    prod = producer(broker.bootstrap, **{"linger.ms": 20, "message.max.bytes": 1_000_000})
    value = b"m" * 900_000
    produce_and_collect(prod, [(None, value)] * 15, topic, timeout=120)
    msgs = consume_all(broker.bootstrap, topic, range(3), expected=15, timeout=90, **{
        "fetch.max.bytes": 1_000_000,
        "max.partition.fetch.bytes": 20_000_000,
        "receive.message.max.bytes": 1_000_512,
    })
    assert len(msgs) == 15 and all(len(m.value()) == 900_000 for m in msgs)
