"""Execution quality: how well an order (or a parent order) was executed, from its fills.

Pure arithmetic over what the OMS already holds, so the figures are the same
live, after a replay and in a test written by hand. Definitions (every one
relative to the *arrival price*, the mid of the order's venue quote
``(bid + ask) / 2`` that the OMS held when it registered the order, recorded
then and journaled, because quotes are not):

- **average fill price**: ``sum(quantity * price) / sum(quantity)`` over the fills.
- **slippage (bps)**: ``side * (average - arrival) / arrival * 10_000`` with
  ``side`` +1 for a buy and -1 for a sell, so a *positive* figure is always a
  cost (bought above, or sold below, the arrival price) and a negative one an
  improvement.
- **implementation shortfall** (quote currency): ``side * sum(quantity *
  (price - arrival)) + fees``: what the executed quantity cost compared with
  trading it all at the arrival price, fees included. The unfilled part's
  opportunity cost is not included: it needs a price the order never traded at.
- **fees**: commissions in the quote currency. A commission in the base asset
  (a spot buy on Binance without BNB, OKX) is converted at its fill's price; a
  commission in any other asset (BNB) is not converted, it is reported apart
  (``unconverted_fees``) and left out of the shortfall, so the figure never
  claims a conversion nobody made. Which asset a commission is in is read from
  the symbol: a symbol ending with the asset (``BTCUSDT``/``USDT``) means the
  quote currency, one starting with it (``BTCUSDT``/``BTC``) the base asset;
  a commission without an asset is taken as quote currency.
- **fill ratio**: filled / requested quantity.
- **time to first fill / to complete** (node clock, nanoseconds): from the
  arrival (the order's registration) to the OMS applying the first fill, and
  to the fill that completed it (None while it is not complete).
"""

from __future__ import annotations

import decimal
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..messages._enums import Side
from ..messages._execution import ParentState
from ..messages._messages import OrderFilled, Quote
from ..messages._validation import check_client_order_id, check_decimal

if TYPE_CHECKING:
    from ._oms_state import OmsState

__all__ = [
    "ArrivalBook",
    "ExecutionQuality",
    "ExecutionQualityTotals",
    "GetExecutionQuality",
    "QualityTracker",
    "arrival_price",
    "fee_in_quote",
    "order_quality",
    "parent_quality",
    "parents_report",
    "quality_report",
]

_ZERO = Decimal(0)
_BPS = Decimal(10_000)

#: Every figure is computed in this context, never the calling thread's: an
#: actor's thread belongs to whoever runs it.
_CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
#: Running sums are kept exact (far wider than any figure), so taking an order's
#: figures out again leaves no residue.
_SUM_CONTEXT = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_EVEN)


def arrival_price(quote: Quote | None) -> Decimal | None:
    """The arrival price an order gets from the quote the OMS holds: its mid."""
    if quote is None:
        return None
    with decimal.localcontext(_CONTEXT):
        return (quote.bid + quote.ask) / 2


