"""Bad input from OKX, through a running node against the local fake OKX on loopback.

What the venue sends can be readable JSON yet not something our messages
accept: a fill at price 0 or of no instrument, a crossed or NaN book, a
negative last price, an amend's or a look-up's order we cannot read, a batch
item without ``sCode``. Each is counted (``malformed_payloads``), logged,
never crashes a request's handling, never loses or doubles a fill, and every
request still gets its reply; the node keeps trading.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tradenode.actors import Outcome
from tradenode.messages import OrderStatus, Quote, Side
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import OkxVenue

from ._node_helpers import Scripted, malformed_watch
from ._okx_helpers import K, OkxHarness, event, limit, market, okx_node, venue_clock

D = Decimal
BTC = "BTC-USDT"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[OkxVenue]:
    with OkxVenue(seed=7, clock=venue_clock(clock)) as local_venue:
        local_venue.freeze_prices()
        local_venue.set_price(BTC, D("50000"))
        local_venue.set_price("ETH-USDT", D("3000"))
        yield local_venue


@pytest.fixture
def h(venue: OkxVenue, clock: ManualClock) -> Iterator[OkxHarness]:
    with okx_node(venue, clock=clock) as harness:
        yield harness


def broker_failures(h: OkxHarness) -> list[Any]:
    return [e for e in h.supervision.items if event(K.FAILED)(e)]


def assert_exactly_once(h: OkxHarness) -> None:
    """Every fill the venue made reached the OMS once, at the venue's price; no client
    order id was placed twice; each order's filled quantity is the venue's."""
    h.sync()
    fills = {f.execution_id: f for f in h.fills()}
    assert len(fills) == len(h.fills()), h.fills()
    made = {f"okx-{f.inst_id}-{f.trade_id}": f for f in h.venue.fills()}
    assert set(fills) == set(made)
    for execution, fill in fills.items():
        assert (fill.last_price, fill.last_quantity) == (
            made[execution].fill_px,
            made[execution].fill_sz,
        )
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()
    for order in h.venue.orders():
        if order.cl_ord_id:
            assert h.order(order.cl_ord_id).filled_quantity == order.acc_fill_sz, order


def keeps_trading(h: OkxHarness) -> None:
    later = h.do(market(Side.BUY, "0.01"))
    h.wait_status(later, OrderStatus.FILLED)
    assert_exactly_once(h)


# -- 1. a fill push the codec reads but no fill message accepts ----------------------------


@pytest.mark.parametrize(
    ("field", "value"), [("fillPx", "0"), ("instId", "")], ids=["price-zero", "no-instrument"]
)
def test_an_unusable_fill_push_is_counted_and_the_fill_arrives_once_from_the_venues_record(
    h: OkxHarness, field: str, value: str
) -> None:
    link = h.link()
    h.venue.corrupt_next_fill(field, value)
    coid = h.do(market(Side.BUY, "0.01"))
    # Counted, and the incarnation ends (it may have been a fill): the next one
    # reconciles from the venue's own record of it, which is good.
    h.restart(2)
    h.wait_status(coid, OrderStatus.FILLED)
    h.sync()
    (made,) = [f for f in h.venue.fills() if f.cl_ord_id == coid]
    fills = [f for f in h.fills() if f.client_order_id == coid]
    assert [(f.last_price, f.last_quantity) for f in fills] == [(made.fill_px, made.fill_sz)]
    assert link.malformed_payloads == 1
    assert h.position(BTC) == D("0.01")
    keeps_trading(h)
    assert link.malformed_payloads == 1
    assert not h.node.failed


# -- 2. quotes the codec reads but Quote refuses ---------------------------------------------


class Watcher(Scripted):
    venue = "okx"


def quote_near(price: str) -> Any:
    return lambda m: isinstance(m, Quote) and m.symbol == BTC and m.bid < D(price) < m.ask


@pytest.mark.parametrize(
    ("field", "value"),
    [("bids", "60000"), ("bids", "NaN"), ("asks", "-5")],
    ids=["crossed", "nan-bid", "negative-ask"],
)
def test_an_unusable_bbo_push_is_counted_and_skipped(h: OkxHarness, field: str, value: str) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=(BTC,)))
    h.venue.set_price(BTC, D("51000"))
    seen.wait_for(quote_near("51000"))
    h.venue.corrupt_next_quote("bbo-tbt", field, value, inst_id=BTC)
    h.venue.set_price(BTC, D("52000"))  # its push is mangled
    h.venue.set_price(BTC, D("53000"))
    seen.wait_for(quote_near("53000"))  # the stream goes on in the same incarnation
    assert not [m for m in seen.items if quote_near("52000")(m)]
    assert h.link().malformed_payloads == 1
    assert not broker_failures(h)
    keeps_trading(h)
    assert not broker_failures(h) and h.link().connections == 1


def test_a_ticker_snapshot_with_a_negative_last_is_counted_and_skipped(
    venue: OkxVenue, clock: ManualClock
) -> None:
    venue.corrupt_next_answer("GET market/ticker", "last", "-1")
    with okx_node(venue, clock=clock) as h:
        keeps_trading(h)
        assert h.link().malformed_payloads == 1
        assert not broker_failures(h) and h.link().connections == 1


# -- 3. answers read on the actor's thread ---------------------------------------------------


def test_an_amend_whose_order_look_up_is_unreadable_is_answered_and_counted(
    h: OkxHarness,
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("okx", replies)
    coid = h.do(limit(Side.BUY, "45000", "0.02"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.sync()
    answered = len(replies.items)
    h.venue.corrupt_next_answer("GET trade/order", "state", "bogus")
    h.do(lambda ctx: ctx.modify_order(coid, quantity=D("0.05"), price=D("45500")))
    h.sync()
    (reply,) = replies.items[answered:]
    assert reply.outcome is Outcome.OK  # the amend's own item said so
    assert h.link().malformed_payloads == 1
    # The stream's amend push tells what the venue made of it.
    view = h.order(coid)
    assert (view.order.quantity, view.order.price) == (D("0.05"), D("45500"))
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    keeps_trading(h)
    assert not broker_failures(h)


def test_an_unreadable_look_up_of_a_lost_placement_is_counted_and_asked_again(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, request_timeout=1.0) as h:
        replies = EventRecorder()
        h.node.observe_breaker("okx", replies)
        venue.fail_requests(1, after=True, endpoints=["order"])
        venue.corrupt_next_answer("GET trade/order", "instId", "")
        coid = h.do(market(Side.BUY, "0.01"))
        replies.wait_for(lambda r: not r.outcome.venue_answered)
        h.sync()
        h.clock.advance(1.0)  # the breaker asks the venue: its answer is unreadable
        unread = replies.wait_for(lambda r: r.outcome is Outcome.TRANSPORT)[0]
        assert "unreadable" in unread.detail
        assert h.link().malformed_payloads == 1
        h.sync()
        h.clock.advance(5.0)  # and asks again
        replies.wait_for(lambda r: r.outcome is Outcome.OK and r.report is not None)
        h.wait_status(coid, OrderStatus.FILLED)
        assert venue.submissions()[coid] == 1
        keeps_trading(h)
        assert h.link().malformed_payloads == 1
        assert not broker_failures(h)


def test_a_batch_item_without_scode_leaves_every_other_item_answered(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, request_timeout=1.0) as h:
        replies = EventRecorder()
        h.node.observe_breaker("okx", replies)
        # The first placement's answer is lost: the broker waits for it (1 s, real
        # time) while the next submits reach its mailbox behind it, one batch.
        venue.fail_requests(1, after=True, endpoints=["order"])
        venue.corrupt_next_answer("batch-orders", "sCode", None, item=1)

        def burst(ctx: Any) -> list[str]:
            return [
                ctx.submit_order(BTC, Side.BUY, D(size), venue="okx")
                for size in ("0.01", "0.02", "0.03", "0.04")
            ]

        first, *batched = h.do(burst)
        for coid in (batched[0], batched[2]):
            h.wait_status(coid, OrderStatus.FILLED)
        assert venue.calls().get("ws batch-orders") == 1
        replies.wait_for(lambda r: r.outcome is Outcome.OK, count=2)
        replies.wait_for(lambda r: r.outcome is Outcome.TRANSPORT)  # unreadable: looked up
        assert h.link().malformed_payloads == 1
        h.sync()
        h.clock.advance(1.0)  # the breaker asks the venue about the lost one and the unread one
        for coid in (first, batched[1]):
            h.wait_status(coid, OrderStatus.FILLED)
        assert h.position(BTC) == D("0.10")
        keeps_trading(h)
        assert not broker_failures(h)


# -- 4. a periodic check that cannot read an answer ----------------------------------------


def test_a_periodic_check_that_reads_an_unusable_open_order_is_counted_and_the_next_runs(
    venue: OkxVenue, clock: ManualClock
) -> None:
    with okx_node(venue, clock=clock, check_interval=30) as h, malformed_watch(h.link()) as seen:
        resting = h.do(limit(Side.BUY, "45000", "0.01"))
        h.wait_status(resting, OrderStatus.ACCEPTED)
        h.sync()
        venue.corrupt_next_answer("GET trade/orders-pending", "instId", "")
        h.clock.advance(30.0)
        seen.wait(1)  # counted, not only logged; nothing of that check applied
        h.periodic_check()  # the check ended, so the next one runs and reads it right
        assert h.order(resting).status is OrderStatus.ACCEPTED
        keeps_trading(h)
        assert h.link().malformed_payloads == 1
        assert not broker_failures(h)
