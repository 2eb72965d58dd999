"""The Binance adapter against Binance's real spot testnet.

Opt in with ``pytest -m live`` and ``BINANCE_TESTNET_API_KEY`` /
``BINANCE_TESTNET_API_SECRET`` in the environment; skipped otherwise. CI
never runs these: they need the network and credentials.
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

KEY = os.environ.get("BINANCE_TESTNET_API_KEY")
SECRET = os.environ.get("BINANCE_TESTNET_API_SECRET")

needs_credentials = pytest.mark.skipif(
    not (KEY and SECRET), reason="BINANCE_TESTNET_API_KEY/_SECRET not set"
)

CONFIG = """
node: {name: live, seed: 1}
venues:
  - name: binance
    kind: binance
    binance:
      environment: testnet
      api_key: ${BINANCE_TESTNET_API_KEY}
      api_secret: ${BINANCE_TESTNET_API_SECRET}
      symbols: [BTCUSDT]
    breaker: {request_timeout: 20}
oms: {ack_timeout: 30}
"""


@needs_credentials
def test_a_resting_limit_order_is_accepted_and_canceled_on_the_testnet() -> None:
    clock = ManualClock()
    node = Node(parse_config(CONFIG), clock=clock)
    node.start()
    try:
        h = Harness(node, clock)
        client_order_id = h.do(
            lambda ctx: ctx.submit_order(
                "BTCUSDT",
                Side.BUY,
                Decimal("0.001"),
                order_type=OrderType.LIMIT,
                price=Decimal("10000.00"),
                venue="binance",
            )
        )
        h.wait_status(client_order_id, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(client_order_id))
        assert h.wait_status(client_order_id, OrderStatus.CANCELED).status is OrderStatus.CANCELED
    finally:
        node.stop(timeout=20)
