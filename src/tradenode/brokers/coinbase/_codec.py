"""Coinbase Advanced Trade's wire formats as our messages: a pure codec, no I/O.

Sources: the Advanced Trade REST reference (orders, fills, accounts,
products) and WebSocket channels page as crawled 2026-06-27 (fact sheet
section 3), and coinbase-advanced-py 1.8.4 (``rest/orders.py`` for the
order configurations, ``websocket/types`` for the channel fields).

- **Orders out** (:func:`encode_order`): a ``SubmitOrder`` as the body of
  ``POST /orders``: ``client_order_id``, ``product_id``, ``side`` and
  exactly one ``order_configuration`` (``market_market_ioc``/``_fok``,
  ``limit_limit_gtc``/``_gtd`` with ``post_only``, ``limit_limit_fok``,
  ``sor_limit_ioc``, ``stop_limit_stop_limit_gtc``/``_gtd`` with the stop
  direction that makes a stop trigger against the order). Numbers are
  decimal strings in the product's increments; anything else raises
  :class:`UnsupportedOrderError` before a byte is sent.
- **Orders, fills, accounts in**: the REST objects as frozen dataclasses;
  pages with their cursors.
- **WebSocket in**: every frame's envelope (``channel``, ``sequence_num``,
  ``events``) and the ``user``, ``heartbeats``, ``ticker``, ``l2_data`` and
  ``subscriptions`` events; :class:`TopOfBook` keeps each product's best bid
  and ask from ``level2``.
- **Fills from cumulative states** (:class:`CumulativeFills`): the user
  channel carries, per order, the cumulative filled size and average price,
  never a per-execution record. Each state that grows the cumulative size
  yields the execution(s) in between (size = the growth, price = the
  growth of ``size * avg_price`` over the growth of size); a state seen
  again, or older than one seen, yields nothing, so a repeated or
  reordered update never doubles a fill.
- **Errors** (:class:`CoinbaseErrorAnswer`): HTTP errors by meaning:
  rate limited (429), unauthorized (401/403), not found (404), unknown
  outcome (5xx), else a business refusal; and the HTTP-200 refusals of
  ``POST /orders`` (``success: false``), ``batch_cancel`` and ``edit``.

Every malformed payload raises ``MalformedPayloadError`` naming the field.
"""

from __future__ import annotations

import calendar
import enum
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, NoReturn

from ..._exceptions import BrokerRejectedError
from ...messages._enums import LiquiditySide, OrderStatus, OrderType, Side, TimeInForce
from ...messages._messages import OrderStatusReport, Quote, SubmitOrder
from .._fields import JsonFields, decode_json

__all__ = [
    "COINBASE_ORDER_TYPES",
    "COINBASE_TIME_IN_FORCE",
    "EDITABLE_CONFIGURATIONS",
    "EXECUTION_PREFIX",
    "BookEvent",
    "CancelResult",
    "CoinbaseAccount",
    "CoinbaseErrorAnswer",
    "CoinbaseFill",
    "CoinbaseOrder",
    "CoinbaseProduct",
    "CreateAnswer",
    "CumulativeFills",
    "DerivedFill",
    "EditAnswer",
    "ErrorKind",
    "HeartbeatEvent",
    "SubscriptionsEvent",
    "TickerEvent",
    "TopOfBook",
    "UnsupportedOrderError",
    "UserEvent",
    "UserOrder",
    "WsError",
    "WsFrame",
    "encode_edit",
    "encode_order",
    "execution_id",
    "format_time",
    "is_open_status",
    "map_status",
    "parse_accounts_page",
    "parse_cancel_answer",
    "parse_create_answer",
    "parse_edit_answer",
    "parse_error",
    "parse_fills_page",
    "parse_frame",
    "parse_json",
    "parse_order",
    "parse_order_answer",
    "parse_orders_page",
    "parse_product",
    "parse_server_time",
    "parse_time_ns",
    "status_report",
]

#: What this codec can express (the capabilities declare exactly these).
COINBASE_ORDER_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_LIMIT})
COINBASE_TIME_IN_FORCE = frozenset(
    {TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK}
)

#: The order configurations ``POST /orders/edit`` changes (price, size, stop price):
#: good-till-cancelled limit and stop-limit orders (edit-order reference; the SDK's
#: "only limit order types with time in force good-till-cancelled").
EDITABLE_CONFIGURATIONS = frozenset({"limit_limit_gtc", "stop_limit_stop_limit_gtc"})

#: Our execution ids are ``coinbase-<trade_id>``, from the REST fills list
#: (live and in reconciliation alike), so the OMS drops a fill it already has.
EXECUTION_PREFIX = "coinbase-"

