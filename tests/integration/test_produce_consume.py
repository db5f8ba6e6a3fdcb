"""Produce/consume with confluent-kafka (librdkafka): acks=0/1/all, idempotence, headers; and
at the wire level what a client library would hide: retried idempotent batches, sequence gaps,
failed acks=0 produces."""
from __future__ import annotations

import signal
import time

import pytest
from kafka.protocol.init_producer_id import InitProducerIdRequest
from kafka.protocol.list_offsets import ListOffsetsRequest
from kafka.protocol.produce import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder

import helpers as h
import kwire

OUT_OF_ORDER_SEQUENCE_NUMBER = 45

N = 10_000
PARTITIONS = 3


def _items(n, tag):
    # 100 distinct keys, so every partition sees many keys and every key many messages
    return [(f"key-{i % 100}".encode(), f"{tag}-{i}".encode()) for i in range(n)]


def _check_consumed(msgs, items, tag, reports=None):
    seq = {v: i for i, (_, v) in enumerate(items)}
    values = [m.value() for m in msgs]
    assert len(values) == len(set(values)), "duplicate messages consumed"
    unknown = [v for v in values if v not in seq]
    assert not unknown, f"consumed messages never produced: {unknown[:5]}"
    assert len(msgs) == len(items), f"{len(items)} produced, {len(msgs)} consumed"

    h.assert_contiguous_from_zero(msgs, tag)
    key_partition = {}
    for p, ms in h.by_partition(msgs).items():
        order = [seq[m.value()] for m in ms]
        assert order == sorted(order), f"partition {p}: messages out of production order"
        for m in ms:
            assert m.key() == items[seq[m.value()]][0], "key/value pairing changed"
            assert key_partition.setdefault(m.key(), p) == p, f"key {m.key()} in two partitions"
    assert set(h.by_partition(msgs)) == set(range(PARTITIONS)), "keys should spread over all partitions"

    if reports is not None:
        # delivery reports name exactly the partition/offset where each message was stored
        stored = {m.value(): (m.partition(), m.offset()) for m in msgs}
        for err, part, off, _k, v in reports:
            assert err is None
            assert stored[v] == (part, off), f"{v}: reported {(part, off)}, stored at {stored[v]}"


@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_consume_10k_keyed(broker, acks):
    topic = h.topic_name(f"acks{acks}")
    h.create_topic(broker.bootstrap, topic, PARTITIONS)
    items = _items(N, f"acks{acks}")
    p = h.producer(broker.bootstrap, acks=acks, **{"enable.idempotence": False})
    reports = h.produce_and_collect(p, items, topic, timeout=90)
    errors = [r for r in reports if r[0] is not None]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"

    msgs = h.consume_all(broker.bootstrap, topic, range(PARTITIONS), expected=N, timeout=60)
    # acks=0: the broker never answers, so the reports carry no offsets; on loopback nothing
    # may be lost, and what arrived must still be ordered and contiguous.
    _check_consumed(msgs, items, topic, reports=None if acks == "0" else reports)


def test_idempotent_producer_exactly_once(broker):
    """librdkafka's idempotent producer end to end: acknowledged offsets are 0..n-1 and every
    message is consumed once. Nothing here makes the client retry, so the broker's
    deduplication is checked by the wire-level test below."""
    topic = h.topic_name("idem")
    h.create_topic(broker.bootstrap, topic, PARTITIONS)
    items = _items(5000, "idem")
    p = h.producer(broker.bootstrap, **{"enable.idempotence": True, "acks": "all",
                                        "max.in.flight.requests.per.connection": 5})
    reports = h.produce_and_collect(p, items, topic, timeout=90)
    errors = [r for r in reports if r[0] is not None]
    assert not errors, f"{len(errors)} delivery errors, first: {errors[0]}"
    per_part = {}
    for _e, part, off, _k, _v in reports:
        per_part.setdefault(part, []).append(off)
    for part, offs in per_part.items():
        assert sorted(offs) == list(range(len(offs))), f"partition {part}: acked offsets not 0..n-1"
    msgs = h.consume_all(broker.bootstrap, topic, range(PARTITIONS), expected=len(items), timeout=60)
    _check_consumed(msgs, items, topic, reports=reports)


def _wire_batch(n, producer_id=-1, epoch=-1, base_sequence=-1, tag=b"v"):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=producer_id, producer_epoch=epoch,
                                  base_sequence=base_sequence, batch_size=1 << 20)
    ts = int(time.time() * 1000)
    for i in range(n):
        b.append(i, timestamp=ts, key=b"k%d" % i, value=tag + b"%d" % i, headers=[])
    return bytes(b.build())


