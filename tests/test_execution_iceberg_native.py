"""The Iceberg goes native where the venue has one (``native_iceberg``), else emulates.

On the local Binance venue (real wire protocol on loopback) an Iceberg parent
sends one order with ``icebergQty``; the venue's public book never shows more
than the display quantity at the limit while it fills, and the parent fills
to its total, never more, as the venue's own trades confirm. On paper (no
native iceberg) the same parent is worked display-sized child by child, and
an order with a display quantity sent there directly is denied.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tradenode.messages import (
    DenialCode,
    IcebergParams,
    OrderDenied,
    OrderStatus,
    OrderType,
    ParentState,
    Side,
    child_order_id,
)
from tradenode.supervision import ManualClock
from tradenode.testing.venues import BinanceVenue

from ._binance_helpers import BinanceHarness, binance_node, venue_clock
from ._execution_helpers import (
    ParentFilled,
    children,
    parent,
    submit_parent,
    wait_parent_event,
    working,
)
from ._node_helpers import running_node

D = Decimal
LIMIT = D("49999.00")  # inside the local venue's spread (49995 / 50005): the best bid
DISPLAY = D("0.5")  # the venue's synthetic book fills at most 0.5 per crossing


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=11, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def book_bid_at(h: BinanceHarness, price: Decimal) -> Decimal:
    """What the venue's public REST depth shows on the bid side at ``price``."""
    book = httpx.get(
        f"{h.venue.rest_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 20}
    ).json()
    return sum((D(q) for p, q in book["bids"] if D(p) == price), D(0))


def trade_through(venue: BinanceVenue) -> None:
    """The market trades down through the limit (the venue fills one level's quantity
    of the iceberg) and comes back: the limit is the best bid again, uncrossed."""
    venue.set_price("BTCUSDT", D("49990.00"))
    venue.set_price("BTCUSDT", D("50000.00"))


