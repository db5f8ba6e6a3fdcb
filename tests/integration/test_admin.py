"""weir-admin against the real broker: every command, checked through a second client
(confluent-kafka / kcat) where one exists, and `log verify` against a deliberately corrupted
segment. Env: WEIR_ADMIN_BIN (default <repo>/target/debug/weir-admin). Every wait is bounded."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource

import helpers as h

REPO = Path(__file__).resolve().parents[2]
T = 30.0
CMD_TIMEOUT_S = 90


def admin_bin() -> str:
    return os.environ.get("WEIR_ADMIN_BIN") or str(REPO / "target" / "debug" / "weir-admin")


def run(*args, broker=None, stdin: bytes | None = None, ok: bool = True, json_out: bool = False,
        timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Runs weir-admin; `ok` asserts exit 0 (else the test sees the result to check itself)."""
    argv = [admin_bin(), *[str(a) for a in args]]
    if broker is not None:
        argv += ["--bootstrap-server", broker.bootstrap]
    if json_out:
        argv.append("--json")
    p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    if ok:
        assert p.returncode == 0, (f"{argv} exited {p.returncode}\nstdout: {p.stdout.decode()}\n"
                                   f"stderr: {p.stderr.decode()}")
    return p


def run_json(*args, broker=None, **kw):
    return json.loads(run(*args, broker=broker, json_out=True, **kw).stdout)


def failed(p: subprocess.CompletedProcess, code: int = 1) -> str:
    """Asserts a scripted failure: the exit code, and exactly one line on stderr saying why."""
    err = p.stderr.decode()
    assert p.returncode == code, f"exit {p.returncode}, stderr {err!r}, stdout {p.stdout!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("weir-admin: "), err
    return lines[0]


def name(prefix="adm"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def partition_count(bootstrap, topic):
    md = h.admin(bootstrap).list_topics(topic=topic, timeout=10)
    return len(md.topics[topic].partitions)


def wait_for(predicate, what, timeout=T):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout}s (last: {last!r})")


# -- help and errors --------------------------------------------------------------------------

NETWORKED = [
    ["topic", "create"], ["topic", "list"], ["topic", "describe"], ["topic", "delete"],
    ["topic", "add-partitions"], ["topic", "config", "get"], ["topic", "config", "set"],
    ["topic", "config", "delete"], ["produce"], ["consume"], ["group", "list"],
    ["group", "describe"], ["group", "reset-offsets"], ["group", "delete"], ["cluster", "describe"],
]


@pytest.mark.parametrize("cmd", [[], ["topic"], ["topic", "config"], ["group"], ["cluster"], ["log"],
                                 ["log", "dump"], ["log", "verify"]] + NETWORKED)
def test_every_command_has_help(cmd):
    out = run(*cmd, "--help").stdout.decode()
    assert "Usage: weir-admin" in out
    if cmd in NETWORKED:
        assert "--bootstrap-server <HOST:PORT>" in out and "127.0.0.1:9092" in out
        assert "--json" in out


def test_unreachable_broker_is_one_line_and_exit_1():
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        p = run("topic", "list", "--bootstrap-server", f"127.0.0.1:{port}", ok=False)
    line = failed(p)
    assert "cannot connect to 127.0.0.1" in line


def test_bad_usage_exits_2():
    p = run("topic", "create", ok=False)
    assert p.returncode == 2


# -- topics -----------------------------------------------------------------------------------

