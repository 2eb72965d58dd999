"""The approval queue and its journal: a pending approval survives a restart until its
deadline; one whose deadline passed while the node was down is denied at start."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from tradenode import DecodeError, Node, parse_config

# The queue and its log are the router's internals; their persistence is pinned here.
from tradenode.actors._approvals import (
    ApprovalLog,
    ApprovalOutcome,
    ApprovalQueue,
    ApprovalQueueFullError,
    PendingApproval,
)
from tradenode.messages import DenialCode, OrderDenied, OrderStatus, OrderType, Side, SubmitOrder
from tradenode.supervision import ManualClock

from ._node_helpers import BASE_CONFIG, Harness


def order(n: int, quantity: str = "0.1") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=f"ap-{n}",
        strategy_id="s1",
        venue="paper",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D(quantity),
        price=D("1000.00"),
    )


def pending(n: int, deadline_ns: int = 2_000) -> PendingApproval:
    return PendingApproval(
        approval_id=f"ap-{n}",
        order=order(n),
        why="MANUAL: every order waits for approval",
        requested_ns=n,
        deadline_ns=deadline_ns,
    )


def test_the_log_gives_back_what_was_pending_and_forgets_what_was_resolved(
    tmp_path: Path,
) -> None:
    log, recovered = ApprovalLog.open(tmp_path / "a")
    assert recovered == []
    queue = ApprovalQueue(10, log)
    for n in range(3):
        queue.add(pending(n))
    assert queue.resolve("ap-1", ApprovalOutcome.APPROVED, "alice") is not None
    assert queue.resolve("ap-1", ApprovalOutcome.APPROVED, "alice") is None
    log.close()

    log, recovered = ApprovalLog.open(tmp_path / "a")
    assert [a.approval_id for a in recovered] == ["ap-0", "ap-2"]
    assert recovered[0] == pending(0)
    log.close()


def test_snapshots_bound_the_log_and_keep_the_pending_set(tmp_path: Path) -> None:
    log, _ = ApprovalLog.open(tmp_path / "a")
    queue = ApprovalQueue(1000, log)
    for n in range(200):
        queue.add(pending(n))
        if n % 2:
            queue.resolve(f"ap-{n}", ApprovalOutcome.REJECTED, "bob", "no")
    log.close()
    segments = sorted((tmp_path / "a").glob("segment-*"))
    assert list((tmp_path / "a").glob("snapshot-*")), "a snapshot was taken"
    log, recovered = ApprovalLog.open(tmp_path / "a")
    assert [a.approval_id for a in recovered] == [f"ap-{n}" for n in range(0, 200, 2)]
    log.close()
    assert len(segments) <= 2


def test_a_full_queue_refuses_instead_of_growing() -> None:
    queue = ApprovalQueue(2)
    queue.add(pending(0))
    queue.add(pending(1))
    with pytest.raises(ApprovalQueueFullError, match="capacity 2"):
        queue.add(pending(2))
    assert queue.counts() == {"pending": 2, "approved": 0, "rejected": 0, "expired": 0}


def test_an_unreadable_record_is_a_decode_error_not_a_crash_of_something_else(
    tmp_path: Path,
) -> None:
    log, _ = ApprovalLog.open(tmp_path / "a")
    log._append({"k": "pending", "id": "x", "order": b"\x00garbage", "at": 1, "until": 2})
    log.close()
    with pytest.raises(DecodeError, match="trailing byte"):
        ApprovalLog.open(tmp_path / "a")


MANUAL = "execution_mode: MANUAL\napproval: {timeout: 60}\n"


def journaled(tmp_path: Path, clock: ManualClock) -> Harness:
    text = BASE_CONFIG + MANUAL + f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
    node = Node(parse_config(text), clock=clock)
    node.start()
    return Harness(node, clock)


def test_a_pending_approval_survives_a_restart_and_can_be_approved_after_it(
    tmp_path: Path,
) -> None:
    first = journaled(tmp_path, ManualClock())
    try:
        coid = first.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.2"), venue="paper"))
        first.sync()
        assert [a.approval_id for a in first.node.pending_approvals()] == [coid]
    finally:
        first.node.stop(timeout=20)

    second = journaled(tmp_path, ManualClock(30.0))
    try:
        (approval,) = second.node.pending_approvals()
        assert approval.approval_id == coid and approval.order.quantity == D("0.2")
        second.strategy("s1")
        assert second.node.approve(coid, "alice")
        second.wait_status(coid, OrderStatus.FILLED)
        assert second.node.venues["paper"].position("BTCUSDT") == D("0.2")
        # Still due to time out at its original deadline: 60 s after it was asked.
    finally:
        second.node.stop(timeout=20)

    third = journaled(tmp_path, ManualClock(31.0))
    try:
        assert third.node.pending_approvals() == ()
        assert third.order(coid).status is OrderStatus.FILLED
    finally:
        third.node.stop(timeout=20)


def test_an_approval_whose_deadline_passed_while_the_node_was_down_is_denied_at_start(
    tmp_path: Path,
) -> None:
    first = journaled(tmp_path, ManualClock())
    try:
        coid = first.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.2"), venue="paper"))
        first.sync()
    finally:
        first.node.stop(timeout=20)

    second = journaled(tmp_path, ManualClock(61.0))
    try:
        second.sync()
        assert second.node.pending_approvals() == ()
        view = second.order(coid)
        assert view.status is OrderStatus.DENIED
        assert second.node.venues["paper"].open_orders() == []
        assert second.node.router_status()["approvals"]["expired"] == 1
    finally:
        second.node.stop(timeout=20)


def test_a_pending_approval_restored_after_a_restart_still_times_out_at_its_deadline(
    tmp_path: Path,
) -> None:
    first = journaled(tmp_path, ManualClock())
    try:
        coid = first.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.2"), venue="paper"))
        first.sync()
    finally:
        first.node.stop(timeout=20)

    clock = ManualClock(50.0)
    second = journaled(tmp_path, clock)
    try:
        second.strategy("s1")
        second.sync()
        assert len(second.node.pending_approvals()) == 1
        clock.advance(10.0)
        denial = second.wait_for(OrderDenied, coid)[0]
        assert denial.code is DenialCode.APPROVAL_TIMEOUT
    finally:
        second.node.stop(timeout=20)
