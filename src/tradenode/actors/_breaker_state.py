"""The circuit breaker's state machine, without threads, I/O or a wall clock.

The breaker actor owns one ``CircuitBreaker`` per venue and asks it before
forwarding anything to the broker actor. Keeping the logic here, pure and
driven by an injected monotonic clock, lets every transition be tested
deterministically and lets the actor stay a thin shell that publishes what
this core decides.

What trips the breaker is the *transport*, never the business: a venue that
answers "insufficient funds" is alive and well, so business rejections count
as transport successes. Rate limiting belongs to the token buckets in
``_rate_limit``; only a ban (HTTP 418-like) opens the circuit at once.

Every admission carries a ticket, and results are recorded against it.
That is how a late reply from before the circuit opened is told apart from
a probe's reply, so a stale success can never close the circuit and a
half-open circuit never has more than ``half_open_max_probes`` probes in
flight.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, NamedTuple, TypeVar

__all__ = [
    "BREAKER_TRANSITIONS",
    "RECENT_FAILURES",
    "STATE_HISTORY",
    "Admission",
    "BreakerStats",
    "BreakerTransition",
    "CircuitBreaker",
    "CircuitState",
    "DeadLetterQueue",
    "FailureKind",
    "FailureRecord",
    "Parked",
    "TransitionCause",
]

RECENT_FAILURES = 20
"""How many failures ``BreakerStats.recent_failures`` keeps: enough to read a burst at 3 a.m."""

STATE_HISTORY = 50
"""How many transitions ``BreakerStats.state_changes`` keeps, so a flapping venue cannot grow memory."""


class CircuitState(enum.Enum):
    CLOSED = "closed"
    """Requests flow; consecutive transport failures are counted."""
    OPEN = "open"
    """Requests are refused until the open window ends."""
    HALF_OPEN = "half_open"
    """A few probes may test whether the venue is back."""


class FailureKind(enum.Enum):
    """Why a request failed, which decides whether it counts against the venue."""

    TRANSPORT = "transport"
    """Connection refused or lost, or a payload we cannot parse: counts toward opening."""
    TIMEOUT = "timeout"
    """No answer in time: counts toward opening (and the outcome is unknown)."""
    RATE_LIMITED = "rate_limited"
    """HTTP 429-like: the venue is up but we sent too much; the rate limiter's business."""
    BANNED = "banned"
    """HTTP 418-like: the venue has banned us; the circuit opens at once."""
    BUSINESS = "business"
    """The venue refused on the merits (funds, price): proof the transport works."""


_COUNTS_TOWARD_OPENING = frozenset({FailureKind.TRANSPORT, FailureKind.TIMEOUT})


class TransitionCause(enum.Enum):
    FAILURES = "failures"
    """``failure_threshold`` consecutive transport failures while closed."""
    BANNED = "banned"
    """The venue banned us; also extends an open window."""
    FORCED = "forced"
    """``force_open`` (Retry-After, operator); also extends an open window."""
    TIMEOUT_ELAPSED = "timeout_elapsed"
    """The open window ended; probing may start."""
    PROBE_FAILED = "probe_failed"
    """A probe, or any transport failure reported while half-open, failed."""
    PROBES_SUCCEEDED = "probes_succeeded"
    """``success_threshold`` probes succeeded."""
    RESET = "reset"
    """``reset()``: an operator's override."""