_DECIMAL_TEXT = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9})\d*)?(Z|[+-]\d{2}:\d{2})$"
)
#: The zero time Coinbase writes for "not applicable" (``end_time`` of a GTC order).
_ZERO_TIME = "0001-01-01T00:00:00Z"


class UnsupportedOrderError(BrokerRejectedError):
    """The order cannot be expressed on Coinbase (type, time in force, increments); not sent."""


def execution_id(trade_id: str) -> str:
    return f"{EXECUTION_PREFIX}{trade_id}"


# -- field access -------------------------------------------------------------------------


class _Fields(JsonFields):
    """Coinbase's fields: integers may be strings, ``""`` is absent, booleans may be text."""

    __slots__ = ()
    INTEGER_TEXT = True
    EMPTY_IS_NONE = True

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.obj.get(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(f"{key}={value!r}: expected a boolean")
        return value

    def time_ns(self, key: str) -> int:
        value = self.text(key)
        try:
            return parse_time_ns(value)
        except ValueError:
            self.fail(f"{key}={value!r}: expected an RFC3339 time")

    def opt_time_ns(self, key: str) -> int | None:
        value = self.opt_text(key)
        if value is None or value == _ZERO_TIME:
            return None
        return self.time_ns(key)

    def side(self, key: str) -> Side:
        value = self.text(key)
        try:
            return Side(value.upper())
        except ValueError:
            self.fail(f"{key}={value!r}: expected BUY or SELL")

    def items(self, key: str) -> list[object]:
        value = self.raw(key)
        if not isinstance(value, list):
            self.fail(f"{key}: expected a list")
        return value


def parse_time_ns(text: str) -> int:
    """An RFC3339 time with up to nanoseconds (Coinbase writes 0 to 9 digits), in ns."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC3339 time: {text!r}")
    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    zone = match.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int((match.group(2) or "").ljust(9, "0"))


def format_time(ns: int) -> str:
    """Nanoseconds since the epoch as RFC3339 UTC (``end_time`` of a GTD order)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction == 0:
        return f"{stamp}Z"
    return f"{stamp}.{fraction:09d}".rstrip("0") + "Z"


def parse_json(text: bytes | str, *, broker: str | None = None, where: str = "payload") -> Any:
    """A JSON document; numbers with a fraction as ``Decimal``, constants refused."""
    return decode_json(text, broker, where)


def _number(value: Decimal) -> str:
    """A decimal as Coinbase takes it: plain notation, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


# -- products -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoinbaseProduct:
    """What the codec needs of ``GET /products/{id}``."""

    product_id: str
    base_currency: str
    quote_currency: str
    base_increment: Decimal
    price_increment: Decimal
    base_min_size: Decimal
    trading_disabled: bool = False


def parse_product(obj: object, *, broker: str | None = None) -> CoinbaseProduct:
    fields = _Fields(obj, broker, "product")
    product_id = fields.text("product_id")
    base, _, quote = product_id.partition("-")
    price_increment = fields.opt_decimal("price_increment") or fields.decimal("quote_increment")
    increment = fields.decimal("base_increment")
    if increment <= 0 or price_increment <= 0:
        fields.fail("increments must be positive")
    return CoinbaseProduct(
        product_id=product_id,
        base_currency=fields.opt_text("base_currency_id") or base,
        quote_currency=fields.opt_text("quote_currency_id") or quote,
        base_increment=increment,
        price_increment=price_increment,
        base_min_size=fields.opt_decimal("base_min_size") or Decimal(0),
        trading_disabled=fields.boolean("trading_disabled"),
    )


def parse_server_time(obj: object, *, broker: str | None = None) -> int:
    """``GET /time``: the venue's time in epoch seconds."""
    fields = _Fields(obj, broker, "time")
    return fields.integer("epochSeconds")


# -- orders out -----------------------------------------------------------------------------


def _on_increment(value: Decimal, increment: Decimal, what: str, code: str) -> str:
    steps = (value / increment).to_integral_value(rounding=ROUND_DOWN)
    if steps * increment != value:
        raise UnsupportedOrderError(
            f"{what} {value} is not a multiple of the product's increment {increment}", code=code
        )
    return _number(value)


def encode_order(command: SubmitOrder, product: CoinbaseProduct) -> dict[str, Any]:
    """``command`` as the body of ``POST /api/v3/brokerage/orders``."""
    size = _on_increment(command.quantity, product.base_increment, "size", "INVALID_SIZE_PRECISION")
    if command.quantity < product.base_min_size:
        raise UnsupportedOrderError(
            f"size {command.quantity} is below the product's minimum {product.base_min_size}",
            code="INVALID_SIZE_TOO_SMALL",
        )
    if command.reduce_only:
        raise UnsupportedOrderError(
            "Coinbase spot orders have no reduce-only flag", code="UNSUPPORTED_ORDER_CONFIGURATION"
        )
    tif, kind = command.time_in_force, command.order_type

    def price(value: Decimal | None, what: str) -> str:
        if value is None:
            raise UnsupportedOrderError(f"{kind.value} needs {what}", code="INVALID_LIMIT_PRICE")
        return _on_increment(value, product.price_increment, what, "INVALID_PRICE_PRECISION")

    def end_time() -> str:
        if command.expire_time_ns is None:
            raise UnsupportedOrderError("GTD needs an expire time", code="INVALID_END_TIME")
        return format_time(command.expire_time_ns)

    def refuse(why: str) -> NoReturn:
        raise UnsupportedOrderError(why, code="UNSUPPORTED_ORDER_CONFIGURATION")

    config: dict[str, Any]
    if kind is OrderType.MARKET:
        if command.post_only:
            refuse("a market order cannot be post-only")
        if tif in (TimeInForce.GTC, TimeInForce.IOC):
            config = {"market_market_ioc": {"base_size": size}}
        elif tif is TimeInForce.FOK:
            config = {"market_market_fok": {"base_size": size}}
        else:
            refuse(f"a market order is IOC or FOK, not {tif.value}")
    elif kind is OrderType.LIMIT:
        limit = price(command.price, "limit price")
        if tif is TimeInForce.GTC:
            config = {
                "limit_limit_gtc": {
                    "base_size": size,
                    "limit_price": limit,
                    "post_only": command.post_only,
                }
            }
        elif tif is TimeInForce.GTD:
            config = {
                "limit_limit_gtd": {
                    "base_size": size,
                    "limit_price": limit,
                    "end_time": end_time(),
                    "post_only": command.post_only,
                }
            }
        elif tif in (TimeInForce.FOK, TimeInForce.IOC):
            if command.post_only:
                refuse(f"a {tif.value} limit order cannot be post-only")
            key = "limit_limit_fok" if tif is TimeInForce.FOK else "sor_limit_ioc"
            config = {key: {"base_size": size, "limit_price": limit}}
        else:
            refuse(f"a limit order is GTC, GTD, IOC or FOK, not {tif.value}")
    elif kind is OrderType.STOP_LIMIT:
        if command.post_only:
            refuse("a stop-limit order cannot be post-only")
        body = {
            "base_size": size,
            "limit_price": price(command.price, "limit price"),
            "stop_price": price(command.stop_price, "stop price"),
            # A stop triggers against the order: a buy once the price rises to it.
            "stop_direction": (
                "STOP_DIRECTION_STOP_UP" if command.side is Side.BUY else "STOP_DIRECTION_STOP_DOWN"
            ),
        }
        if tif is TimeInForce.GTC:
            config = {"stop_limit_stop_limit_gtc": body}
        elif tif is TimeInForce.GTD:
            config = {"stop_limit_stop_limit_gtd": {**body, "end_time": end_time()}}
        else:
            refuse(f"a stop-limit order is GTC or GTD, not {tif.value}")
    else:
        refuse(f"Coinbase has no {kind.value} order in this adapter")
    return {
        "client_order_id": command.client_order_id,
        "product_id": command.symbol,
        "side": command.side.value,
        "order_configuration": config,
    }


def encode_edit(
    order_id: str,
    *,
    size: Decimal,
    price: Decimal,
    product: CoinbaseProduct,
    stop_price: Decimal | None = None,
) -> dict[str, Any]:
    """The body of ``POST /orders/edit``: the order's new total size and limit price
    (Coinbase wants both), and the stop price of a stop-limit order."""
    body = {
        "order_id": order_id,
        "price": _on_increment(price, product.price_increment, "price", "INVALID_PRICE_PRECISION"),
        "size": _on_increment(size, product.base_increment, "size", "INVALID_SIZE_PRECISION"),
    }
    if stop_price is not None:
        body["stop_price"] = _on_increment(
            stop_price, product.price_increment, "stop price", "INVALID_PRICE_PRECISION"
        )
    return body


# -- orders and fills in ----------------------------------------------------------------------

_STATUS = {
    "PENDING": OrderStatus.SUBMITTED,
    "QUEUED": OrderStatus.SUBMITTED,
    "OPEN": OrderStatus.ACCEPTED,
    "CANCEL_QUEUED": OrderStatus.PENDING_CANCEL,
    "EDIT_QUEUED": OrderStatus.PENDING_REPLACE,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "FAILED": OrderStatus.REJECTED,
}
_OPEN_STATUSES = frozenset({"PENDING", "QUEUED", "OPEN", "CANCEL_QUEUED", "EDIT_QUEUED"})


def map_status(status: str, filled: Decimal) -> OrderStatus | None:
    """Coinbase's order status as ours (OPEN with a fill is partially filled); None if unknown."""
    mapped = _STATUS.get(status.upper())
    if mapped is OrderStatus.ACCEPTED and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return mapped


def is_open_status(status: str) -> bool:
    return status.upper() in _OPEN_STATUSES


_ORDER_TYPES = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "STOP_LIMIT": OrderType.STOP_LIMIT,
}


