"""What the runtime tells the outside world: supervision events and dead letters.

Both are in-process observables, not actors, so a status view, a metrics
exporter or a test can watch the tree without being part of it.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DeadLetter",
    "DeadLetters",
    "EventBus",
    "EventRecorder",
    "SupervisionEvent",
    "SupervisionEventKind",
]

logger = logging.getLogger("tradenode.supervision")


class SupervisionEventKind(enum.Enum):
    """What happened to one actor.

    ``STARTED`` (incarnation 1) and ``RESTARTED`` (any later one) are published
    only once that incarnation's ``on_start`` has returned. A failed ``on_start``
    publishes ``FAILED`` for its incarnation and never ``STARTED`` or
    ``RESTARTED``; the next incarnation whose ``on_start`` succeeds publishes
    ``RESTARTED``, even if no ``STARTED`` came before it.
    """

    STARTED = "started"
    FAILED = "failed"
    RESTART_SCHEDULED = "restart_scheduled"
    RESTARTED = "restarted"
    ESCALATED = "escalated"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class SupervisionEvent:
    kind: SupervisionEventKind
    path: str
    generation: int
    error: BaseException | None = field(default=None, compare=False)
    delay: float | None = None
    detail: str = ""

    def __str__(self) -> str:
        parts = [f"{self.kind.value} {self.path} (incarnation {self.generation})"]
        if self.delay is not None:
            parts.append(f"in {self.delay:.3f}s")
        if self.error is not None:
            parts.append(f"cause: {type(self.error).__name__}: {self.error}")
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)


Subscriber = Callable[[Any], None]


class _Observable:
    """Synchronous fan-out; a subscriber that raises is logged, never propagated."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]

        return unsubscribe

    def _fan_out(self, item: object) -> None:
        for subscriber in self._subscribers:
            try:
                subscriber(item)
            except Exception:
                logger.exception("subscriber %r failed on %r", subscriber, item)


class EventBus(_Observable):
    """Supervision events, plus a running restart count per path for status views."""

    def __init__(self) -> None:
        super().__init__()
        self._restarts: collections.Counter[str] = collections.Counter()

    def publish(self, event: SupervisionEvent) -> None:
        if event.kind is SupervisionEventKind.RESTARTED:
            with self._lock:
                self._restarts[event.path] += 1
        level = logging.WARNING if event.kind in _LOUD else logging.INFO
        logger.log(level, "supervision: %s", event)
        self._fan_out(event)

    def restart_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._restarts)


_LOUD = frozenset({SupervisionEventKind.FAILED, SupervisionEventKind.ESCALATED})


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was not processed: who it was for, why, and the error if any."""

    recipient: str
    message: Any
    reason: str
    error: BaseException | None = field(default=None, compare=False)


class DeadLetters(_Observable):
    """Every undeliverable or failed message ends here, counted and observable.

    Keeps the most recent ``capacity`` letters; ``count`` never forgets.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__()
        self._recent: collections.deque[DeadLetter] = collections.deque(maxlen=capacity)
        self._count = 0

    def record(
        self, recipient: str, message: Any, reason: str, error: BaseException | None = None
    ) -> None:
        letter = DeadLetter(recipient, message, reason, error)
        with self._lock:
            self._recent.append(letter)
            self._count += 1
        logger.warning("dead letter to %s (%s): %s", recipient, reason, type(message).__name__)
        self._fan_out(letter)

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def recent(self) -> list[DeadLetter]:
        with self._lock:
            return list(self._recent)

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self.recent())


class EventRecorder:
    """Collects items from an observable and lets a thread wait for one to appear.

    Tests use it to synchronise on what the runtime reports instead of
    sleeping; the timeout only bounds a broken test.
    """

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._condition = threading.Condition()

    def __call__(self, item: Any) -> None:
        with self._condition:
            self._items.append(item)
            self._condition.notify_all()

    @property
    def items(self) -> list[Any]:
        with self._condition:
            return list(self._items)

    def wait_for(
        self, predicate: Callable[[Any], bool], *, count: int = 1, timeout: float = 10.0
    ) -> list[Any]:
        def matches() -> list[Any]:
            return [item for item in self._items if predicate(item)]

        with self._condition:
            if not self._condition.wait_for(lambda: len(matches()) >= count, timeout):
                raise TimeoutError(
                    f"waited {timeout}s for {count} matching item(s); saw {self._items!r}"
                )
            return matches()
