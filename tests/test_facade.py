"""The seed API over a running node: ExecutionEngine, its queries, and the KillSwitch."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from tradenode import ExecutionEngine, KillSwitch, Node, parse_config
from tradenode.actors import GetOrder, Subscribe, TrackedOrderView
from tradenode.messages import (
    DecisionAction,
    DenialCode,
    ExecutionDecision,
    OrderDenied,
    OrderFilled,
    OrderStatus,
    OrderType,
    PositionSnapshot,
    TradingState,
    TradingStateChanged,
)
from tradenode.supervision import Actor, Address, ChildSpec, EventRecorder, ManualClock, add_child

from ._node_helpers import BASE_CONFIG

LONG, SHORT, FLAT, HOLD = (
    DecisionAction.LONG,
    DecisionAction.SHORT,
    DecisionAction.FLAT,
    DecisionAction.HOLD,
)


class _Tap(Actor):
    """Subscribes to every order event the OMS publishes and records it."""

    def __init__(self, oms: Address, seen: EventRecorder) -> None:
        self.oms = oms
        self.seen = seen

    def on_start(self) -> None:
        self.oms.tell(Subscribe(self.context.self))

    def receive(self, message: Any) -> None:
        self.seen(message)


class Facade:
    """An ExecutionEngine plus a recorder of the node's order events to synchronise on."""

    def __init__(self) -> None:
        self.engine = ExecutionEngine(parse_config(BASE_CONFIG), clock=ManualClock())
        self.seen = EventRecorder()

    def connect(self) -> None:
        self.engine.connect()
        oms = self.node.oms
        add_child(
            self.node.supervisor("core/strategies"), ChildSpec("tap", lambda: _Tap(oms, self.seen))
        )

    @property
    def node(self) -> Node:
        assert self.engine.node is not None
        return self.engine.node

    def decide(
        self,
        action: DecisionAction,
        symbol: str,
        size: str,
        *,
        venue: str | None = None,
        limit_price: str | None = None,
    ) -> str | None:
        return self.engine.execute_decision(
            ExecutionDecision(
                strategy_id="facade",
                symbol=symbol,
                action=action,
                size=D(size),
                venue=venue,
                order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
                limit_price=None if limit_price is None else D(limit_price),
            )
        )

    def order(self, client_order_id: str) -> TrackedOrderView:
        view = self.node.oms.ask(GetOrder(client_order_id))
        assert isinstance(view, TrackedOrderView), view
        return view

    def wait_status(self, client_order_id: str, status: OrderStatus) -> TrackedOrderView:
        """Re-check the OMS each time it publishes an event (it publishes after applying)."""

        def reached(_: object) -> bool:
            view = self.node.oms.ask(GetOrder(client_order_id))
            return isinstance(view, TrackedOrderView) and view.status is status

        self.seen.wait_for(reached)
        return self.order(client_order_id)

    def position(self, symbol: str, venue: str = "paper") -> D:
        snapshot = self.engine.get_position(symbol, venue)
        return D(0) if snapshot is None else snapshot.quantity


@pytest.fixture
def facade() -> Iterator[Facade]:
    f = Facade()
    f.connect()
    try:
        yield f
    finally:
        f.engine.disconnect()


