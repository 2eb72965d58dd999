"""What OANDA may send that the adapter does not know (issue #15, bad input): a
transaction type added after the codec was written is logged and counted, never
fatal, and the orders around it still reach the OMS exactly once. So are a
crossed price line (skipped) and an order lookup the adapter cannot read or
cannot finish (answered as an unknown outcome: the breaker asks again)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode.actors import Outcome
from tradenode.messages import OrderStatus, Quote, Side
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import OandaVenue

from ._node_helpers import Scripted
from ._oanda_helpers import K, OandaHarness, event, limit, market, oanda_node, venue_clock

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


class Watcher(Scripted):
    venue = "oanda"


def assert_unharmed(h: OandaHarness, malformed: int) -> None:
    """Counted, not fatal: the broker never failed nor restarted, and every fill the
    venue made reached the OMS once, and a new order still trades."""
    h.sync()
    assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
    link = h.link()
    assert link.malformed_payloads == malformed
    assert link.connections == 1
    assert h.node.status()["connections"]["oanda"]["malformed_payloads"] == malformed
    later = h.do(market(Side.SELL, "50"))
    h.wait_status(later, OrderStatus.FILLED)
    h.sync()
    executions = [f.execution_id for f in h.fills()]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    fills = {str(t["id"]) for t in h.venue.transactions() if t["type"] == "ORDER_FILL"}
    assert set(executions) == fills
    assert h.position("EUR_USD") == h.venue.positions().get("EUR_USD", D(0))
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()
    assert not h.node.failed


def test_a_crossed_price_line_is_counted_and_skipped(venue: OandaVenue, clock: ManualClock) -> None:
    with oanda_node(venue, clock=clock) as h:
        seen = EventRecorder()
        h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=("EUR_USD",)))
        h.sync()
        venue.cross_next_price()
        venue.set_price("EUR_USD", D("1.12000"))  # its PRICE line has bid above ask
        venue.set_price("EUR_USD", D("1.13000"))  # the line after it is sound
        seen.wait_for(lambda m: isinstance(m, Quote) and m.bid < D("1.13") < m.ask)
        quotes = [m for m in seen.items if isinstance(m, Quote)]
        assert all(q.bid <= q.ask for q in quotes)
        assert not [q for q in quotes if q.bid < D("1.12") < q.ask], "the crossed line went out"
        assert_unharmed(h, malformed=1)


def lose_a_submit(h: OandaHarness, replies: EventRecorder) -> str:
    """A market order whose answer is lost and whose transactions wait at the venue:
    only the breaker's lookup by client id can tell what became of it."""
    h.venue.lose_next_response("POST orders")
    h.venue.stall_streams("transactions")
    coid: str = h.do(market(Side.BUY, "100"))
    replies.wait_for(lambda r: r.outcome in (Outcome.TRANSPORT, Outcome.TIMEOUT))
    return coid


def resolve_after_a_failed_lookup(h: OandaHarness, replies: EventRecorder, coid: str) -> None:
    """The breaker's first lookup fails (answered, not fatal); its next one resolves it."""
    h.clock.advance(1.0)  # the breaker looks the order up: the answer is the spoiled one
    h.sync()
    assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
    failed = replies.wait_for(
        lambda r: r.outcome in (Outcome.TRANSPORT, Outcome.TIMEOUT), count=2, timeout=5
    )
    assert failed[1].report is None  # nothing claimed from an answer that was not read
    assert h.order(coid).status is not OrderStatus.FILLED
    h.clock.advance(1.0)  # it asks again
    ok = replies.wait_for(lambda r: r.outcome is Outcome.OK, timeout=5)[0]
    assert ok.report is not None and ok.report.status is OrderStatus.FILLED
    h.venue.clear_faults()
    h.wait_status(coid, OrderStatus.FILLED)
    assert h.venue.submissions()[coid] == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("order.units", "0"), ("order.state", "SOMETHING_NEW"), (None, None)],
    ids=["units_zero", "unknown_state", "not_json"],
)
def test_an_unreadable_order_lookup_is_counted_and_asked_again(
    venue: OandaVenue, clock: ManualClock, field: str | None, value: str | None
) -> None:
    with oanda_node(venue, clock=clock) as h:
        replies = EventRecorder()
        h.node.observe_breaker("oanda", replies)
        coid = lose_a_submit(h, replies)
        venue.corrupt_next_answer("GET orders/{id}", field, value)
        resolve_after_a_failed_lookup(h, replies, coid)
        assert_unharmed(h, malformed=1)


@pytest.mark.parametrize(
    ("field", "value"), [("transactions", "oops"), (None, None)], ids=["no_list", "not_json"]
)
def test_an_unreadable_replay_during_a_lookup_is_counted_and_asked_again(
    venue: OandaVenue, clock: ManualClock, field: str | None, value: str | None
) -> None:
    """The lookup shows the order filled: its transactions are replayed first, and
    that answer is the unreadable one."""
    with oanda_node(venue, clock=clock) as h:
        replies = EventRecorder()
        h.node.observe_breaker("oanda", replies)
        coid = lose_a_submit(h, replies)
        venue.corrupt_next_answer("sinceid", field, value)
        resolve_after_a_failed_lookup(h, replies, coid)
        assert venue.calls()["GET transactions/sinceid"] >= 2
        assert_unharmed(h, malformed=1)


def test_a_replay_that_times_out_during_a_lookup_is_a_timeout_reply(
    venue: OandaVenue, clock: ManualClock
) -> None:
    with oanda_node(venue, clock=clock, request_timeout=1.0) as h:
        replies = EventRecorder()
        h.node.observe_breaker("oanda", replies)
        coid = lose_a_submit(h, replies)
        venue.hold_requests(1, path="sinceid")  # held until cleared: the client gives up
        h.clock.advance(1.0)
        timed_out = replies.wait_for(lambda r: r.outcome is Outcome.TIMEOUT, timeout=10)[0]
        assert timed_out.report is None
        venue.release_requests()
        h.sync()
        assert not [e for e in h.supervision.items if event(K.FAILED)(e)], "fatal to the broker"
        h.clock.advance(1.0)
        ok = replies.wait_for(lambda r: r.outcome is Outcome.OK, timeout=5)[0]
        assert ok.report is not None and ok.report.status is OrderStatus.FILLED
        venue.clear_faults()
        h.wait_status(coid, OrderStatus.FILLED)
        assert venue.submissions()[coid] == 1
        assert_unharmed(h, malformed=0)
