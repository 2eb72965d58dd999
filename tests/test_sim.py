"""Tests for the matching simulator behind the paper broker and the fake venues.

Expected prices, commissions and balances are worked out by hand in the
comments next to them from the fixture below, so a change to the book or
accounting rules shows up as a failing number rather than a silently
different one.
"""

from __future__ import annotations

import ast
import dataclasses
import decimal
import json
import random
from collections.abc import Iterable
from decimal import Decimal as D
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradenode.messages import OrderType, Side, TimeInForce
from tradenode.sim import (
    EXPIRED_BOOK_EXHAUSTED,
    EXPIRED_FOK_UNFILLABLE,
    EXPIRED_IOC_REMAINDER,
    EXPIRED_TIME_REACHED,
    EXPIRED_UNFUNDED_TRIGGER,
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimAmended,
    SimBalance,
    SimCanceled,
    SimConfig,
    SimEvent,
    SimExpired,
    SimFill,
    SimOrderStatus,
    SimRejectCode,
    SimRejected,
    SimTriggered,
)

BTC = "BTCUSDT"
ETH = "ETHUSDT"
DAY_NS = 86_400 * 10**9
EventT = TypeVar("EventT", bound=SimEvent)


def btc_spec(**overrides: Any) -> InstrumentSpec:
    fields: dict[str, Any] = {
        "symbol": BTC,
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "initial_price": D("100.00"),
        "tick_size": D("0.01"),
        "lot_size": D("0.001"),
        "min_quantity": D("0.001"),
        "min_notional": D("1"),
        "spread_bps": D("10"),
        "volatility_bps": D("20"),
    }
    fields.update(overrides)
    return InstrumentSpec(**fields)


def eth_spec(**overrides: Any) -> InstrumentSpec:
    fields: dict[str, Any] = {
        "symbol": ETH,
        "base_asset": "ETH",
        "quote_asset": "USDT",
        "initial_price": D("20.00"),
        "tick_size": D("0.01"),
        "lot_size": D("0.01"),
        "min_quantity": D("0.01"),
        "min_notional": D("0"),
        "spread_bps": D("20"),
        "volatility_bps": D("50"),
    }
    fields.update(overrides)
    return InstrumentSpec(**fields)


def make_config(
    *instruments: InstrumentSpec, balances: dict[str, D] | None = None, **overrides: Any
) -> SimConfig:
    """At 100.00 the book is bids 99.95/99.85/99.75 and asks 100.05/100.16/100.26, 1 each."""
    fields: dict[str, Any] = {
        "instruments": instruments or (btc_spec(),),
        "balances": {"USDT": D("10000"), "BTC": D("5")} if balances is None else balances,
        "depth_levels": 3,
        "level_quantity": D("1"),
        "level_spacing_bps": D("10"),
        "slippage_bps": D("0"),
        "maker_commission_bps": D("2"),
        "taker_commission_bps": D("10"),
        "fill_probability": 1.0,
        "allow_short": False,
    }
    fields.update(overrides)
    return SimConfig(**fields)


def make_sim(*instruments: InstrumentSpec, seed: int = 1, **overrides: Any) -> MatchingSimulator:
    return MatchingSimulator(make_config(*instruments, **overrides), seed=seed)


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


class TickingClock:
    """Advances a fixed step per read, so expire times can be aimed relative to it."""

    def __init__(self, step_ns: int = 1_000) -> None:
        self.now_ns = 0
        self.step_ns = step_ns

    def __call__(self) -> int:
        self.now_ns += self.step_ns
        return self.now_ns


def of_type(events: Iterable[SimEvent], kind: type[EventT]) -> list[EventT]:
    return [event for event in events if isinstance(event, kind)]


def only_rejection(events: list[SimEvent]) -> SimRejected:
    assert len(events) == 1
    rejection = events[0]
    assert isinstance(rejection, SimRejected)
    return rejection


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tick_size": D("0")}, "tick_size"),
        ({"initial_price": D("100.005")}, "tick_size"),
        ({"initial_price": D("-1")}, "initial_price"),
        ({"lot_size": D("NaN")}, "lot_size"),
        ({"spread_bps": 10}, "spread_bps"),
        ({"volatility_bps": D("10000")}, "volatility_bps"),
        ({"base_asset": "USDT"}, "same"),
        ({"symbol": ""}, "symbol"),
        ({"price_series": (D("1"), D("0"))}, "price_series"),
        ({"level_quantity": D("0.0005")}, "level_quantity"),
    ],
)
def test_instrument_spec_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        btc_spec(**overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"instruments": ()}, "instrument"),
        ({"instruments": (btc_spec(), btc_spec())}, "duplicate"),
        ({"balances": {"USDT": D("-1")}}, "negative"),
        ({"depth_levels": 0}, "depth_levels"),
        ({"level_quantity": D("0.0005")}, "lot_size"),
        ({"fill_probability": 1.5}, "fill_probability"),
        ({"taker_commission_bps": D("10000")}, "taker_commission_bps"),
        ({"slippage_bps": D("-1")}, "slippage_bps"),
        ({"retain_closed_orders": 0}, "retain_closed_orders"),
        ({"retain_closed_orders": True}, "retain_closed_orders"),
    ],
)
def test_sim_config_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_config(**overrides)


