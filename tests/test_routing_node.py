"""Routing across venues on a running node with two paper venues (message level).

An order for an instrument (venue ``auto``) is routed by policy; the route and
why is on the order the OMS keeps; failover happens when the chosen venue's
breaker is open or it refuses for a transport reason, never on a business
refusal.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tradenode import Node, parse_config
from tradenode.actors import GetFills, Routed

# What the router tells a strategy about its failed-over order is internal until exported.
from tradenode.actors._routing import FailedOver
from tradenode.messages import (
    DecisionAction,
    ExecutionDecision,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    SubmitOrder,
)
from tradenode.supervision import EventRecorder, ManualClock

from ._node_helpers import BASE_CONFIG, Harness, Scripted, running_node

ROUTED = """
instruments:
  BTC-USD: {venues: {paper: BTCUSDT, paper2: BTCUSDT}}
routing: {policy: %s, taker_fee_bps: {paper: %s, paper2: %s}}
"""


def routed(policy: str = "preferred", fee: str = "0", fee2: str = "0") -> str:
    return ROUTED % (policy, fee, fee2)


def auto(side: Side, quantity: str, **kwargs: Any) -> Any:
    return lambda ctx: ctx.submit_order("BTC-USD", side, D(quantity), venue="auto", **kwargs)


def market(side: Side, quantity: str, venue: str = "paper") -> Any:
    return lambda ctx: ctx.submit_order("BTCUSDT", side, D(quantity), venue=venue)


def filled_orders(h: Harness, venue: str) -> dict[str, D]:
    """Client order id -> quantity filled, from the venue's own books."""
    out: dict[str, D] = {}
    for fill in h.node.venues[venue].fills():
        out[fill.client_order_id] = out.get(fill.client_order_id, D(0)) + fill.quantity
    return out


def open_paper_breaker(h: Harness, strategy_id: str = "s1") -> list[str]:
    """Three transport failures on paper (failure_threshold 3): its circuit opens."""
    h.node.venues["paper"].fail_next_requests(3)
    failed = [h.do(market(Side.BUY, "0.1"), strategy_id) for _ in range(3)]
    h.sync()
    assert h.node.failure_stats("paper").circuit_state == "open"
    return failed


def fills_of(h: Harness, client_order_id: str) -> list[OrderFilled]:
    return [f for f in h.node.oms.ask(GetFills(client_order_id)) if isinstance(f, OrderFilled)]


def test_preferred_routes_to_the_first_venue_and_records_the_route_on_the_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_node(routed()) as h:
        coid = h.do(auto(Side.BUY, "0.5"))
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert (view.order.venue, view.order.symbol) == ("paper", "BTCUSDT")
        assert view.order.route is not None
        assert view.order.route.startswith("preferred -> paper: first available of paper, paper2")
        assert filled_orders(h, "paper") == {coid: D("0.5")}
        assert filled_orders(h, "paper2") == {}
        assert h.position("BTCUSDT", "paper") == D("0.5")
        # The status view shows the recent routes with why.
        execution = h.node.status()["execution"]
        assert execution["recent_routes"] == [{"order": coid, "route": view.order.route}]
        assert execution["execution_mode"] == "FULL_AUTO"
        assert execution["routing_policy"] == "preferred"
        # Every OMS event the router hears is expected (no warning per order).
        assert not [r for r in caplog.records if r.name == "tradenode.router" and r.levelno >= 30]


def test_with_the_preferred_venues_breaker_open_the_order_goes_to_the_backup() -> None:
    with running_node(routed()) as h:
        open_paper_breaker(h)
        coid = h.do(auto(Side.BUY, "0.2"))
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert view.order.venue == "paper2"
        assert view.order.route is not None and "skipped paper breaker OPEN" in view.order.route
        assert filled_orders(h, "paper2") == {coid: D("0.2")}
        assert h.node.venues["paper"].order(coid) is None


