"""The OANDA v20 wire format, pure: JSON in, tradenode messages out, order requests out.

Nothing here does I/O. Shapes follow the v20 spec (3.0.25) as oandapyV20
0.7.2 exchanges them (fact sheet, venues/oanda-ibkr.md part A): numbers are
decimal strings, ids are strings of positive integers, times RFC3339 with
nanoseconds (or UNIX seconds as a string). Anything that cannot be read is
a :class:`MalformedPayloadError`, never a silent drop; a transaction of a
type this codec does not know is a value (:class:`UnknownTransaction`) that
the actor counts and skips.

Mapping choices (documented where the venue leaves room):

- order types: MARKET, LIMIT, STOP (our trigger ``stop_price`` is OANDA's
  ``price``), MARKET_IF_TOUCHED (likewise); times in force: GTC, GTD
  (``gtdTime`` from ``expire_time_ns``), DAY (OANDA's GFD), IOC, FOK. A MARKET
  order is only FOK or IOC at OANDA: our GTC/DAY market order (the core's
  default time in force) is sent FOK, OANDA's own default;
- ``reduce_only`` is ``positionFill: REDUCE_ONLY``, otherwise ``DEFAULT``;
- units are signed (a sell is negative) and may carry no more decimals than
  the instrument's ``tradeUnitsPrecision``; prices no more than its
  ``displayPrecision``;
- a fill's fee is what the account paid for it in its home currency:
  ``commission + guaranteedExecutionFee - financing`` (OANDA's financing is
  negative when paid);
- an ORDER_CANCEL whose reason is ``TIME_IN_FORCE_EXPIRED`` is an expiry,
  every other reason a cancel (the reason is kept for the log).
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from ..._exceptions import BrokerRejectedError, MalformedPayloadError
from ...messages._enums import OrderStatus, OrderType, Side, TimeInForce
from ...messages._messages import (
    ModifyOrder,
    OrderStatusReport,
    Quote,
    SubmitOrder,
)
from .._fields import JsonFields, decode_json

__all__ = [
    "OANDA_ORDER_TYPES",
    "OANDA_TIME_IN_FORCE",
    "AccountSummary",
    "Heartbeat",
    "OandaErrorAnswer",
    "OandaInstrument",
    "OandaOrder",
    "OandaPosition",
    "OrderCancelRejected",
    "OrderCancelled",
    "OrderCreated",
    "OrderFill",
    "OrderRejectedTxn",
    "OtherTransaction",
    "Transaction",
    "UnknownTransaction",
    "UnsupportedOrderError",
    "encode_order",
    "encode_replace",
    "format_time",
    "parse_account_summary",
    "parse_error_answer",
    "parse_instruments",
    "parse_line",
    "parse_order",
    "parse_positions",
    "parse_price",
    "parse_time_ns",
    "parse_transaction",
    "parse_transactions",
    "status_report",
]

#: What the codec can express; the capabilities declare exactly these.
OANDA_ORDER_TYPES = frozenset(
    {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.MARKET_IF_TOUCHED}
)
OANDA_TIME_IN_FORCE = frozenset(
    {TimeInForce.GTC, TimeInForce.GTD, TimeInForce.DAY, TimeInForce.IOC, TimeInForce.FOK}
)

_TYPE_TO_OANDA = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP",
    OrderType.MARKET_IF_TOUCHED: "MARKET_IF_TOUCHED",
}
_TYPE_FROM_OANDA = {value: key for key, value in _TYPE_TO_OANDA.items()}
_TIF_TO_OANDA = {
    TimeInForce.GTC: "GTC",
    TimeInForce.GTD: "GTD",
    TimeInForce.DAY: "GFD",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
}
#: Order-creating transaction types and the order type each creates.
_CREATE_TYPES = {
    "MARKET_ORDER": "MARKET",
    "LIMIT_ORDER": "LIMIT",
    "STOP_ORDER": "STOP",
    "MARKET_IF_TOUCHED_ORDER": "MARKET_IF_TOUCHED",
    "TAKE_PROFIT_ORDER": "TAKE_PROFIT",
    "STOP_LOSS_ORDER": "STOP_LOSS",
    "TRAILING_STOP_LOSS_ORDER": "TRAILING_STOP_LOSS",
    "FIXED_PRICE_ORDER": "FIXED_PRICE",
}
_REJECT_TYPES = frozenset(f"{kind}_REJECT" for kind in _CREATE_TYPES if kind != "FIXED_PRICE_ORDER")
#: The spec's other transaction types (3.0.25): known, and nothing to report.
_OTHER_TYPES = frozenset(
    {
        "CREATE",
        "CLOSE",
        "REOPEN",
        "CLIENT_CONFIGURE",
        "CLIENT_CONFIGURE_REJECT",
        "TRANSFER_FUNDS",
        "TRANSFER_FUNDS_REJECT",
        "ORDER_CLIENT_EXTENSIONS_MODIFY",
        "ORDER_CLIENT_EXTENSIONS_MODIFY_REJECT",
        "TRADE_CLIENT_EXTENSIONS_MODIFY",
        "TRADE_CLIENT_EXTENSIONS_MODIFY_REJECT",
        "MARGIN_CALL_ENTER",
        "MARGIN_CALL_EXTEND",
        "MARGIN_CALL_EXIT",
        "DELAYED_TRADE_CLOSURE",
        "DAILY_FINANCING",
        "RESET_RESETTABLE_PL",
    }
)
_DECIMAL_TEXT = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_ID_TEXT = re.compile(r"^[0-9]+$")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
_UNIX_TIME = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")


class UnsupportedOrderError(BrokerRejectedError):
    """The order cannot be expressed on OANDA (type, time in force, precision); nothing was sent."""


# -- field access -------------------------------------------------------------------------


class _Fields(JsonFields):
    """OANDA's fields: integers may be strings, ids are digits, times RFC3339 or UNIX."""

    __slots__ = ()
    INTEGER_TEXT = True

    def ident(self, key: str) -> str:
        value = self.text(key)
        if not _ID_TEXT.match(value):
            self.fail(f"{key}={value!r}: expected an id (digits)")
        return value

    def opt_ident(self, key: str) -> str | None:
        return None if self.obj.get(key) is None else self.ident(key)

    def time_ns(self, key: str) -> int:
        value = self.text(key)
        try:
            return parse_time_ns(value)
        except ValueError:
            self.fail(f"{key}={value!r}: expected an RFC3339 or UNIX time")

    def client_id(self, key: str = "clientExtensions") -> str | None:
        extensions = self.obj.get(key)
        if extensions is None:
            return None
        return self.child(key).opt_text("id") or None


