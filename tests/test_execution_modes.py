"""Execution modes on a running node with two paper venues (message level).

FULL_AUTO sends; SEMI_AUTO holds orders above its thresholds for approval;
MANUAL holds every order; RESEARCH records and simulates, sending nothing;
EMERGENCY flattens every venue and refuses everything until an operator
resumes. Per-strategy overrides; approvals time out on the node clock.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tradenode.actors import GetOrder, GetPositions, GetRiskStatus

# What a RESEARCH node tells a strategy: internal, like the router.
from tradenode.actors._execution_modes import ResearchEvent

# The router's messages to a strategy are internal until the operator plane exports them.
from tradenode.actors._routing import AwaitingApproval
from tradenode.messages import (
    DenialCode,
    OrderDenied,
    OrderFilled,
    OrderStatus,
    OrderType,
    ParentDenied,
    ParentFilled,
    Quote,
    Side,
    TwapParams,
)
from tradenode.supervision import EventRecorder

from ._execution_helpers import advance, parent, submit_parent, wait_parent_event
from ._node_helpers import Harness, Scripted, running_node

ROUTED = """
instruments:
  BTC-USD: {venues: {paper: BTCUSDT, paper2: BTCUSDT}}
"""


class Listening(Scripted):
    """A scripted strategy that also records what reaches ``on_message``
    (approval notices, research events)."""

    def on_message(self, message: Any) -> Any:
        if isinstance(message, AwaitingApproval | ResearchEvent):
            self.seen(message)
            return None
        return super().on_message(message)


def listener(h: Harness, strategy_id: str = "s1", venue: str = "paper") -> EventRecorder:
    seen = EventRecorder()

    def make() -> Listening:
        strategy = Listening(strategy_id, seen, symbols=("BTCUSDT",))
        strategy.venue = venue
        return strategy

    address = h.node.add_strategy(strategy_id, make)
    h.strategies[strategy_id] = (address, seen)
    return seen


def market(side: Side, quantity: str, venue: str = "paper", symbol: str = "BTCUSDT") -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(quantity), venue=venue)


def limit(side: Side, quantity: str, price: str, venue: str = "paper") -> Any:
    return lambda ctx: ctx.submit_order(
        "BTCUSDT", side, D(quantity), order_type=OrderType.LIMIT, price=D(price), venue=venue
    )


def awaiting(seen: EventRecorder, client_order_id: str) -> AwaitingApproval:
    notice = seen.wait_for(
        lambda m: isinstance(m, AwaitingApproval) and m.approval_id == client_order_id
    )[0]
    assert isinstance(notice, AwaitingApproval)
    return notice


def denial(h: Harness, client_order_id: str, strategy_id: str = "s1") -> OrderDenied:
    found = h.wait_for(OrderDenied, client_order_id, strategy_id=strategy_id)[0]
    assert isinstance(found, OrderDenied)
    return found


def venue_orders(h: Harness, venue: str = "paper") -> int:
    return len(h.node.venues[venue].fills()) + len(h.node.venues[venue].open_orders())


def test_full_auto_sends_at_once_and_nothing_waits() -> None:
    with running_node() as h:
        listener(h)
        coid = h.do(market(Side.BUY, "0.4"))
        h.wait_status(coid, OrderStatus.FILLED)
        assert h.node.pending_approvals() == ()
        assert h.node.execution_mode().value == "FULL_AUTO"


SEMI = """
execution_mode: SEMI_AUTO
approval: {quantity_threshold: 1, notional_threshold: 100000, timeout: 60}
"""


def test_semi_auto_holds_orders_above_a_threshold_until_approved() -> None:
    with running_node(SEMI) as h:
        seen = listener(h)
        quoted(h, seen, "50000")
        small = h.do(market(Side.BUY, "0.5"))
        h.wait_status(small, OrderStatus.FILLED)
        big = h.do(market(Side.BUY, "2"))
        notice = awaiting(seen, big)
        assert "quantity 2 above the threshold 1" in notice.why
        pricey = h.do(limit(Side.BUY, "0.9", "200000.00"))
        assert "notional 180000 above the threshold 100000" in awaiting(seen, pricey).why
        h.sync()
        # Nothing of the held orders reached the OMS or a venue.
        assert h.node.oms.ask(GetOrder(big)) is None
        assert [f.client_order_id for f in h.node.venues["paper"].fills()] == [small]
        pending = h.node.pending_approvals()
        assert [p.approval_id for p in pending] == [big, pricey]
        assert pending[0].describe()["quantity"] == "2"
        assert h.node.approve(big, "alice") is True
        h.wait_status(big, OrderStatus.FILLED)
        assert h.node.reject(pricey, "bob", "too expensive") is True
        refused = denial(h, pricey)
        assert refused.code is DenialCode.APPROVAL_REJECTED
        assert "rejected by bob: too expensive" in refused.reason
        assert h.order(pricey).status is OrderStatus.DENIED
        # A decision on something no longer pending is refused, not applied twice.
        assert h.node.approve(big, "alice") is False
        assert h.node.reject(pricey, "bob", "again") is False
        assert h.node.pending_approvals() == ()
        assert h.position("BTCUSDT") == D("2.5")


def test_semi_auto_holds_a_market_order_while_its_notional_cannot_be_known() -> None:
    """No quote yet, a notional threshold set: nobody can say the order is below it."""
    with running_node(SEMI) as h:
        seen = listener(h)
        coid = h.do(market(Side.BUY, "0.1"))
        assert "notional unknown" in awaiting(seen, coid).why


def test_a_pending_approval_times_out_on_the_node_clock() -> None:
    with running_node(SEMI) as h:
        seen = listener(h)
        big = h.do(market(Side.BUY, "3"))
        notice = awaiting(seen, big)
        h.sync()
        h.clock.advance(59.0)
        h.sync()
        assert [p.approval_id for p in h.node.pending_approvals()] == [big]
        h.clock.advance(1.0)
        timed_out = denial(h, big)
        assert timed_out.code is DenialCode.APPROVAL_TIMEOUT
        assert notice.deadline_ns == h.node.clock.time_ns()
        assert h.node.pending_approvals() == ()
        assert h.node.approve(big, "late") is False
        assert venue_orders(h) == 0
        assert h.node.router_status()["approvals"]["expired"] == 1


def test_a_strategy_cancelling_its_pending_order_withdraws_it() -> None:
    with running_node("execution_mode: MANUAL\n") as h:
        seen = listener(h)
        coid = h.do(limit(Side.BUY, "0.1", "1000.00"))
        awaiting(seen, coid)
        h.do(lambda ctx: ctx.cancel_order(coid))
        assert denial(h, coid).code is DenialCode.APPROVAL_REJECTED
        assert h.node.pending_approvals() == ()
        assert venue_orders(h) == 0


def test_manual_holds_every_order_and_a_routed_one_is_routed_only_once_approved() -> None:
    with running_node("execution_mode: MANUAL\n" + ROUTED) as h:
        seen = listener(h)
        tiny = h.do(market(Side.BUY, "0.01"))
        routed = h.do(market(Side.BUY, "0.02", venue="auto", symbol="BTC-USD"))
        assert "MANUAL" in awaiting(seen, tiny).why
        awaiting(seen, routed)
        h.sync()
        assert venue_orders(h) == 0 and venue_orders(h, "paper2") == 0
        for coid in (tiny, routed):
            assert h.node.approve(coid, "carol")
        view = h.wait_status(routed, OrderStatus.FILLED)
        assert view.order.venue == "paper" and view.order.route is not None
        h.wait_status(tiny, OrderStatus.FILLED)


def test_a_strategy_override_applies_to_its_orders_only() -> None:
    with running_node() as h:
        seen1, seen2 = listener(h, "s1"), listener(h, "s2")
        h.node.set_execution_mode("MANUAL", strategy_id="s2", who="ops")
        assert h.node.execution_mode("s2").value == "MANUAL"
        assert h.node.execution_mode("s1").value == "FULL_AUTO"
        free = h.do(market(Side.BUY, "0.1"), strategy_id="s1")
        held = h.do(market(Side.BUY, "0.1"), strategy_id="s2")
        h.wait_status(free, OrderStatus.FILLED, strategy_id="s1")
        awaiting(seen2, held)
        assert not any(isinstance(m, AwaitingApproval) for m in seen1.items)
        h.node.set_execution_mode(None, strategy_id="s2", who="ops")
        again = h.do(market(Side.BUY, "0.1"), strategy_id="s2")
        h.wait_status(again, OrderStatus.FILLED, strategy_id="s2")
        assert [p.approval_id for p in h.node.pending_approvals()] == [held]


def test_a_strategy_mode_from_the_config_overrides_the_node() -> None:
    config = "strategies: [{id: s9, venue: paper, symbols: [BTCUSDT], execution_mode: MANUAL}]\n"
    with running_node(config) as h:
        assert h.node.execution_mode("s9").value == "MANUAL"
        assert h.node.execution_mode().value == "FULL_AUTO"


def quoted(h: Harness, seen: EventRecorder, price: str, venue: str = "paper") -> None:
    """Move the venue's BTCUSDT to ``price`` and wait until the router has the quote."""
    h.node.venues[venue].set_price("BTCUSDT", D(price))
    seen.wait_for(
        lambda m: isinstance(m, Quote) and m.venue == venue and m.bid <= D(price) <= m.ask
    )
    h.sync()


