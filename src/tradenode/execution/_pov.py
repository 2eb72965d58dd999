"""POV (percent of volume) as a pure policy: follow the market's own volume.

A POV parent trades a fixed fraction of what the market trades: after the
market has traded V (from the venue's public trade stream, *excluding* this
parent's own fills, which the tape also prints) the parent aims to have
filled ``participation`` x V, and stays within its bounds:

- never above ``max_participation`` x V, counting every open child as if it
  filled: a child is sized so that even then the bound holds;
- when below ``min_participation`` x V, the policy says the parent is
  *behind*, and the actor sends the catch-up child marketable.

The policy holds no state: the actor hands it the market volume since the
parent started, what the OMS says is filled and open, and gets the next
child's size. Children below ``min_child_quantity`` wait for more volume
(tiny orders cost more than they track), except the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ._sizing import floor_to_lot

__all__ = ["PovChild", "PovPolicy"]


@dataclass(frozen=True, slots=True)
class PovChild:
    """The next child: its size, and whether it catches up a parent below its minimum."""

    quantity: Decimal
    behind: bool


class PovPolicy:
    """The next child of a parent that trades ``participation`` of the market's volume."""

    def __init__(
        self,
        *,
        quantity: Decimal,
        participation: Decimal,
        lot: Decimal,
        min_participation: Decimal | None = None,
        max_participation: Decimal | None = None,
        min_child_quantity: Decimal | None = None,
    ) -> None:
        self.quantity = quantity
        self.participation = participation
        self.lot = lot
        self.min_participation = min_participation if min_participation is not None else Decimal(0)
        self.max_participation = (
            max_participation if max_participation is not None else participation
        )
        self.min_child_quantity = min_child_quantity if min_child_quantity is not None else lot

    def ceiling(self, market_volume: Decimal) -> Decimal:
        """The most the parent may have filled (or have open) after ``market_volume``."""
        return min(self.quantity, floor_to_lot(self.max_participation * market_volume, self.lot))

    def floor(self, market_volume: Decimal) -> Decimal:
        """The least the parent should have filled after ``market_volume``."""
        return min(self.quantity, self.min_participation * market_volume)

    def target(self, market_volume: Decimal) -> Decimal:
        return min(self.quantity, floor_to_lot(self.participation * market_volume, self.lot))

    def is_behind(self, market_volume: Decimal, filled: Decimal) -> bool:
        return filled < self.floor(market_volume)

    def within_bounds(self, market_volume: Decimal, filled: Decimal, *, slack: Decimal) -> bool:
        """Whether ``filled`` is within [min, max] x ``market_volume``; ``slack``
        forgives the minimum by the granularity children are sent in."""
        return self.floor(market_volume) - slack <= filled <= self.ceiling(market_volume)

    def next_child(
        self, *, market_volume: Decimal, filled: Decimal, open_quantity: Decimal
    ) -> PovChild | None:
        """The next child, or None until the market has traded enough for one."""
        committed = filled + open_quantity
        left = self.quantity - committed
        if left <= 0:
            return None
        wanted = min(self.target(market_volume), self.ceiling(market_volume)) - committed
        size = floor_to_lot(min(wanted, left), self.lot)
        if size <= 0 or (size < self.min_child_quantity and size < left):
            return None
        return PovChild(quantity=size, behind=self.is_behind(market_volume, filled))
