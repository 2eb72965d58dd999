"""The IB adapter through a running node, against the local TWS (``IbkrVenue``) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from tradenode.messages import OrderStatus, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import IbkrVenue

from ._ibkr_helpers import IbkrHarness, ibkr_node, limit, market, venue_clock

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[IbkrVenue]:
    with IbkrVenue(seed=7, clock=venue_clock(clock)) as local_venue:
        yield local_venue


@pytest.fixture
def h(venue: IbkrVenue, clock: ManualClock) -> Iterator[IbkrHarness]:
    with ibkr_node(venue, clock=clock) as harness:
        yield harness


def assert_exactly_once(h: IbkrHarness) -> None:
    """Every execution the venue made reached the OMS once; positions equal the venue's;
    no orderRef was placed twice."""
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    at_venue = {str(f["execId"]).rsplit(".", 1)[0] for f in h.venue.fills()}
    assert set(executions) == at_venue
    for symbol in ("AAPL", "EURUSD", "ESZ6", "AAPL-C200"):
        assert h.position(symbol) == h.venue_position(symbol), symbol
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()


def test_a_stock_market_order_fills_with_its_commission(h: IbkrHarness) -> None:
    coid = h.do(market(Side.BUY, "150"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == 150 and view.venue_order_id is not None
    fills = h.fills()
    assert len(fills) == 2  # two book levels, two executions
    assert all(f.commission > 0 for f in fills)
    assert_exactly_once(h)


def test_a_resting_limit_rests_then_fills(h: IbkrHarness) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "50"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.venue.set_price("AAPL", D("188.90"))
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 50
    assert_exactly_once(h)
