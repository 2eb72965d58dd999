"""The OKX adapter against OKX's real demo trading environment.

Opt in with ``pytest -m live`` and ``OKX_API_KEY`` / ``OKX_API_SECRET`` /
``OKX_PASSPHRASE`` (a demo-trading API key, created in OKX's Demo Trading
personal center) in the environment; skipped otherwise. CI never runs
these: they need the network and credentials. The node runs on the system
clock (OKX refuses REST timestamps more than 30 s from its own).
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

NAMES = ("OKX_API_KEY", "OKX_API_SECRET", "OKX_PASSPHRASE")
needs_credentials = pytest.mark.skipif(
    not all(os.environ.get(name) for name in NAMES), reason="OKX_API_KEY/SECRET/PASSPHRASE not set"
)

CONFIG = """
node: {name: live, seed: 1}
broker_backoff: {min_seconds: 2, max_seconds: 30, random_factor: 0.2}
venues:
  - name: okx
    kind: okx
    okx:
      environment: demo
      api_key: ${OKX_API_KEY}
      api_secret: ${OKX_API_SECRET}
      passphrase: ${OKX_PASSPHRASE}
      symbols: [BTC-USDT]
    breaker: {request_timeout: 20, rate_per_second: 5}
oms: {ack_timeout: 30}
"""


def _far_below_the_market() -> Decimal:
    """A buy price no demo trade will reach in the test's lifetime (BTC-USDT tickSz 0.1)."""
    return Decimal("1000.0")


@needs_credentials
@pytest.mark.parametrize("ws_orders", [True, False], ids=["websocket", "rest"])
def test_a_resting_limit_order_is_accepted_amended_and_canceled_on_demo(ws_orders: bool) -> None:
    text = CONFIG.replace(
        "symbols: [BTC-USDT]", f"symbols: [BTC-USDT]\n      ws_orders: {str(ws_orders).lower()}"
    )
    node = Node(parse_config(text))  # the system clock: OKX checks request timestamps
    node.start()
    try:
        h = Harness(node, ManualClock())  # the manual clock is never advanced here
        client_order_id = h.do(
            lambda ctx: ctx.submit_order(
                "BTC-USDT",
                Side.BUY,
                Decimal("0.0001"),
                order_type=OrderType.LIMIT,
                price=_far_below_the_market(),
                venue="okx",
            )
        )
        accepted = h.wait_status(client_order_id, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.modify_order(client_order_id, price=Decimal("1001.0")))
        h.sync()
        h.do(lambda ctx: ctx.cancel_order(client_order_id))
        canceled = h.wait_status(client_order_id, OrderStatus.CANCELED)
        assert canceled.venue_order_id == accepted.venue_order_id  # amend kept the order
    finally:
        node.stop(timeout=20)
