"""The local Coinbase venue's ASGI side: REST, the two WebSocket endpoints, the wire faults.

A raw ASGI app (REST must be able to cut a connection without an answer,
which a framework cannot), served by hypercorn on trio. REST is
``/api/v3/brokerage/...`` as on ``api.coinbase.com``; the WebSocket
endpoints are ``/ws`` (Coinbase's market data endpoint,
``advanced-trade-ws.coinbase.com``: every channel) and ``/ws/user`` (the
user order data endpoint, ``advanced-trade-ws-user.coinbase.com``:
``user``, ``heartbeats`` and ``futures_balance_summary`` only).

WebSocket protocol (docs.cdp.coinbase.com, websocket-overview and
websocket-channels, crawl of 2026-06; ccxt's ``pro/coinbase.py``):

- a client sends ``{"type": "subscribe"|"unsubscribe", "channel": ...,
  "product_ids": [...], "jwt": ...}``, one channel per message, within 5 s
  of connecting or it is disconnected; ``user`` needs a valid JWT (one
  without ``uri``), the market channels do not;
- every message is ``{"channel", "client_id": "", "timestamp",
  "sequence_num", "events": [...]}`` with ``sequence_num`` counting up by
  one per message on each connection; an answer to each (un)subscribe is a
  ``subscriptions`` message listing what the connection now has; a refused
  one is ``{"type": "error", "message": ...}``;
- ``user``: the OPEN orders as ``snapshot`` events in batches of 50 (a
  batch shorter than 50 ends it), then one ``update`` per order change;
  ``heartbeats``: one message per ``heartbeat_interval`` (1 s on Coinbase)
  with a ``heartbeat_counter``; ``ticker``: a snapshot, then an update per
  price move; ``level2`` (messages on channel ``l2_data``): the book as a
  snapshot, then the changed levels (``new_quantity`` 0 removes one).

Event faults (duplicate, reorder, corrupt) apply to ``user`` messages; a
skipped sequence number applies to the next message of every connection.
Everything in :class:`Hub` runs on the server's trio thread.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio
from starlette.websockets import WebSocket, WebSocketDisconnect

from tradenode.testing.venues._coinbase_exchange import (
    API_PREFIX,
    BookUpdate,
    CoinbaseExchange,
    Json,
    Reply,
    TickerUpdate,
    UserUpdate,
    VenueEvent,
    endpoint_name,
)
from tradenode.testing.venues._loopback import ABORT

__all__ = [
    "AUTH_CHANNELS",
    "MARKET_CHANNELS",
    "CoinbaseApp",
    "CoinbaseFaults",
    "Hub",
]

_log = logging.getLogger("tradenode.testing.venues.coinbase")

_Send = Callable[[Any], Awaitable[None]]
_Receive = Callable[[], Awaitable[Any]]

AUTH_CHANNELS = frozenset({"user", "futures_balance_summary"})
USER_ENDPOINT_CHANNELS = frozenset({"user", "heartbeats", "futures_balance_summary"})
MARKET_CHANNELS = frozenset({"heartbeats", "ticker", "level2", "user"})
"""The channels this venue serves (Coinbase has more: candles, status, market_trades, ...)."""
_SNAPSHOT_BATCH = 50


def _dumps(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"))


def _timestamp(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


# ------------------------------------------------------------------ faults


@dataclass(slots=True)
class _RestFault:
    kind: str
    """``rate`` (429 before processing), ``fail`` (5xx before or after) or ``lose``."""
    remaining: int
    endpoints: frozenset[str] | None
    status: int = 503
    after: bool = False
    retry_after: int = 1

    def describe(self) -> Json:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "endpoints": None if self.endpoints is None else sorted(self.endpoints),
            "status": self.status,
            "after": self.after,
        }


@dataclass(slots=True)
class CoinbaseFaults:
    """The wire faults still pending; one lock, because knobs come from any thread."""

    rest: list[_RestFault] = field(default_factory=list)
    duplicate: int = 0
    reorder: int = 0
    corrupt: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: _RestFault) -> None:
        with self.lock:
            self.rest.append(fault)

    def take(self, endpoint: str) -> _RestFault | None:
        """The first pending fault for this request, consumed once."""
        with self.lock:
            for fault in self.rest:
                if fault.endpoints is None or endpoint in fault.endpoints:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.rest.remove(fault)
                    return fault
            return None

    def take_event_faults(self) -> tuple[bool, bool, bool]:
        """For the next user message: duplicate it? hold it for reordering? corrupt it?"""
        with self.lock:
            duplicate = self.duplicate > 0
            self.duplicate -= duplicate
            hold = self.reorder > 0
            self.reorder -= hold
            corrupt = self.corrupt > 0
            self.corrupt -= corrupt
        return duplicate, hold, corrupt

    def clear(self) -> None:
        with self.lock:
            self.rest.clear()
            self.duplicate = self.reorder = self.corrupt = 0

    def pending(self) -> Json:
        with self.lock:
            return {
                "requests": [fault.describe() for fault in self.rest],
                "duplicate_events": self.duplicate,
                "reorder_events": self.reorder,
                "corrupt_next_event": self.corrupt,
            }


# --------------------------------------------------------------------- hub


class _Connection:
    """One WebSocket connection: its subscriptions, its sequence numbers and its outbox."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.send, self.receive = trio.open_memory_channel[str](math.inf)
        self.channels: dict[str, set[str]] = {}
        self.next_sequence = 0
        self.skip = 0
        self.heartbeat_counter = 0
        self.subscribed = trio.Event()

    def number(self) -> int:
        self.next_sequence += self.skip
        self.skip = 0
        number = self.next_sequence
        self.next_sequence += 1
        return number

    def push(self, text: str) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self.send.send_nowait(text)

    def wants(self, channel: str, product_id: str | None) -> bool:
        products = self.channels.get(channel)
        if products is None:
            return False
        return product_id is None or not products or product_id in products


