"""The position book's fast path against the plain one it replaced.

``PositionBook`` does its fractions' arithmetic on their integer parts and,
while one strategy alone trades a symbol, keeps one position for the net and
the strategy's view. Neither may change a figure: this file keeps the plain
``Fraction`` implementation as the reference (two positions per fill, every
operation through ``fractions.py``) and checks both give the same snapshots,
and the same snapshot sections, for any sequence of fills, marks and
restores.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import PositionBook, PositionFill
from tradenode.messages import PositionSnapshot, Side

_ZERO = Decimal(0)
_CONTEXT = decimal.Context(prec=34)
_MAX_DENOMINATOR = 10**30


def _bounded(value: Fraction) -> Fraction:
    if value.denominator > _MAX_DENOMINATOR:
        return value.limit_denominator(_MAX_DENOMINATOR)
    return value


def _to_decimal(value: Fraction) -> Decimal:
    if value.denominator == 1:
        return Decimal(value.numerator)
    return _CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))


class _ReferencePosition:
    """The average-cost position exactly as it was computed before the fast path."""

    def __init__(self) -> None:
        self.quantity = _ZERO
        self.average_price = Fraction(0)
        self.realized = Fraction(0)
        self.commissions: dict[str | None, Decimal] = {}
        self.ts_ns = 0

    def apply(self, fill: PositionFill) -> None:
        signed_quantity = fill.quantity * fill.side.sign
        price = Fraction(fill.price)
        held = self.quantity
        if held == 0 or (held > 0) == (signed_quantity > 0):
            held_size = Fraction(abs(held))
            added = Fraction(fill.quantity)
            weighted = self.average_price * held_size + price * added
            self.average_price = _bounded(weighted / (held_size + added))
        else:
            closed = min(fill.quantity, abs(held))
            position_sign = 1 if held > 0 else -1
            self.realized += (price - self.average_price) * Fraction(closed) * position_sign
            if fill.quantity > abs(held):
                self.average_price = price
            elif fill.quantity == abs(held):
                self.average_price = Fraction(0)
        self.quantity = held + signed_quantity
        self.commissions[fill.commission_asset] = (
            self.commissions.get(fill.commission_asset, _ZERO) + fill.commission
        )
        self.ts_ns = max(self.ts_ns, fill.ts_ns)

    def snapshot(
        self, venue: str, symbol: str, strategy_id: str | None, mark: Decimal | None
    ) -> PositionSnapshot:
        unrealized = Fraction(0)
        if mark is not None and self.quantity != 0:
            unrealized = (Fraction(mark) - self.average_price) * Fraction(self.quantity)
        return PositionSnapshot(
            venue=venue,
            symbol=symbol,
            strategy_id=strategy_id,
            quantity=self.quantity,
            avg_price=_to_decimal(self.average_price),
            realized_pnl=_to_decimal(self.realized),
            unrealized_pnl=_to_decimal(unrealized),
            ts_ns=self.ts_ns,
        )

    def to_plain(self) -> dict[str, Any]:
        return {
            "quantity": str(self.quantity),
            "average_price": str(self.average_price),
            "realized": str(self.realized),
            "commissions": [[asset, str(amount)] for asset, amount in self.commissions.items()],
            "ts_ns": self.ts_ns,
        }


class _ReferenceBook:
    def __init__(self) -> None:
        self.net: dict[tuple[str, str], _ReferencePosition] = {}
        self.by_strategy: dict[tuple[str, str, str], _ReferencePosition] = {}
        self.marks: dict[tuple[str, str], Decimal] = {}

    def apply_fill(self, fill: PositionFill) -> tuple[PositionSnapshot, PositionSnapshot]:
        net = self.net.setdefault((fill.venue, fill.symbol), _ReferencePosition())
        attributed = self.by_strategy.setdefault(
            (fill.venue, fill.symbol, fill.strategy_id), _ReferencePosition()
        )
        net.apply(fill)
        attributed.apply(fill)
        mark = self.marks.get((fill.venue, fill.symbol))
        return (
            net.snapshot(fill.venue, fill.symbol, None, mark),
            attributed.snapshot(fill.venue, fill.symbol, fill.strategy_id, mark),
        )

    def to_plain(self) -> dict[str, Any]:
        return {
            "net": [[v, s, p.to_plain()] for (v, s), p in self.net.items()],
            "by_strategy": [[v, s, k, p.to_plain()] for (v, s, k), p in self.by_strategy.items()],
            "marks": [[v, s, str(price)] for (v, s), price in self.marks.items()],
        }


_PRICES = st.sampled_from(
    ["100", "101", "99.5", "50000.12", "0.00000301", "3", "7.77", "1E-33", "123456789.123456789"]
)
_QUANTITIES = st.sampled_from(["1", "2", "0.001", "3", "0.5", "10", "1E-31", "7"])
_STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("fill"),
            st.sampled_from(["s1", "s2", "s3"]),
            st.sampled_from(["BTCUSDT", "ETHUSDT"]),
            st.sampled_from([Side.BUY, Side.SELL]),
            _QUANTITIES,
            _PRICES,
            st.sampled_from([None, "BNB"]),
        ),
        st.tuples(st.just("mark"), st.sampled_from(["BTCUSDT", "ETHUSDT"]), _PRICES),
        st.tuples(st.just("restore")),
    ),
    max_size=40,
)


def _restored(book: PositionBook) -> PositionBook:
    packed = msgpack.packb(book.to_plain(), use_bin_type=True)
    return PositionBook.from_plain(msgpack.unpackb(packed, raw=False))


def _assert_same(book: PositionBook, reference: _ReferenceBook) -> None:
    assert book.to_plain() == reference.to_plain()
    for by_strategy in (False, True):
        expected = (
            tuple(
                position.snapshot(v, s, k, reference.marks.get((v, s)))
                for (v, s, k), position in sorted(reference.by_strategy.items())
            )
            if by_strategy
            else tuple(
                position.snapshot(v, s, None, reference.marks.get((v, s)))
                for (v, s), position in sorted(reference.net.items())
            )
        )
        assert book.snapshots(by_strategy=by_strategy) == expected


@settings(max_examples=300, deadline=None)
@given(_STEPS)
def test_the_fast_book_gives_the_plain_books_figures(steps: list[tuple[Any, ...]]) -> None:
    book = PositionBook()
    reference = _ReferenceBook()
    for ts_ns, step in enumerate(steps):
        if step[0] == "fill":
            _, strategy, symbol, side, quantity, price, asset = step
            fill = PositionFill(
                venue="BIN",
                symbol=symbol,
                strategy_id=strategy,
                side=side,
                quantity=Decimal(quantity),
                price=Decimal(price),
                commission=Decimal("0.01"),
                commission_asset=asset,
                ts_ns=ts_ns,
            )
            assert book.apply_fill(fill) == reference.apply_fill(fill)
        elif step[0] == "mark":
            book.mark("BIN", step[1], Decimal(step[2]))
            reference.marks[("BIN", step[1])] = Decimal(step[2])
        else:
            book = _restored(book)
        _assert_same(book, reference)


def test_a_second_strategy_gets_its_own_position_and_the_first_keeps_its_figures() -> None:
    book = PositionBook()

    def fill(strategy: str, side: Side, quantity: str, price: str) -> PositionFill:
        return PositionFill(
            venue="BIN",
            symbol="BTCUSDT",
            strategy_id=strategy,
            side=side,
            quantity=Decimal(quantity),
            price=Decimal(price),
        )

    net, alone = book.apply_fill(fill("s1", Side.BUY, "2", "100"))
    assert (net.strategy_id, alone.strategy_id) == (None, "s1")
    assert (net.quantity, alone.quantity) == (Decimal(2), Decimal(2))
    net, other = book.apply_fill(fill("s2", Side.SELL, "1", "110"))
    assert (net.quantity, net.realized_pnl) == (Decimal(1), Decimal(10))
    assert (other.quantity, other.avg_price, other.realized_pnl) == (
        Decimal(-1),
        Decimal(110),
        Decimal(0),
    )
    first = book.snapshot("BIN", "BTCUSDT", "s1")
    assert (first.quantity, first.avg_price, first.realized_pnl) == (
        Decimal(2),
        Decimal(100),
        Decimal(0),
    )
    # The first strategy's next fill moves its own position and the net one alone.
    net, alone = book.apply_fill(fill("s1", Side.SELL, "2", "90"))
    assert (alone.quantity, alone.realized_pnl) == (Decimal(0), Decimal(-20))
    assert (net.quantity, net.realized_pnl) == (Decimal(-1), Decimal(0))
    assert book.snapshot("BIN", "BTCUSDT", "s2").quantity == Decimal(-1)


def test_a_restored_sole_strategy_shares_the_net_position_again() -> None:
    book = PositionBook()
    book.apply_fill(
        PositionFill(
            venue="BIN",
            symbol="BTCUSDT",
            strategy_id="s1",
            side=Side.BUY,
            quantity=Decimal(1),
            price=Decimal(100),
        )
    )
    restored = _restored(book)
    assert restored._by_strategy[("BIN", "BTCUSDT", "s1")] is restored._net[("BIN", "BTCUSDT")]
    # A snapshot whose two views differ (written by hand) keeps them apart.
    plain = book.to_plain()
    plain["by_strategy"][0][3]["ts_ns"] = 5
    apart = PositionBook.from_plain(plain)
    assert apart._by_strategy[("BIN", "BTCUSDT", "s1")] is not apart._net[("BIN", "BTCUSDT")]
    assert apart.snapshot("BIN", "BTCUSDT", "s1").ts_ns == 5
    assert apart.snapshot("BIN", "BTCUSDT").ts_ns == 0