def _wire_produce(c, topic, batch, acks=-1, version=8):
    """One partition-0 produce on connection `c`; returns (error_code, base_offset)."""
    resp = c.call(ProduceRequest[version](transactional_id=None, required_acks=acks,
                                          timeout=10000, topics=[(topic, [(0, batch)])]))
    [(name, [part])] = resp.topics
    assert name == topic
    return part[1], part[2]


def _log_end(c, topic):
    resp = c.call(ListOffsetsRequest[1](replica_id=-1, topics=[(topic, [(0, -1)])]))
    [(_, [(_p, err, _ts, off)])] = resp.topics
    assert err == kwire.NONE
    return off


def test_idempotent_retry_is_deduplicated_at_the_wire_level(broker):
    """A retried batch (same producer id, epoch and sequence, as a producer resends after a lost
    response) is acknowledged with its original offsets and not appended again; a sequence gap
    is refused with OUT_OF_ORDER_SEQUENCE_NUMBER."""
    topic = h.topic_name("idemwire")
    h.create_topic(broker.bootstrap, topic, 1)
    with kwire.Conn(broker.bootstrap) as c:
        r = c.call(InitProducerIdRequest[0](transactional_id=None, transaction_timeout_ms=60000))
        assert r.error_code == kwire.NONE, r
        pid, epoch = r.producer_id, r.producer_epoch
        assert pid >= 0

        first = _wire_batch(3, pid, epoch, 0, tag=b"first")
        assert _wire_produce(c, topic, first) == (kwire.NONE, 0)
        second = _wire_batch(2, pid, epoch, 3, tag=b"second")
        assert _wire_produce(c, topic, second) == (kwire.NONE, 3)
        assert _log_end(c, topic) == 5

        # Both retried, byte for byte: the original offsets, nothing appended.
        assert _wire_produce(c, topic, first) == (kwire.NONE, 0)
        assert _wire_produce(c, topic, second) == (kwire.NONE, 3)
        assert _log_end(c, topic) == 5

        # Sequence 5 is next; 7 leaves a gap.
        gap = _wire_batch(1, pid, epoch, 7, tag=b"gap")
        assert _wire_produce(c, topic, gap)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert _log_end(c, topic) == 5
        assert _wire_produce(c, topic, _wire_batch(1, pid, epoch, 5, tag=b"next")) == (kwire.NONE, 5)

    msgs = h.consume_all(broker.bootstrap, topic, [0], expected=6, timeout=30)
    assert [m.value() for m in msgs] == [b"first0", b"first1", b"first2", b"second0",
                                         b"second1", b"next0"]


