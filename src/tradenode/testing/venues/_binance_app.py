"""The fake Binance's ASGI side: REST, WebSocket API, market streams, admin.

The WebSocket API connection keeps its session here: the API key it logged
on with (``session.logon``, Ed25519 keys only), since when, and its user data
stream subscriptions (``userDataStream.subscribe`` for the session's key,
``userDataStream.subscribe.signature`` for any key).

Built on Starlette (running on trio through anyio) and served by hypercorn.
The exchange logic lives in :class:`~._binance_exchange.BinanceExchange`;
this module only moves bytes: it reads the raw query string and body, feeds
them to the exchange, writes its answers with their headers, routes user
events and ``bookTicker`` updates to the WebSocket connections that asked
for them, and applies the fault knobs (:class:`Faults`) on the way.

Everything in :class:`Hub` runs on the server's trio thread; the exchange
hands it events through ``TrioToken.run_sync_soon``, which keeps their order.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tradenode.testing.venues._binance_exchange import (
    BinanceExchange,
    Json,
    MarketEvent,
    Reply,
    UserEvent,
    VenueEvent,
)

__all__ = [
    "CORRUPTIONS",
    "MANGLINGS",
    "Faults",
    "Hub",
    "build_app",
]

_log = logging.getLogger("tradenode.testing.venues.binance")

CORRUPTIONS = ("invalid_json", "unknown_event", "missing_field")
MANGLINGS = ("drop", "null", "text")
"""How ``mangle_answers`` spoils an answer's fields: remove them, set them to
``null``, or set them to a string that is no number (``"garbled"``)."""
_MISSING_FIELD = {"executionReport": "X", "outboundAccountPosition": "B", "balanceUpdate": "d"}
_UNKNOWN_ERROR = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


# ------------------------------------------------------------------ faults


@dataclass(slots=True)
class _RequestFault:
    remaining: int
    endpoints: frozenset[str] | None
    delay: float = 0.0
    status: int = 503
    code: int = -1007
    after: bool = False
    fields: tuple[str, ...] = ()
    how: str = ""

    def matches(self, key: str) -> bool:
        return self.endpoints is None or key in self.endpoints


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the faults do to one request: wait ``delay`` s, then maybe fail before/after."""

    delay: float = 0.0
    fail: tuple[int, int] | None = None
    after: bool = False
    mangle: tuple[tuple[str, ...], str] | None = None
    """The fields to spoil in a successful answer, and how (``MANGLINGS``)."""