def parse_time_ns(text: str) -> int:
    """An RFC3339 time with up to nanoseconds, or UNIX seconds as a string, in ns."""
    unix = _UNIX_TIME.match(text)
    if unix is not None:
        return int(unix.group(1)) * 1_000_000_000 + int((unix.group(2) or "").ljust(9, "0"))
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not a time: {text!r}")
    seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    zone = match.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds * 1_000_000_000 + int((match.group(2) or "").ljust(9, "0"))


def format_time(ns: int) -> str:
    """Nanoseconds since the epoch as OANDA writes times (RFC3339, nanoseconds, UTC)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def parse_line(line: bytes | str, *, broker: str | None = None) -> dict[str, Any]:
    """One line of a stream (or one REST body) as a JSON object."""

    value = decode_json(line, broker, "a line")
    if not isinstance(value, dict):
        raise MalformedPayloadError(
            f"expected a JSON object, got {type(value).__name__}", broker=broker
        )
    return value


# -- instruments, account, positions ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OandaInstrument:
    """What the account may trade of one instrument (``/v3/accounts/{id}/instruments``)."""

    name: str
    units_precision: int
    """``tradeUnitsPrecision``: decimals allowed in ``units`` (0 for currency pairs)."""
    price_precision: int
    """``displayPrecision``: decimals allowed in a price."""
    minimum_units: Decimal
    """``minimumTradeSize``."""


def parse_instruments(body: object, *, broker: str | None = None) -> dict[str, OandaInstrument]:
    fields = _Fields(body, broker, "instruments")
    raw = fields.raw("instruments")
    if not isinstance(raw, list):
        fields.fail("instruments: expected a list")
    result: dict[str, OandaInstrument] = {}
    for index, entry in enumerate(raw):
        item = _Fields(entry, broker, f"instruments[{index}]")
        name = item.text("name")
        result[name] = OandaInstrument(
            name=name,
            units_precision=item.integer("tradeUnitsPrecision"),
            price_precision=item.integer("displayPrecision"),
            minimum_units=item.opt_decimal("minimumTradeSize") or Decimal(1),
        )
    return result


@dataclass(frozen=True, slots=True)
class AccountSummary:
    currency: str
    balance: Decimal
    last_transaction_id: str


def parse_account_summary(body: object, *, broker: str | None = None) -> AccountSummary:
    fields = _Fields(body, broker, "summary")
    account = _Fields(fields.raw("account"), broker, "summary.account")
    last = fields.opt_ident("lastTransactionID") or account.ident("lastTransactionID")
    return AccountSummary(account.text("currency"), account.decimal("balance"), last)


@dataclass(frozen=True, slots=True)
class OandaPosition:
    instrument: str
    units: Decimal
    """Net signed units (long plus short, the short side being negative)."""
    average_price: Decimal | None


def parse_positions(body: object, *, broker: str | None = None) -> dict[str, OandaPosition]:
    """``openPositions``: each instrument's net units (positions are netted: hedging off)."""
    fields = _Fields(body, broker, "openPositions")
    raw = fields.raw("positions")
    if not isinstance(raw, list):
        fields.fail("positions: expected a list")
    result: dict[str, OandaPosition] = {}
    for index, entry in enumerate(raw):
        item = _Fields(entry, broker, f"positions[{index}]")
        instrument = item.text("instrument")
        units = Decimal(0)
        price: Decimal | None = None
        for side in ("long", "short"):
            if item.obj.get(side) is None:
                continue
            leg = _Fields(item.raw(side), broker, f"positions[{index}].{side}")
            leg_units = leg.decimal("units")
            units += leg_units
            if leg_units != 0:
                price = leg.opt_decimal("averagePrice")
        result[instrument] = OandaPosition(instrument, units, price)
    return result


