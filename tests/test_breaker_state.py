"""The breaker actor's pure cores: circuit state, rate limits, retry safety, parking."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from tradenode import BrokerConnectionError, BrokerTimeoutError
from tradenode.actors import CircuitState

# The breaker's pure core (state machine, limiters, retry policy) is internal: unit-tested here.
from tradenode.actors._breaker_state import (
    BREAKER_TRANSITIONS,
    RECENT_FAILURES,
    STATE_HISTORY,
    Admission,
    BreakerTransition,
    CircuitBreaker,
    DeadLetterQueue,
    FailureKind,
    Parked,
    TransitionCause,
)
from tradenode.actors._rate_limit import TokenBucket, WeightedLimiter
from tradenode.actors._retry import Operation, RetryDecision, RetryPolicy, retry_decision

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
TRANSPORT, TIMEOUT, RATE_LIMITED, BANNED, BUSINESS = (
    FailureKind.TRANSPORT,
    FailureKind.TIMEOUT,
    FailureKind.RATE_LIMITED,
    FailureKind.BANNED,
    FailureKind.BUSINESS,
)


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_breaker(
    clock: FakeClock,
    *,
    failure_threshold: int = 3,
    open_timeout: float = 30.0,
    half_open_max_probes: int = 1,
    success_threshold: int = 1,
) -> CircuitBreaker:
    return CircuitBreaker(
        "binance",
        failure_threshold=failure_threshold,
        open_timeout=open_timeout,
        half_open_max_probes=half_open_max_probes,
        success_threshold=success_threshold,
        monotonic=clock,
    )


def fail(breaker: CircuitBreaker, kind: FailureKind = TRANSPORT, text: str = "refused") -> None:
    admission = breaker.allow()
    assert admission.allowed
    breaker.record_failure(text, kind, admission=admission)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        fail(breaker)
    assert breaker.state is OPEN


def to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(breaker.open_timeout)
    assert breaker.poll() is HALF_OPEN


# --- circuit breaker -------------------------------------------------------


def test_opens_after_threshold_consecutive_transport_failures() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=3)
    fail(breaker)
    fail(breaker)
    assert breaker.state is CLOSED
    assert breaker.stats().consecutive_failures == 2
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.stats().opened_count == 1


def test_success_resets_the_consecutive_count() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=3)
    fail(breaker)
    fail(breaker)
    breaker.record_success(breaker.allow())
    fail(breaker)
    fail(breaker)
    assert breaker.state is CLOSED
    assert breaker.stats().consecutive_failures == 2


def test_business_rejections_never_trip_and_count_as_transport_successes() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=2)
    for _ in range(50):
        fail(breaker, BUSINESS, "insufficient funds")
    fail(breaker)
    fail(breaker, BUSINESS, "invalid price")
    fail(breaker)
    stats = breaker.stats()
    assert breaker.state is CLOSED
    assert stats.failure_count == 2
    assert stats.business_rejections == 51
    assert stats.success_count == 51
    assert stats.consecutive_failures == 1


def test_timeouts_trip() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=2)
    fail(breaker, TIMEOUT, "no answer in 5s")
    fail(breaker, TIMEOUT, "no answer in 5s")
    assert breaker.state is OPEN


def test_rate_limits_neither_trip_nor_reset() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=2)
    fail(breaker)
    for _ in range(10):
        fail(breaker, RATE_LIMITED, "429")
    assert breaker.state is CLOSED
    assert breaker.stats().consecutive_failures == 1
    assert breaker.stats().failure_count == 11
    fail(breaker)
    assert breaker.state is OPEN


def test_open_refuses_with_a_clear_reason() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=5, open_timeout=30.0)
    for _ in range(5):
        fail(breaker, TRANSPORT, "connection reset")
    clock.advance(17.7)
    admission = breaker.allow()
    assert not admission
    assert not admission.allowed
    assert admission.state is OPEN
    assert admission.retry_after == pytest.approx(12.3)
    assert admission.reason.startswith("circuit binance OPEN for another 12.3s after 5 consecutive")
    assert "connection reset" in admission.reason
    assert breaker.stats().rejected_count == 1


def test_open_moves_to_half_open_only_once_the_timeout_elapsed() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, open_timeout=30.0)
    trip(breaker)
    clock.advance(29.5)
    assert not breaker.allow()
    assert breaker.state is OPEN
    clock.advance(0.5)
    admission = breaker.allow()
    assert admission.allowed
    assert admission.probe
    assert breaker.state is HALF_OPEN


def test_reading_state_and_stats_never_moves_the_breaker() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    trip(breaker)
    clock.advance(1000)
    assert breaker.state is OPEN
    assert breaker.stats().circuit_state is OPEN
    assert breaker.poll() is HALF_OPEN


def test_half_open_admits_at_most_max_probes() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, half_open_max_probes=2, success_threshold=3)
    to_half_open(breaker, clock)
    first, second = breaker.allow(), breaker.allow()
    assert first.probe and second.probe
    refused = breaker.allow()
    assert not refused
    assert refused.retry_after is None
    assert refused.reason == "circuit binance HALF_OPEN: 2 probe(s) in flight, at most 2 allowed"
    breaker.record_success(first)
    assert breaker.allow().probe
    assert breaker.stats().probes_in_flight == 2


def test_release_frees_a_probe_slot_without_judging_the_venue() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    to_half_open(breaker, clock)
    probe = breaker.allow()
    assert not breaker.allow()
    breaker.release(probe)
    assert breaker.state is HALF_OPEN
    assert breaker.allow().probe


def test_failed_probe_reopens_for_the_open_timeout() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, open_timeout=30.0)
    to_half_open(breaker, clock)
    probe = breaker.allow()
    clock.advance(2.0)
    breaker.record_failure(BrokerConnectionError("refused"), TRANSPORT, admission=probe)
    assert breaker.state is OPEN
    assert breaker.stats().open_until == clock.now + 30.0
    last = breaker.stats().state_changes[-1]
    assert (last.from_state, last.to_state, last.cause) == (
        HALF_OPEN,
        OPEN,
        TransitionCause.PROBE_FAILED,
    )
    clock.advance(29.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow().probe
    assert breaker.stats().opened_count == 2


def test_successful_probes_close() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, success_threshold=2)
    to_half_open(breaker, clock)
    breaker.record_success(breaker.allow())
    assert breaker.state is HALF_OPEN
    breaker.record_failure("insufficient funds", BUSINESS, admission=breaker.allow())
    assert breaker.state is CLOSED
    assert breaker.stats().consecutive_failures == 0
    admission = breaker.allow()
    assert admission.allowed
    assert not admission.probe


def test_a_rate_limited_probe_is_neutral() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    to_half_open(breaker, clock)
    breaker.record_failure("429", RATE_LIMITED, admission=breaker.allow())
    assert breaker.state is HALF_OPEN
    assert breaker.allow().probe


def test_late_replies_from_before_the_opening_are_stale() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=1)
    early = breaker.allow()
    fail(breaker)
    clock.advance(breaker.open_timeout)
    probe = breaker.allow()
    breaker.record_success(early)
    assert breaker.state is HALF_OPEN
    breaker.record_failure("late", TRANSPORT, admission=early)
    assert breaker.state is HALF_OPEN
    assert breaker.stats().success_count == 1
    breaker.record_success(probe)
    assert breaker.state is CLOSED


def test_probes_from_an_earlier_half_open_period_still_hold_their_slot() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    to_half_open(breaker, clock)
    old_probe = breaker.allow()
    breaker.record_failure("socket dropped", TRANSPORT)
    assert breaker.state is OPEN
    clock.advance(breaker.open_timeout)
    refused = breaker.allow()
    assert breaker.state is HALF_OPEN
    assert not refused
    breaker.record_success(old_probe)
    assert breaker.state is HALF_OPEN
    assert breaker.allow().probe


def test_unsolicited_observations() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=2)
    breaker.record_failure(ConnectionResetError("ws closed"), TRANSPORT)
    breaker.record_success()
    breaker.record_failure(ConnectionResetError("ws closed"), TRANSPORT)
    assert breaker.state is CLOSED
    breaker.record_failure(ConnectionResetError("ws closed"), TRANSPORT)
    assert breaker.state is OPEN
    breaker.record_failure("still down", TRANSPORT)
    assert breaker.stats().opened_count == 1
    clock.advance(breaker.open_timeout)
    breaker.poll()
    breaker.record_success()
    assert breaker.state is HALF_OPEN


def test_banned_opens_immediately_for_the_open_timeout_or_the_venue_s_word() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=100, open_timeout=30.0)
    fail(breaker, BANNED, "418 I'm a teapot")
    assert breaker.state is OPEN
    assert breaker.stats().open_until == clock.now + 30.0
    assert breaker.stats().state_changes[-1].cause is TransitionCause.BANNED
    breaker.record_failure("418", BANNED, retry_after=120.0)
    assert breaker.stats().open_until == clock.now + 120.0
    assert breaker.stats().opened_count == 1
    assert "after BANNED: 418" in breaker.allow().reason
    with pytest.raises(ValueError, match="only a BANNED failure"):
        breaker.record_failure("429", RATE_LIMITED, retry_after=5.0)


def test_force_open_with_duration_extends_but_never_shortens() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, open_timeout=30.0)
    seen: list[BreakerTransition] = []
    breaker.add_listener(seen.append)
    breaker.force_open("Retry-After 60", duration=60.0)
    assert breaker.state is OPEN
    assert breaker.stats().open_until == clock.now + 60.0
    assert "forced: Retry-After 60" in breaker.allow().reason
    breaker.force_open("Retry-After 5", duration=5.0)
    assert breaker.stats().open_until == clock.now + 60.0
    assert len(seen) == 1
    clock.advance(59.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow().probe
    breaker.force_open("operator")
    assert breaker.stats().open_until == clock.now + 30.0
    breaker.force_open("maintenance", duration=math.inf)
    clock.advance(1e9)
    refused = breaker.allow()
    assert "OPEN until reset forced: maintenance" in refused.reason
    breaker.reset()
    assert breaker.state is CLOSED
    assert breaker.allow().allowed
    assert [(e.from_state, e.to_state) for e in seen] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, OPEN),
        (OPEN, CLOSED),
    ]
    with pytest.raises(ValueError, match="must be >= 0"):
        breaker.force_open("nonsense", duration=-1.0)


def test_force_open_shorter_than_the_open_timeout_is_honoured() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, open_timeout=30.0)
    breaker.force_open("Retry-After 5", duration=5.0)
    clock.advance(5.0)
    assert breaker.allow().probe


def test_a_ban_with_retry_after_zero_still_sends_only_a_probe_next() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=100)
    breaker.record_failure("418", BANNED, retry_after=0.0)
    assert breaker.state is OPEN
    assert breaker.allow().probe
    assert not breaker.allow()


def test_stats_fields() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=2)
    breaker.record_failure(BrokerTimeoutError("no fill report", broker="binance"), TIMEOUT)
    clock.advance(1.0)
    breaker.record_failure(OSError("network unreachable"), TRANSPORT)
    assert not breaker.allow()
    stats = breaker.stats()
    assert stats.circuit == "binance"
    assert stats.circuit_state is OPEN
    assert stats.failure_count == 2
    assert stats.consecutive_failures == 2
    assert stats.success_count == 0
    assert stats.rejected_count == 1
    assert stats.opened_count == 1
    assert stats.probes_in_flight == 0
    assert stats.open_until == clock.now + 30.0
    assert stats.last_failure == "TRANSPORT: OSError: network unreachable"
    assert stats.recent_failures == (
        (100.0, TIMEOUT, "BrokerTimeoutError: no fill report [broker=binance]"),
        (101.0, TRANSPORT, "OSError: network unreachable"),
    )
    assert stats.recent_failures[0].kind is TIMEOUT
    assert len(stats.state_changes) == 1
    with pytest.raises(AttributeError):
        stats.failure_count = 0  # type: ignore[misc]


def test_recent_failures_and_history_are_bounded() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=1, open_timeout=1.0)
    for i in range(STATE_HISTORY + RECENT_FAILURES):
        clock.advance(1.0)
        breaker.poll()
        breaker.record_failure(f"failure {i}", TRANSPORT)
    stats = breaker.stats()
    assert len(stats.recent_failures) == RECENT_FAILURES == 20
    assert stats.recent_failures[-1].text == f"failure {STATE_HISTORY + RECENT_FAILURES - 1}"
    assert len(stats.state_changes) == STATE_HISTORY
    assert stats.failure_count == STATE_HISTORY + RECENT_FAILURES


def test_reset_keeps_the_statistics() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    trip(breaker)
    breaker.reset()
    stats = breaker.stats()
    assert stats.circuit_state is CLOSED
    assert stats.consecutive_failures == 0
    assert stats.failure_count == 3
    assert stats.open_until is None
    assert stats.state_changes[-1].cause is TransitionCause.RESET


def test_admission_misuse_is_refused() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock)
    other = CircuitBreaker("kraken", failure_threshold=1, open_timeout=1.0, monotonic=clock)
    with pytest.raises(ValueError, match="belongs to circuit kraken"):
        breaker.record_success(other.allow())
    trip(breaker)
    refused = breaker.allow()
    with pytest.raises(ValueError, match="refused admission"):
        breaker.record_failure("x", TRANSPORT, admission=refused)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"open_timeout": 0.0},
        {"open_timeout": math.inf},
        {"half_open_max_probes": 0},
        {"success_threshold": 0},
    ],
)
def test_breaker_validates_its_settings(kwargs: dict[str, float]) -> None:
    settings_ = {"failure_threshold": 1, "open_timeout": 1.0} | kwargs
    with pytest.raises(ValueError, match="CircuitBreaker"):
        CircuitBreaker("binance", monotonic=FakeClock(), **settings_)  # type: ignore[arg-type]


def test_transition_table_is_explicit_and_enforced() -> None:
    assert BREAKER_TRANSITIONS[(CLOSED, TransitionCause.FAILURES)] is OPEN
    assert BREAKER_TRANSITIONS[(OPEN, TransitionCause.TIMEOUT_ELAPSED)] is HALF_OPEN
    assert BREAKER_TRANSITIONS[(HALF_OPEN, TransitionCause.PROBE_FAILED)] is OPEN
    assert BREAKER_TRANSITIONS[(HALF_OPEN, TransitionCause.PROBES_SUCCEEDED)] is CLOSED
    assert (CLOSED, TransitionCause.TIMEOUT_ELAPSED) not in BREAKER_TRANSITIONS
    assert (OPEN, TransitionCause.PROBES_SUCCEEDED) not in BREAKER_TRANSITIONS
    assert (CLOSED, TransitionCause.RESET) not in BREAKER_TRANSITIONS
    with pytest.raises(TypeError):
        BREAKER_TRANSITIONS[(CLOSED, TransitionCause.RESET)] = CLOSED  # type: ignore[index]
    assert set(BREAKER_TRANSITIONS.values()) == set(CircuitState)


def test_listeners_see_every_transition_after_it_happened() -> None:
    clock = FakeClock()
    breaker = make_breaker(clock, failure_threshold=1)
    states: list[tuple[CircuitState, CircuitState]] = []

    def listener(event: BreakerTransition) -> None:
        states.append((event.to_state, breaker.state))

    breaker.add_listener(listener)
    fail(breaker)
    clock.advance(breaker.open_timeout)
    breaker.record_success(breaker.allow())
    breaker.remove_listener(listener)
    breaker.force_open("quiet")
    assert states == [(OPEN, OPEN), (HALF_OPEN, HALF_OPEN), (CLOSED, CLOSED)]


# --- property: probe concurrency and the open window ----------------------


class BreakerMachine(RuleBasedStateMachine):
    """Random traffic never gets more probes in flight, or an earlier exit from OPEN, than allowed."""

    OPEN_TIMEOUT = 10.0
    admissions = Bundle("admissions")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(0.0)
        self.events: list[BreakerTransition] = []
        self.breaker = CircuitBreaker(
            "venue", failure_threshold=1, open_timeout=1.0, monotonic=self.clock
        )
        self.in_flight_probes: set[int] = set()
        self.max_probes = 1

    @initialize(
        threshold=st.integers(1, 4),
        max_probes=st.integers(1, 3),
        successes=st.integers(1, 3),
    )
    def configure(self, threshold: int, max_probes: int, successes: int) -> None:
        self.max_probes = max_probes
        self.breaker = CircuitBreaker(
            "venue",
            failure_threshold=threshold,
            open_timeout=self.OPEN_TIMEOUT,
            half_open_max_probes=max_probes,
            success_threshold=successes,
            monotonic=self.clock,
        )
        self.breaker.add_listener(self.on_transition)

    def on_transition(self, event: BreakerTransition) -> None:
        if event.cause is TransitionCause.TIMEOUT_ELAPSED:
            last_open = next(e for e in reversed(self.events) if e.to_state is OPEN)
            assert event.at >= last_open.at + self.OPEN_TIMEOUT
        self.events.append(event)

    @rule(half_seconds=st.integers(0, 30))
    def advance(self, half_seconds: int) -> None:
        self.clock.advance(half_seconds * 0.5)

    @rule(target=admissions)
    def allow(self) -> Admission:
        state_before = self.breaker.state
        admission = self.breaker.allow()
        if state_before is OPEN and self.breaker.state is OPEN:
            assert not admission
        if admission.probe:
            self.in_flight_probes.add(admission.ticket)
        return admission

    @rule(admission=consumes(admissions), outcome=st.sampled_from([*FailureKind, None, "release"]))
    def resolve(self, admission: Admission, outcome: FailureKind | str | None) -> None:
        if not admission.allowed:
            return
        self.in_flight_probes.discard(admission.ticket)
        if outcome is None:
            self.breaker.record_success(admission)
        elif outcome == "release":
            self.breaker.release(admission)
        else:
            assert isinstance(outcome, FailureKind)
            self.breaker.record_failure("boom", outcome, admission=admission)

    @rule(kind=st.sampled_from(list(FailureKind)))
    def unsolicited(self, kind: FailureKind) -> None:
        self.breaker.record_failure("socket", kind)

    @rule(extra=st.integers(0, 20))
    def force_open(self, extra: int) -> None:
        self.breaker.force_open("retry-after", duration=self.OPEN_TIMEOUT + extra)

    @invariant()
    def probes_within_limit(self) -> None:
        assert len(self.in_flight_probes) <= self.max_probes
        assert self.breaker.stats().probes_in_flight == len(self.in_flight_probes)

    @invariant()
    def open_means_a_window(self) -> None:
        stats = self.breaker.stats()
        assert (stats.open_until is not None) == (stats.circuit_state is OPEN)


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase


# --- token bucket ----------------------------------------------------------


def test_token_bucket_refill_arithmetic() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=4.0, capacity=2.0, monotonic=clock)
    assert bucket.try_acquire()
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    assert bucket.seconds_until() == 0.25
    assert bucket.seconds_until(2.0) == 0.5
    clock.advance(0.125)
    assert bucket.available() == 0.5
    assert not bucket.try_acquire()
    clock.advance(0.125)
    assert bucket.try_acquire()
    clock.advance(100.0)
    assert bucket.available() == 2.0
    assert bucket.try_acquire(1.5)
    assert bucket.available() == 0.5


def test_token_bucket_refuses_more_than_its_capacity_visibly() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=1.0, capacity=2.0, monotonic=clock)
    assert not bucket.try_acquire(3.0)
    assert bucket.seconds_until(3.0) == math.inf
    with pytest.raises(ValueError, match="n=0"):
        bucket.try_acquire(0.0)
    with pytest.raises(ValueError, match="rate_per_second"):
        TokenBucket(rate_per_second=0.0, capacity=1.0, monotonic=clock)


def test_token_bucket_pause_until_retry_after() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=2.0, capacity=10.0, monotonic=clock)
    bucket.pause_until(clock.now + 5.0)
    assert bucket.paused_until == clock.now + 5.0
    assert not bucket.try_acquire()
    assert bucket.seconds_until() == 5.5
    bucket.pause_until(clock.now + 1.0)
    assert bucket.seconds_until() == 5.5
    clock.advance(4.75)
    assert not bucket.try_acquire(0.001)
    clock.advance(0.25)
    assert bucket.available() == 0.0
    clock.advance(0.5)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_token_bucket_set_rate_from_the_venue() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=1.0, capacity=10.0, monotonic=clock)
    assert bucket.try_acquire(10.0)
    clock.advance(2.0)
    bucket.set_rate(10.0, capacity=4.0)
    assert bucket.available() == 2.0
    clock.advance(1.0)
    assert bucket.available() == 4.0
    assert bucket.rate_per_second == 10.0
    assert bucket.capacity == 4.0


@given(
    rate=st.floats(0.01, 1000.0),
    capacity=st.floats(1.0, 1000.0),
    draws=st.lists(st.floats(0.001, 1.0), min_size=1, max_size=30),
)
@settings(max_examples=100, deadline=None)
def test_waiting_seconds_until_is_always_enough(
    rate: float, capacity: float, draws: list[float]
) -> None:
    clock = FakeClock(0.0)
    bucket = TokenBucket(rate_per_second=rate, capacity=capacity, monotonic=clock)
    for fraction in draws:
        n = fraction * capacity
        clock.advance(bucket.seconds_until(n))
        assert bucket.try_acquire(n)


# --- weighted limiter ------------------------------------------------------


def test_weighted_limiter_spends_within_the_window() -> None:
    clock = FakeClock(0.0)
    limiter = WeightedLimiter(monotonic=clock, limit=10.0, window_seconds=60.0)
    assert limiter.try_acquire(6.0)
    clock.advance(10.0)
    assert limiter.try_acquire(4.0)
    assert not limiter.try_acquire(1.0)
    assert limiter.seconds_until(1.0) == 50.0
    assert limiter.seconds_until(5.0) == 50.0
    assert limiter.seconds_until(7.0) == 60.0
    clock.advance(49.5)
    assert not limiter.try_acquire(1.0)
    clock.advance(0.5)
    assert limiter.try_acquire(6.0)
    assert not limiter.try_acquire(1.0)
    assert limiter.seconds_until(11.0) == math.inf


def test_weighted_limiter_takes_the_venue_s_word_for_foreign_weight() -> None:
    clock = FakeClock(0.0)
    limiter = WeightedLimiter(monotonic=clock)
    assert limiter.budget is None
    assert limiter.try_acquire(1000.0)
    limiter.observe_used_weight(1150.0, 1200.0, 60.0)
    assert limiter.limit == 1200.0
    assert limiter.projected_used() == 1150.0
    assert limiter.try_acquire(50.0)
    assert not limiter.try_acquire(1.0)
    assert limiter.seconds_until(1.0) == 60.0
    clock.advance(30.0)
    limiter.observe_used_weight(400.0, 1200.0, 60.0, sent_at=clock.now - 40.0)
    assert limiter.projected_used() == 1200.0
    limiter.observe_used_weight(1000.0, 1200.0, 60.0, sent_at=clock.now - 1.0)
    assert limiter.projected_used() == 1000.0
    clock.advance(60.0)
    assert limiter.projected_used() == 0.0


def test_weighted_limiter_counts_requests_in_flight_since_the_observed_one() -> None:
    clock = FakeClock(0.0)
    limiter = WeightedLimiter(monotonic=clock, limit=100.0, window_seconds=10.0, headroom=0.1)
    assert limiter.budget == 90.0
    sent = clock.now
    assert limiter.try_acquire(10.0)
    clock.advance(1.0)
    assert limiter.try_acquire(20.0)
    clock.advance(1.0)
    limiter.observe_used_weight(50.0, 100.0, 10.0, sent_at=sent)
    assert limiter.projected_used() == 80.0
    assert not limiter.try_acquire(20.0)
    assert limiter.try_acquire(10.0)


def test_weighted_limiter_pause_until() -> None:
    clock = FakeClock(0.0)
    limiter = WeightedLimiter(monotonic=clock, limit=100.0, window_seconds=10.0)
    limiter.pause_until(7.0)
    assert not limiter.try_acquire()
    assert limiter.seconds_until() == 7.0
    clock.advance(7.0)
    assert limiter.try_acquire()


def test_weighted_limiter_validates() -> None:
    with pytest.raises(ValueError, match="together"):
        WeightedLimiter(monotonic=FakeClock(), limit=10.0)
    with pytest.raises(ValueError, match="headroom"):
        WeightedLimiter(monotonic=FakeClock(), headroom=1.0)
    with pytest.raises(ValueError, match="used"):
        WeightedLimiter(monotonic=FakeClock()).observe_used_weight(-1.0, 10.0, 1.0)


@given(
    offset=st.integers(0, 59),
    foreign=st.integers(0, 300),
    steps=st.lists(
        st.tuples(
            st.sampled_from([0, 1, 2, 5, 29, 58, 59, 60]), st.integers(1, 400), st.booleans()
        ),
        min_size=1,
        max_size=120,
    ),
)
@settings(max_examples=100, deadline=None)
def test_weighted_limiter_never_exceeds_a_fixed_window_venue(
    offset: int, foreign: int, steps: list[tuple[int, int, bool]]
) -> None:
    """A venue with minute windows at an unknown alignment, foreign weight spent before we start."""
    limit, window = 1200, 60
    clock = FakeClock(0.0)
    limiter = WeightedLimiter(monotonic=clock, limit=float(limit), window_seconds=float(window))
    venue_window = -1
    venue_used = 0
    started = False
    for wait, weight, observe in steps:
        clock.advance(float(wait))
        current = (int(clock.now) + offset) // window
        if current != venue_window:
            venue_window, venue_used = current, 0
        if not started:
            venue_used = foreign
            limiter.observe_used_weight(float(venue_used), float(limit), float(window))
            started = True
        if limiter.try_acquire(float(weight)):
            venue_used += weight
            assert venue_used <= limit
            if observe:
                limiter.observe_used_weight(
                    float(venue_used), float(limit), float(window), sent_at=clock.now
                )
        else:
            assert limiter.seconds_until(float(weight)) > 0


@given(
    offset=st.integers(0, 59),
    steps=st.lists(
        st.tuples(st.sampled_from([0, 1, 30, 59, 60]), st.integers(1, 1200)),
        min_size=1,
        max_size=60,
    ),
)
@settings(max_examples=200, deadline=None)
def test_weighted_limiter_alone_is_safe_at_any_window_alignment(
    offset: int, steps: list[tuple[int, int]]
) -> None:
    """With no header ever observed, our own log still keeps every venue window within the limit."""
    limit, window = 1200, 60
    clock = FakeClock(0.0)
    limiter = WeightedLimiter(monotonic=clock, limit=float(limit), window_seconds=float(window))
    spent: dict[int, int] = {}
    for wait, weight in steps:
        clock.advance(float(wait))
        if limiter.try_acquire(float(weight)):
            venue_window = (int(clock.now) + offset) // window
            spent[venue_window] = spent.get(venue_window, 0) + weight
            assert spent[venue_window] <= limit


# --- retry safety ----------------------------------------------------------

R, Q, D, G = (
    RetryDecision.RETRY,
    RetryDecision.QUERY_FIRST,
    RetryDecision.DO_NOT_RESEND,
    RetryDecision.GIVE_UP,
)

# For each (operation, kind): the decision for venue_has_order = None, True, False.
RETRY_TABLE: dict[tuple[Operation, FailureKind], tuple[RetryDecision, RetryDecision, RetryDecision]]
RETRY_TABLE = {
    (Operation.QUERY, TRANSPORT): (R, R, R),
    (Operation.QUERY, TIMEOUT): (R, R, R),
    (Operation.QUERY, RATE_LIMITED): (R, R, R),
    (Operation.QUERY, BANNED): (G, G, G),
    (Operation.QUERY, BUSINESS): (G, G, G),
    (Operation.CANCEL, TRANSPORT): (R, R, R),
    (Operation.CANCEL, TIMEOUT): (R, R, R),
    (Operation.CANCEL, RATE_LIMITED): (R, R, R),
    (Operation.CANCEL, BANNED): (G, G, G),
    (Operation.CANCEL, BUSINESS): (G, G, G),
    (Operation.SUBMIT, TRANSPORT): (Q, D, R),
    (Operation.SUBMIT, TIMEOUT): (Q, D, R),
    (Operation.SUBMIT, RATE_LIMITED): (Q, D, R),
    (Operation.SUBMIT, BANNED): (Q, D, G),
    (Operation.SUBMIT, BUSINESS): (G, D, G),
    (Operation.MODIFY, TRANSPORT): (Q, D, R),
    (Operation.MODIFY, TIMEOUT): (Q, D, R),
    (Operation.MODIFY, RATE_LIMITED): (Q, D, R),
    (Operation.MODIFY, BANNED): (Q, D, G),
    (Operation.MODIFY, BUSINESS): (G, D, G),
}
# Once the budget is spent, a RETRY becomes GIVE_UP; the rest stand.
EXHAUSTED = {R: G, Q: Q, D: D, G: G}


def test_retry_table_covers_every_operation_and_kind() -> None:
    assert set(RETRY_TABLE) == set(itertools.product(Operation, FailureKind))


@pytest.mark.parametrize(
    ("operation", "kind", "has_order"),
    list(itertools.product(Operation, FailureKind, [None, True, False])),
)
def test_retry_decision_table(
    operation: Operation, kind: FailureKind, has_order: bool | None
) -> None:
    expected = RETRY_TABLE[(operation, kind)][(None, True, False).index(has_order)]
    assert retry_decision(operation, 1, kind, venue_has_order=has_order) is expected
    assert retry_decision(operation, 2, kind, venue_has_order=has_order, max_attempts=3) is expected
    assert (
        retry_decision(operation, 3, kind, venue_has_order=has_order, max_attempts=3)
        is EXHAUSTED[expected]
    )
    policy = RetryPolicy(3, 0.5, 30.0, 0.2, random.Random(1))
    assert policy.decide(operation, 3, kind, venue_has_order=has_order) is EXHAUSTED[expected]


@given(
    operation=st.sampled_from(list(Operation)),
    attempt=st.integers(1, 50),
    kind=st.sampled_from(list(FailureKind)),
    has_order=st.sampled_from([None, True, False]),
    max_attempts=st.one_of(st.none(), st.integers(1, 50)),
)
def test_never_a_double_submit(
    operation: Operation,
    attempt: int,
    kind: FailureKind,
    has_order: bool | None,
    max_attempts: int | None,
) -> None:
    decision = retry_decision(
        operation, attempt, kind, venue_has_order=has_order, max_attempts=max_attempts
    )
    if operation in (Operation.SUBMIT, Operation.MODIFY) and decision is R:
        assert has_order is False
    if kind is BUSINESS:
        assert decision is not R


def test_retry_decision_validates_attempts() -> None:
    with pytest.raises(ValueError, match="attempt=0"):
        retry_decision(Operation.QUERY, 0, TRANSPORT, venue_has_order=None)
    with pytest.raises(ValueError, match="max_attempts=0"):
        retry_decision(Operation.QUERY, 1, TRANSPORT, venue_has_order=None, max_attempts=0)


def test_jittered_delays_are_bounded_exponential_and_reproducible() -> None:
    policy = RetryPolicy(10, 0.5, 8.0, 0.2, random.Random(42))
    delays = [policy.delay(attempt) for attempt in range(1, 11)]
    for attempt, delay in enumerate(delays, start=1):
        base = min(8.0, 0.5 * 2 ** (attempt - 1))
        assert base <= delay < base * 1.2
    again = RetryPolicy(10, 0.5, 8.0, 0.2, random.Random(42))
    assert [again.delay(attempt) for attempt in range(1, 11)] == delays
    exact = RetryPolicy(10, 0.5, 8.0, 0.0, random.Random(0))
    assert [exact.delay(a) for a in (1, 2, 3, 4, 5, 6, 1000)] == [0.5, 1, 2, 4, 8, 8, 8]
    with pytest.raises(ValueError, match="attempt=0"):
        policy.delay(0)
    with pytest.raises(ValueError, match="base_delay"):
        RetryPolicy(3, 2.0, 1.0, 0.2, random.Random(0))


# --- dead letter queue -----------------------------------------------------


def test_dead_letter_queue_is_fifo_and_refuses_overflow_visibly() -> None:
    queue: DeadLetterQueue[str] = DeadLetterQueue(capacity=2)
    assert queue.park("order-1", "circuit binance OPEN")
    assert queue.park("order-2", "circuit binance OPEN")
    assert not queue.park("order-3", "circuit binance OPEN")
    assert len(queue) == 2
    assert queue.overflow_count == 1
    assert queue.parked_count == 2
    assert queue.snapshot() == (
        Parked("order-1", "circuit binance OPEN"),
        Parked("order-2", "circuit binance OPEN"),
    )
    assert queue.drain() == ["order-1", "order-2"]
    assert len(queue) == 0
    assert queue.drain() == []
    assert queue.park("order-3", "retry")
    assert queue.drain() == ["order-3"]


def test_dead_letter_queue_of_capacity_zero_parks_nothing() -> None:
    queue: DeadLetterQueue[int] = DeadLetterQueue(capacity=0)
    assert not queue.park(1, "disabled")
    assert queue.overflow_count == 1
    with pytest.raises(ValueError, match="capacity"):
        DeadLetterQueue[int](capacity=-1)
