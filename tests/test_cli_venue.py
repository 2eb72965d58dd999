"""``tradenode venue binance`` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

# The venue's knob tables are internal: the CLI must offer exactly them.
from tradenode.testing.venues._binance_server import DEPRECATED_ALIASES, KNOBS

SECRET = "cli-secret-that-must-never-show"


def _venue(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tradenode", "venue", "binance", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_prints_its_urls_and_exits_zero_on_a_signal(sig: signal.Signals) -> None:
    process = _venue(
        "--api-key",
        "cli-key",
        "--api-secret",
        SECRET,
        "--balance",
        "USDT=1234.5",
        "--balance",
        "BTC=2",
        "--seed",
        "5",
        "--tick-interval",
        "60",
        "--log-level",
        "INFO",
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        urls = json.loads(line)
        assert set(urls) == {"rest", "ws_api", "stream", "admin"}
        assert urls["rest"].startswith("http://127.0.0.1:")
        assert urls["ws_api"] == urls["rest"].replace("http://", "ws://") + "/ws-api/v3"
        assert urls["stream"] == urls["rest"].replace("http://", "ws://")
        with httpx.Client() as http:
            served = http.get(f"{urls['rest']}/api/v3/time")
            assert served.status_code == 200
            assert isinstance(served.json()["serverTime"], int)
            state = http.get(f"{urls['admin']}/state").json()
            assert state["balances"]["USDT"]["free"] == "1234.5"
            assert state["balances"]["BTC"]["free"] == "2"
            unknown = http.get(
                f"{urls['rest']}/api/v3/account?timestamp=1&signature=00",
                headers={"X-MBX-APIKEY": "default-key-is-not-accepted"},
            )
            assert unknown.json()["code"] == -2015
    finally:
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert out.strip() == ""  # the JSON line was the only thing on stdout
    assert SECRET not in out + err + line


def test_help_documents_the_defaults() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradenode", "venue", "binance", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for expected in (
        "--port",
        "--api-key",
        "--api-secret",
        "--balance",
        "--seed",
        "--ban-seconds",
        "127.0.0.1",
    ):
        assert expected in result.stdout
    unwrapped = "".join(result.stdout.split())
    assert "tradenode-fake-binance-key" in unwrapped
    assert "USDT=1000000" in unwrapped


def test_a_malformed_balance_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradenode", "venue", "binance", "--balance", "USDT"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "ASSET=AMOUNT" in result.stderr


def test_help_lists_every_admin_knob_from_the_venues_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradenode", "venue", "binance", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unwrapped = "".join(result.stdout.split())
    for knob in KNOBS.values():
        assert "".join(knob.signature.split()) in unwrapped, knob.name
        assert "".join(knob.summary.split()) in unwrapped, knob.name
    for old, new in DEPRECATED_ALIASES.items():
        assert f"{old}->{new}" in unwrapped
    for page in ("state", "calls", "faults", "knobs"):
        assert page in result.stdout
