"""Where user strategies live: one supervised actor per strategy.

A strategy gets quotes, order updates and fills, and acts through its
context: orders, cancels, modifications and the seed API's
``ExecutionDecision``. Each strategy runs in its own actor so that one that
raises is restarted alone; the orders it already placed stay tracked by the
OMS, and its new incarnation reads its positions back from the OMS.

Client order ids fit the rules of the venue each order goes to
(``VenueCapabilities.client_ids``): ``<run tag><strategy id><incarnation>-<n>``
where the venue takes that shape, a compact id otherwise (see
``ClientOrderIds``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .._config import AUTO_VENUE
from ..messages._enums import DecisionAction, DenialCode, OrderType, Side, TimeInForce
from ..messages._execution import AlgoParams, CancelParentOrder, ParentDenied, SubmitParentOrder
from ..messages._messages import (
    CancelOrder,
    ExecutionDecision,
    Message,
    ModifyOrder,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionSnapshot,
    Quote,
    SubmitOrder,
)
from ..supervision import Actor, Address
from ._capabilities import ClientIdRules, MarketDataKind, VenueCapabilities
from ._client_ids import ClientOrderIdFamily, ClientOrderIds, base36
from ._contract import QuoteSubscription
from ._control import GetOpenOrders, GetPositions, Routed, Subscribe
from ._directory import Directory
from ._execution_modes import DirectLane, ThroughRouter
from ._routing import FailedOver, OpenLane, RoutedAs, is_transport_refusal

__all__ = ["Strategy", "StrategyActor", "StrategyContext"]

logger = logging.getLogger("tradenode.strategy")

_TERMINAL_EVENTS = (OrderCanceled, OrderExpired, OrderRejected, OrderDenied)

# Module aliases for the decision path: reading a member off an enum class goes
# through the enum type's Python-level ``__getattr__`` (several times a plain read).
_HOLD = DecisionAction.HOLD
_LONG = DecisionAction.LONG
_SHORT = DecisionAction.SHORT
_BUY = Side.BUY
_SELL = Side.SELL
_ZERO = Decimal(0)

_VIA_ROUTER = (SubmitOrder, CancelOrder, ModifyOrder, SubmitParentOrder, CancelParentOrder)
"""What a strategy sends through the router (execution mode, approvals, routing)."""


class Strategy:
    """Subclass and override the hooks you need. A fresh instance per incarnation."""

    strategy_id: str = "strategy"
    venue: str = "paper"
    symbols: tuple[str, ...] = ()
    cycle_time_ms: int | None = None

    ctx: StrategyContext

    def on_start(self) -> None:
        """Called once the context is ready; subscribe, warm up, place initial orders."""

    def on_quote(self, quote: Quote) -> None:
        """A new best bid/ask for one of ``symbols``."""

    def on_order_update(self, event: Message) -> None:
        """Any lifecycle event of one of this strategy's orders (fills included)."""

    def record_execution(self, fill: OrderFilled) -> None:
        """Each fill of this strategy's orders (the seed API's callback)."""

    def on_cycle(self) -> None:
        """Every ``cycle_time_ms`` when set."""

    def on_message(self, message: Any) -> Any:
        """Any other message told or asked to the strategy's actor; the return value answers an ask."""
        return None

    def on_stop(self) -> None:
        """The incarnation ends (restart or stop)."""


@dataclass
class _View:
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    open_orders: dict[str, SubmitOrder] = field(default_factory=dict)
    filled: dict[str, Decimal] = field(default_factory=dict)
    quotes: dict[tuple[str, str], Quote] = field(default_factory=dict)


