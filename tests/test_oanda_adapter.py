"""The OANDA adapter through a running node, against the local fake OANDA on loopback.

Each order type's lifecycle, replace, cancel, cancel-all, reduce-only; then
the faults: a stream stalled or dropped mid-fill (restart, replay from the
transaction cursor, every fill exactly once, positions equal the venue's),
a submit whose answer is lost (looked up by client id, never a second
order), malformed lines (counted), repeated transactions (skipped), a 429
(Retry-After honoured), an instrument OANDA does not list (a config error
naming it), and the token never printed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from tradenode import ConfigError
from tradenode.actors import GetMetrics, Outcome
from tradenode.messages import (
    OrderCanceled,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    TradingState,
    TradingStateChanged,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import OandaVenue

from ._node_helpers import Scripted
from ._oanda_helpers import (
    K,
    OandaHarness,
    event,
    limit,
    market,
    oanda_node,
    triggered,
    venue_clock,
)

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[OandaVenue]:
    with OandaVenue(seed=7, clock=venue_clock(clock), heartbeat_interval=0.2) as local_venue:
        local_venue.freeze_prices()
        local_venue.set_price("EUR_USD", D("1.10000"))
        local_venue.set_price("USD_JPY", D("150.000"))
        yield local_venue


@pytest.fixture
def h(venue: OandaVenue, clock: ManualClock) -> Iterator[OandaHarness]:
    with oanda_node(venue, clock=clock) as harness:
        yield harness


def venue_fill_ids(venue: OandaVenue) -> set[str]:
    return {str(t["id"]) for t in venue.transactions() if t["type"] == "ORDER_FILL"}


def assert_exactly_once(h: OandaHarness) -> None:
    """Every fill the venue made reached the OMS once; positions equal the venue's;
    no client order id was placed twice."""
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert set(executions) == venue_fill_ids(h.venue)
    for instrument, units in h.venue.positions().items():
        assert h.position(instrument) == units, instrument
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()


# -- lifecycles ---------------------------------------------------------------------------------


def test_market_order_fills_and_the_position_equals_the_venues(h: OandaHarness) -> None:
    coid = h.do(market(Side.BUY, "1000"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == 1000 and view.venue_order_id is not None
    sold = h.do(market(Side.SELL, "400", time_in_force=TimeInForce.IOC))
    h.wait_status(sold, OrderStatus.FILLED)
    assert h.position("EUR_USD") == 600
    assert_exactly_once(h)


def test_a_resting_limit_order_fills_when_the_price_comes_to_it(h: OandaHarness) -> None:
    coid = h.do(limit(Side.BUY, "1.09000", "500"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("EUR_USD", D("1.08900"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 500
    assert_exactly_once(h)


@pytest.mark.parametrize(
    ("kind", "trigger", "move"),
    [
        (OrderType.STOP, "1.11000", "1.11500"),
        (OrderType.MARKET_IF_TOUCHED, "1.09000", "1.08500"),
    ],
)
def test_triggered_buys_wait_for_their_trigger_then_fill(
    h: OandaHarness, kind: OrderType, trigger: str, move: str
) -> None:
    coid = h.do(triggered(kind, Side.BUY, trigger, "300"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("EUR_USD", D(move))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 300
    assert_exactly_once(h)


def test_gtd_and_gfd_orders_rest(h: OandaHarness) -> None:
    far = h.clock.time_ns() + 3_600 * 1_000_000_000
    gtd = h.do(
        limit(Side.SELL, "1.20000", "100", time_in_force=TimeInForce.GTD, expire_time_ns=far)
    )
    gfd = h.do(limit(Side.SELL, "1.20000", "100", time_in_force=TimeInForce.DAY))
    h.wait_status(gtd, OrderStatus.ACCEPTED)
    h.wait_status(gfd, OrderStatus.ACCEPTED)
    assert {o["clientExtensions"]["id"] for o in h.venue.orders() if o["state"] == "PENDING"} >= {
        gtd,
        gfd,
    }


def test_cancel(h: OandaHarness) -> None:
    coid = h.do(limit(Side.BUY, "1.05000", "100"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    assert_exactly_once(h)


def test_a_replace_is_a_new_order_linked_as_one_logical_order(h: OandaHarness) -> None:
    coid = h.do(limit(Side.BUY, "1.05000", "100"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    new = h.do(lambda ctx: ctx.modify_order(coid, quantity=D(200), price=D("1.06000")))
    assert new is not None and new != coid
    view = h.wait_status(new, OrderStatus.ACCEPTED)
    assert view.replacement_of == coid
    assert h.order(coid).status is OrderStatus.CANCELED
    pending = {o["clientExtensions"]["id"]: o for o in h.venue.orders() if o["state"] == "PENDING"}
    assert set(pending) == {new}
    assert D(pending[new]["units"]) == 200 and D(pending[new]["price"]) == D("1.06000")
    h.venue.set_price("EUR_USD", D("1.05900"))
    h.wait_status(new, OrderStatus.FILLED)
    assert_exactly_once(h)


def test_the_kill_switch_cancels_every_instruments_orders(h: OandaHarness) -> None:
    orders = [
        h.do(limit(Side.BUY, "1.05000", "100")),
        h.do(limit(Side.SELL, "1.20000", "100")),
        h.do(limit(Side.BUY, "140.000", "10", symbol="USD_JPY")),
    ]
    for coid in orders:
        h.wait_status(coid, OrderStatus.ACCEPTED)
    report = h.node.kill_switch()
    assert report.complete, report.problems
    for coid in orders:
        assert h.order(coid).status is OrderStatus.CANCELED
    assert not [o for o in h.venue.orders() if o["state"] == "PENDING"]


def test_the_kill_switch_flattens_with_reduce_only_orders(h: OandaHarness) -> None:
    long = h.do(market(Side.BUY, "300"))
    short = h.do(market(Side.SELL, "20", symbol="USD_JPY"))
    h.wait_status(long, OrderStatus.FILLED)
    h.wait_status(short, OrderStatus.FILLED)
    resting = h.do(limit(Side.BUY, "1.05000", "100"))
    h.wait_status(resting, OrderStatus.ACCEPTED)
    report = h.node.kill_switch(flatten=True)
    assert report.complete, report.problems
    assert h.venue.positions() == {}
    flatten = {
        o["clientExtensions"]["id"]: o for o in h.venue.orders() if o.get("clientExtensions")
    }
    assert all(flatten[coid]["positionFill"] == "REDUCE_ONLY" for coid in report.flatten_orders)
    assert_exactly_once(h)


def test_a_reduce_only_order_never_grows_the_position(h: OandaHarness) -> None:
    bought = h.do(market(Side.BUY, "100"))
    h.wait_status(bought, OrderStatus.FILLED)
    closing = h.do(market(Side.SELL, "100", reduce_only=True))
    h.wait_status(closing, OrderStatus.FILLED)
    assert h.position("EUR_USD") == 0
    sent = [o for o in h.venue.orders() if o["clientExtensions"]["id"] == closing]
    assert sent[0]["positionFill"] == "REDUCE_ONLY"
    assert_exactly_once(h)


class Watcher(Scripted):
    venue = "oanda"


def test_quotes_stream_from_the_pricing_stream(h: OandaHarness) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=("EUR_USD",)))
    h.venue.set_price("EUR_USD", D("1.12000"))
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.symbol == "EUR_USD" and m.bid < D("1.12") < m.ask
    )[0]
    assert quote.venue == "oanda"


def test_a_venue_rejection_carries_oandas_reason(h: OandaHarness) -> None:
    coid = h.do(market(Side.BUY, "200000000"))  # above the instrument's maximumOrderUnits
    view = h.wait_status(coid, OrderStatus.REJECTED)
    rejected = h.wait_for(OrderRejected, coid)[0]
    assert rejected.code == view.rejection_code == "UNITS_LIMIT_EXCEEDED"
    h.sync()
    assert len([m for m in h.events().items if isinstance(m, OrderRejected)]) == 1
    assert_exactly_once(h)


def test_an_ioc_market_order_takes_what_the_book_has_and_the_rest_is_cancelled(
    clock: ManualClock,
) -> None:
    # Five levels of 1,000,000 units each side: an IOC for 6,000,000 fills 5,000,000.
    with (
        OandaVenue(seed=7, clock=venue_clock(clock), balance=D(10) ** 9) as venue,
        oanda_node(venue, clock=clock) as h,
    ):
        venue.freeze_prices()
        coid = h.do(market(Side.BUY, "6000000", time_in_force=TimeInForce.IOC))
        view = h.wait_status(coid, OrderStatus.CANCELED)
        assert view.filled_quantity == 5_000_000
        assert h.position("EUR_USD") == 5_000_000
        assert_exactly_once(h)


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["stall", "drop"])
def test_a_transaction_stream_lost_mid_fill_restarts_and_every_fill_arrives_once(
    venue: OandaVenue, clock: ManualClock, fault: str
) -> None:
    with oanda_node(venue, clock=clock, stream_timeout=1.0) as h:
        coid = h.do(limit(Side.BUY, "1.09000", "500"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        if fault == "stall":
            venue.stall_streams("transactions")
        else:
            venue.drop_streams("transactions")
        venue.set_price("EUR_USD", D("1.08900"))
        second = h.do(market(Side.BUY, "200"))
        h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
        venue.clear_faults()
        h.restart(2)
        h.wait_status(coid, OrderStatus.FILLED)
        h.wait_status(second, OrderStatus.FILLED)
        link = h.link()
        assert link.connections == 2 and link.replayed_transactions > 0
        assert h.position("EUR_USD") == 700
        assert_exactly_once(h)


@pytest.mark.parametrize("fault", ["lost", "503_after"])
def test_a_submit_whose_answer_is_lost_is_looked_up_by_client_id_and_never_sent_twice(
    venue: OandaVenue, clock: ManualClock, fault: str
) -> None:
    with oanda_node(venue, clock=clock) as h:
        replies = EventRecorder()
        h.node.observe_breaker("oanda", replies)
        if fault == "lost":
            venue.lose_next_response("POST orders")
        else:
            venue.fail_requests(1, 503, after=True, path="POST orders")
        # The fill's transaction waits at the venue until the breaker has looked the
        # order up: otherwise the stream may tell the fill first and no lookup is needed.
        venue.stall_streams("transactions")
        coid = h.do(market(Side.BUY, "100"))
        replies.wait_for(lambda r: r.outcome in (Outcome.TRANSPORT, Outcome.TIMEOUT))
        h.clock.advance(1.0)
        replies.wait_for(lambda r: r.outcome is Outcome.OK)
        assert venue.calls().get("GET orders/{id}", 0) >= 1  # looked up by client id
        venue.clear_faults()
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(30)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert venue.calls().get("GET orders/{id}", 0) >= 1  # looked up by client id
        assert_exactly_once(h)


def test_a_submit_made_while_the_venue_is_down_is_sent_once_it_is_back(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock) as h:
        venue.down()
        h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
        coid = h.do(market(Side.BUY, "100"))
        venue.up()
        h.restart(2)
        h.wait_status(coid, OrderStatus.FILLED)
        assert venue.submissions()[coid] == 1
        assert_exactly_once(h)


def test_a_new_process_replays_from_the_journaled_transaction_cursor(
    venue: OandaVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with oanda_node(venue, journal, clock=clock) as h:
        coid = h.do(limit(Side.BUY, "1.09000", "500"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
        cursor = h.link().cursor
        assert cursor is not None
    # Nobody watches: the order fills, and the venue moves on.
    venue.set_price("EUR_USD", D("1.08900"))
    assert venue.positions() == {"EUR_USD": D(500)}
    with oanda_node(venue, journal, clock=clock) as h:
        link = h.link()
        h.wait_status(coid, OrderStatus.FILLED)
        assert link.replayed_transactions >= 1  # from the journaled cursor, not from "now"
        assert h.position("EUR_USD") == 500
        assert_exactly_once(h)


def test_a_malformed_line_is_counted_and_at_most_restarts_the_broker(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock) as h:
        link = h.link()
        venue.corrupt_next_line()
        coid = h.do(market(Side.BUY, "100"))
        h.restart(2)
        assert link.malformed_payloads == 1
        h.wait_status(coid, OrderStatus.FILLED)
        later = h.do(market(Side.BUY, "100"))
        h.wait_status(later, OrderStatus.FILLED)
        assert not h.node.failed
        assert_exactly_once(h)


def test_repeated_transactions_change_nothing(venue: OandaVenue, clock: ManualClock) -> None:
    with oanda_node(venue, clock=clock) as h:
        venue.duplicate_transactions(5)
        coid = h.do(market(Side.BUY, "100"))
        h.wait_status(coid, OrderStatus.FILLED)
        other = h.do(limit(Side.BUY, "1.05000", "100"))
        h.wait_status(other, OrderStatus.ACCEPTED)
        assert h.link().skipped_repeats > 0
        assert_exactly_once(h)


def test_a_429_is_rate_limited_and_the_order_goes_after_retry_after(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock) as h:
        replies = EventRecorder()
        h.node.observe_breaker("oanda", replies)
        venue.rate_limit(1, 2)
        coid = h.do(market(Side.BUY, "100"))
        limited = replies.wait_for(lambda r: r.outcome is Outcome.RATE_LIMITED)[0]
        assert limited.retry_after == 2
        h.node.failure_stats("oanda")
        assert coid not in venue.submissions()
        h.clock.advance(2.5)
        h.wait_status(coid, OrderStatus.FILLED)
        assert_exactly_once(h)


def test_an_instrument_oanda_does_not_list_is_a_config_error_naming_it(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock, instruments=("EUR_USD", "XAU_EUR_NOPE")) as h:
        failed = h.supervision.wait_for(event(K.FAILED))[0]
    error = failed.error
    assert isinstance(error, ConfigError), error
    assert "XAU_EUR_NOPE" in str(error) and error.key == "oanda.instruments"


def test_periodic_checks_turn_a_position_our_fills_do_not_explain_into_a_drift(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock, check_interval=30) as h:
        coid = h.do(market(Side.BUY, "100"))
        h.wait_status(coid, OrderStatus.FILLED)
        h.periodic_check()
        h.periodic_check()
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 0
        h.place_directly("50")  # another client of the account: no fill of ours explains it
        seen = h.events()
        h.periodic_check()
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 0, "one look is not a drift"
        h.periodic_check()
        state = seen.wait_for(
            lambda m: isinstance(m, TradingStateChanged) and m.state is TradingState.REDUCING
        )[0]
        assert "drift" in state.reason
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 1
        assert h.link().positions == {"EUR_USD": D(150)}


def test_financing_and_other_transactions_change_nothing(clock: ManualClock) -> None:
    with (
        OandaVenue(seed=7, clock=venue_clock(clock), financing=True) as venue,
        oanda_node(venue, clock=clock) as h,
    ):
        venue.freeze_prices()
        coid = h.do(market(Side.BUY, "1000"))
        h.wait_status(coid, OrderStatus.FILLED)
        venue.charge_financing()
        later = h.do(market(Side.BUY, "1000"))
        h.wait_status(later, OrderStatus.FILLED)
        link = h.link()
        assert link.malformed_payloads == 0 and link.unknown_transactions == 0
        assert link.cursor == int(venue.transactions()[-1]["id"])
        assert_exactly_once(h)


def test_the_token_is_never_printed(
    venue: OandaVenue, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with oanda_node(venue, clock=clock) as h:
        coid = h.do(market(Side.BUY, "100"))
        h.wait_status(coid, OrderStatus.FILLED)
        venue.fail_requests(1, 503, after=True)
        h.do(market(Side.BUY, "100"))
        h.sync()
        shown: list[Any] = [
            h.node.status(),
            repr(h.link()),
            repr(h.node.config),
            caplog.text,
        ]
    assert all(venue.token not in str(text) for text in shown)


def test_canceled_is_reported_once_per_order(h: OandaHarness) -> None:
    coid = h.do(limit(Side.BUY, "1.05000", "100"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    h.sync()
    assert len([m for m in h.events().items if isinstance(m, OrderCanceled)]) == 1


def test_a_replay_too_large_for_sinceid_is_read_in_idrange_pages() -> None:
    # The paging itself, without a network: OANDA's 416 limit is not documented and
    # the fake has none. Internal helpers, imported privately for that reason.
    from tradenode.brokers.oanda._actor import REPLAY_PAGE, _transactions_after
    from tradenode.brokers.oanda._codec import OandaErrorAnswer
    from tradenode.brokers.oanda._endpoints import RestResult

    last = 1200
    pages: list[tuple[int, int]] = []

    class Api:
        async def transactions_since(self, transaction_id: str) -> RestResult:
            return RestResult(error=OandaErrorAnswer(416, "HTTP_416", "Range Not Satisfiable"))

        async def summary(self) -> RestResult:
            account = {"currency": "USD", "balance": "1", "lastTransactionID": str(last)}
            return RestResult({"account": account, "lastTransactionID": str(last)})

        async def transactions_range(self, first: int, to: int) -> RestResult:
            pages.append((first, to))
            listed = [{"id": str(i), "type": "DAILY_FINANCING"} for i in range(first, to + 1)]
            return RestResult({"transactions": listed})

    api: Any = Api()  # duck-typed OandaEndpoints
    transactions, newest = trio.run(_transactions_after, api, "5")
    assert newest == str(last)
    assert [t["id"] for t in transactions if isinstance(t, dict)] == [
        str(i) for i in range(6, last + 1)
    ]
    assert pages[0] == (6, 5 + REPLAY_PAGE) and pages[-1][1] == last