def test_topic_lifecycle(broker):
    t = name()
    out = run("topic", "create", t, "--partitions", 2, "--replication-factor", 1,
              "--config", "retention.ms=3600000", broker=broker).stdout.decode()
    assert out.strip() == f"Created topic {t} with 2 partitions, replication factor 1."
    h.wait_for_topic(broker.bootstrap, t, 2)

    line = failed(run("topic", "create", "--topic", t, broker=broker, ok=False))
    assert "TOPIC_ALREADY_EXISTS" in line
    assert "already exists" in run("topic", "create", t, "--if-not-exists", broker=broker).stdout.decode()

    listed = run_json("topic", "list", broker=broker)
    mine = [x for x in listed if x["topic"] == t]
    assert mine == [{"topic": t, "partitions": 2, "replication_factor": 1, "internal": False}]
    assert t in run("topic", "list", broker=broker).stdout.decode()

    # Describe shows leader, replicas, ISR and both log ends, after data went to partition 1.
    p = h.producer(broker.bootstrap)
    reports = h.produce_and_collect(p, [(None, b"x%d" % i) for i in range(5)], t, partition=1)
    assert all(r[0] is None for r in reports)
    d = run_json("topic", "describe", t, broker=broker)
    assert d["topics"] == [{"topic": t, "topic_id": d["topics"][0]["topic_id"], "partitions": 2,
                            "replication_factor": 1, "internal": False}]
    parts = {x["partition"]: x for x in d["partitions"]}
    assert set(parts) == {0, 1}
    for x in parts.values():
        assert x["leader"] == 1 and x["replicas"] == [1] and x["isr"] == [1] and x["error"] is None
        assert x["log_start_offset"] == 0
    assert (parts[0]["log_end_offset"], parts[1]["log_end_offset"]) == (0, 5)
    text = run("topic", "describe", t, broker=broker).stdout.decode()
    assert "LOG-START-OFFSET" in text and "LOG-END-OFFSET" in text and "ISR" in text

    # Grow; shrinking and "growing" to the same count are refused with the reason.
    assert "now has 4 partitions (was 2)" in run("topic", "add-partitions", t, "--partitions", 4,
                                                 broker=broker).stdout.decode()
    h.wait_for_topic(broker.bootstrap, t, 4)
    line = failed(run("topic", "add-partitions", t, "--partitions", 3, broker=broker, ok=False))
    assert "can only grow" in line and "delete and re-create" in line
    line = failed(run("topic", "add-partitions", t, "--partitions", 4, broker=broker, ok=False))
    assert "already has 4 partitions" in line
    assert partition_count(broker.bootstrap, t) == 4

    assert run("topic", "delete", t, broker=broker).stdout.decode().strip() == f"Deleted topic {t}."
    wait_for(lambda: t not in h.admin(broker.bootstrap).list_topics(timeout=10).topics, "deletion")
    line = failed(run("topic", "delete", t, broker=broker, ok=False))
    assert "UNKNOWN_TOPIC_OR_PARTITION" in line
    assert "does not exist" in run("topic", "delete", t, "--if-exists", broker=broker).stdout.decode()
    line = failed(run("topic", "describe", t, broker=broker, ok=False))
    assert "UNKNOWN_TOPIC_OR_PARTITION" in line


def test_invalid_topic_create_names_the_kafka_error(broker):
    line = failed(run("topic", "create", "bad/name", "--partitions", 1, broker=broker, ok=False))
    assert "INVALID_TOPIC_EXCEPTION" in line
    line = failed(run("topic", "create", name(), "--partitions", 0, broker=broker, ok=False))
    assert "INVALID_PARTITIONS" in line


def confluent_config(bootstrap, topic, key):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = h.admin(bootstrap)  # kept alive until the future resolves
    futs = a.describe_configs([res])
    return h.future_result(futs[res])[key]


def test_topic_configs_get_set_delete(broker):
    t = name()
    run("topic", "create", t, "--partitions", 1, broker=broker)
    got = run_json("topic", "config", "get", t, broker=broker)
    keys = {c["key"]: c for c in got}
    assert keys["retention.ms"]["source"] == "DEFAULT_CONFIG"
    assert "cleanup.policy" in keys and "segment.bytes" in keys

    out = run("topic", "config", "set", t, "--config", "retention.ms=120000",
              "--config", "max.message.bytes=200000", broker=broker).stdout.decode()
    assert f"Set retention.ms=120000 on topic {t}." in out
    assert confluent_config(broker.bootstrap, t, "retention.ms").value == "120000"
    got = run_json("topic", "config", "get", t, "--key", "retention.ms", "--key", "max.message.bytes",
                   broker=broker)
    assert {(c["key"], c["value"], c["source"]) for c in got} == {
        ("retention.ms", "120000", "DYNAMIC_TOPIC_CONFIG"),
        ("max.message.bytes", "200000", "DYNAMIC_TOPIC_CONFIG")}

    run("topic", "config", "delete", t, "--key", "retention.ms", broker=broker)
    got = run_json("topic", "config", "get", t, "--key", "retention.ms", broker=broker)
    assert got[0]["source"] == "DEFAULT_CONFIG" and got[0]["value"] == "604800000"
    assert confluent_config(broker.bootstrap, t, "max.message.bytes").value == "200000"

    line = failed(run("topic", "config", "set", t, "--config", "retention.ms=soon", broker=broker, ok=False))
    assert "INVALID_CONFIG" in line
    line = failed(run("topic", "config", "get", t, "--key", "no.such.key", broker=broker, ok=False))
    assert "no.such.key" in line
    line = failed(run("topic", "config", "get", name("missing"), broker=broker, ok=False))
    assert "UNKNOWN_TOPIC_OR_PARTITION" in line