def test_a_decision_fills_and_every_query_reports_it(facade: Facade) -> None:
    engine = facade.engine
    assert engine.connected
    coid = facade.decide(LONG, "BTCUSDT", "0.3")
    assert coid is not None
    view = facade.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == D("0.3")
    assert view.strategy_id == "facade"

    position = engine.get_position("BTCUSDT")
    assert isinstance(position, PositionSnapshot)
    assert (position.venue, position.quantity, position.avg_price) == (
        "paper",
        D("0.3"),
        D("50005"),
    )
    assert facade.node.venues["paper"].position("BTCUSDT") == D("0.3")
    assert engine.get_position("BTCUSDT", "paper2") is None

    fills = engine.get_fills()
    assert fills == engine.get_fills("facade")
    assert engine.get_fills("other") == ()
    assert [f.client_order_id for f in fills] == [coid]
    assert all(isinstance(f, OrderFilled) for f in fills)
    assert sum(f.last_quantity for f in fills) == D("0.3")
    assert engine.get_open_orders() == ()

    # Already long 0.3: the same decision again, or HOLD, produces no order.
    assert facade.decide(LONG, "BTCUSDT", "0.3") is None
    assert facade.decide(HOLD, "BTCUSDT", "0") is None

    metrics = engine.get_performance_metrics()
    assert metrics["total_orders"] == 1
    assert metrics["fill_rate"] == 1.0
    assert metrics["total_filled_notional"] == D("0.3") * D("50005.00")
    assert metrics["total_commission"] == sum(f.commission for f in fills) == D("15.0015")
    # The manual clock never moved, so every latency is exactly zero.
    for key in (
        "avg_fill_latency_ns",
        "ack_latency_p50_ns",
        "ack_latency_p99_ns",
        "fill_latency_p50_ns",
        "fill_latency_p99_ns",
    ):
        assert metrics[key] == 0, key

    for venue in (None, "paper", "paper2"):
        stats = engine.get_failure_stats(venue)
        assert stats.venue == (venue or "paper")
        assert stats.circuit_state == "closed"
        assert (stats.failure_count, stats.dlq_size, stats.recent_failures) == (0, 0, ())

    status = engine.get_status()
    assert status["node"] == "testnode"
    assert status["terminated"] is False
    assert status["total_orders"] == 1
    assert status["fills"] == 1
    assert status["open_orders"] == 0
    assert status["risk"]["state"] == "ACTIVE"
    assert status["breakers"] == {
        "paper": {"state": "closed", "failures": 0, "dlq": 0},
        "paper2": {"state": "closed", "failures": 0, "dlq": 0},
    }
    assert status["positions"] == [
        {
            "venue": "paper",
            "symbol": "BTCUSDT",
            "quantity": "0.3",
            "avg_price": "50005",
            "realized_pnl": "0",
            "unrealized_pnl": "0",
        }
    ]


def test_decisions_move_the_position_to_each_target(facade: Facade) -> None:
    long = facade.decide(LONG, "ETHUSDT", "2", venue="paper2")
    assert long is not None
    facade.wait_status(long, OrderStatus.FILLED)
    short = facade.decide(SHORT, "ETHUSDT", "1", venue="paper2")
    assert short is not None
    assert facade.wait_status(short, OrderStatus.FILLED).order.quantity == D("3")
    assert facade.position("ETHUSDT", "paper2") == D("-1")
    flat = facade.decide(FLAT, "ETHUSDT", "0", venue="paper2")
    assert flat is not None
    facade.wait_status(flat, OrderStatus.FILLED)
    assert facade.position("ETHUSDT", "paper2") == D("0")
    assert facade.node.venues["paper2"].position("ETHUSDT") == D("0")
    assert facade.position("ETHUSDT", "paper") == D("0")


def test_kill_switch_cancels_open_orders_on_both_venues_and_halts(facade: Facade) -> None:
    engine = facade.engine
    on_paper = facade.decide(LONG, "BTCUSDT", "0.2", limit_price="40000.00")
    on_paper2 = facade.decide(LONG, "ETHUSDT", "1", venue="paper2", limit_price="2000.00")
    assert on_paper is not None and on_paper2 is not None
    facade.wait_status(on_paper, OrderStatus.ACCEPTED)
    facade.wait_status(on_paper2, OrderStatus.ACCEPTED)
    assert {o.client_order_id for o in engine.get_open_orders()} == {on_paper, on_paper2}
    assert {o.venue for o in engine.get_open_orders()} == {"paper", "paper2"}

    switch = KillSwitch(engine)
    active_before = switch.is_active
    report = switch.activate()
    assert (active_before, switch.is_active, switch.last_report) == (False, True, report)
    assert report.open_orders_found == 2
    assert report.cancels_confirmed == 2
    assert report.cancels_failed == ()
    assert report.flatten_orders == ()
    assert report.complete
    assert 0 <= report.cancel_seconds <= report.total_seconds

    assert engine.get_open_orders() == ()
    assert facade.order(on_paper).status is OrderStatus.CANCELED
    assert facade.order(on_paper2).status is OrderStatus.CANCELED
    assert facade.node.venues["paper"].open_orders() == []
    assert facade.node.venues["paper2"].open_orders() == []
    facade.seen.wait_for(
        lambda m: isinstance(m, TradingStateChanged) and m.state is TradingState.HALTED
    )
    assert engine.get_status()["risk"]["state"] == "HALTED"

    denied = facade.decide(LONG, "BTCUSDT", "0.1")
    assert denied is not None
    denial = facade.seen.wait_for(
        lambda m: isinstance(m, OrderDenied) and m.client_order_id == denied
    )[0]
    assert denial.code is DenialCode.TRADING_HALTED
    assert "kill switch" in denial.reason
    assert facade.order(denied).status is OrderStatus.DENIED
    assert facade.node.venues["paper"].order(denied) is None


