"""A running node whose ``oanda`` venue is the local fake OANDA on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx

from tradenode import Node, parse_config
from tradenode.actors import GetFills, GetPositions
from tradenode.brokers.oanda import OandaLink
from tradenode.messages import OrderType, PositionSnapshot, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.venues import OandaVenue

from ._node_helpers import Harness

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


class OandaHarness(Harness):
    def __init__(
        self, node: Node, clock: ManualClock, venue: OandaVenue, supervision: EventRecorder
    ) -> None:
        super().__init__(node, clock)
        self.venue = venue
        self.supervision = supervision
        """Every supervision event since before the node started."""

    def position(self, symbol: str, venue: str = "oanda") -> Decimal:
        for snapshot in self.node.oms.ask(GetPositions(venue=venue)):
            assert isinstance(snapshot, PositionSnapshot)
            if snapshot.symbol == symbol:
                return snapshot.quantity
        return Decimal(0)

    def restart(self, generation: int) -> None:
        """Let the supervisor's backoff for ``generation`` elapse and wait for the restart."""
        scheduled = self.supervision.wait_for(event(K.RESTART_SCHEDULED, generation))[0]
        self.clock.advance(scheduled.delay)
        self.supervision.wait_for(event(K.RESTARTED, generation))

    def link(self) -> OandaLink:
        """The venue's runtime object: cursor, positions and counters across restarts."""
        link = self.node.venues["oanda"]
        assert isinstance(link, OandaLink)
        return link

    def periodic_check(self, interval: float = 30.0) -> None:
        """Move the clock one ``check_interval`` and wait until the reconciliation it
        starts has been applied, and the OMS has seen it."""
        link = self.link()
        done = link.reconciliations
        self.clock.advance(interval)
        assert link.wait_for_reconciliations(done + 1, timeout=10)
        self.sync()

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

    def fills(self) -> list[Any]:
        return [f for f in self.node.oms.ask(GetFills()) if f.venue == "oanda"]


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == BROKER
        and (generation is None or e.generation == generation)
    )


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
