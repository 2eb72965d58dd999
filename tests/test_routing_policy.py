"""The routing policies, pure: which venue an order without one goes to, and why."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tradenode import parse_config

# The execution config's policy enum and instrument map are internal to the config model.
from tradenode._execution_config import InstrumentMap, RoutingPolicy
from tradenode.actors import CircuitState

# The policy is internal (the router actor is its only caller); its inputs and answers are pinned here.
from tradenode.actors._routing_policy import Listing, NoRouteError, choose_route
from tradenode.messages import DenialCode, Quote, Side


def quote(venue: str, bid: str, ask: str, symbol: str = "BTCUSDT") -> Quote:
    return Quote(venue=venue, symbol=symbol, bid=D(bid), ask=D(ask))


def listing(
    venue: str,
    q: Quote | None = None,
    *,
    fee: str = "0",
    connected: bool = True,
    circuit: CircuitState | None = CircuitState.CLOSED,
    symbol: str = "BTCUSDT",
) -> Listing:
    return Listing(
        venue=venue,
        symbol=symbol,
        connected=connected,
        circuit=circuit,
        quote=q,
        taker_fee_bps=D(fee),
    )


def route(policy: RoutingPolicy, listings: list[Listing], side: Side = Side.BUY, qty: str = "1"):
    return choose_route(
        instrument="BTC-USD", side=side, quantity=D(qty), listings=listings, policy=policy
    )


def test_preferred_takes_the_first_venue_in_order_and_keeps_the_rest_for_failover() -> None:
    decision = route(RoutingPolicy.PREFERRED, [listing("a"), listing("b"), listing("c")])
    assert [(leg.venue, leg.quantity) for leg in decision.legs] == [("a", D(1))]
    assert decision.failover == (("b", "BTCUSDT"), ("c", "BTCUSDT"))
    assert "first available of a, b, c" in decision.reason


def test_preferred_skips_an_open_breaker_and_an_absent_venue_and_says_so() -> None:
    decision = route(
        RoutingPolicy.PREFERRED,
        [
            listing("a", circuit=CircuitState.OPEN),
            listing("b", connected=False),
            listing("c", symbol="BTC-USD"),
            listing("d", circuit=CircuitState.HALF_OPEN),
        ],
    )
    assert [(leg.venue, leg.symbol) for leg in decision.legs] == [("c", "BTC-USD")]
    assert decision.failover == (("d", "BTCUSDT"),)
    assert "skipped a breaker OPEN, b not connected" in decision.reason


def test_no_venue_available_is_a_no_route_error_naming_each_reason() -> None:
    with pytest.raises(NoRouteError) as caught:
        route(
            RoutingPolicy.BEST_PRICE,
            [listing("a", circuit=CircuitState.OPEN), listing("b", connected=False)],
        )
    assert caught.value.code is DenialCode.NO_ROUTE
    assert "a breaker OPEN" in caught.value.reason and "b not connected" in caught.value.reason
    with pytest.raises(NoRouteError):
        route(RoutingPolicy.PREFERRED, [])


def test_best_price_buy_compares_asks_net_of_the_taker_fee() -> None:
    """a: ask 100.00 + 10 bps = 100.10; b: ask 100.05 + 2 bps = 100.07001: b is cheaper
    although its ask is higher."""
    decision = route(
        RoutingPolicy.BEST_PRICE,
        [
            listing("a", quote("a", "99.90", "100.00"), fee="10"),
            listing("b", quote("b", "99.95", "100.05"), fee="2"),
        ],
    )
    assert decision.legs[0].venue == "b"
    assert decision.failover == (("a", "BTCUSDT"),)
    assert "b ask 100.05 + 2 bps = 100.07001" in decision.reason
    assert "a ask 100.00 + 10 bps = 100.1" in decision.reason


def test_best_price_sell_compares_bids_net_of_the_taker_fee() -> None:
    """a: bid 100.00 - 10 bps = 99.90; b: bid 99.95 - 2 bps = 99.93001: b yields more."""
    decision = route(
        RoutingPolicy.BEST_PRICE,
        [
            listing("a", quote("a", "100.00", "100.10"), fee="10"),
            listing("b", quote("b", "99.95", "100.05"), fee="2"),
        ],
        side=Side.SELL,
    )
    assert decision.legs[0].venue == "b"
    # Without fees the higher bid wins.
    decision = route(
        RoutingPolicy.BEST_PRICE,
        [listing("a", quote("a", "100.00", "100.10")), listing("b", quote("b", "99.95", "100.05"))],
        side=Side.SELL,
    )
    assert decision.legs[0].venue == "a"


def test_best_price_ties_keep_the_preference_order_and_unquoted_venues_come_last() -> None:
    decision = route(
        RoutingPolicy.BEST_PRICE,
        [
            listing("a"),
            listing("b", quote("b", "99", "100")),
            listing("c", quote("c", "99", "100")),
        ],
    )
    assert decision.legs[0].venue == "b"
    assert decision.failover == (("c", "BTCUSDT"), ("a", "BTCUSDT"))


def test_best_price_without_any_quote_falls_back_to_preference() -> None:
    decision = route(RoutingPolicy.BEST_PRICE, [listing("a"), listing("b")])
    assert decision.legs[0].venue == "a"
    assert "no quotes yet" in decision.reason


def test_best_price_never_picks_an_open_breaker_however_good_its_quote() -> None:
    decision = route(
        RoutingPolicy.BEST_PRICE,
        [
            listing("a", quote("a", "1", "2"), circuit=CircuitState.OPEN),
            listing("b", quote("b", "99", "100")),
        ],
    )
    assert decision.legs[0].venue == "b" and decision.failover == ()


class _SizedQuote:
    """A quote with top-of-book sizes (what a venue that reports them would give)."""

    def __init__(self, venue: str, ask: str, ask_size: str, bid: str = "1") -> None:
        self.venue, self.symbol = venue, "BTCUSDT"
        self.bid, self.ask = D(bid), D(ask)
        self.ask_size, self.bid_size = D(ask_size), D(ask_size)


def sized(venue: str, ask: str, size: str, fee: str = "0") -> Listing:
    return Listing(
        venue=venue,
        symbol="BTCUSDT",
        connected=True,
        quote=_SizedQuote(venue, ask, size),  # type: ignore[arg-type]
        taker_fee_bps=D(fee),
    )


def test_split_takes_each_top_of_book_size_best_price_first_and_the_rest_goes_to_the_best() -> None:
    decision = route(
        RoutingPolicy.SPLIT,
        [sized("a", "101", "2"), sized("b", "100", "3")],
        qty="7",
    )
    # b (100) first: 3; a (101): 2; the remaining 2 go to the best venue, b.
    assert [(leg.venue, leg.quantity) for leg in decision.legs] == [("b", D(5)), ("a", D(2))]
    assert sum(leg.quantity for leg in decision.legs) == D(7)
    assert "split by top-of-book size" in decision.reason


def test_split_that_fits_one_top_uses_one_venue_and_small_shares_fold_into_the_best() -> None:
    decision = route(RoutingPolicy.SPLIT, [sized("a", "100", "5"), sized("b", "101", "5")], qty="4")
    assert [(leg.venue, leg.quantity) for leg in decision.legs] == [("a", D(4))]
    assert decision.failover[0] == ("b", "BTCUSDT")
    decision = choose_route(
        instrument="BTC-USD",
        side=Side.BUY,
        quantity=D("5.5"),
        listings=[sized("a", "100", "5"), sized("b", "101", "5")],
        policy=RoutingPolicy.SPLIT,
        min_split_quantity=D(1),
    )
    assert [(leg.venue, leg.quantity) for leg in decision.legs] == [("a", D("5.5"))]


def test_split_without_sizes_sends_everything_to_the_best_venue() -> None:
    decision = route(
        RoutingPolicy.SPLIT,
        [listing("a", quote("a", "99", "101")), listing("b", quote("b", "99", "100"))],
        qty="3",
    )
    assert [(leg.venue, leg.quantity) for leg in decision.legs] == [("b", D(3))]


def test_instrument_map_reads_both_ways() -> None:
    config = parse_config(
        """
venues: [{name: paper}, {name: paper2}]
instruments:
  BTC-USD: {venues: {paper2: BTC-USD, paper: BTCUSDT}}
  ETH-USD: {venues: {paper: ETHUSDT}}
"""
    )
    instruments = InstrumentMap(config.instruments)
    assert instruments.listings("BTC-USD") == (("paper2", "BTC-USD"), ("paper", "BTCUSDT"))
    assert instruments.instrument_of("paper", "BTCUSDT") == "BTC-USD"
    assert instruments.instrument_of("paper", "SOLUSDT") is None
    assert instruments.listings("NOPE") == ()
    assert "ETH-USD" in instruments and "NOPE" not in instruments
