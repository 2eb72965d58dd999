"""POV: children that track a fraction of the market's volume, within bounds,
and parameter checks that deny instead of raising."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

# The POV policy and the parameter checks are internal: these tests pin them directly.
from tradenode.execution._pov import PovChild, PovPolicy
from tradenode.messages import PovParams
from tradenode.messages._algos import ParamProblem, check_pov

D = Decimal


def _policy(**overrides: object) -> PovPolicy:
    params: dict[str, object] = {
        "quantity": D(10),
        "participation": D("0.1"),
        "lot": D("0.01"),
    }
    params.update(overrides)
    return PovPolicy(**params)  # type: ignore[arg-type]


def test_tracks_the_participation_rate_of_market_volume() -> None:
    policy = _policy()
    assert policy.next_child(market_volume=D(0), filled=D(0), open_quantity=D(0)) is None
    assert policy.next_child(market_volume=D(25), filled=D(0), open_quantity=D(0)) == PovChild(
        quantity=D("2.50"), behind=False
    )
    # open children count as if they filled
    child = policy.next_child(market_volume=D(40), filled=D(2), open_quantity=D("0.5"))
    assert child == PovChild(quantity=D("1.50"), behind=False)
    assert policy.next_child(market_volume=D(40), filled=D(4), open_quantity=D(0)) is None


def test_never_past_the_quantity() -> None:
    policy = _policy()
    child = policy.next_child(market_volume=D(10_000), filled=D(9), open_quantity=D("0.5"))
    assert child is not None and child.quantity == D("0.5")
    assert policy.next_child(market_volume=D(10_000), filled=D(10), open_quantity=D(0)) is None


def test_below_the_minimum_it_says_behind() -> None:
    policy = _policy(min_participation=D("0.05"), max_participation=D("0.2"))
    child = policy.next_child(market_volume=D(100), filled=D(2), open_quantity=D(0))
    assert child == PovChild(quantity=D(8), behind=True)
    child = policy.next_child(market_volume=D(100), filled=D(6), open_quantity=D(0))
    assert child == PovChild(quantity=D(4), behind=False)


def test_small_children_wait_for_more_volume_except_the_last() -> None:
    policy = _policy(min_child_quantity=D(1))
    assert policy.next_child(market_volume=D(5), filled=D(0), open_quantity=D(0)) is None
    assert policy.next_child(market_volume=D(10), filled=D(0), open_quantity=D(0)) == PovChild(
        quantity=D(1), behind=False
    )
    last = policy.next_child(market_volume=D(1000), filled=D("9.6"), open_quantity=D(0))
    assert last is not None and last.quantity == D("0.4")


def test_bounds() -> None:
    policy = _policy(min_participation=D("0.05"), max_participation=D("0.15"))
    assert policy.within_bounds(D(100), D(10), slack=D(0))
    assert policy.within_bounds(D(100), D(5), slack=D(0))
    assert not policy.within_bounds(D(100), D("4.9"), slack=D(0))
    assert policy.within_bounds(D(100), D("4.9"), slack=D("0.1"))
    assert not policy.within_bounds(D(10), D("1.6"), slack=D(1))


@given(
    volumes=st.lists(st.integers(0, 500), min_size=1, max_size=60),
    fill_ratio=st.sampled_from([D(1), D("0.5"), D(0)]),
    rate=st.sampled_from([D("0.05"), D("0.1"), D("0.3"), D(1)]),
)
def test_never_above_the_maximum_even_if_every_open_child_fills(
    volumes: list[int], fill_ratio: Decimal, rate: Decimal
) -> None:
    policy = _policy(participation=rate, max_participation=min(D(1), rate * 2))
    market, filled, open_quantity = D(0), D(0), D(0)
    for volume in volumes:
        market += D(volume) / 10
        child = policy.next_child(market_volume=market, filled=filled, open_quantity=open_quantity)
        if child is not None:
            open_quantity += child.quantity
        assert filled + open_quantity <= policy.ceiling(market)
        assert filled + open_quantity <= policy.quantity
        done = (open_quantity * fill_ratio // policy.lot) * policy.lot
        filled, open_quantity = filled + done, open_quantity - done


# -- parameters ----------------------------------------------------------------------


def _check(**overrides: object) -> ParamProblem | None:
    params: dict[str, object] = {"quantity": D(10), "participation": D("0.1")}
    params.update(overrides)
    return check_pov(**params)  # type: ignore[arg-type]


def test_good_parameters_pass() -> None:
    assert _check() is None
    assert (
        _check(
            participation=D(1),
            min_participation=D("0.5"),
            max_participation=D(1),
            min_child_quantity=D(1),
            limit_price=D("10.5"),
            duration=30,
            interval=1,
        )
        is None
    )


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"participation": D(0)}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": D("-0.1")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": D("1.01")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": 0.1}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"participation": None}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"min_participation": D("0.2")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"max_participation": D("0.05")}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"max_participation": D(2)}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"min_child_quantity": D(11)}, "INVALID_PARAMETER"),
        ({"min_child_quantity": D(0)}, "INVALID_PARAMETER"),
        ({"duration": -1}, "INVALID_DURATION"),
        ({"interval": 0}, "INVALID_DURATION"),
    ],
)
def test_bad_parameters_are_problems_with_a_code(overrides: dict[str, object], code: str) -> None:
    problem = _check(**overrides)
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert problem.reason


def test_the_public_params_deny_with_a_code_and_a_reason() -> None:
    assert PovParams(participation=D("0.1")).problems(D(10)) is None
    reason = PovParams(participation=D("1.5")).problems(D(10))
    assert reason == (
        "PARTICIPATION_OUT_OF_RANGE: PovParams.participation=1.5: must be within (0, 1]"
    )
    assert PovParams(participation=D("0.1"), duration=-3).problems(D(1)) == (
        "INVALID_DURATION: PovParams.duration=-3.0: must be a number of seconds > 0"
    )
    with pytest.raises(ValueError, match=r"PovParams\.interval='1': must be a number"):
        PovParams(participation=D("0.1"), interval="1")  # type: ignore[arg-type]
