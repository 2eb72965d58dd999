"""A strategy's FULL_AUTO order that names its venue skips the router (``DirectLane``).

The router would only forward such an order, so the strategy bridge tells the
risk guard itself, but only when that is the same as going through the router:
the strategy's mode read under the lock the router changes modes under, and
nothing the strategy sent earlier still waiting at the router (else it would
overtake it). Counted in messages and lane counts, never timed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal as D
from typing import Any

import pytest

from tradenode import ExecutionMode

# The lane is internal to the bridge and the router: tested on its own here.
from tradenode.actors._execution_modes import DirectLane

# The router's actor is internal: a test crashes it through its cancel handler.
from tradenode.actors._routing import RouterActor
from tradenode.messages import OrderStatus, OrderType, Side, SubmitOrder

from ._node_helpers import Harness, running_node


@dataclass
class _Modes:
    node_mode: ExecutionMode = ExecutionMode.FULL_AUTO
    overrides: dict[str, ExecutionMode] = field(default_factory=dict)


class _Inbox:
    """Stands in for the risk guard's address: what was told, in order."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


def _order(**changes: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": "s1-1",
        "strategy_id": "s1",
        "venue": "paper",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "quantity": D("0.1"),
        "order_type": OrderType.MARKET,
        "ts_ns": 1,
    }
    fields.update(changes)
    return SubmitOrder(**fields)


def _lane(modes: _Modes | None = None) -> DirectLane:
    return DirectLane("s1", modes or _Modes(), threading.Lock())


def test_a_full_auto_order_for_a_named_venue_goes_straight_to_the_guard() -> None:
    lane, risk = _lane(), _Inbox()
    order = _order()
    assert lane.tell_direct(order, risk)  # type: ignore[arg-type]
    assert risk.told == [order]
    assert (lane.told, lane.handled) == (0, 0)


@pytest.mark.parametrize(
    "mode",
    [ExecutionMode.MANUAL, ExecutionMode.SEMI_AUTO, ExecutionMode.RESEARCH],
)
def test_any_other_mode_of_the_strategy_sends_it_through_the_router(mode: ExecutionMode) -> None:
    risk = _Inbox()
    for modes in (_Modes(node_mode=mode), _Modes(overrides={"s1": mode})):
        assert not _lane(modes).tell_direct(_order(), risk)  # type: ignore[arg-type]
    assert risk.told == []


def test_an_emergency_wins_over_a_full_auto_override() -> None:
    modes = _Modes(node_mode=ExecutionMode.EMERGENCY, overrides={"s1": ExecutionMode.FULL_AUTO})
    risk = _Inbox()
    assert not _lane(modes).tell_direct(_order(), risk)  # type: ignore[arg-type]
    assert risk.told == []


def test_another_strategys_full_auto_override_opens_no_lane() -> None:
    modes = _Modes(node_mode=ExecutionMode.MANUAL, overrides={"s2": ExecutionMode.FULL_AUTO})
    assert not _lane(modes).tell_direct(_order(), _Inbox())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [{"venue": "auto"}, {"parent_id": "P1"}, {"strategy_id": "s2"}],
    ids=["routed", "a-parents-child", "another-strategy"],
)
def test_orders_the_router_does_more_with_go_through_it(changes: dict[str, Any]) -> None:
    risk = _Inbox()
    assert not _lane().tell_direct(_order(**changes), risk)  # type: ignore[arg-type]
    assert risk.told == []


def test_nothing_overtakes_what_is_still_at_the_router() -> None:
    lane, risk = _lane(), _Inbox()
    lane.told += 1  # the bridge sent a cancel through the router
    assert not lane.tell_direct(_order(), risk)  # type: ignore[arg-type]
    lane.handled += 1  # the router dealt with it (told the guard)
    assert lane.tell_direct(_order(), risk)  # type: ignore[arg-type]
    assert len(risk.told) == 1


