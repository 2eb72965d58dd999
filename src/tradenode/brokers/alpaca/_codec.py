"""Alpaca's Trading API v2 and its streams, as pure data: no I/O.

- **Orders out**: our ``SubmitOrder`` as a ``POST /v2/orders`` body
  (:func:`encode_order`): market, limit, stop, stop-limit and trailing stop
  (``trail_price``), times in force day/gtc/opg/cls/ioc/fok, ``extended_hours``
  for a day limit order when the settings ask for it; decimals always as
  strings; quantities and prices checked against the asset before anything
  is sent (fractional only where the asset is ``fractionable``, and then as
  Alpaca allows it: day orders; the sub-penny rule on prices). A replace is a
  ``PATCH /v2/orders/{id}`` body (:func:`encode_replace`): whole shares only.
- **Answers in**: orders, positions, the account, the market clock, assets,
  account activities (``FILL``), cancel-all's 207 list, error bodies
  (:func:`parse_error`, classified by HTTP status first: 403 and 422 are
  business refusals, 404 not found, 429 rate limited, 5xx an unknown outcome).
- **Streams**: ``trade_updates`` messages (:func:`parse_stream_message`;
  JSON in text *or binary* frames, as paper sends them) and the market-data
  stream's JSON frames (:func:`parse_data_frame`: quotes become ``Quote``).

**Execution ids.** A ``trade_updates`` fill carries ``execution_id``, but the
REST record a reconciliation reads (``/v2/account/activities/FILL``) has
its own activity id and no documented link to it. Both carry the order id
and the order's cumulative filled quantity after the fill (the stream's
``order.filled_qty``, the activity's ``cum_qty``), which grows with every
execution of that order. So the execution id the OMS sees is
``alpaca-<order id>-<cumulative quantity>`` (:func:`execution_id`) from
either path, and a fill seen live and again in a sweep is one fill.

Every malformed payload raises ``MalformedPayloadError`` (through the kit's
:class:`~tradenode.brokers.JsonFields`); an order we cannot express raises
:class:`UnsupportedOrderError` before a byte is sent.
"""

from __future__ import annotations

import calendar
import enum
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..._exceptions import BrokerRejectedError, MalformedPayloadError
from ...messages._enums import OrderStatus, OrderType, Side, TimeInForce
from ...messages._messages import ModifyOrder, OrderStatusReport, Quote, SubmitOrder
from .._fields import JsonFields, decode_json

__all__ = [
    "ALPACA_ORDER_TYPES",
    "ALPACA_TIME_IN_FORCE",
    "EXECUTION_PREFIX",
    "AlpacaAccount",
    "AlpacaAsset",
    "AlpacaErrorAnswer",
    "AlpacaFields",
    "AlpacaOrder",
    "Authorization",
    "CancelAllItem",
    "DataControl",
    "ErrorKind",
    "Fill",
    "Listening",
    "MarketClock",
    "RateHeaders",
    "StreamMessage",
    "TradeUpdate",
    "UnknownStream",
    "UnsupportedOrderError",
    "auth_message",
    "decimal_text",
    "encode_order",
    "encode_replace",
    "execution_id",
    "format_time",
    "is_open_status",
    "listen_message",
    "map_status",
    "parse_account",
    "parse_activities",
    "parse_asset",
    "parse_cancel_all",
    "parse_clock",
    "parse_data_frame",
    "parse_error",
    "parse_order",
    "parse_orders",
    "parse_positions",
    "parse_rate_headers",
    "parse_stream_message",
    "parse_time_ns",
    "status_report",
]

EXECUTION_PREFIX = "alpaca-"

#: Our order types as Alpaca names them (equities; crypto takes fewer, checked below).
_TYPES = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP: "stop",
    OrderType.STOP_LIMIT: "stop_limit",
    OrderType.TRAILING_STOP: "trailing_stop",
}
_TYPES_BACK = {value: key for key, value in _TYPES.items()}
ALPACA_ORDER_TYPES = frozenset(_TYPES)

