"""The fake Alpaca's ASGI side: REST under ``/v2/``, ``trade_updates`` and market data.

This module only moves bytes: it hands the raw request to
:class:`~._alpaca_exchange.AlpacaExchange`, writes its answers, keeps each
WebSocket connection's session and routes the exchange's rows to the
connections that asked for them, applying the wire fault knobs
(:class:`AlpacaFaults`) on the way.

Two WebSockets share the port, as two hosts do at Alpaca:

- ``/stream``, the trading stream: ``{"action": "authenticate", "data":
  {"key_id", "secret_key"}}`` (or the short ``{"action": "auth", "key",
  "secret"}``), then ``{"action": "listen", "data": {"streams":
  ["trade_updates"]}}``; events ``{"stream": "trade_updates", "data": ...}``.
  JSON in **binary** frames as on paper (``binary_frames=False``: text), or
  MessagePack when the upgrade carries ``Content-Type: application/msgpack``.
- ``/v2/{iex,sip,delayed_sip,test}``, the stock market-data stream: greeting
  ``[{"T": "success", "msg": "connected"}]``, auth by message or by the key
  headers on the upgrade, additive ``subscribe``/``unsubscribe`` acked with the
  whole subscription, arrays of ``q``/``t``/``b`` rows; JSON text frames with
  RFC 3339 ``t``, or MessagePack (``Content-Type: application/msgpack``, as
  alpaca-py always asks) with ``t`` as a MessagePack Timestamp extension.

Everything in :class:`AlpacaHub` runs on the server's trio thread; the
exchange hands it events through ``TrioToken.run_sync_soon``, which keeps
their order.
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

import msgpack
import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from tradenode.testing.venues._alpaca_exchange import (
    CODE_INTERNAL,
    CODE_RATE_LIMITED,
    AlpacaEvent,
    AlpacaExchange,
    Json,
    MarketPush,
    Reply,
    TradePush,
)
from tradenode.testing.venues._alpaca_hours import iso_ns
from tradenode.testing.venues._loopback import ABORT

__all__ = ["CORRUPTIONS", "DATA_FEEDS", "AlpacaApp", "AlpacaFaults", "AlpacaHub"]

_log = logging.getLogger("tradenode.testing.venues.alpaca")

CORRUPTIONS = ("invalid_json", "missing_field", "unknown_event")
DATA_FEEDS = ("iex", "sip", "delayed_sip", "test")
_DATA_CHANNELS = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)
_SERVED_CHANNELS = ("trades", "quotes", "bars")
_MSGPACK = "application/msgpack"

_Send = Callable[[Any], Awaitable[None]]
_Receive = Callable[[], Awaitable[Any]]


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


# ------------------------------------------------------------------ faults


@dataclass(slots=True)
class _RequestFault:
    kind: str
    """``rate`` (429 before processing), ``fail`` (5xx before), ``lose`` (process, no answer)
    or ``spoil_fills`` (process, then answer with ``target`` of each FILL row set to ``value``)."""
    remaining: int
    endpoints: frozenset[str] | None
    status: int = 503
    retry_after: int = 1
    retry_after_header: bool = False
    delay: float = 0.0
    target: str = ""
    """``spoil_fills``: the row field to set (the knob's ``field``)."""
    value: str | None = None

    def matches(self, keys: Iterable[str]) -> bool:
        return self.endpoints is None or any(key in self.endpoints for key in keys)

    def describe(self) -> Json:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "endpoints": None if self.endpoints is None else sorted(self.endpoints),
            "status": self.status,
        } | (
            {"seconds": self.delay}
            if self.kind == "delay"
            else {"field": self.target, "value": self.value}
            if self.kind == "spoil_fills"
            else {}
        )

    def spoil(self, reply: Reply) -> Reply:
        """``reply`` (an activities page) with ``target`` of each FILL row set to ``value``."""
        if reply.status != 200 or not isinstance(reply.body, list):
            return reply
        rows = [
            {**row, self.target: self.value}
            if isinstance(row, dict) and row.get("activity_type") == "FILL"
            else row
            for row in reply.body
        ]
        return Reply(reply.status, rows, reply.headers)


