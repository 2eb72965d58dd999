"""Pure mapping between Binance Spot payloads and tradenode messages (no I/O).

Everything Binance sends goes through here before the rest of tradenode
sees it: REST order rows and responses, ``myTrades`` rows, the account,
user data stream events, WebSocket API frames, book tickers and errors.
Anything that does not have the documented shape (bad JSON, a missing or
ill-typed field, a non-numeric decimal, an unknown event or enum value) is a
``MalformedPayloadError`` carrying the broker name, never a ``KeyError`` or a
``TypeError``. Orders Binance Spot cannot express are an
``UnsupportedOrderError`` before anything is sent.

Sources: github.com/binance/binance-spot-api-docs (rest-api.md,
web-socket-api.md, user-data-stream.md, web-socket-streams.md, errors.md,
enums.md, filters.md).
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NoReturn, TypeAlias, TypeVar

from ..._exceptions import BrokerRejectedError, MalformedPayloadError
from ...messages._enums import LiquiditySide, OrderStatus, OrderType, Side, TimeInForce
from ...messages._market import MarketTrade
from ...messages._messages import (
    Message,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatusReport,
    Quote,
    SubmitOrder,
)
from .._fields import JsonFields, decode_json
from ._rules import binance_order_type, format_decimal

__all__ = [
    "BINANCE_CLIENT_ORDER_ID",
    "EXECUTION_TYPES",
    "ORDER_STATUS_MAP",
    "AccountPosition",
    "Balance",
    "BalanceUpdate",
    "BinanceErrorAnswer",
    "BinanceExecutionReport",
    "BinanceOrder",
    "BinanceTrade",
    "DepthSnapshot",
    "ErrorKind",
    "ExternalLockUpdate",
    "HeaderRates",
    "ListOrder",
    "ListStatus",
    "ServerShutdown",
    "StreamTerminated",
    "UnsupportedOrderError",
    "UserEvent",
    "WsEvent",
    "WsFrame",
    "WsRateLimit",
    "WsResponse",
    "cancel_params",
    "cancel_replace_params",
    "execution_id",
    "execution_report_to_messages",
    "market_stream_name",
    "new_order_params",
    "parse_account",
    "parse_book_ticker",
    "parse_depth",
    "parse_error",
    "parse_market_message",
    "parse_order",
    "parse_public_trade",
    "parse_rate_headers",
    "parse_rest_book_ticker",
    "parse_ticker_price",
    "parse_trade",
    "parse_user_event",
    "parse_ws_frame",
    "placement_fills",
    "query_params",
    "retry_after_seconds",
    "to_status_report",
    "trade_stream_name",
    "trade_to_fill",
    "ws_rate_usage",
    "ws_request",
    "ws_retry_after_seconds",
]

#: The Spot FIX API's ClOrdID rule (the REST docs give none): our ids must fit it.
BINANCE_CLIENT_ORDER_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")

#: Binance order status (``status`` / ``X``) -> ours (enums.md "Order status").
ORDER_STATUS_MAP: Mapping[str, OrderStatus] = {
    "NEW": OrderStatus.ACCEPTED,
    "PENDING_NEW": OrderStatus.ACCEPTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}

#: executionReport ``x`` values (user-data-stream.md "Execution types").
EXECUTION_TYPES = frozenset(
    {"NEW", "CANCELED", "REPLACED", "REJECTED", "TRADE", "EXPIRED", "TRADE_PREVENTION"}
)

# Binance type -> (our type, post_only)
_FROM_BINANCE_TYPE: Mapping[str, tuple[OrderType, bool]] = {
    "MARKET": (OrderType.MARKET, False),
    "LIMIT": (OrderType.LIMIT, False),
    "LIMIT_MAKER": (OrderType.LIMIT, True),
    "STOP_LOSS": (OrderType.STOP, False),
    "STOP_LOSS_LIMIT": (OrderType.STOP_LIMIT, False),
    "TAKE_PROFIT": (OrderType.MARKET_IF_TOUCHED, False),
    "TAKE_PROFIT_LIMIT": (OrderType.LIMIT_IF_TOUCHED, False),
}
_TIF_TYPES = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_PRICED_TYPES = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_BINANCE_TIFS: Mapping[str, TimeInForce] = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
}
_DECIMAL_TEXT = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
_RATE_INTERVAL = re.compile(r"^\d+[SMHD]$")
_MS = 1_000_000


class UnsupportedOrderError(BrokerRejectedError):
    """The order cannot be expressed on Binance Spot; nothing was sent."""


# -- field access -------------------------------------------------------------------------


def _malformed(broker: str | None, what: str, *, client_order_id: str | None = None) -> NoReturn:
    raise MalformedPayloadError(what, broker=broker, client_order_id=client_order_id)


class _Fields(JsonFields):
    """Binance's fields: JSON integers, non-negative decimals unless said, its enums."""

    __slots__ = ()

    def decimal(self, key: str, *, non_negative: bool = True) -> Decimal:
        """A decimal, non-negative unless ``non_negative=False`` (deltas, commissions)."""
        return super().decimal(key, non_negative=non_negative)

    def positive_or_none(self, key: str) -> Decimal | None:
        """Binance writes "0.00000000" for a price an order type does not have."""
        if self.obj.get(key) is None:
            return None
        number = self.decimal(key)
        return number if number > 0 else None

    def side(self, key: str) -> Side:
        value = self.text(key)
        if value not in ("BUY", "SELL"):
            self.fail(f"{key}={value!r}: expected BUY or SELL")
        return Side(value)

    def order_type(self, key: str) -> tuple[str, OrderType, bool]:
        value = self.text(key)
        mapped = _FROM_BINANCE_TYPE.get(value)
        if mapped is None:
            self.fail(f"{key}={value!r}: unknown Binance order type")
        return value, mapped[0], mapped[1]

    def tif(self, key: str) -> TimeInForce | None:
        value = self.opt_text(key)
        if value is None:
            return None
        tif = _BINANCE_TIFS.get(value)
        if tif is None:
            self.fail(f"{key}={value!r}: unknown time in force")
        return tif

    def one_of(self, key: str, allowed: Mapping[str, object] | frozenset[str]) -> str:
        value = self.text(key)
        if value not in allowed:
            self.fail(f"{key}={value!r}: unknown value")
        return value


def _decode_json(text: str | bytes, broker: str | None, what: str) -> object:
    return decode_json(text, broker, what)


_M = TypeVar("_M", bound=Message)


