"""The pure OMS core: lifecycle table, fills, reconciliation, replaces, positions, memory."""

from __future__ import annotations

import dataclasses
import decimal
import itertools
import logging
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import (
    ApplyResult,
    DriftKind,
    DuplicateOrderError,
    IgnoreReason,
    LogicalOrderView,
    OmsState,
    PositionBook,
    PositionFill,
    ReplaceRefusedError,
    TrackedOrderView,
)

# The client-id allocator and its bounds are tested here with the state.
from tradenode.actors._client_ids import MAX_COUNTER, MAX_PREFIX_LENGTH, ClientOrderIds

# The order lifecycle's transition table is what is under test.
from tradenode.actors._order_lifecycle import ORDER_TRANSITIONS, is_legal_transition
from tradenode.messages import (
    CancelRejected,
    DenialCode,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    PositionSnapshot,
    Quote,
    Side,
    SubmitOrder,
)

S = OrderStatus
D = Decimal
VENUE = "BIN"
SYMBOL = "BTCUSDT"

_execution_numbers = itertools.count()


def order(
    coid: str = "o-1",
    *,
    side: Side = Side.BUY,
    quantity: str = "10",
    price: str | None = "100",
    strategy: str = "s1",
    venue: str = VENUE,
    symbol: str = SYMBOL,
) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id=strategy,
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=D(quantity),
        price=None if price is None else D(price),
    )


def fill(
    coid: str = "o-1",
    quantity: str = "10",
    price: str = "100",
    *,
    execution_id: str | None = None,
    side: Side = Side.BUY,
    commission: str = "0",
    venue: str = VENUE,
    symbol: str = SYMBOL,
) -> OrderFilled:
    return OrderFilled(
        client_order_id=coid,
        venue=venue,
        venue_order_id=f"v-{coid}",
        execution_id=execution_id or f"x{next(_execution_numbers)}",
        symbol=symbol,
        side=side,
        last_quantity=D(quantity),
        last_price=D(price),
        commission=D(commission),
    )


def accepted(coid: str = "o-1") -> OrderAccepted:
    return OrderAccepted(client_order_id=coid, venue=VENUE, venue_order_id=f"v-{coid}")


def rejected(coid: str = "o-1") -> OrderRejected:
    return OrderRejected(client_order_id=coid, venue=VENUE, code="-2010", reason="no funds")


def canceled(coid: str = "o-1") -> OrderCanceled:
    return OrderCanceled(client_order_id=coid, venue=VENUE)


def expired(coid: str = "o-1") -> OrderExpired:
    return OrderExpired(client_order_id=coid, venue=VENUE)


def cancel_rejected(coid: str = "o-1") -> CancelRejected:
    return CancelRejected(client_order_id=coid, venue=VENUE, code="-2011", reason="unknown order")


def modify_rejected(coid: str = "o-1") -> ModifyRejected:
    return ModifyRejected(client_order_id=coid, venue=VENUE, code="-2021", reason="would cross")


def modified(coid: str = "o-1", quantity: str = "10", price: str | None = None) -> OrderModified:
    return OrderModified(
        client_order_id=coid,
        venue=VENUE,
        venue_order_id=f"v-{coid}",
        quantity=D(quantity),
        price=None if price is None else D(price),
    )


def status_report(
    coid: str = "o-1",
    status: OrderStatus = S.ACCEPTED,
    *,
    quantity: str = "10",
    filled: str = "0",
    side: Side = Side.BUY,
) -> OrderStatusReport:
    return OrderStatusReport(
        client_order_id=coid,
        venue=VENUE,
        symbol=SYMBOL,
        side=side,
        status=status,
        quantity=D(quantity),
        filled_quantity=D(filled),
    )


def applied(result: ApplyResult) -> ApplyResult:
    assert result.applied, (result.reason, result.detail)
    return result


def known(state: OmsState, coid: str) -> TrackedOrderView:
    view = state.get(coid)
    assert view is not None, coid
    return view


def known_logical(state: OmsState, coid: str) -> LogicalOrderView:
    view = state.logical_order(coid)
    assert view is not None, coid
    return view


def drift_quantity(result: ApplyResult, kind: DriftKind) -> Decimal | None:
    found = result.drift(kind)
    assert found is not None, (kind, result.drifts)
    return found.quantity


def drive(state: OmsState, target: OrderStatus, coid: str = "o-1") -> str:
    """Brings a fresh 10-lot limit order to ``target`` by the ordinary road."""
    state.register(order(coid), 1)
    if target is S.INITIALIZED:
        return coid
    if target is S.DENIED:
        applied(state.mark_denied(coid, DenialCode.MAX_POSITION, "too big", 2))
        return coid
    applied(state.mark_submitted(coid, 2))
    if target is S.SUBMITTED:
        return coid
    if target is S.REJECTED:
        applied(state.apply(rejected(coid), 3))
        return coid
    applied(state.apply(accepted(coid), 3))
    steps: dict[OrderStatus, Any] = {
        S.ACCEPTED: None,
        S.PARTIALLY_FILLED: lambda: state.apply(fill(coid, "4"), 4),
        S.FILLED: lambda: state.apply(fill(coid, "10"), 4),
        S.PENDING_CANCEL: lambda: state.mark_pending_cancel(coid, 4),
        S.PENDING_REPLACE: lambda: state.mark_pending_replace(coid, 4),
        S.CANCELED: lambda: state.apply(canceled(coid), 4),
        S.EXPIRED: lambda: state.apply(expired(coid), 4),
    }
    step = steps[target]
    if step is not None:
        applied(step())
    assert known(state, coid).status is target
    return coid


@pytest.fixture
def state() -> OmsState:
    return OmsState()


# The transition table ---------------------------------------------------------


