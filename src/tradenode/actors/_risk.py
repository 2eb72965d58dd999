"""The risk guard actor: every new or modified order passes it; cancels are never blocked.

It keeps its own view of exposure (positions from the OMS's snapshots,
and every order it approved until the OMS reports it done) so that two
orders approved back to back are judged together, never as if the first
did not exist. The rules themselves are the pure ``RiskEngine``; the guard
hands it the order's venue's capabilities from the directory, so what a
venue cannot do is denied here (``UNSUPPORTED_BY_VENUE``, logged) rather
than sent and rejected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .._config import RiskConfig
from ..messages._enums import DenialCode, OrderStatus, Side, TradingState
from ..messages._execution import CancelParentOrder, SubmitParentOrder
from ..messages._messages import (
    CancelOrder,
    ModifyOrder,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatusReport,
    PositionSnapshot,
    Quote,
    SubmitOrder,
    TradingStateChanged,
)
from ..messages._validation import check_decimal
from ..supervision import Actor, Address
from ._capabilities import VenueCapabilities
from ._control import GetRiskStatus, Routed, SetTradingState, Subscribe
from ._directory import Directory
from ._exposure import Listings
from ._oms import RiskDenied, RiskRefusedModify
from ._oms_parents import parent_denial
from ._oms_state import TrackedOrderView
from ._positions import FillAndPosition
from ._risk_limits import InstrumentRules, OpenOrders, RiskContext, RiskLimits
from ._risk_rules import RiskEngine

__all__ = ["RiskBook", "RiskGuard", "RiskStore", "risk_limits_from_config"]

logger = logging.getLogger("tradenode.risk")

_NS_PER_DAY = 86_400 * 1_000_000_000
_ZERO = Decimal(0)
_BUY = Side.BUY  # a module alias: reading a member off the enum class costs a Python __getattr__
Key = tuple[str, str]


@dataclass(slots=True)
class _Approved:
    order: SubmitOrder
    filled: Decimal = Decimal(0)

    @property
    def leaves(self) -> Decimal:
        return max(_ZERO, self.order.quantity - self.filled)


class ApprovedOrders:
    """Every order the guard approved that may still fill, with the per-symbol
    tally of their leaves kept as they change.

    Recounting every open order for every decision made the guard's cost grow
    with the number of orders in flight; the tally makes it constant.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Approved] = {}
        self._tally: dict[Key, list[Any]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._entries

    def get(self, client_order_id: str) -> _Approved | None:
        return self._entries.get(client_order_id)

    def values(self) -> Iterable[_Approved]:
        return self._entries.values()

    def add(self, order: SubmitOrder) -> None:
        if order.client_order_id not in self._entries:
            entry = _Approved(order)
            self._entries[order.client_order_id] = entry
            self._count(entry, +1)

    def remove(self, client_order_id: str) -> None:
        entry = self._entries.pop(client_order_id, None)
        if entry is not None:
            self._count(entry, -1)

    def update(
        self,
        client_order_id: str,
        *,
        filled: Decimal | None = None,
        order: SubmitOrder | None = None,
    ) -> _Approved | None:
        entry = self._entries.get(client_order_id)
        if entry is None:
            return None
        self._count(entry, -1)
        if filled is not None:
            entry.filled = filled
        if order is not None:
            entry.order = order
        self._count(entry, +1)
        return entry

    def fill(self, client_order_id: str, quantity: Decimal) -> None:
        """``quantity`` more of the order filled; one with nothing left is forgotten.

        The same as ``update(filled=...)`` then ``remove`` when it is done, but one
        change of the tally instead of three for the fill that completes an order
        (the usual one)."""
        entry = self._entries.get(client_order_id)
        if entry is None:
            return
        filled = entry.filled + quantity
        if entry.order.quantity - filled <= 0:
            del self._entries[client_order_id]
            self._count(entry, -1)
            return
        self._count(entry, -1)
        entry.filled = filled
        self._count(entry, +1)

    def tally(self) -> dict[Key, OpenOrders]:
        if not self._tally:
            return {}  # nothing open (as between the orders of a closed loop)
        return {
            key: OpenOrders.of(buy, sell, count)
            for key, (buy, sell, count) in self._tally.items()
            if count
        }

    def _count(self, entry: _Approved, sign: int) -> None:
        order = entry.order
        key = (order.venue, order.symbol)
        row = self._tally.get(key)
        if row is None:
            row = self._tally[key] = [_ZERO, _ZERO, 0]
        # The leaves added or taken away, not multiplied by ``sign``: a Decimal
        # times an int converts the int and multiplies, on every order and fill.
        side = 0 if order.side is _BUY else 1
        if sign > 0:
            row[side] += entry.leaves
        else:
            row[side] -= entry.leaves
        row[2] += sign
        if row[2] == 0:
            del self._tally[key]


@dataclass
class RiskBook:
    positions: dict[Key, Decimal] = field(default_factory=dict)
    pnl: dict[Key, Decimal] = field(default_factory=dict)
    approved: ApprovedOrders = field(default_factory=ApprovedOrders)
    last_prices: dict[Key, Decimal] = field(default_factory=dict)
    day: int | None = None
    day_start_pnl: Decimal = Decimal(0)
    peak_equity: Decimal = Decimal(0)

    def total_pnl(self) -> Decimal:
        return sum(self.pnl.values(), _ZERO)

    def set_position(self, key: Key, quantity: Decimal, pnl: Decimal) -> None:
        """The net position and PnL of ``key``, checked here, once, as ``RiskContext``
        would check them: ``context`` hands them on unchecked."""
        # check_decimal's own first test, made here so that the field name (a repr of
        # the key) is only formatted for a figure that fails it: the same checks.
        if not (type(quantity) is Decimal and quantity.is_finite()):
            check_decimal(self, f"positions[{key!r}]", quantity)
        if not (type(pnl) is Decimal and pnl.is_finite()):
            check_decimal(self, f"pnl[{key!r}]", pnl)
        self.positions[key] = quantity
        self.pnl[key] = pnl

    def set_price(self, key: Key, price: Decimal) -> None:
        """The last price of ``key``, checked here, once (finite, > 0: a mark)."""
        check_decimal(self, f"last_prices[{key!r}]", price, positive=True)
        self.last_prices[key] = price

    def restore(
        self, open_orders: Iterable[TrackedOrderView], positions: Iterable[PositionSnapshot]
    ) -> None:
        """Start from what a recovered OMS holds: a node restarted from its journal
        must count the orders still open and the positions held before the
        crash against its limits, or every restart would grant a fresh budget."""
        for view in open_orders:
            self.approved.add(view.order)
            self.approved.update(view.client_order_id, filled=view.filled_quantity)
        for snapshot in positions:
            if snapshot.strategy_id is None:
                self.set_position(
                    (snapshot.venue, snapshot.symbol),
                    snapshot.quantity,
                    snapshot.realized_pnl + snapshot.unrealized_pnl,
                )

    def roll(self, now_ns: int) -> Decimal:
        """Follow the day and the peak equity to ``now_ns``; the equity (total PnL).

        Every context does this; a position update does it even when no context
        is needed (no loss limit), so the day's start and the peak are the same
        whichever limits are configured."""
        day = now_ns // _NS_PER_DAY
        equity = sum(self.pnl.values(), _ZERO)  # ``total_pnl``, without its call
        if self.day != day:
            self.day, self.day_start_pnl = day, equity
        self.peak_equity = max(self.peak_equity, equity)
        return equity

    def context(self, now_ns: int) -> RiskContext:
        equity = self.roll(now_ns)
        # Every figure was checked as it entered the book (set_position,
        # set_price; the tally's OpenOrders on construction): not again here.
        approved = self.approved
        return RiskContext.of_checked(
            positions=dict(self.positions),
            open_orders=approved.tally(),
            last_prices=dict(self.last_prices),
            daily_pnl=equity - self.day_start_pnl,
            equity=equity,
            peak_equity=self.peak_equity,
            # Each order tallied counts once, in its key's row: the rows' sum.
            open_order_count=len(approved),
        )


@dataclass
class RiskStore:
    """The guard's memory, owned by the node: a restart must not un-halt trading."""

    engine: RiskEngine
    book: RiskBook = field(default_factory=RiskBook)

    @classmethod
    def create(cls, limits: RiskLimits, *, now_ns: Callable[[], int]) -> RiskStore:
        return cls(RiskEngine(limits, now_ns=now_ns))


def risk_limits_from_config(config: RiskConfig, *, listings: Listings | None = None) -> RiskLimits:
    """The limits of ``risk:``; ``listings`` (the config's ``instruments:``) make the
    position limits apply to an instrument's sum across its venues."""
    return RiskLimits(
        max_order_quantity=config.max_order_quantity,
        max_order_notional=config.max_order_notional,
        max_position_quantity=config.max_position_quantity,
        max_symbol_exposure=config.max_symbol_exposure,
        max_total_exposure=config.max_total_exposure,
        max_open_orders=config.max_open_orders,
        max_orders_per_second=config.max_orders_per_second,
        order_burst=config.order_burst,
        daily_loss_limit=config.daily_loss_limit,
        max_drawdown=config.max_drawdown,
        price_collar_bps=config.price_collar_bps,
        duplicate_window_ns=None
        if config.duplicate_window_ms is None
        else round(config.duplicate_window_ms * 1_000_000),
        instruments={
            symbol: InstrumentRules(
                symbol=symbol,
                tick_size=rules.tick_size,
                lot_size=rules.lot_size,
                min_quantity=rules.min_quantity,
                min_notional=rules.min_notional,
            )
            for symbol, rules in config.instruments.items()
        },
        on_loss_breach=TradingState[config.on_loss_breach],
        max_position_pct=config.max_position_pct,
        capital=config.capital,
        listings=listings,
    )


_OMS_EVENTS = (
    FillAndPosition,
    Routed,
    PositionSnapshot,
    OrderFilled,
    OrderCanceled,
    OrderExpired,
    OrderRejected,
    OrderDenied,
    OrderModified,
    OrderStatusReport,
)
"""The OMS events the guard's book follows (``receive``/``_observe``); the others
(an accept, a cancel refused, ...) change nothing it keeps and would only wake it.
``FillAndPosition``: each fill and the net position it left, as one message (one
wake-up of the guard per fill, not two). ``OrderFilled`` and ``PositionSnapshot``
stay listed: the OMS tells either alone when it has no pair to tell."""


_OBSERVED = (*_OMS_EVENTS, Quote)
"""What ``_observe`` follows: the OMS's events and the venues' quotes."""


class RiskGuard(Actor):
    lends_turn = True
    """Its checks read its own book and never wait: the sender's thread runs them
    (``Actor.lends_turn``), one wake-up fewer on every order's way out."""

    def __init__(self, directory: Directory, store: RiskStore) -> None:
        self.directory = directory
        self.store = store
        self.engine = store.engine
        self.book = store.book
        self._oms: Address | None = None

    def on_start(self) -> None:
        self._oms = self.directory.oms()  # stable across the OMS's restarts: resolved once
        self._oms.tell(Subscribe(self.context.self, kinds=_OMS_EVENTS))

    def _oms_address(self) -> Address:
        address = self._oms
        if address is None or not address.is_alive:
            address = self._oms = self.directory.oms()
        return address

    def receive(self, message: Any) -> Any:
        if isinstance(message, SubmitOrder):
            self._on_order(message)
        elif isinstance(message, _OBSERVED):
            # What the OMS and the venues report, tested in one go (most of what
            # the guard is told), before the commands.
            self._observe(message)
        elif isinstance(message, ModifyOrder):
            self._on_modify(message)
        elif isinstance(message, CancelOrder | CancelParentOrder):
            self._oms_address().tell(message)
        elif isinstance(message, SubmitParentOrder):
            self._on_parent(message)
        elif isinstance(message, SetTradingState):
            self._announce(self.engine.set_state(message.state, message.reason, operator=True))
            if message.then_tell_oms is not None:
                self._oms_address().tell(message.then_tell_oms)
            return self.engine.state
        elif isinstance(message, GetRiskStatus):
            return self.status()
        return None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.engine.state.value,
            "approved_open": len(self.book.approved),
            "denials": {code.value: count for code, count in self.engine.counters().items()},
            "pnl": str(self.book.total_pnl()),
        }

    # -- decisions ----------------------------------------------------------------

    def _on_order(self, order: SubmitOrder) -> None:
        # ``_oms_address`` and ``_capabilities``, inlined for the order's path.
        oms = self._oms
        if oms is None or not oms.is_alive:
            oms = self._oms_address()
        entry = self.directory.venue(order.venue)
        capabilities = None if entry is None else entry.capabilities
        # None: approved, and the trading state did not move (``screen_submit``).
        decision = self.engine.screen_submit(
            order, self.book.context(self.context.now_ns()), capabilities
        )
        if decision is not None:
            self._announce(decision.state_change)
        if decision is None or decision.approved:
            if order.reduce_only and capabilities is not None and not capabilities.reduce_only:
                # This guard has just checked that the order only reduces the
                # position; a venue without the flag (Binance Spot) would refuse
                # it, so the venue gets a plain order.
                order = replace(order, reduce_only=False)
            oms.tell(order)
            # After the tell, which wakes the OMS: only this guard's next decision
            # reads the book, and it comes after this handler, as does every
            # report about the order (they reach this thread's inbox).
            self.book.approved.add(order)
            return
        denial = decision.denial(order, self.context.now_ns())
        self._log_denial(order, denial.code, denial.reason)
        oms.tell(RiskDenied(order, denial))

    def _on_parent(self, parent: SubmitParentOrder) -> None:
        """A parent's parameters and total, checked before its first child; each child
        then comes through ``_on_order`` like any order."""
        now = self.context.now_ns()
        denial = parent_denial(
            parent, self.directory, self.engine, self.book.context(now), now_ns=now
        )
        self._oms_address().tell(parent if denial is None else denial)

    def _on_modify(self, modify: ModifyOrder) -> None:
        oms = self._oms_address()
        entry = self.book.approved.get(modify.client_order_id)
        if entry is None:
            oms.tell(modify)
            return
        decision = self.engine.check_modify(
            entry.order,
            modify,
            self.book.context(self.context.now_ns()),
            leaves_quantity=entry.leaves,
            capabilities=self._capabilities(modify.venue),
        )
        self._announce(decision.state_change)
        if decision.approved:
            oms.tell(modify)
        else:
            assert decision.code is not None
            self._log_denial(modify, decision.code, decision.reason)
            oms.tell(RiskRefusedModify(modify, decision.code, decision.reason))

    def _capabilities(self, venue: str) -> VenueCapabilities | None:
        """The venue's declared capabilities; None when it is not (or no longer) there."""
        entry = self.directory.venue(venue)
        return None if entry is None else entry.capabilities

    @staticmethod
    def _log_denial(order: SubmitOrder | ModifyOrder, code: DenialCode, reason: str) -> None:
        """A strategy asking a venue for what it cannot do is a bug worth a warning;
        the other denials are limits doing their job (counted in the status)."""
        if code is DenialCode.UNSUPPORTED_BY_VENUE:
            logger.warning(
                "risk: %s denied %s: %s",
                order.client_order_id,
                code.value,
                reason,
                extra={"order": order},
            )

    def _announce(self, change: TradingStateChanged | None) -> None:
        """A trading-state change is logged and told to every OMS subscriber via the OMS."""
        if change is None:
            return
        logger.warning("risk: trading state %s (%s)", change.state.value, change.reason)
        self._oms_address().tell(change)

    # -- what the OMS reports ------------------------------------------------------

    def _observe(self, message: Any) -> None:
        book = self.book
        if type(message) is FillAndPosition:
            # What an OrderFilled and then a PositionSnapshot do, in that order.
            fill = message.fill
            book.approved.fill(fill.client_order_id, fill.last_quantity)
            self._observe_position(message.position)
        elif isinstance(message, OrderFilled):
            book.approved.fill(message.client_order_id, message.last_quantity)
        elif isinstance(message, Quote):
            book.set_price((message.venue, message.symbol), message.last or message.mid)
        elif isinstance(message, PositionSnapshot):
            self._observe_position(message)
        elif isinstance(message, Routed):
            # A replacement or a kill-switch flatten order, which never came through
            # here (an order it approved is in the book already: add ignores it).
            book.approved.add(message.order)
        elif isinstance(message, OrderCanceled | OrderExpired | OrderRejected | OrderDenied):
            book.approved.remove(message.client_order_id)
        elif isinstance(message, OrderModified):
            entry = book.approved.get(message.client_order_id)
            if entry is not None:
                book.approved.update(
                    message.client_order_id,
                    order=_with_quantity(entry.order, message.quantity, message.price),
                )
        elif isinstance(message, OrderStatusReport):
            entry = book.approved.get(message.client_order_id)
            if entry is not None:
                if message.status.is_terminal or message.status is OrderStatus.FILLED:
                    book.approved.remove(message.client_order_id)
                else:
                    book.approved.update(
                        message.client_order_id,
                        filled=max(entry.filled, message.filled_quantity),
                    )

    def _observe_position(self, position: PositionSnapshot) -> None:
        """A net position: the book's figure, and the loss limit watched against it."""
        if position.strategy_id is not None:
            return
        book = self.book
        book.set_position(
            (position.venue, position.symbol),
            position.quantity,
            position.realized_pnl + position.unrealized_pnl,
        )
        now = self.context.now_ns()
        if self.engine.watches_loss:
            self._announce(self.engine.update_loss_state(book.context(now)))
        else:
            # No loss limit: update_loss_state could only answer None,
            # so no context is built for it; the day and peak still move.
            book.roll(now)


def _with_quantity(order: SubmitOrder, quantity: Decimal, price: Decimal | None) -> SubmitOrder:
    fields = {name: getattr(order, name) for name in order.__dataclass_fields__}
    fields["quantity"] = quantity
    if price is not None and order.price is not None:
        fields["price"] = price
    return SubmitOrder(**fields)
