"""What a venue can do, declared by its adapter and consulted by the core.

The core never assumes a venue feature: the OMS modifies by native amend
or by cancel/replace as the venue declares, the kill switch cancels with
one request per symbol (or per account) where the venue has a cancel-all,
and flattens with reduce-only orders only where the venue honours them (a
spot venue has no positions to reduce: Binance Spot refuses the flag, so a
flatten there is a plain opposite-side order no larger than what the venue
holds). The breaker's exactly-once rule needs the venue's acceptance window.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ._contract import AcceptanceWindow

__all__ = ["AmendMode", "CancelAllScope", "VenueCapabilities"]


class AmendMode(enum.Enum):
    NATIVE = "native"
    """The venue changes an order in place; it keeps its client order id."""
    CANCEL_REPLACE = "cancel_replace"
    """A modify is a cancel plus a new order under a new client order id."""


class CancelAllScope(enum.Enum):
    SYMBOL = "symbol"
    """One request cancels every open order of one symbol (Binance)."""
    ACCOUNT = "account"
    """One request cancels every open order of the account."""
    NONE = "none"
    """Orders are cancelled one by one."""


@dataclass(frozen=True, slots=True)
class VenueCapabilities:
    """The features of one venue connection the core consults."""

    amend: AmendMode = AmendMode.NATIVE
    reduce_only: bool = False
    """Whether the venue honours reduce-only orders (refusing what would grow a position)."""
    cancel_all: CancelAllScope = CancelAllScope.NONE
    positions_are_balances: bool = False
    """Spot: a position is what the account holds of the base asset, and selling
    needs it held; a flatten order is sized to what the venue's account shows."""
    acceptance: AcceptanceWindow | None = None
    """When the venue can no longer accept a request (see ``AcceptanceWindow``);
    None: never known, so an order of unknown outcome is never re-sent blindly."""

    @property
    def amends_natively(self) -> bool:
        return self.amend is AmendMode.NATIVE
