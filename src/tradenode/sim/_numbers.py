"""Decimal arithmetic shared by the simulator's modules.

The property tests compare every balance with a sum recomputed from the fill
history, so the simulator must never round a product of a price, a quantity
and a basis-point rate. Every public entry point therefore runs inside
:data:`EXACT`, whose sixty digits hold such products exactly for any realistic
instrument, and whose traps turn a malformed value into an exception instead
of a silent NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    getcontext,
    setcontext,
)
from typing import ParamSpec, TypeVar

__all__ = [
    "BPS",
    "EXACT",
    "ZERO",
    "bps_of",
    "ceil_to_tick",
    "exact",
    "floor_to_tick",
    "is_finite_decimal",
    "is_multiple",
    "round_to_tick",
]

EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
BPS = Decimal(10000)
ZERO = Decimal(0)

_P = ParamSpec("_P")
_R = TypeVar("_R")


def exact(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``function`` in :data:`EXACT` whatever context the caller has set."""

    @functools.wraps(function)
    def in_exact_context(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        # EXACT itself becomes the thread's context for the call, instead of a
        # ``localcontext`` copy of it (a third of the cost, on every order). What
        # differs is only where the sticky flags land, and EXACT already
        # collects them: ``bps_of`` and friends call its methods directly.
        # Nothing reads the flags, a trap fires on an operation's own signal,
        # and the simulator never changes its context's settings, so the
        # arithmetic is the same. The caller's context comes back however the
        # call ends.
        saved = getcontext()
        setcontext(EXACT)
        try:
            return function(*args, **kwargs)
        finally:
            setcontext(saved)

    return in_exact_context


def is_finite_decimal(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def is_multiple(value: Decimal, step: Decimal) -> bool:
    # A quotient too long for the context raises rather than lying, and a
    # value that long cannot be a sensible multiple of a tick or lot anyway.
    try:
        return EXACT.remainder(value, step) == 0
    except InvalidOperation:
        return False


def bps_of(amount: Decimal, rate_bps: Decimal) -> Decimal:
    return EXACT.divide(EXACT.multiply(amount, rate_bps), BPS)


def _to_tick(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    ticks = EXACT.divide(price, tick).to_integral_value(rounding=rounding)
    return EXACT.multiply(ticks, tick)


def round_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return _to_tick(price, tick, ROUND_HALF_EVEN)


def floor_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return _to_tick(price, tick, ROUND_FLOOR)


def ceil_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    return _to_tick(price, tick, ROUND_CEILING)
