"""The stable handle by which actors reach each other."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pykka

from .._exceptions import ActorStoppedError, AskTimeoutError
from ._mail import ENVELOPED_TYPES, Envelope

if TYPE_CHECKING:
    from ._cell import Cell

__all__ = ["Address", "Envelope"]


class Address:
    """Where to send messages for one supervised child, across all its incarnations.

    A restart replaces the behaviour behind the address, never the address or
    its mailbox, so holders need not re-resolve anything. Once the actor
    stops for good the address is closed: later messages go to dead letters
    and asks fail with ``ActorStoppedError`` rather than vanishing.
    """

    __slots__ = (
        "__weakref__",
        "_cell",
        "_closed",
        "_enter",
        "_leave",
        "_lock",
        "_queue",
        "_stopped",
        "path",
    )

    def __init__(self, cell: Cell, path: str) -> None:
        self._cell = cell
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        # Resolved once: every message of every order passes through ``_put``.
        tally, quiescence = cell.tally, cell.system.quiescence
        self._enter = tally.entered.add
        self._leave = functools.partial(quiescence.leave, tally)
        # Straight into the cell's inbox, without pykka's envelope: the cell's loop
        # takes what has none as the runtime's (``Cell._actor_loop_running``).
        inbox: Any = cell.actor_inbox  # typed by pykka as holding its envelopes only
        self._queue: Callable[[object], None] = inbox.put
        self._stopped = cell.actor_stopped.is_set

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_alive(self) -> bool:
        return not self._closed

    def tell(self, message: Any) -> None:
        """Queue ``message``; never blocks, never raises for a stopped actor."""
        # Queued bare (see ``_mail``) unless it could be taken for the runtime's or
        # pykka's own message: ``_mail.needs_envelope``, inlined.
        if type(message) in ENVELOPED_TYPES or isinstance(message, tuple):
            item: Any = Envelope(message, None)
        else:
            item = message
        # ``_put``, inlined: every message of every order is a tell.
        with self._lock:
            if not self._closed:
                self._enter()
                if not self._stopped():
                    self._queue(item)
                    return
                self._leave()
        self._cell.system.dead_letters.record(self.path, message, "recipient stopped")

    def ask_future(self, message: Any) -> pykka.Future[Any]:
        """Queue ``message`` and return the future of its reply.

        In trio code, wait on it with ``await trio.to_thread.run_sync(future.get)``
        or use ``tradenode.supervision.ask_async``: a pykka future cannot be
        awaited directly.
        """
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        if self._put(Envelope(message, future)):
            return future
        self._cell.system.dead_letters.record(self.path, message, "recipient stopped")
        error = ActorStoppedError(
            f"{self.path} has stopped; {type(message).__name__} not delivered"
        )
        future.set_exception((ActorStoppedError, error, None))
        return future

    def ask(self, message: Any, timeout: float | None = 10.0) -> Any:
        """Send ``message`` and block for the reply; the handler's exception is re-raised here.

        An ``Exception`` comes back as itself. A ``BaseException`` that is not an
        ``Exception`` (``SystemExit``, ``KeyboardInterrupt``, ``trio.Cancelled``)
        is contained at the actor and re-raised here as ``SupervisionError``
        ("<path>: handler raised <Type>") with the original as ``__cause__``,
        so a caller never takes a signal meant for the actor's thread. Either
        way the actor fails and its supervisor decides."""
        future = self.ask_future(message)
        try:
            return future.get(timeout=timeout)
        except pykka.Timeout as exc:
            raise AskTimeoutError(
                f"{self.path} did not answer {type(message).__name__} within {timeout}s"
            ) from exc

    def wait_terminated(self, timeout: float | None = None) -> bool:
        """Block until the actor has stopped for good; False on timeout."""
        return self._cell.terminated.wait(timeout)

    def system_tell(self, message: Any) -> None:
        """Queue a runtime-internal message; dropped to dead letters once closed."""
        if not self._put(message):
            self._cell.system.dead_letters.record(self.path, message, "recipient stopped")

    def _put(self, item: object) -> bool:
        # The lock orders every put before ``close``: once closed, nothing can
        # slip into the inbox behind the final stop and be dropped unseen.
        # The message counts towards the system's quiescence from before it is
        # queued until its handler has returned (see ``_quiescence``).
        # Counting is ``Quiescence.enter`` inlined: one atomic add, no lock.
        with self._lock:
            if self._closed:
                return False
            self._enter()
            if self._stopped():
                # What pykka's ``ActorRef.tell`` raises ``ActorDeadError`` for.
                self._leave()
                return False
            self._queue(item)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True

    @property
    def cell(self) -> Cell:
        return self._cell

    def __repr__(self) -> str:
        state = "" if not self._closed else ", stopped"
        return f"Address({self.path!r}{state})"
