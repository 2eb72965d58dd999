"""A node pointed at a standalone local Binance (another process) by base URL.

This is the rehearsal a user runs by hand: ``tradenode venue binance`` in
one terminal, a node whose config says ``environment: custom`` with the URLs
it printed in another. Both sides run on the wall clock here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from tradenode import Node, parse_config
from tradenode.messages import OrderStatus, Side
from tradenode.supervision import SystemClock
from tradenode.testing.venues import BinanceVenue

from ._binance_helpers import market
from ._node_helpers import Harness

KEY = "standalone-key"
SECRET = "standalone-secret-never-printed"


def test_a_node_trades_against_the_venue_in_another_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "venue", "binance", "--api-key", KEY, "--seed", "9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TRADENODE_FAKE_BINANCE_SECRET": SECRET},
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        config = parse_config(
            f"""
node: {{name: bnode, seed: 1}}
venues:
  - name: binance
    kind: binance
    binance:
      environment: custom
      api_key: {KEY}
      api_secret: ${{SECRET}}
      rest_url: {urls["rest"]}
      ws_api_url: {urls["ws_api"]}
      stream_url: {urls["stream"]}
      symbols: [BTCUSDT]
""",
            environ={"SECRET": SECRET},
        )
        node = Node(config, clock=SystemClock())
        node.start()
        try:
            h = Harness(node, node.clock)
            coid = h.do(market(Side.BUY, "0.25"))
            assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == Decimal("0.25")
            with httpx.Client() as http:
                state = http.get(f"{urls['admin']}/state").json()
            assert Decimal(state["balances"]["BTC"]["free"]) == Decimal(10) + Decimal("0.25")
        finally:
            node.stop(timeout=20)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert SECRET not in stderr


def test_a_node_whose_key_the_venue_refuses_says_it_never_connected(tmp_path: Path) -> None:
    """A refused API key used to leave a node retrying quietly and exiting 0."""
    with BinanceVenue(seed=5) as venue:
        config = tmp_path / "refused.yaml"
        config.write_text(
            f"""
node: {{name: refused, seed: 1}}
broker_backoff: {{min_seconds: 0.2, max_seconds: 0.5, random_factor: 0}}
venues:
  - name: binance
    kind: binance
    binance:
      environment: custom
      api_key: {venue.api_key}
      api_secret: ${{WRONG_SECRET}}
      rest_url: {venue.rest_url}
      ws_api_url: {venue.ws_api_url}
      stream_url: {venue.stream_url}
      symbols: [BTCUSDT]
strategies: []
status_interval: 60
"""
        )
        summary = tmp_path / "summary.json"
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "tradenode",
                "run",
                str(config),
                "--duration",
                "3",
                "--summary-json",
                str(summary),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "WRONG_SECRET": "not-the-venues-secret"},
        )
    assert finished.returncode == 3, finished.stderr[-2000:]
    assert "venue binance never connected" in finished.stderr
    assert "-1022" in finished.stderr or "-2015" in finished.stderr
    never = json.loads(summary.read_text())["never_connected"]
    assert list(never) == ["binance"]
    assert "not-the-venues-secret" not in finished.stderr + finished.stdout + summary.read_text()
