"""What a Coinbase Advanced Trade spot account can do, as the core needs to know it.

Facts from the fact sheet's section 3 (create/edit/cancel order references),
restricted to what this adapter's codec expresses (``_codec.COINBASE_ORDER_TYPES``,
``encode_order``).
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
from ...messages import OrderType, TimeInForce
from ._codec import COINBASE_ORDER_TYPES, COINBASE_TIME_IN_FORCE

__all__ = ["COINBASE_CLIENT_ID_RULES", "coinbase_capabilities"]

#: Coinbase documents no charset or length for ``client_order_id`` (its SDK
#: sends a 32-character uuid4 hex); letters, digits, ``-`` and ``_`` up to the
#: core's 36 are what every id the node draws fits in (an assumption).
COINBASE_CLIENT_ID_RULES = ClientIdRules(36, string.ascii_letters + string.digits + "-_")


def coinbase_capabilities() -> VenueCapabilities:
    return VenueCapabilities(
        # POST /orders/edit changes a GTC limit or stop-limit order in place
        # (same order id, same client id: EDITABLE_CONFIGURATIONS); any other
        # order's modify is a cancel/replace, which the OMS runs.
        amend=AmendMode.NATIVE_WHERE_DECLARED,
        native_amend_order_types=frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT}),
        native_amend_time_in_force=frozenset({TimeInForce.GTC}),
        # Spot: no reduce-only flag.
        reduce_only=False,
        # batch_cancel takes order ids; the broker lists a symbol's open
        # orders and cancels them in one batch_cancel.
        cancel_all=CancelAllScope.SYMBOL,
        positions_are_balances=True,
        # A request has no time window at Coinbase (the JWT's two minutes
        # bound when it may be *sent*, not when the venue processes it): an
        # order of unknown outcome is never re-sent blindly.
        acceptance=None,
        order_types=COINBASE_ORDER_TYPES,
        time_in_force=COINBASE_TIME_IN_FORCE,
        post_only=True,
        batch_submit=0,
        batch_cancel=0,
        client_ids=COINBASE_CLIENT_ID_RULES,
        fractional_quantity=True,
        market_data=frozenset({MarketDataKind.QUOTES}),
    )
