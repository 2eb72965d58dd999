"""Fault scenarios against a running node: the breaker, crashes, duplicates, the kill switch."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tradenode.actors import GetFills, GetRiskStatus

# The paper codec is private: its mapping is the oracle these checks compare the node with.
from tradenode.brokers.paper._codec import STATUS_MAP, stream_event_to_message
from tradenode.messages import (
    OrderAccepted,
    OrderDenied,
    OrderRejected,
    OrderStatus,
    OrderType,
    Side,
)
from tradenode.supervision import EventRecorder, SupervisionEvent, SupervisionEventKind

from ._node_helpers import Harness, running_node

K = SupervisionEventKind


def market(side: Side, quantity: str, symbol: str = "BTCUSDT", venue: str = "paper") -> Any:
    return lambda ctx: ctx.submit_order(symbol, side, D(quantity), venue=venue)


def limit(
    side: Side, price: str, quantity: str, symbol: str = "BTCUSDT", venue: str = "paper"
) -> Any:
    return lambda ctx: ctx.submit_order(
        symbol, side, D(quantity), order_type=OrderType.LIMIT, price=D(price), venue=venue
    )


def supervision_events(h: Harness) -> EventRecorder:
    recorder = EventRecorder()
    h.node.system.events.subscribe(recorder)
    return recorder


def is_event(kind: SupervisionEventKind, path: str, generation: int | None = None) -> Any:
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == path
        and (generation is None or e.generation == generation)
    )


def assert_books_agree(h: Harness, venue_name: str = "paper") -> None:
    """The OMS and the venue agree on every fill, every position and every order's state."""
    venue = h.node.venues[venue_name]
    venue_fills = {f"{venue_name}-{fill.trade_id}": fill for fill in venue.fills()}
    oms_fills = [f for f in h.node.oms.ask(GetFills()) if f.venue == venue_name]
    assert sorted(f.execution_id for f in oms_fills) == sorted(venue_fills)
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        assert h.position(symbol, venue_name) == venue.position(symbol), symbol
    for fill in oms_fills:
        order = venue.order(fill.client_order_id)
        assert order is not None
        assert h.order(fill.client_order_id).status is STATUS_MAP[order.status]


def test_breaker_goes_closed_open_half_open_closed_driven_by_a_failing_venue() -> None:
    with running_node() as h:
        venue = h.node.venues["paper"]
        venue.fail_next_requests(3)
        failed = [h.do(market(Side.BUY, "0.1")) for _ in range(3)]
        h.sync()
        stats = h.node.failure_stats("paper")
        assert (stats.circuit_state, stats.failure_count) == ("open", 3)
        refused = h.do(market(Side.BUY, "0.1"))
        rejection = h.wait_for(OrderRejected, refused)[0]
        assert rejection.code == "CIRCUIT_OPEN" and "OPEN" in rejection.reason
        h.clock.advance(0.5)
        for coid in failed:
            assert h.wait_for(OrderRejected, coid)[0].code == "CIRCUIT_OPEN"
        assert all(venue.order(coid) is None for coid in [*failed, refused])
        h.clock.advance(10.0)
        probe = h.do(market(Side.BUY, "0.1"))
        h.wait_status(probe, OrderStatus.FILLED)
        h.sync()
        stats = h.node.failure_stats("paper")
        assert stats.circuit_state == "closed"
        changes = [(c.from_state.value, c.to_state.value) for c in stats.breaker.state_changes]
        assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
        assert_books_agree(h)


def test_business_rejections_never_open_the_breaker() -> None:
    with running_node() as h:
        for _ in range(5):
            coid = h.do(limit(Side.BUY, "50000.00", "1000"))
            assert h.wait_for(OrderRejected, coid)[0].code == "INSUFFICIENT_BALANCE"
        h.sync()
        stats = h.node.failure_stats("paper")
        assert (stats.circuit_state, stats.failure_count) == ("closed", 0)


def test_a_submit_whose_answer_was_lost_is_resolved_by_query_and_never_sent_twice() -> None:
    with running_node() as h:
        venue = h.node.venues["paper"]
        venue.fail_next_requests(1, after_processing=True)
        coid = h.do(market(Side.BUY, "0.3"))
        h.wait_status(coid, OrderStatus.FILLED)
        # The fill travels on the venue's stream and can reach the OMS before the broker has
        # taken in the lost answer and scheduled its lookup: let the node settle first, so the
        # lookup's timer exists before the clock moves past it.
        h.sync()
        requests_before = venue.requests_seen
        h.clock.advance(0.5)
        h.sync()
        assert venue.requests_seen == requests_before + 1
        assert not any(
            isinstance(m, OrderRejected) and m.code == "DUPLICATE_CLIENT_ORDER_ID"
            for m in h.events().items
        )
        assert venue.position("BTCUSDT") == D("0.3")
        assert_books_agree(h)


def test_a_submit_lost_before_the_venue_is_resent_once_under_the_same_id() -> None:
    with running_node() as h:
        venue = h.node.venues["paper"]
        venue.fail_next_requests(1)
        coid = h.do(market(Side.BUY, "0.3"))
        h.sync()
        assert venue.order(coid) is None
        h.clock.advance(0.5)
        h.wait_status(coid, OrderStatus.FILLED)
        assert venue.order(coid) is not None and venue.position("BTCUSDT") == D("0.3")
        assert_books_agree(h)


