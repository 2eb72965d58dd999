"""The OANDA adapter against OANDA's real fxTrade Practice environment.

Opt in with ``pytest -m live`` and ``OANDA_TOKEN`` / ``OANDA_ACCOUNT_ID`` (a
practice account) in the environment; skipped otherwise. CI never runs
these: they need the network and credentials.
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

TOKEN = os.environ.get("OANDA_TOKEN")
ACCOUNT = os.environ.get("OANDA_ACCOUNT_ID")

needs_credentials = pytest.mark.skipif(
    not (TOKEN and ACCOUNT), reason="OANDA_TOKEN/OANDA_ACCOUNT_ID not set"
)

CONFIG = """
node: {name: live, seed: 1}
broker_backoff: {min_seconds: 2, max_seconds: 30, random_factor: 0.2}
venues:
  - name: oanda
    kind: oanda
    oanda:
      environment: practice
      token: ${OANDA_TOKEN}
      account_id: ${OANDA_ACCOUNT_ID}
      instruments: [EUR_USD]
    breaker: {request_timeout: 20, rate_per_second: 5}
oms: {ack_timeout: 30}
"""


@needs_credentials
def test_a_resting_limit_order_is_accepted_and_canceled_on_practice() -> None:
    clock = ManualClock()
    node = Node(parse_config(CONFIG), clock=clock)
    node.start()
    try:
        h = Harness(node, clock)
        client_order_id = h.do(
            lambda ctx: ctx.submit_order(
                "EUR_USD",
                Side.BUY,
                Decimal(1),
                order_type=OrderType.LIMIT,
                price=Decimal("0.50000"),
                venue="oanda",
            )
        )
        h.wait_status(client_order_id, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(client_order_id))
        assert h.wait_status(client_order_id, OrderStatus.CANCELED).status is OrderStatus.CANCELED
    finally:
        node.stop(timeout=20)
