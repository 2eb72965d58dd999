"""The Alpaca adapter through a running node, against the local fake Alpaca on loopback.

Lifecycles with partial fills, replace (a new order id linked as one logical
order), cancel, cancel-all with per-order failures reported, quotes; then the
faults: ``trade_updates`` dropped mid-fill (restart, reconcile over REST,
every fill exactly once, positions equal the venue's), events lost on a live
stream (the gap is seen and swept), duplicated and reordered events, a
malformed event (counted, swept), a submit whose answer is lost (looked up by
client order id, never sent twice), a 5xx before processing (never re-sent
blindly), 403/422 (business refusals), 429 (rate limited, waits), the market
clock (deny or queue), an unknown symbol (a config error naming it), and the
secret never printed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import ConfigError
from tradenode.actors import Outcome
from tradenode.messages import (
    CancelRejected,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import AlpacaVenue

from ._alpaca_helpers import AlpacaHarness, K, alpaca_node, event, limit, market, venue_clock
from ._node_helpers import Scripted

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[AlpacaVenue]:
    with AlpacaVenue(seed=7, clock=venue_clock(clock)) as local_venue:
        local_venue.freeze_prices()
        local_venue.set_market_open(True)
        local_venue.set_price("AAPL", D("190.00"))
        local_venue.set_price("MSFT", D("420.00"))
        yield local_venue


@pytest.fixture
def h(venue: AlpacaVenue, clock: ManualClock) -> Iterator[AlpacaHarness]:
    with alpaca_node(venue, clock=clock) as harness:
        yield harness


def execution_id(order_id: str, cumulative: Decimal) -> str:
    return f"alpaca-{order_id}-{format(cumulative.normalize(), 'f')}"


def assert_exactly_once(h: AlpacaHarness) -> None:
    """Every fill the venue made reached the OMS once; positions equal the venue's;
    no client order id was placed twice."""
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert set(executions) == {execution_id(f.order_id, f.cum_qty) for f in h.venue.fills()}
    for symbol in ("AAPL", "MSFT"):
        assert h.position(symbol) == h.venue.position(symbol), symbol
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()


def venue_order(venue: AlpacaVenue, client_order_id: str) -> Any:
    (order,) = [o for o in venue.orders() if o.client_order_id == client_order_id]
    return order


# -- lifecycles ---------------------------------------------------------------------------------


def test_a_market_order_fills_and_the_position_equals_the_venues(h: AlpacaHarness) -> None:
    coid = h.do(market(Side.BUY, "10"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == 10
    assert view.venue_order_id == venue_order(h.venue, coid).id
    sold = h.do(market(Side.SELL, "4", time_in_force=TimeInForce.DAY))
    h.wait_status(sold, OrderStatus.FILLED)
    assert h.position("AAPL") == 6
    assert_exactly_once(h)


def test_a_resting_limit_order_fills_in_parts_each_part_once(h: AlpacaHarness) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "250"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("AAPL", D("188.95"))
    partly = h.wait_status(coid, OrderStatus.PARTIALLY_FILLED)
    assert 0 < partly.filled_quantity < 250
    for step in range(10):
        if venue_order(h.venue, coid).filled_qty == 250:
            break
        h.venue.set_price("AAPL", D("188.90") - D("0.05") * step)
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.fill_count == len([f for f in h.venue.fills() if f.client_order_id == coid]) >= 2
    assert h.link().stream_fills == view.fill_count
    assert_exactly_once(h)


def test_fractional_shares_where_the_asset_allows_them(h: AlpacaHarness) -> None:
    coid = h.do(market(Side.BUY, "0.5", time_in_force=TimeInForce.DAY))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.5")
    whole = h.do(market(Side.BUY, "0.5", symbol="SIRI", time_in_force=TimeInForce.DAY))
    view = h.wait_status(whole, OrderStatus.REJECTED)
    assert view.rejection_code == "NOT_FRACTIONABLE"
    assert whole not in h.venue.submissions()
    assert_exactly_once(h)


def test_cancel(h: AlpacaHarness) -> None:
    coid = h.do(limit(Side.BUY, "180.00", "5"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    h.sync()
    assert venue_order(h.venue, coid).status == "canceled"
    assert len([m for m in h.events().items if isinstance(m, OrderCanceled)]) == 1
    assert_exactly_once(h)


def test_a_replace_is_a_new_order_id_linked_as_one_logical_order(h: AlpacaHarness) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "250"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("AAPL", D("188.95"))
    filled = h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity
    h.venue.set_price("AAPL", D("190.00"))
    new = h.do(lambda ctx: ctx.modify_order(coid, quantity=D(300), price=D("185.00")))
    assert new is not None and new != coid
    view = h.wait_status(new, OrderStatus.ACCEPTED)
    assert view.replacement_of == coid
    h.wait_status(coid, OrderStatus.CANCELED)  # its ``replaced`` event
    old, replacement = venue_order(h.venue, coid), venue_order(h.venue, new)
    # At the venue: a new order id, each naming the other, for what is left of the total.
    assert old.status == "replaced" and old.replaced_by == replacement.id
    assert replacement.replaces == old.id and replacement.id != old.id
    assert replacement.qty == 300 - filled and replacement.limit_price == D("185.00")
    assert h.order(new).venue_order_id == replacement.id
    for step in range(10):
        if venue_order(h.venue, new).filled_qty == 300 - filled:
            break
        h.venue.set_price("AAPL", D("184.95") - D("0.05") * step)
    h.wait_status(new, OrderStatus.FILLED)
    assert h.position("AAPL") == 300
    assert_exactly_once(h)


def test_cancel_all_reports_each_order_whose_cancel_failed(h: AlpacaHarness) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("alpaca", replies)
    resting = [h.do(limit(Side.BUY, price, "5")) for price in ("180.00", "181.00", "182.00")]
    for coid in resting:
        h.wait_status(coid, OrderStatus.ACCEPTED)
    stuck = venue_order(h.venue, resting[1]).id
    h.venue.fail_cancel_all_for(stuck)
    reports: list[Any] = []
    done = threading.Event()

    def engage() -> None:
        reports.append(h.node.kill_switch(flatten=False, timeout=30))
        done.set()

    threading.Thread(target=engage, daemon=True).start()
    reply = replies.wait_for(lambda r: r.outcome is Outcome.OK and "cancels taken" in r.detail)[0]
    assert "2 of 3 cancels taken" in reply.detail and stuck in reply.detail
    refused = h.wait_for(CancelRejected, resting[1])[0]
    assert refused.reason.startswith("cancel-all")
    assert h.link().cancel_all_failures == 1
    for coid in (resting[0], resting[2]):
        h.wait_status(coid, OrderStatus.CANCELED)
    # The kill switch cancels what is still open order by order, a moment later.
    for _ in range(30):
        if done.is_set():
            break
        h.clock.advance(1)
        h.sync()
        done.wait(0.1)  # the kill switch's own thread: a condition with a deadline
    assert done.is_set() and reports[0].complete, reports
    assert h.order(resting[1]).status is OrderStatus.CANCELED
    assert not [o for o in h.venue.orders() if o.is_open]
    assert_exactly_once(h)


class Watcher(Scripted):
    venue = "alpaca"


def test_quotes_stream_from_the_market_data_stream(h: AlpacaHarness) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=("AAPL",)))
    h.venue.wait_for(lambda: h.venue.data_subscribers("quotes", "AAPL") >= 1)
    h.venue.set_price("AAPL", D("191.00"))
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.symbol == "AAPL" and m.bid <= D("191") <= m.ask
    )[0]
    assert quote.venue == "alpaca"


# -- trade_updates faults ------------------------------------------------------------------------


def test_trade_updates_dropped_mid_fill_then_reconnect_every_fill_once(
    venue: AlpacaVenue, clock: ManualClock
) -> None:
    with alpaca_node(venue, clock=clock) as h:
        coid = h.do(limit(Side.BUY, "189.00", "250"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        venue.set_price("AAPL", D("188.95"))
        partly = h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity
        venue.down()
        h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
        # The rest fills while nobody listens: there is no replay on this stream.
        for step in range(10):
            if venue_order(venue, coid).filled_qty == 250:
                break
            venue.set_price("AAPL", D("188.90") - D("0.05") * step)
        h.sync()
        assert h.order(coid).filled_quantity == partly
        venue.up()
        h.restart(2)
        h.wait_status(coid, OrderStatus.FILLED)
        link = h.link()
        assert link.connections == 2 and link.swept_fills >= 1
        assert h.position("AAPL") == venue.position("AAPL") == 250
        assert_exactly_once(h)


def test_fill_events_lost_on_a_live_stream_are_swept_in_order(h: AlpacaHarness) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "250"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.drop_events(1)
    h.venue.set_price("AAPL", D("188.95"))  # its partial_fill event is lost
    h.venue.set_price("AAPL", D("188.90"))  # the next one shows the gap
    for step in range(10):
        if venue_order(h.venue, coid).filled_qty == 250:
            break
        h.venue.set_price("AAPL", D("188.85") - D("0.05") * step)
    h.wait_status(coid, OrderStatus.FILLED)
    assert h.link().swept_fills >= 1 and h.link().connections == 1
    assert_exactly_once(h)


def test_duplicated_and_reordered_events_change_nothing(h: AlpacaHarness) -> None:
    h.venue.duplicate_events(3)
    first = h.do(market(Side.BUY, "10"))
    h.wait_status(first, OrderStatus.FILLED)
    h.venue.reorder_events(2)
    second = h.do(market(Side.BUY, "7"))
    h.venue.wait_for(lambda: True)
    h.venue.release_events()
    h.wait_status(second, OrderStatus.FILLED)
    h.sync()
    assert len([m for m in h.events().items if isinstance(m, OrderFilled)]) == 2
    assert_exactly_once(h)


def test_a_malformed_event_is_logged_counted_and_swept(
    h: AlpacaHarness, caplog: pytest.LogCaptureFixture
) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "10"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.corrupt_next_event("missing_field")
    h.venue.set_price("AAPL", D("188.90"))  # the fill event is the corrupted one
    h.wait_status(coid, OrderStatus.FILLED)
    link = h.link()
    assert link.malformed_payloads == 1 and link.connections == 1
    assert any(
        "malformed" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    )
    assert_exactly_once(h)


# -- request faults ------------------------------------------------------------------------------


def test_a_submit_whose_answer_is_lost_is_looked_up_by_client_id_and_never_sent_twice(
    h: AlpacaHarness,
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("alpaca", replies)
    h.venue.fail_requests(1, after=True, endpoints=["POST orders"])
    coid = h.do(limit(Side.BUY, "189.00", "10"))
    replies.wait_for(lambda r: r.outcome in (Outcome.TRANSPORT, Outcome.TIMEOUT))
    h.clock.advance(1.0)
    looked_up = replies.wait_for(lambda r: r.outcome is Outcome.OK and r.report is not None)[0]
    assert looked_up.report is not None and looked_up.report.client_order_id == coid
    assert h.venue.calls().get("GET orders:by_client_order_id", 0) >= 1
    h.venue.set_price("AAPL", D("188.90"))
    h.wait_status(coid, OrderStatus.FILLED)
    h.clock.advance(120)  # past any presumed acceptance window: nothing is sent again
    h.sync()
    assert h.venue.submissions()[coid] == 1
    assert_exactly_once(h)


def test_a_5xx_before_processing_is_a_transport_failure_never_resent_blindly(
    h: AlpacaHarness,
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("alpaca", replies)
    h.venue.fail_requests(1, status=503, endpoints=["POST orders"])
    coid = h.do(market(Side.BUY, "10"))
    reply = replies.wait_for(lambda r: r.outcome is Outcome.TRANSPORT)[0]
    assert reply.detail.startswith("503")
    # Not found at the venue: Alpaca names no acceptance window, so the breaker keeps
    # asking until the presumed one closes, then reports the order not placed.
    for _ in range(8):
        h.clock.advance(10)
        h.sync()
    view = h.wait_status(coid, OrderStatus.REJECTED)
    assert view.rejection_code == "NOT_PLACED"
    assert coid not in h.venue.submissions()
    assert_exactly_once(h)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (403, 40310000, "insufficient buying power"),
        (422, 42210000, 'asset "AAPL" cannot be sold short'),
    ],
)
def test_403_and_422_are_business_refusals(
    h: AlpacaHarness, status: int, code: int, message: str
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("alpaca", replies)
    h.venue.refuse_next_order(status, message, code)
    coid = h.do(market(Side.BUY, "10"))
    view = h.wait_status(coid, OrderStatus.REJECTED)
    assert view.rejection_code == str(code)
    rejected = h.wait_for(OrderRejected, coid)[0]
    assert rejected.reason == message
    reply = replies.wait_for(lambda r: r.outcome is Outcome.REJECTED)[0]
    assert str(code) in reply.detail
    assert h.node.failure_stats("alpaca").consecutive_failures == 0
    later = h.do(market(Side.BUY, "10"))
    h.wait_status(later, OrderStatus.FILLED)
    assert_exactly_once(h)


def test_a_429_is_rate_limited_and_the_order_goes_once_the_limit_resets(
    h: AlpacaHarness,
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("alpaca", replies)
    h.venue.rate_limit(1, retry_after=3)
    coid = h.do(market(Side.BUY, "10"))
    limited = replies.wait_for(lambda r: r.outcome is Outcome.RATE_LIMITED)[0]
    # Alpaca sends no Retry-After: X-Ratelimit-Reset (epoch seconds) says when.
    assert limited.retry_after is not None and 2 <= limited.retry_after <= 3
    assert coid not in h.venue.submissions()
    h.clock.advance(3.5)
    h.wait_status(coid, OrderStatus.FILLED)
    assert_exactly_once(h)


# -- the market clock ------------------------------------------------------------------------------


def test_a_day_order_outside_the_session_is_refused_market_closed(
    venue: AlpacaVenue, clock: ManualClock
) -> None:
    venue.set_market_open(False)
    with alpaca_node(venue, clock=clock, outside_session="deny") as h:
        day = h.do(limit(Side.BUY, "189.00", "10", time_in_force=TimeInForce.DAY))
        view = h.wait_status(day, OrderStatus.REJECTED)
        assert view.rejection_code == "MARKET_CLOSED"
        assert day not in venue.submissions()
        gtc = h.do(limit(Side.BUY, "189.00", "10"))  # GTC waits for the session at Alpaca
        h.wait_status(gtc, OrderStatus.ACCEPTED)
        assert h.link().market_closed_refusals == 1


def test_an_extended_hours_day_limit_order_is_never_refused_market_closed(
    venue: AlpacaVenue, clock: ManualClock
) -> None:
    venue.set_market_open(False)
    with alpaca_node(venue, clock=clock, outside_session="deny", extended_hours=True) as h:
        day = h.do(limit(Side.BUY, "189.00", "10", time_in_force=TimeInForce.DAY))
        h.wait_status(day, OrderStatus.ACCEPTED)
        assert venue_order(venue, day).extended_hours is True
        market_day = h.do(market(Side.BUY, "10", time_in_force=TimeInForce.DAY))
        assert h.wait_status(market_day, OrderStatus.REJECTED).rejection_code == "MARKET_CLOSED"


def test_a_day_order_outside_the_session_is_queued_when_configured(
    venue: AlpacaVenue, clock: ManualClock
) -> None:
    venue.set_market_open(False)
    with alpaca_node(venue, clock=clock, outside_session="queue") as h:
        day = h.do(market(Side.BUY, "10", time_in_force=TimeInForce.DAY))
        h.wait_status(day, OrderStatus.ACCEPTED)
        assert venue_order(venue, day).status == "accepted"  # queued for the open
        venue.set_market_open(True)
        h.wait_status(day, OrderStatus.FILLED)
        assert_exactly_once(h)


# -- config and secrets ---------------------------------------------------------------------------


def test_a_symbol_alpaca_does_not_know_is_a_config_error_naming_it(
    venue: AlpacaVenue, clock: ManualClock
) -> None:
    with alpaca_node(venue, clock=clock, symbols=("AAPL", "NOPE")) as h:
        failed = h.supervision.wait_for(event(K.FAILED))[0]
    error = failed.error
    assert isinstance(error, ConfigError), error
    assert "NOPE" in str(error) and error.key == "alpaca.symbols"


def test_the_secret_is_never_printed(
    venue: AlpacaVenue, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with alpaca_node(venue, clock=clock) as h:
        coid = h.do(market(Side.BUY, "10"))
        h.wait_status(coid, OrderStatus.FILLED)
        venue.fail_requests(1, after=True)
        h.do(market(Side.BUY, "10"))
        h.sync()
        shown: list[Any] = [h.node.status(), repr(h.link()), repr(h.node.config), caplog.text]
    assert all(venue.secret not in str(text) for text in shown)


def test_order_types_reach_the_venue_as_alpaca_names_them(h: AlpacaHarness) -> None:
    stop = h.do(
        lambda ctx: ctx.submit_order(
            "AAPL",
            Side.BUY,
            D(3),
            order_type=OrderType.STOP,
            stop_price=D("195.00"),
            venue="alpaca",
        )
    )
    trail = h.do(
        lambda ctx: ctx.submit_order(
            "AAPL",
            Side.SELL,
            D(3),
            order_type=OrderType.TRAILING_STOP,
            trailing_offset=D("2.50"),
            venue="alpaca",
        )
    )
    for coid in (stop, trail):
        h.wait_status(coid, OrderStatus.ACCEPTED)
    assert venue_order(h.venue, stop).type == "stop"
    assert venue_order(h.venue, stop).stop_price == D("195.00")
    assert venue_order(h.venue, trail).type == "trailing_stop"


def test_another_clients_orders_are_adopted_unless_their_id_cannot_be_carried(
    h: AlpacaHarness,
) -> None:
    h.venue.place_order("AAPL", "buy", "market", D(5), client_order_id="other-client-1")
    too_long = "x" * 40  # Alpaca takes 128 characters; the node carries 36
    h.venue.place_order("AAPL", "buy", "market", D(3), client_order_id=too_long)
    # The broker handles the stream in order: once our own later order has filled,
    # the other client's events before it have been handled too.
    mine = h.do(market(Side.BUY, "10"))
    h.wait_status(mine, OrderStatus.FILLED)
    h.sync()
    adopted = h.order("other-client-1")
    assert adopted.status is OrderStatus.FILLED and adopted.filled_quantity == 5
    assert h.link().ignored_events >= 1 and h.link().connections == 1
    assert not h.node.failed
    assert h.position("AAPL") == 15  # ours and the adopted order's; not the unknown one's


def test_a_fill_whose_only_event_is_lost_is_found_by_the_periodic_check(
    venue: AlpacaVenue, clock: ManualClock
) -> None:
    with alpaca_node(venue, clock=clock, check_interval=30.0) as h:
        coid = h.do(limit(Side.BUY, "189.00", "10"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        venue.drop_events(1)
        h.clock.advance(1)  # the fill happens after the cursor's time
        venue.set_price("AAPL", D("188.90"))  # one fill, the whole order: its event is lost
        venue.wait_for(lambda: venue_order(venue, coid).filled_qty == 10)
        h.sync()
        assert h.order(coid).status is OrderStatus.ACCEPTED  # nothing on the stream showed it
        before = h.link().cursor
        h.periodic_check(30.0)
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 10
        link = h.link()
        assert link.swept_fills == 1 and link.connections == 1
        assert before is not None and link.cursor is not None and link.cursor > before
        assert_exactly_once(h)


def test_a_new_process_settles_an_order_partly_filled_under_the_last_one(
    venue: AlpacaVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with alpaca_node(venue, journal, clock=clock, check_interval=30.0) as h:
        coid = h.do(limit(Side.BUY, "189.00", "250"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        venue.set_price("AAPL", D("188.95"))
        partly = h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity
        clock.advance(10)
        later = h.do(market(Side.BUY, "1", symbol="MSFT"))
        h.wait_status(later, OrderStatus.FILLED)
        h.periodic_check(30.0)
        # The journaled cursor is now past the partial fills, by more than the overlap.
        cursor = h.link().cursor
        assert cursor is not None and cursor.startswith("2023-11-14T22:13:30")
    with alpaca_node(venue, journal, clock=clock) as h:
        h.sync()
        assert h.order(coid).filled_quantity == partly
        h.do(lambda ctx: ctx.cancel_order(coid))
        view = h.wait_status(coid, OrderStatus.CANCELED)
        assert view.filled_quantity == partly
        assert h.link().orders == {}
        assert_exactly_once(h)


def test_a_replace_that_loses_the_race_to_a_fill_leaves_the_fill_and_rejects_the_new_order(
    h: AlpacaHarness,
) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "10"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.race_next_replace()  # Alpaca answers 200, but the old order fills first
    new = h.do(lambda ctx: ctx.modify_order(coid, price=D("185.00")))
    assert new is not None and new != coid
    h.wait_status(coid, OrderStatus.FILLED)
    rejected = h.wait_status(new, OrderStatus.REJECTED)
    assert rejected.filled_quantity == 0
    assert venue_order(h.venue, new).status == "rejected"
    assert h.position("AAPL") == 10  # the fill once, nothing bought twice
    assert_exactly_once(h)
