"""Trading vocabulary shared by every message.

Enum values are the short strings written to the wire and the journal, so
renaming a member is free but changing a value is a format change.
"""

from __future__ import annotations

import enum

__all__ = [
    "DecisionAction",
    "DenialCode",
    "LiquiditySide",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
    "TradingState",
]


class _IdentityHashedEnum(enum.Enum):
    """An enum whose members hash by identity, in C.

    ``enum.Enum.__hash__`` is a Python method (``hash(self._name_)``), so every
    set or dict look-up keyed by a member (the OMS's transition table, a
    status's ``is_terminal``, a risk rule's venue map) pays a Python call:
    about two dozen per order. A member is a singleton and compares by
    identity, so ``object.__hash__`` is consistent with equality. Nothing
    depends on the name-based value: string hashes are randomised per
    process, so no set of members ever had a stable order, and hashes are
    never written to the wire or the journal (values are).
    """

    __hash__ = object.__hash__


class Side(_IdentityHashedEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return _SIGN[self]

    @property
    def opposite(self) -> Side:
        return _OPPOSITE[self]


# Looked up rather than computed from ``Side.BUY``: a member read off its class
# goes through 3.11's ``EnumType.__getattr__`` hook, and a fill asks ``sign``
# several times (positions, risk, the OMS).
_SIGN = {Side.BUY: 1, Side.SELL: -1}
_OPPOSITE = {Side.BUY: Side.SELL, Side.SELL: Side.BUY}


class OrderType(_IdentityHashedEnum):
    """How an order executes, and what (if anything) it waits for first.

    The conditional types wait for the last price to reach their trigger
    (``stop_price``), then execute as a market order (STOP, TRAILING_STOP,
    MARKET_IF_TOUCHED) or a limit order at ``price`` (STOP_LIMIT,
    LIMIT_IF_TOUCHED). They differ in direction: a stop triggers when the
    price moves against it (a buy once last >= trigger, a sell once
    last <= trigger), an if-touched order when the price comes to it (a buy
    once last <= trigger, a sell once last >= trigger), which is what
    Binance calls TAKE_PROFIT and TAKE_PROFIT_LIMIT.
    """

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"
    MARKET_IF_TOUCHED = "MARKET_IF_TOUCHED"
    LIMIT_IF_TOUCHED = "LIMIT_IF_TOUCHED"

    @property
    def needs_price(self) -> bool:
        """Carries a limit price: it executes, at once or once triggered, as a limit order."""
        return self in _NEEDS_PRICE

    @property
    def needs_stop_price(self) -> bool:
        """Carries a fixed trigger price (a trailing stop computes its own from the offset)."""
        return self in _NEEDS_STOP_PRICE

    @property
    def triggers_on_touch(self) -> bool:
        """Triggers when the price comes to it (buy: last <= trigger), not against it."""
        return self in _TRIGGERS_ON_TOUCH


# Module-level sets rather than tuples built per call: every SubmitOrder asks
# ``needs_price`` and ``needs_stop_price`` twice, and a member attribute costs a
# descriptor call each time it is read on the class.
_NEEDS_PRICE = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.LIMIT_IF_TOUCHED})
_NEEDS_STOP_PRICE = frozenset(
    {
        OrderType.STOP,
        OrderType.STOP_LIMIT,
        OrderType.MARKET_IF_TOUCHED,
        OrderType.LIMIT_IF_TOUCHED,
    }
)
_TRIGGERS_ON_TOUCH = frozenset({OrderType.MARKET_IF_TOUCHED, OrderType.LIMIT_IF_TOUCHED})


class TimeInForce(_IdentityHashedEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    DAY = "DAY"
    GTD = "GTD"
    OPG = "OPG"
    CLS = "CLS"


class OrderStatus(_IdentityHashedEnum):
    """The full order lifecycle; legal moves live in the OMS transition table."""

    INITIALIZED = "INITIALIZED"
    DENIED = "DENIED"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    PENDING_REPLACE = "PENDING_REPLACE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self in _OPEN


_TERMINAL = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
    }
)
_OPEN = frozenset(OrderStatus) - _TERMINAL - {OrderStatus.INITIALIZED}


class LiquiditySide(_IdentityHashedEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"
    NONE = "NONE"


class DecisionAction(_IdentityHashedEnum):
    """What a strategy wants its position in a symbol to become."""

    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"
    HOLD = "HOLD"


class TradingState(_IdentityHashedEnum):
    """The risk guard's gate: ACTIVE, only exposure-reducing orders, or nothing."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class DenialCode(_IdentityHashedEnum):
    """Machine-readable reasons an order was refused before reaching a venue."""

    INVALID_ORDER = "INVALID_ORDER"
    MAX_ORDER_QUANTITY = "MAX_ORDER_QUANTITY"
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    MAX_POSITION = "MAX_POSITION"
    MAX_EXPOSURE = "MAX_EXPOSURE"
    MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"
    RATE_LIMIT = "RATE_LIMIT"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    PRICE_COLLAR = "PRICE_COLLAR"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    TICK_SIZE = "TICK_SIZE"
    LOT_SIZE = "LOT_SIZE"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    NO_MARKET_PRICE = "NO_MARKET_PRICE"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    VENUE_REJECTED = "VENUE_REJECTED"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    UNSUPPORTED_BY_VENUE = "UNSUPPORTED_BY_VENUE"
    """The venue does not declare the order's type, time in force, post-only flag
    or fractional quantity (``VenueCapabilities``); the reason names which."""
    APPROVAL_TIMEOUT = "APPROVAL_TIMEOUT"
    """The order waited for a person's approval (SEMI_AUTO, MANUAL) longer than allowed."""
    APPROVAL_REJECTED = "APPROVAL_REJECTED"
    """A person refused the order (or its strategy cancelled it) while it awaited approval."""
    NO_ROUTE = "NO_ROUTE"
    """The order names no venue and no venue listing its instrument can take it."""
