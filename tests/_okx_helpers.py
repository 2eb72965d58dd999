"""A running node whose ``okx`` venue is the local fake OKX on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from tradenode import Node, parse_config
from tradenode.actors import GetFills, GetPositions
from tradenode.brokers.okx import OkxLink
from tradenode.messages import OrderType, PositionSnapshot, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.venues import OkxVenue

from ._node_helpers import Harness

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


class OkxHarness(Harness):
    def __init__(
        self, node: Node, clock: ManualClock, venue: OkxVenue, supervision: EventRecorder
    ) -> None:
        super().__init__(node, clock)
        self.venue = venue
        self.supervision = supervision
        """Every supervision event since before the node started."""

    def position(self, symbol: str, venue: str = "okx") -> Decimal:
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

    def link(self) -> OkxLink:
        link = self.node.venues["okx"]
        assert isinstance(link, OkxLink)
        return link

    def periodic_check(self, interval: float = 30.0) -> None:
        """Move the clock one ``check_interval`` and wait until the reconciliation it
        starts has been applied, and the OMS has seen it."""
        link = self.link()
        done = link.reconciliations
        self.clock.advance(interval)
        assert link.wait_for_reconciliations(done + 1, timeout=10)
        self.sync()

    def fills(self) -> list[Any]:
        return [f for f in self.node.oms.ask(GetFills()) if f.venue == "okx"]


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == BROKER
        and (generation is None or e.generation == generation)
    )


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
