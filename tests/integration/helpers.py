"""Client-side helpers shared by the integration tests (confluent-kafka / librdkafka).

Every call is bounded: admin futures get a result timeout, polling loops have deadlines.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

OP_TIMEOUT_S = 30


def topic_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def common_conf(bootstrap: str) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "weir-it",
        "socket.timeout.ms": 10000,
        "socket.connection.setup.timeout.ms": 10000,
        # route librdkafka's log lines through logging, so pytest shows them only for failures
        "logger": logging.getLogger("librdkafka"),
    }


def admin(bootstrap: str) -> AdminClient:
    return AdminClient(common_conf(bootstrap))


def producer(bootstrap: str, **extra) -> Producer:
    conf = common_conf(bootstrap)
    conf.update({"message.timeout.ms": 30000, "linger.ms": 5})
    conf.update(extra)
    return Producer(conf)


def consumer(bootstrap: str, **extra) -> Consumer:
    """A consumer for manual assignment. librdkafka insists on a group.id; the tests never
    subscribe() or commit, so no group membership is ever requested (librdkafka may still
    send FindCoordinator)."""
    conf = common_conf(bootstrap)
    conf.update({
        "group.id": f"weir-it-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    })
    conf.update(extra)
    return Consumer(conf)


def future_result(fut, timeout: float = OP_TIMEOUT_S):
    return fut.result(timeout=timeout)


def kafka_error_of(exc: BaseException) -> KafkaError:
    """The KafkaError carried by an exception raised from an admin future."""
    assert isinstance(exc, KafkaException), f"expected KafkaException, got {exc!r}"
    return exc.args[0]


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict | None = None,
                 wait: bool = True, replication_factor: int = 1):
    a = admin(bootstrap)
    futs = a.create_topics([NewTopic(name, num_partitions=partitions,
                                     replication_factor=replication_factor,
                                     config=config or {})],
                           operation_timeout=OP_TIMEOUT_S, request_timeout=OP_TIMEOUT_S + 5)
    future_result(futs[name])
    if wait:
        wait_for_topic(bootstrap, name, partitions)


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = 30.0):
    """Poll Metadata until the topic shows `partitions` partitions, each with a leader."""
    a = admin(bootstrap)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        md = a.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        last = t
        if t is not None and t.error is None and len(t.partitions) == partitions \
                and all(p.leader >= 0 for p in t.partitions.values()):
            return md
        time.sleep(0.2)
    raise AssertionError(f"topic {name} not visible with {partitions} partitions within "
                         f"{timeout}s; last metadata: {last!r} "
                         f"(error={getattr(last, 'error', None)}, partitions="
                         f"{len(last.partitions) if last is not None else None})")


def produce_and_collect(p: Producer, items, topic: str, timeout: float = 60.0, **kw):
    """Produce (key, value) items; return the delivery reports [(err, partition, offset, key, value)]
    in callback order. Fails if not every message got a report within `timeout`."""
    reports = []

    def cb(err, msg):
        reports.append((err, msg.partition(), msg.offset(), msg.key(), msg.value()))

    n = 0
    deadline = time.monotonic() + timeout
    for key, value in items:
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=cb, **kw)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise AssertionError("producer queue stayed full")
                p.poll(0.1)
        n += 1
        p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    assert left == 0, f"{left} messages still undelivered after {timeout}s"
    assert len(reports) == n, f"{n} produced, {len(reports)} delivery reports"
    return reports


def consume_all(bootstrap: str, topic: str, partitions, expected: int | None = None,
                timeout: float = 60.0, **extra):
    """Manually assign `partitions` from OFFSET_BEGINNING and read until every partition hit EOF
    (and, if given, at least `expected` messages arrived) or the deadline passed.
    Returns a list of confluent Message objects in arrival order."""
    c = consumer(bootstrap, **extra)
    try:
        parts = list(partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        msgs = []
        at_eof = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = c.consume(num_messages=1000, timeout=0.5)
            for m in batch:
                err = m.error()
                if err is None:
                    msgs.append(m)
                    at_eof.discard(m.partition())
                elif err.code() == KafkaError._PARTITION_EOF:
                    at_eof.add(m.partition())
                else:
                    raise AssertionError(f"consume error on {topic}[{m.partition()}]: {err}")
            if len(at_eof) == len(parts) and (expected is None or len(msgs) >= expected):
                break
        else:
            raise AssertionError(f"consume of {topic} timed out after {timeout}s: {len(msgs)} "
                                 f"messages (expected {expected}), EOF on {sorted(at_eof)} of "
                                 f"{len(parts)} partitions")
        return msgs
    finally:
        c.close()


def by_partition(msgs):
    out = defaultdict(list)
    for m in msgs:
        out[m.partition()].append(m)
    return out


def assert_contiguous_from_zero(msgs, what: str = ""):
    """Per partition: offsets are exactly 0, 1, 2, ... in arrival order."""
    for p, ms in by_partition(msgs).items():
        offsets = [m.offset() for m in ms]
        assert offsets == list(range(len(ms))), (
            f"{what} partition {p}: offsets not contiguous from 0: "
            f"first {offsets[:10]}..., {len(offsets)} messages")