def _message(broker: str, build: Callable[..., _M], what: str, **fields: object) -> _M:
    """Build a message; a field Binance sent that our messages refuse is malformed."""
    try:
        return build(**fields)
    except (ValueError, TypeError) as exc:
        client = fields.get("client_order_id")
        _malformed(
            broker, f"{what}: {exc}", client_order_id=client if isinstance(client, str) else None
        )


# -- orders -------------------------------------------------------------------------------


def _unsupported(order: SubmitOrder | ModifyOrder, why: str) -> NoReturn:
    raise UnsupportedOrderError(
        f"not supported on Binance Spot: {why}",
        broker=order.venue,
        client_order_id=order.client_order_id,
        code="UNSUPPORTED",
    )


def _check_new_client_id(order: SubmitOrder | ModifyOrder, client_order_id: str) -> None:
    if not BINANCE_CLIENT_ORDER_ID.fullmatch(client_order_id):
        _unsupported(
            order, f"client order id {client_order_id!r} does not match ^[a-zA-Z0-9-_]{{1,36}}$"
        )


def _binance_type(order: SubmitOrder) -> str:
    kind = binance_order_type(order.order_type, order.post_only)
    if kind is None:
        _unsupported(order, f"{order.order_type.value} orders (Binance trails in BIPS only)")
    return kind


def _time_in_force(order: SubmitOrder, kind: str) -> str | None:
    tif = order.time_in_force
    if tif not in (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK):
        _unsupported(order, f"time in force {tif.value} (only GTC, IOC and FOK exist)")
    if kind in _TIF_TYPES:
        return str(tif.value)
    # MARKET, LIMIT_MAKER, STOP_LOSS and TAKE_PROFIT take no timeInForce (-1114 if sent):
    # accept only the TIF that matches how Binance runs them.
    if tif is TimeInForce.GTC or (kind == "MARKET" and tif is TimeInForce.IOC):
        return None
    _unsupported(order, f"time in force {tif.value} on a {kind} order")


def new_order_params(
    order: SubmitOrder, *, response_type: Literal["RESULT", "FULL"] = "RESULT"
) -> list[tuple[str, str]]:
    """``POST /api/v3/order`` (or ``order.place``) params for ``order``, unsigned.

    ``response_type`` is the ``newOrderRespType`` asked for: ``RESULT`` (the
    order's state) or ``FULL`` (the state and the trades it made on arrival,
    :func:`placement_fills`). Never ``ACK``, which lacks the state."""
    kind = _binance_type(order)
    if order.reduce_only:
        _unsupported(order, "reduce_only (Spot has no positions to reduce)")
    tif = _time_in_force(order, kind)
    _check_new_client_id(order, order.client_order_id)
    if order.price is not None and kind not in _PRICED_TYPES:
        _unsupported(order, f"a price on a {kind} order")
    params = [("symbol", order.symbol), ("side", order.side.value), ("type", kind)]
    if tif is not None:
        params.append(("timeInForce", tif))
    params.append(("quantity", format_decimal(order.quantity)))
    if order.price is not None:
        params.append(("price", format_decimal(order.price)))
    if order.stop_price is not None:
        params.append(("stopPrice", format_decimal(order.stop_price)))
    if order.display_quantity is not None:
        # Binance: any LIMIT or LIMIT_MAKER order becomes an iceberg with icebergQty,
        # which needs timeInForce=GTC (SubmitOrder already holds it to LIMIT GTC).
        if kind not in ("LIMIT", "LIMIT_MAKER"):
            _unsupported(order, f"an iceberg {kind} order")
        params.append(("icebergQty", format_decimal(order.display_quantity)))
    params.append(("newClientOrderId", order.client_order_id))
    params.append(("newOrderRespType", response_type))
    return params


def placement_fills(
    broker: str, order: BinanceOrder, payload: object
) -> list[tuple[int, OrderFilled]]:
    """The fills of a ``FULL`` placement answer (``fills``: the trades the order made
    on arrival) as (trade id, our fill), none for a ``RESULT`` answer.

    Each is the same fill the account's stream reports for that trade (same
    execution id, so the OMS applies it once, whichever comes first), made as
    the order arrived: the order was the taker. The answer has no time per
    trade: ``transactTime`` (the order's) stands for it."""
    fields = _Fields(payload, broker, "order answer")
    raw = fields.obj.get("fills")
    if raw is None:
        return []
    if not isinstance(raw, list):
        fields.fail(f"fills={raw!r:.80}: expected a list")
    ts_ns = order.update_time_ms * _MS
    fills = []
    for index, item in enumerate(raw):
        read = _quick_fill_row(item)
        if read is None:
            row = _Fields(item, broker, f"fills[{index}]")
            read = (
                row.integer("tradeId"),
                row.decimal("qty"),
                row.decimal("price"),
                row.decimal("commission", non_negative=False),
                row.opt_text("commissionAsset") or None,
            )
        trade_id, quantity, price, commission, commission_asset = read
        fill = _message(
            broker,
            OrderFilled,
            f"fill {order.symbol}/{trade_id}",
            client_order_id=order.client_order_id,
            venue=broker,
            venue_order_id=str(order.order_id),
            execution_id=execution_id(broker, order.symbol, trade_id),
            symbol=order.symbol,
            side=order.side,
            last_quantity=quantity,
            last_price=price,
            commission=commission,
            commission_asset=commission_asset,
            liquidity=LiquiditySide.TAKER,
            ts_ns=ts_ns,
        )
        fills.append((trade_id, fill))
    return fills


def _quick_fill_row(
    item: object,
) -> tuple[int, Decimal, Decimal, Decimal, str | None] | None:
    """One ``fills`` row of a FULL answer as ``placement_fills`` reads it (trade id,
    quantity, price, commission, commission asset), without a field reader: the
    rows are read on the WebSocket reader before the breaker hears the order is
    accepted. The same checks (exact types, as a JSON object decodes); anything it
    does not vouch for says None and is read the slow way (same values or the same
    typed error), like ``_quick_order``."""
    if type(item) is not dict:
        return None
    trade_id = item.get("tradeId")
    asset = item.get("commissionAsset")
    quantity = _quick_decimal(item.get("qty"))
    price = _quick_decimal(item.get("price"))
    commission = _quick_decimal(item.get("commission"), non_negative=False)
    if (
        type(trade_id) is not int
        or quantity is None
        or price is None
        or commission is None
        or (asset is not None and type(asset) is not str)
    ):
        return None
    return trade_id, quantity, price, commission, asset or None


def cancel_params(symbol: str, client_order_id: str) -> list[tuple[str, str]]:
    """``DELETE /api/v3/order`` (or ``order.cancel``) params, unsigned."""
    return [("symbol", symbol), ("origClientOrderId", client_order_id)]