@dataclass(slots=True)
class Faults:
    """Thread-safe fault knobs for requests and user events, consumed in arrival order."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _delays: list[_RequestFault] = field(default_factory=list)
    _failures: list[_RequestFault] = field(default_factory=list)
    _manglings: list[_RequestFault] = field(default_factory=list)
    _held: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    _next_hold: int = 0
    duplicate: int = 0
    reorder: int = 0
    corrupt: list[str] = field(default_factory=list)
    on_change: Callable[[], None] = lambda: None
    """Called (outside the lock) when a request starts or stops being held."""

    def delay_requests(
        self, count: int, seconds: float, endpoints: Iterable[str] | None = None
    ) -> None:
        with self._lock:
            self._delays.append(_RequestFault(count, _keys(endpoints), delay=seconds))

    def fail_requests(
        self,
        count: int,
        *,
        after: bool = False,
        status: int = 503,
        code: int = -1007,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        with self._lock:
            self._failures.append(
                _RequestFault(count, _keys(endpoints), status=status, code=code, after=after)
            )

    def mangle_answers(
        self,
        count: int,
        fields: Iterable[str],
        how: str = "drop",
        endpoints: Iterable[str] | None = None,
    ) -> None:
        if how not in MANGLINGS:
            raise ValueError(f"how must be one of {', '.join(MANGLINGS)}, not {how!r}")
        names = tuple(fields)
        if not names:
            raise ValueError("fields must name at least one field")
        with self._lock:
            self._manglings.append(_RequestFault(count, _keys(endpoints), fields=names, how=how))

    def plan(self, key: str) -> FaultPlan:
        """Consume the knobs that apply to the request ``key`` (``"POST order"``, ``"order.place"``)."""
        with self._lock:
            delay = _take(self._delays, key)
            failure = _take(self._failures, key)
            mangling = _take(self._manglings, key)
        return FaultPlan(
            delay=0.0 if delay is None else delay.delay,
            fail=None if failure is None else (failure.status, failure.code),
            after=failure is not None and failure.after,
            mangle=None if mangling is None else (mangling.fields, mangling.how),
        )

    def add_event_faults(
        self, *, duplicate: int = 0, reorder: int = 0, corrupt: str | None = None
    ) -> None:
        if corrupt is not None and corrupt not in CORRUPTIONS:
            raise ValueError(f"corrupt={corrupt!r}: one of {CORRUPTIONS}")
        with self._lock:
            self.duplicate += duplicate
            self.reorder += reorder
            if corrupt is not None:
                self.corrupt.append(corrupt)

    def take_event_faults(self) -> tuple[bool, bool, str | None]:
        """For the next user event: duplicate it? hold it for reordering? corrupt it how?"""
        with self._lock:
            duplicate = self.duplicate > 0
            self.duplicate -= duplicate
            hold = self.reorder > 0
            self.reorder -= hold
            corrupt = self.corrupt.pop(0) if self.corrupt else None
        return duplicate, hold, corrupt

    def hold_started(self, key: str, client_order_id: str | None) -> int:
        """Note a request whose delay has started; the number :meth:`hold_ended` takes."""
        with self._lock:
            self._next_hold += 1
            self._held[self._next_hold] = (key, client_order_id)
            number = self._next_hold
        self.on_change()
        return number

    def hold_ended(self, number: int) -> None:
        with self._lock:
            self._held.pop(number, None)
        self.on_change()

    def pending(self) -> dict[str, Any]:
        """What the knobs still have in store, and the requests being held right now."""
        with self._lock:
            return {
                "delays": [_describe(fault) for fault in self._delays],
                "failures": [_describe(fault) for fault in self._failures],
                "manglings": [_describe(fault) for fault in self._manglings],
                "holding": dict(collections.Counter(key for key, _ in self._held.values())),
                "held": [
                    {"endpoint": key, "client_order_id": client_order_id}
                    for key, client_order_id in self._held.values()
                ],
                "duplicate": self.duplicate,
                "reorder": self.reorder,
                "corrupt": list(self.corrupt),
            }

    def stop_reordering(self) -> None:
        with self._lock:
            self.reorder = 0

    def clear(self) -> None:
        with self._lock:
            self._delays.clear()
            self._failures.clear()
            self._manglings.clear()
            self.duplicate = self.reorder = 0
            self.corrupt.clear()


def _describe(fault: _RequestFault) -> dict[str, Any]:
    return {
        "remaining": fault.remaining,
        "endpoints": None if fault.endpoints is None else sorted(fault.endpoints),
        **(
            {"seconds": fault.delay}
            if fault.delay
            else {"fields": list(fault.fields), "how": fault.how}
            if fault.how
            else {"status": fault.status, "code": fault.code, "after": fault.after}
        ),
    }


def _keys(endpoints: Iterable[str] | None) -> frozenset[str] | None:
    return None if endpoints is None else frozenset(endpoints)


def _take(faults: list[_RequestFault], key: str) -> _RequestFault | None:
    for fault in faults:
        if fault.matches(key):
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None


# --------------------------------------------------------------------- hub


class _Connection:
    """One WebSocket connection: an unbounded outbox drained by its writer task."""

    def __init__(self, kind: str, connected_since: int = 0) -> None:
        self.kind = kind
        self.send, self.receive = trio.open_memory_channel[str](math.inf)
        self.market: set[str] = set()
        self.combined = False
        self.subscriptions: set[int] = set()
        self.next_subscription = 0
        self.listen_keys: set[str] = set()
        self.ended: list[int] = []
        self.connected_since = connected_since
        self.api_key: str | None = None
        """The API key of ``session.logon``; None while not logged on."""
        self.authorized_since: int | None = None
        self.session_subscription: int | None = None
        """The subscription ``userDataStream.subscribe`` opened (``session.logout`` ends it)."""

    def push(self, text: str) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self.send.send_nowait(text)


class Hub:
    """Routes events to connections; lives on the trio thread."""

    def __init__(self, exchange: BinanceExchange, faults: Faults) -> None:
        self.exchange = exchange
        self.faults = faults
        self.connections: set[_Connection] = set()
        self._held: list[Json] = []
        self.on_change: Callable[[], None] = lambda: None
        """Called when a connection's streams change (subscribed, unsubscribed, gone)."""

    def market_streams(self) -> list[str]:
        return sorted({stream for c in self.connections for stream in c.market})

    # events from the exchange (scheduled with run_sync_soon, so in order)

    def dispatch(self, event: VenueEvent) -> None:
        if isinstance(event, MarketEvent):
            for connection in list(self.connections):
                if event.stream in connection.market:
                    connection.push(self._stream_text(connection, event.stream, event.payload))
            return
        self._user_event(event)

    def _user_event(self, event: UserEvent) -> None:
        duplicate, hold, corrupt = self.faults.take_event_faults()
        if hold:
            self._held.append(event.payload)
            if self.faults.reorder == 0:
                self.release_held()
            return
        self._deliver(event.payload, corrupt)
        if duplicate:
            self._deliver(event.payload, None)

    def release_held(self) -> None:
        """Deliver the held events, newest first; later events are no longer held."""
        self.faults.stop_reordering()
        held, self._held = self._held, []
        for payload in reversed(held):
            self._deliver(payload, None)

    def _deliver(self, payload: Json, corrupt: str | None) -> None:
        if corrupt == "unknown_event":
            payload = {**payload, "e": "unknownEventType"}
        elif corrupt == "missing_field":
            payload = dict(payload)
            payload.pop(_MISSING_FIELD.get(str(payload.get("e")), "E"), None)
        for connection in list(self.connections):
            texts = [
                _dumps({"subscriptionId": sid, "event": payload})
                for sid in sorted(connection.subscriptions)
            ]
            texts.extend(
                self._stream_text(connection, key, payload)
                for key in sorted(connection.listen_keys)
                if self.exchange.listen_key_active(key)
            )
            for text in texts:
                connection.push(text[: len(text) // 2] if corrupt == "invalid_json" else text)

    @staticmethod
    def _stream_text(connection: _Connection, stream: str, payload: Json) -> str:
        if connection.combined:
            return _dumps({"stream": stream, "data": payload})
        return _dumps(payload)

    # knobs

    def terminate_user_streams(self) -> int:
        """Send ``eventStreamTerminated`` on every user data subscription and end them."""
        count = 0
        now = self.exchange.now()
        for connection in list(self.connections):
            for sid in sorted(connection.subscriptions):
                connection.push(
                    _dumps(
                        {"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": now}}
                    )
                )
                count += 1
            connection.subscriptions.clear()
        return count

    def server_shutdown(self) -> None:
        now = self.exchange.now()
        for connection in list(self.connections):
            event = {"e": "serverShutdown", "E": now}
            if connection.kind == "api":
                connection.push(_dumps({"event": event}))
            else:
                connection.push(_dumps(event))

    def expire_listen_key(self) -> str | None:
        key = self.exchange.expire_listen_key()
        if key is None:
            return None
        event = {"e": "listenKeyExpired", "E": self.exchange.now(), "listenKey": key}
        for connection in list(self.connections):
            if key in connection.listen_keys:
                connection.listen_keys.discard(key)
                connection.push(self._stream_text(connection, key, event))
        return key

    def subscribe_streams(self, connection: _Connection, names: Iterable[str]) -> None:
        for name in names:
            if self.exchange.listen_key_active(name):
                connection.listen_keys.add(name)
            elif name not in connection.market:
                connection.market.add(name)
                self.exchange.want_streams([name])
        self.on_change()

    def unsubscribe_streams(self, connection: _Connection, names: Iterable[str]) -> None:
        for name in names:
            connection.listen_keys.discard(name)
            if name in connection.market:
                connection.market.discard(name)
                self.exchange.unwant_streams([name])
        self.on_change()

    def forget(self, connection: _Connection) -> None:
        """A connection has gone: its market streams are no longer wanted."""
        self.connections.discard(connection)
        self.unsubscribe_streams(connection, sorted(connection.market))


# ---------------------------------------------------------------- requests


async def _guarded(
    faults: Faults,
    key: str,
    run: Callable[[], Reply],
    client_order_id: Callable[[], str | None] = lambda: None,
) -> tuple[Reply, bool]:
    """Run one request through the request faults; returns the reply and whether it failed.

    ``client_order_id`` (the new order's, for a placement) is shown while the request is held.
    """
    plan = faults.plan(key)
    if plan.delay:
        number = faults.hold_started(key, client_order_id())
        try:
            await trio.sleep(plan.delay)
        finally:
            faults.hold_ended(number)
    if plan.fail is not None and not plan.after:
        return _failure(*plan.fail), True
    reply = run()
    if plan.fail is not None:
        return _failure(*plan.fail), True
    if plan.mangle is not None and reply.ok:
        fields, how = plan.mangle
        reply = dataclasses.replace(reply, body=_mangled(reply.body, fields, how))
    return reply, False


def _mangled(body: Any, fields: tuple[str, ...], how: str) -> Any:
    """``body`` with ``fields`` spoiled ``how`` (``MANGLINGS``): in an object, or in
    every object row of a list; anything else as it was."""
    if isinstance(body, list):
        return [_mangled(row, fields, how) for row in body]
    if not isinstance(body, dict):
        return body
    spoiled = dict(body)
    for name in fields:
        if how == "drop":
            spoiled.pop(name, None)
        else:
            spoiled[name] = None if how == "null" else "garbled"
    return spoiled


def _failure(status: int, code: int) -> Reply:
    message = (
        _UNKNOWN_ERROR
        if code == -1007
        else "Internal error; unable to process your request. Please try again."
    )
    return Reply(status, {"code": code, "msg": message})


def _rest_key(method: str, name: str) -> str:
    return f"{method} {name}"


def _new_client_order_id(params: Mapping[str, list[str]]) -> str | None:
    """The client order id a request would place an order under, if it names one."""
    values = params.get("newClientOrderId")
    return values[0] if values else None


def build_app(exchange: BinanceExchange, hub: Hub, faults: Faults) -> Starlette:
    """REST under ``/api/v3/``, the WebSocket API at ``/ws-api/v3``, streams at ``/ws`` and ``/stream``."""

    async def rest(request: Request) -> Response:
        name = request.path_params["name"]
        query = request.scope.get("query_string", b"").decode("utf-8", "replace")
        body = (await request.body()).decode("utf-8", "replace")
        api_key = request.headers.get("x-mbx-apikey")
        method = request.method.upper()
        reply, _ = await _guarded(
            faults,
            _rest_key(method, name),
            lambda: exchange.rest(method, name, query, body, api_key),
            lambda: _new_client_order_id(parse_qs(query) | parse_qs(body)),
        )
        return JSONResponse(reply.body, status_code=reply.status, headers=dict(reply.headers))

    async def sapi(request: Request) -> Response:
        """The wallet endpoints under ``/sapi/v1/`` (``asset/tradeFee``)."""
        request.path_params["name"] = f"sapi/v1/{request.path_params['name']}"
        return await rest(request)

    async def ws_api(websocket: WebSocket) -> None:
        connection = _Connection("api", exchange.now())
        await websocket.accept()
        hub.connections.add(connection)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_writer, websocket, connection)
                while True:
                    text = await _receive_text(websocket)
                    if text is None:
                        break
                    await _api_frame(exchange, hub, faults, connection, text)
                nursery.cancel_scope.cancel()
        finally:
            hub.connections.discard(connection)

    async def raw_stream(websocket: WebSocket) -> None:
        path = websocket.path_params.get("streams", "")
        await _stream_session(hub, websocket, [n for n in path.split("/") if n], combined=False)

    async def combined_stream(websocket: WebSocket) -> None:
        names = websocket.query_params.get("streams", "")
        await _stream_session(hub, websocket, [n for n in names.split("/") if n], combined=True)

    routes = [
        Route("/api/v3/{name:path}", rest, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/sapi/v1/{name:path}", sapi, methods=["GET", "POST", "PUT", "DELETE"]),
        WebSocketRoute("/ws-api/v3", ws_api),
        WebSocketRoute("/ws", raw_stream),
        WebSocketRoute("/ws/{streams:path}", raw_stream),
        WebSocketRoute("/stream", combined_stream),
    ]
    return Starlette(routes=routes)


async def _receive_text(websocket: WebSocket) -> str | None:
    """The next text (or UTF-8 binary) frame; None once the client has gone."""
    try:
        message = await websocket.receive()
    except (WebSocketDisconnect, RuntimeError):
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        data = message.get("bytes") or b""
        text = data.decode("utf-8", "replace")
    return str(text)


async def _writer(websocket: WebSocket, connection: _Connection) -> None:
    async for text in connection.receive:
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return


async def _stream_session(
    hub: Hub, websocket: WebSocket, names: list[str], *, combined: bool
) -> None:
    connection = _Connection("stream")
    connection.combined = combined
    hub.subscribe_streams(connection, names)
    hub.connections.add(connection)
    try:
        await websocket.accept()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_writer, websocket, connection)
            while True:
                text = await _receive_text(websocket)
                if text is None:
                    break
                connection.push(_dumps(_stream_request(hub, connection, text)))
            nursery.cancel_scope.cancel()
    finally:
        hub.forget(connection)


