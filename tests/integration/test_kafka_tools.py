"""Apache Kafka 4.4's own command-line tools against Weir, used as Kafka's documentation shows,
their output checked. The tools run from the jars of the reference Kafka
(scripts/kafka-tool.sh; Java 17 and Maven needed). Where a tool needs what Weir lacks, the test
states Kafka's behaviour and is marked xfail(strict=True) with the reason."""
from __future__ import annotations

import json
import re
import time

import pytest

import helpers as h
from kafka_ref import kafka_tool


def bs(broker) -> list[str]:
    return ["--bootstrap-server", broker.bootstrap]


def produce_keyed(broker, topic, n, partition=None, value=lambda i: b"v%d" % i):
    p = h.producer(broker.bootstrap, acks="all")
    items = [(b"k%d" % i, value(i)) for i in range(n)]
    kw = {} if partition is None else {"partition": partition}
    reports = h.produce_and_collect(p, items, topic, **kw)
    assert all(r[0] is None for r in reports), reports[:3]


# -- kafka-topics ----------------------------------------------------------------------------

def test_kafka_topics_create_list_describe_alter_delete(broker):
    t = h.topic_name("kt")
    out = kafka_tool("kafka-topics", *bs(broker), "--create", "--topic", t, "--partitions", "3",
                     "--replication-factor", "1", "--config", "retention.ms=3600000").check().stdout
    assert out.strip() == f"Created topic {t}."
    dup = kafka_tool("kafka-topics", *bs(broker), "--create", "--topic", t, "--partitions", "1")
    assert dup.returncode != 0 and "TopicExistsException" in dup.stderr + dup.stdout
    kafka_tool("kafka-topics", *bs(broker), "--create", "--if-not-exists", "--topic", t).check()

    assert t in kafka_tool("kafka-topics", *bs(broker), "--list").check().stdout.split()

    desc = kafka_tool("kafka-topics", *bs(broker), "--describe", "--topic", t).check().stdout
    head, *parts = [line for line in desc.splitlines() if line.strip()]
    assert re.match(rf"Topic: {t}\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 1\t"
                    r"Configs: retention.ms=3600000$", head), head
    assert len(parts) == 3
    for i, line in enumerate(parts):
        assert re.match(rf"\tTopic: {t}\tPartition: {i}\tLeader: 1\tReplicas: 1\tIsr: 1\t", line), line

    kafka_tool("kafka-topics", *bs(broker), "--alter", "--topic", t, "--partitions", "5").check()
    desc = kafka_tool("kafka-topics", *bs(broker), "--describe", "--topic", t).check().stdout
    assert "PartitionCount: 5" in desc
    shrink = kafka_tool("kafka-topics", *bs(broker), "--alter", "--topic", t, "--partitions", "2")
    assert shrink.returncode != 0 and "InvalidPartitionsException" in shrink.stderr + shrink.stdout

    # --describe --under-replicated-partitions: a single broker has none.
    urp = kafka_tool("kafka-topics", *bs(broker), "--describe", "--under-replicated-partitions",
                     "--topic", t).check().stdout
    assert urp.strip() == ""

    kafka_tool("kafka-topics", *bs(broker), "--delete", "--topic", t).check()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if t not in kafka_tool("kafka-topics", *bs(broker), "--list").check().stdout.split():
            break
        time.sleep(0.5)
    assert t not in kafka_tool("kafka-topics", *bs(broker), "--list").check().stdout.split()


# -- kafka-configs ---------------------------------------------------------------------------

