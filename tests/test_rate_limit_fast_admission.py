"""``WeightedLimiter.seconds_until`` answers "now" without searching its log when the weight fits.

The breaker asks ``seconds_until() > 0`` before every order it sends to a venue
that reports its counters (Binance counts orders per 10 s), and the search
through the window's log sorts every entry. The fast answer must be the search's
answer: zero exactly when ``try_acquire`` would succeed, and otherwise the same
wait as before, after which the weight does fit.
"""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The limiter is private to the breaker; its contract is tested here directly.
from tradenode.actors._rate_limit import WeightedLimiter


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


_STEP = st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.001, 0.5, 1.0, 2.5, 9.999, 10.0])),
    st.tuples(st.just("take"), st.sampled_from([1.0, 1.0, 1.0, 2.0, 5.0])),
    st.tuples(st.just("observe"), st.integers(0, 60).map(float)),
    st.tuples(st.just("pause"), st.sampled_from([0.0, 0.5, 3.0])),
)


@given(
    limit=st.sampled_from([5.0, 10.0, 50.0]),
    headroom=st.sampled_from([0.0, 0.1, 0.25]),
    steps=st.lists(_STEP, min_size=1, max_size=150),
    weight=st.sampled_from([1.0, 2.0, 7.0]),
)
@settings(max_examples=300, deadline=None)
def test_seconds_until_is_zero_exactly_when_the_weight_fits_now(
    limit: float, headroom: float, steps: list[tuple[str, float]], weight: float
) -> None:
    clock = FakeClock()
    limiter = WeightedLimiter(monotonic=clock, limit=limit, window_seconds=10.0, headroom=headroom)
    for action, value in steps:
        if action == "wait":
            clock.now += value
        elif action == "take":
            limiter.try_acquire(value)
        elif action == "observe":
            limiter.observe_used_weight(value, limit, 10.0, sent_at=clock.now - 0.001)
        else:
            limiter.pause_until(clock.now + value)
        wait = limiter.seconds_until(weight)
        fits_now = copy.deepcopy(limiter).try_acquire(weight)
        assert (wait == 0.0) == fits_now
        if 0.0 < wait < math.inf:
            later = copy.deepcopy(limiter)
            later_clock = FakeClock()
            later_clock.now = clock.now + wait
            later._monotonic = later_clock
            assert later.try_acquire(weight)


def test_a_full_window_still_says_how_long_to_wait() -> None:
    clock = FakeClock()
    limiter = WeightedLimiter(monotonic=clock, limit=150.0, window_seconds=10.0)
    for _ in range(150):
        assert limiter.seconds_until() == 0.0
        assert limiter.try_acquire()
        clock.now += 0.01
    wait = limiter.seconds_until()
    assert wait == pytest.approx(10.0 - 1.5)
    assert not limiter.try_acquire()
    clock.now += wait
    assert limiter.seconds_until() == 0.0
    assert limiter.try_acquire()