def _stream_request(hub: Hub, connection: _Connection, text: str) -> Json:
    """A live ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` request on a market stream."""
    try:
        request = json.loads(text)
    except ValueError:
        return {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
    if not isinstance(request, dict):
        return {"code": 2, "msg": "Invalid request: expected an object"}
    request_id = request.get("id")
    method = request.get("method")
    params = request.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        return {
            "code": 1,
            "msg": "Invalid value type: expected a list of strings",
            "id": request_id,
        }
    if method == "SUBSCRIBE":
        hub.subscribe_streams(connection, params)
        return {"result": None, "id": request_id}
    if method == "UNSUBSCRIBE":
        hub.unsubscribe_streams(connection, params)
        return {"result": None, "id": request_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": sorted(connection.market | connection.listen_keys), "id": request_id}
    if method == "SET_PROPERTY":
        return {"result": None, "id": request_id}
    if method == "GET_PROPERTY":
        return {"result": connection.combined, "id": request_id}
    return {
        "code": 2,
        "msg": f"Invalid request: unknown variant {method}, expected one of SUBSCRIBE, "
        "UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY",
        "id": request_id,
    }


def _ws_params(raw: Mapping[str, Any]) -> dict[str, str]:
    """WebSocket API params as the strings Binance signs (numbers as sent, booleans lowercase)."""
    params: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, list | dict):
            params[key] = _dumps(value)
        else:
            params[key] = str(value)
    return params


async def _api_frame(
    exchange: BinanceExchange, hub: Hub, faults: Faults, connection: _Connection, text: str
) -> None:
    """Answer one WebSocket API request frame."""
    try:
        frame = json.loads(text)
        raw = json.loads(text, parse_float=str, parse_int=str)
    except ValueError:
        connection.push(
            _dumps(
                {"id": None, "status": 400, "error": {"code": -1135, "msg": "Invalid JSON Request"}}
            )
        )
        return
    if not isinstance(frame, dict) or not isinstance(frame.get("method"), str):
        request_id = frame.get("id") if isinstance(frame, dict) else None
        connection.push(
            _dumps(
                {
                    "id": request_id,
                    "status": 400,
                    "error": {
                        "code": -1102,
                        "msg": "Mandatory parameter 'method' was not sent, was empty/null, or malformed.",
                    },
                }
            )
        )
        return
    request_id = frame.get("id")
    method = str(frame["method"]).removeprefix("v3/")
    raw_params = raw.get("params") or {}
    params = _ws_params(raw_params if isinstance(raw_params, dict) else {})

    def run() -> Reply:
        return _api_call(exchange, connection, method, params)

    reply, _ = await _guarded(faults, method, run, lambda: params.get("newClientOrderId"))
    answer: Json = {"id": request_id, "status": reply.status}
    answer["result" if reply.ok else "error"] = reply.body
    answer["rateLimits"] = list(reply.rate_limits)
    connection.push(_dumps(answer))
    ended, connection.ended = connection.ended, []
    now = exchange.now()
    for sid in ended:
        connection.push(
            _dumps({"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": now}})
        )


