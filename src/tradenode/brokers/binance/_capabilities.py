"""What Binance Spot can do, as the core needs to know it (``VenueCapabilities``)."""

from __future__ import annotations

from ...actors._capabilities import AmendMode, CancelAllScope, VenueCapabilities
from ...actors._contract import AcceptanceWindow

__all__ = ["CLOCK_MARGIN_SECONDS", "binance_acceptance_window", "binance_capabilities"]

#: Binance refuses a request stamped more than 1000 ms ahead of its clock; our
#: clock offset is measured at connect, so the venue's clock and ours disagree
#: by less than that, and a window closing this much later is closed for both.
CLOCK_MARGIN_SECONDS = 1.0


def binance_capabilities(recv_window_ms: int) -> VenueCapabilities:
    """What Binance Spot can do, as the core needs to know it."""
    return VenueCapabilities(
        amend=AmendMode.CANCEL_REPLACE,
        # Spot has no positions to reduce: Binance refuses the flag.
        reduce_only=False,
        cancel_all=CancelAllScope.SYMBOL,
        positions_are_balances=True,
        acceptance=binance_acceptance_window(recv_window_ms),
    )


def binance_acceptance_window(recv_window_ms: int) -> AcceptanceWindow:
    """How long after its deadline Binance may still accept an order request.

    Binance checks ``serverTime - timestamp <= recvWindow`` on receipt and
    again before the matching engine; the broker signs no order request past
    its deadline, so the signed timestamp is at most the deadline and nothing
    is accepted later than deadline + recvWindow (+ the clocks' margin)."""
    return AcceptanceWindow(recv_window_ms / 1000, CLOCK_MARGIN_SECONDS)