def test_the_table_names_every_status_and_terminal_states_lead_nowhere() -> None:
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    for status, targets in ORDER_TRANSITIONS.items():
        assert status not in targets
        if status.is_terminal:
            assert targets == frozenset()
    assert ORDER_TRANSITIONS[S.INITIALIZED] == {S.DENIED, S.SUBMITTED}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.SUBMITTED, S.PARTIALLY_FILLED),  # a fill overtook the accept
        (S.SUBMITTED, S.FILLED),
        (S.SUBMITTED, S.CANCELED),  # IOC canceled before any accept arrived
        (S.SUBMITTED, S.EXPIRED),
        (S.PENDING_CANCEL, S.FILLED),  # filled while the cancel was in flight
        (S.PENDING_REPLACE, S.FILLED),
        (S.PENDING_CANCEL, S.ACCEPTED),  # cancel refused: back to the open status
        (S.PENDING_CANCEL, S.PARTIALLY_FILLED),
        (S.PENDING_CANCEL, S.SUBMITTED),
        (S.PENDING_REPLACE, S.PARTIALLY_FILLED),
        (S.PENDING_REPLACE, S.PENDING_CANCEL),  # cancel-all on top of a replace
        (S.ACCEPTED, S.EXPIRED),
    ],
)
def test_out_of_order_reality_is_legal(current: OrderStatus, target: OrderStatus) -> None:
    assert is_legal_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.CANCELED, S.FILLED),
        (S.FILLED, S.CANCELED),
        (S.ACCEPTED, S.REJECTED),
        (S.PARTIALLY_FILLED, S.ACCEPTED),
        (S.INITIALIZED, S.ACCEPTED),
        (S.PENDING_CANCEL, S.PENDING_REPLACE),
        (S.DENIED, S.SUBMITTED),
    ],
)
def test_impossible_moves_are_not_in_the_table(current: OrderStatus, target: OrderStatus) -> None:
    assert not is_legal_transition(current, target)


_FIXED_TARGET_STIMULI: dict[str, tuple[OrderStatus, Any]] = {
    "mark_denied": (S.DENIED, lambda s, c: s.mark_denied(c, DenialCode.RATE_LIMIT, "slow", 9)),
    "mark_submitted": (S.SUBMITTED, lambda s, c: s.mark_submitted(c, 9)),
    "mark_pending_cancel": (S.PENDING_CANCEL, lambda s, c: s.mark_pending_cancel(c, 9)),
    "mark_pending_replace": (S.PENDING_REPLACE, lambda s, c: s.mark_pending_replace(c, 9)),
    "canceled": (S.CANCELED, lambda s, c: s.apply(canceled(c), 9)),
    "expired": (S.EXPIRED, lambda s, c: s.apply(expired(c), 9)),
}


@pytest.mark.parametrize("name", sorted(_FIXED_TARGET_STIMULI))
@pytest.mark.parametrize("current", list(OrderStatus), ids=lambda status: status.value)
def test_every_illegal_move_is_ignored_and_every_legal_one_applied(
    name: str, current: OrderStatus
) -> None:
    target, stimulus = _FIXED_TARGET_STIMULI[name]
    state = OmsState()
    coid = drive(state, current)
    before = state.get(coid)
    result = stimulus(state, coid)
    if target is current:
        assert result.reason is IgnoreReason.DUPLICATE_REPORT
    elif is_legal_transition(current, target):
        assert result.applied
        assert result.status is target
        return
    else:
        assert result.reason is IgnoreReason.ILLEGAL_TRANSITION
    assert result.ignored
    assert result.status is current
    assert state.get(coid) == before


_ALL_STIMULI: dict[str, Any] = {
    **{name: stimulus for name, (_, stimulus) in _FIXED_TARGET_STIMULI.items()},
    "accepted": lambda s, c: s.apply(accepted(c), 9),
    "rejected": lambda s, c: s.apply(rejected(c), 9),
    "partial_fill": lambda s, c: s.apply(fill(c, "1"), 9),
    "full_fill": lambda s, c: s.apply(fill(c, "10"), 9),
    "modified": lambda s, c: s.apply(modified(c, "12", "101"), 9),
    "cancel_rejected": lambda s, c: s.apply(cancel_rejected(c), 9),
    "modify_rejected": lambda s, c: s.apply(modify_rejected(c), 9),
    **{
        f"report_{status.value}": (
            lambda s, c, status=status: s.apply(
                status_report(c, status, filled="10" if status is S.FILLED else "0", quantity="10"),
                9,
            )
        )
        for status in OrderStatus
    },
}


@pytest.mark.parametrize("name", sorted(_ALL_STIMULI))
@pytest.mark.parametrize("current", list(OrderStatus), ids=lambda status: status.value)
def test_no_report_or_command_ever_makes_a_move_outside_the_table(
    name: str, current: OrderStatus
) -> None:
    state = OmsState()
    coid = drive(state, current)
    result = _ALL_STIMULI[name](state, coid)
    after = state.get(coid)
    assert after is not None
    assert result.status is after.status
    assert after.status is current or is_legal_transition(current, after.status)
    if result.ignored:
        assert after.status is current


def test_an_illegal_report_is_logged_on_the_oms_logger(
    state: OmsState, caplog: pytest.LogCaptureFixture
) -> None:
    coid = drive(state, S.FILLED)
    result = state.apply(canceled(coid), 10)
    assert result.reason is IgnoreReason.ILLEGAL_TRANSITION
    assert "illegal_transition" in result.flags
    [record] = [r for r in caplog.records if r.name == "tradenode.oms"]
    assert record.levelno == logging.WARNING
    assert "illegal_transition" in record.getMessage()
    assert coid in record.getMessage()


def test_a_venue_rejection_after_acceptance_is_illegal(state: OmsState) -> None:
    coid = drive(state, S.PENDING_CANCEL)  # accepted before the cancel went out
    result = state.apply(rejected(coid), 10)
    assert result.reason is IgnoreReason.ILLEGAL_TRANSITION
    assert known(state, coid).status is S.PENDING_CANCEL


# Lifecycles ---------------------------------------------------------------------


def test_market_order_lifecycle(state: OmsState) -> None:
    view = state.register(order("m-1", price=None, quantity="2"), 100)
    assert view.status is S.INITIALIZED
    assert state.open_count() == 0  # not sent yet

    assert applied(state.mark_submitted("m-1", 1_000)).status is S.SUBMITTED
    assert state.open_count(VENUE) == 1
    result = applied(state.apply(accepted("m-1"), 1_500))
    assert (result.previous_status, result.status) == (S.SUBMITTED, S.ACCEPTED)
    assert result.order is not None
    assert result.order.venue_order_id == "v-m-1"

    result = applied(state.apply(fill("m-1", "2", "30000", commission="0.06"), 3_000))
    assert result.status is S.FILLED
    assert result.fill is not None
    net, strategy = result.position_updates
    assert (net.strategy_id, net.quantity, net.avg_price) == (None, D(2), D(30000))
    assert (strategy.strategy_id, strategy.quantity) == ("s1", D(2))

    assert state.open_count() == 0
    assert state.counts().hot == 0
    done = state.get("m-1")
    assert done is not None
    assert (done.filled_quantity, done.avg_fill_price, done.leaves_quantity) == (
        D(2),
        D(30000),
        D(0),
    )
    assert (done.submitted_ns, done.accepted_ns, done.first_fill_ns) == (1_000, 1_500, 3_000)
    assert done.commission == D("0.06")


