"""What the risk engine is told: static limits, and a snapshot of the books per check.

The limits are configuration and never change while the engine runs; the
context is rebuilt by the risk guard actor from the OMS for every check.
Both are frozen and validated on construction so that the engine's checks
can trust every number they read: a limit or a snapshot that exists is
usable, and a bad one fails where it is assembled, not in the middle of a
decision about real money.

Positions, open orders and prices are keyed by ``(venue, symbol)``: a
position is something a venue holds for us, so two venues holding the same
symbol are two positions that can each be liquidated on their own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from tradenode.messages._enums import Side, TradingState
from tradenode.messages._messages import PositionSnapshot, SubmitOrder
from tradenode.messages._validation import check_decimal, check_identifier

from ._exposure import Listings

__all__ = [
    "InstrumentRules",
    "OpenOrders",
    "RiskContext",
    "RiskLimits",
    "VenueSymbol",
]

VenueSymbol = tuple[str, str]
"""``(venue, symbol)``: the key of every per-position figure in a ``RiskContext``."""

_ZERO = Decimal(0)


def _exact(value: Any) -> Any:
    """Ints become exact decimals; floats stay floats, so validation refuses their rounding."""
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def _as_decimal(owner: object, name: str, value: Any, *, positive: bool = False) -> Decimal:
    value = _exact(value)
    check_decimal(owner, name, value, positive=positive, non_negative=not positive)
    result: Decimal = value
    return result


def _optional_decimal(owner: object, name: str, value: Any) -> Decimal | None:
    return None if value is None else _as_decimal(owner, name, value, positive=True)


def _check_count(owner: object, name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{type(owner).__name__}.{name}={value!r}: must be an int >= {minimum}")


def _check_key(owner: object, name: str, key: Any) -> VenueSymbol:
    if not (isinstance(key, tuple) and len(key) == 2):
        raise ValueError(f"{type(owner).__name__}.{name} key {key!r}: must be (venue, symbol)")
    check_identifier(owner, f"{name} venue", key[0])
    check_identifier(owner, f"{name} symbol", key[1])
    return (key[0], key[1])


def _frozen_mapping(owner: object, name: str, value: Any) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{type(owner).__name__}.{name}={value!r}: must be a mapping")
    return dict(value)


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """A venue's trading filters for one symbol, so we refuse what the venue would reject.

    Refusing locally is cheaper than a venue rejection, and it keeps the
    venue's reject counters (which some venues act on) clean.
    ``max_quantity`` is the venue's largest order, not a risk limit.
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    max_quantity: Decimal | None = None

    def __post_init__(self) -> None:
        check_identifier(self, "symbol", self.symbol)
        set_ = object.__setattr__
        set_(self, "tick_size", _as_decimal(self, "tick_size", self.tick_size, positive=True))
        set_(self, "lot_size", _as_decimal(self, "lot_size", self.lot_size, positive=True))
        set_(self, "min_quantity", _as_decimal(self, "min_quantity", self.min_quantity))
        set_(self, "min_notional", _as_decimal(self, "min_notional", self.min_notional))
        set_(self, "max_quantity", _optional_decimal(self, "max_quantity", self.max_quantity))
        if self.max_quantity is not None and self.max_quantity < self.min_quantity:
            raise ValueError(
                f"InstrumentRules.max_quantity={self.max_quantity}: "
                f"below min_quantity {self.min_quantity}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """Every limit the engine enforces; ``None`` means that limit is off.

    Quantities and money are ``Decimal`` (ints are accepted and converted,
    floats are refused because they round). ``max_position_quantity`` and
    ``max_symbol_exposure`` apply per ``(venue, symbol)``; exposures count
    open orders at their worst case. ``daily_loss_limit`` and
    ``max_drawdown`` are positive amounts in the account currency, breached
    when reached (PnL <= -limit, peak - equity >= max_drawdown).
    ``order_burst`` is the token bucket's capacity; by default it is the
    per-second rate rounded up, so a quiet second can be spent at once.
    ``duplicate_window_ns`` treats an identical order (same strategy, venue,
    symbol, side, type, quantity and prices) approved less than this long
    ago as a double send.

    ``listings`` says which ``(venue, symbol)`` are one instrument (the
    config's ``instruments:``): for a listed instrument
    ``max_position_quantity`` and ``max_symbol_exposure`` apply to the sum
    across its venues (see ``_exposure``). ``max_position_pct`` caps an
    instrument's |value| (summed across its venues, each at its own mark,
    open orders at their worst case) as a fraction of the account's equity,
    defined as ``capital`` (the account's equity when the node's PnL is
    zero, in the quote currency) plus the node's realized and unrealized
    PnL across venues (``RiskContext.equity``); it needs ``capital``.
    """

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position_quantity: Decimal | None = None
    max_symbol_exposure: Decimal | None = None
    max_total_exposure: Decimal | None = None
    max_open_orders: int | None = None
    max_orders_per_second: float | Decimal | None = None
    order_burst: int | None = None
    daily_loss_limit: Decimal | None = None
    max_drawdown: Decimal | None = None
    price_collar_bps: Decimal | None = None
    duplicate_window_ns: int | None = None
    instruments: Mapping[str, InstrumentRules] = field(default_factory=lambda: MappingProxyType({}))
    on_loss_breach: TradingState = TradingState.REDUCING
    max_position_pct: Decimal | None = None
    capital: Decimal | None = None
    listings: Listings | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in (
            "max_order_quantity",
            "max_order_notional",
            "max_position_quantity",
            "max_symbol_exposure",
            "max_total_exposure",
            "daily_loss_limit",
            "max_drawdown",
            "price_collar_bps",
            "max_position_pct",
            "capital",
        ):
            set_(self, name, _optional_decimal(self, name, getattr(self, name)))
        if self.max_position_pct is not None and self.capital is None:
            raise ValueError(
                "RiskLimits.max_position_pct: needs capital (the equity it is a fraction of)"
            )
        if self.listings is not None and not isinstance(self.listings, Listings):
            raise ValueError(
                f"RiskLimits.listings={self.listings!r}: must have instrument_of() and listings()"
            )
        for name in ("max_open_orders", "order_burst", "duplicate_window_ns"):
            value = getattr(self, name)
            if value is not None:
                _check_count(self, name, value, minimum=1)
        rate = self.max_orders_per_second
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float | Decimal):
                raise ValueError(f"RiskLimits.max_orders_per_second={rate!r}: must be a number")
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"RiskLimits.max_orders_per_second={rate!r}: must be finite, > 0")
        if self.order_burst is not None and rate is None:
            raise ValueError("RiskLimits.order_burst: needs max_orders_per_second")
        instruments = _frozen_mapping(self, "instruments", self.instruments)
        for symbol, rules in instruments.items():
            if not isinstance(rules, InstrumentRules):
                raise ValueError(f"RiskLimits.instruments[{symbol!r}]: must be InstrumentRules")
            if symbol != rules.symbol:
                raise ValueError(
                    f"RiskLimits.instruments[{symbol!r}]: rules are for {rules.symbol!r}"
                )
        set_(self, "instruments", MappingProxyType(instruments))
        if self.on_loss_breach not in (TradingState.REDUCING, TradingState.HALTED):
            raise ValueError(
                f"RiskLimits.on_loss_breach={self.on_loss_breach!r}: must be REDUCING or HALTED"
            )

    @property
    def burst(self) -> int | None:
        """The rate throttle's capacity, or None when orders are not throttled."""
        if self.max_orders_per_second is None:
            return None
        if self.order_burst is not None:
            return self.order_burst
        return max(1, math.ceil(self.max_orders_per_second))


@dataclass(frozen=True, slots=True)
class OpenOrders:
    """Unfilled quantity resting on each side of one ``(venue, symbol)``, and how many orders.

    Quantities are leaves (what can still fill), not original quantities:
    only what can still fill can still move the position.
    """

    buy_quantity: Decimal = _ZERO
    sell_quantity: Decimal = _ZERO
    count: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "buy_quantity", _as_decimal(self, "buy_quantity", self.buy_quantity))
        set_(self, "sell_quantity", _as_decimal(self, "sell_quantity", self.sell_quantity))
        _check_count(self, "count", self.count, minimum=0)

    @classmethod
    def of(cls, buy_quantity: Decimal, sell_quantity: Decimal, count: int) -> OpenOrders:
        """``OpenOrders(buy_quantity, sell_quantity, count)``, for the risk guard's
        tally, which builds one per key per decision.

        When every figure is already what ``__post_init__`` would leave it as (a
        finite, non-negative ``Decimal`` for each side, an int >= 0 for the count:
        the usual case) the same checks are made inline and the instance is made
        without the dataclass ``__init__`` and its call per field; anything else
        goes through the constructor, which converts or refuses it as ever."""
        if (
            type(buy_quantity) is Decimal
            and type(sell_quantity) is Decimal
            and type(count) is int
            and buy_quantity.is_finite()
            and sell_quantity.is_finite()
            and buy_quantity >= _ZERO
            and sell_quantity >= _ZERO
            and count >= 0
        ):
            orders = object.__new__(cls)
            set_ = object.__setattr__
            set_(orders, "buy_quantity", buy_quantity)
            set_(orders, "sell_quantity", sell_quantity)
            set_(orders, "count", count)
            return orders
        return cls(buy_quantity, sell_quantity, count)

    def pending(self, side: Side) -> Decimal:
        return self.buy_quantity if side is Side.BUY else self.sell_quantity

    def plus(self, side: Side, quantity: Decimal, count: int = 1) -> OpenOrders:
        """These open orders with one more (or, with negative values, one fewer) on ``side``."""
        buy, sell = self.buy_quantity, self.sell_quantity
        if side is Side.BUY:
            buy = max(_ZERO, buy + quantity)
        else:
            sell = max(_ZERO, sell + quantity)
        return OpenOrders(buy, sell, max(0, self.count + count))


