"""ccxt's unified structures and errors as our messages and outcomes: pure, no I/O.

ccxt answers every exchange with the same dictionaries (``Order``, ``Trade``,
``base/types.py``) and raises one tree of exception classes
(``base/errors.py``); this module is the only place that reads them. It
never imports ccxt: errors are classified by the names in their class's
MRO, so the table below is testable against ccxt's real classes and stays
the one place that says what each means to the breaker.

**Errors** (ccxt 4.5.90's hierarchy; ``ccxt.md`` section 6): what ccxt calls
a ``NetworkError`` is not always an unknown outcome. ``InvalidNonce`` is the
venue refusing the request's timestamp or nonce before it processed it (a
definite "not placed"); ``RateLimitExceeded`` and ``DDoSProtection`` are
429/418 answers (not processed; Binance's 418 is a ban). ``OrderNotFound``
is "not found". Every other ``OperationFailed`` (timeouts, 5xx, an exchange
"not available", an unreadable answer, a pending cancel) and a plain,
unmapped ``ExchangeError`` leave the outcome unknown: the breaker asks the
venue by client order id before anything is sent again. The rest of the
``ExchangeError`` tree (insufficient funds, invalid orders, bad requests,
authentication, ...) is a business refusal.

**Numbers** come as floats (ccxt's default ``number``); each is read through
its shortest ``repr``, which gives back the venue's decimal text for every
value a venue sends (15 significant digits or fewer).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..._exceptions import BrokerError, MalformedPayloadError
from ...messages._enums import OrderStatus, OrderType, Side, TimeInForce
from ...messages._messages import SubmitOrder

__all__ = [
    "CCXT_ORDER_TYPES",
    "CCXT_TIME_IN_FORCE",
    "CcxtBidAsk",
    "CcxtCallError",
    "CcxtOrder",
    "CcxtTrade",
    "ErrorKind",
    "OrderRequest",
    "Placement",
    "UnsupportedOrderError",
    "check_order",
    "classify",
    "encode_order",
    "execution_id",
    "map_status",
    "parse_bid_ask",
    "parse_order",
    "parse_orders",
    "parse_placement",
    "parse_trade",
    "parse_trades",
    "retry_after_seconds",
]

#: What the codec expresses through ccxt's unified ``create_order`` on every exchange.
CCXT_ORDER_TYPES = frozenset({OrderType.MARKET, OrderType.LIMIT})
CCXT_TIME_IN_FORCE = frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK})


class ErrorKind(enum.Enum):
    """What a ccxt exception means for the request that raised it."""

    REJECTED = "rejected"
    """The venue refused it: nothing was placed, changed or cancelled."""
    NOT_FOUND = "not_found"
    """The venue has no such order (on a cancel: often already terminal)."""
    RATE_LIMITED = "rate_limited"
    """429: not processed; wait for Retry-After."""
    BANNED = "banned"
    """418 (Binance's IP ban): not processed; the breaker opens at once."""
    TIMEOUT = "timeout"
    """No answer in time: the outcome is unknown."""
    UNKNOWN = "unknown"
    """Anything else that leaves the outcome unknown (transport, 5xx, unreadable)."""


#: ccxt class name -> meaning, looked up along the exception's MRO (most specific first).
_KINDS: Mapping[str, ErrorKind] = {
    "OrderNotFound": ErrorKind.NOT_FOUND,
    # A NetworkError by inheritance, a definite refusal by meaning.
    "InvalidNonce": ErrorKind.REJECTED,
    "ChecksumError": ErrorKind.UNKNOWN,
    "RateLimitExceeded": ErrorKind.RATE_LIMITED,
    "DDoSProtection": ErrorKind.RATE_LIMITED,
    "RequestTimeout": ErrorKind.TIMEOUT,
    "OnMaintenance": ErrorKind.UNKNOWN,
    "ExchangeNotAvailable": ErrorKind.UNKNOWN,
    "NetworkError": ErrorKind.UNKNOWN,
    "NullResponse": ErrorKind.UNKNOWN,
    "BadResponse": ErrorKind.UNKNOWN,
    "CancelPending": ErrorKind.UNKNOWN,
    "OperationFailed": ErrorKind.UNKNOWN,
    # ccxt's own cache had no such order: the venue said nothing.
    "OrderNotCached": ErrorKind.UNKNOWN,
    "InvalidOrder": ErrorKind.REJECTED,
    "InsufficientFunds": ErrorKind.REJECTED,
    "BadRequest": ErrorKind.REJECTED,
    "ArgumentsRequired": ErrorKind.REJECTED,
    "NotSupported": ErrorKind.REJECTED,
    "OperationRejected": ErrorKind.REJECTED,
    "AuthenticationError": ErrorKind.REJECTED,
    "InvalidAddress": ErrorKind.REJECTED,
    "InvalidProxySettings": ErrorKind.REJECTED,
    # Refused by ccxt itself (we closed that exchange object), never by the venue:
    # certainly not sent, but the contract's word for that is "ask first".
    "ExchangeClosedByUser": ErrorKind.UNKNOWN,
    # Unmapped venue errors: reject only once a query confirms it.
    "ExchangeError": ErrorKind.UNKNOWN,
    "BaseError": ErrorKind.UNKNOWN,
}


def classify(error: BaseException) -> ErrorKind:
    """What ``error`` (a ccxt exception, or anything its transport let through) means.

    A 418 is told apart from a 429 by the status ccxt puts in the message
    (Binance: ``"binance 418 I'm a teapot ..."``)."""
    for cls in type(error).__mro__:
        kind = _KINDS.get(cls.__name__)
        if kind is None:
            continue
        if kind is ErrorKind.RATE_LIMITED and " 418 " in f" {error} ":
            return ErrorKind.BANNED
        return kind
    if isinstance(error, TimeoutError):
        return ErrorKind.TIMEOUT
    return ErrorKind.UNKNOWN


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """The Retry-After header of the answer that raised, in seconds (None: absent/unreadable)."""
    if not headers:
        return None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


class CcxtCallError(BrokerError):
    """A ccxt call that raised, converted at the boundary: ``kind`` says what it means,
    ``code`` is ccxt's class name (the venue's own code is in the text)."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        broker: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, broker=broker, code=code, retry_after=retry_after)
        self.kind = kind
        self.reason = message


class UnsupportedOrderError(ValueError):
    """An order this adapter cannot express through ccxt (refused before sending)."""

    def __init__(self, message: str, *, code: str = "UNSUPPORTED") -> None:
        super().__init__(message)
        self.code = code


# -- our orders as ccxt's create_order arguments ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """``create_order(symbol, type, side, amount, price, params)``'s arguments."""

    symbol: str
    type: str
    side: str
    amount: str
    price: str | None
    params: Mapping[str, Any]


def encode_order(
    order: SubmitOrder,
    *,
    client_id_param: str,
    quantity: Decimal | None = None,
    post_only: bool = True,
) -> OrderRequest:
    """``order`` as ccxt's unified ``create_order`` arguments, its client order id in
    ``client_id_param`` (the parameter the exchange's ccxt class reads; see
    ``_endpoints.CLIENT_ID_PARAMS``). ``quantity`` overrides the order's own
    (a replacement places what is left of the logical total)."""
    if order.order_type not in CCXT_ORDER_TYPES:
        raise UnsupportedOrderError(f"{order.order_type.value} orders are not sent through ccxt")
    if order.time_in_force not in CCXT_TIME_IN_FORCE:
        raise UnsupportedOrderError(f"time in force {order.time_in_force.value} is not supported")
    if order.reduce_only:
        raise UnsupportedOrderError("reduce-only orders are not sent through ccxt (spot)")
    params: dict[str, Any] = {client_id_param: order.client_order_id}
    price: str | None = None
    if order.order_type is OrderType.LIMIT:
        if order.price is None:
            raise UnsupportedOrderError("a LIMIT order needs a price", code="INVALID_PRICE")
        price = _text(order.price)
        if order.post_only:
            if not post_only:
                raise UnsupportedOrderError("the exchange takes no post-only orders")
            params["postOnly"] = True
        elif order.time_in_force is not TimeInForce.GTC:
            params["timeInForce"] = order.time_in_force.value
    elif order.post_only:
        raise UnsupportedOrderError("a MARKET order cannot be post-only")
    amount = order.quantity if quantity is None else quantity
    return OrderRequest(
        symbol=order.symbol,
        type="market" if order.order_type is OrderType.MARKET else "limit",
        side="buy" if order.side is Side.BUY else "sell",
        amount=_text(amount),
        price=price,
        params=params,
    )


#: ccxt's ``precisionMode`` where ``market['precision']`` holds tick sizes.
TICK_SIZE = 4


def _limit(market: Mapping[str, Any], *path: str) -> Decimal | None:
    value: Any = market
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def check_order(
    order: SubmitOrder, market: Mapping[str, Any], *, precision_mode: int = TICK_SIZE
) -> None:
    """Refuse, before anything is sent, what the market's rules (ccxt's unified
    ``precision`` and ``limits``, from the venue's own filters) would refuse:
    a quantity off the lot grid or outside the amount limits (a market order's
    own ``limits.market`` where the venue has one, OKX's ``maxMktSz``), a price
    off the tick grid, a limit order below the minimum notional."""
    quantity = order.quantity
    if precision_mode == TICK_SIZE:
        lot = _limit(market, "precision", "amount")
        if lot is not None and quantity % lot != 0:
            raise UnsupportedOrderError(
                f"quantity {quantity} is not a multiple of the lot size {lot}", code="LOT_SIZE"
            )
        tick = _limit(market, "precision", "price")
        if tick is not None and order.price is not None and order.price % tick != 0:
            raise UnsupportedOrderError(
                f"price {order.price} is not a multiple of the tick size {tick}",
                code="PRICE_FILTER",
            )
    kind = "market" if order.order_type is OrderType.MARKET else "amount"
    low = _limit(market, "limits", kind, "min")
    high = _limit(market, "limits", kind, "max")
    if kind == "market":
        low = low or _limit(market, "limits", "amount", "min")
        high = high or _limit(market, "limits", "amount", "max")
    if low is not None and quantity < low:
        raise UnsupportedOrderError(f"quantity {quantity} is below {low}", code="LOT_SIZE")
    if high is not None and quantity > high:
        raise UnsupportedOrderError(f"quantity {quantity} is above {high}", code="LOT_SIZE")
    notional = _limit(market, "limits", "cost", "min")
    if notional is not None and order.price is not None and quantity * order.price < notional:
        raise UnsupportedOrderError(
            f"notional {quantity * order.price} is below {notional}", code="NOTIONAL"
        )


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


# -- ccxt's unified structures as typed records -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class CcxtOrder:
    """One unified ``Order`` as the codec read it (``status`` is ccxt's word, kept raw:
    unmapped venue states pass through ccxt unchanged)."""

    id: str
    client_order_id: str | None
    symbol: str
    side: Side
    status: str
    amount: Decimal
    filled: Decimal
    order_type: OrderType
    price: Decimal | None
    average: Decimal | None
    timestamp: int | None


@dataclass(frozen=True, slots=True)
class CcxtTrade:
    """One unified ``Trade`` (a fill of ours)."""

    id: str
    order_id: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    timestamp: int | None


@dataclass(frozen=True, slots=True)
class CcxtBidAsk:
    """One unified ticker from ``watch_bids_asks``: the top of one market's book."""

    symbol: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal | None
    ask_size: Decimal | None
    timestamp: int | None


def parse_bid_ask(raw: object) -> CcxtBidAsk:
    """A unified ticker as a top of book; MalformedPayloadError when a side is missing
    or not a positive price (a one-sided book is no quote to trade on), when the book
    is crossed (bid above ask), or when a size is negative."""
    ticker = _mapping(raw, "ticker")
    bid = _decimal(ticker, "bid", "ticker")
    ask = _decimal(ticker, "ask", "ticker")
    if bid <= 0 or ask <= 0:
        raise MalformedPayloadError(f"{_where(ticker, 'ticker')}: bid {bid}, ask {ask}")
    if bid > ask:
        raise MalformedPayloadError(f"{_where(ticker, 'ticker')}: bid {bid} is above ask {ask}")
    bid_size = _decimal(ticker, "bidVolume", "ticker", optional=True)
    ask_size = _decimal(ticker, "askVolume", "ticker", optional=True)
    for key, size in (("bidVolume", bid_size), ("askVolume", ask_size)):
        if size is not None and size < 0:
            raise MalformedPayloadError(f"{_where(ticker, 'ticker')}: {key} {size} is negative")
    return CcxtBidAsk(
        symbol=_string(ticker, "symbol", "ticker"),
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        timestamp=_timestamp(ticker),
    )


def _where(raw: Mapping[str, Any], what: str) -> str:
    return f"{what} {raw.get('id')!r}"


def _decimal(raw: Mapping[str, Any], key: str, what: str, *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None:
        if optional:
            return None
        raise MalformedPayloadError(f"{_where(raw, what)}: no {key}")
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise MalformedPayloadError(f"{_where(raw, what)}: {key}={value!r} is not a number")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation as exc:
        raise MalformedPayloadError(f"{_where(raw, what)}: {key}={value!r}") from exc
    if not number.is_finite():
        raise MalformedPayloadError(f"{_where(raw, what)}: {key}={value!r} is not finite")
    return number


def _string(raw: Mapping[str, Any], key: str, what: str, *, optional: bool = False) -> Any:
    value = raw.get(key)
    if value is None or value == "":
        if optional:
            return None
        raise MalformedPayloadError(f"{_where(raw, what)}: no {key}")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise MalformedPayloadError(f"{_where(raw, what)}: {key}={value!r} is not a string")
    return value


def _side(raw: Mapping[str, Any], what: str) -> Side:
    side = raw.get("side")
    if side == "buy":
        return Side.BUY
    if side == "sell":
        return Side.SELL
    raise MalformedPayloadError(f"{_where(raw, what)}: side={side!r}")


def _timestamp(raw: Mapping[str, Any]) -> int | None:
    value = raw.get("timestamp")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return int(value)
    return None


def _mapping(raw: object, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise MalformedPayloadError(f"{what}: expected an object, got {type(raw).__name__}")
    return raw


def parse_order(raw: object) -> CcxtOrder:
    """A unified ``Order``; anything missing or unreadable is ``MalformedPayloadError``."""
    order = _mapping(raw, "order")
    amount = _decimal(order, "amount", "order")
    filled = _decimal(order, "filled", "order", optional=True)
    if filled is None:
        remaining = _decimal(order, "remaining", "order", optional=True)
        filled = amount - remaining if remaining is not None else Decimal(0)
    if amount <= 0 or filled < 0:
        raise MalformedPayloadError(f"{_where(order, 'order')}: amount {amount}, filled {filled}")
    kind = order.get("type")
    # ccxt fills a market order's price with its average: ours has none.
    price = None if kind == "market" else _decimal(order, "price", "order", optional=True) or None
    return CcxtOrder(
        id=_string(order, "id", "order"),
        client_order_id=_string(order, "clientOrderId", "order", optional=True),
        symbol=_string(order, "symbol", "order"),
        side=_side(order, "order"),
        status=_string(order, "status", "order"),
        amount=amount,
        filled=min(filled, amount),
        order_type=OrderType.MARKET if kind == "market" else OrderType.LIMIT,
        price=price,
        average=_decimal(order, "average", "order", optional=True),
        timestamp=_timestamp(order),
    )


@dataclass(frozen=True, slots=True)
class Placement:
    """A create's answer that only acknowledges the order (OKX's ``ordId``/``clOrdId``
    with ``sCode`` 0): the order's terms and state come from the order itself."""

    id: str
    client_order_id: str | None


def parse_placement(raw: object) -> CcxtOrder | Placement:
    """A create's answer: the whole order where the venue returns it (Binance), else
    the acknowledgement (an id, and the client id)."""
    answer = _mapping(raw, "placement")
    if answer.get("amount") is None:
        return Placement(
            id=_string(answer, "id", "placement"),
            client_order_id=_string(answer, "clientOrderId", "placement", optional=True),
        )
    return parse_order(answer)


def parse_trade(raw: object) -> CcxtTrade:
    """A unified ``Trade`` of ours (``order`` is its order's venue id)."""
    trade = _mapping(raw, "trade")
    amount = _decimal(trade, "amount", "trade")
    price = _decimal(trade, "price", "trade")
    if amount <= 0 or price <= 0:
        raise MalformedPayloadError(f"{_where(trade, 'trade')}: amount {amount}, price {price}")
    fee_cost, fee_currency = Decimal(0), None
    fee = trade.get("fee")
    if isinstance(fee, Mapping) and fee.get("cost") is not None:
        fee_cost = _decimal(fee, "cost", "fee")
        currency = fee.get("currency")
        fee_currency = currency if isinstance(currency, str) and currency else None
    return CcxtTrade(
        id=_string(trade, "id", "trade"),
        order_id=_string(trade, "order", "trade"),
        symbol=_string(trade, "symbol", "trade"),
        side=_side(trade, "trade"),
        amount=amount,
        price=price,
        fee=fee_cost,
        fee_currency=fee_currency,
        timestamp=_timestamp(trade),
    )


def parse_orders(raw: object) -> tuple[CcxtOrder, ...]:
    return tuple(parse_order(item) for item in _sequence(raw, "orders"))


def parse_trades(raw: object) -> tuple[CcxtTrade, ...]:
    return tuple(parse_trade(item) for item in _sequence(raw, "trades"))


def _sequence(raw: object, what: str) -> Iterable[object]:
    if not isinstance(raw, list | tuple):
        raise MalformedPayloadError(f"{what}: expected a list, got {type(raw).__name__}")
    return raw


#: ccxt's unified order statuses (and the non-standard ones it passes on).
_LIVE = frozenset({"open", "canceling"})


def map_status(status: str, *, filled: Decimal, amount: Decimal) -> OrderStatus | None:
    """ccxt's status word as ours, or None for one ccxt passed through unmapped
    (a venue's raw ``PENDING_NEW``: not readable yet)."""
    if status in _LIVE:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
    if status == "closed":
        return OrderStatus.FILLED if filled >= amount else OrderStatus.CANCELED
    if status == "canceled":
        return OrderStatus.CANCELED
    if status == "expired":
        return OrderStatus.EXPIRED
    if status == "rejected":
        return OrderStatus.REJECTED
    return None


def execution_id(exchange: str, market_id: str, trade_id: str) -> str:
    """``<exchange>-<venue's market id>-<trade id>``: the ids the native Binance and
    OKX adapters give the same fills, so the OMS dedupes across both paths."""
    return f"{exchange}-{market_id}-{trade_id}"
