"""The synthetic order book that stands in for other market participants.

The book is a pure function of the last price: it is rebuilt on every look
rather than depleted by fills, so one order's taking never changes what the
next order finds. That keeps the simulator's state small (no per-level
queues to snapshot) and makes every fill price checkable by hand from the
last price and the configuration alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, getcontext

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

    _memo: list[_Ladder | None] = field(
        default_factory=lambda: [None], init=False, repr=False, compare=False, hash=False
    )
    """The book at the last price it was looked at (one entry). The book is a
    pure function of that price, and the price moves only on a tick, so every
    order between two ticks would otherwise price the same touch and levels
    again; see ``_Ladder`` for why a hit is exact."""

    def touch(self, last: Decimal) -> tuple[Decimal, Decimal]:
        ladder = self._ladder(last)
        return ladder.bid, ladder.ask

    def ask_prices(self, last: Decimal) -> list[Decimal]:
        return list(self._asks(self._ladder(last), self.depth_levels))

    def bid_prices(self, last: Decimal) -> list[Decimal]:
        return list(self._bids(self._ladder(last), self.depth_levels))

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
        fills: list[PriceLevel] = []
        remaining = quantity
        if remaining <= 0:
            return fills
        ladder = self._ladder(last)
        buy = taker_side is Side.BUY
        index = 0
        while True:
            # Levels are priced only as far as the sweep reaches.
            prices = self._asks(ladder, index + 1) if buy else self._bids(ladder, index + 1)
            if index >= len(prices):
                break
            level_price = prices[index]
            if limit is not None and not _within_limit(taker_side, level_price, limit):
                break
            price = self._slipped_at(ladder, buy, prices, index)
            if limit is not None:
                price = min(price, limit) if buy else max(price, limit)
            taken = min(remaining, self.level_quantity)
            fills.append((price, taken))
            remaining -= taken
            if remaining <= 0:
                break
            index += 1
        return fills

    # -- the memo ----------------------------------------------------------------

    def _ladder(self, last: Decimal) -> _Ladder:
        context = getcontext()
        ladder = self._memo[0]
        if (
            ladder is not None
            and ladder.last is last
            and ladder.prec == context.prec
            and ladder.rounding == context.rounding
        ):
            return ladder
        half_spread = bps_of(last, self.spread_bps) / 2
        bid = max(floor_to_tick(last - half_spread, self.tick_size), self.tick_size)
        ask = max(ceil_to_tick(last + half_spread, self.tick_size), bid)
        ladder = _Ladder(
            last, context.prec, context.rounding, bid, ask, depth_levels=self.depth_levels
        )
        self._memo[0] = ladder
        return ladder

    # A ladder's levels are tuples, extended into a local tuple and stored with
    # one assignment, and callers use the tuple they got back: a book read from
    # two threads at once (a fake venue's quote beside its matching) can store
    # only correct prefixes, never a half-extended ladder, and nobody reads a
    # prefix shorter than it asked for.

    def _asks(self, ladder: _Ladder, count: int) -> tuple[Decimal, ...]:
        """The first ``count`` ask levels (all of them when the book has fewer)."""
        asks = ladder.asks
        count = min(count, self.depth_levels)
        if len(asks) >= count:
            return asks
        tick = self.tick_size
        ask = ladder.ask
        while len(asks) < count:
            price = ceil_to_tick(ask + bps_of(ask, self.level_spacing_bps * len(asks)), tick)
            if asks:
                price = max(price, asks[-1] + tick)
            asks += (price,)
        if len(asks) > len(ladder.asks):
            ladder.asks = asks
        return asks

    def _bids(self, ladder: _Ladder, count: int) -> tuple[Decimal, ...]:
        """The first ``count`` bid levels (all of them when the book has fewer:
        bids stop before a price that would not be positive)."""
        bids = ladder.bids
        count = min(count, ladder.bid_levels)
        if len(bids) >= count:
            return bids
        tick = self.tick_size
        bid = ladder.bid
        while len(bids) < count:
            price = floor_to_tick(bid - bps_of(bid, self.level_spacing_bps * len(bids)), tick)
            if bids:
                price = min(price, bids[-1] - tick)
            if price <= 0:
                ladder.bid_levels = len(bids)
                break
            bids += (price,)
        if len(bids) > len(ladder.bids):
            ladder.bids = bids
        return bids

    def _slipped_at(
        self, ladder: _Ladder, buy: bool, prices: tuple[Decimal, ...], index: int
    ) -> Decimal:
        """The taker's price at level ``index`` of ``prices``, slippage included."""
        slipped = ladder.asks_slipped if buy else ladder.bids_slipped
        if index < len(slipped):
            return slipped[index]
        side = Side.BUY if buy else Side.SELL
        while len(slipped) <= index:
            slipped += (self._slipped(side, prices[len(slipped)]),)
        if buy and len(slipped) > len(ladder.asks_slipped):
            ladder.asks_slipped = slipped
        elif not buy and len(slipped) > len(ladder.bids_slipped):
            ladder.bids_slipped = slipped
        return slipped[index]

    def _slipped(self, taker_side: Side, price: Decimal) -> Decimal:
        slip = bps_of(price, self.slippage_bps)
        if taker_side is Side.BUY:
            return ceil_to_tick(price + slip, self.tick_size)
        return max(floor_to_tick(price - slip, self.tick_size), self.tick_size)


class _Ladder:
    """The book at one last price: the touch, and the levels priced so far.

    A hit returns exactly what a fresh computation would: the key is the very
    ``last`` object (a Decimal is immutable, and an equal value with another
    exponent is a miss, so no representation ever leaks from one price to
    another) and the decimal context's precision and rounding, the only parts
    of the context the arithmetic depends on (it runs in the caller's
    context, the simulator's ``EXACT``).
    """

    __slots__ = (
        "ask",
        "asks",
        "asks_slipped",
        "bid",
        "bid_levels",
        "bids",
        "bids_slipped",
        "last",
        "prec",
        "rounding",
    )

    def __init__(
        self,
        last: Decimal,
        prec: int,
        rounding: str,
        bid: Decimal,
        ask: Decimal,
        *,
        depth_levels: int,
    ) -> None:
        self.last = last
        self.prec = prec
        self.rounding = rounding
        self.bid = bid
        self.ask = ask
        self.asks: tuple[Decimal, ...] = ()
        self.bids: tuple[Decimal, ...] = ()
        self.bid_levels = depth_levels
        """How many bid levels there are: fewer than ``depth_levels`` once a
        level is found not to be positive."""
        self.asks_slipped: tuple[Decimal, ...] = ()
        self.bids_slipped: tuple[Decimal, ...] = ()


def _within_limit(taker_side: Side, price: Decimal, limit: Decimal) -> bool:
    return price <= limit if taker_side is Side.BUY else price >= limit
