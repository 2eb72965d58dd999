"""If-touched orders in the matching simulator (Binance's TAKE_PROFIT and TAKE_PROFIT_LIMIT).

They wait like stops but trigger the other way: a buy once the last price has
come down to its trigger, a sell once it has come up. Numbers are worked out
by hand from the fixture in ``test_sim`` (at 100.00 the book is bids
99.95/99.85/99.75 and asks 100.05/100.16/100.26, 1 each; taker 10 bps,
maker 2 bps).
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_sim import BTC, btc_spec, make_sim, of_type, only_rejection
from tradenode.messages import OrderType, Side
from tradenode.sim import (
    MatchingSimulator,
    SimAccepted,
    SimAmended,
    SimBalance,
    SimCanceled,
    SimFill,
    SimOrderStatus,
    SimRejectCode,
    SimRejected,
    SimTriggered,
)

MIT = OrderType.MARKET_IF_TOUCHED
LIT = OrderType.LIMIT_IF_TOUCHED
TICK = D("0.01")
INITIAL = {"USDT": SimBalance(free=D("10000"), locked=D("0")), "BTC": SimBalance(D("5"), D("0"))}


def test_enum_members_and_properties() -> None:
    assert (MIT.value, LIT.value) == ("MARKET_IF_TOUCHED", "LIMIT_IF_TOUCHED")
    assert [kind for kind in OrderType if kind.triggers_on_touch] == [MIT, LIT]
    assert MIT.needs_stop_price and not MIT.needs_price
    assert LIT.needs_stop_price and LIT.needs_price


def test_buy_mit_waits_below_the_market_and_triggers_when_the_price_falls_to_it() -> None:
    sim = make_sim()
    accepted = sim.submit("b", BTC, Side.BUY, MIT, D("1"), stop_price=D("99.00"))
    assert [type(event) for event in accepted] == [SimAccepted]
    # Reserves the sweep as if last were 99.00: ask 99.05 * (1 + 10 bps).
    assert sim.balance("USDT") == SimBalance(free=D("9900.85095"), locked=D("99.14905"))
    # A rise (where a buy stop would fire) and a dip short of the trigger do nothing.
    assert sim.set_price(BTC, D("105.00")) == []
    assert sim.set_price(BTC, D("99.01")) == []
    events = sim.set_price(BTC, D("99.00"))
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    triggered, fill = events
    assert isinstance(triggered, SimTriggered) and isinstance(fill, SimFill)
    assert (triggered.stop_price, triggered.last_price) == (D("99.00"), D("99.00"))
    assert (fill.price, fill.is_maker, fill.commission) == (D("99.05"), False, D("0.09905"))
    order = sim.order("b")
    assert order is not None
    assert (order.triggered, order.status) == (True, SimOrderStatus.FILLED)
    assert sim.balance("USDT") == SimBalance(free=D("9900.85095"), locked=D("0"))
    assert sim.balance("BTC") == SimBalance(free=D("6"), locked=D("0"))


def test_sell_mit_waits_above_the_market_and_triggers_when_the_price_rises_to_it() -> None:
    sim = make_sim()
    sim.submit("s", BTC, Side.SELL, MIT, D("1"), stop_price=D("101.00"))
    assert sim.balance("BTC") == SimBalance(free=D("4"), locked=D("1"))
    assert sim.set_price(BTC, D("95.00")) == []
    assert sim.set_price(BTC, D("100.99")) == []
    events = sim.set_price(BTC, D("101.20"))
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    # Bid at 101.20: 101.20 - 0.0506 rounded down = 101.14; proceeds less 10 bps.
    assert of_type(events, SimFill)[0].price == D("101.14")
    assert sim.balance("USDT") == SimBalance(free=D("10000") + D("101.03886"), locked=D("0"))
    assert sim.balance("BTC") == SimBalance(free=D("4"), locked=D("0"))


def test_buy_mit_that_gaps_below_its_trigger_fills_cheaper_and_unlocks_the_rest() -> None:
    sim = make_sim()
    sim.submit("b", BTC, Side.BUY, MIT, D("1"), stop_price=D("99.00"))
    fills = of_type(sim.set_price(BTC, D("90.00")), SimFill)
    # Ask at 90.00: 90.00 + 0.045 rounded up = 90.05; 90.05 * 1.001 = 90.14005.
    assert [fill.price for fill in fills] == [D("90.05")]
    assert sim.balance("USDT") == SimBalance(free=D("10000") - D("90.14005"), locked=D("0"))


@settings(deadline=None, max_examples=60)
@given(
    side=st.sampled_from(Side),
    offset=st.integers(-300, 300),
    kind=st.sampled_from([OrderType.STOP, MIT, LIT]),
)
def test_triggers_sit_on_opposite_sides_for_stops_and_if_touched_orders(
    side: Side, offset: int, kind: OrderType
) -> None:
    """Only a trigger on the order's own side is accepted; it fires exactly when reached."""
    sim = make_sim()
    trigger = D("100.00") + TICK * offset
    # A stop sits where the price moves against the order, an if-touched
    # order where it comes to it; a trigger at the last price is reached already.
    toward = -side.sign if kind.triggers_on_touch else side.sign
    price = trigger if kind.needs_price else None
    events = sim.submit("o", BTC, side, kind, D("1"), price=price, stop_price=trigger)
    if offset * toward <= 0:
        assert only_rejection(events).code is SimRejectCode.STOP_WOULD_TRIGGER
        assert sim.balances() == INITIAL
        return
    assert [type(event) for event in events] == [SimAccepted]
    assert sim.set_price(BTC, trigger - TICK * toward) == []
    fired = sim.set_price(BTC, trigger)
    assert [type(event) for event in fired][:1] == [SimTriggered]
    order = sim.order("o")
    assert order is not None and order.triggered
    sim.cancel_all()
    assert all(balance.locked == 0 for balance in sim.balances().values())