@dataclass(frozen=True, slots=True)
class CoinbaseOrder:
    """An order object of ``GET /orders/historical/{id}`` or ``/batch``."""

    order_id: str
    client_order_id: str | None
    product_id: str
    side: Side
    status: str
    order_type: OrderType
    time_in_force: str
    size: Decimal | None
    """``base_size`` of its configuration (None for a quote-sized market order)."""
    limit_price: Decimal | None
    stop_price: Decimal | None
    filled_size: Decimal
    average_filled_price: Decimal | None
    ts_ns: int
    editable: bool
    """A GTC limit or stop-limit order: the kinds ``POST /orders/edit`` changes."""


def _configuration(fields: _Fields) -> tuple[str, _Fields | None]:
    raw = fields.obj.get("order_configuration")
    if not isinstance(raw, Mapping):
        return "", None
    for key, value in raw.items():
        if isinstance(value, Mapping):
            return key, _Fields(value, fields.broker, f"{fields.where}.order_configuration.{key}")
    return "", None


def parse_order(obj: object, *, broker: str | None = None) -> CoinbaseOrder:
    fields = _Fields(obj, broker, "order")
    key, config = _configuration(fields)
    size = limit = stop = None
    if config is not None:
        size = config.opt_decimal("base_size")
        limit = config.opt_decimal("limit_price")
        stop = config.opt_decimal("stop_price")
    order_type = fields.opt_text("order_type")
    mapped = _ORDER_TYPES.get((order_type or "").upper())
    if mapped is None:
        if key.startswith("market"):
            mapped = OrderType.MARKET
        elif key.startswith("stop_limit"):
            mapped = OrderType.STOP_LIMIT
        else:
            mapped = OrderType.LIMIT
    created = fields.opt_time_ns("created_time")
    filled = fields.opt_decimal("filled_size") or Decimal(0)
    average = fields.opt_decimal("average_filled_price")
    return CoinbaseOrder(
        order_id=fields.text("order_id"),
        client_order_id=fields.opt_text("client_order_id"),
        product_id=fields.text("product_id"),
        side=fields.side("side"),
        status=fields.text("status").upper(),
        order_type=mapped,
        time_in_force=fields.opt_text("time_in_force") or "",
        size=size,
        limit_price=limit,
        stop_price=stop,
        filled_size=filled,
        average_filled_price=average if average and filled > 0 else None,
        ts_ns=created or 0,
        editable=key in EDITABLE_CONFIGURATIONS,
    )


