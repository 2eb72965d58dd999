"""OKX v5's rules over the matching simulator: pure, no I/O, thread-safe.

:class:`OkxExchange` takes requests as OKX receives them (the raw request
path, query string, body and headers of a REST call; the ``args`` of a
private WebSocket ``op``), checks them the way OKX does (the four
``OK-ACCESS-*`` headers, the base64 HMAC-SHA256 signature over
timestamp + method + requestPath + body, the 30 s timestamp window, the
demo-trading header, mandatory params, number syntax, ``tickSz``/``lotSz``/
``minSz``) and answers with OKX's own envelopes (``{"code", "msg", "data"}``),
per-order ``sCode``/``sMsg`` and HTTP statuses. Orders go to a
:class:`~tradenode.sim.MatchingSimulator`; what it reports becomes ``orders``
channel rows (with ``fillSz``/``fillPx``/``tradeId``/``accFillSz``/``state``),
handed, under the exchange's lock and so in order, to the listeners of
:meth:`OkxExchange.add_listener`, as are the public ``tickers`` and
``bbo-tbt`` rows after every price move.

Simplifications, all on the safe side for a client: fees are charged in the
quote currency (the simulator's rule; OKX charges a buyer in the base
currency), negative as OKX writes charges; only SPOT instruments exist
(other ``instType`` lists are empty); ``mass-cancel`` is OKX's MMP mass
cancel for options, so it refuses SPOT, as OKX does.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any, TypeAlias
from urllib.parse import parse_qsl

from tradenode.messages._enums import OrderType, Side, TimeInForce
from tradenode.sim import (
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimAmended,
    SimCanceled,
    SimConfig,
    SimEvent,
    SimExpired,
    SimFill,
    SimOrder,
    SimOrderStatus,
    SimRejectCode,
    SimRejected,
)

__all__ = [
    "DEFAULT_OKX_API_KEY",
    "DEFAULT_OKX_PASSPHRASE",
    "DEFAULT_OKX_SECRET",
    "OkxError",
    "OkxEvent",
    "OkxExchange",
    "OkxFillInfo",
    "OkxOrderInfo",
    "PrivatePush",
    "PublicPush",
    "Reply",
    "okx_rest_signature",
    "okx_ws_login_signature",
]

DEFAULT_OKX_API_KEY = "tradenode-fake-okx-key"
DEFAULT_OKX_SECRET = "tradenode-fake-okx-secret"
DEFAULT_OKX_PASSPHRASE = "tradenode-fake-okx-passphrase"
DEFAULT_UID = "614488474791936"

Json: TypeAlias = dict[str, Any]

_TIMESTAMP_WINDOW_MS = 30_000
_CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_INTEGER = re.compile(r"^[0-9]{1,20}$")
_ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_ORDER_ID_BASE = 600_000_000_000_000_000
_TRADE_ID_BASE = 200_000_000
_BILL_ID_BASE = 700_000_000_000_000_000
_MAX_LIMIT = 100
_ORD_TYPES = ("market", "limit", "post_only", "fok", "ioc")
_TIF = {
    "market": TimeInForce.GTC,
    "limit": TimeInForce.GTC,
    "post_only": TimeInForce.GTC,
    "fok": TimeInForce.FOK,
    "ioc": TimeInForce.IOC,
}
_MAX_BATCH = 20
_WINDOW_MS = 2000
_SINGLE_LIMIT = 60
_BATCH_LIMIT = 300
"""OKX's trade limits per user and instId, per 2 s: place, cancel and amend each 60
requests, their batch endpoints 300 orders; shared by REST and WebSocket."""
_ROUTE_LIMITS = {
    "GET account/balance": 10,
    "GET trade/order": 60,
    "GET trade/orders-pending": 60,
    "GET trade/fills": 60,
    "GET public/instruments": 20,
}
"""Requests per 2 s of the endpoints whose limits the venue knows (per user or IP)."""
MSG_RATE = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)

# cancelSource: 1 canceled by the user, 13 FOK not fully filled, 14 IOC remainder,
# 31 post-only would take, 0 by the system (a market order's unfilled rest).
_CANCEL_BY_USER = "1"
_CANCEL_SOURCE_BY_REASON = {"FOK": "13", "IOC": "14", "market": "0"}
_CANCEL_POST_ONLY = "31"

MSG_CANCEL_FAILED = (
    "Order cancellation failed as the order has been filled, canceled or does not exist."
)
MSG_AMEND_FAILED = (
    "Order modification failed as the order has been filled, canceled or does not exist."
)
MSG_DUPLICATE = "Duplicated clOrdId"
MSG_NO_ORDER = "Order does not exist."
#: How long OKX keeps an order cancelled without a fill ("the incomplete orders that
#: have been canceled are only reserved for 2 hours", order history reference).
CANCELLED_RETENTION_MS = 2 * 60 * 60 * 1000
MSG_NO_INSTRUMENT = "Instrument ID, Instrument ID code or Spread ID doesn't exist."
MSG_LOT = "Order quantity must be a multiple of the lot size."
MSG_MIN = "Your order should meet or exceed the minimum order amount."
MSG_ID_REQUIRED = "Either client order ID or order ID is required."
MSG_POST_ONLY_AMEND = "Order modification failed as the post-only order would take liquidity."


# ------------------------------------------------------------------ values


class OkxError(Exception):
    """An answer that refuses the whole request: ``{"code", "msg", "data": []}`` with a status."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> Json:
        return {"code": self.code, "msg": self.msg, "data": []}


