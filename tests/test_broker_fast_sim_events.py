"""The simulator's per-order fast paths change no value it hands back.

The simulator builds an order's ``SimAccepted`` and each ``SimFill`` with
positional arguments (cheaper than keywords, once per order and per fill),
runs its public calls in ``EXACT`` itself instead of a copy of it, and reads
the enum members it tests from module globals. Each event here is compared,
field by field and by keyword, with values worked out from the configuration
and the order, so a field given in the wrong place cannot pass unnoticed; the
caller's decimal context must come back untouched. The token bucket's
per-request ``try_acquire`` skips re-checking its default amount only: any
other amount is still checked.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal as D

import pytest

# The breaker's token bucket is internal (the breaker owns it): unit-tested here.
from tradenode.actors._rate_limit import TokenBucket
from tradenode.messages import OrderType, Side, TimeInForce
from tradenode.sim import (
    MatchingSimulator,
    SimAccepted,
    SimFill,
    SimOrderStatus,
    paper_sim_config,
)

NOW = 1_000_000
SYMBOL = "BTCUSDT"


def _sim() -> MatchingSimulator:
    return MatchingSimulator(paper_sim_config(), seed=1, clock=lambda: NOW)


def _venue_id(sim: MatchingSimulator, client_order_id: str) -> int:
    order = sim.order(client_order_id)
    assert order is not None
    return order.venue_order_id


def test_a_market_buy_reports_every_field_in_its_place() -> None:
    sim = _sim()
    ask = sim.quote(SYMBOL).ask
    quantity = D("0.003")
    events = sim.submit("b1", SYMBOL, Side.BUY, OrderType.MARKET, quantity)
    accepted, fill = events
    venue_id = _venue_id(sim, "b1")
    assert accepted == SimAccepted(
        client_order_id="b1",
        venue_order_id=venue_id,
        symbol=SYMBOL,
        side=Side.BUY,
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.GTC,
        quantity=quantity,
        price=None,
        stop_price=None,
        ts_ns=NOW,
    )
    taker_bps = paper_sim_config().taker_commission_bps
    assert fill == SimFill(
        trade_id=1,
        venue_order_id=venue_id,
        client_order_id="b1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=quantity,
        price=ask,
        commission=ask * quantity * taker_bps / D(10000),
        commission_asset="USDT",
        is_maker=False,
        cumulative_quantity=quantity,
        leaves_quantity=D(0),
        ts_ns=NOW,
    )
    assert fill.order_status is SimOrderStatus.FILLED


def test_a_market_sell_reports_its_side_price_and_next_trade_id() -> None:
    sim = _sim()
    sim.submit("b1", SYMBOL, Side.BUY, OrderType.MARKET, D("0.002"))
    bid = sim.quote(SYMBOL).bid
    accepted, fill = sim.submit("s1", SYMBOL, Side.SELL, OrderType.MARKET, D("0.001"))
    assert isinstance(accepted, SimAccepted) and isinstance(fill, SimFill)
    assert accepted.side is Side.SELL and accepted.venue_order_id == _venue_id(sim, "s1")
    assert _venue_id(sim, "s1") == _venue_id(sim, "b1") + 1
    assert (fill.trade_id, fill.side, fill.price, fill.quantity) == (2, Side.SELL, bid, D("0.001"))
    assert (fill.cumulative_quantity, fill.leaves_quantity) == (D("0.001"), D(0))


def test_a_stop_limit_acceptance_keeps_its_price_and_trigger_apart() -> None:
    sim = _sim()
    last = sim.quote(SYMBOL).last
    stop, limit = last + D("100.00"), last + D("150.00")
    (accepted,) = sim.submit(
        "st1",
        SYMBOL,
        Side.BUY,
        OrderType.STOP_LIMIT,
        D("0.001"),
        price=limit,
        stop_price=stop,
        time_in_force=TimeInForce.DAY,
    )
    assert accepted == SimAccepted(
        client_order_id="st1",
        venue_order_id=_venue_id(sim, "st1"),
        symbol=SYMBOL,
        side=Side.BUY,
        order_type=OrderType.STOP_LIMIT,
        time_in_force=TimeInForce.DAY,
        quantity=D("0.001"),
        price=limit,
        stop_price=stop,
        ts_ns=NOW,
    )


def test_a_partial_maker_fill_reports_what_is_left() -> None:
    sim = _sim()
    last = sim.quote(SYMBOL).last
    level = paper_sim_config().level_quantity_for(SYMBOL)
    quantity = level + D("0.3")
    price = last - D("10.00")
    sim.submit("m1", SYMBOL, Side.BUY, OrderType.LIMIT, quantity, price=price)
    (fill,) = [e for e in sim.set_price(SYMBOL, price - D("50.00")) if isinstance(e, SimFill)]
    maker_bps = paper_sim_config().maker_commission_bps
    assert fill == SimFill(
        trade_id=1,
        venue_order_id=_venue_id(sim, "m1"),
        client_order_id="m1",
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=level,
        price=price,
        commission=price * level * maker_bps / D(10000),
        commission_asset="USDT",
        is_maker=True,
        cumulative_quantity=level,
        leaves_quantity=D("0.3"),
        ts_ns=NOW,
    )
    assert fill.order_status is SimOrderStatus.PARTIALLY_FILLED


def test_the_callers_decimal_context_comes_back_untouched() -> None:
    sim = _sim()
    with decimal.localcontext() as mine:
        mine.prec = 5
        sim.submit("b1", SYMBOL, Side.BUY, OrderType.MARKET, D("0.001"))
        assert decimal.getcontext() is mine and mine.prec == 5
        with pytest.raises(KeyError):
            sim.quote("NOPE")
        assert decimal.getcontext() is mine and mine.prec == 5
    # Exact even so: a five-digit context would have rounded this notional.
    fill = sim.fills()[-1]
    assert fill.commission == fill.price * D("0.001") * D(10) / D(10000)


def test_the_token_bucket_still_checks_every_amount_but_its_default() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, 5.0, monotonic=lambda: now[0])
    assert bucket.try_acquire()
    assert bucket.try_acquire(1)
    assert bucket.try_acquire(2.5)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="must be finite and > 0"):
            bucket.try_acquire(bad)
    assert bucket.available() == pytest.approx(0.5)
    assert not bucket.try_acquire()
    now[0] = 0.05
    assert bucket.try_acquire()