def parse_order_answer(body: object, *, broker: str | None = None) -> CoinbaseOrder:
    """``GET /orders/historical/{id}``: ``{"order": {...}}``."""
    return parse_order(_Fields(body, broker, "get order").raw("order"), broker=broker)


def _next_cursor(fields: _Fields, *, has_next_key: str | None) -> str | None:
    cursor = fields.opt_text("cursor")
    if has_next_key is not None and not fields.boolean(has_next_key):
        return None
    return cursor or None


def parse_orders_page(
    body: object, *, broker: str | None = None
) -> tuple[list[CoinbaseOrder], str | None]:
    """``GET /orders/historical/batch``: the orders and the next page's cursor (None: last)."""
    fields = _Fields(body, broker, "list orders")
    orders = [parse_order(raw, broker=broker) for raw in fields.items("orders")]
    return orders, _next_cursor(fields, has_next_key="has_next")


@dataclass(frozen=True, slots=True)
class CoinbaseFill:
    """One execution of ``GET /orders/historical/fills``."""

    trade_id: str
    order_id: str
    product_id: str
    side: Side
    price: Decimal
    size: Decimal
    commission: Decimal
    liquidity: LiquiditySide
    ts_ns: int
    sequence_timestamp: str
    """Coinbase's position of the fill in the account's history (RFC3339);
    the sweep's cursor (``start_sequence_timestamp``)."""

    @property
    def execution_id(self) -> str:
        return execution_id(self.trade_id)


_LIQUIDITY = {"MAKER": LiquiditySide.MAKER, "TAKER": LiquiditySide.TAKER}


