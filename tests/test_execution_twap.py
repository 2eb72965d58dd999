"""TWAP on a running node (paper venue, manual clock), and its schedule as a pure function."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import OmsState

# The view an algorithm decides from, built from a bare OmsState: the policy alone.
from tradenode.actors._oms_parents import parent_view
from tradenode.execution import MAX_FINAL_CHILDREN, TwapSchedule, twap_decide, twap_schedule
from tradenode.messages import (
    CancelRejected,
    DenialCode,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
    SubmitParentOrder,
    TwapParams,
    child_order_id,
)

from ._execution_helpers import (
    NS,
    ParentFilled,
    ParentState,
    advance,
    children,
    parent,
    submit_parent,
    wait_parent_event,
    working,
)
from ._node_helpers import running_node

D = Decimal


def test_a_twap_of_ten_slices_completes_on_schedule_and_never_over_fills() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        start = h.clock.time_ns()
        pid = submit_parent(h, D("10"), TwapParams(duration=100.0, slices=10))
        for k in range(1, 11):
            view = parent(h, pid)
            # Slice k is out at its time, and nothing of slice k+1 before its time.
            assert view.child_ids == tuple(child_order_id(pid, n) for n in range(1, k + 1))
            assert working(view) <= view.target
            if k < 10:
                advance(h, 9.999)
                assert len(parent(h, pid).child_ids) == k
                advance(h, 0.001)
        wait_parent_event(h, pid, ParentFilled)
        sent = children(h, pid)
        assert [c.created_ns - start for c in sent] == [k * 10 * NS for k in range(10)]
        assert [c.quantity for c in sent] == [D(1)] * 10
        assert all(c.status is OrderStatus.FILLED for c in sent)
        assert all(c.order.order_type is OrderType.MARKET for c in sent)
        view = parent(h, pid)
        assert view.state is ParentState.FILLED
        assert view.filled == D(10) == view.target
        assert view.avg_price == sum(
            (c.filled_quantity * (c.avg_fill_price or 0) for c in sent), D(0)
        ) / D(10)
        # The venue's own account (the embedded paper venue) holds exactly the target.
        assert h.position("BTCUSDT") == D(10)
        advance(h, 60.0)
        assert len(parent(h, pid).child_ids) == 10
        assert h.position("BTCUSDT") == D(10)


def test_a_limit_twap_catches_up_on_an_earlier_slice_it_cancels() -> None:
    """A buy limit far below the market rests: at each slice the resting child of the
    slice before is cancelled, and what it frees joins the next slice."""
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("4"), TwapParams(duration=40.0, slices=4, limit_price=D("1000")))
        assert [c.quantity for c in children(h, pid)] == [D(1)]
        advance(h, 10.0)
        first, second = children(h, pid)
        # Slice 2 sends its own share: slice 1's child counted as working until its
        # cancel is confirmed, which it is by now.
        assert first.status is OrderStatus.CANCELED and second.quantity == D(1)
        advance(h, 10.0)
        third = children(h, pid)[2]
        # Slice 3's share plus slice 1's remainder (slice 2's child still counts as
        # working: its cancel leaves with this slice and is confirmed after it).
        assert third.quantity == D(2)
        assert third.order.price == D("1000") and third.order.order_type is OrderType.LIMIT
        advance(h, 10.0)
        view = parent(h, pid)
        sent = children(h, pid)
        assert [c.quantity for c in sent] == [D(1), D(1), D(2), D(2)]
        assert [c.status for c in sent[:3]] == [OrderStatus.CANCELED] * 3
        assert working(view) <= view.target
        assert view.open_quantity == D(2) and view.state is ParentState.WORKING


def test_without_catch_up_each_slice_sends_only_its_share() -> None:
    with running_node() as h:
        h.strategy("s1")
        h.sync()
        params = TwapParams(duration=30.0, slices=3, limit_price=D("1000"), catch_up=False)
        pid = submit_parent(h, D("3"), params)
        advance(h, 10.0)
        advance(h, 10.0)
        sent = children(h, pid)
        assert [c.quantity for c in sent] == [D(1)] * 3
        assert all(c.status is OrderStatus.ACCEPTED for c in sent)  # nothing cancelled


@pytest.mark.parametrize("parent_id", ["p-a", "p-b"])
def test_the_schedule_is_seeded_and_keeps_jitter_within_its_bounds(parent_id: str) -> None:
    params = TwapParams(duration=100.0, slices=10, size_jitter=0.5, time_jitter=0.4)
    start = 1_000 * NS
    schedule = twap_schedule(params, D("100"), start, f"7:{parent_id}", D(1))
    again = twap_schedule(params, D("100"), start, f"7:{parent_id}", D(1))
    assert schedule == again  # a restarted node computes the same schedule
    other = twap_schedule(params, D("100"), start, "7:another", D(1))
    assert other != schedule
    interval = 10 * NS
    assert schedule.times_ns[0] == start
    for k, t in enumerate(schedule.times_ns):
        assert abs(t - (start + k * interval)) <= 0.4 * interval
    assert list(schedule.times_ns) == sorted(schedule.times_ns)
    assert schedule.cumulative[-1] == D(100)
    shares = [schedule.share(k) for k in range(1, 11)]
    assert sum(shares) == D(100) and all(s >= 0 for s in shares)
    assert all(s % 1 == 0 for s in schedule.cumulative)  # whole lots
    # Each share within the jitter (one lot of rounding either way).
    assert all(D(10) * D("0.5") - 2 <= s <= D(10) * D("1.5") + 2 for s in shares)
    assert len(set(shares)) > 1


def test_a_schedule_without_jitter_is_even() -> None:
    schedule = twap_schedule(TwapParams(duration=60.0, slices=4), D("1.00"), 0, "x", D("0.01"))
    assert schedule == TwapSchedule(
        times_ns=(0, 15 * NS, 30 * NS, 45 * NS),
        cumulative=(D("0.25"), D("0.50"), D("0.75"), D("1.00")),
    )


# The policy against a venue that fills, rests, refuses and cancels at random ---------

_OUTCOMES = st.sampled_from(["fill", "part", "rest", "reject", "deny"])


@settings(max_examples=60, deadline=None)
@given(
    target=st.integers(1, 40),
    slices=st.integers(1, 8),
    limit=st.booleans(),
    catch_up=st.booleans(),
    jitter=st.floats(0.0, 0.9),
    outcomes=st.lists(_OUTCOMES, min_size=1, max_size=60),
    cancels_confirmed=st.lists(st.booleans(), min_size=1, max_size=60),
    seed=st.integers(0, 1000),
)
def test_the_twap_policy_never_over_fills_nor_sends_a_child_twice(
    *,
    target: int,
    slices: int,
    limit: bool,
    catch_up: bool,
    jitter: float,
    outcomes: list[str],
    cancels_confirmed: list[bool],
    seed: int,
) -> None:
    """Drive ``twap_decide`` through the OMS's own state, waking at every slice time
    and after every report, with a venue that answers each child at random: whatever
    happens, what is filled plus what works never exceeds the target, and no child id
    is ever sent twice."""
    params = TwapParams(
        duration=float(slices * 10),
        slices=slices,
        limit_price=D("100") if limit else None,
        size_jitter=jitter,
        catch_up=catch_up,
    )
    state = OmsState()
    order = SubmitParentOrder(
        parent_id="p",
        strategy_id="s",
        venue="v",
        symbol="X",
        side=Side.BUY,
        quantity=D(target),
        algorithm=params,
    )
    record = state.register_parent(order, 0)
    schedule = twap_schedule(params, D(target), 0, f"{seed}:p", D(1))
    answers = iter(outcomes * 50)
    confirm = iter(cancels_confirmed * 200)
    sent: set[str] = set()
    execution = woken = 0
    finished = False
    now = 0
    for _ in range(400):
        view = parent_view(state, record)
        if view.state is not ParentState.WORKING:
            break
        decision = twap_decide(view, now, schedule, D(1))
        for cid in decision.cancels:
            # The venue confirms the cancel, or refuses it (the child rests on).
            state.mark_pending_cancel(cid, now)
            if next(confirm):
                state.apply(OrderCanceled(client_order_id=cid, venue="v"), now)
            else:
                state.apply(
                    CancelRejected(client_order_id=cid, venue="v", code="x", reason="busy"), now
                )
        for child in decision.children:
            assert child.client_order_id not in sent
            assert child.quantity <= parent_view(state, record).available
            sent.add(child.client_order_id)
            state.register(
                SubmitOrder(
                    client_order_id=child.client_order_id,
                    strategy_id="s",
                    venue="v",
                    symbol="X",
                    side=Side.BUY,
                    order_type=child.order_type,
                    quantity=child.quantity,
                    price=child.price,
                    parent_id="p",
                ),
                now,
            )
            answer = next(answers)
            if answer == "deny":
                state.mark_denied(child.client_order_id, DenialCode.MAX_POSITION, "no", now)
                continue
            state.mark_submitted(child.client_order_id, now)
            if answer == "reject":
                state.apply(
                    OrderRejected(
                        client_order_id=child.client_order_id, venue="v", code="x", reason="no"
                    ),
                    now,
                )
            elif answer in ("fill", "part"):
                quantity = child.quantity if answer == "fill" else max(D(1), child.quantity // 2)
                execution += 1
                state.apply(
                    OrderFilled(
                        client_order_id=child.client_order_id,
                        venue="v",
                        venue_order_id=f"o{execution}",
                        execution_id=f"x{execution}",
                        symbol="X",
                        side=Side.BUY,
                        last_quantity=quantity,
                        last_price=D("100"),
                    ),
                    now,
                )
            view = parent_view(state, record)
            assert view.filled + view.open_quantity <= view.target
        if decision.finish is not None:
            finished = True
            break
        if not decision.children:
            if decision.wake_at_ns is None:
                break  # waits for a report no venue of this test will send
            now = max(now, decision.wake_at_ns)
            woken += 1
    view = parent_view(state, record)
    assert view.filled <= view.target
    assert view.filled + view.open_quantity <= view.target
    assert len(sent) <= slices + MAX_FINAL_CHILDREN
    assert woken >= min(slices - 1, 1) or view.state is not ParentState.WORKING
    if view.state is ParentState.WORKING and not view.open_children:
        # Nothing working and the target not reached: the schedule is over, it finishes.
        assert finished and view.filled < view.target