def query_params(symbol: str, client_order_id: str) -> list[tuple[str, str]]:
    """``GET /api/v3/order`` (or ``order.status``) params, unsigned."""
    return [("symbol", symbol), ("origClientOrderId", client_order_id)]


@dataclass(frozen=True, slots=True)
class BinanceOrder:
    """One order as Binance reports it (an order row or an order response).

    ``client_order_id`` is the order's own id: on a cancel response that is
    ``origClientOrderId`` (``clientOrderId`` there names the cancel itself).
    """

    symbol: str
    order_id: int
    client_order_id: str
    side: Side
    binance_type: str
    order_type: OrderType
    post_only: bool
    time_in_force: TimeInForce | None
    price: Decimal | None
    stop_price: Decimal | None
    orig_qty: Decimal
    executed_qty: Decimal
    cumulative_quote_qty: Decimal
    status: str
    update_time_ms: int


def parse_order(payload: object, *, broker: str) -> BinanceOrder:
    """An order from ``POST /order`` (RESULT/FULL), ``GET /order``, an ``openOrders``
    row, a cancel response or a cancelReplace ``newOrderResponse`` (never an ACK
    answer, which lacks the order's state: we never ask for one)."""
    quick = _quick_order(payload)
    if quick is not None:
        return quick
    fields = _Fields(payload, broker, "order")
    own_id_key = "origClientOrderId" if fields.has("origClientOrderId") else "clientOrderId"
    binance_type, order_type, post_only = fields.order_type("type")
    update_time: int | None = None
    for key in ("updateTime", "transactTime", "workingTime", "time"):
        if fields.obj.get(key) is not None:
            candidate = fields.integer(key)
            if candidate > 0:
                update_time = candidate
                break
    if update_time is None:
        fields.fail("no updateTime, transactTime, workingTime or time")
    return BinanceOrder(
        symbol=fields.text("symbol"),
        order_id=fields.integer("orderId"),
        client_order_id=fields.text(own_id_key),
        side=fields.side("side"),
        binance_type=binance_type,
        order_type=order_type,
        post_only=post_only,
        time_in_force=fields.tif("timeInForce"),
        price=fields.positive_or_none("price"),
        stop_price=fields.positive_or_none("stopPrice"),
        orig_qty=fields.decimal("origQty"),
        executed_qty=fields.decimal("executedQty"),
        # Negative for some historical orders: "data not available".
        cumulative_quote_qty=fields.decimal("cummulativeQuoteQty", non_negative=False),
        status=fields.one_of("status", ORDER_STATUS_MAP),
        update_time_ms=update_time,
    )


_SIDES: Mapping[str, Side] = {"BUY": Side.BUY, "SELL": Side.SELL}
_UPDATE_TIME_KEYS = ("updateTime", "transactTime", "workingTime", "time")


def _quick_decimal(value: object, *, non_negative: bool = True) -> Decimal | None:
    """A decimal string as ``_Fields.decimal`` reads it, or None for anything that
    reading would do otherwise (another type, a refusal): the caller then reads
    the payload the slow way, which gives that answer or that error."""
    if type(value) is not str or not _DECIMAL_TEXT.match(value):
        return None
    number = Decimal(value)
    if not number.is_finite() or (non_negative and number < 0):
        return None
    return number


def _quick_order(payload: object) -> BinanceOrder | None:
    """``parse_order``'s reading of a well-formed order, without a field reader: a
    placement's answer is read on the WebSocket reader before the breaker hears it is
    accepted (~12 -> ~5 us). It checks what the ``_Fields`` reading checks, field by
    field, and says None for anything it does not vouch for (a missing or mistyped
    field, an unknown enum, a JSON number where Binance writes a string, a negative
    quantity), which ``parse_order`` then reads the slow way: the same order, or the
    same typed error. Exact types only (a JSON object decodes to exactly these), so
    a subclass of anything also goes the slow way."""
    if type(payload) is not dict:
        return None
    get = payload.get
    client_order_id = get(
        "origClientOrderId" if "origClientOrderId" in payload else "clientOrderId"
    )
    binance_type = get("type")
    if type(binance_type) is not str:
        return None
    mapped = _FROM_BINANCE_TYPE.get(binance_type)
    if mapped is None:
        return None
    update_time: int | None = None
    for key in _UPDATE_TIME_KEYS:
        candidate = get(key)
        if candidate is None:
            continue
        if type(candidate) is not int:
            return None
        if candidate > 0:
            update_time = candidate
            break
    symbol = get("symbol")
    order_id = get("orderId")
    side_text = get("side")
    side = _SIDES.get(side_text) if type(side_text) is str else None
    tif_text = get("timeInForce")
    time_in_force: TimeInForce | None = None
    if tif_text is not None:
        time_in_force = _BINANCE_TIFS.get(tif_text) if type(tif_text) is str else None
        if time_in_force is None:
            return None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    raw_price, raw_stop = get("price"), get("stopPrice")
    if raw_price is not None:
        price = _quick_decimal(raw_price)
        if price is None:
            return None
        if price <= 0:
            price = None
    if raw_stop is not None:
        stop_price = _quick_decimal(raw_stop)
        if stop_price is None:
            return None
        if stop_price <= 0:
            stop_price = None
    orig_qty = _quick_decimal(get("origQty"))
    executed_qty = _quick_decimal(get("executedQty"))
    cumulative = _quick_decimal(get("cummulativeQuoteQty"), non_negative=False)
    status = get("status")
    if (
        update_time is None
        or type(symbol) is not str
        or not symbol
        or type(order_id) is not int
        or type(client_order_id) is not str
        or not client_order_id
        or side is None
        or orig_qty is None
        or executed_qty is None
        or cumulative is None
        or type(status) is not str
        or status not in ORDER_STATUS_MAP
    ):
        return None
    return BinanceOrder(
        symbol=symbol,
        order_id=order_id,
        client_order_id=client_order_id,
        side=side,
        binance_type=binance_type,
        order_type=mapped[0],
        post_only=mapped[1],
        time_in_force=time_in_force,
        price=price,
        stop_price=stop_price,
        orig_qty=orig_qty,
        executed_qty=executed_qty,
        cumulative_quote_qty=cumulative,
        status=status,
        update_time_ms=update_time,
    )


def to_status_report(broker: str, order: BinanceOrder) -> OrderStatusReport:
    """Binance's view of ``order`` as our ``OrderStatusReport``."""
    avg_price = None
    if order.executed_qty > 0 and order.cumulative_quote_qty > 0:
        avg_price = order.cumulative_quote_qty / order.executed_qty
    report = _message(
        broker,
        OrderStatusReport,
        f"order {order.symbol}/{order.order_id}",
        client_order_id=order.client_order_id,
        venue=broker,
        symbol=order.symbol,
        side=order.side,
        status=ORDER_STATUS_MAP[order.status],
        quantity=order.orig_qty,
        filled_quantity=order.executed_qty,
        venue_order_id=str(order.order_id),
        order_type=order.order_type,
        price=order.price,
        avg_fill_price=avg_price,
        ts_ns=order.update_time_ms * _MS,
    )
    return report


