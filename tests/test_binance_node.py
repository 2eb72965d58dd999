"""The Binance adapter through a running node, against the local Binance venue.

Every test here goes over loopback sockets: the node's broker actor speaks
REST (httpcore's connection pool, what httpx sends through) and the WebSocket
API (trio-websocket) to ``BinanceVenue``, which never imports the adapter.
The venue's own account, order list and
per-id submission counts are the ground truth the node must agree with.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tradenode.actors import GetFills, Outcome
from tradenode.brokers.binance import GetMarketSnapshot
from tradenode.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import DEFAULT_BALANCES, BinanceVenue

from ._binance_helpers import (
    BinanceHarness,
    binance_node,
    limit,
    market,
    venue_clock,
    wait_until_held,
)
from ._node_helpers import Scripted

D = Decimal


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=11, clock=venue_clock(clock)) as local_venue:
        yield local_venue


@pytest.fixture
def h(venue: BinanceVenue, clock: ManualClock) -> Iterator[BinanceHarness]:
    with binance_node(venue, clock=clock) as harness:
        yield harness


class Watcher(Scripted):
    venue = "binance"


def assert_agrees_with_venue(h: BinanceHarness, *symbols_assets: tuple[str, str]) -> None:
    """Positions equal the venue's own account; every fill the venue made reached the OMS once."""
    h.sync()
    for symbol, asset in symbols_assets:
        assert h.position(symbol) == h.venue_base_change(asset, DEFAULT_BALANCES[asset]), symbol
    venue_trades = {(t.symbol, t.trade_id) for t in h.venue.trades()}
    fills = [f for f in h.node.oms.ask(_AllFills()) if f.venue == "binance"]
    executions = [f.execution_id for f in fills]
    assert len(executions) == len(set(executions)), "a fill was applied twice"
    assert {f"binance-{symbol}-{trade}" for symbol, trade in venue_trades} == set(executions)
    assert all(count == 1 for count in h.venue.submissions().values()), h.venue.submissions()


def _AllFills() -> Any:
    from tradenode.actors import GetFills

    return GetFills()


def stop(
    side: Side, order_type: OrderType, trigger: str, quantity: str, price: str | None = None
) -> Any:
    return lambda ctx: ctx.submit_order(
        "BTCUSDT",
        side,
        D(quantity),
        order_type=order_type,
        stop_price=D(trigger),
        price=None if price is None else D(price),
        venue="binance",
    )


# -- lifecycles -------------------------------------------------------------------------


def test_market_order_fills_and_the_position_equals_the_venues_account(
    h: BinanceHarness,
) -> None:
    coid = h.do(market(Side.BUY, "0.3"))
    h.wait_status(coid, OrderStatus.FILLED)
    h.wait_for(OrderFilled, coid)
    assert h.position("BTCUSDT") == D("0.3")
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))


def test_resting_limit_order_fills_partially_then_completely_as_prices_move(
    h: BinanceHarness, venue: BinanceVenue
) -> None:
    coid = h.do(limit(Side.BUY, "49900.00", "1.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    venue.set_price("BTCUSDT", D("49800.00"))
    assert h.wait_status(coid, OrderStatus.PARTIALLY_FILLED).filled_quantity == D("0.5")
    venue.set_price("BTCUSDT", D("49790.00"))
    h.wait_for(OrderFilled, coid, count=2)
    venue.set_price("BTCUSDT", D("49780.00"))
    view = h.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == D("1.2")
    fills = h.wait_for(OrderFilled, coid, count=3)
    assert [f.last_quantity for f in fills] == [
        D("0.5"),
        D("0.5"),
        D("0.2"),
    ]
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))


def test_ioc_takes_what_it_can_and_fok_that_cannot_fill_expires(h: BinanceHarness) -> None:
    fok = h.do(limit(Side.BUY, "49000.00", "0.5", time_in_force=TimeInForce.FOK))
    h.wait_status(fok, OrderStatus.EXPIRED)
    ioc = h.do(limit(Side.BUY, "49000.00", "0.5", time_in_force=TimeInForce.IOC))
    h.wait_status(ioc, OrderStatus.EXPIRED)
    taker = h.do(limit(Side.BUY, "51000.00", "0.2", time_in_force=TimeInForce.IOC))
    h.wait_status(taker, OrderStatus.FILLED)
    assert not h.venue.orders() or all(o.status != "NEW" for o in h.venue.orders())
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))


def test_limit_maker_rests_or_is_rejected_with_the_venues_code(h: BinanceHarness) -> None:
    rests = h.do(limit(Side.BUY, "49000.00", "0.1", post_only=True))
    h.wait_status(rests, OrderStatus.ACCEPTED)
    assert {o.client_order_id: o.type for o in h.venue.orders()}[rests] == "LIMIT_MAKER"
    crosses = h.do(limit(Side.BUY, "51000.00", "0.1", post_only=True))
    rejected = h.wait_for(OrderRejected, crosses)[0]
    assert rejected.code == "-2010"
    assert "immediately match" in rejected.reason
    assert h.order(crosses).status is OrderStatus.REJECTED


