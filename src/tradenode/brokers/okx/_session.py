"""The OKX session: one connection incarnation's network I/O, on trio.

REST goes through one ``httpx.AsyncClient``, every private request signed
(:mod:`._signing`) with the venue's time. The private WebSocket
(``/ws/v5/private``) is logged in and subscribed to the ``orders`` channel
before the session counts as started; it also carries order operations
(``op: order``, ``cancel-order``, ``amend-order``), the fast path, whose
answers come back by ``id``. Quotes arrive on the public WebSocket
(``bbo-tbt``), opened when a symbol is first watched.

OKX closes a connection that has seen no traffic for 30 s; the session
sends the text ``ping`` on each socket every ``ping_interval`` seconds and
expects ``pong`` within ``ping_timeout`` (``#overview-websocket-connect``).

The session never reconnects: a close, a missed pong, a refused login is
reported once as :class:`ConnectionLost` and the session stops; the broker
actor fails and its supervisor restarts it.
"""

from __future__ import annotations

import itertools
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import trio
import trio_websocket

from ..._exceptions import (
    BrokerConnectionError,
    BrokerTimeoutError,
    MalformedPayloadError,
)
from .._outside_calls import OutsideCalls
from .._websocket import RawStream, close_reason, describe_error, open_websocket
from ._codec import (
    OkxAnswer,
    Pong,
    WsEvent,
    WsOpAnswer,
    WsPush,
    parse_answer,
    parse_ws_frame,
    ws_message,
)
from ._endpoints import ORDERS_CHANNEL, QUOTES_CHANNEL, OkxApi, RestResult
from ._signing import OkxCredentials, masked, rest_headers, ws_login_args

__all__ = [
    "ConnectionLost",
    "MalformedFrame",
    "NotSent",
    "OkxSession",
    "OkxUrls",
    "OrdersPush",
    "QuotePush",
    "SessionEvent",
    "SessionSettings",
]

logger = logging.getLogger("tradenode.brokers.okx")


@dataclass(frozen=True, slots=True)
class OkxUrls:
    rest: str
    ws_private: str
    ws_public: str


@dataclass(frozen=True, slots=True)
class SessionSettings:
    request_timeout: float = 10.0
    connect_timeout: float = 10.0
    ping_interval: float = 20.0
    """Below OKX's 30 s idle limit."""
    ping_timeout: float = 10.0
    demo: bool = False
    """Send ``x-simulated-trading: 1`` (OKX demo trading)."""


@dataclass(frozen=True, slots=True)
class OrdersPush:
    """One ``orders`` channel push, still unparsed."""

    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class QuotePush:
    push: WsPush


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    """A frame we could not read; ``private``: it came on the private socket
    (where it may have been an order update)."""

    error: MalformedPayloadError
    private: bool


class NotSent(BrokerConnectionError):
    """Nothing left: the connection was not there to carry the request."""


SessionEvent = OrdersPush | QuotePush | ConnectionLost | MalformedFrame


class _Socket:
    """One WebSocket and what its pinger needs."""

    def __init__(self, name: str, ws: trio_websocket.WebSocketConnection) -> None:
        self.name = name
        self.ws = ws
        self.pong = trio.Event()