def test_kafka_configs_topics(broker):
    t = h.topic_name("kc")
    h.create_topic(broker.bootstrap, t, 1)
    out = kafka_tool("kafka-configs", *bs(broker), "--describe", "--entity-type", "topics",
                     "--entity-name", t).check().stdout
    assert out.strip() == f"Dynamic configs for topic {t} are:"
    kafka_tool("kafka-configs", *bs(broker), "--alter", "--entity-type", "topics", "--entity-name", t,
               "--add-config", "retention.ms=1000000,cleanup.policy=compact").check()
    out = kafka_tool("kafka-configs", *bs(broker), "--describe", "--entity-type", "topics",
                     "--entity-name", t).check().stdout
    assert "  cleanup.policy=compact sensitive=false" in out
    assert "  retention.ms=1000000 sensitive=false" in out
    kafka_tool("kafka-configs", *bs(broker), "--alter", "--entity-type", "topics", "--entity-name", t,
               "--delete-config", "retention.ms").check()
    out = kafka_tool("kafka-configs", *bs(broker), "--describe", "--entity-type", "topics",
                     "--entity-name", t, "--all").check().stdout
    assert "  retention.ms=604800000 sensitive=false" in out
    assert "  cleanup.policy=compact sensitive=false" in out
    bad = kafka_tool("kafka-configs", *bs(broker), "--alter", "--entity-type", "topics",
                     "--entity-name", t, "--add-config", "retention.ms=soon")
    assert bad.returncode != 0 and "InvalidConfigurationException" in bad.stderr + bad.stdout


def test_kafka_configs_describe_broker(broker):
    out = kafka_tool("kafka-configs", *bs(broker), "--describe", "--entity-type", "brokers",
                     "--entity-name", "1", "--all").check().stdout
    assert out.splitlines()[0] == "All configs for broker 1 are:"
    assert "  message.max.bytes=1048588 sensitive=false" in out
    assert "  num.partitions=1 sensitive=false" in out
    out = kafka_tool("kafka-configs", *bs(broker), "--describe", "--entity-type", "brokers",
                     "--entity-default").check().stdout
    assert out.splitlines()[0] == "Default configs for brokers in the cluster are:"


@pytest.mark.xfail(strict=True, reason="Weir's broker configs are static (server.properties): "
                   "AlterConfigs/IncrementalAlterConfigs on a broker answer INVALID_REQUEST")
def test_kafka_configs_alter_broker(broker):
    kafka_tool("kafka-configs", *bs(broker), "--alter", "--entity-type", "brokers",
               "--entity-name", "1", "--add-config", "log.cleaner.threads=2").check()


def test_kafka_configs_synonyms_listed(broker):
    """Kafka's ConfigCommand asks for synonyms and prints them; Kafka 4.4 prints, for a
    topic override, `synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,
    DEFAULT_CONFIG:log.cleanup.policy=delete}`."""
    t = h.topic_name("ks")
    h.create_topic(broker.bootstrap, t, 1, config={"cleanup.policy": "compact"})
    out = kafka_tool("kafka-configs", *bs(broker), "--describe", "--entity-type", "topics",
                     "--entity-name", t).check().stdout
    line = next(line for line in out.splitlines() if "cleanup.policy=" in line)
    if "synonyms={}" in line:
        pytest.xfail("Weir's DescribeConfigs ignores include_synonyms")
    assert ("synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact, "
            "DEFAULT_CONFIG:log.cleanup.policy=delete}") in line, line


# -- console producer and consumer ------------------------------------------------------------

def test_console_producer_and_consumer_keys_headers_group(broker):
    t = h.topic_name("kcon")
    h.create_topic(broker.bootstrap, t, 1)
    lines = "".join(f"h1:a{i},h2:b{i}\tkey{i}\tvalue {i}\n" for i in range(5))
    kafka_tool("kafka-console-producer", *bs(broker), "--topic", t,
               "--reader-property", "parse.key=true", "--reader-property", "parse.headers=true",
               input=lines).check()
    group = h.topic_name("kcg")
    out = kafka_tool("kafka-console-consumer", *bs(broker), "--topic", t, "--from-beginning",
                     "--max-messages", "5", "--group", group, "--timeout-ms", "60000",
                     "--formatter-property", "print.key=true",
                     "--formatter-property", "print.headers=true",
                     "--formatter-property", "print.offset=true").check().stdout
    got = [line for line in out.splitlines() if line.strip()]
    assert got == [f"Offset:{i}\th1:a{i},h2:b{i}\tkey{i}\tvalue {i}" for i in range(5)], got

    # The group committed its position: a second run of the same group reads only new records.
    kafka_tool("kafka-console-producer", *bs(broker), "--topic", t, input="later\n").check()
    out = kafka_tool("kafka-console-consumer", *bs(broker), "--topic", t, "--group", group,
                     "--max-messages", "1", "--timeout-ms", "60000").check().stdout
    assert out.split() == ["later"]


