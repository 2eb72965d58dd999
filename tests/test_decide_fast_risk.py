"""The risk guard's fast decision: ``RiskEngine.screen_submit`` and the checks it skips.

``screen_submit`` is ``check_submit`` for the guard, which reads an approval
only for its state change: None for a plain approval, the decision
``check_submit`` gives otherwise. And a check whose limits are all unset is no
longer called (``_Limited``): it could never deny. Both must leave every
answer, reason, counter and state exactly as before; these tests hold them to
an engine that calls every check (the old sequence) on random limits, states,
books and orders.
"""

from __future__ import annotations

import decimal
import itertools
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The engine, its limits and the flags of what they configure are internal:
# these tests pin the guard's fast path against the full check sequence.
from tradenode.actors._capabilities import VenueCapabilities
from tradenode.actors._risk_limits import InstrumentRules, OpenOrders, RiskContext, RiskLimits
from tradenode.actors._risk_rules import RiskDecision, RiskEngine, _Limited
from tradenode.messages import OrderType, Side, SubmitOrder, TimeInForce, TradingState

D = Decimal
VENUE, SYMBOL = "paper", "BTCUSDT"
KEY = (VENUE, SYMBOL)
START_NS = 1_700_000_000_000_000_000

_ids = itertools.count()

_RULES = InstrumentRules(
    SYMBOL,
    tick_size=D("0.5"),
    lot_size=D("0.1"),
    min_quantity=D("0.1"),
    min_notional=D("20"),
    max_quantity=D("5"),
)

_EVERY_CHECK = _Limited(instruments=True, per_order=True, books=True, open_orders=True, loss=True)


class _Clock:
    def __init__(self) -> None:
        self.now = START_NS

    def __call__(self) -> int:
        return self.now


def _order(side: Side, quantity: str, price: str | None, **extra: Any) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=f"f{next(_ids)}",
        strategy_id="s1",
        venue=VENUE,
        symbol=SYMBOL,
        side=side,
        order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        quantity=D(quantity),
        price=None if price is None else D(price),
        **extra,
    )


def _ctx(
    position: str, buys: str, sells: str, *, count: int, last: str | None, pnl: str
) -> RiskContext:
    return RiskContext(
        positions={KEY: D(position), ("paper", "ETHUSDT"): D("2")},
        open_orders={KEY: OpenOrders(D(buys), D(sells), count)},
        last_prices={KEY: None if last is None else D(last), ("paper", "ETHUSDT"): D("10")},
        daily_pnl=D(pnl),
        equity=D(pnl),
        peak_equity=D(pnl) + D(3),
    )


_LIMITS = {
    "max_order_quantity": st.sampled_from([D("0.5"), D("3")]),
    "max_order_notional": st.sampled_from([D("40"), D("1000")]),
    "max_position_quantity": st.sampled_from([D("1"), D("4")]),
    "max_symbol_exposure": st.sampled_from([D("150"), D("10000")]),
    "max_total_exposure": st.sampled_from([D("200"), D("10000")]),
    "max_open_orders": st.sampled_from([1, 5]),
    "max_orders_per_second": st.sampled_from([1.0, 50.0]),
    "daily_loss_limit": st.sampled_from([D("1"), D("100")]),
    "max_drawdown": st.sampled_from([D("2"), D("100")]),
    "price_collar_bps": st.sampled_from([D("10"), D("500")]),
    "duplicate_window_ns": st.sampled_from([1_000, 10**9]),
    "instruments": st.sampled_from(
        [
            {SYMBOL: _RULES},
            {"ETHUSDT": replace(_RULES, symbol="ETHUSDT")},
        ]
    ),
}


@st.composite
def _limits(draw: st.DrawFn) -> RiskLimits:
    chosen = draw(st.sets(st.sampled_from(sorted(_LIMITS))))
    return RiskLimits(**{name: draw(_LIMITS[name]) for name in chosen})


_STEP = st.tuples(
    st.sampled_from(list(Side)),
    st.sampled_from(["0.1", "0.25", "1", "1", "2.5", "5"]),
    st.sampled_from([None, "99.5", "100", "100.25", "130"]),
    st.sampled_from([False, False, False, True]),  # reduce-only
    st.sampled_from(["-3", "-1", "0", "1", "3"]),  # position
    st.sampled_from(["0", "1"]),  # buys pending
    st.sampled_from(["0", "2"]),  # sells pending
    st.sampled_from([0, 1, 4]),  # open orders
    st.sampled_from([None, "100", "100"]),  # last price
    st.sampled_from(["-150", "-1.5", "0", "5"]),  # PnL
    st.sampled_from([0, 500, 2 * 10**9]),  # ns before this step
)