_NO_OPEN_ORDERS = OpenOrders()


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskContext:
    """The books as the OMS saw them when an order arrived, frozen for one decision.

    ``positions`` are signed (negative is short). ``open_orders`` must
    include every order the engine approved that can still fill, including
    ones not yet acknowledged (even not yet registered) by the OMS: an
    order missing here is an order whose exposure the engine cannot see.
    ``open_order_count`` defaults to the sum of the per-key counts.
    ``last_prices`` may omit a key or map it to None when there is no
    price yet. ``equity`` and ``peak_equity`` may be None when the account
    is not tracked; with ``max_drawdown`` set, that refuses orders that add
    exposure rather than trading blind.
    """

    positions: Mapping[VenueSymbol, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    open_orders: Mapping[VenueSymbol, OpenOrders] = field(
        default_factory=lambda: MappingProxyType({})
    )
    open_order_count: int | None = None
    last_prices: Mapping[VenueSymbol, Decimal | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    daily_pnl: Decimal = _ZERO
    equity: Decimal | None = None
    peak_equity: Decimal | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        positions: dict[VenueSymbol, Decimal] = {}
        for key, quantity in _frozen_mapping(self, "positions", self.positions).items():
            checked = _check_key(self, "positions", key)
            exact = _exact(quantity)
            check_decimal(self, f"positions[{checked!r}]", exact)
            positions[checked] = exact
        set_(self, "positions", MappingProxyType(positions))
        open_orders: dict[VenueSymbol, OpenOrders] = {}
        for key, orders in _frozen_mapping(self, "open_orders", self.open_orders).items():
            checked = _check_key(self, "open_orders", key)
            if not isinstance(orders, OpenOrders):
                raise ValueError(f"RiskContext.open_orders[{checked!r}]: must be OpenOrders")
            open_orders[checked] = orders
        set_(self, "open_orders", MappingProxyType(open_orders))
        if self.open_order_count is None:
            set_(self, "open_order_count", sum(orders.count for orders in open_orders.values()))
        else:
            _check_count(self, "open_order_count", self.open_order_count, minimum=0)
        prices: dict[VenueSymbol, Decimal] = {}
        for key, price in _frozen_mapping(self, "last_prices", self.last_prices).items():
            checked = _check_key(self, "last_prices", key)
            if price is not None:
                exact = _exact(price)
                check_decimal(self, f"last_prices[{checked!r}]", exact, positive=True)
                prices[checked] = exact
        set_(self, "last_prices", MappingProxyType(prices))
        set_(self, "daily_pnl", _exact(self.daily_pnl))
        check_decimal(self, "daily_pnl", self.daily_pnl)
        for name in ("equity", "peak_equity"):
            set_(self, name, _exact(getattr(self, name)))
            check_decimal(self, name, getattr(self, name), optional=True)

    @classmethod
    def of_checked(
        cls,
        *,
        positions: dict[VenueSymbol, Decimal],
        open_orders: dict[VenueSymbol, OpenOrders],
        last_prices: dict[VenueSymbol, Decimal],
        daily_pnl: Decimal,
        equity: Decimal,
        peak_equity: Decimal,
        open_order_count: int | None = None,
    ) -> RiskContext:
        """A context from figures each already checked as ``__post_init__`` would check
        them, without checking them again; the caller gives up the dicts.
        ``open_order_count``, when given, must be the sum of the tallies' counts
        (the guard's book keeps it as the number of orders it tallies).

        The risk guard's book (``_risk.RiskBook``) builds one per decision and per
        position update; re-validating every position, price and tally entry each
        time was about a third of the guard's CPU per order. It is safe because the
        book checks each figure where it enters (``RiskBook.set_position``,
        ``set_price``: finite, prices > 0) and its keys are the ``venue`` and
        ``symbol`` of messages that validated them; ``OpenOrders`` validate on
        construction; the PnL figures are sums and differences of finite decimals
        (an overflow raises, it never yields an infinity). ``open_order_count`` is
        the sum of the tallies' counts, as ``__post_init__`` computes it.
        """
        context = object.__new__(cls)
        set_ = object.__setattr__
        set_(context, "positions", MappingProxyType(positions))
        set_(context, "open_orders", MappingProxyType(open_orders))
        if open_order_count is None:
            open_order_count = sum(orders.count for orders in open_orders.values())
        set_(context, "open_order_count", open_order_count)
        set_(context, "last_prices", MappingProxyType(last_prices))
        set_(context, "daily_pnl", daily_pnl)
        set_(context, "equity", equity)
        set_(context, "peak_equity", peak_equity)
        return context

    @classmethod
    def from_books(
        cls,
        *,
        positions: Iterable[PositionSnapshot] = (),
        open_orders: Iterable[tuple[SubmitOrder, Decimal]] = (),
        last_prices: Mapping[VenueSymbol, Decimal | None] | None = None,
        daily_pnl: Decimal = _ZERO,
        equity: Decimal | None = None,
        peak_equity: Decimal | None = None,
    ) -> RiskContext:
        """Assemble a context from net position snapshots and ``(order, leaves quantity)`` pairs.

        Snapshots are summed per ``(venue, symbol)``, so per-strategy
        snapshots work as well as net ones; orders with nothing left to
        fill still count as open orders until the OMS closes them.
        """
        net: dict[VenueSymbol, Decimal] = {}
        for snapshot in positions:
            key = (snapshot.venue, snapshot.symbol)
            net[key] = net.get(key, _ZERO) + snapshot.quantity
        tally: dict[VenueSymbol, OpenOrders] = {}
        for order, leaves in open_orders:
            key = (order.venue, order.symbol)
            tally[key] = tally.get(key, _NO_OPEN_ORDERS).plus(order.side, leaves)
        return cls(
            positions=net,
            open_orders=tally,
            last_prices={} if last_prices is None else last_prices,
            daily_pnl=daily_pnl,
            equity=equity,
            peak_equity=peak_equity,
        )

    def position(self, key: VenueSymbol) -> Decimal:
        return self.positions.get(key, _ZERO)

    def orders(self, key: VenueSymbol) -> OpenOrders:
        return self.open_orders.get(key, _NO_OPEN_ORDERS)

    def last_price(self, key: VenueSymbol) -> Decimal | None:
        return self.last_prices.get(key)

    def total_open_orders(self) -> int:
        count = self.open_order_count
        return 0 if count is None else count

    def with_open_order(self, order: SubmitOrder, leaves: Decimal | None = None) -> RiskContext:
        """This snapshot plus one approved order the OMS has not recorded yet.

        The actor needs it when it approves several orders between two OMS
        snapshots: without it each approval would be judged as if the
        previous ones did not exist.
        """
        key = (order.venue, order.symbol)
        quantity = order.quantity if leaves is None else leaves
        open_orders = dict(self.open_orders)
        open_orders[key] = self.orders(key).plus(order.side, quantity)
        return RiskContext(
            positions=self.positions,
            open_orders=open_orders,
            open_order_count=self.total_open_orders() + 1,
            last_prices=self.last_prices,
            daily_pnl=self.daily_pnl,
            equity=self.equity,
            peak_equity=self.peak_equity,
        )
