"""A running node whose ``ibkr`` venue is the local TWS (``IbkrVenue``) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from tradenode import Node, parse_config
from tradenode.actors import GetFills, GetPositions
from tradenode.brokers.ibkr import IbkrLink
from tradenode.messages import OrderType, PositionSnapshot, Side
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.venues import IbkrVenue

from ._node_helpers import Harness

D = Decimal
K = SupervisionEventKind
BROKER = "/inode/brokers/ibkr/broker"
CLIENT_ID = 7

#: Our symbol -> the local TWS's localSymbol (how its positions() names them).
LOCAL_SYMBOLS = {
    "AAPL": "AAPL",
    "EURUSD": "EUR.USD",
    "ESZ6": "ESZ6",
    "AAPL-C200": "AAPL  261218C00200000",
}

INSTRUMENTS = """
      instruments:
        AAPL: {sec_type: STK, symbol: AAPL, exchange: SMART, primary_exchange: NASDAQ}
        EURUSD: {sec_type: CASH, symbol: EUR, currency: USD, exchange: IDEALPRO}
        ESZ6: {sec_type: FUT, symbol: ES, exchange: CME, expiry: "202612", multiplier: "50"}
        AAPL-C200:
          sec_type: OPT
          symbol: AAPL
          expiry: "20261218"
          right: C
          strike: 200
          multiplier: "100"
"""

VENUE_CONFIG = """
node: {{name: inode, seed: 3, intensity: {{max_restarts: 50, within_seconds: 60}}}}
broker_backoff: {{min_seconds: 0.5, max_seconds: 2, random_factor: 0}}
venues:
  - name: ibkr
    kind: ibkr
    ibkr:
      host: {host}
      port: {port}
      client_id: {client_id}
      account: {account}
      request_timeout: {request_timeout}
      connect_timeout: 10
{instruments}
    breaker: {{failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
oms: {{ack_timeout: 30}}
"""


class IbkrHarness(Harness):
    def __init__(
        self, node: Node, clock: ManualClock, venue: IbkrVenue, supervision: EventRecorder
    ) -> None:
        super().__init__(node, clock)
        self.venue = venue
        self.supervision = supervision
        """Every supervision event since before the node started."""

    def position(self, symbol: str, venue: str = "ibkr") -> Decimal:
        for snapshot in self.node.oms.ask(GetPositions(venue=venue)):
            assert isinstance(snapshot, PositionSnapshot)
            if snapshot.symbol == symbol:
                return snapshot.quantity
        return Decimal(0)

    def venue_position(self, symbol: str) -> Decimal:
        return self.venue.positions().get(LOCAL_SYMBOLS[symbol], Decimal(0))

    def restart(self, generation: int) -> None:
        """Let the supervisor's backoff for ``generation`` elapse and wait for the restart."""
        scheduled = self.supervision.wait_for(event(K.RESTART_SCHEDULED, generation))[0]
        self.clock.advance(scheduled.delay)
        self.supervision.wait_for(event(K.RESTARTED, generation))

    def link(self) -> IbkrLink:
        link = self.node.venues["ibkr"]
        assert isinstance(link, IbkrLink)
        return link

    def fills(self) -> list[Any]:
        return [f for f in self.node.oms.ask(GetFills()) if f.venue == "ibkr"]


def assert_exactly_once(h: IbkrHarness) -> None:
    """Every execution the venue made reached the OMS once; positions equal the venue's;
    no orderRef was placed twice (new placements: a modification is not one)."""
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    at_venue = {str(f["execId"]).rsplit(".", 1)[0] for f in h.venue.fills()}
    assert set(executions) == at_venue
    for symbol in LOCAL_SYMBOLS:
        assert h.position(symbol) == h.venue_position(symbol), symbol
    placed = h.venue.placements()
    assert all(count == 1 for count in placed.values()), placed


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == BROKER
        and (generation is None or e.generation == generation)
    )


def node_config(
    venue: IbkrVenue,
    *,
    request_timeout: float = 5.0,
    instruments: str = INSTRUMENTS,
    client_id: int = CLIENT_ID,
) -> str:
    return VENUE_CONFIG.format(
        host=venue.host,
        port=venue.port,
        client_id=client_id,
        account=venue.account,
        request_timeout=request_timeout,
        instruments=instruments,
    )


def venue_clock(clock: ManualClock) -> Any:
    """The venue reads the node's manual clock (epoch ms)."""
    return lambda: clock.time_ns() // 1_000_000


@contextmanager
def ibkr_node(
    venue: IbkrVenue,
    extra_yaml: str = "",
    *,
    clock: ManualClock | None = None,
    **config: Any,
) -> Iterator[IbkrHarness]:
    clock = clock or ManualClock()
    text = node_config(venue, **config) + extra_yaml
    node = Node(parse_config(text), clock=clock)
    supervision = EventRecorder()
    node.system.events.subscribe(supervision)
    node.start()
    try:
        yield IbkrHarness(node, clock, venue, supervision)
    finally:
        node.stop(timeout=20)


def market(side: Side, quantity: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(quantity), venue="ibkr", **kw)


def limit(side: Side, price: str, quantity: str, symbol: str = "AAPL", **kw: Any) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(quantity), order_type=OrderType.LIMIT, price=D(price), venue="ibkr", **kw
    )