def research_reports(seen: EventRecorder, client_order_id: str, kind: type) -> list[Any]:
    return [
        m.report
        for m in seen.items
        if isinstance(m, ResearchEvent)
        and m.report.client_order_id == client_order_id
        and isinstance(m.report, kind)
    ]


def test_research_records_and_simulates_against_live_quotes_and_sends_nothing() -> None:
    with running_node("execution_mode: RESEARCH\n" + ROUTED) as h:
        seen = listener(h)
        quoted(h, seen, "50000")
        buy = h.do(market(Side.BUY, "0.5"))
        seen.wait_for(
            lambda m: (
                isinstance(m, ResearchEvent)
                and isinstance(m.report, OrderFilled)
                and m.report.client_order_id == buy
            )
        )
        fills = research_reports(seen, buy, OrderFilled)
        assert sum(f.last_quantity for f in fills) == D("0.5")
        quote = h.node.router_store.quotes[("paper", "BTCUSDT")]
        assert all(quote.bid <= f.last_price <= quote.ask * D("1.01") for f in fills)
        # A resting limit fills in the simulation when the live market comes to it.
        bid = h.do(limit(Side.BUY, "0.2", "49000.00"))
        seen.wait_for(lambda m: isinstance(m, ResearchEvent) and m.report.client_order_id == bid)
        assert research_reports(seen, bid, OrderFilled) == []
        quoted(h, seen, "48900")
        seen.wait_for(
            lambda m: (
                isinstance(m, ResearchEvent)
                and isinstance(m.report, OrderFilled)
                and m.report.client_order_id == bid
            )
        )
        h.sync()
        # Nothing reached a venue, the OMS or a real position.
        assert venue_orders(h) == 0 and venue_orders(h, "paper2") == 0
        assert h.node.oms.ask(GetOrder(buy)) is None and h.node.oms.ask(GetOrder(bid)) is None
        assert all(p.quantity == 0 for p in h.node.oms.ask(GetPositions()))
        assert not any(isinstance(m, OrderFilled) for m in seen.items)
        status = h.node.router_status()
        assert status["research_orders"] == 2
        assert status["research_positions"] == {"paper:BTCUSDT": "0.7"}