def cancel_replace_params(original: BinanceOrder, modify: ModifyOrder) -> list[tuple[str, str]]:
    """``POST /api/v3/order/cancelReplace`` params that carry out ``modify`` on
    ``original``: same symbol/side/type/TIF, new prices where given, and only the
    quantity still open (new total minus what already executed)."""
    new_id = modify.new_client_order_id
    if new_id is None:
        _unsupported(modify, "a modify without new_client_order_id (Binance replaces the order)")
    _check_new_client_id(modify, new_id)
    if modify.symbol != original.symbol:
        _unsupported(modify, f"moving an order from {original.symbol} to {modify.symbol}")
    kind = original.binance_type
    if kind == "MARKET":
        _unsupported(modify, "replacing a MARKET order")
    if modify.price is not None and kind not in _PRICED_TYPES:
        _unsupported(modify, f"a price on a {kind} order")
    if modify.stop_price is not None and kind not in _STOP_TYPES:
        _unsupported(modify, f"a stop price on a {kind} order")
    total = modify.quantity if modify.quantity is not None else original.orig_qty
    remaining = total - original.executed_qty
    if remaining <= 0:
        _unsupported(
            modify,
            f"nothing left to replace: quantity {total} minus executed "
            f"{original.executed_qty} is {remaining}",
        )
    price = modify.price if modify.price is not None else original.price
    stop_price = modify.stop_price if modify.stop_price is not None else original.stop_price
    if kind in _PRICED_TYPES and price is None:
        _unsupported(modify, f"a {kind} replacement without a price")
    if kind in _STOP_TYPES and stop_price is None:
        _unsupported(modify, f"a {kind} replacement without a stop price")
    params = [
        ("symbol", original.symbol),
        ("side", original.side.value),
        ("type", kind),
        ("cancelReplaceMode", "STOP_ON_FAILURE"),
    ]
    if kind in _TIF_TYPES:
        tif = original.time_in_force or TimeInForce.GTC
        params.append(("timeInForce", tif.value))
    params.append(("quantity", format_decimal(remaining)))
    if kind in _PRICED_TYPES and price is not None:
        params.append(("price", format_decimal(price)))
    if kind in _STOP_TYPES and stop_price is not None:
        params.append(("stopPrice", format_decimal(stop_price)))
    params.append(("cancelOrigClientOrderId", original.client_order_id))
    params.append(("newClientOrderId", new_id))
    params.append(("newOrderRespType", "RESULT"))
    return params


# -- trades -------------------------------------------------------------------------------


def execution_id(broker: str, symbol: str, trade_id: int) -> str:
    """One fill's id, the same from an executionReport and from ``myTrades``
    (Binance trade ids are unique per symbol)."""
    return f"{broker}-{symbol}-{trade_id}"


@dataclass(frozen=True, slots=True)
class BinanceTrade:
    """One ``GET /api/v3/myTrades`` row."""

    symbol: str
    trade_id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str | None
    time_ms: int
    is_buyer: bool
    is_maker: bool


def parse_trade(payload: object, *, broker: str) -> BinanceTrade:
    fields = _Fields(payload, broker, "myTrades row")
    return BinanceTrade(
        symbol=fields.text("symbol"),
        trade_id=fields.integer("id"),
        order_id=fields.integer("orderId"),
        price=fields.decimal("price"),
        qty=fields.decimal("qty"),
        quote_qty=fields.decimal("quoteQty"),
        commission=fields.decimal("commission", non_negative=False),
        commission_asset=fields.opt_text("commissionAsset") or None,
        time_ms=fields.integer("time"),
        is_buyer=fields.flag("isBuyer"),
        is_maker=fields.flag("isMaker"),
    )


def trade_to_fill(broker: str, trade: BinanceTrade, client_order_id: str) -> OrderFilled:
    """A ``myTrades`` row as the fill of our order ``client_order_id``."""
    fill = _message(
        broker,
        OrderFilled,
        f"trade {trade.symbol}/{trade.trade_id}",
        client_order_id=client_order_id,
        venue=broker,
        venue_order_id=str(trade.order_id),
        execution_id=execution_id(broker, trade.symbol, trade.trade_id),
        symbol=trade.symbol,
        side=Side.BUY if trade.is_buyer else Side.SELL,
        last_quantity=trade.qty,
        last_price=trade.price,
        commission=trade.commission,
        commission_asset=trade.commission_asset,
        liquidity=LiquiditySide.MAKER if trade.is_maker else LiquiditySide.TAKER,
        ts_ns=trade.time_ms * _MS,
    )
    return fill


# -- account ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal


def _balances(items: object, fields: _Fields, keys: tuple[str, str, str]) -> tuple[Balance, ...]:
    if not isinstance(items, list):
        fields.fail(f"balances {items!r}: expected a list")
    asset_key, free_key, locked_key = keys
    result = []
    for index, item in enumerate(items):
        row = _Fields(item, fields.broker, f"{fields.where}.balances[{index}]")
        result.append(
            Balance(
                asset=row.text(asset_key),
                free=row.decimal(free_key),
                locked=row.decimal(locked_key),
            )
        )
    return tuple(result)


def parse_account(payload: object, *, broker: str) -> tuple[Balance, ...]:
    """``GET /api/v3/account`` (or ``account.status``) balances."""
    fields = _Fields(payload, broker, "account")
    return _balances(fields.raw("balances"), fields, ("asset", "free", "locked"))


# -- user data stream ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinanceExecutionReport:
    """An ``executionReport`` event: one change of one order."""

    event_time_ms: int
    symbol: str
    client_order_id: str
    original_client_order_id: str
    side: Side
    binance_type: str
    order_type: OrderType
    post_only: bool
    time_in_force: TimeInForce | None
    quantity: Decimal
    price: Decimal
    stop_price: Decimal
    execution_type: str
    status: str
    reject_reason: str
    order_id: int
    last_qty: Decimal
    cumulative_qty: Decimal
    last_price: Decimal
    commission: Decimal
    commission_asset: str | None
    transaction_time_ms: int
    trade_id: int
    is_maker: bool
    cumulative_quote_qty: Decimal
    expiry_reason: str | None = None


