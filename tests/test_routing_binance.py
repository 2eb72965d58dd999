"""Routing across the local Binance venue (real wire protocol on loopback) and a paper venue."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from tradenode import Node, parse_config
from tradenode.messages import OrderRejected, OrderStatus, Quote, Side
from tradenode.supervision import EventRecorder, ManualClock
from tradenode.testing.venues import BinanceVenue

from ._binance_helpers import BinanceHarness, market, node_config, venue_clock
from ._node_helpers import Scripted

ROUTING = """
instruments:
  BTC-USD: {venues: {binance: BTCUSDT, paper: BTCUSDT}}
routing: {policy: %s, taker_fee_bps: {binance: %s, paper: %s}}
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def venue(clock: ManualClock) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=11, clock=venue_clock(clock)) as local_venue:
        yield local_venue


def two_venue_node(
    venue: BinanceVenue, clock: ManualClock, policy: str, fees: tuple[str, str] = ("0", "0")
) -> BinanceHarness:
    text = node_config(venue).replace(
        "oms: {ack_timeout: 30}",
        "  - {name: paper, paper: {tick_interval_ms: 1000}}\noms: {ack_timeout: 30}",
    )
    node = Node(parse_config(text + ROUTING % (policy, *fees)), clock=clock)
    node.start()
    return BinanceHarness(node, clock, venue)


def auto(side: Side, quantity: str) -> Any:
    return lambda ctx: ctx.submit_order("BTC-USD", side, D(quantity), venue="auto")


def quotes_seen(h: BinanceHarness, binance: str, paper: str) -> dict[str, Quote]:
    """Move both venues' BTCUSDT and wait until the router holds both new quotes."""
    seen = EventRecorder()
    for name in ("binance", "paper"):

        def make(name: str = name) -> Scripted:
            strategy = Scripted(f"q{name}", seen, symbols=("BTCUSDT",))
            strategy.venue = name
            return strategy

        h.node.add_strategy(f"q{name}", make)
    h.sync()
    h.venue.set_price("BTCUSDT", D(binance))
    h.node.venues["paper"].set_price("BTCUSDT", D(paper))
    for name, price in (("binance", D(binance)), ("paper", D(paper))):
        seen.wait_for(
            lambda m, n=name, p=price: isinstance(m, Quote) and m.venue == n and m.bid <= p <= m.ask
        )
    h.sync()
    return {
        name: quote
        for (name, symbol), quote in h.node.router_store.quotes.items()
        if symbol == "BTCUSDT"
    }


def test_with_the_binance_breaker_open_a_routed_order_goes_to_paper(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    h = two_venue_node(venue, clock, "preferred")
    try:
        h.strategy("s2")
        venue.ban(120)
        banned = h.do(market(Side.BUY, "0.1"), "s2")
        h.sync()
        assert h.node.failure_stats("binance").circuit_state == "open"
        coid = h.do(auto(Side.BUY, "0.2"))
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert view.order.venue == "paper"
        assert view.order.route is not None and "skipped binance breaker OPEN" in view.order.route
        assert coid not in {order.client_order_id for order in venue.orders()}
        assert banned not in {f.client_order_id for f in h.node.venues["paper"].fills()}
        assert h.node.venues["paper"].position("BTCUSDT") == D("0.2")
    finally:
        h.node.stop(timeout=20)


def test_best_price_across_binance_and_paper_net_of_fees(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    """Binance's ask is lower, but its 10 bps fee against paper's 0 makes paper cheaper
    for a buy; the order goes to paper, and the route says why."""
    h = two_venue_node(venue, clock, "best_price", ("10", "0"))
    try:
        quotes = quotes_seen(h, binance="50000.00", paper="50020.00")
        assert quotes["binance"].ask < quotes["paper"].ask
        coid = h.do(auto(Side.BUY, "0.1"))
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert view.order.venue == "paper"
        assert view.order.route is not None and "binance ask" in view.order.route
        assert venue.orders() == []
    finally:
        h.node.stop(timeout=20)


def test_a_binance_business_refusal_does_not_fail_over_to_paper(
    venue: BinanceVenue, clock: ManualClock
) -> None:
    h = two_venue_node(venue, clock, "preferred")
    try:
        # More BTC than the account holds: Binance refuses it (a business answer).
        coid = h.do(auto(Side.SELL, "1000"))
        rejection = h.wait_for(OrderRejected, coid)[0]
        assert rejection.venue == "binance" and rejection.code != "CIRCUIT_OPEN"
        h.sync()
        assert h.node.venues["paper"].fills() == []
        assert h.node.venues["paper"].open_orders() == []
        assert h.node.router_status()["failovers"] == 0
    finally:
        h.node.stop(timeout=20)
