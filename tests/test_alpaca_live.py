"""The Alpaca adapter against Alpaca's real paper trading API.

Opt in with ``pytest -m live`` and ``ALPACA_API_KEY_ID`` / ``ALPACA_API_SECRET_KEY``
(a paper account's key pair) in the environment; skipped otherwise. CI never
runs these: they need the network and credentials.
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

KEY_ID = os.environ.get("ALPACA_API_KEY_ID")
SECRET = os.environ.get("ALPACA_API_SECRET_KEY")

needs_credentials = pytest.mark.skipif(
    not (KEY_ID and SECRET), reason="ALPACA_API_KEY_ID/ALPACA_API_SECRET_KEY not set"
)

CONFIG = """
node: {name: live, seed: 1}
broker_backoff: {min_seconds: 2, max_seconds: 30, random_factor: 0.2}
venues:
  - name: alpaca
    kind: alpaca
    alpaca:
      environment: paper
      key_id: ${ALPACA_API_KEY_ID}
      secret_key: ${ALPACA_API_SECRET_KEY}
      symbols: [AAPL]
      # GTC below: accepted (queued) whether or not the session is open.
      outside_session: queue
      check_interval: 0
    breaker: {request_timeout: 20, rate_per_second: 2}
oms: {ack_timeout: 30}
"""


@needs_credentials
def test_a_resting_limit_order_is_accepted_looked_up_and_canceled_on_paper() -> None:
    clock = ManualClock()
    node = Node(parse_config(CONFIG), clock=clock)
    node.start()
    try:
        h = Harness(node, clock)
        client_order_id = h.do(
            lambda ctx: ctx.submit_order(
                "AAPL",
                Side.BUY,
                Decimal(1),
                order_type=OrderType.LIMIT,
                price=Decimal("1.00"),  # far below the market: it rests
                venue="alpaca",
            )
        )
        view = h.wait_status(client_order_id, OrderStatus.ACCEPTED)
        assert view.venue_order_id is not None
        h.do(lambda ctx: ctx.cancel_order(client_order_id))
        assert h.wait_status(client_order_id, OrderStatus.CANCELED).status is OrderStatus.CANCELED
    finally:
        node.stop(timeout=20)
