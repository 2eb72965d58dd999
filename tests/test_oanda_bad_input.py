"""What OANDA may send that the adapter does not know (issue #15, bad input): a
transaction type added after the codec was written is logged and counted, never
fatal, and the orders around it still reach the OMS exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode.messages import OrderStatus, Side
from tradenode.supervision import ManualClock
from tradenode.testing.venues import OandaVenue

from ._oanda_helpers import K, event, limit, market, oanda_node, venue_clock

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[OandaVenue]:
    with OandaVenue(seed=9, clock=venue_clock(clock), heartbeat_interval=0.2) as local_venue:
        local_venue.freeze_prices()
        local_venue.set_price("EUR_USD", D("1.10000"))
        yield local_venue


def test_an_unknown_transaction_type_is_counted_and_skipped(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock) as h:
        link = h.link()
        first = h.do(market(Side.BUY, "100"))
        h.wait_status(first, OrderStatus.FILLED)
        venue.book_transaction("SOME_FUTURE_TRANSACTION")
        second = h.do(market(Side.BUY, "200"))
        h.wait_status(second, OrderStatus.FILLED)
        h.sync()
        assert link.unknown_transactions == 1
        assert link.malformed_payloads == 1
        assert not h.node.failed
        assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
        assert h.position("EUR_USD") == venue.positions()["EUR_USD"] == D(300)
        status = h.node.status()["connections"]["oanda"]
        assert status["malformed_payloads"] == 1


def test_an_unknown_transaction_in_the_replay_is_counted_and_skipped(
    venue: OandaVenue, clock: ManualClock, tmp_path: Path
) -> None:
    """Booked while no node ran: the next process's replay from its journaled
    cursor meets it, counts it, and carries on to the fill behind it."""
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with oanda_node(venue, journal, clock=clock) as h:
        resting = h.do(limit(Side.BUY, "1.09000", "500"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        h.sync()
    venue.book_transaction("SOME_FUTURE_TRANSACTION")
    venue.set_price("EUR_USD", D("1.08900"))  # fills while nobody watches
    with oanda_node(venue, journal, clock=clock) as h:
        link = h.link()
        h.wait_status(resting, OrderStatus.FILLED)
        h.sync()
        assert link.unknown_transactions == 1
        assert link.replayed_transactions >= 2
        assert h.position("EUR_USD") == venue.positions()["EUR_USD"] == D(500)
        assert not h.node.failed