def test_config_is_frozen_and_copies_balances() -> None:
    balances = {"USDT": D("10")}
    config = make_config(balances=balances)
    balances["USDT"] = D("0")
    assert config.balances["USDT"] == D("10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.allow_short = True  # type: ignore[misc]


def test_a_bounded_venue_forgets_its_oldest_closed_orders_and_fills_only() -> None:
    sim = make_sim(retain_closed_orders=3, allow_short=True)
    far_below = (sim.quote(BTC).bid / 2).quantize(D("0.01"))
    resting = sim.submit("rest", BTC, Side.BUY, OrderType.LIMIT, D("0.1"), price=far_below)
    assert not of_type(resting, SimFill)
    for n in range(10):
        side = Side.BUY if n % 2 == 0 else Side.SELL
        sim.submit(f"m{n}", BTC, side, OrderType.MARKET, D("0.1"))
    assert sim.order("rest") is not None, "an open order is never forgotten"
    assert [sim.order(f"m{n}") is not None for n in range(10)] == [False] * 7 + [True] * 3
    kept = sim.fills()
    assert 3 <= len(kept) <= 6
    assert [f.trade_id for f in kept] == sorted(f.trade_id for f in kept)
    assert kept[-1].client_order_id == "m9"
    assert sim.fills(after_trade_id=kept[-2].trade_id) == [kept[-1]]


# ------------------------------------------------------------- book & quote


def test_quote_and_depth_match_hand_computation() -> None:
    sim = make_sim()
    quote = sim.quote(BTC)
    # Half spread: 100.00 * 10 bps / 2 = 0.05.
    assert (quote.bid, quote.ask, quote.last) == (D("99.95"), D("100.05"), D("100.00"))
    bids, asks = sim.depth(BTC, 10)
    # Ask level 1: 100.05 * (1 + 10 bps) = 100.15005, rounded up to 100.16.
    assert asks == [(D("100.05"), D("1")), (D("100.16"), D("1")), (D("100.26"), D("1"))]
    # Bid level 1: 99.95 * (1 - 10 bps) = 99.85005, rounded down to 99.85.
    assert bids == [(D("99.95"), D("1")), (D("99.85"), D("1")), (D("99.75"), D("1"))]
    assert sim.depth(BTC, 1) == ([(D("99.95"), D("1"))], [(D("100.05"), D("1"))])
    with pytest.raises(ValueError, match="levels"):
        sim.depth(BTC, 0)
    with pytest.raises(KeyError):
        sim.quote("NOPE")


def test_depth_levels_never_share_a_price() -> None:
    sim = make_sim(btc_spec(initial_price=D("1.00"), spread_bps=D("0")), level_spacing_bps=D("1"))
    bids, asks = sim.depth(BTC, 3)
    assert [price for price, _ in asks] == [D("1.00"), D("1.01"), D("1.02")]
    assert [price for price, _ in bids] == [D("1.00"), D("0.99"), D("0.98")]


# ------------------------------------------------------------ market orders


def test_market_buy_walks_the_book_with_slippage_and_taker_commission() -> None:
    sim = make_sim(slippage_bps=D("5"))
    events = sim.submit("m1", BTC, Side.BUY, OrderType.MARKET, D("2.5"))
    accepted = events[0]
    assert isinstance(accepted, SimAccepted)
    assert accepted.venue_order_id == 1
    fills = of_type(events, SimFill)
    assert len(events) == 1 + len(fills)
    # 100.05 + 5 bps = 100.100025 -> 100.11; 100.16 -> 100.21008 -> 100.22;
    # 100.26 -> 100.31013 -> 100.32 (slippage rounds up against a buyer).
    assert [(fill.price, fill.quantity) for fill in fills] == [
        (D("100.11"), D("1")),
        (D("100.22"), D("1")),
        (D("100.32"), D("0.5")),
    ]
    # Taker 10 bps of each notional, in USDT.
    assert [fill.commission for fill in fills] == [D("0.10011"), D("0.10022"), D("0.05016")]
    assert all(not fill.is_maker and fill.commission_asset == "USDT" for fill in fills)
    assert [fill.trade_id for fill in fills] == [1, 2, 3]
    assert fills[-1].leaves_quantity == 0
    assert fills[-1].order_status is SimOrderStatus.FILLED
    # 250.49 notional + 0.25049 commission.
    assert sim.balance("USDT") == SimBalance(free=D("9749.25951"), locked=D("0"))
    assert sim.balance("BTC") == SimBalance(free=D("7.5"), locked=D("0"))
    assert sim.position(BTC) == D("2.5")
    order = sim.order("m1")
    assert order is not None
    assert order.status is SimOrderStatus.FILLED
    assert order.filled_notional == D("250.49")
    assert order.avg_fill_price == D("250.49") / D("2.5")


def test_market_sell_slips_down_and_pays_commission_from_proceeds() -> None:
    sim = make_sim(slippage_bps=D("5"))
    fills = of_type(sim.submit("s1", BTC, Side.SELL, OrderType.MARKET, D("1.5")), SimFill)
    # 99.95 - 5 bps = 99.900025 -> 99.90; 99.85 -> 99.800075 -> 99.80.
    assert [(fill.price, fill.quantity) for fill in fills] == [
        (D("99.90"), D("1")),
        (D("99.80"), D("0.5")),
    ]
    assert [fill.commission for fill in fills] == [D("0.0999"), D("0.0499")]
    # 99.90 + 49.90 - 0.1498.
    assert sim.balance("USDT").free == D("10149.6502")
    assert sim.balance("BTC") == SimBalance(free=D("3.5"), locked=D("0"))
    assert sim.position(BTC) == D("-1.5")


def test_market_order_beyond_the_book_depth_expires_the_remainder() -> None:
    sim = make_sim()
    events = sim.submit("m1", BTC, Side.BUY, OrderType.MARKET, D("4"))
    assert [type(event) for event in events] == [SimAccepted, SimFill, SimFill, SimFill, SimExpired]
    expired = events[-1]
    assert isinstance(expired, SimExpired)
    assert expired.reason == EXPIRED_BOOK_EXHAUSTED
    assert expired.filled_quantity == D("3")
    order = sim.order("m1")
    assert order is not None
    assert (order.status, order.filled_quantity) == (SimOrderStatus.EXPIRED, D("3"))
    assert sim.balance("USDT").locked == 0


def test_market_fok_that_cannot_fill_expires_without_fills() -> None:
    sim = make_sim()
    events = sim.submit(
        "f1", BTC, Side.BUY, OrderType.MARKET, D("3.5"), time_in_force=TimeInForce.FOK
    )
    assert [type(event) for event in events] == [SimAccepted, SimExpired]
    assert of_type(events, SimExpired)[0].reason == EXPIRED_FOK_UNFILLABLE
    assert sim.balance("USDT") == SimBalance(free=D("10000"), locked=D("0"))
    assert sim.fills() == []


def test_market_buy_is_rejected_when_the_sweep_costs_more_than_free_quote() -> None:
    sim = make_sim(balances={"USDT": D("100")})
    rejection = only_rejection(sim.submit("m1", BTC, Side.BUY, OrderType.MARKET, D("1")))
    # 100.05 + 0.10005 commission > 100.
    assert rejection.code is SimRejectCode.INSUFFICIENT_BALANCE
    assert sim.order("m1") is None
    affordable = sim.submit("m1", BTC, Side.BUY, OrderType.MARKET, D("0.9"))
    assert isinstance(affordable[0], SimAccepted), "a rejected id stays free for a retry"


def test_sell_without_base_is_rejected_unless_shorting_is_allowed() -> None:
    flat = make_sim(balances={"USDT": D("1000")})
    rejection = only_rejection(flat.submit("s1", BTC, Side.SELL, OrderType.MARKET, D("1")))
    assert rejection.code is SimRejectCode.INSUFFICIENT_BALANCE

    short = make_sim(balances={"USDT": D("1000")}, allow_short=True)
    fills = of_type(short.submit("s1", BTC, Side.SELL, OrderType.MARKET, D("1")), SimFill)
    assert len(fills) == 1
    assert short.balance("BTC") == SimBalance(free=D("-1"), locked=D("0"))
    # 99.95 proceeds - 0.09995 commission.
    assert short.balance("USDT").free == D("1099.85005")
    resting = short.submit("s2", BTC, Side.SELL, OrderType.LIMIT, D("2"), price=D("110.00"))
    assert isinstance(resting[0], SimAccepted)
    assert short.balance("BTC") == SimBalance(free=D("-3"), locked=D("2"))
    buy_too_big = short.submit("b1", BTC, Side.BUY, OrderType.LIMIT, D("20"), price=D("99.00"))
    assert only_rejection(buy_too_big).code is SimRejectCode.INSUFFICIENT_BALANCE


# ------------------------------------------------------------- limit orders


def test_resting_limit_buy_locks_quote_and_fills_as_maker_across_steps() -> None:
    sim = make_sim()
    events = sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("2"), price=D("99.00"))
    assert [type(event) for event in events] == [SimAccepted]
    # 2 * 99.00 * (1 + 10 bps): a resting buy reserves the dearer (taker) rate.
    assert sim.balance("USDT") == SimBalance(free=D("9801.802"), locked=D("198.198"))
    assert [order.client_order_id for order in sim.open_orders()] == ["l1"]

    assert sim.set_price(BTC, D("99.50")) == [], "ask 99.55 is still above the bid"
    # At 98.90 the ask is 98.95 <= 99.00: one level's quantity fills at the limit.
    first = sim.set_price(BTC, D("98.90"))
    assert len(first) == 1
    fill = first[0]
    assert isinstance(fill, SimFill)
    assert (fill.price, fill.quantity, fill.is_maker) == (D("99.00"), D("1"), True)
    assert fill.commission == D("0.0198")  # maker 2 bps of 99.00
    assert fill.order_status is SimOrderStatus.PARTIALLY_FILLED
    partially = sim.order("l1")
    assert partially is not None
    assert partially.status is SimOrderStatus.PARTIALLY_FILLED
    # The excess over 1 * 99.00 * 1.001 is unlocked at once.
    assert sim.balance("USDT") == SimBalance(free=D("9801.8812"), locked=D("99.099"))

    second = sim.set_price(BTC, D("98.90"))
    assert [fill.leaves_quantity for fill in of_type(second, SimFill)] == [D("0")]
    assert sim.balance("USDT") == SimBalance(free=D("9801.9604"), locked=D("0"))
    assert sim.balance("BTC").free == D("7")
    assert sim.open_orders() == []


