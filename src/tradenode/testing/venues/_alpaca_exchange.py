"""Alpaca's Trading API v2 rules over the matching simulator: pure, no I/O, thread-safe.

:class:`AlpacaExchange` takes REST requests as Alpaca receives them (method,
raw path, query string, body, headers), checks them the way Alpaca does (the
``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers, order fields, the
sub-penny rule, fractional rules, unique ``client_order_id``) and answers
with Alpaca's shapes: decimal strings, UUID ids, ``{"code", "message"}``
errors with the HTTP statuses Alpaca uses (401, 403, 404, 422, 207 for the
multi-status deletes, 204 for a cancel). Orders go to a
:class:`~tradenode.sim.MatchingSimulator`; what it reports becomes
``trade_updates`` rows (:class:`TradePush`: ``new``, ``fill``/``partial_fill``
with a UUID ``execution_id`` and this execution's ``qty``/``price`` and
``position_qty``, ``canceled``, ``expired``, ``pending_replace``,
``replaced``, ``rejected``) and every price move becomes market-data rows
(:class:`MarketPush`: quotes ``q`` and trades ``t``; bars ``b`` on request),
handed, under the exchange's lock and so in order, to the listeners of
:meth:`AlpacaExchange.add_listener`.

A simulated market clock (:class:`~._alpaca_hours.MarketHours`) decides the
session: an order that may not trade now (outside the regular session, and
outside the extended sessions for an ``extended_hours`` DAY limit order) is
accepted and queued, status ``accepted``, and reaches the book when its
session opens; DAY orders still open when their session ends expire.

Simplifications, all on the safe side for a client: one cash-like account
in USD whose buying power is its free cash (no margin multiplier, no PDT);
shorting is allowed for shortable assets; no commissions (Alpaca charges
none on equities); only ``simple`` orders (no bracket/OCO/OTO, no options or
crypto); ``opg``/``cls`` orders wait for the next open / the close and then
execute as IOC (there is no auction); a buy stop is not converted to a
stop-limit; ``trail_percent`` is turned into a price offset at submission;
IOC/FOK remainders and a market order's unfillable rest end ``canceled``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, unquote

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
    SimRejectCode,
    SimRejected,
)
from tradenode.testing.venues._alpaca_hours import NEW_YORK, MarketHours, Session, iso_ns, ny_iso

__all__ = [
    "DEFAULT_ALPACA_API_KEY",
    "DEFAULT_ALPACA_SECRET",
    "AlpacaError",
    "AlpacaEvent",
    "AlpacaExchange",
    "AlpacaFillInfo",
    "AlpacaOrderInfo",
    "MarketPush",
    "Reply",
    "TradePush",
    "alpaca_sim_config",
    "default_alpaca_instruments",
]

DEFAULT_ALPACA_API_KEY = "PKTRADENODEFAKEALPACA"
DEFAULT_ALPACA_SECRET = "tradenode-fake-alpaca-secret"
DEFAULT_ACCOUNT_ID = "1d9eed04-be39-4e01-9b84-a48ac5bbafcf"

Json: TypeAlias = dict[str, Any]

RATE_LIMIT_PER_MINUTE = 200
"""Alpaca's Trading API limit per account (``X-Ratelimit-Limit: 200``)."""
_MAX_CLIENT_ID = 128
_AVG_STEP = Decimal("1e-9")
"""Averages (``filled_avg_price``, ``avg_entry_price``) are written to 9 decimals."""
_MAX_DECIMALS = 9
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
_TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
_SIM_TYPES = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stop_limit": OrderType.STOP_LIMIT,
    "trailing_stop": OrderType.TRAILING_STOP,
}
_SIM_TIF = {
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
    "opg": TimeInForce.IOC,
    "cls": TimeInForce.IOC,
}
"""How each time in force reaches the simulator (day orders expire by the market clock,
opg/cls ones execute once, at the open or the close, what they can and no more)."""
_AUCTION_WINDOWS = {
    "opg": (
        time(9, 28),
        time(19, 0),
        "opg orders must be submitted after 7:00pm and before 9:28am",
    ),
    "cls": (
        time(15, 50),
        time(19, 0),
        "cls orders must be submitted after 7:00pm and before 3:50pm",
    ),
}
"""When Alpaca refuses opg/cls orders (New York time); the opg text as observed (Lean#8374)."""
_TERMINAL = frozenset({"filled", "canceled", "expired", "replaced", "rejected"})
_OPEN_STATUSES = frozenset(
    {"new", "partially_filled", "accepted", "pending_new", "pending_cancel", "pending_replace"}
)
_EXCHANGES = {"AAPL": "NASDAQ", "MSFT": "NASDAQ", "SPY": "ARCA", "SIRI": "NASDAQ"}
_NAMES = {
    "AAPL": "Apple Inc. Common Stock",
    "MSFT": "Microsoft Corporation Common Stock",
    "SPY": "SPDR S&P 500 ETF Trust",
    "SIRI": "Sirius XM Holdings Inc. Common Stock",
}

# Alpaca's error codes (first three digits usually echo the HTTP status).
CODE_UNAUTHORIZED = 40110000
CODE_FORBIDDEN = 40310000
CODE_NOT_FOUND = 40410000
CODE_INVALID = 40010001
CODE_UNPROCESSABLE = 42210000
CODE_RATE_LIMITED = 42910000
CODE_INTERNAL = 50010000


# ------------------------------------------------------------------ values


class AlpacaError(Exception):
    """A refused request: HTTP ``status`` with ``{"code", "message", **extra}``."""

    def __init__(self, status: int, code: int, message: str, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> Json:
        return {"code": self.code, "message": self.message, **self.extra}


def _invalid(message: str) -> AlpacaError:
    return AlpacaError(422, CODE_INVALID, message)


def _unprocessable(message: str) -> AlpacaError:
    return AlpacaError(422, CODE_UNPROCESSABLE, message)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: ``body`` None is an empty body (204)."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TradePush:
    """One ``trade_updates`` message's ``data``: ``{"event", "timestamp", "order", ...}``."""

    row: Json


@dataclass(frozen=True, slots=True)
class MarketPush:
    """One market-data message (``{"T": "q"|"t"|"b", "S": symbol, ...}``); ``t`` in epoch ns."""

    channel: str
    """``quotes``, ``trades`` or ``bars``: the subscription that receives it."""
    symbol: str
    row: Json


AlpacaEvent: TypeAlias = TradePush | MarketPush


@dataclass(frozen=True, slots=True)
class AlpacaOrderInfo:
    """What the venue knows of one order, for tests (Alpaca's vocabulary)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    status: str
    qty: Decimal | None
    notional: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    extended_hours: bool
    replaces: str | None
    replaced_by: str | None
    created_at_ns: int

    @property
    def is_open(self) -> bool:
        return self.status not in _TERMINAL


@dataclass(frozen=True, slots=True)
class AlpacaFillInfo:
    """One execution: ``execution_id`` is the ``trade_updates`` event's, ``activity_id`` the
    ``/v2/account/activities/FILL`` row's."""

    execution_id: str
    activity_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    cum_qty: Decimal
    leaves_qty: Decimal
    order_status: str
    ts_ns: int


@dataclass(slots=True)
class _Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_price: Decimal | None
    trail_percent: Decimal | None
    extended_hours: bool
    created_ns: int
    seq: int
    status: str = "accepted"
    updated_ns: int = 0
    internal_id: str | None = None
    """The simulator's client order id once the order reached the book."""
    sim_qty: Decimal | None = None
    """The quantity given to the simulator (a notional order's shares)."""
    trail_offset: Decimal | None = None
    """A trailing stop's distance in dollars (``trail_percent`` turned into one at routing)."""
    filled_qty: Decimal = Decimal(0)
    filled_notional: Decimal = Decimal(0)
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    replaced_ns: int | None = None
    failed_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    ending: str | None = None
    """How the next simulator cancel of this order is reported: ``replaced`` or ``expired``."""

    @property
    def avg_price(self) -> Decimal | None:
        if not self.filled_qty:
            return None
        with localcontext() as context:
            context.prec = 40
            return (self.filled_notional / self.filled_qty).quantize(_AVG_STEP)


@dataclass(frozen=True, slots=True)
class _Fill:
    execution_id: str
    activity_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    cum_qty: Decimal
    leaves_qty: Decimal
    order_status: str
    ts_ns: int


@dataclass(frozen=True, slots=True)
class _Asset:
    id: str
    symbol: str
    exchange: str
    name: str
    fractionable: bool
    shortable: bool


@dataclass(slots=True)
class _Position:
    qty: Decimal = Decimal(0)
    avg_entry: Decimal = Decimal(0)


# ---------------------------------------------------------------- numbers


def fmt(value: Decimal) -> str:
    """Alpaca's decimal text: plain, no exponent, no trailing zeros (``"2"``, ``"150.05"``)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _decimal(body: Mapping[str, Any], name: str) -> Decimal | None:
    """A JSON number or decimal string (alpaca-py sends numbers, the spec strings); None if absent."""
    raw = body.get(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _invalid(f"invalid {name}")
    text = repr(raw) if isinstance(raw, float) else str(raw)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _invalid(f"invalid {name}") from None
    if not value.is_finite():
        raise _invalid(f"invalid {name}")
    if value <= 0:
        raise _unprocessable(f"{name} must be > 0")
    if -value.normalize().as_tuple().exponent > _MAX_DECIMALS:  # type: ignore[operator]
        raise _invalid(f"{name} must have at most {_MAX_DECIMALS} decimal places")
    return value


def _text(body: Mapping[str, Any], name: str) -> str:
    raw = body.get(name)
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _bool(raw: Any, name: str) -> bool:
    """JSON true/false, or a query string's ``true``/``True`` (alpaca-py writes Python's)."""
    if raw is None or raw == "":
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise _invalid(f"invalid {name}")


def _is_whole(value: Decimal) -> bool:
    return value == value.to_integral_value()


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _check_sub_penny(name: str, value: Decimal | None) -> None:
    """Alpaca's rule: prices >= $1.00 take at most 2 decimals, below $1.00 at most 4."""
    if value is None:
        return
    allowed = 2 if value >= 1 else 4
    if _decimals(value) > allowed:
        raise _unprocessable(
            f"invalid {name} {fmt(value)}. sub-penny increment does not fulfill minimum "
            "pricing criteria"
        )


