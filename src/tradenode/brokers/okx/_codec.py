"""The OKX v5 codec: our orders as OKX's, OKX's answers and pushes as our messages.

Pure: no I/O. Every malformed payload raises :class:`MalformedPayloadError`
(the actor logs and counts it). Facts used here (OKX docs v5, fact sheet
``crypto.md`` section 2; python-okx 0.4.4; ccxt 4.5.90 ``okx.py``):

- Every REST answer and every WebSocket operation answer is an envelope
  ``{"code", "msg", "data": [...]}``; a place, cancel or amend carries one
  item per order with its own ``sCode``/``sMsg``, which is authoritative
  (top-level ``code`` ``1``: every item failed, ``2``: some did).
- Spot orders go with ``tdMode: cash``; the time in force is the
  ``ordType`` (``limit`` is GTC, ``ioc``, ``fok``, ``post_only``,
  ``market``). A spot market order's ``sz`` is in the quote currency for a
  buy unless ``tgtCcy: base_ccy`` says otherwise, which we always send.
- ``clOrdId``: letters and digits, at most 32.
- Order ``state``: ``live``, ``partially_filled``, ``filled``, ``canceled``,
  ``mmp_canceled``; a rejected order has no state (its ``sCode`` says it).
  A cancel by the venue of an IOC/FOK/market remainder (``cancelSource``
  13/14, or any ``canceled`` IOC/FOK/market order the user did not cancel)
  is our ``EXPIRED``.
- The ``orders`` channel's push carries the order plus the update's own
  fill (``tradeId``, ``fillSz``, ``fillPx``, ``fillFee``, ``fillFeeCcy``,
  ``execType``) and the outcome of an amend (``amendResult``: ``0`` done,
  ``-1`` failed, ``1`` failed and the order was cancelled).
- Fees are negative when charged: our commission is their negation.

Execution ids are ``okx-<instId>-<tradeId>`` whether the fill came from the
stream or from ``/trade/fills``, so the OMS drops one it already has.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..._exceptions import MalformedPayloadError
from ...messages._enums import LiquiditySide, OrderStatus, OrderType, Side, TimeInForce
from ...messages._messages import (
    ModifyOrder,
    OrderFilled,
    OrderStatusReport,
    Quote,
    SubmitOrder,
)

__all__ = [
    "OKX_ORDER_TYPES",
    "OKX_TIME_IN_FORCE",
    "ErrorKind",
    "OkxAck",
    "OkxAnswer",
    "OkxFill",
    "OkxInstrument",
    "OkxOrder",
    "OrderViolation",
    "Pong",
    "UnsupportedOrderError",
    "WsEvent",
    "WsOpAnswer",
    "WsPush",
    "amend_args",
    "cancel_args",
    "check_order",
    "classify",
    "execution_id",
    "fill_from_order_push",
    "fill_to_message",
    "format_decimal",
    "order_args",
    "order_status",
    "parse_ack",
    "parse_acks",
    "parse_answer",
    "parse_balances",
    "parse_fill",
    "parse_instruments",
    "parse_order",
    "parse_quote",
    "parse_ws_frame",
    "status_report",
    "ws_message",
    "ws_trade_args",
]

OKX_ORDER_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
"""What this codec can send: spot market and limit orders (stops are OKX algo
orders, a separate API this adapter does not speak)."""
OKX_TIME_IN_FORCE = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})

_ZERO = Decimal(0)
_OPEN_STATES = frozenset({"live", "partially_filled"})
_TERMINAL_STATES = frozenset({"filled", "canceled", "mmp_canceled"})
_KNOWN_STATES = _OPEN_STATES | _TERMINAL_STATES
#: ``cancelSource`` values meaning "the venue ended the remainder": FOK not filled, IOC rest.
_EXPIRY_SOURCES = frozenset({"13", "14"})
_IMMEDIATE = frozenset({"ioc", "fok", "market", "optimal_limit_ioc"})
_USER_CANCEL = "1"


class UnsupportedOrderError(ValueError):
    """The order cannot be expressed as an OKX spot order (refused before sending)."""

    def __init__(self, message: str, code: str = "UNSUPPORTED") -> None:
        super().__init__(message)
        self.code = code


def _malformed(what: str, broker: str | None) -> MalformedPayloadError:
    return MalformedPayloadError(what, broker=broker)


def _text(row: Mapping[str, Any], name: str, broker: str | None, *, optional: bool = False) -> str:
    value = row.get(name)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise _malformed(f"{name}: expected a string, got {value!r}", broker)
    return value


def _decimal(
    row: Mapping[str, Any], name: str, broker: str | None, *, optional: bool = False
) -> Decimal | None:
    value = row.get(name)
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str):
        raise _malformed(f"{name}: expected a decimal string, got {value!r}", broker)
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise _malformed(f"{name}: {value!r} is not a number", broker) from exc
    if not number.is_finite():
        raise _malformed(f"{name}: {value!r} is not finite", broker)
    return number


def _required(row: Mapping[str, Any], name: str, broker: str | None) -> Decimal:
    number = _decimal(row, name, broker)
    assert number is not None
    return number


def _ms_to_ns(row: Mapping[str, Any], name: str, broker: str | None) -> int:
    value = row.get(name)
    if value is None or value == "":
        return 0
    if not isinstance(value, str) or not value.isdigit():
        raise _malformed(f"{name}: expected epoch milliseconds, got {value!r}", broker)
    return int(value) * 1_000_000


def format_decimal(value: Decimal) -> str:
    """Plain notation, no exponent, no trailing zeros (``1E+1`` -> ``10``). Never rounds."""
    if not value.is_finite():
        raise ValueError(f"format_decimal({value!r}): needs a finite Decimal")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# -- answers -----------------------------------------------------------------------------


class ErrorKind(enum.Enum):
    """What an OKX error code means for the broker contract."""

    RATE_LIMITED = "rate_limited"
    """50011 (too many requests), 50013 (busy), 50061 (sub-account order rate): not processed."""
    UNKNOWN_OUTCOME = "unknown_outcome"
    """50001, 50004, 50026, 51149, 51054 and HTTP 5xx: it may or may not have happened."""
    AUTH = "auth"
    """501xx authentication refusals (HTTP 401): nothing happened, but nothing will."""
    NOT_FOUND = "not_found"
    """51603: no such order."""
    DUPLICATE = "duplicate"
    """51016: the client order id is already pending at the venue."""
    REJECTED = "rejected"
    """Any other code: a business refusal."""


_RATE_CODES = frozenset({"50011", "50013", "50061"})
_UNKNOWN_CODES = frozenset({"50001", "50004", "50026", "51149", "51054"})
_NOT_FOUND_CODES = frozenset({"51603"})


def classify(code: str, http_status: int = 200) -> ErrorKind:
    """The kind of an OKX error ``code`` (a sub-code suffix ``_1000`` is ignored)."""
    base = code.split("_", 1)[0]
    if base in _RATE_CODES or http_status == 429:
        return ErrorKind.RATE_LIMITED
    if base in _UNKNOWN_CODES or http_status >= 500:
        return ErrorKind.UNKNOWN_OUTCOME
    if base.startswith("501") or http_status == 401:
        return ErrorKind.AUTH
    if base in _NOT_FOUND_CODES:
        return ErrorKind.NOT_FOUND
    if base == "51016":
        return ErrorKind.DUPLICATE
    return ErrorKind.REJECTED


@dataclass(frozen=True, slots=True)
class OkxAnswer:
    """One envelope: ``code`` ``"0"`` is success; ``data`` its rows."""

    code: str
    msg: str
    data: tuple[Mapping[str, Any], ...]

    @property
    def ok(self) -> bool:
        return self.code == "0"


def parse_answer(body: object, *, broker: str | None = None) -> OkxAnswer:
    """Read an OKX envelope (REST body or WebSocket operation answer)."""
    if not isinstance(body, Mapping):
        raise _malformed(f"answer is not an object: {body!r:.200}", broker)
    code, msg, data = body.get("code"), body.get("msg", ""), body.get("data", [])
    if not isinstance(code, str) or not isinstance(msg, str):
        raise _malformed(f"answer without code/msg: {body!r:.200}", broker)
    if data is None or data == "":
        data = []
    if not isinstance(data, list) or not all(isinstance(row, Mapping) for row in data):
        raise _malformed(f"answer data is not a list of objects: {data!r:.200}", broker)
    return OkxAnswer(code, msg, tuple(data))


@dataclass(frozen=True, slots=True)
class OkxAck:
    """One order's item in a place/cancel/amend answer."""

    client_order_id: str
    order_id: str
    code: str
    message: str

    @property
    def ok(self) -> bool:
        return self.code == "0"

    @property
    def kind(self) -> ErrorKind | None:
        return None if self.ok else classify(self.code)