@pytest.mark.parametrize(
    ("side", "kind", "trigger"),
    [
        (Side.BUY, MIT, D("100.00")),
        (Side.BUY, MIT, D("100.01")),
        (Side.BUY, LIT, D("120.00")),
        (Side.SELL, MIT, D("100.00")),
        (Side.SELL, MIT, D("99.99")),
        (Side.SELL, LIT, D("80.00")),
    ],
)
def test_submit_with_a_trigger_already_touched_is_refused(
    side: Side, kind: OrderType, trigger: D
) -> None:
    sim = make_sim()
    price = trigger if kind.needs_price else None
    rejection = only_rejection(
        sim.submit("o", BTC, side, kind, D("1"), price=price, stop_price=trigger)
    )
    assert rejection.code is SimRejectCode.STOP_WOULD_TRIGGER
    assert "already reached" in rejection.reason
    assert sim.open_orders() == [] and sim.balances() == INITIAL


def test_amending_the_trigger_applies_the_would_trigger_check() -> None:
    sim = make_sim()
    sim.submit("b", BTC, Side.BUY, MIT, D("1"), stop_price=D("99.00"))
    sim.submit("s", BTC, Side.SELL, LIT, D("1"), price=D("101.50"), stop_price=D("101.00"))
    before = (sim.balances(), sim.open_orders())
    for client_order_id, stop_price in [
        ("b", D("100.00")),
        ("b", D("100.50")),
        ("s", D("100.00")),
        ("s", D("99.00")),
    ]:
        rejection = only_rejection(sim.amend(client_order_id, stop_price=stop_price))
        assert rejection.code is SimRejectCode.STOP_WOULD_TRIGGER, (client_order_id, stop_price)
    assert (sim.balances(), sim.open_orders()) == before
    moved = sim.amend("b", stop_price=D("98.00"))
    assert [type(event) for event in moved] == [SimAmended]
    # The lock follows the trigger: ask at 98.00 is 98.05, 98.05 * 1.001 = 98.14805.
    assert sim.balance("USDT").locked == D("98.14805")
    assert sim.set_price(BTC, D("98.50")) == [], "the old trigger no longer fires"
    assert [type(event) for event in sim.set_price(BTC, D("98.00"))] == [SimTriggered, SimFill]


def test_lit_buy_rests_after_triggering_and_fills_later_as_a_maker() -> None:
    sim = make_sim()
    sim.submit("l", BTC, Side.BUY, LIT, D("2"), price=D("98.50"), stop_price=D("99.00"))
    # Locks like a limit: 2 * 98.50 * (1 + 10 bps) = 197.197.
    assert sim.balance("USDT") == SimBalance(free=D("9802.803"), locked=D("197.197"))
    # Ask at 99.00 is 99.05, above the limit: it triggers but takes nothing.
    events = sim.set_price(BTC, D("99.00"))
    assert [type(event) for event in events] == [SimTriggered]
    order = sim.order("l")
    assert order is not None
    assert (order.triggered, order.status) == (True, SimOrderStatus.NEW)
    assert sim.open_orders() == [order]
    trigger_amend = only_rejection(sim.amend("l", stop_price=D("98.00")))
    assert trigger_amend.code is SimRejectCode.NOT_AMENDABLE
    # Ask at 98.40 is 98.45 <= 98.50: one level fills at the limit, as maker.
    fills = of_type(sim.set_price(BTC, D("98.40")), SimFill)
    assert [(fill.price, fill.quantity, fill.is_maker) for fill in fills] == [
        (D("98.50"), D("1"), True)
    ]
    # The lock shrinks to what the rest needs: 98.50 * 1.001.
    assert sim.balance("USDT") == SimBalance(free=D("9802.8818"), locked=D("98.5985"))
    fills = of_type(sim.set_price(BTC, D("98.40")), SimFill)
    assert [fill.leaves_quantity for fill in fills] == [D("0")]
    # Two maker fills at 98.50 with 2 bps: 197 + 0.0394.
    assert sim.balance("USDT") == SimBalance(free=D("10000") - D("197.0394"), locked=D("0"))
    assert sim.balance("BTC") == SimBalance(free=D("7"), locked=D("0"))