@dataclass(frozen=True, slots=True)
class AccountPosition:
    """``outboundAccountPosition``: balances of the assets a change touched."""

    event_time_ms: int
    update_time_ms: int
    balances: tuple[Balance, ...]


@dataclass(frozen=True, slots=True)
class BalanceUpdate:
    """``balanceUpdate``: a deposit, withdrawal or transfer."""

    event_time_ms: int
    asset: str
    delta: Decimal
    clear_time_ms: int


@dataclass(frozen=True, slots=True)
class ExternalLockUpdate:
    """``externalLockUpdate``: part of a balance (un)locked by another system."""

    event_time_ms: int
    asset: str
    delta: Decimal
    transaction_time_ms: int


@dataclass(frozen=True, slots=True)
class StreamTerminated:
    """``eventStreamTerminated``: this subscription sends nothing more."""

    event_time_ms: int


@dataclass(frozen=True, slots=True)
class ListOrder:
    symbol: str
    order_id: int
    client_order_id: str


@dataclass(frozen=True, slots=True)
class ListStatus:
    """``listStatus``: an order list (OCO/OTO...) changed; its legs report separately."""

    event_time_ms: int
    symbol: str
    order_list_id: int
    contingency_type: str
    list_status_type: str
    list_order_status: str
    list_reject_reason: str
    list_client_order_id: str
    transaction_time_ms: int
    orders: tuple[ListOrder, ...]


UserEvent: TypeAlias = (
    BinanceExecutionReport
    | AccountPosition
    | BalanceUpdate
    | ExternalLockUpdate
    | StreamTerminated
    | ListStatus
)


def _execution_report(fields: _Fields) -> BinanceExecutionReport:
    binance_type, order_type, post_only = fields.order_type("o")
    trade_id = fields.integer("t")
    return BinanceExecutionReport(
        event_time_ms=fields.integer("E"),
        symbol=fields.text("s"),
        client_order_id=fields.text("c"),
        original_client_order_id=fields.opt_text("C") or "",
        side=fields.side("S"),
        binance_type=binance_type,
        order_type=order_type,
        post_only=post_only,
        time_in_force=fields.tif("f"),
        quantity=fields.decimal("q"),
        price=fields.decimal("p"),
        stop_price=fields.decimal("P"),
        execution_type=fields.one_of("x", EXECUTION_TYPES),
        status=fields.one_of("X", ORDER_STATUS_MAP),
        reject_reason=fields.text("r", empty=True),
        order_id=fields.integer("i"),
        last_qty=fields.decimal("l"),
        cumulative_qty=fields.decimal("z"),
        last_price=fields.decimal("L"),
        commission=fields.decimal("n", non_negative=False),
        commission_asset=fields.opt_text("N") or None,
        transaction_time_ms=fields.integer("T"),
        trade_id=trade_id,
        is_maker=fields.flag("m"),
        cumulative_quote_qty=fields.decimal("Z", non_negative=False),
        expiry_reason=fields.opt_text("eR"),
    )


def _quick_execution_report(event: dict[str, Any]) -> BinanceExecutionReport | None:
    """``_execution_report``'s reading of a well-formed event, without a field reader:
    the account's events for an order arrive right behind its answer, and the actor
    reads them while the OMS and the strategy handle the fill (~2x cheaper). The
    same checks, field by field (exact types, as a JSON object decodes); anything
    it does not vouch for says None and is read the slow way (the same event, or
    the same typed error), like ``_quick_order``."""
    get = event.get
    binance_type = get("o")
    if type(binance_type) is not str:
        return None
    mapped = _FROM_BINANCE_TYPE.get(binance_type)
    side_text = get("S")
    side = _SIDES.get(side_text) if type(side_text) is str else None
    tif_text = get("f")
    time_in_force: TimeInForce | None = None
    if tif_text is not None:
        time_in_force = _BINANCE_TIFS.get(tif_text) if type(tif_text) is str else None
        if time_in_force is None:
            return None
    # ``opt_text``: absent (None) or a string.
    original, commission_asset, expiry_reason = get("C"), get("N"), get("eR")
    quantity = _quick_decimal(get("q"))
    price = _quick_decimal(get("p"))
    stop_price = _quick_decimal(get("P"))
    last_qty = _quick_decimal(get("l"))
    cumulative_qty = _quick_decimal(get("z"))
    last_price = _quick_decimal(get("L"))
    commission = _quick_decimal(get("n"), non_negative=False)
    cumulative_quote = _quick_decimal(get("Z"), non_negative=False)
    event_time, trade_id, order_id, transaction_time = get("E"), get("t"), get("i"), get("T")
    symbol, client_order_id, reject_reason = get("s"), get("c"), get("r")
    execution_type, status, is_maker = get("x"), get("X"), get("m")
    if (
        mapped is None
        or side is None
        or (original is not None and type(original) is not str)
        or (commission_asset is not None and type(commission_asset) is not str)
        or (expiry_reason is not None and type(expiry_reason) is not str)
        or quantity is None
        or price is None
        or stop_price is None
        or last_qty is None
        or cumulative_qty is None
        or last_price is None
        or commission is None
        or cumulative_quote is None
        or type(event_time) is not int
        or type(trade_id) is not int
        or type(order_id) is not int
        or type(transaction_time) is not int
        or type(symbol) is not str
        or not symbol
        or type(client_order_id) is not str
        or not client_order_id
        or type(reject_reason) is not str
        or type(execution_type) is not str
        or execution_type not in EXECUTION_TYPES
        or type(status) is not str
        or status not in ORDER_STATUS_MAP
        or type(is_maker) is not bool
    ):
        return None
    return BinanceExecutionReport(
        event_time_ms=event_time,
        symbol=symbol,
        client_order_id=client_order_id,
        original_client_order_id=original or "",
        side=side,
        binance_type=binance_type,
        order_type=mapped[0],
        post_only=mapped[1],
        time_in_force=time_in_force,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        execution_type=execution_type,
        status=status,
        reject_reason=reject_reason,
        order_id=order_id,
        last_qty=last_qty,
        cumulative_qty=cumulative_qty,
        last_price=last_price,
        commission=commission,
        commission_asset=commission_asset or None,
        transaction_time_ms=transaction_time,
        trade_id=trade_id,
        is_maker=is_maker,
        cumulative_quote_qty=cumulative_quote,
        expiry_reason=expiry_reason,
    )