# -- kafka-consumer-groups ---------------------------------------------------------------------

def _group_rows(out: str) -> list[list[str]]:
    rows = [line.split() for line in out.splitlines() if line.strip()]
    return [r for r in rows if r and r[0] != "GROUP"]


def test_consumer_groups_list_describe_reset_delete(broker):
    t = h.topic_name("kcg")
    h.create_topic(broker.bootstrap, t, 2)
    produce_keyed(broker, t, 10, partition=0)
    produce_keyed(broker, t, 4, partition=1)
    group = h.topic_name("grp")
    kafka_tool("kafka-console-consumer", *bs(broker), "--topic", t, "--from-beginning",
               "--group", group, "--max-messages", "14", "--timeout-ms", "60000").check()
    produce_keyed(broker, t, 3, partition=0)  # lag 3 on partition 0

    assert group in kafka_tool("kafka-consumer-groups", *bs(broker), "--list").check().stdout.split()
    r = kafka_tool("kafka-consumer-groups", *bs(broker), "--describe", "--group", group).check()
    out = r.stdout
    rows = sorted(_group_rows(out))
    # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    assert [r[:6] for r in rows] == [[group, t, "0", "10", "13", "3"], [group, t, "1", "4", "4", "0"]], out
    assert f"Consumer group '{group}' has no active members." in r.stderr

    out = kafka_tool("kafka-consumer-groups", *bs(broker), "--describe", "--group", group,
                     "--state").check().stdout
    assert re.search(rf"{group}\s+\S+\s+\S+\s+\S+\s+Empty\s+0", out), out

    # reset: a dry run changes nothing, --execute does
    dry = kafka_tool("kafka-consumer-groups", *bs(broker), "--reset-offsets", "--group", group,
                     "--topic", t, "--to-earliest", "--dry-run").check().stdout
    assert sorted(r[:4] for r in _group_rows(dry)) == [[group, t, "0", "0"], [group, t, "1", "0"]]
    out = kafka_tool("kafka-consumer-groups", *bs(broker), "--describe", "--group", group).check().stdout
    assert sorted(r[3] for r in _group_rows(out)[:2]) == ["10", "4"]
    kafka_tool("kafka-consumer-groups", *bs(broker), "--reset-offsets", "--group", group,
               "--topic", f"{t}:0", "--to-offset", "7", "--execute").check()
    kafka_tool("kafka-consumer-groups", *bs(broker), "--reset-offsets", "--group", group,
               "--topic", f"{t}:1", "--shift-by", "-2", "--execute").check()
    out = kafka_tool("kafka-consumer-groups", *bs(broker), "--describe", "--group", group).check().stdout
    assert sorted(r[:6] for r in _group_rows(out)) == [[group, t, "0", "7", "13", "6"],
                                                       [group, t, "1", "2", "4", "2"]], out
    kafka_tool("kafka-consumer-groups", *bs(broker), "--reset-offsets", "--group", group,
               "--all-topics", "--to-latest", "--execute").check()
    out = kafka_tool("kafka-consumer-groups", *bs(broker), "--describe", "--group", group).check().stdout
    assert sorted(r[5] for r in _group_rows(out)) == ["0", "0"]

    # delete offsets of one partition, then the group
    kafka_tool("kafka-consumer-groups", *bs(broker), "--delete-offsets", "--group", group,
               "--topic", f"{t}:1").check()
    out = kafka_tool("kafka-consumer-groups", *bs(broker), "--delete", "--group", group).check().stdout
    assert f"Deletion of requested consumer groups ('{group}') was successful." in out
    assert group not in kafka_tool("kafka-consumer-groups", *bs(broker), "--list").check().stdout.split()


# -- kafka-get-offsets --------------------------------------------------------------------------

