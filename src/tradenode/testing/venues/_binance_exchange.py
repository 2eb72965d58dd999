"""Binance Spot's rules over the matching simulator: pure, no I/O, thread-safe.

:class:`BinanceExchange` takes requests as Binance receives them (the raw
query string and body of a REST call, or the params of a WebSocket API
request), checks them the way Binance does (API key, HMAC-SHA256 or Ed25519
signature, timestamp and recvWindow, mandatory params, number syntax,
precision, filters, request weight) and answers with Binance's own bodies,
error codes, messages and HTTP statuses. Orders go to a
:class:`~tradenode.sim.MatchingSimulator`; what it reports becomes
``executionReport``, ``outboundAccountPosition`` and ``balanceUpdate`` user
events and ``<symbol>@bookTicker`` market events, which are handed, under the
exchange's lock and so in order, to the listeners registered with
:meth:`BinanceExchange.add_listener`. The public market data (trade tape,
klines, 24 h tickers, ``@trade``/``@kline_<i>``/``@depth`` streams) is kept
in :mod:`~._binance_market`; stream events are made only for the streams
someone listens to (:meth:`BinanceExchange.want_streams`).

API keys: the account's HMAC key (``api_key``/``api_secret``) and any number
of Ed25519 keys (``ed25519_public_keys``: API key to public key PEM), which
sign with base64 Ed25519 signatures and alone may ``session.logon`` on the
WebSocket API.

Everything that varies (generated client order ids, listen keys) is drawn
from the seed, and all time comes from the injected millisecond clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import re
import string
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tradenode.messages._enums import OrderType, Side, TimeInForce
from tradenode.sim import (
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimCanceled,
    SimConfig,
    SimEvent,
    SimExpired,
    SimFill,
    SimOrder,
    SimQuote,
    SimRejectCode,
    SimRejected,
)
from tradenode.testing.venues._binance_market import (
    KLINE_INTERVALS,
    PublicTrade,
    Tape,
    depth_diff,
    parse_time_zone,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "BinanceError",
    "BinanceExchange",
    "BookTickerEvent",
    "MarketEvent",
    "OrderInfo",
    "Reply",
    "TradeInfo",
    "UserEvent",
    "VenueEvent",
    "load_ed25519_public_key",
    "rest_signature",
    "ws_signature",
    "ws_signature_payload",
]

DEFAULT_API_KEY = "tradenode-fake-binance-key"
DEFAULT_API_SECRET = "tradenode-fake-binance-secret"

Json: TypeAlias = dict[str, Any]

PRECISION = 8
_QUANTUM = Decimal(1).scaleb(-PRECISION)
_MAX_PRICE = Decimal("1000000")
_MAX_QTY = Decimal("9000000")
_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_NUMBER_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
_INTEGER = re.compile(r"^-?[0-9]{1,20}$")
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_CLIENT_ID_RANGE = "^[a-zA-Z0-9-_]{1,36}$"
_MINUTE_MS = 60_000
_TEN_SECONDS_MS = 10_000
_DAY_MS = 86_400_000
_LISTEN_KEY_TTL_MS = 60 * _MINUTE_MS
_MAX_RECV_WINDOW = Decimal(60000)
_MICROSECOND_TIMESTAMP = 10**14

ORDER_TYPES = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
_SIM_TYPE = {
    "LIMIT": OrderType.LIMIT,
    "LIMIT_MAKER": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "STOP_LOSS": OrderType.STOP,
    "STOP_LOSS_LIMIT": OrderType.STOP_LIMIT,
    "TAKE_PROFIT": OrderType.MARKET_IF_TOUCHED,
    "TAKE_PROFIT_LIMIT": OrderType.LIMIT_IF_TOUCHED,
}
_NEEDS_TIF = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
_NEEDS_PRICE = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
#: The ICEBERG_PARTS filter: an iceberg's ceil(quantity / icebergQty) at most this.
ICEBERG_PARTS = 10
_NEEDS_STOP = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_RESULT_BY_DEFAULT = frozenset({"LIMIT", "MARKET"})
_TIME_IN_FORCE = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
_DEFAULT_STP = "EXPIRE_MAKER"

_MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
_MSG_DUPLICATE = "Duplicate order sent."
_MSG_WOULD_TAKE = "Order would immediately match and take."
_MSG_WOULD_TRIGGER = "Order would trigger immediately."
_MSG_UNKNOWN_ORDER = "Unknown order sent."
_SYNTAX_ERRORS = frozenset(
    {-1100, -1101, -1102, -1105, -1106, -1111, -1114, -1115, -1116, -1117, -1121, -1130, -1145}
)


# ------------------------------------------------------------------ values


class BinanceError(Exception):
    """A Binance error answer: ``{"code": code, "msg": msg}`` with an HTTP status."""

    def __init__(
        self,
        code: int,
        msg: str,
        status: int = 400,
        *,
        data: Json | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data
        self.headers = dict(headers or {})

    def body(self) -> Json:
        body: Json = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            body["data"] = self.data
        return body


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: ``body`` is the JSON document (a REST body, or a WS API ``result``)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limits: tuple[Json, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status < 400


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One user data stream payload (``executionReport`` and friends), unwrapped."""

    payload: Json


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """One market stream payload: ``stream`` is its name (``btcusdt@trade``)."""

    stream: str
    payload: Json


@dataclass(frozen=True, slots=True)
class BookTickerEvent(MarketEvent):
    """One ``<symbol lowercase>@bookTicker`` payload."""


VenueEvent: TypeAlias = UserEvent | MarketEvent


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """What the venue knows of one order, for tests (Binance's own vocabulary)."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    status: str
    price: Decimal
    stop_price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cummulative_quote_qty: Decimal
    time: int
    update_time: int
    iceberg_qty: Decimal = Decimal(0)
    """``icebergQty``: 0 for an order that is no iceberg."""


@dataclass(frozen=True, slots=True)
class TradeInfo:
    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time: int


@dataclass(slots=True)
class _Order:
    order_id: int
    internal_id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal
    stop_price: Decimal
    orig_quote_qty: Decimal
    stp_mode: str
    time: int
    update_time: int
    working_time: int
    strategy_id: int | None = None
    strategy_type: int | None = None
    iceberg_qty: Decimal = Decimal(0)
    """``icebergQty``: the most of the order the public book shows (0: all of it)."""


@dataclass(slots=True)
class _ListenKey:
    key: str
    expires_at: int


# ---------------------------------------------------------------- signing


def rest_signature(secret: str, payload: str) -> str:
    """HMAC-SHA256 hex of a REST payload (query string + body, signature excluded)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def ws_signature_payload(params: Mapping[str, str]) -> str:
    """The WebSocket API's signed text: params but ``signature``, sorted, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")


def ws_signature(secret: str, params: Mapping[str, str]) -> str:
    return rest_signature(secret, ws_signature_payload(params))


def load_ed25519_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (``-----BEGIN PUBLIC KEY-----``); ValueError otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise ValueError("not a PEM public key") from error
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"not an Ed25519 public key ({type(key).__name__})")
    return key


def _ed25519_valid(key: Ed25519PublicKey, payload: str, signature: str) -> bool:
    """Whether ``signature`` (base64, case-sensitive) signs ``payload`` (UTF-8) with ``key``."""
    # A client that forgot to percent-encode has its "+" read as a space by the form parser.
    for text in dict.fromkeys((signature, signature.replace(" ", "+"))):
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            key.verify(raw, payload.encode("utf-8"))
        except InvalidSignature:
            continue
        return True
    return False


def _strip_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if not part.startswith("signature="))


def fmt(value: Decimal) -> str:
    """Binance's fixed eight-decimal rendering."""
    return format(value.quantize(_QUANTUM), "f") if value.is_finite() else str(value)


# ----------------------------------------------------------------- params


