"""Apache Kafka 4.4 next to Weir: the `kafka_reference` fixture and `kafka_tool()`.

* `kafka_reference` - one real Kafka 4.4 node (KRaft, combined broker and controller) for the
                      whole session, started by scripts/kafka-reference.sh on a free loopback
                      port with a fresh data directory and stopped by its PID. Its jars come from
                      Maven Central through Maven (cached in ~/.m2).
* `kafka_tool(name, *args)` - runs one of Kafka's command-line tools (scripts/kafka-tool.sh,
                      from the same jars) with a bound on its run time.

Both need a Java runtime (17+) and Maven; scripts/test.sh checks for them.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import kwire

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "scripts" / "kafka-reference.sh"
TOOL = REPO / "scripts" / "kafka-tool.sh"
TOOL_TIMEOUT_S = 120  # a bound on one tool run (JVM start included), not a speed assertion

# Settings the scenarios need on both brokers (Kafka's names): the cleaner looks for work every
# half second instead of every 15 s, so compaction results are reached within the test bounds.
SHARED_OVERRIDES = {
    "log.cleaner.backoff.ms": "500",
}


@dataclass
class KafkaNode:
    bootstrap: str
    workdir: Path
    api_versions: dict

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = (self.workdir / "kafka.log").read_text(errors="replace")
        except OSError:
            return "(no kafka.log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ToolResult:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> "ToolResult":
        assert self.returncode == 0, (f"tool exited {self.returncode}\n--- stdout ---\n{self.stdout[-3000:]}"
                                      f"\n--- stderr ---\n{self.stderr[-3000:]}")
        return self


def kafka_tool(name: str, *args: str, input: str | None = None,
               timeout: float = TOOL_TIMEOUT_S) -> ToolResult:
    p = subprocess.run([str(TOOL), name, *args], input=input, capture_output=True, text=True,
                       timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    return ToolResult(p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="session")
def kafka_reference(tmp_path_factory) -> KafkaNode:
    workdir = tmp_path_factory.mktemp("kafka-reference")
    args = [str(REFERENCE), "start", str(workdir)] + [f"{k}={v}" for k, v in SHARED_OVERRIDES.items()]
    env = dict(os.environ)
    env.setdefault("KAFKA_HEAP_OPTS", "-Xmx1G -Xms256m")
    started = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    if started.returncode != 0:
        raise AssertionError(f"the reference Kafka did not start:\n{started.stdout}\n{started.stderr}")
    bootstrap = (workdir / "bootstrap").read_text().strip()
    try:
        node = KafkaNode(bootstrap, workdir, kwire.probe(bootstrap, timeout=10))
        yield node
    finally:
        subprocess.run([str(REFERENCE), "stop", str(workdir)], timeout=120)
