"""Net positions and their profit and loss, by the average-cost method.

Adding to a position moves the average entry price; reducing it realizes
``(fill price - average) * closed quantity * position sign`` and leaves the
average alone; a fill through zero realizes the closed part and opens the
rest at the fill price.

The average price is kept as an exact fraction, not a ``Decimal``. A
weighted average needs a division, and a rounded average fed into the next
fill makes the result depend on the order fills arrived in. Venues deliver
fills in any order, so the same fills must give the same position to the
last digit; rounding happens once, when a snapshot is taken.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tradenode.messages._enums import Side
from tradenode.messages._messages import PositionSnapshot
from tradenode.messages._validation import check_decimal

from ._oms_snapshot import optional, read_decimal, read_fraction, strings, typed

__all__ = ["PositionBook", "PositionFill"]

_ZERO = Decimal(0)
_FRACTION_ZERO = Fraction(0)

#: Snapshots round once, with a context of our own: the thread's default
#: context belongs to whoever runs the actor and might have been changed.
_SNAPSHOT_CONTEXT = decimal.Context(prec=34)

#: An average that alternates adds and partial closes without ever going
#: flat grows its denominator each time; past this bound it is rounded to
#: the nearest fraction below it, far below any venue's price increment.
_MAX_DENOMINATOR = 10**30


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionFill:
    """The parts of an execution that move a position."""

    venue: str
    symbol: str
    strategy_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal = _ZERO
    commission_asset: str | None = None
    ts_ns: int = 0


class _Position:
    __slots__ = ("average_price", "commissions", "quantity", "realized", "ts_ns")

    def __init__(self) -> None:
        self.quantity = _ZERO
        self.average_price = _FRACTION_ZERO
        self.realized = _FRACTION_ZERO
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
                self.average_price = _FRACTION_ZERO
        self.quantity = held + signed_quantity
        self.commissions[fill.commission_asset] = (
            self.commissions.get(fill.commission_asset, _ZERO) + fill.commission
        )
        self.ts_ns = max(self.ts_ns, fill.ts_ns)

    def unrealized(self, mark: Decimal | None) -> Fraction:
        if mark is None or self.quantity == 0:
            return _FRACTION_ZERO
        return (Fraction(mark) - self.average_price) * Fraction(self.quantity)

    def snapshot(
        self, venue: str, symbol: str, strategy_id: str | None, mark: Decimal | None
    ) -> PositionSnapshot:
        return PositionSnapshot(
            venue=venue,
            symbol=symbol,
            strategy_id=strategy_id,
            quantity=self.quantity,
            avg_price=_to_decimal(self.average_price),
            realized_pnl=_to_decimal(self.realized),
            unrealized_pnl=_to_decimal(self.unrealized(mark)),
            ts_ns=self.ts_ns,
        )

    def to_plain(self) -> dict[str, Any]:
        """Plain data for a snapshot; the average price as an exact fraction's text."""
        return {
            "quantity": str(self.quantity),
            "average_price": str(self.average_price),
            "realized": str(self.realized),
            "commissions": [[asset, str(amount)] for asset, amount in self.commissions.items()],
            "ts_ns": self.ts_ns,
        }

    @classmethod
    def from_plain(cls, value: object, where: str) -> _Position:
        """The position :meth:`to_plain` wrote; ``ValueError`` naming ``where`` if malformed."""
        plain = typed(value, dict, where)
        position = cls()
        position.quantity = read_decimal(plain["quantity"], f"{where}.quantity")
        position.average_price = read_fraction(plain["average_price"], f"{where}.average_price")
        position.realized = read_fraction(plain["realized"], f"{where}.realized")
        for index, item in enumerate(typed(plain["commissions"], list, f"{where}.commissions")):
            at = f"{where}.commissions[{index}]"
            pair = typed(item, list, at)
            if len(pair) != 2:
                raise ValueError(f"{at}: expected [asset, amount]")
            position.commissions[optional(pair[0], str, at)] = read_decimal(pair[1], at)
        position.ts_ns = typed(plain["ts_ns"], int, f"{where}.ts_ns")
        return position