def test_research_without_a_quote_yet_reports_a_simulated_rejection() -> None:
    with running_node("execution_mode: RESEARCH\n") as h:
        seen = listener(h)
        coid = h.do(market(Side.BUY, "0.5", symbol="ETHUSDT"))
        event = seen.wait_for(
            lambda m: isinstance(m, ResearchEvent) and m.report.client_order_id == coid
        )[0]
        assert event.report.code == "NO_QUOTE"
        assert venue_orders(h) == 0


def risk_state(h: Harness) -> str:
    status = h.node.risk.ask(GetRiskStatus())
    assert isinstance(status, dict)
    return str(status["state"])


def test_emergency_flattens_every_venue_halts_and_waits_for_an_operator() -> None:
    with running_node() as h:
        listener(h)
        long_paper = h.do(market(Side.BUY, "0.5", venue="paper"))
        short_paper2 = h.do(market(Side.SELL, "0.3", venue="paper2"))
        resting = h.do(limit(Side.BUY, "0.1", "1000.00", venue="paper2"))
        for coid in (long_paper, short_paper2):
            h.wait_status(coid, OrderStatus.FILLED)
        h.wait_status(resting, OrderStatus.ACCEPTED)
        assert h.node.venues["paper"].position("BTCUSDT") == D("0.5")
        assert h.node.venues["paper2"].position("BTCUSDT") == D("-0.3")

        report = h.node.set_execution_mode("EMERGENCY", who="ops", timeout=20)
        assert report is not None and report.complete, report
        assert len(report.flatten_orders) == 2 and report.cancels_confirmed == 1
        # Both venues are flat by their own books, and the node is halted.
        assert h.node.venues["paper"].position("BTCUSDT") == 0
        assert h.node.venues["paper2"].position("BTCUSDT") == 0
        assert h.node.venues["paper2"].open_orders() == []
        assert risk_state(h) == "HALTED"
        assert h.node.execution_mode().value == "EMERGENCY"
        refused = h.do(market(Side.BUY, "0.1"))
        assert denial(h, refused).code is DenialCode.TRADING_HALTED
        assert "EMERGENCY" in denial(h, refused).reason
        with pytest.raises(ValueError, match="resume"):
            h.node.set_execution_mode("FULL_AUTO", who="ops")

        assert h.node.resume("ops").value == "FULL_AUTO"
        assert risk_state(h) == "ACTIVE"
        after = h.do(market(Side.BUY, "0.1"))
        h.wait_status(after, OrderStatus.FILLED)