class OkxSession:
    """One connection to OKX: REST, the private WebSocket, the public one."""

    def __init__(
        self,
        broker: str,
        credentials: OkxCredentials,
        urls: OkxUrls,
        *,
        deliver: Callable[[SessionEvent], None],
        time_ms: Callable[[], int],
        settings: SessionSettings | None = None,
    ) -> None:
        self.broker = broker
        self._credentials = credentials
        self._urls = urls
        self._deliver = deliver
        self._time_ms = time_ms
        self.settings = settings or SessionSettings()
        self._client: httpx.AsyncClient | None = None
        self._private: _Socket | None = None
        self._public: _Socket | None = None
        self._watched: set[str] = set()
        self._ids = itertools.count(1)
        self._waiting: dict[str, trio.MemorySendChannel[WsOpAnswer]] = {}
        self._done = trio.Event()
        self._finished = trio.Event()
        self._streams: list[RawStream] = []
        self._nursery: trio.Nursery | None = None
        self._outside = OutsideCalls(broker)
        self._lost = False
        self.requests_sent = 0
        self.api = OkxApi(self)

    def __repr__(self) -> str:
        return f"OkxSession({self.broker!r}, {self._urls.rest!r})"

    @property
    def closed(self) -> bool:
        return self._lost

    @property
    def ws_ready(self) -> bool:
        return self._private is not None and not self._lost

    # -- lifecycle ------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, log in, subscribe to ``orders``; then run until closed or lost.

        Failures before ``task_status.started()`` propagate to ``on_start``;
        later ones are reported once as :class:`ConnectionLost`."""
        started = False
        try:
            async with (
                trio.open_nursery() as nursery,
                self._outside.closing(
                    httpx.AsyncClient(
                        base_url=self._urls.rest,
                        timeout=httpx.Timeout(
                            self.settings.request_timeout, connect=self.settings.connect_timeout
                        ),
                    )
                ) as client,
            ):
                self._client = client
                self._nursery = nursery
                with trio.fail_after(self.settings.connect_timeout):
                    ws = await self._connect(nursery, self._urls.ws_private)
                    await self._login(ws)
                    await self._subscribe(ws, [{"channel": ORDERS_CHANNEL, "instType": "SPOT"}])
                private = self._private = _Socket("private", ws)
                nursery.start_soon(self._read, private)
                nursery.start_soon(self._ping, private)
                started = True
                task_status.started()
                try:
                    await self._done.wait()
                finally:
                    await self._close_sockets()
                    nursery.cancel_scope.cancel()
        except BaseException as raised:
            exc = _single(raised)
            if not started:
                if isinstance(exc, trio.TooSlowError):
                    raise BrokerConnectionError(
                        "timed out connecting to the private WebSocket", broker=self.broker
                    ) from exc
                if exc is not raised and isinstance(exc, Exception):
                    raise exc from raised
                raise
            if isinstance(exc, trio.Cancelled):
                raise
            self._lose(f"session failed: {describe_error(exc)}")
        finally:
            with trio.CancelScope(shield=True):
                for stream in self._streams:
                    await trio.aclose_forcefully(stream)
            self._client = None
            self._private = self._public = None
            self._finished.set()

    async def aclose(self) -> None:
        """Stop and wait until the sockets are closed; no ConnectionLost is reported."""
        self._lost = True
        self._done.set()
        with trio.move_on_after(5.0):
            await self._finished.wait()

    async def _close_sockets(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            for socket in (self._public, self._private):
                if socket is not None:
                    await socket.ws.aclose()

    def _lose(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            logger.warning("%s: connection lost: %s", self.broker, reason)
            self._deliver(ConnectionLost(reason))
        self._done.set()

    async def _connect(self, nursery: trio.Nursery, url: str) -> trio_websocket.WebSocketConnection:
        return await open_websocket(nursery, url, broker=self.broker, streams=self._streams)

    async def _expect_event(self, ws: trio_websocket.WebSocketConnection, wanted: str) -> WsEvent:
        """Read frames until the event ``wanted`` (or an ``error`` event) arrives."""
        while True:
            try:
                text = await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                raise BrokerConnectionError(
                    f"WebSocket closed while waiting for {wanted} ({close_reason(exc)})",
                    broker=self.broker,
                ) from exc
            frame = parse_ws_frame(text, broker=self.broker)
            if isinstance(frame, WsEvent) and frame.event in (wanted, "error"):
                return frame

    async def _login(self, ws: trio_websocket.WebSocketConnection) -> None:
        args = ws_login_args(self._credentials, time_s=self._time_ms() // 1000)
        await ws.send_message(json.dumps({"op": "login", "args": [args]}))
        event = await self._expect_event(ws, "login")
        if event.event != "login" or event.code != "0":
            raise BrokerConnectionError(
                f"login refused: {event.code} {event.msg}", broker=self.broker, code=event.code
            )
        logger.info(
            "%s: private WebSocket logged in with key %r",
            self.broker,
            masked(self._credentials.api_key),
        )

    async def _subscribe(
        self, ws: trio_websocket.WebSocketConnection, args: Sequence[Mapping[str, str]]
    ) -> None:
        await ws.send_message(ws_message("subscribe", args))
        for _ in args:
            event = await self._expect_event(ws, "subscribe")
            if event.event != "subscribe":
                raise BrokerConnectionError(
                    f"subscription refused: {event.code} {event.msg}",
                    broker=self.broker,
                    code=event.code,
                )

    async def _ping(self, socket: _Socket) -> None:
        while True:
            await trio.sleep(self.settings.ping_interval)
            socket.pong = trio.Event()
            try:
                await socket.ws.send_message("ping")
            except trio_websocket.ConnectionClosed:
                self._lose(f"{socket.name} WebSocket closed during ping")
                return
            with trio.move_on_after(self.settings.ping_timeout):
                await socket.pong.wait()
                continue
            self._lose(
                f"no pong on the {socket.name} WebSocket within {self.settings.ping_timeout}s"
            )
            return

    async def _read(self, socket: _Socket) -> None:
        while True:
            try:
                text = await socket.ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                self._lose(f"{socket.name} WebSocket closed ({close_reason(exc)})")
                return
            try:
                frame = parse_ws_frame(text, broker=self.broker)
            except MalformedPayloadError as exc:
                self._deliver(MalformedFrame(exc, private=socket is self._private))
                continue
            if isinstance(frame, Pong):
                socket.pong.set()
            elif isinstance(frame, WsOpAnswer):
                channel = self._waiting.pop(frame.id, None)
                if channel is not None:
                    channel.send_nowait(frame)
            elif isinstance(frame, WsPush):
                if frame.channel == ORDERS_CHANNEL:
                    self._deliver(OrdersPush(frame.data))
                else:
                    self._deliver(QuotePush(frame))
            elif frame.event == "notice":
                logger.warning("%s: venue notice %s: %s", self.broker, frame.code, frame.msg)
            elif frame.event == "error":
                logger.warning("%s: venue error event %s: %s", self.broker, frame.code, frame.msg)

    # -- WebSocket operations ---------------------------------------------------------------

    async def ws_call(
        self, op: str, args: Sequence[Mapping[str, str | int]], *, exp_time_ms: int | None = None
    ) -> WsOpAnswer:
        """One operation on the private WebSocket and its answer (by ``id``).

        ``BrokerTimeoutError``: sent, no answer in time (outcome unknown);
        ``BrokerConnectionError``: the socket closed, or the session ended, before
        the answer (sent or not, unknown). A lost connection ends the call at once:
        the actor waiting on it must not wait out the timeout to hear of the loss."""
        private = self._private
        if private is None or self._lost or self._outside.ending:
            raise NotSent("private WebSocket not connected", broker=self.broker)
        ident = f"tn{next(self._ids)}"
        send, receive = trio.open_memory_channel[WsOpAnswer](1)
        self._waiting[ident] = send
        self.requests_sent += 1
        try:
            with self._outside.running(), trio.fail_after(self.settings.request_timeout):
                await private.ws.send_message(
                    ws_message(op, args, ident=ident, exp_time_ms=exp_time_ms)
                )
                return await receive.receive()
        except trio.TooSlowError as exc:
            raise BrokerTimeoutError(
                f"no answer to {op} within {self.settings.request_timeout}s",
                broker=self.broker,
                request_id=ident,
            ) from exc
        except trio_websocket.ConnectionClosed as exc:
            raise BrokerConnectionError(
                f"private WebSocket closed during {op}", broker=self.broker, request_id=ident
            ) from exc
        finally:
            self._waiting.pop(ident, None)
        raise BrokerConnectionError(
            f"the session ended during {op} (outcome unknown)", broker=self.broker, request_id=ident
        )

    # -- quotes -------------------------------------------------------------------------------

    async def watch_quotes(self, symbols: Sequence[str]) -> None:
        """Stream ``bbo-tbt`` for ``symbols`` (adds to what is already streamed)."""
        wanted = sorted(set(symbols) - self._watched)
        if not wanted:
            return
        nursery = self._nursery
        if nursery is None or self._lost or self._outside.ending:
            raise BrokerConnectionError("session not running", broker=self.broker)
        args = [{"channel": QUOTES_CHANNEL, "instId": symbol} for symbol in wanted]
        with self._outside.running() as call:
            if self._public is None:
                ws = await self._connect(nursery, self._urls.ws_public)
                with trio.fail_after(self.settings.connect_timeout):
                    await self._subscribe(ws, args)
                self._public = _Socket("public", ws)
                nursery.start_soon(self._read, self._public)
                nursery.start_soon(self._ping, self._public)
            else:
                await self._public.ws.send_message(ws_message("subscribe", args))
        if call.cancelled_caught:
            raise BrokerConnectionError(
                "the session closed while subscribing to quotes", broker=self.broker
            )
        self._watched.update(wanted)

    # -- REST ---------------------------------------------------------------------------------

    async def rest(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: object = None,
        signed: bool = True,
        exp_time_ms: int | None = None,
    ) -> RestResult:
        """One REST request. Venue answers (errors included) come back as a
        ``RestResult``; transport failures raise ``BrokerConnectionError`` /
        ``BrokerTimeoutError`` (the outcome is unknown)."""
        client = self._client
        if client is None or self._outside.ending:
            raise NotSent("session not running", broker=self.broker)
        query = urllib.parse.urlencode(params)
        request_path = f"{path}?{query}" if query else path
        text = "" if body is None else json.dumps(body, separators=(",", ":"))
        headers: dict[str, str] = {}
        if signed:
            headers = rest_headers(
                self._credentials,
                time_ms=self._time_ms(),
                method=method,
                request_path=request_path,
                body=text,
                demo=self.settings.demo,
            )
        elif self.settings.demo:
            headers["x-simulated-trading"] = "1"
        if exp_time_ms is not None:
            headers["expTime"] = str(exp_time_ms)
        if text:
            headers["Content-Type"] = "application/json"
        self.requests_sent += 1
        response: httpx.Response | None = None
        with self._outside.running():
            try:
                response = await client.request(
                    method, request_path, content=text.encode() if text else None, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                raise NotSent(f"{method} {path}: {type(exc).__name__}", broker=self.broker) from exc
            except httpx.TimeoutException as exc:
                raise BrokerTimeoutError(
                    f"{method} {path}: no answer within {self.settings.request_timeout}s",
                    broker=self.broker,
                ) from exc
            except httpx.HTTPError as exc:
                raise BrokerConnectionError(
                    f"{method} {path}: {type(exc).__name__}", broker=self.broker
                ) from exc
        if response is None:
            raise BrokerConnectionError(
                f"{method} {path}: the session closed during the request (outcome unknown)",
                broker=self.broker,
            )
        result_headers = {key.lower(): value for key, value in response.headers.items()}
        answer: OkxAnswer | None
        try:
            answer = parse_answer(response.json(), broker=self.broker)
        except (ValueError, MalformedPayloadError) as exc:
            if response.status_code < 300:
                raise MalformedPayloadError(
                    f"{method} {path}: unreadable answer ({exc})", broker=self.broker
                ) from exc
            answer = None  # a bare error page: the status says enough
        return RestResult(response.status_code, answer, result_headers)


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