class Hub:
    """Routes the exchange's events to the connections that subscribed (trio thread only)."""

    def __init__(self, exchange: CoinbaseExchange, faults: CoinbaseFaults) -> None:
        self.exchange = exchange
        self.faults = faults
        self.connections: set[_Connection] = set()
        self._held: list[tuple[_Connection, str]] = []

    def message(self, connection: _Connection, channel: str, events: list[Json]) -> str:
        """One envelope, numbered on ``connection``."""
        return _dumps(
            {
                "channel": channel,
                "client_id": "",
                "timestamp": _timestamp(self.exchange.now()),
                "sequence_num": connection.number(),
                "events": events,
            }
        )

    def dispatch(self, event: VenueEvent) -> None:
        if isinstance(event, UserUpdate):
            self._user(event)
        elif isinstance(event, TickerUpdate):
            for connection in list(self.connections):
                if connection.wants("ticker", event.product_id):
                    events = [{"type": "update", "tickers": [event.ticker]}]
                    connection.push(self.message(connection, "ticker", events))
        elif isinstance(event, BookUpdate):
            for connection in list(self.connections):
                if connection.wants("level2", event.product_id):
                    events = [
                        {
                            "type": "update",
                            "product_id": event.product_id,
                            "updates": list(event.updates),
                        }
                    ]
                    connection.push(self.message(connection, "l2_data", events))

    def _user(self, event: UserUpdate) -> None:
        targets = [c for c in self.connections if c.wants("user", event.product_id)]
        if not targets:
            return
        duplicate, hold, corrupt = self.faults.take_event_faults()
        for connection in targets:
            text = self.message(connection, "user", [{"type": "update", "orders": [event.order]}])
            if hold:
                self._held.append((connection, text))
                continue
            if corrupt:
                connection.push(text[: len(text) // 2])
            connection.push(text)
            if duplicate:
                connection.push(text)
        if hold and self.faults.reorder == 0:
            self.release_held()

    def release_held(self) -> int:
        """Deliver the held user messages, newest first; returns how many."""
        with self.faults.lock:
            self.faults.reorder = 0
        held, self._held = self._held, []
        for connection, text in reversed(held):
            connection.push(text)
        return len(held)

    def skip_sequence(self, count: int) -> int:
        """The next message on every open connection jumps ``count`` numbers; returns how many."""
        for connection in self.connections:
            connection.skip += count
        return len(self.connections)

    def heartbeat(self, connection: _Connection) -> None:
        connection.heartbeat_counter += 1
        now = self.exchange.now()
        current = datetime.datetime.fromtimestamp(now / 1000, tz=datetime.UTC)
        event = {
            "current_time": current.strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC"),
            "heartbeat_counter": str(connection.heartbeat_counter),
        }
        connection.push(self.message(connection, "heartbeats", [event]))

    def describe(self) -> list[Json]:
        return [
            {
                "endpoint": c.endpoint,
                "channels": {name: sorted(products) for name, products in c.channels.items()},
                "next_sequence_num": c.next_sequence,
            }
            for c in self.connections
        ]

    # ----------------------------------------------------------- requests

    def request(self, connection: _Connection, text: str) -> None:
        """One client message: subscribe or unsubscribe to one channel."""
        try:
            request = json.loads(text)
        except ValueError:
            connection.push(_dumps({"type": "error", "message": "failure to parse message"}))
            return
        if not isinstance(request, dict):
            connection.push(_dumps({"type": "error", "message": "message must be an object"}))
            return
        kind, channel = request.get("type"), request.get("channel")
        products = request.get("product_ids") or []
        allowed = USER_ENDPOINT_CHANNELS if connection.endpoint == "user" else MARKET_CHANNELS
        error = None
        if kind not in ("subscribe", "unsubscribe"):
            error = f"unknown message type {kind!r}"
        elif not isinstance(channel, str) or channel not in allowed:
            error = f"channel {channel!r} is not available on this endpoint"
        elif not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            error = "product_ids must be a list of strings"
        elif any(p not in self.exchange.products for p in products):
            error = f"unknown product id among {products}"
        elif channel in ("ticker", "level2") and not products and kind == "subscribe":
            error = f"the {channel} channel needs product_ids"
        elif channel in AUTH_CHANNELS:
            jwt = request.get("jwt")
            if self.exchange.authenticate(jwt if isinstance(jwt, str) else None, uri=None) is None:
                error = "authentication failure"
        if error is not None:
            connection.push(_dumps({"type": "error", "message": error}))
            return
        assert isinstance(channel, str)
        if kind == "unsubscribe":
            self._unsubscribe(connection, channel, products)
        else:
            self._subscribe(connection, channel, products)
        listed = {
            name: sorted(ids) if name != "heartbeats" else ["heartbeats"]
            for name, ids in connection.channels.items()
        }
        connection.push(self.message(connection, "subscriptions", [{"subscriptions": listed}]))

    def _subscribe(self, connection: _Connection, channel: str, products: list[str]) -> None:
        new = [p for p in products if p not in connection.channels.get(channel, set())]
        first = channel not in connection.channels
        connection.channels.setdefault(channel, set()).update(products)
        connection.subscribed.set()
        if channel == "user" and first:
            orders = self.exchange.open_user_orders(products or None)
            batches = [
                orders[i : i + _SNAPSHOT_BATCH] for i in range(0, len(orders), _SNAPSHOT_BATCH)
            ]
            if not batches or len(batches[-1]) == _SNAPSHOT_BATCH:
                batches.append([])
            for batch in batches:
                events = [
                    {
                        "type": "snapshot",
                        "orders": batch,
                        "positions": {
                            "perpetual_futures_positions": [],
                            "expiring_futures_positions": [],
                        },
                    }
                ]
                connection.push(self.message(connection, "user", events))
        elif channel == "ticker" and new:
            tickers = [self.exchange.ticker(p) for p in new]
            events = [{"type": "snapshot", "tickers": tickers}]
            connection.push(self.message(connection, "ticker", events))
        elif channel == "level2":
            for product_id in new:
                events = [
                    {
                        "type": "snapshot",
                        "product_id": product_id,
                        "updates": self.exchange.book_snapshot(product_id),
                    }
                ]
                connection.push(self.message(connection, "l2_data", events))

    @staticmethod
    def _unsubscribe(connection: _Connection, channel: str, products: list[str]) -> None:
        current = connection.channels.get(channel)
        if current is None:
            return
        if not products or channel == "heartbeats":
            del connection.channels[channel]
            return
        current.difference_update(products)
        if not current:
            del connection.channels[channel]


# ---------------------------------------------------------------------- app


class CoinbaseApp:
    """REST under ``/api/v3/brokerage`` and the WebSocket endpoints ``/ws`` and ``/ws/user``."""

    def __init__(
        self,
        exchange: CoinbaseExchange,
        hub: Hub,
        faults: CoinbaseFaults,
        *,
        heartbeat_interval: float,
        subscribe_timeout: float,
    ) -> None:
        self._exchange = exchange
        self._hub = hub
        self._faults = faults
        self._heartbeat = heartbeat_interval
        self._subscribe_timeout = subscribe_timeout
        self._calls: dict[str, int] = {}
        self._calls_lock = threading.Lock()

    def calls(self) -> dict[str, int]:
        with self._calls_lock:
            return dict(self._calls)

    def _count(self, name: str) -> None:
        with self._calls_lock:
            self._calls[name] = self._calls.get(name, 0) + 1

    async def __call__(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        method = str(scope["method"]).upper()
        path = str(scope["path"])
        query = bytes(scope.get("query_string", b"")).decode("utf-8", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive)
        if path.startswith("/v2/"):
            self._count(f"{method} {path.removeprefix('/')}")
            reply = self._exchange.track_api(
                method, path, query, headers.get("host", ""), headers.get("authorization")
            )
            await _answer(send, reply)
            return
        if not path.startswith(API_PREFIX + "/"):
            await _answer(send, Reply(404, "404 page not found\n"))
            return
        endpoint = endpoint_name(method, path)
        self._count(endpoint)
        fault = self._faults.take(endpoint)
        if fault is not None and fault.kind == "rate":
            await _answer(
                send,
                Reply(
                    429,
                    {
                        "error": "RATE_LIMIT_EXCEEDED",
                        "error_details": "Too many requests",
                        "message": "Too many requests",
                    },
                    {"Retry-After": str(fault.retry_after)},
                ),
            )
            return
        if fault is not None and fault.kind == "fail" and not fault.after:
            await _answer(send, _unavailable(fault.status))
            return
        reply = self._exchange.rest(
            method, path, query, body, headers.get("host", ""), headers.get("authorization")
        )
        if fault is not None and fault.kind == "lose":
            with trio.CancelScope(shield=True):
                await send({"type": ABORT})
            return
        if fault is not None and fault.kind == "fail":
            await _answer(send, _unavailable(fault.status))
            return
        await _answer(send, reply)

    async def _websocket(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        path = str(scope["path"]).rstrip("/")
        endpoint = {"/ws": "market", "/ws/user": "user"}.get(path)
        websocket = WebSocket(dict(scope), receive, send)
        if endpoint is None:
            await websocket.close(code=1008)
            return
        self._count(f"WS {endpoint}")
        connection = _Connection(endpoint)
        await websocket.accept()
        self._hub.connections.add(connection)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_writer, websocket, connection)
                nursery.start_soon(self._heartbeats, connection)
                nursery.start_soon(self._deadline, websocket, connection)
                while True:
                    text = await _receive_text(websocket)
                    if text is None:
                        break
                    self._hub.request(connection, text)
                nursery.cancel_scope.cancel()
        finally:
            self._hub.connections.discard(connection)

    async def _heartbeats(self, connection: _Connection) -> None:
        while True:
            await trio.sleep(self._heartbeat)
            if "heartbeats" in connection.channels:
                self._hub.heartbeat(connection)

    async def _deadline(self, websocket: WebSocket, connection: _Connection) -> None:
        """Coinbase disconnects a client that has not subscribed within 5 seconds."""
        with trio.move_on_after(self._subscribe_timeout):
            await connection.subscribed.wait()
            return
        _log.info("closing a WebSocket that did not subscribe in time")
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(code=1000)


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
        text = (message.get("bytes") or b"").decode("utf-8", "replace")
    return str(text)


async def _writer(websocket: WebSocket, connection: _Connection) -> None:
    async for text in connection.receive:
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return


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


def _unavailable(status: int) -> Reply:
    code = {500: "INTERNAL", 502: "BAD_GATEWAY", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
    message = "the service is temporarily unavailable"
    return Reply(
        status,
        {"error": code.get(status, "INTERNAL"), "error_details": message, "message": message},
    )


async def _answer(send: _Send, reply: Reply) -> None:
    if isinstance(reply.body, str):
        body = reply.body.encode()
        content_type = b"text/plain; charset=utf-8"
    else:
        body = _dumps(reply.body).encode()
        content_type = b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
