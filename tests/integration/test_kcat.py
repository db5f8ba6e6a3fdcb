"""kcat (librdkafka's command-line client, Debian package `kcat`)."""
from __future__ import annotations

import json
import shutil
import subprocess

import helpers as h

KCAT = shutil.which("kcat") or shutil.which("kafkacat")  # required: scripts/test.sh installs it


def kcat(*args, stdin: bytes | None = None, timeout: float = 60) -> str:
    assert KCAT, "kcat is required (apt-get install kcat)"
    r = subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=timeout)
    assert r.returncode == 0, f"kcat {args} exited {r.returncode}: {r.stderr.decode(errors='replace')}"
    return r.stdout.decode()


def test_kcat_produce_consume_and_metadata(broker):
    topic = h.topic_name("kcat")
    h.create_topic(broker.bootstrap, topic, 2)
    lines = [f"k{i % 7}:value {i}" for i in range(200)]
    kcat("-P", "-b", broker.bootstrap, "-t", topic, "-K:", "-X", "acks=all",
         stdin=("\n".join(lines) + "\n").encode())

    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%k %s %p %o\n")
    rows = []
    for line in out.splitlines():
        key, rest = line.split(" ", 1)
        value, part, off = rest.rsplit(" ", 2)
        rows.append((key, value, int(part), int(off)))
    assert sorted((k, v) for k, v, _, _ in rows) == sorted(tuple(l.split(":", 1)) for l in lines)

    parts = {}
    for k, v, p, o in rows:
        parts.setdefault(p, []).append((o, int(v.split()[1]), k))
    key_part = {}
    for p, entries in parts.items():
        assert [o for o, _, _ in entries] == list(range(len(entries))), f"partition {p} offsets"
        seqs = [s for _, s, _ in entries]
        assert seqs == sorted(seqs), f"partition {p} out of order"
        for _, _, k in entries:
            assert key_part.setdefault(k, p) == p, f"key {k} in two partitions"

    md = json.loads(kcat("-L", "-J", "-b", broker.bootstrap, "-t", topic))
    assert [(b["id"], b["name"]) for b in md["brokers"]] == [(1, f"127.0.0.1:{broker.port}")]
    [t] = [t for t in md["topics"] if t["topic"] == topic]
    assert "error" not in t or not t["error"], t
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1]
    for p in t["partitions"]:
        assert p["leader"] == 1


def test_kcat_metadata_plain_text(broker):
    topic = h.topic_name("kcatl")
    h.create_topic(broker.bootstrap, topic, 3)
    out = kcat("-L", "-b", broker.bootstrap)
    assert "1 brokers:" in out
    assert f"broker 1 at 127.0.0.1:{broker.port}" in out
    assert f'topic "{topic}" with 3 partitions:' in out
