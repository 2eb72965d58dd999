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

import dataclasses
import decimal
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from tradenode.messages._enums import Side
from tradenode.messages._messages import OrderFilled, PositionSnapshot
from tradenode.messages._validation import check_decimal

from ._oms_snapshot import optional, read_decimal, read_fraction, strings, typed

__all__ = ["FillAndPosition", "PositionBook", "PositionFill"]

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


@dataclass(frozen=True, slots=True)
class FillAndPosition:
    """An applied fill and the net position it left, told to a subscriber as one message.

    A subscriber that follows both (the risk guard: its book counts the fill,
    its loss limit watches the position) opts in by naming this type in its
    ``Subscribe.kinds``; it then gets this in place of the ``OrderFilled`` and
    the ``PositionSnapshot`` it would have got, in that order, for the same
    fill: one wake-up of its thread and one handler per fill instead of two.
    Everyone else still gets the two messages (a user's subscriber sees no
    change). Both parts are the messages the OMS publishes, already validated.
    """

    fill: OrderFilled
    position: PositionSnapshot


class _Position:
    __slots__ = ("average_price", "commissions", "quantity", "realized", "ts_ns")

    def __init__(self) -> None:
        self.quantity = _ZERO
        self.average_price = _FRACTION_ZERO
        self.realized = _FRACTION_ZERO
        self.commissions: dict[str | None, Decimal] = {}
        self.ts_ns = 0

    def execute(
        self,
        *,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        commission: Decimal,
        commission_asset: str | None,
        ts_ns: int,
    ) -> None:
        """One fill, with the fractions' arithmetic done on their integer parts.

        The results are the same fractions (exact arithmetic has one answer;
        a ``Fraction`` built from integers is normalized), but each new value
        is normalized once instead of after every ``+``, ``*`` and ``/`` of
        ``fractions.py``, which was most of a fill's cost.
        """
        signed_quantity = quantity * side.sign
        held = self.quantity
        if held == 0:
            # avg * 0 + price * added, divided by added: the price itself.
            self.average_price = _bounded(_fraction(price))
        elif (held > 0) == (signed_quantity > 0):
            # (avg * held + price * added) / (held + added), with avg = a/b,
            # held = hn/hd, added = qn/qd, price = pn/pd.
            average = self.average_price
            a, b = average.numerator, average.denominator
            hn, hd = abs(held).as_integer_ratio()
            qn, qd = quantity.as_integer_ratio()
            pn, pd = price.as_integer_ratio()
            self.average_price = _bounded(
                Fraction(a * hn * pd * qd + pn * qn * b * hd, b * pd * (hn * qd + qn * hd))
            )
        else:
            closed = min(quantity, abs(held))
            # realized + (price - avg) * closed * position sign, avg = a/b,
            # closed = cn/cd, price = pn/pd, realized = rn/rd.
            average = self.average_price
            a, b = average.numerator, average.denominator
            pn, pd = price.as_integer_ratio()
            cn, cd = closed.as_integer_ratio()
            realized = self.realized
            rn, rd = realized.numerator, realized.denominator
            gained = (pn * b - a * pd) * cn
            if held < 0:
                gained = -gained
            per = pd * b * cd
            self.realized = Fraction(rn * per + gained * rd, rd * per)
            if quantity > abs(held):
                self.average_price = _fraction(price)
            elif quantity == abs(held):
                self.average_price = _FRACTION_ZERO
        self.quantity = held + signed_quantity
        commissions = self.commissions
        commissions[commission_asset] = commissions.get(commission_asset, _ZERO) + commission
        self.ts_ns = max(self.ts_ns, ts_ns)

    def copy(self) -> _Position:
        twin = _Position()
        twin.quantity = self.quantity
        twin.average_price = self.average_price
        twin.realized = self.realized
        twin.commissions = dict(self.commissions)
        twin.ts_ns = self.ts_ns
        return twin

    def unrealized(self, mark: Decimal | None) -> Fraction:
        if mark is None or self.quantity == 0:
            return _FRACTION_ZERO
        # (mark - avg) * quantity on integer parts, normalized once.
        average = self.average_price
        a, b = average.numerator, average.denominator
        mn, md = mark.as_integer_ratio()
        qn, qd = self.quantity.as_integer_ratio()
        return Fraction((mn * b - a * md) * qn, md * b * qd)

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

    def snapshots(
        self, venue: str, symbol: str, strategy_id: str, mark: Decimal | None
    ) -> tuple[PositionSnapshot, PositionSnapshot]:
        """The net snapshot and the strategy's of a position that is both (one
        strategy trades the symbol): the figures are rounded once, for both."""
        net = self.snapshot(venue, symbol, None, mark)
        return net, _attributed(net, strategy_id)

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

    While one strategy alone trades a symbol (the common case), its position
    *is* the net one: both keys hold the same object, so a fill is applied,
    and its snapshot rounded, once. The second strategy to trade the symbol
    gets the first one its own copy (:meth:`_split`), after which the two
    views are fed separately as before. The figures are those two separate
    positions would have had: the same fills in the same order.
    """

    __slots__ = ("_by_strategy", "_marks", "_net")

    def __init__(self) -> None:
        self._net: dict[tuple[str, str], _Position] = {}
        self._by_strategy: dict[tuple[str, str, str], _Position] = {}
        self._marks: dict[tuple[str, str], Decimal] = {}

    def apply_fill(self, fill: PositionFill) -> tuple[PositionSnapshot, PositionSnapshot]:
        """Returns the updated net and strategy positions, in that order."""
        return self.execute(
            venue=fill.venue,
            symbol=fill.symbol,
            strategy_id=fill.strategy_id,
            side=fill.side,
            quantity=fill.quantity,
            price=fill.price,
            commission=fill.commission,
            commission_asset=fill.commission_asset,
            ts_ns=fill.ts_ns,
        )

    def execute(
        self,
        *,
        venue: str,
        symbol: str,
        strategy_id: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        commission: Decimal,
        commission_asset: str | None,
        ts_ns: int,
    ) -> tuple[PositionSnapshot, PositionSnapshot]:
        """:meth:`apply_fill` with the fill's parts as arguments (the OMS's path:
        no :class:`PositionFill` built per fill)."""
        net_key = (venue, symbol)
        strategy_key = (venue, symbol, strategy_id)
        net = self._net.get(net_key)
        attributed = self._by_strategy.get(strategy_key)
        if net is None:
            net = self._net[net_key] = _Position()
            if attributed is None:
                attributed = self._by_strategy[strategy_key] = net
        elif attributed is None:
            self._split(venue, symbol, net)
            attributed = self._by_strategy[strategy_key] = _Position()
        mark = self._marks.get(net_key)
        net.execute(
            side=side,
            quantity=quantity,
            price=price,
            commission=commission,
            commission_asset=commission_asset,
            ts_ns=ts_ns,
        )
        if attributed is net:
            return net.snapshots(venue, symbol, strategy_id, mark)
        attributed.execute(
            side=side,
            quantity=quantity,
            price=price,
            commission=commission,
            commission_asset=commission_asset,
            ts_ns=ts_ns,
        )
        return (
            net.snapshot(venue, symbol, None, mark),
            attributed.snapshot(venue, symbol, strategy_id, mark),
        )

    def _split(self, venue: str, symbol: str, net: _Position) -> None:
        """A second strategy trades the symbol: the one whose position was the
        net one gets its own copy, and each view is fed separately from now on."""
        for key, position in self._by_strategy.items():
            if position is net:
                self._by_strategy[key] = net.copy()
                return

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
        book._share_sole_strategies()
        for index, item in enumerate(typed(plain["marks"], list, "positions.marks")):
            where = f"positions.marks[{index}]"
            venue, symbol, price = strings(item, 3, where)
            book.mark(venue, symbol, read_decimal(price, where))
        return book

    def _share_sole_strategies(self) -> None:
        """After a restore: a symbol one strategy alone traded shares its position
        with the net one again (as it did when the snapshot was taken), when the
        two hold the same figures; a snapshot from before the sharing holds two
        equal copies, and one that does not is left as two positions."""
        strategies: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for key in self._by_strategy:
            strategies.setdefault((key[0], key[1]), []).append(key)
        for net_key, keys in strategies.items():
            net = self._net.get(net_key)
            if (
                len(keys) == 1
                and net is not None
                and net.to_plain() == self._by_strategy[keys[0]].to_plain()
            ):
                self._by_strategy[keys[0]] = net

    def _lookup(self, venue: str, symbol: str, strategy_id: str | None) -> _Position:
        if strategy_id is None:
            found = self._net.get((venue, symbol))
        else:
            found = self._by_strategy.get((venue, symbol, strategy_id))
        return _Position() if found is None else found


def _slot_of(cls: type, name: str) -> Any:
    """The member descriptor that stores field ``name`` of the slotted dataclass ``cls``."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None and hasattr(descriptor, "__set__"):
            return descriptor
    raise TypeError(f"{cls.__name__}.{name}: not a slot")


