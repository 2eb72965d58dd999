"""The fake OANDA's ASGI side: v20 REST, the two NDJSON streams, and the wire faults.

A raw ASGI app (no framework: the streams need to write one flushed chunk
per line and to cut a connection mid-response), served by hypercorn on trio.
The account logic lives in :class:`~._oanda_exchange.OandaExchange`; this
module moves bytes, counts requests, and applies the fault knobs
(:class:`OandaFaults`) on the way in and out.

Cutting a connection. ASGI can only end a response cleanly, so the venue
swaps hypercorn's HTTP/1.1 stream class for a subclass that understands one
extra message, ``{"type": "tradenode.abort"}``: it closes the TCP connection
at once, with whatever has been written so far (nothing, for a lost answer;
some lines, for a dropped stream). Other apps never send it, so the swap is
inert for them, like the Binance fake's WebSocket swap.

Everything in :class:`StreamHub` runs on the server's trio thread; the
exchange hands it events through ``TrioToken.run_sync_soon``, which keeps
their order.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from tradenode.testing.venues._loopback import ABORT
from tradenode.testing.venues._oanda_exchange import (
    Json,
    OandaEvent,
    OandaExchange,
    Reply,
    endpoint_name,
)

__all__ = [
    "STREAM_KINDS",
    "OandaApp",
    "OandaFaults",
    "StreamHub",
]

_log = logging.getLogger("tradenode.testing.venues.oanda")

STREAM_KINDS = ("transactions", "pricing")

_Send = Callable[[Any], Awaitable[None]]
_Receive = Callable[[], Awaitable[Any]]


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# ------------------------------------------------------------------- faults


@dataclass(slots=True)
class _RestFault:
    kind: str
    """``rate`` (429 before processing), ``fail`` (5xx before/after), ``lose`` (process, no
    answer), ``hold`` (wait for a release before processing) or ``corrupt`` (process, then
    answer a malformed body)."""
    remaining: int
    status: int = 503
    after: bool = False
    retry_after: int = 1
    path: str | None = None
    target: str | None = None
    """``corrupt``: the dotted path (``order.units``) set to ``value``; None: the body cut."""
    value: str | None = None

    def matches(self, endpoint: str, path: str) -> bool:
        return self.path is None or self.path == endpoint or self.path in path

    def describe(self) -> Json:
        described: Json = {
            "kind": self.kind,
            "remaining": self.remaining,
            "status": self.status,
            "after": self.after,
            "path": self.path,
        }
        if self.kind == "corrupt":
            described.update(field=self.target, value=self.value)
        return described

    def corrupt(self, reply: Reply) -> bytes:
        """``reply``'s body as this fault spoils it: ``target`` set to ``value``, or cut in half."""
        if self.target is None:
            whole = _dumps(reply.body)
            return whole[: max(1, len(whole) // 2)]
        body = json.loads(_dumps(reply.body))
        *parents, last = self.target.split(".")
        target = body
        for key in parents:
            target = target.setdefault(key, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            target[last] = self.value
        return _dumps(body)


def _consume(faults: list[_RestFault], endpoint: str, path: str) -> _RestFault | None:
    """The first of ``faults`` matching this request, its count taken down by one (and
    removed at zero); the caller holds the faults' lock."""
    for fault in faults:
        if fault.matches(endpoint, path):
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None


class _HeldRequest:
    """A REST request the venue has read and not yet processed: it waits for ``release``."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.release = trio.Event()


@dataclass(slots=True)
class OandaFaults:
    """The wire faults still pending; every method runs under one lock (knobs come from any thread).

    Held requests (``hold``) are the exception to "consumed on the way in":
    the request waits on the venue's loop until released, so a client can be
    caught with a request on the wire, its answer not yet written.
    """

    rest: list[_RestFault] = field(default_factory=list)
    holds: list[_RestFault] = field(default_factory=list)
    held: list[_HeldRequest] = field(default_factory=list)
    stalled: set[str] = field(default_factory=set)
    duplicate: int = 0
    corrupt: int = 0
    crossed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def add(self, fault: _RestFault) -> None:
        with self.lock:
            (self.holds if fault.kind == "hold" else self.rest).append(fault)

    def take(self, endpoint: str, path: str) -> _RestFault | None:
        """The first pending fault for this request, consumed once."""
        with self.lock:
            return _consume(self.rest, endpoint, path)

    def take_hold(self, endpoint: str, path: str) -> _HeldRequest | None:
        """A new held request if a pending hold matches this one (consumed once)."""
        with self.lock:
            if _consume(self.holds, endpoint, path) is None:
                return None
            held = _HeldRequest(endpoint)
            self.held.append(held)
            self.changed.notify_all()
            return held

    def hold_ended(self, held: _HeldRequest) -> None:
        with self.lock:
            self.held.remove(held)
            self.changed.notify_all()

    def release_held(self) -> int:
        """Let every held request go on (on the venue's loop: it sets trio events); how many."""
        with self.lock:
            waiting = [held for held in self.held if not held.release.is_set()]
        for held in waiting:
            held.release.set()
        return len(waiting)

    def wait_held(self, count: int, timeout: float) -> None:
        """Block until ``count`` requests are held at once; ``TimeoutError`` after ``timeout`` s."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.held) >= count, timeout):
                raise TimeoutError(
                    f"waited {timeout:g} s for {count} held request(s); "
                    f"{len(self.held)} are held, {len(self.holds)} hold(s) unmatched"
                )

    def unstall(self, kind: str) -> None:
        """End the stall of ``kind`` streams (``all``: every stall)."""
        with self.lock:
            if kind == "all":
                self.stalled.clear()
                return
            if "all" in self.stalled:
                self.stalled.discard("all")
                self.stalled.update(STREAM_KINDS)
            self.stalled.discard(kind)

    def clear(self) -> None:
        """Forget pending faults (held requests stay held: :meth:`release_held` lets them go)."""
        with self.lock:
            self.rest.clear()
            self.holds.clear()
            self.stalled.clear()
            self.duplicate = 0
            self.corrupt = 0
            self.crossed = 0

    def pending(self) -> Json:
        with self.lock:
            return {
                "requests": [fault.describe() for fault in [*self.rest, *self.holds]],
                "held": [held.endpoint for held in self.held],
                "stalled": sorted(self.stalled),
                "duplicate_transactions": self.duplicate,
                "corrupt_next_line": self.corrupt,
                "cross_next_price": self.crossed,
            }


# ------------------------------------------------------------------ streams


class _Connection:
    """One open stream: its kind, instruments, lines waiting to be written, and its fate."""

    def __init__(self, kind: str, instruments: Iterable[str]) -> None:
        self.kind = kind
        self.instruments = frozenset(instruments)
        self.pending: collections.deque[bytes] = collections.deque()
        self.wake = trio.Event()
        self.aborted = False
        self.done = trio.Event()

    def push(self, line: bytes) -> None:
        self.pending.append(line)
        self.wake.set()

    def abort(self) -> None:
        self.aborted = True
        self.wake.set()


class StreamHub:
    """The open transaction and pricing streams, fed by the exchange's events (trio thread only)."""

    def __init__(self, exchange: OandaExchange, faults: OandaFaults, heartbeat: float) -> None:
        self._exchange = exchange
        self._faults = faults
        self.heartbeat = heartbeat
        self.connections: set[_Connection] = set()
        self.last_streamed_id = exchange.last_transaction_id

    def dispatch(self, event: OandaEvent) -> None:
        if event.kind == "transaction":
            self.last_streamed_id = event.payload["id"]
            self._transaction(event.payload)
        elif event.kind == "price":
            targets = [
                conn
                for conn in self.connections
                if conn.kind == "pricing" and event.payload["instrument"] in conn.instruments
            ]
            if not targets:
                return
            payload = event.payload
            with self._faults.lock:
                if self._faults.crossed > 0:
                    self._faults.crossed -= 1
                    # Each side's levels where the other's belong: best bid above best ask.
                    payload = {**payload, "bids": payload["asks"], "asks": payload["bids"]}
            line = _dumps(payload) + b"\n"
            for conn in targets:
                conn.push(line)

    def _transaction(self, payload: Json) -> None:
        targets = [conn for conn in self.connections if conn.kind == "transactions"]
        if not targets:
            return
        line = _dumps(payload) + b"\n"
        with self._faults.lock:
            copies = 1
            if self._faults.duplicate > 0:
                self._faults.duplicate -= 1
                copies = 2
            corrupt = self._faults.corrupt > 0
            if corrupt:
                self._faults.corrupt -= 1
        for conn in targets:
            if corrupt:
                conn.push(line[: max(1, len(line) // 2)].rstrip(b"\n") + b"\n")
            for _ in range(copies):
                conn.push(line)

    def is_stalled(self, kind: str) -> bool:
        with self._faults.lock:
            return kind in self._faults.stalled or "all" in self._faults.stalled

    def poke(self) -> None:
        for conn in self.connections:
            conn.wake.set()

    def matching(self, kind: str) -> list[_Connection]:
        return [c for c in self.connections if kind in ("all", c.kind)]

    async def drop(self, kind: str) -> int:
        """Cut every stream of ``kind`` (or all) at the TCP level; returns once they are gone.

        A stall of that kind ends with it: the client's reconnection is served normally.
        """
        victims = self.matching(kind)
        self._faults.unstall(kind)
        for conn in victims:
            conn.abort()
        for conn in victims:
            await conn.done.wait()
        return len(victims)

    def heartbeat_line(self, kind: str) -> bytes:
        body: Json = {"type": "HEARTBEAT"}
        if kind == "transactions":
            body["lastTransactionID"] = self.last_streamed_id
        body["time"] = self._exchange.now()
        return _dumps(body) + b"\n"

    def describe(self) -> list[Json]:
        return [
            {
                "kind": c.kind,
                "instruments": sorted(c.instruments),
                "unwritten": len(c.pending),
                "stalled": self.is_stalled(c.kind),
            }
            for c in self.connections
        ]


# ---------------------------------------------------------------------- app


class OandaApp:
    """The v20 REST API under ``/v3`` and both streams, on one ASGI app."""

    def __init__(self, exchange: OandaExchange, hub: StreamHub, faults: OandaFaults) -> None:
        self._exchange = exchange
        self._hub = hub
        self._faults = faults
        self._calls: dict[str, int] = {}
        self._calls_lock = threading.Lock()

    def calls(self) -> dict[str, int]:
        with self._calls_lock:
            return dict(self._calls)

    async def __call__(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = str(scope["method"]).upper()
        path = str(scope["path"])
        query = bytes(scope.get("query_string", b"")).decode("utf-8", "replace")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        endpoint = endpoint_name(method, path)
        with self._calls_lock:
            self._calls[endpoint] = self._calls.get(endpoint, 0) + 1
        if method == "GET" and (
            path.endswith("/transactions/stream") or path.endswith("/pricing/stream")
        ):
            await self._stream(path, query, headers.get("authorization"), receive, send)
            return
        body = await _read_body(receive)
        await self._rest(method, path, query, body, headers.get("authorization"), endpoint, send)

    async def _rest(  # noqa: PLR0917 - the request's parts, straight from __call__
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        authorization: str | None,
        endpoint: str,
        send: _Send,
    ) -> None:
        held = self._faults.take_hold(endpoint, path)
        if held is not None:
            try:
                await held.release.wait()
            finally:
                self._faults.hold_ended(held)
        fault = self._faults.take(endpoint, path)
        if fault is not None and fault.kind == "rate":
            await _answer(
                send,
                Reply(
                    429,
                    {"errorMessage": "Rate limit violation. Allowed rate: 120 requests per second"},
                    {"Retry-After": str(fault.retry_after)},
                ),
            )
            return
        if fault is not None and fault.kind == "fail" and not fault.after:
            await _answer(send, _failure(fault.status))
            return
        reply = self._exchange.rest(method, path, query, body, authorization)
        if fault is not None and fault.kind == "lose":
            await _abort(send)
            return
        if fault is not None and fault.kind == "fail":
            await _answer(send, _failure(fault.status))
            return
        if fault is not None and fault.kind == "corrupt":
            await _answer(send, reply, body=fault.corrupt(reply))
            return
        await _answer(send, reply)

    async def _stream(
        self, path: str, query: str, authorization: str | None, receive: _Receive, send: _Send
    ) -> None:
        check = self._exchange.stream_check(path, query, authorization)
        if isinstance(check, Reply):
            await _answer(send, check)
            return
        kind = "pricing" if check else "transactions"
        conn = _Connection(kind, check)
        snapshot = "snapshot=false" not in query.lower()
        self._hub.connections.add(conn)
        try:
            if kind == "pricing" and snapshot:
                for line in self._exchange.price_lines(check):
                    conn.push(_dumps(line) + b"\n")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/octet-stream"),
                        (b"cache-control", b"no-cache"),
                    ],
                }
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope)
                await self._write(conn, send)
                nursery.cancel_scope.cancel()
        finally:
            self._hub.connections.discard(conn)
            conn.done.set()

    async def _write(self, conn: _Connection, send: _Send) -> None:
        """One flushed chunk per line; a heartbeat whenever ``heartbeat`` seconds pass quietly."""
        hub = self._hub
        next_beat = trio.current_time() + hub.heartbeat
        while True:
            conn.wake = trio.Event()
            if conn.aborted:
                await _abort(send)
                return
            if hub.is_stalled(conn.kind):
                deadline = math.inf
                next_beat = trio.current_time() + hub.heartbeat
            else:
                while conn.pending and not conn.aborted and not hub.is_stalled(conn.kind):
                    line = conn.pending.popleft()
                    await send({"type": "http.response.body", "body": line, "more_body": True})
                    next_beat = trio.current_time() + hub.heartbeat
                if conn.aborted or hub.is_stalled(conn.kind) or conn.pending:
                    continue
                if trio.current_time() >= next_beat:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": hub.heartbeat_line(conn.kind),
                            "more_body": True,
                        }
                    )
                    next_beat = trio.current_time() + hub.heartbeat
                deadline = next_beat
            with trio.move_on_at(deadline):
                await conn.wake.wait()


async def _abort(send: _Send) -> None:
    """Cut the connection; shielded, because the disconnect it causes cancels this very task."""
    with trio.CancelScope(shield=True):
        await send({"type": ABORT})


async def _watch_disconnect(receive: _Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            scope.cancel()
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


def _failure(status: int) -> Reply:
    texts = {
        500: "An unexpected error occurred",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
    return Reply(status, {"errorMessage": texts.get(status, "Internal Server Error")})


async def _answer(send: _Send, reply: Reply, *, body: bytes | None = None) -> None:
    """``reply``, its body as JSON (or ``body``, as given)."""
    body = _dumps(reply.body) if body is None else body
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
