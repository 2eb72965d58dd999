"""The OKX adapter through a running node, against the local fake OKX on loopback.

Orders over the private WebSocket (the fast path) and over REST (the
fallback, and with ``ws_orders: false``), each leading to exactly one order
per client id; a native amend that keeps the order's ids; cancel and
cancel-all (``cancel-batch-orders``); a batch placement with one refused
order (each order's ``sCode``); faults: an ``op: order`` answer lost (looked
up by ``clOrdId`` over REST, never placed twice), the streams dropped
mid-fill (restart, every fill once), 429 with Retry-After, a malformed push
(counted), duplicated pushes (nothing twice); the secrets never printed.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import ConfigError
from tradenode.actors import Outcome, Subscribe
from tradenode.messages import (
    ModifyRejected,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
)
from tradenode.supervision import EventRecorder, ManualClock, TrioThread
from tradenode.testing.venues import OkxVenue

from ._node_helpers import Scripted
from ._okx_helpers import K, OkxHarness, event, limit, market, okx_node, venue_clock

D = Decimal
BTC = "BTC-USDT"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[OkxVenue]:
    with OkxVenue(seed=7, clock=venue_clock(clock)) as local_venue:
        local_venue.freeze_prices()
        local_venue.set_price(BTC, D("50000"))
        local_venue.set_price("ETH-USDT", D("3000"))
        yield local_venue


@pytest.fixture
def h(venue: OkxVenue, clock: ManualClock) -> Iterator[OkxHarness]:
    with okx_node(venue, clock=clock) as harness:
        yield harness


def assert_exactly_once(h: OkxHarness) -> None:
    """Every fill the venue made reached the OMS once; positions equal the venue's;
    no client order id was placed twice."""
    h.sync()
    venue = h.venue
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), executions
    assert set(executions) == {f"okx-{f.inst_id}-{f.trade_id}" for f in venue.fills()}
    ids = [o.cl_ord_id for o in venue.orders() if o.cl_ord_id]
    assert len(ids) == len(set(ids)), ids
    assert all(count == 1 for count in venue.submissions().values()), venue.submissions()
    for order in venue.orders():
        if order.cl_ord_id:
            view = h.order(order.cl_ord_id)
            assert view.filled_quantity == order.acc_fill_sz, (order, view)


def test_market_order_over_the_websocket(h: OkxHarness) -> None:
    coid = h.do(market(Side.BUY, "0.01"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == D("0.01")
    assert h.position(BTC) == D("0.01")
    assert h.venue.calls().get("ws order") == 1 and "POST trade/order" not in h.venue.calls()
    assert h.link().ws_requests == 1 and h.link().rest_requests == 0
    assert_exactly_once(h)


def test_market_order_over_rest_when_websocket_orders_are_off(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, ws_orders=False) as h:
        coid = h.do(market(Side.BUY, "0.01"))
        h.wait_status(coid, OrderStatus.FILLED)
        assert h.venue.calls().get("POST trade/order") == 1 and "ws order" not in h.venue.calls()
        assert h.link().rest_requests == 1 and h.link().ws_requests == 0
        assert_exactly_once(h)


def test_a_resting_limit_fills_in_parts_when_the_price_passes_through_it(h: OkxHarness) -> None:
    coid = h.do(limit(Side.BUY, "49500", "3"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    for price in ("49400", "49300", "49200", "49100", "49000", "48500", "48000"):
        h.venue.set_price(BTC, D(price))
        h.sync()
        if h.order(coid).status is OrderStatus.FILLED:
            break
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == 3
    assert len([f for f in h.fills() if f.client_order_id == coid]) == len(
        [f for f in h.venue.fills() if f.cl_ord_id == coid]
    )
    assert h.position(BTC) == 3
    assert_exactly_once(h)


def test_amend_keeps_the_order_id(h: OkxHarness) -> None:
    coid = h.do(limit(Side.BUY, "45000", "0.02"))
    accepted = h.wait_status(coid, OrderStatus.ACCEPTED)
    before = {o.cl_ord_id: o for o in h.venue.orders()}[coid]
    same = h.do(lambda ctx: ctx.modify_order(coid, quantity=D("0.05"), price=D("45500")))
    assert same == coid
    h.sync()
    after = {o.cl_ord_id: o for o in h.venue.orders()}[coid]
    assert after.ord_id == before.ord_id and (after.sz, after.px) == (D("0.05"), D("45500"))
    view = h.order(coid)
    assert view.venue_order_id == accepted.venue_order_id == after.ord_id
    assert (view.order.quantity, view.order.price) == (D("0.05"), D("45500"))
    assert len(h.venue.orders()) == 1
    assert_exactly_once(h)


def test_an_amend_the_venue_refuses_is_a_modify_rejected(h: OkxHarness) -> None:
    coid = h.do(limit(Side.BUY, "45000", "0.02"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    h.do(lambda ctx: ctx.modify_order(coid, price=D("45500")))
    h.sync()
    assert h.order(coid).status is OrderStatus.CANCELED


def test_cancel(h: OkxHarness) -> None:
    coid = h.do(limit(Side.BUY, "45000", "0.02"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    assert {o.cl_ord_id: o.state for o in h.venue.orders()}[coid] == "canceled"
    assert_exactly_once(h)


def test_the_kill_switch_cancels_in_batches_and_flattens(h: OkxHarness) -> None:
    bought = h.do(market(Side.BUY, "0.5"))
    h.wait_status(bought, OrderStatus.FILLED)
    orders = [h.do(limit(Side.BUY, str(40000 + 10 * i), "0.01")) for i in range(25)]
    orders.append(h.do(limit(Side.BUY, "2000", "0.1", symbol="ETH-USDT")))
    for coid in orders:
        h.wait_status(coid, OrderStatus.ACCEPTED)
    report = h.node.kill_switch(flatten=True)
    assert report.complete, report.problems
    for coid in orders:
        assert h.order(coid).status is OrderStatus.CANCELED
    assert not [o for o in h.venue.orders() if o.state in ("live", "partially_filled")]
    assert h.venue.calls().get("POST trade/cancel-batch-orders", 0) >= 2  # 25 BTC: 20 + 5
    assert h.position(BTC) == 0
    assert_exactly_once(h)


def test_a_venue_rejection_carries_okxs_scode(h: OkxHarness) -> None:
    h.venue.refuse_next_order("51008", "Order failed. Insufficient balance.")
    coid = h.do(market(Side.BUY, "0.01"))
    view = h.wait_status(coid, OrderStatus.REJECTED)
    rejected = h.wait_for(OrderRejected, coid)[0]
    assert rejected.code == view.rejection_code == "51008"
    assert "Insufficient" in rejected.reason
    assert_exactly_once(h)


def test_an_order_off_the_instruments_tick_is_refused_before_sending(h: OkxHarness) -> None:
    coid = h.do(limit(Side.BUY, "45000.005", "0.01"))
    view = h.wait_status(coid, OrderStatus.REJECTED)
    assert view.rejection_code == "TICK_SIZE"
    assert coid not in h.venue.submissions()


class Watcher(Scripted):
    venue = "okx"


def test_quotes_stream_from_bbo_tbt(h: OkxHarness) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=(BTC,)))
    h.venue.set_price(BTC, D("51000"))
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.symbol == BTC and m.bid < D("51000") < m.ask
    )[0]
    assert quote.venue == "okx"


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ws_orders", [True, False], ids=["websocket", "rest"])
def test_a_placement_whose_answer_is_lost_is_looked_up_by_client_id_and_never_sent_twice(
    venue: OkxVenue, clock: ManualClock, ws_orders: bool
) -> None:
    with okx_node(venue, clock=clock, ws_orders=ws_orders, request_timeout=1.0) as h:
        replies = EventRecorder()
        h.node.observe_breaker("okx", replies)
        venue.fail_requests(1, after=True, endpoints=["order", "POST trade/order"])
        coid = h.do(market(Side.BUY, "0.01"))
        lost = replies.wait_for(lambda r: not r.outcome.venue_answered)[0]
        assert lost.outcome in (Outcome.TIMEOUT, Outcome.TRANSPORT)
        h.sync()
        h.clock.advance(1.0)  # the breaker's retry delay: it asks the venue
        replies.wait_for(lambda r: r.outcome is Outcome.OK and r.report is not None)
        assert venue.calls().get("GET trade/order", 0) >= 1  # looked up by clOrdId, over REST
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(30)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_exactly_once(h)


def test_the_streams_dropped_mid_fill_restart_the_broker_and_every_fill_arrives_once(
    h: OkxHarness,
) -> None:
    coid = h.do(limit(Side.BUY, "49500", "3"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price(BTC, D("49400"))
    partly = h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity
    h.venue.drop_streams()
    h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
    for price in ("49300", "49000", "48500", "48000", "47000"):
        h.venue.set_price(BTC, D(price))
    h.sync()
    assert h.order(coid).filled_quantity == partly
    h.restart(2)
    h.wait_status(coid, OrderStatus.FILLED)
    assert h.link().connections == 2
    assert_exactly_once(h)


@pytest.mark.parametrize(
    ("ws_orders", "retry_after"),
    [(True, 2.0), (False, 7.0)],
    ids=["websocket-no-retry-after-uses-okx-window", "rest-retry-after-header"],
)
def test_a_rate_limited_order_goes_after_the_wait(
    venue: OkxVenue, clock: ManualClock, ws_orders: bool, retry_after: float
) -> None:
    """REST's 429 carries Retry-After (the local venue sends it; OKX documents none);
    the WebSocket's 50011 carries nothing, and the broker asks for OKX's 2 s window."""
    with okx_node(venue, clock=clock, ws_orders=ws_orders) as h:
        replies = EventRecorder()
        h.node.observe_breaker("okx", replies)
        h.venue.rate_limit(1, 7)
        coid = h.do(market(Side.BUY, "0.01"))
        limited = replies.wait_for(lambda r: r.outcome is Outcome.RATE_LIMITED)[0]
        assert limited.retry_after == retry_after
        assert coid not in h.venue.submissions()
        h.sync()
        h.clock.advance(retry_after - 0.1)
        h.sync()
        assert coid not in h.venue.submissions(), "sent again before the wait"
        h.clock.advance(0.2)
        h.wait_status(coid, OrderStatus.FILLED)
        assert_exactly_once(h)


def test_replies_carry_the_per_instrument_order_count(h: OkxHarness) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("okx", replies)
    coid = h.do(market(Side.BUY, "0.01"))
    h.wait_status(coid, OrderStatus.FILLED)
    reply = replies.wait_for(lambda r: r.outcome is Outcome.OK)[0]
    (rate,) = [r for r in reply.rates if r.counter == f"order:{BTC}"]
    assert (rate.used, rate.limit, rate.window_seconds) == (1, 60, 2)


def test_a_malformed_push_is_counted_and_the_broker_reconciles(h: OkxHarness) -> None:
    link = h.link()
    h.venue.corrupt_next_event("invalid_json")
    coid = h.do(market(Side.BUY, "0.01"))
    h.restart(2)
    assert link.malformed_payloads == 1
    h.wait_status(coid, OrderStatus.FILLED)
    later = h.do(market(Side.BUY, "0.01"))
    h.wait_status(later, OrderStatus.FILLED)
    assert not h.node.failed
    assert_exactly_once(h)


def test_duplicated_pushes_change_nothing(h: OkxHarness) -> None:
    h.venue.duplicate_events(10)
    coid = h.do(market(Side.BUY, "0.01"))
    h.wait_status(coid, OrderStatus.FILLED)
    other = h.do(limit(Side.BUY, "45000", "0.01"))
    h.wait_status(other, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(other))
    h.wait_status(other, OrderStatus.CANCELED)
    assert h.link().malformed_payloads == 0
    assert_exactly_once(h)


def test_orders_another_client_places_while_we_run_are_adopted(h: OkxHarness) -> None:
    address, _ = h.strategy()
    h.node.oms.tell(Subscribe(address, None))  # every order's events, external ones too
    h.venue.place_order(BTC, "buy", "market", D("0.01"), cl_ord_id="other1")
    placed = h.venue.place_order(BTC, "buy", "limit", D("0.01"), px=D("45000"))
    adopted = h.wait_status("other1", OrderStatus.FILLED)
    assert adopted.strategy_id == "external"
    view = h.wait_status(f"okx{placed['ordId']}", OrderStatus.ACCEPTED)  # no clOrdId
    assert view.strategy_id == "external"
    assert h.position(BTC) == D("0.01")


def test_a_new_process_sweeps_fills_from_the_journaled_cursor(
    venue: OkxVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with okx_node(venue, journal, clock=clock) as h:
        first = h.do(market(Side.BUY, "0.01"))
        h.wait_status(first, OrderStatus.FILLED)
        coid = h.do(limit(Side.BUY, "49500", "0.02"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
    venue.set_price(BTC, D("49000"))  # nobody watches: it fills
    venue.place_order(BTC, "buy", "market", D("0.01"), cl_ord_id="whiledown")
    with okx_node(venue, journal, clock=clock) as h:
        h.wait_status(coid, OrderStatus.FILLED)
        assert h.order("whiledown").status is OrderStatus.FILLED
        assert h.position(BTC) == D("0.04")
        assert_exactly_once(h)


def test_a_symbol_okx_does_not_list_is_a_config_error_naming_it(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, symbols=("BTC-USDT", "NOPE-USDT")) as h:
        failed = h.supervision.wait_for(event(K.FAILED))[0]
    error = failed.error
    assert isinstance(error, ConfigError), error
    assert "NOPE-USDT" in str(error) and error.key == "okx.symbols"


def test_the_secret_and_passphrase_are_never_printed(
    venue: OkxVenue, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with okx_node(venue, clock=clock) as h:
        coid = h.do(market(Side.BUY, "0.01"))
        h.wait_status(coid, OrderStatus.FILLED)
        venue.fail_requests(1, status=503)
        h.do(market(Side.BUY, "0.01"))
        h.sync()
        shown = [h.node.status(), repr(h.link()), repr(h.node.config), caplog.text]
    for secret in (venue.secret, venue.passphrase):
        assert all(secret not in str(text) for text in shown)


def test_modify_rejected_type_is_public() -> None:
    assert ModifyRejected.__name__ == "ModifyRejected"


# -- batches at the session level ------------------------------------------------------------


def test_a_batch_with_one_refused_order_reports_that_order_rejected_and_the_others_live() -> None:
    # The session, the endpoint layer and the batch reading are private: batches are
    # not in the broker contract (one order per request), so they are exercised here.
    from tradenode.brokers.okx._actor import batch_acks
    from tradenode.brokers.okx._codec import parse_acks
    from tradenode.brokers.okx._session import OkxSession, OkxUrls
    from tradenode.brokers.okx._signing import OkxCredentials

    with OkxVenue(seed=3) as venue:
        venue.freeze_prices()
        venue.set_price(BTC, D("50000"))
        session = OkxSession(
            "okx",
            OkxCredentials(venue.api_key, venue.secret, venue.passphrase),
            OkxUrls(venue.rest_url, venue.ws_private_url, venue.ws_public_url),
            deliver=lambda event: None,
            time_ms=lambda: time.time_ns() // 1_000_000,
        )
        thread = TrioThread("okx-batch")
        try:
            thread.start(session.serve)
            venue.refuse_next_order("51008", "Order failed. Insufficient balance.")
            orders = [
                {
                    "instId": BTC,
                    "tdMode": "cash",
                    "clOrdId": f"b{i}",
                    "side": "buy",
                    "ordType": "limit",
                    "px": "45000",
                    "sz": "0.01",
                }
                for i in range(3)
            ]
            result = thread.run(
                functools.partial(session.api.place_batch, orders, exp_time_ms=None)
            )
            assert result.answer is not None and result.answer.code == "2"  # some failed
            acks = parse_acks(result.answer)
            assert [(a.client_order_id, a.ok) for a in acks] == [
                ("b0", False),
                ("b1", True),
                ("b2", True),
            ]
            assert acks[0].code == "51008"
            assert {o.cl_ord_id for o in venue.orders() if o.state == "live"} == {"b1", "b2"}
            ids = [a.order_id for a in acks[1:]] + ["999999"]
            cancelled = thread.run(
                session.api.cancel_batch, [{"instId": BTC, "ordId": i} for i in ids]
            )
            outcomes = batch_acks(cancelled, ids, "okx")
            assert [a.ok for a in outcomes] == [True, True, False]
            assert not [o for o in venue.orders() if o.state == "live"]
            thread.run(session.aclose)
        finally:
            thread.close()


def test_submits_queued_behind_a_slow_one_go_as_one_batch_each_answered_by_its_own_item(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, request_timeout=1.0) as h:
        replies = EventRecorder()
        h.node.observe_breaker("okx", replies)
        # The first placement's answer is lost: the broker waits for it (1 s, real
        # time) while the strategy's next submits reach its mailbox behind it.
        venue.fail_requests(1, after=True, endpoints=["order"])

        def burst(ctx: Any) -> list[str]:
            first = ctx.submit_order(BTC, Side.BUY, D("0.01"), venue="okx")
            rest = [
                ctx.submit_order(BTC, side, D(size), venue="okx")
                for side, size in (
                    (Side.BUY, "0.01"),
                    (Side.SELL, "20"),  # more BTC than the account holds: 51008
                    (Side.BUY, "0.02"),
                    (Side.BUY, "0.03"),
                )
            ]
            return [first, *rest]

        first, *batched = h.do(burst)
        refused = batched[1]
        h.wait_status(refused, OrderStatus.REJECTED)
        assert h.wait_for(OrderRejected, refused)[0].code == "51008"
        for coid in (batched[0], batched[2], batched[3]):
            h.wait_status(coid, OrderStatus.FILLED)
        assert venue.calls().get("ws batch-orders") == 1
        h.clock.advance(1.0)  # the lost one: the breaker asks the venue
        h.wait_status(first, OrderStatus.FILLED)
        assert h.position(BTC) == D("0.07")
        assert_exactly_once(h)


def test_order_pushes_lost_in_a_gap_are_found_by_the_periodic_check(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, check_interval=30) as h:
        venue.drop_events(10)  # every push of the next orders: the stream says nothing
        coid = h.do(market(Side.BUY, "0.01"))
        h.wait_status(coid, OrderStatus.ACCEPTED)  # from the placement's answer
        resting = h.do(limit(Side.BUY, "45000", "0.01"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        h.sync()
        assert h.order(coid).filled_quantity == 0
        h.periodic_check()
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == D("0.01")
        assert h.order(resting).status is OrderStatus.ACCEPTED
        assert h.link().fill_cursor not in (None, "0")
        assert_exactly_once(h)


def test_the_breaker_paces_placements_to_okxs_per_instrument_limit(clock: ManualClock) -> None:
    with OkxVenue(seed=5, clock=venue_clock(clock), rate_limits=True) as venue:
        venue.freeze_prices()
        venue.set_price(BTC, D("50000"))
        with okx_node(venue, clock=clock) as h:
            replies = EventRecorder()
            h.node.observe_breaker("okx", replies)
            coids = h.do(
                lambda ctx: [
                    ctx.submit_order(
                        BTC,
                        Side.BUY,
                        D("0.01"),
                        order_type=OrderType.LIMIT,
                        price=D(40000 + i),
                        venue="okx",
                    )
                    for i in range(80)
                ]
            )
            for _ in range(6):
                h.sync()
                h.clock.advance(1.0)
            for coid in coids:
                h.wait_status(coid, OrderStatus.ACCEPTED)
            assert not any(r.outcome is Outcome.RATE_LIMITED for r in replies.items), (
                "the venue's limit was hit"
            )
            # What the broker told its breaker: each counter within OKX's limit for it
            # (the burst went mostly as batch-orders, 300 orders per 2 s).
            seen = {rate.counter: rate for r in replies.items for rate in r.rates}
            assert f"batch-orders:{BTC}" in seen
            assert all(rate.used <= rate.limit for rate in seen.values())
            assert seen[f"batch-orders:{BTC}"].limit == 300
            assert_exactly_once(h)


def test_pings_keep_quiet_connections_open_and_their_absence_is_a_lost_connection(
    clock: ManualClock,
) -> None:
    """OKX closes a WebSocket after 30 s without traffic (here: 1 s); the session
    pings below that. Real time has to pass for this one: the venue's idle timer
    runs on it."""
    with OkxVenue(seed=5, clock=venue_clock(clock), idle_timeout=1.0) as venue:
        venue.freeze_prices()
        venue.set_price(BTC, D("50000"))
        pings, heard = [0], threading.Condition()

        def on_ping() -> None:
            with heard:
                pings[0] += 1
                heard.notify_all()

        venue.ping_listeners.append(on_ping)
        with okx_node(venue, clock=clock, ping_interval=0.2) as h:
            # 12 pings 0.2 s apart span more than two idle timeouts: only they kept it open.
            with heard:
                assert heard.wait_for(lambda: pings[0] >= 12, timeout=60)
            coid = h.do(market(Side.BUY, "0.01"))
            h.wait_status(coid, OrderStatus.FILLED)
            assert h.link().connections == 1
            assert not [e for e in h.supervision.items if event(K.RESTART_SCHEDULED)(e)]
        with okx_node(venue, clock=clock, ping_interval=29) as h:
            h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))  # closed for idleness


def test_a_restart_pages_through_more_than_a_page_of_fills_and_open_orders(
    venue: OkxVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with okx_node(venue, journal, clock=clock) as h:
        first = h.do(market(Side.BUY, "0.01"))
        h.wait_status(first, OrderStatus.FILLED)
    # While no node runs, another client trades: more than one page (100) of each.
    for i in range(105):
        venue.place_order(BTC, "buy", "market", D("0.001"), cl_ord_id=f"away{i}")
        venue.place_order(BTC, "buy", "limit", D("0.001"), px=D("40000"), cl_ord_id=f"rest{i}")
    with okx_node(venue, journal, clock=clock) as h:
        h.sync()
        assert len(h.fills()) == 1 + len(
            [f for f in venue.fills() if f.cl_ord_id.startswith("away")]
        )
        assert all(h.order(f"away{i}").status is OrderStatus.FILLED for i in range(105))
        assert all(h.order(f"rest{i}").status is OrderStatus.ACCEPTED for i in range(105))
        # A new process's cursor may be older than /trade/fills' 3 days: it reads the
        # 3 months of /trade/fills-history.
        assert venue.calls().get("GET trade/fills-history", 0) >= 2
        assert h.position(BTC) == D("0.01") + D("0.105")
        assert_exactly_once(h)


def test_an_order_cancelled_while_down_and_gone_from_okxs_record_is_reported_cancelled(
    venue: OkxVenue, clock: ManualClock, tmp_path: Path
) -> None:
    """OKX keeps an order cancelled without a fill for 2 hours only. A journaled live
    order cancelled (by another client) while no node ran, longer ago than that, is
    neither open nor on record: the next process reports it cancelled, never
    rejected, and the open orders agree with the venue's."""
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with okx_node(venue, journal, clock=clock) as first:
        coid = first.do(limit(Side.BUY, "40000", "0.01"))
        first.wait_status(coid, OrderStatus.ACCEPTED)
    # Another client of the account cancels it, and hours pass.
    assert venue.cancel_order(BTC, cl_ord_id=coid)["sCode"] == "0"
    clock.advance(3 * 3600)
    with okx_node(venue, journal, clock=clock) as h:
        h.wait_status(coid, OrderStatus.CANCELED)
        h.sync()
        assert [
            o.cl_ord_id for o in venue.orders() if o.state in ("live", "partially_filled")
        ] == []
        assert h.order(coid).filled_quantity == 0
        assert not h.node.failed


def test_orders_that_ended_while_down_are_settled_from_the_order_history(
    venue: OkxVenue, clock: ManualClock, tmp_path: Path
) -> None:
    """A restart reads ``orders-history`` once for what ended while nobody watched,
    instead of one ``trade/order`` look-up per journaled order."""
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with okx_node(venue, journal, clock=clock) as first:
        resting = [first.do(limit(Side.BUY, price, "0.01")) for price in ("49000", "48900")]
        for coid in resting:
            first.wait_status(coid, OrderStatus.ACCEPTED)
    venue.set_price(BTC, D("48800"))  # both fill while no node runs
    looked_up = venue.calls().get("GET trade/order", 0)
    with okx_node(venue, journal, clock=clock) as h:
        for coid in resting:
            h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        assert venue.calls().get("GET trade/orders-history", 0) >= 1
        assert venue.calls().get("GET trade/order", 0) == looked_up, "asked one by one"
        assert_exactly_once(h)