class PositionBook:
    """Positions per (venue, symbol) and per (venue, symbol, strategy).

    Both views are fed the same fills, so the per-strategy positions of a
    symbol always sum to its net position; realized PnL does not sum across
    strategies, because one strategy closing while another opens is no
    close at all for the account.
    """

    __slots__ = ("_by_strategy", "_marks", "_net")

    def __init__(self) -> None:
        self._net: dict[tuple[str, str], _Position] = {}
        self._by_strategy: dict[tuple[str, str, str], _Position] = {}
        self._marks: dict[tuple[str, str], Decimal] = {}

    def apply_fill(self, fill: PositionFill) -> tuple[PositionSnapshot, PositionSnapshot]:
        """Returns the updated net and strategy positions, in that order."""
        net_key = (fill.venue, fill.symbol)
        strategy_key = (fill.venue, fill.symbol, fill.strategy_id)
        net = self._net.setdefault(net_key, _Position())
        attributed = self._by_strategy.setdefault(strategy_key, _Position())
        net.apply(fill)
        attributed.apply(fill)
        mark = self._marks.get(net_key)
        return (
            net.snapshot(fill.venue, fill.symbol, None, mark),
            attributed.snapshot(fill.venue, fill.symbol, fill.strategy_id, mark),
        )

    def mark(self, venue: str, symbol: str, price: Decimal) -> None:
        """Sets the price unrealized PnL is measured against."""
        check_decimal(self, "mark", price, positive=True)
        self._marks[(venue, symbol)] = price

    def snapshot(self, venue: str, symbol: str, strategy_id: str | None = None) -> PositionSnapshot:
        """A flat snapshot for a symbol never traded, so callers need no special case."""
        position = self._lookup(venue, symbol, strategy_id)
        return position.snapshot(venue, symbol, strategy_id, self._marks.get((venue, symbol)))

    def snapshots(self, *, by_strategy: bool = False) -> tuple[PositionSnapshot, ...]:
        if by_strategy:
            return tuple(
                position.snapshot(venue, symbol, strategy_id, self._marks.get((venue, symbol)))
                for (venue, symbol, strategy_id), position in sorted(self._by_strategy.items())
            )
        return tuple(
            position.snapshot(venue, symbol, None, self._marks.get((venue, symbol)))
            for (venue, symbol), position in sorted(self._net.items())
        )

    def commission(self, venue: str, symbol: str, strategy_id: str | None = None) -> Decimal:
        """All commission paid, summed across assets; see :meth:`commissions` when they differ."""
        return sum(self.commissions(venue, symbol, strategy_id).values(), _ZERO)

    def commissions(
        self, venue: str, symbol: str, strategy_id: str | None = None
    ) -> dict[str | None, Decimal]:
        """Commission per asset (``None`` when the venue did not say which)."""
        return dict(self._lookup(venue, symbol, strategy_id).commissions)

    def to_plain(self) -> dict[str, Any]:
        """Everything the book holds as plain data (the positions' snapshot section)."""
        return {
            "net": [
                [venue, symbol, position.to_plain()]
                for (venue, symbol), position in self._net.items()
            ],
            "by_strategy": [
                [venue, symbol, strategy_id, position.to_plain()]
                for (venue, symbol, strategy_id), position in self._by_strategy.items()
            ],
            "marks": [
                [venue, symbol, str(price)] for (venue, symbol), price in self._marks.items()
            ],
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> PositionBook:
        """The book :meth:`to_plain` was taken of; ``ValueError`` naming the entry if malformed."""
        book = cls()
        for index, item in enumerate(typed(plain["net"], list, "positions.net")):
            where = f"positions.net[{index}]"
            entry = typed(item, list, where)
            if len(entry) != 3:
                raise ValueError(f"{where}: expected [venue, symbol, position]")
            venue, symbol = strings(entry[:2], 2, where)
            book._net[(venue, symbol)] = _Position.from_plain(entry[2], where)
        for index, item in enumerate(typed(plain["by_strategy"], list, "positions.by_strategy")):
            where = f"positions.by_strategy[{index}]"
            entry = typed(item, list, where)
            if len(entry) != 4:
                raise ValueError(f"{where}: expected [venue, symbol, strategy_id, position]")
            venue, symbol, strategy_id = strings(entry[:3], 3, where)
            book._by_strategy[(venue, symbol, strategy_id)] = _Position.from_plain(entry[3], where)
        for index, item in enumerate(typed(plain["marks"], list, "positions.marks")):
            where = f"positions.marks[{index}]"
            venue, symbol, price = strings(item, 3, where)
            book.mark(venue, symbol, read_decimal(price, where))
        return book

    def _lookup(self, venue: str, symbol: str, strategy_id: str | None) -> _Position:
        if strategy_id is None:
            found = self._net.get((venue, symbol))
        else:
            found = self._by_strategy.get((venue, symbol, strategy_id))
        return _Position() if found is None else found


def _bounded(value: Fraction) -> Fraction:
    if value.denominator > _MAX_DENOMINATOR:
        return value.limit_denominator(_MAX_DENOMINATOR)
    return value


def _to_decimal(value: Fraction) -> Decimal:
    if value.denominator == 1:
        return Decimal(value.numerator)
    return _SNAPSHOT_CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
