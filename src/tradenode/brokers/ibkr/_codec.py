"""The pure half of the IB adapter: our messages as ib_async objects and back. No I/O.

ib_async decodes the TWS socket protocol into its own dataclasses
(``Contract``, ``Order``, ``Execution``, ``CommissionReport``...). This
module maps between those and ``tradenode.messages``, and turns what the
venue said into small frozen records (:class:`IbOpenOrder`,
:class:`IbOrderStatus`, :class:`IbExecution`, :class:`IbCommission`,
:class:`IbError`, :class:`IbTick`) that cross from the session's asyncio
thread to the actor. A value that cannot be read raises
``MalformedPayloadError``; an order IB would refuse for its form (a price off
the minimum tick, a size off the size increment, a type or time in force we
do not map) raises :class:`UnsupportedOrderError` before anything is sent.

IB facts used here (TWS API reference, ib_async 2.1 source; see the fact
sheet ``oanda-ibkr.md`` part B):

- order types ``MKT``, ``LMT``, ``STP`` (``auxPrice`` the trigger), ``STP LMT``
  (``lmtPrice`` + ``auxPrice``), ``TRAIL`` (``auxPrice`` the trailing amount);
- time in force ``DAY``, ``GTC``, ``IOC``, ``OPG``, ``FOK``;
- order statuses ``PendingSubmit``, ``PendingCancel``, ``PreSubmitted``,
  ``Submitted``, ``ApiPending``, ``ApiCancelled``, ``Cancelled``, ``Filled``,
  ``Inactive``;
- execution sides ``BOT``/``SLD``; a corrected execution has the execId of the
  one it corrects but for the digits after the final period (``.01`` ->
  ``.02``), so the execution's identity is the id without that suffix.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ib_async import Contract, Order

from ..._exceptions import MalformedPayloadError
from ...messages._enums import OrderStatus, OrderType, Side, TimeInForce
from ...messages._messages import ModifyOrder, SubmitOrder
from ._settings import IbkrContractSpec

__all__ = [
    "IBKR_ORDER_TYPES",
    "IBKR_TIME_IN_FORCE",
    "ErrorKind",
    "IbCommission",
    "IbError",
    "IbExecution",
    "IbOpenOrder",
    "IbOrderStatus",
    "IbPosition",
    "IbTick",
    "IbkrInstrument",
    "UnsupportedOrderError",
    "classify_error",
    "contract_for",
    "encode_modify",
    "encode_order",
    "execution_identity",
    "instrument_from_details",
    "map_status",
    "parse_commission",
    "parse_execution",
    "parse_open_order",
    "parse_order_status",
    "parse_position",
    "redact",
    "to_decimal",
]

#: Our order types as IB names them.
_ORDER_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
    OrderType.TRAILING_STOP: "TRAIL",
}
_FROM_IB_TYPES = {ib: ours for ours, ib in _ORDER_TYPES.items()}
IBKR_ORDER_TYPES = frozenset(_ORDER_TYPES)

_TIFS: dict[TimeInForce, str] = {
    TimeInForce.DAY: "DAY",
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.OPG: "OPG",
    TimeInForce.FOK: "FOK",
}
IBKR_TIME_IN_FORCE = frozenset(_TIFS)

#: ib_async's "unset" double (``sys.float_info.max``).
_UNSET = 1.7976931348623157e308


class UnsupportedOrderError(ValueError):
    """An order this adapter cannot express for IB, or one IB would refuse for its form."""

    def __init__(self, message: str, *, code: str = "UNSUPPORTED") -> None:
        super().__init__(message)
        self.code = code


def to_decimal(value: Any, *, what: str = "value") -> Decimal:
    """A float (or numeric string) from ib_async as an exact Decimal of its shortest repr."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MalformedPayloadError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or value >= _UNSET):
        raise MalformedPayloadError(f"{what}: not a finite number: {value!r}")
    try:
        result = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation as exc:
        raise MalformedPayloadError(f"{what}: not a number: {value!r}") from exc
    if not result.is_finite():
        raise MalformedPayloadError(f"{what}: not a finite number: {value!r}")
    return result


def redact(text: str, account: str) -> str:
    """IB's text with the account number masked: error texts and logs never carry it."""
    return text.replace(account, "<account>") if account else text


