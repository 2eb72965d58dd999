"""The IB adapter against a real paper TWS or IB Gateway.

Opt in with ``pytest -m live`` and ``IB_HOST`` / ``IB_PORT`` / ``IB_CLIENT_ID``
(and ``IB_ACCOUNT`` for a login with several accounts) in the environment,
pointing at a logged-in *paper* session with API access enabled; skipped
otherwise. CI never runs these: they need a TWS and a login. The order rests
far from the market and is cancelled, so nothing trades.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from tradenode import Node, parse_config
from tradenode.brokers.ibkr import IbkrLink
from tradenode.messages import OrderStatus, OrderType, Side
from tradenode.supervision import ManualClock

from ._node_helpers import Harness

pytestmark = pytest.mark.live

HOST = os.environ.get("IB_HOST")
PORT = os.environ.get("IB_PORT")
CLIENT_ID = os.environ.get("IB_CLIENT_ID")

needs_tws = pytest.mark.skipif(
    not (HOST and PORT and CLIENT_ID), reason="IB_HOST/IB_PORT/IB_CLIENT_ID not set"
)

CONFIG = """
node: {name: live, seed: 1}
broker_backoff: {min_seconds: 2, max_seconds: 30, random_factor: 0.2}
venues:
  - name: ibkr
    kind: ibkr
    ibkr:
      host: ${IB_HOST}
      port: ${IB_PORT}
      client_id: ${IB_CLIENT_ID}
      account: ${IB_ACCOUNT:-}
      market_data_type: 3
      instruments:
        AAPL: {sec_type: STK, symbol: AAPL, exchange: SMART, primary_exchange: NASDAQ}
    breaker: {request_timeout: 20, rate_per_second: 5}
oms: {ack_timeout: 30}
"""


@needs_tws
def test_a_resting_limit_order_is_accepted_and_cancelled_on_paper() -> None:
    clock = ManualClock()
    node = Node(parse_config(CONFIG), clock=clock)
    node.start()
    try:
        link = node.venues["ibkr"]
        assert isinstance(link, IbkrLink) and link.reconciliations >= 1
        h = Harness(node, clock)
        client_order_id = h.do(
            lambda ctx: ctx.submit_order(
                "AAPL",
                Side.BUY,
                Decimal(1),
                order_type=OrderType.LIMIT,
                price=Decimal("1.00"),
                venue="ibkr",
            )
        )
        h.wait_status(client_order_id, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(client_order_id))
        assert h.wait_status(client_order_id, OrderStatus.CANCELED).status is OrderStatus.CANCELED
    finally:
        node.stop(timeout=20)