# -- console producer and consumer --------------------------------------------------------------

def kcat_consume(bootstrap, topic, fmt, expect, timeout=T):
    out = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e",
                          "-q", "-f", fmt], capture_output=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert len(lines) == expect, lines
    return lines


def test_produce_then_kcat_reads_keys_values_and_headers(broker):
    t = name()
    run("topic", "create", t, "--partitions", 3, broker=broker)
    lines = b"".join(b"trace=t%d,kind=k%d,flag|user%d:value %d\n" % (i, i % 2, i, i) for i in range(30))
    summary = run_json("produce", t, "--property", "parse.key=true", "--property", "key.separator=:",
                       "--property", "parse.headers=true", "--property", "headers.delimiter=|",
                       "--property", "headers.key.separator==", "--header", "source:weir-admin",
                       broker=broker, stdin=lines)
    assert sum(s["messages"] for s in summary) == 30
    got = kcat_consume(broker.bootstrap, t, "%k|%s|%h|%p\n", 30)
    rows = sorted(got, key=lambda l: int(l.split("|")[0][4:]))
    for i, row in enumerate(rows):
        k, v, hdrs, part = row.split("|")
        assert (k, v) == (f"user{i}", f"value {i}")
        # A header without its key separator has a null value, which kcat prints as NULL.
        assert hdrs == f"source=weir-admin,trace=t{i},kind=k{i % 2},flag=NULL", hdrs
    # Same key, same partition, as a Java producer would pick (murmur2).
    by_key = {}
    for row in got:
        k, _, _, part = row.split("|")
        by_key.setdefault(k, set()).add(part)
    assert all(len(p) == 1 for p in by_key.values())


def test_kcat_produces_and_weir_admin_consumes(broker):
    t = name()
    run("topic", "create", t, "--partitions", 2, broker=broker)
    data = "".join(f"key{i}:msg {i}\n" for i in range(20))
    p = subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", t, "-K:", "-p", "1"],
                       input=data.encode(), capture_output=True, timeout=T)
    assert p.returncode == 0, p.stderr
    out = run("consume", t, "--from-beginning", "--exit-at-end", "--property", "print.key=true",
              "--property", "key.separator=:", broker=broker)
    assert out.stdout.decode() == data
    assert "Processed a total of 20 messages" in out.stderr.decode()
    # The same through a template and as JSON lines.
    out = run("consume", t, "--from-beginning", "--max-messages", 3, "--format", r"%t/%p/%o %k=%v\n",
              broker=broker).stdout.decode()
    assert out.splitlines() == [f"{t}/1/{i} key{i}=msg {i}" for i in range(3)]
    js = [json.loads(l) for l in run("consume", t, "--partition", 1, "--offset", 18, "--exit-at-end",
                                     broker=broker, json_out=True).stdout.decode().splitlines()]
    assert [(m["offset"], m["key"], m["value"]) for m in js] == [(18, "key18", "msg 18"),
                                                                  (19, "key19", "msg 19")]


def test_round_trip_compressed_acks_and_partition(broker):
    t = name()
    run("topic", "create", t, "--partitions", 3, broker=broker)
    for codec, acks in (("gzip", "all"), ("zstd", "1"), ("none", "0")):
        body = "".join(f"{codec} {i}\n" for i in range(50)).encode()
        run("produce", t, "--partition", 2, "--compression-codec", codec, "--acks", acks,
            broker=broker, stdin=body)
    # acks=0 gets no answer: wait until the broker has all 150.
    wait_for(lambda: run_json("topic", "describe", t, broker=broker)["partitions"][2]["log_end_offset"] == 150,
             "150 messages in partition 2")
    got = kcat_consume(broker.bootstrap, t, "%p %s\n", 150)
    assert all(l.startswith("2 ") for l in got)
    assert [l[2:] for l in got] == [f"{c} {i}" for c in ("gzip", "zstd", "none") for i in range(50)]
    # weir-admin reads its own compressed batches back in order.
    out = run("consume", t, "--from-beginning", "--exit-at-end", broker=broker).stdout.decode()
    assert out.splitlines() == [l[2:] for l in got]