_TIFS = {
    TimeInForce.DAY: "day",
    TimeInForce.GTC: "gtc",
    TimeInForce.OPG: "opg",
    TimeInForce.CLS: "cls",
    TimeInForce.IOC: "ioc",
    TimeInForce.FOK: "fok",
}
_TIFS_BACK = {value: key for key, value in _TIFS.items()}
ALPACA_TIME_IN_FORCE = frozenset(_TIFS)

#: Order statuses Alpaca documents (spec enum, plus alpaca-py's ``pending_review``),
#: mapped to ours. ``replaced`` ends this order id: its successor is a new order.
_STATUS = {
    "new": OrderStatus.ACCEPTED,
    "accepted": OrderStatus.ACCEPTED,
    "pending_new": OrderStatus.ACCEPTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,
    "stopped": OrderStatus.ACCEPTED,
    "suspended": OrderStatus.ACCEPTED,
    "done_for_day": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.ACCEPTED,
    "pending_review": OrderStatus.ACCEPTED,
    "pending_cancel": OrderStatus.ACCEPTED,
    "pending_replace": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "replaced": OrderStatus.CANCELED,
    "rejected": OrderStatus.REJECTED,
}
_TERMINAL = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})

_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?(Z|[+-]\d{2}:\d{2})$"
)


class UnsupportedOrderError(BrokerRejectedError):
    """The order cannot be expressed on Alpaca (type, time in force, increments); not sent."""


class AlpacaFields(JsonFields):
    """Alpaca's JSON: decimals as strings, ``""`` for "none" (``order_class``)."""

    __slots__ = ()

    EMPTY_IS_NONE = True

    def time_ns(self, key: str) -> int:
        return parse_time_ns(self.text(key), broker=self.broker, where=f"{self.where}.{key}")

    def opt_time_ns(self, key: str) -> int | None:
        text = self.opt_text(key)
        if text is None:
            return None
        return parse_time_ns(text, broker=self.broker, where=f"{self.where}.{key}")

    def side(self, key: str) -> Side:
        value = self.text(key)
        if value == "buy":
            return Side.BUY
        if value == "sell":
            return Side.SELL
        self.fail(f"{key}={value!r}: expected buy or sell")


# -- numbers and times -------------------------------------------------------------------------


def decimal_text(value: Decimal) -> str:
    """A decimal as Alpaca reads it: plain notation, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def execution_id(order_id: str, cumulative: Decimal) -> str:
    """The fill of ``order_id`` that took its filled quantity to ``cumulative``."""
    return f"{EXECUTION_PREFIX}{order_id}-{decimal_text(cumulative)}"


def parse_time_ns(text: str, *, broker: str | None = None, where: str = "time") -> int:
    """RFC 3339 with up to nanoseconds, ``Z`` or an offset (Alpaca writes both), as ns."""
    match = _TIME.match(text)
    if match is None:
        raise MalformedPayloadError(f"{where}={text!r}: not an RFC 3339 time", broker=broker)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        seconds = calendar.timegm(
            (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
        )
        time.gmtime(seconds)  # out of range -> error
    except (ValueError, OverflowError) as exc:
        raise MalformedPayloadError(f"{where}={text!r}: {exc}", broker=broker) from exc
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(hour) < 24):
        raise MalformedPayloadError(f"{where}={text!r}: not a valid time", broker=broker)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def format_time(ts_ns: int) -> str:
    """Epoch nanoseconds as RFC 3339 UTC with nanoseconds (``after=`` parameters)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


# -- orders out ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlpacaAsset:
    """What ``GET /v2/assets/{symbol}`` says about one symbol."""

    symbol: str
    asset_class: str
    tradable: bool
    fractionable: bool
    min_order_size: Decimal | None = None
    min_trade_increment: Decimal | None = None
    price_increment: Decimal | None = None

    @property
    def crypto(self) -> bool:
        return self.asset_class == "crypto"


