"""The venue's own counters, read from its response headers, pace our orders.

The local venue allows 3 orders per 10 s. After one order the broker knows
the venue's count and limit (``X-MBX-ORDER-COUNT-10S`` and exchangeInfo's
``rateLimits``), and the breaker holds back what would pass the limit
instead of collecting ``-1015`` refusals.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradenode.actors import BrokerReply, Outcome
from tradenode.messages import OrderRejected, OrderStatus, Side
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import BinanceVenue

from ._binance_helpers import binance_node, market, venue_clock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=3, clock=venue_clock(clock), order_limit_10s=3) as local_venue:
        yield local_venue


def test_order_count_headers_hold_orders_back_until_the_window_has_room(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as h:
        replies = EventRecorder()
        h.node.observe_breaker("binance", replies)
        first = h.do(market(Side.BUY, "0.1"))
        h.wait_status(first, OrderStatus.FILLED)
        reply = replies.wait_for(lambda r: isinstance(r, BrokerReply))[0]
        assert [(r.counter, r.used, r.limit) for r in reply.rates if r.counter == "ORDERS:10S"] == [
            ("ORDERS:10S", 1.0, 3.0)
        ]
        burst = [h.do(market(Side.BUY, "0.1")) for _ in range(4)]
        h.wait_status(burst[0], OrderStatus.FILLED)

        # The breaker has every answer to what it sent (and so has planned what it
        # holds back): the clock must not jump past a request in flight, or its
        # timeout fires while the venue is still answering.
        h.sync()
        assert len(venue.orders()) == 2, "the breaker let orders pass the venue's limit"
        for _ in range(3):
            clock.advance(10.0)
            h.sync()
        for coid in burst:
            h.wait_status(coid, OrderStatus.FILLED)
        assert not [m for m in h.events().items if isinstance(m, OrderRejected)]
        assert not [r for r in replies.items if r.outcome is Outcome.RATE_LIMITED]
        assert len(venue.orders()) == 5