def test_marketable_limit_takes_up_to_its_price_then_rests() -> None:
    sim = make_sim(slippage_bps=D("5"))
    events = sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("3"), price=D("100.16"))
    fills = of_type(events, SimFill)
    # Level 0 slips to 100.11; level 1 would slip to 100.22 but the limit caps it;
    # level 2 (100.26) is beyond the limit.
    assert [(fill.price, fill.quantity, fill.is_maker) for fill in fills] == [
        (D("100.11"), D("1"), False),
        (D("100.16"), D("1"), False),
    ]
    order = sim.order("l1")
    assert order is not None
    assert (order.status, order.remaining_quantity) == (SimOrderStatus.PARTIALLY_FILLED, D("1"))
    # Spent 100.11 + 0.10011 + 100.16 + 0.10016; the rest holds 100.16 * 1.001.
    assert sim.balance("USDT") == SimBalance(free=D("9699.26957"), locked=D("100.26016"))


def test_ioc_limit_takes_what_it_can_and_expires_the_rest() -> None:
    sim = make_sim()
    events = sim.submit(
        "i1",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("3"),
        price=D("100.16"),
        time_in_force=TimeInForce.IOC,
    )
    assert [type(event) for event in events] == [SimAccepted, SimFill, SimFill, SimExpired]
    assert of_type(events, SimExpired)[0].reason == EXPIRED_IOC_REMAINDER
    assert sim.balance("USDT").locked == 0
    assert sim.open_orders() == []

    nothing = sim.submit(
        "i2",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        price=D("90.00"),
        time_in_force=TimeInForce.IOC,
    )
    assert [type(event) for event in nothing] == [SimAccepted, SimExpired]


def test_fok_limit_fills_completely_or_not_at_all() -> None:
    sim = make_sim()
    refused = sim.submit(
        "f1",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("3"),
        price=D("100.16"),
        time_in_force=TimeInForce.FOK,
    )
    assert [type(event) for event in refused] == [SimAccepted, SimExpired]
    assert sim.fills() == []
    assert sim.balance("USDT") == SimBalance(free=D("10000"), locked=D("0"))

    filled = sim.submit(
        "f2",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("2"),
        price=D("100.16"),
        time_in_force=TimeInForce.FOK,
    )
    assert [type(event) for event in filled] == [SimAccepted, SimFill, SimFill]
    order = sim.order("f2")
    assert order is not None
    assert order.status is SimOrderStatus.FILLED


def test_post_only_rests_or_is_rejected_when_it_would_take() -> None:
    sim = make_sim()
    crossing = sim.submit(
        "p1", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("100.05"), post_only=True
    )
    assert only_rejection(crossing).code is SimRejectCode.WOULD_TAKE
    crossing_sell = sim.submit(
        "p2", BTC, Side.SELL, OrderType.LIMIT, D("1"), price=D("99.95"), post_only=True
    )
    assert only_rejection(crossing_sell).code is SimRejectCode.WOULD_TAKE
    resting = sim.submit(
        "p3", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("100.04"), post_only=True
    )
    assert [type(event) for event in resting] == [SimAccepted]
    ioc = sim.submit(
        "p4",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        price=D("99.00"),
        post_only=True,
        time_in_force=TimeInForce.IOC,
    )
    assert only_rejection(ioc).code is SimRejectCode.INVALID_ORDER
    maker = of_type(sim.set_price(BTC, D("99.99")), SimFill)
    assert [(fill.price, fill.is_maker) for fill in maker] == [(D("100.04"), True)]


def test_resting_sell_fills_when_the_bid_reaches_it() -> None:
    sim = make_sim()
    sim.submit("s1", BTC, Side.SELL, OrderType.LIMIT, D("1.5"), price=D("101.00"))
    assert sim.balance("BTC") == SimBalance(free=D("3.5"), locked=D("1.5"))
    assert sim.set_price(BTC, D("101.00")) == [], "bid 100.94 is below 101.00"
    first = of_type(sim.set_price(BTC, D("101.06")), SimFill)  # bid 101.00
    second = of_type(sim.set_price(BTC, D("101.06")), SimFill)
    assert [(fill.quantity, fill.price) for fill in first + second] == [
        (D("1"), D("101.00")),
        (D("0.5"), D("101.00")),
    ]
    # 151.50 proceeds - 0.0303 maker commission.
    assert sim.balance("USDT") == SimBalance(free=D("10151.4697"), locked=D("0"))
    assert sim.balance("BTC") == SimBalance(free=D("3.5"), locked=D("0"))


def test_fill_probability_spreads_passive_fills_over_steps() -> None:
    sim = make_sim(fill_probability=0.5, seed=3)
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("100"), price=D("99.00"))
    fill_counts = [len(of_type(sim.set_price(BTC, D("98.00")), SimFill)) for _ in range(40)]
    assert 0 < sum(fill_counts) < 40
    assert set(fill_counts) == {0, 1}

    never = make_sim(fill_probability=0.0)
    never.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("99.00"))
    assert all(never.set_price(BTC, D("98.00")) == [] for _ in range(10))


# -------------------------------------------------------------- stop orders


def test_stop_market_buy_rests_then_triggers_and_fills() -> None:
    sim = make_sim()
    too_late = sim.submit("t0", BTC, Side.BUY, OrderType.STOP, D("1"), stop_price=D("100.00"))
    assert only_rejection(too_late).code is SimRejectCode.STOP_WOULD_TRIGGER
    accepted = sim.submit("t1", BTC, Side.BUY, OrderType.STOP, D("1"), stop_price=D("101.00"))
    assert [type(event) for event in accepted] == [SimAccepted]
    # Reserves the sweep as if last were 101.00: ask 101.06 * (1 + 10 bps).
    assert sim.balance("USDT").locked == D("101.16106")
    assert sim.set_price(BTC, D("100.99")) == []
    events = sim.set_price(BTC, D("101.00"))
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    triggered, fill = events
    assert isinstance(triggered, SimTriggered) and isinstance(fill, SimFill)
    assert (triggered.stop_price, triggered.last_price) == (D("101.00"), D("101.00"))
    assert (fill.price, fill.is_maker) == (D("101.06"), False)
    order = sim.order("t1")
    assert order is not None
    assert order.triggered and order.status is SimOrderStatus.FILLED
    assert sim.balance("USDT") == SimBalance(free=D("9898.83894"), locked=D("0"))


def test_stop_buy_that_gaps_beyond_its_funds_expires_at_trigger() -> None:
    sim = make_sim(balances={"USDT": D("150")})
    sim.submit("t1", BTC, Side.BUY, OrderType.STOP, D("1"), stop_price=D("101.00"))
    events = sim.set_price(BTC, D("200.00"))
    assert [type(event) for event in events] == [SimTriggered, SimExpired]
    assert of_type(events, SimExpired)[0].reason == EXPIRED_UNFUNDED_TRIGGER
    assert sim.balance("USDT") == SimBalance(free=D("150"), locked=D("0"))