def _parse_time(raw: str, name: str) -> int:
    """An RFC 3339 time or a date (New York midnight), as epoch ns."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, datetime.min.time(), NEW_YORK)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise _invalid(f"failed to parse {name}") from None
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


# ---------------------------------------------------------------- exchange


class AlpacaExchange:
    """One Alpaca trading account over a :class:`MatchingSimulator`.

    ``config`` instruments are named by ticker (``AAPL``), quoted in USD; an
    instrument whose ``lot_size`` is below 1 is fractionable. ``clock``
    returns epoch milliseconds; it stamps everything and drives the market
    clock (see :meth:`set_time` and :attr:`hours`). ``seed`` seeds the
    simulator and the UUIDs the venue hands out, so a run is reproducible.
    ``rate_limits``: answer 429 past 200 requests per minute of the clock.
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        api_key: str = DEFAULT_ALPACA_API_KEY,
        secret: str = DEFAULT_ALPACA_SECRET,
        seed: int = 0,
        clock: Callable[[], int],
        not_shortable: Iterable[str] = (),
        rate_limits: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._offset_ms = 0
        self._api_key = api_key
        self._secret = secret
        self._config = config
        self._rate_limits = rate_limits
        self._passive = config.fill_probability
        self._ids = random.Random(f"{seed}:alpaca-ids")
        self._specs: dict[str, InstrumentSpec] = {spec.symbol: spec for spec in config.instruments}
        no_short = set(not_shortable)
        self._assets: dict[str, _Asset] = {
            symbol: _Asset(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"alpaca-asset:{symbol}")),
                symbol=symbol,
                exchange=_EXCHANGES.get(symbol, "NASDAQ"),
                name=_NAMES.get(symbol, f"{symbol} Common Stock"),
                fractionable=spec.lot_size < 1,
                shortable=symbol not in no_short,
            )
            for symbol, spec in self._specs.items()
        }
        self.hours = MarketHours()
        self._session = (self.hours.session(self.now_ms()), self.hours.trading_date(self.now_ms()))
        self._sim = MatchingSimulator(config, seed=seed, clock=self._sim_clock)
        self._orders: dict[str, _Order] = {}
        self._by_internal: dict[str, _Order] = {}
        self._client_ids: set[str] = set()
        self._fills: list[_Fill] = []
        self._positions: dict[str, _Position] = {symbol: _Position() for symbol in self._specs}
        self._submissions: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._listeners: list[Callable[[AlpacaEvent], None]] = []
        self._refusals: list[AlpacaError] = []
        self._cancel_all_failures: list[str] = []
        self._cancel_all_fail_count = 0
        self._race_replace = False
        self._seq = 0
        self._next_internal = 0
        self._trade_print = 0
        self._holding = False
        self._held_moves: list[tuple[str, Decimal]] = []
        self._window: tuple[int, int] = (0, 0)
        self._bar_open: dict[str, list[Decimal]] = {
            symbol: [spec.initial_price] * 4 for symbol, spec in self._specs.items()
        }
        self._bar_volume: dict[str, Decimal] = dict.fromkeys(self._specs, Decimal(0))
        self._bar_trades: dict[str, int] = dict.fromkeys(self._specs, 0)

    def _sim_clock(self) -> int:
        return self.now_ms() * 1_000_000

    def __repr__(self) -> str:
        return f"AlpacaExchange(api_key={self._api_key!r}, symbols={list(self._specs)})"

    # ------------------------------------------------------------ plumbing

    @property
    def api_key(self) -> str:
        return self._api_key

    def now_ms(self) -> int:
        return self._clock() + self._offset_ms

    def now_ns(self) -> int:
        return self.now_ms() * 1_000_000

    def symbols(self) -> list[str]:
        return list(self._specs)

    def add_listener(self, listener: Callable[[AlpacaEvent], None]) -> None:
        """``listener`` gets every event, in order, under the exchange's lock: keep it quick."""
        with self._lock:
            self._listeners.append(listener)

    def _emit(self, event: AlpacaEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def authenticate(self, key: str, secret: str) -> bool:
        """Whether a key id and secret are this account's (the streams' auth messages too)."""
        return key == self._api_key and secret == self._secret

    # -------------------------------------------------------------- clock

    def set_time(self, moment: datetime) -> None:
        """Shift the venue's clock so that it reads ``moment`` now (it keeps running after)."""
        if moment.tzinfo is None:
            raise ValueError("set_time needs an aware datetime")
        with self._lock:
            target = int(moment.timestamp() * 1000)
            self._offset_ms = target - self._clock()
            self.sync_session()

    def force_market(self, is_open: bool | None) -> None:
        """Force the regular session open (True) or the market closed (False); None: the clock."""
        with self._lock:
            self.hours.forced = is_open
            self.sync_session()

    def session(self) -> Session:
        with self._lock:
            return self.hours.session(self.now_ms())

    def sync_session(self) -> None:
        """Apply a session change since the last look: release queued orders, expire DAY ones.

        Called on every request and knob, so the market clock is observed
        whenever anyone looks, as if Alpaca's session jobs had run on time:
        leaving the regular session expires the DAY orders that were not
        ``extended_hours``; the market closing (or a new trading date) expires
        the extended ones too. Queued orders reach the book once their session
        is open.
        """
        with self._lock:
            ms = self.now_ms()
            current = (self.hours.session(ms), self.hours.trading_date(ms))
            previous, self._session = self._session, current
            if current == previous:
                return
            opening = current[0] is Session.REGULAR and (
                previous[0] is not Session.REGULAR or current[1] != previous[1]
            )
            if previous[0] is Session.REGULAR:
                self._route_queued("cls")
                self._expire_day_orders(extended=False)
            if current[0] is Session.CLOSED or current[1] != previous[1]:
                self._expire_day_orders(extended=False)
                self._expire_day_orders(extended=True)
            if opening:
                self._route_queued("opg")
            for order in sorted(self._orders.values(), key=lambda o: o.seq):
                queued = order.status == "accepted" and order.internal_id is None
                if queued and self._may_trade(order, current[0]):
                    self._route(order)

    def _route_queued(self, time_in_force: str) -> None:
        """Send the queued opg (at the open) or cls (at the close) orders to the book."""
        for order in sorted(self._orders.values(), key=lambda o: o.seq):
            queued = order.status == "accepted" and order.internal_id is None
            if queued and order.time_in_force == time_in_force:
                self._route(order)

    @staticmethod
    def _may_trade(order: _Order, session: Session) -> bool:
        if order.time_in_force in ("opg", "cls"):
            return False
        return session is Session.REGULAR or (session.is_extended and order.extended_hours)

    def _expire_day_orders(self, *, extended: bool) -> None:
        for order in sorted(self._orders.values(), key=lambda o: o.seq):
            if order.time_in_force not in ("day", "opg", "cls") or order.status in _TERMINAL:
                continue
            if order.extended_hours != extended or order.internal_id is None:
                continue
            order.ending = "expired"
            self._publish(self._sim.cancel(order.internal_id))

    # ------------------------------------------------------------- REST

    def route_key(self, method: str, path: str) -> str:
        """The name fault knobs and :meth:`calls` use: ``"POST orders"``, ``"GET orders/{id}"``."""
        name = path.removeprefix("/v2/").strip("/")
        parts = name.split("/")
        if name.startswith("orders:by_client_order_id"):
            name = "orders:by_client_order_id"
        elif parts[0] == "orders" and len(parts) == 2:
            name = "orders/{id}"
        elif parts[0] in ("positions", "assets") and len(parts) == 2:
            name = f"{parts[0]}/{{symbol}}"
        return f"{method.upper()} {name}"

    def rest(
        self, method: str, path: str, query: str, body: str, headers: Mapping[str, str]
    ) -> Reply:
        """Answer ``METHOD path?query`` with ``body`` as Alpaca would (``headers`` lowercase)."""
        with self._lock:
            self.sync_session()
            method = method.upper()
            key = self.route_key(method, path)
            self._calls[key] += 1
            limit_headers = self._count_request()
            try:
                self._authenticate(headers)
                if self._rate_limits and int(limit_headers["X-Ratelimit-Remaining"]) < 0:
                    raise AlpacaError(429, CODE_RATE_LIMITED, "rate limit exceeded")
                reply = self._dispatch(method, path, query, body)
            except AlpacaError as error:
                reply = Reply(error.status, error.body())
            limit_headers["X-Ratelimit-Remaining"] = str(
                max(0, int(limit_headers["X-Ratelimit-Remaining"]))
            )
            return Reply(reply.status, reply.body, {**limit_headers, **reply.headers})

    def _count_request(self) -> dict[str, str]:
        minute = self.now_ms() // 60_000
        start, count = self._window
        count = count + 1 if start == minute else 1
        self._window = (minute, count)
        return {
            "X-Ratelimit-Limit": str(RATE_LIMIT_PER_MINUTE),
            "X-Ratelimit-Remaining": str(RATE_LIMIT_PER_MINUTE - count),
            "X-Ratelimit-Reset": str((minute + 1) * 60),
        }

    def rate_limit_headers(self, retry_after: int) -> dict[str, str]:
        """The headers of a 429 answered by the ``rate_limit`` knob: reset ``retry_after`` s on."""
        with self._lock:
            reset = self.now_ms() // 1000 + retry_after
            return {
                "X-Ratelimit-Limit": str(RATE_LIMIT_PER_MINUTE),
                "X-Ratelimit-Remaining": "0",
                "X-Ratelimit-Reset": str(reset),
            }

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        key = headers.get("apca-api-key-id", "")
        secret = headers.get("apca-api-secret-key", "")
        if not self.authenticate(key, secret):
            raise AlpacaError(401, CODE_UNAUTHORIZED, "unauthorized.")

    def _dispatch(self, method: str, path: str, query: str, body: str) -> Reply:
        if not path.startswith("/v2/"):
            raise AlpacaError(404, CODE_NOT_FOUND, "endpoint not found")
        name = path.removeprefix("/v2/").rstrip("/")
        params = dict(parse_qsl(query, keep_blank_values=True))
        parts = [unquote(part) for part in name.split("/")]
        head = parts[0]
        if name == "orders:by_client_order_id" and method == "GET":
            return Reply(200, self._get_by_client_id(params))
        if head == "orders" and len(parts) == 1:
            if method == "POST":
                return Reply(200, self._post_order(self._json_body(body)))
            if method == "GET":
                return Reply(200, self._list_orders(params))
            if method == "DELETE":
                return Reply(207, self._cancel_all())
        if head == "orders" and len(parts) == 2:
            order = self._find(parts[1])
            if method == "GET":
                return Reply(200, self._order_json(order, nested=True))
            if method == "PATCH":
                return Reply(200, self._replace(order, self._json_body(body)))
            if method == "DELETE":
                self._cancel(order)
                return Reply(204, None)
        if head == "positions" and len(parts) == 1:
            if method == "GET":
                return Reply(200, self._position_rows())
            if method == "DELETE":
                return Reply(
                    207, self._close_all(_bool(params.get("cancel_orders"), "cancel_orders"))
                )
        if head == "positions" and len(parts) == 2:
            symbol = self._asset(parts[1], for_position=True).symbol
            if method == "GET":
                return Reply(200, self._position_row(symbol))
            if method == "DELETE":
                return Reply(200, self._close_position(symbol, params))
        if name == "account" and method == "GET":
            return Reply(200, self._account())
        if head == "account" and len(parts) >= 2 and parts[1] == "activities" and method == "GET":
            kinds = parts[2] if len(parts) == 3 else params.get("activity_types", "")
            return Reply(200, self._activities(kinds, params))
        if name == "clock" and method == "GET":
            return Reply(200, self._clock_json())
        if name == "calendar" and method == "GET":
            return Reply(200, self._calendar(params))
        if head == "assets" and method == "GET":
            if len(parts) == 1:
                return Reply(200, self._asset_rows(params))
            if len(parts) == 2:
                return Reply(200, self._asset_json(self._asset(parts[1])))
        raise AlpacaError(404, CODE_NOT_FOUND, "endpoint not found")

    @staticmethod
    def _json_body(body: str) -> Json:
        try:
            document = json.loads(body) if body.strip() else {}
        except ValueError:
            raise AlpacaError(400, CODE_INVALID, "request body format is invalid") from None
        if not isinstance(document, dict):
            raise AlpacaError(400, CODE_INVALID, "request body format is invalid")
        return document

    # ------------------------------------------------------------ assets

    def _asset(self, key: str, *, for_position: bool = False) -> _Asset:
        asset = self._assets.get(key.upper().replace("/", ""))
        if asset is None:
            asset = next((a for a in self._assets.values() if a.id == key), None)
        if asset is None:
            if for_position:
                raise AlpacaError(404, CODE_NOT_FOUND, "position does not exist")
            raise AlpacaError(404, CODE_NOT_FOUND, f"asset not found for {key}")
        return asset

    def _asset_json(self, asset: _Asset) -> Json:
        spec = self._specs[asset.symbol]
        return {
            "id": asset.id,
            "class": "us_equity",
            "exchange": asset.exchange,
            "symbol": asset.symbol,
            "name": asset.name,
            "status": "active",
            "tradable": True,
            "marginable": True,
            "maintenance_margin_requirement": 30,
            "margin_requirement_long": "30",
            "margin_requirement_short": "100",
            "shortable": asset.shortable,
            "easy_to_borrow": asset.shortable,
            "borrow_status": "easy_to_borrow" if asset.shortable else "hard_to_borrow",
            "fractionable": asset.fractionable,
            "min_order_size": fmt(spec.min_quantity),
            "min_trade_increment": fmt(spec.lot_size),
            "price_increment": fmt(spec.tick_size),
            "attributes": ["fractional_eh_enabled"] if asset.fractionable else [],
        }

    def _asset_rows(self, params: Mapping[str, str]) -> list[Json]:
        status = params.get("status", "")
        asset_class = params.get("asset_class", "")
        if status not in ("", "active") or asset_class not in ("", "us_equity"):
            return []
        return [self._asset_json(asset) for asset in self._assets.values()]

    # ------------------------------------------------------------ orders

    def place(self, body: Mapping[str, Any]) -> Json:
        """Place one order from Python (another client of the account): Alpaca's Order JSON."""
        with self._lock:
            self.sync_session()
            return self._post_order(dict(body))

    def refuse_next_order(self, status: int, code: int, message: str) -> None:
        with self._lock:
            self._refusals.append(AlpacaError(status, code, message))

    def fail_cancel_all_for(self, order_ids: Iterable[str], count: int) -> None:
        with self._lock:
            self._cancel_all_failures.extend(order_ids)
            self._cancel_all_fail_count += count

    def _post_order(self, body: Json) -> Json:
        client_order_id = _text(body, "client_order_id")
        if client_order_id:
            self._submissions[client_order_id] += 1
        order = self._new_order(body, client_order_id)
        answer = self._order_json(order)
        self._admit(order)
        return answer

    def _new_order(self, body: Mapping[str, Any], client_order_id: str) -> _Order:
        """Check an order request as Alpaca does; the order, not yet booked (status accepted)."""
        if len(client_order_id) > _MAX_CLIENT_ID:
            raise _invalid(f"client_order_id must be no more than {_MAX_CLIENT_ID} characters")
        order_class = _text(body, "order_class")
        if order_class not in ("", "simple"):
            raise _unprocessable(f"order_class {order_class} is not supported by this venue")
        symbol = _text(body, "symbol")
        if not symbol:
            raise _invalid("symbol is required")
        asset = self._assets.get(symbol.upper())
        if asset is None:
            raise _unprocessable(f'asset "{symbol}" not found')
        side = _text(body, "side")
        if side not in ("buy", "sell"):
            raise _invalid("side is required" if not side else f"invalid side: {side}")
        kind = _text(body, "type") or _text(body, "order_type")
        if kind not in _TYPES:
            raise _invalid("type is required" if not kind else f"invalid order type: {kind}")
        tif = _text(body, "time_in_force")
        if tif not in _TIFS:
            raise _invalid("time_in_force is required" if not tif else "invalid time_in_force")
        qty, notional = _decimal(body, "qty"), _decimal(body, "notional")
        if qty is None and notional is None:
            raise _invalid("qty or notional is required")
        if qty is not None and notional is not None:
            raise _invalid("only one of qty or notional must be given")
        limit_price = _decimal(body, "limit_price")
        stop_price = _decimal(body, "stop_price")
        trail_price = _decimal(body, "trail_price")
        trail_percent = _decimal(body, "trail_percent")
        extended = _bool(body.get("extended_hours"), "extended_hours")
        if kind in ("limit", "stop_limit") and limit_price is None:
            raise _unprocessable("limit_price is required for limit orders")
        if kind in ("stop", "stop_limit") and stop_price is None:
            raise _unprocessable("stop_price is required for stop orders")
        if kind == "trailing_stop":
            if (trail_price is None) == (trail_percent is None):
                raise _unprocessable("exactly one of trail_price or trail_percent is required")
            if tif not in ("day", "gtc"):
                raise _unprocessable("trailing stop orders must be day or gtc orders")
        _check_sub_penny("limit_price", limit_price)
        _check_sub_penny("stop_price", stop_price)
        fractional = notional is not None or (qty is not None and not _is_whole(qty))
        if fractional:
            if not asset.fractionable:
                raise _unprocessable(f"asset {asset.symbol} is not fractionable")
            if tif != "day":
                raise _unprocessable("fractional orders must be DAY orders")
            if kind == "trailing_stop":
                raise _unprocessable("fractional orders cannot be trailing stop orders")
        if notional is not None and kind != "market":
            raise _unprocessable("notional orders must be market orders")
        if tif in _AUCTION_WINDOWS:
            if kind not in ("market", "limit") or extended or fractional:
                raise _unprocessable(f"{tif} orders must be whole-share market or limit orders")
            start, end, refusal = _AUCTION_WINDOWS[tif]
            clock_time = datetime.fromtimestamp(self.now_ms() / 1000, NEW_YORK).time()
            if start <= clock_time < end:
                raise _unprocessable(refusal)
        if extended and kind != "limit":
            # As observed on Alpaca (alpaca-java#77): 422 with code 40010001.
            raise _invalid('only type="limit" is allowed for extended hours orders')
        if extended and tif != "day":
            raise _unprocessable("extended hours order must be DAY limit orders")
        if side == "sell" and not asset.shortable:
            held = self._positions[asset.symbol].qty - self._held_for_sells(asset.symbol)
            wanted = qty if qty is not None else Decimal(0)
            if wanted > held:
                raise AlpacaError(
                    403,
                    CODE_FORBIDDEN,
                    f"insufficient qty available for order (requested: {fmt(wanted)}, "
                    f"available: {fmt(max(held, Decimal(0)))})",
                    held_for_orders=fmt(self._held_for_sells(asset.symbol)),
                )
        if not client_order_id:
            client_order_id = self._uuid()
        elif client_order_id in self._client_ids:
            raise _invalid("client_order_id must be unique")
        if self._refusals:
            raise self._refusals.pop(0)
        now = self.now_ns()
        self._seq += 1
        return _Order(
            id=self._uuid(),
            client_order_id=client_order_id,
            symbol=asset.symbol,
            side=side,
            type=kind,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            limit_price=limit_price,
            stop_price=stop_price,
            trail_price=trail_price,
            trail_percent=trail_percent,
            extended_hours=extended,
            created_ns=now,
            updated_ns=now,
            seq=self._seq,
        )

    def _held_for_sells(self, symbol: str) -> Decimal:
        return sum(
            (
                (o.sim_qty or o.qty or Decimal(0)) - o.filled_qty
                for o in self._orders.values()
                if o.symbol == symbol and o.side == "sell" and o.status not in _TERMINAL
            ),
            Decimal(0),
        )

    def _admit(self, order: _Order) -> None:
        """Book an accepted order: to the simulator now, or queued for its session."""
        self._check_buying_power(order)
        self._orders[order.id] = order
        self._client_ids.add(order.client_order_id)
        if self._may_trade(order, self.hours.session(self.now_ms())):
            self._route(order, refuse=True)

    def _check_buying_power(self, order: _Order) -> None:
        """Alpaca refuses a buy up front when its estimated cost (qty x limit price, or
        x the ask for a market order; a notional order's amount) exceeds the buying power
        left after open and queued orders: 403 ``insufficient buying power``."""
        if order.side != "buy":
            return
        free = self._sim.balance("USD").free
        queued = sum(
            (self._estimate(o) for o in self._orders.values() if self._is_queued_buy(o)),
            Decimal(0),
        )
        available = free - queued
        if self._estimate(order) > available:
            raise AlpacaError(
                403,
                CODE_FORBIDDEN,
                "insufficient buying power",
                buying_power=fmt(max(available, Decimal(0))),
            )

    @staticmethod
    def _is_queued_buy(order: _Order) -> bool:
        return order.side == "buy" and order.status == "accepted" and order.internal_id is None

    def _estimate(self, order: _Order) -> Decimal:
        if order.notional is not None:
            return order.notional
        price = order.limit_price or order.stop_price or self._sim.quote(order.symbol).ask
        return (order.qty or Decimal(0)) * price

    def _route(self, order: _Order, *, refuse: bool = False) -> None:
        """Submit ``order`` to the simulator. ``refuse``: a refusal is the request's error
        (the order is forgotten); else the order ends ``rejected`` on the stream."""
        spec = self._specs[order.symbol]
        quote = self._sim.quote(order.symbol)
        quantity = order.qty
        if quantity is None:
            assert order.notional is not None
            with localcontext() as context:
                context.prec = 40
                quantity = (order.notional / quote.ask).quantize(spec.lot_size, rounding=ROUND_DOWN)
        order.sim_qty = quantity
        offset: Decimal | None = None
        if order.type == "trailing_stop":
            offset = order.trail_price
            if offset is None:
                assert order.trail_percent is not None
                offset = (quote.last * order.trail_percent / 100).quantize(spec.tick_size)
            order.trail_offset = offset
        self._next_internal += 1
        internal_id = f"alpaca{self._next_internal}"
        events = self._sim.submit(
            internal_id,
            order.symbol,
            Side(order.side.upper()),
            _SIM_TYPES[order.type],
            quantity,
            price=order.limit_price,
            stop_price=order.stop_price,
            trailing_offset=offset,
            time_in_force=_SIM_TIF.get(order.time_in_force, TimeInForce.GTC),
        )
        first = events[0]
        if isinstance(first, SimRejected):
            error = _rejection(first, self._sim.balance("USD").free)
            if refuse:
                del self._orders[order.id]
                self._client_ids.discard(order.client_order_id)
                raise error
            order.status, order.failed_ns = "rejected", self.now_ns()
            order.updated_ns = order.failed_ns
            self._push(order, "rejected", timestamp=True)
            return
        order.internal_id = internal_id
        self._by_internal[internal_id] = order
        self._publish(events)

    def _publish(self, events: Sequence[SimEvent]) -> None:
        """Turn simulator events into order state, fills and ``trade_updates`` rows."""
        for event in events:
            order = self._by_internal.get(event.client_order_id)
            if order is None:
                continue
            now = event.ts_ns
            if isinstance(event, SimAccepted):
                order.status, order.updated_ns = "new", now
                self._push(order, "new", timestamp=True)
            elif isinstance(event, SimFill):
                self._on_fill(order, event)
            elif isinstance(event, SimCanceled | SimExpired):
                self._on_end(order, now, expired=isinstance(event, SimExpired))

    def _on_fill(self, order: _Order, fill: SimFill) -> None:
        now = fill.ts_ns
        order.filled_qty += fill.quantity
        order.filled_notional += fill.quantity * fill.price
        order.updated_ns = now
        done = fill.leaves_quantity == 0
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = now
        position = self._positions[order.symbol]
        signed = fill.quantity if order.side == "buy" else -fill.quantity
        _apply(position, signed, fill.price)
        record = _Fill(
            execution_id=self._uuid(),
            activity_id=f"{_activity_stamp(now)}::{self._uuid()}",
            order_id=order.id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=fill.quantity,
            price=fill.price,
            cum_qty=order.filled_qty,
            leaves_qty=fill.leaves_quantity,
            order_status=order.status,
            ts_ns=now,
        )
        self._fills.append(record)
        self._bar_trade(order.symbol, fill.price, fill.quantity)
        self._push(
            order,
            "fill" if done else "partial_fill",
            timestamp=True,
            extra={
                "execution_id": record.execution_id,
                "price": fmt(fill.price),
                "qty": fmt(fill.quantity),
                "position_qty": fmt(position.qty),
            },
        )

    def _on_end(self, order: _Order, now: int, *, expired: bool) -> None:
        ending, order.ending = order.ending, None
        order.updated_ns = now
        if ending == "replaced":
            order.status, order.replaced_ns = "replaced", now
            self._push(order, "replaced", timestamp=True)
        elif ending == "expired":
            order.status, order.expired_ns = "expired", now
            self._push(order, "expired", timestamp=True)
        else:
            # A user's cancel, an IOC/FOK remainder, a market order's unfillable rest.
            order.status, order.canceled_ns = "canceled", now
            self._push(order, "canceled", timestamp=True)

    def _push(
        self, order: _Order, event: str, *, timestamp: bool, extra: Json | None = None
    ) -> None:
        row: Json = {"event": event}
        if extra:
            row.update(extra)
        row["timestamp"] = iso_ns(order.updated_ns if timestamp else self.now_ns())
        row["order"] = self._order_json(order)
        self._emit(TradePush(row))

    # ---------------------------------------------------------- queries

    def _find(self, order_id: str) -> _Order:
        order = self._orders.get(order_id.lower())
        if order is None:
            if not _UUID.match(order_id):
                raise _invalid("order_id is not a valid uuid")
            raise AlpacaError(404, CODE_NOT_FOUND, "order not found")
        return order

    def _get_by_client_id(self, params: Mapping[str, str]) -> Json:
        client_order_id = params.get("client_order_id", "")
        if not client_order_id:
            raise _invalid("client_order_id is required")
        found = [o for o in self._orders.values() if o.client_order_id == client_order_id]
        if not found:
            raise AlpacaError(404, CODE_NOT_FOUND, "order not found")
        return self._order_json(max(found, key=lambda o: o.seq), nested=True)

    def _list_orders(self, params: Mapping[str, str]) -> list[Json]:
        status = params.get("status", "") or "open"
        if status not in ("open", "closed", "all"):
            raise _invalid(f"invalid status: {status}")
        raw_limit = params.get("limit", "") or "50"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
            raise _invalid("invalid limit")
        direction = params.get("direction", "") or "desc"
        if direction not in ("asc", "desc"):
            raise _invalid("invalid direction")
        after = _parse_time(params["after"], "after") if params.get("after") else None
        until = _parse_time(params["until"], "until") if params.get("until") else None
        symbols = {s.strip().upper() for s in params.get("symbols", "").split(",") if s.strip()}
        side = params.get("side", "")
        nested = _bool(params.get("nested"), "nested")
        rows = []
        ordered = sorted(self._orders.values(), key=lambda o: o.seq, reverse=direction == "desc")
        for order in ordered:
            is_open = order.status not in _TERMINAL
            if (status == "open" and not is_open) or (status == "closed" and is_open):
                continue
            if after is not None and order.created_ns <= after:
                continue
            if until is not None and order.created_ns >= until:
                continue
            if symbols and order.symbol not in symbols:
                continue
            if side and order.side != side:
                continue
            rows.append(self._order_json(order, nested=nested))
            if len(rows) >= int(raw_limit):
                break
        return rows

    def _order_json(self, order: _Order, *, nested: bool = False) -> Json:
        del nested  # simple orders only: ``legs`` is always null
        asset = self._assets[order.symbol]
        avg = order.avg_price
        return {
            "id": order.id,
            "client_order_id": order.client_order_id,
            "created_at": iso_ns(order.created_ns),
            "updated_at": iso_ns(order.updated_ns),
            "submitted_at": iso_ns(order.created_ns),
            "filled_at": None if order.filled_ns is None else iso_ns(order.filled_ns),
            "expired_at": None if order.expired_ns is None else iso_ns(order.expired_ns),
            "canceled_at": None if order.canceled_ns is None else iso_ns(order.canceled_ns),
            "failed_at": None if order.failed_ns is None else iso_ns(order.failed_ns),
            "replaced_at": None if order.replaced_ns is None else iso_ns(order.replaced_ns),
            "replaced_by": order.replaced_by,
            "replaces": order.replaces,
            "asset_id": asset.id,
            "symbol": order.symbol,
            "asset_class": "us_equity",
            "notional": _opt(order.notional),
            "qty": _opt(order.qty),
            "filled_qty": fmt(order.filled_qty),
            "filled_avg_price": None if avg is None else fmt(avg),
            "order_class": "",
            "order_type": order.type,
            "type": order.type,
            "side": order.side,
            "position_intent": f"{order.side}_to_open",
            "time_in_force": order.time_in_force,
            "limit_price": _opt(order.limit_price),
            "stop_price": _opt(self._current_stop(order)),
            "status": order.status,
            "extended_hours": order.extended_hours,
            "legs": None,
            "trail_percent": _opt(order.trail_percent),
            "trail_price": _opt(order.trail_price),
            "hwm": _opt(self._high_water_mark(order)),
            "subtag": None,
            "source": None,
            "expires_at": None,
        }

    def _high_water_mark(self, order: _Order) -> Decimal | None:
        """A trailing stop's best price since submission (highest for a sell, lowest for a buy)."""
        stop = self._current_stop(order)
        if order.type != "trailing_stop" or stop is None or order.trail_offset is None:
            return None
        return stop + order.trail_offset if order.side == "sell" else stop - order.trail_offset

    def _current_stop(self, order: _Order) -> Decimal | None:
        if order.type != "trailing_stop" or order.internal_id is None:
            return order.stop_price
        view = self._sim.order(order.internal_id)
        return None if view is None else view.stop_price

    # ----------------------------------------------------------- cancel

    def _cancel(self, order: _Order) -> None:
        if order.status in _TERMINAL:
            raise _unprocessable(f'order is already in "{order.status}" state')
        if order.internal_id is None:
            now = self.now_ns()
            order.status, order.canceled_ns, order.updated_ns = "canceled", now, now
            self._push(order, "canceled", timestamp=True)
            return
        self._publish(self._sim.cancel(order.internal_id))

    def cancel(self, order_id: str) -> None:
        """Cancel an order from Python (another client of the account)."""
        with self._lock:
            self.sync_session()
            self._cancel(self._find(order_id))

    def _cancel_all(self) -> list[Json]:
        items: list[Json] = []
        for order in sorted(self._orders.values(), key=lambda o: o.seq):
            if order.status in _TERMINAL:
                continue
            if order.id in self._cancel_all_failures or self._cancel_all_fail_count > 0:
                if order.id in self._cancel_all_failures:
                    self._cancel_all_failures.remove(order.id)
                else:
                    self._cancel_all_fail_count -= 1
                error = AlpacaError(500, CODE_INTERNAL, "internal server error occurred")
                items.append({"id": order.id, "status": 500, "body": error.body()})
                continue
            self._cancel(order)
            items.append({"id": order.id, "status": 200, "body": self._order_json(order)})
        return items

    # ---------------------------------------------------------- replace

    def _replace(self, order: _Order, body: Json) -> Json:
        if order.status in _TERMINAL:
            raise _unprocessable(f'order is already in "{order.status}" state')
        if order.internal_id is None or order.status in ("accepted", "pending_new"):
            raise _unprocessable("unable to replace order, order isn't sent to exchange yet")
        if order.notional is not None:
            raise _unprocessable("cannot replace a notional order")
        qty = _decimal(body, "qty")
        if qty is not None and (not _is_whole(qty) or not _is_whole(order.qty or Decimal(0))):
            raise _unprocessable("fractional quantity of an order cannot be replaced")
        limit_price = _decimal(body, "limit_price")
        stop_price = _decimal(body, "stop_price")
        trail = _decimal(body, "trail")
        tif = _text(body, "time_in_force")
        if tif and tif not in _TIFS:
            raise _invalid("invalid time_in_force")
        if limit_price is not None and order.type not in ("limit", "stop_limit"):
            raise _unprocessable("limit_price can only be replaced on limit orders")
        if stop_price is not None and order.type not in ("stop", "stop_limit"):
            raise _unprocessable("stop_price can only be replaced on stop orders")
        if trail is not None and order.type != "trailing_stop":
            raise _unprocessable("trail can only be replaced on trailing stop orders")
        _check_sub_penny("limit_price", limit_price)
        _check_sub_penny("stop_price", stop_price)
        client_order_id = _text(body, "client_order_id")
        changes = (qty, limit_price, stop_price, trail, tif or None, client_order_id or None)
        if all(change is None for change in changes):
            raise AlpacaError(403, CODE_FORBIDDEN, "order parameters are not changed")
        if len(client_order_id) > _MAX_CLIENT_ID:
            raise _invalid(f"client_order_id must be no more than {_MAX_CLIENT_ID} characters")
        if client_order_id and client_order_id in self._client_ids:
            raise _invalid("client_order_id must be unique")
        now = self.now_ns()
        self._seq += 1
        new = _Order(
            id=self._uuid(),
            client_order_id=client_order_id or self._uuid(),
            symbol=order.symbol,
            side=order.side,
            type=order.type,
            time_in_force=tif or order.time_in_force,
            # Alpaca-API#165: without a qty the new order gets the ORIGINAL quantity.
            qty=qty if qty is not None else order.qty,
            notional=None,
            limit_price=limit_price if limit_price is not None else order.limit_price,
            stop_price=stop_price if stop_price is not None else order.stop_price,
            trail_price=trail if trail is not None and order.trail_price else order.trail_price,
            trail_percent=(
                trail if trail is not None and order.trail_percent else order.trail_percent
            ),
            extended_hours=order.extended_hours,
            created_ns=now,
            updated_ns=now,
            seq=self._seq,
            replaces=order.id,
        )
        answer = self._order_json(new)
        order.status, order.updated_ns = "pending_replace", now
        self._push(order, "pending_replace", timestamp=True)
        if self._race_replace and order.limit_price is not None:
            self._race_replace = False
            self._lose_replace_race(order, new)
            return answer
        order.replaced_by = new.id
        order.ending = "replaced"
        assert order.internal_id is not None
        self._publish(self._sim.cancel(order.internal_id))
        self._orders[new.id] = new
        self._client_ids.add(new.client_order_id)
        if self._may_trade(new, self.hours.session(self.now_ms())):
            self._route(new)
        return answer

    def race_next_replace(self) -> None:
        with self._lock:
            self._race_replace = True

    def _lose_replace_race(self, order: _Order, new: _Order) -> None:
        """Alpaca's documented race: the old order fills before the replacing one reaches
        the venue, so the old ends ``filled`` and the new one ``rejected``. The last price
        is moved through the old order's limit until it has filled, then back."""
        assert order.internal_id is not None and order.limit_price is not None
        before = self._sim.quote(order.symbol).last
        step = Decimal("0.98") if order.side == "buy" else Decimal("1.02")
        through = (order.limit_price * step).quantize(self._specs[order.symbol].tick_size)
        while order.status not in _TERMINAL:
            self._publish(self._sim.set_price(order.symbol, through))
        self._publish(self._sim.set_price(order.symbol, before))
        self._moved(order.symbol)
        self._orders[new.id] = new
        self._client_ids.add(new.client_order_id)
        now = self.now_ns()
        new.status, new.failed_ns, new.updated_ns = "rejected", now, now
        self._push(new, "rejected", timestamp=True)

    # -------------------------------------------------------- positions

    def _position_rows(self) -> list[Json]:
        return [
            self._position_row(symbol)
            for symbol, position in self._positions.items()
            if position.qty != 0
        ]

    def _position_row(self, symbol: str) -> Json:
        position = self._positions[symbol]
        if position.qty == 0:
            raise AlpacaError(404, CODE_NOT_FOUND, "position does not exist")
        asset = self._assets[symbol]
        last = self._sim.quote(symbol).last
        cost = position.qty * position.avg_entry
        value = position.qty * last
        pl = value - cost
        held = self._held_for_sells(symbol) if position.qty > 0 else Decimal(0)
        with localcontext() as context:
            context.prec = 20
            plpc = (pl / abs(cost)).quantize(Decimal("1e-6")) if cost else Decimal(0)
        return {
            "asset_id": asset.id,
            "symbol": symbol,
            "exchange": asset.exchange,
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": fmt(position.avg_entry),
            "qty": fmt(position.qty),
            "qty_available": fmt(position.qty - held),
            "side": "long" if position.qty > 0 else "short",
            "market_value": fmt(value),
            "cost_basis": fmt(cost),
            "unrealized_pl": fmt(pl),
            "unrealized_plpc": fmt(plpc),
            "unrealized_intraday_pl": fmt(pl),
            "unrealized_intraday_plpc": fmt(plpc),
            "current_price": fmt(last),
            "lastday_price": fmt(self._specs[symbol].initial_price),
            "change_today": "0",
        }

    def _close_position(self, symbol: str, params: Mapping[str, str]) -> Json:
        position = self._positions[symbol]
        if position.qty == 0:
            raise AlpacaError(404, CODE_NOT_FOUND, "position does not exist")
        qty, percentage = _decimal(params, "qty"), _decimal(params, "percentage")
        if qty is not None and percentage is not None:
            raise _invalid("only one of qty or percentage must be given")
        amount = abs(position.qty)
        if qty is not None:
            amount = min(qty, amount)
        elif percentage is not None:
            amount = (amount * percentage / 100).quantize(Decimal("1e-9"), rounding=ROUND_DOWN)
        side = "sell" if position.qty > 0 else "buy"
        tif = "day" if not _is_whole(amount) else "gtc"
        return self._post_order(
            {
                "symbol": symbol,
                "qty": fmt(amount),
                "side": side,
                "type": "market",
                "time_in_force": tif,
            }
        )

    def _close_all(self, cancel_orders: bool) -> list[Json]:
        if cancel_orders:
            for order in sorted(self._orders.values(), key=lambda o: o.seq):
                if order.status not in _TERMINAL:
                    self._cancel(order)
        items = []
        for symbol, position in self._positions.items():
            if position.qty == 0:
                continue
            try:
                body = self._close_position(symbol, {})
                items.append({"symbol": symbol, "status": 200, "body": body})
            except AlpacaError as error:
                items.append({"symbol": symbol, "status": error.status, "body": error.body()})
        return items

    # ---------------------------------------------------------- account

    def _account(self) -> Json:
        usd = self._sim.balance("USD")
        cash = usd.free + usd.locked
        long_value = short_value = Decimal(0)
        for symbol, position in self._positions.items():
            value = position.qty * self._sim.quote(symbol).last
            if value > 0:
                long_value += value
            else:
                short_value += value
        equity = cash + long_value + short_value
        created = iso_ns(self._sim_clock() - 86_400_000_000_000 * 30)
        return {
            "id": DEFAULT_ACCOUNT_ID,
            "account_number": "PA3TRADENODE",
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "buying_power": fmt(usd.free),
            "regt_buying_power": fmt(usd.free),
            "options_buying_power": fmt(usd.free),
            "effective_buying_power": fmt(usd.free),
            "non_marginable_buying_power": fmt(usd.free),
            "cash": fmt(cash),
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "portfolio_value": fmt(equity),
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": created,
            "trade_suspended_by_user": False,
            "multiplier": "1",
            "shorting_enabled": True,
            "equity": fmt(equity),
            "last_equity": fmt(equity),
            "long_market_value": fmt(long_value),
            "short_market_value": fmt(short_value),
            "position_market_value": fmt(long_value - short_value),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "balance_asof": datetime.fromtimestamp(self.now_ms() / 1000, NEW_YORK)
            .date()
            .isoformat(),
            "crypto_tier": 0,
            "options_trading_level": 0,
            "intraday_adjustments": "0",
            "pending_reg_taf_fees": "0",
            "admin_configurations": {},
            "user_configurations": None,
        }

    def _activities(self, kinds: str, params: Mapping[str, str]) -> list[Json]:
        wanted = [k.strip().upper() for k in kinds.split(",") if k.strip()]
        known = ("FILL", "TRANS", "MISC", "ACATC", "ACATS", "CSD", "CSW", "DIV", "FEE", "INT")
        for kind in wanted:
            if kind not in known:
                raise _invalid(f"invalid activity type: {kind}")
        if wanted and "FILL" not in wanted:
            return []
        direction = params.get("direction", "") or "desc"
        if direction not in ("asc", "desc"):
            raise _invalid("invalid direction")
        raw_size = params.get("page_size", "") or "100"
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= 100:
            raise _invalid("invalid page_size")
        after = _parse_time(params["after"], "after") if params.get("after") else None
        until = _parse_time(params["until"], "until") if params.get("until") else None
        token = params.get("page_token", "")
        fills = self._fills if direction == "asc" else list(reversed(self._fills))
        if token:
            ids = [fill.activity_id for fill in fills]
            if token not in ids:
                raise _invalid("invalid page_token")
            fills = fills[ids.index(token) + 1 :]
        rows = []
        for fill in fills:
            if after is not None and fill.ts_ns <= after:
                continue
            if until is not None and fill.ts_ns >= until:
                continue
            rows.append(
                {
                    "id": fill.activity_id,
                    "account_id": DEFAULT_ACCOUNT_ID,
                    "activity_type": "FILL",
                    "transaction_time": iso_ns(fill.ts_ns),
                    "type": "fill" if fill.leaves_qty == 0 else "partial_fill",
                    "price": fmt(fill.price),
                    "qty": fmt(fill.qty),
                    "side": fill.side,
                    "symbol": fill.symbol,
                    "leaves_qty": fmt(fill.leaves_qty),
                    "order_id": fill.order_id,
                    "cum_qty": fmt(fill.cum_qty),
                    "order_status": fill.order_status,
                }
            )
            if len(rows) >= int(raw_size):
                break
        return rows

    def _clock_json(self) -> Json:
        ms = self.now_ms()
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        return {
            "timestamp": ny_iso(moment),
            "is_open": self.hours.is_open(ms),
            "next_open": ny_iso(self.hours.next_open(ms)),
            "next_close": ny_iso(self.hours.next_close(ms)),
        }

    def _calendar(self, params: Mapping[str, str]) -> list[Json]:
        today = datetime.fromtimestamp(self.now_ms() / 1000, NEW_YORK).date()
        try:
            start = date.fromisoformat(params["start"][:10]) if params.get("start") else None
            end = date.fromisoformat(params["end"][:10]) if params.get("end") else None
        except ValueError:
            raise _invalid("failed to parse start/end") from None
        start = start or (today - timedelta(days=7) if end is None else end - timedelta(days=30))
        end = end or start + timedelta(days=37)
        return self.hours.calendar(start, end)

    # ------------------------------------------------------ price driving

    def step(self, count: int = 1, symbol: str | None = None) -> None:
        with self._lock:
            self.sync_session()
            if symbol is not None and symbol not in self._specs:
                raise KeyError(symbol)
            names = [symbol] if symbol is not None else list(self._specs)
            for _ in range(count):
                self._publish(self._sim.step(symbol))
                for name in names:
                    self._moved(name)

    def set_price(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            self.sync_session()
            if symbol not in self._specs:
                raise KeyError(symbol)
            self._publish(self._sim.set_price(symbol, price))
            self._moved(symbol)

    def _moved(self, symbol: str) -> None:
        quote = self._sim.quote(symbol)
        if self._holding:
            self._held_moves.append((symbol, quote.last))
        self._trade_print += 1
        self._bar_trade(symbol, quote.last, Decimal(0))
        level = self._config.level_quantity_for(symbol)
        size = int(level) if _is_whole(level) else float(level)
        now = self.now_ns()
        self._emit(
            MarketPush(
                "trades",
                symbol,
                {
                    "T": "t",
                    "S": symbol,
                    "i": self._trade_print,
                    "x": "V",
                    "p": float(quote.last),
                    "s": 100,
                    "c": ["@"],
                    "z": "C",
                    "t": now,
                },
            )
        )
        self._emit(
            MarketPush(
                "quotes",
                symbol,
                {
                    "T": "q",
                    "S": symbol,
                    "bx": "V",
                    "bp": float(quote.bid),
                    "bs": size,
                    "ax": "V",
                    "ap": float(quote.ask),
                    "as": size,
                    "c": ["R"],
                    "z": "C",
                    "t": now,
                },
            )
        )

    def _bar_trade(self, symbol: str, price: Decimal, qty: Decimal) -> None:
        bar = self._bar_open[symbol]
        bar[1] = max(bar[1], price)
        bar[2] = min(bar[2], price)
        bar[3] = price
        self._bar_volume[symbol] += qty
        self._bar_trades[symbol] += 1 if qty else 0

    def publish_bar(self, symbol: str) -> None:
        """Close the current minute bar of ``symbol`` and push it (``T: b``)."""
        with self._lock:
            if symbol not in self._specs:
                raise KeyError(symbol)
            o, h, low, c = self._bar_open[symbol]
            volume = self._bar_volume[symbol]
            minute = self.now_ns() // 60_000_000_000 * 60_000_000_000
            self._emit(
                MarketPush(
                    "bars",
                    symbol,
                    {
                        "T": "b",
                        "S": symbol,
                        "o": float(o),
                        "h": float(h),
                        "l": float(low),
                        "c": float(c),
                        "v": int(volume) if _is_whole(volume) else float(volume),
                        "n": self._bar_trades[symbol],
                        "vw": float((o + h + low + c) / 4),
                        "t": minute,
                    },
                )
            )
            self._bar_open[symbol] = [c, c, c, c]
            self._bar_volume[symbol] = Decimal(0)
            self._bar_trades[symbol] = 0

    def quote_row(self, symbol: str) -> Json:
        """The current quote of ``symbol`` as a market-data ``q`` row (``t`` in epoch ns)."""
        with self._lock:
            quote = self._sim.quote(symbol)
            level = self._config.level_quantity_for(symbol)
            size = int(level) if _is_whole(level) else float(level)
            return {
                "T": "q",
                "S": symbol,
                "bx": "V",
                "bp": float(quote.bid),
                "bs": size,
                "ax": "V",
                "ap": float(quote.ask),
                "as": size,
                "c": ["R"],
                "z": "C",
                "t": self.now_ns(),
            }

    def last_price(self, symbol: str) -> Decimal:
        with self._lock:
            return self._sim.quote(symbol).last

    # ---------------------------------------------------- delayed fills

    def hold_fills(self) -> None:
        with self._lock:
            if not self._holding:
                self._holding = True
                self._swap_passive(0.0)

    def release_fills(self) -> int:
        with self._lock:
            if not self._holding:
                return 0
            self._holding = False
            self._swap_passive(self._passive)
            moves, self._held_moves = self._held_moves, []
            before = len(self._fills)
            final = {symbol: self._sim.quote(symbol).last for symbol, _ in moves}
            for symbol, price in moves:
                self._publish(self._sim.set_price(symbol, price))
            for symbol, price in final.items():
                if self._sim.quote(symbol).last != price:
                    self._publish(self._sim.set_price(symbol, price))
            return len(self._fills) - before

    def _swap_passive(self, probability: float) -> None:
        config = dataclasses.replace(self._config, fill_probability=probability)
        self._sim = MatchingSimulator.restore(config, self._sim.snapshot(), clock=self._sim_clock)

    # --------------------------------------------------------- inspection

    def orders(self) -> list[AlpacaOrderInfo]:
        with self._lock:
            return [
                AlpacaOrderInfo(
                    id=o.id,
                    client_order_id=o.client_order_id,
                    symbol=o.symbol,
                    side=o.side,
                    type=o.type,
                    time_in_force=o.time_in_force,
                    status=o.status,
                    qty=o.qty,
                    notional=o.notional,
                    filled_qty=o.filled_qty,
                    filled_avg_price=o.avg_price,
                    limit_price=o.limit_price,
                    stop_price=o.stop_price,
                    extended_hours=o.extended_hours,
                    replaces=o.replaces,
                    replaced_by=o.replaced_by,
                    created_at_ns=o.created_ns,
                )
                for o in sorted(self._orders.values(), key=lambda o: o.seq)
            ]

    def fills(self) -> list[AlpacaFillInfo]:
        with self._lock:
            return [
                AlpacaFillInfo(
                    execution_id=f.execution_id,
                    activity_id=f.activity_id,
                    order_id=f.order_id,
                    client_order_id=f.client_order_id,
                    symbol=f.symbol,
                    side=f.side,
                    qty=f.qty,
                    price=f.price,
                    cum_qty=f.cum_qty,
                    leaves_qty=f.leaves_qty,
                    order_status=f.order_status,
                    ts_ns=f.ts_ns,
                )
                for f in self._fills
            ]

    def positions(self) -> dict[str, Decimal]:
        """``{symbol: signed qty}`` of every non-flat position."""
        with self._lock:
            return {s: p.qty for s, p in self._positions.items() if p.qty != 0}

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}`` of the simulator's ledger (USD, and shares held)."""
        with self._lock:
            return {a: (b.free, b.locked) for a, b in self._sim.balances().items()}

    def submissions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._submissions)

    def calls(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield


# ---------------------------------------------------------------- helpers


def _apply(position: _Position, signed: Decimal, price: Decimal) -> None:
    """Move a position by a signed fill; the average entry follows Alpaca's cost basis."""
    before = position.qty
    after = before + signed
    with localcontext() as context:
        context.prec = 40
        if before == 0 or ((before > 0) != (after > 0) and after != 0):
            position.avg_entry = price if after != 0 else Decimal(0)
        elif abs(after) > abs(before):
            total = position.avg_entry * abs(before) + price * abs(signed)
            position.avg_entry = (total / abs(after)).quantize(_AVG_STEP)
        if after == 0:
            position.avg_entry = Decimal(0)
    position.qty = after


def _activity_stamp(ns: int) -> str:
    moment = datetime.fromtimestamp(ns / 1_000_000_000, UTC)
    return moment.strftime("%Y%m%d%H%M%S") + f"{(ns // 1_000_000) % 1000:03d}"


def _rejection(rejected: SimRejected, free_cash: Decimal) -> AlpacaError:
    code = rejected.code
    if code is SimRejectCode.INSUFFICIENT_BALANCE:
        return AlpacaError(
            403, CODE_FORBIDDEN, "insufficient buying power", buying_power=fmt(free_cash)
        )
    if code is SimRejectCode.MIN_NOTIONAL:
        return _unprocessable("order notional must be >= 1.00")
    if code is SimRejectCode.STOP_WOULD_TRIGGER:
        return _unprocessable("stop price would trigger immediately")
    if code in (SimRejectCode.LOT_SIZE, SimRejectCode.MIN_QUANTITY, SimRejectCode.INVALID_QUANTITY):
        return _unprocessable("invalid qty")
    if code in (SimRejectCode.TICK_SIZE, SimRejectCode.INVALID_PRICE):
        return _unprocessable(f"invalid price: {rejected.reason}")
    return _unprocessable(rejected.reason)


def default_alpaca_instruments() -> tuple[InstrumentSpec, ...]:
    """AAPL, MSFT and SPY (fractionable, 1e-9 share increments) and SIRI (whole shares)."""

    def spec(symbol: str, price: str, level: str, *, fractional: bool = True) -> InstrumentSpec:
        lot = Decimal("0.000000001") if fractional else Decimal(1)
        return InstrumentSpec(
            symbol=symbol,
            base_asset=symbol,
            quote_asset="USD",
            initial_price=Decimal(price),
            tick_size=Decimal("0.01"),
            lot_size=lot,
            min_quantity=lot,
            min_notional=Decimal(1),
            spread_bps=Decimal(2),
            volatility_bps=Decimal(5),
            level_quantity=Decimal(level),
        )

    return (
        spec("AAPL", "190.00", "100"),
        spec("MSFT", "420.00", "100"),
        spec("SPY", "500.00", "200"),
        spec("SIRI", "4.50", "1000", fractional=False),
    )


def alpaca_sim_config(
    cash: Decimal, instruments: Iterable[InstrumentSpec] | None = None
) -> SimConfig:
    """The simulator as an Alpaca equities account: ``cash`` USD, shorting, no commissions."""
    specs = tuple(default_alpaca_instruments() if instruments is None else instruments)
    balances = {"USD": cash} | {spec.base_asset: Decimal(0) for spec in specs}
    return SimConfig(
        instruments=specs,
        balances=balances,
        depth_levels=5,
        level_spacing_bps=Decimal(5),
        fill_probability=1.0,
        allow_short=True,
        retain_closed_orders=None,
    )
