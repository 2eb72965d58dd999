"""What Binance Spot can do, as the core needs to know it (``VenueCapabilities``).

Facts from the Spot API docs (rest-api.md "New order", fix-api.md ClOrdID),
restricted to what this adapter's codec can express (``_rules.py``
``BINANCE_ORDER_TYPES``, ``_codec.py`` ``new_order_params``).
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
from ...actors._contract import AcceptanceWindow
from ...messages._enums import TimeInForce
from ._rules import BINANCE_ORDER_TYPES

__all__ = [
    "BINANCE_CLIENT_ID_RULES",
    "CLOCK_MARGIN_SECONDS",
    "binance_acceptance_window",
    "binance_capabilities",
]

#: ``newClientOrderId``: the Spot FIX API's ``^[a-zA-Z0-9-_]{1,36}$`` (the REST
#: docs give no rule; the wider ``[.A-Z:/a-z0-9_-]`` is Binance Futures'), which
#: the codec enforces before sending (``BINANCE_CLIENT_ORDER_ID``).
BINANCE_CLIENT_ID_RULES = ClientIdRules(36, string.ascii_letters + string.digits + "_-")

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
        # MARKET, LIMIT, STOP_LOSS(_LIMIT), TAKE_PROFIT(_LIMIT); Binance trails
        # by trailingDelta in BIPS, which our TRAILING_STOP (an absolute offset)
        # does not map to.
        order_types=frozenset(BINANCE_ORDER_TYPES),
        # Only these exist on Spot (the codec also refuses IOC/FOK on the types
        # that take no timeInForce: LIMIT_MAKER, STOP_LOSS, TAKE_PROFIT).
        time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
        # A post-only LIMIT is type=LIMIT_MAKER.
        post_only=True,
        # No batch order endpoint on Spot (order lists are OCO/OTO, not batches),
        # and cancels go one by one or all of a symbol (cancel_all).
        batch_submit=0,
        batch_cancel=0,
        client_ids=BINANCE_CLIENT_ID_RULES,
        fractional_quantity=True,
        # What this adapter delivers: bookTicker quotes on the stream, the
        # public tape (<symbol>@trade) to trade subscriptions, and a depth
        # snapshot on request (GetMarketSnapshot). Binance also publishes
        # klines, which the adapter does not consume yet.
        market_data=frozenset({MarketDataKind.QUOTES, MarketDataKind.TRADES, MarketDataKind.DEPTH}),
        # Any LIMIT or LIMIT_MAKER order can carry icebergQty (timeInForce GTC); the
        # symbol's icebergAllowed and ICEBERG_PARTS filter are the venue's to judge.
        native_iceberg=True,
    )


def binance_acceptance_window(recv_window_ms: int) -> AcceptanceWindow:
    """How long after its deadline Binance may still accept an order request.

    Binance checks ``serverTime - timestamp <= recvWindow`` on receipt and
    again before the matching engine; the broker signs no order request past
    its deadline, so the signed timestamp is at most the deadline and nothing
    is accepted later than deadline + recvWindow (+ the clocks' margin)."""
    return AcceptanceWindow(recv_window_ms / 1000, CLOCK_MARGIN_SECONDS)