_SNAPSHOT_FIELDS: Final = tuple(
    _slot_of(PositionSnapshot, field.name)
    for field in dataclasses.fields(PositionSnapshot)
    if field.name != "strategy_id"
)
_SNAPSHOT_STRATEGY: Final = _slot_of(PositionSnapshot, "strategy_id")


def _attributed(net: PositionSnapshot, strategy_id: str) -> PositionSnapshot:
    """``replace(net, strategy_id=strategy_id)``, without validating again what ``net``'s
    construction validated: every other field is ``net``'s own, and ``strategy_id`` is
    an order's (``SubmitOrder`` checked it as the identifier a snapshot's must be).
    Built once per fill on the OMS's thread, ahead of the strategy's callback."""
    twin = object.__new__(PositionSnapshot)
    for slot in _SNAPSHOT_FIELDS:
        slot.__set__(twin, slot.__get__(net))
    _SNAPSHOT_STRATEGY.__set__(twin, strategy_id)
    return twin


def _bounded(value: Fraction) -> Fraction:
    if value.denominator > _MAX_DENOMINATOR:
        return value.limit_denominator(_MAX_DENOMINATOR)
    return value


def _fraction(value: Decimal) -> Fraction:
    """``Fraction(value)``, skipping the constructor's dispatch on the argument's type."""
    numerator, denominator = value.as_integer_ratio()
    return Fraction(numerator, denominator)


def _to_decimal(value: Fraction) -> Decimal:
    if value.denominator == 1:
        return Decimal(value.numerator)
    return _SNAPSHOT_CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
