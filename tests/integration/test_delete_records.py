"""DeleteRecords (AdminClient deleteRecords, kafka-delete-records.sh): the leader moves the log
start offset, answers the new low watermark, and everything below it is gone for good: ListOffsets
earliest moves, fetches below it get OFFSET_OUT_OF_RANGE, and a restart keeps it."""
from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from helpers import (admin, consume_all, consumer, create_topic, future_result, producer,
                     produce_and_collect, topic_name)


def _delete(bootstrap, topic, partition, offset):
    a = admin(bootstrap)  # kept alive until the future resolves
    futs = a.delete_records([TopicPartition(topic, partition, offset)], request_timeout=30)
    (fut,) = futs.values()
    return future_result(fut)


def _earliest(bootstrap, topic, partition):
    a = admin(bootstrap)
    futs = a.list_offsets({TopicPartition(topic, partition): OffsetSpec.earliest()},
                          request_timeout=30)
    (fut,) = futs.values()
    return future_result(fut).offset


def _error_code(exc):
    assert isinstance(exc, KafkaException), repr(exc)
    return exc.args[0].code()


def test_delete_records_moves_the_log_start(broker_factory):
    b = broker_factory(name="weir-delrec")
    topic = topic_name("delrec")
    create_topic(b.bootstrap, topic, partitions=2)
    p = producer(b.bootstrap)
    produce_and_collect(p, [(None, f"m{i}".encode()) for i in range(10)], topic, partition=0)
    produce_and_collect(p, [(None, b"other")] * 3, topic, partition=1)

    deleted = _delete(b.bootstrap, topic, 0, 4)
    assert deleted.low_watermark == 4
    assert _earliest(b.bootstrap, topic, 0) == 4
    msgs = consume_all(b.bootstrap, topic, [0], expected=6)
    assert [m.offset() for m in msgs] == list(range(4, 10))
    assert msgs[0].value() == b"m4"
    # The other partition is untouched.
    assert _earliest(b.bootstrap, topic, 1) == 0

    # Below the log start: OFFSET_OUT_OF_RANGE, which a consumer without a reset policy reports.
    c = consumer(b.bootstrap, **{"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 2)])
        seen = None
        for _ in range(40):
            m = c.poll(0.5)
            if m is not None and m.error() is not None \
                    and m.error().code() != KafkaError._PARTITION_EOF:
                seen = m.error()
                break
        assert seen is not None and seen.code() == KafkaError._AUTO_OFFSET_RESET, seen
    finally:
        c.close()

    # Moving backwards changes nothing; -1 (OFFSET_END) means the high watermark.
    assert _delete(b.bootstrap, topic, 0, 2).low_watermark == 4
    assert _delete(b.bootstrap, topic, 0, -1).low_watermark == 10
    assert _earliest(b.bootstrap, topic, 0) == 10

    # Past the high watermark: OFFSET_OUT_OF_RANGE.
    with pytest.raises(KafkaException) as e:
        _delete(b.bootstrap, topic, 0, 11)
    assert _error_code(e.value) == KafkaError.OFFSET_OUT_OF_RANGE

    # Survives a clean restart and a kill -9.
    produce_and_collect(p, [(None, b"after")] * 2, topic, partition=1)
    assert _delete(b.bootstrap, topic, 1, 3).low_watermark == 3
    b.restart()
    assert _earliest(b.bootstrap, topic, 0) == 10
    assert _earliest(b.bootstrap, topic, 1) == 3
    b.kill9()
    b.start()
    assert _earliest(b.bootstrap, topic, 1) == 3
    msgs = consume_all(b.bootstrap, topic, [1], expected=2)
    assert [m.offset() for m in msgs] == [3, 4]


def test_delete_records_refused_where_kafka_refuses(broker):
    compacted = topic_name("delrec-compact")
    create_topic(broker.bootstrap, compacted, partitions=1, config={"cleanup.policy": "compact"})
    produce_and_collect(producer(broker.bootstrap), [(b"k", b"v")] * 3, compacted)
    with pytest.raises(KafkaException) as e:
        _delete(broker.bootstrap, compacted, 0, 1)
    assert _error_code(e.value) == KafkaError.POLICY_VIOLATION

    # Unknown partitions never reach the broker from librdkafka (it finds no leader first);
    # the wire-level answer is checked with kafka-python's protocol structs.
    from kafka.protocol.admin import DeleteRecordsRequest_v0
    import kwire
    with kwire.Conn(broker.bootstrap) as c:
        resp = c.call(DeleteRecordsRequest_v0(
            topics=[(compacted, [(0, 1), (7, 1)]), (topic_name("missing"), [(0, 1)])],
            timeout_ms=10000))
    codes = {(t, p): err for t, parts in resp.topics for p, _low, err in parts}
    assert codes[(compacted, 0)] == KafkaError.POLICY_VIOLATION
    assert codes[(compacted, 7)] == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert [err for (t, _), err in codes.items() if t != compacted] == [KafkaError.UNKNOWN_TOPIC_OR_PART]
