"""Where an order without a venue goes: the routing policies, pure.

The router actor hands this module what it knows of each venue listing the
instrument (is the venue there, is its breaker open, its last quote, its
taker fee) and gets back a ``RouteDecision``: one leg per venue the order
goes to (several for ``split``), the venues to fail over to, in order, and
a sentence saying why. No I/O, no clock, no actors: every choice is
reproducible from its inputs, which is what the unit tests pin.

A venue whose breaker is OPEN, or that is not connected, is never chosen
and never a failover target: it would refuse the order at once. A HALF_OPEN
breaker admits a probe, so its venue stays a candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .._config import RoutingPolicy
from ..messages._enums import DenialCode, Side
from ..messages._messages import Quote
from ._breaker_state import CircuitState

__all__ = ["Listing", "NoRouteError", "RouteDecision", "RouteLeg", "choose_route"]

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Listing:
    """What the router knows of one venue listing the instrument."""

    venue: str
    symbol: str
    connected: bool
    circuit: CircuitState | None = None
    """The venue's breaker state; None when unknown (treated as closed)."""
    quote: Quote | None = None
    taker_fee_bps: Decimal = Decimal(0)

    @property
    def unavailable(self) -> str | None:
        """Why this venue cannot take an order now, or None."""
        if not self.connected:
            return "not connected"
        if self.circuit is CircuitState.OPEN:
            return "breaker OPEN"
        return None

    def net_price(self, side: Side) -> Decimal | None:
        """What one unit costs (a buy) or yields (a sell) at the top of the book, fee included."""
        if self.quote is None:
            return None
        fee = self.taker_fee_bps / _BPS
        if side is Side.BUY:
            return self.quote.ask * (1 + fee)
        return self.quote.bid * (1 - fee)

    def top_size(self, side: Side) -> Decimal | None:
        """The size the order would take at the top of the book (asks for a buy)."""
        if self.quote is None:
            return None
        size = getattr(self.quote, "ask_size" if side is Side.BUY else "bid_size", None)
        return size if isinstance(size, Decimal) and size > 0 else None


@dataclass(frozen=True, slots=True)
class RouteLeg:
    venue: str
    symbol: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class RouteDecision:
    policy: RoutingPolicy
    legs: tuple[RouteLeg, ...]
    failover: tuple[tuple[str, str], ...]
    """(venue, symbol) to try next, in order, should a leg's venue refuse it for a
    transport reason (for ``split``: the venues without a leg first)."""
    reason: str

    def describe(self, leg: RouteLeg) -> str:
        """The route as recorded on the order: policy, venue, why."""
        return f"{self.policy.value} -> {leg.venue}: {self.reason}"


class NoRouteError(Exception):
    """No venue can take the order; ``code`` and ``reason`` go into its denial."""

    def __init__(self, code: DenialCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def choose_route(
    *,
    instrument: str,
    side: Side,
    quantity: Decimal,
    listings: Sequence[Listing],
    policy: RoutingPolicy,
    min_split_quantity: Decimal = Decimal(0),
) -> RouteDecision:
    """Pick the venue(s) for ``quantity`` of ``instrument``; ``listings`` in preference order.

    Raises ``NoRouteError`` when no listed venue can take the order now.
    """
    if not listings:
        raise NoRouteError(
            DenialCode.NO_ROUTE, f"instrument {instrument} is not listed on any venue"
        )
    available = [listing for listing in listings if listing.unavailable is None]
    skipped = [
        f"{listing.venue} {listing.unavailable}"
        for listing in listings
        if listing.unavailable is not None
    ]
    skipped_text = f"; skipped {', '.join(skipped)}" if skipped else ""
    if not available:
        raise NoRouteError(
            DenialCode.NO_ROUTE,
            f"no venue can take {instrument} now: {', '.join(skipped)}",
        )
    if policy is RoutingPolicy.BEST_PRICE:
        ranked, why = _by_price(side, available)
    elif policy is RoutingPolicy.SPLIT:
        return _split(side, quantity, available, min_split_quantity, skipped_text)
    else:
        ranked = available
        why = f"first available of {', '.join(listing.venue for listing in listings)}"
    first = ranked[0]
    return RouteDecision(
        policy=policy,
        legs=(RouteLeg(first.venue, first.symbol, quantity),),
        failover=tuple((listing.venue, listing.symbol) for listing in ranked[1:]),
        reason=why + skipped_text,
    )


def _by_price(side: Side, available: Sequence[Listing]) -> tuple[list[Listing], str]:
    """Quoted venues best net price first (ties keep the preference order), then the rest."""
    quoted = [listing for listing in available if listing.net_price(side) is not None]
    unquoted = [listing for listing in available if listing.net_price(side) is None]
    if not quoted:
        return list(available), "no quotes yet, first available by preference"
    sign = 1 if side is Side.BUY else -1
    ranked = sorted(
        quoted,
        key=lambda listing: sign * _known(listing.net_price(side)),
    )
    touch = "ask" if side is Side.BUY else "bid"
    parts = []
    for listing in ranked:
        assert listing.quote is not None
        price = listing.quote.ask if side is Side.BUY else listing.quote.bid
        parts.append(
            f"{listing.venue} {touch} {price} {'+' if side is Side.BUY else '-'} "
            f"{listing.taker_fee_bps} bps = {_known(listing.net_price(side)).normalize():f}"
        )
    return [*ranked, *unquoted], "best net price: " + "; ".join(parts)


def _split(
    side: Side,
    quantity: Decimal,
    available: Sequence[Listing],
    min_quantity: Decimal,
    skipped_text: str,
) -> RouteDecision:
    """Take each venue's top-of-book size in turn, best net price first; what the
    tops cannot hold goes to the best venue. Shares below ``min_quantity`` are
    folded into the best venue's leg."""
    ranked, _ = _by_price(side, available)
    remaining = quantity
    shares: dict[str, Decimal] = {}
    for listing in ranked:
        size = listing.top_size(side)
        if size is None or remaining <= 0:
            continue
        take = min(size, remaining)
        shares[listing.venue] = take
        remaining -= take
    best = ranked[0]
    if remaining > 0:
        shares[best.venue] = shares.get(best.venue, Decimal(0)) + remaining
    for venue in [v for v in shares if v != best.venue]:
        if shares[venue] < min_quantity:
            shares[best.venue] = shares.get(best.venue, Decimal(0)) + shares.pop(venue)
    legs = tuple(
        RouteLeg(listing.venue, listing.symbol, shares[listing.venue])
        for listing in ranked
        if listing.venue in shares
    )
    sizes = ", ".join(
        f"{listing.venue} {'asks' if side is Side.BUY else 'bids'} {listing.top_size(side)}"
        for listing in ranked
    )
    split = ", ".join(f"{leg.quantity} on {leg.venue}" for leg in legs)
    without_leg = [listing for listing in ranked if listing.venue not in shares]
    with_leg = [listing for listing in ranked if listing.venue in shares]
    return RouteDecision(
        policy=RoutingPolicy.SPLIT,
        legs=legs,
        failover=tuple((listing.venue, listing.symbol) for listing in [*without_leg, *with_leg]),
        reason=f"split by top-of-book size ({sizes}): {split}{skipped_text}",
    )


def _known(value: Decimal | None) -> Decimal:
    assert value is not None
    return value
