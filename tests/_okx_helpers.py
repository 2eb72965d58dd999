"""A running node whose ``okx`` venue is the local fake OKX on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from tradenode import Node, parse_config
from tradenode.brokers.okx import OkxLink
from tradenode.messages import OrderType, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
)
from tradenode.testing.venues import OkxVenue

from ._node_helpers import VenueHarness, broker_event

D = Decimal
K = SupervisionEventKind
BROKER = "/xnode/brokers/okx/broker"

VENUE_CONFIG = """
node: {{name: xnode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: okx
    kind: okx
    okx:
      environment: custom
      api_key: {api_key}
      api_secret: {secret}
      passphrase: {passphrase}
      rest_url: {rest}
      ws_private_url: {private}
      ws_public_url: {public}
      symbols: [{symbols}]
      ws_orders: {ws_orders}
      request_timeout: {request_timeout}
      check_interval: {check_interval}
      ping_interval: {ping_interval}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class OkxHarness(VenueHarness[OkxLink, OkxVenue]):
    VENUE = "okx"
    LINK = OkxLink
    BROKER = BROKER


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return broker_event(BROKER, kind, generation)


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms): expTime and Retry-After agree."""
    return lambda: clock.time_ns() // 1_000_000


def node_config(
    venue: OkxVenue,
    *,
    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT"),
    ws_orders: bool = True,
    request_timeout: float = 5.0,
    check_interval: float = 0.0,
    ping_interval: float = 20.0,
) -> str:
    return VENUE_CONFIG.format(
        api_key=venue.api_key,
        secret=venue.secret,
        passphrase=venue.passphrase,
        rest=venue.rest_url,
        private=venue.ws_private_url,
        public=venue.ws_public_url,
        symbols=", ".join(symbols),
        ws_orders="true" if ws_orders else "false",
        request_timeout=request_timeout,
        check_interval=check_interval,
        ping_interval=ping_interval,
    )


@contextmanager
def okx_node(
    venue: OkxVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    **config: Any,
) -> Iterator[OkxHarness]:
    clock = clock or ManualClock()
    node = Node(parse_config(node_config(venue, **config) + extra_yaml), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield OkxHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, size: str, symbol: str = "BTC-USDT", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(size), venue="okx", **kw)


def limit(side: Side, price: str, size: str, symbol: str = "BTC-USDT", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(size), order_type=OrderType.LIMIT, price=D(price), venue="okx", **kw
    )
