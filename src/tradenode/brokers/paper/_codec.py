"""Pure mapping between the paper venue's payloads and tradenode messages.

The paper venue speaks simulator events; this is the one place that knows
how they become our messages, the same role a venue codec plays for a real
exchange's JSON. Anything it does not recognise is a
``MalformedPayloadError``, never a silent drop.
"""

from __future__ import annotations

from ..._exceptions import MalformedPayloadError
from ...messages._enums import LiquiditySide, OrderStatus
from ...messages._market import MarketTrade
from ...messages._messages import (
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderStatusReport,
    Quote,
)
from ...sim import (
    SimAccepted,
    SimAmended,
    SimCanceled,
    SimExpired,
    SimFill,
    SimOrder,
    SimOrderStatus,
    SimQuote,
    SimTriggered,
)
from ._venue import TapePrint

__all__ = [
    "STATUS_MAP",
    "accepted_to_message",
    "execution_id",
    "fill_to_message",
    "stream_event_to_message",
    "to_status_report",
]

STATUS_MAP: dict[SimOrderStatus, OrderStatus] = {
    SimOrderStatus.NEW: OrderStatus.ACCEPTED,
    SimOrderStatus.PARTIALLY_FILLED: OrderStatus.PARTIALLY_FILLED,
    SimOrderStatus.FILLED: OrderStatus.FILLED,
    SimOrderStatus.CANCELED: OrderStatus.CANCELED,
    SimOrderStatus.EXPIRED: OrderStatus.EXPIRED,
    SimOrderStatus.REJECTED: OrderStatus.REJECTED,
}


# Read once: a member looked up on an enum class goes through ``EnumType``'s
# Python-level ``__getattr__`` on every fill.
_MAKER = LiquiditySide.MAKER
_TAKER = LiquiditySide.TAKER


def execution_id(venue: str, trade_id: int) -> str:
    return f"{venue}-{trade_id}"


def fill_to_message(venue: str, event: SimFill) -> OrderFilled:
    """A fill of the account's as the OMS hears it (every order's last event)."""
    return OrderFilled(
        client_order_id=event.client_order_id,
        venue=venue,
        venue_order_id=str(event.venue_order_id),
        execution_id=execution_id(venue, event.trade_id),
        symbol=event.symbol,
        side=event.side,
        last_quantity=event.quantity,
        last_price=event.price,
        commission=event.commission,
        commission_asset=event.commission_asset,
        liquidity=_MAKER if event.is_maker else _TAKER,
        ts_ns=event.ts_ns,
    )


def accepted_to_message(venue: str, event: SimAccepted) -> OrderAccepted:
    """An acceptance as the OMS hears it (every order's first event)."""
    return OrderAccepted(
        client_order_id=event.client_order_id,
        venue=venue,
        venue_order_id=str(event.venue_order_id),
        ts_ns=event.ts_ns,
    )


def stream_event_to_message(venue: str, event: object) -> Message | None:
    """One stream event as a message for the OMS (or a quote, or a print of the
    public tape); None for events with no counterpart (a stop trigger is visible
    later as fills)."""
    if isinstance(event, SimFill):
        return fill_to_message(venue, event)
    if isinstance(event, SimAccepted):
        return accepted_to_message(venue, event)
    if isinstance(event, SimCanceled):
        return OrderCanceled(
            client_order_id=event.client_order_id,
            venue=venue,
            venue_order_id=str(event.venue_order_id),
            ts_ns=event.ts_ns,
        )
    if isinstance(event, SimExpired):
        return OrderExpired(
            client_order_id=event.client_order_id,
            venue=venue,
            venue_order_id=str(event.venue_order_id),
            ts_ns=event.ts_ns,
        )
    if isinstance(event, SimAmended):
        return OrderModified(
            client_order_id=event.client_order_id,
            venue=venue,
            venue_order_id=str(event.venue_order_id),
            quantity=event.quantity,
            price=event.price,
            stop_price=event.stop_price,
            ts_ns=event.ts_ns,
        )
    if isinstance(event, SimQuote):
        return Quote(
            venue=venue,
            symbol=event.symbol,
            bid=event.bid,
            ask=event.ask,
            last=event.last,
            ts_ns=event.ts_ns,
            bid_size=event.bid_size,
            ask_size=event.ask_size,
        )
    if isinstance(event, TapePrint):
        return MarketTrade(
            venue=venue,
            symbol=event.symbol,
            trade_id=str(event.trade_id),
            price=event.price,
            quantity=event.quantity,
            aggressor=event.aggressor,
            ts_ns=event.ts_ns,
        )
    if isinstance(event, SimTriggered):
        return None
    raise MalformedPayloadError(
        f"unexpected paper venue payload {type(event).__name__}: {event!r}", broker=venue
    )


def to_status_report(venue: str, order: SimOrder) -> OrderStatusReport:
    return OrderStatusReport(
        client_order_id=order.client_order_id,
        venue=venue,
        symbol=order.symbol,
        side=order.side,
        status=STATUS_MAP[order.status],
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        venue_order_id=str(order.venue_order_id),
        order_type=order.order_type,
        price=order.price,
        avg_fill_price=order.avg_fill_price,
        ts_ns=order.updated_ns,
    )