def parse_fill(obj: object, *, broker: str | None = None) -> CoinbaseFill:
    fields = _Fields(obj, broker, "fill")
    size = fields.decimal("size")
    price = fields.decimal("price")
    if size <= 0 or price <= 0:
        fields.fail(f"size={size} price={price}: must be positive")
    trade_time = fields.opt_text("trade_time")
    sequence = fields.opt_text("sequence_timestamp") or trade_time
    if sequence is None:
        fields.fail("missing field 'sequence_timestamp'")
    return CoinbaseFill(
        trade_id=fields.text("trade_id"),
        order_id=fields.text("order_id"),
        product_id=fields.text("product_id"),
        side=fields.side("side"),
        price=price,
        size=size,
        commission=fields.opt_decimal("commission") or Decimal(0),
        liquidity=_LIQUIDITY.get(
            (fields.opt_text("liquidity_indicator") or "").upper(), LiquiditySide.NONE
        ),
        ts_ns=fields.time_ns("trade_time") if trade_time else parse_time_ns(sequence),
        sequence_timestamp=sequence,
    )


def parse_fills_page(
    body: object, *, broker: str | None = None
) -> tuple[list[CoinbaseFill], str | None]:
    """``GET /orders/historical/fills``: the fills and the next page's cursor (None: last)."""
    fields = _Fields(body, broker, "list fills")
    fills = [parse_fill(raw, broker=broker) for raw in fields.items("fills")]
    return fills, _next_cursor(fields, has_next_key=None)


@dataclass(frozen=True, slots=True)
class CoinbaseAccount:
    currency: str
    available: Decimal
    hold: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.hold


def parse_accounts_page(
    body: object, *, broker: str | None = None
) -> tuple[list[CoinbaseAccount], str | None]:
    """``GET /accounts``: each account's balance (available + hold) and the next cursor."""
    fields = _Fields(body, broker, "list accounts")
    accounts = []
    for raw in fields.items("accounts"):
        account = _Fields(raw, broker, "account")
        accounts.append(
            CoinbaseAccount(
                currency=account.text("currency"),
                available=account.child("available_balance").decimal("value"),
                hold=(
                    account.child("hold").decimal("value")
                    if account.obj.get("hold") is not None
                    else Decimal(0)
                ),
            )
        )
    return accounts, _next_cursor(fields, has_next_key="has_next")


# -- answers of the order endpoints -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateAnswer:
    """``POST /orders``: placed (``order_id``), or refused with Coinbase's reason."""

    success: bool
    order_id: str | None = None
    client_order_id: str | None = None
    code: str = ""
    message: str = ""


def parse_create_answer(body: object, *, broker: str | None = None) -> CreateAnswer:
    fields = _Fields(body, broker, "create order")
    if fields.boolean("success"):
        # failure_reason UNKNOWN_FAILURE_REASON may ride along on success: ignored (the FAQ).
        done = fields.child("success_response")
        return CreateAnswer(
            True, order_id=done.text("order_id"), client_order_id=done.opt_text("client_order_id")
        )
    error = fields.obj.get("error_response")
    if not isinstance(error, Mapping):
        reason = fields.opt_text("failure_reason") or "UNKNOWN_FAILURE_REASON"
        return CreateAnswer(False, code=reason, message=reason)
    detail = _Fields(error, broker, "create order.error_response")
    code = (
        detail.opt_text("new_order_failure_reason")
        or detail.opt_text("preview_failure_reason")
        or detail.opt_text("error")
        or "UNKNOWN_FAILURE_REASON"
    )
    if code.startswith("UNKNOWN_") and detail.opt_text("error"):
        code = detail.text("error")
    message = detail.opt_text("message") or detail.opt_text("error_details") or code
    return CreateAnswer(False, code=code, message=message)


@dataclass(frozen=True, slots=True)
class CancelResult:
    order_id: str
    success: bool
    failure_reason: str


def parse_cancel_answer(body: object, *, broker: str | None = None) -> list[CancelResult]:
    """``POST /orders/batch_cancel``: one result per order id."""
    fields = _Fields(body, broker, "batch cancel")
    results = []
    for raw in fields.items("results"):
        item = _Fields(raw, broker, "batch cancel result")
        results.append(
            CancelResult(
                order_id=item.text("order_id"),
                success=item.boolean("success"),
                failure_reason=item.opt_text("failure_reason") or "",
            )
        )
    return results


@dataclass(frozen=True, slots=True)
class EditAnswer:
    success: bool
    code: str = ""