# -- contracts -----------------------------------------------------------------------------


def contract_for(spec: IbkrContractSpec) -> Contract:
    """The contract to ask IB's contract details for, from the configured spec."""
    return Contract(
        secType=spec.sec_type,
        symbol=spec.symbol,
        lastTradeDateOrContractMonth=spec.expiry,
        strike=float(spec.strike) if spec.strike is not None else 0.0,
        right=spec.right,
        multiplier=spec.multiplier,
        exchange=spec.exchange,
        primaryExchange=spec.primary_exchange,
        currency=spec.currency,
        localSymbol=spec.local_symbol,
        tradingClass=spec.trading_class,
    )


@dataclass(frozen=True, slots=True)
class IbkrInstrument:
    """One configured instrument, qualified by IB's contract details at connect."""

    symbol: str
    """Our name for it (the key under ``ibkr.instruments``)."""
    spec: IbkrContractSpec
    contract: Contract
    """The qualified contract (with its conId), what orders are placed on."""
    con_id: int
    min_tick: Decimal
    size_increment: Decimal
    multiplier: Decimal


def instrument_from_details(symbol: str, spec: IbkrContractSpec, details: Any) -> IbkrInstrument:
    """Our instrument from one ``ContractDetails`` answer (conId, minTick, sizeIncrement)."""
    contract = getattr(details, "contract", None)
    if contract is None or not isinstance(getattr(contract, "conId", None), int):
        raise MalformedPayloadError(f"{symbol}: contract details without a contract")
    if contract.conId <= 0:
        raise MalformedPayloadError(f"{symbol}: contract details without a conId")
    min_tick = to_decimal(getattr(details, "minTick", 0.0), what=f"{symbol} minTick")
    if min_tick <= 0:
        raise MalformedPayloadError(f"{symbol}: minTick {min_tick} is not positive")
    raw_increment = getattr(details, "sizeIncrement", 0.0)
    increment = to_decimal(raw_increment or 1, what=f"{symbol} sizeIncrement")
    if increment <= 0:
        increment = Decimal(1)
    multiplier = Decimal(1)
    if contract.multiplier:
        multiplier = to_decimal(contract.multiplier, what=f"{symbol} multiplier")
    return IbkrInstrument(
        symbol=symbol,
        spec=spec,
        contract=contract,
        con_id=contract.conId,
        min_tick=min_tick,
        size_increment=increment,
        multiplier=multiplier,
    )


# -- orders --------------------------------------------------------------------------------


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return (value / step) == (value / step).to_integral_value()


def _check_price(name: str, value: Decimal, instrument: IbkrInstrument) -> float:
    if not _on_grid(value, instrument.min_tick):
        raise UnsupportedOrderError(
            f"{name} {value} is not a multiple of {instrument.symbol}'s minimum tick "
            f"{instrument.min_tick}",
            code="110",
        )
    return float(value)


def _check_quantity(quantity: Decimal, instrument: IbkrInstrument) -> float:
    if not _on_grid(quantity, instrument.size_increment):
        raise UnsupportedOrderError(
            f"quantity {quantity} is not a multiple of {instrument.symbol}'s size increment "
            f"{instrument.size_increment}",
            code="SIZE_INCREMENT",
        )
    return float(quantity)


def encode_order(
    command: SubmitOrder,
    instrument: IbkrInstrument,
    *,
    order_id: int,
    account: str = "",
    outside_rth: bool = False,
) -> Order:
    """``command`` as an IB ``Order`` under ``order_id``, our client id in ``orderRef``."""
    ib_type = _ORDER_TYPES.get(command.order_type)
    if ib_type is None:
        raise UnsupportedOrderError(f"IB order type for {command.order_type.value}: not mapped")
    tif = _TIFS.get(command.time_in_force)
    if tif is None:
        raise UnsupportedOrderError(f"time in force {command.time_in_force.value}: not mapped")
    if command.post_only:
        raise UnsupportedOrderError("IB has no post-only flag on these order types")
    if command.reduce_only:
        raise UnsupportedOrderError("IB has no reduce-only flag")
    order = Order(
        orderId=order_id,
        action=command.side.value,
        totalQuantity=_check_quantity(command.quantity, instrument),
        orderType=ib_type,
        tif=tif,
        orderRef=command.client_order_id,
        account=account,
        outsideRth=outside_rth,
        transmit=True,
    )
    if command.price is not None:
        order.lmtPrice = _check_price("price", command.price, instrument)
    if command.stop_price is not None:
        order.auxPrice = _check_price("stop price", command.stop_price, instrument)
    if command.trailing_offset is not None:
        order.auxPrice = _check_price("trailing amount", command.trailing_offset, instrument)
    return order


