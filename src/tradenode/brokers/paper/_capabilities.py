"""What the embedded paper venue can do, as the core needs to know it."""

from __future__ import annotations

from ...actors._capabilities import (
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)
from ...actors._contract import AcceptanceWindow
from ...messages._enums import OrderType, TimeInForce

__all__ = ["paper_capabilities"]


def paper_capabilities(
    *, amend_natively: bool, allow_short: bool, latency: float
) -> VenueCapabilities:
    """The simulator amends natively or by cancel/replace as configured, cancels
    the whole account in one request, and holds spot balances unless it
    allows shorting. It runs every order type and post-only LIMIT orders,
    every time in force but the auction ones (OPG, CLS: it runs no
    auctions), fractional quantities (in lots), and publishes quotes and its
    public tape."""
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
        order_types=frozenset(OrderType),
        time_in_force=frozenset(TimeInForce) - {TimeInForce.OPG, TimeInForce.CLS},
        post_only=True,
        batch_submit=0,
        batch_cancel=0,
        # The simulator takes any id the core makes.
        client_ids=ClientIdRules(),
        fractional_quantity=True,
        market_data=frozenset({MarketDataKind.QUOTES, MarketDataKind.TRADES}),
    )