def parse_ack(row: Mapping[str, Any], *, broker: str | None = None) -> OkxAck:
    """One order's item of a place/cancel/amend answer."""
    code = row.get("sCode")
    if not isinstance(code, str):
        raise _malformed(f"order item without sCode: {row!r:.200}", broker)
    return OkxAck(
        client_order_id=_text(row, "clOrdId", broker, optional=True),
        order_id=_text(row, "ordId", broker, optional=True),
        code=code,
        message=_text(row, "sMsg", broker, optional=True),
    )


def parse_acks(answer: OkxAnswer, *, broker: str | None = None) -> tuple[OkxAck, ...]:
    """The per-order items of a place/cancel/amend answer, in request order."""
    return tuple(parse_ack(row, broker=broker) for row in answer.data)


# -- instruments and pre-trade checks ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class OkxInstrument:
    """A spot instrument's rules (``/api/v5/public/instruments``)."""

    inst_id: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_size: Decimal
    state: str
    code: int | None = None
    """``instIdCode``: the number OKX's WebSocket trade operations name it by."""
    max_limit_size: Decimal | None = None
    """``maxLmtSz``: the largest limit order, in the base currency."""
    max_market_size: Decimal | None = None
    """``maxMktSz``: the largest market order, in USDT (spot)."""


