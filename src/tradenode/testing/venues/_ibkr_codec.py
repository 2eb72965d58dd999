"""The TWS API socket protocol as the local TWS speaks it: framing, handshake, field codecs.

Pure: bytes in, fields out, and back. Every message after the handshake is
a 4-byte big-endian length followed by NUL-terminated text fields; the
first field is the message id. The client opens with ``API\\0`` and one
framed ``v<min>..<max>[ <options>]``; the server answers one frame of two
fields, its chosen version and the connection time. The field lists below
follow the decoders of ib_async 2.1 (``decoder.py``) and IB's own client
(``ibapi/decoder.py``, ``EClient``'s ``MIN_SERVER_VER_*`` table) for
server versions :data:`MIN_SERVER_VERSION` to :data:`MAX_SERVER_VERSION`:
176 (MIN_SERVER_VER_BOND_ISSUERID, ib_insync's ceiling), 177
(FA_PROFILE_DESUPPORT: no faProfile in placeOrder/openOrder) and 178
(PENDING_PRICE_REVISION: one more execDetails field, ib_async's ceiling).

Malformed input raises :class:`IbkrProtocolError`; the server logs and
counts it and, as TWS does with a garbled stream, closes that connection.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

__all__ = [
    "MAX_SERVER_VERSION",
    "MIN_SERVER_VERSION",
    "UNSET_DOUBLE",
    "UNSET_INTEGER",
    "ContractFields",
    "FrameDecoder",
    "IbkrProtocolError",
    "In",
    "Out",
    "PlaceOrder",
    "Reader",
    "encode_frame",
    "fmt",
    "negotiate",
    "parse_place_order",
]

MIN_SERVER_VERSION = 176
MAX_SERVER_VERSION = 178
MAX_FRAME = 16 * 1024 * 1024
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = "2147483647"
_VERSION_FA_PROFILE_DESUPPORT = 177


class IbkrProtocolError(ValueError):
    """A frame or message that does not follow the TWS API protocol."""


class In:
    """Incoming message ids (IB's ``OUT`` table, seen from the client)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_COMPLETED_ORDERS = 99


class Out:
    """Outgoing message ids (IB's ``IN`` table)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ORDER_STATUS = 3
    ERR_MSG = 4
    OPEN_ORDER = 5
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    EXECUTION_DATA = 11
    MANAGED_ACCTS = 15
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    COMMISSION_REPORT = 59
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    COMPLETED_ORDER = 101
    COMPLETED_ORDERS_END = 102


# ------------------------------------------------------------------ framing


def encode_frame(fields: Sequence[str]) -> bytes:
    """One message: the length prefix, then every field NUL-terminated."""
    body = "".join(f"{value}\0" for value in fields).encode()
    return struct.pack(">I", len(body)) + body


class FrameDecoder:
    """Splits the byte stream into messages; the first one is the handshake.

    The handshake is ``API\\0`` followed by one framed version range; after
    it every frame is a list of fields.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._greeted = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def handshake(self) -> str | None:
        """The ``v<min>..<max>...`` text once the whole greeting is in, else None."""
        if self._greeted:
            raise IbkrProtocolError("handshake already read")
        if len(self._buffer) < 4:
            return None
        if bytes(self._buffer[:4]) != b"API\0":
            raise IbkrProtocolError(
                f"the connection did not start with API\\0: {self._buffer[:4]!r}"
            )
        body = self._take(4)
        if body is None:
            return None
        self._greeted = True
        return body.decode(errors="replace")

    def messages(self) -> list[list[str]]:
        """Every complete message buffered so far, as lists of fields."""
        found: list[list[str]] = []
        while (body := self._take(0)) is not None:
            text = body.decode(errors="replace")
            if not text.endswith("\0"):
                raise IbkrProtocolError(f"a message whose last field is not terminated: {text!r}")
            found.append(text.split("\0")[:-1])
        return found

    def _take(self, offset: int) -> bytes | None:
        if len(self._buffer) < offset + 4:
            return None
        (size,) = struct.unpack(">I", self._buffer[offset : offset + 4])
        if size > MAX_FRAME:
            raise IbkrProtocolError(f"a frame of {size} bytes (more than {MAX_FRAME})")
        end = offset + 4 + size
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[offset + 4 : end])
        del self._buffer[:end]
        return body