def parse_edit_answer(body: object, *, broker: str | None = None) -> EditAnswer:
    """``POST /orders/edit``: ``{"success": bool, "errors": [{"edit_failure_reason", ...}]}``."""
    fields = _Fields(body, broker, "edit order")
    if fields.boolean("success"):
        return EditAnswer(True)
    reasons = []
    raw_errors = fields.obj.get("errors")
    for raw in raw_errors if isinstance(raw_errors, list) else ():
        item = _Fields(raw, broker, "edit order.errors")
        for key in ("edit_failure_reason", "preview_failure_reason"):
            reason = item.opt_text(key)
            if reason and not reason.startswith("UNKNOWN_"):
                reasons.append(reason)
    return EditAnswer(False, reasons[0] if reasons else "UNKNOWN_EDIT_ORDER_FAILURE_REASON")


# -- errors ------------------------------------------------------------------------------------


class ErrorKind(enum.Enum):
    RATE_LIMITED = "rate_limited"
    """429: not processed; wait and send again."""
    UNAUTHORIZED = "unauthorized"
    """401 (a bad or expired JWT) or 403 (the key lacks a scope)."""
    NOT_FOUND = "not_found"
    UNKNOWN_OUTCOME = "unknown_outcome"
    """5xx: the request may or may not have been processed."""
    REFUSED = "refused"
    """Any other 4xx: a business or argument refusal."""


@dataclass(frozen=True, slots=True)
class CoinbaseErrorAnswer:
    """A non-2xx answer: ``{"error": code, "error_details": ..., "message": ...}``."""

    status: int
    code: str
    message: str

    @property
    def kind(self) -> ErrorKind:
        if self.status == 429 or self.code == "RATE_LIMIT_EXCEEDED":
            return ErrorKind.RATE_LIMITED
        if self.status in (401, 403):
            return ErrorKind.UNAUTHORIZED
        if self.status == 404:
            return ErrorKind.NOT_FOUND
        if self.status >= 500:
            return ErrorKind.UNKNOWN_OUTCOME
        return ErrorKind.REFUSED


def parse_error(status: int, content: bytes) -> CoinbaseErrorAnswer:
    """An error answer's code and message; an unreadable body keeps ``HTTP_<status>``."""
    code, message = f"HTTP_{status}", ""
    try:
        body = json.loads(content)
    except (ValueError, TypeError, RecursionError):
        body = None
    if isinstance(body, Mapping):
        if isinstance(body.get("error"), str) and body["error"]:
            code = body["error"]
        for key in ("message", "error_details"):
            if isinstance(body.get(key), str) and body[key]:
                message = body[key]
                break
        errors = body.get("errors")  # the v2 shape: {"errors": [{"id", "message"}]}
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            first = errors[0]
            code = str(first.get("id") or code)
            message = str(first.get("message") or message)
    elif content:
        message = content[:200].decode("utf-8", "replace")
    return CoinbaseErrorAnswer(status, code.upper() if code.islower() else code, message)


# -- the WebSocket -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserOrder:
    """One order of a ``user`` channel event: its state now, cumulative."""

    order_id: str
    client_order_id: str | None
    product_id: str
    side: Side
    order_type: OrderType
    status: str
    cumulative_quantity: Decimal
    avg_price: Decimal
    leaves_quantity: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    ts_ns: int
    reason: str
    """``cancel_reason`` or ``reject_reason``, when Coinbase gives one."""


@dataclass(frozen=True, slots=True)
class UserEvent:
    kind: str
    """``snapshot`` (the open orders at subscribe, in batches of 50) or ``update``."""
    orders: tuple[UserOrder, ...]


@dataclass(frozen=True, slots=True)
class HeartbeatEvent:
    counter: int


@dataclass(frozen=True, slots=True)
class TickerEvent:
    quotes: tuple[Quote, ...]


@dataclass(frozen=True, slots=True)
class BookEvent:
    """A ``level2`` event (channel ``l2_data``): the book's levels as a snapshot,
    or the levels that changed (a new quantity of 0 removes a level)."""

    product_id: str
    snapshot: bool
    levels: tuple[tuple[Side, Decimal, Decimal], ...]
    ts_ns: int


@dataclass(frozen=True, slots=True)
class SubscriptionsEvent:
    channels: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class WsError:
    """``{"type": "error", "message": ...}``: the venue refused a subscribe (a bad JWT)."""

    message: str


Event = UserEvent | HeartbeatEvent | TickerEvent | BookEvent | SubscriptionsEvent


@dataclass(frozen=True, slots=True)
class WsFrame:
    """One WebSocket message: its channel, per-connection sequence number and events."""

    channel: str
    sequence_num: int | None
    events: tuple[Event, ...] = ()
    error: WsError | None = None
    ignored: int = field(default=0)
    """Events of channels this adapter does not read (counted, skipped)."""


