"""What an OKX spot account can do, as the core needs to know it (``VenueCapabilities``).

Facts from the OKX v5 docs (fact sheet ``crypto.md`` section 2), restricted
to what this adapter's codec expresses (``_codec.OKX_ORDER_TYPES``,
``order_args``).
"""

from __future__ import annotations

from ...actors._capabilities import (
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)
from ...actors._contract import AcceptanceWindow
from ._codec import OKX_ORDER_TYPES, OKX_TIME_IN_FORCE

__all__ = ["CLOCK_MARGIN_SECONDS", "OKX_CLIENT_ID_RULES", "okx_capabilities"]

#: ``clOrdId``: case-sensitive letters and digits, 1 to 32 characters.
OKX_CLIENT_ID_RULES = ClientIdRules.alphanumeric(32)

#: How far OKX's clock and ours may disagree once the offset was measured at
#: connect (``/public/time``): a window closing this much later is closed for both.
CLOCK_MARGIN_SECONDS = 1.0


def okx_capabilities() -> VenueCapabilities:
    return VenueCapabilities(
        # amend-order changes size and price in place; ordId and clOrdId stay.
        amend=AmendMode.NATIVE,
        # Spot in cash mode has no position to reduce (reduceOnly is for margin).
        reduce_only=False,
        # mass-cancel is for options' MMP orders only: spot orders are cancelled
        # by instrument, in batches of up to 20 (cancel-batch-orders).
        cancel_all=CancelAllScope.SYMBOL,
        positions_are_balances=True,
        # Every place/amend carries expTime = the request's deadline (venue
        # clock): OKX refuses it once that has passed.
        acceptance=AcceptanceWindow(0.0, CLOCK_MARGIN_SECONDS),
        order_types=OKX_ORDER_TYPES,
        time_in_force=OKX_TIME_IN_FORCE,
        post_only=True,
        # The broker contract sends one order (one cancel) per request; the
        # broker batches only its own cancel-all (cancel-batch-orders, 20 each).
        batch_submit=0,
        batch_cancel=0,
        client_ids=OKX_CLIENT_ID_RULES,
        fractional_quantity=True,
        market_data=frozenset({MarketDataKind.QUOTES}),
    )
