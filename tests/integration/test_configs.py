"""DescribeConfigs / AlterConfigs / IncrementalAlterConfigs on topics, DescribeCluster."""
from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   ResourceType)
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient
from kafka.protocol.admin import DescribeConfigsRequest

import helpers as h
import kwire

T = 30
DEFAULTS = {  # Apache Kafka's documented topic-level defaults
    "retention.ms": "604800000",
    "cleanup.policy": "delete",
    "min.insync.replicas": "1",
    "max.message.bytes": "1048588",
    "segment.bytes": "1073741824",
    "retention.bytes": "-1",
}


def _describe(a, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=T)[res].result(timeout=T)


def _incremental(a, topic, *entries):
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
    return a.incremental_alter_configs([res], request_timeout=T)[res]


def _entry(name, value, op):
    return ConfigEntry(name, value, incremental_operation=op)


def _err(fut):
    with pytest.raises(Exception) as ei:
        fut.result(timeout=T)
    return h.kafka_error_of(ei.value).code()


def test_describe_topic_configs(broker):
    a = h.admin(broker.bootstrap)
    topic = h.topic_name("cfg")
    h.create_topic(broker.bootstrap, topic, 1, config={"retention.ms": "3600000"})
    cfg = _describe(a, topic)
    e = cfg["retention.ms"]
    assert e.value == "3600000" and e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value \
        and not e.is_default, e
    for name, value in DEFAULTS.items():
        if name == "retention.ms":
            continue
        assert name in cfg, f"{name} missing from DescribeConfigs"
        assert cfg[name].value == value, f"{name}={cfg[name].value}, Kafka's default is {value}"
        assert cfg[name].source == ConfigSource.DEFAULT_CONFIG.value, (name, cfg[name].source)


def test_describe_configs_unknown_topic(broker):
    a = h.admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, h.topic_name("nope"))
    fut = a.describe_configs([res], request_timeout=T)[res]
    assert _err(fut) == kwire.UNKNOWN_TOPIC_OR_PARTITION


def test_incremental_alter_configs(broker):
    a = h.admin(broker.bootstrap)
    topic = h.topic_name("inc")
    h.create_topic(broker.bootstrap, topic, 1, config={"retention.ms": "3600000"})

    assert _incremental(a, topic,
                        _entry("cleanup.policy", "compact", AlterConfigOpType.SET),
                        _entry("min.insync.replicas", "1", AlterConfigOpType.SET),
                        _entry("retention.ms", None, AlterConfigOpType.DELETE)).result(timeout=T) is None
    cfg = _describe(a, topic)
    assert cfg["cleanup.policy"].value == "compact"
    assert cfg["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert cfg["min.insync.replicas"].value == "1"
    assert cfg["retention.ms"].value == DEFAULTS["retention.ms"], "DELETE must restore the default"
    assert cfg["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    # list-typed configs support APPEND / SUBTRACT
    _incremental(a, topic, _entry("cleanup.policy", "delete", AlterConfigOpType.APPEND)).result(timeout=T)
    assert sorted(_describe(a, topic)["cleanup.policy"].value.split(",")) == ["compact", "delete"]
    _incremental(a, topic, _entry("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT)).result(timeout=T)
    assert _describe(a, topic)["cleanup.policy"].value == "delete"


@pytest.mark.parametrize("name,value", [("retention.ms", "abc"), ("cleanup.policy", "bogus"),
                                        ("min.insync.replicas", "0"), ("no.such.config", "1"),
                                        ("cleanup.policy", "delete,delete"),
                                        ("compression.type", "brotli"),
                                        ("compression.gzip.level", "0"),
                                        ("compression.zstd.level", "23"),
                                        ("message.timestamp.before.max.ms", "-1"),
                                        ("remote.storage.enable", "true"),
                                        # removed in Kafka 4.0: unknown to a 4.x broker
                                        ("message.timestamp.difference.max.ms", "1000"),
                                        ("message.format.version", "3.0")])
def test_incremental_alter_configs_invalid(broker, name, value):
    a = h.admin(broker.bootstrap)
    topic = h.topic_name("bad")
    h.create_topic(broker.bootstrap, topic, 1)
    fut = _incremental(a, topic, _entry(name, value, AlterConfigOpType.SET))
    assert _err(fut) == kwire.INVALID_CONFIG
    cfg = _describe(a, topic)
    if name in DEFAULTS:
        assert cfg[name].value == DEFAULTS[name], "a refused change must not be applied"


def test_create_topic_with_invalid_config(broker):
    a = h.admin(broker.bootstrap)
    from confluent_kafka.admin import NewTopic
    topic = h.topic_name("badcfg")
    futs = a.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                     config={"retention.ms": "not-a-number"})],
                           operation_timeout=T, request_timeout=T + 5)
    assert _err(futs[topic]) == kwire.INVALID_CONFIG
    assert topic not in a.list_topics(timeout=T).topics


def test_legacy_alter_configs_replaces_whole_set(broker):
    """AlterConfigs (non-incremental) sets the topic's dynamic configs to exactly the given set."""
    a = h.admin(broker.bootstrap)
    topic = h.topic_name("legacy")
    h.create_topic(broker.bootstrap, topic, 1, config={"cleanup.policy": "compact"})
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "7200000"})
    assert a.alter_configs([res], request_timeout=T)[res].result(timeout=T) is None
    cfg = _describe(a, topic)
    assert cfg["retention.ms"].value == "7200000"
    assert cfg["cleanup.policy"].value == "delete", "configs not in the request revert to default"