def test_stop_buy_that_gaps_tops_up_its_lock_when_funds_allow() -> None:
    sim = make_sim()
    sim.submit("t1", BTC, Side.BUY, OrderType.STOP, D("1"), stop_price=D("101.00"))
    fills = of_type(sim.set_price(BTC, D("110.00")), SimFill)
    # Ask at 110.00 is 110.06 (half spread 0.055 rounded up).
    assert [fill.price for fill in fills] == [D("110.06")]
    assert sim.balance("USDT") == SimBalance(free=D("10000") - D("110.17006"), locked=D("0"))


def test_stop_limit_sell_triggers_takes_then_rests_as_a_maker() -> None:
    sim = make_sim()
    sim.submit(
        "sl", BTC, Side.SELL, OrderType.STOP_LIMIT, D("2"), price=D("98.90"), stop_price=D("99.00")
    )
    assert sim.balance("BTC").locked == D("2")
    events = sim.set_price(BTC, D("98.95"))
    # Bid 98.90 is within the limit; the next level (98.80) is not.
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    assert of_type(events, SimFill)[0].price == D("98.90")
    order = sim.order("sl")
    assert order is not None
    assert (order.status, order.triggered) == (SimOrderStatus.PARTIALLY_FILLED, True)
    maker = of_type(sim.set_price(BTC, D("99.00")), SimFill)  # bid 98.95 >= 98.90
    assert [(fill.price, fill.is_maker) for fill in maker] == [(D("98.90"), True)]
    assert sim.balance("BTC") == SimBalance(free=D("3"), locked=D("0"))


def test_trailing_stop_sell_follows_the_high_and_triggers_on_the_pullback() -> None:
    sim = make_sim()
    accepted = sim.submit(
        "tr", BTC, Side.SELL, OrderType.TRAILING_STOP, D("1"), trailing_offset=D("1.00")
    )
    assert accepted[0].stop_price == D("99.00")  # type: ignore[union-attr]
    sim.set_price(BTC, D("102.00"))
    trailing = sim.order("tr")
    assert trailing is not None
    assert trailing.stop_price == D("101.00")
    assert sim.set_price(BTC, D("101.50")) == []
    order = sim.order("tr")
    assert order is not None
    assert order.stop_price == D("101.00"), "the stop never moves against the order"
    events = sim.set_price(BTC, D("101.00"))
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    # Bid at 101.00: 101.00 - 0.0505 rounded down = 100.94.
    assert of_type(events, SimFill)[0].price == D("100.94")


def test_trailing_stop_buy_follows_the_low() -> None:
    sim = make_sim()
    sim.submit("tb", BTC, Side.BUY, OrderType.TRAILING_STOP, D("1"), trailing_offset=D("0.50"))
    assert sim.set_price(BTC, D("98.00")) == []
    order = sim.order("tb")
    assert order is not None
    assert order.stop_price == D("98.50")
    events = sim.set_price(BTC, D("98.50"))
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    assert of_type(events, SimFill)[0].price == D("98.55")
    assert sim.balance("USDT").locked == 0


# ------------------------------------------------------------ cancel & amend


def test_cancel_unlocks_and_rejects_unknown_or_closed_orders() -> None:
    sim = make_sim()
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("99.00"))
    events = sim.cancel("l1")
    assert [type(event) for event in events] == [SimCanceled]
    assert sim.balance("USDT") == SimBalance(free=D("10000"), locked=D("0"))
    again = only_rejection(sim.cancel("l1"))
    assert (again.code, again.venue_order_id) == (SimRejectCode.ALREADY_CLOSED, 1)
    assert only_rejection(sim.cancel("ghost")).code is SimRejectCode.UNKNOWN_ORDER
    duplicate = sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("99.00"))
    assert only_rejection(duplicate).code is SimRejectCode.DUPLICATE_CLIENT_ORDER_ID


def test_cancel_all_can_be_limited_to_one_symbol() -> None:
    sim = make_sim(btc_spec(), eth_spec(), balances={"USDT": D("10000")})
    sim.submit("b1", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("90.00"))
    sim.submit("e1", ETH, Side.BUY, OrderType.LIMIT, D("1"), price=D("19.00"))
    sim.submit("b2", BTC, Side.BUY, OrderType.STOP, D("1"), stop_price=D("110.00"))
    canceled = sim.cancel_all(BTC)
    assert [event.client_order_id for event in canceled] == ["b1", "b2"]
    assert [order.client_order_id for order in sim.open_orders()] == ["e1"]
    assert [event.client_order_id for event in sim.cancel_all()] == ["e1"]
    assert sim.balance("USDT") == SimBalance(free=D("10000"), locked=D("0"))


def test_amend_quantity_and_price_adjust_the_lock() -> None:
    sim = make_sim()
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("2"), price=D("99.00"))
    events = sim.amend("l1", quantity=D("3"))
    assert [type(event) for event in events] == [SimAmended]
    assert sim.balance("USDT").locked == D("297.297")
    sim.amend("l1", price=D("98.00"))
    assert sim.balance("USDT").locked == D("294.294")
    order = sim.order("l1")
    assert order is not None
    assert (order.quantity, order.price, order.venue_order_id) == (D("3"), D("98.00"), 1)


def test_amend_below_filled_is_rejected_and_to_filled_completes() -> None:
    sim = make_sim()
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("3"), price=D("98.00"))
    sim.set_price(BTC, D("97.90"))  # ask 97.95: one lot fills at 98.00
    below = only_rejection(sim.amend("l1", quantity=D("0.5")))
    assert below.code is SimRejectCode.QUANTITY_BELOW_FILLED
    events = sim.amend("l1", quantity=D("1"))
    assert len(events) == 1
    amended = events[0]
    assert isinstance(amended, SimAmended)
    assert (amended.status, amended.quantity, amended.filled_quantity) == (
        SimOrderStatus.FILLED,
        D("1"),
        D("1"),
    )
    assert sim.open_orders() == []
    assert sim.balance("USDT").locked == 0
    assert only_rejection(sim.amend("l1", quantity=D("2"))).code is SimRejectCode.ALREADY_CLOSED


def test_amend_to_a_marketable_price_takes_liquidity() -> None:
    sim = make_sim()
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("2"), price=D("99.00"))
    events = sim.amend("l1", price=D("100.05"))
    assert [type(event) for event in events] == [SimAmended, SimFill]
    fill = of_type(events, SimFill)[0]
    assert (fill.price, fill.quantity, fill.is_maker) == (D("100.05"), D("1"), False)
    order = sim.order("l1")
    assert order is not None
    assert order.status is SimOrderStatus.PARTIALLY_FILLED
    assert sim.balance("USDT").locked == D("100.15005")  # 1 * 100.05 * 1.001


def test_only_a_repricing_amend_takes_liquidity() -> None:
    sim = make_sim(fill_probability=0.0)
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("2"), price=D("99.00"))
    assert sim.set_price(BTC, D("98.00")) == [], "crossed, but fill_probability 0 never fills"
    resized = sim.amend("l1", quantity=D("3"))
    assert [type(event) for event in resized] == [SimAmended]
    repriced = sim.amend("l1", price=D("99.01"))
    # At 98.00 the asks are 98.05, 98.15, 98.25: all within 99.01, one lot each.
    assert [(fill.price, fill.is_maker) for fill in of_type(repriced, SimFill)] == [
        (D("98.05"), False),
        (D("98.15"), False),
        (D("98.25"), False),
    ]