# -- orders -----------------------------------------------------------------------------------


def _units_text(units: Decimal, instrument: OandaInstrument, client_order_id: str) -> str:
    exponent = units.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals > instrument.units_precision and units != units.to_integral_value():
        raise UnsupportedOrderError(
            f"{units} units has more decimals than {instrument.name} allows "
            f"({instrument.units_precision})",
            client_order_id=client_order_id,
            code="UNITS_PRECISION_EXCEEDED",
        )
    quantum = Decimal(1).scaleb(-instrument.units_precision)
    return str(units.quantize(quantum))


def _price_text(price: Decimal, instrument: OandaInstrument, client_order_id: str) -> str:
    exponent = price.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals > instrument.price_precision:
        raise UnsupportedOrderError(
            f"price {price} has more decimals than {instrument.name} allows "
            f"({instrument.price_precision})",
            client_order_id=client_order_id,
            code="PRICE_PRECISION_EXCEEDED",
        )
    return str(price.quantize(Decimal(1).scaleb(-instrument.price_precision)))


def encode_order(
    command: SubmitOrder,
    instrument: OandaInstrument,
    *,
    price_bound: Decimal | None = None,
) -> dict[str, Any]:
    """The ``{"order": ...}`` body of ``POST /v3/accounts/{id}/orders`` for ``command``.

    ``price_bound`` is the worst price a MARKET or STOP order may fill at
    (``priceBound``); our messages carry none, so it is the caller's to give.
    """
    cid = command.client_order_id
    kind = _TYPE_TO_OANDA.get(command.order_type)
    if kind is None:
        raise UnsupportedOrderError(
            f"OANDA has no {command.order_type.value} order", client_order_id=cid
        )
    tif = _TIF_TO_OANDA.get(command.time_in_force)
    if tif is None:
        raise UnsupportedOrderError(
            f"OANDA has no time in force {command.time_in_force.value}", client_order_id=cid
        )
    if command.post_only:
        raise UnsupportedOrderError("OANDA has no post-only orders", client_order_id=cid)
    if command.symbol != instrument.name:  # pragma: no cover - the caller looks it up by symbol
        raise UnsupportedOrderError(f"not {instrument.name}", client_order_id=cid)
    units = command.quantity * command.side.sign
    order: dict[str, Any] = {
        "type": kind,
        "instrument": command.symbol,
        "units": _units_text(units, instrument, cid),
    }
    if command.order_type is OrderType.MARKET:
        order["timeInForce"] = tif if tif in ("FOK", "IOC") else "FOK"
    else:
        trigger = command.price if command.order_type is OrderType.LIMIT else command.stop_price
        assert trigger is not None  # SubmitOrder checks it
        order["price"] = _price_text(trigger, instrument, cid)
        order["timeInForce"] = tif
        if tif == "GTD":
            assert command.expire_time_ns is not None  # SubmitOrder checks it
            order["gtdTime"] = format_time(command.expire_time_ns)
    if price_bound is not None and command.order_type in (OrderType.MARKET, OrderType.STOP):
        order["priceBound"] = _price_text(price_bound, instrument, cid)
    order["positionFill"] = "REDUCE_ONLY" if command.reduce_only else "DEFAULT"
    order["clientExtensions"] = {"id": cid, "tag": command.strategy_id}
    return {"order": order}


