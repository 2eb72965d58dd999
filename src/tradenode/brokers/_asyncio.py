"""An asyncio event loop on a thread owned by one actor incarnation: ``TrioThread``'s twin.

ib_async and ccxt are asyncio-only, while the rest of the node's adapter I/O
runs on trio. The two never share a loop: each incarnation of such a broker
starts its own asyncio loop on its own thread here, does every library call on it,
and closes it in ``on_stop``; a restart builds a fresh loop and a fresh
client object (``IB``, a ccxt exchange), so nothing of a broken connection's state survives. The
actor waits for a coroutine's result with :meth:`AsyncioThread.run` (as it
does with ``TrioThread.run``) or starts one with :meth:`AsyncioThread.submit`
and gets the outcome back as a message. Every way the loop can refuse or
abandon a call surfaces as :class:`AsyncioLoopClosed`, an ordinary exception
(never ``CancelledError``, a ``BaseException`` that would take a pykka actor
down).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._exceptions import BrokerConnectionError

__all__ = ["AsyncioLoopClosed", "AsyncioThread"]

T = TypeVar("T")


class AsyncioLoopClosed(BrokerConnectionError):
    """The incarnation's asyncio loop has stopped, or cancelled the call."""


class AsyncioThread:
    """An asyncio event loop running forever on a dedicated daemon thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"asyncio-{name}", daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                tasks = asyncio.all_tasks(self._loop)
                for task in tasks:
                    task.cancel()
                if tasks:
                    self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive() and not self._loop.is_closed()

    def _schedule(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if not self.is_running:
            coro.close()
            raise AsyncioLoopClosed(f"asyncio loop {self._name} is not running")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError as exc:  # the loop closed in between
            coro.close()
            raise AsyncioLoopClosed(f"asyncio loop {self._name} has stopped") from exc

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` in the loop and return its result to the calling thread.

        The coroutine bounds its own waiting (every session call has a timeout);
        a loop closed under it is :class:`AsyncioLoopClosed`."""
        future = self._schedule(coro)
        try:
            return future.result()
        except (concurrent.futures.CancelledError, asyncio.CancelledError) as exc:
            raise AsyncioLoopClosed(f"asyncio loop {self._name} cancelled the call") from exc

    def submit(
        self, coro: Coroutine[Any, Any, T], done: Callable[[T | BaseException], None]
    ) -> None:
        """Start ``coro``; ``done`` gets its result or the exception that ended it
        (a cancellation as :class:`AsyncioLoopClosed`), on the loop's thread."""
        future = self._schedule(coro)

        def finished(f: concurrent.futures.Future[T]) -> None:
            if f.cancelled():
                done(AsyncioLoopClosed(f"asyncio loop {self._name} cancelled the call"))
                return
            error = f.exception()
            done(error if error is not None else f.result())

        future.add_done_callback(finished)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the loop (pending tasks are cancelled) and join its thread."""
        if self._thread.is_alive() and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