def test_get_offsets(broker):
    t = h.topic_name("kgo")
    h.create_topic(broker.bootstrap, t, 2)
    p = h.producer(broker.bootstrap, acks="all")
    base = 1_700_000_000_000
    for i in range(6):
        p.produce(t, key=b"k", value=b"v%d" % i, partition=0, timestamp=base + i * 10)
    assert p.flush(30) == 0
    out = kafka_tool("kafka-get-offsets", *bs(broker), "--topic", t).check().stdout
    assert sorted(out.split()) == [f"{t}:0:6", f"{t}:1:0"]
    out = kafka_tool("kafka-get-offsets", *bs(broker), "--topic", t, "--time", "-2").check().stdout
    assert sorted(out.split()) == [f"{t}:0:0", f"{t}:1:0"]
    out = kafka_tool("kafka-get-offsets", *bs(broker), "--topic-partitions", f"{t}:0",
                     "--time", str(base + 25)).check().stdout
    assert out.split() == [f"{t}:0:3"]
    out = kafka_tool("kafka-get-offsets", *bs(broker), "--topic-partitions", f"{t}:0",
                     "--time", "max-timestamp").check().stdout
    assert out.split() == [f"{t}:0:5"]


# -- perf tests and verifiable clients ------------------------------------------------------------

def test_producer_and_consumer_perf_test(broker):
    t = h.topic_name("kperf")
    h.create_topic(broker.bootstrap, t, 2)
    out = kafka_tool("kafka-producer-perf-test", *bs(broker), "--topic", t, "--num-records", "20000",
                     "--record-size", "1024", "--throughput", "-1",
                     "--command-property", "acks=all").check().stdout
    final = out.strip().splitlines()[-1]
    assert re.match(r"20000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency",
                    final), final
    out = kafka_tool("kafka-consumer-perf-test", *bs(broker), "--topic", t, "--num-records", "20000",
                     "--timeout", "60000").check().stdout
    header, row = [line for line in out.splitlines() if line.strip()][-2:]
    assert header.startswith("start.time, end.time, data.consumed.in.MB"), header
    cols = [c.strip() for c in row.split(",")]
    assert cols[4] == "20000", row  # data.consumed.in.nMsg
    assert float(cols[2]) == pytest.approx(20000 * 1024 / 1024 / 1024, rel=1e-3), row


def _events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_verifiable_producer_and_consumer(broker):
    t = h.topic_name("kver")
    h.create_topic(broker.bootstrap, t, 2)
    out = kafka_tool("kafka-verifiable-producer", *bs(broker), "--topic", t,
                     "--max-messages", "1000", "--acks", "-1").check().stdout
    ev = _events(out)
    data = [e for e in ev if e["name"] == "tool_data"][-1]
    assert data["sent"] == 1000 and data["acked"] == 1000, data
    assert not [e for e in ev if e["name"] == "producer_send_error"]
    acked = sorted((e["partition"], e["offset"]) for e in ev if e["name"] == "producer_send_success")
    assert len(acked) == 1000 and len(set(acked)) == 1000

    group = h.topic_name("kvg")
    out = kafka_tool("kafka-verifiable-consumer", *bs(broker), "--topic", t, "--group-id", group,
                     "--max-messages", "1000", "--reset-policy", "earliest").check().stdout
    ev = _events(out)
    consumed = sum(e["count"] for e in ev if e["name"] == "records_consumed")
    assert consumed == 1000, [e for e in ev if e["name"] != "records_consumed"][:10]
    commits = [e for e in ev if e["name"] == "offsets_committed"]
    assert commits and all(e["success"] for e in commits), commits[:3]
    assert [e for e in ev if e["name"] == "partitions_assigned"]
    last = {}
    for e in commits:
        for o in e["offsets"]:
            last[o["partition"]] = o["offset"]
    ends = {p: sum(1 for q, _ in acked if q == p) for p in (0, 1)}
    assert last == {p: n for p, n in ends.items() if n}, (last, ends)


# -- kafka-dump-log on Weir's own files ----------------------------------------------------------