_REPLACE_KEYS = (
    "type",
    "instrument",
    "units",
    "price",
    "priceBound",
    "timeInForce",
    "gtdTime",
    "positionFill",
    "triggerCondition",
)


def encode_replace(
    current: Mapping[str, Any],
    command: ModifyOrder,
    instrument: OandaInstrument,
) -> dict[str, Any]:
    """The body of ``PUT /v3/accounts/{id}/orders/@<cid>``: the order as the venue
    holds it (``current``, its Order object) with ``command``'s changes, under the
    replacement's client order id. OANDA replaces with an order of the same type."""
    fields = _Fields(current, None, "order")
    cid = command.new_client_order_id or command.client_order_id
    order = {key: current[key] for key in _REPLACE_KEYS if current.get(key) is not None}
    kind = fields.text("type")
    if kind not in ("LIMIT", "STOP", "MARKET_IF_TOUCHED"):
        raise UnsupportedOrderError(f"a {kind} order cannot be replaced", client_order_id=cid)
    if command.quantity is not None:
        sign = -1 if fields.decimal("units") < 0 else 1
        order["units"] = _units_text(command.quantity * sign, instrument, cid)
    new_price = command.price if kind == "LIMIT" else command.stop_price
    if kind != "LIMIT" and command.price is not None:
        raise UnsupportedOrderError(
            f"a {kind} order has a trigger (stop_price), not a limit price", client_order_id=cid
        )
    if kind == "LIMIT" and command.stop_price is not None:
        raise UnsupportedOrderError("a LIMIT order has no stop_price", client_order_id=cid)
    if new_price is not None:
        order["price"] = _price_text(new_price, instrument, cid)
    extensions = dict(current.get("clientExtensions") or {})
    extensions["id"] = cid
    order["clientExtensions"] = extensions
    return {"order": order}


@dataclass(frozen=True, slots=True)
class OandaOrder:
    """An Order object (``GET .../orders/{spec}``, ``pendingOrders``): the venue's view."""

    order_id: str
    client_order_id: str | None
    instrument: str
    order_type: str
    units: Decimal
    price: Decimal | None
    state: str
    """PENDING, FILLED, TRIGGERED or CANCELLED."""
    time_in_force: str | None
    ts_ns: int
    replaced_by: str | None = None

    @property
    def side(self) -> Side:
        return Side.SELL if self.units < 0 else Side.BUY

    @property
    def is_open(self) -> bool:
        return self.state == "PENDING"


def parse_order(obj: object, *, broker: str | None = None) -> OandaOrder:
    fields = _Fields(obj, broker, "order")
    state = fields.text("state")
    if state not in ("PENDING", "FILLED", "TRIGGERED", "CANCELLED"):
        fields.fail(f"state={state!r}: unknown order state")
    created = fields.opt_text("createTime")
    units = fields.decimal("units")
    if units == 0:
        fields.fail("units=0: an order has a size")
    price = fields.opt_decimal("price")
    if price is not None and price <= 0:
        fields.fail(f"price={price}: must be positive")
    return OandaOrder(
        order_id=fields.ident("id"),
        client_order_id=fields.client_id(),
        instrument=fields.text("instrument"),
        order_type=fields.text("type"),
        units=units,
        price=price,
        state=state,
        time_in_force=fields.opt_text("timeInForce"),
        ts_ns=fields.time_ns("createTime") if created else 0,
        replaced_by=fields.opt_ident("replacedByOrderID"),
    )


def status_report(
    venue: str,
    order: OandaOrder,
    client_order_id: str,
    *,
    filled: Decimal,
    ts_ns: int,
) -> OrderStatusReport:
    """``order`` as the OMS's status report; ``filled`` is what our fills add up to
    (an Order object does not say how much of it filled before a cancel)."""
    quantity = abs(order.units)
    if order.state == "FILLED":
        status = OrderStatus.FILLED
        filled = quantity
    elif order.state == "CANCELLED":
        expired = order.time_in_force in ("GTD", "GFD")
        status = OrderStatus.EXPIRED if expired and filled == 0 else OrderStatus.CANCELED
    elif filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    else:
        status = OrderStatus.ACCEPTED
    kind = _TYPE_FROM_OANDA.get(order.order_type, OrderType.LIMIT)
    return OrderStatusReport(
        client_order_id=client_order_id,
        venue=venue,
        symbol=order.instrument,
        side=order.side,
        status=status,
        quantity=quantity,
        filled_quantity=min(filled, quantity),
        venue_order_id=order.order_id,
        order_type=kind,
        price=order.price if kind is OrderType.LIMIT else None,
        ts_ns=ts_ns,
    )


