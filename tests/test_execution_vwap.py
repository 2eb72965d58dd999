"""VWAP: the volume profile, the schedule it gives, participation bounds, and the
parameter checks that deny instead of raising."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradenode.actors import ParentView, TradeSubscription
from tradenode.execution import (
    Decision,
    VolumeProfile,
    VwapAlgorithm,
    VwapPolicy,
    register_algorithm,
)
from tradenode.messages import DenialCode, MarketTrade, SubmitOrder, VwapParams, child_order_id

# The parameter checks behind AlgoParams.problems(), tested one by one.
from tradenode.messages._algos import ParamProblem, check_vwap
from tradenode.supervision import EventRecorder, SupervisionEventKind

from ._execution_helpers import (
    ParentCanceled,
    ParentDenied,
    ParentFilled,
    ParentState,
    advance,
    children,
    parent,
    parent_events,
    submit_parent,
    wait_parent_event,
)
from ._node_helpers import running_node

D = Decimal
SECOND = 1_000_000_000


def _profile(*weights: int | str) -> VolumeProfile:
    parsed = VolumeProfile.parse([D(str(w)) for w in weights])
    assert isinstance(parsed, VolumeProfile)
    return parsed


def _policy(
    profile: VolumeProfile,
    *,
    quantity: str = "10",
    lot: str = "0.01",
    duration_s: int = 100,
    **bounds: Decimal,
) -> VwapPolicy:
    return VwapPolicy(
        quantity=D(quantity),
        start_ns=1_000 * SECOND,
        duration_ns=duration_s * SECOND,
        profile=profile,
        lot=D(lot),
        **bounds,
    )


# -- the profile -------------------------------------------------------------------


def test_cumulative_profile_is_piecewise_linear_over_buckets() -> None:
    profile = _profile(1, 2, 1)  # 25 %, 50 %, 25 %
    assert profile.shares == (D("0.25"), D("0.5"), D("0.25"))
    assert profile.cumulative(D(0)) == 0
    assert profile.cumulative(D(1) / 3) == D("0.25")
    assert profile.cumulative(D("0.5")) == D("0.5")
    assert profile.cumulative(D(2) / 3) == D("0.75")
    assert profile.cumulative(D(1)) == 1
    assert profile.cumulative(D(2)) == 1


@pytest.mark.parametrize(
    ("weights", "code"),
    [
        ([], "EMPTY_PROFILE"),
        ([D(0), D(0)], "EMPTY_PROFILE"),
        ([D(1), D(-1)], "NEGATIVE_PROFILE"),
        ([D(1), 0.5], "INVALID_PROFILE"),
        ([D(1), D("NaN")], "INVALID_PROFILE"),
        ("1,2,3", "INVALID_PROFILE"),
    ],
)
def test_a_bad_profile_is_a_problem_not_an_exception(weights: object, code: str) -> None:
    problem = VolumeProfile.parse(weights)  # type: ignore[arg-type]
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert "profile" in problem.reason


def test_a_profile_from_observed_trades_bins_volume_by_bucket() -> None:
    start = 50 * SECOND
    trades = [
        (start + 1, D(3)),
        (start + 9 * SECOND, D(1)),  # bucket 0
        (start + 10 * SECOND, D(4)),  # bucket 1
        (start + 25 * SECOND, D(2)),  # bucket 2
        (start - 1, D(100)),  # before the window: ignored
        (start + 30 * SECOND, D(100)),  # after it: ignored
    ]
    profile = VolumeProfile.from_trades(trades, start_ns=start, bucket_ns=10 * SECOND, buckets=3)
    assert profile == VolumeProfile((D(4), D(4), D(2)))
    nothing = VolumeProfile.from_trades([], start_ns=start, bucket_ns=SECOND, buckets=3)
    assert isinstance(nothing, ParamProblem) and nothing.code == "EMPTY_PROFILE"


# -- the schedule ------------------------------------------------------------------


def test_target_follows_the_profile_in_whole_lots() -> None:
    policy = _policy(_profile(1, 2, 1), quantity="10", duration_s=90)
    start = policy.start_ns
    assert policy.target_filled(start) == 0
    assert policy.target_filled(start + 15 * SECOND) == D("1.25")  # half of bucket 0
    assert policy.target_filled(start + 30 * SECOND) == D("2.50")
    assert policy.target_filled(start + 45 * SECOND) == D("5.00")
    # 10 x (0.75 + 0.25 / 30) = 7.5833...: floored to the lot, never rounded up
    assert policy.target_filled(start + 61 * SECOND) == D("7.58")
    assert policy.target_filled(start + 90 * SECOND) == D(10)
    assert policy.target_filled(start + 900 * SECOND) == D(10)


def test_next_child_is_the_shortfall_net_of_open_children() -> None:
    policy = _policy(_profile(1, 1), quantity="10", duration_s=100)
    halfway = policy.start_ns + 50 * SECOND
    assert policy.next_quantity(halfway, filled=D(0), open_quantity=D(0)) == D(5)
    assert policy.next_quantity(halfway, filled=D(2), open_quantity=D(1)) == D(2)
    assert policy.next_quantity(halfway, filled=D(5), open_quantity=D(0)) == 0
    assert policy.next_quantity(halfway, filled=D(4), open_quantity=D(3)) == 0  # ahead
    end = policy.start_ns + 100 * SECOND
    assert policy.next_quantity(end, filled=D(7), open_quantity=D(2)) == D(1)
    assert policy.next_quantity(end, filled=D(10), open_quantity=D(0)) == 0


def test_max_participation_caps_the_child_at_the_buckets_market_volume() -> None:
    policy = _policy(_profile(1, 1), quantity="10", max_participation=D("0.1"))
    halfway = policy.start_ns + 50 * SECOND  # the schedule wants 5
    # the bucket traded 20 so far; we filled 1 in it and have 0.5 open: cap 2 - 1.5
    child = policy.next_quantity(
        halfway,
        filled=D(1),
        open_quantity=D("0.5"),
        bucket_volume=D(20),
        bucket_filled=D(1),
    )
    assert child == D("0.50")


def test_min_participation_raises_the_child_when_the_market_runs_ahead() -> None:
    policy = _policy(_profile(1, 1), quantity="10", min_participation=D("0.2"))
    early = policy.start_ns + 10 * SECOND  # the schedule wants 1
    child = policy.next_quantity(
        early, filled=D(0), open_quantity=D(0), bucket_volume=D(30), bucket_filled=D(0)
    )
    assert child == D(6)
    # and never beyond what is left
    child = policy.next_quantity(
        early, filled=D(8), open_quantity=D(1), bucket_volume=D(300), bucket_filled=D(0)
    )
    assert child == D(1)


def test_tolerance_measures_the_deviation_from_the_profile() -> None:
    policy = _policy(_profile(1, 1), quantity="10", tolerance=D("0.05"))
    halfway = policy.start_ns + 50 * SECOND
    assert policy.deviation(halfway, D(4)) == D("-0.1")
    assert not policy.within_tolerance(halfway, D(4))
    assert policy.within_tolerance(halfway, D("4.5"))
    assert policy.within_tolerance(halfway, D("5.5"))


@given(
    weights=st.lists(st.integers(0, 50), min_size=1, max_size=12).filter(lambda w: sum(w) > 0),
    steps=st.lists(st.integers(0, 130), min_size=1, max_size=40),
    fill_ratio=st.sampled_from([D(1), D("0.5"), D(0)]),
)
def test_never_more_than_the_quantity_whatever_fills(
    weights: list[int], steps: list[int], fill_ratio: Decimal
) -> None:
    """Children sized by the policy, filled in part or not at all, never take the
    parent past its quantity, and the schedule never decreases."""
    policy = _policy(_profile(*weights), quantity="3.37", duration_s=120)
    filled, open_quantity, previous = D(0), D(0), D(0)
    for offset in sorted(steps):
        now = policy.start_ns + offset * SECOND
        assert policy.target_filled(now) >= previous
        previous = policy.target_filled(now)
        child = policy.next_quantity(now, filled=filled, open_quantity=open_quantity)
        assert child >= 0
        done = (child * fill_ratio // policy.lot) * policy.lot
        filled += done
        open_quantity += child - done
        assert filled + open_quantity <= policy.quantity


# -- parameters ----------------------------------------------------------------------


def _check(**overrides: object) -> ParamProblem | None:
    params: dict[str, object] = {
        "quantity": D(10),
        "duration": 60,
        "profile": [D(1), D(2)],
    }
    params.update(overrides)
    return check_vwap(**params)  # type: ignore[arg-type]


def test_good_parameters_pass() -> None:
    assert _check() is None
    assert _check(interval=60, min_participation=D("0.1"), max_participation=D("0.1")) is None


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"duration": -5}, "INVALID_DURATION"),
        ({"duration": 0}, "INVALID_DURATION"),
        ({"duration": float("inf")}, "INVALID_DURATION"),
        ({"interval": 120}, "INVALID_DURATION"),
        ({"profile": []}, "EMPTY_PROFILE"),
        ({"profile": [D(-1)]}, "NEGATIVE_PROFILE"),
        ({"min_participation": D(0)}, "PARTICIPATION_OUT_OF_RANGE"),
        ({"max_participation": D("1.5")}, "PARTICIPATION_OUT_OF_RANGE"),
        (
            {"min_participation": D("0.3"), "max_participation": D("0.2")},
            "PARTICIPATION_OUT_OF_RANGE",
        ),
        ({"limit_price": D(-1)}, "INVALID_PARAMETER"),
        ({"limit_price": 1.5}, "INVALID_PARAMETER"),
    ],
)
def test_bad_parameters_are_problems_with_a_code(overrides: dict[str, object], code: str) -> None:
    problem = _check(**overrides)
    assert isinstance(problem, ParamProblem)
    assert problem.code == code
    assert problem.reason


def test_the_public_params_deny_with_a_code_and_a_reason() -> None:
    params = VwapParams(duration=60, profile=(D(1), D(3)), limit_price=D("10.5"))
    assert params.problems(D(10)) is None
    assert params.worst_price == D("10.5")
    assert VwapParams(duration=-60, profile=(D(1),)).problems(D(1)) == (
        "INVALID_DURATION: VwapParams.duration=-60.0: must be a number of seconds > 0"
    )
    assert VwapParams(duration=60, profile=()).problems(D(1)) == (
        "EMPTY_PROFILE: VwapParams.profile=[]: needs at least one bucket"
    )
    with pytest.raises(ValueError, match=r"VwapParams\.profile\[1\]=0\.5: must be a decimal"):
        VwapParams(duration=60, profile=(D(1), 0.5))  # type: ignore[arg-type]


# -- on a running node -------------------------------------------------------------------


def test_a_vwap_follows_its_profile_within_tolerance() -> None:
    """Profile 10/30/40/20 % over four 25 s buckets, a look every 5 s, market
    children: at every look the parent is on the profile (within the tolerance,
    in fact within a lot), each bucket ends at its cumulative share, and the
    target is filled exactly, never more."""
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        params = VwapParams(
            duration=100.0, profile=(D(1), D(3), D(4), D(2)), interval=5.0, tolerance=D("0.02")
        )
        pid = submit_parent(h, D("10.0000"), params)
        start = parent(h, pid).accepted_ns
        policy = VwapPolicy(
            quantity=D("10.0000"),
            start_ns=start,
            duration_ns=100 * SECOND,
            profile=VolumeProfile(params.profile),
            lot=D("0.0001"),
        )
        for look in range(1, 21):
            advance(h, 5.0)
            view = parent(h, pid)
            now = h.clock.time_ns()
            assert view.filled == policy.target_filled(now), look
            assert abs(view.filled - policy.target_filled(now)) <= params.tolerance * view.target
            assert view.filled + view.open_quantity <= view.target
            if look % 5 == 0:
                expected = {5: "1", 10: "4", 15: "8", 20: "10"}[look]
                assert view.filled == D(expected), look
        wait_parent_event(h, pid, ParentFilled)
        sent = children(h, pid)
        assert len(sent) == 20
        assert [c.created_ns - start for c in sent] == [k * 5 * SECOND for k in range(1, 21)]
        assert sum(c.filled_quantity for c in sent) == D(10)
        assert h.position("BTCUSDT") == D(10)
        advance(h, 30.0)
        assert len(parent(h, pid).child_ids) == 20
        assert h.position("BTCUSDT") == D(10)


def test_a_vwap_stays_under_its_maximum_participation_per_bucket() -> None:
    """With the cap binding (a target far above 10 % of what the tape trades), each
    bucket's fills stay within max_participation of the market's volume in it (the
    tape's own prints, not ours), and the window ends short, cancelled with a reason."""
    with running_node() as h:
        address, seen = h.strategy("s1")
        entry = h.node.directory.venue("paper")
        assert entry is not None
        entry.broker.tell(TradeSubscription(address, ("BTCUSDT",)))
        h.sync()
        params = VwapParams(
            duration=20.0, profile=(D(1), D(1)), interval=1.0, max_participation=D("0.1")
        )
        pid = submit_parent(h, D("50.0000"), params)
        start = parent(h, pid).accepted_ns
        for _ in range(25):
            advance(h, 1.0)
        canceled = wait_parent_event(h, pid, ParentCanceled)
        assert "VWAP window over" in canceled.reason
        assert canceled.state is ParentState.EXPIRED
        prints = [m for m in seen.items if isinstance(m, MarketTrade)]
        market = [D(0), D(0)]
        for trade in prints:
            bucket = (trade.ts_ns - start) // (10 * SECOND)
            if trade.aggressor is None and 0 <= bucket < 2:
                market[bucket] += trade.quantity
        ours = [D(0), D(0)]
        for child in children(h, pid):
            ours[(child.created_ns - start) // (10 * SECOND)] += child.filled_quantity
        assert all(volume > 0 for volume in market)
        for bucket in (0, 1):
            assert D(0) < ours[bucket] <= D("0.1") * market[bucket], (bucket, ours, market)
        assert parent(h, pid).filled == sum(ours) < D(50)
        assert h.position("BTCUSDT") == sum(ours)


def test_an_invalid_vwap_is_denied_with_a_code_and_a_reason() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        for params, code in (
            (VwapParams(duration=-10.0, profile=(D(1),)), "INVALID_DURATION"),
            (VwapParams(duration=10.0, profile=()), "EMPTY_PROFILE"),
            (VwapParams(duration=10.0, profile=(D(1), D(-2))), "NEGATIVE_PROFILE"),
        ):
            pid = submit_parent(h, D("1"), params)
            denied = wait_parent_event(h, pid, ParentDenied)
            assert denied.code is DenialCode.INVALID_ORDER
            assert denied.reason.startswith(f"{code}: VwapParams.")
            assert parent_events(h, pid) == [denied]
        assert h.open_orders() == ()


# -- restarts ------------------------------------------------------------------------------


class _FailsAfterChild4(VwapAlgorithm):
    """Raises right after telling the router (where children go) its fourth child, once."""

    failed: ClassVar[list[int]] = []

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        decision = super().decide(view, now_ns)
        if not self.failed and any(c.client_order_id.endswith("-4") for c in decision.children):
            self.failed.append(self.context.generation)
            (child,) = decision.children
            order = view.order
            assert order.venue is not None
            self.env.directory.router().tell(
                SubmitOrder(
                    client_order_id=child.client_order_id,
                    strategy_id=order.strategy_id,
                    venue=order.venue,
                    symbol=order.symbol,
                    side=order.side,
                    order_type=child.order_type,
                    quantity=child.quantity,
                    parent_id=view.parent_id,
                )
            )
            raise RuntimeError("algorithm bug right after sending child 4")
        return decision


@pytest.fixture
def failing_vwap() -> Iterator[list[int]]:
    _FailsAfterChild4.failed.clear()
    register_algorithm(VwapParams, _FailsAfterChild4)
    try:
        yield _FailsAfterChild4.failed
    finally:
        register_algorithm(VwapParams, VwapAlgorithm)


def test_a_vwap_that_raises_is_restarted_and_resumes_on_its_profile(
    failing_vwap: list[int],
) -> None:
    with running_node() as h:
        events = EventRecorder()
        h.node.system.events.subscribe(events)
        h.strategy("s1")
        h.sync()
        params = VwapParams(duration=100.0, profile=(D(1), D(3), D(4), D(2)), interval=5.0)
        pid = submit_parent(h, D("10.0000"), params)
        algo = h.node.directory.path("execution", "algos", pid)
        for _ in range(4):
            advance(h, 5.0)
        assert failing_vwap == [1]
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.FAILED)
        advance(h, 0.5)  # the restart backoff, on the node's clock
        events.wait_for(lambda e: e.path == algo and e.kind is SupervisionEventKind.RESTARTED)
        h.sync()
        view = parent(h, pid)
        # Child 4 was found, never sent again; the new incarnation caught up the half
        # second it was down with child 5.
        assert view.child_ids == tuple(child_order_id(pid, k) for k in range(1, 6))
        assert view.filled == D("0.82")  # 10 x 10 % x 20.5/25
        start = view.accepted_ns
        policy = VwapPolicy(
            quantity=D("10.0000"),
            start_ns=start,
            duration_ns=100 * SECOND,
            profile=VolumeProfile(params.profile),
            lot=D("0.0001"),
        )
        advance(h, 4.5)
        for _ in range(16):
            advance(h, 5.0)
            assert parent(h, pid).filled == policy.target_filled(h.clock.time_ns())
        wait_parent_event(h, pid, ParentFilled)
        ids = parent(h, pid).child_ids
        assert ids == tuple(child_order_id(pid, k) for k in range(1, len(ids) + 1))
        assert h.position("BTCUSDT") == D(10)
        denied = [e for e in h.events().items if type(e).__name__ == "OrderDenied"]
        assert denied == []