def encode_modify(original: Order, command: ModifyOrder, instrument: IbkrInstrument) -> Order:
    """The order as placed, changed: re-sent by placeOrder under the same orderId."""
    if command.new_client_order_id is not None:
        raise UnsupportedOrderError("IB modifies in place: no new client order id")
    changed = Order(
        orderId=original.orderId,
        action=original.action,
        totalQuantity=original.totalQuantity,
        orderType=original.orderType,
        lmtPrice=original.lmtPrice,
        auxPrice=original.auxPrice,
        tif=original.tif,
        orderRef=original.orderRef,
        account=original.account,
        outsideRth=original.outsideRth,
        transmit=True,
    )
    if command.quantity is not None:
        changed.totalQuantity = _check_quantity(command.quantity, instrument)
    if command.price is not None:
        if original.orderType not in ("LMT", "STP LMT"):
            raise UnsupportedOrderError(f"a {original.orderType} order has no limit price")
        changed.lmtPrice = _check_price("price", command.price, instrument)
    if command.stop_price is not None:
        if original.orderType not in ("STP", "STP LMT"):
            raise UnsupportedOrderError(f"a {original.orderType} order has no stop price")
        changed.auxPrice = _check_price("stop price", command.stop_price, instrument)
    return changed


# -- what the venue says -------------------------------------------------------------------


class ErrorKind(enum.Enum):
    """What an IB error/warning code means to the broker."""

    INFO = "info"
    """Farm connection notices (2100-2199) and other warnings: logged, never a failure."""
    ORDER_REJECTED = "order_rejected"
    """The order was refused (201 and kin): ``OrderRejected`` with IB's code."""
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    """103: the orderId was used; nothing new was placed under it."""
    ORDER_CANCELLED = "order_cancelled"
    """202: the order is cancelled (ours or the venue's doing)."""
    CANCEL_REJECTED = "cancel_rejected"
    """10147/10148/161: the cancel did not apply."""
    MODIFY_REJECTED = "modify_rejected"
    """105/329: the modification did not apply; the order stays live as it was."""
    PACING = "pacing"
    """100: the message rate was exceeded; back off."""
    NO_CONTRACT = "no_contract"
    """200: no security definition."""
    CONNECTIVITY_LOST = "connectivity_lost"
    """1100 (IB <-> TWS lost) and 1300 (socket port reset): fail, reconnect, reconcile."""
    RESTORED = "restored"
    """1101/1102: IB <-> TWS restored: reconcile (1101 also means market data was lost)."""
    CLIENT_ID_IN_USE = "client_id_in_use"
    """326: another session holds this client id."""
    OTHER = "other"


_REJECTIONS = frozenset({110, 201, 203, 382, 383, 387, 388, 434, 461, 10006})
_INFO = frozenset({165, 321, 399, 404, 492, 10167, 10168})


def classify_error(code: int) -> ErrorKind:
    if 2100 <= code < 2200 or code in _INFO:
        return ErrorKind.INFO
    if code == 103:
        return ErrorKind.DUPLICATE_ORDER_ID
    if code in _REJECTIONS:
        return ErrorKind.ORDER_REJECTED
    if code == 202:
        return ErrorKind.ORDER_CANCELLED
    if code in (161, 10147, 10148):
        return ErrorKind.CANCEL_REJECTED
    if code in (105, 329):
        return ErrorKind.MODIFY_REJECTED
    if code == 100:
        return ErrorKind.PACING
    if code == 200:
        return ErrorKind.NO_CONTRACT
    if code in (1100, 1300):
        return ErrorKind.CONNECTIVITY_LOST
    if code in (1101, 1102):
        return ErrorKind.RESTORED
    if code == 326:
        return ErrorKind.CLIENT_ID_IN_USE
    return ErrorKind.OTHER