def parse_instruments(answer: OkxAnswer, *, broker: str | None = None) -> dict[str, OkxInstrument]:
    result = {}
    for row in answer.data:
        inst = OkxInstrument(
            inst_id=_text(row, "instId", broker),
            base=_text(row, "baseCcy", broker),
            quote=_text(row, "quoteCcy", broker),
            tick_size=_required(row, "tickSz", broker),
            lot_size=_required(row, "lotSz", broker),
            min_size=_required(row, "minSz", broker),
            state=_text(row, "state", broker, optional=True) or "live",
            code=_inst_id_code(row, broker),
            max_limit_size=_decimal(row, "maxLmtSz", broker, optional=True),
            max_market_size=_decimal(row, "maxMktSz", broker, optional=True),
        )
        if inst.tick_size <= 0 or inst.lot_size <= 0 or inst.min_size < 0:
            raise _malformed(f"{inst.inst_id}: non-positive tickSz/lotSz", broker)
        result[inst.inst_id] = inst
    return result


def _inst_id_code(row: Mapping[str, Any], broker: str | None) -> int | None:
    value = row.get("instIdCode")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _malformed(f"instIdCode: {value!r}", broker)
    if isinstance(value, str):
        if not value.isdigit():
            raise _malformed(f"instIdCode: {value!r}", broker)
        return int(value)
    return value


