"""The risk guard's pure core: every denial at its boundary, the trading state, and throttles."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode import TradingStateTransitionError

# The risk engine is internal: unit-tested here.
from tradenode.actors._risk_limits import (
    InstrumentRules,
    OpenOrders,
    RiskContext,
    RiskLimits,
    VenueSymbol,
)
from tradenode.actors._risk_rules import (
    OPERATOR_ONLY_TRANSITIONS,
    RISK_DENIAL_CODES,
    TRADING_STATE_TRANSITIONS,
    RiskDecision,
    RiskEngine,
)
from tradenode.messages import (
    CancelAllOrders,
    CancelOrder,
    DenialCode,
    ModifyOrder,
    OrderType,
    PositionSnapshot,
    Side,
    SubmitOrder,
    TradingState,
    TradingStateChanged,
)

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
VENUE, SYMBOL = "paper", "BTCUSDT"
KEY: VenueSymbol = (VENUE, SYMBOL)
START_NS = 1_700_000_000_000_000_000
MS = 1_000_000

_ids = itertools.count()


class FakeClock:
    """Nanoseconds that move only when a test says so."""

    def __init__(self, now: int = START_NS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def make_order(
    side: Side = BUY,
    quantity: str = "1",
    price: str | None = "100",
    *,
    order_type: OrderType | None = None,
    symbol: str = SYMBOL,
    venue: str = VENUE,
    strategy_id: str = "s1",
    **extra: Any,
) -> SubmitOrder:
    if order_type is None:
        order_type = OrderType.MARKET if price is None else OrderType.LIMIT
    return SubmitOrder(
        client_order_id=f"o{next(_ids)}",
        strategy_id=strategy_id,
        venue=venue,
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=D(quantity),
        price=None if price is None else D(price),
        **extra,
    )


def make_ctx(
    position: str = "0",
    *,
    buys: str = "0",
    sells: str = "0",
    count: int | None = None,
    last: str | None = "100",
    pnl: str = "0",
    equity: str | None = None,
    peak: str | None = None,
    **extra: Any,
) -> RiskContext:
    orders = OpenOrders(D(buys), D(sells), count if count is not None else 0)
    return RiskContext(
        positions={KEY: D(position)},
        open_orders={KEY: orders},
        last_prices={KEY: None if last is None else D(last)},
        daily_pnl=D(pnl),
        equity=None if equity is None else D(equity),
        peak_equity=None if peak is None else D(peak),
        **extra,
    )


def make_engine(**limits: Any) -> tuple[RiskEngine, FakeClock]:
    clock = FakeClock()
    return RiskEngine(RiskLimits(**limits), now_ns=clock), clock


def approved(decision: RiskDecision) -> bool:
    assert decision.approved == (decision.code is None), decision
    return decision.approved


def denied(decision: RiskDecision, code: DenialCode) -> str:
    assert not decision.approved, decision
    assert decision.code is code, decision
    assert decision.reason
    return decision.reason


RULES = InstrumentRules(SYMBOL, D("0.01"), D("0.001"), D("0.002"), D("10"), D("50"))


# Approval and invalid input ---------------------------------------------------


def test_an_order_is_approved_when_no_limit_is_set() -> None:
    engine, _ = make_engine()
    decision = engine.check_submit(make_order(), make_ctx())
    assert approved(decision)
    assert decision.state_change is None
    assert engine.counters() == {}
    assert engine.approvals == 1


@pytest.mark.parametrize(
    ("order", "ctx"),
    [
        (None, make_ctx()),
        ("BUY 1 BTCUSDT", make_ctx()),
        (make_order(), None),
        (make_order(), {"positions": {}}),
    ],
)
def test_invalid_input_is_denied_not_raised(order: Any, ctx: Any) -> None:
    engine, _ = make_engine(max_order_quantity=D(5))
    reason = denied(engine.check_submit(order, ctx), DenialCode.INVALID_ORDER)
    assert "must be a" in reason
    assert approved(engine.check_submit(make_order(), make_ctx()))


def test_a_broken_clock_denies_with_invalid_order() -> None:
    def broken() -> int:
        raise RuntimeError("clock unplugged")

    engine = RiskEngine(RiskLimits(), now_ns=broken)
    reason = denied(engine.check_submit(make_order(), make_ctx()), DenialCode.INVALID_ORDER)
    assert "clock unplugged" in reason
    backwards = RiskEngine(RiskLimits(), now_ns=lambda: -1)
    denied(backwards.check_submit(make_order(), make_ctx()), DenialCode.INVALID_ORDER)


def test_an_order_that_skipped_validation_is_denied_not_raised() -> None:
    engine, _ = make_engine(max_order_notional=D(1000))
    sneaky = make_order()
    object.__setattr__(sneaky, "quantity", "lots")
    reason = denied(engine.check_submit(sneaky, make_ctx()), DenialCode.INVALID_ORDER)
    assert "TypeError" in reason


# Trading state ----------------------------------------------------------------


def test_halted_denies_every_order_but_never_a_cancel() -> None:
    engine, clock = make_engine()
    event = engine.set_state(HALTED, "kill switch", operator=True)
    assert event == TradingStateChanged(state=HALTED, reason="kill switch", ts_ns=clock.now)
    long_ten = make_ctx("10")
    reason = denied(engine.check_submit(make_order(BUY), long_ten), DenialCode.TRADING_HALTED)
    assert "kill switch" in reason
    denied(engine.check_submit(make_order(SELL, "1"), long_ten), DenialCode.TRADING_HALTED)
    original = make_order(SELL, "1")
    modify = ModifyOrder(
        client_order_id=original.client_order_id, venue=VENUE, symbol=SYMBOL, price=D("99")
    )
    denied(engine.check_modify(original, modify, long_ten), DenialCode.TRADING_HALTED)
    cancel = CancelOrder(client_order_id=original.client_order_id, venue=VENUE, symbol=SYMBOL)
    assert approved(engine.check_cancel(cancel, long_ten))
    assert approved(engine.check_cancel(CancelAllOrders()))
    assert approved(engine.check_cancel())
    engine.set_state(ACTIVE, "operator resumes", operator=True)
    assert approved(engine.check_submit(make_order(BUY), long_ten))


def test_reducing_admits_only_orders_that_shrink_the_position() -> None:
    engine, _ = make_engine()
    engine.set_state(REDUCING, "end of day")
    long_ten = make_ctx("10")
    assert approved(engine.check_submit(make_order(SELL, "10"), long_ten))
    reason = denied(engine.check_submit(make_order(SELL, "10.5"), long_ten), DenialCode.REDUCE_ONLY)
    assert "end of day" in reason
    assert "position 10" in reason
    denied(engine.check_submit(make_order(BUY, "1"), long_ten), DenialCode.REDUCE_ONLY)
    denied(engine.check_submit(make_order(SELL, "1"), make_ctx("0")), DenialCode.REDUCE_ONLY)
    denied(engine.check_submit(make_order(BUY, "1"), make_ctx("0")), DenialCode.REDUCE_ONLY)
    short_five = make_ctx("-5")
    assert approved(engine.check_submit(make_order(BUY, "5", None), short_five))
    denied(engine.check_submit(make_order(BUY, "6"), short_five), DenialCode.REDUCE_ONLY)
    denied(engine.check_submit(make_order(SELL, "1"), short_five), DenialCode.REDUCE_ONLY)
    assert approved(engine.check_cancel(CancelAllOrders()))


def test_reducing_counts_orders_already_pending_on_the_same_side() -> None:
    engine, _ = make_engine()
    engine.set_state(REDUCING, "risk officer")
    ctx = make_ctx("10", sells="4", buys="100", count=2)
    assert approved(engine.check_submit(make_order(SELL, "6"), ctx))
    reason = denied(engine.check_submit(make_order(SELL, "6.001"), ctx), DenialCode.REDUCE_ONLY)
    assert "already pending SELL 4" in reason


def test_reduce_only_orders_that_would_add_exposure_are_denied_when_active() -> None:
    engine, _ = make_engine()
    long_ten = make_ctx("10")
    assert approved(engine.check_submit(make_order(SELL, "10", reduce_only=True), long_ten))
    reason = denied(
        engine.check_submit(make_order(SELL, "11", reduce_only=True), long_ten),
        DenialCode.REDUCE_ONLY,
    )
    assert reason.startswith("reduce-only order")
    denied(
        engine.check_submit(make_order(BUY, "1", reduce_only=True), long_ten),
        DenialCode.REDUCE_ONLY,
    )
    assert approved(engine.check_submit(make_order(BUY, "1"), long_ten))


def test_state_transition_table() -> None:
    assert TRADING_STATE_TRANSITIONS[ACTIVE] == {REDUCING, HALTED}
    assert TRADING_STATE_TRANSITIONS[REDUCING] == {ACTIVE, HALTED}
    assert TRADING_STATE_TRANSITIONS[HALTED] == {ACTIVE, REDUCING}
    assert {(HALTED, ACTIVE), (HALTED, REDUCING)} == OPERATOR_ONLY_TRANSITIONS
    engine, clock = make_engine()
    assert engine.state is ACTIVE
    assert engine.set_state(ACTIVE, "again") is None
    assert engine.set_state(REDUCING, "wind down") is not None
    assert engine.set_state(ACTIVE, "wound down") is not None
    clock.advance(5)
    halted = engine.set_state(HALTED, "breaker")
    assert halted == TradingStateChanged(state=HALTED, reason="breaker", ts_ns=START_NS + 5)
    for target in (ACTIVE, REDUCING):
        with pytest.raises(TradingStateTransitionError, match="operator"):
            engine.set_state(target, "automatic resume")
    assert engine.state is HALTED
    assert engine.state_reason == "breaker"
    assert engine.set_state(REDUCING, "operator", operator=True) is not None
    with pytest.raises(ValueError, match="reason"):
        engine.set_state(ACTIVE, "  ")
    with pytest.raises(TypeError):
        engine.set_state("ACTIVE", "typo")  # type: ignore[arg-type]


# Instrument rules --------------------------------------------------------------


def test_unknown_instrument_is_denied_only_when_instruments_are_configured() -> None:
    engine, _ = make_engine(instruments={SYMBOL: RULES})
    assert approved(engine.check_submit(make_order(quantity="0.5"), make_ctx()))
    other = make_order(symbol="DOGEUSDT")
    reason = denied(engine.check_submit(other, make_ctx()), DenialCode.UNKNOWN_INSTRUMENT)
    assert "DOGEUSDT" in reason
    bare, _ = make_engine()
    assert approved(bare.check_submit(other, make_ctx()))


def test_tick_size_applies_to_limit_and_stop_prices() -> None:
    engine, _ = make_engine(instruments={SYMBOL: RULES})
    assert approved(engine.check_submit(make_order(price="100.01"), make_ctx()))
    reason = denied(
        engine.check_submit(make_order(price="100.005"), make_ctx()), DenialCode.TICK_SIZE
    )
    assert reason == "price 100.005 is not a multiple of tick_size 0.01 for BTCUSDT"
    stop = make_order(price=None, order_type=OrderType.STOP, stop_price=D("99.999"))
    denied(engine.check_submit(stop, make_ctx()), DenialCode.TICK_SIZE)
    assert approved(engine.check_submit(replace(stop, stop_price=D("99.99")), make_ctx()))


@pytest.mark.parametrize(
    ("quantity", "allowed", "why"),
    [
        ("0.1235", False, "multiple of lot_size"),
        ("0.124", True, ""),
        ("0.001", False, "below min_quantity"),
        ("0.002", True, ""),
        ("50", True, ""),
        ("50.001", False, "max_quantity"),
    ],
)
def test_lot_size_minimum_and_maximum_quantity(quantity: str, allowed: bool, why: str) -> None:
    engine, _ = make_engine(instruments={SYMBOL: replace(RULES, min_notional=D(0))})
    decision = engine.check_submit(make_order(quantity=quantity), make_ctx())
    if allowed:
        assert approved(decision)
    else:
        assert why in denied(decision, DenialCode.LOT_SIZE)


def test_min_notional_uses_the_order_price_or_the_last_price() -> None:
    engine, _ = make_engine(instruments={SYMBOL: RULES})
    assert approved(engine.check_submit(make_order(quantity="0.1", price="100"), make_ctx()))
    reason = denied(
        engine.check_submit(make_order(quantity="0.099", price="100"), make_ctx()),
        DenialCode.MIN_NOTIONAL,
    )
    assert "notional 9.900 (quantity 0.099 x price 100) is below min_notional 10" in reason
    market = make_order(quantity="0.1", price=None)
    assert approved(engine.check_submit(market, make_ctx(last="100")))
    denied(engine.check_submit(market, make_ctx(last="99.99")), DenialCode.MIN_NOTIONAL)
    denied(engine.check_submit(market, make_ctx(last=None)), DenialCode.NO_MARKET_PRICE)


# Per-order limits ----------------------------------------------------------------


def test_max_order_quantity() -> None:
    engine, _ = make_engine(max_order_quantity=D(2))
    assert approved(engine.check_submit(make_order(quantity="2"), make_ctx()))
    reason = denied(
        engine.check_submit(make_order(quantity="5"), make_ctx()), DenialCode.MAX_ORDER_QUANTITY
    )
    assert reason == "quantity 5 exceeds max_order_quantity 2"


def test_max_order_notional_values_market_orders_at_the_last_price() -> None:
    engine, _ = make_engine(max_order_notional=D(1000))
    assert approved(engine.check_submit(make_order(quantity="10", price="100"), make_ctx()))
    reason = denied(
        engine.check_submit(make_order(quantity="10", price="100.01"), make_ctx()),
        DenialCode.MAX_ORDER_NOTIONAL,
    )
    assert "notional 1000.10" in reason
    assert "max_order_notional 1000" in reason
    market = make_order(quantity="10", price=None)
    assert approved(engine.check_submit(market, make_ctx(last="100")))
    denied(engine.check_submit(market, make_ctx(last="100.5")), DenialCode.MAX_ORDER_NOTIONAL)
    stop = make_order(quantity="10", price=None, order_type=OrderType.STOP, stop_price=D(101))
    denied(engine.check_submit(stop, make_ctx(last="50")), DenialCode.MAX_ORDER_NOTIONAL)


def test_max_order_notional_values_if_touched_orders_at_their_own_prices() -> None:
    engine, _ = make_engine(max_order_notional=D(1000))
    touched = make_order(
        quantity="10", price=None, order_type=OrderType.MARKET_IF_TOUCHED, stop_price=D(101)
    )
    denied(engine.check_submit(touched, make_ctx(last="50")), DenialCode.MAX_ORDER_NOTIONAL)
    assert approved(engine.check_submit(replace(touched, stop_price=D(99)), make_ctx(last="200")))
    limit = make_order(
        quantity="10", price="100", order_type=OrderType.LIMIT_IF_TOUCHED, stop_price=D(101)
    )
    assert approved(engine.check_submit(limit, make_ctx(last="200")))
    denied(
        engine.check_submit(replace(limit, price=D(101)), make_ctx()),
        DenialCode.MAX_ORDER_NOTIONAL,
    )


def test_no_market_price_when_a_notional_limit_cannot_be_evaluated() -> None:
    engine, _ = make_engine(max_order_notional=D(1000))
    market = make_order(price=None)
    reason = denied(engine.check_submit(market, make_ctx(last=None)), DenialCode.NO_MARKET_PRICE)
    assert "max_order_notional 1000" in reason
    trailing = make_order(
        price=None, order_type=OrderType.TRAILING_STOP, trailing_offset=D("5"), side=SELL
    )
    denied(engine.check_submit(trailing, make_ctx(last=None)), DenialCode.NO_MARKET_PRICE)
    assert approved(engine.check_submit(market, make_ctx(last="100")))
    assert approved(engine.check_submit(make_order(), make_ctx(last=None)))
    unlimited, _ = make_engine()
    assert approved(unlimited.check_submit(market, make_ctx(last=None)))


@pytest.mark.parametrize(
    ("price", "allowed"),
    [("101", True), ("101.01", False), ("99", True), ("98.99", False)],
)
def test_price_collar_is_symmetric_and_inclusive(price: str, allowed: bool) -> None:
    engine, _ = make_engine(price_collar_bps=D(100))
    decision = engine.check_submit(make_order(price=price), make_ctx(last="100"))
    if allowed:
        assert approved(decision)
    else:
        reason = denied(decision, DenialCode.PRICE_COLLAR)
        assert "101.00 bps from last price 100" in reason


def test_price_collar_needs_a_last_price_but_spares_market_orders() -> None:
    engine, _ = make_engine(price_collar_bps=D(100))
    denied(engine.check_submit(make_order(), make_ctx(last=None)), DenialCode.NO_MARKET_PRICE)
    assert approved(engine.check_submit(make_order(price=None), make_ctx(last=None)))


# Limits on the books ----------------------------------------------------------


def test_max_position_counts_pending_orders_on_the_same_side() -> None:
    engine, _ = make_engine(max_position_quantity=D(10))
    ctx = make_ctx("8", buys="1", sells="50", count=2)
    assert approved(engine.check_submit(make_order(BUY, "1"), ctx))
    reason = denied(engine.check_submit(make_order(BUY, "1.5"), ctx), DenialCode.MAX_POSITION)
    assert "position to 10.5" in reason
    assert "max_position_quantity 10" in reason
    short = make_ctx("-8", sells="1", count=1)
    assert approved(engine.check_submit(make_order(SELL, "1"), short))
    denied(engine.check_submit(make_order(SELL, "2"), short), DenialCode.MAX_POSITION)
    flip = make_ctx("5")
    assert approved(engine.check_submit(make_order(SELL, "15"), flip))
    denied(engine.check_submit(make_order(SELL, "15.1"), flip), DenialCode.MAX_POSITION)


def test_position_limits_never_block_a_reducing_order() -> None:
    engine, _ = make_engine(
        max_position_quantity=D(10), max_symbol_exposure=D(100), max_total_exposure=D(100)
    )
    over = make_ctx("50", last="100")
    assert approved(engine.check_submit(make_order(SELL, "20"), over))
    denied(engine.check_submit(make_order(BUY, "1"), over), DenialCode.MAX_POSITION)


def test_max_symbol_exposure_values_the_worst_case_at_the_last_price() -> None:
    engine, _ = make_engine(max_symbol_exposure=D(1000))
    ctx = make_ctx("8", buys="0", last="100")
    assert approved(engine.check_submit(make_order(BUY, "2", price="90"), ctx))
    reason = denied(engine.check_submit(make_order(BUY, "3"), ctx), DenialCode.MAX_EXPOSURE)
    assert "to 1100 (11 x 100)" in reason
    assert "max_symbol_exposure 1000" in reason
    no_last = make_ctx("8", last=None)
    assert approved(engine.check_submit(make_order(BUY, "2", price="100"), no_last))
    denied(
        engine.check_submit(make_order(BUY, "2", price=None), no_last), DenialCode.NO_MARKET_PRICE
    )


def test_max_total_exposure_sums_every_position_and_open_order() -> None:
    eth: VenueSymbol = (VENUE, "ETHUSDT")
    engine, _ = make_engine(max_total_exposure=D(1500))
    ctx = RiskContext(
        positions={KEY: D(5), eth: D(-2)},
        open_orders={eth: OpenOrders(D(0), D(3), 1)},
        last_prices={KEY: D(100), eth: D(100)},
    )
    # ETH's worst case is -2 - 3 = -5 (500); BTC at 5 + 5 = 10 (1000) reaches 1500 exactly.
    assert approved(engine.check_submit(make_order(BUY, "5"), ctx))
    reason = denied(engine.check_submit(make_order(BUY, "5.01"), ctx), DenialCode.MAX_EXPOSURE)
    assert "total exposure to 1501.00, beyond max_total_exposure 1500" in reason
    unpriced = replace(ctx, last_prices={KEY: D(100)})
    reason = denied(engine.check_submit(make_order(BUY, "1"), unpriced), DenialCode.NO_MARKET_PRICE)
    assert "ETHUSDT" in reason
    assert approved(engine.check_submit(make_order(SELL, "5"), unpriced))


def test_max_open_orders() -> None:
    engine, _ = make_engine(max_open_orders=4)
    assert approved(engine.check_submit(make_order(), make_ctx(count=3)))
    reason = denied(
        engine.check_submit(make_order(), make_ctx(count=4)), DenialCode.MAX_OPEN_ORDERS
    )
    assert reason == "4 orders are already open and max_open_orders is 4"
    explicit = make_ctx(count=1, open_order_count=4)
    denied(engine.check_submit(make_order(), explicit), DenialCode.MAX_OPEN_ORDERS)


def test_duplicate_orders_within_the_window_and_its_expiry() -> None:
    window = 50 * MS
    engine, clock = make_engine(duplicate_window_ns=window)
    first = make_order(BUY, "1", "100")
    assert approved(engine.check_submit(first, make_ctx()))
    clock.advance(window - 1)
    again = make_order(BUY, "1", "100")
    reason = denied(engine.check_submit(again, make_ctx()), DenialCode.DUPLICATE_ORDER)
    assert f"approved {window - 1} ns ago" in reason
    assert approved(engine.check_submit(make_order(BUY, "1", "100.5"), make_ctx()))
    assert approved(engine.check_submit(make_order(BUY, "1", "100", strategy_id="s2"), make_ctx()))
    clock.advance(1)
    assert approved(engine.check_submit(again, make_ctx()))


def test_a_denied_order_does_not_start_a_duplicate_window() -> None:
    engine, _ = make_engine(duplicate_window_ns=50 * MS, max_open_orders=1)
    order = make_order()
    denied(engine.check_submit(order, make_ctx(count=1)), DenialCode.MAX_OPEN_ORDERS)
    assert approved(engine.check_submit(order, make_ctx(count=0)))


# Loss limits ----------------------------------------------------------------------


def test_daily_loss_limit_switches_to_reducing_and_still_allows_reducing_orders() -> None:
    engine, clock = make_engine(daily_loss_limit=D(1000))
    assert approved(engine.check_submit(make_order(BUY), make_ctx("10", pnl="-999.99")))
    assert engine.state is ACTIVE
    breached = make_ctx("10", pnl="-1000")
    decision = engine.check_submit(make_order(BUY), breached)
    reason = denied(decision, DenialCode.DAILY_LOSS_LIMIT)
    assert "daily PnL -1000 is at or below -daily_loss_limit 1000" in reason
    assert decision.state_change is not None
    assert decision.state_change.state is REDUCING
    assert decision.state_change.ts_ns == clock.now
    assert engine.state is REDUCING
    reducing = engine.check_submit(make_order(SELL, "4"), breached)
    assert approved(reducing)
    assert reducing.state_change is None
    denied(engine.check_submit(make_order(BUY), breached), DenialCode.REDUCE_ONLY)
    recovered = make_ctx("10", pnl="500")
    denied(engine.check_submit(make_order(BUY), recovered), DenialCode.REDUCE_ONLY)
    assert engine.state is REDUCING


def test_a_reducing_order_that_meets_a_fresh_breach_is_approved_and_switches_state() -> None:
    engine, _ = make_engine(daily_loss_limit=D(1000))
    decision = engine.check_submit(make_order(SELL, "4"), make_ctx("10", pnl="-2000"))
    assert approved(decision)
    assert decision.state_change is not None
    assert engine.state is REDUCING


def test_max_drawdown_from_peak_equity() -> None:
    engine, _ = make_engine(max_drawdown=D(1000))
    fine = make_ctx("0", equity="9000.01", peak="10000")
    assert approved(engine.check_submit(make_order(BUY), fine))
    breached = make_ctx("10", equity="9000", peak="10000")
    reason = denied(engine.check_submit(make_order(BUY), breached), DenialCode.MAX_DRAWDOWN)
    assert "drawdown 1000 from peak equity 10000 (equity 9000) reaches max_drawdown 1000" in reason
    assert engine.state is REDUCING
    assert approved(engine.check_submit(make_order(SELL, "10"), breached))


def test_unknown_equity_refuses_new_exposure_without_switching_state() -> None:
    engine, _ = make_engine(max_drawdown=D(1000))
    unknown = make_ctx("10")
    reason = denied(engine.check_submit(make_order(BUY), unknown), DenialCode.MAX_DRAWDOWN)
    assert "equity is unknown" in reason
    assert engine.state is ACTIVE
    assert approved(engine.check_submit(make_order(SELL, "1"), unknown))


def test_loss_breach_can_halt_and_then_nothing_passes() -> None:
    engine, _ = make_engine(max_drawdown=D(1000), on_loss_breach=HALTED)
    breached = make_ctx("10", equity="8000", peak="10000")
    decision = engine.check_submit(make_order(SELL, "1"), breached)
    denied(decision, DenialCode.MAX_DRAWDOWN)
    assert decision.state_change is not None
    assert decision.state_change.state is HALTED
    denied(engine.check_submit(make_order(SELL, "1"), breached), DenialCode.TRADING_HALTED)
    assert approved(engine.check_cancel(CancelAllOrders()))


def test_update_loss_state_switches_without_an_order_and_only_escalates() -> None:
    engine, _ = make_engine(daily_loss_limit=D(100), on_loss_breach=HALTED)
    assert engine.update_loss_state(make_ctx(pnl="-99")) is None
    engine.set_state(REDUCING, "operator")
    event = engine.update_loss_state(make_ctx(pnl="-100"))
    assert event is not None
    assert event.state is HALTED
    assert engine.update_loss_state(make_ctx(pnl="-500")) is None
    mild, _ = make_engine(daily_loss_limit=D(100))
    mild.set_state(HALTED, "operator")
    assert mild.update_loss_state(make_ctx(pnl="-500")) is None
    assert mild.state is HALTED


# Rate throttle ----------------------------------------------------------------------


def test_rate_throttle_refills_with_injected_time() -> None:
    engine, clock = make_engine(max_orders_per_second=2, order_burst=2)
    assert approved(engine.check_submit(make_order(), make_ctx()))
    assert approved(engine.check_submit(make_order(), make_ctx()))
    reason = denied(engine.check_submit(make_order(), make_ctx()), DenialCode.RATE_LIMIT)
    assert "next order is possible in 500000000 ns" in reason
    clock.advance(500 * MS - 1)
    denied(engine.check_submit(make_order(), make_ctx()), DenialCode.RATE_LIMIT)
    clock.advance(1)
    assert approved(engine.check_submit(make_order(), make_ctx()))
    denied(engine.check_submit(make_order(), make_ctx()), DenialCode.RATE_LIMIT)
    clock.advance(10_000 * MS)
    results = [approved(engine.check_submit(make_order(), make_ctx())) for _ in range(3)]
    assert results == [True, True, False]


def test_only_an_otherwise_approved_order_spends_a_token() -> None:
    engine, _ = make_engine(max_orders_per_second=D("0.5"), max_order_quantity=D(1))
    assert engine.limits.burst == 1
    for _ in range(5):
        denied(
            engine.check_submit(make_order(quantity="2"), make_ctx()), DenialCode.MAX_ORDER_QUANTITY
        )
    assert approved(engine.check_submit(make_order(), make_ctx()))
    denied(engine.check_submit(make_order(), make_ctx()), DenialCode.RATE_LIMIT)


def test_a_clock_that_steps_back_refills_nothing() -> None:
    engine, clock = make_engine(max_orders_per_second=1)
    assert approved(engine.check_submit(make_order(), make_ctx()))
    clock.advance(-5_000 * MS)
    denied(engine.check_submit(make_order(), make_ctx()), DenialCode.RATE_LIMIT)
    clock.advance(5_000 * MS + 1_000 * MS)
    assert approved(engine.check_submit(make_order(), make_ctx()))


# Check order and counters ------------------------------------------------------------


def test_the_first_failing_check_names_the_denial() -> None:
    engine, _ = make_engine(instruments={SYMBOL: RULES}, max_order_quantity=D(1), max_open_orders=1)
    bad_everything = make_order(quantity="2.0005", price="100.001")
    denied(engine.check_submit(bad_everything, make_ctx(count=5)), DenialCode.TICK_SIZE)
    bad_lot = make_order(quantity="2.0005", price="100")
    denied(engine.check_submit(bad_lot, make_ctx(count=5)), DenialCode.LOT_SIZE)
    too_big = make_order(quantity="2", price="100")
    denied(engine.check_submit(too_big, make_ctx(count=5)), DenialCode.MAX_ORDER_QUANTITY)
    engine.set_state(HALTED, "stop")
    denied(engine.check_submit(bad_everything, make_ctx(count=5)), DenialCode.TRADING_HALTED)


def test_counters_count_denials_per_code() -> None:
    engine, _ = make_engine(max_order_quantity=D(1))
    for _ in range(3):
        engine.check_submit(make_order(quantity="2"), make_ctx())
    engine.check_submit(None, make_ctx())  # type: ignore[arg-type]
    engine.check_submit(make_order(), make_ctx())
    counts = engine.counters()
    assert counts == {DenialCode.MAX_ORDER_QUANTITY: 3, DenialCode.INVALID_ORDER: 1}
    counts[DenialCode.MAX_ORDER_QUANTITY] = 0
    assert engine.counters()[DenialCode.MAX_ORDER_QUANTITY] == 3
    assert engine.approvals == 1


def test_risk_denial_codes_leave_the_venue_codes_to_others() -> None:
    others = set(DenialCode) - RISK_DENIAL_CODES
    assert others == {
        DenialCode.VENUE_UNAVAILABLE,
        DenialCode.CIRCUIT_OPEN,
        DenialCode.VENUE_REJECTED,
        DenialCode.UNKNOWN_ORDER,
        # The router's (execution modes, approvals, routing), never the risk engine's.
        DenialCode.APPROVAL_TIMEOUT,
        DenialCode.APPROVAL_REJECTED,
        DenialCode.NO_ROUTE,
    }


def test_decision_invariants_and_denial_event() -> None:
    with pytest.raises(ValueError, match="contradicts"):
        RiskDecision(True, DenialCode.RATE_LIMIT, "x")
    with pytest.raises(ValueError, match="contradicts"):
        RiskDecision(False, None, "x")
    order = make_order()
    denial = RiskDecision(False, DenialCode.RATE_LIMIT, "slow down").denial(order, 7)
    assert (denial.client_order_id, denial.strategy_id) == (order.client_order_id, "s1")
    assert (denial.code, denial.reason, denial.ts_ns) == (DenialCode.RATE_LIMIT, "slow down", 7)
    with pytest.raises(ValueError, match="approved"):
        RiskDecision(True, None, "ok").denial(order)


# Modifications ------------------------------------------------------------------------


def _modify(original: SubmitOrder, **changes: Any) -> ModifyOrder:
    return ModifyOrder(
        client_order_id=original.client_order_id,
        venue=original.venue,
        symbol=original.symbol,
        **changes,
    )


def test_modify_rechecks_the_amended_order() -> None:
    engine, _ = make_engine(
        instruments={SYMBOL: RULES}, max_order_quantity=D(5), price_collar_bps=D(100)
    )
    original = make_order(BUY, "1", "100")
    ctx = make_ctx(buys="1", count=1)
    assert approved(engine.check_modify(original, _modify(original, quantity=D(5)), ctx))
    denied(
        engine.check_modify(original, _modify(original, quantity=D(6)), ctx),
        DenialCode.MAX_ORDER_QUANTITY,
    )
    denied(
        engine.check_modify(original, _modify(original, price=D("100.005")), ctx),
        DenialCode.TICK_SIZE,
    )
    denied(
        engine.check_modify(original, _modify(original, quantity=D("0.0005")), ctx),
        DenialCode.LOT_SIZE,
    )
    denied(
        engine.check_modify(original, _modify(original, price=D("102")), ctx),
        DenialCode.PRICE_COLLAR,
    )
    assert approved(engine.check_modify(original, _modify(original, price=D("101")), ctx))


def test_modify_does_not_count_the_original_twice() -> None:
    engine, _ = make_engine(max_position_quantity=D(10), max_symbol_exposure=D(1000))
    original = make_order(BUY, "10", "100")
    ctx = make_ctx("0", buys="10", count=1, last="100")
    assert approved(engine.check_modify(original, _modify(original, price=D("99")), ctx))
    assert approved(engine.check_modify(original, _modify(original, quantity=D(10)), ctx))
    denied(
        engine.check_modify(original, _modify(original, quantity=D(11)), ctx),
        DenialCode.MAX_POSITION,
    )


def test_modify_of_a_partly_filled_order_counts_only_what_can_still_fill() -> None:
    engine, _ = make_engine(max_position_quantity=D(10))
    original = make_order(BUY, "10", "100")
    # 6 of 10 filled: the position is 6 and 4 rest at the venue.
    ctx = make_ctx("6", buys="4", count=1)
    modify = _modify(original, quantity=D(10))
    assert approved(engine.check_modify(original, modify, ctx, leaves_quantity=D(4)))
    more = _modify(original, quantity=D("10.5"))
    denied(engine.check_modify(original, more, ctx, leaves_quantity=D(4)), DenialCode.MAX_POSITION)
    reason = denied(
        engine.check_modify(original, _modify(original, quantity=D(6)), ctx, leaves_quantity=D(4)),
        DenialCode.INVALID_ORDER,
    )
    assert "already filled" in reason
    denied(
        engine.check_modify(original, modify, ctx, leaves_quantity=D(11)),
        DenialCode.INVALID_ORDER,
    )


def test_modify_in_reducing_state_must_leave_a_reducing_order() -> None:
    engine, _ = make_engine()
    engine.set_state(REDUCING, "wind down")
    closing = make_order(SELL, "6", "100")
    ctx = make_ctx("10", sells="6", count=1)
    assert approved(engine.check_modify(closing, _modify(closing, quantity=D(10)), ctx))
    denied(
        engine.check_modify(closing, _modify(closing, quantity=D(11)), ctx),
        DenialCode.REDUCE_ONLY,
    )
    adding = make_order(BUY, "1", "100")
    denied(
        engine.check_modify(adding, _modify(adding, price=D(99)), make_ctx("10", buys="1")),
        DenialCode.REDUCE_ONLY,
    )


def test_modify_that_does_not_match_or_makes_no_sense_is_invalid() -> None:
    engine, _ = make_engine()
    original = make_order()
    stranger = ModifyOrder(client_order_id="other", venue=VENUE, symbol=SYMBOL, price=D(1))
    reason = denied(engine.check_modify(original, stranger, make_ctx()), DenialCode.INVALID_ORDER)
    assert "does not match" in reason
    market = make_order(price=None)
    reason = denied(
        engine.check_modify(market, _modify(market, price=D(100)), make_ctx()),
        DenialCode.INVALID_ORDER,
    )
    assert "MARKET order takes no price" in reason
    denied(
        engine.check_modify(original, None, make_ctx()),  # type: ignore[arg-type]
        DenialCode.INVALID_ORDER,
    )


def test_modify_spends_a_rate_token() -> None:
    engine, _ = make_engine(max_orders_per_second=1)
    original = make_order()
    ctx = make_ctx(buys="1", count=1)
    assert approved(engine.check_modify(original, _modify(original, price=D(99)), ctx))
    denied(
        engine.check_modify(original, _modify(original, price=D(98)), ctx), DenialCode.RATE_LIMIT
    )


# Limits and context ---------------------------------------------------------------------


def test_limits_refuse_floats_and_inconsistent_settings() -> None:
    with pytest.raises(ValueError, match="floats round"):
        RiskLimits(max_order_quantity=1.5)  # type: ignore[arg-type]
    assert RiskLimits(max_order_quantity=3).max_order_quantity == D(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="REDUCING or HALTED"):
        RiskLimits(on_loss_breach=ACTIVE)
    with pytest.raises(ValueError, match="needs max_orders_per_second"):
        RiskLimits(order_burst=3)
    with pytest.raises(ValueError, match="rules are for"):
        RiskLimits(instruments={"ETHUSDT": RULES})
    with pytest.raises(ValueError, match="max_open_orders"):
        RiskLimits(max_open_orders=0)
    with pytest.raises(ValueError, match="finite"):
        RiskLimits(max_orders_per_second=float("inf"))
    with pytest.raises(ValueError, match="greater than zero"):
        RiskLimits(daily_loss_limit=D(-5))
    with pytest.raises(ValueError, match="below min_quantity"):
        InstrumentRules(SYMBOL, D("0.01"), D("0.1"), D(5), D(0), max_quantity=D(1))
    with pytest.raises(ValueError, match="tick_size"):
        InstrumentRules(SYMBOL, D(0), D("0.1"), D(0), D(0))
    assert RiskLimits(max_orders_per_second=2.5).burst == 3
    assert RiskLimits().burst is None
    with pytest.raises(TypeError):
        RiskEngine(object(), now_ns=FakeClock())  # type: ignore[arg-type]


def test_context_is_a_frozen_validated_snapshot() -> None:
    source = {KEY: D(1)}
    ctx = RiskContext(positions=source, last_prices={KEY: None})
    source[KEY] = D(99)
    assert ctx.position(KEY) == D(1)
    assert ctx.last_price(KEY) is None
    assert ctx.total_open_orders() == 0
    with pytest.raises(TypeError):
        ctx.positions[KEY] = D(2)  # type: ignore[index]
    with pytest.raises(ValueError, match="venue, symbol"):
        RiskContext(positions={"BTCUSDT": D(1)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="floats round"):
        RiskContext(positions={KEY: 1.0})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="greater than zero"):
        RiskContext(last_prices={KEY: D(0)})
    with pytest.raises(ValueError, match="must not be negative"):
        OpenOrders(D(-1), D(0), 0)


def test_context_from_books_and_with_open_order() -> None:
    orders = [(make_order(BUY, "3"), D(2)), (make_order(SELL, "1"), D(1))]
    snapshots = [
        PositionSnapshot(venue=VENUE, symbol=SYMBOL, quantity=D(4), strategy_id="a"),
        PositionSnapshot(venue=VENUE, symbol=SYMBOL, quantity=D(-1), strategy_id="b"),
    ]
    ctx = RiskContext.from_books(
        positions=snapshots, open_orders=orders, last_prices={KEY: D(100)}, daily_pnl=D(-5)
    )
    assert ctx.position(KEY) == D(3)
    assert ctx.orders(KEY) == OpenOrders(D(2), D(1), 2)
    assert ctx.total_open_orders() == 2
    more = ctx.with_open_order(make_order(SELL, "2"))
    assert more.orders(KEY) == OpenOrders(D(2), D(3), 3)
    assert more.total_open_orders() == 3
    assert (more.daily_pnl, more.last_price(KEY)) == (D(-5), D(100))


def test_approving_in_flight_orders_needs_them_in_the_context() -> None:
    engine, _ = make_engine()
    engine.set_state(REDUCING, "wind down")
    ctx = make_ctx("10")
    first = make_order(SELL, "7")
    assert approved(engine.check_submit(first, ctx))
    second = make_order(SELL, "7", "101")
    denied(engine.check_submit(second, ctx.with_open_order(first)), DenialCode.REDUCE_ONLY)


# The REDUCING guarantee, for any sequence ------------------------------------------------

KEYS: tuple[VenueSymbol, ...] = ((VENUE, "BTC"), (VENUE, "ETH"), ("other", "BTC"))

_submit = st.tuples(
    st.just("submit"),
    st.sampled_from(KEYS),
    st.sampled_from(list(Side)),
    st.integers(1, 12),
    st.booleans(),
)
_fill = st.tuples(st.just("fill"), st.integers(0, 60), st.integers(1, 12))
_cancel = st.tuples(st.just("cancel"), st.integers(0, 60))


def _context(positions: dict[VenueSymbol, Decimal], pending: Iterable[list[Any]]) -> RiskContext:
    open_orders: dict[VenueSymbol, OpenOrders] = {}
    for key, side, leaves in pending:
        open_orders[key] = open_orders.get(key, OpenOrders()).plus(side, leaves)
    return RiskContext(
        positions=positions,
        open_orders=open_orders,
        last_prices=dict.fromkeys(KEYS, D(100)),
    )


@settings(max_examples=150, deadline=None)
@given(
    start=st.tuples(*(st.integers(-15, 15) for _ in KEYS)),
    operations=st.lists(st.one_of(_submit, _submit, _fill, _cancel), min_size=4, max_size=40),
)
def test_reducing_never_lets_any_position_grow(
    start: tuple[int, ...], operations: list[tuple[Any, ...]]
) -> None:
    engine, _ = make_engine(max_position_quantity=D(100))
    engine.set_state(REDUCING, "property")
    initial = {key: D(value) for key, value in zip(KEYS, start, strict=True)}
    positions = dict(initial)
    pending: list[list[Any]] = []
    for operation in operations:
        if operation[0] == "submit":
            _, key, side, quantity, is_market = operation
            order = make_order(
                side,
                str(quantity),
                None if is_market else "100",
                venue=key[0],
                symbol=key[1],
            )
            if engine.check_submit(order, _context(positions, pending)).approved:
                pending.append([key, side, D(quantity)])
        elif operation[0] == "fill" and pending:
            entry = pending[operation[1] % len(pending)]
            filled = min(entry[2], D(operation[2]))
            positions[entry[0]] += entry[1].sign * filled
            entry[2] -= filled
            if entry[2] == 0:
                pending.remove(entry)
        elif operation[0] == "cancel" and pending:
            pending.pop(operation[1] % len(pending))
        # Whatever fills next, in any order, no position may leave [0, start].
        for key in KEYS:
            buys = sum((leaves for k, s, leaves in pending if k == key and s is BUY), D(0))
            sells = sum((leaves for k, s, leaves in pending if k == key and s is SELL), D(0))
            low, high = sorted((D(0), initial[key]))
            assert low <= positions[key] - sells
            assert positions[key] + buys <= high


@settings(max_examples=100, deadline=None)
@given(
    side=st.sampled_from(list(Side)),
    quantity=st.decimals(min_value=D("1e-30"), max_value=D("1e30"), allow_nan=False),
    price=st.decimals(min_value=D("1e-30"), max_value=D("1e30"), allow_nan=False),
    position=st.decimals(min_value=D("-1e30"), max_value=D("1e30"), allow_nan=False),
)
def test_checks_never_raise(
    side: Side, quantity: Decimal, price: Decimal, position: Decimal
) -> None:
    engine, _ = make_engine(
        instruments={SYMBOL: RULES},
        max_order_notional=D(10**6),
        max_total_exposure=D(10**6),
        price_collar_bps=D(50),
        daily_loss_limit=D(1),
        max_orders_per_second=5,
    )
    order = make_order(side, str(quantity), str(price))
    ctx = make_ctx(str(position), last=str(price), pnl="-0.5")
    decision = engine.check_submit(order, ctx)
    assert decision.approved == (decision.code is None)
    modify = engine.check_modify(order, _modify(order, quantity=quantity + 1), ctx)
    assert modify.approved == (modify.code is None)