def test_idempotent_retries_keep_their_offsets_across_restarts(broker_factory):
    """The partition log rebuilds its producers' state when it opens: from the snapshot a clean
    shutdown wrote, and after kill -9 from the newest snapshot a segment roll wrote plus a
    replay of the batches after it. Either way a retry of one of the producer's last five
    batches gets its original offset, and a gap is still OUT_OF_ORDER_SEQUENCE_NUMBER."""
    b = broker_factory(name="weir-idem-restart")
    topic = h.topic_name("idemrestart")
    # Small segments: the batches span several rolls, each leaving a producer snapshot.
    h.create_topic(b.bootstrap, topic, 1, config={"segment.bytes": "4096"})
    with kwire.Conn(b.bootstrap) as c:
        r = c.call(InitProducerIdRequest[0](transactional_id=None, transaction_timeout_ms=60000))
        assert r.error_code == kwire.NONE, r
        pid, epoch = r.producer_id, r.producer_epoch
        sent = [_wire_batch(1, pid, epoch, seq, tag=b"x" * 900) for seq in range(20)]
        for seq, batch in enumerate(sent):
            assert _wire_produce(c, topic, batch) == (kwire.NONE, seq)

    b.restart(signal.SIGTERM)
    h.wait_for_topic(b.bootstrap, topic, 1)
    with kwire.Conn(b.bootstrap) as c:
        assert _wire_produce(c, topic, sent[19]) == (kwire.NONE, 19)
        assert _log_end(c, topic) == 20
        for seq in range(20, 23):
            sent.append(_wire_batch(1, pid, epoch, seq, tag=b"y" * 900))
            assert _wire_produce(c, topic, sent[seq]) == (kwire.NONE, seq)

    b.kill9()
    b.start()
    h.wait_for_topic(b.bootstrap, topic, 1)
    with kwire.Conn(b.bootstrap) as c:
        for seq in range(18, 23):
            assert _wire_produce(c, topic, sent[seq]) == (kwire.NONE, seq), f"retry of {seq}"
        assert _log_end(c, topic) == 23
        gap = _wire_batch(1, pid, epoch, 24, tag=b"gap")
        assert _wire_produce(c, topic, gap)[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert _wire_produce(c, topic, _wire_batch(1, pid, epoch, 23)) == (kwire.NONE, 23)


def test_failed_acks0_produce_closes_the_connection(broker):
    """acks=0 gets no answer, so a failure is signalled as Kafka signals it: the broker closes
    the connection. A successful acks=0 produce leaves it open."""
    topic = h.topic_name("acks0")
    h.create_topic(broker.bootstrap, topic, 1)
    batch = _wire_batch(2)
    def acks0(c, partition):
        # kafka-python's Conn.call would wait for an answer acks=0 never gets.
        v = 8
        req = ProduceRequest[v](transactional_id=None, required_acks=0, timeout=10000,
                                topics=[(topic, [(partition, batch)])])
        c.corr += 1
        c.send_raw(kwire.frame(kwire.request_header_v1(kwire.API_PRODUCE, v, c.corr)
                               + req.encode()))

    with kwire.Conn(broker.bootstrap) as c:
        # Success: no answer, and the connection still serves the next requests. (Weir may
        # serve a request pipelined behind an acks=0 produce before that produce's append
        # finishes, where Kafka serves a connection's requests one at a time: hence the wait.)
        acks0(c, 0)
        deadline = time.monotonic() + 15
        while _log_end(c, topic) != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _log_end(c, topic) == 2
        # Failure (no such partition): the connection closes, with no answer.
        acks0(c, 5)
        assert c.closed_by_peer(timeout=15), "a failed acks=0 produce must close the connection"
    # The broker itself is fine.
    kwire.probe(broker.bootstrap)


def test_headers_timestamps_null_key_and_value(broker):
    topic = h.topic_name("hdr")
    h.create_topic(broker.bootstrap, topic, 1)
    p = h.producer(broker.bootstrap, acks="all")
    got = []
    cases = [
        dict(key=None, value=b"no-key", headers=[("a", b"1"), ("a", b"2"), ("empty", b"")]),
        dict(key=b"k", value=b"", headers=None),
        dict(key=b"tomb", value=None, headers=[("n", None)]),
        dict(key=b"\x00\xff" * 10, value=bytes(range(256)), headers=[("bin", b"\x00\x01")]),
    ]
    ts = int(time.time() * 1000) - 3_600_000  # recent: old timestamps are subject to retention
    for i, c in enumerate(cases):
        kw = {"headers": c["headers"]} if c["headers"] is not None else {}
        p.produce(topic, key=c["key"], value=c["value"], partition=0, timestamp=ts + i,
                  on_delivery=lambda err, msg: got.append(err), **kw)
    assert p.flush(30) == 0 and got == [None] * len(cases)
    msgs = h.consume_all(broker.bootstrap, topic, [0], expected=len(cases), timeout=30)
    assert len(msgs) == len(cases)
    for i, (m, c) in enumerate(zip(msgs, cases)):
        assert m.offset() == i
        assert m.key() == c["key"] and m.value() == c["value"]
        assert (m.headers() or []) == (c["headers"] or [])
        ts_type, ts_val = m.timestamp()
        assert ts_val == ts + i, "CreateTime timestamps must be kept"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches(broker, codec):
    """The broker stores and serves compressed batches (and assigns offsets to every record
    inside them, not one per batch)."""
    topic = h.topic_name(codec)
    h.create_topic(broker.bootstrap, topic, 1)
    items = [(b"k%d" % (i % 5), (b"%s message %d " % (codec.encode(), i)) * 20) for i in range(2000)]
    p = h.producer(broker.bootstrap, acks="all", **{"compression.type": codec, "linger.ms": 20})
    reports = h.produce_and_collect(p, items, topic, partition=0)
    assert all(r[0] is None for r in reports)
    assert sorted(r[2] for r in reports) == list(range(len(items)))
    msgs = h.consume_all(broker.bootstrap, topic, [0], expected=len(items), timeout=60)
    assert [(m.key(), m.value()) for m in msgs] == items
    h.assert_contiguous_from_zero(msgs, codec)
