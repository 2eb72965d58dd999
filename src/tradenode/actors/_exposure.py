"""Positions and exposure per instrument, summed across the venues that list it.

The OMS keeps positions per ``(venue, symbol)``: what each venue holds for us,
which is what can be liquidated there. An instrument listed on several venues
(``instruments:`` in the config: ``BTC-USD`` is ``BTCUSDT`` on one venue and
``BTC-USD`` on another) is one risk, though: a long on one venue and a long
on the other are twice the position. This module is the pure view across
venues, used by the risk guard's limits and by the node's reports:

- a listed ``(venue, symbol)`` belongs to its instrument; an unlisted one is
  an instrument of its own, named ``venue:symbol`` (two venues trading the
  same symbol name without a listing saying so are not assumed to be one
  instrument);
- an instrument's **quantity** is the sum of its venues' signed quantities;
- its **value** is the sum of each venue's quantity times that venue's mark
  (signed: a long on one venue and a short on another offset), and its
  **gross value** the sum of their absolute values;
- a mark is the venue's last trade, else its quote's mid; a venue holding a
  position without a mark leaves the value unknown (None), never guessed.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from ..messages._messages import PositionSnapshot, Quote

__all__ = [
    "Exposure",
    "GetExposure",
    "InstrumentExposure",
    "Listings",
    "VenueExposure",
    "instrument_keys",
    "instrument_name",
    "quote_mark",
]

VenueSymbol = tuple[str, str]

_ZERO = Decimal(0)
_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)


@runtime_checkable
class Listings(Protocol):
    """Where each instrument is listed (the config's ``InstrumentMap`` is one)."""

    def instrument_of(self, venue: str, symbol: str) -> str | None: ...

    def listings(self, instrument: str) -> tuple[tuple[str, str], ...]: ...


def instrument_name(listings: Listings | None, venue: str, symbol: str) -> str:
    """The instrument ``symbol`` on ``venue`` is: its listing's, else ``venue:symbol``."""
    found = None if listings is None else listings.instrument_of(venue, symbol)
    return f"{venue}:{symbol}" if found is None else found


def instrument_keys(listings: Listings | None, venue: str, symbol: str) -> tuple[VenueSymbol, ...]:
    """Every ``(venue, symbol)`` of the instrument ``symbol`` on ``venue`` is, itself first."""
    key = (venue, symbol)
    if listings is None:
        return (key,)
    found = listings.instrument_of(venue, symbol)
    if found is None:
        return (key,)
    return (key, *(listing for listing in listings.listings(found) if listing != key))


def quote_mark(quote: Quote) -> Decimal:
    """The price a position is valued at from a quote: its last trade, else its mid."""
    if quote.last is not None:
        return quote.last
    with decimal.localcontext(_CONTEXT):
        return (quote.bid + quote.ask) / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueExposure:
    """One venue's part of an instrument."""

    venue: str
    symbol: str
    quantity: Decimal
    mark: Decimal | None
    value: Decimal | None
    """``quantity * mark``; None without a mark (zero for a flat position)."""
    avg_price: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "quantity": str(self.quantity),
            "mark": _text(self.mark),
            "value": _text(self.value),
            "avg_price": str(self.avg_price),
            "realized_pnl": str(self.realized_pnl),
            "unrealized_pnl": str(self.unrealized_pnl),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentExposure:
    """An instrument across its venues: net quantity and value, with each venue's part."""

    instrument: str
    listed: bool
    """True when ``instruments:`` lists it (else it is one venue's symbol)."""
    quantity: Decimal
    value: Decimal | None
    """Signed; None when a venue holding a position has no mark."""
    gross_value: Decimal | None
    venues: tuple[VenueExposure, ...]

    def fraction_of(self, equity: Decimal) -> Decimal | None:
        """``|value| / equity``, the figure ``max_position_pct`` limits."""
        if self.value is None or equity <= 0:
            return None
        with decimal.localcontext(_CONTEXT):
            return abs(self.value) / equity

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "listed": self.listed,
            "quantity": str(self.quantity),
            "value": _text(self.value),
            "gross_value": _text(self.gross_value),
            "venues": [venue.to_dict() for venue in self.venues],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    """Every instrument the node holds or has held, in name order."""

    instruments: tuple[InstrumentExposure, ...]

    @classmethod
    def build(
        cls,
        positions: Iterable[PositionSnapshot],
        *,
        listings: Listings | None = None,
        marks: Mapping[VenueSymbol, Decimal] | None = None,
    ) -> Exposure:
        """The view of net position snapshots (per-strategy ones are skipped: the net
        snapshot already sums them), valued at ``marks`` per ``(venue, symbol)``."""
        marks = {} if marks is None else marks
        grouped: dict[str, list[VenueExposure]] = {}
        listed: dict[str, bool] = {}
        with decimal.localcontext(_CONTEXT):
            for snapshot in positions:
                if snapshot.strategy_id is not None:
                    continue
                key = (snapshot.venue, snapshot.symbol)
                name = instrument_name(listings, *key)
                listed[name] = listings is not None and (listings.instrument_of(*key) is not None)
                mark = marks.get(key)
                if snapshot.quantity == 0:
                    value: Decimal | None = _ZERO
                else:
                    value = None if mark is None else snapshot.quantity * mark
                grouped.setdefault(name, []).append(
                    VenueExposure(
                        venue=snapshot.venue,
                        symbol=snapshot.symbol,
                        quantity=snapshot.quantity,
                        mark=mark,
                        value=value,
                        avg_price=snapshot.avg_price,
                        realized_pnl=snapshot.realized_pnl,
                        unrealized_pnl=snapshot.unrealized_pnl,
                    )
                )
            instruments = []
            for name in sorted(grouped):
                parts = tuple(sorted(grouped[name], key=lambda part: (part.venue, part.symbol)))
                values = [part.value for part in parts]
                known = None not in values
                instruments.append(
                    InstrumentExposure(
                        instrument=name,
                        listed=listed[name],
                        quantity=sum((part.quantity for part in parts), _ZERO),
                        value=sum((v for v in values if v is not None), _ZERO) if known else None,
                        gross_value=(
                            sum((abs(v) for v in values if v is not None), _ZERO) if known else None
                        ),
                        venues=parts,
                    )
                )
        return cls(instruments=tuple(instruments))

    def get(self, instrument: str) -> InstrumentExposure | None:
        return next((item for item in self.instruments if item.instrument == instrument), None)

    def to_dict(self) -> dict[str, Any]:
        return {item.instrument: item.to_dict() for item in self.instruments}


@dataclass(frozen=True, slots=True)
class GetExposure:
    """Ask the OMS for the positions per instrument across venues (an ``Exposure``)."""


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
