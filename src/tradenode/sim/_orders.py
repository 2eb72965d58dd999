"""The simulator's own mutable order record and the plain-data forms of its state.

Callers only ever see :class:`~tradenode.sim.SimOrder` copies; this record is
what the matching loop mutates in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tradenode.messages._enums import OrderType, Side, TimeInForce
from tradenode.sim._events import SimFill, SimOrder, SimOrderStatus
from tradenode.sim._numbers import ZERO

__all__ = ["CONDITIONAL_TYPES", "BookedOrder", "fill_from_plain", "fill_to_plain"]

#: Types that wait for a trigger before they execute: stops and if-touched orders.
CONDITIONAL_TYPES = frozenset(
    {
        OrderType.STOP,
        OrderType.STOP_LIMIT,
        OrderType.TRAILING_STOP,
        OrderType.MARKET_IF_TOUCHED,
        OrderType.LIMIT_IF_TOUCHED,
    }
)

_MARKET = OrderType.MARKET
"""Read once: a member read off its enum class pays ``EnumType``'s ``__getattr__`` hook."""


@dataclass(slots=True)
class BookedOrder:
    """An accepted order.

    ``reserved`` is what this order holds locked in the ledger, in the quote
    asset for a buy and the base asset for a sell; the ledger's locked column
    for an asset is always the sum of its open orders' reservations.
    ``trail_anchor`` is the best last price a trailing stop has seen.
    ``stop_price`` is the trigger of every conditional type, stop or if-touched.
    """

    venue_order_id: int
    client_order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    stop_price: Decimal | None
    trailing_offset: Decimal | None
    trail_anchor: Decimal | None
    post_only: bool
    expire_time_ns: int | None
    created_ns: int
    updated_ns: int
    status: SimOrderStatus = SimOrderStatus.NEW
    triggered: bool = False
    filled_quantity: Decimal = ZERO
    filled_notional: Decimal = ZERO
    reserved: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def awaits_trigger(self) -> bool:
        return self.order_type in CONDITIONAL_TYPES and not self.triggered

    @property
    def rests_as_limit(self) -> bool:
        """True when the order waits on the book at its own price (and so makes)."""
        if self.order_type is OrderType.LIMIT:
            return True
        return (
            self.order_type in (OrderType.STOP_LIMIT, OrderType.LIMIT_IF_TOUCHED) and self.triggered
        )

    @property
    def takes_at_market(self) -> bool:
        return self.order_type is _MARKET or (
            self.order_type
            in (OrderType.STOP, OrderType.TRAILING_STOP, OrderType.MARKET_IF_TOUCHED)
            and self.triggered
        )

    def view(self) -> SimOrder:
        average = self.filled_notional / self.filled_quantity if self.filled_quantity else None
        return SimOrder(
            venue_order_id=self.venue_order_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            time_in_force=self.time_in_force,
            quantity=self.quantity,
            filled_quantity=self.filled_quantity,
            filled_notional=self.filled_notional,
            avg_fill_price=average,
            price=self.price,
            stop_price=self.stop_price,
            trailing_offset=self.trailing_offset,
            post_only=self.post_only,
            expire_time_ns=self.expire_time_ns,
            triggered=self.triggered,
            status=self.status,
            created_ns=self.created_ns,
            updated_ns=self.updated_ns,
        )

    def to_plain(self) -> dict[str, Any]:
        return {
            "venue_order_id": self.venue_order_id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "order_type": self.order_type.value,
            "time_in_force": self.time_in_force.value,
            "quantity": str(self.quantity),
            "price": _optional_str(self.price),
            "stop_price": _optional_str(self.stop_price),
            "trailing_offset": _optional_str(self.trailing_offset),
            "trail_anchor": _optional_str(self.trail_anchor),
            "post_only": self.post_only,
            "expire_time_ns": self.expire_time_ns,
            "created_ns": self.created_ns,
            "updated_ns": self.updated_ns,
            "status": self.status.value,
            "triggered": self.triggered,
            "filled_quantity": str(self.filled_quantity),
            "filled_notional": str(self.filled_notional),
            "reserved": str(self.reserved),
        }

    @classmethod
    def from_plain(cls, plain: Mapping[str, Any]) -> BookedOrder:
        return cls(
            venue_order_id=int(plain["venue_order_id"]),
            client_order_id=str(plain["client_order_id"]),
            symbol=str(plain["symbol"]),
            side=Side(plain["side"]),
            order_type=OrderType(plain["order_type"]),
            time_in_force=TimeInForce(plain["time_in_force"]),
            quantity=Decimal(plain["quantity"]),
            price=_optional_decimal(plain["price"]),
            stop_price=_optional_decimal(plain["stop_price"]),
            trailing_offset=_optional_decimal(plain["trailing_offset"]),
            trail_anchor=_optional_decimal(plain["trail_anchor"]),
            post_only=bool(plain["post_only"]),
            expire_time_ns=_optional_int(plain["expire_time_ns"]),
            created_ns=int(plain["created_ns"]),
            updated_ns=int(plain["updated_ns"]),
            status=SimOrderStatus(plain["status"]),
            triggered=bool(plain["triggered"]),
            filled_quantity=Decimal(plain["filled_quantity"]),
            filled_notional=Decimal(plain["filled_notional"]),
            reserved=Decimal(plain["reserved"]),
        )


def fill_to_plain(fill: SimFill) -> dict[str, Any]:
    return {
        "trade_id": fill.trade_id,
        "venue_order_id": fill.venue_order_id,
        "client_order_id": fill.client_order_id,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": str(fill.quantity),
        "price": str(fill.price),
        "commission": str(fill.commission),
        "commission_asset": fill.commission_asset,
        "is_maker": fill.is_maker,
        "cumulative_quantity": str(fill.cumulative_quantity),
        "leaves_quantity": str(fill.leaves_quantity),
        "ts_ns": fill.ts_ns,
    }


def fill_from_plain(plain: Mapping[str, Any]) -> SimFill:
    return SimFill(
        trade_id=int(plain["trade_id"]),
        venue_order_id=int(plain["venue_order_id"]),
        client_order_id=str(plain["client_order_id"]),
        symbol=str(plain["symbol"]),
        side=Side(plain["side"]),
        quantity=Decimal(plain["quantity"]),
        price=Decimal(plain["price"]),
        commission=Decimal(plain["commission"]),
        commission_asset=str(plain["commission_asset"]),
        is_maker=bool(plain["is_maker"]),
        cumulative_quantity=Decimal(plain["cumulative_quantity"]),
        leaves_quantity=Decimal(plain["leaves_quantity"]),
        ts_ns=int(plain["ts_ns"]),
    )


def _optional_str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