class _ItemError(Exception):
    """One order of a request refused: its ``sCode``/``sMsg``."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PrivatePush:
    """One ``orders`` channel row (OKX's order fields plus this update's fill fields)."""

    channel: str
    inst_id: str
    row: Json


@dataclass(frozen=True, slots=True)
class PublicPush:
    """One public channel row: ``tickers`` or ``bbo-tbt`` of ``inst_id``."""

    channel: str
    inst_id: str
    row: Json


OkxEvent: TypeAlias = PrivatePush | PublicPush


@dataclass(frozen=True, slots=True)
class OkxOrderInfo:
    """What the venue knows of one order, for tests (OKX's vocabulary)."""

    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    ord_type: str
    state: str
    px: Decimal | None
    sz: Decimal
    acc_fill_sz: Decimal
    avg_px: Decimal | None
    cancel_source: str
    c_time: int
    u_time: int


@dataclass(frozen=True, slots=True)
class OkxFillInfo:
    trade_id: str
    bill_id: str
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    fill_px: Decimal
    fill_sz: Decimal
    fee: Decimal
    fee_ccy: str
    exec_type: str
    ts: int


@dataclass(slots=True)
class _Order:
    ord_id: str
    internal_id: str | None
    """The simulator's client order id; None for an order that never reached the book."""
    cl_ord_id: str
    inst_id: str
    side: str
    ord_type: str
    td_mode: str
    tgt_ccy: str
    tag: str
    px: Decimal | None
    sz: Decimal
    c_time: int
    u_time: int
    state_override: str | None = None
    cancel_source: str = ""
    amend_result: str = ""
    req_id: str = ""
    fee: Decimal = Decimal(0)
    last_fill: _Fill | None = None


@dataclass(frozen=True, slots=True)
class _Fill:
    trade_id: str
    bill_id: str
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str
    px: Decimal
    sz: Decimal
    fee: Decimal
    fee_ccy: str
    fee_rate: Decimal
    exec_type: str
    tag: str
    ts: int


# ---------------------------------------------------------------- signing


def okx_rest_signature(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    """base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))."""
    message = f"{timestamp}{method.upper()}{path}{body}"
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def okx_ws_login_signature(secret: str, timestamp: str) -> str:
    """The WebSocket ``login`` sign: the REST signature of ``GET /users/self/verify``."""
    return okx_rest_signature(secret, timestamp, "GET", "/users/self/verify", "")


def fmt(value: Decimal) -> str:
    """OKX's plain decimal text: no exponent, no trailing zeros (``"0.001"``, ``"50000"``)."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def _ms_to_text(ms: int) -> str:
    return str(ms)


def _parse_iso(text: str) -> int | None:
    """OKX's ``OK-ACCESS-TIMESTAMP`` (``2020-12-08T09:08:57.715Z``) in epoch ms, or None."""
    if not _ISO_MS.match(text):
        return None
    try:
        moment = datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        try:
            moment = datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None
    return int(moment.astimezone(UTC).timestamp() * 1000)


# ----------------------------------------------------------------- params


def _text(args: Mapping[str, Any], name: str) -> str:
    """A param as text; ``None``/absent and ``""`` both mean not sent (python-okx sends ``""``)."""
    value = args.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _empty(name: str) -> _ItemError:
    return _ItemError("50014", f"Parameter {name} can not be empty.")


def _param_error(name: str) -> _ItemError:
    return _ItemError("51000", f"Parameter {name} error")


def _decimal(args: Mapping[str, Any], name: str, *, required: bool = False) -> Decimal | None:
    raw = _text(args, name)
    if raw == "":
        if required:
            raise _empty(name)
        return None
    if not _NUMBER.match(raw):
        raise _param_error(name)
    value = Decimal(raw)
    if value <= 0:
        raise _param_error(name)
    return value


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    with localcontext() as context:
        context.prec = 60
        try:
            return value % step == 0
        except InvalidOperation:
            return False


def _to_error(error: _ItemError, status: int = 200) -> OkxError:
    return OkxError(error.code, error.msg, 400 if error.code in ("50014", "51000") else status)


# ---------------------------------------------------------------- limits


class _Throttle:
    """Sliding windows on the venue's clock: at most ``limit`` admissions per key per 2 s."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self._clock = clock
        self._seen: dict[str, deque[int]] = {}

    def admit(self, key: str, limit: int) -> bool:
        now = self._clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - _WINDOW_MS:
            seen.popleft()
        if len(seen) >= limit:
            return False
        seen.append(now)
        return True


# ---------------------------------------------------------------- exchange


@dataclass(frozen=True, slots=True)
class _Route:
    handler: Callable[[OkxExchange, Any], Json | Reply]
    private: bool
    post: bool = False
    places: bool = False


class OkxExchange:
    """One OKX trading account over a :class:`MatchingSimulator`.

    ``config`` instruments are named by OKX ``instId`` (``BTC-USDT``).
    ``clock`` returns epoch milliseconds; it stamps everything and drives the
    30 s timestamp window. ``demo``: True accepts only demo requests
    (``x-simulated-trading: 1``), False only live ones, None both (OKX
    answers the other kind 50101). ``rate_limits``: enforce OKX's per-2 s
    limits (trade ops per instId, shared by REST and WebSocket, and the
    endpoints of ``_ROUTE_LIMITS``): over them, 50011 (HTTP 429 for a REST
    request, the order's ``sCode`` inside a batch).
    """

    def __init__(
        self,
        config: SimConfig,
        *,
        api_key: str = DEFAULT_OKX_API_KEY,
        secret: str = DEFAULT_OKX_SECRET,
        passphrase: str = DEFAULT_OKX_PASSPHRASE,
        seed: int = 0,
        clock: Callable[[], int],
        demo: bool | None = None,
        uid: str = DEFAULT_UID,
        rate_limits: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        self._throttle = _Throttle(clock) if rate_limits else None
        self._clock = clock
        self._api_key = api_key
        self._secret = secret
        self._passphrase = passphrase
        self._demo = demo
        self._uid = uid
        self._config = config
        self._passive = config.fill_probability
        self._specs: dict[str, InstrumentSpec] = {spec.symbol: spec for spec in config.instruments}
        self._sim = MatchingSimulator(config, seed=seed, clock=self._sim_clock)
        self._orders: dict[str, _Order] = {}
        self._by_internal: dict[str, _Order] = {}
        self._pending_by_client: dict[str, str] = {}
        self._latest_by_client: dict[str, str] = {}
        self._fills: list[_Fill] = []
        self._submissions: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._listeners: list[Callable[[OkxEvent], None]] = []
        self._refusals: list[tuple[str, str]] = []
        self._next_order = 1
        self._next_internal = 0
        self._seq = 0
        self._holding = False
        self._held_moves: list[tuple[str, Decimal]] = []
        self._open_24h = {symbol: spec.initial_price for symbol, spec in self._specs.items()}
        self._high = dict(self._open_24h)
        self._low = dict(self._open_24h)
        self._routes = _routes()

    def _sim_clock(self) -> int:
        return self._clock() * 1_000_000

    # ------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        return f"OkxExchange(api_key={self._api_key!r}, instruments={list(self._specs)})"

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def uid(self) -> str:
        return self._uid

    def now(self) -> int:
        return self._clock()

    def instruments(self) -> list[str]:
        return list(self._specs)

    def add_listener(self, listener: Callable[[OkxEvent], None]) -> None:
        """``listener`` gets every event, in order, under the exchange's lock: keep it quick."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[OkxEvent], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _emit(self, event: OkxEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    # ------------------------------------------------------------- REST

    def route_key(self, method: str, path: str) -> str:
        """The name a fault knob or :meth:`calls` uses for a REST request: ``"POST trade/order"``."""
        return f"{method.upper()} {path.removeprefix('/api/v5/')}"

    def is_private_route(self, method: str, path: str) -> bool:
        route = self._routes.get((method.upper(), path.removeprefix("/api/v5/")))
        return route is not None and route.private

    def rest(
        self, method: str, path: str, query: str, body: str, headers: Mapping[str, str]
    ) -> Reply:
        """Answer ``METHOD path?query`` with ``body`` as OKX would.

        ``path`` is the raw request path (``/api/v5/trade/order``), ``query``
        the raw query string as sent (both are signed), ``headers`` with
        lowercase names.
        """
        with self._lock:
            method = method.upper()
            name = path.removeprefix("/api/v5/")
            route = self._routes.get((method, name))
            if route is None:
                known = any(p == name for _, p in self._routes)
                if known:
                    return Reply(405, OkxError("50115", "Invalid request method.").body())
                return Reply(404, {"msg": "Not Found", "code": "404"})
            self._calls[self.route_key(method, path)] += 1
            try:
                if route.private:
                    request_path = path + (f"?{query}" if query else "")
                    self._authenticate(headers, method, request_path, body)
                limit = _ROUTE_LIMITS.get(self.route_key(method, path))
                if limit is not None and not self._admit(self.route_key(method, path), limit):
                    raise OkxError("50011", "Too Many Requests", 429)
                argument: Any
                if route.post:
                    argument = self._json_body(body)
                else:
                    argument = dict(parse_qsl(query, keep_blank_values=True))
                if route.places:
                    argument = (argument, headers.get("exptime", ""))
                result = route.handler(self, argument)
            except OkxError as error:
                return Reply(error.status, error.body())
            except _ItemError as error:
                failure = _to_error(error)
                return Reply(failure.status, failure.body())
            if isinstance(result, Reply):
                return result
            if route.post:
                # Trade answers carry the gateway's receive and send times, in microseconds.
                stamp = str(self._clock() * 1000)
                result = {**result, "inTime": stamp, "outTime": stamp}
            return Reply(200, result)

    def _admit(self, key: str, limit: int) -> bool:
        return self._throttle is None or self._throttle.admit(key, limit)

    def _trade_admit(self, kind: str, args: Mapping[str, Any], *, batch: bool) -> None:
        """Count one order against OKX's per-instId trade limit, or refuse it with 50011."""
        inst = _text(args, "instIdCode") or _text(args, "instId")
        key = f"{kind}{'-batch' if batch else ''}:{inst}"
        if not self._admit(key, _BATCH_LIMIT if batch else _SINGLE_LIMIT):
            raise _ItemError("50011", MSG_RATE)

    @staticmethod
    def _single(envelope: Json) -> Json:
        """A single-order REST answer: a rate-limited order is the whole request's 429."""
        items = envelope["data"]
        if len(items) == 1 and items[0]["sCode"] == "50011":
            raise OkxError("50011", "Too Many Requests", 429)
        return envelope

    @staticmethod
    def _json_body(body: str) -> Any:
        if not body.strip():
            raise OkxError("50000", "Body for POST request cannot be empty.", 400)
        try:
            return json.loads(body)
        except ValueError as error:
            raise OkxError("50002", "JSON syntax error", 400) from error

    def _authenticate(
        self, headers: Mapping[str, str], method: str, request_path: str, body: str
    ) -> None:
        key = headers.get("ok-access-key", "")
        sign = headers.get("ok-access-sign", "")
        timestamp = headers.get("ok-access-timestamp", "")
        passphrase = headers.get("ok-access-passphrase", "")
        if not key:
            raise OkxError("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.', 401)
        if not passphrase:
            raise OkxError("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.', 401)
        if not sign:
            raise OkxError("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.', 401)
        if not timestamp:
            raise OkxError("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.', 401)
        stamp = _parse_iso(timestamp)
        if stamp is None:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401)
        if abs(self._clock() - stamp) > _TIMESTAMP_WINDOW_MS:
            raise OkxError("50102", "Timestamp request expired.", 401)
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise OkxError("50111", "Invalid OK-ACCESS-KEY.", 401)
        simulated = headers.get("x-simulated-trading", "0") == "1"
        if self._demo is not None and simulated != self._demo:
            raise OkxError("50101", "APIKey does not match current environment.", 401)
        if not hmac.compare_digest(passphrase.encode(), self._passphrase.encode()):
            raise OkxError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
        expected = okx_rest_signature(self._secret, timestamp, method, request_path, body)
        if not hmac.compare_digest(expected.encode(), sign.encode()):
            raise OkxError("50113", "Invalid signature.", 401)

    # -------------------------------------------------------- WebSocket

    def login(self, args: Any, *, simulated: bool = False) -> Json | None:
        """Check a WebSocket ``login``'s args; None if it logs in, else OKX's error event body.

        ``simulated``: the connection came to the demo-trading URL or said
        ``x-simulated-trading: 1`` (checked as REST checks it).
        """
        with self._lock:
            self._calls["ws login"] += 1
            if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
                return {"event": "error", "code": "60012", "msg": "Invalid request"}
            arg = args[0]
            key, passphrase = _text(arg, "apiKey"), _text(arg, "passphrase")
            timestamp, sign = _text(arg, "timestamp"), _text(arg, "sign")
            if not key or not passphrase or not timestamp or not sign:
                return {"event": "error", "code": "60009", "msg": "Login failed."}
            if not re.match(r"^[0-9]+(\.[0-9]+)?$", timestamp):
                return {"event": "error", "code": "60004", "msg": "Invalid timestamp"}
            if abs(self._clock() - int(Decimal(timestamp) * 1000)) > _TIMESTAMP_WINDOW_MS:
                return {"event": "error", "code": "60006", "msg": "Timestamp request expired"}
            if not hmac.compare_digest(key.encode(), self._api_key.encode()):
                return {"event": "error", "code": "60005", "msg": "Invalid apiKey"}
            if self._demo is not None and simulated != self._demo:
                return {
                    "event": "error",
                    "code": "60032",
                    "msg": "API key doesn't exist.",
                }
            if not hmac.compare_digest(passphrase.encode(), self._passphrase.encode()):
                return {"event": "error", "code": "60024", "msg": "Wrong passphrase"}
            expected = okx_ws_login_signature(self._secret, timestamp)
            if not hmac.compare_digest(expected.encode(), sign.encode()):
                return {"event": "error", "code": "60007", "msg": "Invalid sign"}
            return None

    WS_OPS = (
        "order",
        "batch-orders",
        "cancel-order",
        "batch-cancel-orders",
        "amend-order",
        "batch-amend-orders",
    )

    def ws_op(self, op: str, args: Any, exp_time: str = "") -> Json:
        """Answer one private WebSocket trade ``op``: ``{"code", "msg", "data"}`` (no id/op)."""
        with self._lock:
            self._calls[f"ws {op}"] += 1
            if op not in self.WS_OPS:
                return {"code": "60012", "msg": f"Invalid request: unknown op {op}", "data": []}
            if (
                not isinstance(args, list)
                or not args
                or not all(isinstance(arg, dict) for arg in args)
            ):
                return {"code": "60013", "msg": "Invalid args", "data": []}
            single = not op.startswith("batch-")
            if single and len(args) != 1:
                return {"code": "60013", "msg": "Invalid args", "data": []}
            if len(args) > _MAX_BATCH:
                return {
                    "code": "50025",
                    "msg": "Parameter args count exceeds the limit 20.",
                    "data": [],
                }
            kind = op.removeprefix("batch-").removesuffix("s")
            batch = len(args) > 1
            if kind == "order":
                items = [self._place_item(arg, exp_time, batch=batch) for arg in args]
            elif kind == "cancel-order":
                items = [self._cancel_item(arg, batch=batch) for arg in args]
            else:
                items = [self._amend_item(arg, exp_time, batch=batch) for arg in args]
            if single and items[0]["sCode"] == "50011":
                return {"code": "50011", "msg": MSG_RATE, "data": []}
            return _envelope(items, batch=not single)

    # ------------------------------------------------------ public data

    def _time(self, _params: Mapping[str, str]) -> Json:
        return _ok([{"ts": _ms_to_text(self._clock())}])

    def _instruments(self, params: Mapping[str, str]) -> Json:
        inst_type = params.get("instType", "")
        if not inst_type:
            raise OkxError("50014", "Parameter instType can not be empty.", 400)
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "EVENTS"):
            raise OkxError("51000", "Parameter instType error", 400)
        if inst_type != "SPOT":
            return _ok([])
        inst_id = params.get("instId", "")
        if inst_id and inst_id not in self._specs:
            raise OkxError("51001", MSG_NO_INSTRUMENT)
        specs = [self._specs[inst_id]] if inst_id else list(self._specs.values())
        return _ok([self._instrument_row(spec) for spec in specs])

    def _instrument_row(self, spec: InstrumentSpec) -> Json:
        return {
            "alias": "",
            "auctionEndTime": "",
            "baseCcy": spec.base_asset,
            "category": "1",
            "ctMult": "",
            "ctType": "",
            "ctVal": "",
            "ctValCcy": "",
            "expTime": "",
            "instFamily": "",
            "instId": spec.symbol,
            "instIdCode": self._inst_code(spec.symbol),
            "instType": "SPOT",
            "lever": "",
            "listTime": "1606468572000",
            "lotSz": fmt(spec.lot_size),
            "maxIcebergSz": "9999999999.0000000000000000",
            "maxLmtAmt": "20000000",
            "maxLmtSz": "9999999999",
            "maxMktAmt": "1000000",
            "maxMktSz": "1000000",
            "maxStopSz": "1000000",
            "maxTriggerSz": "9999999999",
            "maxTwapSz": "9999999999",
            "minSz": fmt(max(spec.min_quantity, spec.lot_size)),
            "optType": "",
            "quoteCcy": spec.quote_asset,
            "ruleType": "normal",
            "settleCcy": "",
            "state": "live",
            "stk": "",
            "tickSz": fmt(spec.tick_size),
            "tradeQuoteCcyList": [spec.quote_asset],
            "uly": "",
        }

    def ticker(self, inst_id: str) -> Json:
        quote = self._sim.quote(inst_id)
        size = fmt(self._config.level_quantity_for(inst_id))
        now = _ms_to_text(self._clock())
        open_24h = fmt(self._open_24h[inst_id])
        return {
            "instType": "SPOT",
            "instId": inst_id,
            "last": fmt(quote.last),
            "lastSz": size,
            "askPx": fmt(quote.ask),
            "askSz": size,
            "bidPx": fmt(quote.bid),
            "bidSz": size,
            "open24h": open_24h,
            "high24h": fmt(self._high[inst_id]),
            "low24h": fmt(self._low[inst_id]),
            "volCcy24h": "0",
            "vol24h": "0",
            "sodUtc0": open_24h,
            "sodUtc8": open_24h,
            "ts": now,
        }

    def bbo(self, inst_id: str) -> Json:
        quote = self._sim.quote(inst_id)
        size = fmt(self._config.level_quantity_for(inst_id))
        return {
            "asks": [[fmt(quote.ask), size, "0", "1"]],
            "bids": [[fmt(quote.bid), size, "0", "1"]],
            "ts": _ms_to_text(self._clock()),
            "seqId": self._seq,
        }

    def books5(self, inst_id: str) -> Json:
        """The ``books5`` channel's row: five levels a side (what the synthetic book shows)."""
        bids, asks = self._sim.depth(inst_id, min(5, self._config.depth_levels))
        return {
            "asks": [[fmt(p), fmt(q), "0", "1"] for p, q in asks],
            "bids": [[fmt(p), fmt(q), "0", "1"] for p, q in bids],
            "instId": inst_id,
            "ts": _ms_to_text(self._clock()),
            "seqId": self._seq,
        }

    def public_row(self, channel: str, inst_id: str) -> Json:
        """The current row of a public channel (its snapshot on subscribe)."""
        rows = {"tickers": self.ticker, "bbo-tbt": self.bbo, "books5": self.books5}
        with self._lock:
            return rows[channel](inst_id)

    def _ticker(self, params: Mapping[str, str]) -> Json:
        inst_id = params.get("instId", "")
        if not inst_id:
            raise OkxError("50014", "Parameter instId can not be empty.", 400)
        if inst_id not in self._specs:
            raise OkxError("51001", MSG_NO_INSTRUMENT)
        return _ok([self.ticker(inst_id)])

    def _tickers(self, params: Mapping[str, str]) -> Json:
        inst_type = params.get("instType", "")
        if not inst_type:
            raise OkxError("50014", "Parameter instType can not be empty.", 400)
        if inst_type != "SPOT":
            return _ok([])
        return _ok([self.ticker(inst_id) for inst_id in self._specs])

    def _books(self, params: Mapping[str, str]) -> Json:
        inst_id = params.get("instId", "")
        if not inst_id:
            raise OkxError("50014", "Parameter instId can not be empty.", 400)
        if inst_id not in self._specs:
            raise OkxError("51001", MSG_NO_INSTRUMENT)
        raw = params.get("sz", "") or "1"
        if not _INTEGER.match(raw) or not 1 <= int(raw) <= 400:
            raise OkxError("51000", "Parameter sz error", 400)
        levels = min(int(raw), self._config.depth_levels)
        bids, asks = self._sim.depth(inst_id, levels)
        return _ok(
            [
                {
                    "asks": [[fmt(p), fmt(q), "0", "1"] for p, q in asks],
                    "bids": [[fmt(p), fmt(q), "0", "1"] for p, q in bids],
                    "ts": _ms_to_text(self._clock()),
                }
            ]
        )

    # ------------------------------------------------------ price driving

    def step(self, count: int = 1, inst_id: str | None = None) -> None:
        """Advance prices ``count`` times (one instrument, or all) and match resting orders."""
        with self._lock:
            if inst_id is not None and inst_id not in self._specs:
                raise KeyError(inst_id)
            names = [inst_id] if inst_id is not None else list(self._specs)
            for _ in range(count):
                self._publish(self._sim.step(inst_id))
                for name in names:
                    self._moved(name)

    def set_price(self, inst_id: str, price: Decimal) -> None:
        with self._lock:
            if inst_id not in self._specs:
                raise KeyError(inst_id)
            self._publish(self._sim.set_price(inst_id, price))
            self._moved(inst_id)

    def _moved(self, inst_id: str) -> None:
        last = self._sim.quote(inst_id).last
        if self._holding:
            self._held_moves.append((inst_id, last))
        self._high[inst_id] = max(self._high[inst_id], last)
        self._low[inst_id] = min(self._low[inst_id], last)
        self._seq += 1
        self._emit(PublicPush("tickers", inst_id, self.ticker(inst_id)))
        self._emit(PublicPush("bbo-tbt", inst_id, self.bbo(inst_id)))
        self._emit(PublicPush("books5", inst_id, self.books5(inst_id)))

    def last_price(self, inst_id: str) -> Decimal:
        with self._lock:
            return self._sim.quote(inst_id).last

    # ---------------------------------------------------- delayed fills

    def hold_fills(self) -> None:
        """Resting orders stop filling on price moves (the moves are kept) until released."""
        with self._lock:
            if not self._holding:
                self._holding = True
                self._swap_passive(0.0)

    def release_fills(self) -> int:
        """Replay the held price moves against the resting orders; returns how many fills."""
        with self._lock:
            if not self._holding:
                return 0
            self._holding = False
            self._swap_passive(self._passive)
            moves, self._held_moves = self._held_moves, []
            before = len(self._fills)
            final = {inst_id: self._sim.quote(inst_id).last for inst_id, _ in moves}
            for inst_id, price in moves:
                self._publish(self._sim.set_price(inst_id, price))
            for inst_id, price in final.items():
                if self._sim.quote(inst_id).last != price:
                    self._publish(self._sim.set_price(inst_id, price))
            return len(self._fills) - before

    def _swap_passive(self, probability: float) -> None:
        """Rebuild the simulator with another passive fill probability, state and streams kept."""
        config = dataclasses.replace(self._config, fill_probability=probability)
        self._sim = MatchingSimulator.restore(config, self._sim.snapshot(), clock=self._sim_clock)

    # ------------------------------------------------------ refusal knob

    def place(self, args: Mapping[str, Any]) -> Json:
        """Place one order from Python (another client of the account): its ``data`` item."""
        with self._lock:
            return self._place_item(args, "")

    def cancel(self, args: Mapping[str, Any]) -> Json:
        """Cancel one order from Python (another client of the account): its ``data`` item."""
        with self._lock:
            return self._cancel_item(args)

    def refuse_next_order(self, code: str, msg: str) -> None:
        with self._lock:
            self._refusals.append((code, msg))

    # --------------------------------------------------------------- orders

    def _inst_code(self, inst_id: str) -> int:
        """The instrument's ``instIdCode`` (what the 2026 WebSocket trade ops name it by)."""
        return 1000000 + list(self._specs).index(inst_id)

    def _inst_id(self, args: Mapping[str, Any]) -> str:
        """``instIdCode`` (wins, as on OKX) or ``instId`` as an instId; "" when neither is sent."""
        code = _text(args, "instIdCode")
        if code:
            for inst_id in self._specs:
                if str(self._inst_code(inst_id)) == code:
                    return inst_id
            raise _ItemError("51001", MSG_NO_INSTRUMENT)
        return _text(args, "instId")

    def _spec(self, inst_id: str) -> InstrumentSpec:
        if not inst_id:
            raise _empty("instId")
        spec = self._specs.get(inst_id)
        if spec is None:
            raise _ItemError("51001", MSG_NO_INSTRUMENT)
        return spec

    def _place(self, argument: tuple[Any, str]) -> Json:
        body, exp_time = argument
        if not isinstance(body, dict):
            raise OkxError("50002", "JSON syntax error", 400)
        return self._single(_envelope([self._place_item(body, exp_time)], batch=False))

    def _batch_place(self, argument: tuple[Any, str]) -> Json:
        body, exp_time = argument
        if not isinstance(body, list) or not body or not all(isinstance(a, dict) for a in body):
            raise OkxError("50002", "JSON syntax error", 400)
        if len(body) > _MAX_BATCH:
            raise OkxError("50025", "Parameter orders count exceeds the limit 20.")
        batch = len(body) > 1
        items = [self._place_item(arg, exp_time, batch=batch) for arg in body]
        return _envelope(items, batch=True)

    def _place_item(self, args: Mapping[str, Any], exp_time: str, *, batch: bool = False) -> Json:
        cl_ord_id, tag = _text(args, "clOrdId"), _text(args, "tag")
        now = self._clock()
        try:
            self._trade_admit("place", args, batch=batch)
        except _ItemError as error:
            return _item("", cl_ord_id, now, error.code, error.msg, tag=tag)
        if cl_ord_id:
            self._submissions[cl_ord_id] += 1
        try:
            order = self._place_order(args, exp_time)
        except _ItemError as error:
            return _item("", cl_ord_id, now, error.code, error.msg, tag=tag)
        return _item(order.ord_id, cl_ord_id, now, "0", "Order placed", tag=tag)

    def _place_order(self, args: Mapping[str, Any], exp_time: str) -> _Order:
        cl_ord_id = _text(args, "clOrdId")
        if cl_ord_id and not _CLIENT_ID.match(cl_ord_id):
            raise _param_error("clOrdId")
        if exp_time:
            if not _INTEGER.match(exp_time):
                raise _param_error("expTime")
            if int(exp_time) < self._clock():
                raise _ItemError("50037", "Order expired.")
        spec = self._spec(self._inst_id(args))
        td_mode = _text(args, "tdMode")
        if not td_mode:
            raise _empty("tdMode")
        if td_mode not in ("cash", "cross", "isolated"):
            raise _param_error("tdMode")
        side = _text(args, "side")
        if not side:
            raise _empty("side")
        if side not in ("buy", "sell"):
            raise _param_error("side")
        ord_type = _text(args, "ordType")
        if not ord_type:
            raise _empty("ordType")
        if ord_type not in _ORD_TYPES:
            raise _param_error("ordType")
        size = _decimal(args, "sz", required=True)
        assert size is not None
        price: Decimal | None = None
        if ord_type != "market":
            price = _decimal(args, "px", required=True)
            assert price is not None
            if not _is_multiple(price, spec.tick_size):
                raise _param_error("px")
        tgt_ccy = _text(args, "tgtCcy")
        if tgt_ccy not in ("", "base_ccy", "quote_ccy"):
            raise _param_error("tgtCcy")
        if ord_type == "market" and not tgt_ccy:
            tgt_ccy = "quote_ccy" if side == "buy" else "base_ccy"
        if ord_type != "market":
            tgt_ccy = ""
        if _text(args, "posSide") not in ("", "net"):
            raise _param_error("posSide")
        quantity = size
        if tgt_ccy == "quote_ccy":
            quantity = self._quote_quantity(spec, side, size)
        if not _is_multiple(quantity, spec.lot_size):
            raise _ItemError("51121", MSG_LOT)
        if quantity < max(spec.min_quantity, spec.lot_size):
            raise _ItemError("51020", MSG_MIN)
        if cl_ord_id and cl_ord_id in self._pending_by_client:
            raise _ItemError("51016", MSG_DUPLICATE)
        if self._refusals:
            code, msg = self._refusals.pop(0)
            raise _ItemError(code, msg)
        self._next_internal += 1
        internal_id = f"okx{self._next_internal}"
        now = self._clock()
        events = self._sim.submit(
            internal_id,
            spec.symbol,
            Side(side.upper()),
            OrderType.MARKET if ord_type == "market" else OrderType.LIMIT,
            quantity,
            price=price,
            time_in_force=_TIF[ord_type],
            post_only=ord_type == "post_only",
        )
        first = events[0]
        if isinstance(first, SimRejected) and first.code is not SimRejectCode.WOULD_TAKE:
            raise _rejection(first, spec, side)
        order = _Order(
            ord_id=str(_ORDER_ID_BASE + self._next_order),
            internal_id=internal_id if isinstance(first, SimAccepted) else None,
            cl_ord_id=cl_ord_id,
            inst_id=spec.symbol,
            side=side,
            ord_type=ord_type,
            td_mode=td_mode,
            tgt_ccy=tgt_ccy,
            tag=_text(args, "tag"),
            px=price,
            sz=size,
            c_time=now,
            u_time=now,
        )
        self._next_order += 1
        self._orders[order.ord_id] = order
        if cl_ord_id:
            self._latest_by_client[cl_ord_id] = order.ord_id
        if order.internal_id is None:
            # OKX accepts a post-only order that would take, then cancels it (cancelSource 31).
            order.state_override = "canceled"
            order.cancel_source = _CANCEL_POST_ONLY
            self._push(order, state="live", progress=(Decimal(0), None))
            self._push(order)
            return order
        self._by_internal[internal_id] = order
        if cl_ord_id:
            self._pending_by_client[cl_ord_id] = order.ord_id
        self._publish(events)
        return order

    def _quote_quantity(self, spec: InstrumentSpec, side: str, amount: Decimal) -> Decimal:
        """The base quantity a quote-currency market order's ``sz`` buys (or sells for)."""
        bids, asks = self._sim.depth(spec.symbol, self._config.depth_levels)
        levels = asks if side == "buy" else bids
        rate = self._config.taker_commission_bps / Decimal(10000)
        remaining, quantity = amount, Decimal(0)
        with localcontext() as context:
            context.prec = 60
            for price, size in levels:
                unit = price * (1 + rate) if side == "buy" else price
                take = min(size, (remaining / unit).quantize(spec.lot_size, rounding=ROUND_DOWN))
                if take <= 0:
                    break
                quantity += take
                remaining -= take * unit
                if take < size:
                    break
        return quantity

    def _view(self, order: _Order) -> SimOrder | None:
        if order.internal_id is None:
            return None
        return self._sim.order(order.internal_id)

    def _state(self, order: _Order, view: SimOrder | None) -> str:
        if order.state_override is not None or view is None:
            return order.state_override or "canceled"
        return {
            SimOrderStatus.NEW: "live",
            SimOrderStatus.PARTIALLY_FILLED: "partially_filled",
            SimOrderStatus.FILLED: "filled",
        }.get(view.status, "canceled")

    def _publish(self, events: Sequence[SimEvent]) -> None:
        """Turn simulator events into ``orders`` channel rows and fill records."""
        for event in events:
            order = self._by_internal.get(event.client_order_id)
            if order is None:
                continue
            now = self._clock()
            if isinstance(event, SimFill):
                order.u_time = now
                fill = self._record_fill(order, event)
                order.last_fill = fill
                order.fee += fill.fee
                self._push(
                    order,
                    fill=fill,
                    state=_fill_state(event),
                    progress=(event.cumulative_quantity, self._average(order)),
                )
            elif isinstance(event, SimAccepted):
                self._push(order, state="live", progress=(Decimal(0), None))
            elif isinstance(event, SimExpired):
                order.u_time = now
                order.cancel_source = _expiry_source(event.reason)
                self._push(order)
            elif isinstance(event, SimCanceled):
                order.u_time = now
                order.cancel_source = order.cancel_source or _CANCEL_BY_USER
                self._push(order)
            elif isinstance(event, SimAmended):
                order.u_time = now
                self._push(order, amended=True)
            view = self._view(order)
            closed = view is None or not view.is_open
            if closed and self._pending_by_client.get(order.cl_ord_id) == order.ord_id:
                del self._pending_by_client[order.cl_ord_id]

    def _record_fill(self, order: _Order, fill: SimFill) -> _Fill:
        rate_bps = (
            self._config.maker_commission_bps
            if fill.is_maker
            else self._config.taker_commission_bps
        )
        record = _Fill(
            trade_id=str(_TRADE_ID_BASE + fill.trade_id),
            bill_id=str(_BILL_ID_BASE + fill.trade_id),
            ord_id=order.ord_id,
            cl_ord_id=order.cl_ord_id,
            inst_id=order.inst_id,
            side=order.side,
            px=fill.price,
            sz=fill.quantity,
            fee=-fill.commission,
            fee_ccy=fill.commission_asset,
            fee_rate=-rate_bps / Decimal(10000),
            exec_type="M" if fill.is_maker else "T",
            tag=order.tag,
            ts=fill.ts_ns // 1_000_000,
        )
        self._fills.append(record)
        return record

    def _push(
        self,
        order: _Order,
        *,
        fill: _Fill | None = None,
        state: str | None = None,
        amended: bool = False,
        progress: tuple[Decimal, Decimal | None] | None = None,
    ) -> None:
        """Push ``order`` as it is now, or as of one event: ``progress`` is (accFillSz, avgPx) then."""
        row = self._order_row(order, for_push=True, fill=fill, progress=progress)
        if state is not None:
            row["state"] = state
        if fill is None:
            # Only the update that carries a fill has fill fields (OKX's dedup rule 1).
            for name in ("fillPx", "fillSz", "tradeId", "fillTime", "fillFee", "fillFeeCcy"):
                row[name] = ""
            row["fillNotionalUsd"] = ""
            row["execType"] = ""
        if amended:
            row["amendResult"] = order.amend_result
            row["reqId"] = order.req_id
        self._emit(PrivatePush("orders", order.inst_id, row))

    def _average(self, order: _Order) -> Decimal | None:
        """The average price of ``order``'s fills recorded so far."""
        mine = [fill for fill in self._fills if fill.ord_id == order.ord_id]
        size = sum((fill.sz for fill in mine), Decimal(0))
        if not size:
            return None
        with localcontext() as context:
            context.prec = 40
            return sum((fill.px * fill.sz for fill in mine), Decimal(0)) / size

    def _order_row(
        self,
        order: _Order,
        *,
        for_push: bool = False,
        fill: _Fill | None = None,
        progress: tuple[Decimal, Decimal | None] | None = None,
    ) -> Json:
        view = self._view(order)
        acc = view.filled_quantity if view is not None else Decimal(0)
        avg = view.avg_fill_price if view is not None else None
        if progress is not None:
            acc, avg = progress
        spec = self._specs[order.inst_id]
        last = fill if fill is not None else order.last_fill
        row: Json = {
            "accFillSz": fmt(acc),
            "algoClOrdId": "",
            "algoId": "",
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": fmt(avg) if avg is not None else ("0" if for_push else ""),
            "cTime": _ms_to_text(order.c_time),
            "cancelSource": order.cancel_source,
            "cancelSourceReason": "",
            "category": "normal",
            "ccy": "",
            "clOrdId": order.cl_ord_id,
            "fee": fmt(order.fee),
            "feeCcy": spec.quote_asset,
            "fillPx": fmt(last.px) if last else "",
            "fillSz": fmt(last.sz) if last else "",
            "fillTime": _ms_to_text(last.ts) if last else "",
            "instId": order.inst_id,
            "instType": "SPOT",
            "isTpLimit": "false",
            "lever": "",
            "linkedAlgoOrd": {"algoId": ""},
            "ordId": order.ord_id,
            "ordType": order.ord_type,
            "pnl": "0",
            "posSide": "",
            "px": fmt(order.px) if order.px is not None else "",
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": spec.quote_asset,
            "reduceOnly": "false",
            "side": order.side,
            "slOrdPx": "",
            "slTriggerPx": "",
            "slTriggerPxType": "",
            "source": "",
            "state": self._state(order, view),
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": fmt(order.sz),
            "tag": order.tag,
            "tdMode": order.td_mode,
            "tgtCcy": order.tgt_ccy,
            "tpOrdPx": "",
            "tpTriggerPx": "",
            "tpTriggerPxType": "",
            "tradeId": last.trade_id if last else "",
            "tradeQuoteCcy": spec.quote_asset,
            "uTime": _ms_to_text(order.u_time),
        }
        if for_push:
            row.update(
                {
                    "amendResult": "",
                    "amendSource": "",
                    "code": "0",
                    "msg": "",
                    "reqId": "",
                    "execType": last.exec_type if last else "",
                    "fillFee": fmt(last.fee) if last else "",
                    "fillFeeCcy": last.fee_ccy if last else "",
                    "fillNotionalUsd": fmt(last.px * last.sz) if last else "",
                    "fillPnl": "0",
                    "fillIdxPx": "",
                    "fillMarkPx": "",
                    "fillFwdPx": "",
                    "fillMarkVol": "",
                    "fillPxUsd": "",
                    "fillPxVol": "",
                    "lastPx": fmt(self._sim.quote(order.inst_id).last),
                    "notionalUsd": fmt(
                        order.sz * (order.px or self._sim.quote(order.inst_id).last)
                    ),
                }
            )
        return row

    # -------------------------------------------------------------- cancel

    def _find(self, args: Mapping[str, Any]) -> _Order | None:
        """The order named by ``ordId`` (wins) or ``clOrdId`` (the latest with it) in ``instId``."""
        spec = self._spec(self._inst_id(args))
        ord_id, cl_ord_id = _text(args, "ordId"), _text(args, "clOrdId")
        if not ord_id and not cl_ord_id:
            raise _ItemError("51003", MSG_ID_REQUIRED)
        if ord_id:
            order = self._orders.get(ord_id)
        else:
            found = self._pending_by_client.get(cl_ord_id, self._latest_by_client.get(cl_ord_id))
            order = None if found is None else self._orders.get(found)
        if order is None or order.inst_id != spec.symbol:
            return None
        return order

    def _cancel(self, body: Any) -> Json:
        if not isinstance(body, dict):
            raise OkxError("50002", "JSON syntax error", 400)
        return self._single(_envelope([self._cancel_item(body)], batch=False))

    def _batch_cancel(self, body: Any) -> Json:
        if not isinstance(body, list) or not body or not all(isinstance(a, dict) for a in body):
            raise OkxError("50002", "JSON syntax error", 400)
        if len(body) > _MAX_BATCH:
            raise OkxError("50025", "Parameter orders count exceeds the limit 20.")
        batch = len(body) > 1
        return _envelope([self._cancel_item(arg, batch=batch) for arg in body], batch=True)

    def _cancel_item(self, args: Mapping[str, Any], *, batch: bool = False) -> Json:
        now = self._clock()
        ord_id, cl_ord_id = _text(args, "ordId"), _text(args, "clOrdId")
        try:
            self._trade_admit("cancel", args, batch=batch)
            order = self._find(args)
            if order is None:
                raise _ItemError("51400", MSG_CANCEL_FAILED)
            view = self._view(order)
            if view is None or not view.is_open or order.internal_id is None:
                raise _ItemError("51400", MSG_CANCEL_FAILED)
            order.cancel_source = _CANCEL_BY_USER
            self._publish(self._sim.cancel(order.internal_id))
        except _ItemError as error:
            return {
                "clOrdId": cl_ord_id,
                "ordId": ord_id,
                "ts": _ms_to_text(now),
                "sCode": error.code,
                "sMsg": error.msg,
            }
        return {
            "clOrdId": order.cl_ord_id,
            "ordId": order.ord_id,
            "ts": _ms_to_text(now),
            "sCode": "0",
            "sMsg": "",
        }

    def _mass_cancel(self, body: Any) -> Json:
        if not isinstance(body, dict):
            raise OkxError("50002", "JSON syntax error", 400)
        inst_type = _text(body, "instType")
        if not inst_type:
            raise OkxError("50014", "Parameter instType can not be empty.", 400)
        if not _text(body, "instFamily"):
            raise OkxError("50014", "Parameter instFamily can not be empty.", 400)
        # OKX's mass cancel is the options market-maker protection: OPTION only.
        raise OkxError("51000", "Parameter instType error", 400)

    # --------------------------------------------------------------- amend

    def _amend(self, argument: tuple[Any, str]) -> Json:
        body, exp_time = argument
        if not isinstance(body, dict):
            raise OkxError("50002", "JSON syntax error", 400)
        return self._single(_envelope([self._amend_item(body, exp_time)], batch=False))

    def _batch_amend(self, argument: tuple[Any, str]) -> Json:
        body, exp_time = argument
        if not isinstance(body, list) or not body or not all(isinstance(a, dict) for a in body):
            raise OkxError("50002", "JSON syntax error", 400)
        batch = len(body) > 1
        items = [self._amend_item(arg, exp_time, batch=batch) for arg in body]
        return _envelope(items, batch=True)

    def _amend_item(self, args: Mapping[str, Any], exp_time: str, *, batch: bool = False) -> Json:
        now = self._clock()
        ord_id, cl_ord_id, req_id = (
            _text(args, "ordId"),
            _text(args, "clOrdId"),
            _text(args, "reqId"),
        )
        order: _Order | None = None
        try:
            self._trade_admit("amend", args, batch=batch)
            if req_id and not _CLIENT_ID.match(req_id):
                raise _param_error("reqId")
            if exp_time and _INTEGER.match(exp_time) and int(exp_time) < self._clock():
                raise _ItemError("50037", "Order expired.")
            order = self._find(args)
            new_size = _decimal(args, "newSz")
            new_price = _decimal(args, "newPx")
            if new_size is None and new_price is None:
                raise _ItemError("50015", "Either parameter newSz or newPx is required")
            if order is None or order.internal_id is None:
                raise _ItemError("51503", MSG_AMEND_FAILED)
            view = self._view(order)
            if view is None or not view.is_open:
                raise _ItemError("51503", MSG_AMEND_FAILED)
            if new_price is not None and order.ord_type == "market":
                raise _param_error("newPx")
            spec = self._specs[order.inst_id]
            if new_price is not None and not _is_multiple(new_price, spec.tick_size):
                raise _param_error("newPx")
            if new_size is not None and not _is_multiple(new_size, spec.lot_size):
                raise _ItemError("51121", MSG_LOT)
            if new_size is not None and new_size <= view.filled_quantity:
                # OKX: a new size at or below what has filled completes the order.
                new_size = view.filled_quantity
            events = self._sim.amend(order.internal_id, quantity=new_size, price=new_price)
            first = events[0]
            if isinstance(first, SimRejected):
                raise _amend_rejection(first, spec, order.side)
            if new_size is not None:
                order.sz = new_size
            if new_price is not None:
                order.px = new_price
            order.amend_result, order.req_id = "0", req_id
            self._publish(events)
        except _ItemError as error:
            if order is not None and _text(args, "cxlOnFail") == "true":
                self._cancel_on_failed_amend(order, req_id)
            return {
                "clOrdId": cl_ord_id,
                "ordId": ord_id,
                "ts": _ms_to_text(now),
                "reqId": req_id,
                "sCode": error.code,
                "sMsg": error.msg,
                "subCode": "",
            }
        return {
            "clOrdId": order.cl_ord_id,
            "ordId": order.ord_id,
            "ts": _ms_to_text(now),
            "reqId": req_id,
            "sCode": "0",
            "sMsg": "",
            "subCode": "",
        }

    def _cancel_on_failed_amend(self, order: _Order, req_id: str) -> None:
        view = self._view(order)
        if order.internal_id is None or view is None or not view.is_open:
            return
        order.amend_result, order.req_id = "1", req_id
        order.cancel_source = _CANCEL_BY_USER
        self._publish(self._sim.cancel(order.internal_id))

    # ------------------------------------------------------------- queries

    def _forgotten(self, order: _Order) -> bool:
        """OKX keeps an order cancelled without a fill for 2 hours only: after that
        neither ``trade/order`` nor the order history shows it."""
        view = self._view(order)
        filled = view.filled_quantity if view is not None else Decimal(0)
        return (
            self._state(order, view) == "canceled"
            and filled == 0
            and self._clock() - order.u_time > CANCELLED_RETENTION_MS
        )

    def _get_order(self, params: Mapping[str, str]) -> Json:
        try:
            order = self._find(params)
        except _ItemError as error:
            raise _to_error(error) from None
        if order is None or self._forgotten(order):
            return {"code": "51603", "msg": MSG_NO_ORDER, "data": []}
        return _ok([self._order_row(order)])

    def _list_orders(self, params: Mapping[str, str], *, pending: bool) -> Json:
        inst_type = params.get("instType", "")
        if not pending and not inst_type:
            raise OkxError("50014", "Parameter instType can not be empty.", 400)
        if inst_type not in ("", "SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise OkxError("51000", "Parameter instType error", 400)
        inst_id, ord_type, state = (
            params.get("instId", ""),
            params.get("ordType", ""),
            params.get("state", ""),
        )
        limit = _limit(params)
        after, before = params.get("after", ""), params.get("before", "")
        rows: list[Json] = []
        for order in sorted(self._orders.values(), key=lambda o: int(o.ord_id), reverse=True):
            if inst_type not in ("", "SPOT") or (inst_id and order.inst_id != inst_id):
                continue
            if ord_type and order.ord_type not in ord_type.split(","):
                continue
            if after and int(order.ord_id) >= _int_or_zero(after):
                continue
            if before and int(order.ord_id) <= _int_or_zero(before):
                continue
            current = self._state(order, self._view(order))
            is_pending = current in ("live", "partially_filled")
            if is_pending != pending or (state and current != state):
                continue
            if not pending and self._forgotten(order):
                continue
            rows.append(self._order_row(order))
        if before and not after:
            rows = rows[-limit:]
        return _ok(rows[:limit])

    def _orders_pending(self, params: Mapping[str, str]) -> Json:
        return self._list_orders(params, pending=True)

    def _orders_history(self, params: Mapping[str, str]) -> Json:
        return self._list_orders(params, pending=False)

    def _fill_rows(self, params: Mapping[str, str], *, history: bool) -> Json:
        inst_type = params.get("instType", "")
        if history and not inst_type:
            raise OkxError("50014", "Parameter instType can not be empty.", 400)
        inst_id, ord_id = params.get("instId", ""), params.get("ordId", "")
        after, before = params.get("after", ""), params.get("before", "")
        begin, end = params.get("begin", ""), params.get("end", "")
        limit = _limit(params)
        rows: list[Json] = []
        for fill in reversed(self._fills):
            if inst_type not in ("", "SPOT") or (inst_id and fill.inst_id != inst_id):
                continue
            if ord_id and fill.ord_id != ord_id:
                continue
            if after and int(fill.bill_id) >= _int_or_zero(after):
                continue
            if before and int(fill.bill_id) <= _int_or_zero(before):
                continue
            if begin and fill.ts < _int_or_zero(begin):
                continue
            if end and fill.ts > _int_or_zero(end):
                continue
            rows.append(_fill_row(fill))
        if before and not after:
            rows = rows[-limit:]
        return _ok(rows[:limit])

    def _fills_recent(self, params: Mapping[str, str]) -> Json:
        return self._fill_rows(params, history=False)

    def _fills_history(self, params: Mapping[str, str]) -> Json:
        return self._fill_rows(params, history=True)

    def _balance(self, params: Mapping[str, str]) -> Json:
        wanted = [c for c in params.get("ccy", "").split(",") if c]
        now = _ms_to_text(self._clock())
        details: list[Json] = []
        total_eq = Decimal(0)
        for ccy, balance in sorted(self._sim.balances().items()):
            if wanted and ccy not in wanted:
                continue
            if not wanted and balance.total == 0:
                continue
            eq_usd = balance.total * self._usd_price(ccy)
            total_eq += eq_usd
            details.append(
                {
                    "availBal": fmt(balance.free),
                    "availEq": fmt(balance.free),
                    "borrowFroz": "",
                    "cashBal": fmt(balance.total),
                    "ccy": ccy,
                    "crossLiab": "",
                    "disEq": fmt(eq_usd),
                    "eq": fmt(balance.total),
                    "eqUsd": fmt(eq_usd),
                    "fixedBal": "0",
                    "frozenBal": fmt(balance.locked),
                    "imr": "",
                    "interest": "",
                    "isoEq": "0",
                    "isoLiab": "",
                    "isoUpl": "",
                    "liab": "",
                    "maxLoan": "",
                    "mgnRatio": "",
                    "mmr": "",
                    "notionalLever": "",
                    "ordFrozen": fmt(balance.locked),
                    "rewardBal": "0",
                    "spotInUseAmt": "",
                    "spotIsoBal": "0",
                    "stgyEq": "0",
                    "twap": "0",
                    "uTime": now,
                    "upl": "",
                    "uplLiab": "",
                }
            )
        return _ok(
            [
                {
                    "adjEq": "",
                    "borrowFroz": "",
                    "details": details,
                    "imr": "",
                    "isoEq": "0",
                    "mgnRatio": "",
                    "mmr": "",
                    "notionalUsd": "",
                    "ordFroz": "",
                    "totalEq": fmt(total_eq),
                    "uTime": now,
                    "upl": "",
                }
            ]
        )

    def _currencies(self, params: Mapping[str, str]) -> Json:
        """``GET asset/currencies`` (funding account): one chain per currency the account knows."""
        wanted = [c for c in params.get("ccy", "").split(",") if c]
        rows = [
            {
                "canDep": True,
                "canInternal": True,
                "canWd": True,
                "ccy": ccy,
                "chain": f"{ccy}-{ccy}",
                "depQuotaFixed": "",
                "depQuoteDailyLayer2": "",
                "fee": "0",
                "logoLink": "",
                "mainNet": True,
                "maxFee": "0",
                "maxFeeForCtAddr": "0",
                "maxWd": "1000000",
                "minDep": "0",
                "minDepArrivalConfirm": "1",
                "minFee": "0",
                "minFeeForCtAddr": "0",
                "minInternal": "0",
                "minWd": "0",
                "minWdUnlockConfirm": "1",
                "name": ccy,
                "needTag": False,
                "usedDepQuotaFixed": "",
                "usedWdQuota": "0",
                "wdQuota": "1000000",
                "wdTickSz": "8",
            }
            for ccy in sorted(self._sim.balances())
            if not wanted or ccy in wanted
        ]
        return _ok(rows)

    def _usd_price(self, ccy: str) -> Decimal:
        if ccy in ("USDT", "USDC", "USD"):
            return Decimal(1)
        for inst_id, spec in self._specs.items():
            if spec.base_asset == ccy and spec.quote_asset in ("USDT", "USDC", "USD"):
                return self._sim.quote(inst_id).last
        return Decimal(0)

    # --------------------------------------------------------- inspection

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{ccy: (available, frozen)}``."""
        with self._lock:
            return {a: (b.free, b.locked) for a, b in self._sim.balances().items()}

    def orders(self) -> list[OkxOrderInfo]:
        with self._lock:
            result = []
            for order in sorted(self._orders.values(), key=lambda o: int(o.ord_id)):
                view = self._view(order)
                result.append(
                    OkxOrderInfo(
                        ord_id=order.ord_id,
                        cl_ord_id=order.cl_ord_id,
                        inst_id=order.inst_id,
                        side=order.side,
                        ord_type=order.ord_type,
                        state=self._state(order, view),
                        px=order.px,
                        sz=order.sz,
                        acc_fill_sz=view.filled_quantity if view else Decimal(0),
                        avg_px=view.avg_fill_price if view else None,
                        cancel_source=order.cancel_source,
                        c_time=order.c_time,
                        u_time=order.u_time,
                    )
                )
            return result

    def fills(self) -> list[OkxFillInfo]:
        with self._lock:
            return [
                OkxFillInfo(
                    trade_id=f.trade_id,
                    bill_id=f.bill_id,
                    ord_id=f.ord_id,
                    cl_ord_id=f.cl_ord_id,
                    inst_id=f.inst_id,
                    side=f.side,
                    fill_px=f.px,
                    fill_sz=f.sz,
                    fee=f.fee,
                    fee_ccy=f.fee_ccy,
                    exec_type=f.exec_type,
                    ts=f.ts,
                )
                for f in self._fills
            ]

    def submissions(self) -> dict[str, int]:
        """How many placement requests named each clOrdId (REST and WS, refused ones included)."""
        with self._lock:
            return dict(self._submissions)

    def calls(self) -> dict[str, int]:
        """Requests per endpoint: ``"POST trade/order"`` (REST), ``"ws order"`` (WS op)."""
        with self._lock:
            return dict(self._calls)

    def holding_fills(self) -> bool:
        with self._lock:
            return self._holding

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield


# ---------------------------------------------------------------- helpers


def _ok(data: list[Json]) -> Json:
    return {"code": "0", "msg": "", "data": data}


def _item(ord_id: str, cl_ord_id: str, now: int, code: str, msg: str, *, tag: str) -> Json:
    return {
        "clOrdId": cl_ord_id,
        "ordId": ord_id,
        "tag": tag,
        "ts": _ms_to_text(now),
        "sCode": code,
        "sMsg": msg,
        "subCode": "",
    }


def _envelope(items: list[Json], *, batch: bool) -> Json:
    """OKX's answer to per-order operations: code 0 all done, 1 all failed, 2 some failed."""
    failed = sum(1 for item in items if item["sCode"] != "0")
    if failed == 0:
        code = "0"
    elif failed == len(items) or not batch:
        code = "1"
    else:
        code = "2"
    msg = {"0": "", "1": "All operations failed", "2": "Bulk operation partially succeeded."}[code]
    if not batch and code == "1":
        msg = ""
    return {"code": code, "msg": msg, "data": items}


def _fill_state(fill: SimFill) -> str:
    return "filled" if fill.leaves_quantity == 0 else "partially_filled"


def _expiry_source(reason: str) -> str:
    if reason.startswith("FOK"):
        return _CANCEL_SOURCE_BY_REASON["FOK"]
    if reason.startswith("IOC"):
        return _CANCEL_SOURCE_BY_REASON["IOC"]
    return _CANCEL_SOURCE_BY_REASON["market"]


def _fill_row(fill: _Fill) -> Json:
    return {
        "billId": fill.bill_id,
        "clOrdId": fill.cl_ord_id,
        "execType": fill.exec_type,
        "fee": fmt(fill.fee),
        "feeCcy": fill.fee_ccy,
        "feeRate": fmt(fill.fee_rate),
        "fillIdxPx": "",
        "fillMarkPx": "",
        "fillMarkVol": "",
        "fillFwdPx": "",
        "fillPnl": "0",
        "fillPx": fmt(fill.px),
        "fillPxUsd": "",
        "fillPxVol": "",
        "fillSz": fmt(fill.sz),
        "fillTime": _ms_to_text(fill.ts),
        "instId": fill.inst_id,
        "instType": "SPOT",
        "ordId": fill.ord_id,
        "posSide": "net",
        "side": fill.side,
        "subType": "1" if fill.side == "buy" else "2",
        "tag": fill.tag,
        "tradeId": fill.trade_id,
        "tradeQuoteCcy": fill.inst_id.split("-")[-1],
        "ts": _ms_to_text(fill.ts),
    }


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit", "")
    if raw == "":
        return _MAX_LIMIT
    if not _INTEGER.match(raw) or not 1 <= int(raw) <= _MAX_LIMIT:
        raise OkxError("51000", "Parameter limit error", 400)
    return int(raw)


def _int_or_zero(raw: str) -> int:
    if not _INTEGER.match(raw):
        raise OkxError("51000", "Parameter after/before error", 400)
    return int(raw)


def _rejection(rejected: SimRejected, spec: InstrumentSpec, side: str) -> _ItemError:
    code = rejected.code
    if code is SimRejectCode.INSUFFICIENT_BALANCE:
        ccy = spec.quote_asset if side == "buy" else spec.base_asset
        return _ItemError("51008", f"Order failed. Insufficient {ccy} balance in account.")
    if code in (SimRejectCode.LOT_SIZE, SimRejectCode.INVALID_QUANTITY):
        return _ItemError("51121", MSG_LOT)
    if code in (SimRejectCode.MIN_QUANTITY, SimRejectCode.MIN_NOTIONAL):
        return _ItemError("51020", MSG_MIN)
    if code in (SimRejectCode.TICK_SIZE, SimRejectCode.INVALID_PRICE):
        return _param_error("px")
    if code is SimRejectCode.DUPLICATE_CLIENT_ORDER_ID:
        return _ItemError("51016", MSG_DUPLICATE)
    return _ItemError("51000", f"Parameter error: {rejected.reason}")


def _amend_rejection(rejected: SimRejected, spec: InstrumentSpec, side: str) -> _ItemError:
    code = rejected.code
    if code in (SimRejectCode.ALREADY_CLOSED, SimRejectCode.UNKNOWN_ORDER):
        return _ItemError("51503", MSG_AMEND_FAILED)
    if code is SimRejectCode.WOULD_TAKE:
        return _ItemError("51511", MSG_POST_ONLY_AMEND)
    if code is SimRejectCode.QUANTITY_BELOW_FILLED:
        return _param_error("newSz")
    return _rejection(rejected, spec, side)


def _routes() -> dict[tuple[str, str], _Route]:
    E = OkxExchange
    return {
        ("GET", "public/time"): _Route(E._time, private=False),
        ("GET", "public/instruments"): _Route(E._instruments, private=False),
        ("GET", "market/ticker"): _Route(E._ticker, private=False),
        ("GET", "market/tickers"): _Route(E._tickers, private=False),
        ("GET", "market/books"): _Route(E._books, private=False),
        ("POST", "trade/order"): _Route(E._place, private=True, post=True, places=True),
        ("POST", "trade/batch-orders"): _Route(
            E._batch_place, private=True, post=True, places=True
        ),
        ("POST", "trade/cancel-order"): _Route(E._cancel, private=True, post=True),
        ("POST", "trade/cancel-batch-orders"): _Route(E._batch_cancel, private=True, post=True),
        ("POST", "trade/amend-order"): _Route(E._amend, private=True, post=True, places=True),
        ("POST", "trade/amend-batch-orders"): _Route(
            E._batch_amend, private=True, post=True, places=True
        ),
        ("POST", "trade/mass-cancel"): _Route(E._mass_cancel, private=True, post=True),
        ("GET", "trade/order"): _Route(E._get_order, private=True),
        ("GET", "trade/orders-pending"): _Route(E._orders_pending, private=True),
        ("GET", "trade/orders-history"): _Route(E._orders_history, private=True),
        ("GET", "trade/orders-history-archive"): _Route(E._orders_history, private=True),
        ("GET", "trade/fills"): _Route(E._fills_recent, private=True),
        ("GET", "trade/fills-history"): _Route(E._fills_history, private=True),
        ("GET", "account/balance"): _Route(E._balance, private=True),
        ("GET", "asset/currencies"): _Route(E._currencies, private=True),
    }


def okx_sim_config(balances: Mapping[str, Decimal], base: SimConfig) -> SimConfig:
    """``base`` with OKX instIds (``BTC-USDT``) and these balances, spot only (no shorting)."""
    instruments = tuple(
        dataclasses.replace(spec, symbol=f"{spec.base_asset}-{spec.quote_asset}")
        if "-" not in spec.symbol
        else spec
        for spec in base.instruments
    )
    return dataclasses.replace(
        base, instruments=instruments, balances=dict(balances), allow_short=False
    )