_VENUES = st.sampled_from(
    [
        None,
        None,
        None,
        VenueCapabilities(),
        VenueCapabilities(order_types=frozenset({OrderType.MARKET})),
        VenueCapabilities(time_in_force=frozenset({TimeInForce.IOC})),
        VenueCapabilities(fractional_quantity=False),
    ]
)


def _same(screened: RiskDecision | None, checked: RiskDecision) -> None:
    if screened is None:
        assert checked.approved and checked.state_change is None, checked
    else:
        assert screened == checked


@settings(max_examples=500, deadline=None)
@given(
    limits=_limits(),
    state=st.sampled_from([TradingState.ACTIVE] * 4 + [TradingState.REDUCING, TradingState.HALTED]),
    capabilities=_VENUES,
    steps=st.lists(_STEP, min_size=1, max_size=6),
)
def test_the_guards_screen_answers_as_the_full_check_sequence(
    limits: RiskLimits,
    state: TradingState,
    capabilities: VenueCapabilities | None,
    steps: list[tuple[Any, ...]],
) -> None:
    _compare(limits, state, capabilities, steps)


_PLAIN = (Side.BUY, "1", "100", False, "0", "0", "0", 0, "100", "0", 0)


@pytest.mark.parametrize(
    ("limits", "steps", "code"),
    [
        (RiskLimits(max_orders_per_second=1.0), [_PLAIN, _PLAIN], "RATE_LIMIT"),
        (
            RiskLimits(duplicate_window_ns=10**9),
            [_PLAIN, (*_PLAIN[:-1], 500)],
            "DUPLICATE_ORDER",
        ),
        (
            RiskLimits(instruments={SYMBOL: _RULES}),
            [(Side.BUY, "0.1", "100", False, "0", "0", "0", 0, "100", "0", 0)],
            "MIN_NOTIONAL",
        ),
        (
            RiskLimits(max_drawdown=D(2)),
            [(Side.BUY, "1", "100", False, "0", "0", "0", 0, "100", "-5", 0)],
            "MAX_DRAWDOWN",
        ),
    ],
)
def test_each_stateful_or_rare_denial_is_the_same(
    limits: RiskLimits, steps: list[tuple[Any, ...]], code: str
) -> None:
    codes = _compare(limits, TradingState.ACTIVE, None, steps)
    assert codes[-1] == code


def _compare(
    limits: RiskLimits,
    state: TradingState,
    capabilities: VenueCapabilities | None,
    steps: list[tuple[Any, ...]],
) -> list[str | None]:
    """Each step through an engine calling every check, one skipping the unset ones,
    and the guard's screen; the same answers, counters and state after each. The
    codes given, in order."""
    clock = _Clock()
    full, lean, screen = (RiskEngine(limits, now_ns=clock) for _ in range(3))
    # The old sequence: every check called, each returning at once when unset.
    object.__setattr__(full, "_limited", _EVERY_CHECK)
    for engine in (full, lean, screen):
        if state is not TradingState.ACTIVE:
            engine.set_state(state, "test", operator=True)
    codes: list[str | None] = []
    for side, quantity, price, reduce_only, position, buys, sells, count, last, pnl, wait in steps:
        clock.now += wait
        order = _order(side, quantity, price, reduce_only=reduce_only)
        ctx = _ctx(position, buys, sells, count=count, last=last, pnl=pnl)
        expected = full.check_submit(order, ctx, capabilities=capabilities)
        assert lean.check_submit(order, ctx, capabilities=capabilities) == expected
        _same(screen.screen_submit(order, ctx, capabilities), expected)
        for engine in (lean, screen):
            assert engine.counters() == full.counters()
            assert engine.approvals == full.approvals
            assert (engine.state, engine.state_reason) == (full.state, full.state_reason)
        codes.append(None if expected.code is None else expected.code.value)
    return codes


def test_a_plain_approval_is_none_and_counted() -> None:
    engine = RiskEngine(RiskLimits(), now_ns=_Clock())
    ctx = _ctx("0", "0", "0", count=0, last="100", pnl="0")
    assert engine.screen_submit(_order(Side.BUY, "1", None), ctx) is None
    assert engine.approvals == 1
    assert engine.counters() == {}


