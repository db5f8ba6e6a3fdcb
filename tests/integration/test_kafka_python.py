"""kafka-python producer/consumer round trips (manual assignment, no consumer group)."""
from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import helpers as h

KP = dict(client_id="weir-it", request_timeout_ms=30000, api_version_auto_timeout_ms=30000)


def kp_consume(bootstrap, topic, partitions, expected, timeout=30.0):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", **KP)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for _tp, recs in c.poll(timeout_ms=500).items():
                out.extend(recs)
        assert len(out) == expected, f"expected {expected} records, got {len(out)} in {timeout}s"
        # nothing beyond what was expected
        extra = c.poll(timeout_ms=1000)
        assert not any(extra.values()), f"unexpected extra records: {extra}"
        return out
    finally:
        c.close()


def test_kafka_python_round_trip(broker):
    topic = h.topic_name("kp")
    h.create_topic(broker.bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, **KP)
    try:
        cases = [
            dict(key=b"k1", value=b"v1", headers=[("h1", b"x"), ("h2", b"")]),
            dict(key=None, value=b"null key", headers=[]),
            dict(key=b"empty value", value=b"", headers=[("only", b"\x00\xff")]),
            dict(key=b"null value", value=None, headers=[]),
            dict(key=b"big", value=b"z" * 100_000, headers=[]),
        ]
        metas = [p.send(topic, key=c["key"], value=c["value"], headers=c["headers"], partition=0)
                 for c in cases]
        p.flush(timeout=30)
        offsets = [m.get(timeout=30).offset for m in metas]
        assert offsets == list(range(len(cases)))
    finally:
        p.close(timeout=10)

    recs = kp_consume(broker.bootstrap, topic, [0], len(cases))
    for i, (r, c) in enumerate(zip(recs, cases)):
        assert r.offset == i
        assert r.key == c["key"], i
        assert r.value == c["value"], i
        assert list(r.headers) == c["headers"], i


def test_kafka_python_many_partitions_keys(broker):
    topic = h.topic_name("kpk")
    h.create_topic(broker.bootstrap, topic, 3)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks=1, linger_ms=5, **KP)
    try:
        futs = [p.send(topic, key=f"key-{i % 10}".encode(), value=str(i).encode()) for i in range(1000)]
        p.flush(timeout=30)
        metas = [f.get(timeout=30) for f in futs]
    finally:
        p.close(timeout=10)
    recs = kp_consume(broker.bootstrap, topic, [0, 1, 2], 1000)
    where = {(m.partition, m.offset) for m in metas}
    assert where == {(r.partition, r.offset) for r in recs}
    key_part = {}
    by_p = {}
    for r in recs:
        assert key_part.setdefault(r.key, r.partition) == r.partition
        by_p.setdefault(r.partition, []).append(r)
    for part, rs in by_p.items():
        assert [r.offset for r in rs] == list(range(len(rs)))
        assert [int(r.value) for r in rs] == sorted(int(r.value) for r in rs)


def test_kafka_python_to_confluent_interop(broker):
    """A batch written by kafka-python (its own record-batch encoder) is read by librdkafka."""
    topic = h.topic_name("interop")
    h.create_topic(broker.bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type=None, **KP)
    try:
        for i in range(50):
            p.send(topic, key=b"k", value=b"v%d" % i, headers=[("i", str(i).encode())])
        p.flush(timeout=30)
    finally:
        p.close(timeout=10)
    msgs = h.consume_all(broker.bootstrap, topic, [0], expected=50, timeout=30)
    assert [m.value() for m in msgs] == [b"v%d" % i for i in range(50)]
    assert [m.headers() for m in msgs] == [[("i", str(i).encode())] for i in range(50)]