def test_emergency_withdraws_pending_approvals() -> None:
    with running_node("execution_mode: MANUAL\n") as h:
        seen = listener(h)
        coid = h.do(market(Side.BUY, "0.1"))
        awaiting(seen, coid)
        h.node.set_execution_mode("EMERGENCY", who="ops", timeout=20)
        assert denial(h, coid).code is DenialCode.TRADING_HALTED
        assert h.node.pending_approvals() == ()
        assert h.node.resume("ops").value == "MANUAL"


def test_bad_mode_names_are_refused_with_a_clear_error() -> None:
    with running_node() as h:
        with pytest.raises(ValueError, match="YOLO"):
            h.node.set_execution_mode("YOLO", who="ops")
        with pytest.raises(ValueError, match="node-wide"):
            h.node.set_execution_mode("EMERGENCY", who="ops", strategy_id="s1")
        with pytest.raises(ValueError, match="who"):
            h.node.approve("x", "  ")
        assert h.node.execution_mode().value == "FULL_AUTO"


def test_manual_holds_a_parent_order_then_its_children_run_without_asking_again() -> None:
    with running_node("execution_mode: MANUAL\n") as h:
        seen = listener(h)
        h.sync()
        pid = submit_parent(h, D("3"), TwapParams(duration=30.0, slices=3))
        notice = awaiting(seen, pid)
        assert "MANUAL" in notice.why
        assert h.node.parent(pid) is None and venue_orders(h) == 0
        (pending,) = h.node.pending_approvals()
        assert pending.describe()["type"] == "parent TwapParams"
        assert h.node.approve(pid, "alice")
        h.sync()
        for _ in range(2):
            advance(h, 10.0)
        wait_parent_event(h, pid, ParentFilled)
        view = parent(h, pid)
        assert view.filled == D(3) and len(view.child_ids) == 3
        # One approval for the parent; its children were never held.
        assert h.node.pending_approvals() == ()
        assert [a for a in seen.items if isinstance(a, AwaitingApproval)] == [notice]
        assert h.node.venues["paper"].position("BTCUSDT") == D(3)


def test_a_rejected_or_timed_out_parent_is_denied_and_never_starts() -> None:
    with running_node(SEMI) as h:
        seen = listener(h)
        h.sync()
        rejected = submit_parent(h, D("3"), TwapParams(duration=30.0, slices=3))
        assert "quantity 3 above the threshold 1" in awaiting(seen, rejected).why
        timed_out = submit_parent(h, D("2"), TwapParams(duration=30.0, slices=3))
        awaiting(seen, timed_out)
        assert h.node.reject(rejected, "bob", "not today")
        denied = wait_parent_event(h, rejected, ParentDenied)
        assert denied.code is DenialCode.APPROVAL_REJECTED and "not today" in denied.reason
        h.sync()
        h.clock.advance(60.0)
        late = wait_parent_event(h, timed_out, ParentDenied)
        assert late.code is DenialCode.APPROVAL_TIMEOUT
        h.sync()
        assert h.node.parent(rejected) is None and h.node.parent(timed_out) is None
        assert venue_orders(h) == 0


def test_research_refuses_a_parent_order_plainly() -> None:
    with running_node("execution_mode: RESEARCH\n") as h:
        listener(h)
        h.sync()
        pid = submit_parent(h, D("3"), TwapParams(duration=30.0, slices=3))
        denied = wait_parent_event(h, pid, ParentDenied)
        assert denied.code is DenialCode.INVALID_ORDER and "RESEARCH" in denied.reason
        assert h.node.parent(pid) is None and venue_orders(h) == 0


def test_a_node_configured_in_emergency_starts_halted_until_resumed() -> None:
    with running_node("execution_mode: EMERGENCY\n") as h:
        listener(h)
        assert h.node.execution_mode().value == "EMERGENCY"
        assert risk_state(h) == "HALTED"
        refused = h.do(market(Side.BUY, "0.1"))
        assert denial(h, refused).code is DenialCode.TRADING_HALTED
        assert h.node.resume("ops").value == "FULL_AUTO"
        accepted = h.do(market(Side.BUY, "0.1"))
        h.wait_status(accepted, OrderStatus.FILLED)
