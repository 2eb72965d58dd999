"""What an OANDA v20 account can do, as the core needs to know it (``VenueCapabilities``).

Facts from the v20 spec (fact sheet part A6, A8), restricted to what this
adapter's codec expresses (``_codec.OANDA_ORDER_TYPES``, ``encode_order``).
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
from ._codec import OANDA_ORDER_TYPES, OANDA_TIME_IN_FORCE

__all__ = ["OANDA_CLIENT_ID_RULES", "oanda_capabilities"]

#: ``clientExtensions.id`` travels in URL paths as ``@<id>``: letters, digits and
#: ``-_.`` only (no ``/`` or ``:``). OANDA's own length limit is not in the
#: spec; the core's 36 is assumed (unconfirmed).
OANDA_CLIENT_ID_RULES = ClientIdRules(36, string.ascii_letters + string.digits + "-_.")


def oanda_capabilities() -> VenueCapabilities:
    return VenueCapabilities(
        # PUT /orders/{spec} cancels the order and creates a new one (new
        # order id, our new client id): a cancel/replace, not an amend.
        amend=AmendMode.CANCEL_REPLACE,
        # positionFill REDUCE_ONLY.
        reduce_only=True,
        # No cancel-all endpoint: the broker cancels a symbol's pending orders
        # one by one on a cancel-all for that symbol (or all of them).
        cancel_all=CancelAllScope.SYMBOL,
        # A margin account: positions, not balances.
        positions_are_balances=False,
        # OANDA has no request time window: a request of unknown outcome may
        # be accepted any time later, so it is never re-sent blindly.
        acceptance=None,
        order_types=OANDA_ORDER_TYPES,
        time_in_force=OANDA_TIME_IN_FORCE,
        post_only=False,
        batch_submit=0,
        batch_cancel=0,
        client_ids=OANDA_CLIENT_ID_RULES,
        # Currency pairs trade whole units (tradeUnitsPrecision 0); the codec
        # checks each instrument's precision.
        fractional_quantity=False,
        market_data=frozenset({MarketDataKind.QUOTES}),
    )