def test_limit_order_with_partial_fills(state: OmsState) -> None:
    coid = drive(state, S.ACCEPTED)
    first = applied(state.apply(fill(coid, "3", "99"), 10))
    assert first.status is S.PARTIALLY_FILLED
    assert state.open_orders()[0].leaves_quantity == D(7)
    second = applied(state.apply(fill(coid, "5", "100"), 11))
    assert (second.previous_status, second.status) == (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED)
    assert not second.status_changed
    third = applied(state.apply(fill(coid, "2", "101"), 12))
    assert third.status is S.FILLED
    view = state.get(coid)
    assert view is not None
    # (3*99 + 5*100 + 2*101) / 10
    assert view.avg_fill_price == D("99.9")
    assert view.fill_count == 3
    assert [f.last_quantity for f in state.fills(coid)] == [D(3), D(5), D(2)]


def test_cancel_of_a_partly_filled_order(state: OmsState) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)
    pending = applied(state.mark_pending_cancel(coid, 10))
    assert pending.status is S.PENDING_CANCEL
    assert pending.order is not None
    assert pending.order.resume_status is S.PARTIALLY_FILLED
    assert state.open_count() == 1  # a pending cancel can still fill
    done = applied(state.apply(canceled(coid), 11))
    assert done.status is S.CANCELED
    assert done.order is not None
    assert (done.order.filled_quantity, done.order.leaves_quantity) == (D(4), D(0))
    assert state.open_count() == 0


@pytest.mark.parametrize("open_status", [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED])
def test_a_refused_cancel_returns_to_the_previous_open_status(
    state: OmsState, open_status: OrderStatus
) -> None:
    coid = drive(state, open_status)
    applied(state.mark_pending_cancel(coid, 10))
    result = applied(state.apply(cancel_rejected(coid), 11))
    assert (result.previous_status, result.status) == (S.PENDING_CANCEL, open_status)
    assert "-2011" in result.detail


def test_fills_during_a_pending_cancel(state: OmsState) -> None:
    coid = drive(state, S.PENDING_CANCEL)
    partial = applied(state.apply(fill(coid, "4"), 10))
    assert partial.status is S.PENDING_CANCEL
    assert partial.order is not None
    assert partial.order.resume_status is S.PARTIALLY_FILLED
    assert applied(state.apply(cancel_rejected(coid), 11)).status is S.PARTIALLY_FILLED

    applied(state.mark_pending_cancel(coid, 12))
    assert applied(state.apply(fill(coid, "6"), 13)).status is S.FILLED
    late_refusal = state.apply(cancel_rejected(coid), 14)
    assert late_refusal.reason is IgnoreReason.STALE_REPORT
    assert late_refusal.status is S.FILLED


def test_an_accept_overtaken_by_a_cancel_request_updates_what_to_resume(
    state: OmsState,
) -> None:
    coid = drive(state, S.SUBMITTED)
    applied(state.mark_pending_cancel(coid, 3))
    late = applied(state.apply(accepted(coid), 4))
    assert late.status is S.PENDING_CANCEL
    assert applied(state.apply(cancel_rejected(coid), 5)).status is S.ACCEPTED


def test_denied_order_keeps_code_and_reason(state: OmsState) -> None:
    coid = drive(state, S.DENIED)
    view = state.get(coid)
    assert view is not None
    assert (view.status, view.denial_code, view.reason) == (
        S.DENIED,
        DenialCode.MAX_POSITION,
        "too big",
    )
    assert state.counts().hot == 0


def test_venue_rejection_keeps_the_venue_code(state: OmsState) -> None:
    coid = drive(state, S.REJECTED)
    view = state.get(coid)
    assert view is not None
    assert (view.rejection_code, view.reason) == ("-2010", "no funds")
    assert state.apply(rejected(coid), 9).reason is IgnoreReason.DUPLICATE_REPORT


def test_reused_client_order_id_is_a_typed_error(state: OmsState) -> None:
    drive(state, S.FILLED)  # already in the completed set
    with pytest.raises(DuplicateOrderError, match="o-1"):
        state.register(order("o-1"), 5)


def test_reports_for_unknown_orders_or_other_venues_are_ignored(state: OmsState) -> None:
    unknown = state.apply(fill("nobody"), 1)
    assert (unknown.reason, unknown.status, unknown.order) == (
        IgnoreReason.UNKNOWN_ORDER,
        None,
        None,
    )
    assert state.mark_submitted("nobody", 1).reason is IgnoreReason.UNKNOWN_ORDER
    coid = drive(state, S.ACCEPTED)
    elsewhere = state.apply(fill(coid, venue="OTHER"), 5)
    assert elsewhere.reason is IgnoreReason.MISMATCH
    wrong_side = state.apply(fill(coid, side=Side.SELL), 5)
    assert wrong_side.reason is IgnoreReason.MISMATCH
    assert state.position(VENUE, SYMBOL).quantity == 0


def test_a_message_that_is_no_execution_report_is_ignored(state: OmsState) -> None:
    quote = Quote(venue=VENUE, symbol=SYMBOL, bid=D(1), ask=D(2))
    assert state.apply(quote, 1).reason is IgnoreReason.UNSUPPORTED_REPORT


# Fills: idempotent, out of order, overfilled -------------------------------------


def test_the_same_execution_twice_changes_nothing_the_second_time(state: OmsState) -> None:
    coid = drive(state, S.ACCEPTED)
    report = fill(coid, "4", execution_id="E1")
    applied(state.apply(report, 10))
    before = (state.get(coid), state.positions(), state.metrics())
    again = state.apply(report, 11)
    assert again.reason is IgnoreReason.DUPLICATE_EXECUTION
    assert again.position_updates == ()
    assert (state.get(coid), state.positions(), state.metrics()) == before
    assert len(state.fills(coid)) == 1


def test_executions_are_keyed_by_venue_and_id(state: OmsState) -> None:
    drive(state, S.ACCEPTED, "a-1")
    state.register(order("b-1", venue="OTHER"), 1)
    applied(state.mark_submitted("b-1", 2))
    applied(state.apply(fill("a-1", "1", execution_id="E1"), 3))
    applied(state.apply(fill("b-1", "1", execution_id="E1", venue="OTHER"), 3))
    assert [f.venue for f in state.fills()] == [VENUE, "OTHER"]