def _session_status(exchange: BinanceExchange, connection: _Connection) -> Json:
    """``session.logon``/``session.status``/``session.logout``'s result, in Binance's order."""
    return {
        "apiKey": connection.api_key,
        "authorizedSince": connection.authorized_since,
        "connectedSince": connection.connected_since,
        "returnRateLimits": True,
        "serverTime": exchange.now(),
        "userDataStream": bool(connection.subscriptions),
    }


def _api_call(
    exchange: BinanceExchange, connection: _Connection, method: str, params: dict[str, str]
) -> Reply:
    reply = exchange.ws_request(method, params, session_key=connection.api_key)
    if reply.status == 401 and connection.api_key is not None and "apiKey" not in params:
        # Binance revokes a session whose key stopped being valid.
        connection.api_key = connection.authorized_since = None
    if not reply.ok:
        return reply
    if method == "session.logon":
        connection.api_key = params["apiKey"]
        connection.authorized_since = exchange.timestamp_ms(params) or exchange.now()
        return Reply(200, _session_status(exchange, connection), rate_limits=reply.rate_limits)
    if method == "session.status":
        return Reply(200, _session_status(exchange, connection), rate_limits=reply.rate_limits)
    if method == "session.logout":
        connection.api_key = connection.authorized_since = None
        sid, connection.session_subscription = connection.session_subscription, None
        if sid is not None and sid in connection.subscriptions:
            connection.subscriptions.discard(sid)
            connection.ended = [sid]
        return Reply(200, _session_status(exchange, connection), rate_limits=reply.rate_limits)
    if method in ("userDataStream.subscribe.signature", "userDataStream.subscribe"):
        if connection.subscriptions:
            error = {"code": -2035, "msg": "User Data Stream subscription already active."}
            return Reply(400, error, rate_limits=reply.rate_limits)
        sid = connection.next_subscription
        connection.next_subscription += 1
        connection.subscriptions.add(sid)
        if method == "userDataStream.subscribe":
            connection.session_subscription = sid
        return Reply(200, {"subscriptionId": sid}, rate_limits=reply.rate_limits)
    if method == "userDataStream.unsubscribe":
        raw = params.get("subscriptionId")
        ended = sorted(connection.subscriptions)
        if raw is not None:
            sid = int(raw) if raw.lstrip("-").isdigit() else -1
            if sid not in connection.subscriptions:
                error = {"code": -2036, "msg": "User Data Stream subscription not active."}
                return Reply(400, error, rate_limits=reply.rate_limits)
            ended = [sid]
        connection.subscriptions.difference_update(ended)
        if connection.session_subscription in ended:
            connection.session_subscription = None
        connection.ended = ended
        return Reply(200, {}, rate_limits=reply.rate_limits)
    if method == "session.subscriptions":
        result = [{"subscriptionId": sid} for sid in sorted(connection.subscriptions)]
        return Reply(200, result, rate_limits=reply.rate_limits)
    return reply


# ------------------------------------------------------------------ admin