def ws_trade_args(args: Mapping[str, str], codes: Mapping[str, int]) -> dict[str, str | int]:
    """``args`` for a WebSocket trade operation: OKX names the instrument there by its
    ``instIdCode`` (a number), where the instrument list gives one."""
    result: dict[str, str | int] = dict(args)
    inst_id = args.get("instId")
    if inst_id is not None and inst_id in codes:
        del result["instId"]
        result["instIdCode"] = codes[inst_id]
    return result


@dataclass(frozen=True, slots=True)
class OrderViolation:
    """Why OKX would refuse an order, found before sending it."""

    code: str
    reason: str


def check_order(
    instrument: OkxInstrument, order: SubmitOrder, reference: Decimal | None = None
) -> OrderViolation | None:
    """The instrument's rules OKX enforces on a spot order (tickSz, lotSz, minSz, state,
    maxLmtSz; maxMktSz, in USDT, for a market order on a USDT pair when ``reference``,
    a recent price, gives its value)."""
    if instrument.state != "live":
        return OrderViolation(
            "TRADING_HALTED", f"{instrument.inst_id} is {instrument.state}, not live"
        )
    if order.quantity % instrument.lot_size != 0:
        return OrderViolation(
            "LOT_SIZE", f"sz {order.quantity} is not a multiple of lotSz {instrument.lot_size}"
        )
    if order.quantity < instrument.min_size:
        return OrderViolation(
            "LOT_SIZE", f"sz {order.quantity} is below minSz {instrument.min_size}"
        )
    if order.price is not None and order.price % instrument.tick_size != 0:
        return OrderViolation(
            "TICK_SIZE", f"px {order.price} is not a multiple of tickSz {instrument.tick_size}"
        )
    market = order.order_type is OrderType.MARKET
    largest = instrument.max_limit_size
    if not market and largest is not None and largest > 0 and order.quantity > largest:
        return OrderViolation("LOT_SIZE", f"sz {order.quantity} is above maxLmtSz {largest}")
    most = instrument.max_market_size
    if market and most and reference is not None and instrument.quote == "USDT":
        value = order.quantity * reference
        if value > most:
            return OrderViolation(
                "MAX_NOTIONAL",
                f"sz {order.quantity} is worth {value:f} USDT, above maxMktSz {most}",
            )
    return None


def parse_balances(answer: OkxAnswer, *, broker: str | None = None) -> dict[str, Decimal]:
    """Each currency's cash balance (``cashBal``: available plus frozen) from
    ``/account/balance``; a currency OKX does not list holds nothing."""
    totals: dict[str, Decimal] = {}
    for account in answer.data:
        details = account.get("details")
        if not isinstance(details, list):
            raise _malformed(f"balance without details: {account!r:.200}", broker)
        for row in details:
            if not isinstance(row, Mapping):
                raise _malformed(f"balance detail: {row!r:.200}", broker)
            totals[_text(row, "ccy", broker)] = _required(row, "cashBal", broker)
    return totals


# -- our orders as OKX's -------------------------------------------------------------------


def _ord_type(order: SubmitOrder) -> str:
    if order.order_type is OrderType.MARKET:
        if order.time_in_force not in (TimeInForce.GTC, TimeInForce.IOC):
            raise UnsupportedOrderError(
                f"OKX spot market orders take no {order.time_in_force.value}"
            )
        return "market"
    if order.order_type is not OrderType.LIMIT:
        raise UnsupportedOrderError(
            f"{order.order_type.value}: OKX stop orders are algo orders, not supported"
        )
    if order.post_only:
        if order.time_in_force is not TimeInForce.GTC:
            raise UnsupportedOrderError("a post-only order rests: GTC only")
        return "post_only"
    if order.time_in_force is TimeInForce.GTC:
        return "limit"
    if order.time_in_force is TimeInForce.IOC:
        return "ioc"
    if order.time_in_force is TimeInForce.FOK:
        return "fok"
    raise UnsupportedOrderError(f"OKX has no {order.time_in_force.value} time in force")