def _parse_user_order(obj: object, broker: str | None) -> UserOrder:
    fields = _Fields(obj, broker, "user order")
    order_type = (fields.opt_text("order_type") or "LIMIT").upper()
    cumulative = fields.decimal("cumulative_quantity")
    avg = fields.opt_decimal("avg_price") or Decimal(0)
    if cumulative < 0 or avg < 0:
        fields.fail(f"cumulative_quantity={cumulative} avg_price={avg}: negative")
    reason = fields.opt_text("cancel_reason") or fields.opt_text("reject_reason") or ""
    return UserOrder(
        order_id=fields.text("order_id"),
        client_order_id=fields.opt_text("client_order_id"),
        product_id=fields.text("product_id"),
        side=fields.side("order_side"),
        order_type=_ORDER_TYPES.get(order_type, OrderType.LIMIT),
        status=fields.text("status").upper(),
        cumulative_quantity=cumulative,
        avg_price=avg,
        leaves_quantity=fields.opt_decimal("leaves_quantity"),
        limit_price=fields.opt_decimal("limit_price") or None,
        stop_price=fields.opt_decimal("stop_price") or None,
        ts_ns=fields.opt_time_ns("creation_time") or 0,
        reason=reason,
    )


def _parse_ticker(obj: object, venue: str, ts_ns: int, broker: str | None) -> Quote | None:
    fields = _Fields(obj, broker, "ticker")
    bid = fields.opt_decimal("best_bid")
    ask = fields.opt_decimal("best_ask")
    if bid is None or ask is None or bid <= 0 or ask <= 0:
        return None  # a side of the book is empty: nothing to quote
    try:
        return Quote(
            venue=venue,
            symbol=fields.text("product_id"),
            bid=bid,
            ask=ask,
            last=fields.opt_decimal("price") or None,
            ts_ns=ts_ns,
        )
    except ValueError as exc:
        fields.fail(str(exc))


_BOOK_SIDES = {"bid": Side.BUY, "offer": Side.SELL, "ask": Side.SELL}


def _parse_book(event: _Fields, ts_ns: int) -> BookEvent:
    levels = []
    for raw in event.items("updates"):
        row = _Fields(raw, event.broker, "l2_data update")
        side = _BOOK_SIDES.get(row.text("side").lower())
        if side is None:
            row.fail(f"side={row.obj.get('side')!r}: expected bid or offer")
        price, quantity = row.decimal("price_level"), row.decimal("new_quantity")
        if price <= 0 or quantity < 0:
            row.fail(f"price_level={price} new_quantity={quantity}: out of range")
        levels.append((side, price, quantity))
    kind = (event.opt_text("type") or "update").lower()
    return BookEvent(event.text("product_id"), kind == "snapshot", tuple(levels), ts_ns)


def parse_frame(text: bytes | str, *, venue: str, broker: str | None = None) -> WsFrame:
    """One WebSocket message of the Advanced Trade feed, typed."""
    fields = _Fields(parse_json(text, broker=broker, where="websocket"), broker, "websocket")
    if fields.opt_text("type") == "error":
        return WsFrame("error", None, error=WsError(fields.opt_text("message") or "error"))
    channel = fields.text("channel")
    sequence = fields.integer("sequence_num") if "sequence_num" in fields.obj else None
    stamp = fields.opt_text("timestamp")
    try:
        ts_ns = parse_time_ns(stamp) if stamp else 0
    except ValueError:
        fields.fail(f"timestamp={stamp!r}: expected an RFC3339 time")
    events: list[Event] = []
    ignored = 0
    for raw in fields.items("events"):
        event = _Fields(raw, broker, f"{channel} event")
        if channel == "user":
            orders = event.obj.get("orders")
            items = orders if isinstance(orders, list) else []
            if orders is not None and not isinstance(orders, list):
                event.fail("orders: expected a list")
            events.append(
                UserEvent(
                    (event.opt_text("type") or "update").lower(),
                    tuple(_parse_user_order(o, broker) for o in items),
                )
            )
        elif channel == "heartbeats":
            events.append(HeartbeatEvent(event.integer("heartbeat_counter")))
        elif channel in ("ticker", "ticker_batch"):
            quotes = []
            for item in event.items("tickers"):
                quote = _parse_ticker(item, venue, ts_ns, broker)
                if quote is not None:
                    quotes.append(quote)
            events.append(TickerEvent(tuple(quotes)))
        elif channel == "l2_data":
            events.append(_parse_book(event, ts_ns))
        elif channel == "subscriptions":
            subscribed = event.obj.get("subscriptions")
            channels: dict[str, tuple[str, ...]] = {}
            if isinstance(subscribed, Mapping):
                for name, products in subscribed.items():
                    if isinstance(products, list):
                        channels[str(name)] = tuple(str(p) for p in products)
            events.append(SubscriptionsEvent(channels))
        else:
            ignored += 1
    return WsFrame(channel, sequence, tuple(events), ignored=ignored)


