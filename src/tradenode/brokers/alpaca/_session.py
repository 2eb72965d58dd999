"""One Alpaca connection incarnation's I/O: httpx REST and two WebSockets, on trio.

The session runs on a trio loop in a ``TrioThread`` the broker's incarnation
owns. REST goes through one ``httpx.AsyncClient`` whose every request carries
the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` headers (Alpaca signs
nothing). The ``trade_updates`` connection is opened, authenticated and
listening before the session reports started, so the reconciliation that
follows misses nothing: an event that happens after it is on the stream, one
before it is in the REST history. Quotes come from a second connection, the
market-data stream (``/v2/<feed>``, JSON), opened when symbols are watched;
it carries no order event, so a failure there is logged and the quotes stop,
nothing more.

Frames cross to the actor unparsed (:class:`Frame`), so the actor parses
them and counts what it cannot read. ``trade_updates`` has no heartbeat (a
quiet account sends nothing), so the session pings it every
``ping_interval``; a missing pong within ``ping_timeout``, a close or a
broken socket is reported once as :class:`ConnectionLost`, and the session
ends. It never reconnects: the actor fails, the supervisor restarts it with
backoff, and the next incarnation opens a new session and reconciles (there
are no sequence numbers and no replay on this stream).

The secret key is only ever put in a header or the stream's authenticate
message; no repr, log line or exception carries it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import trio
import trio_websocket

from ..._exceptions import BrokerConnectionError, MalformedPayloadError
from .._fields import decode_json
from .._httpx_request import send_request
from .._outside_calls import OutsideCalls
from .._websocket import RawStream, close_reason, describe_error, open_websocket
from ._codec import Authorization, Listening, auth_message, listen_message, parse_error
from ._codec import parse_stream_message as _parse_stream
from ._endpoints import AlpacaApi, Query, RestResult

__all__ = ["AlpacaSession", "ConnectionLost", "Frame", "NotSent", "SessionEvent"]

logger = logging.getLogger("tradenode.brokers.alpaca")

Connection = Literal["trade", "data"]


@dataclass(frozen=True, slots=True)
class Frame:
    connection: Connection
    text: str | bytes


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


SessionEvent = Frame | ConnectionLost


class NotSent(BrokerConnectionError):
    """The request certainly never reached the venue (the session had ended, or
    no connection could be opened)."""


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class AlpacaSession:
    def __init__(
        self,
        broker: str,
        *,
        key_id: str,
        secret_key: str,
        rest_url: str,
        stream_url: str,
        data_url: str,
        deliver: Any,
        request_timeout: float = 10.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 20.0,
    ) -> None:
        self.broker = broker
        self._key_id = key_id
        self._secret = secret_key
        self._rest_url = rest_url.rstrip("/")
        self._stream_url = stream_url
        self._data_url = data_url
        self._deliver = deliver
        self._request_timeout = request_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._client: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None
        self._outside = OutsideCalls(broker)
        self._sockets: list[trio_websocket.WebSocketConnection] = []
        self._streams: list[RawStream] = []
        self._data: trio.CancelScope | None = None
        self._watching: tuple[str, ...] = ()
        self._done = trio.Event()
        self._finished = trio.Event()
        self._lost = False
        self._started = False
        self.requests_sent = 0
        self.last_headers: Mapping[str, str] = {}
        self.api = AlpacaApi(self.rest)

    def __repr__(self) -> str:
        return f"AlpacaSession({self.broker!r}, {self._rest_url!r})"

    # -- lifecycle ---------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Open ``trade_updates`` (authenticated, listening), report started, then run
        until closed or lost. A failure before ``task_status.started()`` propagates
        to the actor's ``on_start``; afterwards it is reported once as ``ConnectionLost``."""
        try:
            async with (
                trio.open_nursery() as nursery,
                self._outside.closing(
                    httpx.AsyncClient(
                        base_url=self._rest_url,
                        timeout=httpx.Timeout(self._request_timeout),
                        headers={
                            "APCA-API-KEY-ID": self._key_id,
                            "APCA-API-SECRET-KEY": self._secret,
                        },
                        follow_redirects=False,
                    )
                ) as client,
            ):
                self._client = client
                self._nursery = nursery
                with trio.fail_after(self._request_timeout):
                    trade = await self._connect(nursery, self._stream_url)
                    await self._authenticate(trade)
                nursery.start_soon(self._read, "trade", trade)
                nursery.start_soon(self._keepalive, trade)
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
                        "timed out connecting to trade_updates", broker=self.broker
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

    # -- trade_updates -----------------------------------------------------------------

    async def _connect(self, nursery: trio.Nursery, url: str) -> trio_websocket.WebSocketConnection:
        socket = await open_websocket(nursery, url, broker=self.broker, streams=self._streams)
        self._sockets.append(socket)
        return socket

    async def _send_json(
        self, socket: trio_websocket.WebSocketConnection, message: Mapping[str, Any], what: str
    ) -> None:
        try:
            await socket.send_message(json.dumps(message))
        except trio_websocket.ConnectionClosed as exc:
            raise BrokerConnectionError(
                f"the venue closed the connection before {what} ({close_reason(exc)})",
                broker=self.broker,
            ) from exc

    async def _receive(self, socket: trio_websocket.WebSocketConnection, what: str) -> str | bytes:
        try:
            return await socket.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise BrokerConnectionError(
                f"the venue closed the connection during {what} ({close_reason(exc)})",
                broker=self.broker,
            ) from exc

    async def _authenticate(self, socket: trio_websocket.WebSocketConnection) -> None:
        """``authenticate`` then ``listen`` to ``trade_updates``; a refusal is a
        ``BrokerConnectionError`` (code ``UNAUTHORIZED``)."""
        await self._send_json(socket, auth_message(self._key_id, self._secret), "authenticating")
        while True:
            reply = _parse_stream(await self._receive(socket, "authentication"), broker=self.broker)
            if isinstance(reply, Authorization):
                break
        if not reply.authorized:
            raise BrokerConnectionError(
                "trade_updates refused the API key", broker=self.broker, code="UNAUTHORIZED"
            )
        await self._send_json(socket, listen_message(["trade_updates"]), "listening")
        while True:
            reply = _parse_stream(await self._receive(socket, "listen"), broker=self.broker)
            if isinstance(reply, Authorization) and not reply.authorized:
                raise BrokerConnectionError(
                    "trade_updates refused to listen", broker=self.broker, code="UNAUTHORIZED"
                )
            if isinstance(reply, Listening):
                if "trade_updates" not in reply.streams:
                    raise BrokerConnectionError(
                        f"trade_updates not listened to (streams {list(reply.streams)})",
                        broker=self.broker,
                    )
                return

    async def _read(
        self, connection: Connection, socket: trio_websocket.WebSocketConnection
    ) -> None:
        while True:
            try:
                text = await socket.get_message()
            except trio_websocket.ConnectionClosed as exc:
                if connection == "trade":
                    self._lose(f"trade_updates closed ({close_reason(exc)})")
                else:
                    logger.warning(
                        "%s: market data closed (%s); no quotes until the next connection",
                        self.broker,
                        close_reason(exc),
                    )
                return
            self._deliver(Frame(connection, text))

    async def _keepalive(self, socket: trio_websocket.WebSocketConnection) -> None:
        """``trade_updates`` is silent on a quiet account: a ping proves it is alive."""
        while True:
            await trio.sleep(self._ping_interval)
            answered = False
            with trio.move_on_after(self._ping_timeout):
                try:
                    await socket.ping()
                except (trio_websocket.ConnectionClosed, trio.BrokenResourceError) as exc:
                    self._lose(f"trade_updates ping failed: {describe_error(exc)}")
                    return
                answered = True
            if not answered:
                self._lose(f"trade_updates: no pong within {self._ping_timeout:g} s")
                return

    # -- market data --------------------------------------------------------------------

    async def watch_quotes(self, symbols: Sequence[str]) -> str | None:
        """Stream quotes for ``symbols`` from now on (a new market-data connection).
        None once subscribed, else why not (logged by the caller; orders carry on)."""
        symbols = tuple(sorted(symbols))
        if self._nursery is None or self._lost or self._outside.ending:
            raise NotSent("session is closed", broker=self.broker)
        if symbols == self._watching:
            return None
        self._watching = symbols
        if self._data is not None:
            self._data.cancel()
            self._data = None
        if not symbols:
            return None
        refused: str | None = await self._nursery.start(self._run_data, symbols)
        return refused

    async def _run_data(
        self, symbols: tuple[str, ...], *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        assert self._nursery is not None
        with trio.CancelScope() as scope:
            self._data = scope
            try:
                with trio.fail_after(self._request_timeout):
                    socket = await self._connect(self._nursery, self._data_url)
                    await self._data_handshake(socket, symbols)
            except (BrokerConnectionError, trio.TooSlowError, MalformedPayloadError) as exc:
                reason = (
                    "market data connection timed out"
                    if isinstance(exc, trio.TooSlowError)
                    else str(exc)
                )
                task_status.started(reason)
                return
            task_status.started(None)
            try:
                await self._read("data", socket)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await socket.aclose()

    async def _data_handshake(
        self, socket: trio_websocket.WebSocketConnection, symbols: tuple[str, ...]
    ) -> None:
        """``connected``, then ``auth`` (the key as a message), then ``subscribe``."""
        await self._data_expect(socket, "success", "connected")
        await self._send_json(
            socket, {"action": "auth", "key": self._key_id, "secret": self._secret}, "auth"
        )
        await self._data_expect(socket, "success", "authenticated")
        await self._send_json(
            socket, {"action": "subscribe", "quotes": list(symbols)}, "subscribing"
        )
        await self._data_expect(socket, "subscription", None)

    async def _data_expect(
        self, socket: trio_websocket.WebSocketConnection, kind: str, message: str | None
    ) -> None:
        while True:
            body = decode_json(await self._receive(socket, kind), self.broker, "market data")
            items = body if isinstance(body, list) else [body]
            for item in items:
                if not isinstance(item, Mapping):
                    continue
                if item.get("T") == "error":
                    raise BrokerConnectionError(
                        f"market data refused: {item.get('code')} {item.get('msg')}",
                        broker=self.broker,
                    )
                if item.get("T") == kind and (message is None or item.get("msg") == message):
                    return

    # -- REST --------------------------------------------------------------------------------

    async def rest(
        self, method: str, path: str, query: Query = (), body: Mapping[str, Any] | None = None
    ) -> RestResult:
        """One REST request; venue errors come back in ``RestResult.error``,
        transport failures raise ``BrokerConnectionError``/``BrokerTimeoutError``."""
        client = self._client
        if client is None or (self._lost and self._started) or self._outside.ending:
            raise NotSent("session is closed", broker=self.broker)
        headers = {"Content-Type": "application/json"} if body is not None else {}
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
        status = response.status_code
        if status >= 300 and status != 207:
            return RestResult(
                status, error=parse_error(status, response.content), headers=result_headers
            )
        if not response.content:
            return RestResult(status, None, headers=result_headers)
        parsed = decode_json(response.content, self.broker, where)
        return RestResult(status, parsed, headers=result_headers)