def test_a_transport_refusal_after_routing_fails_over_to_the_next_venue_once() -> None:
    """paper is CLOSED when the order is routed; its request fails in transport and
    the breaker (now open after three failures) refuses it CIRCUIT_OPEN: the router
    sends it, under a new id, to paper2. The venues' books show it filled once."""
    with running_node(routed()) as h:
        venue = h.node.venues["paper"]
        venue.fail_next_requests(3)
        explicit = [h.do(market(Side.BUY, "0.1")) for _ in range(2)]
        coid = h.do(auto(Side.BUY, "0.3"))
        h.sync()
        h.clock.advance(0.5)
        rejection = h.wait_for(OrderRejected, coid)[0]
        assert rejection.code == "CIRCUIT_OPEN"
        fill = h.events().wait_for(
            lambda m: isinstance(m, OrderFilled) and m.venue == "paper2", count=1
        )[0]
        replacement = h.wait_status(fill.client_order_id, OrderStatus.FILLED)
        assert replacement.client_order_id != coid
        route = replacement.order.route
        assert route is not None and route.startswith("failover -> paper2: paper refused")
        assert coid in route and "CIRCUIT_OPEN" in route
        h.sync()
        # Nothing doubled: the venues' own books hold exactly the routed quantity.
        assert filled_orders(h, "paper2") == {replacement.client_order_id: D("0.3")}
        assert all(venue.order(c) is None for c in [*explicit, coid])
        # The explicitly addressed orders are never failed over.
        assert all(h.wait_for(OrderRejected, c)[0].code == "CIRCUIT_OPEN" for c in explicit)
        assert h.node.router_status()["failovers"] == 1


def test_a_business_refusal_never_fails_over() -> None:
    with running_node(routed()) as h:
        coid = h.do(
            auto(Side.BUY, "1000", order_type=OrderType.LIMIT, price=D("50000.00")),
        )
        rejection = h.wait_for(OrderRejected, coid)[0]
        assert rejection.code == "INSUFFICIENT_BALANCE" and rejection.venue == "paper"
        h.sync()
        assert h.node.venues["paper2"].open_orders() == []
        assert filled_orders(h, "paper2") == {}
        assert h.open_orders() == ()
        assert h.node.router_status()["failovers"] == 0
        assert h.node.failure_stats("paper").circuit_state == "closed"


def test_best_price_picks_the_better_quote_net_of_fees() -> None:
    """paper's ask is ~4 bps below paper2's, but paper charges 10 bps and paper2 2 bps:
    net of fees paper2 is cheaper for a buy. With equal fees, paper wins."""
    with running_node(routed("best_price", fee="10", fee2="2")) as h:
        quotes = quote_both(h, paper="50000", paper2="50020")
        assert quotes["paper"].ask < quotes["paper2"].ask
        coid = h.do(auto(Side.BUY, "0.1"))
        view = h.wait_status(coid, OrderStatus.FILLED)
        assert view.order.venue == "paper2"
        assert view.order.route is not None
        assert view.order.route.startswith("best_price -> paper2: best net price: paper2 ask")
    with running_node(routed("best_price", fee="2", fee2="2")) as h:
        quote_both(h, paper="50000", paper2="50020")
        coid = h.do(auto(Side.BUY, "0.1"))
        assert h.wait_status(coid, OrderStatus.FILLED).order.venue == "paper"


def test_best_price_sells_where_the_bid_net_of_fees_is_highest() -> None:
    with running_node(routed("best_price", fee="2", fee2="2")) as h:
        quote_both(h, paper="50000", paper2="50020")
        coid = h.do(auto(Side.SELL, "0.1"))
        assert h.wait_status(coid, OrderStatus.FILLED).order.venue == "paper2"


def test_an_instrument_nobody_lists_is_denied_no_route_never_raised() -> None:
    with running_node(routed()) as h:
        coid = h.do(lambda ctx: ctx.submit_order("DOGE-USD", Side.BUY, D(1), venue="auto"))
        denial = h.wait_for(OrderDenied, coid)[0]
        assert denial.code.value == "NO_ROUTE" and "DOGE-USD" in denial.reason
        assert h.order(coid).status is OrderStatus.DENIED


def test_with_every_listed_venue_unavailable_the_order_is_denied_no_route() -> None:
    with running_node(routed()) as h:
        open_paper_breaker(h)
        h.node.remove_venue("paper2")
        coid = h.do(auto(Side.BUY, "0.1"))
        denial = h.wait_for(OrderDenied, coid)[0]
        assert denial.code.value == "NO_ROUTE"
        assert "paper breaker OPEN" in denial.reason and "paper2 not connected" in denial.reason