def test_kafka_python_describe_and_alter_configs(broker):
    topic = h.topic_name("kpcfg")
    h.create_topic(broker.bootstrap, topic, 1)
    ka = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="weir-it",
                          request_timeout_ms=30000, api_version_auto_timeout_ms=30000)
    try:
        def describe():
            [resp] = ka.describe_configs([KConfigResource(ConfigResourceType.TOPIC, topic)])
            [res] = resp.to_object()["resources"]
            assert res["error_code"] == 0, res
            return {e["config_names"]: e["config_value"] for e in res["config_entries"]}

        assert describe()["retention.ms"] == DEFAULTS["retention.ms"]
        resp = ka.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={"retention.ms": "86400000"})])
        assert [r["error_code"] for r in resp.to_object()["resources"]] == [0]
        assert describe()["retention.ms"] == "86400000"
    finally:
        ka.close()


def test_min_insync_replicas_above_replication_factor(broker):
    """min.insync.replicas=2 on a single-replica topic: acks=all is refused with
    NOT_ENOUGH_REPLICAS, acks=1 still works."""
    topic = h.topic_name("misr")
    h.create_topic(broker.bootstrap, topic, 1, config={"min.insync.replicas": "2"})
    strict = h.producer(broker.bootstrap, acks="all", retries=0, **{"enable.idempotence": False})
    reports = h.produce_and_collect(strict, [(None, b"x")], topic, timeout=30)
    err = reports[0][0]
    assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
    lax = h.producer(broker.bootstrap, acks="1")
    reports = h.produce_and_collect(lax, [(None, b"y")], topic, timeout=30)
    assert reports[0][0] is None and reports[0][2] == 0


def test_describe_cluster(broker):
    a = h.admin(broker.bootstrap)
    c = a.describe_cluster(request_timeout=T).result(timeout=T)
    assert c.cluster_id, "cluster id must be set"
    assert [(n.id, n.host, n.port) for n in c.nodes] == [(1, "127.0.0.1", broker.port)]
    assert c.controller is not None and c.controller.id == 1


# Every topic config of Kafka 4.4 with Kafka's default on a broker with default settings.
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.type": "producer",
    "compression.zstd.level": "3",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "follower.replication.throttled.replicas": "",
    "index.interval.bytes": "4096",
    "leader.replication.throttled.replicas": "",
    "local.retention.bytes": "-2",
    "local.retention.ms": "-2",
    "max.compaction.lag.ms": "9223372036854775807",
    "max.message.bytes": "1048588",
    "message.timestamp.after.max.ms": "3600000",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "preallocate": "false",
    "remote.copy.lag.bytes": "-1",  # Kafka 4.4 (test_differential.py compares)
    "remote.copy.lag.ms": "0",
    "remote.log.copy.disable": "false",
    "remote.log.delete.on.disable": "false",
    "remote.storage.enable": "false",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "segment.ms": "604800000",
    "unclean.leader.election.enable": "false",
}


def test_every_kafka_topic_config_is_described_with_its_default(broker):
    a = h.admin(broker.bootstrap)
    topic = h.topic_name("all")
    h.create_topic(broker.bootstrap, topic, 1)
    cfg = _describe(a, topic)
    assert {k: e.value for k, e in cfg.items()} == KAFKA_TOPIC_DEFAULTS