def test_amend_refusals() -> None:
    sim = make_sim(balances={"USDT": D("300"), "BTC": D("1")})
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("2"), price=D("99.00"), post_only=True)
    sim.submit("t1", BTC, Side.SELL, OrderType.STOP, D("1"), stop_price=D("95.00"))
    sim.submit("m1", BTC, Side.BUY, OrderType.MARKET, D("0.1"))
    cases: list[tuple[str, dict[str, Any], SimRejectCode]] = [
        ("ghost", {"quantity": D("1")}, SimRejectCode.UNKNOWN_ORDER),
        ("l1", {}, SimRejectCode.NOTHING_TO_AMEND),
        ("l1", {"quantity": D("4")}, SimRejectCode.INSUFFICIENT_BALANCE),
        ("l1", {"quantity": D("0.0005")}, SimRejectCode.LOT_SIZE),
        ("l1", {"quantity": D("-1")}, SimRejectCode.INVALID_QUANTITY),
        ("l1", {"price": D("99.001")}, SimRejectCode.TICK_SIZE),
        ("l1", {"price": D("100.05")}, SimRejectCode.WOULD_TAKE),
        ("l1", {"stop_price": D("98.00")}, SimRejectCode.NOT_AMENDABLE),
        ("t1", {"price": D("94.00")}, SimRejectCode.NOT_AMENDABLE),
        ("t1", {"stop_price": D("100.00")}, SimRejectCode.STOP_WOULD_TRIGGER),
        ("t1", {"quantity": D("2")}, SimRejectCode.INSUFFICIENT_BALANCE),
        ("m1", {"quantity": D("1")}, SimRejectCode.ALREADY_CLOSED),
    ]
    before = (sim.balances(), sim.open_orders())
    for client_order_id, changes, code in cases:
        rejection = only_rejection(sim.amend(client_order_id, **changes))
        assert rejection.code is code, (client_order_id, changes, rejection)
    assert (sim.balances(), sim.open_orders()) == before
    moved = sim.amend("t1", stop_price=D("96.00"))
    assert [type(event) for event in moved] == [SimAmended]
    assert of_type(moved, SimAmended)[0].stop_price == D("96.00")


# --------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"symbol": "NOPE"}, SimRejectCode.UNKNOWN_SYMBOL),
        ({"quantity": D("0")}, SimRejectCode.INVALID_QUANTITY),
        ({"quantity": D("Infinity")}, SimRejectCode.INVALID_QUANTITY),
        ({"quantity": D("1.0005")}, SimRejectCode.LOT_SIZE),
        ({"price": None}, SimRejectCode.INVALID_PRICE),
        ({"price": D("-1")}, SimRejectCode.INVALID_PRICE),
        ({"price": D("99.001")}, SimRejectCode.TICK_SIZE),
        ({"quantity": D("0.005")}, SimRejectCode.MIN_NOTIONAL),
        ({"stop_price": D("98.00")}, SimRejectCode.INVALID_PRICE),
        ({"trailing_offset": D("1")}, SimRejectCode.INVALID_PRICE),
        ({"time_in_force": TimeInForce.OPG}, SimRejectCode.UNSUPPORTED_TIME_IN_FORCE),
        ({"time_in_force": TimeInForce.GTD}, SimRejectCode.INVALID_EXPIRE_TIME),
        ({"expire_time_ns": 10**18}, SimRejectCode.INVALID_EXPIRE_TIME),
        ({"client_order_id": ""}, SimRejectCode.INVALID_ORDER),
        ({"order_type": OrderType.MARKET}, SimRejectCode.INVALID_PRICE),
        ({"order_type": OrderType.TRAILING_STOP, "price": None}, SimRejectCode.INVALID_PRICE),
    ],
)
def test_submission_rejections(arguments: dict[str, Any], code: SimRejectCode) -> None:
    sim = make_sim()
    order: dict[str, Any] = {
        "client_order_id": "x1",
        "symbol": BTC,
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": D("1"),
        "price": D("99.00"),
    }
    order.update(arguments)
    rejection = only_rejection(sim.submit(**order))
    assert rejection.code is code
    assert rejection.client_order_id == order["client_order_id"]
    assert sim.open_orders() == []
    assert sim.balance("USDT") == SimBalance(free=D("10000"), locked=D("0"))


def test_min_quantity_is_checked_separately_from_the_lot() -> None:
    sim = make_sim(btc_spec(min_quantity=D("0.01"), min_notional=D("0")))
    rejection = only_rejection(
        sim.submit("q", BTC, Side.BUY, OrderType.LIMIT, D("0.005"), price=D("99.00"))
    )
    assert rejection.code is SimRejectCode.MIN_QUANTITY


# ------------------------------------------------------------------- expiry


def test_gtd_and_day_orders_expire_by_the_injected_clock() -> None:
    clock = ManualClock(1_000)
    sim = MatchingSimulator(make_config(), seed=1, clock=clock)
    sim.submit(
        "gtd",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        price=D("90.00"),
        time_in_force=TimeInForce.GTD,
        expire_time_ns=5_000,
    )
    sim.submit(
        "day",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        price=D("90.00"),
        time_in_force=TimeInForce.DAY,
    )
    sim.submit(
        "day2",
        BTC,
        Side.SELL,
        OrderType.LIMIT,
        D("1"),
        price=D("120.00"),
        time_in_force=TimeInForce.DAY,
        expire_time_ns=7_000,
    )
    day = sim.order("day")
    assert day is not None
    assert day.expire_time_ns == DAY_NS, "a DAY order lasts to the end of its UTC day"

    clock.now_ns = 4_999
    assert of_type(sim.step(), SimExpired) == []
    clock.now_ns = 5_000
    expired = of_type(sim.step(), SimExpired)
    assert [(event.client_order_id, event.reason) for event in expired] == [
        ("gtd", EXPIRED_TIME_REACHED)
    ]
    clock.now_ns = 7_000
    assert [event.client_order_id for event in sim.expire_due()] == ["day2"]
    clock.now_ns = DAY_NS
    assert [event.client_order_id for event in sim.set_price(BTC, D("100.00"))] == ["day"]
    assert sim.open_orders() == []
    assert sim.balances()["USDT"] == SimBalance(free=D("10000"), locked=D("0"))
    assert sim.balances()["BTC"] == SimBalance(free=D("5"), locked=D("0"))

    late = sim.submit(
        "late",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        price=D("90.00"),
        time_in_force=TimeInForce.GTD,
        expire_time_ns=DAY_NS,
    )
    assert only_rejection(late).code is SimRejectCode.INVALID_EXPIRE_TIME


def test_an_expiring_order_does_not_fill_in_the_same_step() -> None:
    clock = ManualClock(1_000)
    sim = MatchingSimulator(make_config(), seed=1, clock=clock)
    sim.submit(
        "gtd",
        BTC,
        Side.BUY,
        OrderType.LIMIT,
        D("1"),
        price=D("99.00"),
        time_in_force=TimeInForce.GTD,
        expire_time_ns=2_000,
    )
    clock.now_ns = 2_000
    events = sim.set_price(BTC, D("98.00"))
    assert [type(event) for event in events] == [SimExpired]


# ------------------------------------------------------------ price process


def test_same_seed_and_calls_give_identical_events() -> None:
    def run(seed: int) -> tuple[list[SimEvent], list[D]]:
        sim = make_sim(btc_spec(), eth_spec(), seed=seed, fill_probability=0.6)
        events: list[SimEvent] = []
        events += sim.submit("b", BTC, Side.BUY, OrderType.LIMIT, D("3"), price=D("99.90"))
        events += sim.submit("s", ETH, Side.SELL, OrderType.LIMIT, D("5"), price=D("20.05"))
        events += sim.submit(
            "t", BTC, Side.SELL, OrderType.TRAILING_STOP, D("1"), trailing_offset=D("0.30")
        )
        path: list[D] = []
        for _ in range(60):
            events += sim.step()
            path.append(sim.quote(BTC).last)
        return events, path

    first_events, first_path = run(7)
    second_events, second_path = run(7)
    assert first_events == second_events
    assert first_path == second_path
    assert of_type(first_events, SimFill), "the scenario should exercise fills"
    _, other_path = run(8)
    assert other_path != first_path