def test_cancel_of_a_routed_resting_order_reaches_the_venue_it_went_to() -> None:
    with running_node(routed()) as h:
        coid = h.do(auto(Side.BUY, "0.1", order_type=OrderType.LIMIT, price=D("1000.00")))
        h.wait_status(coid, OrderStatus.ACCEPTED)
        h.do(lambda ctx: ctx.cancel_order(coid))
        h.wait_status(coid, OrderStatus.CANCELED)
        assert h.node.venues["paper"].open_orders() == []


def quote_both(h: Harness, **prices: str) -> dict[str, Quote]:
    """Move each venue's BTCUSDT to its price and wait until the router holds both quotes
    (a quote subscriber on each venue sees its quote; quiescence then covers the router,
    which the same broker told in the same fan-out)."""
    seen = EventRecorder()
    for venue in prices:

        def make(venue: str = venue) -> Scripted:
            strategy = Scripted(f"q{venue}", seen, symbols=("BTCUSDT",))
            strategy.venue = venue
            return strategy

        h.node.add_strategy(f"q{venue}", make)
    h.sync()
    for venue, price in prices.items():
        h.node.venues[venue].set_price("BTCUSDT", D(price))
        seen.wait_for(
            lambda m, v=venue, p=D(price): (
                isinstance(m, Quote) and m.venue == v and m.bid <= p <= m.ask
            )
        )
    h.sync()
    return {
        venue: quote
        for (venue, symbol), quote in h.node.router_store.quotes.items()
        if symbol == "BTCUSDT" and venue in prices
    }


def test_split_takes_each_venues_top_of_book_size_and_never_more_than_the_order() -> None:
    """Both venues quote the same price and show 0.5 at the ask (the paper book's level
    quantity): 0.8 goes 0.5 to paper (preferred on a tie) and 0.3 to paper2."""
    with running_node(routed("split")) as h:
        quotes = quote_both(h, paper="50000", paper2="50000")
        assert quotes["paper"].ask_size == quotes["paper2"].ask_size == D("0.5")
        coid = h.do(auto(Side.BUY, "0.8"))
        first = h.wait_status(coid, OrderStatus.FILLED)
        assert (first.order.venue, first.order.quantity) == ("paper", D("0.5"))
        assert first.order.route is not None and "0.3 on paper2" in first.order.route
        leg = h.events().wait_for(
            lambda m: isinstance(m, OrderFilled) and m.venue == "paper2", count=1
        )[0]
        second = h.wait_status(leg.client_order_id, OrderStatus.FILLED)
        assert second.order.quantity == D("0.3")
        assert second.order.route == first.order.route.replace("-> paper:", "-> paper2:")
        h.sync()
        assert filled_orders(h, "paper") == {coid: D("0.5")}
        assert filled_orders(h, "paper2") == {leg.client_order_id: D("0.3")}


def test_a_strategy_on_venue_auto_sees_the_instrument_across_venues_and_never_doubles() -> None:
    """Its decisions target the instrument's position summed over the venues listing it,
    counting its routed orders; its quotes come from every listed venue."""
    with running_node(routed()) as h:
        seen = EventRecorder()

        def make() -> Scripted:
            strategy = Scripted("s1", seen, symbols=("BTC-USD",))
            strategy.venue = "auto"
            return strategy

        h.strategies["s1"] = (h.node.add_strategy("s1", make), seen)
        h.sync()
        for venue in ("paper", "paper2"):
            h.node.venues[venue].set_price("BTCUSDT", D("50000"))
            seen.wait_for(lambda m, v=venue: isinstance(m, Quote) and m.venue == v)
        h.sync()
        quote = h.do(lambda ctx: ctx.last_quote("BTC-USD"))
        assert isinstance(quote, Quote) and quote.venue == "paper"

        def decide(size: str) -> Any:
            return lambda ctx: ctx.execute_decision(
                ExecutionDecision(
                    strategy_id="s1", symbol="BTC-USD", action=DecisionAction.LONG, size=D(size)
                )
            )

        first = h.do(decide("0.5"))
        assert first is not None
        # Decided again before and after the fill: nothing more to buy.
        assert h.do(decide("0.5")) is None
        h.wait_status(first, OrderStatus.FILLED)
        h.sync()
        assert h.do(decide("0.5")) is None
        assert h.do(lambda ctx: ctx.position("BTC-USD")) == D("0.5")
        # Part of the position on the backup venue still counts toward the instrument.
        open_paper_breaker(h, "s2")
        more = h.do(decide("0.7"))
        assert h.wait_status(more, OrderStatus.FILLED).order.venue == "paper2"
        h.sync()
        assert h.do(lambda ctx: ctx.position("BTC-USD")) == D("0.7")
        assert h.do(decide("0.7")) is None
        assert filled_orders(h, "paper") == {first: D("0.5")}
        assert filled_orders(h, "paper2") == {more: D("0.2")}


