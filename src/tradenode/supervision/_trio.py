"""Crossing between trio code and actor threads, in both directions.

A pykka future cannot be awaited in trio, and ``trio.from_thread.run``
raises ``RunFinishedError`` or ``trio.Cancelled`` once the loop is gone; the
latter is a ``BaseException`` that would otherwise take every pykka actor
down. These helpers make both crossings ordinary and typed.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pykka
import trio

from .._exceptions import AskTimeoutError, SupervisionError
from ._address import Address

__all__ = ["TrioLoopClosed", "TrioThread", "ask_async"]

T = TypeVar("T")


class TrioLoopClosed(SupervisionError):
    """The trio loop an actor relied on has ended or cancelled the call."""


async def ask_async(address: Address, message: Any, timeout: float | None = 10.0) -> Any:
    """``address.ask`` for trio code: waits on a worker thread, honours cancellation."""
    future = address.ask_future(message)

    def wait() -> Any:
        try:
            return future.get(timeout=timeout)
        except pykka.Timeout as exc:
            raise AskTimeoutError(
                f"{address.path} did not answer {type(message).__name__} within {timeout}s"
            ) from exc

    return await trio.to_thread.run_sync(wait, abandon_on_cancel=True)


class TrioThread:
    """A trio event loop on a dedicated thread, owned by one actor incarnation.

    Adapters do their network I/O here; the actor calls ``run`` to wait for a
    coroutine's result and ``close`` in ``on_stop``. Any way the loop can
    refuse a call surfaces as ``TrioLoopClosed``, an ordinary exception.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._thread = threading.Thread(target=self._main, name=f"trio-{name}", daemon=True)
        self._error: BaseException | None = None
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise TrioLoopClosed(f"trio loop {name} failed to start") from self._error

    def _main(self) -> None:
        async def body() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()

        try:
            trio.run(body)
        except BaseException as exc:  # noqa: BLE001 - reported through .error and run()
            self._error = exc
        finally:
            self._ready.set()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` in the loop and return its result to the calling thread."""
        if self._token is None:
            raise TrioLoopClosed(f"trio loop {self._name} is not running")
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise TrioLoopClosed(f"trio loop {self._name} has finished") from exc
        except trio.Cancelled as exc:
            raise TrioLoopClosed(f"trio loop {self._name} cancelled the call") from exc

    def start(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``nursery.start(fn, *args)`` from the calling thread: returns once ``fn``
        reports it has started (its ``task_status.started(value)``), with that value.

        A failure before that point is raised here, to the caller; afterwards
        ``fn`` runs on in the loop and must report its own failures (an
        exception escaping it ends the loop).
        """
        nursery = self._nursery
        if nursery is None or self._token is None:
            raise TrioLoopClosed(f"trio loop {self._name} is not running")
        try:
            return trio.from_thread.run(nursery.start, fn, *args, trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise TrioLoopClosed(f"trio loop {self._name} has finished") from exc
        except trio.Cancelled as exc:
            raise TrioLoopClosed(f"trio loop {self._name} cancelled the call") from exc

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Spawn a background task in the loop's nursery; its failure ends the loop."""
        nursery = self._nursery
        if nursery is None or self._token is None:
            raise TrioLoopClosed(f"trio loop {self._name} is not running")
        try:
            trio.from_thread.run_sync(nursery.start_soon, fn, *args, trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise TrioLoopClosed(f"trio loop {self._name} has finished") from exc

    @property
    def error(self) -> BaseException | None:
        """What ended the loop, if it ended by an exception (e.g. a background task)."""
        return self._error

    @property
    def is_running(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float | None = 5.0) -> None:
        stop, token = self._stop, self._token
        if stop is not None and token is not None and self._thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(stop.set, trio_token=token)
        self._thread.join(timeout)