def test_a_fill_that_overtakes_the_accept_implies_it(state: OmsState) -> None:
    """A user stream can tell a fill before the REST answer says "accepted": the fill
    implies the acceptance, published first, and the late accept is a duplicate."""
    coid = drive(state, S.SUBMITTED)
    early = applied(state.apply(fill(coid, "4"), 10))
    assert (early.previous_status, early.status) == (S.SUBMITTED, S.PARTIALLY_FILLED)
    assert early.inferred_accept is not None
    assert early.inferred_accept.client_order_id == coid
    assert early.order is not None and early.order.accepted_ns == 10
    late = state.apply(accepted(coid), 11)
    assert (late.reason, late.status) == (IgnoreReason.DUPLICATE_REPORT, S.PARTIALLY_FILLED)
    # Once accepted, a fill implies nothing more.
    assert applied(state.apply(fill(coid, "2", execution_id="e-2"), 12)).inferred_accept is None


def test_a_fill_after_the_accept_implies_nothing(state: OmsState) -> None:
    coid = drive(state, S.ACCEPTED)
    assert applied(state.apply(fill(coid, "4"), 10)).inferred_accept is None


def test_a_fill_that_crossed_the_cancel_still_counts(state: OmsState) -> None:
    coid = drive(state, S.ACCEPTED)
    applied(state.mark_pending_cancel(coid, 10))
    applied(state.apply(canceled(coid), 11))
    crossed = applied(state.apply(fill(coid, "3", "100"), 12))
    assert crossed.status is S.CANCELED
    assert crossed.order is not None
    assert crossed.order.filled_quantity == D(3)
    assert crossed.position_updates[0].quantity == D(3)
    assert crossed.drifts == ()


def test_an_overfill_is_applied_and_flagged_never_raised(state: OmsState) -> None:
    coid = drive(state, S.ACCEPTED)
    applied(state.apply(fill(coid, "6"), 10))
    result = applied(state.apply(fill(coid, "6"), 11))
    assert result.status is S.FILLED
    assert "overfill" in result.flags
    overfill = result.drift(DriftKind.OVERFILL)
    assert overfill is not None
    assert overfill.quantity == D(2)
    assert state.position(VENUE, SYMBOL).quantity == D(12)
    assert known(state, coid).overfilled_quantity == D(2)
    after_done = applied(state.apply(fill(coid, "1"), 12))
    assert drift_quantity(after_done, DriftKind.OVERFILL) == D(3)


def test_a_fill_for_an_order_the_venue_never_had_is_a_drift(state: OmsState) -> None:
    coid = drive(state, S.REJECTED)
    result = applied(state.apply(fill(coid, "1"), 10))
    assert result.status is S.REJECTED
    assert "unexpected_fill" in result.flags
    assert state.position(VENUE, SYMBOL).quantity == D(1)


# Reconciliation by status report ------------------------------------------------


def test_status_report_with_more_filled_asks_for_the_missing_fills(state: OmsState) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)  # 4 of 10 known
    result = applied(state.apply(status_report(coid, S.FILLED, filled="10"), 10))
    assert result.status is S.FILLED
    assert "missing_fills" in result.flags
    assert result.missing_fill_quantity == D(6)
    assert len(state.fills(coid)) == 1  # no fill invented
    assert state.position(VENUE, SYMBOL).quantity == D(4)

    fetched = applied(state.apply(fill(coid, "6"), 11))
    assert (fetched.status, fetched.drifts) == (S.FILLED, ())
    assert state.position(VENUE, SYMBOL).quantity == D(10)


@pytest.mark.parametrize("venue_status", [S.CANCELED, S.EXPIRED])
def test_status_report_ends_an_open_order(state: OmsState, venue_status: OrderStatus) -> None:
    coid = drive(state, S.PENDING_CANCEL)
    result = applied(state.apply(status_report(coid, venue_status), 10))
    assert (result.status, result.drifts) == (venue_status, ())


def test_status_report_acknowledges_a_submitted_order(state: OmsState) -> None:
    coid = drive(state, S.SUBMITTED)
    result = applied(state.apply(status_report(coid, S.ACCEPTED), 10))
    assert result.status is S.ACCEPTED
    rejected_late = state.apply(status_report(coid, S.REJECTED), 11)
    assert rejected_late.status is S.ACCEPTED
    assert "status_mismatch" in rejected_late.flags


def test_status_report_disagreeing_with_a_terminal_order_is_a_drift(state: OmsState) -> None:
    coid = drive(state, S.FILLED)
    result = applied(state.apply(status_report(coid, S.CANCELED, filled="10"), 10))
    assert result.status is S.FILLED
    assert result.flags == {"status_mismatch"}
    alive = applied(state.apply(status_report(coid, S.ACCEPTED, filled="10"), 11))
    assert alive.flags == {"status_mismatch"}


def test_status_report_showing_less_filled_and_another_quantity(state: OmsState) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)
    result = applied(state.apply(status_report(coid, S.PARTIALLY_FILLED, quantity="8"), 10))
    assert result.flags == {"unconfirmed_fills", "quantity_mismatch"}
    assert drift_quantity(result, DriftKind.UNCONFIRMED_FILLS) == D(4)
    assert known(state, coid).quantity == D(8)


def test_agreeing_status_report_changes_nothing(state: OmsState) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)
    before = state.get(coid)
    assert before is not None
    result = applied(state.apply(status_report(coid, S.PARTIALLY_FILLED, filled="4"), 10))
    assert (result.status_changed, result.drifts) == (False, ())
    assert state.get(coid) == dataclasses.replace(before, last_update_ns=10)


# Modify: native amend and cancel/replace ------------------------------------------


def test_native_amend_updates_quantity_and_price(state: OmsState) -> None:
    coid = drive(state, S.ACCEPTED)
    applied(state.apply(fill(coid, "3"), 10))
    applied(state.mark_pending_replace(coid, 11))
    result = applied(state.apply(modified(coid, "8", "101"), 12))
    assert (result.previous_status, result.status) == (S.PENDING_REPLACE, S.PARTIALLY_FILLED)
    view = result.order
    assert view is not None
    assert (view.quantity, view.order.price, view.leaves_quantity) == (D(8), D(101), D(5))

    down_to_filled = applied(state.apply(modified(coid, "3"), 13))
    assert down_to_filled.status is S.FILLED


def test_an_amend_never_takes_quantity_below_filled(state: OmsState) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)  # 4 filled
    result = applied(state.apply(modified(coid, "2"), 10))
    assert result.status is S.FILLED
    assert result.order is not None
    assert result.order.quantity == D(4)
    assert drift_quantity(result, DriftKind.AMEND_BELOW_FILLED) == D(2)