_ACTIVE = frozenset({"PreSubmitted", "Submitted", "ApiUpdate"})
_CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
_LOCAL = frozenset({"PendingSubmit", "PendingCancel", "ApiPending", "ValidationError"})
_KNOWN_STATUSES = _ACTIVE | _CANCELLED | _LOCAL | {"Filled", "Inactive"}


def map_status(status: str, *, filled: Decimal, quantity: Decimal) -> OrderStatus | None:
    """IB's order status as ours; None for a status that says nothing of the venue's
    books yet (``PendingSubmit``, ``PendingCancel``, ``ApiPending``)."""
    if status not in _KNOWN_STATUSES:
        raise MalformedPayloadError(f"unknown IB order status {status!r}")
    if status == "Filled" or (quantity > 0 and filled >= quantity):
        return OrderStatus.FILLED
    if status in _CANCELLED:
        return OrderStatus.CANCELED
    if status == "Inactive":
        # Refused, or put to sleep by the venue (outside its hours): not working.
        return OrderStatus.CANCELED if filled > 0 else OrderStatus.REJECTED
    if status in _ACTIVE:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
    return None


@dataclass(frozen=True, slots=True)
class IbOpenOrder:
    """An ``openOrder`` message: the order as TWS holds it."""

    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    con_id: int
    side: Side
    quantity: Decimal
    order_type: OrderType | None
    limit_price: Decimal | None
    aux_price: Decimal | None
    status: str
    filled: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class IbOrderStatus:
    """An ``orderStatus`` message."""

    order_id: int
    status: str
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal | None
    perm_id: int
    client_id: int


@dataclass(frozen=True, slots=True)
class IbExecution:
    """An ``execDetails`` message (a fill), with its commission once it is known."""

    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    order_ref: str
    con_id: int
    side: Side
    shares: Decimal
    price: Decimal
    time_ns: int
    commission: Decimal | None = None
    commission_currency: str | None = None

    @property
    def identity(self) -> str:
        return execution_identity(self.exec_id)


@dataclass(frozen=True, slots=True)
class IbCommission:
    """A ``commissionReport`` message."""

    exec_id: str
    commission: Decimal
    currency: str | None


@dataclass(frozen=True, slots=True)
class IbError:
    """An ``errMsg`` message: ``req_id`` is the orderId for an order's error, -1 for none."""

    req_id: int
    code: int
    text: str

    @property
    def kind(self) -> ErrorKind:
        return classify_error(self.code)


@dataclass(frozen=True, slots=True)
class IbTick:
    """Top of book for one subscribed contract, from market data ticks."""

    con_id: int
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None


@dataclass(frozen=True, slots=True)
class IbPosition:
    """A ``position`` message."""

    account: str
    con_id: int
    quantity: Decimal
    avg_cost: Decimal


_EXEC_SUFFIX = re.compile(r"^(.+)\.(\d+)$")


def execution_identity(exec_id: str) -> str:
    """The execution an execId names: without the digits after its final period,
    which IB increments for a correction of the same execution."""
    match = _EXEC_SUFFIX.match(exec_id)
    return match.group(1) if match else exec_id


def _side(raw: object, *, what: str) -> Side:
    if raw in ("BOT", "BUY"):
        return Side.BUY
    if raw in ("SLD", "SELL"):
        return Side.SELL
    raise MalformedPayloadError(f"{what}: unknown side {raw!r}")


def _optional_price(value: Any, *, what: str) -> Decimal | None:
    if value is None or value == "" or (isinstance(value, float) and value >= _UNSET):
        return None
    price = to_decimal(value, what=what)
    return price if price > 0 else None


