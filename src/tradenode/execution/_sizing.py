"""Quantities in lots and times in nanoseconds: what the VWAP, Iceberg and POV
policies share."""

from __future__ import annotations

from decimal import Decimal

__all__ = ["floor_to_lot", "seconds_to_ns"]


def floor_to_lot(quantity: Decimal, lot: Decimal) -> Decimal:
    """The largest multiple of ``lot`` not above ``quantity`` (never negative).

    Rounding *down* is what keeps a parent from over-filling: a child is
    never larger than what is left, however the remainder divides.
    """
    if quantity <= 0:
        return Decimal(0)
    return (quantity // lot) * lot


def seconds_to_ns(seconds: float | int | Decimal) -> int:
    """Whole nanoseconds: timers and timestamps are integers in the node."""
    return round(Decimal(str(seconds)) * 1_000_000_000)