def test_a_refused_amend_returns_to_the_previous_status(state: OmsState) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)
    applied(state.mark_pending_replace(coid, 10))
    result = applied(state.apply(modify_rejected(coid), 11))
    assert result.status is S.PARTIALLY_FILLED
    assert known(state, coid).quantity == D(10)


def test_cancel_replace_is_one_logical_order(state: OmsState) -> None:
    drive(state, S.ACCEPTED, "a")
    applied(state.apply(fill("a", "4"), 10))
    applied(state.mark_pending_replace("a", 11))
    replacement = state.link_replacement("a", order("b", quantity="10", price="99"), 11)
    assert (replacement.status, replacement.quantity) == (S.INITIALIZED, D(6))
    assert replacement.order.price == D(99)
    assert (state.replaced_by("a"), state.replacement_of("b")) == ("b", "a")
    assert (state.replacement_of("a"), state.replaced_by("b")) == (None, None)

    applied(state.mark_submitted("b", 12))
    assert applied(state.apply(canceled("a"), 13)).status is S.CANCELED
    assert state.counts().hot == 2  # the logical order is still going
    applied(state.apply(accepted("b"), 14))
    logical = state.logical_order("a")
    assert logical is not None
    assert logical == state.logical_order("b")
    assert logical.client_order_ids == ("a", "b")
    assert (logical.current_client_order_id, logical.status) == ("b", S.ACCEPTED)
    assert (logical.requested_quantity, logical.filled_quantity) == (D(10), D(4))
    assert logical.leaves_quantity == D(6)
    assert logical.live_client_order_ids == ("b",)

    done = applied(state.apply(fill("b", "6", "99"), 15))
    assert done.status is S.FILLED
    assert done.drifts == ()
    assert known_logical(state, "b").filled_quantity == D(10)
    assert state.counts().hot == 0
    assert state.position(VENUE, SYMBOL).quantity == D(10)


@pytest.mark.parametrize("requested_total", ["4", "3"])
def test_a_replace_never_resurrects_filled_quantity(state: OmsState, requested_total: str) -> None:
    coid = drive(state, S.PARTIALLY_FILLED)  # 4 filled
    with pytest.raises(ReplaceRefusedError, match="already filled"):
        state.link_replacement(coid, order("b", quantity=requested_total), 10)
    assert state.get("b") is None
    assert state.replaced_by(coid) is None


def test_a_chain_of_replaces_subtracts_everything_filled(state: OmsState) -> None:
    drive(state, S.PARTIALLY_FILLED, "a")  # 4 filled
    state.link_replacement("a", order("b", quantity="10"), 10)
    applied(state.apply(canceled("a"), 11))
    applied(state.mark_submitted("b", 12))
    applied(state.apply(fill("b", "2"), 13))
    third = state.link_replacement("b", order("c", quantity="9"), 14)
    assert (third.quantity, third.predecessors_filled_quantity) == (D(3), D(6))
    logical = state.logical_order("c")
    assert logical is not None
    assert logical.client_order_ids == ("a", "b", "c")
    assert (logical.requested_quantity, logical.filled_quantity) == (D(9), D(6))


@pytest.mark.parametrize(
    ("current", "replacement", "message"),
    [
        (S.FILLED, order("b"), "cannot be replaced"),
        (S.ACCEPTED, order("b", symbol="ETHUSDT"), "symbol"),
        (S.ACCEPTED, order("b", side=Side.SELL), "side"),
        (S.ACCEPTED, order("b", strategy="s2"), "strategy_id"),
    ],
)
def test_replaces_that_must_not_be_sent_are_refused(
    state: OmsState, current: OrderStatus, replacement: SubmitOrder, message: str
) -> None:
    coid = drive(state, current)
    with pytest.raises(ReplaceRefusedError, match=message):
        state.link_replacement(coid, replacement, 10)


def test_an_order_is_replaced_once_unless_the_replacement_failed(state: OmsState) -> None:
    coid = drive(state, S.PENDING_REPLACE)
    state.link_replacement(coid, order("b"), 10)
    with pytest.raises(ReplaceRefusedError, match="already replaced by b"):
        state.link_replacement(coid, order("c"), 11)
    applied(state.mark_submitted("b", 12))
    refused = applied(state.apply(rejected("b"), 13))
    assert [view.client_order_id for view in refused.linked_orders] == [coid]
    assert known(state, coid).status is S.ACCEPTED
    assert state.link_replacement(coid, order("c"), 14).replacement_of == coid
    assert known_logical(state, coid).client_order_ids == (coid, "c")
    assert state.get("b") is not None


def test_a_refused_replace_fails_the_replacement_that_never_existed(state: OmsState) -> None:
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="7"), 10)
    applied(state.mark_submitted("b", 11))
    result = applied(state.apply(modify_rejected("a"), 12))
    assert result.status is S.ACCEPTED
    [replacement] = result.linked_orders
    assert (replacement.client_order_id, replacement.status) == ("b", S.REJECTED)
    assert state.open_count() == 1


def test_a_refused_replace_may_name_the_replacement(state: OmsState) -> None:
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="7"), 10)
    result = applied(state.apply(modify_rejected("b"), 12))
    assert result.status is S.DENIED  # refused before we marked it submitted
    [original] = result.linked_orders
    assert (original.client_order_id, original.status) == ("a", S.ACCEPTED)


def test_two_live_orders_for_one_logical_order_is_a_drift(state: OmsState) -> None:
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b"), 10)
    applied(state.mark_submitted("b", 11))
    assert applied(state.apply(accepted("b"), 12)).drifts == ()  # "a" is still being replaced
    result = applied(state.apply(modify_rejected("a"), 13))  # ...but it survived
    assert "duplicate_live_orders" in result.flags
    logical = state.logical_order("a")
    assert logical is not None
    assert logical.has_duplicate_live_orders
    assert logical.live_client_order_ids == ("a", "b")


def test_a_fill_crossing_the_replace_can_overfill_the_logical_order(state: OmsState) -> None:
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="10"), 10)
    applied(state.apply(fill("a", "3"), 11))  # filled before the venue pulled it
    applied(state.apply(canceled("a"), 12))
    applied(state.mark_submitted("b", 13))
    result = applied(state.apply(fill("b", "10"), 14))
    logical_overfill = result.drift(DriftKind.LOGICAL_OVERFILL)
    assert logical_overfill is not None
    assert logical_overfill.quantity == D(3)
    assert known_logical(state, "b").overfilled_quantity == D(3)