CONDITIONAL_CASES = [
    # our type, trigger, limit price, where the price moves, Binance's type
    (OrderType.STOP, "49500.00", None, "49400.00", "STOP_LOSS"),
    (OrderType.STOP_LIMIT, "49500.00", "49000.00", "49400.00", "STOP_LOSS_LIMIT"),
    (OrderType.MARKET_IF_TOUCHED, "50500.00", None, "50600.00", "TAKE_PROFIT"),
    (OrderType.LIMIT_IF_TOUCHED, "50500.00", "50000.00", "50600.00", "TAKE_PROFIT_LIMIT"),
]


@pytest.mark.parametrize("case", CONDITIONAL_CASES, ids=[c[4] for c in CONDITIONAL_CASES])
def test_conditional_sell_orders_wait_for_their_trigger_then_fill(
    h: BinanceHarness, venue: BinanceVenue, case: tuple[OrderType, str, str | None, str, str]
) -> None:
    order_type, trigger, price, moves, binance_type = case
    coid = h.do(stop(Side.SELL, order_type, trigger, "0.2", price))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    assert {o.client_order_id: o.type for o in venue.orders()}[coid] == binance_type
    h.sync()
    assert h.order(coid).status is OrderStatus.ACCEPTED
    venue.set_price("BTCUSDT", D(moves))
    h.wait_status(coid, OrderStatus.FILLED)
    assert h.position("BTCUSDT") == D("-0.2")
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))


def test_cancel(h: BinanceHarness, venue: BinanceVenue) -> None:
    coid = h.do(limit(Side.BUY, "49000.00", "0.1"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    h.do(lambda ctx: ctx.cancel_order(coid))
    h.wait_status(coid, OrderStatus.CANCELED)
    h.wait_for(OrderCanceled, coid)
    assert {o.client_order_id: o.status for o in venue.orders()}[coid] == "CANCELED"


def test_modify_is_a_cancel_replace_that_carries_only_what_is_left(
    h: BinanceHarness, venue: BinanceVenue
) -> None:
    coid = h.do(limit(Side.BUY, "49900.00", "1.2"))
    h.wait_status(coid, OrderStatus.ACCEPTED)
    venue.set_price("BTCUSDT", D("49800.00"))
    h.wait_status(coid, OrderStatus.PARTIALLY_FILLED)
    replacement = h.do(lambda ctx: ctx.modify_order(coid, price=D("49500.00")))
    assert replacement is not None
    h.wait_status(coid, OrderStatus.CANCELED)
    h.wait_status(replacement, OrderStatus.ACCEPTED)
    at_venue = {o.client_order_id: o for o in venue.orders()}
    assert at_venue[coid].status == "CANCELED"
    assert at_venue[replacement].price == D("49500.00")
    assert at_venue[replacement].orig_qty == D("0.7")
    assert at_venue[replacement].type == "LIMIT"
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))


@pytest.mark.parametrize(
    ("quantity", "price", "code"),
    [
        ("0.00001", "49000.00", "LOT_SIZE"),
        ("0.1", "49000.001", "TICK_SIZE"),
        ("0.0001", "100.00", "MIN_NOTIONAL"),
    ],
)
def test_filter_violations_are_refused_before_anything_is_sent(
    h: BinanceHarness, venue: BinanceVenue, quantity: str, price: str, code: str
) -> None:
    coid = h.do(limit(Side.BUY, price, quantity))
    rejected = h.wait_for(OrderRejected, coid)[0]
    assert rejected.code == code
    assert "Filter failure" in rejected.reason
    assert coid not in venue.submissions()


def test_an_exchange_rejection_carries_the_venues_code(h: BinanceHarness) -> None:
    coid = h.do(limit(Side.BUY, "49000.00", "30"))
    rejected = h.wait_for(OrderRejected, coid)[0]
    assert rejected.code == "-2010"
    assert "insufficient balance" in rejected.reason
    assert h.order(coid).status is OrderStatus.REJECTED
    assert h.node.failure_stats("binance").circuit_state == "closed"


def test_retry_after_is_honoured_before_the_order_is_sent_again(
    h: BinanceHarness, venue: BinanceVenue
) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("binance", replies)
    venue.rate_limit(1, retry_after=7)
    coid = h.do(market(Side.BUY, "0.1"))
    limited = replies.wait_for(lambda r: r.outcome is Outcome.RATE_LIMITED)[0]
    assert limited.retry_after == 7
    h.sync()
    assert h.order(coid).status is OrderStatus.SUBMITTED
    h.clock.advance(6.5)
    h.sync()
    assert venue.orders() == [], "re-sent before Retry-After"
    h.clock.advance(1.0)
    h.wait_status(coid, OrderStatus.FILLED)
    assert venue.submissions()[coid] == 1
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))


