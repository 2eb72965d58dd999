"""The venue's own counters, read from its response headers, pace our orders.

The local venue allows 3 orders per 10 s. After one order the broker knows
the venue's count and limit (``X-MBX-ORDER-COUNT-10S`` and exchangeInfo's
``rateLimits``), and the breaker holds back what would pass the limit
instead of collecting ``-1015`` refusals.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradenode.actors._contract import BrokerReply, Outcome
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
    # The clock jumps whole order windows; a request in flight during a jump
    # must not time out for it.
    with binance_node(venue, clock=clock, request_timeout=120) as h:
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

        def answered(count: int) -> None:
            """The breaker has taken in ``count`` OK replies (and so planned what
            it holds back) before the clock moves on."""
            replies.wait_for(lambda r: r.outcome is Outcome.OK, count=count)
            h.node.failure_stats("binance")

        answered(2)
        h.sync()
        assert len(venue.orders()) == 2, "the breaker let orders pass the venue's limit"
        # Each window lets at least one more through once the breaker has
        # planned from the last answer.
        for number in range(3, 6):
            clock.advance(10.0)
            answered(number)
        for coid in burst:
            h.wait_status(coid, OrderStatus.FILLED)
        assert not [m for m in h.events().items if isinstance(m, OrderRejected)]
        assert not [r for r in replies.items if r.outcome is Outcome.RATE_LIMITED]
        assert len(venue.orders()) == 5
