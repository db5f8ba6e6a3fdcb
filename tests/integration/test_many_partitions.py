"""A topic with 2000 partitions: create, write to every partition, read everything back."""
from __future__ import annotations

import time

import pytest

import helpers as h

P = 2000
PER = 2


@pytest.mark.timeout(240)
def test_2000_partitions(broker_factory):
    broker = broker_factory(name="weir-wide")
    t0 = time.monotonic()
    topic = h.topic_name("wide")
    h.create_topic(broker.bootstrap, topic, P)
    p = h.producer(broker.bootstrap, acks="all", **{"linger.ms": 20})
    items = []
    reports = []
    for part in range(P):
        for i in range(PER):
            value = f"{part}:{i}".encode()
            items.append(value)
            p.produce(topic, key=None, value=value, partition=part,
                      on_delivery=lambda e, m: reports.append((e, m.partition(), m.offset(), m.value())))
        p.poll(0)
    assert p.flush(60) == 0
    errors = [r for r in reports if r[0] is not None]
    assert not errors, f"{len(errors)} delivery errors, first {errors[0]}"
    for _e, part, off, value in reports:
        vp, vi = map(int, value.split(b":"))
        assert (part, off) == (vp, vi), f"{value} stored at {(part, off)}"

    msgs = h.consume_all(broker.bootstrap, topic, range(P), expected=P * PER, timeout=90)
    got = sorted((m.partition(), m.offset(), m.value()) for m in msgs)
    assert got == sorted((int(v.split(b":")[0]), int(v.split(b":")[1]), v) for v in items)
    elapsed = time.monotonic() - t0
    assert elapsed < 120, f"2000-partition round trip took {elapsed:.0f}s"