def test_dump_log_reads_weir_segments_and_indexes(broker_factory):
    """Kafka's DumpLogSegments reads Weir's segment, offset index and time index files: the
    on-disk format claim, checked by Kafka's own code. Small segments make Weir roll, so the
    closed segments have full indexes."""
    b = broker_factory({"log.segment.bytes": str(1 << 20), "log.index.interval.bytes": "4096"})
    t = h.topic_name("kdump")
    h.create_topic(b.bootstrap, t, 1)
    base = 1_700_000_000_000
    p = h.producer(b.bootstrap, acks="all", **{"linger.ms": 0, "batch.size": 16384})
    for i in range(3000):
        p.produce(t, key=b"k%d" % i, value=bytes([65 + i % 26]) * 1000, partition=0,
                  timestamp=base + i, headers=[("h", b"x")] if i % 2 else None)
    assert p.flush(60) == 0
    pdir = b.data_dir / f"{t}-0"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(pdir.glob("*.log"))) < 3:
        time.sleep(0.2)
    logs = sorted(pdir.glob("*.log"))
    assert len(logs) >= 3, f"expected rolled segments in {pdir}: {sorted(x.name for x in pdir.iterdir())}"
    closed = logs[0]
    index = closed.with_suffix(".index")
    timeindex = closed.with_suffix(".timeindex")
    assert index.exists() and timeindex.exists(), sorted(x.name for x in pdir.iterdir())

    out = kafka_tool("kafka-dump-log", "--files", str(closed), "--print-data-log").check().stdout
    batches = [line for line in out.splitlines() if line.startswith("baseOffset:")]
    records = [line for line in out.splitlines() if line.startswith("| offset:")]
    assert batches and all("isvalid: true" in line and "magic: 2" in line for line in batches), out[:2000]
    offsets = [int(re.search(r"\| offset: (\d+)", r).group(1)) for r in records]
    assert offsets == list(range(len(offsets))), offsets[:20]
    first = records[0]
    assert f"CreateTime: {base}" in first and "key: k0" in first and "payload: " + "A" * 1000 in first, first
    assert "headerKeys: [h]" in records[1], records[1]

    out = kafka_tool("kafka-dump-log", "--files", f"{index},{timeindex}", "--verify-index-only").check()
    text = out.stdout + out.stderr
    assert "Mismatches" not in text and "not found" not in text.lower(), text[:3000]
    assert "is corrupt" not in text.lower(), text[:3000]
    out = kafka_tool("kafka-dump-log", "--files", f"{index}").check().stdout
    entries = [line for line in out.splitlines() if line.startswith("offset:")]
    assert entries, out[:2000]
    out = kafka_tool("kafka-dump-log", "--files", f"{timeindex}").check().stdout
    tentries = [line for line in out.splitlines() if line.startswith("timestamp:")]
    assert tentries and all(f"timestamp: {base}" in tentries[0] or "timestamp: 17" in x for x in tentries), out[:2000]
    assert "Found timestamp mismatch" not in out and "Indexed offset" not in out, out[:3000]

    # Not checked: `<offset>.snapshot`. Weir keeps its own producer-state format under Kafka's
    # file name (every in-flight batch, not only the last: producer_state.rs), which Kafka's
    # DumpLogSegments reads as no entries.


# -- the rest of the toolbox ------------------------------------------------------------------

def test_broker_api_versions(broker):
    out = kafka_tool("kafka-broker-api-versions", *bs(broker)).check().stdout
    assert out.startswith(f"{broker.bootstrap} (id: 1 rack: null"), out[:200]
    assert re.search(r"Produce\(0\): \d+ to \d+ \[usable: \d+\]", out), out
    assert "DeleteRecords(21): UNSUPPORTED" in out or "DeleteRecords(21): 0 to" in out


def test_delete_records(broker, tmp_path):
    t = h.topic_name("kdr")
    h.create_topic(broker.bootstrap, t, 1)
    produce_keyed(broker, t, 10)
    spec = tmp_path / "offsets.json"
    spec.write_text(json.dumps({"partitions": [{"topic": t, "partition": 0, "offset": 4}], "version": 1}))
    out = kafka_tool("kafka-delete-records", *bs(broker), "--offset-json-file", str(spec)).check().stdout
    assert f"partition: {t}-0\tlow_watermark: 4" in out, out