# -- transactions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderCreated:
    """An order-creating transaction: the order's id is the transaction's."""

    txn_id: str
    client_order_id: str | None
    instrument: str
    order_type: str
    units: Decimal
    reason: str | None
    replaces_order_id: str | None
    ts_ns: int
    price: Decimal | None = None
    """The limit price (LIMIT) or trigger price (STOP, MARKET_IF_TOUCHED); None for MARKET."""


@dataclass(frozen=True, slots=True)
class OrderFill:
    txn_id: str
    order_id: str
    client_order_id: str | None
    instrument: str
    units: Decimal
    """Signed: positive bought, negative sold."""
    price: Decimal
    fee: Decimal
    ts_ns: int

    @property
    def side(self) -> Side:
        return Side.SELL if self.units < 0 else Side.BUY


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    txn_id: str
    order_id: str
    client_order_id: str | None
    reason: str
    replaced_by: str | None
    ts_ns: int

    @property
    def expired(self) -> bool:
        return self.reason == "TIME_IN_FORCE_EXPIRED"


@dataclass(frozen=True, slots=True)
class OrderRejectedTxn:
    """A ``*_ORDER_REJECT``: the order was never created."""

    txn_id: str
    client_order_id: str | None
    instrument: str | None
    reject_reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OrderCancelRejected:
    txn_id: str
    order_id: str | None
    client_order_id: str | None
    reject_reason: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class OtherTransaction:
    """A transaction type of the spec with nothing to report (financing, margin calls...)."""

    txn_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class UnknownTransaction:
    """A type this codec does not know (OANDA adds some): counted and skipped."""

    txn_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    last_transaction_id: str | None


Transaction: TypeAlias = (
    OrderCreated
    | OrderFill
    | OrderCancelled
    | OrderRejectedTxn
    | OrderCancelRejected
    | OtherTransaction
    | UnknownTransaction
)


def parse_transaction(obj: object, *, broker: str | None = None) -> Transaction | Heartbeat:
    """One line of the transaction stream, or one entry of ``sinceid``'s list."""
    fields = _Fields(obj, broker, "transaction")
    kind = fields.text("type")
    if kind == "HEARTBEAT":
        return Heartbeat(fields.opt_ident("lastTransactionID"))
    txn_id = fields.ident("id")
    fields.where = f"transaction {txn_id} ({kind})"
    if kind in _CREATE_TYPES:
        return OrderCreated(
            txn_id=txn_id,
            client_order_id=fields.client_id(),
            instrument=fields.text("instrument"),
            order_type=_CREATE_TYPES[kind],
            units=fields.decimal("units") if "units" in fields.obj else Decimal(0),
            reason=fields.opt_text("reason"),
            replaces_order_id=fields.opt_ident("replacesOrderID"),
            ts_ns=fields.time_ns("time"),
            price=fields.opt_decimal("price"),
        )
    if kind == "ORDER_FILL":
        price = fields.opt_decimal("fullVWAP")
        if price is None:
            price = fields.decimal("price")
        fee = Decimal(0)
        for key, sign in (("commission", 1), ("guaranteedExecutionFee", 1), ("financing", -1)):
            value = fields.opt_decimal(key)
            if value is not None:
                fee += sign * value
        units = fields.decimal("units")
        if units == 0 or price <= 0:
            fields.fail(f"units={units}, price={price}: a fill needs both")
        return OrderFill(
            txn_id=txn_id,
            order_id=fields.ident("orderID"),
            client_order_id=fields.opt_text("clientOrderID") or None,
            instrument=fields.text("instrument"),
            units=units,
            price=price,
            fee=fee,
            ts_ns=fields.time_ns("time"),
        )
    if kind == "ORDER_CANCEL":
        return OrderCancelled(
            txn_id=txn_id,
            order_id=fields.ident("orderID"),
            client_order_id=fields.opt_text("clientOrderID") or None,
            reason=fields.opt_text("reason") or "UNKNOWN",
            replaced_by=fields.opt_ident("replacedByOrderID"),
            ts_ns=fields.time_ns("time"),
        )
    if kind in _REJECT_TYPES:
        return OrderRejectedTxn(
            txn_id=txn_id,
            client_order_id=fields.client_id(),
            instrument=fields.opt_text("instrument"),
            reject_reason=fields.opt_text("rejectReason") or "UNKNOWN",
            ts_ns=fields.time_ns("time"),
        )
    if kind == "ORDER_CANCEL_REJECT":
        return OrderCancelRejected(
            txn_id=txn_id,
            order_id=fields.opt_ident("orderID"),
            client_order_id=fields.opt_text("clientOrderID") or None,
            reject_reason=fields.opt_text("rejectReason") or "UNKNOWN",
            ts_ns=fields.time_ns("time"),
        )
    if kind in _OTHER_TYPES:
        return OtherTransaction(txn_id, kind)
    return UnknownTransaction(txn_id, kind)