def _check_price(name: str, price: Decimal, asset: AlpacaAsset) -> None:
    """Alpaca's sub-penny rule for equities (2 decimals at $1 and above, else 4);
    a crypto asset's ``price_increment``."""
    exponent = price.normalize().as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if asset.crypto:
        step = asset.price_increment
        if step is not None and step > 0 and price % step != 0:
            raise UnsupportedOrderError(
                f"{name} {price} is not a multiple of {asset.symbol}'s price increment {step}",
                code="INVALID_PRICE",
            )
        return
    allowed = 2 if price >= 1 else 4
    if places > allowed:
        raise UnsupportedOrderError(
            f"{name} {price}: sub-penny increment (at most {allowed} decimals at this price)",
            code="SUB_PENNY_PRICE",
        )


def _check_quantity(quantity: Decimal, asset: AlpacaAsset, tif: TimeInForce) -> None:
    fractional = quantity != quantity.to_integral_value()
    exponent = quantity.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        raise UnsupportedOrderError(
            f"quantity {quantity}: Alpaca takes at most 9 decimals", code="INVALID_QUANTITY"
        )
    if asset.crypto:
        step = asset.min_trade_increment
        if step is not None and step > 0 and quantity % step != 0:
            raise UnsupportedOrderError(
                f"quantity {quantity} is not a multiple of {asset.symbol}'s increment {step}",
                code="INVALID_QUANTITY",
            )
        if asset.min_order_size is not None and quantity < asset.min_order_size:
            raise UnsupportedOrderError(
                f"quantity {quantity} is below {asset.symbol}'s minimum {asset.min_order_size}",
                code="INVALID_QUANTITY",
            )
        return
    if fractional and not asset.fractionable:
        raise UnsupportedOrderError(
            f"{asset.symbol} is not fractionable: whole shares only", code="NOT_FRACTIONABLE"
        )
    if fractional and tif is not TimeInForce.DAY:
        raise UnsupportedOrderError(
            f"a fractional quantity takes time in force DAY only, not {tif.value}",
            code="FRACTIONAL_TIME_IN_FORCE",
        )


def encode_order(
    order: SubmitOrder, asset: AlpacaAsset, *, extended_hours: bool = False
) -> dict[str, Any]:
    """The ``POST /v2/orders`` body for ``order``, our client order id included.

    ``extended_hours`` marks a DAY limit order as eligible for the pre- and
    after-market sessions (the only orders Alpaca takes there)."""
    kind = _TYPES.get(order.order_type)
    if kind is None:
        raise UnsupportedOrderError(
            f"Alpaca has no {order.order_type.value} orders", code="UNSUPPORTED_ORDER_TYPE"
        )
    tif = _TIFS.get(order.time_in_force)
    if tif is None:
        raise UnsupportedOrderError(
            f"Alpaca has no time in force {order.time_in_force.value}",
            code="UNSUPPORTED_TIME_IN_FORCE",
        )
    if order.post_only:
        raise UnsupportedOrderError("Alpaca has no post-only orders", code="UNSUPPORTED_POST_ONLY")
    if order.reduce_only:
        raise UnsupportedOrderError(
            "Alpaca has no reduce-only orders", code="UNSUPPORTED_REDUCE_ONLY"
        )
    if not asset.tradable:
        raise UnsupportedOrderError(f"{asset.symbol} is not tradable", code="NOT_TRADABLE")
    if asset.crypto:
        if order.order_type not in (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LIMIT):
            raise UnsupportedOrderError(
                f"crypto takes market, limit and stop-limit orders, not {kind}",
                code="UNSUPPORTED_ORDER_TYPE",
            )
        if order.time_in_force not in (TimeInForce.GTC, TimeInForce.IOC):
            raise UnsupportedOrderError(
                f"crypto takes time in force gtc or ioc, not {tif}",
                code="UNSUPPORTED_TIME_IN_FORCE",
            )
    if order.order_type is OrderType.TRAILING_STOP:
        if order.trailing_offset is None:
            raise UnsupportedOrderError(
                "a trailing stop needs trailing_offset (Alpaca's trail_price)",
                code="INVALID_TRAIL",
            )
        if order.time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
            raise UnsupportedOrderError(
                f"a trailing stop takes day or gtc, not {tif}", code="UNSUPPORTED_TIME_IN_FORCE"
            )
    _check_quantity(order.quantity, asset, order.time_in_force)
    body: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": decimal_text(order.quantity),
        "side": "buy" if order.side is Side.BUY else "sell",
        "type": kind,
        "time_in_force": tif,
        "client_order_id": order.client_order_id,
    }
    if order.price is not None:
        _check_price("limit_price", order.price, asset)
        body["limit_price"] = decimal_text(order.price)
    if order.stop_price is not None:
        _check_price("stop_price", order.stop_price, asset)
        body["stop_price"] = decimal_text(order.stop_price)
    if order.order_type is OrderType.TRAILING_STOP:
        assert order.trailing_offset is not None
        _check_price("trail_price", order.trailing_offset, asset)
        body["trail_price"] = decimal_text(order.trailing_offset)
    if (
        extended_hours
        and not asset.crypto
        and order.order_type is OrderType.LIMIT
        and order.time_in_force is TimeInForce.DAY
    ):
        body["extended_hours"] = True
    return body