def test_the_route_is_journaled_with_the_order_and_read_back_after_a_restart(
    tmp_path: Path,
) -> None:
    text = BASE_CONFIG + routed() + f"journal: {{path: '{tmp_path / 'j'}', fsync: every_record}}\n"
    first = Node(parse_config(text), clock=ManualClock())
    first.start()
    try:
        h = Harness(first, first.clock)  # type: ignore[arg-type]
        open_paper_breaker(h, "s2")
        coid = h.do(auto(Side.BUY, "0.2"))
        route = h.wait_status(coid, OrderStatus.FILLED).order.route
        assert route is not None and "skipped paper breaker OPEN" in route
    finally:
        first.stop(timeout=20)
    second = Node(parse_config(text), clock=ManualClock())
    second.start()
    try:
        view = Harness(second, second.clock).order(coid)  # type: ignore[arg-type]
        assert view.status is OrderStatus.FILLED and view.order.route == route
        assert view.order.venue == "paper2"
    finally:
        second.stop(timeout=20)


def test_a_strategy_keeps_counting_a_refused_routed_order_until_the_router_says_where_it_went() -> (
    None
):
    """Between a transport refusal and the failover's Routed a decision must not buy
    the quantity again: the refused order stays in the strategy's view until FailedOver."""
    with running_node(routed()) as h:
        address, _ = h.strategy("s1")
        routed_order = SubmitOrder(
            client_order_id="s1-routed-1",
            strategy_id="s1",
            venue="paper",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=D("0.3"),
            route="preferred -> paper: first available of paper, paper2",
        )
        replacement = SubmitOrder(
            client_order_id="s1-routed-2",
            strategy_id="s1",
            venue="paper2",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            quantity=D("0.3"),
            route="failover -> paper2: ...",
        )
        refused = OrderRejected(
            client_order_id="s1-routed-1", venue="paper", code="CIRCUIT_OPEN", reason="open"
        )
        address.tell(Routed(routed_order))
        address.tell(refused)
        assert set(h.do(lambda ctx: ctx.open_orders())) == {"s1-routed-1"}
        address.tell(FailedOver("s1-routed-1", replacement))
        assert set(h.do(lambda ctx: ctx.open_orders())) == {"s1-routed-2"}
        # A business refusal of a routed order, or nowhere to go: it is dropped.
        address.tell(
            OrderRejected(
                client_order_id="s1-routed-2",
                venue="paper2",
                code="INSUFFICIENT_BALANCE",
                reason="x",
            )
        )
        assert h.do(lambda ctx: ctx.open_orders()) == {}
        address.tell(Routed(routed_order))
        address.tell(refused)
        address.tell(FailedOver("s1-routed-1", None))
        assert h.do(lambda ctx: ctx.open_orders()) == {}


def test_a_split_decision_is_counted_leg_by_leg_and_never_bought_twice() -> None:
    with running_node(routed("split")) as h:
        quote_both(h, paper="50000", paper2="50000")
        seen = EventRecorder()

        def make() -> Scripted:
            strategy = Scripted("s1", seen, symbols=("BTC-USD",))
            strategy.venue = "auto"
            return strategy

        h.strategies["s1"] = (h.node.add_strategy("s1", make), seen)
        h.sync()

        def decide(ctx: Any) -> Any:
            return ctx.execute_decision(
                ExecutionDecision(
                    strategy_id="s1", symbol="BTC-USD", action=DecisionAction.LONG, size=D("0.8")
                )
            )

        first = h.do(decide)
        assert first is not None
        # Told how the order was split before its legs left: nothing more to buy.
        assert h.do(decide) is None
        h.wait_status(first, OrderStatus.FILLED)
        h.sync()
        assert h.do(decide) is None
        assert h.do(lambda ctx: ctx.open_orders()) == {}
        assert h.do(lambda ctx: ctx.position("BTC-USD")) == D("0.8")
        assert h.node.venues["paper"].position("BTCUSDT") == D("0.5")
        assert h.node.venues["paper2"].position("BTCUSDT") == D("0.3")
