"""``tradenode`` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

RUNNING_LINE = "running (Ctrl-C to stop"


def _tradenode(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tradenode", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_until_running(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert RUNNING_LINE in line, line + (process.stderr.read() if process.stderr else "")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_stops_cleanly_on_a_signal_with_exit_zero(sig: signal.Signals) -> None:
    process = _tradenode("run")
    _wait_until_running(process)
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "node paper-node stopped (stop requested)" in out
    assert "brokers [stopped, restarts=0]" in out
    assert "final summary" in out
    assert "Traceback" not in err


def test_run_with_duration_stops_by_itself_and_writes_the_summary(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    process = _tradenode("run", "--duration", "5", "--summary-json", str(summary))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    data = json.loads(summary.read_text())
    assert data["node"] == "paper-node"
    assert [child["name"] for child in data["tree"]["children"]] == ["core", "brokers"]
    assert data["total_orders"] > 0 and data["fills"] > 0
    assert {"positions", "rejections", "restarts"} <= set(data)
    assert "--- paper-node status ---" in out


def test_a_config_error_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("node:\n  shutdown_timeout: -1\n")
    process = _tradenode("run", str(config))
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "node.shutdown_timeout" in lines[0] and "-1" in lines[0]


def test_help_documents_every_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tradenode", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "run" in out
    run_help = subprocess.run(
        [sys.executable, "-m", "tradenode", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--duration", "--summary-json", "CONFIG"):
        assert option in run_help
