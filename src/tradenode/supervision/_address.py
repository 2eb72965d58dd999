"""The stable handle by which actors reach each other."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pykka

from .._exceptions import ActorStoppedError, AskTimeoutError
from ._mail import ENVELOPED_TYPES, Envelope
from ._turns import turns as _turns

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
        "queued",
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
        self.queued = 0
        """Items put in the inbox, counted under ``_lock``; ``Cell.taken`` counts
        those the cell's thread has taken out (``_lend`` compares the two)."""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def is_alive(self) -> bool:
        return not self._closed

    def tell(self, message: Any) -> None:
        """Queue ``message``, or handle it now on this thread (``_lend``); never waits
        for another thread, never raises for a stopped actor."""
        # Queued bare (see ``_mail``) unless it could be taken for the runtime's or
        # pykka's own message: ``_mail.needs_envelope``, inlined.
        if type(message) in ENVELOPED_TYPES or isinstance(message, tuple):
            item: Any = Envelope(message, None)
        else:
            item = message
        cell = self._cell
        if cell.lends_turn:
            cells = _turns.cells  # read once per tell: a thread-local lookup
            if cells is not None and self._lend(cell, item, cells):
                return
        # ``_put``, inlined: every message of every order is a tell.
        with self._lock:
            if not self._closed:
                self._enter()
                if not self._stopped():
                    self.queued += 1
                    self._queue(item)
                    return
                self._leave()
        self._cell.system.dead_letters.record(self.path, message, "recipient stopped")

    def _lend(self, cell: Cell, item: object, cells: list[Cell]) -> bool:
        """Handle ``item`` on this thread, a cell's, if its recipient lends its turn.

        Why: a tell to an actor asleep on its inbox costs a thread wake-up and a
        hand-over of the GIL, 20-30 us each on the node's order path, most of its
        decision -> venue time. An idle recipient that says its handlers never
        block (``Actor.lends_turn``) is handled here instead, at once, under its
        ``turn``, which its own thread also holds for each message it handles:
        one thread at a time in the behaviour, as always.

        Only when nothing told to it earlier waits in its inbox (``queued ==
        taken``, both read under the turn and this address's lock), so no
        message overtakes one told before it; and only when nothing waits in
        the inbox of this thread's own actor either: a thread with work of its
        own hands the message on, so that under load (a burst of orders) each
        actor's thread drains its own inbox, a pipeline, rather than one thread
        running every actor's work.

        A recipient whose turn this thread was lent further up its stack cannot
        take a tell now: it is kept (``Cell.deferred``) and handled on this
        thread as soon as the handler it is in returns, ahead of anything queued
        after it. False: queue it as usual.
        """
        turn = cell.turn
        if cells[0].actor_inbox.empty() and turn.acquire(False):
            try:
                with self._lock:
                    lent = (
                        self.queued == cell.taken
                        and cell.ready_to_lend()
                        and not self._closed
                        and not self._stopped()
                    )
                    if lent:
                        self._enter()
                if lent:
                    cell.handle_lent(item, cells)
                return lent
            finally:
                turn.release()
        if cells[0] is cell or cell not in cells:
            return False  # busy on its own thread or lent to another: queue it
        with self._lock:
            if (
                (cell.deferred or self.queued == cell.taken)
                and not self._closed
                and not self._stopped()
            ):
                self._enter()
                cell.deferred.append(item)
                return True
        return False

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
            self.queued += 1
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