def encode_replace(
    current: AlpacaOrder,
    command: ModifyOrder,
    new_client_order_id: str,
    asset: AlpacaAsset,
    *,
    filled_before: Decimal = Decimal(0),
) -> dict[str, Any]:
    """The ``PATCH /v2/orders/{id}`` body: what is left of the logical total and the
    new prices, under the new client order id.

    ``command.quantity`` is the logical order's total: what is left is that
    minus what its earlier orders filled (``filled_before``) and what
    ``current`` has filled; without a new quantity, ``current``'s own rest.
    Alpaca replaces whole shares only (the spec: a fractional quantity cannot
    change), and a replaced partly filled order is reported to get the
    original quantity back, so the quantity is always sent explicitly."""
    if current.qty is None:
        raise UnsupportedOrderError("a notional order cannot be replaced", code="NOT_REPLACEABLE")
    if command.quantity is None:
        remaining = current.qty - current.filled_qty
    else:
        remaining = command.quantity - filled_before - current.filled_qty
    if remaining <= 0:
        raise UnsupportedOrderError(
            f"nothing left to replace: {filled_before + current.filled_qty} already filled",
            code="NOTHING_LEFT",
        )
    if remaining != remaining.to_integral_value():
        raise UnsupportedOrderError(
            f"Alpaca replaces whole shares only, not {remaining}", code="FRACTIONAL_REPLACE"
        )
    body: dict[str, Any] = {
        "qty": decimal_text(remaining),
        "client_order_id": new_client_order_id,
    }
    if command.price is not None:
        if current.limit_price is None:
            raise UnsupportedOrderError(
                f"a {current.kind} order has no limit price", code="INVALID_REPLACE"
            )
        _check_price("limit_price", command.price, asset)
        body["limit_price"] = decimal_text(command.price)
    if command.stop_price is not None:
        if current.stop_price is None:
            raise UnsupportedOrderError(
                f"a {current.kind} order has no stop price", code="INVALID_REPLACE"
            )
        _check_price("stop_price", command.stop_price, asset)
        body["stop_price"] = decimal_text(command.stop_price)
    return body


# -- answers in ---------------------------------------------------------------------------------


def _json(text: str | bytes, broker: str | None, what: str) -> object:
    return decode_json(text, broker, what)


@dataclass(frozen=True, slots=True)
class AlpacaOrder:
    """One Alpaca order as REST or the stream shows it."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    kind: str
    """Alpaca's ``type`` (``market``, ``limit``, ...)."""
    order_type: OrderType | None
    time_in_force: TimeInForce | None
    status: str
    qty: Decimal | None
    """None for a notional order."""
    notional: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    replaced_by: str | None
    replaces: str | None
    extended_hours: bool
    ts_ns: int
    """``updated_at``."""
    created_ns: int

    @property
    def terminal(self) -> bool:
        return self.status in _TERMINAL


