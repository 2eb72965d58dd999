"""A running node on paper venues, driven at the message level."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

from tradenode import Node, parse_config
from tradenode.actors import (
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetPositions,
    Strategy,
    StrategyContext,
    TrackedOrderView,
)
from tradenode.brokers import BrokerLink
from tradenode.messages import Message, OrderStatus, PositionSnapshot, Quote
from tradenode.supervision import (
    Address,
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)

BASE_CONFIG = """
node: {name: testnode, seed: 5, intensity: {max_restarts: 20, within_seconds: 60}}
broker_backoff: {min_seconds: 0.5, max_seconds: 4, random_factor: 0}
venues:
  - {name: paper, paper: {tick_interval_ms: 1000}, breaker: {failure_threshold: 3, open_timeout: 10, request_timeout: 5, max_retries: 2}}
  - {name: paper2, paper: {tick_interval_ms: 1000, amend: cancel_replace}}
oms: {ack_timeout: 30}
"""


@dataclass(frozen=True)
class Do:
    """Run ``action(ctx)`` inside the strategy's actor and answer with its result."""

    action: Callable[[StrategyContext], Any]


class Scripted(Strategy):
    """A strategy the test drives; it records everything it is told."""

    def __init__(
        self, strategy_id: str, seen: EventRecorder, *, symbols: tuple[str, ...] = ()
    ) -> None:
        self.strategy_id = strategy_id
        self.seen = seen
        self.symbols = symbols

    def on_quote(self, quote: Quote) -> None:
        self.seen(quote)

    def on_order_update(self, event: Message) -> None:
        self.seen(event)

    def on_message(self, message: Any) -> Any:
        if isinstance(message, Do):
            return message.action(self.ctx)
        return None


class Harness:
    def __init__(self, node: Node, clock: ManualClock) -> None:
        self.node = node
        self.clock = clock
        self.strategies: dict[str, tuple[Address, EventRecorder]] = {}

    def strategy(self, strategy_id: str = "s1", **kwargs: Any) -> tuple[Address, EventRecorder]:
        if strategy_id not in self.strategies:
            seen = EventRecorder()
            address = self.node.add_strategy(
                strategy_id, lambda: Scripted(strategy_id, seen, **kwargs)
            )
            self.strategies[strategy_id] = (address, seen)
        return self.strategies[strategy_id]

    def do(self, action: Callable[[StrategyContext], Any], strategy_id: str = "s1") -> Any:
        address, _ = self.strategy(strategy_id)
        return address.ask(Do(action))

    def events(self, strategy_id: str = "s1") -> EventRecorder:
        return self.strategy(strategy_id)[1]

    def wait_for(
        self,
        kind: type,
        client_order_id: str | None = None,
        count: int = 1,
        strategy_id: str = "s1",
    ) -> list[Any]:
        return self.events(strategy_id).wait_for(
            lambda m: (
                isinstance(m, kind)
                and (
                    client_order_id is None
                    or getattr(m, "client_order_id", None) == client_order_id
                )
            ),
            count=count,
        )

    def order(self, client_order_id: str) -> TrackedOrderView:
        view = self.node.oms.ask(GetOrder(client_order_id))
        assert isinstance(view, TrackedOrderView), view
        return view

    def wait_status(
        self, client_order_id: str, status: OrderStatus, strategy_id: str = "s1"
    ) -> TrackedOrderView:
        """Wait until the OMS shows ``status``, re-checking as the strategy's events arrive
        (the OMS publishes each change after applying it)."""

        def reached(_: object) -> bool:
            view = self.node.oms.ask(GetOrder(client_order_id))
            return isinstance(view, TrackedOrderView) and view.status is status

        # Subscribed before the first look: a change published between the look
        # and the subscription would otherwise never wake the wait.
        events = self.events(strategy_id)
        if not reached(None):
            events.wait_for(reached)
        return self.order(client_order_id)

    def position(self, symbol: str, venue: str = "paper") -> Decimal:
        for snapshot in self.node.oms.ask(GetPositions(venue=venue)):
            assert isinstance(snapshot, PositionSnapshot)
            if snapshot.symbol == symbol:
                return snapshot.quantity
        return Decimal(0)

    def open_orders(self, venue: str | None = None) -> tuple[Any, ...]:
        return tuple(self.node.oms.ask(GetOpenOrders(venue=venue)))

    def sync(self, timeout: float = 30.0) -> None:
        """Every actor has handled everything sent before this call, and whatever that
        caused, and no broker has a request on the wire: the node is quiescent."""
        self.node.system.wait_quiescent(timeout)