def order_args(order: SubmitOrder) -> dict[str, str]:
    """A spot order's parameters for ``POST /trade/order`` or ``op: order``."""
    ord_type = _ord_type(order)
    args = {
        "instId": order.symbol,
        "tdMode": "cash",
        "clOrdId": order.client_order_id,
        "side": "buy" if order.side is Side.BUY else "sell",
        "ordType": ord_type,
        "sz": format_decimal(order.quantity),
    }
    if ord_type == "market":
        args["tgtCcy"] = "base_ccy"
    else:
        if order.price is None:
            raise UnsupportedOrderError(f"a {ord_type} order needs a price")
        args["px"] = format_decimal(order.price)
    return args


def cancel_args(inst_id: str, client_order_id: str) -> dict[str, str]:
    return {"instId": inst_id, "clOrdId": client_order_id}


def amend_args(command: ModifyOrder, request_id: str) -> dict[str, str]:
    """A native amend: ``newSz`` is the order's new total (filled part included),
    as our ``ModifyOrder.quantity`` is; the order keeps its ids."""
    if command.stop_price is not None:
        raise UnsupportedOrderError("OKX spot orders have no stop price to amend")
    args = {"instId": command.symbol, "clOrdId": command.client_order_id, "reqId": request_id}
    if command.quantity is not None:
        args["newSz"] = format_decimal(command.quantity)
    if command.price is not None:
        args["newPx"] = format_decimal(command.price)
    return args


# -- orders and fills ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OkxOrder:
    """An order as OKX shows it (order details, pending/history rows, ``orders`` pushes)."""

    inst_id: str
    order_id: str
    client_order_id: str
    side: Side
    ord_type: str
    state: str
    size: Decimal
    price: Decimal | None
    filled: Decimal
    avg_price: Decimal | None
    cancel_source: str
    updated_ns: int

    @property
    def is_open(self) -> bool:
        return self.state in _OPEN_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in _TERMINAL_STATES


def _side(row: Mapping[str, Any], broker: str | None) -> Side:
    side = row.get("side")
    if side == "buy":
        return Side.BUY
    if side == "sell":
        return Side.SELL
    raise _malformed(f"side: {side!r}", broker)


def _ident(row: Mapping[str, Any], name: str, broker: str | None) -> str:
    """A field that names something (``instId``, ``ordId``): a non-empty string."""
    value = _text(row, name, broker)
    if not value:
        raise _malformed(f"{name}: empty", broker)
    return value


def parse_order(row: Mapping[str, Any], *, broker: str | None = None) -> OkxOrder:
    state = _text(row, "state", broker)
    if state not in _KNOWN_STATES:
        raise _malformed(f"state: unknown {state!r}", broker)
    avg = _decimal(row, "avgPx", broker, optional=True)
    price = _decimal(row, "px", broker, optional=True)
    size = _required(row, "sz", broker)
    filled = _decimal(row, "accFillSz", broker, optional=True) or _ZERO
    if size < 0 or filled < 0 or max(size, filled) <= 0:
        raise _malformed(f"order sz {size}, accFillSz {filled}", broker)
    if (price is not None and price < 0) or (avg is not None and avg < 0):
        raise _malformed(f"order px {price}, avgPx {avg}", broker)
    return OkxOrder(
        inst_id=_ident(row, "instId", broker),
        order_id=_ident(row, "ordId", broker),
        client_order_id=_text(row, "clOrdId", broker, optional=True),
        side=_side(row, broker),
        ord_type=_text(row, "ordType", broker),
        state=state,
        size=size,
        price=price if price else None,
        filled=filled,
        avg_price=avg if avg else None,
        cancel_source=_text(row, "cancelSource", broker, optional=True),
        updated_ns=_ms_to_ns(row, "uTime", broker),
    )


