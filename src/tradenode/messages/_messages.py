"""Every command and event exchanged between tradenode's actors.

Messages are frozen, slotted dataclasses so they can be shared between
actor threads without copies or locks. Money, prices and quantities are
``Decimal`` because venues speak decimal strings and floats round;
timestamps are integer nanoseconds since the Unix epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from ._enums import (
    DecisionAction,
    DenialCode,
    LiquiditySide,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
)
from ._fast_init import with_fast_init
from ._validation import (
    check_client_order_id,
    check_decimal,
    check_enum,
    check_finite_decimal,
    check_identifier,
    check_non_negative_decimal,
    check_optional_identifier,
    check_optional_positive_decimal,
    check_positive_decimal,
    check_timestamp,
)

__all__ = [
    "CancelAllOrders",
    "CancelOrder",
    "CancelRejected",
    "ExecutionDecision",
    "Message",
    "ModifyOrder",
    "ModifyRejected",
    "OrderAccepted",
    "OrderCanceled",
    "OrderDenied",
    "OrderExpired",
    "OrderFilled",
    "OrderModified",
    "OrderRejected",
    "OrderStatusReport",
    "OrderSubmitted",
    "PositionSnapshot",
    "QueryOrder",
    "Quote",
    "SubmitOrder",
    "TradingStateChanged",
]


class Message:
    """Marker base of every message; holds no state."""

    __slots__ = ()


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class Quote(Message):
    """Top of book and last trade for one symbol at one venue."""

    venue: str
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal | None = None
    ts_ns: int = 0
    bid_size: Decimal | None = None
    """The quantity bid at ``bid``, where the venue says (the router's ``split``)."""
    ask_size: Decimal | None = None
    """The quantity offered at ``ask``, where the venue says."""

    def __post_init__(self) -> None:
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_positive_decimal(self, "bid", self.bid)
        check_positive_decimal(self, "ask", self.ask)
        check_optional_positive_decimal(self, "last", self.last)
        check_decimal(self, "bid_size", self.bid_size, non_negative=True, optional=True)
        check_decimal(self, "ask_size", self.ask_size, non_negative=True, optional=True)
        check_timestamp(self, "ts_ns", self.ts_ns)
        if self.bid > self.ask:
            raise ValueError(f"Quote: bid {self.bid} is above ask {self.ask}")

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionDecision(Message):
    """A strategy's wish for its position in one symbol (the seed API's decision)."""

    strategy_id: str
    symbol: str
    action: DecisionAction
    size: Decimal
    confidence: float = 1.0
    venue: str | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_identifier(self, "strategy_id", self.strategy_id)
        check_identifier(self, "symbol", self.symbol)
        check_enum(self, "action", self.action, DecisionAction)
        check_non_negative_decimal(self, "size", self.size)
        confidence = self.confidence
        exact_float = type(confidence) is float  # the common case: nothing to convert
        if not exact_float and (
            isinstance(confidence, bool) or not isinstance(confidence, float | int)
        ):
            raise ValueError(f"ExecutionDecision.confidence={confidence!r}: must be a number")
        if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
            raise ValueError(f"ExecutionDecision.confidence={confidence!r}: must be within [0, 1]")
        if not exact_float:
            object.__setattr__(self, "confidence", float(confidence))
        check_optional_identifier(self, "venue", self.venue)
        check_enum(self, "order_type", self.order_type, OrderType)
        check_enum(self, "time_in_force", self.time_in_force, TimeInForce)
        check_optional_positive_decimal(self, "limit_price", self.limit_price)
        check_timestamp(self, "ts_ns", self.ts_ns)
        if self.action in _TAKES_A_POSITION and self.size <= 0:
            raise ValueError(
                f"ExecutionDecision.size={self.size!r}: {self.action.value} needs a size > 0"
            )
        if self.order_type.needs_price and self.limit_price is None:
            raise ValueError(
                f"ExecutionDecision.limit_price=None: a {self.order_type.value} decision needs a limit_price"
            )


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrder(Message):
    """A new order, identified by our client order id from intent to terminal state."""

    client_order_id: str
    strategy_id: str
    venue: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_offset: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time_ns: int | None = None
    post_only: bool = False
    reduce_only: bool = False
    ts_ns: int = 0
    parent_id: str | None = None
    """The parent order this is a child of (``SubmitParentOrder``); None for a plain order.
    Defaulted, so journals written before parents existed decode unchanged."""
    route: str | None = None
    """Where the router sent an order that named no venue, and why (policy, venue,
    quotes, failover); None for an order that named its venue. Recorded on the
    order so the OMS journals it with it. Defaulted: old journals decode unchanged."""
    display_quantity: Decimal | None = None
    """A native iceberg: the venue shows only this much of the order at a time and
    refreshes it from the hidden rest as it fills (Binance ``icebergQty``). Only a
    LIMIT GTC order can carry one, below its quantity; the risk guard denies it
    where the venue does not declare ``native_iceberg``. Defaulted: old journals
    decode unchanged."""

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_client_order_id(self, "parent_id", self.parent_id, optional=True)
        if self.route is not None:
            _check_text(self, "route", self.route)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_enum(self, "side", self.side, Side)
        check_enum(self, "order_type", self.order_type, OrderType)
        check_enum(self, "time_in_force", self.time_in_force, TimeInForce)
        check_positive_decimal(self, "quantity", self.quantity)
        check_optional_positive_decimal(self, "price", self.price)
        check_optional_positive_decimal(self, "stop_price", self.stop_price)
        check_optional_positive_decimal(self, "trailing_offset", self.trailing_offset)
        check_timestamp(self, "expire_time_ns", self.expire_time_ns, optional=True)
        check_timestamp(self, "ts_ns", self.ts_ns)
        _check_flag(self, "post_only", self.post_only)
        _check_flag(self, "reduce_only", self.reduce_only)
        # Each fact read once: a property or an enum member read off its class
        # costs more than the comparison it feeds, and every order passes here
        # (``.value`` too is a Python-level descriptor: read only to word an error).
        needs_stop_price = self.order_type.needs_stop_price
        trailing = self.order_type is OrderType.TRAILING_STOP
        good_till_date = self.time_in_force is TimeInForce.GTD
        if self.order_type.needs_price and self.price is None:
            raise ValueError(
                f"SubmitOrder.price=None: a {self.order_type.value} order needs a price"
            )
        if self.order_type is OrderType.MARKET and self.price is not None:
            raise ValueError(f"SubmitOrder.price={self.price!r}: a MARKET order takes no price")
        if needs_stop_price and self.stop_price is None:
            raise ValueError(
                f"SubmitOrder.stop_price=None: a {self.order_type.value} order needs a stop_price"
            )
        if not needs_stop_price and self.stop_price is not None:
            raise ValueError(
                f"SubmitOrder.stop_price={self.stop_price!r}: a {self.order_type.value} order takes no stop_price"
            )
        if not trailing and self.trailing_offset is not None:
            raise ValueError(
                f"SubmitOrder.trailing_offset={self.trailing_offset!r}: only TRAILING_STOP orders take an offset"
            )
        if not good_till_date and self.expire_time_ns is not None:
            raise ValueError(
                f"SubmitOrder.expire_time_ns={self.expire_time_ns!r}: only GTD orders take an expiry"
            )
        if trailing and self.trailing_offset is None:
            raise ValueError(
                "SubmitOrder.trailing_offset=None: a TRAILING_STOP order needs an offset"
            )
        if good_till_date and self.expire_time_ns is None:
            raise ValueError("SubmitOrder.expire_time_ns=None: a GTD order needs an expiry")
        if self.post_only and self.order_type is not OrderType.LIMIT:
            raise ValueError(
                f"SubmitOrder.post_only=True: only LIMIT orders can be post-only, not {self.order_type.value}"
            )
        if self.post_only and self.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            raise ValueError(
                f"SubmitOrder.post_only=True: a post-only order cannot be {self.time_in_force.value}"
            )
        if self.display_quantity is not None:
            check_positive_decimal(self, "display_quantity", self.display_quantity)
            shown = self.display_quantity
            if self.order_type is not OrderType.LIMIT:
                raise ValueError(
                    f"SubmitOrder.display_quantity={shown!r}: only LIMIT orders can be "
                    f"icebergs, not {self.order_type.value}"
                )
            if self.time_in_force is not TimeInForce.GTC:
                raise ValueError(
                    f"SubmitOrder.display_quantity={shown!r}: an iceberg must be GTC, "
                    f"not {self.time_in_force.value}"
                )
            if shown >= self.quantity:
                raise ValueError(
                    f"SubmitOrder.display_quantity={shown!r}: must be below the "
                    f"quantity {self.quantity}"
                )

    @property
    def notional(self) -> Decimal | None:
        """Quantity times the order's own price, when it has one."""
        reference = self.price if self.price is not None else self.stop_price
        return None if reference is None else self.quantity * reference


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(Message):
    client_order_id: str
    venue: str
    symbol: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyOrder(Message):
    """Change an open order's quantity or prices.

    ``new_client_order_id`` names the replacement when the venue can only
    cancel/replace; the OMS links both ids as one logical order.
    """

    client_order_id: str
    venue: str
    symbol: str
    quantity: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    new_client_order_id: str | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_optional_positive_decimal(self, "quantity", self.quantity)
        check_optional_positive_decimal(self, "price", self.price)
        check_optional_positive_decimal(self, "stop_price", self.stop_price)
        check_client_order_id(self, "new_client_order_id", self.new_client_order_id, optional=True)
        check_timestamp(self, "ts_ns", self.ts_ns)
        if self.quantity is None and self.price is None and self.stop_price is None:
            raise ValueError(
                "ModifyOrder: nothing to modify (quantity, price and stop_price are all None)"
            )
        if self.new_client_order_id == self.client_order_id:
            raise ValueError("ModifyOrder.new_client_order_id: must differ from client_order_id")


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class QueryOrder(Message):
    """Ask the venue for an order's current state (the answer is an OrderStatusReport)."""

    client_order_id: str
    venue: str
    symbol: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAllOrders(Message):
    """Cancel every open order at a venue (all venues when ``venue`` is None)."""

    venue: str | None = None
    symbol: str | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_optional_identifier(self, "venue", self.venue)
        check_optional_identifier(self, "symbol", self.symbol)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderDenied(Message):
    """Refused before reaching any venue; ``code`` is for machines, ``reason`` for people."""

    client_order_id: str
    strategy_id: str
    code: DenialCode
    reason: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "strategy_id", self.strategy_id)
        check_enum(self, "code", self.code, DenialCode)
        _check_text(self, "reason", self.reason)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSubmitted(Message):
    """The OMS handed the order to its broker actor."""

    client_order_id: str
    venue: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Message):
    client_order_id: str
    venue: str
    venue_order_id: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "venue_order_id", self.venue_order_id)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRejected(Message):
    """The venue refused the order; ``code`` is the venue's own error code."""

    client_order_id: str
    venue: str
    code: str
    reason: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "code", self.code)
        _check_text(self, "reason", self.reason)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(Message):
    """One execution; ``execution_id`` is unique per venue and makes fills idempotent."""

    client_order_id: str
    venue: str
    venue_order_id: str
    execution_id: str
    symbol: str
    side: Side
    last_quantity: Decimal
    last_price: Decimal
    commission: Decimal = Decimal(0)
    """Negative for a maker rebate."""
    commission_asset: str | None = None
    liquidity: LiquiditySide = LiquiditySide.NONE
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "venue_order_id", self.venue_order_id)
        check_identifier(self, "execution_id", self.execution_id)
        check_identifier(self, "symbol", self.symbol)
        check_enum(self, "side", self.side, Side)
        check_positive_decimal(self, "last_quantity", self.last_quantity)
        check_positive_decimal(self, "last_price", self.last_price)
        check_finite_decimal(self, "commission", self.commission)
        check_optional_identifier(self, "commission_asset", self.commission_asset)
        check_enum(self, "liquidity", self.liquidity, LiquiditySide)
        check_timestamp(self, "ts_ns", self.ts_ns)

    @property
    def notional(self) -> Decimal:
        return self.last_quantity * self.last_price


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCanceled(Message):
    client_order_id: str
    venue: str
    venue_order_id: str | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_optional_identifier(self, "venue_order_id", self.venue_order_id)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderExpired(Message):
    client_order_id: str
    venue: str
    venue_order_id: str | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_optional_identifier(self, "venue_order_id", self.venue_order_id)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderModified(Message):
    """The venue amended the order in place (native amend)."""

    client_order_id: str
    venue: str
    venue_order_id: str
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "venue_order_id", self.venue_order_id)
        check_positive_decimal(self, "quantity", self.quantity)
        check_optional_positive_decimal(self, "price", self.price)
        check_optional_positive_decimal(self, "stop_price", self.stop_price)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRejected(Message):
    client_order_id: str
    venue: str
    code: str
    reason: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "code", self.code)
        _check_text(self, "reason", self.reason)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyRejected(Message):
    client_order_id: str
    venue: str
    code: str
    reason: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "code", self.code)
        _check_text(self, "reason", self.reason)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStatusReport(Message):
    """The venue's own view of one order, answering a query or a reconciliation."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    status: OrderStatus
    quantity: Decimal
    filled_quantity: Decimal
    venue_order_id: str | None = None
    order_type: OrderType = OrderType.LIMIT
    price: Decimal | None = None
    avg_fill_price: Decimal | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_client_order_id(self, "client_order_id", self.client_order_id)
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_enum(self, "side", self.side, Side)
        check_enum(self, "status", self.status, OrderStatus)
        check_enum(self, "order_type", self.order_type, OrderType)
        check_positive_decimal(self, "quantity", self.quantity)
        check_non_negative_decimal(self, "filled_quantity", self.filled_quantity)
        check_optional_identifier(self, "venue_order_id", self.venue_order_id)
        check_optional_positive_decimal(self, "price", self.price)
        check_optional_positive_decimal(self, "avg_fill_price", self.avg_fill_price)
        check_timestamp(self, "ts_ns", self.ts_ns)
        if self.filled_quantity > self.quantity:
            raise ValueError(
                f"OrderStatusReport.filled_quantity={self.filled_quantity}: exceeds quantity {self.quantity}"
            )


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSnapshot(Message):
    """A net position; ``quantity`` is signed (negative is short)."""

    venue: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    unrealized_pnl: Decimal = Decimal(0)
    strategy_id: str | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_finite_decimal(self, "quantity", self.quantity)
        check_non_negative_decimal(self, "avg_price", self.avg_price)
        check_finite_decimal(self, "realized_pnl", self.realized_pnl)
        check_finite_decimal(self, "unrealized_pnl", self.unrealized_pnl)
        check_optional_identifier(self, "strategy_id", self.strategy_id)
        check_timestamp(self, "ts_ns", self.ts_ns)


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class TradingStateChanged(Message):
    state: TradingState
    reason: str
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_enum(self, "state", self.state, TradingState)
        _check_text(self, "reason", self.reason)
        check_timestamp(self, "ts_ns", self.ts_ns)


_TAKES_A_POSITION = frozenset({DecisionAction.LONG, DecisionAction.SHORT})
"""Decisions that need a size > 0 (read per decision: a set, not a tuple of class reads)."""


def _check_flag(owner: object, field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be a bool")


def _check_text(owner: object, field: str, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{type(owner).__name__}.{field}={value!r}: must be a string")
