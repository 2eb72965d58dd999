"""Everything the simulator hands back: events, order snapshots and quotes.

All of them are frozen values so that a caller (a paper broker actor, a fake
venue's wire encoder) can keep, compare and forward them without the
simulator's later calls changing what it holds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from tradenode.messages._enums import OrderType, Side, TimeInForce

__all__ = [
    "SimAccepted",
    "SimAmended",
    "SimBalance",
    "SimCanceled",
    "SimEvent",
    "SimExpired",
    "SimFill",
    "SimOrder",
    "SimOrderStatus",
    "SimQuote",
    "SimRejectCode",
    "SimRejected",
    "SimTriggered",
]


class SimOrderStatus(enum.Enum):
    """Venue-side order states, named as Binance, OKX and Coinbase all map them.

    ``REJECTED`` is never held by a stored order: a refused submission is only
    reported (by :class:`SimRejected`) and not kept, so its client order id
    stays free for a corrected retry. The member exists so that a venue
    adapter can translate a rejection into the same vocabulary.
    """

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        # Identity tests against module globals: reading the members off the
        # class and building a tuple cost more than the question, asked of
        # every order on every fill.
        return self is _NEW or self is _PARTIALLY_FILLED


_NEW = SimOrderStatus.NEW
_PARTIALLY_FILLED = SimOrderStatus.PARTIALLY_FILLED


class SimRejectCode(enum.Enum):
    """Why a submit, cancel or amend was refused; stable strings for venue error mapping."""

    DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    INVALID_ORDER = "INVALID_ORDER"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    MIN_QUANTITY = "MIN_QUANTITY"
    LOT_SIZE = "LOT_SIZE"
    INVALID_PRICE = "INVALID_PRICE"
    TICK_SIZE = "TICK_SIZE"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    UNSUPPORTED_TIME_IN_FORCE = "UNSUPPORTED_TIME_IN_FORCE"
    INVALID_EXPIRE_TIME = "INVALID_EXPIRE_TIME"
    WOULD_TAKE = "WOULD_TAKE"
    STOP_WOULD_TRIGGER = "STOP_WOULD_TRIGGER"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    ALREADY_CLOSED = "ALREADY_CLOSED"
    NOT_AMENDABLE = "NOT_AMENDABLE"
    NOTHING_TO_AMEND = "NOTHING_TO_AMEND"
    QUANTITY_BELOW_FILLED = "QUANTITY_BELOW_FILLED"


@dataclass(frozen=True, slots=True)
class SimQuote:
    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal
    ts_ns: int
    bid_size: Decimal | None = None
    """What the synthetic book shows at the bid (one level's quantity)."""
    ask_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SimBalance:
    """``free`` may be negative only for a base asset sold short (``allow_short``)."""

    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class SimOrder:
    """A point-in-time copy of one order.

    For a trailing stop, ``stop_price`` is the current trigger level, which
    moves as the market moves in the order's favour. ``filled_notional`` is
    the sum of price times quantity over the order's fills (Binance's
    ``cummulativeQuoteQty``), kept exactly; ``avg_fill_price`` is derived from it.
    """

    venue_order_id: int
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    filled_quantity: Decimal
    filled_notional: Decimal
    avg_fill_price: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    trailing_offset: Decimal | None
    post_only: bool
    expire_time_ns: int | None
    triggered: bool
    status: SimOrderStatus
    created_ns: int
    updated_ns: int

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status.is_open


@dataclass(frozen=True, slots=True)
class SimAccepted:
    client_order_id: str
    venue_order_id: int
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    ts_ns: int


@dataclass(frozen=True, slots=True)
class SimRejected:
    """A refused submit, cancel or amend.

    ``venue_order_id`` is set when the refusal concerns an order the
    simulator knows (a cancel of a closed order, an invalid amend).
    """

    client_order_id: str
    code: SimRejectCode
    reason: str
    ts_ns: int
    venue_order_id: int | None = None


@dataclass(frozen=True, slots=True)
class SimFill:
    """One execution. The fill whose ``leaves_quantity`` is zero completes its order.

    ``commission`` is always charged in the quote asset, named by
    ``commission_asset`` so that a venue adapter need not look it up.
    """

    trade_id: int
    venue_order_id: int
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    cumulative_quantity: Decimal
    leaves_quantity: Decimal
    ts_ns: int

    @property
    def order_status(self) -> SimOrderStatus:
        """The order's status right after this fill."""
        if self.leaves_quantity == 0:
            return SimOrderStatus.FILLED
        return SimOrderStatus.PARTIALLY_FILLED


@dataclass(frozen=True, slots=True)
class SimCanceled:
    client_order_id: str
    venue_order_id: int
    symbol: str
    filled_quantity: Decimal
    ts_ns: int


@dataclass(frozen=True, slots=True)
class SimExpired:
    """The order's unfilled remainder was dropped; ``reason`` says which rule did it."""

    client_order_id: str
    venue_order_id: int
    symbol: str
    filled_quantity: Decimal
    reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class SimAmended:
    """An amend took effect; ``status`` is FILLED when it cut the quantity to the filled part."""

    client_order_id: str
    venue_order_id: int
    symbol: str
    quantity: Decimal
    filled_quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    status: SimOrderStatus
    ts_ns: int


@dataclass(frozen=True, slots=True)
class SimTriggered:
    """A conditional order's trigger was reached; it now executes as a market or limit order."""

    client_order_id: str
    venue_order_id: int
    symbol: str
    stop_price: Decimal
    last_price: Decimal
    ts_ns: int


SimEvent: TypeAlias = (
    SimAccepted | SimRejected | SimFill | SimCanceled | SimExpired | SimAmended | SimTriggered
)
