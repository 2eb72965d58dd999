"""Fault scenarios: the Binance adapter through a running node, the local venue misbehaving.

In every scenario, after the supervisor has restarted the broker actor as
often as it took: every fill the venue made reached the OMS exactly once,
positions equal the venue's own account, and the venue's order list shows
no order placed twice.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tradenode.actors import GetFills, GetMetrics, Outcome
from tradenode.messages import OrderStatus, Side, TradingState, TradingStateChanged
from tradenode.supervision import (
    EventRecorder,
    ManualClock,
    SupervisionEvent,
    SupervisionEventKind,
)
from tradenode.testing.venues import DEFAULT_BALANCES, BinanceVenue

from ._binance_helpers import (
    BinanceHarness,
    binance_node,
    limit,
    market,
    venue_clock,
)

D = Decimal
K = SupervisionEventKind
BROKER = "/bnode/brokers/binance/broker"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=23, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def supervision(h: BinanceHarness) -> EventRecorder:
    recorder = EventRecorder()
    h.node.system.events.subscribe(recorder)
    return recorder


def event(kind: SupervisionEventKind, generation: int | None = None) -> Any:
    return lambda e: (
        isinstance(e, SupervisionEvent)
        and e.kind is kind
        and e.path == BROKER
        and (generation is None or e.generation == generation)
    )


def restart(h: BinanceHarness, events: EventRecorder, generation: int) -> None:
    """Let the supervisor's backoff for ``generation`` elapse and wait for the restart."""
    scheduled = events.wait_for(event(K.RESTART_SCHEDULED, generation))[0]
    h.clock.advance(scheduled.delay)
    events.wait_for(event(K.RESTARTED, generation))


def assert_exactly_once(h: BinanceHarness) -> None:
    h.sync()
    venue = h.venue
    for symbol, asset in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        assert h.position(symbol) == h.venue_base_change(asset, DEFAULT_BALANCES[asset]), symbol
    fills = [f for f in h.node.oms.ask(GetFills()) if f.venue == "binance"]
    executions = [f.execution_id for f in fills]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert set(executions) == {f"binance-{t.symbol}-{t.trade_id}" for t in venue.trades()}
    ids = [order.client_order_id for order in venue.orders()]
    assert len(ids) == len(set(ids)), "an order was placed twice"
    for order in venue.orders():
        view = h.order(order.client_order_id)
        assert view.filled_quantity == order.executed_qty, order.client_order_id


