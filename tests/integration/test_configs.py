"""DescribeConfigs / AlterConfigs / IncrementalAlterConfigs on topics, DescribeCluster."""
from __future__ import annotations

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   ResourceType)
from kafka.admin import ConfigResource as KConfigResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

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
                                        ("min.insync.replicas", "0"), ("no.such.config", "1")])
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
