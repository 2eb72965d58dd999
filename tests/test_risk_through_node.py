"""The risk guard inside a running node: every denial code a strategy can meet, end to end.

Each test starts a node on the two paper venues with a ``risk:`` section and
drives a scripted strategy at the message level. A denied order must come
back to its strategy as ``OrderDenied`` with the exact code and a reason a
person can read, be DENIED in the OMS, and never reach a venue; the order
just inside a limit must pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from tradenode.actors import GetRiskStatus, SetTradingState, StrategyContext

# Which denial codes are the guard's own is internal.
from tradenode.actors._risk_rules import RISK_DENIAL_CODES
from tradenode.messages import (
    DenialCode,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
    TradingStateChanged,
)

from ._node_helpers import Harness, running_node

BUY, SELL = Side.BUY, Side.SELL
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED

#: The paper venues' BTCUSDT filters, as a venue would publish them.
BTC_RULES = '{tick_size: "0.01", lot_size: "0.0001", min_quantity: "0.0001", min_notional: "5"}'


def risk(section: str) -> str:
    """The YAML appended to the harness's base config (which ends with a newline)."""
    return f"risk: {section}\n"


@dataclass(frozen=True)
class Order:
    """One order a strategy sends; LIMIT when it has a price, else MARKET."""

    side: Side
    quantity: str
    price: str | None = None
    symbol: str = "BTCUSDT"
    venue: str = "paper"
    reduce_only: bool = False
    time_in_force: TimeInForce = TimeInForce.GTC

    def __call__(self, ctx: StrategyContext) -> str:
        return ctx.submit_order(
            self.symbol,
            self.side,
            D(self.quantity),
            order_type=OrderType.MARKET if self.price is None else OrderType.LIMIT,
            price=None if self.price is None else D(self.price),
            reduce_only=self.reduce_only,
            time_in_force=self.time_in_force,
            venue=self.venue,
        )

    def __str__(self) -> str:
        at = "MKT" if self.price is None else self.price
        return f"{self.side.value}-{self.quantity}-{self.symbol}@{at}-{self.venue}"


def set_price(h: Harness, venue: str, symbol: str, price: str) -> None:
    """Move a paper price and let the resulting quote reach the OMS and the risk guard."""
    h.strategy()
    h.sync()
    h.node.venues[venue].set_price(symbol, D(price))
    h.sync()


def state_changes(h: Harness, state: TradingState, count: int = 1) -> list[TradingStateChanged]:
    return h.events().wait_for(
        lambda m: isinstance(m, TradingStateChanged) and m.state is state, count=count
    )


def risk_state(h: Harness) -> str:
    status = h.node.risk.ask(GetRiskStatus())
    assert isinstance(status, dict)
    return str(status["state"])


def assert_denied(h: Harness, coid: str, code: DenialCode, *words: str) -> OrderDenied:
    """The strategy hears the denial with ``code``; the OMS shows DENIED; no venue saw it."""
    denial = h.wait_for(OrderDenied, coid)[0]
    assert isinstance(denial, OrderDenied)
    assert denial.code is code, denial
    assert denial.strategy_id == "s1"
    reason = denial.reason
    assert isinstance(reason, str) and len(reason) > 20 and "Traceback" not in reason, reason
    for word in words:
        assert word in reason, (word, reason)
    view = h.order(coid)
    assert view.status is OrderStatus.DENIED
    for name, venue in h.node.venues.items():
        assert venue.order(coid) is None, f"{coid} reached {name}"
    return denial


def assert_passes(h: Harness, order: Order) -> str:
    """The order passes risk and is accepted by its venue."""
    coid = h.do(order)
    assert isinstance(coid, str)
    h.wait_for(OrderAccepted, coid)
    assert h.node.venues[order.venue].order(coid) is not None
    return coid


def fill(h: Harness, order: Order) -> str:
    coid = h.do(order)
    assert isinstance(coid, str)
    h.wait_status(coid, OrderStatus.FILLED)
    h.sync()
    return coid


# -- one denial per code, with the order just inside the limit ---------------------------


@dataclass(frozen=True)
class Case:
    code: DenialCode
    risk: str
    denied: Order
    words: tuple[str, ...]
    passes: tuple[Order, ...] = ()
    prices: tuple[tuple[str, str, str], ...] = ()


