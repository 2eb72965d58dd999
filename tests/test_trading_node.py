"""Message-level integration tests against a running node on two paper venues."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tradenode.actors import GetFills
from tradenode.brokers import VenueConfig
from tradenode.messages import (
    DecisionAction,
    ExecutionDecision,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    Side,
)
from tradenode.supervision import SupervisionEventKind

from ._node_helpers import running_node

K = SupervisionEventKind


def limit_buy(
    price: str, quantity: str = "0.8", symbol: str = "BTCUSDT", venue: str = "paper"
) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, Side.BUY, D(quantity), order_type=OrderType.LIMIT, price=D(price), venue=venue
    )


def market(side: Side, quantity: str, symbol: str = "BTCUSDT", venue: str = "paper") -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(quantity), venue=venue)


def test_market_order_full_lifecycle() -> None:
    with running_node() as h:
        coid = h.do(market(Side.BUY, "0.7"))
        h.wait_for(OrderSubmitted, coid)
        h.wait_for(OrderAccepted, coid)
        fills = h.wait_for(OrderFilled, coid, count=2)
        assert [f.last_quantity for f in fills] == [D("0.5"), D("0.2")]
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert view.filled_quantity == D("0.7")
        assert h.position("BTCUSDT") == h.node.venues["paper"].position("BTCUSDT") == D("0.7")


def test_limit_order_rests_then_fills_partially_then_fully() -> None:
    with running_node() as h:
        coid = h.do(limit_buy("49000.00"))
        h.wait_for(OrderAccepted, coid)
        assert h.order(coid).status is OrderStatus.ACCEPTED
        venue = h.node.venues["paper"]
        venue.set_price("BTCUSDT", D("48990.00"))
        h.wait_for(OrderFilled, coid)
        assert h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity == D("0.5")
        venue.set_price("BTCUSDT", D("48980.00"))
        h.wait_for(OrderFilled, coid, count=2)
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.8")
        assert h.position("BTCUSDT") == venue.position("BTCUSDT") == D("0.8")


def test_cancel_an_open_order() -> None:
    with running_node() as h:
        coid = h.do(limit_buy("40000.00"))
        h.wait_for(OrderAccepted, coid)
        h.do(lambda ctx: ctx.cancel_order(coid))
        h.wait_for(OrderCanceled, coid)
        assert h.order(coid).status is OrderStatus.CANCELED
        assert h.open_orders() == ()


def test_native_amend_moves_price_both_ways_and_reduces_quantity() -> None:
    with running_node() as h:
        coid = h.do(limit_buy("40000.00"))
        h.wait_for(OrderAccepted, coid)
        h.do(lambda ctx: ctx.modify_order(coid, price=D("41000.00")))
        h.wait_for(OrderModified, coid)
        h.do(lambda ctx: ctx.modify_order(coid, price=D("39000.00"), quantity=D("0.3")))
        modified = h.wait_for(OrderModified, coid, count=2)[1]
        assert (modified.price, modified.quantity) == (D("39000.00"), D("0.3"))
        view = h.order(coid)
        assert (view.order.price, view.order.quantity, view.status) == (
            D("39000.00"),
            D("0.3"),
            OrderStatus.ACCEPTED,
        )


def test_cancel_replace_links_two_orders_and_never_resurrects_fills() -> None:
    with running_node() as h:
        coid = h.do(limit_buy("49000.00", quantity="1.0", venue="paper2"))
        h.wait_for(OrderAccepted, coid)
        h.node.venues["paper2"].set_price("BTCUSDT", D("48990.00"))
        h.wait_for(OrderFilled, coid)
        new = h.do(lambda ctx: ctx.modify_order(coid, quantity=D("0.8"), price=D("48000.00")))
        h.wait_for(OrderCanceled, coid)
        h.wait_for(OrderAccepted, new)
        replacement = h.order(new)
        assert replacement.order.quantity == D("0.3")
        assert h.node.oms_store.state.replaced_by(coid) == new
        h.node.venues["paper2"].set_price("BTCUSDT", D("47000.00"))
        h.wait_status(new, OrderStatus.FILLED)
        assert (
            h.position("BTCUSDT", "paper2")
            == D("0.8")
            == h.node.venues["paper2"].position("BTCUSDT")
        )


def test_modify_of_an_unknown_order_is_refused_cleanly() -> None:
    with running_node() as h:
        coid = h.do(market(Side.BUY, "0.1"))
        h.wait_status(coid, OrderStatus.FILLED)
        from tradenode.messages import ModifyOrder

        h.node.risk.tell(
            ModifyOrder(client_order_id=coid, venue="paper", symbol="BTCUSDT", price=D("1.00"))
        )
        h.wait_for(ModifyRejected, coid)


@pytest.mark.parametrize("venue", ["slow", "slow_replace"])
def test_a_modify_waits_for_the_venue_to_acknowledge_the_order(venue: str) -> None:
    amend = "cancel_replace" if venue == "slow_replace" else "native"
    with running_node() as h:
        h.node.add_venue(
            VenueConfig(
                name=venue,
                paper={"latency_ms": 500, "tick_interval_ms": 1000, "amend": amend},
            )
        )
        coid = h.do(limit_buy("49000.00", venue=venue))
        h.wait_for(OrderSubmitted, coid)
        refused = h.do(lambda ctx: ctx.modify_order(coid, price=D("48000.00")))
        rejected = h.wait_for(ModifyRejected, coid)[0]
        assert rejected.code == "NOT_ACKNOWLEDGED"
        h.sync()
        assert h.order(coid).status is OrderStatus.SUBMITTED
        if refused != coid:
            assert h.node.oms_store.state.get(refused) is None, "no replacement was registered"
        assert all(o.price == D("49000.00") for o in h.node.venues[venue].open_orders())

        h.clock.advance(1.0)
        h.wait_for(OrderAccepted, coid)
        modified = h.do(lambda ctx: ctx.modify_order(coid, price=D("48000.00")))
        h.sync()
        h.clock.advance(1.0)
        if venue == "slow_replace":
            h.wait_for(OrderAccepted, modified)
        else:
            h.wait_for(OrderModified, coid)
        assert [o.price for o in h.node.venues[venue].open_orders()] == [D("48000.00")]


def test_execution_decisions_become_orders_toward_a_target_position() -> None:
    with running_node() as h:

        def decide(action: DecisionAction, size: str) -> Any:
            return lambda ctx: ctx.execute_decision(
                ExecutionDecision(strategy_id="s1", symbol="ETHUSDT", action=action, size=D(size))
            )

        long = h.do(decide(DecisionAction.LONG, "2"))
        h.wait_status(long, OrderStatus.FILLED)
        assert h.do(decide(DecisionAction.HOLD, "0")) is None
        h.sync()
        short = h.do(decide(DecisionAction.SHORT, "1"))
        h.wait_status(short, OrderStatus.FILLED)
        assert h.order(short).order.quantity == D("3")
        flat = h.do(decide(DecisionAction.FLAT, "0"))
        h.wait_status(flat, OrderStatus.FILLED)
        assert h.position("ETHUSDT") == D("0")


def test_invalid_orders_from_a_strategy_are_denied_with_a_reason_not_raised() -> None:
    with running_node() as h:
        coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("-1")))
        denial = h.wait_for(OrderDenied, coid)[0]
        assert denial.code.value == "INVALID_ORDER" and "quantity" in denial.reason
        assert h.do(market(Side.BUY, "0.1"))


def test_orders_for_an_absent_venue_are_refused_and_a_venue_added_at_runtime_takes_orders() -> None:
    with running_node() as h:
        coid = h.do(market(Side.BUY, "0.1", venue="late"))
        assert h.wait_for(OrderDenied, coid)[0].code.value == "VENUE_UNAVAILABLE"
        h.node.add_venue(VenueConfig(name="late", paper={"tick_interval_ms": 1000}))
        coid = h.do(market(Side.BUY, "0.1", venue="late"))
        h.wait_status(coid, OrderStatus.FILLED)
        assert h.position("BTCUSDT", "late") == D("0.1")
        assert h.node.remove_venue("late")
        coid = h.do(market(Side.BUY, "0.1", venue="late"))
        assert h.wait_for(OrderDenied, coid)[0].code.value == "VENUE_UNAVAILABLE"


def test_venue_rejections_reach_the_strategy_with_the_venue_code() -> None:
    with running_node() as h:
        coid = h.do(limit_buy("50000.00", quantity="1000"))
        rejected = h.wait_for(OrderRejected, coid)[0]
        assert rejected.code == "INSUFFICIENT_BALANCE"
        assert h.order(coid).status is OrderStatus.REJECTED


def test_fills_for_a_strategy_are_queryable() -> None:
    with running_node() as h:
        coid = h.do(market(Side.BUY, "0.7"))
        h.wait_status(coid, OrderStatus.FILLED)
        fills = h.node.oms.ask(GetFills(strategy_id="s1"))
        assert sum(f.last_quantity for f in fills) == D("0.7")
