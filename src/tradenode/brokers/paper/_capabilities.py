"""What the embedded paper venue can do, as the core needs to know it."""

from __future__ import annotations

from ...actors._capabilities import AmendMode, CancelAllScope, VenueCapabilities
from ...actors._contract import AcceptanceWindow

__all__ = ["paper_capabilities"]


def paper_capabilities(
    *, amend_natively: bool, allow_short: bool, latency: float
) -> VenueCapabilities:
    """The simulator amends natively or by cancel/replace as configured, cancels
    the whole account in one request, and holds spot balances unless it
    allows shorting."""
    return VenueCapabilities(
        amend=AmendMode.NATIVE if amend_natively else AmendMode.CANCEL_REPLACE,
        # The simulator does not enforce reduce-only: flatten orders are sized
        # to the position instead.
        reduce_only=False,
        cancel_all=CancelAllScope.ACCOUNT,
        positions_are_balances=not allow_short,
        # The paper venue processes a request ``latency`` after the broker hands
        # it over, and the broker hands nothing over past its deadline.
        acceptance=AcceptanceWindow(latency),
    )