def order_status(order: OkxOrder) -> OrderStatus:
    """Our status for OKX's ``state`` (see the module docstring for ``EXPIRED``)."""
    if order.state == "live":
        return OrderStatus.PARTIALLY_FILLED if order.filled > 0 else OrderStatus.ACCEPTED
    if order.state == "partially_filled":
        return OrderStatus.PARTIALLY_FILLED
    if order.state == "filled":
        return OrderStatus.FILLED
    if order.cancel_source in _EXPIRY_SOURCES or (
        order.ord_type in _IMMEDIATE and order.cancel_source != _USER_CANCEL
    ):
        return OrderStatus.EXPIRED
    return OrderStatus.CANCELED


def status_report(
    venue: str, order: OkxOrder, client_order_id: str | None = None, *, ts_ns: int = 0
) -> OrderStatusReport:
    """The venue's view of ``order`` as an ``OrderStatusReport``
    (``MalformedPayloadError`` if the order cannot make one)."""
    cid = client_order_id or order.client_order_id
    try:
        return OrderStatusReport(
            client_order_id=cid,
            venue=venue,
            symbol=order.inst_id,
            side=order.side,
            status=order_status(order),
            quantity=max(order.size, order.filled),
            filled_quantity=order.filled,
            venue_order_id=order.order_id,
            order_type=OrderType.MARKET if order.ord_type == "market" else OrderType.LIMIT,
            price=order.price,
            avg_fill_price=order.avg_price,
            ts_ns=order.updated_ns or ts_ns,
        )
    except ValueError as exc:
        raise _malformed(f"order {order.order_id}: not a status report: {exc}", venue) from exc


@dataclass(frozen=True, slots=True)
class OkxFill:
    """One execution: a ``/trade/fills`` row or the fill an ``orders`` push carries."""

    inst_id: str
    trade_id: str
    order_id: str
    client_order_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    exec_type: str
    ts_ns: int
    bill_id: str = ""


def execution_id(inst_id: str, trade_id: str) -> str:
    return f"okx-{inst_id}-{trade_id}"


def parse_fill(row: Mapping[str, Any], *, broker: str | None = None) -> OkxFill:
    """A ``/trade/fills`` (or ``fills-history``) row."""
    trade_id = _text(row, "tradeId", broker)
    if not trade_id:
        raise _malformed("fill without tradeId", broker)
    quantity = _required(row, "fillSz", broker)
    if quantity <= 0:
        raise _malformed(f"fill {trade_id}: fillSz {quantity}", broker)
    return OkxFill(
        inst_id=_ident(row, "instId", broker),
        trade_id=trade_id,
        order_id=_ident(row, "ordId", broker),
        client_order_id=_text(row, "clOrdId", broker, optional=True),
        side=_side(row, broker),
        quantity=quantity,
        price=_fill_price(row, trade_id, broker),
        fee=_decimal(row, "fee", broker, optional=True) or _ZERO,
        fee_currency=_text(row, "feeCcy", broker, optional=True),
        exec_type=_text(row, "execType", broker, optional=True),
        ts_ns=_ms_to_ns(row, "fillTime" if row.get("fillTime") else "ts", broker),
        bill_id=_text(row, "billId", broker, optional=True),
    )


def fill_from_order_push(row: Mapping[str, Any], *, broker: str | None = None) -> OkxFill | None:
    """The fill an ``orders`` push carries (a non-empty ``tradeId`` and ``fillSz`` > 0), if any."""
    trade_id = row.get("tradeId")
    if trade_id in (None, ""):
        return None
    if not isinstance(trade_id, str):
        raise _malformed(f"tradeId: {trade_id!r}", broker)
    quantity = _decimal(row, "fillSz", broker, optional=True) or _ZERO
    if quantity < 0:
        raise _malformed(f"fill {trade_id}: fillSz {quantity}", broker)
    if quantity == 0:
        return None  # a spot market order may be pushed "filled" with fillSz 0
    return OkxFill(
        inst_id=_ident(row, "instId", broker),
        trade_id=trade_id,
        order_id=_ident(row, "ordId", broker),
        client_order_id=_text(row, "clOrdId", broker, optional=True),
        side=_side(row, broker),
        quantity=quantity,
        price=_fill_price(row, trade_id, broker),
        fee=_decimal(row, "fillFee", broker, optional=True) or _ZERO,
        fee_currency=_text(row, "fillFeeCcy", broker, optional=True),
        exec_type=_text(row, "execType", broker, optional=True),
        ts_ns=_ms_to_ns(row, "fillTime", broker),
    )