def test_an_original_that_fills_during_the_replace_makes_the_replacement_redundant(
    state: OmsState,
) -> None:
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="10"), 10)
    applied(state.mark_submitted("b", 11))
    result = applied(state.apply(fill("a", "10"), 12))
    assert result.status is S.FILLED
    assert result.flags == {"redundant_replacement"}
    refused = applied(state.apply(modify_rejected("a"), 13))  # "order already filled"
    assert refused.status is S.FILLED
    [replacement] = refused.linked_orders
    assert (replacement.client_order_id, replacement.status) == ("b", S.REJECTED)
    assert state.counts().hot == 0


def test_a_late_fill_of_the_original_leaves_its_replacement_that_much_less_to_do(
    state: OmsState,
) -> None:
    """The original's last fill reaches the OMS after the link: a venue that places the
    replacement only once the original is gone sizes it from its own count (7, not 10),
    fills it and says FILLED at that size; the logical order is 10 of 10, nothing more."""
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="10"), 10)
    applied(state.mark_submitted("b", 11))
    late = applied(state.apply(fill("a", "3"), 12))
    assert late.drifts == ()
    replacement = known(state, "b")
    assert (replacement.quantity, replacement.predecessors_filled_quantity) == (D(7), D(3))
    applied(state.apply(canceled("a"), 13))
    result = applied(state.apply(fill("b", "7"), 14))
    assert (result.status, result.drifts) == (S.FILLED, ())
    closing = applied(state.apply(status_report("b", S.FILLED, quantity="7", filled="7"), 15))
    assert closing.drifts == ()
    logical = known_logical(state, "b")
    assert (logical.requested_quantity, logical.filled_quantity) == (D(10), D(10))
    assert logical.overfilled_quantity == 0


def test_a_late_fill_told_after_the_replacement_finished_is_not_an_overfill(
    state: OmsState,
) -> None:
    """The same race, heard the other way round: the replacement's fills and the venue's
    FILLED at 7 first, the original's last fill after them."""
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="10"), 10)
    applied(state.mark_submitted("b", 11))
    applied(state.apply(fill("b", "7"), 12))
    closing = applied(state.apply(status_report("b", S.FILLED, quantity="7", filled="7"), 13))
    assert closing.status is S.FILLED
    assert closing.drift(DriftKind.QUANTITY_MISMATCH) is not None  # not explained yet
    late = applied(state.apply(fill("a", "3"), 14))
    assert late.drift(DriftKind.LOGICAL_OVERFILL) is None
    applied(state.apply(canceled("a"), 15))
    logical = known_logical(state, "b")
    assert (logical.requested_quantity, logical.filled_quantity) == (D(10), D(10))
    assert logical.overfilled_quantity == 0
    assert state.counts().hot == 0


def test_a_replacement_sent_at_the_linked_size_that_fills_whole_is_one_logical_overfill(
    state: OmsState,
) -> None:
    """A venue that sent the replacement at the size linked (10) and fills all of it after
    the original's late 3: the logical order is overfilled by 3, reported once."""
    drive(state, S.PENDING_REPLACE, "a")
    state.link_replacement("a", order("b", quantity="10"), 10)
    applied(state.mark_submitted("b", 11))
    applied(state.apply(fill("a", "3"), 12))
    applied(state.apply(canceled("a"), 13))
    result = applied(state.apply(fill("b", "10"), 14))
    assert [drift.kind for drift in result.drifts] == [DriftKind.LOGICAL_OVERFILL]
    assert drift_quantity(result, DriftKind.LOGICAL_OVERFILL) == D(3)


# Positions ------------------------------------------------------------------------


def _trade(
    state: OmsState,
    coid: str,
    side: Side,
    quantity: str,
    price: str,
    *,
    commission: str = "0",
    strategy: str = "s1",
) -> tuple[PositionSnapshot, ...]:
    state.register(order(coid, side=side, quantity=quantity, price=None, strategy=strategy), 1)
    applied(state.mark_submitted(coid, 2))
    result = applied(state.apply(fill(coid, quantity, price, side=side, commission=commission), 3))
    return result.position_updates


def test_position_arithmetic_by_hand(state: OmsState) -> None:
    opened, _ = _trade(state, "p-1", Side.BUY, "10", "100", commission="0.1")
    assert (opened.quantity, opened.avg_price, opened.realized_pnl) == (D(10), D(100), D(0))

    added, _ = _trade(state, "p-2", Side.BUY, "10", "110", commission="0.1")
    assert (added.quantity, added.avg_price) == (D(20), D(105))

    # (120 - 105) * 5 realized; the average does not move.
    reduced, _ = _trade(state, "p-3", Side.SELL, "5", "120", commission="0.1")
    assert (reduced.quantity, reduced.avg_price, reduced.realized_pnl) == (D(15), D(105), D(75))

    # Closes 15 at (90 - 105) = -225, opens 10 short at 90.
    flipped, _ = _trade(state, "p-4", Side.SELL, "25", "90", commission="0.1")
    assert (flipped.quantity, flipped.avg_price, flipped.realized_pnl) == (
        D(-10),
        D(90),
        D(-150),
    )

    state.mark(VENUE, SYMBOL, D(80))
    marked = state.position(VENUE, SYMBOL)
    assert marked.unrealized_pnl == D(100)  # short 10 from 90, now 80

    # A short closed at 85: (85 - 90) * 10 * -1 = +50.
    closed, _ = _trade(state, "p-5", Side.BUY, "10", "85", commission="-0.02")
    assert (closed.quantity, closed.avg_price, closed.realized_pnl) == (D(0), D(0), D(-100))
    assert closed.unrealized_pnl == D(0)
    assert state.commission(VENUE, SYMBOL) == D("0.38")
    assert state.commissions(VENUE, SYMBOL) == {None: D("0.38")}
    assert state.metrics()["total_commission"] == D("0.38")


def test_a_long_average_that_does_not_terminate_is_rounded_only_in_the_snapshot() -> None:
    book = PositionBook()
    for price in ("100", "100", "101"):
        book.apply_fill(_position_fill(Side.BUY, "1", price))
    snapshot = book.snapshot(VENUE, SYMBOL)
    assert snapshot.avg_price == D("100.3333333333333333333333333333333")
    _, _ = book.apply_fill(_position_fill(Side.SELL, "3", "101"))
    # Exactly (101 - 301/3) * 3 = 2, not 2 minus rounding dust.
    assert book.snapshot(VENUE, SYMBOL).realized_pnl == D(2)


