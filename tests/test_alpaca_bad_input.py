"""What Alpaca may answer that the OMS cannot take (bad input): a FILL activity a
sweep reads at a price or quantity of 0 is logged and counted, never fatal, and
never marked seen, so the same execution still reaches the OMS, once, when a
sound answer shows it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tradenode.messages import OrderStatus, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import AlpacaVenue

from ._alpaca_helpers import AlpacaHarness, K, alpaca_node, event, limit, market, venue_clock

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


def venue_order(venue: AlpacaVenue, client_order_id: str) -> Any:
    (order,) = [o for o in venue.orders() if o.client_order_id == client_order_id]
    return order


def execution_id(order_id: str, cumulative: Decimal) -> str:
    return f"alpaca-{order_id}-{format(cumulative.normalize(), 'f')}"


def assert_exactly_once(h: AlpacaHarness) -> None:
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert set(executions) == {execution_id(f.order_id, f.cum_qty) for f in h.venue.fills()}
    for symbol in ("AAPL", "MSFT"):
        assert h.position(symbol) == h.venue.position(symbol), symbol
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()


@pytest.mark.parametrize("field", ["price", "qty"])
def test_a_swept_fill_of_zero_is_counted_and_its_execution_still_arrives(
    venue: AlpacaVenue, clock: ManualClock, field: str
) -> None:
    with alpaca_node(venue, clock=clock, check_interval=30.0) as h:
        link = h.link()
        coid = h.do(limit(Side.BUY, "189.00", "10"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        venue.drop_events(1)
        h.clock.advance(1)  # the fill happens after the cursor's time
        venue.set_price("AAPL", D("188.90"))  # one fill, the whole order: its event is lost
        venue.wait_for(lambda: venue_order(venue, coid).filled_qty == 10)
        h.sync()
        venue.corrupt_next_fills(field, "0")
        done = link.reconciliations
        h.clock.advance(30.0)  # the periodic check reads the fill with a 0 in it
        h.sync()
        assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
        assert link.wait_for_reconciliations(done + 1, timeout=10)
        h.sync()
        assert link.malformed_payloads == 1
        assert h.node.status()["connections"]["alpaca"]["malformed_payloads"] == 1
        assert link.swept_fills == 0 and h.fills() == []  # nothing claimed the venue did not say
        assert h.order(coid).status is OrderStatus.ACCEPTED
        h.periodic_check(30.0)  # a sound answer: the same execution, not yet seen, goes now
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 10
        assert link.swept_fills == 1 and link.connections == 1
        later = h.do(market(Side.BUY, "5"))
        h.wait_status(later, OrderStatus.FILLED)
        assert h.position("AAPL") == 15
        assert link.malformed_payloads == 1
        assert not h.node.failed
        assert_exactly_once(h)
