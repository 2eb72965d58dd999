"""The CCXT adapter against a real exchange's sandbox.

Opt in with ``pytest -m live`` and ``CCXT_EXCHANGE`` (a ccxt id with a sandbox,
e.g. ``binance``), ``CCXT_API_KEY``, ``CCXT_SECRET`` (and ``CCXT_PASSWORD``
where the exchange has a passphrase), ``CCXT_SYMBOL`` (default ``BTC/USDT``)
and ``CCXT_PRICE`` (a buy price far below the market, default 1000) in the
environment; skipped otherwise. CI never runs it: it needs the network and
credentials. The node runs on the system clock (exchanges check timestamps).
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from tradenode import Node, parse_config
from tradenode.messages import OrderStatus, OrderType, Side
from tradenode.supervision import ManualClock

from ._node_helpers import Harness

pytestmark = pytest.mark.live

NAMES = ("CCXT_EXCHANGE", "CCXT_API_KEY", "CCXT_SECRET")
needs_credentials = pytest.mark.skipif(
    not all(os.environ.get(name) for name in NAMES),
    reason="CCXT_EXCHANGE/CCXT_API_KEY/CCXT_SECRET not set",
)


def _config() -> str:
    symbol = os.environ.get("CCXT_SYMBOL", "BTC/USDT")
    password = "\n      password: ${CCXT_PASSWORD}" if os.environ.get("CCXT_PASSWORD") else ""
    return f"""
node: {{name: live, seed: 1}}
broker_backoff: {{min_seconds: 2, max_seconds: 30, random_factor: 0.2}}
venues:
  - name: sandbox
    kind: ccxt
    ccxt:
      exchange: ${{CCXT_EXCHANGE}}
      api_key: ${{CCXT_API_KEY}}
      secret: ${{CCXT_SECRET}}{password}
      sandbox: true
      symbols: ["{symbol}"]
    breaker: {{request_timeout: 20, rate_per_second: 5}}
oms: {{ack_timeout: 30}}
"""


@needs_credentials
def test_a_resting_limit_order_is_accepted_and_canceled_in_the_sandbox() -> None:
    node = Node(parse_config(_config()))
    node.start()
    try:
        h = Harness(node, ManualClock())  # the manual clock is never advanced here
        symbol = os.environ.get("CCXT_SYMBOL", "BTC/USDT")
        price = Decimal(os.environ.get("CCXT_PRICE", "1000"))
        client_order_id = h.do(
            lambda ctx: ctx.submit_order(
                symbol,
                Side.BUY,
                Decimal("0.001"),
                order_type=OrderType.LIMIT,
                price=price,
                venue="sandbox",
            )
        )
        h.wait_status(client_order_id, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(client_order_id))
        h.wait_status(client_order_id, OrderStatus.CANCELED)
    finally:
        node.stop(timeout=20)
