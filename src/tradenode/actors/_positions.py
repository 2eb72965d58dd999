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

from tradenode.messages._enums import Side
from tradenode.messages._messages import PositionSnapshot
from tradenode.messages._validation import check_decimal

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