def is_open_status(status: str) -> bool:
    return status not in _TERMINAL


def parse_order(raw: object, *, broker: str | None = None, where: str = "order") -> AlpacaOrder:
    f = AlpacaFields(raw, broker, where)
    kind = f.opt_text("type") or f.text("order_type")
    tif_text = f.text("time_in_force")
    status = f.text("status")
    if status not in _STATUS:
        f.fail(f"status={status!r}: not an Alpaca order status")
    qty = f.opt_decimal("qty", non_negative=True)
    notional = f.opt_decimal("notional", non_negative=True)
    if qty is None and notional is None:
        f.fail("neither qty nor notional")
    extended = f.obj.get("extended_hours", False)
    if not isinstance(extended, bool):
        f.fail(f"extended_hours={extended!r}: expected true or false")
    return AlpacaOrder(
        order_id=f.text("id"),
        client_order_id=f.text("client_order_id"),
        symbol=f.text("symbol"),
        side=f.side("side"),
        kind=kind,
        order_type=_TYPES_BACK.get(kind),
        time_in_force=_TIFS_BACK.get(tif_text),
        status=status,
        qty=qty,
        notional=notional,
        filled_qty=f.opt_decimal("filled_qty", non_negative=True) or Decimal(0),
        filled_avg_price=f.opt_decimal("filled_avg_price", non_negative=True),
        limit_price=f.opt_decimal("limit_price", non_negative=True),
        stop_price=f.opt_decimal("stop_price", non_negative=True),
        replaced_by=f.opt_text("replaced_by"),
        replaces=f.opt_text("replaces"),
        extended_hours=extended,
        ts_ns=f.time_ns("updated_at") if f.has("updated_at") and f.obj["updated_at"] else 0,
        created_ns=f.opt_time_ns("created_at") or 0,
    )


def parse_orders(body: object, *, broker: str | None = None) -> list[AlpacaOrder]:
    if not isinstance(body, list):
        raise MalformedPayloadError(
            f"orders: expected a JSON array, got {type(body).__name__}", broker=broker
        )
    return [parse_order(raw, broker=broker, where=f"orders[{i}]") for i, raw in enumerate(body)]


def map_status(status: str, filled: Decimal) -> OrderStatus:
    """Our status for Alpaca's ``status``, given what the OMS has been told filled."""
    mapped = _STATUS.get(status, OrderStatus.ACCEPTED)
    if mapped is OrderStatus.ACCEPTED and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return mapped


def status_report(
    venue: str, order: AlpacaOrder, client_order_id: str, *, filled: Decimal, ts_ns: int
) -> OrderStatusReport:
    """The venue's view of ``order``; ``filled`` caps the filled quantity to what the
    OMS has been told (a report never claims more fills than were forwarded)."""
    done = min(filled, order.filled_qty)
    status = map_status(order.status, done)
    if status is OrderStatus.FILLED and done < order.filled_qty:
        status = OrderStatus.PARTIALLY_FILLED
    quantity = order.qty if order.qty is not None else order.filled_qty
    if quantity <= 0:
        quantity = done if done > 0 else Decimal(1)
    return OrderStatusReport(
        client_order_id=client_order_id,
        venue=venue,
        symbol=order.symbol,
        side=order.side,
        status=status,
        quantity=quantity,
        filled_quantity=done,
        venue_order_id=order.order_id,
        order_type=order.order_type or OrderType.MARKET,
        price=order.limit_price,
        avg_fill_price=order.filled_avg_price if done > 0 and order.filled_avg_price else None,
        ts_ns=ts_ns,
    )


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, from the stream or from the account's FILL activities."""

    order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    cumulative: Decimal
    """The order's filled quantity after this execution."""
    ts_ns: int

    @property
    def execution_id(self) -> str:
        return execution_id(self.order_id, self.cumulative)