@dataclass(slots=True)
class AlpacaFaults:
    """The wire faults still pending; knobs come from any thread, so one lock guards them."""

    requests: list[_RequestFault] = field(default_factory=list)
    duplicate: int = 0
    reorder: int = 0
    drop: int = 0
    corrupt: list[str] = field(default_factory=list)
    delays: list[_RequestFault] = field(default_factory=list)
    held: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Requests being held by a delay right now: number -> (endpoint, client_order_id)."""
    next_hold: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: _RequestFault) -> None:
        with self.lock:
            (self.delays if fault.kind == "delay" else self.requests).append(fault)

    def take(self, keys: Iterable[str], *, delay: bool = False) -> _RequestFault | None:
        """The first pending fault (a delay, with ``delay``) for a request known by ``keys``,
        consumed once."""
        names = list(keys)
        with self.lock:
            pending = self.delays if delay else self.requests
            for fault in pending:
                if fault.matches(names):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        pending.remove(fault)
                    return fault
        return None

    def hold_started(self, endpoint: str, client_order_id: str) -> int:
        with self.lock:
            self.next_hold += 1
            self.held[self.next_hold] = (endpoint, client_order_id)
            return self.next_hold

    def hold_ended(self, number: int) -> None:
        with self.lock:
            self.held.pop(number, None)

    def add_event_faults(
        self, *, duplicate: int = 0, reorder: int = 0, drop: int = 0, corrupt: str | None = None
    ) -> None:
        if corrupt is not None and corrupt not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, not {corrupt!r}")
        for name, value in (("n", duplicate), ("n", reorder), ("n", drop)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, not {value}")
        with self.lock:
            self.duplicate += duplicate
            self.reorder += reorder
            self.drop += drop
            if corrupt is not None:
                self.corrupt.append(corrupt)

    def take_event_faults(self) -> tuple[bool, bool, bool, str | None]:
        """For the next trade update: drop it? duplicate it? hold it? corrupt it how?"""
        with self.lock:
            drop = self.drop > 0
            self.drop -= drop
            if drop:
                return True, False, False, None
            duplicate = self.duplicate > 0
            self.duplicate -= duplicate
            hold = self.reorder > 0
            self.reorder -= hold
            corrupt = self.corrupt.pop(0) if self.corrupt else None
        return False, duplicate, hold, corrupt

    def stop_reordering(self) -> None:
        with self.lock:
            self.reorder = 0

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.delays.clear()
            self.duplicate = self.reorder = self.drop = 0
            self.corrupt.clear()

    def pending(self) -> Json:
        with self.lock:
            return {
                "requests": [fault.describe() for fault in self.delays + self.requests],
                "held": [
                    {"endpoint": endpoint, "client_order_id": client_order_id}
                    for endpoint, client_order_id in self.held.values()
                ],
                "duplicate": self.duplicate,
                "reorder": self.reorder,
                "drop": self.drop,
                "corrupt": list(self.corrupt),
            }


# --------------------------------------------------------------------- hub


class _Connection:
    """One WebSocket connection: an unbounded outbox drained by its writer task."""

    def __init__(self, kind: str, *, msgpack_codec: bool, binary: bool, feed: str = "") -> None:
        self.kind = kind
        """``trading`` (``/stream``) or ``data`` (``/v2/{feed}``)."""
        self.feed = feed
        self.msgpack = msgpack_codec
        self.binary = binary or msgpack_codec
        self.send, self.receive = trio.open_memory_channel[bytes | str](math.inf)
        self.authenticated = False
        self.streams: list[str] = []
        self.channels: dict[str, list[str]] = {name: [] for name in _DATA_CHANNELS}

    def push(self, payload: bytes | str) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self.send.send_nowait(payload)

    def push_document(self, document: Any) -> None:
        """Encode ``document`` in the connection's codec (``t`` fields as epoch ns ints)."""
        if self.msgpack:
            self.push(msgpack.packb(_for_msgpack(document), use_bin_type=True))
            return
        text = _dumps(_for_json(document))
        self.push(text.encode() if self.binary else text)

    def wants(self, push: MarketPush) -> bool:
        names = self.channels.get(push.channel, [])
        return push.symbol in names or "*" in names


