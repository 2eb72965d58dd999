"""The IB adapter when what it reads is not what it expected: a modification of an
order an earlier process placed (rebuilt from TWS's open orders) that TWS no
longer lists as open, or whose open orders TWS does not answer. Each gets its
reply; the broker never fails and the node keeps working."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode.actors import BrokerReply, Outcome
from tradenode.messages import ModifyRejected, OrderStatus, Side
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import IbkrVenue

from ._ibkr_helpers import K, assert_exactly_once, event, ibkr_node, limit, market, venue_clock

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[IbkrVenue]:
    with IbkrVenue(seed=13, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def _journal(tmp_path: Path) -> str:
    return f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"


def _rest_an_order(venue: IbkrVenue, clock: ManualClock, journal: str) -> str:
    """A resting limit placed by a process that then ends: the next one adopts it
    from TWS's books, with no IB order of its own to modify from."""
    with ibkr_node(venue, journal, clock=clock) as h:
        coid: str = h.do(limit(Side.BUY, "185.00", "40"))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
    return coid


def test_modifying_an_adopted_order_tws_no_longer_lists_is_rejected_not_fatal(
    venue: IbkrVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = _journal(tmp_path)
    coid = _rest_an_order(venue, clock, journal)
    with ibkr_node(venue, journal, clock=clock) as h:
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
        # The order fills at TWS; its executions are late, so this process still
        # tracks it as live (its filled status waits for the fills).
        venue.hold_executions()
        venue.set_price("AAPL", D("184.90"))
        assert next(o for o in venue.orders() if o["orderRef"] == coid)["status"] == "Filled"
        h.do(lambda ctx: ctx.modify_order(coid, price=D("186.00")))
        rejected = h.wait_for(ModifyRejected, coid)[0]
        assert rejected.code == "NOT_OPEN"
        h.sync()
        assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
        assert not h.node.failed
        # The fills arrive; the order ends filled at its original size, once.
        assert venue.release_executions() > 0
        assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 40
        # A new order (another strategy: this one's ids start again in a new process).
        later = h.do(market(Side.BUY, "10"), strategy_id="s2")
        assert later != coid
        h.wait_status(later, OrderStatus.FILLED, strategy_id="s2")
        assert venue.submissions()[coid] == 1  # nothing was sent for the modification
        assert_exactly_once(h)


#: TWS's message id of placeOrder (the API's outgoing message 3).
_PLACE_ORDER = 3


def test_modifying_an_adopted_order_when_tws_does_not_list_its_orders_times_out_not_fatal(
    venue: IbkrVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = _journal(tmp_path)
    coid = _rest_an_order(venue, clock, journal)
    with ibkr_node(venue, journal, clock=clock, request_timeout=1.0) as h:
        replies = EventRecorder()
        h.node.observe_breaker("ibkr", replies)
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.sync()
        placed = venue.requests().get(_PLACE_ORDER, 0)
        # TWS holds a placement, and everything this connection sends after it:
        # the open orders the modification is rebuilt from go unanswered.
        venue.delay_orders(1)
        held = h.do(limit(Side.BUY, "150.00", "10"), strategy_id="s2")
        venue.wait_for(
            lambda: venue.requests().get(_PLACE_ORDER, 0) == placed + 1, 20.0, "the held placement"
        )
        h.do(lambda ctx: ctx.modify_order(coid, price=D("186.00")))
        timed_out = replies.wait_for(
            lambda r: (
                isinstance(r, BrokerReply)
                and r.outcome is Outcome.TIMEOUT
                and "modify not sent" in r.detail
            )
        )
        assert timed_out
        assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
        assert not h.node.failed
        # TWS answers again; the order was never modified, and the node trades on.
        assert venue.release_orders() == 1
        h.wait_status(held, OrderStatus.ACCEPTED, strategy_id="s2")
        assert venue.submissions()[coid] == 1
        h.do(lambda ctx: ctx.cancel_order(coid))
        h.wait_status(coid, OrderStatus.CANCELED)
        later = h.do(market(Side.BUY, "10"), strategy_id="s2")
        h.wait_status(later, OrderStatus.FILLED, strategy_id="s2")
        assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