def fee_in_quote(fill: OrderFilled) -> tuple[Decimal | None, str | None]:
    """A fill's commission in the quote currency, or ``(None, asset)`` when it
    is in an asset that cannot be converted from the fill alone."""
    asset = fill.commission_asset
    if fill.commission == 0 or asset is None:
        return fill.commission, None
    symbol = fill.symbol.upper()
    name = asset.upper()
    if symbol.endswith(name):
        return fill.commission, None
    if symbol.startswith(name):
        with decimal.localcontext(_CONTEXT):
            return fill.commission * fill.last_price, None
    return None, asset


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionQuality:
    """The figures of one order, or of one parent order over all its children's fills."""

    side: Side
    requested_quantity: Decimal
    filled_quantity: Decimal
    arrival_price: Decimal | None
    """None when the OMS held no quote for the venue and symbol at arrival."""
    average_price: Decimal | None
    """None before the first fill."""
    slippage_bps: Decimal | None
    """Positive is worse than arrival; None without fills or without an arrival price."""
    implementation_shortfall: Decimal | None
    """Quote currency, fees included; positive is a cost."""
    fees: Decimal
    """Commissions in (or converted to) the quote currency."""
    unconverted_fees: Mapping[str, Decimal]
    """Commissions per asset that could not be converted (not in the shortfall)."""
    fill_ratio: Decimal
    time_to_first_fill_ns: int | None
    time_to_complete_ns: int | None
    fill_count: int

    @classmethod
    def measure(
        cls,
        *,
        side: Side,
        requested_quantity: Decimal,
        fills: Iterable[OrderFilled],
        arrival_price: Decimal | None,
        arrival_ns: int | None = None,
        first_fill_ns: int | None = None,
        completed_ns: int | None = None,
    ) -> ExecutionQuality:
        """The figures for ``fills`` of an order of ``requested_quantity`` on ``side``.

        ``arrival_ns``, ``first_fill_ns`` and ``completed_ns`` are node-clock
        times; a duration is None when either end is.
        """
        for name, value, optional in (
            ("requested_quantity", requested_quantity, False),
            ("arrival_price", arrival_price, True),
        ):
            if value is None and optional:
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"ExecutionQuality.{name}={value!r}: must be a Decimal > 0")
        sign = Decimal(side.sign)
        with decimal.localcontext(_CONTEXT):
            filled = _ZERO
            notional = _ZERO
            fees = _ZERO
            unconverted: dict[str, Decimal] = {}
            count = 0
            for fill in fills:
                count += 1
                filled += fill.last_quantity
                notional += fill.last_quantity * fill.last_price
                fee, asset = fee_in_quote(fill)
                if fee is not None:
                    fees += fee
                elif asset is not None:
                    unconverted[asset] = unconverted.get(asset, _ZERO) + fill.commission
            average = notional / filled if filled else None
            slippage: Decimal | None = None
            shortfall: Decimal | None = None
            if average is not None and arrival_price is not None:
                slippage = sign * (average - arrival_price) / arrival_price * _BPS
                shortfall = sign * (notional - filled * arrival_price) + fees
            ratio = filled / requested_quantity
        return cls(
            side=side,
            requested_quantity=requested_quantity,
            filled_quantity=filled,
            arrival_price=arrival_price,
            average_price=average,
            slippage_bps=slippage,
            implementation_shortfall=shortfall,
            fees=fees,
            unconverted_fees=MappingProxyType(unconverted),
            fill_ratio=ratio,
            time_to_first_fill_ns=_duration(arrival_ns, first_fill_ns),
            time_to_complete_ns=_duration(arrival_ns, completed_ns),
            fill_count=count,
        )

    @property
    def filled_notional(self) -> Decimal:
        if self.average_price is None:
            return _ZERO
        with decimal.localcontext(_CONTEXT):
            return self.average_price * self.filled_quantity

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: decimals as their exact text, durations as integers."""
        return {
            "side": self.side.value,
            "requested_quantity": str(self.requested_quantity),
            "filled_quantity": str(self.filled_quantity),
            "arrival_price": _text(self.arrival_price),
            "average_price": _text(self.average_price),
            "slippage_bps": _text(self.slippage_bps),
            "implementation_shortfall": _text(self.implementation_shortfall),
            "fees": str(self.fees),
            "unconverted_fees": {asset: str(v) for asset, v in self.unconverted_fees.items()},
            "fill_ratio": str(self.fill_ratio),
            "time_to_first_fill_ns": self.time_to_first_fill_ns,
            "time_to_complete_ns": self.time_to_complete_ns,
            "fill_count": self.fill_count,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionQualityTotals:
    """Figures across many orders, for ``get_performance_metrics()`` and the summary.

    ``slippage_bps`` is weighted by filled notional (a large order's slippage
    counts for more than a small one's); the shortfall and fees are sums;
    ``fill_ratio`` is total filled over total requested; times are means over
    the orders that have one. Only orders with fills and an arrival price
    count towards slippage and shortfall (``measured``).
    """

    orders: int
    measured: int
    filled_notional: Decimal
    slippage_bps: Decimal | None
    implementation_shortfall: Decimal
    fees: Decimal
    unconverted_fees: Mapping[str, Decimal]
    fill_ratio: Decimal | None
    mean_time_to_first_fill_ns: int | None
    mean_time_to_complete_ns: int | None

    @classmethod
    def of(cls, qualities: Iterable[ExecutionQuality]) -> ExecutionQualityTotals:
        sums = _Sums()
        for quality in qualities:
            sums.add(quality)
        return sums.totals()

    def metrics(self) -> dict[str, int | Decimal | None]:
        """Flat ``execution_*`` entries for the OMS's metrics (scalars only)."""
        return {
            "execution_orders": self.orders,
            "execution_measured_orders": self.measured,
            "execution_slippage_bps": self.slippage_bps,
            "execution_shortfall": self.implementation_shortfall,
            "execution_fees": self.fees,
            "execution_fill_ratio": self.fill_ratio,
            "execution_mean_time_to_first_fill_ns": self.mean_time_to_first_fill_ns,
            "execution_mean_time_to_complete_ns": self.mean_time_to_complete_ns,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "measured": self.measured,
            "filled_notional": str(self.filled_notional),
            "slippage_bps": _text(self.slippage_bps),
            "implementation_shortfall": str(self.implementation_shortfall),
            "fees": str(self.fees),
            "unconverted_fees": {asset: str(v) for asset, v in self.unconverted_fees.items()},
            "fill_ratio": _text(self.fill_ratio),
            "mean_time_to_first_fill_ns": self.mean_time_to_first_fill_ns,
            "mean_time_to_complete_ns": self.mean_time_to_complete_ns,
        }


class _Sums:
    """The additive parts of the totals: an order's figures can be taken out again
    exactly (when they change or the order is forgotten), so keeping the totals of
    thousands of orders costs only the orders that changed."""

    def __init__(self) -> None:
        self.orders = self.measured = 0
        self.requested = self.filled = self.notional = self.fees = _ZERO
        self.weighted = self.measured_notional = self.shortfall = _ZERO
        self.unconverted: dict[str, Decimal] = {}
        self.first = [0, 0]
        self.complete = [0, 0]

    def add(self, quality: ExecutionQuality, sign: int = 1) -> None:
        """Adds (``sign`` 1) or takes out (-1) one order's figures."""
        with decimal.localcontext(_SUM_CONTEXT):
            self.orders += sign
            self.requested += sign * quality.requested_quantity
            self.filled += sign * quality.filled_quantity
            notional = quality.filled_notional
            self.notional += sign * notional
            self.fees += sign * quality.fees
            for asset, amount in quality.unconverted_fees.items():
                total = self.unconverted.get(asset, _ZERO) + sign * amount
                if total:
                    self.unconverted[asset] = total
                else:
                    self.unconverted.pop(asset, None)
            slippage, shortfall = quality.slippage_bps, quality.implementation_shortfall
            if slippage is not None and shortfall is not None:
                self.measured += sign
                self.measured_notional += sign * notional
                self.weighted += sign * slippage * notional
                self.shortfall += sign * shortfall
            for duration, tally in (
                (quality.time_to_first_fill_ns, self.first),
                (quality.time_to_complete_ns, self.complete),
            ):
                if duration is not None:
                    tally[0] += sign * duration
                    tally[1] += sign

    def totals(self) -> ExecutionQualityTotals:
        with decimal.localcontext(_CONTEXT):
            slippage = self.weighted / self.measured_notional if self.measured_notional else None
            ratio = self.filled / self.requested if self.requested else None
            return ExecutionQualityTotals(
                orders=self.orders,
                measured=self.measured,
                filled_notional=+self.notional,
                slippage_bps=slippage,
                implementation_shortfall=+self.shortfall,
                fees=+self.fees,
                unconverted_fees=MappingProxyType(
                    {asset: +amount for asset, amount in self.unconverted.items()}
                ),
                fill_ratio=ratio,
                mean_time_to_first_fill_ns=_mean(self.first),
                mean_time_to_complete_ns=_mean(self.complete),
            )


@dataclass(frozen=True, slots=True)
class GetExecutionQuality:
    """Ask the OMS for execution quality: of one order (an ``ExecutionQuality`` or
    None), or with ``client_order_id`` None the report of every retained order
    that has an arrival price or a fill (a JSON-able dict: ``totals``, ``orders``)."""

    client_order_id: str | None = None


@dataclass(slots=True)
class _Marks:
    arrival_price: Decimal | None = None
    completed_ns: int | None = None


@dataclass
class ArrivalBook:
    """What execution quality needs that the order records do not keep: each
    order's arrival price, and when it completed (node clock).

    It lives in ``OmsState``: snapshotted with it, and rebuilt by replay (the
    arrival is its own journal entry, ``ARRIVAL``; the completion follows from
    the fills, replayed with the times they were applied). The arrival *time*
    is the order's registration (``TrackedOrderView.created_ns``), so it is
    not kept twice. An order leaves the book when the state forgets it.
    """

    _entries: dict[str, _Marks] = field(default_factory=dict)
    _changed: set[str] = field(default_factory=set, compare=False, repr=False)
    """Orders whose figures may have changed since :meth:`take_changed` (not state:
    a restored book starts with everything changed)."""
    _all_changed: bool = field(default=True, compare=False, repr=False)
    _parents: set[str] = field(default_factory=set, compare=False, repr=False)
    """The entries that are parent orders' (forgotten with their parents)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, client_order_id: object) -> bool:
        return client_order_id in self._entries

    def client_order_ids(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def set_arrival(self, client_order_id: str, price: Decimal, *, parent: bool = False) -> None:
        """Records the arrival price; a second call for the same order keeps the first.
        ``parent``: the id is a parent order's, forgotten by :meth:`keep_parents`."""
        check_decimal(self, "price", price, positive=True)
        if parent:
            self._parents.add(client_order_id)
        marks = self._entries.setdefault(client_order_id, _Marks())
        if marks.arrival_price is None:
            marks.arrival_price = price
            self._change(client_order_id)

    def inherit(self, client_order_id: str, predecessor: str) -> None:
        """A replacement (cancel/replace) keeps its logical order's arrival price."""
        found = self._entries.get(predecessor)
        if found is not None and found.arrival_price is not None:
            self.set_arrival(client_order_id, found.arrival_price)

    def complete(self, client_order_id: str, ts_ns: int) -> None:
        """The order was filled completely at ``ts_ns`` (node clock); the first call wins."""
        marks = self._entries.setdefault(client_order_id, _Marks())
        if marks.completed_ns is None:
            marks.completed_ns = ts_ns
        self._change(client_order_id)

    def filled(self, client_order_id: str, ts_ns: int, *, complete: bool) -> None:
        """A fill was applied to the order at ``ts_ns`` (node clock)."""
        if complete:
            self.complete(client_order_id, ts_ns)
        elif client_order_id in self._entries:
            self._change(client_order_id)

    def forget(self, client_order_id: str) -> None:
        if self._entries.pop(client_order_id, None) is not None:
            self._change(client_order_id)

    def mark_parents(self, parent_ids: Iterable[str]) -> None:
        """After a restore: which entries are parents' (the snapshot does not say)."""
        self._parents.update(pid for pid in parent_ids if pid in self._entries)

    def keep_parents(self, alive: Container[str]) -> None:
        """Forgets the arrival of every parent no longer ``alive`` (the parent book
        forgot it); cheap when nothing was forgotten."""
        for parent_id in [pid for pid in self._parents if pid not in alive]:
            self._parents.discard(parent_id)
            self._entries.pop(parent_id, None)

    @property
    def parent_count(self) -> int:
        return len(self._parents)

    def is_parent(self, key: str) -> bool:
        return key in self._parents

    def take_changed(self) -> tuple[bool, frozenset[str]]:
        """``(everything, ids)``: what changed since the last call, which starts afresh."""
        taken = (self._all_changed, frozenset(self._changed))
        self._all_changed = False
        self._changed.clear()
        return taken

    def _change(self, client_order_id: str) -> None:
        if self._all_changed:
            return
        self._changed.add(client_order_id)
        # Nobody asking for a long while: stop listing, everything has changed.
        if len(self._changed) > 2 * len(self._entries) + 1024:
            self._all_changed = True
            self._changed.clear()

    def arrival_price(self, client_order_id: str) -> Decimal | None:
        found = self._entries.get(client_order_id)
        return None if found is None else found.arrival_price

    def completed_ns(self, client_order_id: str) -> int | None:
        found = self._entries.get(client_order_id)
        return None if found is None else found.completed_ns

    def to_plain(self) -> list[list[Any]]:
        """``[client_order_id, arrival price text or None, completed_ns or None]`` rows."""
        return [
            [
                client_order_id,
                None if marks.arrival_price is None else str(marks.arrival_price),
                marks.completed_ns,
            ]
            for client_order_id, marks in self._entries.items()
        ]

    @classmethod
    def from_plain(cls, rows: object) -> ArrivalBook:
        """The book :meth:`to_plain` wrote; ``ValueError`` naming the row if malformed."""
        if not isinstance(rows, list):
            raise ValueError(f"arrivals: expected a list, not {type(rows).__name__}")
        book = cls()
        for index, row in enumerate(rows):
            where = f"arrivals[{index}]"
            if not isinstance(row, list) or len(row) != 3:
                raise ValueError(f"{where}: expected [client_order_id, price, completed_ns]")
            client_order_id, price, completed = row
            check_client_order_id(book, where, client_order_id)
            if completed is not None and (type(completed) is not int or completed < 0):
                raise ValueError(f"{where}: completed_ns {completed!r} is not an integer >= 0")
            parsed: Decimal | None = None
            if price is not None:
                try:
                    parsed = Decimal(price) if isinstance(price, str) else None
                except decimal.InvalidOperation:
                    parsed = None
                if parsed is None or not (parsed.is_finite() and parsed > 0):
                    raise ValueError(f"{where}: price {price!r} is not a positive decimal's text")
            book._entries[client_order_id] = _Marks(parsed, completed)
        return book


def order_quality(state: OmsState, client_order_id: str) -> ExecutionQuality | None:
    """The figures of one order the OMS retains, or None when it does not know it.

    The requested quantity is the order's own (a replacement's is what was
    left of its logical order when it was linked).
    """
    view = state.get(client_order_id)
    if view is None:
        return None
    arrivals = state.arrivals
    return ExecutionQuality.measure(
        side=view.order.side,
        requested_quantity=view.order.quantity,
        fills=state.fills(client_order_id),
        arrival_price=arrivals.arrival_price(client_order_id),
        arrival_ns=view.created_ns,
        first_fill_ns=view.first_fill_ns,
        completed_ns=arrivals.completed_ns(client_order_id),
    )


def parent_quality(state: OmsState, parent_id: str) -> ExecutionQuality | None:
    """The figures of one parent order over its children's fills, or None when the
    OMS does not know it. The arrival is the parent's (mid of the quote the OMS
    held when it accepted the parent), its times run from the acceptance, and it
    is complete when the parent is FILLED. A child the OMS has already forgotten
    takes its fills with it (children are forgotten long after their parent
    finished, as orders are)."""
    record = state.parents.get(parent_id)
    if record is None:
        return None
    fills: list[OrderFilled] = []
    first: list[int] = []
    for child in record.children:
        fills.extend(state.fills(child))
        view = state.get(child)
        if view is not None and view.first_fill_ns is not None:
            first.append(view.first_fill_ns)
    return ExecutionQuality.measure(
        side=record.order.side,
        requested_quantity=record.order.quantity,
        fills=fills,
        arrival_price=state.arrivals.arrival_price(parent_id),
        arrival_ns=record.accepted_ns,
        first_fill_ns=min(first) if first else None,
        completed_ns=record.closed_ns if record.state is ParentState.FILLED else None,
    )


def parents_report(state: OmsState, *, limit: int | None = None) -> dict[str, Any]:
    """``parent id -> figures`` of the parents the OMS keeps (the latest ``limit``)."""
    ids = [record.parent_id for record in state.parents]
    if limit is not None:
        ids = ids[-limit:] if limit > 0 else []
    found = ((pid, parent_quality(state, pid)) for pid in ids)
    return {pid: quality.to_dict() for pid, quality in found if quality is not None}


class QualityTracker:
    """Execution-quality totals over the retained orders, kept up to date by
    recomputing only the orders whose figures changed (the OMS asks for its
    metrics every status interval; recomputing thousands of orders each time
    would stall it). It belongs to the OMS's store: read it on the OMS's thread."""

    def __init__(self) -> None:
        self._book: ArrivalBook | None = None
        self._cache: dict[str, ExecutionQuality] = {}
        self._sums = _Sums()
        self.latest: ExecutionQualityTotals | None = None
        """The totals of the last :meth:`refresh` (None before the first)."""

    def refresh(self, state: OmsState) -> ExecutionQualityTotals:
        book = state.arrivals
        everything, changed = book.take_changed()
        if book is not self._book or everything:
            self._book, self._cache, self._sums = book, {}, _Sums()
            changed = frozenset(book.client_order_ids())
        for client_order_id in changed:
            old = self._cache.pop(client_order_id, None)
            if old is not None:
                self._sums.add(old, -1)
            new = (
                order_quality(state, client_order_id)
                if client_order_id in book and not book.is_parent(client_order_id)
                else None
            )
            if new is not None:
                self._cache[client_order_id] = new
                self._sums.add(new)
        self.latest = self._sums.totals()
        return self.latest

    def qualities(self) -> dict[str, ExecutionQuality]:
        """Each retained order's figures as of the last :meth:`refresh`, oldest first."""
        return dict(self._cache)


def quality_report(
    state: OmsState,
    *,
    limit: int | None = None,
    tracker: QualityTracker | None = None,
    totals: ExecutionQualityTotals | None = None,
) -> dict[str, Any]:
    """JSON-able: ``totals`` over every retained order with an arrival price or a
    completion, and ``orders`` (client order id -> figures), the most recent
    ``limit`` of them when given.

    On the OMS's thread pass its ``tracker``: only what changed is recomputed.
    Elsewhere pass the tracker's latest ``totals`` (then only the orders shown
    are computed), or nothing, and everything is (a final summary).
    """
    if tracker is not None:
        totals = tracker.refresh(state)
        shown = list(tracker.qualities().items())
    else:
        book = state.arrivals
        ids = [cid for cid in book.client_order_ids() if not book.is_parent(cid)]
        if totals is None:
            found = ((cid, order_quality(state, cid)) for cid in ids)
            measured = [(cid, quality) for cid, quality in found if quality is not None]
            totals = ExecutionQualityTotals.of(quality for _, quality in measured)
            shown = measured
        else:
            if limit is not None:
                ids = ids[-limit:] if limit > 0 else []
            found = ((cid, order_quality(state, cid)) for cid in ids)
            shown = [(cid, quality) for cid, quality in found if quality is not None]
    if limit is not None:
        shown = shown[-limit:] if limit > 0 else []
    return {
        "totals": totals.to_dict(),
        "orders": {client_order_id: quality.to_dict() for client_order_id, quality in shown},
        "parents": parents_report(state, limit=limit),
    }


def _mean(tally: list[int]) -> int | None:
    return tally[0] // tally[1] if tally[1] else None


def _duration(start: int | None, end: int | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, end - start)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