def test_consume_from_offset_timestamp_end_and_stop_conditions(broker):
    t = name()
    run("topic", "create", t, "--partitions", 1, broker=broker)
    p = h.producer(broker.bootstrap)
    base = 1_700_000_000_000
    for i in range(10):
        p.produce(t, value=b"m%d" % i, partition=0, timestamp=base + i * 1000)
    assert p.flush(T) == 0
    out = run("consume", t, "--from-timestamp", base + 6500, "--exit-at-end", broker=broker)
    assert out.stdout.decode().split() == ["m7", "m8", "m9"]
    iso = "2023-11-14T22:13:26.000Z"  # base + 6000 ms
    out = run("consume", t, "--from-timestamp", iso, "--exit-at-end", broker=broker)
    assert out.stdout.decode().split() == ["m6", "m7", "m8", "m9"]
    out = run("consume", t, "--offset", "earliest", "--max-messages", 4, broker=broker)
    assert out.stdout.decode().split() == ["m0", "m1", "m2", "m3"]
    out = run("consume", t, "--partition", 0, "--offset", 8, "--exit-at-end", "--property",
              "print.offset=true", "--property", "print.timestamp=true", broker=broker)
    assert out.stdout.decode().splitlines() == [f"CreateTime:{base + 8000}\tOffset:8\tm8",
                                                f"CreateTime:{base + 9000}\tOffset:9\tm9"]
    # From the end with nothing new: stops at the timeout having printed nothing.
    out = run("consume", t, "--timeout-ms", 1500, broker=broker)
    assert out.stdout == b"" and "Processed a total of 0 messages" in out.stderr.decode()
    line = failed(run("consume", t, "--offset", 3, broker=broker, ok=False))
    assert "--partition" in line
    line = failed(run("consume", name("missing"), "--exit-at-end", broker=broker, ok=False))
    assert "UNKNOWN_TOPIC_OR_PARTITION" in line


# -- groups -------------------------------------------------------------------------------------

def describe(broker, group):
    return run_json("group", "describe", "--group", group, broker=broker)


def stable_with_members(broker, group, counts):
    """The group's description once it is Stable with members owning `counts` partitions each
    (sorted), else None: before the first join the group does not exist yet."""
    p = run("group", "describe", "--group", group, broker=broker, json_out=True, ok=False)
    if p.returncode != 0:
        return None
    d = json.loads(p.stdout)
    got = sorted(m["partitions"] for m in d["members"])
    return d if d["groups"][0]["state"] == "Stable" and got == counts else None


