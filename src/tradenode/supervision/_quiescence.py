"""Knowing when a system has nothing left to do: the barrier tests wait on.

trio's ``wait_all_tasks_blocked`` lets a test move a ``MockClock`` only once
every task is parked; this is the same for an actor system, whose work is
messages in mailboxes, handlers running, and requests an adapter has on the
wire. A test that waits for quiescence before it moves the ``ManualClock``
never counts round trips.

The count is exact, never sampled, so there is no "every inbox looked empty
but a message was between two actors" moment:

- a message counts from **before** it enters a mailbox (``Address.tell``,
  ``ask``, the runtime's own orders) until **after** its handler has
  returned; whatever that handler sent was counted before it returned, so
  the count cannot touch zero between a message and the ones it causes;
- a new cell counts from its creation until its first ``on_start`` returned;
- work an actor hands to another thread (a request on a socket) counts from
  ``ActorContext.begin_io()`` until its ``done`` is called, which an adapter
  does inside the handler of the answer (already counted as a message when
  it was told), or, at the latest, when the incarnation that began it ends.

When the pykka actor under a cell has stopped, or its thread was abandoned,
whatever it still counted is forgotten: nothing will ever handle it.
Timers are not work: like trio's sleeping tasks, a timer that waits for the
clock leaves the system quiescent, which is the moment a test moves the
clock.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

__all__ = ["Quiescence", "Tally"]


class Tally:
    """One cell's share of the count: messages queued for it or being handled."""

    __slots__ = ("forgotten", "path", "queued")

    def __init__(self, path: str) -> None:
        self.path = path
        self.queued = 0
        self.forgotten = False


class Quiescence:
    """Messages queued or being handled, plus I/O in flight, for one system.

    Always on: two uncontended lock round trips per message.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._busy = 0
        self._active: set[Tally] = set()
        self._io: dict[int, str] = {}
        self._io_ids = itertools.count(1)

    # -- counting ---------------------------------------------------------------------

    def enter(self, tally: Tally) -> bool:
        """One more message for ``tally``'s cell; False if that cell is no longer counted."""
        with self._changed:
            if tally.forgotten:
                return False
            self._busy += 1
            tally.queued += 1
            self._active.add(tally)
            return True

    def leave(self, tally: Tally) -> None:
        """A message counted by ``enter`` has been handled (or was never queued)."""
        with self._changed:
            if tally.forgotten or tally.queued <= 0:
                return
            tally.queued -= 1
            if not tally.queued:
                self._active.discard(tally)
            self._take(1)

    def forget(self, tally: Tally) -> None:
        """The cell will handle nothing more: drop what it still counts, count nothing new."""
        with self._changed:
            if tally.forgotten:
                return
            tally.forgotten = True
            self._active.discard(tally)
            queued, tally.queued = tally.queued, 0
            self._take(queued)

    def begin_io(self, what: str) -> Callable[[], None]:
        """Count one piece of outside work; the returned ``done`` (idempotent) ends it."""
        with self._changed:
            token = next(self._io_ids)
            self._io[token] = what
            self._busy += 1

        def done() -> None:
            with self._changed:
                if self._io.pop(token, None) is not None:
                    self._take(1)

        return done

    def _take(self, count: int) -> None:
        self._busy -= count
        if self._busy <= 0:
            self._busy = 0
            self._changed.notify_all()

    # -- waiting --------------------------------------------------------------------------

    @property
    def is_quiescent(self) -> bool:
        with self._changed:
            return self._busy == 0

    def wait(self, timeout: float | None) -> None:
        """Block until nothing is queued, handled or in flight; ``TimeoutError`` naming
        what still is after ``timeout`` real seconds (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._busy:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"not quiescent after {timeout}s: {self._describe()}")
                self._changed.wait(remaining)

    def _describe(self) -> str:
        parts = [f"{t.path} ({t.queued} message(s))" for t in sorted(self._active, key=_path)]
        parts += [f"I/O: {what}" for what in self._io.values()]
        return ", ".join(parts) or "nothing"


def _path(tally: Tally) -> str:
    return tally.path
