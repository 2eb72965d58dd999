"""Iceberg as a pure policy: show a little, refresh on fill, never show more.

An iceberg works a large limit order while the book only ever sees its
*display quantity*: one child at a time rests at the venue, and only when it
has filled (or ended) does the next one go out. The rule that matters is the
one the venue can check: the open children's remaining quantity never
exceeds the display quantity, so a child is sent only when nothing of the
parent is showing (a child sent but not yet acknowledged counts as
showing: its outcome is not known).

An optional ``price_offset`` makes the refreshes harder to spot: each
refresh's price is drawn, from a generator seeded by the parent's id and the
refresh number, within ``price_offset`` of the limit on the passive side
(below it for a buy, above it for a sell), so a refresh is never worse than
the limit and a restarted actor draws the same price for the same refresh.

Where a venue has a native iceberg (Binance's ``icebergQty``), the venue
itself hides the rest; the node cannot yet say so to a venue (see the
report on issue #18), so every venue gets the emulated one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from ..messages._enums import Side

__all__ = ["IcebergChild", "IcebergPolicy"]

_DRAW_SCALE = 2**64


@dataclass(frozen=True, slots=True)
class IcebergChild:
    """The next slice to show: its size, its limit price and its refresh number."""

    refresh: int
    quantity: Decimal
    price: Decimal


class IcebergPolicy:
    """Which child to show next, given what the parent has filled and has showing."""

    def __init__(
        self,
        *,
        parent_id: str,
        side: Side,
        quantity: Decimal,
        display_quantity: Decimal,
        limit_price: Decimal,
        price_offset: Decimal | None = None,
        tick_size: Decimal | None = None,
    ) -> None:
        self.parent_id = parent_id
        self.side = side
        self.quantity = quantity
        self.display_quantity = display_quantity
        self.limit_price = limit_price
        self.price_offset = price_offset
        self.tick_size = tick_size if tick_size is not None else _quantum(limit_price)

    def price_for(self, refresh: int) -> Decimal:
        """Refresh ``refresh``'s limit: the limit itself, or a seeded draw within
        ``price_offset`` of it on the passive side, in whole ticks."""
        if not self.price_offset:
            return self.limit_price
        ticks = int(self.price_offset // self.tick_size)
        if ticks <= 0:
            return self.limit_price
        digest = hashlib.sha256(f"{self.parent_id}:{refresh}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") * (ticks + 1) // _DRAW_SCALE
        price = self.limit_price - self.side.sign * draw * self.tick_size
        return price if price > 0 else self.limit_price

    def next_child(
        self, *, filled: Decimal, showing: Decimal, refreshes: int
    ) -> IcebergChild | None:
        """The next child, or None while anything is showing or nothing is left.

        ``showing``: the remaining quantity of every child not yet terminal
        (sent but unacknowledged included); ``refreshes``: how many children
        were sent so far (the next one's number).
        """
        if showing > 0:
            return None
        left = self.quantity - filled
        if left <= 0:
            return None
        return IcebergChild(
            refresh=refreshes,
            quantity=min(self.display_quantity, left),
            price=self.price_for(refreshes),
        )


def _quantum(value: Decimal) -> Decimal:
    """The smallest step ``value`` is written in (``12.50`` -> ``0.01``)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(min(exponent, 0))