def _list_status(fields: _Fields) -> ListStatus:
    legs = fields.raw("O")
    if not isinstance(legs, list):
        fields.fail(f"O={legs!r}: expected a list")
    orders = []
    for index, leg in enumerate(legs):
        row = _Fields(leg, fields.broker, f"{fields.where}.O[{index}]")
        orders.append(ListOrder(row.text("s"), row.integer("i"), row.text("c")))
    return ListStatus(
        event_time_ms=fields.integer("E"),
        symbol=fields.text("s"),
        order_list_id=fields.integer("g"),
        contingency_type=fields.text("c"),
        list_status_type=fields.text("l"),
        list_order_status=fields.text("L"),
        list_reject_reason=fields.text("r", empty=True),
        list_client_order_id=fields.text("C"),
        transaction_time_ms=fields.integer("T"),
        orders=tuple(orders),
    )


def parse_user_event(broker: str, event: object) -> UserEvent:
    """One user data stream event (the ``event`` object, or its
    ``{"subscriptionId", "event"}`` envelope) as a typed event."""
    if isinstance(event, Mapping) and "event" in event and "e" not in event:
        event = event["event"]
    if type(event) is dict and event.get("e") == "executionReport":
        quick = _quick_execution_report(event)
        if quick is not None:
            return quick
    fields = _Fields(event, broker, "user data event")
    kind = fields.text("e")
    fields.where = kind
    if kind == "executionReport":
        return _execution_report(fields)
    if kind == "outboundAccountPosition":
        return AccountPosition(
            event_time_ms=fields.integer("E"),
            update_time_ms=fields.integer("u"),
            balances=_balances(fields.raw("B"), fields, ("a", "f", "l")),
        )
    if kind == "balanceUpdate":
        return BalanceUpdate(
            event_time_ms=fields.integer("E"),
            asset=fields.text("a"),
            delta=fields.decimal("d", non_negative=False),
            clear_time_ms=fields.integer("T"),
        )
    if kind == "externalLockUpdate":
        return ExternalLockUpdate(
            event_time_ms=fields.integer("E"),
            asset=fields.text("a"),
            delta=fields.decimal("d", non_negative=False),
            transaction_time_ms=fields.integer("T"),
        )
    if kind == "eventStreamTerminated":
        return StreamTerminated(event_time_ms=fields.integer("E"))
    if kind == "listStatus":
        return _list_status(fields)
    fields.fail("unknown user data event type")


def execution_report_to_messages(broker: str, report: BinanceExecutionReport) -> list[Message]:
    """What one executionReport means for the OMS (an empty list when nothing)."""
    venue_order_id = str(report.order_id)
    ts_ns = report.transaction_time_ms * _MS
    original = report.original_client_order_id or report.client_order_id
    what = f"executionReport {report.symbol}/{report.order_id} x={report.execution_type}"
    kind = report.execution_type
    common: dict[str, object] = {"venue": broker, "ts_ns": ts_ns}
    built: Message
    if kind == "NEW":
        built = _message(
            broker,
            OrderAccepted,
            what,
            client_order_id=report.client_order_id,
            venue_order_id=venue_order_id,
            **common,
        )
    elif kind == "TRADE":
        built = _message(
            broker,
            OrderFilled,
            what,
            client_order_id=report.client_order_id,
            venue_order_id=venue_order_id,
            execution_id=execution_id(broker, report.symbol, report.trade_id),
            symbol=report.symbol,
            side=report.side,
            last_quantity=report.last_qty,
            last_price=report.last_price,
            commission=report.commission,
            commission_asset=report.commission_asset,
            liquidity=LiquiditySide.MAKER if report.is_maker else LiquiditySide.TAKER,
            **common,
        )
    elif kind == "CANCELED":
        built = _message(
            broker,
            OrderCanceled,
            what,
            client_order_id=original,
            venue_order_id=venue_order_id,
            **common,
        )
    elif kind == "REPLACED":
        built = _message(
            broker,
            OrderModified,
            what,
            client_order_id=original,
            venue_order_id=venue_order_id,
            quantity=report.quantity,
            price=report.price if report.price > 0 else None,
            stop_price=report.stop_price if report.stop_price > 0 else None,
            **common,
        )
    elif kind == "REJECTED":
        reason = report.reject_reason or "REJECTED"
        built = _message(
            broker,
            OrderRejected,
            what,
            client_order_id=report.client_order_id,
            code=reason,
            reason=f"Binance rejected the order: {reason}",
            **common,
        )
    elif kind == "EXPIRED" or report.status in ("EXPIRED", "EXPIRED_IN_MATCH"):
        built = _message(
            broker,
            OrderExpired,
            what,
            client_order_id=report.client_order_id,
            venue_order_id=venue_order_id,
            **common,
        )
    else:
        # TRADE_PREVENTION that only decremented a still-open order: no state change
        # for us beyond what its later events show.
        return []
    return [built]


# -- WebSocket API frames -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinanceErrorAnswer:
    """A Binance error answer: ``{"code": -2010, "msg": "..."}`` at an HTTP status.
    ``data`` is the optional ``data`` member (cancelReplace legs, ``retryAfter``).

    A value, not an exception: the session hands it back with the response and
    the actor decides from :attr:`kind` what it means for the request."""

    http_status: int
    code: int
    msg: str
    data: object = None

    @property
    def kind(self) -> ErrorKind:
        """What this answer means for the caller (5xx and -1007 are an unknown
        outcome, never a failure)."""
        status, code = self.http_status, self.code
        if status >= 500 or code in _UNKNOWN_OUTCOME_CODES:
            return ErrorKind.UNKNOWN_OUTCOME
        if status == 418:
            return ErrorKind.BANNED
        if status == 429 or code in _RATE_CODES:
            return ErrorKind.RATE_LIMITED
        if code == -1021:
            return ErrorKind.CLOCK
        if status == 401 or code in _AUTH_CODES:
            return ErrorKind.AUTH
        if code == -2013 or (code == -2011 and "unknown order" in self.msg.lower()):
            return ErrorKind.NOT_FOUND
        if 400 <= status < 500:
            return ErrorKind.REJECTED
        return ErrorKind.UNKNOWN_OUTCOME


@dataclass(frozen=True, slots=True)
class WsRateLimit:
    """One ``rateLimits`` entry of a WebSocket API response."""

    rate_limit_type: str
    interval: str
    interval_num: int
    limit: int
    count: int


@dataclass(frozen=True, slots=True)
class WsResponse:
    id: str | int | None
    status: int
    result: object
    error: BinanceErrorAnswer | None
    rate_limits: tuple[WsRateLimit, ...]


@dataclass(frozen=True, slots=True)
class WsEvent:
    """A user data stream event on the WebSocket API; decode it with ``parse_user_event``."""

    subscription_id: int
    event: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """``serverShutdown``: the server will close this connection; reconnect."""

    event_time_ms: int | None = None


WsFrame: TypeAlias = WsResponse | WsEvent | ServerShutdown