@dataclass(frozen=True, slots=True)
class ActivityPage:
    fills: tuple[Fill, ...]
    last_id: str | None
    """The id of the page's last row: the next page's ``page_token``."""
    last_time: str | None
    """The last row's ``transaction_time``."""
    rows: int


def parse_activities(body: object, *, broker: str | None = None) -> ActivityPage:
    """One page of ``GET /v2/account/activities/FILL`` (``direction=asc``)."""
    if not isinstance(body, list):
        raise MalformedPayloadError(
            f"activities: expected a JSON array, got {type(body).__name__}", broker=broker
        )
    fills = []
    last_id = last_time = None
    for i, raw in enumerate(body):
        f = AlpacaFields(raw, broker, f"activities[{i}]")
        last_id = f.text("id")
        last_time = f.text("transaction_time")
        if f.text("activity_type") != "FILL":
            continue
        fills.append(
            Fill(
                order_id=f.text("order_id"),
                symbol=f.text("symbol"),
                side=f.side("side"),
                qty=f.decimal("qty", non_negative=True),
                price=f.decimal("price", non_negative=True),
                cumulative=f.decimal("cum_qty", non_negative=True),
                ts_ns=f.time_ns("transaction_time"),
            )
        )
    return ActivityPage(tuple(fills), last_id, last_time, len(body))


@dataclass(frozen=True, slots=True)
class AlpacaAccount:
    account_id: str
    status: str
    currency: str
    cash: Decimal
    buying_power: Decimal
    trading_blocked: bool


def parse_account(body: object, *, broker: str | None = None) -> AlpacaAccount:
    f = AlpacaFields(body, broker, "account")
    blocked = f.obj.get("trading_blocked", False)
    return AlpacaAccount(
        account_id=f.text("id"),
        status=f.text("status"),
        currency=f.opt_text("currency") or "USD",
        cash=f.decimal("cash"),
        buying_power=f.opt_decimal("buying_power") or Decimal(0),
        trading_blocked=blocked is True,
    )


def parse_positions(body: object, *, broker: str | None = None) -> dict[str, Decimal]:
    """Symbol -> signed quantity (a short's ``qty`` made negative whatever its sign)."""
    if not isinstance(body, list):
        raise MalformedPayloadError(
            f"positions: expected a JSON array, got {type(body).__name__}", broker=broker
        )
    positions: dict[str, Decimal] = {}
    for i, raw in enumerate(body):
        f = AlpacaFields(raw, broker, f"positions[{i}]")
        qty = abs(f.decimal("qty"))
        side = f.text("side")
        if side not in ("long", "short"):
            f.fail(f"side={side!r}: expected long or short")
        positions[f.text("symbol")] = -qty if side == "short" else qty
    return positions


def parse_asset(body: object, *, broker: str | None = None) -> AlpacaAsset:
    f = AlpacaFields(body, broker, "asset")
    return AlpacaAsset(
        symbol=f.text("symbol"),
        asset_class=f.text("class"),
        tradable=f.flag("tradable"),
        fractionable=f.flag("fractionable"),
        min_order_size=f.opt_decimal("min_order_size", non_negative=True),
        min_trade_increment=f.opt_decimal("min_trade_increment", non_negative=True),
        price_increment=f.opt_decimal("price_increment", non_negative=True),
    )


@dataclass(frozen=True, slots=True)
class MarketClock:
    """``GET /v2/clock``: whether the regular session is open, and its next edges."""

    ts_ns: int
    is_open: bool
    next_open_ns: int
    next_close_ns: int

    def open_at(self, ts_ns: int) -> bool | None:
        """Whether the session is open at ``ts_ns`` (venue time), or None once the
        next edge has passed (the clock must be read again)."""
        edge = self.next_close_ns if self.is_open else self.next_open_ns
        if ts_ns >= edge:
            return None
        return self.is_open


