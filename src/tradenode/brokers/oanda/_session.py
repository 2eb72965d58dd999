"""One OANDA connection incarnation's I/O: oandapyV20 for REST, httpx streams, on trio.

Threads and loops. The session runs on a trio loop in a ``TrioThread`` the
broker's incarnation owns. REST goes through oandapyV20 (synchronous,
``requests``): each call runs in a trio worker thread
(``trio.to_thread.run_sync``), one at a time (a lock: oandapyV20 keeps one
``requests.Session``, which is not meant to be shared by threads), so it
never blocks the loop, the actor's thread only while the actor waits for
that answer, and never another venue. The two streams (the account's
transactions and the instruments' prices: chunked NDJSON with heartbeats)
are read on the loop itself with httpx.

oandapyV20 has no base URL option (fact sheet A4): the session registers
its URLs under a key of its own in ``oandapyV20.oandapyV20.TRADING_ENVIRONMENTS``
before it builds the ``API``, and removes it when it ends, after the REST
request on the wire (if any) has its answer.

Watching the streams: a stream that sends nothing, not even a heartbeat,
for ``stream_timeout`` seconds, ends, or breaks is a lost connection,
reported once as :class:`ConnectionLost`; the session then ends. It never
reconnects: the actor fails, the supervisor restarts it with backoff, and
the next incarnation opens a new session and reconciles. New connections
are spaced ``connection_spacing`` apart, across incarnations (the link's
:class:`ConnectionPacer`; OANDA allows two per second).

Lines cross to the actor unparsed (:class:`StreamLine`, through
``deliver``); a last line cut off by the stream's end is a
:class:`TruncatedLine`. The token is only ever in request headers: no
repr, log line or exception carries it.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import oandapyV20.oandapyV20 as oanda_core
import requests
import trio
from oandapyV20 import API, V20Error
from urllib3.exceptions import NewConnectionError

from ..._exceptions import BrokerConnectionError, BrokerTimeoutError, MalformedPayloadError
from ._codec import parse_error_answer
from ._endpoints import OandaEndpoints, RestResult

__all__ = [
    "ConnectionLost",
    "ConnectionPacer",
    "NotSent",
    "OandaSession",
    "SessionEvent",
    "StreamLine",
    "TruncatedLine",
    "retry_after_seconds",
]

logger = logging.getLogger("tradenode.brokers.oanda")

StreamKind = Literal["transactions", "pricing"]
_MAX_LINE = 1 << 20
_environment_keys = itertools.count(1)


@dataclass(frozen=True, slots=True)
class StreamLine:
    stream: StreamKind
    line: bytes


@dataclass(frozen=True, slots=True)
class TruncatedLine:
    stream: StreamKind
    line: bytes


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


SessionEvent = StreamLine | TruncatedLine | ConnectionLost


class NotSent(BrokerConnectionError):
    """The request certainly never reached the venue: the session had already
    ended, or no connection could be opened (refused, or no answer to connect)."""


def _never_connected(exc: BaseException) -> bool:
    """Whether ``requests`` failed before any byte of the request left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, NewConnectionError | ConnectionRefusedError):
            return True
        todo.extend(item.args)
        todo.extend((getattr(item, "reason", None), item.__cause__, item.__context__))
    return False


