"""A running node whose ``binance`` venue is the local fake Binance on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from tradenode import Node, parse_config
from tradenode.actors import GetPositions
from tradenode.messages import OrderType, PositionSnapshot, Side, SubmitOrder
from tradenode.supervision import ManualClock
from tradenode.testing.venues import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    BinanceVenue,
)

from ._node_helpers import Harness

D = Decimal

VENUE_CONFIG = """
node: {{name: bnode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: binance
    kind: binance
    binance:
      environment: custom
      api_key: {key}
      api_secret: {secret}
      rest_url: {rest}
      ws_api_url: {ws_api}
      stream_url: {stream}
      symbols: [BTCUSDT, ETHUSDT]
      request_timeout: {request_timeout}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class BinanceHarness(Harness):
    def __init__(self, node: Node, clock: ManualClock, venue: BinanceVenue) -> None:
        super().__init__(node, clock)
        self.venue = venue

    def position(self, symbol: str, venue: str = "binance") -> Decimal:
        for snapshot in self.node.oms.ask(GetPositions(venue=venue)):
            assert isinstance(snapshot, PositionSnapshot)
            if snapshot.symbol == symbol:
                return snapshot.quantity
        return Decimal(0)

    def periodic_check(self, interval: float = 30.0) -> None:
        """Move the clock one ``check_interval`` and wait until the broker's periodic
        reconciliation it starts has been applied, and the OMS has seen it."""
        link = self.node.venues["binance"]
        done = link.reconciliations
        self.clock.advance(interval)
        assert link.wait_for_reconciliations(done + 1, timeout=10)
        self.sync()

    def venue_base_change(self, asset: str, initial: Decimal) -> Decimal:
        free, locked = self.venue.balances()[asset]
        return free + locked - initial


def node_config(
    venue: BinanceVenue, *, secret: str = DEFAULT_API_SECRET, request_timeout: float = 5.0
) -> str:
    return VENUE_CONFIG.format(
        request_timeout=request_timeout,
        key=DEFAULT_API_KEY,
        secret=secret,
        rest=venue.rest_url,
        ws_api=venue.ws_api_url,
        stream=venue.stream_url,
    )


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the same manual clock as the node: Retry-After, bans and
    recvWindow then mean the same seconds on both sides of the socket."""
    return lambda: clock.time_ns() // 1_000_000


@contextmanager
def binance_node(
    venue: BinanceVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    request_timeout: float = 5.0,
) -> Iterator[BinanceHarness]:
    clock = clock or ManualClock()
    text = node_config(venue, request_timeout=request_timeout) + extra_yaml
    node = Node(parse_config(text), clock=clock)
    node.start()
    try:
        yield BinanceHarness(node, clock, venue)
    finally:
        node.stop(timeout=20)


def market(side: Side, quantity: str, symbol: str = "BTCUSDT") -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(quantity), venue="binance")


def limit(side: Side, price: str, quantity: str, symbol: str = "BTCUSDT", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol,
        side,
        D(quantity),
        order_type=OrderType.LIMIT,
        price=D(price),
        venue="binance",
        **kw,
    )


def place_directly(venue: BinanceVenue, clock: ManualClock, order: SubmitOrder) -> dict[str, Any]:
    """Place ``order`` at the venue over its REST API as another client would (or a
    crashed node had): MARKET, or LIMIT GTC at its price. Returns Binance's answer."""
    import hashlib
    import hmac
    import urllib.parse

    import httpx

    params = [
        ("symbol", order.symbol),
        ("side", order.side.value),
        ("type", order.order_type.value),
        ("quantity", str(order.quantity)),
        ("newClientOrderId", order.client_order_id),
        ("timestamp", str(clock.time_ns() // 1_000_000)),
    ]
    if order.order_type is OrderType.LIMIT:
        assert order.price is not None
        params[3:3] = [("timeInForce", "GTC"), ("price", str(order.price))]
    query = urllib.parse.urlencode(params)
    signature = hmac.new(DEFAULT_API_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    with httpx.Client() as http:
        answer = http.post(
            f"{venue.rest_url}/api/v3/order?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": DEFAULT_API_KEY},
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait_until_held(venue: BinanceVenue, endpoint: str, timeout: float = 10.0) -> None:
    """Until the venue holds a request to ``endpoint`` (a ``delay_requests`` knob)."""
    # The held requests show only on the venue's admin view ("faults"): read it directly.
    faults = venue._faults
    venue.wait_for(lambda: endpoint in faults.pending()["holding"], timeout, f"holding {endpoint}")
