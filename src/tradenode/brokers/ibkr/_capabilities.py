"""What an IB account can do through this adapter, as the core needs to know it.

Facts from the TWS API reference (order types, time in force, modify by
placeOrder under the same orderId, reqGlobalCancel) restricted to what the
codec expresses (``_codec.IBKR_ORDER_TYPES``, ``IBKR_TIME_IN_FORCE``).
"""

from __future__ import annotations

from ...actors._capabilities import (
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)
from ._codec import IBKR_ORDER_TYPES, IBKR_TIME_IN_FORCE

__all__ = ["IBKR_CLIENT_ID_RULES", "ibkr_capabilities"]

#: Our client order id travels in ``orderRef``, a free-form string IB keeps for
#: the order's lifetime; the core's 36 characters of its own charset fit it.
IBKR_CLIENT_ID_RULES = ClientIdRules()


def ibkr_capabilities() -> VenueCapabilities:
    return VenueCapabilities(
        # placeOrder again under the same orderId changes the order in place.
        amend=AmendMode.NATIVE,
        # IB has no reduce-only flag for these orders.
        reduce_only=False,
        # reqGlobalCancel cancels every open order of the account; a symbol's
        # orders are cancelled one by one.
        cancel_all=CancelAllScope.ACCOUNT,
        # A margin account: signed positions per contract.
        positions_are_balances=False,
        # TWS takes an order whenever it arrives (no request time window): an
        # order of unknown outcome is looked up, never re-sent blindly.
        acceptance=None,
        order_types=IBKR_ORDER_TYPES,
        time_in_force=IBKR_TIME_IN_FORCE,
        post_only=False,
        batch_submit=0,
        batch_cancel=0,
        client_ids=IBKR_CLIENT_ID_RULES,
        # Each contract's size increment (contract details) is checked by the
        # codec: FX and some stocks trade fractions, futures and options do not.
        fractional_quantity=True,
        market_data=frozenset({MarketDataKind.QUOTES}),
    )