CASES: dict[str, Case] = {
    # The engine denies what it cannot evaluate rather than crash: a quantity
    # whose notional overflows even 60-digit arithmetic.
    "invalid-order-unevaluable": Case(
        DenialCode.INVALID_ORDER,
        "{max_order_notional: 1000000}",
        Order(BUY, "1E+999999", "40000.00"),
        ("could not be checked",),
        passes=(Order(BUY, "0.1", "40000.00"),),
    ),
    # The venue declares what it supports (VenueCapabilities): the simulator
    # has no auction orders.
    "unsupported-by-venue": Case(
        DenialCode.UNSUPPORTED_BY_VENUE,
        "{}",
        Order(BUY, "0.1", "40000.00", time_in_force=TimeInForce.OPG),
        ("venue paper", "time in force OPG", "supported: GTC, IOC, FOK, DAY, GTD"),
        passes=(Order(BUY, "0.1", "40000.00"),),
    ),
    "unknown-instrument": Case(
        DenialCode.UNKNOWN_INSTRUMENT,
        f"{{instruments: {{BTCUSDT: {BTC_RULES}}}}}",
        Order(BUY, "1", "2900.00", symbol="ETHUSDT"),
        ("ETHUSDT", "known: BTCUSDT"),
        passes=(Order(BUY, "0.1", "40000.00"),),
    ),
    "tick-size": Case(
        DenialCode.TICK_SIZE,
        f"{{instruments: {{BTCUSDT: {BTC_RULES}}}}}",
        Order(BUY, "0.1", "40000.005"),
        ("40000.005", "tick_size 0.01"),
        passes=(Order(BUY, "0.1", "40000.01"),),
    ),
    "lot-size": Case(
        DenialCode.LOT_SIZE,
        f"{{instruments: {{BTCUSDT: {BTC_RULES}}}}}",
        Order(BUY, "0.00015", "40000.00"),
        ("0.00015", "lot_size 0.0001"),
        passes=(Order(BUY, "0.0002", "40000.00"),),
    ),
    "min-quantity": Case(
        DenialCode.LOT_SIZE,
        '{instruments: {BTCUSDT: {tick_size: "0.01", lot_size: "0.0001", min_quantity: "0.001"}}}',
        Order(BUY, "0.0009", "40000.00"),
        ("below min_quantity 0.001",),
        passes=(Order(BUY, "0.001", "40000.00"),),
    ),
    "min-notional": Case(
        DenialCode.MIN_NOTIONAL,
        f"{{instruments: {{BTCUSDT: {BTC_RULES}}}}}",
        Order(BUY, "0.0001", "49999.99"),
        ("below min_notional 5",),
        passes=(Order(BUY, "0.0001", "50000.00"),),  # exactly 5
    ),
    "no-price-for-notional": Case(
        DenialCode.NO_MARKET_PRICE,
        "{max_order_notional: 100000}",
        Order(BUY, "0.1"),
        ("no last price", "max_order_notional"),
        passes=(Order(BUY, "0.1", "40000.00"),),  # a limit order values itself
    ),
    "no-price-for-collar": Case(
        DenialCode.NO_MARKET_PRICE,
        "{price_collar_bps: 100}",
        Order(BUY, "0.1", "49900.00"),
        ("no last price", "price_collar_bps"),
        passes=(Order(BUY, "0.1"),),  # a market order has no price to collar
    ),
    "max-order-quantity": Case(
        DenialCode.MAX_ORDER_QUANTITY,
        "{max_order_quantity: 1}",
        Order(BUY, "1.0001", "40000.00"),
        ("1.0001", "max_order_quantity 1"),
        passes=(Order(BUY, "1", "40000.00"),),
    ),
    "max-order-notional": Case(
        DenialCode.MAX_ORDER_NOTIONAL,
        "{max_order_notional: 20000}",
        Order(BUY, "0.5001", "40000.00"),
        ("20004", "max_order_notional 20000"),
        passes=(Order(BUY, "0.5", "40000.00"),),  # exactly 20000
    ),
    "price-collar-below": Case(
        DenialCode.PRICE_COLLAR,
        "{price_collar_bps: 100}",
        Order(BUY, "0.1", "49499.99"),
        ("last price 50000.00", "price_collar_bps 100"),
        passes=(Order(BUY, "0.1", "49500.00"), Order(SELL, "0.1", "50500.00")),  # exactly 100 bps
        prices=(("paper", "BTCUSDT", "50000.00"),),
    ),
    "price-collar-above": Case(
        DenialCode.PRICE_COLLAR,
        "{price_collar_bps: 100}",
        Order(SELL, "0.1", "50500.01"),
        ("last price 50000.00", "price_collar_bps 100"),
        passes=(Order(SELL, "0.1", "50500.00"),),
        prices=(("paper", "BTCUSDT", "50000.00"),),
    ),
    "max-position": Case(
        DenialCode.MAX_POSITION,
        "{max_position_quantity: 1}",
        Order(BUY, "0.0001", "40000.00"),
        ("1.0001", "max_position_quantity 1"),
        passes=(Order(BUY, "1", "40000.00"),),  # resting orders count at their worst case
    ),
    "max-symbol-exposure": Case(
        DenialCode.MAX_EXPOSURE,
        "{max_symbol_exposure: 50000}",
        Order(BUY, "0.0001", "40000.00"),
        ("max_symbol_exposure 50000",),
        passes=(Order(BUY, "1", "40000.00"),),  # 1 x last 50000.00
        prices=(("paper", "BTCUSDT", "50000.00"),),
    ),
    "max-total-exposure-across-venues": Case(
        DenialCode.MAX_EXPOSURE,
        "{max_total_exposure: 60000}",
        Order(BUY, "0.0001", "40000.00", venue="paper2"),
        ("max_total_exposure 60000",),
        passes=(
            Order(BUY, "1", "40000.00"),
            Order(BUY, "0.2", "40000.00", venue="paper2"),  # 50000 + 10000
        ),
        prices=(("paper", "BTCUSDT", "50000.00"), ("paper2", "BTCUSDT", "50000.00")),
    ),
    "max-open-orders": Case(
        DenialCode.MAX_OPEN_ORDERS,
        "{max_open_orders: 2}",
        Order(BUY, "0.3", "40000.00"),
        ("2 orders are already open", "max_open_orders is 2"),
        passes=(Order(BUY, "0.1", "40000.00"), Order(BUY, "0.2", "40000.00")),
    ),
    "duplicate-order": Case(
        DenialCode.DUPLICATE_ORDER,
        "{duplicate_window_ms: 500}",
        Order(BUY, "0.1", "40000.00"),
        ("identical order", "0 ns ago"),
        passes=(Order(BUY, "0.1", "40000.00"), Order(BUY, "0.2", "40000.00")),
    ),
    "rate-limit": Case(
        DenialCode.RATE_LIMIT,
        "{max_orders_per_second: 2, order_burst: 2}",
        Order(BUY, "0.3", "40000.00"),
        ("max_orders_per_second 2", "500000000 ns"),
        passes=(Order(BUY, "0.1", "40000.00"), Order(BUY, "0.2", "40000.00")),
    ),
    "reduce-only-flag-while-flat": Case(
        DenialCode.REDUCE_ONLY,
        "{}",
        Order(SELL, "0.1", reduce_only=True),
        ("reduce-only order", "would not reduce position 0"),
        passes=(Order(SELL, "0.1", "60000.00"),),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_limit_denies_with_its_code_and_passes_the_boundary_order(case: Case) -> None:
    with running_node(risk(case.risk)) as h:
        for venue, symbol, price in case.prices:
            set_price(h, venue, symbol, price)
        for order in case.passes:
            assert_passes(h, order)
        coid = h.do(case.denied)
        assert_denied(h, coid, case.code, *case.words)
        assert coid not in {o.client_order_id for o in h.open_orders()}
        status = h.node.risk.ask(GetRiskStatus())
        assert status["state"] == "ACTIVE"
        assert status["denials"] == {case.code.value: 1}


# -- the trading state -----------------------------------------------------------------


def test_reducing_admits_only_orders_that_reduce_and_the_operator_resumes() -> None:
    with running_node() as h:
        fill(h, Order(BUY, "0.5"))
        assert h.node.risk.ask(SetTradingState(REDUCING, "test")) is REDUCING
        change = state_changes(h, REDUCING)[0]
        assert change.reason == "test"
        assert risk_state(h) == "REDUCING"

        more = h.do(Order(BUY, "0.1"))
        assert_denied(h, more, DenialCode.REDUCE_ONLY, "trading is REDUCING (test)")
        through_zero = h.do(Order(SELL, "0.6"))
        assert_denied(h, through_zero, DenialCode.REDUCE_ONLY, "would not reduce position 0.5")

        reduce = fill(h, Order(SELL, "0.3"))
        assert h.order(reduce).filled_quantity == D("0.3")
        assert h.position("BTCUSDT") == h.node.venues["paper"].position("BTCUSDT") == D("0.2")

        assert h.node.risk.ask(SetTradingState(ACTIVE, "operator resumes")) is ACTIVE
        state_changes(h, ACTIVE)
        fill(h, Order(BUY, "0.1"))
        assert h.position("BTCUSDT") == D("0.3")
        assert risk_state(h) == "ACTIVE"


def test_halted_denies_everything_but_cancels_and_only_an_operator_resumes() -> None:
    with running_node() as h:
        fill(h, Order(BUY, "0.1"))
        resting = assert_passes(h, Order(BUY, "0.1", "40000.00"))
        assert h.node.risk.ask(SetTradingState(HALTED, "test halt")) is HALTED
        state_changes(h, HALTED)
        assert risk_state(h) == "HALTED"

        more = h.do(Order(BUY, "0.1"))
        assert_denied(h, more, DenialCode.TRADING_HALTED, "HALTED (test halt)")
        reducing = h.do(Order(SELL, "0.05"))
        assert_denied(h, reducing, DenialCode.TRADING_HALTED, "no orders are accepted")

        h.do(lambda ctx: ctx.modify_order(resting, price=D("41000.00")))
        refused = h.wait_for(ModifyRejected, resting)[0]
        assert refused.code == DenialCode.TRADING_HALTED.value
        assert h.order(resting).order.price == D("40000.00")

        h.do(lambda ctx: ctx.cancel_order(resting))
        h.wait_for(OrderCanceled, resting)
        assert h.wait_status(resting, OrderStatus.CANCELED).status is OrderStatus.CANCELED
        assert h.open_orders() == ()
        assert h.node.venues["paper"].open_orders() == []

        assert h.node.risk.ask(SetTradingState(ACTIVE, "operator resumes")) is ACTIVE
        state_changes(h, ACTIVE)
        fill(h, Order(BUY, "0.1"))
        assert h.position("BTCUSDT") == D("0.2")
        status = h.node.risk.ask(GetRiskStatus())
        assert status["state"] == "ACTIVE"
        assert status["denials"] == {"TRADING_HALTED": 3}  # two orders and the modify


# -- loss limits, driven by real fills and price moves ---------------------------------


LOSS_CASES = {
    "daily-loss": ("{daily_loss_limit: 100}", DenialCode.DAILY_LOSS_LIMIT, "daily PnL"),
    "drawdown": ("{max_drawdown: 100}", DenialCode.MAX_DRAWDOWN, "drawdown"),
}


def lose_money(h: Harness) -> None:
    """Buy 0.1 BTC at 50005 and mark it at 48000: about -200 unrealized, which the
    OMS re-values on the quote and the risk guard sees without waiting for a fill."""
    fill(h, Order(BUY, "0.1"))
    assert risk_state(h) == "ACTIVE"
    set_price(h, "paper", "BTCUSDT", "48000.00")
    h.sync()


@pytest.mark.parametrize(("section", "code", "word"), LOSS_CASES.values(), ids=LOSS_CASES.keys())
def test_a_loss_breach_switches_to_reducing_and_an_early_resume_is_refused_again(
    section: str, code: DenialCode, word: str
) -> None:
    with running_node(risk(section)) as h:
        lose_money(h)
        change = state_changes(h, REDUCING)[0]
        assert word in change.reason
        assert risk_state(h) == "REDUCING"
        status = h.node.risk.ask(GetRiskStatus())
        assert D(status["pnl"]) < D(-100)

        more = h.do(Order(BUY, "0.1"))
        assert_denied(h, more, DenialCode.REDUCE_ONLY, "trading is REDUCING", word)
        fill(h, Order(SELL, "0.05"))

        # An operator may resume, but the loss is still there: the next order that
        # adds exposure is denied by the loss limit itself and the state drops again.
        assert h.node.risk.ask(SetTradingState(ACTIVE, "operator resumes")) is ACTIVE
        state_changes(h, ACTIVE)
        again = h.do(Order(BUY, "0.1"))
        assert_denied(h, again, code, word, "only orders that reduce the position")
        state_changes(h, REDUCING, count=2)
        assert risk_state(h) == "REDUCING"
        fill(h, Order(SELL, "0.01"))
        assert h.position("BTCUSDT") == D("0.04")


def test_a_loss_breach_can_halt_and_then_even_reducing_orders_are_denied() -> None:
    with running_node(risk("{daily_loss_limit: 100, on_loss_breach: HALTED}")) as h:
        lose_money(h)
        assert "daily PnL" in state_changes(h, HALTED)[0].reason
        assert risk_state(h) == "HALTED"
        reducing = h.do(Order(SELL, "0.05"))
        assert_denied(h, reducing, DenialCode.TRADING_HALTED, "daily PnL")
        assert h.position("BTCUSDT") == D("0.1")


def test_a_price_move_alone_breaching_the_daily_loss_limit_switches_to_reducing() -> None:
    with running_node(risk("{daily_loss_limit: 100}")) as h:
        fill(h, Order(BUY, "0.1"))
        set_price(h, "paper", "BTCUSDT", "48000.00")
        h.sync()
        assert risk_state(h) == "REDUCING"


# -- throttles over time ------------------------------------------------------------------


def test_rate_limit_refills_with_the_clock() -> None:
    with running_node(risk("{max_orders_per_second: 2, order_burst: 2}")) as h:
        assert_passes(h, Order(BUY, "0.1", "40000.00"))
        assert_passes(h, Order(BUY, "0.2", "40000.00"))
        third = h.do(Order(BUY, "0.3", "40000.00"))
        assert_denied(h, third, DenialCode.RATE_LIMIT, "500000000 ns")

        h.clock.advance(0.5)  # exactly one token back
        assert_passes(h, Order(BUY, "0.4", "40000.00"))
        denied = h.do(Order(BUY, "0.5", "40000.00"))
        assert_denied(h, denied, DenialCode.RATE_LIMIT)

        h.clock.advance(1)
        assert_passes(h, Order(BUY, "0.6", "40000.00"))
        assert_passes(h, Order(BUY, "0.7", "40000.00"))
        last = h.do(Order(BUY, "0.8", "40000.00"))
        assert_denied(h, last, DenialCode.RATE_LIMIT)
        assert h.node.risk.ask(GetRiskStatus())["denials"] == {"RATE_LIMIT": 3}


def test_duplicate_window_expires_exactly_at_its_length() -> None:
    with running_node(risk("{duplicate_window_ms: 500}")) as h:
        order = Order(BUY, "0.1", "40000.00")
        assert_passes(h, order)
        h.clock.advance(0.25)
        second = h.do(order)
        assert_denied(h, second, DenialCode.DUPLICATE_ORDER, "250000000 ns ago")
        assert_passes(h, Order(BUY, "0.1", "40000.00", venue="paper2"))  # not identical
        h.clock.advance(0.25)
        assert_passes(h, order)


def test_a_canceled_order_frees_its_open_order_slot() -> None:
    with running_node(risk("{max_open_orders: 1}")) as h:
        first = assert_passes(h, Order(BUY, "0.1", "40000.00"))
        second = h.do(Order(BUY, "0.2", "40000.00"))
        assert_denied(h, second, DenialCode.MAX_OPEN_ORDERS)
        h.do(lambda ctx: ctx.cancel_order(first))
        h.wait_status(first, OrderStatus.CANCELED)
        assert_passes(h, Order(BUY, "0.2", "40000.00"))


# -- every code is covered ------------------------------------------------------------------


STATE_AND_LOSS_CODES = {
    DenialCode.TRADING_HALTED,
    DenialCode.REDUCE_ONLY,
    DenialCode.DAILY_LOSS_LIMIT,
    DenialCode.MAX_DRAWDOWN,
}


def test_every_code_the_risk_engine_gives_is_exercised_here() -> None:
    covered = {case.code for case in CASES.values()} | STATE_AND_LOSS_CODES
    assert covered == set(RISK_DENIAL_CODES)
