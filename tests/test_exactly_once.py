"""Regression tests for the exactly-once holes a randomized campaign found (#11).

1. A placement the venue held while the node died (or while the node's HTTP
   client gave up on it) landed after the node had asked for it once and
   re-sent it: two orders under one client id. "Not found" only means "not
   yet" until the venue's acceptance window has closed.
2. A new process swept no trades until its own first fill, and orders placed
   and filled while the node was down (or by another client) were never
   adopted: the cursors are journaled, and adoption takes any state.
3. A position drift re-baselined itself and was never reported again.
Also: drift warnings of the past are not logged again by a journal replay.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode.actors import (
    EntryKind,
    GetFills,
    GetMetrics,
    JournalEntry,
    OmsState,
    Outcome,
    SetTradingState,
    decode_entry,
    encode_entry,
    replay,
)
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import (
    OrderAccepted,
    OrderFilled,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
    TradingState,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import DEFAULT_BALANCES, BinanceVenue, default_binance_config

from ._binance_helpers import (
    BinanceHarness,
    binance_node,
    limit,
    market,
    place_directly,
    venue_clock,
)
from .test_journal_recovery import _crashed_journal, _order, journaled_node

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=41, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def assert_venue_agrees(h: BinanceHarness) -> None:
    """Every venue trade applied once, one order per client id, positions = balances."""
    h.sync()
    venue = h.venue
    executions = [f.execution_id for f in h.node.oms.ask(GetFills()) if f.venue == "binance"]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert set(executions) == {f"binance-{t.symbol}-{t.trade_id}" for t in venue.trades()}
    ids = [order.client_order_id for order in venue.orders()]
    assert len(ids) == len(set(ids)), "an order was placed twice"
    assert all(count == 1 for count in venue.submissions().values()), venue.submissions()
    for symbol, asset in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        assert h.position(symbol) == h.venue_base_change(asset, DEFAULT_BALANCES[asset]), symbol


# -- finding 1: a held placement is never doubled ------------------------------------------


def test_a_placement_the_venue_held_past_a_crash_is_adopted_not_sent_twice(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    order = _order("held1-0")
    _crashed_journal(tmp_path / "j", order)
    replies = EventRecorder()
    h = journaled_node(venue, clock, tmp_path / "j", replies=replies)
    try:
        replies.wait_for(lambda reply: reply.outcome is Outcome.NOT_FOUND)
        h.node.failure_stats("binance")
        assert venue.submissions() == {}, "re-sent after one 'not found'"
        # The dead process's request, held by the venue until now, lands
        # inside its recvWindow.
        place_directly(venue, clock, order)
        clock.advance(6.0)
        h.wait_status(order.client_order_id, OrderStatus.FILLED)
        clock.advance(10.0)
        h.sync()
        assert venue.submissions() == {order.client_order_id: 1}
        assert_venue_agrees(h)
    finally:
        h.node.stop(timeout=20)


def test_a_placement_held_longer_than_the_http_timeout_is_found_not_sent_twice(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    """recvWindow (5 s) longer than the HTTP timeout (0.3 s): the client gives up
    on a request the venue still processes later."""
    landed = threading.Event()

    def listen(venue_event: Any) -> None:
        payload = getattr(venue_event, "payload", None)
        if isinstance(payload, dict) and payload.get("e") == "executionReport":
            landed.set()

    venue.exchange.add_listener(listen)
    with binance_node(venue, clock=clock, request_timeout=0.3) as h:
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        venue.delay_requests(1, 3.0, endpoints=["POST order"])
        coid = h.do(market(Side.BUY, "0.3"))
        replies.wait_for(lambda reply: reply.outcome is Outcome.TIMEOUT)
        h.node.failure_stats("binance")
        h.clock.advance(0.5)
        # The breaker asks; unless the held request landed first, it hears
        # "not found", which must not make it send the order again.
        replies.wait_for(lambda r: r.outcome in (Outcome.NOT_FOUND, Outcome.OK))
        assert landed.wait(10), "the held order never reached the venue"
        h.node.failure_stats("binance")
        h.clock.advance(6.0)
        h.wait_status(coid, OrderStatus.FILLED)
        h.clock.advance(10.0)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_venue_agrees(h)


# -- finding 2: nothing the venue has is left behind ----------------------------------------


def _foreign(client_order_id: str, side: Side, quantity: str, price: str | None) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=client_order_id,
        strategy_id="other",
        venue="binance",
        symbol="BTCUSDT",
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=D(quantity),
        price=None if price is None else D(price),
    )


def test_orders_and_fills_made_while_the_node_was_down_are_adopted_after_a_restart(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    first = journaled_node(venue, clock, tmp_path / "j")
    try:
        ours = first.do(market(Side.BUY, "0.2"))
        first.wait_status(ours, OrderStatus.FILLED)
    finally:
        first.node.stop(timeout=20)
    journal_cursors = _cursors_in(tmp_path / "j")
    assert "trades/BTCUSDT" in journal_cursors, journal_cursors
    # While no node runs: another client buys, and leaves a bid resting.
    place_directly(venue, clock, _foreign("other-1", Side.BUY, "0.3", None))
    assert (
        place_directly(venue, clock, _foreign("other-2", Side.BUY, "0.1", "40000.00"))["status"]
        == "NEW"
    )

    second = journaled_node(venue, clock, tmp_path / "j")
    try:
        second.sync()
        filled = second.order("other-1")
        assert filled is not None and filled.strategy_id == "external"
        assert filled.status is OrderStatus.FILLED
        assert filled.filled_quantity == D("0.3")
        resting = second.order("other-2")
        assert resting is not None and resting.status is OrderStatus.ACCEPTED
        metrics = second.node.oms.ask(GetMetrics())
        assert metrics["drift_events"] == 0, "adopting is not a drift"
        assert second.position("BTCUSDT") == D("0.5")
        assert_venue_agrees(second)
    finally:
        second.node.stop(timeout=20)


def test_a_fill_the_stream_never_delivered_is_swept_from_the_journaled_cursor(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    """The venue fills a resting order while the node is down; the new process
    knows the order only as open, and its trade only from the sweep."""
    first = journaled_node(venue, clock, tmp_path / "j")
    try:
        resting = first.do(limit(Side.BUY, "49900.00", "0.4"))
        first.wait_status(resting, OrderStatus.ACCEPTED)
    finally:
        first.node.stop(timeout=20)
    venue.set_price("BTCUSDT", D("49800.00"))
    second = journaled_node(venue, clock, tmp_path / "j")
    try:
        second.wait_status(resting, OrderStatus.FILLED)
        assert_venue_agrees(second)
    finally:
        second.node.stop(timeout=20)


def _cursors_in(path: Path) -> dict[str, str]:
    with Journal.open_read_only(path) as log:
        entries = [decode_entry(payload) for _, payload in log.replay(0)]
    return {
        str(entry.scope): str(entry.cursor)
        for entry in entries
        if entry.kind is EntryKind.VENUE_CURSOR
    }


# -- finding 3: a drift stays a drift -----------------------------------------------------


def test_a_drift_is_reported_at_every_check_until_an_operator_accepts_the_account(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        coid = h.do(market(Side.BUY, "0.2"))
        h.wait_status(coid, OrderStatus.FILLED)
        check = h.periodic_check

        check()
        venue.deposit("BTC", D("1"))
        check()
        check()

        def metric(name: str) -> int:
            value = h.node.oms.ask(GetMetrics())[name]
            assert isinstance(value, int)
            return value

        assert (metric("position_drifts"), metric("drift_alerts")) == (1, 1)
        check()
        assert metric("drift_alerts") == 2, "the drift was silently re-baselined"
        assert metric("position_drifts") == 1, "one drift, counted once"
        assert h.node.accept_balance_baseline("binance", "BTC") == ("BTC",)
        check()
        check()
        assert metric("drift_alerts") == 2, "an accepted baseline is no drift"
        h.node.risk.ask(SetTradingState(TradingState.ACTIVE, "drift explained: a deposit"))
        later = h.do(market(Side.BUY, "0.1"))
        h.wait_status(later, OrderStatus.FILLED)
        check()
        check()
        assert metric("drift_alerts") == 2, "fills after the accepted baseline are explained"


def test_fees_paid_in_the_base_asset_are_no_drift(clock: ManualClock) -> None:
    """Binance (without BNB) and OKX charge a buy's fee in the base asset it
    receives: the account then holds less than the fills bought. The balance
    check counts those fees, so no drift is raised and trading stays ACTIVE;
    a deposit on top still is one."""
    config = dataclasses.replace(
        default_binance_config(), fee_in_received_asset=True, taker_commission_bps=D(10)
    )
    with (
        BinanceVenue(config=config, seed=43, clock=venue_clock(clock)) as venue,
        binance_node(venue, clock=clock) as h,
    ):
        for size in ("0.2", "0.1"):
            coid = h.do(market(Side.BUY, size))
            h.wait_status(coid, OrderStatus.FILLED)
        fills = [f for f in h.node.oms.ask(GetFills()) if f.venue == "binance"]
        assert {f.commission_asset for f in fills} == {"BTC"} and all(f.commission for f in fills)
        held = h.venue_base_change("BTC", DEFAULT_BALANCES["BTC"])
        assert held < h.position("BTCUSDT") == D("0.3"), "the fees came out of the BTC"
        for _ in range(3):
            h.periodic_check()
        metrics = h.node.oms.ask(GetMetrics())
        assert metrics["position_drifts"] == 0, "fees paid in BTC taken for a drift"
        venue.deposit("BTC", D("1"))
        for _ in range(2):
            h.periodic_check()
        assert h.node.oms.ask(GetMetrics())["position_drifts"] == 1


def test_replaying_a_journal_does_not_log_its_old_drifts_again(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    order = SubmitOrder(
        client_order_id="d-1",
        strategy_id="s1",
        venue="BIN",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D("1"),
    )
    fills = [
        OrderFilled(
            client_order_id="d-1",
            venue="BIN",
            venue_order_id="7",
            execution_id=f"e{n}",
            symbol="BTCUSDT",
            side=Side.BUY,
            last_quantity=D("1"),
            last_price=D("100"),
        )
        for n in (1, 2)
    ]
    entries = [
        JournalEntry(kind=EntryKind.REGISTER, ts_ns=1, message=order),
        JournalEntry(kind=EntryKind.SUBMITTED, ts_ns=2, client_order_id="d-1"),
        JournalEntry(
            kind=EntryKind.REPORT,
            ts_ns=3,
            message=OrderAccepted(client_order_id="d-1", venue="BIN", venue_order_id="7"),
        ),
        *(JournalEntry(kind=EntryKind.REPORT, ts_ns=4, message=fill) for fill in fills),
    ]
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.EVERY_RECORD) as journal:
        for entry in entries:
            journal.append(encode_entry(entry))
    live = OmsState()
    for entry in entries[:3]:
        replay([entry], state=live)
    overfill = live.apply(fills[0], 4)
    assert overfill.applied
    assert any(d.kind.value == "overfill" for d in live.apply(fills[1], 4).drifts)
    caplog.clear()
    with caplog.at_level(logging.DEBUG), Journal.open_read_only(tmp_path / "j") as log:
        state = replay([decode_entry(p) for _, p in log.replay(0)], state=OmsState()).state
    assert state.get("d-1") is not None
    assert not [r for r in caplog.records if "drift" in r.getMessage().lower()]
