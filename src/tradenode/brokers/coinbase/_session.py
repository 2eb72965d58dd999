"""One Coinbase connection incarnation's I/O: httpx REST and two WebSockets, on trio.

The session runs on a trio loop in a ``TrioThread`` the broker's incarnation
owns. REST goes through one ``httpx.AsyncClient``; every private request
carries a fresh JWT whose ``uri`` claim names its method, host and path
(``_signing``). The user connection (``ws_user_url``) is opened and
subscribed before the session reports started: ``heartbeats`` first (one
message a second keeps it alive and shows it is), then ``user`` for the
configured products, each subscribe with its own fresh JWT. Quotes come
from a second connection to the market endpoint (``ws_url``: ``ticker``,
``level2`` and ``heartbeats``), opened when products are watched.

Frames cross to the actor unparsed (:class:`Frame`, tagged with their
connection), so the actor checks each connection's ``sequence_num`` and
parses. A connection that is silent for ``stream_timeout`` (no heartbeat
either), closed or broken is reported once as :class:`ConnectionLost`, and
the session ends. It never reconnects: the actor fails, the supervisor
restarts it with backoff, and the next incarnation opens a new session and
reconciles.

The private key is only ever used to sign; no repr, log line or exception
carries it or a JWT.
"""

from __future__ import annotations

import itertools
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import trio
import trio_websocket

from ..._exceptions import BrokerConnectionError
from .._httpx_request import send_request
from .._outside_calls import OutsideCalls
from .._websocket import RawStream, describe_error, open_websocket
from ._codec import parse_error, parse_json, parse_server_time
from ._endpoints import CoinbaseApi, Query, RestResult
from ._signing import CdpCredentials, build_jwt, jwt_uri

__all__ = [
    "CoinbaseSession",
    "ConnectionLost",
    "Frame",
    "NotSent",
    "SessionEvent",
    "retry_after_seconds",
]

logger = logging.getLogger("tradenode.brokers.coinbase")

Connection = Literal["user", "market"]


@dataclass(frozen=True, slots=True)
class Frame:
    connection: Connection
    text: str
    socket: int = 0
    """Which WebSocket of this session it came on (``sequence_num`` counts per socket:
    a new market connection starts again at 0)."""


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


SessionEvent = Frame | ConnectionLost