def test_group_consume_describe_lag_reset_delete(broker):
    t, g = name(), name("grp")
    run("topic", "create", t, "--partitions", 2, broker=broker)
    body = "".join(f"k{i}:v{i}\n" for i in range(40)).encode()
    run("produce", t, "--property", "parse.key=true", "--property", "key.separator=:", broker=broker,
        stdin=body)

    # A weir-admin group member: it shows in describe with its assignment while it runs.
    proc = subprocess.Popen([admin_bin(), "consume", t, "--group", g, "--from-beginning",
                             "--bootstrap-server", broker.bootstrap],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        d = wait_for(lambda: stable_with_members(broker, g, [2]), "a Stable group with a member")
        assert d["groups"][0]["protocol"] == "range" and d["groups"][0]["members"] == 1
        m = d["members"][0]
        assert m["client_id"] == "weir-admin" and m["partitions"] == 2
        assert sorted(m["assignment"].split(",")) == [f"{t}-0", f"{t}-1"]
        # An active group cannot be reset.
        line = failed(run("group", "reset-offsets", "--group", g, "--all-topics", "--to-earliest",
                          "--execute", broker=broker, ok=False))
        assert "inactive" in line and "Stable" in line
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=T)
    assert proc.returncode == 0, err
    assert len(out.decode().split()) == 40
    assert "Processed a total of 40 messages" in err.decode()

    # Stopped: offsets committed, lag 0; more data makes lag.
    d = describe(broker, g)
    assert d["groups"][0]["state"] == "Empty" and d["members"] == []
    offs = {o["partition"]: o for o in d["offsets"]}
    assert sum(o["current_offset"] for o in offs.values()) == 40
    assert all(o["lag"] == 0 and o["log_end_offset"] == o["current_offset"] for o in offs.values())
    run("produce", t, "--partition", 0, broker=broker, stdin=b"a\nb\nc\n")
    d = describe(broker, g)
    assert {o["partition"]: o["lag"] for o in d["offsets"]} == {0: 3, 1: 0}
    assert d["groups"][0]["total_lag"] == 3
    text = run("group", "describe", "--group", g, broker=broker).stdout.decode()
    assert "CURRENT-OFFSET" in text and "LOG-END-OFFSET" in text and "LAG" in text

    # Dry run by default: nothing changes.
    before = {o["partition"]: o["current_offset"] for o in d["offsets"]}
    r = run_json("group", "reset-offsets", "--group", g, "--all-topics", "--to-earliest", broker=broker)
    assert r["result"]["executed"] is False and all(o["new_offset"] == 0 for o in r["offsets"])
    assert "dry run" in " ".join(r["warnings"])
    assert {o["partition"]: o["current_offset"] for o in describe(broker, g)["offsets"]} == before
    # Executed: to an offset (clamped into the log), then by time, then latest.
    run("group", "reset-offsets", "--group", g, "--topic", f"{t}:0", "--to-offset", 2, "--execute",
        broker=broker)
    assert {o["partition"]: o["current_offset"] for o in describe(broker, g)["offsets"]}[0] == 2
    run("group", "reset-offsets", "--group", g, "--topic", t, "--to-offset", 10_000, "--execute",
        broker=broker)
    ends = {o["partition"]: o["log_end_offset"] for o in describe(broker, g)["offsets"]}
    assert {o["partition"]: o["current_offset"] for o in describe(broker, g)["offsets"]} == ends
    run("group", "reset-offsets", "--group", g, "--all-topics", "--to-datetime", "2000-01-01T00:00:00",
        "--execute", broker=broker)
    assert all(o["current_offset"] == 0 for o in describe(broker, g)["offsets"])
    run("group", "reset-offsets", "--group", g, "--all-topics", "--shift-by", 5, "--execute", broker=broker)
    shifted = {p: min(5, e) for p, e in ends.items()}
    assert {o["partition"]: o["current_offset"] for o in describe(broker, g)["offsets"]} == shifted

    # A group member resumes from the committed offsets.
    out = run("consume", t, "--group", g, "--exit-at-end", broker=broker).stdout.decode().split()
    assert len(out) == sum(ends.values()) - sum(shifted.values())

    listed = run_json("group", "list", broker=broker)
    # (Kafka keeps protocol_type "consumer" for an Empty group; Weir reports none: not asserted.)
    assert [x["state"] for x in listed if x["group"] == g] == ["Empty"]
    assert g in [x["group"] for x in run_json("group", "list", "--state", "Empty", broker=broker)]
    assert g not in [x["group"] for x in run_json("group", "list", "--state", "Stable", broker=broker)]

    assert run("group", "delete", "--group", g, broker=broker).stdout.decode().strip() == \
        f"Deleted consumer group '{g}'."
    line = failed(run("group", "describe", "--group", g, broker=broker, ok=False))
    assert "does not exist" in line
    line = failed(run("group", "delete", "--group", g, broker=broker, ok=False))
    assert "GROUP_ID_NOT_FOUND" in line


def test_group_describe_of_a_librdkafka_member_and_weir_admin_sharing_a_group(broker):
    t, g = name(), name("grp")
    run("topic", "create", t, "--partitions", 4, broker=broker)
    c = Consumer({**h.common_conf(broker.bootstrap), "group.id": g, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                  "partition.assignment.strategy": "range"})
    proc = None
    try:
        c.subscribe([t])
        wait_for(lambda: c.poll(0.2) is None and len(c.assignment()) == 4, "librdkafka owning 4 partitions")
        d = describe(broker, g)
        assert d["members"][0]["partitions"] == 4 and d["members"][0]["client_id"] == "weir-it"
        # weir-admin joins the same group: the range assignor splits the partitions 2/2.
        proc = subprocess.Popen([admin_bin(), "consume", t, "--group", g, "--bootstrap-server",
                                 broker.bootstrap], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def split():
            c.poll(0.2)
            return stable_with_members(broker, g, [2, 2])
        d = wait_for(split, "partitions split between the two members")
        owners = {o["partition"]: o["client_id"] for o in d["offsets"]}
        assert sorted(owners) == [0, 1, 2, 3]
        assert sorted(owners.values()) == ["weir-admin", "weir-admin", "weir-it", "weir-it"]
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=T)
            assert proc.returncode == 0, err
        c.close()