def test_kafka_topic_configs_are_accepted_everywhere(broker):
    """compression.type and file.delete.delay.ms, which Kafka's tools and clients set routinely,
    are accepted by CreateTopics, IncrementalAlterConfigs and AlterConfigs."""
    a = h.admin(broker.bootstrap)
    topic = h.topic_name("kcfg")
    h.create_topic(broker.bootstrap, topic, 1, config={"compression.type": "lz4",
                                                        "file.delete.delay.ms": "1000"})
    cfg = _describe(a, topic)
    assert cfg["compression.type"].value == "lz4"
    assert cfg["file.delete.delay.ms"].value == "1000"
    assert cfg["file.delete.delay.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value

    assert _incremental(a, topic,
                        _entry("compression.type", "zstd", AlterConfigOpType.SET),
                        _entry("compression.zstd.level", "10", AlterConfigOpType.SET),
                        _entry("leader.replication.throttled.replicas", "*",
                               AlterConfigOpType.SET),
                        _entry("file.delete.delay.ms", None, AlterConfigOpType.DELETE)
                        ).result(timeout=T) is None
    cfg = _describe(a, topic)
    assert (cfg["compression.type"].value, cfg["compression.zstd.level"].value) == ("zstd", "10")
    assert cfg["leader.replication.throttled.replicas"].value == "*"
    assert cfg["file.delete.delay.ms"].value == "60000"

    # APPEND/SUBTRACT work on every LIST config, and only on those.
    _incremental(a, topic, _entry("follower.replication.throttled.replicas", "0:1,1:1",
                                  AlterConfigOpType.APPEND)).result(timeout=T)
    _incremental(a, topic, _entry("follower.replication.throttled.replicas", "0:1",
                                  AlterConfigOpType.SUBTRACT)).result(timeout=T)
    assert _describe(a, topic)["follower.replication.throttled.replicas"].value == "1:1"
    assert _err(_incremental(a, topic, _entry("compression.type", "lz4",
                                              AlterConfigOpType.APPEND))) == kwire.INVALID_CONFIG

    res = ConfigResource(ResourceType.TOPIC, topic,
                         set_config={"compression.type": "gzip", "file.delete.delay.ms": "5"})
    assert a.alter_configs([res], request_timeout=T)[res].result(timeout=T) is None
    cfg = _describe(a, topic)
    assert (cfg["compression.type"].value, cfg["file.delete.delay.ms"].value) == ("gzip", "5")
    assert cfg["compression.zstd.level"].value == "3", "AlterConfigs replaces the whole set"


def _describe_raw(bootstrap, topic, keys=None):
    """DescribeConfigs v1 with synonyms, at the wire level: the synonym list in its order
    (confluent-kafka folds synonyms with one name into one)."""
    with kwire.Conn(bootstrap) as c:
        resp = c.call(DescribeConfigsRequest[1](resources=[(2, topic, keys)],
                                                include_synonyms=True))
    [(err, _msg, _type, _name, entries)] = resp.resources
    assert err == kwire.NONE
    return {name: (value, source, [tuple(s) for s in synonyms])
            for name, value, _ro, source, _sens, synonyms in entries}


def test_describe_sources_and_synonyms_follow_kafka(broker_factory):
    b = broker_factory({"log.segment.delete.delay.ms": 1234, "compression.type": "gzip",
                        "log.retention.hours": 2})
    topic = h.topic_name("syn")
    h.create_topic(b.bootstrap, topic, 1, config={"segment.ms": "3600000"})
    d = _describe_raw(b.bootstrap, topic)
    STATIC, DEFAULT, TOPIC = 4, 5, 1
    assert d["file.delete.delay.ms"] == ("1234", STATIC, [
        ("log.segment.delete.delay.ms", "1234", STATIC),
        ("log.segment.delete.delay.ms", "60000", DEFAULT)])
    assert d["compression.type"] == ("gzip", STATIC, [
        ("compression.type", "gzip", STATIC), ("compression.type", "producer", DEFAULT)])
    # The override alone: of the broker synonyms Kafka keeps none before log.roll.ms, which
    # has no default (log.roll.hours=168 is dropped with it).
    assert d["segment.ms"] == ("3600000", TOPIC, [("segment.ms", "3600000", TOPIC)])
    # Kafka lists no synonym for retention.ms when only log.retention.hours is set (its list
    # starts at log.retention.ms), and calls the value a default.
    assert d["retention.ms"] == ("7200000", DEFAULT, [])
    assert d["max.message.bytes"] == ("1048588", DEFAULT, [("message.max.bytes", "1048588",
                                                            DEFAULT)])
    assert d["remote.storage.enable"] == ("false", DEFAULT, [])


def test_file_delete_delay_keeps_retired_segments_for_the_delay(broker_factory):
    """Segments retention deletes are renamed `.deleted` and unlinked only after
    file.delete.delay.ms, as Kafka does."""
    b = broker_factory({"log.retention.check.interval.ms": 1000})
    topic = h.topic_name("fdd")
    h.create_topic(b.bootstrap, topic, 1, config={
        "segment.bytes": "1024", "retention.ms": "60000", "file.delete.delay.ms": "8000"})
    old = int(time.time() * 1000) - 3_600_000
    p = h.producer(b.bootstrap, acks="all", **{"linger.ms": 0})
    reports = h.produce_and_collect(p, [(None, b"x" * 300) for _ in range(20)], topic,
                                    partition=0, timestamp=old)
    assert all(r[0] is None for r in reports)
    part = b.data_dir / f"{topic}-0"

    def retired():
        return sorted(f.name for f in part.glob("*.deleted"))

    deadline = time.monotonic() + 30
    while not retired() and time.monotonic() < deadline:
        time.sleep(0.05)
    first = retired()
    assert first, "retention never ran (no .deleted files)"
    seen = time.monotonic()
    # Not unlinked at once: they stay for the delay (8 s; this looks after 2 s).
    time.sleep(2)
    assert set(first) <= set(retired()), "retired files were unlinked before file.delete.delay.ms"
    deadline = time.monotonic() + 40
    while set(first) & set(retired()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(first) & set(retired()), f"still there {time.monotonic() - seen:.0f}s later"
