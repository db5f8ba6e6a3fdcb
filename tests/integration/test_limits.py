"""Size limits: message.max.bytes (broker), max.message.bytes (topic), socket.request.max.bytes."""
from __future__ import annotations

import struct

import pytest
from confluent_kafka import KafkaError

import helpers as h
import kwire

DEFAULT_MESSAGE_MAX_BYTES = 1048588
BIG = 8 * 1024 * 1024


def _big_producer(bootstrap):
    # the producer's own limits are far above the broker's, so the broker is the one refusing
    return h.producer(bootstrap, acks="all", **{"message.max.bytes": BIG, "batch.size": BIG,
                                                "linger.ms": 0, "compression.type": "none",
                                                "enable.idempotence": False, "retries": 0})


def _produce_one(p, topic, value):
    out = []
    p.produce(topic, value=value, partition=0, on_delivery=lambda e, m: out.append((e, m.offset())))
    assert p.flush(60) == 0 and len(out) == 1
    return out[0]


def _check_limit(bootstrap, topic, limit):
    p = _big_producer(bootstrap)
    under = b"u" * (limit - 512)
    err, off = _produce_one(p, topic, under)
    assert err is None and off == 0, f"a {len(under)}-byte value under the {limit} limit failed: {err}"
    err, _ = _produce_one(p, topic, b"o" * (limit + 512))
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, \
        f"expected MESSAGE_TOO_LARGE ({kwire.MESSAGE_TOO_LARGE}), got {err}"
    err, off = _produce_one(p, topic, b"after")
    assert err is None and off == 1, "the refused batch must not take an offset"
    msgs = h.consume_all(bootstrap, topic, [0], expected=2, timeout=60,
                         **{"fetch.max.bytes": BIG, "receive.message.max.bytes": BIG + 1_000_000})
    assert [m.value() for m in msgs] == [under, b"after"]


def test_default_message_max_bytes(broker):
    topic = h.topic_name("mmb")
    h.create_topic(broker.bootstrap, topic, 1)
    _check_limit(broker.bootstrap, topic, DEFAULT_MESSAGE_MAX_BYTES)


def test_configured_message_max_bytes(broker_factory):
    b = broker_factory({"message.max.bytes": 65536})
    topic = h.topic_name("mmb64k")
    h.create_topic(b.bootstrap, topic, 1)
    _check_limit(b.bootstrap, topic, 65536)


def test_topic_max_message_bytes(broker):
    topic = h.topic_name("tmmb")
    h.create_topic(broker.bootstrap, topic, 1, config={"max.message.bytes": "20000"})
    _check_limit(broker.bootstrap, topic, 20000)


@pytest.mark.parametrize("declared", [300_000, 0x7FFFFFFF])
def test_request_over_socket_request_max_bytes_closes_connection(broker_factory, declared):
    b = broker_factory({"socket.request.max.bytes": 200_000})
    with kwire.Conn(b.bootstrap) as c:
        c.send_raw(struct.pack(">i", declared) + b"\x00" * 1024)
        assert c.closed_by_peer(10), f"a {declared}-byte request over the limit must close the connection"
    kwire.probe(b.bootstrap)
    assert b.alive()
