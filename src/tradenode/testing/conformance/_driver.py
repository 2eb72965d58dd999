"""A running node the suite drives: a scripted strategy, the node's books, the broker's restarts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..._config import NodeConfig, VenueConfig
from ..._node import Node
from ...actors import (
    BrokerReply,
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetPositions,
    Strategy,
    StrategyContext,
    TrackedOrderView,
)
from ...messages import Message, OrderFilled, OrderStatus, OrderType, PositionSnapshot, Side
from ...supervision import EventRecorder, ManualClock, SupervisionEvent, SupervisionEventKind
from ._venue import ConformanceVenue

__all__ = ["Driver", "Rig"]

logger = logging.getLogger("tradenode.conformance")

STRATEGY = "conf"
"""The scripted strategy's id."""

#: The suite's breaker and restart backoff for the venue: no randomness, short delays.
BREAKER = {
    "failure_threshold": 3,
    "open_timeout": 10,
    "request_timeout": 5,
    "max_retries": 2,
    "unknown_outcome_timeout": 8,
}
BACKOFF = {"min_seconds": 0.5, "max_seconds": 2, "random_factor": 0}


@dataclass(frozen=True, slots=True)
class Do:
    """Run ``action(ctx)`` inside the strategy's actor and answer with its result."""

    action: Callable[[StrategyContext], Any]


class Scripted(Strategy):
    """A strategy the suite drives; everything it is told goes to ``seen``."""

    def __init__(self, seen: EventRecorder) -> None:
        self.seen = seen

    def on_order_update(self, event: Message) -> None:
        self.seen(event)

    def on_message(self, message: Any) -> Any:
        if isinstance(message, Do):
            return message.action(self.ctx)
        return None