def test_a_symbols_path_does_not_depend_on_other_symbols_or_orders() -> None:
    alone = make_sim(btc_spec(), eth_spec(), seed=5)
    busy = make_sim(btc_spec(), eth_spec(), seed=5)
    busy.submit("b", BTC, Side.BUY, OrderType.LIMIT, D("3"), price=D("99.90"))
    alone_path, busy_path = [], []
    for index in range(30):
        alone.step(BTC)
        busy.step()
        if index % 3 == 0:
            busy.step(ETH)
        alone_path.append(alone.quote(BTC).last)
        busy_path.append(busy.quote(BTC).last)
    assert alone_path == busy_path


def test_step_moves_only_the_named_symbol() -> None:
    sim = make_sim(btc_spec(volatility_bps=D("500")), eth_spec(), seed=2)
    eth_before = sim.quote(ETH)
    for _ in range(5):
        sim.step(BTC)
    assert sim.quote(ETH) == eth_before
    assert sim.quote(BTC).last != D("100.00")
    with pytest.raises(KeyError):
        sim.step("NOPE")


def test_random_walk_stays_on_tick_and_positive() -> None:
    sim = make_sim(btc_spec(initial_price=D("0.05"), volatility_bps=D("5000"), min_notional=D("0")))
    prices = []
    for _ in range(300):
        sim.step()
        prices.append(sim.quote(BTC).last)
    assert all(price > 0 and price % D("0.01") == 0 for price in prices)
    assert D("0.01") in prices, "the walk is floored at one tick"
    assert len(set(prices)) > 3


def test_price_series_is_replayed_rounded_and_held() -> None:
    sim = make_sim(btc_spec(price_series=(D("101"), D("102.004"), D("0.001"), D("99"))))
    lasts = []
    for _ in range(6):
        sim.step()
        lasts.append(sim.quote(BTC).last)
    assert lasts == [D("101.00"), D("102.00"), D("0.01"), D("99.00"), D("99.00"), D("99.00")]


def test_set_price_rounds_to_the_tick_and_refuses_nonsense() -> None:
    sim = make_sim()
    sim.set_price(BTC, D("101.234"))
    assert sim.quote(BTC).last == D("101.23")
    with pytest.raises(ValueError, match="positive"):
        sim.set_price(BTC, D("0"))
    with pytest.raises(KeyError):
        sim.set_price("NOPE", D("1"))


def test_default_clock_is_a_counter_and_events_carry_its_reading() -> None:
    sim = make_sim()
    first = sim.submit("a", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("99.00"))
    second = sim.cancel("a")
    assert first[0].ts_ns + 1 == second[0].ts_ns


def test_arithmetic_ignores_the_callers_decimal_context() -> None:
    reference = make_sim(slippage_bps=D("5"))
    expected = reference.submit("m", BTC, Side.BUY, OrderType.MARKET, D("2.5"))
    sim = make_sim(slippage_bps=D("5"))
    with decimal.localcontext() as context:
        context.prec = 4
        events = sim.submit("m", BTC, Side.BUY, OrderType.MARKET, D("2.5"))
    assert events == expected
    assert sim.balances() == reference.balances()


def test_the_global_random_state_is_untouched() -> None:
    before = random.getstate()
    sim = make_sim(fill_probability=0.5)
    sim.submit("l", BTC, Side.BUY, OrderType.LIMIT, D("5"), price=D("99.90"))
    for _ in range(20):
        sim.step()
    assert random.getstate() == before


def test_the_package_imports_nothing_impure() -> None:
    package = Path(__file__).resolve().parents[1] / "src" / "tradenode" / "sim"
    forbidden = {"time", "datetime", "threading", "asyncio", "os", "socket", "io", "trio"}
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, (source.name, name)
                if name.startswith("tradenode"):
                    assert name == "tradenode.messages._enums" or name.startswith(
                        "tradenode.sim."
                    ), (source.name, name)


# --------------------------------------------------------- queries & fills


def test_fills_can_be_paged_and_filtered_and_orders_found_by_venue_id() -> None:
    sim = make_sim(btc_spec(), eth_spec(), balances={"USDT": D("10000")})
    sim.submit("b", BTC, Side.BUY, OrderType.MARKET, D("2"))
    sim.submit("e", ETH, Side.BUY, OrderType.MARKET, D("1"))
    all_fills = sim.fills()
    assert [fill.trade_id for fill in all_fills] == [1, 2, 3]
    assert [fill.symbol for fill in sim.fills(ETH)] == [ETH]
    assert [fill.trade_id for fill in sim.fills(after_trade_id=1)] == [2, 3]
    assert sim.fills(after_trade_id=3) == []
    by_venue = sim.order_by_venue_id(2)
    assert by_venue is not None
    assert by_venue.client_order_id == "e"
    assert sim.order_by_venue_id(99) is None
    assert sim.position(ETH) == D("1")
    assert set(sim.balances()) == {"USDT", "BTC", "ETH"}


def test_events_are_frozen_slotted_values() -> None:
    sim = make_sim()
    events = sim.submit("m", BTC, Side.BUY, OrderType.MARKET, D("1"))
    for event in events:
        assert not hasattr(event, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.ts_ns = 0  # type: ignore[misc]


# ------------------------------------------------------------------ snapshot


def busy_simulator(seed: int = 11) -> MatchingSimulator:
    sim = make_sim(
        btc_spec(),
        eth_spec(),
        seed=seed,
        fill_probability=0.5,
        balances={"USDT": D("10000"), "BTC": D("5"), "ETH": D("20")},
    )
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("3"), price=D("99.95"))
    sim.submit("l2", ETH, Side.SELL, OrderType.LIMIT, D("4"), price=D("20.03"))
    sim.submit("t1", BTC, Side.SELL, OrderType.TRAILING_STOP, D("1"), trailing_offset=D("0.20"))
    sim.submit(
        "s1", BTC, Side.BUY, OrderType.STOP_LIMIT, D("1"), price=D("101.50"), stop_price=D("101.00")
    )
    sim.submit("m1", BTC, Side.BUY, OrderType.MARKET, D("1.5"))
    for _ in range(10):
        sim.step()
    return sim


def drive(sim: MatchingSimulator) -> list[SimEvent]:
    events: list[SimEvent] = []
    for index in range(25):
        events += sim.step()
        if index % 5 == 0:
            events += sim.submit(
                f"n{index}", ETH, Side.BUY, OrderType.LIMIT, D("1"), price=sim.quote(ETH).bid
            )
    events += sim.cancel_all()
    return events


def test_snapshot_is_plain_data_and_restores_to_an_identical_future() -> None:
    original = busy_simulator()
    snapshot = original.snapshot()
    text = json.dumps(snapshot)
    restored = MatchingSimulator.restore(original.config, json.loads(text))
    assert restored.snapshot() == snapshot
    assert restored.balances() == original.balances()
    assert restored.open_orders() == original.open_orders()
    assert restored.fills() == original.fills()
    assert restored.quote(BTC) == original.quote(BTC)
    assert drive(restored) == drive(original)
    assert restored.snapshot() == original.snapshot()


