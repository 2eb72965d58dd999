"""A fake venue's "something changed" signal, so a test waits for a state instead of polling it.

A test often needs the venue in some state before it acts: a client's
subscription registered, a request held by a delay knob, a message counted.
Those states live on the venue's trio thread and change when a request or a
frame arrives, so there is no event of the test's own to wait on; polling them
with a sleep is a sleep used as synchronisation, which the suite does not do.

:class:`ChangeSignal` is the event: the venue calls :meth:`ChangeSignal.note`
wherever such a state may have changed (from any thread; it never blocks for
long), and :meth:`ChangeSignal.wait_for` re-checks the test's predicate after
each note, bounded by a timeout. The predicate runs outside the signal's lock,
so it may call back into the venue's loop (``_in_trio_sync``) while that loop
notes a change. A counter read *before* each check closes the race with a
change noted while the check runs: such a change is seen and the predicate is
checked again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["ChangeSignal"]


class ChangeSignal:
    """Counts the changes a venue notes and wakes whoever waits for one."""

    __slots__ = ("_condition", "_count", "_owner")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        """How errors name the venue ("the fake OKX")."""
        self._condition = threading.Condition(threading.Lock())
        self._count = 0

    def __repr__(self) -> str:
        return f"ChangeSignal({self._owner!r}, changes={self._count})"

    @property
    def count(self) -> int:
        """How many changes have been noted so far."""
        with self._condition:
            return self._count

    def note(self) -> None:
        """A state a test may wait for may have changed: wake the waiters to look again."""
        with self._condition:
            self._count += 1
            self._condition.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        """Return once ``predicate()`` holds, checked now and after every change noted;
        ``TimeoutError`` (naming ``what``) if it does not hold within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._condition:
                seen = self._count
            if predicate():
                return
            with self._condition:
                while self._count == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        condition = f" ({what})" if what else ""
                        raise TimeoutError(
                            f"{self._owner}: condition{condition} not met within {timeout} s"
                        )
                    self._condition.wait(remaining)