@contextmanager
def running_node(extra_yaml: str = "", *, clock: ManualClock | None = None) -> Iterator[Harness]:
    clock = clock or ManualClock()
    node = Node(parse_config(BASE_CONFIG + extra_yaml), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=10)


@contextmanager
def node_from_file(
    config_file: Path, clock: ManualClock, environ: Mapping[str, str]
) -> Iterator[Harness]:
    """A node started from a config file as ``tradenode run`` reads it (``${ENV}``
    references from ``environ``), stopped when the block ends."""
    node = Node(parse_config(config_file.read_text(), environ=dict(environ)), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=20)


LinkT = TypeVar("LinkT", bound=BrokerLink)
VenueT = TypeVar("VenueT")


def broker_event(path: str, kind: SupervisionEventKind, generation: int | None = None) -> Any:
    """A predicate for the supervision event ``kind`` of the broker at ``path``."""
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == path
        and (generation is None or e.generation == generation)
    )


class VenueHarness(Harness, Generic[LinkT, VenueT]):
    """A node with one venue adapter against its local fake venue.

    A subclass names the venue (``VENUE``), its link type (``LINK``) and the
    broker's supervision path (``BROKER``); the harness keeps every
    supervision event since before the node started (``supervision``).
    """

    VENUE: str
    LINK: type[LinkT]
    BROKER: str

    def __init__(
        self, node: Node, clock: ManualClock, venue: VenueT, supervision: EventRecorder
    ) -> None:
        super().__init__(node, clock)
        self.venue = venue
        self.supervision = supervision
        """Every supervision event since before the node started."""

    def event(self, kind: SupervisionEventKind, generation: int | None = None) -> Any:
        return broker_event(self.BROKER, kind, generation)

    def position(self, symbol: str, venue: str | None = None) -> Decimal:
        for snapshot in self.node.oms.ask(GetPositions(venue=venue or self.VENUE)):
            assert isinstance(snapshot, PositionSnapshot)
            if snapshot.symbol == symbol:
                return snapshot.quantity
        return Decimal(0)

    def restart(self, generation: int) -> None:
        """Let the supervisor's backoff for ``generation`` elapse and wait for the restart."""
        kind = SupervisionEventKind
        scheduled = self.supervision.wait_for(self.event(kind.RESTART_SCHEDULED, generation))[0]
        self.clock.advance(scheduled.delay)
        self.supervision.wait_for(self.event(kind.RESTARTED, generation))

    def link(self) -> LinkT:
        """The venue's runtime object: cursors, positions and counters across restarts."""
        link = self.node.venues[self.VENUE]
        assert isinstance(link, self.LINK)
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
        return [f for f in self.node.oms.ask(GetFills()) if f.venue == self.VENUE]


class _MalformedWatch(logging.Handler):
    def __init__(self, link: BrokerLink) -> None:
        super().__init__(logging.ERROR)
        self.link = link
        self.condition = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.condition:
            self.condition.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> None:
        with self.condition:
            reached = self.condition.wait_for(
                lambda: self.link.malformed_payloads >= count, timeout
            )
        assert reached, f"malformed_payloads is {self.link.malformed_payloads}, not {count}"


@contextmanager
def malformed_watch(link: BrokerLink) -> Iterator[_MalformedWatch]:
    """A waiter for ``link.malformed_payloads``: a broker logs each payload it drops
    right after counting it (``note_malformed``), so every such log line wakes the
    waiter to look again; waiting on the count, never sleeping."""
    watch = _MalformedWatch(link)
    logger = logging.getLogger("tradenode.brokers")
    logger.addHandler(watch)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
