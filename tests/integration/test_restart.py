"""Durability across restarts: clean shutdown (SIGTERM/SIGINT) and kill -9."""
from __future__ import annotations

import signal
import subprocess

import conftest
import helpers as h

PARTITIONS = 3


def _produce(bootstrap, topic, tag, n):
    p = h.producer(bootstrap, acks="all")
    items = [(f"k{i % 13}".encode(), f"{tag}-{i}".encode()) for i in range(n)]
    reports = h.produce_and_collect(p, items, topic, timeout=60)
    bad = [r for r in reports if r[0] is not None]
    assert not bad, f"delivery errors: {bad[:3]}"
    return {v: (part, off, k) for _e, part, off, k, v in reports}


def _stored(bootstrap, topic, expected):
    msgs = h.consume_all(bootstrap, topic, range(PARTITIONS), expected=expected, timeout=60)
    h.assert_contiguous_from_zero(msgs, topic)
    return {m.value(): (m.partition(), m.offset(), m.key()) for m in msgs}


def test_clean_restart_then_kill9(broker_factory):
    b = broker_factory(name="weir-restart")
    topic = h.topic_name("durable")
    h.create_topic(b.bootstrap, topic, PARTITIONS)
    acked = _produce(b.bootstrap, topic, "a", 3000)
    assert _stored(b.bootstrap, topic, len(acked)) == acked

    b.restart(signal.SIGTERM)  # asserts exit code 0
    h.wait_for_topic(b.bootstrap, topic, PARTITIONS)
    assert _stored(b.bootstrap, topic, len(acked)) == acked, "data changed across SIGTERM restart"

    # appends continue at the right offsets after a restart
    acked.update(_produce(b.bootstrap, topic, "b", 1500))
    assert _stored(b.bootstrap, topic, len(acked)) == acked

    b.restart(signal.SIGINT)
    h.wait_for_topic(b.bootstrap, topic, PARTITIONS)
    acked.update(_produce(b.bootstrap, topic, "c", 1500))

    b.kill9()
    b.start()
    h.wait_for_topic(b.bootstrap, topic, PARTITIONS)
    stored = _stored(b.bootstrap, topic, len(acked))
    missing = [v for v in acked if v not in stored]
    assert not missing, f"{len(missing)} acks=all messages lost by kill -9, e.g. {missing[:3]}"
    assert stored == acked

    # and the log is writable after recovery, continuing where it left off
    more = _produce(b.bootstrap, topic, "d", 300)
    ends = {}
    for part, off, _k in acked.values():
        ends[part] = max(ends.get(part, -1), off)
    for part, off, _k in more.values():
        assert off > ends.get(part, -1)
    acked.update(more)
    assert _stored(b.bootstrap, topic, len(acked)) == acked


def test_topics_and_configs_survive_restart(broker_factory):
    b = broker_factory(name="weir-meta")
    t1, t2 = h.topic_name("m1"), h.topic_name("m2")
    h.create_topic(b.bootstrap, t1, 5, config={"retention.ms": "123456789"})
    h.create_topic(b.bootstrap, t2, 1)
    b.restart()
    h.wait_for_topic(b.bootstrap, t1, 5)
    h.wait_for_topic(b.bootstrap, t2, 1)
    from confluent_kafka.admin import ConfigResource
    a = h.admin(b.bootstrap)
    res = ConfigResource("topic", t1)
    cfg = a.describe_configs([res], request_timeout=30)[res].result(timeout=30)
    assert cfg["retention.ms"].value == "123456789"
    b.kill9()
    b.start()
    h.wait_for_topic(b.bootstrap, t1, 5)
    cfg = a.describe_configs([res], request_timeout=30)[res].result(timeout=30)
    assert cfg["retention.ms"].value == "123456789"


def test_empty_broker_restart_and_sigterm_exit_code(broker_factory):
    b = broker_factory(name="weir-empty")
    assert b.stop(signal.SIGTERM) == 0, "SIGTERM must shut down cleanly with exit code 0"
    b.start()
    assert b.stop(signal.SIGINT) == 0, "SIGINT must shut down cleanly with exit code 0"


def test_a_second_broker_cannot_share_the_directory_or_the_port(broker_factory, tmp_path):
    """Kafka's `.lock` on the log directory, and no silent sharing of the port: the per-core
    listeners use SO_REUSEPORT, which would let a second broker take a share of the clients."""
    b = broker_factory(name="weir-first")
    same = subprocess.run([conftest.weir_bin(), "--config", str(b.config_file)],
                          capture_output=True, text=True, timeout=60)
    assert same.returncode != 0
    assert ".lock" in same.stderr, same.stderr[-2000:]
    other_dir = tmp_path / "other-data"
    port = subprocess.run([conftest.weir_bin(), "--config", str(b.config_file),
                           "--override", f"log.dirs={other_dir}"],
                          capture_output=True, text=True, timeout=60)
    assert port.returncode != 0
    assert "in use" in port.stderr, port.stderr[-2000:]
    # The first broker was not disturbed: its clean-shutdown marker and data are intact.
    assert b.stop() == 0
    b.start()