def _position_fill(side: Side, quantity: str, price: str, strategy: str = "s1") -> PositionFill:
    return PositionFill(
        venue=VENUE,
        symbol=SYMBOL,
        strategy_id=strategy,
        side=side,
        quantity=D(quantity),
        price=D(price),
    )


def test_positions_are_attributed_per_strategy(state: OmsState) -> None:
    _trade(state, "s1-1", Side.BUY, "10", "100", strategy="s1")
    _trade(state, "s2-1", Side.SELL, "4", "110", strategy="s2")
    net = state.position(VENUE, SYMBOL)
    assert (net.quantity, net.avg_price, net.realized_pnl) == (D(6), D(100), D(40))
    by_strategy = {p.strategy_id: p for p in state.positions(by_strategy=True)}
    assert set(by_strategy) == {"s1", "s2"}
    assert (by_strategy["s1"].quantity, by_strategy["s1"].realized_pnl) == (D(10), D(0))
    assert (by_strategy["s2"].quantity, by_strategy["s2"].avg_price) == (D(-4), D(110))
    assert sum(p.quantity for p in by_strategy.values()) == net.quantity
    assert state.positions() == (net,)
    assert state.position(VENUE, "NEVER").quantity == 0


def test_a_mark_must_be_a_positive_decimal(state: OmsState) -> None:
    with pytest.raises(ValueError, match="mark"):
        state.mark(VENUE, SYMBOL, D(0))


# Bounded memory ---------------------------------------------------------------------


def test_a_hundred_thousand_completed_orders_keep_memory_bounded() -> None:
    capacity = 1_000
    state = OmsState(completed_capacity=capacity)
    ids = ClientOrderIds("mem")
    coids = [ids.next() for _ in range(100_000)]
    for number, coid in enumerate(coids):
        state.register(order(coid, price=None, quantity="1"), number)
        state.mark_submitted(coid, number)
        if number % 10 == 0:
            state.apply(fill(coid, "1", execution_id=f"E{number}"), number)
        else:
            state.apply(canceled(coid), number)
        if number % 10_000 == 0:
            assert state.counts().retained <= capacity
    counts = state.counts()
    assert (counts.hot, counts.completed, counts.open) == (0, capacity, 0)
    assert counts.executions == capacity // 10
    assert state.metrics()["total_orders"] == 100_000

    recent, forgotten = coids[99_990], coids[0]
    assert state.get(recent) is not None
    late_duplicate = state.apply(fill(recent, "1", execution_id="E99990"), 10**6)
    assert late_duplicate.reason is IgnoreReason.DUPLICATE_EXECUTION
    assert state.get(forgotten) is None
    assert state.apply(fill(forgotten, "1", execution_id="E0"), 10**6).reason is (
        IgnoreReason.UNKNOWN_ORDER
    )


def test_completed_orders_still_dedup_late_executions() -> None:
    state = OmsState(completed_capacity=2)
    for coid in ("a", "b"):
        drive(state, S.ACCEPTED, coid)
        applied(state.apply(fill(coid, "10", execution_id=f"E-{coid}"), 5))
    assert state.counts().hot == 0
    assert state.apply(fill("a", "10", execution_id="E-a"), 6).reason is (
        IgnoreReason.DUPLICATE_EXECUTION
    )
    drive(state, S.CANCELED, "c")  # pushes "b" (least recently used) out, not "a"
    assert state.get("b") is None
    assert state.get("a") is not None
    assert state.apply(fill("b", "10", execution_id="E-b"), 7).reason is (
        IgnoreReason.UNKNOWN_ORDER
    )
    assert state.counts().executions == 1


def test_no_completed_capacity_forgets_at_once() -> None:
    state = OmsState(completed_capacity=0)
    state.register(order(), 1)
    applied(state.mark_submitted("o-1", 2))
    done = applied(state.apply(fill("o-1", "10"), 3))
    assert done.status is S.FILLED
    assert state.counts().retained == 0
    assert state.get("o-1") is None
    assert state.apply(fill("o-1", "10"), 4).reason is IgnoreReason.UNKNOWN_ORDER


def test_a_replaced_order_comes_back_to_the_hot_set(state: OmsState) -> None:
    coid = drive(state, S.CANCELED)
    assert state.counts().hot == 0
    state.link_replacement(coid, order("b"), 10)  # cancel first, then place: non-atomic replace
    assert state.counts().hot == 2


# Queries and metrics ------------------------------------------------------------------


def test_open_orders_and_counts_filter_by_venue_and_symbol(state: OmsState) -> None:
    drive(state, S.ACCEPTED, "a")
    state.register(order("b", venue="OTHER"), 1)
    applied(state.mark_submitted("b", 2))
    state.register(order("c", symbol="ETHUSDT"), 1)
    applied(state.mark_submitted("c", 2))
    state.register(order("d"), 1)  # never sent
    assert [v.client_order_id for v in state.open_orders()] == ["a", "b", "c"]
    assert [v.client_order_id for v in state.open_orders(venue=VENUE)] == ["a", "c"]
    assert [v.client_order_id for v in state.open_orders(symbol="ETHUSDT")] == ["c"]
    assert (state.open_count(), state.open_count(VENUE), state.open_count("OTHER")) == (3, 2, 1)
    assert state.open_count("NOWHERE") == 0
    assert state.counts().hot == 4


def test_fills_are_listed_in_the_order_they_were_applied(state: OmsState) -> None:
    drive(state, S.ACCEPTED, "a")
    drive(state, S.ACCEPTED, "b")
    for coid, execution_id in (("a", "1"), ("b", "2"), ("a", "3")):
        applied(state.apply(fill(coid, "1", execution_id=execution_id), 5))
    assert [f.execution_id for f in state.fills()] == ["1", "2", "3"]
    assert [f.execution_id for f in state.fills("a")] == ["1", "3"]
    assert state.fills("nobody") == ()


def test_metrics(state: OmsState) -> None:
    for number, (ack_ns, fill_ns) in enumerate(((100, 400), (300, None), (200, 900))):
        coid = f"m-{number}"
        state.register(order(coid, quantity="2"), 0)
        applied(state.mark_submitted(coid, 1_000))
        applied(state.apply(accepted(coid), 1_000 + ack_ns))
        if fill_ns is not None:
            applied(state.apply(fill(coid, "2", "50", commission="0.5"), 1_000 + fill_ns))
    state.register(order("never-sent"), 0)
    metrics = state.metrics()
    assert metrics["total_orders"] == 4
    assert metrics["submitted_orders"] == 3
    assert metrics["filled_orders"] == 2
    assert metrics["fill_rate"] == pytest.approx(2 / 3)
    assert metrics["avg_fill_latency_ns"] == 650
    assert metrics["total_filled_notional"] == D(200)
    assert metrics["total_commission"] == D("1.0")
    assert (metrics["ack_latency_p50_ns"], metrics["ack_latency_p99_ns"]) == (200, 300)
    assert (metrics["fill_latency_p50_ns"], metrics["fill_latency_p99_ns"]) == (400, 900)
    assert (metrics["open_orders"], metrics["retained_orders"]) == (1, 4)