def test_a_418_ban_opens_the_breaker(h: BinanceHarness, venue: BinanceVenue) -> None:
    replies = EventRecorder()
    h.node.observe_breaker("binance", replies)
    venue.ban(120)
    coid = h.do(market(Side.BUY, "0.1"))
    replies.wait_for(lambda r: r.outcome is Outcome.BANNED)
    stats = h.node.failure_stats("binance")
    assert stats.circuit_state == "open"
    refused = h.do(market(Side.BUY, "0.1"))
    assert h.wait_for(OrderRejected, refused)[0].code == "CIRCUIT_OPEN"
    assert coid not in {o.client_order_id for o in venue.orders()}


def test_quotes_stream_from_book_ticker(h: BinanceHarness, venue: BinanceVenue) -> None:
    seen = EventRecorder()
    h.node.add_strategy("q1", lambda: Watcher("q1", seen, symbols=("BTCUSDT",)))
    venue.set_price("BTCUSDT", D("50100.00"))
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.symbol == "BTCUSDT" and m.bid < D("50100") < m.ask
    )[0]
    assert quote.venue == "binance"


def test_accepts_arrive_before_fills(h: BinanceHarness) -> None:
    coid = h.do(market(Side.BUY, "0.1"))
    h.wait_status(coid, OrderStatus.FILLED)
    # The OMS's status is ahead of what the strategy has been told: wait for the fill there.
    h.events().wait_for(lambda m: isinstance(m, OrderFilled) and m.client_order_id == coid)
    kinds = [
        type(m)
        for m in h.events().items
        if isinstance(m, OrderAccepted | OrderFilled | OrderExpired) and m.client_order_id == coid
    ]
    assert kinds[0] is OrderAccepted
    assert OrderFilled in kinds


def test_requests_are_in_flight_at_once_a_slow_one_holds_nothing_back(
    h: BinanceHarness, venue: BinanceVenue
) -> None:
    venue.delay_requests(1, 2.0, endpoints=["POST order"])
    slow = h.do(market(Side.BUY, "0.1"))
    # The two placements are separate tasks on the session's thread, started in
    # either order: the fast one goes once the venue holds the slow one.
    wait_until_held(venue, "POST order")
    fast = h.do(market(Side.BUY, "0.1", "ETHUSDT"))
    h.wait_status(fast, OrderStatus.FILLED)
    assert h.order(slow).status is OrderStatus.SUBMITTED
    h.wait_status(slow, OrderStatus.FILLED)


def test_a_market_snapshot_comes_from_rest(h: BinanceHarness, venue: BinanceVenue) -> None:
    venue.set_price("BTCUSDT", D("50200.00"))
    snapshot = h.node.directory.venue("binance").broker.ask(GetMarketSnapshot("BTCUSDT", 5))
    assert snapshot.quote.last == D("50200.00")
    assert snapshot.quote.bid < D("50200.00") < snapshot.quote.ask
    assert len(snapshot.depth.bids) == len(snapshot.depth.asks) == 5
    assert snapshot.depth.bids[0][0] == snapshot.quote.bid
    assert snapshot.depth.asks[0][0] == snapshot.quote.ask


def test_an_order_the_venue_has_and_the_node_does_not_is_adopted_as_external(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    with binance_node(venue, clock=clock) as first:
        coid = first.do(limit(Side.BUY, "49900.00", "0.5"))
        first.wait_status(coid, OrderStatus.ACCEPTED)
    with binance_node(venue, clock=clock) as second:
        second.sync()
        view = second.order(coid)
        assert view.strategy_id == "external"
        assert view.status is OrderStatus.ACCEPTED
        second.strategy("external")
        venue.set_price("BTCUSDT", D("49800.00"))
        second.wait_status(coid, OrderStatus.FILLED, strategy_id="external")
        fills = second.node.oms.ask(GetFills(client_order_id=coid))
        assert [f.last_quantity for f in fills] == [D("0.5")]
        assert second.position("BTCUSDT") == D("0.5")


def test_a_reduce_only_order_reaches_spot_as_a_plain_order_the_guard_checked(
    h: BinanceHarness,
) -> None:
    """Binance Spot has no reduce-only flag (it refuses it); the venue declares
    so (``VenueCapabilities.reduce_only``), the risk guard checks that the order
    only reduces the position, and the venue gets a plain order, which fills."""
    bought = h.do(market(Side.BUY, "0.3"))
    h.wait_status(bought, OrderStatus.FILLED)
    h.sync()
    sold = h.do(
        lambda ctx: ctx.submit_order(
            "BTCUSDT", Side.SELL, D("0.2"), reduce_only=True, venue="binance"
        )
    )
    h.wait_status(sold, OrderStatus.FILLED)
    assert_agrees_with_venue(h, ("BTCUSDT", "BTC"))
    assert h.position("BTCUSDT") == D("0.1")
    too_much = h.do(
        lambda ctx: ctx.submit_order(
            "BTCUSDT", Side.SELL, D("0.2"), reduce_only=True, venue="binance"
        )
    )
    assert h.wait_status(too_much, OrderStatus.DENIED).status is OrderStatus.DENIED
