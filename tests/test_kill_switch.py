"""The kill switch, for real, against the local Binance venue.

It cancels with one ``DELETE /api/v3/openOrders`` per symbol, waits until the
venue has confirmed every order closed, and flattens a spot account with
plain opposite-side market orders (Binance Spot refuses reduce-only), sized
to what the venue's account holds. ``complete`` means the venue confirmed
all of it; otherwise the report says what remains and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode.messages import OrderStatus, OrderType, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import DEFAULT_BALANCES, BinanceVenue

from ._binance_helpers import BinanceHarness, binance_node, limit, market, venue_clock
from ._node_helpers import running_node

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=43, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def open_at_venue(venue: BinanceVenue) -> list[str]:
    return [o.client_order_id for o in venue.orders() if o.status in ("NEW", "PARTIALLY_FILLED")]


def trade_a_little(h: BinanceHarness) -> list[str]:
    bought = h.do(market(Side.BUY, "0.3"))
    eth = h.do(market(Side.BUY, "2", "ETHUSDT"))
    h.wait_status(bought, OrderStatus.FILLED)
    h.wait_status(eth, OrderStatus.FILLED)
    resting = [
        h.do(limit(Side.BUY, price, "0.1")) for price in ("49000.00", "48900.00", "48800.00")
    ]
    resting.append(h.do(limit(Side.BUY, "2900.00", "1", "ETHUSDT")))
    for coid in resting:
        h.wait_status(coid, OrderStatus.ACCEPTED)
    return resting


def test_flatten_leaves_the_venues_own_account_flat_with_no_open_order(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        resting = trade_a_little(h)
        assert len(open_at_venue(venue)) == 4
        before = venue.calls()
        report = h.node.kill_switch(flatten=True, timeout=30)
        after = venue.calls()
        assert report.complete, report.problems
        assert report.problems == ()
        assert (report.open_orders_found, report.cancels_confirmed) == (4, 4)
        # One cancel-all per symbol, not one cancel per order.
        assert after.get("DELETE openOrders", 0) - before.get("DELETE openOrders", 0) == 2
        assert after.get("DELETE order", 0) == before.get("DELETE order", 0)
        for coid in resting:
            assert h.order(coid).status is OrderStatus.CANCELED
        assert len(report.flatten_orders) == 2
        for coid in report.flatten_orders:
            view = h.order(coid)
            assert view.status is OrderStatus.FILLED
            assert view.order.side is Side.SELL and not view.order.reduce_only
        # As the venue's own books show it: nothing open, the base assets back
        # where they started.
        assert open_at_venue(venue) == []
        balances = venue.balances()
        for asset in ("BTC", "ETH"):
            free, locked = balances[asset]
            assert free + locked == DEFAULT_BALANCES[asset], asset
        assert all(p.quantity == 0 for p in report.positions_after)


def test_a_flatten_order_the_venue_refuses_makes_the_report_incomplete_with_its_reason(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        bought = h.do(market(Side.BUY, "0.3"))
        h.wait_status(bought, OrderStatus.FILLED)
        venue.fail_requests(1, status=400, code=-2010, endpoints=["POST order"])
        report = h.node.kill_switch(flatten=True, timeout=30)
        assert not report.complete
        assert len(report.flatten_orders) == 1
        (refused,) = report.flatten_orders
        assert h.order(refused).status is OrderStatus.REJECTED
        assert any(refused in line and "-2010" in line for line in report.problems), report.problems
        assert any("BTCUSDT: 0.3" in line and "left" in line for line in report.problems), (
            report.problems
        )


def test_no_snapshot_stalls_the_kill_switch_it_is_taken_once_the_run_is_over(
    tmp_path: Path,
) -> None:
    """A snapshot writes and fsyncs the whole state on the OMS's thread; one falling
    due in the middle of a kill switch would hold up every confirmation behind it.
    The OMS defers it to the moment the run is over."""
    journal_yaml = (
        f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record, snapshot_every: 100}}\n"
    )
    with running_node(journal_yaml) as h:
        coids = [
            h.do(
                lambda ctx: ctx.submit_order(
                    "BTCUSDT",
                    Side.BUY,
                    Decimal("0.01"),
                    order_type=OrderType.LIMIT,
                    price=Decimal("45000.00"),
                )
            )
            for _ in range(60)
        ]
        for coid in coids:
            h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
        journal = h.node.journal
        assert journal is not None
        before = journal.last_seq
        report = h.node.kill_switch(timeout=20)
        assert report.complete and report.cancels_confirmed == 60
        h.sync()  # the OMS has finished the message that completed the run
        snapshot = journal.latest_snapshot()
        assert snapshot is not None
        # 120 records (a pending cancel and a cancel per order) crossed the
        # 100-record mark, and the only snapshot since is the one after the last.
        assert journal.last_seq - before >= 120
        assert snapshot[0] == journal.last_seq