class ConnectionPacer:
    """At most one new connection every ``spacing`` seconds (OANDA allows two per
    second), across a connection's incarnations: the link owns it, each session
    asks it before it connects. Real time, as the venue counts it."""

    def __init__(self, spacing: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.spacing = spacing
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next = -math.inf

    def reserve(self) -> float:
        """Book the next slot; returns how long to wait for it."""
        with self._lock:
            now = self._monotonic()
            slot = max(now, self._next)
            self._next = slot + self.spacing
            return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await trio.sleep(delay)


def retry_after_seconds(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


class OandaSession:
    def __init__(
        self,
        broker: str,
        *,
        rest_url: str,
        stream_url: str,
        token: str,
        account_id: str,
        deliver: Callable[[SessionEvent], None],
        request_timeout: float,
        stream_timeout: float,
        pacer: ConnectionPacer | None = None,
    ) -> None:
        self.broker = broker
        self._rest_url = rest_url
        self._stream_url = stream_url
        self._token = token
        self._account = account_id
        self._streaming: tuple[str, ...] = ()
        self._deliver = deliver
        self._request_timeout = request_timeout
        self._stream_timeout = stream_timeout
        self._pacer = pacer or ConnectionPacer(0.5)
        self._environment = f"tradenode-{next(_environment_keys)}"
        self._api: API | None = None
        self._local = threading.local()
        self._rest_lock = trio.Lock()
        self._rest_connected = False
        self._client: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None
        self._pricing: trio.CancelScope | None = None
        self._done = trio.Event()
        self._lost = False
        self._started = False
        self.requests_sent = 0
        self.api = OandaEndpoints(account_id, self._send)

    def __repr__(self) -> str:
        return f"OandaSession({self.broker!r}, {self._rest_url!r}, account={self._account!r})"

    # -- lifecycle ------------------------------------------------------------------

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Open the streams, report started, then read them until closed or lost.

        A failure before ``task_status.started()`` propagates to the actor's
        ``on_start``; afterwards a failure is reported once as ``ConnectionLost``.
        """
        oanda_core.TRADING_ENVIRONMENTS[self._environment] = {
            "api": self._rest_url,
            "stream": self._stream_url,
        }
        api = self._api = API(
            access_token=self._token,
            environment=self._environment,
            request_params={"timeout": self._request_timeout},
        )
        api.client.hooks["response"].append(self._remember_headers)
        try:
            async with httpx.AsyncClient(
                base_url=self._stream_url,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=httpx.Timeout(self._request_timeout, read=None),
            ) as client:
                self._client = client
                # Opened outside the nursery: its refusal reaches on_start as itself
                # (with its Retry-After), not wrapped in an exception group.
                path = f"/v3/accounts/{self._account}/transactions/stream"
                response = await self._open_stream(path, None)
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._read, "transactions", response)
                    self._started = True
                    task_status.started()
                    await self._done.wait()
                    nursery.cancel_scope.cancel()
        finally:
            self._client = self._nursery = None
            self._lost = True  # however it ended (a cancelled loop too): nothing more is sent
            # A REST request may be on the wire (a sweep on this loop, or the
            # actor's own): it runs to its answer, which its caller needs, and
            # reads the environment's URLs as it starts. Taking the REST lock
            # waits for it (a request queued behind it finds the session lost
            # and is not sent: _send). Bounded by request_timeout.
            with trio.CancelScope(shield=True):
                async with self._rest_lock:
                    api.close()  # closes the requests session's pooled sockets
                    oanda_core.TRADING_ENVIRONMENTS.pop(self._environment, None)

    @property
    def closed(self) -> bool:
        """Lost or closed: nothing more is sent."""
        return self._lost

    async def aclose(self) -> None:
        """End the session without reporting a loss."""
        self._lost = True
        self._done.set()

    async def set_instruments(self, instruments: Sequence[str]) -> None:
        """Stream prices for ``instruments`` from now on (a new pricing connection).

        Raises ``BrokerConnectionError`` if the venue refuses the stream."""
        instruments = tuple(instruments)
        if self._nursery is None or self._lost:
            raise NotSent("session is closed", broker=self.broker)
        if instruments == self._streaming:
            return
        self._streaming = instruments
        if self._pricing is not None:
            self._pricing.cancel()
            self._pricing = None
        if instruments:
            refused = await self._nursery.start(self._run_pricing, instruments)
            if refused is not None:
                raise refused

    # -- REST -----------------------------------------------------------------------

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.headers = dict(response.headers)

    async def _send(self, endpoint: Any) -> RestResult:
        """Run one oandapyV20 request in a worker thread; errors become ours."""
        if self._api is None or self._lost:
            raise NotSent("session is closed", broker=self.broker)
        async with self._rest_lock:
            if self._lost:  # lost while this request waited for the one before it
                raise NotSent("session is closed", broker=self.broker)
            if not self._rest_connected:
                await self._pace()
                self._rest_connected = True
            self.requests_sent += 1
            return await trio.to_thread.run_sync(self._request, self._api, endpoint)

    def _request(self, api: API, endpoint: Any) -> RestResult:
        self._local.headers = {}
        where = f"{endpoint.method} {endpoint}"
        try:
            body = api.request(endpoint)
        except V20Error as exc:
            headers = self._local.headers
            error = parse_error_answer(int(exc.code), str(exc.msg), broker=self.broker)
            return RestResult(error=error, headers=headers)
        except requests.Timeout as exc:
            raise BrokerTimeoutError(
                f"{where}: no answer within {self._request_timeout:g} s", broker=self.broker
            ) from exc
        except requests.RequestException as exc:
            if _never_connected(exc):
                raise NotSent(f"{where}: cannot connect", broker=self.broker) from exc
            raise BrokerConnectionError(
                f"{where}: {type(exc).__name__}", broker=self.broker
            ) from exc
        except ValueError as exc:
            # oandapyV20 insists on one status per endpoint (fact sheet A3); a
            # body that is not JSON is the same kind of surprise.
            raise MalformedPayloadError(
                f"{where}: unexpected answer: {exc}", broker=self.broker
            ) from exc
        return RestResult(body=body, headers=self._local.headers)

    # -- streams ----------------------------------------------------------------------

    async def _pace(self) -> None:
        await self._pacer.wait()

    async def _open_stream(self, path: str, params: dict[str, str] | None) -> httpx.Response:
        assert self._client is not None
        await self._pace()
        request = self._client.build_request("GET", path, params=params)
        try:
            with trio.fail_after(self._request_timeout):
                response = await self._client.send(request, stream=True)
                if response.status_code >= 400:
                    text = (await response.aread()).decode("utf-8", "replace")
                    await response.aclose()
                    error = parse_error_answer(response.status_code, text, broker=self.broker)
                    raise BrokerConnectionError(
                        f"stream {path} refused: {error.status} {error.code} {error.message}",
                        broker=self.broker,
                        code=error.code,
                        retry_after=retry_after_seconds(response.headers),
                    )
        except trio.TooSlowError as exc:
            raise BrokerConnectionError(
                f"stream {path}: no answer within {self._request_timeout:g} s", broker=self.broker
            ) from exc
        except httpx.HTTPError as exc:
            raise BrokerConnectionError(
                f"stream {path}: {type(exc).__name__}", broker=self.broker
            ) from exc
        return response

    async def _run_pricing(
        self, instruments: tuple[str, ...], *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            self._pricing = scope
            path = f"/v3/accounts/{self._account}/pricing/stream"
            try:
                response = await self._open_stream(
                    path, {"instruments": ",".join(instruments), "snapshot": "true"}
                )
            except BrokerConnectionError as exc:
                # Handed back by value: nursery.start would wrap it in a group.
                task_status.started(exc)
                return
            task_status.started(None)
            await self._read("pricing", response)

    async def _read(self, stream: StreamKind, response: httpx.Response) -> None:
        buffer = b""
        chunks = response.aiter_bytes()
        try:
            while True:
                chunk: bytes | None = None
                with trio.move_on_after(self._stream_timeout) as silent:
                    try:
                        chunk = await chunks.__anext__()
                    except StopAsyncIteration:
                        chunk = None
                if silent.cancelled_caught:
                    self._lose(f"{stream} stream silent for {self._stream_timeout:g} s")
                    return
                if chunk is None:
                    if buffer.strip():
                        self._deliver(TruncatedLine(stream, buffer))
                    self._lose(f"the venue ended the {stream} stream")
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._deliver(StreamLine(stream, line))
                if len(buffer) > _MAX_LINE:
                    self._lose(f"a {stream} line longer than 1 MiB")
                    return
        except (httpx.HTTPError, trio.BrokenResourceError, OSError) as exc:
            self._lose(f"{stream} stream broke: {type(exc).__name__}")
        except Exception as exc:
            logger.exception("%s: %s stream reader failed", self.broker, stream)
            self._lose(f"{stream} stream reader failed: {type(exc).__name__}")
        finally:
            with trio.CancelScope(shield=True):
                await response.aclose()

    def _lose(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            if self._started:
                logger.warning("%s: connection lost: %s", self.broker, reason)
                self._deliver(ConnectionLost(reason))
        self._done.set()
