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
    assert [child["name"] for child in data["tree"]["children"]] == [
        "core",
        "execution",
        "brokers",
    ]
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


CLI_SECRETS = {"TN_CLI_API_KEY": "CliKEY-0a1b2c3d4e5f", "TN_CLI_API_SECRET": "CliSECRET-6a7b8c9d0e"}


def _config_text(binance_extra: str = "", rest: str = "") -> str:
    """A paper venue and a Binance venue whose keys come from the environment, plus ``rest``."""
    return (
        "venues:\n"
        "  - name: paper\n"
        "  - name: bin\n"
        "    kind: binance\n"
        "    binance:\n"
        "      environment: custom\n"
        "      api_key: ${TN_CLI_API_KEY}\n"
        "      api_secret: ${TN_CLI_API_SECRET}\n"
        "      ws_api_url: ws://127.0.0.1:1/ws-api/v3\n"
        "      stream_url: ws://127.0.0.1:1\n"
        "      symbols: [BTCUSDT]\n"
        f"{binance_extra or '      rest_url: http://127.0.0.1:1'}\n"
        f"{rest}"
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            _config_text(rest="strategies: [{id: s1, kind: 'tradenode_no_such_pkg.mod:Trend'}]\n"),
            "strategies[0].kind",
        ),
        (
            _config_text(rest="strategies: [{id: s1, kind: 'tradenode.actors:NoSuchStrategy'}]\n"),
            "strategies[0].kind",
        ),
        (_config_text(rest="journal: {path: JOURNAL_FILE}\n"), "journal.path"),
        (_config_text(rest="strategies: [{id: s1, venue: papr}]\n"), "strategies[0].venue"),
        (
            _config_text(rest="strategies: [{id: s1, symbols: [BTCUSDT, DOGEUSDT]}]\n"),
            "strategies[0].symbols",
        ),
        (
            _config_text(rest="strategies: [{id: s1, venue: bin, symbols: [ETHUSDT]}]\n"),
            "strategies[0].symbols",
        ),
        (_config_text(binance_extra="      rest_url: null"), "venues[1].binance.rest_url"),
        (
            _config_text(binance_extra="      api_secrett: ${TN_CLI_API_SECRET}"),
            "venues[1].binance.api_secrett",
        ),
    ],
    ids=[
        "no-such-module",
        "no-such-class",
        "journal-path-is-a-file",
        "unknown-venue",
        "symbol-not-on-paper",
        "symbol-not-on-binance",
        "custom-without-rest-url",
        "misspelled-api-secret",
    ],
)
def test_every_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    journal_file = tmp_path / "journal"
    journal_file.write_text("not a directory\n")
    config = tmp_path / "bad.yaml"
    config.write_text(text.replace("JOURNAL_FILE", f"'{journal_file}'"))
    process = subprocess.run(
        [sys.executable, "-m", "tradenode", "run", str(config), "--duration", "5"],
        capture_output=True,
        text=True,
        env={**os.environ, **CLI_SECRETS},
        timeout=60,
        check=False,
    )
    assert process.returncode == 2, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert f"config key {key}: " in lines[0]
    assert "Traceback" not in process.stderr
    for secret in CLI_SECRETS.values():
        assert secret not in process.stderr + process.stdout
