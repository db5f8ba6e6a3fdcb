"""Self-test of the harness (conftest.Broker) against fake_broker.py: start/ready, restart on
the same port and dir, kill -9, cleanup by PID, and the failure paths."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

import kwire
from conftest import Broker, BrokerError

FAKE = [sys.executable, str(Path(__file__).with_name("fake_broker.py"))]


def _gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still "exists"; reaped children do not
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_start_restart_kill9_cleanup(tmp_path):
    b = Broker(tmp_path / "b", {"num.partitions": 7}, command=FAKE, name="fake")
    try:
        b.start(ready_timeout=10)
        assert b.alive() and b.bootstrap == f"127.0.0.1:{b.port}"
        assert "--override" in b.argv() and "num.partitions=7" in b.argv()
        assert f"log.dirs={b.data_dir}" in b.config_file.read_text()
        kwire.probe(b.bootstrap)
        pid1 = b.pid
        b.restart()
        assert b.pid != pid1 and b.alive() and b.proc.returncode is None
        kwire.probe(b.bootstrap)
        b.kill9()
        assert not b.alive() and b.proc.returncode == -signal.SIGKILL
        b.start(ready_timeout=10)
        pid3 = b.pid
    finally:
        b.cleanup()
    assert _gone(pid3)
    assert b.stderr_tail().count("harness: start #") == 3


def test_crash_before_ready_reports_stderr(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "crash")
    b = Broker(tmp_path / "c", command=FAKE, name="fake")
    with pytest.raises(BrokerError, match="(?s)exited with code 3.*crashing on purpose"):
        b.start(ready_timeout=10)


def test_never_ready_is_bounded_and_cleaned_up(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "hang")
    b = Broker(tmp_path / "h", command=FAKE, name="fake")
    with pytest.raises(BrokerError, match="not ready"):
        b.start(ready_timeout=2)
    assert not b.alive(), "a broker that never became ready must be cleaned up"


def test_stop_that_hangs_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "stubborn")
    b = Broker(tmp_path / "s", command=FAKE, name="fake")
    try:
        b.start(ready_timeout=10)
        with pytest.raises(BrokerError, match="did not exit"):
            b.stop(timeout=1)
        assert not b.alive()
    finally:
        b.cleanup()