def test_metrics_before_anything_happened(state: OmsState) -> None:
    metrics = state.metrics()
    assert metrics["fill_rate"] == 0.0
    assert metrics["avg_fill_latency_ns"] is None
    assert metrics["ack_latency_p99_ns"] is None


def test_latency_percentiles_cover_a_bounded_window() -> None:
    state = OmsState(latency_window=10)
    for number in range(100):
        coid = f"w-{number}"
        state.register(order(coid), 0)
        state.mark_submitted(coid, 0)
        state.apply(accepted(coid), number)
    assert state.metrics()["ack_latency_p50_ns"] == 94  # of 90..99


@pytest.mark.parametrize(
    "arguments",
    [{"completed_capacity": -1}, {"latency_window": 0}],
)
def test_state_limits_are_checked(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(arguments))):
        OmsState(**arguments)


# Client order ids ---------------------------------------------------------------------

_VENUE_SAFE = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def test_client_order_ids_are_venue_safe_unique_and_deterministic() -> None:
    ids = ClientOrderIds("tn.node-1", start=250)
    issued = [ids.next() for _ in range(5_000)]
    assert issued[:2] == ["tn.node-1-fa", "tn.node-1-fb"]
    assert len(set(issued)) == len(issued)
    assert all(_VENUE_SAFE.fullmatch(coid) for coid in issued)
    replay = ClientOrderIds("tn.node-1", start=250)
    assert [replay.next() for _ in range(5_000)] == issued
    assert all(ids.owns(coid) for coid in issued)
    assert not ids.owns("manual-order")
    assert not ids.owns("tn.node-1-0fa")


def test_the_longest_id_still_fits_36_characters() -> None:
    prefix = "p" * MAX_PREFIX_LENGTH
    ids = ClientOrderIds(prefix, start=MAX_COUNTER)
    last = ids.next()
    assert len(last) == 36
    assert _VENUE_SAFE.fullmatch(last)
    with pytest.raises(OverflowError):
        ids.next()


@pytest.mark.parametrize("prefix", ["", "p" * (MAX_PREFIX_LENGTH + 1), "has space", "ü"])
def test_prefixes_that_could_break_a_venue_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        ClientOrderIds(prefix)


def test_the_counter_can_be_journaled_and_restored_but_never_rewound() -> None:
    ids = ClientOrderIds("j")
    for _ in range(3):
        ids.next()
    assert ids.peek_counter() == 3
    resumed = ClientOrderIds("j")
    resumed.restore(ids.peek_counter())
    assert resumed.next() == "j-3"
    with pytest.raises(ValueError, match="repeat"):
        resumed.restore(2)
    with pytest.raises(ValueError, match="int"):
        ClientOrderIds("j", start=True)


# Property: fill reports in any order, any number of times --------------------------

_fill_specs = st.lists(
    st.tuples(
        st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
        st.decimals(min_value=D("0.01"), max_value=D(1000), places=2),
        st.decimals(min_value=D("-0.5"), max_value=D("0.5"), places=4),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=80, deadline=None)
@given(
    specs=_fill_specs,
    side=st.sampled_from(Side),
    prior=st.sampled_from(["flat", "same_side", "opposite_larger"]),
    order_share=st.sampled_from([D("1"), D("0.5"), D("2")]),
    data=st.data(),
)
def test_any_permutation_with_duplicates_gives_the_same_result(
    specs: list[tuple[Decimal, Decimal, Decimal]],
    side: Side,
    prior: str,
    order_share: Decimal,
    data: st.DataObject,
) -> None:
    total = sum((quantity for quantity, _, _ in specs), D(0))
    quantity = (total * order_share).quantize(D("0.001")) or D("0.001")
    reports = [
        OrderFilled(
            client_order_id="prop",
            venue=VENUE,
            venue_order_id="v-prop",
            execution_id=f"E{number}",
            symbol=SYMBOL,
            side=side,
            last_quantity=fill_quantity,
            last_price=price,
            commission=commission,
        )
        for number, (fill_quantity, price, commission) in enumerate(specs)
    ]
    shuffled = data.draw(st.permutations(reports), label="order")
    repeats = data.draw(st.lists(st.sampled_from(reports), max_size=4), label="duplicates")
    positions = data.draw(
        st.lists(st.integers(0, len(shuffled) + len(repeats)), min_size=len(repeats)),
        label="where",
    )
    delivered = list(shuffled)
    for report, at in zip(repeats, positions, strict=False):
        delivered.insert(min(at, len(delivered)), report)

    def run(sequence: list[OrderFilled]) -> tuple[Any, ...]:
        state = OmsState()
        if prior != "flat":
            prior_side = side if prior == "same_side" else side.opposite
            _trade(state, "prior", prior_side, str(total + 7), "321.5", strategy="s0")
        state.register(
            SubmitOrder(
                client_order_id="prop",
                strategy_id="s1",
                venue=VENUE,
                symbol=SYMBOL,
                side=side,
                order_type=OrderType.MARKET,
                quantity=quantity,
            ),
            1,
        )
        state.mark_submitted("prop", 2)
        outcomes = [state.apply(report, 3) for report in sequence]
        assert all(o.applied or o.reason is IgnoreReason.DUPLICATE_EXECUTION for o in outcomes)
        view = state.get("prop")
        assert view is not None
        net = state.position(VENUE, SYMBOL)
        mine = state.position(VENUE, SYMBOL, "s1")
        return (
            view.filled_quantity,
            view.status,
            view.avg_fill_price,
            view.commission,
            (net.quantity, net.avg_price, net.realized_pnl),
            (mine.quantity, mine.avg_price, mine.realized_pnl),
            state.commission(VENUE, SYMBOL),
        )

    expected = run(reports)
    assert run(delivered) == expected
    assert expected[0] == total
    notional = sum((q * p for q, p, _ in specs), D(0))
    vwap = decimal.Context(prec=34).divide(notional, total)
    assert expected[5] == (total * side.sign, vwap, D(0))