def negotiate(greeting: str) -> int:
    """The server version for a client's ``v<min>..<max>[ options]``: its max, capped at ours.

    Raises :class:`IbkrProtocolError` when the ranges do not meet (TWS then
    closes the socket; the client reports a version error).
    """
    text = greeting.split(" ", 1)[0]
    if not text.startswith("v"):
        raise IbkrProtocolError(f"not a version range: {greeting!r}")
    low_text, _, high_text = text[1:].partition("..")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError:
        raise IbkrProtocolError(f"not a version range: {greeting!r}") from None
    chosen = min(high, MAX_SERVER_VERSION)
    if chosen < max(low, MIN_SERVER_VERSION):
        raise IbkrProtocolError(
            f"client versions {low}..{high} do not meet the server's "
            f"{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}"
        )
    return chosen


# ------------------------------------------------------------------ fields


def fmt(value: object) -> str:
    """A field as TWS writes it: None empty, bools 1/0, Decimals without exponent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    return str(value)


class Reader:
    """Reads one incoming message field by field; running out is a protocol error."""

    def __init__(self, fields: Sequence[str], start: int = 0) -> None:
        self._fields = list(fields)
        self._index = start

    @property
    def remaining(self) -> int:
        return len(self._fields) - self._index

    def text(self) -> str:
        if self._index >= len(self._fields):
            raise IbkrProtocolError(
                f"message {self._fields[:1]} ended after {len(self._fields)} fields"
            )
        value = self._fields[self._index]
        self._index += 1
        return value

    def integer(self, default: int = 0) -> int:
        text = self.text()
        if text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise IbkrProtocolError(f"field {self._index - 1}: not an integer: {text!r}") from None

    def decimal(self) -> Decimal | None:
        """A double field: empty or IB's unset value read as None."""
        text = self.text()
        if text in {"", UNSET_DOUBLE, "1.7976931348623157e+308", "Infinite"}:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise IbkrProtocolError(f"field {self._index - 1}: not a number: {text!r}") from None
        if not value.is_finite():
            raise IbkrProtocolError(f"field {self._index - 1}: not a finite number: {text!r}")
        return value

    def flag(self) -> bool:
        text = self.text()
        if text in {"", "0", "false", "False"}:
            return False
        if text in {"1", "true", "True"}:
            return True
        raise IbkrProtocolError(f"field {self._index - 1}: not a boolean: {text!r}")

    def skip(self, count: int = 1) -> None:
        for _ in range(count):
            self.text()


