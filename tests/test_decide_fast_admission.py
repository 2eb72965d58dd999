"""The breaker's admissions, built through the slots' setters: the same as built whole.

``CircuitBreaker._admit`` builds each ``Admission`` without the frozen
dataclass's ``__init__``; every field must be set, to what the constructor
would set it, for a CLOSED admission and for a HALF_OPEN probe, and the
instance must stay frozen.
"""

from __future__ import annotations

import dataclasses

import pytest

from tradenode.actors import CircuitState

# The breaker's state machine and its admissions (private to the breaker): what is checked.
from tradenode.actors._breaker_state import Admission, CircuitBreaker, FailureKind


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _whole(admission: Admission) -> Admission:
    """The same admission, built by the dataclass constructor from its fields."""
    return Admission(**{f.name: getattr(admission, f.name) for f in dataclasses.fields(Admission)})


def _same(fast: Admission, expected: Admission) -> None:
    for f in dataclasses.fields(Admission):
        assert getattr(fast, f.name) == getattr(expected, f.name), f.name
        assert type(getattr(fast, f.name)) is type(getattr(expected, f.name)), f.name
    assert fast == expected
    assert hash(fast) == hash(expected)


def test_a_closed_admission_is_the_one_the_constructor_builds() -> None:
    breaker = CircuitBreaker("paper", failure_threshold=2, open_timeout=5.0, monotonic=_Clock())
    first, second = breaker.allow(), breaker.allow()
    _same(first, Admission("paper", True, CircuitState.CLOSED, "closed", first.ticket, 0, False))
    _same(second, _whole(second))
    assert second.ticket == first.ticket + 1
    assert bool(first)
    assert first.retry_after is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.ticket = 9  # type: ignore[misc]


def test_a_probe_admission_is_the_one_the_constructor_builds() -> None:
    clock = _Clock()
    breaker = CircuitBreaker("paper", failure_threshold=1, open_timeout=5.0, monotonic=clock)
    breaker.record_failure("down", FailureKind.TRANSPORT, admission=breaker.allow())
    assert not breaker.allow()
    clock.now = 10.0
    probe = breaker.allow()
    assert probe.probe
    _same(
        probe,
        Admission("paper", True, CircuitState.HALF_OPEN, "probe", probe.ticket, probe.epoch, True),
    )
    breaker.record_success(probe)
    assert breaker.state is CircuitState.CLOSED
