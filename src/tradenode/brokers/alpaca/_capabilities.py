"""What an Alpaca trading account can do, as the core needs to know it.

Facts from the fact sheet (sections 5, 8, 9, 14), restricted to what this
adapter's codec expresses (``_codec.ALPACA_ORDER_TYPES``, ``encode_order``).
"""

from __future__ import annotations

import string

from ...actors._capabilities import (
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)
from ._codec import ALPACA_ORDER_TYPES, ALPACA_TIME_IN_FORCE

__all__ = ["ALPACA_CLIENT_ID_RULES", "alpaca_capabilities"]

#: Alpaca takes a ``client_order_id`` of up to 128 characters (older docs: 48)
#: and documents no charset; it travels in a query string
#: (``orders:by_client_order_id?client_order_id=``), so letters, digits and
#: ``-_.`` only, within the core's 36.
ALPACA_CLIENT_ID_RULES = ClientIdRules(48, string.ascii_letters + string.digits + "-_.")


def alpaca_capabilities() -> VenueCapabilities:
    return VenueCapabilities(
        # PATCH /v2/orders/{id} makes a new order (a new id, our new client id)
        # that replaces the old one: a cancel/replace the OMS links.
        amend=AmendMode.CANCEL_REPLACE,
        # No reduce-only flag for equities.
        reduce_only=False,
        # DELETE /v2/orders cancels every open order of the account (207 per order).
        cancel_all=CancelAllScope.ACCOUNT,
        # A margin account holds positions (short ones too), not balances.
        positions_are_balances=False,
        # A request has no time window at Alpaca: an order of unknown outcome is
        # looked up by client order id and never re-sent blindly.
        acceptance=None,
        order_types=ALPACA_ORDER_TYPES,
        time_in_force=ALPACA_TIME_IN_FORCE,
        post_only=False,
        batch_submit=0,
        batch_cancel=0,
        client_ids=ALPACA_CLIENT_ID_RULES,
        # Where the asset is fractionable (DAY orders); the codec checks the asset.
        fractional_quantity=True,
        market_data=frozenset({MarketDataKind.QUOTES}),
    )