def test_an_approval_that_moves_the_state_is_answered_in_full() -> None:
    # A reducing order meets a fresh daily-loss breach: approved, and the state
    # moves to REDUCING, which the guard must announce.
    engine = RiskEngine(RiskLimits(daily_loss_limit=D(10)), now_ns=_Clock())
    ctx = _ctx("3", "0", "0", count=0, last="100", pnl="-20")
    decision = engine.screen_submit(_order(Side.SELL, "1", None), ctx)
    assert decision is not None and decision.approved
    assert decision.state_change is not None
    assert decision.state_change.state is TradingState.REDUCING
    assert decision.reason == "SELL 1 BTCUSDT at paper approved"


def test_input_that_skipped_validation_is_denied_not_raised() -> None:
    engine = RiskEngine(RiskLimits(), now_ns=_Clock())
    ctx = _ctx("0", "0", "0", count=0, last="100", pnl="0")
    for order, context, capabilities in (
        (object(), ctx, None),
        (_order(Side.BUY, "1", None), object(), None),
        (_order(Side.BUY, "1", None), ctx, object()),
    ):
        decision = engine.screen_submit(order, context, capabilities)  # type: ignore[arg-type]
        assert decision is not None and not decision.approved
        assert decision.code is not None and decision.code.value == "INVALID_ORDER"
    broken = _order(Side.BUY, "1", None)
    object.__setattr__(broken, "quantity", "1")  # a hand-built order that skipped validation
    decision = engine.screen_submit(broken, ctx)
    assert decision is not None and not decision.approved


def test_the_flags_follow_the_limits() -> None:
    assert _Limited.of(RiskLimits()) == _Limited(
        instruments=False, per_order=False, books=False, open_orders=False, loss=False
    )
    rules = _RULES
    for limits, flag in (
        (RiskLimits(instruments={SYMBOL: rules}), "instruments"),
        (RiskLimits(max_order_quantity=D(1)), "per_order"),
        (RiskLimits(max_order_notional=D(1)), "per_order"),
        (RiskLimits(price_collar_bps=D(1)), "per_order"),
        (RiskLimits(max_position_quantity=D(1)), "books"),
        (RiskLimits(max_symbol_exposure=D(1)), "books"),
        (RiskLimits(max_total_exposure=D(1)), "books"),
        (RiskLimits(max_position_pct=D("0.1"), capital=D(100)), "books"),
        (RiskLimits(max_open_orders=1), "open_orders"),
        (RiskLimits(daily_loss_limit=D(1)), "loss"),
        (RiskLimits(max_drawdown=D(1)), "loss"),
    ):
        flags = _Limited.of(limits)
        assert getattr(flags, flag), (limits, flag)
        assert (
            sum(
                getattr(flags, name)
                for name in ("instruments", "per_order", "books", "open_orders", "loss")
            )
            == 1
        ), (limits, flags)


def test_the_engine_decides_in_its_own_decimal_context_and_gives_the_callers_back() -> None:
    def broken_clock() -> int:
        raise RuntimeError("clock gone")

    limits = RiskLimits(max_order_notional=D("123456.789"))
    engine = RiskEngine(limits, now_ns=_Clock())
    broken = RiskEngine(limits, now_ns=broken_clock)
    order = _order(Side.BUY, "1.23456789", "100000.001")
    ctx = _ctx("0", "0", "0", count=0, last="100", pnl="0")
    with decimal.localcontext() as caller:
        # Three digits, and any rounding raises: the engine must not compute in this.
        caller.prec = 3
        caller.traps[decimal.Inexact] = True
        for decide in (
            lambda: engine.screen_submit(order, ctx),
            lambda: engine.check_submit(order, ctx),
        ):
            decision = decide()
            assert decision is not None and decision.code is not None
            assert decision.code.value == "MAX_ORDER_NOTIONAL"
            assert "notional 123456.79023456789 " in decision.reason
            assert decimal.getcontext() is caller
        for decide in (
            lambda: broken.screen_submit(order, ctx),
            lambda: broken.check_submit(order, ctx),
        ):
            decision = decide()
            assert decision is not None and decision.code is not None
            assert decision.code.value == "INVALID_ORDER"
            assert decimal.getcontext() is caller
