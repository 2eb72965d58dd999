"""The OMS journal through a running node and the local Binance venue.

Write-ahead: an order leaves for the venue only after its intent is fsynced.
Recovery: a new node on the same journal has every order, fill and
position of the last one, and resolves orders whose fate the journal could
not know by asking the venue before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode import Node, parse_config
from tradenode.actors import (
    EntryKind,
    GetFills,
    GetMetrics,
    GetRiskStatus,
    JournalEntry,
    Outcome,
    encode_entry,
)
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import (
    DenialCode,
    OrderDenied,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import DEFAULT_BALANCES, BinanceVenue

from ._binance_helpers import (
    BinanceHarness,
    limit,
    market,
    node_config,
    place_directly,
    venue_clock,
)

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=31, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def journaled_node(
    venue: BinanceVenue,
    clock: ManualClock,
    path: Path,
    fsync: str = "every_record",
    replies: EventRecorder | None = None,
) -> BinanceHarness:
    text = (
        node_config(venue) + f"journal: {{path: '{path}', fsync: '{fsync}', snapshot_every: 100}}\n"
    )
    node = Node(parse_config(text), clock=clock)
    if replies is not None:
        node.observe_breaker("binance", replies)
    node.start()
    return BinanceHarness(node, clock, venue)


def test_an_order_leaves_only_after_its_intent_is_durable(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    h = journaled_node(venue, clock, tmp_path / "j", fsync="group:50ms:100000")
    try:
        coid = h.do(market(Side.BUY, "0.1"))
        h.sync()
        journal = h.node.journal
        assert journal is not None
        assert journal.durable_seq < journal.last_seq
        assert venue.orders() == [], "sent before its intent was fsynced"
        clock.advance(0.05)
        h.wait_status(coid, OrderStatus.FILLED)
        assert journal.durable_seq >= 2
    finally:
        h.node.stop(timeout=20)


def test_a_new_node_on_the_same_journal_has_everything_and_applies_nothing_twice(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    first = journaled_node(venue, clock, tmp_path / "j")
    try:
        filled = first.do(market(Side.BUY, "0.4"))
        first.wait_status(filled, OrderStatus.FILLED)
        resting = first.do(limit(Side.BUY, "49900.00", "0.5"))
        first.wait_status(resting, OrderStatus.ACCEPTED)
        before = first.node.oms.ask(GetFills())
    finally:
        first.node.stop(timeout=20)
    venue.set_price("BTCUSDT", D("49800.00"))

    second = journaled_node(venue, clock, tmp_path / "j")
    try:
        assert second.node.recovery is not None and second.node.recovery.replayed > 0
        assert second.order(filled).status is OrderStatus.FILLED
        second.strategy("s1")
        view = second.wait_status(resting, OrderStatus.FILLED)
        assert view.filled_quantity == D("0.5")
        fills = second.node.oms.ask(GetFills())
        assert [f.execution_id for f in fills[: len(before)]] == [f.execution_id for f in before]
        executions = [f.execution_id for f in fills]
        assert len(executions) == len(set(executions))
        assert set(executions) == {f"binance-{t.symbol}-{t.trade_id}" for t in venue.trades()}
        free, locked = venue.balances()["BTC"]
        assert second.position("BTCUSDT") == free + locked - DEFAULT_BALANCES["BTC"]
    finally:
        second.node.stop(timeout=20)


def test_a_restarted_node_counts_what_it_recovered_against_its_risk_limits(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    limits = "risk: {max_open_orders: 2, max_position_quantity: '0.5'}\n"

    def start() -> BinanceHarness:
        text = (
            node_config(venue)
            + f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
            + limits
        )
        node = Node(parse_config(text), clock=clock)
        node.start()
        return BinanceHarness(node, clock, venue)

    first = start()
    try:
        bought = first.do(market(Side.BUY, "0.4"))
        first.wait_status(bought, OrderStatus.FILLED)
        resting = [first.do(limit(Side.BUY, price, "0.01")) for price in ("49000.00", "48000.00")]
        for coid in resting:
            first.wait_status(coid, OrderStatus.ACCEPTED)
    finally:
        first.node.stop(timeout=20)

    second = start()
    try:
        status = second.node.risk.ask(GetRiskStatus())
        assert status["approved_open"] == 2
        third = second.do(limit(Side.BUY, "47000.00", "0.01"))
        denied = second.wait_for(OrderDenied, third)[0]
        assert denied.code is DenialCode.MAX_OPEN_ORDERS
        second.do(lambda ctx: ctx.cancel_order(resting[0]))
        second.wait_status(resting[0], OrderStatus.CANCELED)
        over = second.do(market(Side.BUY, "0.2"))
        assert second.wait_for(OrderDenied, over)[0].code is DenialCode.MAX_POSITION
    finally:
        second.node.stop(timeout=20)


def test_a_balance_change_while_the_node_was_down_is_a_drift_after_the_restart(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    def check(h: BinanceHarness) -> None:
        link = h.node.venues["binance"]
        done = link.reconciliations
        clock.advance(30.0)
        assert link.wait_for_reconciliations(done + 1, timeout=10)
        h.sync()

    first = journaled_node(venue, clock, tmp_path / "j")
    try:
        bought = first.do(market(Side.BUY, "0.2"))
        first.wait_status(bought, OrderStatus.FILLED)
        check(first)
        check(first)
        assert first.node.oms.ask(GetMetrics())["position_drifts"] == 0
    finally:
        first.node.stop(timeout=20)
    venue.deposit("BTC", D("1"))

    second = journaled_node(venue, clock, tmp_path / "j")
    try:
        seen = second.events()
        check(second)
        check(second)
        reducing = seen.wait_for(
            lambda m: isinstance(m, TradingStateChanged) and m.state is TradingState.REDUCING
        )[0]
        assert "drift on binance BTC" in reducing.reason
        assert second.node.oms.ask(GetMetrics())["position_drifts"] == 1
        assert second.position("BTCUSDT") == D("0.2"), "a drift is reported, never booked"
    finally:
        second.node.stop(timeout=20)


def _crashed_journal(path: Path, order: SubmitOrder) -> None:
    """What a node leaves behind when it dies after recording an order's intent."""
    with Journal.open(path, fsync=FsyncPolicy.EVERY_RECORD) as journal:
        journal.append(encode_entry(JournalEntry(kind=EntryKind.REGISTER, ts_ns=1, message=order)))
        journal.append(
            encode_entry(
                JournalEntry(
                    kind=EntryKind.SUBMITTED, ts_ns=2, client_order_id=order.client_order_id
                )
            )
        )