class StrategyContext:
    """What a strategy can see and do; every action is a message to the risk guard."""

    def __init__(self, actor: StrategyActor) -> None:
        self._actor = actor

    @property
    def strategy_id(self) -> str:
        return self._actor.strategy.strategy_id

    def now_ns(self) -> int:
        return self._actor.context.now_ns()

    def position(self, symbol: str, venue: str | None = None) -> Decimal:
        """Signed position; on venue ``auto``, the instrument's across every venue
        listing it (its orders are routed to any of them)."""
        positions = self._actor.view.positions
        return sum(
            (positions.get(key, Decimal(0)) for key in self._actor.keys(symbol, venue)),
            Decimal(0),
        )

    def last_quote(self, symbol: str, venue: str | None = None) -> Quote | None:
        """The last quote; on venue ``auto``, of the first listing (in the instrument's
        order) that has one."""
        quotes = self._actor.view.quotes
        for key in self._actor.keys(symbol, venue):
            if key in quotes:
                return quotes[key]
        return None

    def open_orders(self) -> dict[str, SubmitOrder]:
        return dict(self._actor.view.open_orders)

    def venue_capabilities(self, venue: str | None = None) -> VenueCapabilities | None:
        """What the venue declares it can do (order types, time in force, post-only,
        fractional quantities, ...); None while it is not connected."""
        entry = self._actor.directory.venue(venue or self._actor.strategy.venue)
        return None if entry is None else entry.capabilities

    def submit_order(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_offset: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        expire_time_ns: int | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        venue: str | None = None,
        display_quantity: Decimal | None = None,
    ) -> str:
        """Send an order for risk checks; returns its client order id.

        Invalid arguments never raise into the strategy: the order is denied
        with ``INVALID_ORDER`` and the reason, like any other denial.
        ``display_quantity`` makes a LIMIT GTC order a native iceberg, where
        the venue declares one (else denied ``UNSUPPORTED_BY_VENUE``).
        """
        return self._actor.submit(
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            price=price,
            stop_price=stop_price,
            trailing_offset=trailing_offset,
            time_in_force=time_in_force,
            expire_time_ns=expire_time_ns,
            post_only=post_only,
            reduce_only=reduce_only,
            venue=venue or self._actor.strategy.venue,
            display_quantity=display_quantity,
        )

    def cancel_order(self, client_order_id: str) -> None:
        order = self._actor.view.open_orders.get(client_order_id)
        if order is None:
            logger.warning(
                "%s: cancel of unknown order %s",
                self.strategy_id,
                client_order_id,
                extra={"strategy": self.strategy_id, "client_order_id": client_order_id},
            )
            return
        self._actor.send(
            CancelOrder(
                client_order_id=client_order_id,
                venue=order.venue,
                symbol=order.symbol,
                ts_ns=self.now_ns(),
            )
        )

    def modify_order(
        self,
        client_order_id: str,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> str | None:
        """Amend an open order; returns the id the order goes on under: its own
        where the venue amends natively, the replacement's where it cancel/replaces."""
        order = self._actor.view.open_orders.get(client_order_id)
        if order is None:
            logger.warning(
                "%s: modify of unknown order %s",
                self.strategy_id,
                client_order_id,
                extra={"strategy": self.strategy_id, "client_order_id": client_order_id},
            )
            return None
        entry = self._actor.directory.venue(order.venue)
        native = entry is None or entry.amends_natively(order)
        replacement = None if native else self._actor.next_client_order_id(order.venue)
        self._actor.send(
            ModifyOrder(
                client_order_id=client_order_id,
                venue=order.venue,
                symbol=order.symbol,
                quantity=quantity,
                price=price,
                stop_price=stop_price,
                new_client_order_id=replacement,
                ts_ns=self.now_ns(),
            )
        )
        return client_order_id if replacement is None else replacement

    def submit_parent(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        algorithm: AlgoParams,
        *,
        venue: str | None = None,
        parent_id: str | None = None,
    ) -> str:
        """Work ``quantity`` with an execution algorithm (``TwapParams``, ...); returns
        the parent id. Answered ``ParentAccepted``, or ``ParentDenied(code, reason)``
        for invalid parameters, a venue that is not there or a total the risk limits
        refuse; then ``ParentProgress`` as its children fill, and ``ParentFilled`` or
        ``ParentCanceled``. Its children's own events reach the strategy too.
        ``venue`` ``"auto"`` (or a strategy whose venue is) has the router place each
        child: ``symbol`` is then an instrument of the config."""
        venue = venue or self._actor.strategy.venue
        return self._actor.submit_parent(
            parent_id=parent_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            algorithm=algorithm,
            venue=None if venue == AUTO_VENUE else venue,
        )

    def cancel_parent(self, parent_id: str, reason: str = "cancelled by the strategy") -> None:
        """Stop the parent's algorithm and cancel its open children (``ParentCanceled``)."""
        self._actor.send(CancelParentOrder(parent_id=parent_id, reason=reason, ts_ns=self.now_ns()))

    def execute_decision(self, decision: ExecutionDecision) -> str | None:
        """Turn a LONG/SHORT/FLAT/HOLD decision into the order that reaches it.

        The target position is +size, -size or 0; the order is the difference
        from the current position plus what open orders will already add.
        """
        action = decision.action
        if action is _HOLD:
            return None
        actor = self._actor
        venue = decision.venue or actor.strategy.venue
        symbol = decision.symbol
        if action is _LONG:
            target = decision.size
        elif action is _SHORT:
            target = -decision.size
        else:  # FLAT (HOLD returned above)
            target = _ZERO
        view = actor.view
        pending = _ZERO
        if venue != AUTO_VENUE:
            # The one key ``keys()`` answers for a named venue, without building
            # the tuple and summing a generator over it: the same figures.
            key = (venue, symbol)
            position = view.positions.get(key, _ZERO)
            for o in view.open_orders.values():
                if o.venue == venue and o.symbol == symbol:
                    pending += o.quantity if o.side is _BUY else -o.quantity
        else:
            # The position as ``position()`` sums it, over every listing.
            keys = actor.keys(symbol, venue)
            positions = view.positions
            position = sum((positions.get(key, _ZERO) for key in keys), _ZERO)
            for o in view.open_orders.values():
                if (o.venue, o.symbol) in keys:
                    pending += o.quantity * o.side.sign
        delta = target - position - pending
        if delta == 0:
            return None
        order_type = decision.order_type
        # What ``submit_order`` would send, without its keyword defaults: they are
        # ``SubmitOrder``'s own (no stop, offset or expiry, not post- or reduce-only,
        # no display quantity), so the order is the same, validated the same.
        return actor.submit(
            symbol=symbol,
            side=_BUY if delta > 0 else _SELL,
            quantity=abs(delta),
            order_type=order_type,
            price=decision.limit_price if order_type.needs_price else None,
            time_in_force=decision.time_in_force,
            venue=venue,
        )


class _Cycle:
    __slots__ = ()


class StrategyActor(Actor):
    def __init__(
        self, factory: Callable[[], Strategy], directory: Directory, *, id_prefix: str
    ) -> None:
        self.strategy = factory()
        self.directory = directory
        self.view = _View()
        self.id_prefix = id_prefix
        self.ids = ClientOrderIdFamily(id_prefix)
        self.parent_ids = ClientOrderIdFamily(f"{id_prefix}P")
        self._router: Address | None = None
        self._risk: Address | None = None
        self._lane: DirectLane | None = None
        """Past the router for orders it would only forward (``DirectLane``); None in
        a tree without a router, where everything goes to the guard anyway."""
        self._generators: dict[ClientIdRules | None, ClientOrderIds] = {}
        """``ids.for_rules(rules)`` per rules seen: it answers the same generator for the
        same rules (the family keeps one per shape), but works out whether the ids
        fit the rules on every call, which was a tenth of a decision's cost."""
        self._last_generator: tuple[ClientIdRules | None, ClientOrderIds] | None = None
        """The last entry of ``_generators`` used, found again by the rules' identity."""

    def on_start(self) -> None:
        strategy = self.strategy
        self.ids = ClientOrderIdFamily(f"{self.id_prefix}{base36(self.context.generation)}")
        self._generators = {}
        self._last_generator = None
        self.parent_ids = ClientOrderIdFamily(f"{self.id_prefix}{base36(self.context.generation)}P")
        oms = self.directory.oms()
        for snapshot in oms.ask(GetPositions(strategy_id=strategy.strategy_id)):
            assert isinstance(snapshot, PositionSnapshot)
            self.view.positions[(snapshot.venue, snapshot.symbol)] = snapshot.quantity
        for order in oms.ask(GetOpenOrders(strategy_id=strategy.strategy_id)):
            self.view.open_orders[order.client_order_id] = order
        oms.tell(Subscribe(self.context.self, strategy.strategy_id))
        lane = self._router_address().ask(OpenLane(strategy.strategy_id))
        self._lane = lane if isinstance(lane, DirectLane) else None
        for venue, symbols in self._quote_sources(strategy).items():
            entry = self.directory.venue(venue)
            if entry is None:
                continue
            if MarketDataKind.QUOTES in entry.capabilities.market_data:
                entry.broker.tell(QuoteSubscription(self.context.self, symbols))
            else:
                logger.warning(
                    "%s: venue %s delivers no quotes; not subscribing to %s",
                    strategy.strategy_id,
                    venue,
                    ", ".join(symbols),
                )
        strategy.ctx = StrategyContext(self)
        strategy.on_start()
        if strategy.cycle_time_ms:
            self.context.schedule_repeating(strategy.cycle_time_ms / 1000, _Cycle())

    def on_stop(self) -> None:
        self.strategy.on_stop()

    def keys(self, symbol: str, venue: str | None) -> tuple[tuple[str, str], ...]:
        """(venue, symbol) pairs an order or position of ``symbol`` on ``venue`` may be
        under: on ``auto``, every listing of the instrument, and ``auto`` itself (an
        order not yet routed)."""
        venue = venue or self.strategy.venue
        if venue != AUTO_VENUE:
            return ((venue, symbol),)
        return (*self.directory.instruments.listings(symbol), (AUTO_VENUE, symbol))

    def _quote_sources(self, strategy: Strategy) -> dict[str, tuple[str, ...]]:
        """Venue -> symbols to subscribe to: the strategy's own venue, or on ``auto``
        every venue listing one of its instruments, under that venue's symbol."""
        if not strategy.symbols:
            return {}
        if strategy.venue != AUTO_VENUE:
            return {strategy.venue: tuple(strategy.symbols)}
        sources: dict[str, list[str]] = {}
        for instrument in strategy.symbols:
            for venue, symbol in self.directory.instruments.listings(instrument):
                sources.setdefault(venue, []).append(symbol)
        return {venue: tuple(symbols) for venue, symbols in sources.items()}

    def receive(self, message: Any) -> Any:
        strategy = self.strategy
        if isinstance(message, Quote):
            self.view.quotes[(message.venue, message.symbol)] = message
            strategy.on_quote(message)
        elif isinstance(message, _Cycle):
            strategy.on_cycle()
        elif isinstance(message, OrderFilled):
            self._on_fill(message)
            strategy.on_order_update(message)
            strategy.record_execution(message)
        elif isinstance(message, Routed):
            self.view.open_orders[message.order.client_order_id] = message.order
            if message.submitted is not None:
                strategy.on_order_update(message.submitted)
        elif isinstance(message, Message):
            if isinstance(message, _TERMINAL_EVENTS) and not self._failing_over(message):
                self.view.open_orders.pop(message.client_order_id, None)
            strategy.on_order_update(message)
        elif isinstance(message, RoutedAs):
            self.view.open_orders.pop(message.client_order_id, None)
            for leg in message.legs:
                self.view.open_orders[leg.client_order_id] = leg
            return strategy.on_message(message)
        elif isinstance(message, FailedOver):
            self.view.open_orders.pop(message.client_order_id, None)
            if message.replacement is not None:
                replacement = message.replacement
                self.view.open_orders[replacement.client_order_id] = replacement
            return strategy.on_message(message)
        else:
            return strategy.on_message(message)
        return None

    def _failing_over(self, message: Message) -> bool:
        """A routed order refused for a transport reason: the router may send it to
        another venue, so it stays counted until the router says (``FailedOver``)."""
        order = self.view.open_orders.get(getattr(message, "client_order_id", ""))
        routed = order is not None and (order.route is not None or order.venue == AUTO_VENUE)
        return routed and is_transport_refusal(message)

    def _on_fill(self, fill: OrderFilled) -> None:
        view = self.view
        key = (fill.venue, fill.symbol)
        quantity = fill.last_quantity
        # ``fill.side.sign * quantity`` without the property's call (one per fill).
        signed = quantity if fill.side is _BUY else -quantity
        view.positions[key] = view.positions.get(key, _ZERO) + signed
        client_order_id = fill.client_order_id
        filled = view.filled.get(client_order_id, _ZERO) + quantity
        order = view.open_orders.get(client_order_id)
        if order is not None and filled >= order.quantity:
            view.open_orders.pop(client_order_id, None)
            view.filled.pop(client_order_id, None)
        else:
            view.filled[client_order_id] = filled

    def next_client_order_id(self, venue: object) -> str:
        """The next id, in the shape the venue accepts (the core's rule while it is unknown)."""
        rules = self._client_id_rules(venue)
        # The last rules seen and their generator, matched by identity: a venue's
        # capabilities (and their rules) are one object while it is connected, and
        # the dict look-up hashes every field of the rules (a Python-level call).
        last = self._last_generator
        if last is not None and last[0] is rules:
            return last[1].next()
        generator = self._generators.get(rules)
        if generator is None:
            generator = self._generators[rules] = self.ids.for_rules(rules)
        self._last_generator = (rules, generator)
        return generator.next()

    def _client_id_rules(self, venue: object) -> ClientIdRules | None:
        entry = self.directory.venue(venue) if isinstance(venue, str) else None
        return None if entry is None else entry.capabilities.client_ids

    def submit(self, **fields: Any) -> str:
        client_order_id = self.next_client_order_id(fields.get("venue"))
        try:
            order = SubmitOrder(
                client_order_id=client_order_id,
                strategy_id=self.strategy.strategy_id,
                ts_ns=self.context.now_ns(),
                **fields,
            )
        except ValueError as exc:
            self.directory.oms().tell(
                OrderDenied(
                    client_order_id=client_order_id,
                    strategy_id=self.strategy.strategy_id,
                    code=DenialCode.INVALID_ORDER,
                    reason=str(exc),
                    ts_ns=self.context.now_ns(),
                )
            )
            return client_order_id
        self.view.open_orders[client_order_id] = order
        self.send(order)
        return client_order_id

    def submit_parent(self, *, parent_id: str | None, **fields: Any) -> str:
        parent_id = parent_id or self.parent_ids.next()
        try:
            parent = SubmitParentOrder(
                parent_id=parent_id,
                strategy_id=self.strategy.strategy_id,
                ts_ns=self.context.now_ns(),
                **fields,
            )
        except ValueError as exc:
            self.directory.oms().tell(
                ParentDenied(
                    parent_id=parent_id,
                    strategy_id=self.strategy.strategy_id,
                    code=DenialCode.INVALID_ORDER,
                    reason=str(exc),
                    ts_ns=self.context.now_ns(),
                )
            )
            return parent_id
        self.send(parent)
        return parent_id

    def send(self, message: Message) -> None:
        # Orders and parents pass the router (execution mode, approvals, routing)
        # on their way to the guard, but for a FULL_AUTO order that names its venue,
        # which the lane tells the guard itself when that keeps every guarantee
        # (``DirectLane``: the mode under the router's gate, nothing of this
        # strategy's still at the router). Through the router, the lane counts it.
        if type(message) is SubmitOrder or isinstance(message, _VIA_ROUTER):
            lane = self._lane
            if lane is None:
                self._router_address().tell(message)
                return
            if type(message) is SubmitOrder and lane.tell_direct(message, self._risk_address()):
                return
            lane.told += 1  # before the tell: the router's count never runs ahead
            self._router_address().tell(ThroughRouter(message, lane))
        else:
            self._risk_address().tell(message)

    def _risk_address(self) -> Address:
        """The risk guard, resolved once: addresses are stable across restarts."""
        address = self._risk
        if address is None or not address.is_alive:
            address = self._risk = self.directory.risk()
        return address

    def _router_address(self) -> Address:
        """Where orders go, resolved once: addresses are stable across restarts."""
        address = self._router
        if address is None or not address.is_alive:
            address = self._router = self.directory.router()
        return address
