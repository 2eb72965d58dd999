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

Counting takes no lock, because every message of every order is counted
twice (a global lock here was the runtime's most contended one): each cell
has two counters that only ever go up, messages entered and messages left,
and a message's leave always follows its enter. A reader (under the lock
only readers, joins and forgets take) reads every ``left`` first, then every
``entered``: if they agree, each cell was idle at the moment the last
``left`` was read, since neither count can have moved the wrong way
between the two reads. A leave wakes a waiter only when one is waiting.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

__all__ = ["Quiescence", "Tally"]


class _Count:
    """A count that any thread adds to without a lock, and one reader at a time reads.

    ``next()`` of an ``itertools.count`` is one C call, atomic under the GIL (the
    standard library numbers its threads the same way), so concurrent adds never
    lose one. A reader learns the value by adding too, and takes away the reads it
    made itself: readers hold ``Quiescence``'s lock, so those are known exactly.
    """

    __slots__ = ("_reads", "add")

    def __init__(self) -> None:
        self.add: Callable[[], int] = itertools.count().__next__
        self._reads = 0

    def read(self) -> int:
        """Adds so far (under ``Quiescence``'s lock)."""
        value = self.add() - self._reads
        self._reads += 1
        return value


class Tally:
    """One cell's share of the count: messages queued for it or being handled."""

    __slots__ = ("entered", "forgotten", "left", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.entered = _Count()
        self.left = _Count()
        self.forgotten = False


class Quiescence:
    """Messages queued or being handled, plus I/O in flight, for one system.

    Always on, and lock-free for messages: an enter and a leave are one atomic
    add each (a leave also looks whether anyone waits).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._tallies: dict[Tally, None] = {}
        """Counted cells (joined, not forgotten); changed and read under the lock."""
        self.waiters = 0
        """Threads in ``wait``; changed under the lock, read without it by ``leave``
        (and by ``Cell.on_receive``, which inlines ``leave``): a waiter counts itself
        before its first look, so a leave that reads 0 came before that look."""
        self._io = Tally("I/O")
        self._io_what: dict[int, str] = {}
        self._io_ids = itertools.count(1).__next__

    # -- counting ---------------------------------------------------------------------

    def tally(self, path: str) -> Tally:
        """A new cell's counts, counted from now on (before its first message is)."""
        tally = Tally(path)
        with self._changed:
            self._tallies[tally] = None
        return tally

    def enter(self, tally: Tally) -> bool:
        """One more message for ``tally``'s cell; False if that cell is no longer counted.

        Counted either way, so every ``leave`` has its ``enter``: a forgotten cell's
        counts are simply no longer read."""
        tally.entered.add()
        return not tally.forgotten

    def leave(self, tally: Tally) -> None:
        """A message counted by ``enter`` has been handled (or was never queued)."""
        tally.left.add()
        if self.waiters:
            self.wake()

    def forget(self, tally: Tally) -> None:
        """The cell will handle nothing more: drop what it still counts, count nothing new."""
        with self._changed:
            if tally.forgotten:
                return
            tally.forgotten = True
            self._tallies.pop(tally, None)
            self._changed.notify_all()

    def begin_io(self, what: str) -> Callable[[], None]:
        """Count one piece of outside work; the returned ``done`` (idempotent) ends it."""
        token = self._io_ids()
        self._io_what[token] = what
        self._io.entered.add()

        def done() -> None:
            # dict.pop is atomic: of several calls, exactly one gets the entry.
            if self._io_what.pop(token, None) is not None:
                self.leave(self._io)

        return done

    def wake(self) -> None:
        """Let every waiter look again (after a leave, when ``waiters`` says any wait)."""
        with self._changed:
            self._changed.notify_all()

    # -- waiting --------------------------------------------------------------------------

    def _quiet(self) -> bool:
        """Whether nothing was queued, handled or in flight at one moment during this call.

        Under the lock (no cell joins or is forgotten meanwhile). Every ``left`` is
        read before any ``entered``: a cell's left never exceeds its entered, and
        both only grow, so equal sums mean every cell was idle when the last
        ``left`` was read."""
        tallies = (self._io, *self._tallies)
        lefts = [tally.left.read() for tally in tallies]
        return all(tally.entered.read() == left for tally, left in zip(tallies, lefts, strict=True))

    @property
    def is_quiescent(self) -> bool:
        with self._changed:
            return self._quiet()

    def wait(self, timeout: float | None) -> None:
        """Block until nothing is queued, handled or in flight; ``TimeoutError`` naming
        what still is after ``timeout`` real seconds (None: wait for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self.waiters += 1  # before the first look: a leave after it wakes us
            try:
                while not self._quiet():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"not quiescent after {timeout}s: {self._describe()}")
                    self._changed.wait(remaining)
            finally:
                self.waiters -= 1

    def _describe(self) -> str:
        busy = []
        for tally in sorted(self._tallies, key=_path):
            queued = tally.entered.read() - tally.left.read()
            if queued > 0:
                busy.append(f"{tally.path} ({queued} message(s))")
        busy += [f"I/O: {what}" for what in list(self._io_what.values())]
        return ", ".join(busy) or "nothing"


def _path(tally: Tally) -> str:
    return tally.path
