"""The IB adapter when the connection to TWS (or TWS's to IB) breaks, against the local TWS.

A socket dropped mid-fill, IB's 1100 followed by 1101/1102, executions
duplicated or late, a placement TWS holds (an unknown outcome looked up by
orderRef, never placed twice), pacing violations, a message that cannot be
read, and a new process on the old journal: after the supervisor restarts the
broker, every execution reaches the OMS exactly once, positions equal the
local TWS's account, and no order is placed twice.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB

from tradenode import ConfigError
from tradenode.actors import BrokerReply, Outcome
from tradenode.messages import OrderStatus, Side
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import IbkrVenue

from ._ibkr_helpers import (
    CLIENT_ID,
    IbkrHarness,
    K,
    assert_exactly_once,
    event,
    ibkr_node,
    limit,
    market,
    venue_clock,
)

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[IbkrVenue]:
    with IbkrVenue(seed=11, clock=venue_clock(clock)) as local_venue:
        yield local_venue


@pytest.fixture
def h(venue: IbkrVenue, clock: ManualClock) -> Iterator[IbkrHarness]:
    with ibkr_node(venue, clock=clock) as harness:
        yield harness


#: TWS's message id of placeOrder (the API's outgoing message 3).
_PLACE_ORDER = 3


def test_a_socket_dropped_mid_fill_restarts_and_every_execution_arrives_once(
    h: IbkrHarness, venue: IbkrVenue
) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "250"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    venue.set_price("AAPL", D("188.95"))
    h.wait_status(coid, OrderStatus.PARTIALLY_FILLED)
    venue.hold_executions()  # the next fills' execDetails never reach this socket
    venue.set_price("AAPL", D("188.90"))
    venue.set_price("AAPL", D("188.85"))
    venue.drop_connections()
    h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
    venue.clear_faults()
    h.restart(2)
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 250
    second = h.do(market(Side.BUY, "10"))
    h.wait_status(second, OrderStatus.FILLED)
    link = h.link()
    assert link.connections == 2
    assert h.position("AAPL") == 260
    assert_exactly_once(h)


def test_1100_fails_the_broker_until_1102_and_every_execution_arrives_once(
    h: IbkrHarness, venue: IbkrVenue
) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "50"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    venue.connectivity_lost()  # 1100; TWS holds what it would send meanwhile
    h.supervision.wait_for(event(K.RESTART_SCHEDULED, 2))
    venue.set_price("AAPL", D("188.90"))  # fills while TWS cannot tell anyone
    submitted = h.do(market(Side.SELL, "20"))  # waits in the broker's mailbox
    # TWS still has no IB: it says 1100 again to the new connection, which fails too.
    h.restart(2)
    h.supervision.wait_for(event(K.RESTART_SCHEDULED, 3))
    venue.connectivity_restored(data_lost=False)  # 1102
    h.restart(3)
    h.wait_status(coid, OrderStatus.FILLED)
    h.wait_status(submitted, OrderStatus.FILLED)
    assert h.position("AAPL") == 30
    assert_exactly_once(h)


@pytest.mark.parametrize("data_lost", [False, True])
def test_a_restored_notice_reconciles_in_place(
    h: IbkrHarness, venue: IbkrVenue, data_lost: bool
) -> None:
    coid = h.do(limit(Side.BUY, "189.00", "50"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    venue.hold_executions()  # the fill's execDetails never arrive live
    venue.set_price("AAPL", D("188.90"))
    reconciled = h.link().reconciliations
    venue.connectivity_restored(data_lost=data_lost)  # 1102 / 1101 on a live socket
    assert h.wait_status(coid, OrderStatus.FILLED).filled_quantity == 50
    link = h.link()
    assert link.restorations == 1 and link.reconciliations > reconciled
    assert link.connections == 1  # no restart
    venue.clear_faults()
    assert_exactly_once(h)


def test_duplicate_and_late_executions_reach_the_oms_once(h: IbkrHarness, venue: IbkrVenue) -> None:
    venue.duplicate_executions(3)
    first = h.do(market(Side.BUY, "150"))
    h.wait_status(first, OrderStatus.FILLED)
    venue.hold_executions()
    late = h.do(limit(Side.BUY, "189.00", "20"))
    h.wait_status(late, OrderStatus.ACCEPTED)
    venue.set_price("AAPL", D("188.90"))
    assert venue.release_executions() >= 1
    h.wait_status(late, OrderStatus.FILLED)
    assert_exactly_once(h)


def test_a_placement_tws_holds_is_looked_up_by_order_ref_and_never_placed_twice(
    venue: IbkrVenue, clock: ManualClock
) -> None:
    with ibkr_node(venue, clock=clock, request_timeout=0.5) as h:
        replies = EventRecorder()
        h.node.observe_breaker("ibkr", replies)
        venue.delay_orders(1)
        coid = h.do(market(Side.BUY, "10"))
        replies.wait_for(lambda r: isinstance(r, BrokerReply) and r.outcome is Outcome.TIMEOUT)
        clock.advance(1.0)
        # The breaker asks TWS by orderRef before anything else; TWS reads a connection
        # in order, so the question waits behind the held placement too.
        replies.wait_for(lambda r: isinstance(r, BrokerReply) and "reqOpenOrders" in r.detail)
        assert venue.submissions() == {}, "nothing placed while TWS holds the placement"
        assert venue.release_orders() == 1
        h.wait_status(coid, OrderStatus.FILLED)
        clock.advance(60)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_exactly_once(h)


def test_a_pacing_violation_is_rate_limited_and_the_order_goes_after_the_back_off(
    h: IbkrHarness, venue: IbkrVenue
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("ibkr", replies)
    h.strategy()  # its quote subscription is a request too, perhaps still unread by TWS:
    h.sync()
    venue.pacing_violation(1, placements_only=True)  # so the fault waits for the order
    coid = h.do(market(Side.BUY, "10"))
    limited = replies.wait_for(
        lambda r: isinstance(r, BrokerReply) and r.outcome is Outcome.RATE_LIMITED
    )[0]
    assert limited.retry_after == 1.0
    assert h.link().pacing_violations == 1
    h.clock.advance(1.5)
    h.wait_status(coid, OrderStatus.FILLED)
    assert_exactly_once(h)


def test_an_unreadable_message_is_counted_and_never_fatal(h: IbkrHarness, venue: IbkrVenue) -> None:
    venue.corrupt_next_message()
    coid = h.do(market(Side.BUY, "10"))
    h.wait_status(coid, OrderStatus.FILLED)
    later = h.do(market(Side.BUY, "10"))
    h.wait_status(later, OrderStatus.FILLED)
    h.sync()
    assert h.link().malformed_payloads >= 1
    assert h.node.status()["connections"]["ibkr"]["malformed_payloads"] >= 1
    assert not h.node.failed
    assert_exactly_once(h)


def test_an_unknown_contract_in_config_is_a_config_error_naming_it(
    venue: IbkrVenue, clock: ManualClock
) -> None:
    instruments = """
      instruments:
        AAPL: {sec_type: STK, symbol: AAPL, primary_exchange: NASDAQ}
        NOPE: {sec_type: STK, symbol: NOPEX, primary_exchange: NYSE}
