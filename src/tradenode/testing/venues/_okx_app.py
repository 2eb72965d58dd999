"""The fake OKX's ASGI side: REST under ``/api/v5/`` and the public and private WebSockets.

This module only moves bytes: it hands the raw request path, query string,
body and headers to :class:`~._okx_exchange.OkxExchange`, writes its
answers, keeps each WebSocket connection's session (logged in or not, its
subscriptions, its last traffic for OKX's 30 s idle rule), routes the
exchange's ``orders``/``tickers``/``bbo-tbt`` rows to the connections that
subscribed, and applies the wire fault knobs (:class:`OkxFaults`) on the way.

Everything in :class:`OkxHub` runs on the server's trio thread; the exchange
hands it events through ``TrioToken.run_sync_soon``, which keeps their order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from tradenode.testing.venues._loopback import ABORT
from tradenode.testing.venues._okx_exchange import (
    Json,
    OkxEvent,
    OkxExchange,
    PrivatePush,
    PublicPush,
    Reply,
)

__all__ = ["CORRUPTIONS", "OkxApp", "OkxFaults", "OkxHub"]

_log = logging.getLogger("tradenode.testing.venues.okx")

CORRUPTIONS = ("invalid_json", "missing_field", "unknown_channel")
_RATE_MSG = (
    "Rate limit reached. Please refer to API documentation and throttle requests accordingly."
)
_BUSY_MSG = "Service temporarily unavailable. Please try again later."
_PUBLIC_CHANNELS = ("tickers", "bbo-tbt", "books5")
_PRIVATE_CHANNELS = ("orders",)
_INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION", "ANY")

_Send = Callable[[Any], Awaitable[None]]
_Receive = Callable[[], Awaitable[Any]]


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


# ------------------------------------------------------------------ faults


@dataclass(slots=True)
class _RequestFault:
    kind: str
    """``rate`` (429/50011 before processing), ``fail`` (5xx before) or ``lose`` (process, no answer)."""
    remaining: int
    endpoints: frozenset[str] | None
    status: int = 503
    retry_after: int = 1

    def matches(self, keys: Iterable[str]) -> bool:
        return self.endpoints is None or any(key in self.endpoints for key in keys)

    def describe(self) -> Json:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "endpoints": None if self.endpoints is None else sorted(self.endpoints),
            "status": self.status,
        }


@dataclass(slots=True)
class _FieldFault:
    """One field to overwrite (``value``) or remove (``value`` None) in what the venue sends.

    ``where``: the REST routes or WebSocket ops whose answer it mangles (the
    ``data`` item ``item``), or the channel (and ``inst_id``) of a public push.
    """

    where: frozenset[str]
    field: str
    value: str | None
    item: int = 0
    inst_id: str | None = None

    def apply(self, row: Json) -> None:
        """Mangle ``row`` in place. In a book row (``bids``/``asks``), the best level's price."""
        if self.field in ("bids", "asks") and isinstance(row.get(self.field), list):
            levels = [list(level) for level in row[self.field]] or [["0", "1", "0", "1"]]
            if self.value is None:
                levels[0] = levels[0][1:]
            else:
                levels[0][0] = self.value
            row[self.field] = levels
        elif self.value is None:
            row.pop(self.field, None)
        else:
            row[self.field] = self.value

    def apply_to_answer(self, body: Any) -> Any:
        """A copy of the envelope ``body`` with its ``data`` item ``item`` mangled."""
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return body
        data = [dict(row) if isinstance(row, dict) else row for row in body["data"]]
        if 0 <= self.item < len(data) and isinstance(data[self.item], dict):
            self.apply(data[self.item])
        return {**body, "data": data}

    def describe(self) -> Json:
        return {
            "where": sorted(self.where),
            "field": self.field,
            "value": self.value,
            "item": self.item,
            "inst_id": self.inst_id,
        }


