"""Odd field values for the tests that hold a parser's quick path to its full
field-by-field reading (``test_binance_fast_order``, ``test_binance_fast_events``):
each payload is read both ways and the outcomes compared."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

MISSING = object()
"""Stands for a field left out of the payload."""

ODD_VALUES: tuple[object, ...] = (
    MISSING,
    None,
    "",
    0,
    -1,
    5,
    True,
    False,
    1.5,
    Decimal("2.5"),
    Decimal("-2.5"),
    Decimal("NaN"),
    "abc",
    "0",
    "-0",
    "-1",
    "1e5",
    "1E-8",
    ".5",
    "5.",
    " 1",
    "1\n",
    "NaN",
    "Infinity",
    "\u0663",
    "1_000",
    "BUY",
    "SELL",
    "buy",
    "MARKET",
    "LIMIT",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "GTC",
    "GTX",
    "NEW",
    "TRADE",
    "TRADE_PREVENTION",
    "EXPIRED_IN_MATCH",
    "PENDING",
    [],
    {},
)
"""Each one put in place of one field (or ``MISSING``: the field left out)."""

PAIR_VALUES: tuple[object, ...] = (MISSING, None, "", 0, "-1", "x", True)
"""A shorter list for every pair of fields changed at once."""


def with_field(base: dict[str, Any], key: str, value: object) -> dict[str, Any]:
    """``base`` with ``key`` set to ``value``, or left out for ``MISSING``."""
    payload = dict(base)
    if value is MISSING:
        payload.pop(key, None)
    else:
        payload[key] = value
    return payload
