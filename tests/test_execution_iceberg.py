"""Iceberg: one child showing at a time, never more than the display quantity,
refreshed on fill, seeded price offsets, and parameter checks that deny."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

# The Iceberg policy is internal: these tests pin its rules directly.
from tradenode.execution._iceberg import IcebergChild, IcebergPolicy
from tradenode.messages import IcebergParams, Side

# The parameter checks behind AlgoParams.problems(), tested one by one.
from tradenode.messages._algos import ParamProblem, check_iceberg

D = Decimal


def _policy(side: Side = Side.BUY, **overrides: object) -> IcebergPolicy:
    params: dict[str, object] = {
        "parent_id": "ice-1",
        "side": side,
        "quantity": D("2.5"),
        "display_quantity": D("0.7"),
        "limit_price": D("100.00"),
    }
    params.update(overrides)
    return IcebergPolicy(**params)  # type: ignore[arg-type]


def test_shows_the_display_quantity_then_refreshes_on_fill() -> None:
    policy = _policy()
    first = policy.next_child(filled=D(0), showing=D(0), refreshes=0)
    assert first == IcebergChild(refresh=0, quantity=D("0.7"), price=D("100.00"))
    # while anything shows (sent, or partly filled), nothing else goes out
    assert policy.next_child(filled=D(0), showing=D("0.7"), refreshes=1) is None
    assert policy.next_child(filled=D("0.3"), showing=D("0.4"), refreshes=1) is None
    second = policy.next_child(filled=D("0.7"), showing=D(0), refreshes=1)
    assert second == IcebergChild(refresh=1, quantity=D("0.7"), price=D("100.00"))
    # the last slice is only what is left
    last = policy.next_child(filled=D("2.1"), showing=D(0), refreshes=3)
    assert last is not None and last.quantity == D("0.4")
    assert policy.next_child(filled=D("2.5"), showing=D(0), refreshes=4) is None


def test_a_child_that_ended_unfilled_is_refreshed_with_the_rest() -> None:
    policy = _policy()
    # child 0 was cancelled by the venue after filling 0.2: 2.3 left, 0.7 shown again
    child = policy.next_child(filled=D("0.2"), showing=D(0), refreshes=1)
    assert child is not None and child.quantity == D("0.7")


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_price_offsets_are_passive_seeded_and_in_ticks(side: Side) -> None:
    policy = _policy(side, price_offset=D("0.05"), tick_size=D("0.01"))
    prices = [policy.price_for(refresh) for refresh in range(200)]
    for price in prices:
        distance = (policy.limit_price - price) * side.sign
        assert D(0) <= distance <= D("0.05")  # never worse than the limit
        assert price % D("0.01") == 0
    assert len(set(prices)) > 1  # it does vary
    again = _policy(side, price_offset=D("0.05"), tick_size=D("0.01"))
    assert [again.price_for(refresh) for refresh in range(200)] == prices
    other = _policy(side, parent_id="ice-2", price_offset=D("0.05"), tick_size=D("0.01"))
    assert [other.price_for(refresh) for refresh in range(200)] != prices


def test_without_an_offset_every_refresh_is_at_the_limit() -> None:
    policy = _policy()
    assert {policy.price_for(refresh) for refresh in range(20)} == {D("100.00")}


@given(
    display=st.integers(1, 40),
    total=st.integers(1, 200),
    fills=st.lists(st.integers(0, 100), min_size=1, max_size=80),
)
def test_never_shows_more_than_the_display_nor_overfills(
    display: int, total: int, fills: list[int]
) -> None:
    """Drive the policy with arbitrary partial fills (percent of what shows): what
    shows never exceeds the display quantity, fills never exceed the total."""
    lot = D("0.1")
    display_quantity = min(D(display) * lot, D(total) * lot)
    policy = _policy(quantity=D(total) * lot, display_quantity=display_quantity)
    filled, showing, refreshes = D(0), D(0), 0
    for percent in fills:
        child = policy.next_child(filled=filled, showing=showing, refreshes=refreshes)
        if child is not None:
            assert showing == 0
            showing, refreshes = child.quantity, refreshes + 1
        assert showing <= display_quantity
        done = min(showing, (showing * percent / 100 // lot) * lot)
        filled, showing = filled + done, showing - done
        assert filled + showing <= policy.quantity


# -- parameters ----------------------------------------------------------------------


def _check(**overrides: object) -> ParamProblem | None:
    params: dict[str, object] = {
        "quantity": D(10),
        "display_quantity": D(1),
        "limit_price": D("100.00"),
    }
    params.update(overrides)
    return check_iceberg(**params)  # type: ignore[arg-type]


def test_good_parameters_pass() -> None:
    assert _check() is None
    assert _check(display_quantity=D(10), price_offset=D("0.5"), lot=D("0.5")) is None


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"display_quantity": D(11)}, "DISPLAY_ABOVE_TOTAL"),
        ({"display_quantity": D(0)}, "INVALID_PARAMETER"),
        ({"display_quantity": D(-1)}, "INVALID_PARAMETER"),
        ({"display_quantity": 1.0}, "INVALID_PARAMETER"),
        ({"limit_price": None}, "INVALID_PARAMETER"),
        ({"price_offset": D(-1)}, "INVALID_PARAMETER"),
        ({"price_offset": D(100)}, "INVALID_PARAMETER"),
        ({"display_quantity": D("0.3"), "lot": D("0.5")}, "INVALID_PARAMETER"),
        ({"limit_price": D("100.005"), "tick_size": D("0.01")}, "INVALID_PARAMETER"),
    ],
)
def test_bad_parameters_are_problems_with_a_code(overrides: dict[str, object], code: str) -> None:
    problem = _check(**overrides)
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert problem.reason


def test_the_public_params_deny_with_a_code_and_a_reason() -> None:
    params = IcebergParams(display_quantity=D(5), limit_price=D("100.00"))
    assert params.problems(D(10)) is None
    assert params.problems(D(3)) == (
        "DISPLAY_ABOVE_TOTAL: IcebergParams.display_quantity=5 is above the parent's quantity 3"
    )
    assert params.worst_price == D("100.00")
    assert params.name == "ICEBERG"
    with pytest.raises(
        ValueError, match=r"IcebergParams\.display_quantity=1\.0: must be a decimal"
    ):
        IcebergParams(display_quantity=1.0, limit_price=D(1))  # type: ignore[arg-type]
