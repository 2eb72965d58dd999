"""The synthetic order book that stands in for other market participants.

The book is a pure function of the last price: it is rebuilt on every look
rather than depleted by fills, so one order's taking never changes what the
next order finds. That keeps the simulator's state small (no per-level
queues to snapshot) and makes every fill price checkable by hand from the
last price and the configuration alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradenode.messages._enums import Side
from tradenode.sim._config import SimConfig
from tradenode.sim._numbers import bps_of, ceil_to_tick, floor_to_tick

__all__ = ["PriceLevel", "SyntheticBook"]

PriceLevel = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class SyntheticBook:
    """``depth_levels`` levels of ``level_quantity`` on each side of a last price.

    The touch sits half the spread either side of the last price, rounded
    outwards to the tick (bid down, ask up) so the spread never shrinks below
    what was configured. Level ``i`` is ``i * level_spacing_bps`` further out,
    again rounded outwards and at least one tick beyond the level before, so
    no two levels share a price. Bids stop at one tick: a price is never zero.
    """

    tick_size: Decimal
    spread_bps: Decimal
    depth_levels: int
    level_quantity: Decimal
    level_spacing_bps: Decimal
    slippage_bps: Decimal

    @classmethod
    def for_symbol(cls, config: SimConfig, symbol: str) -> SyntheticBook:
        spec = config.instrument(symbol)
        return cls(
            tick_size=spec.tick_size,
            spread_bps=spec.spread_bps,
            depth_levels=config.depth_levels,
            level_quantity=config.level_quantity_for(symbol),
            level_spacing_bps=config.level_spacing_bps,
            slippage_bps=config.slippage_bps,
        )

    def touch(self, last: Decimal) -> tuple[Decimal, Decimal]:
        half_spread = bps_of(last, self.spread_bps) / 2
        bid = max(floor_to_tick(last - half_spread, self.tick_size), self.tick_size)
        ask = max(ceil_to_tick(last + half_spread, self.tick_size), bid)
        return bid, ask

    def ask_prices(self, last: Decimal) -> list[Decimal]:
        _, ask = self.touch(last)
        prices: list[Decimal] = []
        for index in range(self.depth_levels):
            price = ceil_to_tick(ask + bps_of(ask, self.level_spacing_bps * index), self.tick_size)
            if prices:
                price = max(price, prices[-1] + self.tick_size)
            prices.append(price)
        return prices

    def bid_prices(self, last: Decimal) -> list[Decimal]:
        bid, _ = self.touch(last)
        prices: list[Decimal] = []
        for index in range(self.depth_levels):
            price = floor_to_tick(bid - bps_of(bid, self.level_spacing_bps * index), self.tick_size)
            if prices:
                price = min(price, prices[-1] - self.tick_size)
            if price <= 0:
                break
            prices.append(price)
        return prices

    def levels(self, last: Decimal, resting_side: Side) -> list[PriceLevel]:
        """The book's bids (``resting_side`` BUY) or asks (SELL), best first."""
        prices = self.bid_prices(last) if resting_side is Side.BUY else self.ask_prices(last)
        return [(price, self.level_quantity) for price in prices]

    def take(
        self, last: Decimal, taker_side: Side, quantity: Decimal, limit: Decimal | None
    ) -> list[PriceLevel]:
        """The fills, best first, that ``quantity`` would get by sweeping the book.

        Slippage worsens each level's price by ``slippage_bps``, rounded to the
        tick against the taker, but never past ``limit``: a limit order's
        price is a promise the venue keeps even when the book moves.
        """
        prices = self.ask_prices(last) if taker_side is Side.BUY else self.bid_prices(last)
        fills: list[PriceLevel] = []
        remaining = quantity
        for level_price in prices:
            if remaining <= 0:
                break
            if limit is not None and not _within_limit(taker_side, level_price, limit):
                break
            price = self._slipped(taker_side, level_price)
            if limit is not None:
                price = min(price, limit) if taker_side is Side.BUY else max(price, limit)
            taken = min(remaining, self.level_quantity)
            fills.append((price, taken))
            remaining -= taken
        return fills

    def _slipped(self, taker_side: Side, price: Decimal) -> Decimal:
        slip = bps_of(price, self.slippage_bps)
        if taker_side is Side.BUY:
            return ceil_to_tick(price + slip, self.tick_size)
        return max(floor_to_tick(price - slip, self.tick_size), self.tick_size)


def _within_limit(taker_side: Side, price: Decimal, limit: Decimal) -> bool:
    return price <= limit if taker_side is Side.BUY else price >= limit