def _int(value: Any, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayloadError(f"{what}: expected an integer, got {value!r}")
    return value


def parse_open_order(contract: Any, order: Any, status: str, *, filled: Any = None) -> IbOpenOrder:
    order_id = _int(getattr(order, "orderId", None), what="openOrder orderId")
    ib_type = getattr(order, "orderType", "")
    quantity = to_decimal(getattr(order, "totalQuantity", None), what="openOrder totalQuantity")
    if quantity <= 0:
        raise MalformedPayloadError(f"openOrder {order_id}: totalQuantity {quantity}")
    return IbOpenOrder(
        order_id=order_id,
        perm_id=_int(getattr(order, "permId", 0), what="openOrder permId"),
        client_id=_int(getattr(order, "clientId", 0), what="openOrder clientId"),
        order_ref=str(getattr(order, "orderRef", "") or ""),
        con_id=_int(getattr(contract, "conId", 0), what="openOrder conId"),
        side=_side(getattr(order, "action", None), what=f"openOrder {order_id}"),
        quantity=quantity,
        order_type=_FROM_IB_TYPES.get(ib_type),
        limit_price=_optional_price(getattr(order, "lmtPrice", None), what="lmtPrice"),
        aux_price=_optional_price(getattr(order, "auxPrice", None), what="auxPrice"),
        status=str(status or ""),
        filled=_optional_price(filled, what="filled") or Decimal(0),
    )


def parse_order_status(
    order_id: Any,
    *,
    status: Any,
    filled: Any,
    remaining: Any,
    avg_fill_price: Any,
    perm_id: Any,
    client_id: Any,
) -> IbOrderStatus:
    if not isinstance(status, str) or status not in _KNOWN_STATUSES:
        raise MalformedPayloadError(f"orderStatus {order_id}: unknown status {status!r}")
    return IbOrderStatus(
        order_id=_int(order_id, what="orderStatus orderId"),
        status=status,
        filled=to_decimal(filled, what="orderStatus filled"),
        remaining=to_decimal(remaining, what="orderStatus remaining"),
        avg_fill_price=_optional_price(avg_fill_price, what="orderStatus avgFillPrice"),
        perm_id=_int(perm_id, what="orderStatus permId"),
        client_id=_int(client_id, what="orderStatus clientId"),
    )


def parse_execution(contract: Any, execution: Any, commission: Any = None) -> IbExecution:
    exec_id = getattr(execution, "execId", "")
    if not isinstance(exec_id, str) or not exec_id.strip():
        raise MalformedPayloadError(f"execDetails without an execId: {execution!r}")
    shares = to_decimal(getattr(execution, "shares", None), what=f"execution {exec_id} shares")
    price = to_decimal(getattr(execution, "price", None), what=f"execution {exec_id} price")
    if shares <= 0 or price <= 0:
        raise MalformedPayloadError(f"execution {exec_id}: shares {shares} at {price}")
    when = getattr(execution, "time", None)
    timestamp = getattr(when, "timestamp", None)
    time_ns = int(timestamp() * 1_000_000_000) if callable(timestamp) else 0
    fee, currency = None, None
    if commission is not None and getattr(commission, "execId", "") == exec_id:
        parsed = parse_commission(commission)
        fee, currency = parsed.commission, parsed.currency
    return IbExecution(
        exec_id=exec_id,
        order_id=_int(getattr(execution, "orderId", None), what=f"execution {exec_id} orderId"),
        perm_id=_int(getattr(execution, "permId", 0), what=f"execution {exec_id} permId"),
        client_id=_int(getattr(execution, "clientId", 0), what=f"execution {exec_id} clientId"),
        order_ref=str(getattr(execution, "orderRef", "") or ""),
        con_id=_int(getattr(contract, "conId", 0), what=f"execution {exec_id} conId"),
        side=_side(getattr(execution, "side", None), what=f"execution {exec_id}"),
        shares=shares,
        price=price,
        time_ns=max(time_ns, 0),
        commission=fee,
        commission_currency=currency,
    )


def parse_commission(report: Any) -> IbCommission:
    exec_id = getattr(report, "execId", "")
    if not isinstance(exec_id, str) or not exec_id:
        raise MalformedPayloadError(f"commissionReport without an execId: {report!r}")
    raw = getattr(report, "commission", 0.0)
    commission = (
        Decimal(0)
        if isinstance(raw, float) and raw >= _UNSET
        else to_decimal(raw, what=f"commission of {exec_id}")
    )
    currency = getattr(report, "currency", "") or None
    return IbCommission(exec_id, commission, currency)


def parse_position(position: Any) -> IbPosition:
    contract = getattr(position, "contract", None)
    return IbPosition(
        account=str(getattr(position, "account", "")),
        con_id=_int(getattr(contract, "conId", 0), what="position conId"),
        quantity=to_decimal(getattr(position, "position", None), what="position"),
        avg_cost=to_decimal(getattr(position, "avgCost", 0.0) or 0.0, what="position avgCost"),
    )