def test_lit_sell_takes_what_its_limit_allows_at_trigger_then_rests() -> None:
    sim = make_sim()
    sim.submit("l", BTC, Side.SELL, LIT, D("2"), price=D("100.90"), stop_price=D("101.00"))
    events = sim.set_price(BTC, D("101.00"))
    # Bid 100.94 is within the limit; the next level (100.84) is not.
    assert [type(event) for event in events] == [SimTriggered, SimFill]
    assert of_type(events, SimFill)[0].price == D("100.94")
    order = sim.order("l")
    assert order is not None
    assert order.status is SimOrderStatus.PARTIALLY_FILLED
    assert sim.balance("BTC") == SimBalance(free=D("3"), locked=D("1"))


@settings(deadline=None, max_examples=60)
@given(
    orders=st.lists(
        st.tuples(
            st.sampled_from(Side),
            st.sampled_from([MIT, LIT]),
            st.integers(1, 200),
            st.integers(-50, 50),
            st.integers(1, 30),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_cancelling_untriggered_orders_restores_the_balances_exactly(
    orders: list[tuple[Side, OrderType, int, int, int]],
) -> None:
    sim = make_sim()
    for index, (side, kind, trigger_ticks, limit_ticks, lots) in enumerate(orders):
        # Triggers on the untouched side of 100.00, limits anywhere near them.
        trigger = D("100.00") - side.sign * TICK * trigger_ticks
        price = trigger + TICK * limit_ticks if kind.needs_price else None
        events = sim.submit(
            f"o{index}", BTC, side, kind, D("0.1") * lots, price=price, stop_price=trigger
        )
        (event,) = events
        if isinstance(event, SimRejected):
            assert event.code is SimRejectCode.INSUFFICIENT_BALANCE
        else:
            assert isinstance(event, SimAccepted)
    resting = sim.open_orders()
    assert all(not order.triggered for order in resting)
    assert bool(resting) == any(balance.locked for balance in sim.balances().values())
    canceled = sim.cancel_all()
    assert [type(event) for event in canceled] == [SimCanceled] * len(resting)
    assert sim.balances() == INITIAL


def test_cancelling_a_partly_filled_lit_unlocks_exactly_the_rest() -> None:
    sim = make_sim()
    sim.submit("l", BTC, Side.SELL, LIT, D("2"), price=D("100.90"), stop_price=D("101.00"))
    sim.set_price(BTC, D("101.00"))
    sim.cancel("l")
    # One BTC sold at 100.94 less 10 bps taker commission: 100.83906.
    assert sim.balances() == {
        "USDT": SimBalance(free=D("10100.83906"), locked=D("0")),
        "BTC": SimBalance(free=D("4"), locked=D("0")),
    }


def test_snapshot_and_restore_keep_an_untriggered_mit() -> None:
    original = make_sim()
    original.submit("b", BTC, Side.BUY, MIT, D("1"), stop_price=D("99.00"))
    original.submit("s", BTC, Side.SELL, LIT, D("1"), price=D("101.50"), stop_price=D("101.00"))
    snapshot = original.snapshot()
    assert [plain["order_type"] for plain in snapshot["orders"]] == [MIT.value, LIT.value]
    restored = MatchingSimulator.restore(original.config, json.loads(json.dumps(snapshot)))
    assert restored.snapshot() == snapshot
    assert restored.open_orders() == original.open_orders()
    assert restored.balances() == original.balances()
    for price in (D("100.50"), D("99.00"), D("101.00"), D("101.60")):
        assert restored.set_price(BTC, price) == original.set_price(BTC, price)
    assert restored.snapshot() == original.snapshot()
    order = restored.order("b")
    assert order is not None and order.status is SimOrderStatus.FILLED


def test_min_notional_values_an_mit_at_its_trigger() -> None:
    sim = make_sim(btc_spec(min_notional=D("50")))
    small = sim.submit("b", BTC, Side.BUY, MIT, D("0.5"), stop_price=D("99.00"))
    assert only_rejection(small).code is SimRejectCode.MIN_NOTIONAL  # 49.50 < 50
    # A sell triggers higher, so the same size clears the minimum there.
    big_enough = sim.submit("s", BTC, Side.SELL, MIT, D("0.5"), stop_price=D("101.00"))
    assert [type(event) for event in big_enough] == [SimAccepted]