def _rate_limits(raw: object, broker: str) -> tuple[WsRateLimit, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        _malformed(broker, f"rateLimits={raw!r}: expected a list")
    result = []
    for index, item in enumerate(raw):
        quick = _quick_rate_limit(item)
        if quick is not None:
            result.append(quick)
            continue
        fields = _Fields(item, broker, f"rateLimits[{index}]")
        result.append(
            WsRateLimit(
                rate_limit_type=fields.text("rateLimitType"),
                interval=fields.text("interval"),
                interval_num=fields.integer("intervalNum"),
                limit=fields.integer("limit"),
                count=fields.integer("count"),
            )
        )
    return tuple(result)


def _quick_rate_limit(item: object) -> WsRateLimit | None:
    """One ``rateLimits`` entry whose fields all have the types ``_rate_limits`` asks
    for (non-empty strings; integers, not booleans), built without a ``_Fields``
    per entry: every WebSocket API answer carries three or so, read before its
    caller is told. It checks exactly what the ``_Fields`` reading checks and
    says None for anything else, which that reading then refuses with its error."""
    if type(item) is not dict:
        return None
    kind = item.get("rateLimitType")
    interval = item.get("interval")
    number = item.get("intervalNum")
    limit = item.get("limit")
    count = item.get("count")
    if (
        type(kind) is str
        and kind
        and type(interval) is str
        and interval
        and type(number) is int
        and type(limit) is int
        and type(count) is int
    ):
        return WsRateLimit(kind, interval, number, limit, count)
    return None


def parse_ws_frame(text: str | bytes, *, broker: str) -> WsFrame:
    """One text frame of the WebSocket API connection."""
    data = _decode_json(text, broker, "WebSocket API frame")
    fields = _Fields(data, broker, "WebSocket API frame")
    if fields.has("subscriptionId"):
        event = fields.raw("event")
        if not isinstance(event, dict):
            fields.fail(f"event={event!r}: expected an object")
        return WsEvent(subscription_id=fields.integer("subscriptionId"), event=event)
    if fields.has("event"):
        event_fields = _Fields(fields.raw("event"), broker, "WebSocket API event")
        if event_fields.obj.get("e") != "serverShutdown":
            event_fields.fail("event without subscriptionId that is not serverShutdown")
        stamp = event_fields.obj.get("E")
        valid = isinstance(stamp, int) and not isinstance(stamp, bool)
        return ServerShutdown(event_time_ms=stamp if valid else None)  # type: ignore[arg-type]
    if not fields.has("status"):
        fields.fail("neither a response (status) nor an event")
    request_id = fields.obj.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
        fields.fail(f"id={request_id!r}: expected a string, an integer or null")
    status = fields.integer("status")
    error = None
    if fields.obj.get("error") is not None:
        error_fields = _Fields(fields.raw("error"), broker, "WebSocket API error")
        error = BinanceErrorAnswer(
            http_status=status,
            code=error_fields.integer("code"),
            msg=error_fields.text("msg", empty=True),
            data=error_fields.obj.get("data"),
        )
    elif status >= 400:
        fields.fail(f"status {status} without an error object")
    return WsResponse(
        id=request_id,
        status=status,
        result=fields.obj.get("result"),
        error=error,
        rate_limits=_rate_limits(fields.obj.get("rateLimits"), broker),
    )


_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""Made once: ``json.dumps`` with any non-default option builds an encoder per call,
and a request frame is built for every order before it is sent."""


def ws_request(request_id: str, method: str, params: Mapping[str, str] | None) -> str:
    """A WebSocket API request frame (compact JSON text)."""
    frame: dict[str, object] = {"id": request_id, "method": method}
    if params is not None:
        # Only read here: a dict (what the session builds) is encoded as it is.
        frame["params"] = params if type(params) is dict else dict(params)
    return _COMPACT_JSON.encode(frame)


# -- market data --------------------------------------------------------------------------


def market_stream_name(symbol: str) -> str:
    """The book ticker stream of ``symbol``: ``btcusdt@bookTicker``."""
    return f"{symbol.lower()}@bookTicker"


def trade_stream_name(symbol: str) -> str:
    """The public trade stream of ``symbol``: ``btcusdt@trade``."""
    return f"{symbol.lower()}@trade"


def _unwrap_market(broker: str | None, payload: object) -> object:
    if isinstance(payload, str | bytes):
        payload = _decode_json(payload, broker, "market stream frame")
    if isinstance(payload, Mapping) and "stream" in payload and "data" in payload:
        return payload["data"]
    return payload


def parse_book_ticker(broker: str, payload: object, *, ts_ns: int) -> Quote:
    """A ``<symbol>@bookTicker`` update (raw, or in a combined-stream envelope, or the
    frame's text) as a Quote stamped ``ts_ns`` (the stream carries no time)."""
    fields = _Fields(_unwrap_market(broker, payload), broker, "bookTicker")
    quote = _message(
        broker,
        Quote,
        "bookTicker",
        venue=broker,
        symbol=fields.text("s"),
        bid=fields.decimal("b"),
        ask=fields.decimal("a"),
        last=None,
        ts_ns=ts_ns,
    )
    return quote


def parse_rest_book_ticker(broker: str, payload: object, *, ts_ns: int) -> Quote:
    """One row of ``GET /api/v3/ticker/bookTicker`` (``symbol``, ``bidPrice``,
    ``askPrice``...: REST spells the stream's one-letter fields out)."""
    fields = _Fields(payload, broker, "ticker/bookTicker")
    return _message(
        broker,
        Quote,
        "ticker/bookTicker",
        venue=broker,
        symbol=fields.text("symbol"),
        bid=fields.decimal("bidPrice"),
        ask=fields.decimal("askPrice"),
        last=None,
        ts_ns=ts_ns,
    )


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """``GET /api/v3/depth``: price levels best first, as (price, quantity)."""

    last_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


def parse_depth(payload: object, *, broker: str) -> DepthSnapshot:
    fields = _Fields(payload, broker, "depth")
    levels: dict[str, tuple[tuple[Decimal, Decimal], ...]] = {}
    for side in ("bids", "asks"):
        raw = fields.raw(side)
        if not isinstance(raw, list):
            fields.fail(f"{side}: expected a list of [price, quantity]")
        rows: list[tuple[Decimal, Decimal]] = []
        for row in raw:
            if not (isinstance(row, list) and len(row) == 2):
                fields.fail(f"{side}: expected [price, quantity], got {row!r}")
            rows.append(
                (_decimal_value(row[0], broker, side), _decimal_value(row[1], broker, side))
            )
        levels[side] = tuple(rows)
    return DepthSnapshot(fields.integer("lastUpdateId"), levels["bids"], levels["asks"])


def _decimal_value(value: object, broker: str, what: str) -> Decimal:
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        raise MalformedPayloadError(f"depth {what}: {value!r} is not a decimal", broker=broker)
    return number


def parse_public_trade(broker: str, payload: object) -> MarketTrade:
    """A ``<symbol>@trade`` event (``e: trade``; ``t`` the trade id, ``p``/``q``
    price and quantity, ``T`` the trade time in ms, ``m`` whether the buyer was the
    maker, so the taker, the aggressor, sold) as a print of the public tape."""
    fields = _Fields(_unwrap_market(broker, payload), broker, "trade")
    buyer_maker = fields.raw("m")
    if not isinstance(buyer_maker, bool):
        fields.fail(f"m: expected a bool, got {buyer_maker!r}")
    return _message(
        broker,
        MarketTrade,
        "trade",
        venue=broker,
        symbol=fields.text("s"),
        trade_id=str(fields.integer("t")),
        price=fields.decimal("p"),
        quantity=fields.decimal("q"),
        aggressor=Side.SELL if buyer_maker else Side.BUY,
        ts_ns=fields.integer("T") * 1_000_000,
    )


def parse_market_message(broker: str, payload: object, *, ts_ns: int) -> Quote | MarketTrade | None:
    """A market stream frame: a Quote for a book ticker, a MarketTrade for a trade,
    None for the ``{"result": null, "id": n}`` answer to a SUBSCRIBE."""
    data = _unwrap_market(broker, payload)
    if isinstance(data, Mapping) and "id" in data and "result" in data and "s" not in data:
        return None
    if isinstance(data, Mapping) and data.get("e") == "trade":
        return parse_public_trade(broker, data)
    return parse_book_ticker(broker, data, ts_ns=ts_ns)


def parse_ticker_price(payload: object, *, broker: str | None = None) -> Decimal:
    """``GET /api/v3/ticker/price?symbol=`` -> the price."""
    fields = _Fields(payload, broker, "ticker price")
    price = fields.decimal("price")
    if price <= 0:
        fields.fail(f"price={price}: expected a positive price")
    return price


# -- errors and rate limits ---------------------------------------------------------------


def parse_error(http_status: int, body: bytes | str) -> BinanceErrorAnswer:
    """An error response body; a non-JSON body (a proxy's HTML page) gives code 0."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text, parse_float=Decimal)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code, msg = data.get("code"), data.get("msg")
        if isinstance(code, int) and not isinstance(code, bool) and isinstance(msg, str):
            return BinanceErrorAnswer(http_status, code, msg, data.get("data"))
    shown = " ".join(text.split())
    if len(shown) > 200:
        shown = shown[:200] + "…"
    return BinanceErrorAnswer(http_status, 0, shown or f"HTTP {http_status} with an empty body")


class ErrorKind(enum.Enum):
    """What a Binance error means for the caller."""

    REJECTED = "REJECTED"
    """The venue refused the request; nothing happened."""
    NOT_FOUND = "NOT_FOUND"
    """The order does not exist (any more)."""
    RATE_LIMITED = "RATE_LIMITED"
    """Back off (Retry-After); nothing happened."""
    BANNED = "BANNED"
    """IP banned (418): stop until Retry-After."""
    UNKNOWN_OUTCOME = "UNKNOWN_OUTCOME"
    """The request may or may not have executed: query the order before anything else."""
    AUTH = "AUTH"
    """Key, signature or permission problem: retrying will not help."""
    CLOCK = "CLOCK"
    """Timestamp outside recvWindow: resync the clock, then retry."""


_UNKNOWN_OUTCOME_CODES = frozenset({-1006, -1007})  # UNEXPECTED_RESP, TIMEOUT
_RATE_CODES = frozenset({-1003, -1015})
_AUTH_CODES = frozenset({-1002, -1022, -2014, -2015})


@dataclass(frozen=True, slots=True)
class HeaderRates:
    """``X-MBX-USED-WEIGHT-*`` and ``X-MBX-ORDER-COUNT-*`` by interval (``"1M"``...)."""

    used_weight: Mapping[str, int]
    order_count: Mapping[str, int]


def parse_rate_headers(headers: Mapping[str, str]) -> HeaderRates:
    """Rate usage from response headers (names compared case-insensitively;
    headers with a malformed interval or value are ignored)."""
    weight: dict[str, int] = {}
    orders: dict[str, int] = {}
    for name, value in headers.items():
        lower = name.lower()
        for prefix, target in (("x-mbx-used-weight-", weight), ("x-mbx-order-count-", orders)):
            if not lower.startswith(prefix):
                continue
            interval = lower[len(prefix) :].upper()
            text = value.strip()
            if _RATE_INTERVAL.match(interval) and text.isdigit():
                target[interval] = int(text)
    return HeaderRates(used_weight=weight, order_count=orders)


_WS_INTERVALS: Mapping[str, str] = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}


def ws_rate_usage(rate_limits: tuple[WsRateLimit, ...]) -> HeaderRates:
    """A WebSocket API answer's ``rateLimits`` in the terms of REST's headers: its
    ``REQUEST_WEIGHT`` counts as ``X-MBX-USED-WEIGHT-1M`` does, its ``ORDERS`` as
    ``X-MBX-ORDER-COUNT-10S``/``-1D`` (the same counters: Binance shares them
    between the two APIs). Entries of another type or interval are ignored."""
    weight: dict[str, int] = {}
    orders: dict[str, int] = {}
    for limit in rate_limits:
        unit = _WS_INTERVALS.get(limit.interval)
        if unit is None or limit.interval_num <= 0:
            continue
        key = f"{limit.interval_num}{unit}"
        if limit.rate_limit_type == "REQUEST_WEIGHT":
            weight[key] = limit.count
        elif limit.rate_limit_type == "ORDERS":
            orders[key] = limit.count
    return HeaderRates(used_weight=weight, order_count=orders)


def ws_retry_after_seconds(error: BinanceErrorAnswer) -> float | None:
    """A WebSocket API 429/418 names the end of the wait in its ``data``:
    ``retryAfter`` is an epoch-ms instant, ``serverTime`` the venue's now;
    their difference is immune to our clock's skew."""
    data = error.data
    if not isinstance(data, Mapping):
        return None
    until, now = data.get("retryAfter"), data.get("serverTime")
    if not isinstance(until, int) or not isinstance(now, int) or isinstance(until, bool):
        return None
    return max(0.0, (until - now) / 1000)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The ``Retry-After`` header (seconds, sent on 429 and 418), if present and valid."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                seconds = float(value.strip())
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None
