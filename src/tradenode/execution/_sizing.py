"""What the VWAP, Iceberg and POV policies share: quantities in lots, and the
shape of a parameter problem.

Policies never raise on bad parameters: a parent order with a negative
duration or a display quantity above its total is *denied* with a code and
a reason, the same way the risk guard denies an order, so each check returns
a :class:`ParamProblem` (or None) for the framework to turn into the denial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "ParamProblem",
    "as_number",
    "check_duration",
    "check_fraction",
    "check_positive",
    "floor_to_lot",
    "seconds_to_ns",
]


@dataclass(frozen=True, slots=True)
class ParamProblem:
    """Why an algorithm's parameters cannot run: ``code`` for machines, ``reason`` for people."""

    code: str
    reason: str


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


def as_number(value: object) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value)) if math.isfinite(value) else None
    return None


def check_duration(name: str, value: object, *, optional: bool = False) -> ParamProblem | None:
    """A duration in seconds must be a finite number above zero."""
    if value is None and optional:
        return None
    number = as_number(value)
    if number is None or number <= 0:
        return ParamProblem(
            "INVALID_DURATION", f"{name}={value!r}: must be a number of seconds > 0"
        )
    return None


def check_positive(name: str, value: object, *, optional: bool = False) -> ParamProblem | None:
    """A quantity or price: a finite Decimal above zero (floats round, so they are refused)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        return ParamProblem("INVALID_PARAMETER", f"{name}={value!r}: must be a finite Decimal")
    if value <= 0:
        return ParamProblem("INVALID_PARAMETER", f"{name}={value}: must be greater than zero")
    return None


def check_fraction(name: str, value: object, *, optional: bool = False) -> ParamProblem | None:
    """A participation rate: a Decimal in (0, 1]."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal) or not value.is_finite():
        return ParamProblem(
            "PARTICIPATION_OUT_OF_RANGE", f"{name}={value!r}: must be a Decimal in (0, 1]"
        )
    if not Decimal(0) < value <= Decimal(1):
        return ParamProblem("PARTICIPATION_OUT_OF_RANGE", f"{name}={value}: must be within (0, 1]")
    return None