def test_stream_dropped_mid_fill_then_fills_while_down_arrive_once(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        events = supervision(h)
        coid = h.do(limit(Side.BUY, "49900.00", "1.2"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        venue.set_price("BTCUSDT", D("49800.00"))
        h.wait_status(coid, OrderStatus.PARTIALLY_FILLED)

        venue.drop_streams()
        events.wait_for(event(K.RESTART_SCHEDULED, 2))
        venue.set_price("BTCUSDT", D("49790.00"))
        venue.set_price("BTCUSDT", D("49780.00"))
        assert h.order(coid).filled_quantity == D("0.5")

        restart(h, events, 2)
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("1.2")
        assert_exactly_once(h)


def test_venue_down_for_a_while_then_back(venue: BinanceVenue, clock: ManualClock) -> None:
    with binance_node(venue, clock=clock) as h:
        events = supervision(h)
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        resting = h.do(limit(Side.BUY, "49900.00", "0.5"))
        h.wait_status(resting, OrderStatus.ACCEPTED)

        venue.down()
        events.wait_for(event(K.RESTART_SCHEDULED, 2))
        while_down = h.do(market(Side.BUY, "0.2"))
        # At the breaker before the clock moves: its deadline is taken from the clock
        # when it arrives there, and one that arrived after the advances below (a
        # loaded machine) would still be valid when the venue is back, and sent once,
        # with no lookup for this test to see.
        h.sync()
        venue.set_price("BTCUSDT", D("49800.00"))
        for generation in (2, 3, 4):
            scheduled = events.wait_for(event(K.RESTART_SCHEDULED, generation))[0]
            h.clock.advance(scheduled.delay)
            events.wait_for(event(K.RESTART_SCHEDULED, generation + 1))
        assert h.order(while_down).status is not OrderStatus.FILLED

        venue.up()
        restart(h, events, 5)
        h.wait_status(resting, OrderStatus.FILLED)
        # The breaker stopped waiting for the order sent while the venue was
        # down: it asks the venue for it and finds nothing. That proves only
        # "not yet" while a copy signed before the deadline could still be
        # accepted (deadline + recvWindow + the clock margin), so it asks again
        # once that has passed, finds nothing, and only then sends it again
        # under the same id (the stale copy in the mailbox is never sent).
        h.sync()
        h.clock.advance(1.0)
        replies.wait_for(lambda reply: reply.outcome is Outcome.NOT_FOUND)
        h.sync()
        assert while_down not in venue.submissions(), "re-sent inside the acceptance window"
        h.clock.advance(5.0 + 1.0)
        h.wait_status(while_down, OrderStatus.FILLED)
        assert venue.submissions()[while_down] == 1
        assert_exactly_once(h)


def test_duplicated_and_reordered_events_change_nothing(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        venue.duplicate_events(8)
        first = h.do(market(Side.BUY, "1.2"))
        h.wait_status(first, OrderStatus.FILLED)
        venue.reorder_events(4)
        second = h.do(market(Side.BUY, "0.6", "ETHUSDT"))
        resting = h.do(limit(Side.BUY, "49900.00", "0.7"))
        h.wait_status(second, OrderStatus.FILLED)
        venue.set_price("BTCUSDT", D("49800.00"))
        venue.set_price("BTCUSDT", D("49790.00"))
        h.wait_status(resting, OrderStatus.FILLED)
        assert_exactly_once(h)
        assert h.position("BTCUSDT") == D("1.9")


def test_a_submit_answered_with_unknown_status_that_reached_the_venue_is_never_resent(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        venue.fail_requests(1, after=True, endpoints=["POST order"])
        coid = h.do(market(Side.BUY, "0.3"))
        h.sync()
        assert venue.submissions()[coid] == 1
        h.clock.advance(0.5)
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(10)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_exactly_once(h)


def test_a_submit_lost_before_the_venue_is_sent_again_under_the_same_id(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        venue.fail_requests(1, after=False, endpoints=["POST order"])
        coid = h.do(market(Side.BUY, "0.3"))
        # Each step waits for the breaker to take in the venue's answer (and
        # plan its next move) before the clock moves on.
        replies.wait_for(lambda r: r.outcome is Outcome.TRANSPORT)
        h.node.failure_stats("binance")
        assert coid not in {o.client_order_id for o in venue.orders()}
        h.clock.advance(0.5)
        replies.wait_for(lambda r: r.outcome is Outcome.NOT_FOUND)
        h.node.failure_stats("binance")
        # "Not found" proves only "not yet": a copy signed before the failure
        # could be accepted for recvWindow (5 s) plus the clock margin (1 s).
        h.clock.advance(1.0)
        h.node.failure_stats("binance")
        assert coid not in venue.submissions(), "re-sent inside the acceptance window"
        h.clock.advance(5.0)
        h.wait_status(coid, OrderStatus.FILLED)
        assert [o.client_order_id for o in venue.orders()] == [coid]
        assert_exactly_once(h)


def test_a_request_that_times_out_but_reached_the_venue_is_adopted_not_resent(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    reached = threading.Event()

    def listen(venue_event: Any) -> None:
        payload = getattr(venue_event, "payload", None)
        if isinstance(payload, dict) and payload.get("e") == "executionReport":
            reached.set()

    venue.exchange.add_listener(listen)
    with binance_node(venue, clock=clock, request_timeout=0.3) as h:
        venue.delay_requests(1, 1.0, endpoints=["POST order"])
        coid = h.do(market(Side.BUY, "0.3"))
        assert reached.wait(10), "the delayed order never reached the venue"
        h.sync()
        h.clock.advance(0.5)
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(10)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_exactly_once(h)


@pytest.mark.parametrize("kind", ["invalid_json", "unknown_event", "missing_field"])
def test_a_malformed_event_is_counted_and_at_most_restarts_the_broker(
    venue: BinanceVenue, clock: ManualClock, kind: str
) -> None:
    with binance_node(venue, clock=clock) as h:
        events = supervision(h)
        link = h.node.venues["binance"]
        venue.corrupt_next_event(kind)
        coid = h.do(market(Side.BUY, "0.3"))
        # The event might have been a fill: the broker fails so that the next
        # incarnation reconciles the order's trades from the venue.
        restart(h, events, 2)
        assert link.malformed_payloads == 1
        h.wait_status(coid, OrderStatus.FILLED)
        later = h.do(market(Side.BUY, "0.1"))
        h.wait_status(later, OrderStatus.FILLED)
        assert not h.node.failed
        assert_exactly_once(h)


@pytest.mark.parametrize("announcement", ["server_shutdown", "terminate_user_streams"])
def test_server_shutdown_and_stream_termination_restart_and_reconcile(
    venue: BinanceVenue, clock: ManualClock, announcement: str
) -> None:
    with binance_node(venue, clock=clock) as h:
        events = supervision(h)
        coid = h.do(limit(Side.BUY, "49900.00", "0.5"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        getattr(venue, announcement)()
        events.wait_for(event(K.RESTART_SCHEDULED, 2))
        venue.set_price("BTCUSDT", D("49800.00"))
        restart(h, events, 2)
        h.wait_status(coid, OrderStatus.FILLED)
        assert h.node.venues["binance"].connections == 2
        assert_exactly_once(h)


def test_a_reconnect_fetches_trades_only_for_orders_that_executed(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        events = supervision(h)
        resting = h.do(limit(Side.BUY, "49000.00", "0.5"))
        partly = h.do(limit(Side.BUY, "49900.00", "1.2"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        h.wait_status(partly, OrderStatus.ACCEPTED)
        venue.set_price("BTCUSDT", D("49890.00"))
        h.wait_status(partly, OrderStatus.PARTIALLY_FILLED)
        before = venue.calls()
        venue.server_shutdown()
        restart(h, events, 2)
        after = venue.calls()
        assert after["GET openOrders"] == before.get("GET openOrders", 0) + 1
        # One page of trades past the cursor for each symbol the venue trades
        # (BTCUSDT, ETHUSDT: a fill we never saw could be on either), one for
        # the partly filled order; none for the order that never traded.
        assert after["GET myTrades"] - before.get("GET myTrades", 0) == 2 + 1
        assert h.order(resting).status is OrderStatus.ACCEPTED
        assert_exactly_once(h)


def test_a_reconnect_told_to_slow_down_waits_the_retry_after_and_is_never_banned(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        events = supervision(h)
        coid = h.do(limit(Side.BUY, "49900.00", "0.5"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        venue.server_shutdown()
        venue.rate_limit(1, retry_after=7)
        h.clock.advance(events.wait_for(event(K.RESTART_SCHEDULED, 2))[0].delay)
        failed = events.wait_for(event(K.RESTART_SCHEDULED, 3))[0]
        assert failed.delay == 7, "restarting before Retry-After earns a 418 ban"
        venue.set_price("BTCUSDT", D("49800.00"))
        h.clock.advance(6.9)
        assert not any(event(K.RESTARTED, 3)(e) for e in events.items)
        h.clock.advance(0.1)
        events.wait_for(event(K.RESTARTED, 3))
        h.wait_status(coid, OrderStatus.FILLED)
        assert not [e for e in events.items if event(K.RESTART_SCHEDULED, 4)(e)]
        assert_exactly_once(h)


def test_the_broker_answers_the_venues_pings_and_stays_connected(clock: ManualClock) -> None:
    answered = threading.Semaphore(0)
    with BinanceVenue(
        seed=4, clock=venue_clock(clock), ping_interval=0.05, pong_timeout=0.5
    ) as pinging:
        pinging.pong_listeners.append(answered.release)
        with binance_node(pinging, clock=clock) as h:
            for _ in range(6):
                assert answered.acquire(timeout=10), "a ping went unanswered"
            coid = h.do(market(Side.BUY, "0.1"))
            h.wait_status(coid, OrderStatus.FILLED)
            assert h.node.venues["binance"].connections == 1


def test_periodic_checks_turn_an_unexplained_balance_change_into_a_drift_and_reducing(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        coid = h.do(market(Side.BUY, "0.2"))
        h.wait_status(coid, OrderStatus.FILLED)
        check = h.periodic_check

        check()
        check()
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 0
        venue.deposit("BTC", D("1"))
        seen = h.events()
        check()
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 0, "one look is not a drift"
        check()
        state = seen.wait_for(
            lambda m: isinstance(m, TradingStateChanged) and m.state is TradingState.REDUCING
        )[0]
        assert "drift" in state.reason
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 1