def _fill_price(row: Mapping[str, Any], trade_id: str, broker: str | None) -> Decimal:
    price = _required(row, "fillPx", broker)
    if price <= 0:
        raise _malformed(f"fill {trade_id}: fillPx {price}", broker)
    return price


def fill_to_message(venue: str, fill: OkxFill, client_order_id: str) -> OrderFilled:
    """``fill`` as an ``OrderFilled`` (``MalformedPayloadError`` if it cannot be one)."""
    liquidity = {"T": LiquiditySide.TAKER, "M": LiquiditySide.MAKER}.get(
        fill.exec_type, LiquiditySide.NONE
    )
    try:
        return OrderFilled(
            client_order_id=client_order_id,
            venue=venue,
            venue_order_id=fill.order_id,
            execution_id=execution_id(fill.inst_id, fill.trade_id),
            symbol=fill.inst_id,
            side=fill.side,
            last_quantity=fill.quantity,
            last_price=fill.price,
            commission=-fill.fee,
            commission_asset=fill.fee_currency or None,
            liquidity=liquidity,
            ts_ns=fill.ts_ns,
        )
    except ValueError as exc:
        raise _malformed(f"fill {fill.trade_id}: not a fill: {exc}", venue) from exc


# -- WebSocket frames ----------------------------------------------------------------------


class Pong:
    """The text ``pong`` answering our ``ping``."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class WsOpAnswer:
    """The answer to an operation we sent (``order``, ``cancel-order``, ...), by ``id``."""

    id: str
    op: str
    answer: OkxAnswer


@dataclass(frozen=True, slots=True)
class WsEvent:
    """``{"event": ...}``: login, subscribe, error, notice, channel-conn-count."""

    event: str
    code: str
    msg: str
    arg: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WsPush:
    """Channel data: ``{"arg": {"channel", ...}, "data": [...]}``."""

    channel: str
    arg: Mapping[str, Any]
    data: tuple[Mapping[str, Any], ...]


WsFrame = Pong | WsOpAnswer | WsEvent | WsPush


def parse_ws_frame(text: str | bytes, *, broker: str | None = None) -> WsFrame:
    """One text frame from an OKX WebSocket."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed("frame is not UTF-8", broker) from exc
    if text == "pong":
        return Pong()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise _malformed(f"frame is not JSON: {text[:120]!r}", broker) from exc
    if not isinstance(raw, dict):
        raise _malformed(f"frame is not an object: {text[:120]!r}", broker)
    if "op" in raw and "id" in raw and "event" not in raw:
        op, ident = raw.get("op"), raw.get("id")
        if not isinstance(op, str) or not isinstance(ident, str):
            raise _malformed(f"operation answer without op/id: {text[:120]!r}", broker)
        return WsOpAnswer(ident, op, parse_answer(raw, broker=broker))
    if raw.get("event") == "error" and isinstance(raw.get("id"), str):
        # A request refused as such (60012 invalid request, 60013 invalid args, ...):
        # the answer to the call that sent that id.
        code, msg = raw.get("code"), raw.get("msg", "")
        if not isinstance(code, str) or not isinstance(msg, str):
            raise _malformed(f"error event: {text[:120]!r}", broker)
        return WsOpAnswer(raw["id"], "error", OkxAnswer(code, msg, ()))
    if "event" in raw:
        event, code, msg = raw.get("event"), raw.get("code", "0"), raw.get("msg", "")
        arg = raw.get("arg", {})
        if (
            not isinstance(event, str)
            or not isinstance(code, str)
            or not isinstance(msg, str)
            or not isinstance(arg, dict)
        ):
            raise _malformed(f"event frame: {text[:120]!r}", broker)
        return WsEvent(event, code, msg, arg)
    arg, data = raw.get("arg"), raw.get("data")
    if isinstance(arg, dict) and isinstance(arg.get("channel"), str) and isinstance(data, list):
        if not all(isinstance(row, dict) for row in data):
            raise _malformed(f"push data is not a list of objects: {text[:120]!r}", broker)
        return WsPush(arg["channel"], arg, tuple(data))
    raise _malformed(f"unrecognised frame: {text[:120]!r}", broker)