def parse_transactions(
    body: object, *, broker: str | None = None, require_last: bool = True
) -> tuple[list[object], str]:
    """``sinceid``'s (or ``idrange``'s) answer: the raw transactions (parsed one by
    one by the caller, so one unreadable entry is counted, not fatal) and
    ``lastTransactionID`` (``""`` when absent and not required)."""
    fields = _Fields(body, broker, "transactions")
    raw = fields.raw("transactions")
    if not isinstance(raw, list):
        fields.fail("transactions: expected a list")
    if not require_last and fields.obj.get("lastTransactionID") is None:
        return raw, ""
    return raw, fields.ident("lastTransactionID")


# -- prices -------------------------------------------------------------------------------------


def parse_price(obj: object, *, venue: str, broker: str | None = None) -> Quote | None:
    """A pricing-stream line: a ``Quote`` (best bid and ask), or None for a heartbeat
    or a price with an empty side (non-tradeable: nothing to quote)."""
    fields = _Fields(obj, broker, "price")
    kind = fields.opt_text("type")
    if kind == "HEARTBEAT":
        return None
    if kind not in (None, "PRICE"):
        fields.fail(f"type={kind!r}: not a price")
    best: list[Decimal] = []
    for key in ("bids", "asks"):
        levels = fields.raw(key)
        if not isinstance(levels, list):
            fields.fail(f"{key}: expected a list")
        if not levels:
            return None
        best.append(_Fields(levels[0], broker, f"price.{key}[0]").decimal("price"))
    bid, ask = best
    if bid <= 0 or ask <= 0:
        fields.fail(f"bid={bid}, ask={ask}: prices must be positive")
    try:
        return Quote(
            venue=venue,
            symbol=fields.text("instrument"),
            bid=bid,
            ask=ask,
            ts_ns=fields.time_ns("time"),
        )
    except ValueError as exc:  # a crossed price (bid above ask): not a quote
        fields.fail(f"not a quote: {exc}")


# -- error answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OandaErrorAnswer:
    """An HTTP error answer (oandapyV20's ``V20Error``: status and raw body)."""

    status: int
    code: str
    """``errorCode``, else the reject transaction's ``rejectReason``, else ``HTTP_<status>``."""
    message: str
    reject: Transaction | None = None
    """The reject transaction the answer carried (it consumed a transaction id)."""

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def unknown_outcome(self) -> bool:
        """5xx: the venue may or may not have acted."""
        return self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404 and self.code in ("HTTP_404", "ORDER_DOESNT_EXIST", "NOT_FOUND")

    @property
    def unauthorized(self) -> bool:
        return self.status in (401, 403)


_REJECT_KEYS = ("orderRejectTransaction", "orderCancelRejectTransaction")


def parse_error_answer(status: int, text: str, *, broker: str | None = None) -> OandaErrorAnswer:
    """An error body as the venue sent it; a body that is not JSON still makes an answer."""
    try:
        body: Mapping[str, Any] = parse_line(text, broker=broker) if text.strip() else {}
    except MalformedPayloadError:
        return OandaErrorAnswer(status, f"HTTP_{status}", text[:200])
    reject: Transaction | None = None
    for key in _REJECT_KEYS:
        if isinstance(body.get(key), Mapping):
            parsed = parse_transaction(body[key], broker=broker)
            if not isinstance(parsed, Heartbeat):
                reject = parsed
            break
    code = body.get("errorCode")
    if not isinstance(code, str) or not code:
        reason = getattr(reject, "reject_reason", None)
        code = reason if isinstance(reason, str) else f"HTTP_{status}"
    message = body.get("errorMessage")
    if not isinstance(message, str) or not message:
        message = f"HTTP {status}"
    return OandaErrorAnswer(status, code, message, reject)