# -- the top of the book ----------------------------------------------------------------------


class TopOfBook:
    """Each product's ``level2`` book, enough to say its best bid and ask.

    A product's book starts with its snapshot; updates before one are
    ignored. :meth:`forget` drops every book (after missed market frames the
    books may be wrong; the ticker quotes until the next connection)."""

    def __init__(self) -> None:
        self._books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}

    def has(self, product_id: str) -> bool:
        return product_id in self._books

    def apply(self, event: BookEvent) -> tuple[Decimal, Decimal] | None:
        """Apply ``event``; the best bid and ask after it (None if a side is empty)."""
        if event.snapshot:
            self._books[event.product_id] = ({}, {})
        book = self._books.get(event.product_id)
        if book is None:
            return None
        bids, asks = book
        for side, price, quantity in event.levels:
            levels = bids if side is Side.BUY else asks
            if quantity == 0:
                levels.pop(price, None)
            else:
                levels[price] = quantity
        if not bids or not asks:
            return None
        return max(bids), min(asks)

    def forget(self) -> None:
        self._books.clear()


# -- fills from cumulative states ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DerivedFill:
    """What happened between two cumulative states of one order."""

    order_id: str
    quantity: Decimal
    price: Decimal
    """The average price of the quantity in between (exact; the venue rounds ``avg_price``)."""
    cumulative_quantity: Decimal
    """The cumulative size after it: the same growth seen again yields nothing."""


class CumulativeFills:
    """Per order, the largest cumulative state seen; each growth is derived once.

    ``observe`` returns the execution(s) between the last state seen and this
    one, or None when this state is not newer (a repeat, or an update that
    arrived after a later one). Never derives more than the venue's
    cumulative size: the sum of what it returned for an order equals the
    largest ``cumulative_quantity`` observed, whatever the order of arrival.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[Decimal, Decimal]] = {}

    def seen(self, order_id: str) -> Decimal:
        """The cumulative size already derived for ``order_id``."""
        return self._seen.get(order_id, (Decimal(0), Decimal(0)))[0]

    def start_at(self, order_id: str, cumulative: Decimal, avg_price: Decimal) -> None:
        """Fills up to ``cumulative`` are known another way (reconciliation): derive after it."""
        if cumulative > self.seen(order_id):
            self._seen[order_id] = (cumulative, cumulative * avg_price)

    def observe(self, order_id: str, cumulative: Decimal, avg_price: Decimal) -> DerivedFill | None:
        before, notional_before = self._seen.get(order_id, (Decimal(0), Decimal(0)))
        if cumulative <= before:
            return None
        notional = cumulative * avg_price
        self._seen[order_id] = (cumulative, notional)
        quantity = cumulative - before
        price = (notional - notional_before) / quantity
        if price <= 0:
            price = avg_price  # a rounded average lower than the one before: keep the venue's
        return DerivedFill(order_id, quantity, price, cumulative)

    def forget(self, order_id: str) -> None:
        self._seen.pop(order_id, None)

    def __len__(self) -> int:
        return len(self._seen)


# -- reports -------------------------------------------------------------------------------------


def status_report(
    venue: str,
    order: CoinbaseOrder,
    client_order_id: str,
    *,
    filled: Decimal | None = None,
    ts_ns: int,
) -> OrderStatusReport:
    """The venue's view of ``order``; ``filled`` caps the filled size to what the
    OMS has been told (a report never claims more fills than were forwarded)."""
    done = order.filled_size if filled is None else min(filled, order.filled_size)
    status = map_status(order.status, done) or OrderStatus.ACCEPTED
    if status in (OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
        status = OrderStatus.PARTIALLY_FILLED if done > 0 else OrderStatus.ACCEPTED
    if status is OrderStatus.FILLED and done < order.filled_size:
        status = OrderStatus.PARTIALLY_FILLED
    quantity = order.size if order.size is not None else max(order.filled_size, done)
    if quantity <= 0:
        quantity = done if done > 0 else Decimal(1)
    return OrderStatusReport(
        client_order_id=client_order_id,
        venue=venue,
        symbol=order.product_id,
        side=order.side,
        status=status,
        quantity=quantity,
        filled_quantity=done,
        venue_order_id=order.order_id,
        order_type=order.order_type,
        price=order.limit_price,
        avg_fill_price=order.average_filled_price if done > 0 else None,
        ts_ns=ts_ns,
    )
