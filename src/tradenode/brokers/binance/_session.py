"""The Binance session: one connection incarnation's network I/O, on trio.

REST goes through one keep-alive connection pool (``_http.RestTransport``:
many requests in flight at once); order and fill events arrive on the WebSocket API (the listenKey
endpoints stopped working on 2026-02-20): with an Ed25519 key the session
logs the connection on (``session.logon``) and subscribes with
``userDataStream.subscribe``, Binance's recommended path; with an HMAC key
(which cannot log on) through ``userDataStream.subscribe.signature``. Quotes
arrive on the market-stream socket. The
session never reconnects: anything that ends a socket (a close, a missed
heartbeat, ``serverShutdown``, ``eventStreamTerminated``, the 24 h limit) is
reported once as :class:`ConnectionLost` and the session stops. The broker
actor turns that into a failure so its supervisor restarts it, and the
next incarnation opens a fresh session and reconciles.

The session carries and signs; it knows no endpoint by name. Paths, methods,
weights and parameters are the typed endpoint layer's
(:class:`~tradenode.brokers.binance.BinanceApi`, ``session.api``), which
the connection itself uses to log on and subscribe.

Everything here runs on the broker actor's :class:`~tradenode.supervision.TrioThread`;
results and events cross back to the actor as plain values through the
``deliver`` callback, so all state changes stay on the actor's thread.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    BinanceErrorAnswer,
    HeaderRates,
    ServerShutdown,
    WsEvent,
    WsResponse,
    market_stream_name,
    parse_error,
    parse_ws_frame,
    trade_stream_name,
    ws_rate_usage,
    ws_request,
    ws_retry_after_seconds,
)
from ._endpoints import BinanceApi, market_streams_url, subscribe_streams_message
from ._http import HttpAnswer, HttpTransport, open_rest_transport
from ._signing import (
    ApiCredentials,
    Ed25519Credentials,
    encode_params,
    signed_query,
    signed_ws_params,
)

__all__ = [
    "BinanceEndpoints",
    "BinanceSession",
    "ConnectionLost",
    "MarketPayload",
    "RestResult",
    "SessionSettings",
    "StreamPayload",
]

logger = logging.getLogger("tradenode.brokers.binance")

#: Binance closes a WebSocket connection after 24 hours; leaving a little
#: earlier turns a surprise disconnect into a planned restart.
_CONNECTION_LIFETIME = 24 * 3600 - 300


@dataclass(frozen=True, slots=True)
class BinanceEndpoints:
    """Where a venue lives. Testnet and live differ only by host, as Binance documents."""

    rest_url: str
    ws_api_url: str
    stream_url: str

    @classmethod
    def live(cls) -> BinanceEndpoints:
        return cls(
            "https://api.binance.com",
            "wss://ws-api.binance.com:443/ws-api/v3",
            "wss://stream.binance.com:9443",
        )

    @classmethod
    def testnet(cls) -> BinanceEndpoints:
        return cls(
            "https://testnet.binance.vision",
            "wss://ws-api.testnet.binance.vision/ws-api/v3",
            "wss://stream.testnet.binance.vision",
        )


@dataclass(frozen=True, slots=True)
class SessionSettings:
    recv_window_ms: int = 5000
    request_timeout: float = 10.0
    connect_timeout: float = 10.0
    heartbeat_interval: float = 20.0
    """How often we ping the WebSocket API ourselves; an unanswered ping
    within ``heartbeat_timeout`` means the connection is dead even if TCP
    has not noticed."""
    heartbeat_timeout: float = 30.0
    max_connections: int = 32


@dataclass(frozen=True, slots=True)
class RestResult:
    """A venue's answer, successful or not; ``sent_at`` is the trio clock when it left.

    Most come from REST; an order placed, cancelled or replaced over the
    WebSocket API comes back as one too (:meth:`from_ws`), so the actor maps
    both alike: ``body`` is the response's ``result``, ``usage`` its
    ``rateLimits`` (REST's counters are in ``headers``) and ``retry_after`` the
    wait a 429/418 asks for (REST's is the ``Retry-After`` header)."""

    status: int
    body: Any
    headers: Mapping[str, str]
    sent_at: float
    error: BinanceErrorAnswer | None = None
    usage: HeaderRates | None = None
    retry_after: float | None = None

    @classmethod
    def from_ws(cls, response: WsResponse, sent_at: float) -> RestResult:
        """A WebSocket API response as the answer the actor maps."""
        error = response.error
        return cls(
            response.status,
            response.result if error is None else None,
            {},
            sent_at,
            error,
            ws_rate_usage(response.rate_limits),
            ws_retry_after_seconds(error) if error is not None else None,
        )


@dataclass(frozen=True, slots=True)
class StreamPayload:
    """One user-data event from the WebSocket API, still unparsed."""

    event: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class MarketPayload:
    """One market-stream frame, still unparsed."""

    text: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    """A frame we could not read; the actor logs and counts it."""

    error: MalformedPayloadError


SessionEvent = StreamPayload | MarketPayload | ConnectionLost | MalformedFrame


class _Waiter:
    """One WebSocket API call waiting for its answer: the reader puts the answer
    here and sets the event; a connection lost sets the event with no answer. Made
    per call on the order path, where a memory channel (two endpoints and a state
    per call, ~3 us) did only this."""

    __slots__ = ("answer", "event")

    def __init__(self) -> None:
        self.answer: WsResponse | None = None
        self.event = trio.Event()

    def deliver(self, answer: WsResponse) -> None:
        self.answer = answer
        self.event.set()


@dataclass
class _Calls:
    next_id: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__)
    waiting: dict[str, _Waiter] = field(default_factory=dict)
    on_answer: dict[str, Callable[[WsResponse], None]] = field(default_factory=dict)


class BinanceSession:
    """One connection to a Binance venue: REST, the WebSocket API and market streams."""

    def __init__(
        self,
        broker: str,
        credentials: ApiCredentials,
        endpoints: BinanceEndpoints,
        *,
        deliver: Callable[[SessionEvent], None],
        time_ms: Callable[[], int],
        settings: SessionSettings | None = None,
    ) -> None:
        self.broker = broker
        self._credentials = credentials
        self._endpoints = endpoints
        self._deliver = deliver
        self._time_ms = time_ms
        self.settings = settings or SessionSettings()
        self._client: HttpTransport | None = None
        self._ws_api: trio_websocket.WebSocketConnection | None = None
        self._market: trio_websocket.WebSocketConnection | None = None
        self._market_streams: set[str] = set()
        self._calls = _Calls()
        self._done = trio.Event()
        self._finished = trio.Event()
        self._streams: list[RawStream] = []
        self._lost = False
        self._nursery: trio.Nursery | None = None
        self._outside = OutsideCalls(broker)
        self._token: trio.lowlevel.TrioToken | None = None
        self.subscription_id: int | None = None
        self.logged_on = False
        """Whether ``session.logon`` authenticated the WebSocket API connection."""
        self.api = BinanceApi(self)
        """Binance's endpoints as typed calls over this session."""

    def __repr__(self) -> str:
        return f"BinanceSession({self.broker!r}, {self._endpoints.rest_url!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, subscribe to the account's events, then run until closed or lost.

        Failures before ``task_status.started()`` propagate to whoever started
        the session (the actor's ``on_start``, which then fails and is
        restarted with backoff); failures after it are reported once as
        :class:`ConnectionLost`.
        """
        started = False
        client = open_rest_transport(
            self._endpoints.rest_url,
            broker=self.broker,
            request_timeout=self.settings.request_timeout,
            connect_timeout=self.settings.connect_timeout,
            max_connections=self.settings.max_connections,
        )
        try:
            async with trio.open_nursery() as nursery:
                self._client = client
                self._nursery = nursery
                self._token = trio.lowlevel.current_trio_token()
                with trio.fail_after(self.settings.connect_timeout):
                    self._ws_api = await self._connect(nursery, self._endpoints.ws_api_url)
                nursery.start_soon(self._read_api, self._ws_api)
                if isinstance(self._credentials, Ed25519Credentials):
                    await self._logon()
                await self._subscribe_user_data()
                nursery.start_soon(self._heartbeat)
                nursery.start_soon(self._lifetime)
                started = True
                task_status.started()
                try:
                    await self._done.wait()
                finally:
                    await self._outside.end()
                    await self._close_sockets()
                    nursery.cancel_scope.cancel()
        except BaseException as raised:
            exc = _single(raised)
            if not started:
                if exc is not raised and isinstance(exc, Exception):
                    raise exc from raised
                if isinstance(exc, trio.TooSlowError):
                    raise BrokerConnectionError(
                        "timed out connecting to the WebSocket API", broker=self.broker
                    ) from exc
                raise
            if isinstance(exc, trio.Cancelled):
                raise
            self._lose(f"session failed: {describe_error(exc)}")
        finally:
            self._abandon_calls()
            with trio.CancelScope(shield=True):
                await self._outside.end()
                for stream in self._streams:
                    await trio.aclose_forcefully(stream)
                await client.aclose()
            self._client = None
            self._ws_api = None
            self._market = None
            self._token = None
            self._finished.set()

    async def aclose(self) -> None:
        """Stop the session and wait until its sockets are closed; no ConnectionLost
        is reported."""
        self._lost = True
        self._done.set()
        await self._finished.wait()

    async def _close_sockets(self) -> None:
        """Say goodbye properly (a close frame, then the TCP close), but never
        wait long for a venue that is not listening."""
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            for socket in (self._market, self._ws_api):
                if socket is not None:
                    await socket.aclose()

    def _lose(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            logger.warning("%s: connection lost: %s", self.broker, reason)
            self._deliver(ConnectionLost(reason))
        self._abandon_calls()
        self._done.set()

    def _abandon_calls(self) -> None:
        """Fail every WebSocket API call still waiting for its answer: the socket
        that would carry it is gone (the caller treats the outcome as unknown)."""
        waiting, self._calls.waiting = self._calls.waiting, {}
        self._calls.on_answer.clear()
        for waiter in waiting.values():
            waiter.event.set()  # no answer: the call raises BrokerConnectionError

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """From another thread: run ``fn(*args)`` as a task of this session, without
        waiting for the session's thread to take it (the caller goes on at once).
        The task ends with the session (cancelled): it must answer for itself then.
        Raises ``BrokerConnectionError`` if the session is not running."""
        token = self._token
        if token is None or self._lost:
            raise BrokerConnectionError("session not running", broker=self.broker)
        try:
            token.run_sync_soon(self._start_task, fn, args)
        except trio.RunFinishedError as exc:
            raise BrokerConnectionError("session not running", broker=self.broker) from exc

    def _start_task(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        nursery = self._nursery
        if nursery is None:
            logger.warning("%s: session ended before %s started", self.broker, fn.__name__)
            return
        try:
            nursery.start_soon(fn, *args)
        except RuntimeError:  # the nursery is closing: the session is ending
            logger.warning("%s: session ended before %s started", self.broker, fn.__name__)

    async def _connect(self, nursery: trio.Nursery, url: str) -> trio_websocket.WebSocketConnection:
        return await open_websocket(nursery, url, broker=self.broker, streams=self._streams)

    async def _lifetime(self) -> None:
        await trio.sleep(_CONNECTION_LIFETIME)
        self._lose("24 h connection limit reached")

    async def _heartbeat(self) -> None:
        api = self._ws_api
        assert api is not None
        while True:
            await trio.sleep(self.settings.heartbeat_interval)
            with trio.move_on_after(self.settings.heartbeat_timeout) as scope:
                try:
                    await api.ping()
                except trio_websocket.ConnectionClosed:
                    self._lose("WebSocket API closed during heartbeat")
                    return
            if scope.cancelled_caught:
                self._lose(f"no heartbeat answer within {self.settings.heartbeat_timeout}s")
                return

    # -- the WebSocket API ------------------------------------------------------------

    async def _read_api(self, api: trio_websocket.WebSocketConnection) -> None:
        while True:
            try:
                text = await api.get_message()
            except trio_websocket.ConnectionClosed as exc:
                self._lose(f"WebSocket API closed ({close_reason(exc)})")
                return
            try:
                frame = parse_ws_frame(text, broker=self.broker)
            except MalformedPayloadError as exc:
                self._deliver(MalformedFrame(exc))
                continue
            if isinstance(frame, WsResponse):
                key = str(frame.id)
                waiter = self._calls.waiting.pop(key, None)
                on_answer = self._calls.on_answer.pop(key, None)
                if on_answer is not None:
                    # Before the next frame: the account's events for the same
                    # order follow the answer, and the actor should see it first.
                    on_answer(frame)
                if waiter is not None:
                    waiter.deliver(frame)
            elif isinstance(frame, WsEvent):
                if frame.event.get("e") == "eventStreamTerminated":
                    self._lose("user data stream terminated by the venue")
                    return
                self._deliver(StreamPayload(frame.event))
            elif isinstance(frame, ServerShutdown):
                self._lose("venue announced serverShutdown")
                return

    @property
    def ws_api_open(self) -> bool:
        """Whether the WebSocket API connection is up (connected, not lost or closing)."""
        return self._ws_api is not None and not self._lost

    async def call(
        self,
        method: str,
        params: Mapping[str, str] | None,
        *,
        signed: bool = False,
        on_answer: Callable[[WsResponse], None] | None = None,
    ) -> WsResponse:
        """One WebSocket API request and its response.

        ``signed`` adds ``apiKey``, ``timestamp``, ``recvWindow`` and the
        signature to ``params``; on a connection logged on with
        ``session.logon`` the session's key signs for it, so only ``timestamp``
        and ``recvWindow`` are added (Binance: "authenticated requests" leave
        out ``apiKey`` and ``signature``). Either way the params are complete
        before the first await, so a caller's deadline check right before the
        call bounds what is sent.

        A connection lost before the answer raises ``BrokerConnectionError``:
        the request may or may not have been carried out.

        ``on_answer`` is called with the answer on the reading task as soon as
        it is read, before any later frame is handled (and before this call
        returns it); it must not block or raise."""
        api = self._ws_api
        if api is None or self._lost:
            raise BrokerConnectionError("WebSocket API not connected", broker=self.broker)
        if signed and self.logged_on:
            params = dict(params or {})
            params["timestamp"] = str(self._time_ms())
            params["recvWindow"] = str(self.settings.recv_window_ms)
        elif signed:
            params = signed_ws_params(
                self._credentials,
                params or {},
                timestamp_ms=self._time_ms(),
                recv_window_ms=self.settings.recv_window_ms,
            )
        request_id = f"tn{self._calls.next_id()}"
        waiter = self._calls.waiting[request_id] = _Waiter()
        if on_answer is not None:
            self._calls.on_answer[request_id] = on_answer
        try:
            with trio.fail_after(self.settings.request_timeout):
                await api.send_message(ws_request(request_id, method, params))
                await waiter.event.wait()
            answer = waiter.answer
            if answer is None:
                raise BrokerConnectionError(
                    f"WebSocket API lost during {method}", broker=self.broker, request_id=request_id
                )
            return answer
        except trio.TooSlowError as exc:
            raise BrokerTimeoutError(
                f"no answer to {method} within {self.settings.request_timeout}s",
                broker=self.broker,
                request_id=request_id,
            ) from exc
        except trio_websocket.ConnectionClosed as exc:
            raise BrokerConnectionError(
                f"WebSocket API closed during {method}", broker=self.broker, request_id=request_id
            ) from exc
        finally:
            self._calls.waiting.pop(request_id, None)
            self._calls.on_answer.pop(request_id, None)

    async def _logon(self) -> None:
        """``session.logon``: later requests on this connection may leave out
        ``apiKey`` and ``signature`` (Ed25519 keys only)."""
        response = await self.api.session_logon()
        if response.error is not None:
            raise BrokerConnectionError(
                f"session.logon refused: {response.error.code} {response.error.msg}",
                broker=self.broker,
                code=str(response.error.code),
                retry_after=ws_retry_after_seconds(response.error),
            )
        result = response.result
        if not isinstance(result, Mapping) or result.get("apiKey") != self._credentials.api_key:
            raise MalformedPayloadError("unexpected session.logon answer", broker=self.broker)
        self.logged_on = True
        logger.info(
            "%s: WebSocket API session logged on with Ed25519 key %r",
            self.broker,
            _masked(self._credentials.api_key),
        )

    async def _subscribe_user_data(self) -> None:
        # Logged on, the session's key signs for it: no params at all.
        response = await self.api.subscribe_user_data(logged_on=self.logged_on)
        if response.error is not None:
            raise BrokerConnectionError(
                f"user data subscription refused: {response.error.code} {response.error.msg}",
                broker=self.broker,
                code=str(response.error.code),
                retry_after=ws_retry_after_seconds(response.error),
            )
        result = response.result
        if not isinstance(result, Mapping) or not isinstance(result.get("subscriptionId"), int):
            raise MalformedPayloadError(
                f"unexpected subscription answer {result!r}", broker=self.broker
            )
        self.subscription_id = result["subscriptionId"]

    # -- market streams -------------------------------------------------------------------

    async def watch_quotes(self, symbols: Sequence[str]) -> None:
        """Stream ``<symbol>@bookTicker`` for ``symbols`` (adds to what is already streamed)."""
        await self._watch_streams({market_stream_name(symbol) for symbol in symbols})

    async def watch_trades(self, symbols: Sequence[str]) -> None:
        """Stream ``<symbol>@trade`` (the public tape) for ``symbols``, on the same
        market connection as the quotes."""
        await self._watch_streams({trade_stream_name(symbol) for symbol in symbols})

    async def _watch_streams(self, names: set[str]) -> None:
        wanted = names - self._market_streams
        if not wanted:
            return
        nursery = self._nursery
        if nursery is None or self._outside.ending:
            raise BrokerConnectionError("session not running", broker=self.broker)
        with self._outside.running() as call:
            if self._market is None:
                url = market_streams_url(self._endpoints.stream_url, sorted(wanted))
                self._market = await self._connect(nursery, url)
                nursery.start_soon(self._read_market, self._market)
            else:
                try:
                    await self._market.send_message(
                        subscribe_streams_message(sorted(wanted), self._calls.next_id())
                    )
                except trio_websocket.ConnectionClosed as exc:
                    # Closed before its reader noticed: the same loss it would report.
                    reason = f"market stream closed ({close_reason(exc)})"
                    self._lose(reason)
                    raise BrokerConnectionError(reason, broker=self.broker) from exc
        if call.cancelled_caught:
            raise BrokerConnectionError(
                "the session closed while subscribing to market streams", broker=self.broker
            )
        self._market_streams |= wanted

    async def _read_market(self, market: trio_websocket.WebSocketConnection) -> None:
        while True:
            try:
                text = await market.get_message()
            except trio_websocket.ConnectionClosed as exc:
                self._lose(f"market stream closed ({close_reason(exc)})")
                return
            self._deliver(MarketPayload(text if isinstance(text, str) else text.decode()))

    # -- REST -----------------------------------------------------------------------------

    async def rest(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        signed: bool = False,
        api_key: bool = False,
    ) -> RestResult:
        """One REST request. Venue errors come back in ``RestResult.error``;
        transport failures raise ``BrokerConnectionError``/``BrokerTimeoutError``."""
        client = self._client
        if client is None or self._outside.ending:
            raise BrokerConnectionError("session not running", broker=self.broker)
        if signed:
            query = signed_query(
                self._credentials,
                params,
                timestamp_ms=self._time_ms(),
                recv_window_ms=self.settings.recv_window_ms,
            )
        else:
            query = encode_params(params)
        target = f"{path}?{query}" if query else path
        sent_at = trio.current_time()
        answer: HttpAnswer | None = None
        with self._outside.running():
            answer = await client.request(
                method, target, self._credentials.api_key if signed or api_key else None
            )
        if answer is None:
            raise BrokerConnectionError(
                f"{method} {path}: the session closed during the request (outcome unknown)",
                broker=self.broker,
            )
        if answer.status >= 300:
            return RestResult(
                answer.status,
                None,
                answer.headers,
                sent_at,
                parse_error(answer.status, answer.content),
            )
        try:
            body = json.loads(answer.content)
        except ValueError as exc:
            raise MalformedPayloadError(
                f"{method} {path}: answer is not JSON", broker=self.broker
            ) from exc
        return RestResult(answer.status, body, answer.headers, sent_at)


def _masked(key: str) -> str:
    return f"{key[:4]}…{key[-3:]}" if len(key) > 10 else "…"


def _single(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-member exception groups, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