def test_an_iceberg_on_binance_is_one_native_order_showing_only_its_display(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    tickers: list[dict[str, Any]] = []
    venue.exchange.add_listener(
        lambda event: (
            tickers.append(event.payload) if "bookTicker" in getattr(event, "stream", "") else None
        )
    )
    with binance_node(venue, clock=clock) as h:
        h.strategy("s1")
        h.sync()
        initial_btc = sum(venue.balances()["BTC"])
        params = IcebergParams(display_quantity=DISPLAY, limit_price=LIMIT)
        pid = submit_parent(h, D("2.0"), params, venue="binance", parent_id="nice1")
        (child,) = children(h, pid)
        assert child.client_order_id == child_order_id(pid, 1)
        assert (child.quantity, child.order.display_quantity) == (D("2.0"), DISPLAY)
        h.wait_status(child.client_order_id, OrderStatus.ACCEPTED)
        shown: list[Decimal] = []
        for _ in range(20):
            # The venue's own view of the order, and its public book at the limit, at
            # every step: the whole tip while the rest can refill it, never more.
            (order,) = [o for o in venue.orders() if o.client_order_id == child.client_order_id]
            leaves = order.orig_qty - order.executed_qty
            shown.append(book_bid_at(h, LIMIT))
            assert shown[-1] == min(DISPLAY, leaves), (order, shown)
            if leaves == 0:
                break
            # The tip fills, the venue refreshes it from the hidden rest.
            trade_through(venue)
            h.sync()
            assert working(parent(h, pid)) <= D("2.0")
        # Refreshed from the hidden rest: the display shown again after fills.
        assert shown.count(DISPLAY) >= 4 and shown[-1] == 0
        wait_parent_event(h, pid, ParentFilled)
        view = parent(h, pid)
        assert view.filled == D("2.0") and view.child_ids == (child.client_order_id,)
        # One order at the venue for the whole parent, an iceberg of the display quantity.
        (order,) = [o for o in venue.orders() if o.client_order_id == child.client_order_id]
        assert (order.iceberg_qty, order.orig_qty, order.status) == (DISPLAY, D("2.0"), "FILLED")
        assert len(venue.orders()) == 1
        # The bookTicker stream agrees: at the limit, never more than the display.
        at_limit = [D(t["B"]) for t in tickers if D(t["b"]) == LIMIT]
        assert at_limit and max(at_limit) == DISPLAY
        assert all(D(t["b"]) < D(t["a"]) for t in tickers)  # never a crossed book
        # The venue's own books: its trades of that order and the account's BTC.
        trades = [t for t in venue.trades() if t.order_id == order.order_id]
        assert sum(t.qty for t in trades) == D("2.0")
        assert sum(venue.balances()["BTC"]) - initial_btc == D("2.0")


def test_on_paper_the_same_iceberg_is_emulated_child_by_child() -> None:
    with running_node() as h:
        entry = h.node.directory.venue("paper")
        assert entry is not None and not entry.capabilities.native_iceberg
        h.strategy("s1")
        h.sync()
        params = IcebergParams(display_quantity=D("0.3"), limit_price=D("49990.00"))
        pid = submit_parent(h, D("1.0"), params, venue="paper", parent_id="pice1")
        (first,) = children(h, pid)
        assert (first.quantity, first.order.display_quantity) == (D("0.3"), None)


def test_an_offset_iceberg_is_emulated_even_where_the_venue_is_native(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    """A price offset needs a refresh of ours per price: not expressible natively."""
    with binance_node(venue, clock=clock) as h:
        h.strategy("s1")
        h.sync()
        params = IcebergParams(display_quantity=DISPLAY, limit_price=LIMIT, price_offset=D("2.00"))
        pid = submit_parent(h, D("2.0"), params, venue="binance", parent_id="nice2")
        (first,) = children(h, pid)
        assert (first.quantity, first.order.display_quantity) == (DISPLAY, None)


def test_a_display_quantity_sent_to_paper_is_denied_unsupported_by_venue() -> None:
    with running_node() as h:
        h.strategy("s1")
        coid = h.do(
            lambda ctx: ctx.submit_order(
                "BTCUSDT",
                Side.BUY,
                D("1.0"),
                order_type=OrderType.LIMIT,
                price=D("49990.00"),
                venue="paper",
                display_quantity=D("0.2"),
            )
        )
        denial = h.wait_for(OrderDenied, coid)[0]
        assert isinstance(denial, OrderDenied)
        assert denial.code is DenialCode.UNSUPPORTED_BY_VENUE
        assert "native iceberg" in denial.reason and "venue paper" in denial.reason
        assert h.node.venues["paper"].order(coid) is None


def test_a_node_restarted_on_its_journal_resumes_the_native_iceberg_without_a_resend(
    venue: BinanceVenue, clock: ManualClock, tmp_path: Path
) -> None:
    """The one native child reached the venue: the restarted node finds it open there
    (journal + reconciliation) and sends nothing; the venue fills it to the total."""
    journal = f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
    params = IcebergParams(display_quantity=DISPLAY, limit_price=LIMIT)
    with binance_node(venue, journal, clock=clock) as h:
        h.strategy("s1")
        h.sync()
        pid = submit_parent(h, D("2.0"), params, venue="binance", parent_id="nice3")
        (child,) = children(h, pid)
        h.wait_status(child.client_order_id, OrderStatus.ACCEPTED)
        trade_through(venue)
        h.wait_status(child.client_order_id, OrderStatus.PARTIALLY_FILLED)
    with binance_node(venue, journal, clock=clock) as h:
        h.strategy("s1")  # the parent's owner again: it hears the parent fill
        h.sync()
        assert parent(h, pid).child_ids == (child.client_order_id,)
        for _ in range(20):
            (order,) = venue.orders()
            if order.executed_qty == order.orig_qty:
                break
            assert book_bid_at(h, LIMIT) == min(DISPLAY, order.orig_qty - order.executed_qty)
            trade_through(venue)
            h.sync()
        wait_parent_event(h, pid, ParentFilled)
        assert parent(h, pid).filled == D("2.0")
        assert parent(h, pid).child_ids == (child.client_order_id,)
        assert venue.submissions() == {child.client_order_id: 1}


def test_a_native_iceberg_the_venue_refuses_falls_back_to_emulation(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    """2.0 shown 0.1 at a time is 20 parts, above the symbol's ICEBERG_PARTS (10):
    Binance refuses the native child, and the parent goes on emulated."""
    with binance_node(venue, clock=clock) as h:
        h.strategy("s1")
        h.sync()
        params = IcebergParams(display_quantity=D("0.1"), limit_price=LIMIT)
        pid = submit_parent(h, D("2.0"), params, venue="binance", parent_id="nice4")
        refused = h.wait_status(child_order_id(pid, 1), OrderStatus.REJECTED)
        assert refused.order.display_quantity == D("0.1")
        assert refused.reason is not None and "ICEBERG_PARTS" in refused.reason
        second = h.wait_status(child_order_id(pid, 2), OrderStatus.ACCEPTED)
        assert (second.quantity, second.order.display_quantity) == (D("0.1"), None)
        trade_through(venue)
        h.wait_status(child_order_id(pid, 3), OrderStatus.ACCEPTED)
        assert parent(h, pid).state is ParentState.WORKING
        ours = [o for o in venue.orders() if o.client_order_id.startswith(pid)]
        assert [(o.client_order_id, o.orig_qty, o.iceberg_qty) for o in ours] == [
            (child_order_id(pid, 2), D("0.1"), D(0)),
            (child_order_id(pid, 3), D("0.1"), D(0)),
        ]