class NotSent(BrokerConnectionError):
    """The request certainly never reached the venue (the session had ended, or
    no connection could be opened)."""


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, if the answer gave one (Coinbase documents none)."""
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class CoinbaseSession:
    def __init__(
        self,
        broker: str,
        credentials: CdpCredentials,
        *,
        rest_url: str,
        ws_url: str,
        ws_user_url: str,
        products: Sequence[str],
        deliver: Callable[[SessionEvent], None],
        wall_time: Callable[[], float],
        request_timeout: float = 10.0,
        stream_timeout: float = 10.0,
    ) -> None:
        self.broker = broker
        self._credentials = credentials
        self._rest_url = rest_url.rstrip("/")
        parts = urllib.parse.urlsplit(self._rest_url)
        self._host = parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._ws_url = ws_url
        self._ws_user_url = ws_user_url
        self._products = tuple(products)
        self._deliver = deliver
        self._wall_time = wall_time
        self.clock_offset = 0
        """Seconds the venue's clock is ahead of ours (``GET /time`` at connect)."""
        self._request_timeout = request_timeout
        self._stream_timeout = stream_timeout
        self._client: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None
        self._outside = OutsideCalls(broker)
        self._sockets: list[trio_websocket.WebSocketConnection] = []
        self._socket_numbers = itertools.count(1)
        self._streams: list[RawStream] = []
        self._market: trio.CancelScope | None = None
        self._watching: tuple[str, ...] = ()
        self._done = trio.Event()
        self._finished = trio.Event()
        self._lost = False
        self._started = False
        self.requests_sent = 0
        self.last_headers: Mapping[str, str] = {}
        self.api = CoinbaseApi(self.rest)

    def __repr__(self) -> str:
        return f"CoinbaseSession({self.broker!r}, {self._rest_url!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect the user channel, report started, then run until closed or lost.

        A failure before ``task_status.started()`` propagates to the actor's
        ``on_start``; afterwards it is reported once as ``ConnectionLost``."""
        try:
            async with (
                trio.open_nursery() as nursery,
                self._outside.closing(
                    httpx.AsyncClient(
                        base_url=self._rest_url,
                        timeout=httpx.Timeout(self._request_timeout),
                    )
                ) as client,
            ):
                self._client = client
                self._nursery = nursery
                await self._sync_clock()
                with trio.fail_after(self._request_timeout):
                    user = await self._connect(nursery, self._ws_user_url)
                    await self._subscribe(user, "heartbeats", ())
                    await self._subscribe(user, "user", self._products)
                nursery.start_soon(self._read, "user", user)
                self._started = True
                task_status.started()
                try:
                    await self._done.wait()
                finally:
                    await self._close_sockets()
                    nursery.cancel_scope.cancel()
        except BaseException as raised:
            exc = _single(raised)
            if not self._started:
                if isinstance(exc, trio.TooSlowError):
                    raise BrokerConnectionError(
                        "timed out connecting to the user channel", broker=self.broker
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
            self._nursery = None
            self._finished.set()

    def time_s(self) -> int:
        """The venue's time in epoch seconds: what a JWT's ``nbf`` says."""
        return int(self._wall_time()) + self.clock_offset

    async def _sync_clock(self) -> None:
        """JWTs are stamped with the venue's time (``nbf``, ``exp``): measure the offset."""
        before = self._wall_time()
        result = await self.api.server_time()
        after = self._wall_time()
        if result.error is not None:
            error = result.error
            raise BrokerConnectionError(
                f"GET /time refused: {error.status} {error.code} {error.message}",
                broker=self.broker,
                code=error.code,
                retry_after=retry_after_seconds(result.headers),
            )
        venue = parse_server_time(result.body, broker=self.broker)
        self.clock_offset = round(venue - (before + after) / 2)

    @property
    def closed(self) -> bool:
        return self._lost

    async def aclose(self) -> None:
        """End the session without reporting a loss; waits until its sockets are closed."""
        self._lost = True
        self._done.set()
        if self._started:
            await self._finished.wait()

    async def _close_sockets(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            for socket in self._sockets:
                await socket.aclose()

    def _lose(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            if self._started:
                logger.warning("%s: connection lost: %s", self.broker, reason)
                self._deliver(ConnectionLost(reason))
        self._done.set()

    # -- WebSockets ----------------------------------------------------------------------

    async def _connect(self, nursery: trio.Nursery, url: str) -> trio_websocket.WebSocketConnection:
        socket = await open_websocket(
            nursery,
            url,
            broker=self.broker,
            streams=self._streams,
            max_message_size=10 * 2**20,  # the SDK's cap
        )
        self._sockets.append(socket)
        return socket

    async def _subscribe(
        self,
        socket: trio_websocket.WebSocketConnection,
        channel: str,
        products: Sequence[str],
    ) -> None:
        """One subscribe message, with a fresh JWT (it expires after two minutes)."""
        message: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if products:
            message["product_ids"] = list(products)
        message["jwt"] = build_jwt(self._credentials, now=self.time_s())
        try:
            await socket.send_message(json.dumps(message))
        except trio_websocket.ConnectionClosed as exc:
            raise BrokerConnectionError(
                f"the venue closed the connection before {channel} was subscribed",
                broker=self.broker,
            ) from exc

    async def _read(
        self, connection: Connection, socket: trio_websocket.WebSocketConnection
    ) -> None:
        number = next(self._socket_numbers)
        while True:
            text: str | bytes | None = None
            with trio.move_on_after(self._stream_timeout) as silent:
                try:
                    text = await socket.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    reason = exc.reason
                    detail = "no close frame" if reason is None else f"code {reason.code}"
                    self._lose(f"{connection} connection closed ({detail})")
                    return
            if silent.cancelled_caught:
                self._lose(f"{connection} connection silent for {self._stream_timeout:g} s")
                return
            assert text is not None
            decoded = text if isinstance(text, str) else text.decode("utf-8", "replace")
            self._deliver(Frame(connection, decoded, number))

    async def watch_quotes(self, products: Sequence[str]) -> None:
        """Stream ``ticker`` and ``level2`` for ``products`` from now on (a new market
        connection)."""
        products = tuple(sorted(products))
        if self._nursery is None or self._lost or self._outside.ending:
            raise NotSent("session is closed", broker=self.broker)
        if products == self._watching:
            return
        self._watching = products
        if self._market is not None:
            self._market.cancel()
            self._market = None
        if products:
            refused = await self._nursery.start(self._run_market, products)
            if refused is not None:
                raise refused

    async def _run_market(
        self, products: tuple[str, ...], *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._nursery is not None
        with trio.CancelScope() as scope:
            self._market = scope
            try:
                with trio.fail_after(self._request_timeout):
                    socket = await self._connect(self._nursery, self._ws_url)
                    await self._subscribe(socket, "heartbeats", ())
                    await self._subscribe(socket, "ticker", products)
                    await self._subscribe(socket, "level2", products)
            except (BrokerConnectionError, trio.TooSlowError) as exc:
                # Handed back by value: nursery.start would wrap it in a group.
                error = (
                    exc
                    if isinstance(exc, BrokerConnectionError)
                    else BrokerConnectionError("market connection timed out", broker=self.broker)
                )
                task_status.started(error)
                return
            task_status.started(None)
            try:
                await self._read("market", socket)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await socket.aclose()

    # -- REST --------------------------------------------------------------------------------

    async def rest(
        self,
        method: str,
        path: str,
        query: Query = (),
        body: Mapping[str, Any] | None = None,
        *,
        public: bool = False,
    ) -> RestResult:
        """One REST request; venue errors come back in ``RestResult.error``,
        transport failures raise ``BrokerConnectionError``/``BrokerTimeoutError``."""
        client = self._client
        if client is None or (self._lost and self._started) or self._outside.ending:
            raise NotSent("session is closed", broker=self.broker)
        full_path = f"{self._prefix}{path}"
        headers = {"Content-Type": "application/json"}
        if not public:
            uri = jwt_uri(method, self._host, full_path)
            token = build_jwt(self._credentials, now=self.time_s(), uri=uri)
            headers["Authorization"] = f"Bearer {token}"
        content = None if body is None else json.dumps(body).encode("utf-8")
        where = f"{method} {path}"
        self.requests_sent += 1
        response = await send_request(
            client,
            self._outside,
            method,
            path,
            broker=self.broker,
            timeout_s=self._request_timeout,
            not_sent=NotSent,
            params=list(query),
            content=content,
            headers=headers,
        )
        result_headers = {key.lower(): value for key, value in response.headers.items()}
        self.last_headers = result_headers
        if response.status_code >= 300:
            return RestResult(
                response.status_code,
                error=parse_error(response.status_code, response.content),
                headers=result_headers,
            )
        body_out = parse_json(response.content, broker=self.broker, where=where)
        return RestResult(response.status_code, body_out, headers=result_headers)