# -- cluster ------------------------------------------------------------------------------------

def test_cluster_describe_and_the_partition_warning(broker):
    t = name()
    run("topic", "create", t, "--partitions", 3, broker=broker)
    d = run_json("cluster", "describe", broker=broker)
    assert d["cluster"]["controller"] == 1 and d["cluster"]["brokers"] == 1
    [b] = d["brokers"]
    assert (b["id"], b["host"], b["port"], b["controller"]) == (1, "127.0.0.1", broker.port, True)
    assert b["partitions"] >= 3 and b["leaders"] == b["partitions"]
    assert "warnings" not in d
    text = run("cluster", "describe", "--partition-warn-threshold", 2, broker=broker).stdout.decode()
    assert "WARNING: broker 1 hosts" in text and "above the recommended 2 per broker" in text


# -- offline log dump and verify -----------------------------------------------------------------

def test_log_dump_and_verify_a_clean_then_corrupted_partition(broker_factory):
    b = broker_factory({"log.segment.bytes": 4096, "log.index.interval.bytes": 256})
    t = name()
    run("topic", "create", t, "--partitions", 1, broker=b)
    body = "".join(f"message number {i:04d} " + "x" * 60 + "\n" for i in range(300)).encode()
    run("produce", t, "--batch-size", 512, broker=b, stdin=body)
    assert b.stop() == 0
    part = b.data_dir / f"{t}-0"
    segments = sorted(part.glob("*.log"))
    assert len(segments) > 2, segments

    v = json.loads(run("log", "verify", part, json_out=True).stdout)
    assert v["summary"]["result"] == "OK" and v["summary"]["records"] == 300
    assert v["summary"]["segments"] == len(segments) and v["summary"]["index_entries"] > 0
    assert v["problems"] == []
    # The whole log directory verifies too (metadata log and all).
    assert "Result:            OK" in run("log", "verify", b.data_dir).stdout.decode()

    dump = run("log", "dump", part).stdout.decode().splitlines()
    batches = [l for l in dump if l.startswith("baseOffset:")]
    assert sum(int(l.split(" count: ")[1].split()[0]) for l in batches) == 300
    assert all(l.endswith("isvalid: true") for l in batches)
    data = run("log", "dump", segments[0], "--print-data-log").stdout.decode()
    assert "| offset: 0 CreateTime: " in data and "payload: message number 0000" in data

    # Corrupt one byte inside the second batch of the second segment, and one index entry.
    seg = segments[1]
    second = [json.loads(l) for l in run("log", "dump", seg, json_out=True).stdout.decode().splitlines()][2]
    raw = bytearray(seg.read_bytes())
    raw[second["position"] + 70] ^= 0xFF
    seg.write_bytes(bytes(raw))
    index = seg.with_suffix(".index")
    ib = bytearray(index.read_bytes())
    assert len(ib) >= 8
    ib[4:8] = (3).to_bytes(4, "big")  # first entry now points inside the first batch
    index.write_bytes(bytes(ib))

    p = run("log", "verify", part, ok=False)
    assert p.returncode == 3
    assert p.stderr.decode().strip() == f"weir-admin: {part}: 2 problems found"
    out = p.stdout.decode()
    assert "Result:            CORRUPT" in out
    v = json.loads(run("log", "verify", part, json_out=True, ok=False).stdout)
    probs = v["problems"]
    assert len(probs) == 2, probs
    crc = [x for x in probs if x["problem"].startswith("CRC-32C mismatch")]
    assert len(crc) == 1 and crc[0]["file"] == str(seg)
    assert crc[0]["position"] == second["position"] and crc[0]["offset"] == second["base_offset"]
    idx = [x for x in probs if x["file"] == str(index)]
    assert len(idx) == 1 and idx[0]["position"] == 0
    assert "position 3, which is not the start of a batch" in idx[0]["problem"]
    # The dump marks the corrupt batch and keeps going.
    dump = run("log", "dump", seg).stdout.decode()
    assert dump.count("isvalid: false") == 1

    # Offline means offline: the broker stays down for all of the above, and verify needs no flag.
    assert not b.alive()
