"""The risk guard's tally, built per decision: ``OpenOrders.of`` and the book's rows.

``OpenOrders.of`` skips the dataclass constructor when its figures are already
what the constructor would leave them as; it must give the same instance for
those and convert or refuse everything else exactly as the constructor does.
The book's tally adds and takes away leaves without multiplying them by a sign;
its rows must stay the sums of what each approved order can still fill.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# The guard's book (private to the risk guard): its tally is what is checked here.
from tradenode.actors._risk import RiskBook
from tradenode.actors._risk_limits import OpenOrders
from tradenode.messages import OrderType, Side, SubmitOrder

_FIGURES: list[Any] = [
    Decimal("0"),
    Decimal("-0"),
    Decimal("1.5"),
    Decimal("-0.001"),
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1E+30"),
    0,
    3,
    -2,
    True,
    1.5,
    None,
    "1",
]
_COUNTS: list[Any] = [0, 1, 7, -1, True, 1.0, Decimal(2), None]


def _build(make: Any, *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", make(*args))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def test_of_builds_or_refuses_exactly_as_the_constructor() -> None:
    for buy, sell, count in itertools.product(_FIGURES, _FIGURES, _COUNTS):
        fast = _build(OpenOrders.of, buy, sell, count)
        full = _build(OpenOrders, buy, sell, count)
        assert fast == full, (buy, sell, count)
        if fast[0] == "ok":
            for name in ("buy_quantity", "sell_quantity", "count"):
                assert type(getattr(fast[1], name)) is type(getattr(full[1], name))


def test_an_instance_built_by_of_is_frozen_and_hashes_as_one_built_whole() -> None:
    fast = OpenOrders.of(Decimal("1"), Decimal("2"), 3)
    assert fast == OpenOrders(Decimal("1"), Decimal("2"), 3)
    assert hash(fast) == hash(OpenOrders(Decimal("1"), Decimal("2"), 3))
    with pytest.raises(AttributeError):
        fast.count = 4  # type: ignore[misc]


def _order(n: int, side: Side, quantity: Decimal, symbol: str) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=f"o-{n}",
        strategy_id="s",
        venue="paper",
        symbol=symbol,
        side=side,
        order_type=OrderType.MARKET,
        quantity=quantity,
    )


_QUANTITY = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3)
_STEP = st.tuples(
    st.sampled_from(["add", "fill", "remove", "update"]),
    st.integers(0, 7),
    st.sampled_from([Side.BUY, Side.SELL]),
    _QUANTITY,
    st.sampled_from(["BTCUSDT", "ETHUSDT"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_the_tally_is_the_sum_of_every_approved_orders_leaves(steps: list[Any]) -> None:
    book = RiskBook()
    approved = book.approved
    for kind, n, side, quantity, symbol in steps:
        cid = f"o-{n}"
        if kind == "add":
            approved.add(_order(n, side, quantity, symbol))
        elif kind == "fill":
            approved.fill(cid, quantity)
        elif kind == "remove":
            approved.remove(cid)
        else:
            approved.update(cid, filled=quantity / 2)
    expected: dict[tuple[str, str], list[Any]] = {}
    for entry in approved.values():
        row = expected.setdefault((entry.order.venue, entry.order.symbol), [Decimal(0)] * 2 + [0])
        row[0 if entry.order.side is Side.BUY else 1] += entry.leaves
        row[2] += 1
    tally = approved.tally()
    assert tally == {
        key: OpenOrders(buy, sell, count) for key, (buy, sell, count) in expected.items()
    }
    context = book.context(0)
    assert dict(context.open_orders) == tally
    assert context.total_open_orders() == len(approved)