@dataclass(frozen=True, slots=True)
class ContractFields:
    """A contract as a request names it (the twelve fields IB's clients send)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade: str = ""
    strike: Decimal | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""

    @classmethod
    def read(cls, reader: Reader) -> ContractFields:
        con_id = reader.integer()
        symbol = reader.text()
        sec_type = reader.text()
        last_trade = reader.text()
        strike = reader.decimal()
        right = reader.text()
        multiplier = reader.text()
        exchange = reader.text()
        primary_exchange = reader.text()
        currency = reader.text()
        local_symbol = reader.text()
        trading_class = reader.text()
        return cls(
            con_id=con_id,
            symbol=symbol,
            sec_type=sec_type,
            last_trade=last_trade,
            strike=strike if strike else None,
            right=right,
            multiplier=multiplier,
            exchange=exchange,
            primary_exchange=primary_exchange,
            currency=currency,
            local_symbol=local_symbol,
            trading_class=trading_class,
        )


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """What the venue uses of a placeOrder message (the rest is read and checked, not kept)."""

    order_id: int
    contract: ContractFields
    action: str
    total_quantity: Decimal | None
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    good_till_date: str
    trail_stop_price: Decimal | None
    trailing_percent: Decimal | None
    what_if: bool
    cash_qty: Decimal | None
    conditions: int
    extra: dict[str, str] = field(default_factory=dict)


def parse_place_order(fields: Sequence[str], version: int) -> PlaceOrder:
    """A placeOrder (id 3) for server ``version``, field by field as ib_async/ibapi send it."""
    r = Reader(fields, 1)
    order_id = r.integer()
    contract = ContractFields.read(r)
    r.skip(2)  # secIdType, secId
    action = r.text()
    total_quantity = r.decimal()
    order_type = r.text()
    lmt_price = r.decimal()
    aux_price = r.decimal()
    tif = r.text()
    r.skip(1)  # ocaGroup
    account = r.text()
    r.skip(2)  # openClose, origin
    order_ref = r.text()
    transmit = r.flag()
    parent_id = r.integer()
    r.skip(4)  # blockOrder, sweepToFill, displaySize, triggerMethod
    outside_rth = r.flag()
    r.skip(1)  # hidden
    if contract.sec_type == "BAG":
        legs = r.integer()
        r.skip(8 * legs)
        order_legs = r.integer()
        r.skip(order_legs)
        params = r.integer()
        r.skip(2 * params)
    r.skip(3)  # deprecated sharesAllocation, discretionaryAmt, goodAfterTime
    good_till_date = r.text()
    r.skip(3)  # faGroup, faMethod, faPercentage
    if version < _VERSION_FA_PROFILE_DESUPPORT:
        r.skip(1)  # faProfile
    # modelCode, shortSaleSlot, designatedLocation, exemptCode, ocaType, rule80A,
    # settlingFirm, allOrNone, minQty, percentOffset, eTradeOnly, firmQuoteOnly,
    # nbboPriceCap, auctionStrategy, startingPrice, stockRefPrice, delta,
    # stockRangeLower, stockRangeUpper, overridePercentageConstraints,
    # volatility, volatilityType
    r.skip(22)
    delta_neutral_order_type = r.text()
    r.skip(1)  # deltaNeutralAuxPrice
    if delta_neutral_order_type:
        r.skip(8)
    r.skip(2)  # continuousUpdate, referencePriceType
    trail_stop_price = r.decimal()
    trailing_percent = r.decimal()
    r.skip(2)  # scaleInitLevelSize, scaleSubsLevelSize
    scale_increment = r.decimal()
    if scale_increment is not None and scale_increment > 0:
        r.skip(7)
    r.skip(3)  # scaleTable, activeStartTime, activeStopTime
    hedge_type = r.text()
    if hedge_type:
        r.skip(1)
    r.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if r.flag():  # deltaNeutralContract
        r.skip(3)
    algo_strategy = r.text()
    if algo_strategy:
        params = r.integer()
        r.skip(2 * params)
    r.skip(1)  # algoId
    what_if = r.flag()
    r.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in {"PEG BENCH", "PEGBENCH"}:
        r.skip(5)
    conditions = r.integer()
    if conditions:
        raise IbkrProtocolError("order conditions are not modelled by the local TWS")
    # adjustedOrderType, triggerPrice, lmtPriceOffset, adjustedStopPrice,
    # adjustedStopLimitPrice, adjustedTrailingAmount, adjustableTrailingUnit,
    # extOperator, softDollarTier name and value
    r.skip(10)
    cash_qty = r.decimal()
    # The tail (mifid2 fields, dontUseAutoPriceForHedge, isOmsContainer,
    # discretionaryUpToLimitPrice, usePriceMgmtAlgo, duration, postToAts,
    # autoCancelParent, advancedErrorOverride, manualOrderTime, peg fields)
    # changes nothing here; it must be there, at least up to usePriceMgmtAlgo.
    r.skip(8)
    return PlaceOrder(
        order_id=order_id,
        contract=contract,
        action=action,
        total_quantity=total_quantity,
        order_type=order_type,
        lmt_price=lmt_price,
        aux_price=aux_price,
        tif=tif,
        account=account,
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=outside_rth,
        good_till_date=good_till_date,
        trail_stop_price=trail_stop_price,
        trailing_percent=trailing_percent,
        what_if=what_if,
        cash_qty=cash_qty,
        conditions=conditions,
        extra={"algoStrategy": algo_strategy} if algo_strategy else {},
    )