"""
    with ibkr_node(venue, clock=clock, instruments=instruments) as h:
        failed = h.supervision.wait_for(event(K.FAILED))[0]
    error = failed.error
    assert isinstance(error, ConfigError), error
    assert "NOPE" in str(error) and "NOPEX" in str(error) and error.key == "ibkr.instruments"


def test_a_new_process_maps_ib_order_ids_back_and_replays_from_the_journaled_cursor(
    venue: IbkrVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with ibkr_node(venue, journal, clock=clock) as h:
        filled = h.do(market(Side.BUY, "10"))
        h.wait_status(filled, OrderStatus.FILLED)
        fills = h.do(limit(Side.BUY, "189.00", "50"))
        rests = h.do(limit(Side.BUY, "150.00", "30"))
        fills_id = h.wait_status(fills, OrderStatus.ACCEPTED).venue_order_id
        rests_id = h.wait_status(rests, OrderStatus.ACCEPTED).venue_order_id
        h.sync()
        assert h.link().cursor is not None
    # Nobody watches: one order fills at TWS.
    venue.set_price("AAPL", D("188.90"))
    with ibkr_node(venue, journal, clock=clock) as h:
        link = h.link()
        assert rests_id is not None and link.client_ids[int(rests_id)] == rests
        view = h.wait_status(fills, OrderStatus.FILLED)
        assert view.venue_order_id == fills_id and view.filled_quantity == 50
        h.do(lambda ctx: ctx.cancel_order(rests))
        h.wait_status(rests, OrderStatus.CANCELED)
        assert next(o for o in venue.orders() if o["orderRef"] == rests)["status"] == "Cancelled"
        assert h.position("AAPL") == 60
        assert_exactly_once(h)


def test_a_new_process_resolves_an_in_flight_order_by_asking_the_venue_first(
    venue: IbkrVenue, clock: ManualClock, tmp_path: Path
) -> None:
    journal = f"journal: {{path: '{tmp_path / 'journal'}', fsync: every_record}}\n"
    with ibkr_node(venue, journal, clock=clock, request_timeout=30) as h:
        venue.delay_orders(1)
        coid = h.do(market(Side.BUY, "10"))
        h.wait_status(coid, OrderStatus.SUBMITTED)
        # SUBMITTED is journaled before the order leaves for the venue: the process
        # goes only once TWS holds the placement (the test is about that order).
        venue.wait_for(
            lambda: venue.requests().get(_PLACE_ORDER, 0) == 1, 20.0, "TWS holds the placement"
        )
    # The process is gone; TWS processes the placement it held.
    assert venue.release_orders() == 1
    with ibkr_node(venue, journal, clock=clock) as h:
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert view.filled_quantity == 10
        h.clock.advance(60)
        h.sync()
        assert venue.submissions()[coid] == 1
        assert_exactly_once(h)


def test_the_incarnations_asyncio_loop_refuses_work_once_closed() -> None:
    # The loop an incarnation owns is internal: imported privately to test its refusals.
    from tradenode.brokers._asyncio import AsyncioLoopClosed, AsyncioThread

    loop = AsyncioThread("test")

    async def answer() -> int:
        return 42

    async def forever() -> None:
        await asyncio.Event().wait()

    assert loop.run(answer()) == 42
    outcomes: list[object] = []
    ended = threading.Event()

    def done(outcome: object) -> None:
        outcomes.append(outcome)
        ended.set()

    loop.submit(forever(), done)
    loop.close()
    assert ended.wait(5) and isinstance(outcomes[0], AsyncioLoopClosed)
    assert not loop.is_running
    with pytest.raises(AsyncioLoopClosed):
        loop.run(answer())


def test_a_pacing_violation_while_connecting_fails_the_attempt_at_once(
    venue: IbkrVenue, clock: ManualClock
) -> None:
    venue.pacing_violation(1)  # the first request at connect (reqPositions) is refused
    with ibkr_node(venue, clock=clock) as h:
        failed = h.supervision.wait_for(event(K.FAILED, 1))[0]
        assert "100" in str(failed.error)
        h.restart(2)
        coid = h.do(market(Side.BUY, "10"))
        h.wait_status(coid, OrderStatus.FILLED)
        assert_exactly_once(h)


def test_lookups_of_one_kind_asked_together_each_get_their_own_answer(venue: IbkrVenue) -> None:
    """ib_async keys reqOpenOrders, reqCompletedOrders and reqPositions by a fixed
    name: a second request started before the first is answered takes over its
    future. A new process resolving several orders of unknown outcome asks about all
    of them at once; each lookup must get an answer, none may wait out its timeout
    (the drill's settle runs once ran out of time behind such waits)."""
    # The typed request layer is internal to the adapter: imported to drive it directly.
    from tradenode.brokers.ibkr._endpoints import IbkrApi

    async def ask_together() -> list[object]:
        ib = IB()
        await ib.connectAsync(venue.host, venue.port, clientId=CLIENT_ID + 40, timeout=10)
        try:
            # Far longer than any answer takes: a lost answer fails the test by timing out.
            api = IbkrApi(ib, timeout=60)
            return list(
                await asyncio.gather(
                    api.open_orders(),
                    api.open_orders(),
                    api.completed_orders(),
                    api.completed_orders(),
                    api.positions(),
                    api.positions(),
                )
            )
        finally:
            ib.disconnect()

    answers = asyncio.run(ask_together())
    assert answers[0] == answers[1] and answers[2] == answers[3] and answers[4] == answers[5]