def parse_quote(venue: str, push: WsPush, *, ts_ns: int = 0) -> list[Quote]:
    """Quotes from a ``bbo-tbt`` (best level of each side) or ``tickers`` push."""
    quotes = []
    for row in push.data:
        if push.channel == "tickers":
            inst = _text(row, "instId", venue)
            bid = _decimal(row, "bidPx", venue, optional=True)
            ask = _decimal(row, "askPx", venue, optional=True)
            last = _decimal(row, "last", venue, optional=True)
        elif push.channel in ("bbo-tbt", "books5"):
            inst_raw = push.arg.get("instId")
            if not isinstance(inst_raw, str):
                raise _malformed(f"{push.channel} push without instId", venue)
            inst, bid, ask, last = (
                inst_raw,
                _best(row, "bids", venue),
                _best(row, "asks", venue),
                None,
            )
        else:
            raise _malformed(f"not a quote channel: {push.channel}", venue)
        if (bid is not None and bid < 0) or (ask is not None and ask < 0):
            raise _malformed(f"{push.channel} {inst}: bid {bid}, ask {ask}", venue)
        if bid is None or ask is None or bid == 0 or ask == 0:
            continue  # one side empty: no quote
        try:
            quote = Quote(
                venue=venue,
                symbol=inst,
                bid=bid,
                ask=ask,
                last=last if last else None,
                ts_ns=_ms_to_ns(row, "ts", venue) or ts_ns,
            )
        except ValueError as exc:  # a crossed book, a negative last: not a quote
            raise _malformed(f"{push.channel} {inst}: not a quote: {exc}", venue) from exc
        quotes.append(quote)
    return quotes


def _best(row: Mapping[str, Any], side: str, broker: str | None) -> Decimal | None:
    levels = row.get(side)
    if not isinstance(levels, list):
        raise _malformed(f"{side}: expected a list", broker)
    if not levels:
        return None
    level = levels[0]
    if not isinstance(level, list) or not level or not isinstance(level[0], str):
        raise _malformed(f"{side}[0]: expected [price, size, ...]", broker)
    try:
        price = Decimal(level[0])
    except InvalidOperation as exc:
        raise _malformed(f"{side}[0]: {level[0]!r}", broker) from exc
    if not price.is_finite():
        raise _malformed(f"{side}[0]: {level[0]!r} is not finite", broker)
    return price


def ws_message(
    op: str,
    args: Sequence[Mapping[str, str | int]],
    *,
    ident: str | None = None,
    exp_time_ms: int | None = None,
) -> str:
    """An operation frame: ``{"id", "op", "args"[, "expTime"]}``."""
    frame: dict[str, Any] = {}
    if ident is not None:
        frame["id"] = ident
    frame["op"] = op
    frame["args"] = [dict(arg) for arg in args]
    if exp_time_ms is not None:
        frame["expTime"] = str(exp_time_ms)
    return json.dumps(frame, separators=(",", ":"))
