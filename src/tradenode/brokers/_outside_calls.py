"""The calls into a session that run outside its nursery, ended before it closes.

A session's ``serve`` owns its HTTP client and its sockets, but the calls
that use them (a REST request, a new quote stream) run in tasks of the actor's
trio loop, outside the session's nursery: the session's end does not cancel
them. Closing the client under such a call does not end it either. httpx
(httpcore) closes only the connections in its pool, and a request still
connecting is not among them yet; it then completes on a connection nobody
owns, whose socket is never closed (a ``ResourceWarning`` when it is
collected, an error under the suite's ``-W error``). A WebSocket a call
opens as the session ends is likewise never closed: the session has already
closed its streams.

So a session runs each such call under :meth:`OutsideCalls.running` and
wraps its client in :meth:`OutsideCalls.closing`: on the way out, every call
still running is cancelled and awaited, and new ones are refused, before the
client closes and before the nursery does. A call cancelled that way has an
unknown outcome (it may have reached the venue); the session raises its
``BrokerConnectionError`` for it, and the breaker looks the order up.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Protocol, TypeVar

import trio

__all__ = ["OutsideCalls"]

logger = logging.getLogger("tradenode.brokers")


class _Closable(Protocol):
    async def aclose(self) -> None: ...


_C = TypeVar("_C", bound=_Closable)

_END_TIMEOUT = 2.0
"""How long :meth:`OutsideCalls.end` waits for cancelled calls to unwind: a
bound for a call that ignores cancellation, never a synchronisation."""


class OutsideCalls:
    """The calls in flight that use one session's client or open its sockets."""

    __slots__ = ("_broker", "_ending", "_idle", "_scopes")

    def __init__(self, broker: str) -> None:
        self._broker = broker
        self._scopes: set[trio.CancelScope] = set()
        self._ending = False
        self._idle: trio.Event | None = None

    def __repr__(self) -> str:
        state = "ending" if self._ending else "open"
        return f"OutsideCalls({self._broker!r}, {state}, {len(self._scopes)} running)"

    @property
    def ending(self) -> bool:
        """Whether the session is ending: a new call must not start (not sent)."""
        return self._ending

    @property
    def running_count(self) -> int:
        return len(self._scopes)

    @contextlib.contextmanager
    def running(self) -> Iterator[trio.CancelScope]:
        """Run the body as one call. If the session ends meanwhile the body is
        cancelled and the block exits normally: the caller checks the scope's
        ``cancelled_caught`` and raises its outcome-unknown error."""
        scope = trio.CancelScope()
        if self._ending:
            scope.cancel()
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)
            if not self._scopes and self._idle is not None:
                self._idle.set()

    async def end(self) -> None:
        """Refuse new calls, cancel the running ones and wait until they have unwound."""
        self._ending = True
        if not self._scopes:
            return
        self._idle = trio.Event()
        for scope in self._scopes:
            scope.cancel()
        with trio.CancelScope(shield=True), trio.move_on_after(_END_TIMEOUT) as waited:
            await self._idle.wait()
        if waited.cancelled_caught:
            logger.warning(
                "%s: %d call(s) still running as the session closes",
                self._broker,
                len(self._scopes),
            )

    @contextlib.asynccontextmanager
    async def closing(self, client: _C) -> AsyncIterator[_C]:
        """``client`` for the body; on the way out the calls end first, then it closes."""
        try:
            yield client
        finally:
            with trio.CancelScope(shield=True):
                await self.end()
                await client.aclose()