def _mandatory(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def _not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def _either(first: str, second: str) -> BinanceError:
    return BinanceError(
        -1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!"
    )


class Params:
    """Request parameters as Binance reads them: every value a string."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def has(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise _mandatory(name)
            return None
        return value

    def need(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        if not _NUMBER.match(raw):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '{_NUMBER_RANGE}'.",
            )
        value = Decimal(raw)
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -PRECISION:
            raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")
        return value

    def integer(self, name: str, *, required: bool = False) -> int | None:
        raw = self.text(name, required=required)
        if raw is None:
            return None
        if not _INTEGER.match(raw):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
            )
        return int(raw)

    def boolean(self, name: str) -> bool:
        raw = self.text(name)
        if raw is None:
            return False
        if raw.lower() not in ("true", "false"):
            raise BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")
        return raw.lower() == "true"


def parse_form(raw: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as error:
        raise BinanceError(-1100, "Illegal characters found in a parameter.") from error


def merge_params(query: str, body: str) -> Params:
    """Query and body params; a duplicate inside one of them is -1101, the query wins across."""
    merged: dict[str, str] = {}
    for raw in (body, query):
        seen: set[str] = set()
        for key, value in parse_form(raw):
            if key in seen:
                raise BinanceError(-1101, "Duplicate values for a parameter detected.")
            seen.add(key)
            merged[key] = value
    return Params(merged)


# ----------------------------------------------------------- rate limits


@dataclass(slots=True)
class _Window:
    size_ms: int
    start: int = 0
    count: int = 0

    def roll(self, now: int) -> None:
        start = now - now % self.size_ms
        if start != self.start:
            self.start = start
            self.count = 0

    def seconds_left(self, now: int) -> int:
        return max(1, -(-(self.start + self.size_ms - now) // 1000))


class RateLimiter:
    """Binance's fixed-window request weight and order counts, one client (IP) wide.

    Over the weight limit a request gets 429 ``-1003`` with ``Retry-After``;
    a client that sends again before that time is up gets 418 and is banned
    for ``ban_seconds``. :meth:`force_429` and :meth:`ban` inject the same
    answers on demand.
    """

    def __init__(
        self,
        clock: Callable[[], int],
        *,
        weight_limit: int,
        order_limit_10s: int,
        order_limit_1d: int,
        ban_seconds: int,
    ) -> None:
        self._clock = clock
        self.weight_limit = weight_limit
        self.order_limit_10s = order_limit_10s
        self.order_limit_1d = order_limit_1d
        self.ban_seconds = ban_seconds
        self._weight = _Window(_MINUTE_MS)
        self._orders_10s = _Window(_TEN_SECONDS_MS)
        self._orders_1d = _Window(_DAY_MS)
        self._backoff_until = 0
        self._banned_until = 0
        self._forced_429: list[int] = []

    def force_429(self, count: int, retry_after: int) -> None:
        self._forced_429.extend([retry_after] * count)

    def ban(self, seconds: int) -> None:
        self._banned_until = self._clock() + seconds * 1000

    def clear(self) -> None:
        self._backoff_until = self._banned_until = 0
        self._forced_429.clear()

    @property
    def used_weight(self) -> int:
        self._weight.roll(self._clock())
        return self._weight.count

    def admit(self, weight: int) -> int:
        """Count ``weight`` and return the minute's total, or raise the 429/418 answer."""
        now = self._clock()
        self._weight.roll(now)
        if now < self._banned_until:
            raise self._banned(now)
        if now < self._backoff_until:
            self._banned_until = now + self.ban_seconds * 1000
            raise self._banned(now)
        if self._forced_429:
            retry_after = self._forced_429.pop(0)
            self._backoff_until = now + retry_after * 1000
            raise self._too_many(retry_after)
        if self._weight.count + weight > self.weight_limit:
            retry_after = self._weight.seconds_left(now)
            self._backoff_until = self._weight.start + self._weight.size_ms
            raise self._too_many(retry_after)
        self._weight.count += weight
        return self._weight.count

    def _too_many(self, retry_after: int) -> BinanceError:
        return BinanceError(
            -1003,
            f"Too much request weight used; current limit is {self.weight_limit} request "
            "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
            "polling the API.",
            429,
            headers={"Retry-After": str(retry_after)},
        )

    def _banned(self, now: int) -> BinanceError:
        seconds = max(1, -(-(self._banned_until - now) // 1000))
        return BinanceError(
            -1003,
            f"Way too much request weight used; IP banned until {self._banned_until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            418,
            headers={"Retry-After": str(seconds)},
        )

    def admit_order(self) -> None:
        now = self._clock()
        for window, limit, name in (
            (self._orders_10s, self.order_limit_10s, "10 SECOND"),
            (self._orders_1d, self.order_limit_1d, "1 DAY"),
        ):
            window.roll(now)
            if window.count >= limit:
                raise BinanceError(
                    -1015,
                    f"Too many new orders; current limit is {limit} orders per {name}.",
                    429,
                    headers={"Retry-After": str(window.seconds_left(now))},
                )
        self._orders_10s.count += 1
        self._orders_1d.count += 1

    def order_counts(self) -> tuple[int, int]:
        now = self._clock()
        self._orders_10s.roll(now)
        self._orders_1d.roll(now)
        return self._orders_10s.count, self._orders_1d.count

    def weight_rate_limit(self) -> Json:
        return {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": self.weight_limit,
            "count": self.used_weight,
        }

    def order_rate_limits(self) -> list[Json]:
        ten, day = self.order_counts()
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self.order_limit_10s,
                "count": ten,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": self.order_limit_1d,
                "count": day,
            },
        ]


# ---------------------------------------------------------------- exchange


@dataclass(frozen=True, slots=True)
class _Endpoint:
    handler: Callable[[BinanceExchange, Params], Any]
    security: str  # NONE, TRADE, USER_DATA, USER_STREAM; WS API: LOGON, SESSION
    weight: Callable[[Params], int]
    places_order: bool = False
    weight_header: str = "X-MBX-USED-WEIGHT-1M"


def _flat(weight: int) -> Callable[[Params], int]:
    return lambda _params: weight


class BinanceExchange:
    """One Binance Spot account over a :class:`MatchingSimulator`.

    ``clock`` returns epoch milliseconds; it stamps everything and drives the
    timestamp/recvWindow check, the rate-limit windows and listen key expiry.
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        seed: int = 0,
        clock: Callable[[], int],
        weight_limit: int = 6000,
        order_limit_10s: int = 50,
        order_limit_1d: int = 160000,
        ban_seconds: int = 120,
        ed25519_public_keys: Mapping[str, str | bytes] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._api_key = api_key
        self._secret = api_secret
        self._ed25519: dict[str, Ed25519PublicKey] = {}
        for key, pem in (ed25519_public_keys or {}).items():
            self.register_ed25519_key(key, pem)
        self._config = config
        self._specs: dict[str, InstrumentSpec] = {spec.symbol: spec for spec in config.instruments}
        self._sim = MatchingSimulator(config, seed=seed, clock=lambda: clock() * 1_000_000)
        self._random = random.Random(f"{seed}:binance")
        self.limiter = RateLimiter(
            clock,
            weight_limit=weight_limit,
            order_limit_10s=order_limit_10s,
            order_limit_1d=order_limit_1d,
            ban_seconds=ban_seconds,
        )
        self._orders: dict[int, _Order] = {}
        self._by_internal: dict[str, _Order] = {}
        self._open_by_client: dict[str, int] = {}
        self._latest_by_client: dict[str, int] = {}
        self._submissions: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._internal_seq = 0
        self._execution_id = 0
        self._update_id = 0
        self._listen_key: _ListenKey | None = None
        self._listeners: list[Callable[[VenueEvent], None]] = []
        self._account_update_time = 0
        self._pending_cancel_id: str | None = None
        self._rest_endpoints = _rest_endpoints()
        self._ws_methods = _ws_methods()
        self._tape_random = random.Random(f"{seed}:binance-tape")
        self._tapes = {symbol: Tape(symbol) for symbol in self._specs}
        self._wanted: Counter[str] = Counter()
        self._depth_books: dict[str, tuple[list[Any], list[Any]]] = {}
        self._books_changed: set[str] = set()
        """Symbols whose public book an iceberg's tip changed (see ``_shown``)."""
        self._depth_update: dict[str, int] = {}
        self._kline_sent: dict[str, int] = {}
        now = clock()
        for symbol, spec in self._specs.items():
            # The listing's opening trade: every symbol has a last price from the start.
            self._tape_trade(symbol, self._sim.quote(symbol).last, now, spec.initial_price)
            self._depth_books[symbol] = self._sim.depth(symbol, self._config.depth_levels)
            self._depth_update[symbol] = 0

    # ------------------------------------------------------------ plumbing

    @property
    def api_key(self) -> str:
        return self._api_key

    def register_ed25519_key(self, api_key: str, public_key_pem: str | bytes) -> None:
        """Let ``api_key`` sign with the Ed25519 key whose public half is ``public_key_pem``."""
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if api_key == self._api_key:
            raise ValueError(f"{api_key!r} is the account's HMAC key; give the Ed25519 key its own")
        key = load_ed25519_public_key(public_key_pem)
        with self._lock:
            self._ed25519[api_key] = key

    def ed25519_keys(self) -> list[str]:
        """The API keys registered as Ed25519 keys."""
        with self._lock:
            return sorted(self._ed25519)

    def want_streams(self, names: Iterable[str]) -> None:
        """Someone listens to these market streams (counted): make their events."""
        with self._lock:
            self._wanted.update(names)

    def unwant_streams(self, names: Iterable[str]) -> None:
        with self._lock:
            self._wanted.subtract(names)
            for name in [name for name, count in self._wanted.items() if count <= 0]:
                del self._wanted[name]
                self._kline_sent.pop(name, None)

    def __repr__(self) -> str:
        return f"BinanceExchange(api_key={self._api_key!r}, symbols={list(self._specs)})"

    def now(self) -> int:
        return self._clock()

    def add_listener(self, listener: Callable[[VenueEvent], None]) -> None:
        """``listener`` gets every event, in order, under the exchange's lock: keep it quick."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[VenueEvent], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, event: VenueEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    @contextmanager
    def _account_change(self) -> Iterator[None]:
        """Emit one ``outboundAccountPosition`` for whatever balances the block changed."""
        before = dict(self._sim.balances())
        yield
        after = self._sim.balances()
        changed = [asset for asset, balance in after.items() if before.get(asset) != balance]
        if changed:
            now = self._clock()
            self._account_update_time = now
            self._emit(
                UserEvent(
                    {
                        "e": "outboundAccountPosition",
                        "E": now,
                        "u": now,
                        "B": [
                            {"a": a, "f": fmt(after[a].free), "l": fmt(after[a].locked)}
                            for a in changed
                        ],
                    }
                )
            )
        # An iceberg placed, refreshed or gone changes the public book: publish it.
        changed_books, self._books_changed = sorted(self._books_changed), set()
        for symbol in changed_books:
            self._publish_book(symbol)

    # ---------------------------------------------------------- REST entry

    def rest(self, method: str, name: str, query: str, body: str, api_key: str | None) -> Reply:
        """Answer ``METHOD /api/v3/<name>?query`` with ``body`` as Binance would.

        ``name`` is the path after ``/api/v3/`` (``order``), or the whole path
        after ``/`` for the wallet endpoints (``sapi/v1/asset/tradeFee``).
        """
        with self._lock:
            endpoint = self._rest_endpoints.get((method.upper(), name))
            if endpoint is None:
                known = any(path == name for _, path in self._rest_endpoints)
                status = 405 if known else 404
                return Reply(status, {"code": -1000, "msg": "An unknown error occurred."})
            self._calls[f"{method.upper()} {name}"] += 1
            headers: dict[str, str] = {}
            try:
                params = merge_params(query, body)
                used = self.limiter.admit(endpoint.weight(params))
                headers[endpoint.weight_header] = str(used)
                self._authenticate_rest(endpoint, params, query, body, api_key)
                if endpoint.places_order:
                    self.limiter.admit_order()
                result = endpoint.handler(self, params)
            except BinanceError as error:
                headers.setdefault(endpoint.weight_header, str(self.limiter.used_weight))
                headers.update(error.headers)
                return Reply(error.status, error.body(), headers)
            if endpoint.places_order:
                ten, day = self.limiter.order_counts()
                headers["X-MBX-ORDER-COUNT-10S"] = str(ten)
                headers["X-MBX-ORDER-COUNT-1D"] = str(day)
            status = 200
            if isinstance(result, Reply):
                headers.update(result.headers)
                return Reply(result.status, result.body, headers)
            return Reply(status, result, headers)

    def _authenticate_rest(
        self, endpoint: _Endpoint, params: Params, query: str, body: str, api_key: str | None
    ) -> None:
        if endpoint.security == "NONE":
            return
        key = self._check_api_key(api_key)
        if endpoint.security == "USER_STREAM":
            return
        self._check_timestamp(params)
        signature = params.need("signature")
        payload = _strip_signature(query) + _strip_signature(body)
        self._check_signature(key, payload, signature)

    def _check_api_key(self, api_key: str | None) -> str:
        """``api_key`` if it is one of the account's keys; -2014/-2015 otherwise."""
        if not api_key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        if api_key in self._ed25519:
            return api_key
        if not hmac.compare_digest(api_key.encode(), self._api_key.encode()):
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        return self._api_key

    def _check_signature(self, api_key: str, payload: str, signature: str) -> None:
        """HMAC keys: lowercase or uppercase hex; Ed25519 keys: base64 (case-sensitive)."""
        public_key = self._ed25519.get(api_key)
        if public_key is not None:
            valid = _ed25519_valid(public_key, payload, signature)
        else:
            expected = rest_signature(self._secret, payload)
            valid = hmac.compare_digest(expected, signature.lower())
        if not valid:
            raise BinanceError(-1022, "Signature for this request is not valid.")

    def _check_timestamp(self, params: Params) -> None:
        timestamp = params.integer("timestamp", required=True)
        assert timestamp is not None
        window = params.decimal("recvWindow")
        recv_window = Decimal(5000) if window is None else window
        if recv_window > _MAX_RECV_WINDOW:
            raise BinanceError(
                -1102, "'recvWindow' contains unexpected value. Cannot be greater than '60000'."
            )
        stamp = Decimal(timestamp)
        if timestamp >= _MICROSECOND_TIMESTAMP:
            stamp = stamp / 1000
        server_time = Decimal(self._clock())
        if stamp >= server_time + 1000:
            raise BinanceError(
                -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if server_time - stamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    # ----------------------------------------------------- WebSocket API

    def ws_methods(self) -> frozenset[str]:
        return frozenset(self._ws_methods)

    def ws_request(
        self, method: str, params: Mapping[str, str], *, session_key: str | None = None
    ) -> Reply:
        """Answer one WebSocket API request; ``body`` is the ``result`` or the error object.

        ``session_key`` is the API key the connection logged on with
        (``session.logon``), which signs for requests without ``apiKey``.
        """
        with self._lock:
            endpoint = self._ws_methods.get(method)
            if endpoint is None:
                return self._ws_reply(BinanceError(-1020, "This operation is not supported."))
            self._calls[method] += 1
            try:
                values = Params(params)
                self.limiter.admit(endpoint.weight(values))
                self.authenticate_ws(values, security=endpoint.security, session_key=session_key)
                if endpoint.places_order:
                    self.limiter.admit_order()
                result = endpoint.handler(self, values)
            except BinanceError as error:
                return self._ws_reply(error, order=endpoint.places_order)
            if isinstance(result, Reply):
                return self._ws_reply(result, order=endpoint.places_order)
            return Reply(200, result, rate_limits=self._rate_limits(endpoint.places_order))

    def _rate_limits(self, order: bool) -> tuple[Json, ...]:
        limits = [self.limiter.weight_rate_limit()]
        if order:
            limits = [*self.limiter.order_rate_limits(), *limits]
        return tuple(limits)

    def _ws_reply(self, answer: BinanceError | Reply, *, order: bool = False) -> Reply:
        if isinstance(answer, Reply):
            return Reply(answer.status, answer.body, rate_limits=self._rate_limits(order))
        body = answer.body()
        if answer.status in (418, 429):
            retry = int(answer.headers.get("Retry-After", "0"))
            body["data"] = {"serverTime": self._clock(), "retryAfter": self._clock() + retry * 1000}
        return Reply(answer.status, body, answer.headers, self._rate_limits(order))

    def authenticate_ws(
        self, params: Params, *, security: str = "USER_DATA", session_key: str | None = None
    ) -> None:
        """Check a WebSocket API request's ``apiKey``, timestamp and signature (sorted params).

        On a connection logged on with ``session_key``, a request without
        ``apiKey`` and ``signature`` is the session's (its timestamp is still
        checked); one with them is authorized *ad hoc* by its own key.
        ``LOGON`` (``session.logon``) takes Ed25519 keys only; ``SESSION``
        (``userDataStream.subscribe``) takes no params and a logged-on session.
        """
        if security == "NONE":
            return
        with self._lock:
            if security == "SESSION":
                if params.values:
                    raise BinanceError(
                        -1104,
                        "Not all sent parameters were read; read '0' parameter(s) but was "
                        f"sent '{len(params.values)}'.",
                    )
                if session_key is None or not self._key_is_valid(session_key):
                    raise BinanceError(
                        -2015, "Invalid API-key, IP, or permissions for action.", 401
                    )
                return
            explicit = params.has("apiKey") or params.has("signature") or security == "LOGON"
            if not explicit and session_key is not None:
                if not self._key_is_valid(session_key):
                    raise BinanceError(
                        -2015, "Invalid API-key, IP, or permissions for action.", 401
                    )
                if security != "USER_STREAM":
                    self._check_timestamp(params)
                return
            key = self._check_api_key(params.text("apiKey", required=True))
            if security == "LOGON" and key not in self._ed25519:
                # Binance: "Only Ed25519 keys are supported for this feature."
                raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
            if security == "USER_STREAM":
                return
            self._check_timestamp(params)
            signature = params.need("signature")
            self._check_signature(key, ws_signature_payload(params.values), signature)

    def _key_is_valid(self, api_key: str) -> bool:
        return api_key in self._ed25519 or api_key == self._api_key

    def timestamp_ms(self, params: Mapping[str, str]) -> int | None:
        """A request's ``timestamp`` in milliseconds (microseconds are scaled down)."""
        raw = params.get("timestamp", "")
        if not _INTEGER.match(raw):
            return None
        value = int(raw)
        return value // 1000 if value >= _MICROSECOND_TIMESTAMP else value

    # ------------------------------------------------------------- market

    def _spec(self, params: Params) -> InstrumentSpec:
        symbol = params.need("symbol")
        spec = self._specs.get(symbol)
        if spec is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return spec

    def _symbol_list(self, params: Params) -> list[InstrumentSpec] | None:
        if params.has("symbol") and params.has("symbols"):
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        if params.has("symbol"):
            return [self._spec(params)]
        raw = params.text("symbols")
        if raw is None:
            return None
        try:
            names = json.loads(raw)
        except ValueError as error:
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from error
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
        if len(set(names)) != len(names):
            raise BinanceError(-1151, "Symbol is present multiple times in the list.")
        specs = []
        for name in names:
            spec = self._specs.get(name)
            if spec is None:
                raise BinanceError(-1121, "Invalid symbol.")
            specs.append(spec)
        return specs

    def _ping(self, _params: Params) -> Json:
        return {}

    def _time(self, _params: Params) -> Json:
        return {"serverTime": self._clock()}

    def _exchange_info(self, params: Params) -> Json:
        specs = self._symbol_list(params) or list(self._specs.values())
        return {
            "timezone": "UTC",
            "serverTime": self._clock(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.limiter.weight_limit,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": self.limiter.order_limit_10s,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "DAY",
                    "intervalNum": 1,
                    "limit": self.limiter.order_limit_1d,
                },
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(spec) for spec in specs],
        }

    def book_ticker(self, symbol: str) -> Json:
        quote = self._sim.quote(symbol)
        size = self._config.level_quantity_for(symbol)
        bid, bid_qty, ask, ask_qty = quote.bid, size, quote.ask, size
        shown_bids, shown_asks = self._shown(symbol)
        if shown_bids:
            best = max(shown_bids)
            if best > bid:
                bid, bid_qty = best, shown_bids[best]
            elif best == bid:
                bid_qty += shown_bids[best]
        if shown_asks:
            best = min(shown_asks)
            if best < ask:
                ask, ask_qty = best, shown_asks[best]
            elif best == ask:
                ask_qty += shown_asks[best]
        return {
            "symbol": symbol,
            "bidPrice": fmt(bid),
            "bidQty": fmt(bid_qty),
            "askPrice": fmt(ask),
            "askQty": fmt(ask_qty),
        }

    def _shown(self, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        """What the account's resting iceberg orders show in the public book, per price.

        The simulator's book is synthetic and holds no account orders, and it
        has no hidden quantity: an iceberg rests there whole, and this layer
        shows of it only its tip, ``min(icebergQty, leaves)``, refreshed from
        the rest as it fills (the tip is recomputed from the order's leaves).
        Plain resting orders stay out of the public book, as before. An
        iceberg the synthetic book has crossed is being matched (the simulator
        fills a crossed order one level's quantity per step) and is left out
        until the book uncrosses: a public book is never crossed.
        """
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        quote: SimQuote | None = None
        for order_id in self._open_by_client.values():
            order = self._orders[order_id]
            if order.symbol != symbol or not order.iceberg_qty:
                continue
            view = self._view(order)
            if not self._on_book(order, view):
                continue
            quote = quote or self._sim.quote(symbol)
            if order.price >= quote.ask if order.side == "BUY" else order.price <= quote.bid:
                continue
            tip = min(order.iceberg_qty, order.orig_qty - view.filled_quantity)
            levels = bids if order.side == "BUY" else asks
            levels[order.price] = levels.get(order.price, Decimal(0)) + tip
        return bids, asks

    def public_depth(
        self, symbol: str, levels: int
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The public book: the simulator's levels plus the icebergs' tips (``_shown``)."""
        bids, asks = self._sim.depth(symbol, levels)
        shown_bids, shown_asks = self._shown(symbol)
        if not shown_bids and not shown_asks:
            return bids, asks
        merged_bids = dict(bids)
        for price, tip in shown_bids.items():
            merged_bids[price] = merged_bids.get(price, Decimal(0)) + tip
        merged_asks = dict(asks)
        for price, tip in shown_asks.items():
            merged_asks[price] = merged_asks.get(price, Decimal(0)) + tip
        return (
            sorted(merged_bids.items(), reverse=True)[:levels],
            sorted(merged_asks.items())[:levels],
        )

    def _book_tickers(self, params: Params) -> Json | list[Json]:
        specs = self._symbol_list(params)
        if params.has("symbol") and specs:
            return self.book_ticker(specs[0].symbol)
        return [self.book_ticker(spec.symbol) for spec in specs or self._specs.values()]

    def _prices(self, params: Params) -> Json | list[Json]:
        specs = self._symbol_list(params)
        rows = [
            {"symbol": spec.symbol, "price": fmt(self._sim.quote(spec.symbol).last)}
            for spec in specs or self._specs.values()
        ]
        return rows[0] if params.has("symbol") else rows

    def _depth(self, params: Params) -> Json:
        spec = self._spec(params)
        limit = params.integer("limit") or 100
        if not 1 <= limit <= 5000:
            raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
        bids, asks = self.public_depth(spec.symbol, min(limit, self._config.depth_levels))
        return {
            "lastUpdateId": self._update_id,
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    # ------------------------------------------------- public market data

    def _trades(self, params: Params) -> list[Json]:
        spec = self._spec(params)
        return self._tapes[spec.symbol].recent(_limit(params))

    def _historical_trades(self, params: Params) -> list[Json]:
        spec = self._spec(params)
        from_id = params.integer("fromId")
        return self._tapes[spec.symbol].historical(from_id, _limit(params))

    def _agg_trades(self, params: Params) -> list[Json]:
        spec = self._spec(params)
        from_id = params.integer("fromId")
        start, end = params.integer("startTime"), params.integer("endTime")
        return self._tapes[spec.symbol].aggregate(from_id, start, end, _limit(params))

    def _klines(self, params: Params) -> list[list[Any]]:
        spec = self._spec(params)
        interval = params.need("interval")
        if interval not in KLINE_INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        start, end = params.integer("startTime"), params.integer("endTime")
        offset = parse_time_zone(params.text("timeZone"))
        if offset is None:
            raise BinanceError(-1130, "Data sent for parameter 'timeZone' is not valid.")
        limit = _limit(params)
        return self._tapes[spec.symbol].klines(
            interval, now=self._clock(), start=start, end=end, limit=limit, offset=offset
        )

    def _avg_price(self, params: Params) -> Json:
        spec = self._spec(params)
        return self._tapes[spec.symbol].average_price(self._clock())

    def _ticker_24hr(self, params: Params) -> Json | list[Json]:
        kind = params.text("type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise BinanceError(-1139, "Invalid ticker type.")
        specs = self._symbol_list(params)
        now = self._clock()
        rows = [
            self._tapes[spec.symbol].ticker(now, self.book_ticker(spec.symbol), full=kind == "FULL")
            for spec in specs or self._specs.values()
        ]
        return rows[0] if params.has("symbol") else rows

    def _trade_fee(self, params: Params) -> list[Json]:
        """``GET /sapi/v1/asset/tradeFee`` (wallet): the account's rates, one row per symbol."""
        specs = [self._spec(params)] if params.has("symbol") else list(self._specs.values())
        maker = _plain_rate(self._config.maker_commission_bps)
        taker = _plain_rate(self._config.taker_commission_bps)
        return [
            {"symbol": spec.symbol, "makerCommission": maker, "takerCommission": taker}
            for spec in specs
        ]

    def _tape_trade(self, symbol: str, price: Decimal, now: int, previous: Decimal) -> None:
        """A trade between other participants at the simulator's new last price."""
        spec = self._specs[symbol]
        tape = self._tapes[symbol]
        lot = max(spec.min_quantity, spec.lot_size)
        quantity = lot * self._tape_random.randint(1, 1000)
        # Up: a buyer took the offer; down: a seller hit the bid; unchanged: either.
        buyer_maker = self._tape_random.random() < 0.5 if price == previous else price < previous
        trade = tape.append(
            price, quantity, now, is_buyer_maker=buyer_maker, taker=f"x{len(tape.trades) + 1}"
        )
        self._emit_trade(symbol, trade)

    def _tape_fill(self, order: _Order, fill: SimFill) -> None:
        """The account's own fill, as the public tape shows it."""
        tape = self._tapes[order.symbol]
        taker = f"x{len(tape.trades) + 1}" if fill.is_maker else f"o{order.order_id}"
        trade = tape.append(
            fill.price,
            fill.quantity,
            fill.ts_ns // 1_000_000,
            is_buyer_maker=(fill.side is Side.BUY) == fill.is_maker,
            taker=taker,
        )
        self._emit_trade(order.symbol, trade)

    def _wanted_for(self, prefix: str) -> list[str]:
        return sorted(name for name in self._wanted if name.startswith(prefix))

    def _emit_trade(self, symbol: str, trade: PublicTrade) -> None:
        if not self._wanted:
            return
        lower = symbol.lower()
        now = self._clock()
        name = f"{lower}@trade"
        if name in self._wanted:
            self._emit(MarketEvent(name, trade.event(symbol, now)))
        tape = self._tapes[symbol]
        for name in self._wanted_for(f"{lower}@kline_"):
            parsed = _kline_stream(name, len(lower))
            if parsed is None:
                continue
            interval, offset = parsed
            for open_time, payload in tape.kline_events(
                interval, self._kline_sent.get(name), now, offset
            ):
                self._kline_sent[name] = open_time
                self._emit(MarketEvent(name, payload))

    def _emit_depth(self, symbol: str) -> None:
        bids, asks = self.public_depth(symbol, self._config.depth_levels)
        old_bids, old_asks = self._depth_books[symbol]
        first = self._depth_update[symbol] + 1
        self._depth_books[symbol] = (bids, asks)
        self._depth_update[symbol] = self._update_id
        lower = symbol.lower()
        for name in self._wanted_for(f"{lower}@depth"):
            suffix = name[len(lower) + len("@depth") :].removesuffix("@100ms")
            if suffix == "":
                payload: Json = {
                    "e": "depthUpdate",
                    "E": self._clock(),
                    "s": symbol,
                    "U": first,
                    "u": self._update_id,
                    "b": depth_diff(old_bids, bids),
                    "a": depth_diff(old_asks, asks),
                }
            elif suffix in ("5", "10", "20"):
                levels = int(suffix)
                payload = {
                    "lastUpdateId": self._update_id,
                    "bids": [[fmt(p), fmt(q)] for p, q in bids[:levels]],
                    "asks": [[fmt(p), fmt(q)] for p, q in asks[:levels]],
                }
            else:
                continue
            self._emit(MarketEvent(name, payload))

    # ------------------------------------------------------ price driving

    def step(self, count: int = 1, symbol: str | None = None) -> None:
        """Advance prices ``count`` times (one symbol, or all) and match resting orders.

        Each move is also a trade at the new last price on the public tape.
        """
        with self._lock:
            if symbol is not None and symbol not in self._specs:
                raise KeyError(symbol)
            names = [symbol] if symbol is not None else list(self._specs)
            for _ in range(count):
                with self._account_change():
                    before = {name: self._sim.quote(name).last for name in names}
                    events = self._sim.step(symbol)
                    now = self._clock()
                    for name in names:
                        self._tape_trade(name, self._sim.quote(name).last, now, before[name])
                    self._publish(events)
                for name in names:
                    self._publish_book(name)

    def set_price(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            if symbol not in self._specs:
                raise KeyError(symbol)
            with self._account_change():
                before = self._sim.quote(symbol).last
                events = self._sim.set_price(symbol, price)
                self._tape_trade(symbol, self._sim.quote(symbol).last, self._clock(), before)
                self._publish(events)
            self._publish_book(symbol)

    def _publish_book(self, symbol: str) -> None:
        self._update_id += 1
        self._emit_depth(symbol)
        ticker = self.book_ticker(symbol)
        self._emit(
            BookTickerEvent(
                f"{symbol.lower()}@bookTicker",
                {
                    "u": self._update_id,
                    "s": symbol,
                    "b": ticker["bidPrice"],
                    "B": ticker["bidQty"],
                    "a": ticker["askPrice"],
                    "A": ticker["askQty"],
                },
            )
        )

    def deposit(self, asset: str, amount: Decimal) -> None:
        """Credit (or, negative, debit) ``asset``: a ``balanceUpdate`` plus account position."""
        with self._lock:
            snapshot = self._sim.snapshot()
            balances = snapshot["balances"]
            entry = balances.setdefault(asset, {"free": "0", "locked": "0"})
            free = Decimal(entry["free"]) + amount
            if free < 0:
                raise ValueError(f"deposit({asset!r}, {amount}): free balance would go negative")
            entry["free"] = str(free)
            with self._account_change():
                self._sim = MatchingSimulator.restore(
                    self._config, snapshot, clock=lambda: self._clock() * 1_000_000
                )
                now = self._clock()
                self._emit(
                    UserEvent(
                        {"e": "balanceUpdate", "E": now, "a": asset, "d": fmt(amount), "T": now}
                    )
                )

    # --------------------------------------------------------------- orders

    def _new_client_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self._random.choice(alphabet) for _ in range(22))

    def _check_client_id(self, name: str, value: str | None) -> None:
        if value is not None and not _CLIENT_ID.match(value):
            raise BinanceError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '{_CLIENT_ID_RANGE}'.",
            )

    def _place(self, params: Params) -> Json:
        return self._place_order(params, test=False)

    def _test_order(self, params: Params) -> Json:
        self._place_order(params, test=True)
        if params.boolean("computeCommissionRates"):
            maker = _rate(self._config.maker_commission_bps)
            taker = _rate(self._config.taker_commission_bps)
            return {
                "standardCommissionForOrder": {"maker": maker, "taker": taker},
                "specialCommissionForOrder": {"maker": fmt(Decimal(0)), "taker": fmt(Decimal(0))},
                "taxCommissionForOrder": {"maker": fmt(Decimal(0)), "taker": fmt(Decimal(0))},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": fmt(Decimal(0)),
                },
            }
        return {}

    def _place_order(self, params: Params, *, test: bool) -> Json:
        """Validate and (unless ``test``) place one order."""
        spec = self._spec(params)
        side = params.need("side")
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        order_type = params.need("type")
        if order_type not in ORDER_TYPES:
            raise BinanceError(-1116, "Invalid orderType.")
        tif = params.text("timeInForce")
        if tif is not None and tif not in _TIME_IN_FORCE:
            raise BinanceError(-1115, "Invalid timeInForce.")
        if order_type in _NEEDS_TIF and tif is None:
            raise _mandatory("timeInForce")
        if order_type not in _NEEDS_TIF and tif is not None:
            raise BinanceError(-1114, "TimeInForce parameter sent when not required.")
        client_id = params.text("newClientOrderId")
        self._check_client_id("newClientOrderId", client_id)
        resp_type = params.text("newOrderRespType")
        if resp_type is None:
            resp_type = "FULL" if order_type in _RESULT_BY_DEFAULT else "ACK"
        elif resp_type not in ("ACK", "RESULT", "FULL"):
            raise BinanceError(-1130, "Data sent for parameter 'newOrderRespType' is not valid.")
        stp = params.text("selfTradePreventionMode") or _DEFAULT_STP
        if stp not in _STP_MODES:
            raise BinanceError(
                -1130, "Data sent for parameter 'selfTradePreventionMode' is not valid."
            )
        strategy_id = params.integer("strategyId")
        strategy_type = params.integer("strategyType")
        if strategy_type is not None and strategy_type < 1000000:
            raise BinanceError(-1134, "strategyType was less than 1000000.")
        quantity = params.decimal("quantity")
        quote_qty = params.decimal("quoteOrderQty")
        price = params.decimal("price")
        stop_price = params.decimal("stopPrice")
        if params.has("trailingDelta"):
            raise BinanceError(-2010, "Trailing stop orders are not supported for this symbol.")
        iceberg_qty = params.decimal("icebergQty")
        if order_type == "MARKET":
            if quantity is None and quote_qty is None:
                raise _either("quantity", "quoteOrderQty")
            if quantity is not None and quote_qty is not None:
                raise _not_required("quoteOrderQty")
        else:
            if quote_qty is not None:
                raise _not_required("quoteOrderQty")
            if quantity is None:
                raise _mandatory("quantity")
        if order_type in _NEEDS_PRICE:
            if price is None:
                raise _mandatory("price")
        elif price is not None:
            raise _not_required("price")
        if order_type in _NEEDS_STOP:
            if stop_price is None:
                raise _either("stopPrice", "trailingDelta")
        elif stop_price is not None:
            raise _not_required("stopPrice")
        for value in (price, stop_price):
            if value is not None and not _passes_price_filter(value, spec):
                raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        if quote_qty is not None:
            quantity = self._quote_quantity(spec, side, quote_qty)
        assert quantity is not None
        lot_filter = "MARKET_LOT_SIZE" if order_type == "MARKET" else "LOT_SIZE"
        if not _passes_lot_filter(quantity, spec):
            raise BinanceError(-1013, f"Filter failure: {lot_filter}")
        if iceberg_qty is not None and iceberg_qty != 0:
            _check_iceberg(order_type, tif, quantity, iceberg_qty, spec)
        reference = price if price is not None else stop_price
        if reference is None:
            quote = self._sim.quote(spec.symbol)
            reference = quote.ask if side == "BUY" else quote.bid
        with localcontext() as context:
            context.prec = 60
            if quantity * reference < spec.min_notional:
                raise BinanceError(-1013, "Filter failure: NOTIONAL")
        if client_id is not None and client_id in self._open_by_client:
            if not test:
                self._submissions[client_id] += 1
            raise BinanceError(-2010, _MSG_DUPLICATE)
        if test:
            return {}
        client_id = client_id or self._new_client_id()
        self._submissions[client_id] += 1
        self._internal_seq += 1
        internal_id = f"{client_id}#{self._internal_seq}"
        sim_type = _SIM_TYPE[order_type]
        time_in_force = _TIME_IN_FORCE[tif or "GTC"]
        with self._account_change():
            events = self._sim.submit(
                internal_id,
                spec.symbol,
                Side(side),
                sim_type,
                quantity,
                price=price,
                stop_price=stop_price,
                time_in_force=time_in_force,
                post_only=order_type == "LIMIT_MAKER",
            )
            first = events[0] if events else None
            if isinstance(first, SimRejected):
                raise _rejection(first, lot_filter)
            assert isinstance(first, SimAccepted)
            now = self._clock()
            order = _Order(
                order_id=first.venue_order_id,
                internal_id=internal_id,
                client_order_id=client_id,
                symbol=spec.symbol,
                side=side,
                type=order_type,
                time_in_force=tif or "GTC",
                orig_qty=quantity,
                price=price or Decimal(0),
                stop_price=stop_price or Decimal(0),
                orig_quote_qty=quote_qty or Decimal(0),
                stp_mode=stp,
                time=now,
                update_time=now,
                working_time=-1 if order_type in _NEEDS_STOP else now,
                strategy_id=strategy_id,
                strategy_type=strategy_type,
                iceberg_qty=iceberg_qty or Decimal(0),
            )
            self._orders[order.order_id] = order
            self._by_internal[internal_id] = order
            self._open_by_client[client_id] = order.order_id
            self._latest_by_client[client_id] = order.order_id
            fills = self._publish(events)
        view = self._view(order)
        response: Json = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.time,
        }
        if resp_type in ("RESULT", "FULL"):
            response.update(
                {
                    "price": fmt(order.price),
                    "origQty": fmt(order.orig_qty),
                    "executedQty": fmt(view.filled_quantity),
                    "origQuoteOrderQty": fmt(order.orig_quote_qty),
                    "cummulativeQuoteQty": fmt(view.filled_notional),
                    "status": view.status.value,
                    "timeInForce": order.time_in_force,
                    "type": order.type,
                    "side": order.side,
                }
            )
            if order.stop_price:
                response["stopPrice"] = fmt(order.stop_price)
            response["workingTime"] = order.working_time
            if order.strategy_id is not None:
                response["strategyId"] = order.strategy_id
            if order.strategy_type is not None:
                response["strategyType"] = order.strategy_type
            if resp_type == "FULL":
                response["fills"] = [
                    {
                        "price": fmt(fill.price),
                        "qty": fmt(fill.quantity),
                        "commission": fmt(fill.commission),
                        "commissionAsset": fill.commission_asset,
                        "tradeId": fill.trade_id,
                    }
                    for fill in fills
                    if fill.venue_order_id == order.order_id
                ]
            response["selfTradePreventionMode"] = order.stp_mode
        return response

    def _quote_quantity(self, spec: InstrumentSpec, side: str, quote_qty: Decimal) -> Decimal:
        """The base quantity a quote-quantity market order sweeps: as much as ``quote_qty`` buys."""
        bids, asks = self._sim.depth(spec.symbol, self._config.depth_levels)
        levels = asks if side == "BUY" else bids
        remaining = quote_qty
        quantity = Decimal(0)
        with localcontext() as context:
            context.prec = 60
            for price, size in levels:
                take = min(size, (remaining / price).quantize(spec.lot_size, rounding=ROUND_DOWN))
                if take <= 0:
                    break
                quantity += take
                remaining -= take * price
                if take < size:
                    break
        if quantity < max(spec.min_quantity, spec.lot_size):
            raise BinanceError(
                -2010,
                "Order book liquidity is less than `MARKET_LOT_SIZE` filter minimum quantity.",
            )
        return quantity

    def _view(self, order: _Order) -> SimOrder:
        view = self._sim.order(order.internal_id)
        assert view is not None
        return view

    def _publish(self, events: Sequence[SimEvent]) -> list[SimFill]:
        """Turn simulator events into execution reports; returns the fills among them."""
        fills: list[SimFill] = []
        for event in events:
            order = self._by_internal.get(event.client_order_id)
            if order is None:
                continue
            if order.iceberg_qty:
                self._books_changed.add(order.symbol)
            now = self._clock()
            if isinstance(event, SimFill):
                fills.append(event)
                self._tape_fill(order, event)
                order.update_time = now
                if order.working_time == -1:
                    order.working_time = now
                self._report(order, "TRADE", fill=event)
            elif isinstance(event, SimAccepted):
                self._report(order, "NEW")
            elif isinstance(event, SimExpired):
                order.update_time = now
                self._report(order, "EXPIRED")
            elif isinstance(event, SimCanceled):
                order.update_time = now
                self._report(order, "CANCELED", cancel_id=self._pending_cancel_id)
            if not self._view(order).is_open:
                if self._open_by_client.get(order.client_order_id) == order.order_id:
                    del self._open_by_client[order.client_order_id]
            elif order.working_time == -1 and self._view(order).triggered:
                order.working_time = now
        return fills

    def _rests(self, order: _Order, triggered: bool) -> bool:
        """Whether the order, while open, waits on the book at its own price."""
        if order.time_in_force != "GTC":
            return False
        if order.type in ("LIMIT", "LIMIT_MAKER"):
            return True
        return order.type in ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and triggered

    def _on_book(self, order: _Order, view: SimOrder) -> bool:
        return view.is_open and self._rests(order, view.triggered)

    def _report(
        self,
        order: _Order,
        execution: str,
        *,
        fill: SimFill | None = None,
        cancel_id: str | None = None,
    ) -> None:
        view = self._view(order)
        now = self._clock()
        self._execution_id += 1
        zero = Decimal(0)
        if execution == "NEW":
            status, cumulative, cumulative_quote = "NEW", zero, zero
            on_book = self._rests(order, triggered=False)
        elif fill is not None:
            status = fill.order_status.value
            cumulative = fill.cumulative_quantity
            cumulative_quote = self._cumulative_quote(order, fill)
            on_book = fill.leaves_quantity > 0 and self._rests(order, view.triggered)
        else:
            status = view.status.value
            cumulative, cumulative_quote = view.filled_quantity, view.filled_notional
            on_book = False
        report: Json = {
            "e": "executionReport",
            "E": now,
            "s": order.symbol,
            "c": cancel_id if cancel_id is not None else order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": fmt(order.orig_qty),
            "p": fmt(order.price),
            "P": fmt(order.stop_price),
            "F": fmt(order.iceberg_qty),
            "g": -1,
            "C": order.client_order_id if cancel_id is not None else "",
            "x": execution,
            "X": status,
            "r": "NONE",
            "i": order.order_id,
            "l": fmt(fill.quantity if fill else zero),
            "z": fmt(cumulative),
            "L": fmt(fill.price if fill else zero),
            "n": fmt(fill.commission) if fill else "0",
            "N": fill.commission_asset if fill else None,
            "T": now,
            "t": fill.trade_id if fill else -1,
            "I": self._execution_id,
            "w": on_book,
            "m": fill.is_maker if fill else False,
            "M": False,
            "O": order.time,
            "Z": fmt(cumulative_quote),
            "Y": fmt(fill.price * fill.quantity if fill else zero),
            "Q": fmt(order.orig_quote_qty),
        }
        if order.working_time != -1:
            report["W"] = order.working_time
        if order.strategy_id is not None:
            report["j"] = order.strategy_id
        if order.strategy_type is not None:
            report["J"] = order.strategy_type
        report["V"] = order.stp_mode
        self._emit(UserEvent(report))

    def _cumulative_quote(self, order: _Order, fill: SimFill) -> Decimal:
        total = Decimal(0)
        for past in self._sim.fills(order.symbol):
            if past.venue_order_id == order.order_id and past.trade_id <= fill.trade_id:
                total += past.price * past.quantity
        return total

    # -------------------------------------------------------------- cancel

    def _find(
        self, params: Params, *, id_name: str, client_name: str, missing: BinanceError
    ) -> _Order:
        spec = self._spec(params)
        order_id = params.integer(id_name)
        client_id = params.text(client_name)
        if order_id is None and client_id is None:
            raise _either(client_name, id_name)
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.symbol != spec.symbol:
                raise missing
            if client_id is not None and client_id != order.client_order_id:
                raise BinanceError(-2039, "Order was not found with the clientOrderId provided.")
            return order
        assert client_id is not None
        found = self._open_by_client.get(client_id, self._latest_by_client.get(client_id))
        order = None if found is None else self._orders.get(found)
        if order is None or order.symbol != spec.symbol:
            raise missing
        return order

    def _cancel(self, params: Params) -> Json:
        return self._cancel_order(
            params,
            id_name="orderId",
            client_name="origClientOrderId",
            new_id_name="newClientOrderId",
        )

    def _cancel_order(
        self, params: Params, *, id_name: str, client_name: str, new_id_name: str
    ) -> Json:
        unknown = BinanceError(-2011, _MSG_UNKNOWN_ORDER)
        order = self._find(params, id_name=id_name, client_name=client_name, missing=unknown)
        new_id = params.text(new_id_name)
        self._check_client_id(new_id_name, new_id)
        restriction = params.text("cancelRestrictions")
        view = self._view(order)
        if not view.is_open:
            raise unknown
        if restriction is not None:
            if restriction not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
                raise BinanceError(
                    -1145,
                    "`cancelRestrictions` has to be either `ONLY_NEW` or `ONLY_PARTIALLY_FILLED`.",
                )
            if view.status.value != restriction.removeprefix("ONLY_"):
                raise BinanceError(-2011, "Order was not canceled due to cancel restrictions.")
        return self.cancel_open(order, new_id or self._new_client_id())

    def cancel_open(self, order: _Order, cancel_id: str) -> Json:
        with self._account_change():
            self._pending_cancel_id = cancel_id
            try:
                events = self._sim.cancel(order.internal_id)
                if events and isinstance(events[0], SimRejected):
                    raise BinanceError(-2011, _MSG_UNKNOWN_ORDER)
                self._publish(events)
            finally:
                self._pending_cancel_id = None
        view = self._view(order)
        return {
            "symbol": order.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_id,
            "transactTime": order.update_time,
            "price": fmt(order.price),
            "origQty": fmt(order.orig_qty),
            "executedQty": fmt(view.filled_quantity),
            "origQuoteOrderQty": fmt(order.orig_quote_qty),
            "cummulativeQuoteQty": fmt(view.filled_notional),
            "status": view.status.value,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            **({"stopPrice": fmt(order.stop_price)} if order.stop_price else {}),
            "selfTradePreventionMode": order.stp_mode,
        }

    def _cancel_all(self, params: Params) -> list[Json]:
        spec = self._spec(params)
        orders = [
            self._orders[order_id]
            for order_id in sorted(self._open_by_client.values())
            if self._orders[order_id].symbol == spec.symbol
        ]
        if not orders:
            raise BinanceError(-2011, _MSG_UNKNOWN_ORDER)
        return [self.cancel_open(order, self._new_client_id()) for order in orders]

    def _cancel_replace(self, params: Params) -> Json:
        self._spec(params)
        mode = params.need("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise BinanceError(-1130, "Data sent for parameter 'cancelReplaceMode' is not valid.")
        try:
            self._place_order(params, test=True)
        except BinanceError as error:
            if error.code in _SYNTAX_ERRORS:
                raise
        cancel_result: Json
        try:
            cancel_result = self._cancel_order(
                params,
                id_name="cancelOrderId",
                client_name="cancelOrigClientOrderId",
                new_id_name="cancelNewClientOrderId",
            )
            cancel_ok = True
        except BinanceError as error:
            if error.code in _SYNTAX_ERRORS:
                raise
            cancel_result = error.body()
            cancel_ok = False
        if not cancel_ok and mode == "STOP_ON_FAILURE":
            raise BinanceError(
                -2022,
                "Order cancel-replace failed.",
                400,
                data={
                    "cancelResult": "FAILURE",
                    "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": cancel_result,
                    "newOrderResponse": None,
                },
            )
        try:
            new_result = self._place_order(params, test=False)
            new_ok = True
        except BinanceError as error:
            new_result = error.body()
            new_ok = False
        data = {
            "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
            "newOrderResult": "SUCCESS" if new_ok else "FAILURE",
            "cancelResponse": cancel_result,
            "newOrderResponse": new_result,
        }
        if cancel_ok and new_ok:
            return data
        if cancel_ok or new_ok:
            raise BinanceError(-2021, "Order cancel-replace partially failed.", 409, data=data)
        raise BinanceError(-2022, "Order cancel-replace failed.", 400, data=data)

    # ------------------------------------------------------------- queries

    def _order_row(self, order: _Order) -> Json:
        view = self._view(order)
        row: Json = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": fmt(order.price),
            "origQty": fmt(order.orig_qty),
            "executedQty": fmt(view.filled_quantity),
            "cummulativeQuoteQty": fmt(view.filled_notional),
            "status": view.status.value,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "stopPrice": fmt(order.stop_price),
            "icebergQty": fmt(order.iceberg_qty),
            "time": order.time,
            "updateTime": order.update_time,
            "isWorking": self._on_book(order, view) or order.working_time != -1,
            "workingTime": order.working_time,
            "origQuoteOrderQty": fmt(order.orig_quote_qty),
            "selfTradePreventionMode": order.stp_mode,
        }
        if order.strategy_id is not None:
            row["strategyId"] = order.strategy_id
        if order.strategy_type is not None:
            row["strategyType"] = order.strategy_type
        return row

    def _query(self, params: Params) -> Json:
        missing = BinanceError(-2013, "Order does not exist.")
        order = self._find(
            params, id_name="orderId", client_name="origClientOrderId", missing=missing
        )
        return self._order_row(order)

    def _open_orders(self, params: Params) -> list[Json]:
        symbol = self._spec(params).symbol if params.has("symbol") else None
        return [
            self._order_row(self._orders[order_id])
            for order_id in sorted(self._open_by_client.values())
            if symbol is None or self._orders[order_id].symbol == symbol
        ]

    def _all_orders(self, params: Params) -> list[Json]:
        spec = self._spec(params)
        from_id = params.integer("orderId")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = _limit(params)
        _check_span(start, end)
        rows = [
            order
            for order_id, order in sorted(self._orders.items())
            if order.symbol == spec.symbol
            and (from_id is None or order_id >= from_id)
            and (start is None or order.time >= start)
            and (end is None or order.time <= end)
        ]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return [self._order_row(order) for order in rows]

    def _account(self, params: Params) -> Json:
        omit = params.boolean("omitZeroBalances")
        balances = [
            {"asset": asset, "free": fmt(balance.free), "locked": fmt(balance.locked)}
            for asset, balance in sorted(self._sim.balances().items())
            if not (omit and balance.free == 0 and balance.locked == 0)
        ]
        maker = self._config.maker_commission_bps
        taker = self._config.taker_commission_bps
        return {
            "makerCommission": int(maker),
            "takerCommission": int(taker),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": _rate(maker),
                "taker": _rate(taker),
                "buyer": fmt(Decimal(0)),
                "seller": fmt(Decimal(0)),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._account_update_time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _my_trades(self, params: Params) -> list[Json]:
        spec = self._spec(params)
        order_id = params.integer("orderId")
        from_id = params.integer("fromId")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = _limit(params)
        if from_id is not None and (start is not None or end is not None):
            raise BinanceError(-1128, "Combination of optional parameters invalid.")
        _check_span(start, end)
        fills = [
            fill
            for fill in self._sim.fills(spec.symbol)
            if (order_id is None or fill.venue_order_id == order_id)
            and (from_id is None or fill.trade_id >= from_id)
            and (start is None or fill.ts_ns // 1_000_000 >= start)
            and (end is None or fill.ts_ns // 1_000_000 <= end)
        ]
        fills = fills[:limit] if from_id is not None or start is not None else fills[-limit:]
        return [self._trade_row(fill) for fill in fills]

    def _trade_row(self, fill: SimFill) -> Json:
        return {
            "symbol": fill.symbol,
            "id": fill.trade_id,
            "orderId": fill.venue_order_id,
            "orderListId": -1,
            "price": fmt(fill.price),
            "qty": fmt(fill.quantity),
            "quoteQty": fmt(fill.price * fill.quantity),
            "commission": fmt(fill.commission),
            "commissionAsset": fill.commission_asset,
            "time": fill.ts_ns // 1_000_000,
            "isBuyer": fill.side is Side.BUY,
            "isMaker": fill.is_maker,
            "isBestMatch": True,
        }

    def _rate_limit_orders(self, _params: Params) -> list[Json]:
        return self.limiter.order_rate_limits()

    # ------------------------------------------------------ listen keys

    def _listen_key_create(self, _params: Params) -> Json:
        now = self._clock()
        if self._listen_key is None or self._listen_key.expires_at <= now:
            alphabet = string.ascii_letters + string.digits
            key = "".join(self._random.choice(alphabet) for _ in range(64))
            self._listen_key = _ListenKey(key, now + _LISTEN_KEY_TTL_MS)
        else:
            self._listen_key.expires_at = now + _LISTEN_KEY_TTL_MS
        return {"listenKey": self._listen_key.key}

    def _live_listen_key(self, params: Params) -> _ListenKey:
        key = params.need("listenKey")
        current = self._listen_key
        if current is None or current.key != key or current.expires_at <= self._clock():
            raise BinanceError(-1125, "This listenKey does not exist.")
        return current

    def _listen_key_keepalive(self, params: Params) -> Json:
        self._live_listen_key(params).expires_at = self._clock() + _LISTEN_KEY_TTL_MS
        return {}

    def _listen_key_close(self, params: Params) -> Json:
        self._live_listen_key(params)
        self._listen_key = None
        return {}

    def listen_key_active(self, key: str) -> bool:
        with self._lock:
            current = self._listen_key
            return current is not None and current.key == key and current.expires_at > self._clock()

    def expire_listen_key(self) -> str | None:
        """Forget the active listen key (as 60 minutes without keepalive would); returns it."""
        with self._lock:
            current, self._listen_key = self._listen_key, None
            return None if current is None else current.key

    # ------------------------------------------------------- limit knobs

    def force_429(self, count: int, retry_after: int) -> None:
        with self._lock:
            self.limiter.force_429(count, retry_after)

    def ban(self, seconds: int) -> None:
        with self._lock:
            self.limiter.ban(seconds)

    def clear_limits(self) -> None:
        with self._lock:
            self.limiter.clear()

    # --------------------------------------------------------- inspection

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        with self._lock:
            return {a: (b.free, b.locked) for a, b in self._sim.balances().items()}

    def orders(self) -> list[OrderInfo]:
        with self._lock:
            result = []
            for order_id, order in sorted(self._orders.items()):
                view = self._view(order)
                result.append(
                    OrderInfo(
                        order_id=order_id,
                        client_order_id=order.client_order_id,
                        symbol=order.symbol,
                        side=order.side,
                        type=order.type,
                        time_in_force=order.time_in_force,
                        status=view.status.value,
                        price=order.price,
                        stop_price=order.stop_price,
                        orig_qty=order.orig_qty,
                        executed_qty=view.filled_quantity,
                        cummulative_quote_qty=view.filled_notional,
                        time=order.time,
                        update_time=order.update_time,
                        iceberg_qty=order.iceberg_qty,
                    )
                )
            return result

    def submissions(self) -> dict[str, int]:
        """How many placement requests named each clientOrderId (rejected ones included)."""
        with self._lock:
            return dict(self._submissions)

    def calls(self) -> dict[str, int]:
        """Requests per endpoint: ``"GET order"`` (REST) or ``"order.status"`` (WS API)."""
        with self._lock:
            return dict(self._calls)

    def trades(self) -> list[TradeInfo]:
        with self._lock:
            return [
                TradeInfo(
                    trade_id=fill.trade_id,
                    order_id=fill.venue_order_id,
                    client_order_id=self._orders[fill.venue_order_id].client_order_id,
                    symbol=fill.symbol,
                    side=fill.side.value,
                    price=fill.price,
                    qty=fill.quantity,
                    commission=fill.commission,
                    commission_asset=fill.commission_asset,
                    is_maker=fill.is_maker,
                    time=fill.ts_ns // 1_000_000,
                )
                for fill in self._sim.fills()
            ]

    def last_price(self, symbol: str) -> Decimal:
        with self._lock:
            return self._sim.quote(symbol).last


# ---------------------------------------------------------------- helpers


def _rate(bps: Decimal) -> str:
    return fmt(bps / Decimal(10000))


def _plain_rate(bps: Decimal) -> str:
    """A commission rate as the wallet endpoints write it: ``"0.001"``, not 8 decimals."""
    rate = (bps / Decimal(10000)).normalize()
    return format(rate, "f")


def _kline_stream(name: str, symbol_length: int) -> tuple[str, int] | None:
    """``<symbol>@kline_<interval>`` (optionally ``@+08:00``) as (interval, zone offset ms)."""
    rest = name[symbol_length + len("@kline_") :]
    interval, _, zone = rest.partition("@")
    if interval not in KLINE_INTERVALS:
        return None
    offset = parse_time_zone(zone) if zone else 0
    return None if offset is None else (interval, offset)


def _ticker_weight(params: Params) -> int:
    """24 h ticker weight: 2 for one symbol, 2/40/80 for 1-20/21-100/more ``symbols``, else 80."""
    if params.has("symbol"):
        return 2
    raw = params.text("symbols")
    if raw is None:
        return 80
    try:
        count = len(json.loads(raw))
    except (ValueError, TypeError):
        return 2
    return 2 if count <= 20 else 40 if count <= 100 else 80


def _limit(params: Params) -> int:
    limit = params.integer("limit")
    if limit is None:
        return 500
    if not 1 <= limit <= 1000:
        raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
    return limit


def _check_span(start: int | None, end: int | None) -> None:
    if start is not None and end is not None:
        if end < start:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
        if end - start > _DAY_MS:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")


def _passes_price_filter(value: Decimal, spec: InstrumentSpec) -> bool:
    with localcontext() as context:
        context.prec = 60
        try:
            return spec.tick_size <= value <= _MAX_PRICE and value % spec.tick_size == 0
        except InvalidOperation:
            return False


def _passes_lot_filter(value: Decimal, spec: InstrumentSpec) -> bool:
    minimum = max(spec.min_quantity, spec.lot_size)
    with localcontext() as context:
        context.prec = 60
        try:
            return minimum <= value <= _MAX_QTY and value % spec.lot_size == 0
        except InvalidOperation:
            return False


def _rejection(rejected: SimRejected, lot_filter: str) -> BinanceError:
    code = rejected.code
    if code in (SimRejectCode.LOT_SIZE, SimRejectCode.MIN_QUANTITY, SimRejectCode.INVALID_QUANTITY):
        return BinanceError(-1013, f"Filter failure: {lot_filter}")
    if code in (SimRejectCode.TICK_SIZE, SimRejectCode.INVALID_PRICE):
        return BinanceError(-1013, "Filter failure: PRICE_FILTER")
    if code is SimRejectCode.MIN_NOTIONAL:
        return BinanceError(-1013, "Filter failure: NOTIONAL")
    if code is SimRejectCode.UNKNOWN_SYMBOL:
        return BinanceError(-1121, "Invalid symbol.")
    messages = {
        SimRejectCode.INSUFFICIENT_BALANCE: _MSG_INSUFFICIENT,
        SimRejectCode.WOULD_TAKE: _MSG_WOULD_TAKE,
        SimRejectCode.STOP_WOULD_TRIGGER: _MSG_WOULD_TRIGGER,
        SimRejectCode.DUPLICATE_CLIENT_ORDER_ID: _MSG_DUPLICATE,
    }
    return BinanceError(-2010, messages.get(code, "Unsupported order combination"))


def _check_iceberg(
    order_type: str, tif: str | None, quantity: Decimal, iceberg_qty: Decimal, spec: InstrumentSpec
) -> None:
    """Binance's rules for ``icebergQty``: a priced order, GTC, below the quantity,
    in whole lots, in at most ``ICEBERG_PARTS`` parts."""
    if order_type not in _NEEDS_PRICE:
        raise _not_required("icebergQty")
    if tif not in (None, "GTC"):
        raise BinanceError(-2010, "Iceberg orders require timeInForce GTC.")
    if iceberg_qty < 0 or iceberg_qty >= quantity:
        raise BinanceError(-2010, "IcebergQty exceeds QTY.")
    if not _passes_lot_filter(iceberg_qty, spec):
        raise BinanceError(-1013, "Filter failure: LOT_SIZE")
    if -(-quantity // iceberg_qty) > ICEBERG_PARTS:
        raise BinanceError(-1013, "Filter failure: ICEBERG_PARTS")


def _symbol_info(spec: InstrumentSpec) -> Json:
    minimum = max(spec.min_quantity, spec.lot_size)
    lot = {"minQty": fmt(minimum), "maxQty": fmt(_MAX_QTY), "stepSize": fmt(spec.lot_size)}
    return {
        "symbol": spec.symbol,
        "status": "TRADING",
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": PRECISION,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": PRECISION,
        "quoteAssetPrecision": PRECISION,
        "baseCommissionPrecision": PRECISION,
        "quoteCommissionPrecision": PRECISION,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(spec.tick_size),
                "maxPrice": fmt(_MAX_PRICE),
                "tickSize": fmt(spec.tick_size),
            },
            {"filterType": "LOT_SIZE", **lot},
            {"filterType": "ICEBERG_PARTS", "limit": ICEBERG_PARTS},
            {"filterType": "MARKET_LOT_SIZE", **lot},
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(spec.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt(Decimal(9000000)),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": _DEFAULT_STP,
        "allowedSelfTradePreventionModes": list(_STP_MODES),
    }


def _depth_weight(params: Params) -> int:
    raw = params.values.get("limit", "100")
    limit = int(raw) if raw.isdigit() else 100
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _symbol_weight(single: int, many: int) -> Callable[[Params], int]:
    return lambda params: single if params.has("symbol") else many


def _rest_endpoints() -> dict[tuple[str, str], _Endpoint]:
    E = BinanceExchange
    return {
        ("GET", "ping"): _Endpoint(E._ping, "NONE", _flat(1)),
        ("GET", "time"): _Endpoint(E._time, "NONE", _flat(1)),
        ("GET", "exchangeInfo"): _Endpoint(E._exchange_info, "NONE", _flat(20)),
        ("GET", "depth"): _Endpoint(E._depth, "NONE", _depth_weight),
        ("GET", "ticker/bookTicker"): _Endpoint(E._book_tickers, "NONE", _symbol_weight(2, 4)),
        ("GET", "ticker/price"): _Endpoint(E._prices, "NONE", _symbol_weight(2, 4)),
        ("GET", "ticker/24hr"): _Endpoint(E._ticker_24hr, "NONE", _ticker_weight),
        ("GET", "trades"): _Endpoint(E._trades, "NONE", _flat(25)),
        ("GET", "historicalTrades"): _Endpoint(E._historical_trades, "NONE", _flat(25)),
        ("GET", "aggTrades"): _Endpoint(E._agg_trades, "NONE", _flat(4)),
        ("GET", "klines"): _Endpoint(E._klines, "NONE", _flat(2)),
        ("GET", "uiKlines"): _Endpoint(E._klines, "NONE", _flat(2)),
        ("GET", "avgPrice"): _Endpoint(E._avg_price, "NONE", _flat(2)),
        ("GET", "sapi/v1/asset/tradeFee"): _Endpoint(
            E._trade_fee, "USER_DATA", _flat(1), weight_header="X-SAPI-USED-IP-WEIGHT-1M"
        ),
        ("POST", "order"): _Endpoint(E._place, "TRADE", _flat(1), places_order=True),
        ("POST", "order/test"): _Endpoint(E._test_order, "TRADE", _flat(1)),
        ("DELETE", "order"): _Endpoint(E._cancel, "TRADE", _flat(1)),
        ("GET", "order"): _Endpoint(E._query, "USER_DATA", _flat(4)),
        ("POST", "order/cancelReplace"): _Endpoint(
            E._cancel_replace, "TRADE", _flat(1), places_order=True
        ),
        ("GET", "openOrders"): _Endpoint(E._open_orders, "USER_DATA", _symbol_weight(6, 80)),
        ("DELETE", "openOrders"): _Endpoint(E._cancel_all, "TRADE", _flat(1)),
        ("GET", "allOrders"): _Endpoint(E._all_orders, "USER_DATA", _flat(20)),
        ("GET", "account"): _Endpoint(E._account, "USER_DATA", _flat(20)),
        ("GET", "myTrades"): _Endpoint(
            E._my_trades, "USER_DATA", lambda p: 5 if p.has("orderId") else 20
        ),
        ("GET", "rateLimit/order"): _Endpoint(E._rate_limit_orders, "USER_DATA", _flat(40)),
        ("POST", "userDataStream"): _Endpoint(E._listen_key_create, "USER_STREAM", _flat(2)),
        ("PUT", "userDataStream"): _Endpoint(E._listen_key_keepalive, "USER_STREAM", _flat(2)),
        ("DELETE", "userDataStream"): _Endpoint(E._listen_key_close, "USER_STREAM", _flat(2)),
    }


def _ws_methods() -> dict[str, _Endpoint]:
    E = BinanceExchange
    return {
        "ping": _Endpoint(E._ping, "NONE", _flat(1)),
        "time": _Endpoint(E._time, "NONE", _flat(1)),
        "exchangeInfo": _Endpoint(E._exchange_info, "NONE", _flat(20)),
        "depth": _Endpoint(E._depth, "NONE", _depth_weight),
        "ticker.book": _Endpoint(E._book_tickers, "NONE", _symbol_weight(2, 4)),
        "ticker.price": _Endpoint(E._prices, "NONE", _symbol_weight(2, 4)),
        "ticker.24hr": _Endpoint(E._ticker_24hr, "NONE", _ticker_weight),
        "trades.recent": _Endpoint(E._trades, "NONE", _flat(25)),
        "trades.historical": _Endpoint(E._historical_trades, "NONE", _flat(25)),
        "trades.aggregate": _Endpoint(E._agg_trades, "NONE", _flat(4)),
        "klines": _Endpoint(E._klines, "NONE", _flat(2)),
        "uiKlines": _Endpoint(E._klines, "NONE", _flat(2)),
        "avgPrice": _Endpoint(E._avg_price, "NONE", _flat(2)),
        "order.place": _Endpoint(E._place, "TRADE", _flat(1), places_order=True),
        "order.test": _Endpoint(E._test_order, "TRADE", _flat(1)),
        "order.status": _Endpoint(E._query, "USER_DATA", _flat(4)),
        "order.cancel": _Endpoint(E._cancel, "TRADE", _flat(1)),
        "order.cancelReplace": _Endpoint(E._cancel_replace, "TRADE", _flat(1), places_order=True),
        "openOrders.status": _Endpoint(E._open_orders, "USER_DATA", _symbol_weight(6, 80)),
        "openOrders.cancelAll": _Endpoint(E._cancel_all, "TRADE", _flat(1)),
        "allOrders": _Endpoint(E._all_orders, "USER_DATA", _flat(20)),
        "account.status": _Endpoint(E._account, "USER_DATA", _flat(20)),
        "account.rateLimits.orders": _Endpoint(E._rate_limit_orders, "USER_DATA", _flat(40)),
        "myTrades": _Endpoint(E._my_trades, "USER_DATA", lambda p: 5 if p.has("orderId") else 20),
        # The connection-level methods: the exchange weighs and authenticates them,
        # the app keeps the subscriptions (they belong to the connection).
        "userDataStream.subscribe.signature": _Endpoint(E._ping, "USER_DATA", _flat(2)),
        "userDataStream.subscribe": _Endpoint(E._ping, "SESSION", _flat(2)),
        "userDataStream.unsubscribe": _Endpoint(E._ping, "NONE", _flat(2)),
        "session.subscriptions": _Endpoint(E._ping, "NONE", _flat(2)),
        "session.logon": _Endpoint(E._ping, "LOGON", _flat(2)),
        "session.status": _Endpoint(E._ping, "NONE", _flat(2)),
        "session.logout": _Endpoint(E._ping, "NONE", _flat(2)),
    }
