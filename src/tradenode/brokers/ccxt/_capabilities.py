"""What an exchange can do through this adapter, derived from ccxt's ``has`` flags.

ccxt says per class what it implements (``exchange.has``: True, False, None
for unknown, ``'emulated'``); the adapter declares only what both ccxt's
class and its own codec can do. Order types are the unified ``market`` and
``limit`` (``_codec.CCXT_ORDER_TYPES``); post-only where ``createPostOnlyOrder``;
cancel-all per symbol where ``cancelAllOrders`` is True. A modify is a
cancel/replace the broker runs itself: ccxt's ``editOrder`` keeps the order id
on some venues and not on others (Binance spot's cancelReplace gives a new
one, ``ccxt.md`` section 10), and its emulation is a cancel and a create that
never waits for the cancel. Client ids follow the exchange's rules where ccxt
passes them through unchanged (``_endpoints.CLIENT_ID_RULES``). Market
precision (tick and lot) is checked per order once the markets are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...actors._capabilities import (
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)
from ...actors._contract import AcceptanceWindow
from ._codec import CCXT_ORDER_TYPES, CCXT_TIME_IN_FORCE

__all__ = ["CLIENT_ID_RULES", "acceptance_window", "ccxt_capabilities"]

#: Client id rules per exchange id (what the venue takes, as ccxt passes it on);
#: letters and digits, 32 (OKX's rule, the strictest common one) elsewhere.
CLIENT_ID_RULES: Mapping[str, ClientIdRules] = {
    # Binance: ^[.A-Z:/a-z0-9_-]{1,36}$, the core's own rule.
    "binance": ClientIdRules(),
    "binanceus": ClientIdRules(),
    "okx": ClientIdRules.alphanumeric(32),
    # Gate: ccxt prefixes "t-"; at most 28 after it.
    "gate": ClientIdRules.alphanumeric(28),
}
_DEFAULT_RULES = ClientIdRules.alphanumeric(32)

#: Exchanges whose signed requests carry ``timestamp`` + ``recvWindow`` (ms) that the
#: venue checks before its matching engine: a request past it is never accepted.
_RECV_WINDOW = frozenset({"binance", "binanceus"})


def acceptance_window(exchange: str, options: Mapping[str, Any]) -> AcceptanceWindow | None:
    """Binance's window (ccxt signs every private request with its ``recvWindow``
    option, 10 s by default, stamped from the node's clock), plus 1 s for the
    clocks' disagreement; None for every other exchange: an order of unknown
    outcome is then never re-sent blindly."""
    if exchange not in _RECV_WINDOW:
        return None
    window = options.get("recvWindow", 10_000)
    if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
        return None
    return AcceptanceWindow(float(window) / 1000, 1.0)


def ccxt_capabilities(
    exchange: str,
    has: Mapping[str, Any],
    options: Mapping[str, Any] | None = None,
    *,
    streaming: bool = True,
) -> VenueCapabilities:
    """The capabilities of ``exchange`` through this adapter, from ccxt's ``has``
    (``streaming``: the config lets ccxt.pro stream, where the class can)."""
    streams = streaming and has.get("watchOrders") is True and has.get("watchMyTrades") is True
    return VenueCapabilities(
        amend=AmendMode.CANCEL_REPLACE,
        reduce_only=False,
        cancel_all=CancelAllScope.SYMBOL
        if has.get("cancelAllOrders") is True
        else CancelAllScope.NONE,
        # The adapter trades spot markets: a position is a balance.
        positions_are_balances=True,
        acceptance=acceptance_window(exchange, options or {}),
        order_types=CCXT_ORDER_TYPES,
        time_in_force=CCXT_TIME_IN_FORCE,
        post_only=has.get("createPostOnlyOrder") is True,
        batch_submit=0,
        batch_cancel=0,
        client_ids=CLIENT_ID_RULES.get(exchange, _DEFAULT_RULES),
        fractional_quantity=True,
        # Top of book where ccxt.pro streams it (and the session streams at all).
        market_data=frozenset({MarketDataKind.QUOTES})
        if streams and has.get("watchBidsAsks") is True
        else frozenset(),
    )
