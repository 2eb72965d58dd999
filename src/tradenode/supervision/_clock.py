"""Time as a dependency.

Supervision needs time for two things: restart intensity windows and
backoff delays. Both go through a ``Clock`` so tests can drive them with
``ManualClock.advance`` instead of sleeping, and assert the exact delays a
supervisor chose.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Cancellable", "Clock", "ManualClock", "SystemClock"]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds for intervals, epoch nanoseconds for timestamps, and timers."""

    def monotonic(self) -> float: ...

    def time_ns(self) -> int: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


#: Below this many timers the heap is never compacted.
_MIN_COMPACTION = 1024


def _nothing() -> None:
    return None


class _Timer:
    __slots__ = ("callback", "cancelled", "deadline", "sequence")

    def __init__(self, deadline: float, sequence: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.sequence = sequence
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        # A cancelled timer waits in the heap until its deadline; what it
        # would have called (and the message that holds) can go now.
        self.callback = _nothing

    def __lt__(self, other: _Timer) -> bool:
        return (self.deadline, self.sequence) < (other.deadline, other.sequence)


class SystemClock:
    """Real time, with one daemon thread that fires every timer in deadline order.

    Callbacks run on that thread and must only hand work off (an actor
    ``tell``); a slow callback delays every other timer.
    """

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._compact_at = _MIN_COMPACTION

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ns(self) -> int:
        return time.time_ns()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        timer = _Timer(time.monotonic() + max(0.0, delay), next(self._sequence), callback)
        with self._condition:
            if self._closed:
                timer.cancel()
                return timer
            heapq.heappush(self._heap, timer)
            if len(self._heap) >= self._compact_at:
                self._compact()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tradenode-clock", daemon=True
                )
                self._thread.start()
            if self._heap[0] is timer:
                # Only a new soonest deadline changes what the clock thread waits
                # for: waking it for every later timer (a request or acknowledgement
                # timeout per order) costs a thread switch per timer on the hot path.
                self._condition.notify()
        return timer

    def _compact(self) -> None:
        """Drop cancelled timers once the heap has doubled since the last look.

        Request and acknowledgement timeouts are mostly cancelled long before
        their deadline; left in place, a busy node would hold every one of
        them for the whole timeout. Amortised, this costs O(1) per timer.
        """
        self._heap = [timer for timer in self._heap if not timer.cancelled]
        heapq.heapify(self._heap)
        self._compact_at = max(_MIN_COMPACTION, 2 * len(self._heap))

    def pending(self) -> int:
        """Timers in the heap, cancelled ones not yet dropped included."""
        with self._condition:
            return len(self._heap)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._heap.clear()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (not self._heap or self._heap[0].cancelled):
                    if self._heap:
                        heapq.heappop(self._heap)
                    else:
                        self._condition.wait()
                if self._closed:
                    return
                timer = self._heap[0]
                remaining = timer.deadline - time.monotonic()
                if remaining > 0:
                    self._condition.wait(remaining)
                    continue
                heapq.heappop(self._heap)
            if not timer.cancelled:
                timer.callback()


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    ``advance`` fires due timers in deadline order on the calling thread, with
    ``monotonic()`` reading each timer's deadline while its callback runs.
    """

    def __init__(self, start: float = 0.0, *, epoch_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now = start
        self._epoch_ns = epoch_ns
        self._heap: list[_Timer] = []
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self._scheduled = threading.Condition(self._lock)

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time_ns(self) -> int:
        with self._lock:
            return self._epoch_ns + round(self._now * 1e9)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        with self._lock:
            timer = _Timer(self._now + max(0.0, delay), next(self._sequence), callback)
            heapq.heappush(self._heap, timer)
            self._scheduled.notify_all()
        return timer

    def pending_delays(self) -> list[float]:
        """Seconds from now until each live timer fires, soonest first."""
        with self._lock:
            return sorted(t.deadline - self._now for t in self._heap if not t.cancelled)

    def wait_for_timers(self, count: int = 1, timeout: float = 10.0) -> list[float]:
        """Block until at least ``count`` live timers are scheduled; return their delays.

        Actors schedule timers on their own threads, so a test that wants to
        advance past a backoff first waits for the backoff to exist.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while sum(1 for t in self._heap if not t.cancelled) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"fewer than {count} timer(s) scheduled within {timeout}s")
                self._scheduled.wait(remaining)
            return sorted(t.deadline - self._now for t in self._heap if not t.cancelled)

    def advance(self, seconds: float) -> None:
        with self._lock:
            target = self._now + seconds
        while True:
            with self._lock:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap or self._heap[0].deadline > target:
                    self._now = max(self._now, target)
                    return
                timer = heapq.heappop(self._heap)
                self._now = max(self._now, timer.deadline)
            timer.callback()