def parse_clock(body: object, *, broker: str | None = None) -> MarketClock:
    f = AlpacaFields(body, broker, "clock")
    return MarketClock(
        ts_ns=f.time_ns("timestamp"),
        is_open=f.flag("is_open"),
        next_open_ns=f.time_ns("next_open"),
        next_close_ns=f.time_ns("next_close"),
    )


@dataclass(frozen=True, slots=True)
class CancelAllItem:
    """One order of cancel-all's 207 answer: ``status`` is that order's HTTP status."""

    order_id: str
    status: int
    code: str
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def parse_cancel_all(body: object, *, broker: str | None = None) -> list[CancelAllItem]:
    if not isinstance(body, list):
        raise MalformedPayloadError(
            f"cancel-all: expected a JSON array, got {type(body).__name__}", broker=broker
        )
    items = []
    for i, raw in enumerate(body):
        f = AlpacaFields(raw, broker, f"cancel_all[{i}]")
        code, message = "", ""
        inner = f.obj.get("body")
        if isinstance(inner, Mapping):
            code = str(inner.get("code", "") or "")
            message = str(inner.get("message", "") or "")
        items.append(CancelAllItem(f.text("id"), f.integer("status"), code, message))
    return items


# -- errors and headers ------------------------------------------------------------------------


class ErrorKind(enum.Enum):
    REFUSED = "refused"
    """403/422/400: a business refusal (buying power, validation); never retried."""
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    """422 40010001 "client_order_id must be unique": the venue has that id already."""
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    """429: definitely not processed."""
    UNAUTHORIZED = "unauthorized"
    UNKNOWN_OUTCOME = "unknown_outcome"
    """5xx (and anything unexpected): the request may have been processed."""


@dataclass(frozen=True, slots=True)
class AlpacaErrorAnswer:
    status: int
    code: str
    message: str
    kind: ErrorKind


def parse_error(status: int, content: bytes) -> AlpacaErrorAnswer:
    """Alpaca's ``{"code": 8 digits, "message": ...}``, classified by HTTP status first
    (the code's first digits do not always echo it: 40010001 comes with 422). A body
    that is not JSON (a proxy's 502 page) still classifies by its status."""
    code, message = "", ""
    try:
        body = decode_json(content, None, "error") if content else None
    except MalformedPayloadError:
        body = None
        message = content[:200].decode("utf-8", "replace")
    if isinstance(body, Mapping):
        raw_code = body.get("code")
        code = str(raw_code) if raw_code is not None else ""
        message = str(body.get("message", "") or "")
    if status == 401:
        kind = ErrorKind.UNAUTHORIZED
    elif status == 404:
        kind = ErrorKind.NOT_FOUND
    elif status == 429:
        kind = ErrorKind.RATE_LIMITED
    elif status == 422 and "client_order_id" in message and "unique" in message:
        kind = ErrorKind.DUPLICATE_CLIENT_ID
    elif status in (400, 403, 409, 422):
        kind = ErrorKind.REFUSED
    else:
        kind = ErrorKind.UNKNOWN_OUTCOME
    return AlpacaErrorAnswer(status, code or f"HTTP_{status}", message or f"HTTP {status}", kind)


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """``X-Ratelimit-Limit`` / ``-Remaining`` / ``-Reset`` (epoch seconds), per minute."""

    limit: float
    remaining: float
    reset_s: float | None


