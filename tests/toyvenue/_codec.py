"""The toy wire protocol, pure: lines of JSON in, tradenode messages out.

The protocol (version 1) is newline-delimited JSON over one TCP connection.
The client sends requests ``{"id": n, "op": ..., ...}``; the venue answers
each with ``{"id": n, "ok": {...}}`` or ``{"id": n, "err": {"code", "msg",
"retry_after"?}}``, and pushes the account's events unasked as
``{"ev": "accepted" | "fill" | "canceled" | "expired" | "amended" | "quote", ...}``.
Numbers that are money or quantities travel as strings (Decimal-exact).

Nothing here does I/O. Anything it cannot read is a ``MalformedPayloadError``,
never a silent drop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tradenode import MalformedPayloadError
from tradenode.messages import (
    LiquiditySide,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
)

__all__ = [
    "TOY_ORDER_TYPES",
    "TOY_TIME_IN_FORCE",
    "ToyError",
    "ToyFill",
    "ToyOrder",
    "UnsupportedOrderError",
    "encode",
    "execution_id",
    "fill_to_message",
    "parse_event",
    "parse_fill",
    "parse_line",
    "parse_order",
    "submit_params",
    "to_status_report",
]

#: What the codec can express; the capabilities declare exactly these.
TOY_ORDER_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
TOY_TIME_IN_FORCE = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})

_STATUS = {
    "NEW": OrderStatus.ACCEPTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
}
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


class UnsupportedOrderError(ValueError):
    """An order the toy protocol cannot express."""


@dataclass(frozen=True, slots=True)
class ToyError:
    """A request the venue refused: ``BUSY`` (retry after), ``AUTH``, ``NOT_FOUND``,
    ``STALE`` (older than its window), or a business code."""

    code: str
    msg: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class ToyOrder:
    client_order_id: str
    order_id: int
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    filled: Decimal
    price: Decimal | None
    avg_price: Decimal | None
    status: str
    ts_ns: int

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class ToyFill:
    trade_id: int
    client_order_id: str
    order_id: int
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    leaves: Decimal
    ts_ns: int


# -- framing --------------------------------------------------------------------------


def encode(frame: Mapping[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode() + b"\n"


def parse_line(line: bytes, *, broker: str) -> dict[str, Any]:
    try:
        frame = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPayloadError(f"not JSON: {line[:80]!r}", broker=broker) from exc
    if not isinstance(frame, dict):
        raise MalformedPayloadError(f"not an object: {line[:80]!r}", broker=broker)
    return frame


def parse_error(raw: Any, *, broker: str) -> ToyError:
    if not isinstance(raw, Mapping):
        raise MalformedPayloadError(f"unreadable error {raw!r}", broker=broker)
    retry = raw.get("retry_after")
    return ToyError(str(raw.get("code", "")), str(raw.get("msg", "")), _float(retry))


# -- requests ---------------------------------------------------------------------------


def submit_params(order: SubmitOrder) -> dict[str, Any]:
    """A ``SubmitOrder`` as the ``order`` of a submit request."""
    if order.order_type not in TOY_ORDER_TYPES:
        raise UnsupportedOrderError(f"the toy venue has no {order.order_type.value} orders")
    if order.time_in_force not in TOY_TIME_IN_FORCE:
        raise UnsupportedOrderError(f"the toy venue has no {order.time_in_force.value} orders")
    params: dict[str, Any] = {
        "cid": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.order_type.value,
        "qty": str(order.quantity),
        "tif": order.time_in_force.value,
    }
    if order.order_type is OrderType.LIMIT:
        assert order.price is not None
        params["price"] = str(order.price)
        if order.post_only:
            params["post_only"] = True
    return params


# -- answers and events -------------------------------------------------------------------


def parse_order(raw: Any, *, broker: str) -> ToyOrder:
    try:
        return ToyOrder(
            client_order_id=_str(raw["cid"]),
            order_id=int(raw["oid"]),
            symbol=_str(raw["symbol"]),
            side=Side(raw["side"]),
            order_type=OrderType(raw["type"]),
            quantity=_dec(raw["qty"]),
            filled=_dec(raw["filled"]),
            price=None if raw.get("price") is None else _dec(raw["price"]),
            avg_price=None if raw.get("avg") is None else _dec(raw["avg"]),
            status=_status(raw["status"]),
            ts_ns=int(raw["ts"]),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise MalformedPayloadError(f"unreadable order {raw!r}: {exc}", broker=broker) from exc


def parse_fill(raw: Any, *, broker: str) -> ToyFill:
    try:
        return ToyFill(
            trade_id=int(raw["tid"]),
            client_order_id=_str(raw["cid"]),
            order_id=int(raw["oid"]),
            symbol=_str(raw["symbol"]),
            side=Side(raw["side"]),
            quantity=_dec(raw["qty"]),
            price=_dec(raw["price"]),
            commission=_dec(raw["fee"]),
            commission_asset=_str(raw["fee_asset"]),
            maker=bool(raw["maker"]),
            leaves=_dec(raw["leaves"]),
            ts_ns=int(raw["ts"]),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise MalformedPayloadError(f"unreadable fill {raw!r}: {exc}", broker=broker) from exc


def parse_event(venue: str, raw: Mapping[str, Any]) -> ToyFill | Message:
    """One pushed event: a fill (kept as a ``ToyFill``: the actor moves its cursor),
    or the message it means."""
    kind = raw.get("ev")
    if kind == "fill":
        return parse_fill(raw.get("fill"), broker=venue)
    if kind == "quote":
        try:
            return Quote(
                venue=venue,
                symbol=_str(raw["symbol"]),
                bid=_dec(raw["bid"]),
                ask=_dec(raw["ask"]),
                last=_dec(raw["last"]),
                ts_ns=int(raw["ts"]),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise MalformedPayloadError(f"unreadable quote {raw!r}", broker=venue) from exc
    if kind in ("accepted", "canceled", "expired", "amended"):
        order = parse_order(raw.get("order"), broker=venue)
        common = {
            "client_order_id": order.client_order_id,
            "venue": venue,
            "venue_order_id": str(order.order_id),
            "ts_ns": order.ts_ns,
        }
        if kind == "accepted":
            return OrderAccepted(**common)
        if kind == "canceled":
            return OrderCanceled(**common)
        if kind == "expired":
            return OrderExpired(**common)
        return OrderModified(**common, quantity=order.quantity, price=order.price)
    raise MalformedPayloadError(f"unknown event {raw!r}", broker=venue)


def execution_id(venue: str, fill: ToyFill) -> str:
    """Unique per venue and the same from the stream, a query or a sweep."""
    return f"{venue}-{fill.trade_id}"


def fill_to_message(venue: str, fill: ToyFill) -> OrderFilled:
    return OrderFilled(
        client_order_id=fill.client_order_id,
        venue=venue,
        venue_order_id=str(fill.order_id),
        execution_id=execution_id(venue, fill),
        symbol=fill.symbol,
        side=fill.side,
        last_quantity=fill.quantity,
        last_price=fill.price,
        commission=fill.commission,
        commission_asset=fill.commission_asset,
        liquidity=LiquiditySide.MAKER if fill.maker else LiquiditySide.TAKER,
        ts_ns=fill.ts_ns,
    )


def to_status_report(venue: str, order: ToyOrder) -> OrderStatusReport:
    return OrderStatusReport(
        client_order_id=order.client_order_id,
        venue=venue,
        symbol=order.symbol,
        side=order.side,
        status=_STATUS[order.status],
        quantity=order.quantity,
        filled_quantity=order.filled,
        venue_order_id=str(order.order_id),
        order_type=order.order_type,
        price=order.price,
        avg_fill_price=order.avg_price,
        ts_ns=order.ts_ns,
    )


def parse_balances(raw: Any, *, broker: str) -> dict[str, Decimal]:
    """``{"balances": {asset: {"free", "locked"}}}`` as totals per asset."""
    try:
        return {
            _str(asset): _dec(row["free"]) + _dec(row["locked"])
            for asset, row in raw["balances"].items()
        }
    except (KeyError, TypeError, AttributeError, ValueError, InvalidOperation) as exc:
        raise MalformedPayloadError(f"unreadable balances {raw!r}", broker=broker) from exc


def parse_instruments(raw: Any, *, broker: str) -> dict[str, str]:
    """``{"instruments": [{"symbol", "base", "quote"}]}`` as symbol -> base asset."""
    try:
        return {_str(row["symbol"]): _str(row["base"]) for row in raw["instruments"]}
    except (KeyError, TypeError) as exc:
        raise MalformedPayloadError(f"unreadable instruments {raw!r}", broker=broker) from exc


def _status(value: Any) -> str:
    if value not in _STATUS:
        raise ValueError(f"unknown status {value!r}")
    return str(value)


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _dec(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {value!r}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not finite: {value!r}")
    return number


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)
