"""The seed API (``ExecutionEngine``) with routing and execution modes."""

from __future__ import annotations

from decimal import Decimal as D

from tradenode import ExecutionEngine, parse_config
from tradenode.actors import GetOrder, TrackedOrderView
from tradenode.messages import DecisionAction, ExecutionDecision, OrderStatus
from tradenode.supervision import ManualClock

from ._node_helpers import BASE_CONFIG

CONFIG = (
    BASE_CONFIG
    + """
instruments:
  BTC-USD: {venues: {paper2: BTCUSDT, paper: BTCUSDT}}
execution_mode: MANUAL
"""
)


def order_view(engine: ExecutionEngine, client_order_id: str) -> TrackedOrderView:
    assert engine.node is not None
    engine.node.system.wait_quiescent(30)
    view = engine.node.oms.ask(GetOrder(client_order_id))
    assert isinstance(view, TrackedOrderView)
    return view


def test_a_decision_for_an_instrument_is_routed_and_waits_for_approval() -> None:
    engine = ExecutionEngine(parse_config(CONFIG), clock=ManualClock())
    engine.connect()
    try:
        decision = ExecutionDecision(
            strategy_id="facade", symbol="BTC-USD", action=DecisionAction.LONG, size=D("0.3")
        )
        coid = engine.execute_decision(decision)
        assert coid is not None
        assert engine.node is not None
        engine.node.system.wait_quiescent(30)
        (pending,) = engine.get_pending_approvals()
        assert (pending["id"], pending["venue"], pending["symbol"]) == (coid, "auto", "BTC-USD")
        assert engine.approve(coid, "alice")
        view = order_view(engine, coid)
        assert view.status is OrderStatus.FILLED
        # Routed by preference (paper2 first for this instrument), the route on the order.
        assert view.order.venue == "paper2" and view.order.route is not None
        assert engine.get_position("BTCUSDT", "paper2") is not None
        # A plain symbol still goes to the engine's first venue, and waits too.
        plain = engine.execute_decision(
            ExecutionDecision(
                strategy_id="facade", symbol="ETHUSDT", action=DecisionAction.LONG, size=D("1")
            )
        )
        assert plain is not None
        engine.node.system.wait_quiescent(30)
        assert [p["venue"] for p in engine.get_pending_approvals()] == ["paper"]
        assert engine.reject(plain, "bob", "not now")
        assert order_view(engine, plain).status is OrderStatus.DENIED
        report = engine.set_execution_mode("EMERGENCY", who="ops")
        assert report is not None and report.complete
        assert engine.node.venues["paper2"].position("BTCUSDT") == 0
        assert engine.resume("ops").value == "MANUAL"
    finally:
        engine.disconnect()