@dataclass(slots=True)
class OkxFaults:
    """The wire faults still pending; knobs come from any thread, so one lock guards them."""

    requests: list[_RequestFault] = field(default_factory=list)
    duplicate: int = 0
    reorder: int = 0
    drop: int = 0
    corrupt: list[str] = field(default_factory=list)
    fills: list[_FieldFault] = field(default_factory=list)
    """Next ``orders`` pushes carrying a fill: the field to mangle in each."""
    quotes: list[_FieldFault] = field(default_factory=list)
    """Next public pushes of a channel: the field to mangle."""
    answers: list[_FieldFault] = field(default_factory=list)
    """Next answers of a REST route or WebSocket op: the item field to mangle."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: _RequestFault) -> None:
        with self.lock:
            self.requests.append(fault)

    def take(self, keys: Iterable[str]) -> _RequestFault | None:
        """The first pending fault for a request known by ``keys``, consumed once."""
        names = list(keys)
        with self.lock:
            for fault in self.requests:
                if fault.matches(names):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.requests.remove(fault)
                    return fault
        return None

    def add_event_faults(
        self, *, duplicate: int = 0, reorder: int = 0, drop: int = 0, corrupt: str | None = None
    ) -> None:
        if corrupt is not None and corrupt not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, not {corrupt!r}")
        with self.lock:
            self.duplicate += duplicate
            self.reorder += reorder
            self.drop += drop
            if corrupt is not None:
                self.corrupt.append(corrupt)

    def take_drop(self) -> bool:
        """Whether the next private push is lost (a gap only a REST look can fill)."""
        with self.lock:
            drop = self.drop > 0
            self.drop -= drop
        return drop

    def take_event_faults(self) -> tuple[bool, bool, str | None]:
        """For the next private push: duplicate it? hold it for reordering? corrupt it how?"""
        with self.lock:
            duplicate = self.duplicate > 0
            self.duplicate -= duplicate
            hold = self.reorder > 0
            self.reorder -= hold
            corrupt = self.corrupt.pop(0) if self.corrupt else None
        return duplicate, hold, corrupt

    def add_field_fault(self, kind: str, fault: _FieldFault) -> None:
        """Queue ``fault`` for the next ``kind`` (``fills``, ``quotes`` or ``answers``)."""
        with self.lock:
            {"fills": self.fills, "quotes": self.quotes, "answers": self.answers}[kind].append(
                fault
            )

    def take_fill_fault(self, row: Mapping[str, Any]) -> _FieldFault | None:
        """For a private push row: the first pending fill fault, if the row carries a fill."""
        if row.get("tradeId") in (None, ""):
            return None
        with self.lock:
            return self.fills.pop(0) if self.fills else None

    def take_quote_fault(self, channel: str, inst_id: str) -> _FieldFault | None:
        """For a public push: the first pending fault for its channel (and instrument)."""
        with self.lock:
            for fault in self.quotes:
                if channel in fault.where and fault.inst_id in (None, inst_id):
                    self.quotes.remove(fault)
                    return fault
        return None

    def take_answer_fault(self, keys: Iterable[str]) -> _FieldFault | None:
        """For an answer to a request known by ``keys``: the first pending fault for it."""
        names = set(keys)
        with self.lock:
            for fault in self.answers:
                if fault.where & names:
                    self.answers.remove(fault)
                    return fault
        return None

    def stop_reordering(self) -> None:
        with self.lock:
            self.reorder = 0

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.duplicate = self.reorder = self.drop = 0
            self.corrupt.clear()
            self.fills.clear()
            self.quotes.clear()
            self.answers.clear()

    def pending(self) -> Json:
        with self.lock:
            return {
                "requests": [fault.describe() for fault in self.requests],
                "duplicate": self.duplicate,
                "reorder": self.reorder,
                "drop": self.drop,
                "corrupt": list(self.corrupt),
                "fills": [fault.describe() for fault in self.fills],
                "quotes": [fault.describe() for fault in self.quotes],
                "answers": [fault.describe() for fault in self.answers],
            }


# --------------------------------------------------------------------- hub


class _Connection:
    """One WebSocket connection: an unbounded outbox drained by its writer task."""

    def __init__(self, kind: str, conn_id: str, simulated: bool) -> None:
        self.kind = kind
        self.conn_id = conn_id
        self.simulated = simulated
        self.send, self.receive = trio.open_memory_channel[str](math.inf)
        self.logged_in = False
        self.subscriptions: list[Json] = []
        self.last_traffic = trio.current_time()

    def push(self, text: str) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self.send.send_nowait(text)


class OkxHub:
    """Routes the exchange's rows to subscribed connections; lives on the trio thread."""

    def __init__(self, exchange: OkxExchange, faults: OkxFaults) -> None:
        self.exchange = exchange
        self.faults = faults
        self.connections: set[_Connection] = set()
        self._held: list[PrivatePush] = []
        self._next_conn = 0
        self.on_change: Callable[[], None] = lambda: None
        """Called on the trio thread when a connection comes or goes and after every frame
        a connection sends is handled: what a test may wait for (a subscription, a
        login) changes only then."""

    def new_connection(self, kind: str, simulated: bool) -> _Connection:
        self._next_conn += 1
        connection = _Connection(kind, f"{0xA4D3AE00 + self._next_conn:08x}", simulated)
        self.connections.add(connection)
        self.on_change()
        return connection

    def forget(self, connection: _Connection) -> None:
        """A connection has gone, and its subscriptions with it."""
        self.connections.discard(connection)
        self.on_change()

    def dispatch(self, event: OkxEvent) -> None:
        if isinstance(event, PublicPush):
            row = event.row
            mangle = self.faults.take_quote_fault(event.channel, event.inst_id)
            if mangle is not None:
                row = dict(row)
                mangle.apply(row)
            for connection in list(self.connections):
                for arg in connection.subscriptions:
                    if arg["channel"] == event.channel and arg.get("instId") == event.inst_id:
                        connection.push(_dumps({"arg": arg, "data": [row]}))
            return
        if self.faults.take_drop():
            return
        duplicate, hold, corrupt = self.faults.take_event_faults()
        if hold:
            self._held.append(event)
            if self.faults.reorder == 0:
                self.release_held()
            return
        self._deliver(event, corrupt, self.faults.take_fill_fault(event.row))
        if duplicate:
            self._deliver(event, None)

    def release_held(self) -> int:
        """Deliver the held private pushes, newest first; later ones are no longer held."""
        self.faults.stop_reordering()
        held, self._held = self._held, []
        for event in reversed(held):
            self._deliver(event, None)
        return len(held)

    def _deliver(
        self, event: PrivatePush, corrupt: str | None, mangle: _FieldFault | None = None
    ) -> None:
        for connection in list(self.connections):
            if not connection.logged_in:
                continue
            for arg in connection.subscriptions:
                if arg["channel"] != event.channel:
                    continue
                if arg.get("instType") not in ("SPOT", "ANY"):
                    continue
                if arg.get("instId") not in (None, event.inst_id):
                    continue
                row = dict(event.row)
                push_arg = {**arg, "uid": self.exchange.uid}
                if corrupt == "missing_field":
                    row.pop("state", None)
                if mangle is not None:
                    mangle.apply(row)
                if corrupt == "unknown_channel":
                    push_arg["channel"] = "ordersX"
                text = _dumps({"arg": push_arg, "data": [row]})
                if corrupt == "invalid_json":
                    text = text[: len(text) // 2]
                connection.push(text)

    def subscribe(self, connection: _Connection, request_id: Any, args: Any) -> None:
        if not isinstance(args, list) or not args:
            connection.push(_event_error(connection, request_id, "60013", "Invalid args"))
            return
        for arg in args:
            if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
                connection.push(_event_error(connection, request_id, "60013", "Invalid args"))
                continue
            error = self._check_arg(connection, arg)
            if error is not None:
                connection.push(_event_error(connection, request_id, *error))
                continue
            clean = {k: str(v) for k, v in arg.items() if v not in (None, "")}
            if clean not in connection.subscriptions:
                connection.subscriptions.append(clean)
            connection.push(_ack(connection, request_id, "subscribe", clean))
            if connection.kind == "public":
                # OKX's first push of a public channel is its current snapshot.
                row = self.exchange.public_row(clean["channel"], clean["instId"])
                connection.push(_dumps({"arg": clean, "data": [row]}))

    def unsubscribe(self, connection: _Connection, request_id: Any, args: Any) -> None:
        if not isinstance(args, list) or not args:
            connection.push(_event_error(connection, request_id, "60013", "Invalid args"))
            return
        for arg in args:
            if not isinstance(arg, dict):
                continue
            clean = {k: str(v) for k, v in arg.items() if v not in (None, "")}
            if clean in connection.subscriptions:
                connection.subscriptions.remove(clean)
            connection.push(_ack(connection, request_id, "unsubscribe", clean))

    def _check_arg(self, connection: _Connection, arg: Mapping[str, Any]) -> tuple[str, str] | None:
        channel = arg["channel"]
        if connection.kind == "public":
            if channel not in _PUBLIC_CHANNELS:
                return "60018", f"Wrong URL or channel:{channel}, instId or doesn't exist."
            if arg.get("instId") not in self.exchange.instruments():
                return (
                    "60018",
                    f"Wrong URL or channel:{channel},instId:{arg.get('instId')} doesn't exist.",
                )
            return None
        if channel not in _PRIVATE_CHANNELS:
            return "60018", f"Wrong URL or channel:{channel}, instId or doesn't exist."
        if not connection.logged_in:
            return "60011", "Please log in"
        if arg.get("instType") not in _INST_TYPES:
            return "60013", "Invalid args"
        return None

    async def drop_all(self) -> None:
        """Close every connection's outbox (their sessions end with them)."""
        for connection in list(self.connections):
            connection.send.close()


def _event_error(connection: _Connection, request_id: Any, code: str, msg: str) -> str:
    answer: Json = {"event": "error", "code": code, "msg": msg, "connId": connection.conn_id}
    if request_id is not None:
        answer = {"id": request_id, **answer}
    return _dumps(answer)


def _ack(connection: _Connection, request_id: Any, event: str, arg: Json) -> str:
    answer: Json = {"event": event, "arg": arg, "connId": connection.conn_id}
    if request_id is not None:
        answer = {"id": request_id, **answer}
    return _dumps(answer)


# --------------------------------------------------------------------- app


class OkxApp:
    """REST under ``/api/v5/``, WebSockets at ``/ws/v5/public`` and ``/ws/v5/private``."""

    def __init__(
        self,
        exchange: OkxExchange,
        hub: OkxHub,
        faults: OkxFaults,
        *,
        idle_timeout: float = 30.0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._exchange = exchange
        self._hub = hub
        self._faults = faults
        self.idle_timeout = idle_timeout
        self._now_us = clock or (lambda: exchange.now() * 1000)
        self.ping_listeners: list[Callable[[], None]] = []
        """Called (on the venue's thread) for every text ``ping`` a client sends."""

    async def __call__(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path = str(scope["path"])
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, path)
            return
        if scope["type"] != "http":
            return
        body = (await _read_body(receive)).decode("utf-8", "replace")
        if not path.startswith("/api/v5/"):
            await _answer(send, Reply(404, {"msg": "Not Found", "code": "404"}))
            return
        raw_path = bytes(scope.get("raw_path") or path.encode()).decode("latin-1")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = str(scope["method"]).upper()
        key = self._exchange.route_key(method, path)
        keys = (key, key.split(" ", 1)[1], f"{method} {path}", path)
        fault = self._faults.take(keys)
        if fault is not None and fault.kind == "rate":
            await _answer(
                send,
                Reply(
                    429,
                    {"code": "50011", "msg": "Too Many Requests", "data": []},
                    {"Retry-After": str(fault.retry_after)},
                ),
            )
            return
        if fault is not None and fault.kind == "fail":
            await _answer(
                send, Reply(fault.status, {"code": "50001", "msg": _BUSY_MSG, "data": []})
            )
            return
        reply = self._exchange.rest(method, raw_path.split("?", 1)[0], query, body, headers)
        if fault is not None and fault.kind == "lose":
            with trio.CancelScope(shield=True):
                await send({"type": ABORT})
            return
        mangle = self._faults.take_answer_fault(keys)
        if mangle is not None:
            reply = Reply(reply.status, mangle.apply_to_answer(reply.body), reply.headers)
        await _answer(send, reply)

    # ------------------------------------------------------------ sockets

    async def _websocket(
        self, scope: Mapping[str, Any], receive: _Receive, send: _Send, path: str
    ) -> None:
        websocket = WebSocket(dict(scope), receive, send)
        kinds = {"/ws/v5/public": "public", "/ws/v5/private": "private"}
        kind = kinds.get(path.rstrip("/"))
        if kind is None:
            await websocket.close(code=1008)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        simulated = headers.get("x-simulated-trading") == "1" or "brokerId=9999" in bytes(
            scope.get("query_string", b"")
        ).decode("latin-1")
        await websocket.accept()
        connection = self._hub.new_connection(kind, simulated)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, websocket, connection, nursery.cancel_scope)
                nursery.start_soon(self._idle_watch, websocket, connection, nursery.cancel_scope)
                while True:
                    text = await _receive_text(websocket)
                    if text is None:
                        break
                    connection.last_traffic = trio.current_time()
                    await self._frame(connection, text)
                    self._hub.on_change()
                nursery.cancel_scope.cancel()
        finally:
            self._hub.forget(connection)

    @staticmethod
    async def _writer(
        websocket: WebSocket, connection: _Connection, scope: trio.CancelScope
    ) -> None:
        async for text in connection.receive:
            try:
                await websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError):
                break
            connection.last_traffic = trio.current_time()
        scope.cancel()

    async def _idle_watch(
        self, websocket: WebSocket, connection: _Connection, scope: trio.CancelScope
    ) -> None:
        """OKX closes a connection that has seen no traffic for 30 s (close code 4004)."""
        while True:
            deadline = connection.last_traffic + self.idle_timeout
            if trio.current_time() >= deadline:
                break
            await trio.sleep_until(deadline)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.close(code=4004, reason="No data received in 30s.")
        scope.cancel()

    async def _frame(self, connection: _Connection, text: str) -> None:
        if text == "ping":
            connection.push("pong")
            for listener in self.ping_listeners:
                listener()
            return
        try:
            frame = json.loads(text)
        except ValueError:
            connection.push(
                _event_error(connection, None, "60012", f"Invalid request: {text[:200]}")
            )
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("op"), str):
            connection.push(
                _event_error(connection, None, "60012", f"Invalid request: {text[:200]}")
            )
            return
        op, request_id, args = frame["op"], frame.get("id"), frame.get("args")
        if op == "login":
            self._login(connection, args)
        elif op == "subscribe":
            self._hub.subscribe(connection, request_id, args)
        elif op == "unsubscribe":
            self._hub.unsubscribe(connection, request_id, args)
        elif connection.kind == "private" and op in OkxExchange.WS_OPS:
            await self._trade_op(connection, request_id, op, args, frame.get("expTime"))
        else:
            connection.push(
                _event_error(connection, request_id, "60012", f"Invalid request: {text[:200]}")
            )

    def _login(self, connection: _Connection, args: Any) -> None:
        if connection.kind != "private":
            connection.push(_event_error(connection, None, "60012", "Invalid request: login"))
            return
        refusal = self._exchange.login(args, simulated=connection.simulated)
        if refusal is not None:
            connection.push(_dumps({**refusal, "connId": connection.conn_id}))
            return
        connection.logged_in = True
        connection.push(
            _dumps({"event": "login", "code": "0", "msg": "", "connId": connection.conn_id})
        )

    async def _trade_op(
        self, connection: _Connection, request_id: Any, op: str, args: Any, exp_time: Any
    ) -> None:
        in_time = str(self._now_us())
        head: Json = {"id": "" if request_id is None else request_id, "op": op}

        def answer(body: Json) -> None:
            connection.push(
                _dumps({**head, **body, "inTime": in_time, "outTime": str(self._now_us())})
            )

        if not connection.logged_in:
            answer({"code": "60011", "msg": "Please log in", "data": []})
            return
        fault = self._faults.take((op, f"ws {op}"))
        if fault is not None and fault.kind == "rate":
            answer({"code": "50011", "msg": _RATE_MSG, "data": []})
            return
        if fault is not None and fault.kind == "fail":
            answer({"code": "50001", "msg": _BUSY_MSG, "data": []})
            return
        body = self._exchange.ws_op(op, args, "" if exp_time is None else str(exp_time))
        if fault is not None and fault.kind == "lose":
            return
        mangle = self._faults.take_answer_fault((op, f"ws {op}"))
        if mangle is not None:
            body = mangle.apply_to_answer(body)
        answer(body)


# ---------------------------------------------------------------- helpers


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


async def _lifespan(receive: _Receive, send: _Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: _Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _answer(send: _Send, reply: Reply) -> None:
    body = _dumps(reply.body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