def _for_json(document: Any) -> Any:
    """Market-data rows carry ``t`` as epoch ns: RFC 3339 text for JSON."""
    if isinstance(document, list):
        return [_for_json(item) for item in document]
    if isinstance(document, dict) and isinstance(document.get("t"), int) and "T" in document:
        return {**document, "t": iso_ns(document["t"])}
    return document


def _for_msgpack(document: Any) -> Any:
    """Market-data rows carry ``t`` as epoch ns: a MessagePack Timestamp (ext -1) for msgpack."""
    if isinstance(document, list):
        return [_for_msgpack(item) for item in document]
    if isinstance(document, dict) and isinstance(document.get("t"), int) and "T" in document:
        return {**document, "t": msgpack.Timestamp.from_unix_nano(document["t"])}
    return document


class AlpacaHub:
    """Routes the exchange's rows to the connections that asked; lives on the trio thread."""

    def __init__(self, exchange: AlpacaExchange, faults: AlpacaFaults) -> None:
        self.exchange = exchange
        self.faults = faults
        self.connections: set[_Connection] = set()
        self._held: list[TradePush] = []
        self.delivered = 0
        """Trade updates written to listening connections so far."""
        self.on_change: Callable[[], None] = lambda: None
        """Called (on the trio thread) after a connection comes, goes, listens or
        subscribes, and after every event: the handle's waits re-check then."""

    def view(self) -> Json:
        """Who listens to what now, as plain data safe to read from any thread."""
        return {
            "connections": len(self.connections),
            "trade_listeners": sum(
                1
                for c in self.connections
                if c.kind == "trading" and c.authenticated and "trade_updates" in c.streams
            ),
            "data": [
                (channel, symbol)
                for c in self.connections
                if c.kind == "data" and c.authenticated
                for channel, symbols in c.channels.items()
                for symbol in symbols
            ],
            "delivered": self.delivered,
        }

    def dispatch(self, event: AlpacaEvent) -> None:
        if isinstance(event, MarketPush):
            for connection in list(self.connections):
                if (
                    connection.kind == "data"
                    and connection.authenticated
                    and connection.wants(event)
                ):
                    connection.push_document([event.row])
            return
        drop, duplicate, hold, corrupt = self.faults.take_event_faults()
        if drop:
            return
        if hold:
            self._held.append(event)
            if self.faults.reorder == 0:
                self.release_held()
            return
        self._deliver(event, corrupt)
        if duplicate:
            self._deliver(event, None)

    def release_held(self) -> int:
        """Deliver the held trade updates, newest first; later ones are no longer held."""
        self.faults.stop_reordering()
        held, self._held = self._held, []
        for event in reversed(held):
            self._deliver(event, None)
        return len(held)

    def _deliver(self, event: TradePush, corrupt: str | None) -> None:
        data = dict(event.row)
        if corrupt == "missing_field":
            data.pop("order", None)
        if corrupt == "unknown_event":
            data["event"] = "tradenode_unknown_event"
        document = {"stream": "trade_updates", "data": data}
        for connection in list(self.connections):
            if connection.kind != "trading" or not connection.authenticated:
                continue
            if "trade_updates" not in connection.streams:
                continue
            if corrupt == "invalid_json":
                text = _dumps(document)
                broken = text[: len(text) // 2]
                connection.push(broken.encode() if connection.binary else broken)
            else:
                connection.push_document(document)
            self.delivered += 1

    def drop_all(self) -> None:
        for connection in list(self.connections):
            connection.send.close()


# --------------------------------------------------------------------- app


class AlpacaApp:
    """REST under ``/v2/``; WebSockets at ``/stream`` and ``/v2/{feed}``."""

    def __init__(
        self,
        exchange: AlpacaExchange,
        hub: AlpacaHub,
        faults: AlpacaFaults,
        *,
        binary_frames: bool = True,
        data_connection_limit: int | None = 1,
    ) -> None:
        self._exchange = exchange
        self._hub = hub
        self._faults = faults
        self.binary_frames = binary_frames
        self.data_connection_limit = data_connection_limit

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
        raw_path = bytes(scope.get("raw_path") or path.encode()).decode("latin-1")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method = str(scope["method"]).upper()
        plain_path = raw_path.split("?", 1)[0]
        key = self._exchange.route_key(method, plain_path)
        keys = (key, key.split(" ", 1)[1], f"{method} {plain_path}", path)
        delay = self._faults.take(keys, delay=True)
        if delay is not None:
            number = self._faults.hold_started(key, _client_order_id(body))
            self._hub.on_change()
            try:
                await trio.sleep(delay.delay)
            finally:
                self._faults.hold_ended(number)
                self._hub.on_change()
        fault = self._faults.take(keys)
        if fault is not None and fault.kind == "rate":
            limit_headers = self._exchange.rate_limit_headers(fault.retry_after)
            if fault.retry_after_header:
                limit_headers["Retry-After"] = str(fault.retry_after)
            body_429 = {"code": CODE_RATE_LIMITED, "message": "rate limit exceeded"}
            await _answer(send, Reply(429, body_429, limit_headers))
            return
        if fault is not None and fault.kind == "fail":
            body_5xx = {"code": CODE_INTERNAL, "message": "internal server error occurred"}
            await _answer(send, Reply(fault.status, body_5xx))
            return
        reply = self._exchange.rest(method, plain_path, query, body, headers)
        if fault is not None and fault.kind == "lose":
            with trio.CancelScope(shield=True):
                await send({"type": ABORT})
            return
        if fault is not None and fault.kind == "spoil_fills":
            reply = fault.spoil(reply)
        await _answer(send, reply)

    # ------------------------------------------------------------ sockets

    async def _websocket(
        self, scope: Mapping[str, Any], receive: _Receive, send: _Send, path: str
    ) -> None:
        websocket = WebSocket(dict(scope), receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        msgpack_codec = headers.get("content-type", "").split(";")[0].strip() == _MSGPACK
        route = path.rstrip("/")
        if route == "/stream":
            connection = _Connection(
                "trading", msgpack_codec=msgpack_codec, binary=self.binary_frames
            )
        elif route.startswith("/v2/") and route.removeprefix("/v2/") in DATA_FEEDS:
            feed = route.removeprefix("/v2/")
            connection = _Connection("data", msgpack_codec=msgpack_codec, binary=False, feed=feed)
        else:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        self._hub.connections.add(connection)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, websocket, connection, nursery.cancel_scope)
                if connection.kind == "data":
                    connection.push_document([{"T": "success", "msg": "connected"}])
                    self._header_auth(connection, headers)
                self._hub.on_change()
                while True:
                    payload = await _receive(websocket)
                    if payload is None:
                        break
                    self._frame(connection, payload)
                    self._hub.on_change()
                nursery.cancel_scope.cancel()
        finally:
            self._hub.connections.discard(connection)
            self._hub.on_change()

    @staticmethod
    async def _writer(
        websocket: WebSocket, connection: _Connection, scope: trio.CancelScope
    ) -> None:
        async for payload in connection.receive:
            try:
                if isinstance(payload, bytes):
                    await websocket.send_bytes(payload)
                else:
                    await websocket.send_text(payload)
            except (WebSocketDisconnect, RuntimeError, OSError) as error:
                _log.info("a WebSocket write failed: %r", error)
                break
        scope.cancel()

    def _decode(self, connection: _Connection, payload: bytes | str) -> Any:
        if connection.msgpack and isinstance(payload, bytes):
            try:
                return msgpack.unpackb(payload, raw=False)
            except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
                return None
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        try:
            return json.loads(text)
        except ValueError:
            return None

    def _frame(self, connection: _Connection, payload: bytes | str) -> None:
        message = self._decode(connection, payload)
        if connection.kind == "trading":
            self._trading_frame(connection, message)
        else:
            self._data_frame(connection, message)

    # ----------------------------------------------------- trading stream

    def _trading_frame(self, connection: _Connection, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            connection.push_document(
                {"stream": "error", "data": {"error_message": "invalid syntax"}}
            )
            return
        action = message["action"]
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        assert isinstance(data, dict)
        if action in ("authenticate", "auth"):
            key = data.get("key_id", message.get("key", ""))
            secret = data.get("secret_key", message.get("secret", ""))
            ok = isinstance(key, str) and isinstance(secret, str)
            ok = ok and self._exchange.authenticate(str(key), str(secret))
            connection.authenticated = connection.authenticated or ok
            status = "authorized" if ok else "unauthorized"
            connection.push_document(
                {"stream": "authorization", "data": {"status": status, "action": action}}
            )
            return
        if action == "listen":
            if not connection.authenticated:
                connection.push_document(
                    {
                        "stream": "authorization",
                        "data": {"status": "unauthorized", "action": "listen"},
                    }
                )
                return
            streams = data.get("streams")
            if not isinstance(streams, list):
                connection.push_document(
                    {"stream": "error", "data": {"error_message": "invalid syntax"}}
                )
                return
            connection.streams = [s for s in streams if s == "trade_updates"]
            connection.push_document(
                {"stream": "listening", "data": {"streams": connection.streams}}
            )
            return
        connection.push_document(
            {"stream": "error", "data": {"error_message": f"unrecognized action: {action}"}}
        )

    # -------------------------------------------------------- data stream

    def _header_auth(self, connection: _Connection, headers: Mapping[str, str]) -> None:
        key = headers.get("apca-api-key-id")
        secret = headers.get("apca-api-secret-key")
        if key is None and secret is None:
            return
        self._authenticate_data(connection, key or "", secret or "")

    def _authenticate_data(self, connection: _Connection, key: str, secret: str) -> None:
        """Alpaca allows ``data_connection_limit`` authenticated connections per feed
        (1 on most plans): one more is refused ``406 connection limit exceeded``."""
        if not self._exchange.authenticate(key, secret):
            connection.push_document([{"T": "error", "code": 402, "msg": "auth failed"}])
            return
        limit = self.data_connection_limit
        if limit is not None:
            taken = sum(
                1
                for other in self._hub.connections
                if other.kind == "data" and other.feed == connection.feed and other.authenticated
            )
            if taken >= limit:
                connection.push_document(
                    [{"T": "error", "code": 406, "msg": "connection limit exceeded"}]
                )
                connection.send.close()
                return
        connection.authenticated = True
        connection.push_document([{"T": "success", "msg": "authenticated"}])

    def _data_frame(self, connection: _Connection, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            connection.push_document([{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return
        action = message["action"]
        if action == "auth":
            if connection.authenticated:
                connection.push_document(
                    [{"T": "error", "code": 403, "msg": "already authenticated"}]
                )
                return
            key, secret = message.get("key"), message.get("secret")
            if not isinstance(key, str) or not isinstance(secret, str):
                connection.push_document([{"T": "error", "code": 402, "msg": "auth failed"}])
                return
            self._authenticate_data(connection, key, secret)
            return
        if action not in ("subscribe", "unsubscribe"):
            connection.push_document([{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return
        if not connection.authenticated:
            connection.push_document([{"T": "error", "code": 401, "msg": "not authenticated"}])
            return
        changes: dict[str, list[str]] = {}
        for name in _DATA_CHANNELS:
            symbols = message.get(name)
            if symbols is None:
                continue
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                connection.push_document([{"T": "error", "code": 400, "msg": "invalid syntax"}])
                return
            changes[name] = symbols
        for name, symbols in changes.items():
            current = connection.channels[name]
            for symbol in symbols:
                if action == "subscribe" and symbol not in current:
                    current.append(symbol)
                if action == "unsubscribe" and symbol in current:
                    current.remove(symbol)
        connection.push_document(
            [{"T": "subscription", **{name: list(v) for name, v in connection.channels.items()}}]
        )
        if action == "subscribe":
            # Alpaca sends the latest quote of a newly subscribed symbol only when it next
            # changes; the fake sends the current one at once, so a client need not wait.
            for symbol in changes.get("quotes", []):
                if symbol in self._exchange.symbols():
                    connection.push_document([self._exchange.quote_row(symbol)])


# ---------------------------------------------------------------- helpers


def _client_order_id(body: str) -> str:
    """A placement's ``client_order_id`` ("" when it names none or is not a placement)."""
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError:
        return ""
    value = document.get("client_order_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) else ""


async def _receive(websocket: WebSocket) -> bytes | str | None:
    """The next frame's payload (text or bytes); None once the client has gone."""
    try:
        message = await websocket.receive()
    except (WebSocketDisconnect, RuntimeError):
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is not None:
        return str(text)
    return bytes(message.get("bytes") or b"")


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
    body = b"" if reply.body is None else _dumps(reply.body).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    if reply.body is not None:
        headers.append((b"content-type", b"application/json; charset=UTF-8"))
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