def test_restore_with_a_new_seed_keeps_state_but_not_the_future() -> None:
    original = busy_simulator()
    snapshot = original.snapshot()
    reseeded = MatchingSimulator.restore(original.config, snapshot, seed=999)
    assert reseeded.seed == 999
    assert reseeded.balances() == original.balances()
    paths = []
    for sim in (original, reseeded):
        path = []
        for _ in range(10):
            sim.step(BTC)
            path.append(sim.quote(BTC).last)
        paths.append(path)
    assert paths[0] != paths[1]


def test_restore_under_an_injected_clock_and_with_new_instruments() -> None:
    clock = ManualClock(500)
    sim = MatchingSimulator(make_config(), seed=3, clock=clock)
    sim.submit("l1", BTC, Side.BUY, OrderType.LIMIT, D("1"), price=D("99.00"))
    snapshot = sim.snapshot()
    bigger = make_config(btc_spec(), eth_spec())
    restored = MatchingSimulator.restore(bigger, snapshot, clock=ManualClock(900))
    assert restored.quote(ETH).last == D("20.00")
    assert [order.client_order_id for order in restored.open_orders()] == ["l1"]
    assert restored.cancel("l1")[0].ts_ns == 900


def test_restore_refuses_snapshots_that_do_not_fit() -> None:
    sim = busy_simulator()
    snapshot = sim.snapshot()
    with pytest.raises(ValueError, match="symbols"):
        MatchingSimulator.restore(make_config(btc_spec()), snapshot)
    with pytest.raises(ValueError, match="format"):
        MatchingSimulator.restore(sim.config, {**snapshot, "format": 99})
    with pytest.raises(ValueError, match="malformed"):
        MatchingSimulator.restore(sim.config, {k: v for k, v in snapshot.items() if k != "orders"})
    tampered = json.loads(json.dumps(snapshot))
    tampered["balances"]["USDT"]["locked"] = "0"
    with pytest.raises(ValueError, match="inconsistent"):
        MatchingSimulator.restore(sim.config, tampered)


# ------------------------------------------------------------ property tests

PROPERTY_SYMBOLS = (BTC, ETH)
PROPERTY_INITIAL = {"USDT": D("2000"), "BTC": D("3"), "ETH": D("10")}
# Repetition weights the draw towards orders that rest, so that passive fills,
# amends and expiry get exercised and not only immediate executions.
PROPERTY_TIFS = (
    TimeInForce.GTC,
    TimeInForce.GTC,
    TimeInForce.GTC,
    TimeInForce.DAY,
    TimeInForce.GTD,
    TimeInForce.GTD,
    TimeInForce.IOC,
    TimeInForce.FOK,
)
PROPERTY_TYPES = (
    OrderType.LIMIT,
    OrderType.LIMIT,
    OrderType.LIMIT,
    OrderType.MARKET,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
    OrderType.MARKET_IF_TOUCHED,
    OrderType.LIMIT_IF_TOUCHED,
)


def property_config(*, allow_short: bool) -> SimConfig:
    return make_config(
        btc_spec(
            lot_size=D("0.1"), min_quantity=D("0.1"), min_notional=D("5"), volatility_bps=D("30")
        ),
        eth_spec(
            lot_size=D("0.5"), min_quantity=D("0.5"), level_quantity=D("2"), volatility_bps=D("60")
        ),
        balances=PROPERTY_INITIAL,
        level_quantity=D("0.5"),
        level_spacing_bps=D("15"),
        slippage_bps=D("4"),
        maker_commission_bps=D("3"),
        taker_commission_bps=D("7"),
        fill_probability=0.7,
        allow_short=allow_short,
    )


symbols = st.sampled_from(PROPERTY_SYMBOLS)
ticks = st.integers(-80, 80)
submits = st.tuples(
    st.just("submit"),
    symbols,
    st.sampled_from(Side),
    st.sampled_from(PROPERTY_TYPES),
    st.integers(1, 40),
    st.integers(-10, 40),
    ticks,
    st.integers(1, 60),
    st.sampled_from(PROPERTY_TIFS),
    st.booleans(),
    st.integers(2, 15),
)
cancels = st.tuples(st.just("cancel"), st.integers(0, 40))
amends = st.tuples(
    st.just("amend"),
    st.integers(0, 40),
    st.none() | st.just("filled") | st.integers(0, 40),
    st.none() | ticks,
    st.none() | ticks,
)
steps = st.tuples(st.just("step"), st.none() | symbols)
price_moves = st.tuples(st.just("set_price"), symbols, st.integers(-150, 150))
cancel_alls = st.tuples(st.just("cancel_all"), st.none() | symbols)
# Weights by repetition; one_of would collapse repeated strategies into one.
OPERATION_WEIGHTS = {
    "submit": 8,
    "set_price": 6,
    "step": 4,
    "amend": 3,
    "cancel": 2,
    "cancel_all": 1,
}
OPERATION_STRATEGIES: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "submit": submits,
    "set_price": price_moves,
    "step": steps,
    "amend": amends,
    "cancel": cancels,
    "cancel_all": cancel_alls,
}
operations = st.lists(
    st.sampled_from(
        [kind for kind, weight in OPERATION_WEIGHTS.items() for _ in range(weight)]
    ).flatmap(OPERATION_STRATEGIES.__getitem__),
    min_size=8,
    max_size=60,
)


def near(sim: MatchingSimulator, symbol: str, offset_ticks: int) -> D:
    tick = sim.config.instrument(symbol).tick_size
    return max(sim.quote(symbol).last + tick * offset_ticks, tick)


def recent(ids: list[str], index: int) -> str:
    """One of the last few ids, so cancels and amends mostly find live orders."""
    if not ids:
        return "none"
    return ids[-1 - index % min(len(ids), 4)]


def apply(
    sim: MatchingSimulator, clock: TickingClock, operation: tuple[Any, ...], ids: list[str]
) -> list[SimEvent]:
    """Play one generated operation; prices are placed relative to the current market."""
    kind = operation[0]
    if kind == "submit":
        (
            _,
            symbol,
            side,
            order_type,
            lots,
            passive_ticks,
            stop_ticks,
            trail_ticks,
            tif,
            post,
            expire_in,
        ) = operation
        spec = sim.config.instrument(symbol)
        client_order_id = f"o{len(ids)}"
        ids.append(client_order_id)
        # Limits mostly sit on their passive side of the market (negative
        # distances cross it); stops always sit beyond the last price and
        # if-touched triggers short of it (each mostly not already reached).
        limit_price = near(sim, symbol, -side.sign * passive_ticks)
        beyond = -1 if order_type.triggers_on_touch else 1
        stop_price = near(sim, symbol, beyond * side.sign * (abs(stop_ticks) + 1))
        return sim.submit(
            client_order_id,
            symbol,
            side,
            order_type,
            spec.lot_size * lots,
            price=limit_price if order_type.needs_price else None,
            stop_price=stop_price if order_type.needs_stop_price else None,
            trailing_offset=(
                spec.tick_size * trail_ticks if order_type is OrderType.TRAILING_STOP else None
            ),
            time_in_force=tif,
            post_only=post and order_type is OrderType.LIMIT,
            expire_time_ns=(
                clock.now_ns + expire_in * clock.step_ns if tif is TimeInForce.GTD else None
            ),
        )
    if kind == "cancel":
        return sim.cancel(recent(ids, operation[1]))
    if kind == "amend":
        _, index, lots, price_ticks, stop_ticks = operation
        client_order_id = recent(ids, index)
        partially_filled = [order for order in sim.open_orders() if order.filled_quantity]
        if lots == "filled" and partially_filled:
            # Cutting a partly filled order to its filled part completes it.
            client_order_id = partially_filled[index % len(partially_filled)].client_order_id
        existing = sim.order(client_order_id)
        symbol = existing.symbol if existing is not None else BTC
        lot = sim.config.instrument(symbol).lot_size
        quantity: D | None
        if lots == "filled":
            quantity = existing.filled_quantity if existing is not None else lot
        else:
            quantity = None if lots is None else lot * lots
        return sim.amend(
            client_order_id,
            quantity=quantity,
            price=None if price_ticks is None else near(sim, symbol, price_ticks),
            stop_price=None if stop_ticks is None else near(sim, symbol, stop_ticks),
        )
    if kind == "step":
        return sim.step(operation[1])
    if kind == "set_price":
        return sim.set_price(operation[1], near(sim, operation[1], operation[2]))
    return sim.cancel_all(operation[1])