def _order(client_order_id: str) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=client_order_id,
        strategy_id="s1",
        venue="binance",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=D("0.2"),
    )


def test_an_intent_that_never_reached_the_venue_is_sent_once_after_a_crash(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    order = _order("crash1-0")
    _crashed_journal(tmp_path / "j", order)
    replies: EventRecorder = EventRecorder()
    h = journaled_node(venue, clock, tmp_path / "j", replies=replies)
    try:
        h.strategy("s1")
        # The crashed process may have signed it just before it died: until
        # recvWindow (5 s) and the clock margin (1 s) have passed since this
        # process started, "not found" means "not yet".
        replies.wait_for(lambda reply: reply.outcome is Outcome.NOT_FOUND)
        h.node.failure_stats("binance")
        assert venue.submissions() == {}, "re-sent inside the acceptance window"
        clock.advance(6.0)
        h.wait_status(order.client_order_id, OrderStatus.FILLED)
        assert venue.submissions() == {order.client_order_id: 1}
    finally:
        h.node.stop(timeout=20)


def test_an_intent_that_reached_the_venue_before_the_crash_is_adopted_not_resent(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    order = _order("crash2-0")
    _crashed_journal(tmp_path / "j", order)
    # The crashed node's request reached the venue under the order's id:
    venue_order = _place_directly(venue, order, clock)
    h = journaled_node(venue, clock, tmp_path / "j")
    try:
        h.strategy("s1")
        view = h.wait_status(order.client_order_id, OrderStatus.FILLED)
        assert view.filled_quantity == venue_order
        assert venue.submissions()[order.client_order_id] == 1
    finally:
        h.node.stop(timeout=20)


def _place_directly(venue: BinanceVenue, order: SubmitOrder, clock: ManualClock) -> Decimal:
    """Place ``order`` at the venue over its REST API, as the crashed node had."""
    return D(place_directly(venue, clock, order)["executedQty"])


def test_the_entries_counter_bound_is_the_client_id_bound() -> None:
    # Two internal bounds that must agree: the allocator's and the entry format's.
    from tradenode.actors._client_ids import MAX_COUNTER as ids_bound
    from tradenode.actors._oms_entries import MAX_COUNTER as entries_bound

    assert entries_bound == ids_bound


def test_with_fsync_none_orders_are_journaled_but_never_held(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    h = journaled_node(venue, clock, tmp_path / "j", fsync="none")
    try:
        coid = h.do(market(Side.BUY, "0.1"))
        h.wait_status(coid, OrderStatus.FILLED)
        journal = h.node.journal
        assert journal is not None and journal.last_seq >= 4
    finally:
        h.node.stop(timeout=20)
