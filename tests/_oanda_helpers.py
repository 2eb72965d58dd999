"""A running node whose ``oanda`` venue is the local fake OANDA on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx

from tradenode import Node, parse_config
from tradenode.brokers.oanda import OandaLink
from tradenode.messages import OrderType, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
)
from tradenode.testing.venues import OandaVenue

from ._node_helpers import VenueHarness, broker_event

D = Decimal
K = SupervisionEventKind
BROKER = "/onode/brokers/oanda/broker"

VENUE_CONFIG = """
node: {{name: onode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: oanda
    kind: oanda
    oanda:
      environment: custom
      token: {token}
      account_id: {account}
      rest_url: {rest}
      stream_url: {stream}
      instruments: [{instruments}]
      request_timeout: {request_timeout}
      stream_timeout: {stream_timeout}
      connection_spacing: 0
      check_interval: {check_interval}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class OandaHarness(VenueHarness[OandaLink, OandaVenue]):
    VENUE = "oanda"
    LINK = OandaLink
    BROKER = BROKER

    def place_directly(self, units: str, instrument: str = "EUR_USD") -> dict[str, Any]:
        """A MARKET order placed by another client of the account (no client id)."""
        order = {"type": "MARKET", "instrument": instrument, "units": units}
        with httpx.Client() as http:
            answer = http.post(
                f"{self.venue.rest_url}/v3/accounts/{self.venue.account_id}/orders",
                json={"order": order},
                headers={"Authorization": f"Bearer {self.venue.token}"},
            )
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return broker_event(BROKER, kind, generation)


def node_config(
    venue: OandaVenue,
    *,
    instruments: tuple[str, ...] = ("EUR_USD", "USD_JPY"),
    request_timeout: float = 5.0,
    stream_timeout: float = 30.0,
    check_interval: float = 0.0,
) -> str:
    return VENUE_CONFIG.format(
        token=venue.token,
        account=venue.account_id,
        rest=venue.rest_url,
        stream=venue.stream_url,
        instruments=", ".join(instruments),
        request_timeout=request_timeout,
        stream_timeout=stream_timeout,
        check_interval=check_interval,
    )


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms): GTD, Retry-After agree."""
    return lambda: clock.time_ns() // 1_000_000


@contextmanager
def oanda_node(
    venue: OandaVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    config_text: str | None = None,
    **config: Any,
) -> Iterator[OandaHarness]:
    clock = clock or ManualClock()
    text = config_text if config_text is not None else node_config(venue, **config)
    node = Node(parse_config(text + extra_yaml), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield OandaHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, units: str, symbol: str = "EUR_USD", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(units), venue="oanda", **kw)


def limit(side: Side, price: str, units: str, symbol: str = "EUR_USD", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(units), order_type=OrderType.LIMIT, price=D(price), venue="oanda", **kw
    )


def triggered(
    kind: OrderType, side: Side, trigger: str, units: str, symbol: str = "EUR_USD", **kw: Any
) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(units), order_type=kind, stop_price=D(trigger), venue="oanda", **kw
    )
