"""The toy session: one connection incarnation's I/O, on trio.

One TCP stream carries the requests, their answers (matched by ``id``) and
the account's pushed events. The session logs on with the API key before
``serve`` reports it started, so a refused key fails the broker's
``on_start``. It never reconnects: a closed stream is reported once as
:class:`ConnectionLost` (every call still waiting fails with
``BrokerConnectionError``) and the session ends; the actor fails, and the
next incarnation opens a fresh session and reconciles.

Events cross back to the actor as plain values through ``deliver``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from tradenode import BrokerConnectionError, BrokerTimeoutError, MalformedPayloadError

from ._codec import ToyError, encode, parse_error, parse_line

__all__ = ["ConnectionLost", "MalformedFrame", "StreamEvent", "ToySession"]

logger = logging.getLogger("tradenode.brokers.toy")

_MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One pushed event, still unparsed."""

    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    error: MalformedPayloadError


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


SessionEvent = StreamEvent | MalformedFrame | ConnectionLost


@dataclass(frozen=True, slots=True)
class Answer:
    """A request's answer: ``ok`` or ``error``."""

    ok: dict[str, Any] | None
    error: ToyError | None


class ToySession:
    def __init__(
        self,
        broker: str,
        host: str,
        port: int,
        api_key: str,
        *,
        deliver: Callable[[SessionEvent], None],
        request_timeout: float,
        connect_timeout: float = 5.0,
    ) -> None:
        self.broker = broker
        self._address = (host, port)
        self._api_key = api_key
        self._deliver = deliver
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._stream: trio.SocketStream | None = None
        self._send_lock = trio.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Answer]] = {}
        self._done = trio.Event()
        self._lost = False
        self._started = False
        self._buffer = b""

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and log on, report started, then read until closed or lost."""
        host, port = self._address
        try:
            with trio.fail_after(self._connect_timeout):
                self._stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as exc:
            raise BrokerConnectionError(
                f"cannot connect to {host}:{port}: {exc}", broker=self.broker
            ) from exc
        try:
            await self._log_on()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read)
                self._started = True
                task_status.started()
                await self._done.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)

    async def _log_on(self) -> None:
        """The first exchange, before anything else is read: the key, and its verdict."""
        assert self._stream is not None
        try:
            with trio.fail_after(self._request_timeout):
                await self._stream.send_all(encode({"id": 0, "op": "login", "key": self._api_key}))
                while b"\n" not in self._buffer:
                    chunk = await self._stream.receive_some(65536)
                    if not chunk:
                        raise BrokerConnectionError(
                            "the venue closed the connection while logging on", broker=self.broker
                        )
                    self._buffer += chunk
        except (trio.TooSlowError, trio.BrokenResourceError, OSError) as exc:
            raise BrokerConnectionError(f"log on failed: {exc!r}", broker=self.broker) from exc
        line, self._buffer = self._buffer.split(b"\n", 1)
        frame = parse_line(line, broker=self.broker)
        if "err" in frame:
            error = parse_error(frame["err"], broker=self.broker)
            raise BrokerConnectionError(
                f"log on refused: {error.code} {error.msg}",
                broker=self.broker,
                code=error.code,
                retry_after=error.retry_after,
            )
        if frame.get("id") != 0 or not isinstance(frame.get("ok"), dict):
            raise MalformedPayloadError(f"unexpected log on answer {line!r}", broker=self.broker)

    async def aclose(self) -> None:
        """End the session without reporting a loss."""
        self._lost = True
        self._done.set()

    async def call(self, op: str, **params: Any) -> Answer:
        """Send one request and wait for its answer.

        ``BrokerTimeoutError``: no answer within the request timeout (it may have
        been processed). ``BrokerConnectionError``: the stream broke first."""
        if self._lost or self._stream is None:
            raise BrokerConnectionError("session is closed", broker=self.broker)
        request_id = next(self._ids)
        send, receive = trio.open_memory_channel[Answer](1)
        self._waiting[request_id] = send
        try:
            async with self._send_lock:
                try:
                    await self._stream.send_all(encode({"id": request_id, "op": op, **params}))
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._lose(f"send failed: {exc!r}")
                    raise BrokerConnectionError(
                        f"{op}: send failed", broker=self.broker, request_id=str(request_id)
                    ) from exc
            with trio.move_on_after(self._request_timeout):
                try:
                    return await receive.receive()
                except trio.EndOfChannel:
                    raise BrokerConnectionError(
                        f"{op}: connection lost before the answer",
                        broker=self.broker,
                        request_id=str(request_id),
                    ) from None
            raise BrokerTimeoutError(
                f"{op}: no answer within {self._request_timeout:g} s",
                broker=self.broker,
                request_id=str(request_id),
            )
        finally:
            self._waiting.pop(request_id, None)

    async def _read(self) -> None:
        assert self._stream is not None
        buffer, self._buffer = self._buffer, b""
        try:
            while True:
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._on_line(line)
                chunk = await self._stream.receive_some(65536)
                if not chunk:
                    self._lose("the venue closed the connection")
                    return
                buffer += chunk
                if len(buffer) > _MAX_LINE and b"\n" not in buffer:
                    self._lose("a line longer than 1 MiB")
                    return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._lose(f"read failed: {exc!r}")

    def _on_line(self, line: bytes) -> None:
        try:
            frame = parse_line(line, broker=self.broker)
        except MalformedPayloadError as exc:
            self._deliver(MalformedFrame(exc))
            return
        request_id = frame.get("id")
        if request_id is None:
            self._deliver(StreamEvent(frame))
            return
        waiting = self._waiting.pop(request_id, None) if isinstance(request_id, int) else None
        if waiting is None:
            logger.warning("%s: answer to no request: %r", self.broker, line[:200])
            return
        ok = frame.get("ok")
        try:
            error = None if "err" not in frame else parse_error(frame["err"], broker=self.broker)
        except MalformedPayloadError as exc:
            self._deliver(MalformedFrame(exc))
            error = ToyError("MALFORMED", str(exc))
        if error is None and not isinstance(ok, dict):
            error = ToyError("MALFORMED", f"answer without ok or err: {line[:200]!r}")
        waiting.send_nowait(Answer(ok if error is None else None, error))

    def _lose(self, reason: str) -> None:
        if not self._lost:
            self._lost = True
            if self._started:
                logger.warning("%s: connection lost: %s", self.broker, reason)
                self._deliver(ConnectionLost(reason))
        for waiting in list(self._waiting.values()):
            waiting.close()
        self._waiting.clear()
        self._done.set()