def parse_rate_headers(headers: Mapping[str, str]) -> RateHeaders | None:
    """The rate headers (lower-cased keys), or None when absent or unreadable."""
    try:
        limit = float(headers["x-ratelimit-limit"])
        remaining = float(headers["x-ratelimit-remaining"])
    except (KeyError, ValueError):
        return None
    reset: float | None
    try:
        reset = float(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        reset = None
    return RateHeaders(limit, remaining, reset)


# -- trade_updates ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authorization:
    authorized: bool
    action: str


@dataclass(frozen=True, slots=True)
class Listening:
    streams: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    """One ``trade_updates`` event; ``fill`` is set for ``fill``/``partial_fill``."""

    event: str
    order: AlpacaOrder
    fill: Fill | None
    venue_execution_id: str | None
    position_qty: Decimal | None
    ts_ns: int


@dataclass(frozen=True, slots=True)
class UnknownStream:
    stream: str


StreamMessage = Authorization | Listening | TradeUpdate | UnknownStream


def auth_message(key_id: str, secret_key: str) -> dict[str, Any]:
    return {"action": "authenticate", "data": {"key_id": key_id, "secret_key": secret_key}}


def listen_message(streams: Sequence[str]) -> dict[str, Any]:
    return {"action": "listen", "data": {"streams": list(streams)}}


def parse_stream_message(text: str | bytes, *, broker: str | None = None) -> StreamMessage:
    """One ``trade_updates`` connection message (JSON, in a text or binary frame)."""
    f = AlpacaFields(_json(text, broker, "trade_updates"), broker, "message")
    stream = f.text("stream")
    data = f.child("data")
    if stream == "authorization":
        status = data.text("status")
        return Authorization(status == "authorized", data.opt_text("action") or "")
    if stream == "listening":
        raw = data.raw("streams")
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            data.fail(f"streams={raw!r}: expected a list of names")
        return Listening(tuple(raw))
    if stream != "trade_updates":
        return UnknownStream(stream)
    event = data.text("event")
    order = parse_order(data.raw("order"), broker=broker, where="data.order")
    ts_ns = data.opt_time_ns("timestamp") or order.ts_ns
    fill = None
    if event in ("fill", "partial_fill"):
        qty = data.decimal("qty", non_negative=True)
        price = data.decimal("price", non_negative=True)
        if qty <= 0 or price <= 0:
            data.fail(f"a {event} of {qty} at {price}")
        if order.filled_qty < qty:
            data.fail(f"order.filled_qty {order.filled_qty} is below this fill's qty {qty}")
        fill = Fill(
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            qty=qty,
            price=price,
            cumulative=order.filled_qty,
            ts_ns=ts_ns,
        )
    return TradeUpdate(
        event=event,
        order=order,
        fill=fill,
        venue_execution_id=data.opt_text("execution_id"),
        position_qty=data.opt_decimal("position_qty"),
        ts_ns=ts_ns,
    )


# -- market data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataControl:
    """A market-data control message: ``success``, ``subscription`` or ``error``."""

    kind: str
    message: str
    code: int | None = None


def parse_data_frame(
    text: str | bytes, *, venue: str, broker: str | None = None
) -> list[Quote | DataControl]:
    """One market-data frame (always a JSON array): quotes as ``Quote``, control
    messages as :class:`DataControl`; trades, bars and the rest are skipped."""
    body = _json(text, broker, "market data")
    if not isinstance(body, list):
        raise MalformedPayloadError(
            f"market data: expected a JSON array, got {type(body).__name__}", broker=broker
        )
    out: list[Quote | DataControl] = []
    for i, raw in enumerate(body):
        f = AlpacaFields(raw, broker, f"data[{i}]")
        kind = f.text("T")
        if kind in ("success", "subscription"):
            out.append(DataControl(kind, str(f.obj.get("msg", ""))))
        elif kind == "error":
            code = f.obj.get("code")
            out.append(
                DataControl(
                    kind, str(f.obj.get("msg", "")), code if isinstance(code, int) else None
                )
            )
        elif kind == "q":
            bid, ask = f.decimal("bp", non_negative=True), f.decimal("ap", non_negative=True)
            if bid <= 0 or ask <= 0:
                continue  # one side empty (outside hours): no quote to give
            try:
                out.append(
                    Quote(venue=venue, symbol=f.text("S"), bid=bid, ask=ask, ts_ns=f.time_ns("t"))
                )
            except ValueError as exc:
                f.fail(f"not a quote: {exc}")
    return out