def test_the_mode_is_read_and_the_order_told_under_the_routers_gate() -> None:
    """The router changes modes under the same gate: a change it made first is
    seen, and the order cannot slip in between its read and its tell."""
    gate = threading.Lock()

    class GuardedModes:
        def __init__(self) -> None:
            self.overrides: dict[str, ExecutionMode] = {}

        @property
        def node_mode(self) -> ExecutionMode:
            assert gate.locked()
            return ExecutionMode.FULL_AUTO

    class GuardedInbox(_Inbox):
        def tell(self, message: Any) -> None:
            assert gate.locked()
            super().tell(message)

    risk = GuardedInbox()
    assert DirectLane("s1", GuardedModes(), gate).tell_direct(_order(), risk)  # type: ignore[arg-type]
    assert risk.told == [_order()]
    assert not gate.locked()


def _router_handled(h: Harness) -> dict[str, int]:
    path = h.node.directory.router().path
    return {kind: n for (p, kind), n in h.node.system.messages_handled().items() if p == path}


def _market(quantity: str = "0.1") -> Any:
    return lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D(quantity), venue="paper")


def _resting_limit() -> Any:
    """A buy far below the market: it rests until cancelled."""
    return lambda ctx: ctx.submit_order(
        "BTCUSDT", Side.BUY, D("0.1"), order_type=OrderType.LIMIT, price=D("100"), venue="paper"
    )


def test_a_just_set_manual_mode_holds_the_next_order_and_full_auto_skips_the_router() -> None:
    with running_node() as h:
        h.strategy()
        h.sync()
        h.node.set_execution_mode(ExecutionMode.MANUAL, strategy_id="s1")
        held = h.do(_market())
        h.sync()
        pending = h.node.pending_approvals()
        assert [a.order.client_order_id for a in pending] == [held]
        h.node.set_execution_mode(None, strategy_id="s1")  # back to the node's FULL_AUTO
        before = _router_handled(h)
        direct = h.do(_market())
        h.wait_status(direct, OrderStatus.FILLED)
        h.sync()
        after = _router_handled(h)
        woken = {kind: n - before.get(kind, 0) for kind, n in after.items()}
        assert {kind: n for kind, n in woken.items() if n} == {}
        # The held order is still held: skipping the router released nothing.
        assert [a.order.client_order_id for a in h.node.pending_approvals()] == [held]


def test_a_cancel_through_the_router_is_counted_and_the_lane_reopens() -> None:
    with running_node() as h:
        h.strategy()
        h.sync()
        limit = h.do(_resting_limit())
        h.wait_status(limit, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(limit))
        h.wait_status(limit, OrderStatus.CANCELED)
        h.sync()
        lane = h.node.router_store.lanes["s1"]
        assert lane.told == lane.handled == 1
        assert _router_handled(h).get("ThroughRouter") == 1
        after = h.do(_market())
        h.wait_status(after, OrderStatus.FILLED)
        assert lane.told == 1  # the market order went straight to the guard


def test_a_message_the_router_crashed_on_still_counts_and_the_lane_reopens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The router counts a message handled whatever became of it: one it failed on
    goes to dead letters (it never reaches the guard, nothing can overtake it), and
    the restarted strategy's orders go straight to the guard again."""
    with running_node() as h:
        h.strategy()
        h.sync()

        def boom(self: RouterActor, cancel: Any) -> None:
            raise RuntimeError("router crash for the test")

        resting = h.do(_resting_limit())
        h.wait_status(resting, OrderStatus.ACCEPTED)
        monkeypatch.setattr(RouterActor, "_on_cancel", boom)
        lane = h.node.router_store.lanes["s1"]
        h.do(lambda ctx: ctx.cancel_order(resting))
        h.sync()
        monkeypatch.undo()
        router = h.node.directory.router().path
        assert h.node.system.events.restart_counts().get(router, 0) >= 1
        assert h.node.router_store.lanes["s1"] is lane
        assert lane.told == lane.handled == 1
        coid = h.do(_market())
        h.wait_status(coid, OrderStatus.FILLED)
        assert lane.told == 1  # straight to the guard
