"""What the toy venue can do, as the core needs to know it: exactly what the codec
expresses and the venue accepts, nothing assumed."""

from __future__ import annotations

import string

from tradenode.actors import (
    AcceptanceWindow,
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)

from ._codec import TOY_ORDER_TYPES, TOY_TIME_IN_FORCE

__all__ = ["TOY_CLIENT_ID_RULES", "toy_capabilities"]

#: The venue refuses any other client order id (``BAD_CLIENT_ID``).
TOY_CLIENT_ID_RULES = ClientIdRules(32, string.ascii_letters + string.digits + "-_")


def toy_capabilities(recv_window_ms: int) -> VenueCapabilities:
    return VenueCapabilities(
        # ``amend`` changes quantity and price in place, keeping the client order id.
        amend=AmendMode.NATIVE,
        # A spot account: no positions to reduce, selling needs the asset held.
        reduce_only=False,
        positions_are_balances=True,
        # ``cancel_all`` without a symbol cancels the whole account.
        cancel_all=CancelAllScope.ACCOUNT,
        # The venue refuses a submit stamped more than ``window`` ms before it
        # arrives, and the broker stamps nothing past the request's deadline.
        # The margin covers the two clocks' disagreement.
        acceptance=AcceptanceWindow(recv_window_ms / 1000, 0.5),
        order_types=TOY_ORDER_TYPES,
        time_in_force=TOY_TIME_IN_FORCE,
        post_only=True,
        batch_submit=0,
        batch_cancel=0,
        client_ids=TOY_CLIENT_ID_RULES,
        fractional_quantity=True,
        market_data=frozenset({MarketDataKind.QUOTES}),
    )