BREAKER_TRANSITIONS: Mapping[tuple[CircuitState, TransitionCause], CircuitState] = MappingProxyType(
    {
        (CircuitState.CLOSED, TransitionCause.FAILURES): CircuitState.OPEN,
        (CircuitState.CLOSED, TransitionCause.BANNED): CircuitState.OPEN,
        (CircuitState.CLOSED, TransitionCause.FORCED): CircuitState.OPEN,
        (CircuitState.OPEN, TransitionCause.TIMEOUT_ELAPSED): CircuitState.HALF_OPEN,
        (CircuitState.OPEN, TransitionCause.BANNED): CircuitState.OPEN,
        (CircuitState.OPEN, TransitionCause.FORCED): CircuitState.OPEN,
        (CircuitState.OPEN, TransitionCause.RESET): CircuitState.CLOSED,
        (CircuitState.HALF_OPEN, TransitionCause.PROBE_FAILED): CircuitState.OPEN,
        (CircuitState.HALF_OPEN, TransitionCause.BANNED): CircuitState.OPEN,
        (CircuitState.HALF_OPEN, TransitionCause.FORCED): CircuitState.OPEN,
        (CircuitState.HALF_OPEN, TransitionCause.PROBES_SUCCEEDED): CircuitState.CLOSED,
        (CircuitState.HALF_OPEN, TransitionCause.RESET): CircuitState.CLOSED,
    }
)
"""Every legal move, keyed by (state, cause); anything else is a bug and raises.

OPEN -> OPEN entries record an open window pushed later by a ban or a
forced open; a window is never shortened except by ``reset()``.
"""


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change, as published to listeners and kept in ``state_changes``.

    ``at`` and ``open_until`` are monotonic seconds from the injected clock,
    not wall-clock time; ``open_until`` is set whenever ``to_state`` is OPEN
    (``math.inf`` for a window that only ``reset()`` ends).
    """

    circuit: str
    from_state: CircuitState
    to_state: CircuitState
    cause: TransitionCause
    at: float
    reason: str
    open_until: float | None = None


class FailureRecord(NamedTuple):
    """One failure as (time, kind, text), the shape ``get_failure_stats()`` reports."""

    at: float
    kind: FailureKind
    text: str


@dataclass(frozen=True, slots=True)
class Admission:
    """The breaker's answer to "may I send this?", and the ticket to report its result with.

    Truthy when allowed. A refused admission's ``retry_after`` is how long
    until the breaker may admit again (None when that depends on probes
    still in flight rather than on time).
    """

    circuit: str
    allowed: bool
    state: CircuitState
    reason: str
    ticket: int = 0
    epoch: int = 0
    probe: bool = False
    retry_after: float | None = None

    def __bool__(self) -> bool:
        return self.allowed


_new_admission = object.__new__
# The slots' own setters, which a frozen dataclass's ``__setattr__`` refuses:
# ``CircuitBreaker._admit`` builds an ``Admission`` through them.
_slot = Admission.__dict__
_set_circuit = _slot["circuit"].__set__
_set_allowed = _slot["allowed"].__set__
_set_state = _slot["state"].__set__
_set_reason = _slot["reason"].__set__
_set_ticket = _slot["ticket"].__set__
_set_epoch = _slot["epoch"].__set__
_set_probe = _slot["probe"].__set__
_set_retry_after = _slot["retry_after"].__set__


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """A snapshot for status views; times are the injected monotonic clock's seconds.

    ``failure_count`` counts every non-business failure ever recorded
    (transport, timeout, rate limit, ban); business rejections are counted
    apart, in ``business_rejections``, and also as transport successes in
    ``success_count``. Counters survive ``reset()`` so an operator's reset
    does not erase the evidence.
    """

    circuit: str
    circuit_state: CircuitState
    failure_count: int
    consecutive_failures: int
    success_count: int
    business_rejections: int
    rejected_count: int
    opened_count: int
    probes_in_flight: int
    open_until: float | None
    last_failure: str | None
    recent_failures: tuple[FailureRecord, ...]
    state_changes: tuple[BreakerTransition, ...]


class _Role(enum.Enum):
    """Which bookkeeping a recorded result drives."""

    CURRENT = "current"
    """A result for a request admitted in the present CLOSED period."""
    PROBE = "probe"
    """A result for a probe of the present HALF_OPEN period."""
    STALE = "stale"
    """A result for a request admitted before the last state change: statistics only."""
    UNSOLICITED = "unsolicited"
    """An observation with no admission, such as a dropped socket."""


# The members every request's admission and result test, read once: a member
# read off its enum class pays ``EnumType``'s Python-level ``__getattr__`` hook
# (~80 ns, where a module global is ~15).
_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_CURRENT = _Role.CURRENT
_PROBE = _Role.PROBE
_STALE = _Role.STALE
_UNSOLICITED = _Role.UNSOLICITED

Listener = Callable[[BreakerTransition], None]


class CircuitBreaker:
    """One venue's circuit breaker.

    The OPEN -> HALF_OPEN move is lazy: it happens in ``allow()`` or
    ``poll()``, never behind the caller's back, so reading ``state`` or
    ``stats()`` has no side effects. An actor that wants to publish the
    move promptly schedules ``poll()`` at ``stats().open_until``.

    Every admitted request must be resolved exactly once with
    ``record_success``, ``record_failure`` or ``release``, passing its
    admission. A probe that is never resolved holds its slot for good,
    so the actor's ask deadline must turn a silent venue into a TIMEOUT.
    Probe slots are counted physically: a probe admitted in an earlier
    half-open period still holds its slot until it is resolved, so the venue
    never sees more than ``half_open_max_probes`` probes at once.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        open_timeout: float,
        half_open_max_probes: int = 1,
        success_threshold: int = 1,
        monotonic: Callable[[], float],
    ) -> None:
        if not name:
            raise ValueError("CircuitBreaker.name: must not be empty")
        if failure_threshold < 1:
            raise ValueError(f"CircuitBreaker.failure_threshold={failure_threshold}: must be >= 1")
        if not (math.isfinite(open_timeout) and open_timeout > 0):
            raise ValueError(f"CircuitBreaker.open_timeout={open_timeout}: must be finite and > 0")
        if half_open_max_probes < 1:
            raise ValueError(
                f"CircuitBreaker.half_open_max_probes={half_open_max_probes}: must be >= 1"
            )
        if success_threshold < 1:
            raise ValueError(f"CircuitBreaker.success_threshold={success_threshold}: must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.open_timeout = open_timeout
        self.half_open_max_probes = half_open_max_probes
        self.success_threshold = success_threshold
        self._monotonic = monotonic
        self._listeners: list[Listener] = []

        self._state = CircuitState.CLOSED
        self._epoch = 0
        self._next_ticket = 1
        self._open_until: float | None = None
        self._open_reason = ""
        self._consecutive = 0
        self._probe_successes = 0
        self._probes: set[int] = set()

        self._failure_count = 0
        self._success_count = 0
        self._business_rejections = 0
        self._rejected_count = 0
        self._opened_count = 0
        self._last_failure: str | None = None
        self._recent: deque[FailureRecord] = deque(maxlen=RECENT_FAILURES)
        self._history: deque[BreakerTransition] = deque(maxlen=STATE_HISTORY)

    @property
    def state(self) -> CircuitState:
        return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` after every transition, once the new state is in place.

        Listeners run synchronously on the caller's thread; an exception
        from one propagates to the caller (the state change has already
        happened), so a broken publisher fails the actor loudly instead of
        silently losing events.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    def poll(self) -> CircuitState:
        """Apply the time-driven OPEN -> HALF_OPEN move if it is due."""
        self._advance(self._monotonic())
        return self._state

    def allow(self) -> Admission:
        if self._state is _CLOSED:
            # Nearly every request. Only an OPEN circuit moves with time
            # (``_advance``), so a CLOSED one needs no clock reading first.
            return self._admit(probe=False)
        now = self._monotonic()
        self._advance(now)
        if self._state is _CLOSED:
            return self._admit(probe=False)
        if self._state is _HALF_OPEN:
            if len(self._probes) < self.half_open_max_probes:
                return self._admit(probe=True)
            return self._refuse(
                f"circuit {self.name} HALF_OPEN: {len(self._probes)} probe(s) in flight,"
                f" at most {self.half_open_max_probes} allowed",
                retry_after=None,
            )
        assert self._open_until is not None
        remaining = max(0.0, self._open_until - now)
        span = "until reset" if math.isinf(remaining) else f"for another {remaining:.1f}s"
        return self._refuse(
            f"circuit {self.name} OPEN {span} {self._open_reason}", retry_after=remaining
        )

    def record_success(self, admission: Admission | None = None) -> None:
        """A request got an answer from the venue (any answer it could parse)."""
        role = self._role(admission)
        self._success(role)

    def record_failure(
        self,
        error: BaseException | str,
        kind: FailureKind,
        *,
        admission: Admission | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Record a failed request, or an unsolicited one (``admission=None``) like a dropped socket.

        ``retry_after`` is the ban length a BANNED answer announced; the
        circuit stays open that long instead of ``open_timeout``. Any other
        kind refuses it, because a 429's Retry-After belongs to the rate
        limiter (``TokenBucket.pause_until``), not to the breaker.
        """
        if retry_after is not None:
            if kind is not FailureKind.BANNED:
                raise ValueError(
                    f"record_failure(retry_after={retry_after}): only a BANNED failure opens"
                    f" the circuit for a venue-given time, not {kind.name}"
                )
            _check_duration("retry_after", retry_after)
        role = self._role(admission)
        if kind is FailureKind.BUSINESS:
            self._business_rejections += 1
            self._success(role)
            return
        now = self._monotonic()
        text = _describe(error)
        self._failure_count += 1
        self._last_failure = f"{kind.name}: {text}"
        self._recent.append(FailureRecord(now, kind, text))
        if kind is FailureKind.BANNED:
            duration = self.open_timeout if retry_after is None else retry_after
            self._open(now, duration, TransitionCause.BANNED, f"after BANNED: {text}")
        elif kind in _COUNTS_TOWARD_OPENING:
            self._transport_failure(role, now, f"{kind.name}: {text}")

    def release(self, admission: Admission) -> None:
        """Give back an admission whose request was never sent, or whose outcome says nothing about the venue."""
        self._role(admission)

    def force_open(self, reason: str, duration: float | None = None) -> None:
        """Open now for ``duration`` seconds (``open_timeout`` by default; ``math.inf`` until reset).

        An already open window is only ever extended: a short Retry-After
        must not cut a longer ban short.
        """
        if duration is not None:
            _check_duration("duration", duration)
        now = self._monotonic()
        self._open(
            now,
            self.open_timeout if duration is None else duration,
            TransitionCause.FORCED,
            f"forced: {reason}",
        )

    def reset(self) -> None:
        """Close at once and forget the counters that drive transitions, keeping the statistics."""
        self._consecutive = 0
        self._probe_successes = 0
        self._probes.clear()
        if self._state is not CircuitState.CLOSED:
            self._transition(TransitionCause.RESET, self._monotonic(), "reset")

    def stats(self) -> BreakerStats:
        return BreakerStats(
            circuit=self.name,
            circuit_state=self._state,
            failure_count=self._failure_count,
            consecutive_failures=self._consecutive,
            success_count=self._success_count,
            business_rejections=self._business_rejections,
            rejected_count=self._rejected_count,
            opened_count=self._opened_count,
            probes_in_flight=len(self._probes),
            open_until=self._open_until,
            last_failure=self._last_failure,
            recent_failures=tuple(self._recent),
            state_changes=tuple(self._history),
        )

    def _admit(self, *, probe: bool) -> Admission:
        ticket = self._next_ticket
        self._next_ticket += 1
        if probe:
            self._probes.add(ticket)
        # ``Admission(self.name, True, self._state, reason, ticket, self._epoch,
        # probe)``, one per request sent: a frozen dataclass's ``__init__`` sets
        # each field through ``object.__setattr__`` (a global, an attribute and a
        # generic call per field), the slots' setters take half the time.
        # ``Admission`` checks nothing on construction, so nothing is skipped;
        # every field is set (a test compares the two builds field by field).
        admission = _new_admission(Admission)
        _set_circuit(admission, self.name)
        _set_allowed(admission, True)
        _set_state(admission, self._state)
        _set_reason(admission, "probe" if probe else "closed")
        _set_ticket(admission, ticket)
        _set_epoch(admission, self._epoch)
        _set_probe(admission, probe)
        _set_retry_after(admission, None)
        return admission

    def _refuse(self, reason: str, *, retry_after: float | None) -> Admission:
        self._rejected_count += 1
        return Admission(
            circuit=self.name,
            allowed=False,
            state=self._state,
            reason=reason,
            epoch=self._epoch,
            retry_after=retry_after,
        )

    def _role(self, admission: Admission | None) -> _Role:
        """Classify a result and free its probe slot; misuse raises rather than corrupting counts."""
        if admission is None:
            return _UNSOLICITED
        if admission.circuit != self.name:
            raise ValueError(
                f"circuit {self.name}: admission belongs to circuit {admission.circuit}"
            )
        if not admission.allowed:
            raise ValueError(f"circuit {self.name}: a refused admission has no result to record")
        current = admission.epoch == self._epoch
        if admission.probe:
            in_flight = admission.ticket in self._probes
            self._probes.discard(admission.ticket)
            if in_flight and current and self._state is _HALF_OPEN:
                return _PROBE
            return _STALE
        if current and self._state is _CLOSED:
            return _CURRENT
        return _STALE

    def _success(self, role: _Role) -> None:
        self._success_count += 1
        if role is _CURRENT or (role is _UNSOLICITED and self._state is _CLOSED):
            self._consecutive = 0
        elif role is _PROBE:
            self._probe_successes += 1
            if self._probe_successes >= self.success_threshold:
                self._transition(
                    TransitionCause.PROBES_SUCCEEDED,
                    self._monotonic(),
                    f"after {self._probe_successes} successful probe(s)",
                )

    def _transport_failure(self, role: _Role, now: float, text: str) -> None:
        closed = self._state is CircuitState.CLOSED
        if role is _Role.CURRENT or (role is _Role.UNSOLICITED and closed):
            self._consecutive += 1
            if self._consecutive >= self.failure_threshold:
                self._open(
                    now,
                    self.open_timeout,
                    TransitionCause.FAILURES,
                    f"after {self._consecutive} consecutive failures (last: {text})",
                )
        elif role is _Role.PROBE or (
            role is _Role.UNSOLICITED and self._state is CircuitState.HALF_OPEN
        ):
            self._open(
                now,
                self.open_timeout,
                TransitionCause.PROBE_FAILED,
                f"after a failed probe ({text})",
            )

    def _open(self, now: float, duration: float, cause: TransitionCause, reason: str) -> None:
        until = now + duration
        if self._state is CircuitState.OPEN:
            assert self._open_until is not None
            if until <= self._open_until:
                return
        self._open_until = until
        self._open_reason = reason
        self._transition(cause, now, reason)

    def _advance(self, now: float) -> None:
        if self._state is _OPEN and self._open_until is not None and now >= self._open_until:
            self._transition(TransitionCause.TIMEOUT_ELAPSED, now, "open window ended")

    def _transition(self, cause: TransitionCause, now: float, reason: str) -> None:
        from_state = self._state
        to_state = BREAKER_TRANSITIONS.get((from_state, cause))
        if to_state is None:
            raise RuntimeError(
                f"circuit {self.name}: no transition from {from_state.name} on {cause.name}"
            )
        self._state = to_state
        self._epoch += 1
        if to_state is CircuitState.OPEN:
            if from_state is not CircuitState.OPEN:
                self._opened_count += 1
        else:
            self._open_until = None
            self._open_reason = ""
        if to_state is CircuitState.CLOSED:
            self._consecutive = 0
        if to_state is CircuitState.HALF_OPEN:
            self._probe_successes = 0
        event = BreakerTransition(
            circuit=self.name,
            from_state=from_state,
            to_state=to_state,
            cause=cause,
            at=now,
            reason=reason,
            open_until=self._open_until,
        )
        self._history.append(event)
        for listener in tuple(self._listeners):
            listener(event)


def _check_duration(name: str, value: float) -> None:
    """Zero is allowed because venues do send ``Retry-After: 0``: the circuit still opens, so only a probe goes next."""
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name}={value}: must be >= 0 (math.inf opens until reset)")


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


T = TypeVar("T")


class Parked(NamedTuple, Generic[T]):
    item: T
    reason: str


class DeadLetterQueue(Generic[T]):
    """Orders parked while a circuit is open, to be re-dispatched or reported once it closes.

    Bounded because an outage can outlast any memory budget, and an order
    that cannot be parked must be refused where someone sees it: ``park``
    returns False and ``overflow_count`` grows, so the actor can deny the
    order instead of dropping it. Parked items carry no timestamp; the
    actor decides whether an order parked long ago is still worth sending.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"DeadLetterQueue.capacity={capacity}: must be >= 0")
        self.capacity = capacity
        self._items: deque[Parked[T]] = deque()
        self.parked_count = 0
        self.overflow_count = 0

    def park(self, item: T, reason: str) -> bool:
        if len(self._items) >= self.capacity:
            self.overflow_count += 1
            return False
        self._items.append(Parked(item, reason))
        self.parked_count += 1
        return True

    def drain(self) -> list[T]:
        """Remove and return every parked item, oldest first."""
        items = [parked.item for parked in self._items]
        self._items.clear()
        return items

    def snapshot(self) -> tuple[Parked[T], ...]:
        return tuple(self._items)

    def __len__(self) -> int:
        return len(self._items)
