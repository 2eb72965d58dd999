"""The risk guard's book checks each figure once, where it enters, and hands its
context on unchecked (``RiskContext.of_checked``): the context must be the one
the checked constructor would build, and a figure the constructor would refuse
must be refused on entry.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

# The guard's book and the engine's context are internal; these tests pin the fast path.
from tradenode.actors._risk import ApprovedOrders, RiskBook
from tradenode.actors._risk_limits import OpenOrders, RiskContext, RiskLimits
from tradenode.actors._risk_rules import RiskEngine
from tradenode.messages import OrderType, Side, SubmitOrder

DAY_NS = 86_400 * 1_000_000_000


def order(coid: str, side: Side, quantity: str, symbol: str = "BTCUSDT") -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue="paper",
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET,
        quantity=D(quantity),
    )


def test_the_books_context_is_the_one_the_checked_constructor_builds() -> None:
    book = RiskBook()
    book.set_position(("paper", "BTCUSDT"), D("0.5"), D("-12.5"))
    book.set_position(("paper2", "ETHUSDT"), D("-2"), D("3"))
    book.set_price(("paper", "BTCUSDT"), D("50000"))
    book.approved.add(order("a-1", Side.BUY, "0.2"))
    book.approved.add(order("a-2", Side.SELL, "0.1"))
    book.approved.add(order("a-3", Side.SELL, "1", symbol="ETHUSDT"))
    fast = book.context(3 * DAY_NS + 5)
    checked = RiskContext(
        positions=dict(book.positions),
        open_orders=book.approved.tally(),
        last_prices=dict(book.last_prices),
        daily_pnl=fast.daily_pnl,
        equity=fast.equity,
        peak_equity=fast.peak_equity,
    )
    assert fast == checked
    assert fast.open_order_count == checked.open_order_count == 3
    assert fast.equity == D("-9.5")
    assert dict(fast.open_orders) == {
        ("paper", "BTCUSDT"): OpenOrders(D("0.2"), D("0.1"), 2),
        ("paper", "ETHUSDT"): OpenOrders(D(0), D(1), 1),
    }


def test_the_context_is_a_copy_the_book_moving_on_does_not_change_it() -> None:
    book = RiskBook()
    book.set_position(("paper", "BTCUSDT"), D(1), D(0))
    book.set_price(("paper", "BTCUSDT"), D(100))
    ctx = book.context(0)
    book.set_position(("paper", "BTCUSDT"), D(2), D(0))
    book.set_price(("paper", "BTCUSDT"), D(101))
    book.approved.add(order("a-1", Side.BUY, "1"))
    assert ctx.position(("paper", "BTCUSDT")) == D(1)
    assert ctx.last_price(("paper", "BTCUSDT")) == D(100)
    assert ctx.total_open_orders() == 0
    with pytest.raises(TypeError):
        ctx.positions[("paper", "BTCUSDT")] = D(3)  # type: ignore[index]


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), D("-Infinity"), 1.5])
def test_a_position_or_pnl_the_context_would_refuse_is_refused_on_entry(bad: object) -> None:
    book = RiskBook()
    with pytest.raises(ValueError, match="positions"):
        book.set_position(("paper", "BTCUSDT"), bad, D(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pnl"):
        book.set_position(("paper", "BTCUSDT"), D(0), bad)  # type: ignore[arg-type]
    assert book.positions == {} and book.pnl == {}


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), D("Infinity"), 7])
def test_a_price_that_is_no_mark_is_refused_on_entry(bad: object) -> None:
    book = RiskBook()
    with pytest.raises(ValueError, match="last_prices"):
        book.set_price(("paper", "BTCUSDT"), bad)  # type: ignore[arg-type]
    assert book.last_prices == {}


def test_rolling_without_a_context_moves_the_day_and_the_peak_as_a_context_does() -> None:
    rolled, built = RiskBook(), RiskBook()
    for pnl, now in ((D(5), 10), (D(8), DAY_NS + 1), (D(2), DAY_NS + 2)):
        for book in (rolled, built):
            book.set_position(("paper", "BTCUSDT"), D(1), pnl)
        rolled.roll(now)
        built.context(now)
        assert (rolled.day, rolled.day_start_pnl, rolled.peak_equity) == (
            built.day,
            built.day_start_pnl,
            built.peak_equity,
        )
    assert rolled.peak_equity == D(8) and rolled.day_start_pnl == D(8)


def test_the_engine_watches_loss_only_with_a_loss_limit() -> None:
    now = lambda: 0  # noqa: E731
    assert not RiskEngine(RiskLimits(), now_ns=now).watches_loss
    assert not RiskEngine(RiskLimits(max_position_quantity=D(1)), now_ns=now).watches_loss
    assert RiskEngine(RiskLimits(daily_loss_limit=D(10)), now_ns=now).watches_loss
    assert RiskEngine(RiskLimits(max_drawdown=D(10)), now_ns=now).watches_loss


def test_a_fill_changes_the_tally_as_update_then_remove_did() -> None:
    fast, slow = ApprovedOrders(), ApprovedOrders()
    orders = [
        order("a-1", Side.BUY, "1"),
        order("a-2", Side.BUY, "0.5"),
        order("a-3", Side.SELL, "2"),
    ]
    for book in (fast, slow):
        for o in orders:
            book.add(o)
    fills = [
        ("a-1", D("0.25")),
        ("a-3", D("2")),
        ("a-1", D("0.75")),
        ("a-9", D(1)),
        ("a-2", D("0.1")),
    ]
    for coid, quantity in fills:
        fast.fill(coid, quantity)
        entry = slow.get(coid)
        if entry is not None:
            entry = slow.update(coid, filled=entry.filled + quantity)
            if entry is not None and entry.leaves <= 0:
                slow.remove(coid)
        assert fast.tally() == slow.tally()
        assert len(fast) == len(slow)
    assert "a-1" not in fast and "a-3" not in fast
    assert fast.tally() == {("paper", "BTCUSDT"): OpenOrders(D("0.4"), D(0), 1)}