class Driver:
    """One node incarnation on the venue under test.

    ``seen`` records both the strategy's order updates and the node's
    supervision events, so one wait can take whichever comes first.
    """

    def __init__(self, node: Node, clock: ManualClock, venue: ConformanceVenue) -> None:
        self.node = node
        self.clock = clock
        self.venue = venue
        self.name = venue.name
        self.seen = EventRecorder()
        self.replies = EventRecorder()
        self.broker_path = f"/{node.config.node.name}/brokers/{self.name}/broker"
        node.system.events.subscribe(self.seen)
        node.observe_breaker(self.name, self.replies)
        self.strategy = node.add_strategy(STRATEGY, lambda: Scripted(self.seen))

    # -- the venue --------------------------------------------------------------

    def attach(self) -> None:
        """Add the venue to the node and wait until its broker connected and reconciled
        (a broker is STARTED only once its ``on_start`` has done both)."""
        raw = dict(self.venue.venue_config())
        raw.setdefault("breaker", BREAKER)
        raw.setdefault("backoff", BACKOFF)
        self.node.add_venue(VenueConfig.model_validate(raw), venue=self.venue.provided())
        self.wait_broker(SupervisionEventKind.STARTED)
        self.sync()

    def broker_event(self, kind: SupervisionEventKind, generation: int | None = None) -> Any:
        path = self.broker_path
        return lambda e: (
            isinstance(e, SupervisionEvent)
            and e.kind is kind
            and e.path == path
            and (generation is None or e.generation == generation)
        )

    def wait_broker(
        self, kind: SupervisionEventKind, generation: int | None = None, timeout: float = 20.0
    ) -> SupervisionEvent:
        event: SupervisionEvent = self.seen.wait_for(
            self.broker_event(kind, generation), timeout=timeout
        )[0]
        return event

    def restart_broker(self, generation: int) -> None:
        """Let the supervisor's backoff for ``generation`` elapse; wait for the restart."""
        scheduled = self.wait_broker(SupervisionEventKind.RESTART_SCHEDULED, generation)
        self.clock.advance(scheduled.delay or 0.0)
        self.wait_broker(SupervisionEventKind.RESTARTED, generation)
        self.sync()

    # -- the strategy -------------------------------------------------------------

    def do(self, action: Callable[[StrategyContext], Any]) -> Any:
        return self.strategy.ask(Do(action))

    def submit(
        self,
        side: Side,
        quantity: Decimal,
        order_type: OrderType = OrderType.MARKET,
        **fields: Any,
    ) -> str:
        symbol, venue = self.venue.instrument().symbol, self.name
        coid = self.do(
            lambda ctx: ctx.submit_order(
                symbol, side, quantity, order_type=order_type, venue=venue, **fields
            )
        )
        assert isinstance(coid, str), coid
        return coid

    def limit(self, side: Side, price: Decimal, quantity: Decimal) -> str:
        return self.submit(side, quantity, OrderType.LIMIT, price=price)

    def cancel(self, client_order_id: str) -> None:
        self.do(lambda ctx: ctx.cancel_order(client_order_id))

    def modify(self, client_order_id: str, **terms: Any) -> str | None:
        answer = self.do(lambda ctx: ctx.modify_order(client_order_id, **terms))
        assert answer is None or isinstance(answer, str)
        return answer

    # -- the node's books -----------------------------------------------------------

    def order(self, client_order_id: str) -> TrackedOrderView | None:
        view = self.node.oms.ask(GetOrder(client_order_id))
        return view if isinstance(view, TrackedOrderView) else None

    def status_of(self, client_order_id: str) -> OrderStatus | None:
        view = self.order(client_order_id)
        return None if view is None else view.status

    def wait_status(
        self, client_order_id: str, *statuses: OrderStatus, timeout: float = 20.0
    ) -> TrackedOrderView:
        """Wait until the OMS shows one of ``statuses``, re-checking as the strategy's
        events arrive (the OMS publishes each change after applying it)."""

        def reached(_: object = None) -> bool:
            return self.status_of(client_order_id) in statuses

        if not reached():
            self.seen.wait_for(reached, timeout=timeout)
        view = self.order(client_order_id)
        assert view is not None
        return view

    def fills(self) -> list[OrderFilled]:
        return [
            fill
            for fill in self.node.oms.ask(GetFills())
            if isinstance(fill, OrderFilled) and fill.venue == self.name
        ]

    def position(self, symbol: str | None = None) -> Decimal:
        symbol = symbol or self.venue.instrument().symbol
        for snapshot in self.node.oms.ask(GetPositions(venue=self.name)):
            assert isinstance(snapshot, PositionSnapshot)
            if snapshot.symbol == symbol:
                return snapshot.quantity
        return Decimal(0)

    def open_order_ids(self) -> set[str]:
        return {order.client_order_id for order in self.node.oms.ask(GetOpenOrders(self.name))}

    def connection_status(self) -> Mapping[str, Any]:
        section = self.node.status().get("connections", {}).get(self.name)
        assert isinstance(section, Mapping), self.node.status().get("connections")
        return section

    def sync(self, *, brokers: bool = True, timeout: float = 30.0) -> None:
        """Every actor has handled everything sent before this call, and whatever that
        caused, and no broker has a request on the wire (the adapter's answers
        included, however concurrently it runs them): the node is quiescent, so the
        clock may move. ``brokers`` no longer matters (a broker awaiting its restart
        is idle: the barrier needs no answer from it); it stays for callers that
        still pass ``brokers=False``."""
        del brokers
        self.node.system.wait_quiescent(timeout)

    def replies_seen(self, predicate: Callable[[BrokerReply], bool]) -> list[BrokerReply]:
        return [reply for reply in self.replies.items if predicate(reply)]


class Rig:
    """The venue under test, its clock, its journal, and the node incarnations on it."""

    def __init__(self, venue: ConformanceVenue, clock: ManualClock, workdir: Path) -> None:
        self.venue = venue
        self.clock = clock
        self.workdir = workdir
        self.journal = workdir / "journal"
        self.running: list[Driver] = []

    def config(self) -> NodeConfig:
        return NodeConfig.model_validate(
            {
                "node": {
                    "name": "conformance",
                    "seed": 5,
                    "intensity": {"max_restarts": 50, "within_seconds": 60},
                },
                "broker_backoff": BACKOFF,
                "oms": {"ack_timeout": 30},
                "journal": {"path": str(self.journal), "fsync": "every_record"},
            }
        )

    def start_node(self) -> Driver:
        """A node on the journal with the venue attached and connected."""
        node = Node(self.config(), clock=self.clock)
        node.start()
        driver = Driver(node, self.clock, self.venue)
        self.running.append(driver)
        driver.attach()
        return driver

    def stop_node(self, driver: Driver) -> None:
        if driver in self.running:
            self.running.remove(driver)
            driver.node.stop(timeout=20)

    def close(self) -> None:
        for driver in list(self.running):
            self.stop_node(driver)