def test_broker_crash_mid_flow_loses_and_doubles_nothing() -> None:
    with running_node() as h:
        events = supervision_events(h)
        venue = h.node.venues["paper"]
        resting = [
            h.do(limit(Side.BUY, price, "0.3")) for price in ("49900.00", "49800.00", "49700.00")
        ]
        for coid in resting:
            h.wait_for(OrderAccepted, coid)
        first = h.do(market(Side.BUY, "0.7"))
        h.wait_status(first, OrderStatus.FILLED)

        venue.drop_sessions()
        events.wait_for(is_event(K.RESTART_SCHEDULED, "/testnode/brokers/paper/broker", 2))
        venue.set_price("BTCUSDT", D("49850.00"))
        while_down = h.do(market(Side.BUY, "0.2"))
        assert venue.order(resting[0]) is not None and venue.order(resting[0]).filled_quantity == D(
            "0.3"
        )
        assert h.order(resting[0]).status is OrderStatus.ACCEPTED

        h.clock.advance(0.5)
        events.wait_for(is_event(K.RESTARTED, "/testnode/brokers/paper/broker", 2))
        h.wait_status(resting[0], OrderStatus.FILLED)
        h.wait_status(while_down, OrderStatus.FILLED)
        venue.set_price("BTCUSDT", D("49650.00"))
        for coid in resting[1:]:
            h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        assert_books_agree(h)
        assert h.position("BTCUSDT") == D("0.7") + D("0.9") + D("0.2")


def test_duplicated_and_reordered_execution_reports_change_nothing() -> None:
    with running_node() as h:
        venue = h.node.venues["paper"]
        venue.duplicate_events(True)
        coid = h.do(market(Side.BUY, "1.2"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        assert_books_agree(h)
        venue.duplicate_events(False)
        replay = [stream_event_to_message("paper", fill) for fill in venue.fills()]
        accepted = OrderAccepted(client_order_id=coid, venue="paper", venue_order_id="1")
        for report in [*reversed(replay), accepted, *replay]:
            h.node.oms.tell(report)
        h.sync()
        assert_books_agree(h)
        assert len(h.node.oms.ask(GetFills(client_order_id=coid))) == 3
        assert h.order(coid).filled_quantity == D("1.2")


def test_malformed_venue_payloads_are_counted_and_never_stop_the_node() -> None:
    with running_node() as h:
        events = supervision_events(h)
        venue = h.node.venues["paper"]
        venue.corrupt_next_event(2)
        coid = h.do(market(Side.BUY, "0.1"))
        h.wait_status(coid, OrderStatus.FILLED)
        assert not any(e.kind is K.FAILED for e in events.items)
        assert_books_agree(h)


def test_a_strategy_that_raises_is_restarted_alone() -> None:
    with running_node() as h:
        events = supervision_events(h)
        other = h.do(limit(Side.BUY, "40000.00", "0.1"), strategy_id="s2")
        h.wait_for(OrderAccepted, other, strategy_id="s2")
        bought = h.do(market(Side.BUY, "0.2"))
        h.wait_status(bought, OrderStatus.FILLED)

        def boom(ctx: Any) -> None:
            raise RuntimeError("strategy bug")

        with pytest.raises(RuntimeError, match="strategy bug"):
            h.do(boom)
        events.wait_for(is_event(K.RESTARTED, "/testnode/core/strategies/s1", 2))
        assert h.do(lambda ctx: ctx.position("BTCUSDT")) == D("0.2")
        assert h.do(lambda ctx: list(ctx.open_orders()), strategy_id="s2") == [other]
        paths = {e.path for e in events.items if e.kind in (K.FAILED, K.RESTARTED)}
        assert paths == {"/testnode/core/strategies/s1"}
        again = h.do(market(Side.SELL, "0.2"))
        h.wait_status(again, OrderStatus.FILLED)
        assert h.position("BTCUSDT") == D("0")


def test_kill_switch_cancels_everything_on_two_venues_and_flattens() -> None:
    with running_node() as h:
        opened = []
        for venue in ("paper", "paper2"):
            bought = h.do(market(Side.BUY, "0.3", venue=venue))
            h.wait_status(bought, OrderStatus.FILLED)
            for price in ("40000.00", "41000.00"):
                coid = h.do(limit(Side.BUY, price, "0.1", venue=venue))
                h.wait_for(OrderAccepted, coid)
                opened.append(coid)
        report = h.node.kill_switch(flatten=True, timeout=30)
        assert report.open_orders_found == 4 and report.cancels_confirmed == 4
        assert report.complete and len(report.flatten_orders) == 2
        assert all(p.quantity == 0 for p in report.positions_after)
        assert report.total_seconds >= report.cancel_seconds >= 0
        assert h.open_orders() == ()
        for coid in opened:
            assert h.order(coid).status is OrderStatus.CANCELED
        assert h.node.risk.ask(GetRiskStatus())["state"] == "HALTED"
        denied = h.do(market(Side.BUY, "0.1"))
        assert h.wait_for(OrderDenied, denied)[0].code.value == "TRADING_HALTED"
        for venue in ("paper", "paper2"):
            assert_books_agree(h, venue)


def test_fills_while_the_stream_is_down_are_not_applied_twice_after_many_restarts() -> None:
    with running_node() as h:
        events = supervision_events(h)
        venue = h.node.venues["paper"]
        for generation in range(2, 5):
            coid = h.do(limit(Side.BUY, "49990.00", "0.1"))
            h.wait_for(OrderAccepted, coid)
            venue.drop_sessions()
            venue.set_price("BTCUSDT", D("49980.00"))
            backoff = events.wait_for(
                is_event(K.RESTART_SCHEDULED, "/testnode/brokers/paper/broker", generation)
            )[0]
            h.clock.advance(backoff.delay)
            events.wait_for(is_event(K.RESTARTED, "/testnode/brokers/paper/broker", generation))
            h.wait_status(coid, OrderStatus.FILLED)
            venue.set_price("BTCUSDT", D("50000.00"))
        h.sync()
        assert_books_agree(h)
        assert h.position("BTCUSDT") == D("0.3")