def check_invariants(sim: MatchingSimulator, ids: list[str], streamed: list[SimFill]) -> None:
    with decimal.localcontext() as context:
        context.prec = 80
        fills = sim.fills()
        assert fills == streamed, "fills() is exactly the stream of SimFill events"
        trade_ids = [fill.trade_id for fill in fills]
        assert trade_ids == sorted(set(trade_ids)), "trade ids are unique and increasing"

        expected = dict.fromkeys(sim.balances(), D(0)) | PROPERTY_INITIAL
        positions = dict.fromkeys(PROPERTY_SYMBOLS, D(0))
        filled: dict[str, D] = {}
        for fill in fills:
            spec = sim.config.instrument(fill.symbol)
            notional = fill.price * fill.quantity
            signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
            expected[spec.base_asset] += signed
            expected[spec.quote_asset] -= notional if fill.side is Side.BUY else -notional
            expected[fill.commission_asset] -= fill.commission
            positions[fill.symbol] += signed
            filled[fill.client_order_id] = filled.get(fill.client_order_id, D(0)) + fill.quantity
            assert fill.commission >= 0 and fill.price > 0 and fill.quantity > 0

        for asset, balance in sim.balances().items():
            assert balance.free + balance.locked == expected[asset], asset
            assert balance.locked >= 0, asset
            short_allowed = sim.config.allow_short and asset != "USDT"
            assert short_allowed or balance.free >= 0, asset
        for symbol in PROPERTY_SYMBOLS:
            assert sim.position(symbol) == positions[symbol]

        open_ids = [order.client_order_id for order in sim.open_orders()]
        assert len(open_ids) == len(set(open_ids))
        for client_order_id in ids:
            order = sim.order(client_order_id)
            if order is None:
                assert client_order_id not in open_ids
                continue
            assert order.filled_quantity <= order.quantity, "no overfill"
            assert order.filled_quantity == filled.get(client_order_id, D(0))
            assert order.status is not SimOrderStatus.REJECTED
            assert (client_order_id in open_ids) == order.status.is_open
            if order.status is SimOrderStatus.FILLED:
                assert order.filled_quantity == order.quantity
            if order.status is SimOrderStatus.NEW:
                assert order.filled_quantity == 0
        if not open_ids:
            assert all(balance.locked == 0 for balance in sim.balances().values())


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(operations=operations, allow_short=st.booleans(), seed=st.integers(0, 2**32))
def test_random_sequences_keep_the_books_straight(
    operations: list[tuple[Any, ...]], allow_short: bool, seed: int
) -> None:
    clock = TickingClock()
    sim = MatchingSimulator(property_config(allow_short=allow_short), seed=seed, clock=clock)
    ids: list[str] = []
    streamed: list[SimFill] = []
    for operation in operations:
        events = apply(sim, clock, operation, ids)
        streamed.extend(of_type(events, SimFill))
        check_invariants(sim, ids, streamed)
    sim.cancel_all()
    assert all(balance.locked == 0 for balance in sim.balances().values())
    assert sim.open_orders() == []


@settings(deadline=None, max_examples=100)
@given(operations=operations, split=st.integers(0, 45), seed=st.integers(0, 2**32))
def test_random_sequences_are_deterministic_across_snapshot_and_restore(
    operations: list[tuple[Any, ...]], split: int, seed: int
) -> None:
    config = property_config(allow_short=False)
    clock_a, clock_b = TickingClock(), TickingClock()
    uninterrupted = MatchingSimulator(config, seed=seed, clock=clock_a)
    interrupted = MatchingSimulator(config, seed=seed, clock=clock_b)
    ids_a: list[str] = []
    ids_b: list[str] = []
    for index, operation in enumerate(operations):
        if index == split:
            snapshot = json.loads(json.dumps(interrupted.snapshot()))
            interrupted = MatchingSimulator.restore(config, snapshot, clock=clock_b)
        assert apply(uninterrupted, clock_a, operation, ids_a) == apply(
            interrupted, clock_b, operation, ids_b
        )
    assert interrupted.snapshot() == uninterrupted.snapshot()


def random_operation(rng: random.Random) -> tuple[Any, ...]:
    """The same operation shapes as the hypothesis strategies, for a long seeded soak."""
    kind = rng.choice([kind for kind, weight in OPERATION_WEIGHTS.items() for _ in range(weight)])
    symbol = rng.choice(PROPERTY_SYMBOLS)
    if kind == "submit":
        return (
            kind,
            symbol,
            rng.choice(list(Side)),
            rng.choice(PROPERTY_TYPES),
            rng.randint(1, 40),
            rng.randint(-10, 40),
            rng.randint(-80, 80),
            rng.randint(1, 60),
            rng.choice(PROPERTY_TIFS),
            rng.random() < 0.5,
            rng.randint(2, 15),
        )
    if kind == "set_price":
        return (kind, symbol, rng.randint(-150, 150))
    if kind == "step":
        return (kind, rng.choice([None, symbol]))
    if kind == "amend":
        lots = rng.choice([None, "filled", rng.randint(0, 40)])
        offsets = [rng.choice([None, rng.randint(-80, 80)]) for _ in range(2)]
        return (kind, rng.randint(0, 40), lots, *offsets)
    if kind == "cancel":
        return (kind, rng.randint(0, 40))
    return (kind, rng.choice([None, symbol]))


@pytest.mark.parametrize("allow_short", [False, True])
def test_a_long_seeded_soak_keeps_the_books_straight(allow_short: bool) -> None:
    rng = random.Random(2024)
    clock = TickingClock()
    sim = MatchingSimulator(property_config(allow_short=allow_short), seed=17, clock=clock)
    ids: list[str] = []
    streamed: list[SimFill] = []
    seen: set[str] = set()
    for index in range(1500):
        events = apply(sim, clock, random_operation(rng), ids)
        streamed.extend(of_type(events, SimFill))
        for event in events:
            seen.add(type(event).__name__)
            if isinstance(event, SimFill):
                seen.add("maker" if event.is_maker else "taker")
                if event.leaves_quantity:
                    seen.add("partial")
            if isinstance(event, SimExpired):
                seen.add(event.reason)
            if isinstance(event, SimAmended) and event.status is SimOrderStatus.FILLED:
                seen.add("amended to filled")
        if index % 25 == 0:
            check_invariants(sim, ids, streamed)
    check_invariants(sim, ids, streamed)
    expected = {
        "SimTriggered",
        "SimCanceled",
        "SimAmended",
        "SimRejected",
        "maker",
        "taker",
        "partial",
        "amended to filled",
        EXPIRED_TIME_REACHED,
        EXPIRED_BOOK_EXHAUSTED,
        EXPIRED_FOK_UNFILLABLE,
        EXPIRED_IOC_REMAINDER,
    }
    assert expected <= seen, expected - seen
