"""A short chaos run (a few rounds, ~2-3 minutes): three brokers in network namespaces, seeded
faults, and the checker's verdict from the run's last line. Needs root and `ip netns`; the broker
is WEIR_BIN (scripts/test.sh sets it), else target/release/weir, else target/debug/weir.
CHAOS_ROUNDS and CHAOS_SEED change the run (default 3 rounds, seed 1)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from topology import netns_works

ROOT = Path(__file__).resolve().parents[2]


def _weir_bin():
    for cand in (os.environ.get("WEIR_BIN"), ROOT / "target/release/weir",
                 ROOT / "target/debug/weir"):
        if cand and os.access(cand, os.X_OK):
            return str(cand)
    pytest.fail("no broker binary: build it (cargo build -p weir) or set WEIR_BIN")


def test_a_short_chaos_run_loses_duplicates_and_reorders_nothing():
    if os.geteuid() != 0:
        pytest.skip("chaos needs root (network namespaces, tmpfs)")
    ok, why = netns_works()
    if not ok:
        pytest.skip(f"network namespaces unavailable here: {why}")
    rounds = int(os.environ.get("CHAOS_ROUNDS", "3"))
    seed = os.environ.get("CHAOS_SEED", "1")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/chaos/run.py"), "--rounds", str(rounds), "--seed", seed,
         "--weir-bin", _weir_bin()],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    report = "\n".join(lines[-40:]) + "\n" + proc.stderr[-2000:]
    assert proc.returncode == 0, report
    assert result["rounds"] == rounds and sum(result["faults"].values()) == rounds, report
    assert result["acked"] > 0, report
    for k in ("lost", "duplicated", "reordered", "phantom", "wrong_offset", "diverged_reads",
              "crashes"):
        assert result[k] == 0, f"{k}={result[k]}\n{report}"