def test_kill_switch_with_flatten_leaves_every_position_flat(facade: Facade) -> None:
    engine = facade.engine
    # Within one book level (0.5 BTC, 5 ETH) so each market order fills completely.
    bought = facade.decide(LONG, "BTCUSDT", "0.3")
    sold = facade.decide(SHORT, "ETHUSDT", "2", venue="paper2")
    resting = facade.decide(LONG, "SOLUSDT", "10", limit_price="140.00")
    assert bought is not None and sold is not None and resting is not None
    facade.wait_status(bought, OrderStatus.FILLED)
    facade.wait_status(sold, OrderStatus.FILLED)
    facade.wait_status(resting, OrderStatus.ACCEPTED)
    assert facade.position("BTCUSDT") == D("0.3")
    assert facade.position("ETHUSDT", "paper2") == D("-2")

    report = KillSwitch(engine).activate(flatten=True)
    assert report.open_orders_found == 1
    assert report.cancels_confirmed == 1
    assert report.complete
    assert len(report.flatten_orders) == 2
    assert report.positions_after
    assert all(p.quantity == 0 for p in report.positions_after)
    for coid in report.flatten_orders:
        assert facade.order(coid).status is OrderStatus.FILLED
    flatten = {facade.order(c).order.venue: facade.order(c).order for c in report.flatten_orders}
    assert (flatten["paper"].symbol, flatten["paper"].quantity) == ("BTCUSDT", D("0.3"))
    assert (flatten["paper2"].symbol, flatten["paper2"].quantity) == ("ETHUSDT", D("2"))
    # The paper simulator does not enforce reduce-only and says so in its
    # capabilities: its flatten orders are plain, sized to the position.
    assert not any(order.reduce_only for order in flatten.values())

    assert facade.order(resting).status is OrderStatus.CANCELED
    assert engine.get_open_orders() == ()
    assert facade.position("BTCUSDT") == D("0")
    assert facade.position("ETHUSDT", "paper2") == D("0")
    assert facade.node.venues["paper"].position("BTCUSDT") == D("0")
    assert facade.node.venues["paper2"].position("ETHUSDT") == D("0")
    assert engine.get_status()["risk"]["state"] == "HALTED"


def test_disconnect_stops_the_node() -> None:
    facade = Facade()
    facade.connect()
    engine = facade.engine
    node = facade.node
    running_before = node.system.is_terminated is False
    connected_before = engine.connected
    engine.disconnect()
    assert (running_before, node.system.is_terminated) == (True, True)
    assert (connected_before, engine.connected) == (True, False)
    assert engine.get_status() == {"connected": False}
    with pytest.raises(RuntimeError, match="not connected"):
        facade.decide(LONG, "BTCUSDT", "0.1")
    with pytest.raises(RuntimeError, match="not connected"):
        engine.get_open_orders()


def test_decisions_for_one_symbol_on_two_venues_are_independent(facade: Facade) -> None:
    on_paper = facade.decide(LONG, "ETHUSDT", "1", limit_price="2000.00")
    assert on_paper is not None
    facade.wait_status(on_paper, OrderStatus.ACCEPTED)
    on_paper2 = facade.decide(LONG, "ETHUSDT", "1", venue="paper2", limit_price="2000.00")
    assert on_paper2 is not None
