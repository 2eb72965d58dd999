"""A running node whose ``alpaca`` venue is the local fake Alpaca on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from tradenode import Node, parse_config
from tradenode.brokers.alpaca import AlpacaLink
from tradenode.messages import OrderType, Side
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind
from tradenode.testing.venues import AlpacaVenue

from ._node_helpers import VenueHarness, broker_event

D = Decimal
K = SupervisionEventKind
BROKER = "/anode/brokers/alpaca/broker"

VENUE_CONFIG = """
node: {{name: anode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: alpaca
    kind: alpaca
    alpaca:
      environment: custom
      key_id: {key}
      secret_key: {secret}
      rest_url: {rest}
      stream_url: {stream}
      data_url: {data}
      symbols: [{symbols}]
      outside_session: {outside_session}
      extended_hours: {extended_hours}
      request_timeout: {request_timeout}
      check_interval: {check_interval}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class AlpacaHarness(VenueHarness[AlpacaLink, AlpacaVenue]):
    VENUE = "alpaca"
    LINK = AlpacaLink
    BROKER = BROKER


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return broker_event(BROKER, kind, generation)


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms): the market clock, activity
    times and X-Ratelimit-Reset agree with the node's."""
    return lambda: clock.time_ns() // 1_000_000


def data_base(venue: AlpacaVenue) -> str:
    """The market-data base URL (the adapter appends ``/v2/<feed>``)."""
    return venue.data_stream_url("iex").removesuffix("/v2/iex")


def node_config(
    venue: AlpacaVenue,
    *,
    symbols: tuple[str, ...] = ("AAPL", "MSFT"),
    outside_session: str = "deny",
    extended_hours: bool = False,
    request_timeout: float = 5.0,
    check_interval: float = 0.0,
) -> str:
    return VENUE_CONFIG.format(
        key=venue.api_key,
        secret=venue.secret,
        rest=venue.rest_url,
        stream=venue.stream_url,
        data=data_base(venue),
        symbols=", ".join(symbols),
        outside_session=outside_session,
        extended_hours=str(extended_hours).lower(),
        request_timeout=request_timeout,
        check_interval=check_interval,
    )


@contextmanager
def alpaca_node(
    venue: AlpacaVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    **config: Any,
) -> Iterator[AlpacaHarness]:
    clock = clock or ManualClock()
    node = Node(parse_config(node_config(venue, **config) + extra_yaml), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield AlpacaHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, qty: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(qty), venue="alpaca", **kw)


def limit(side: Side, price: str, qty: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(qty), order_type=OrderType.LIMIT, price=D(price), venue="alpaca", **kw
    )
