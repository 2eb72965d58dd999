"""Market data beyond the top of the book: the venue's public trade tape.

A ``MarketTrade`` is one print on a venue's public tape: anyone's trade,
ours included (a venue's tape does not say whose it is). Participation
algorithms (POV, VWAP's bounds) measure the market's volume with them and
subtract their own fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from ._enums import Side
from ._fast_init import with_fast_init
from ._messages import Message
from ._validation import (
    check_enum,
    check_identifier,
    check_positive_decimal,
    check_timestamp,
)

__all__ = ["MARKET_MESSAGES", "MarketTrade"]


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class MarketTrade(Message):
    """One trade on ``venue``'s public tape for ``symbol``.

    ``trade_id`` is the venue's id of the print (unique per venue and
    symbol); ``aggressor`` is the taker's side where the venue says it.
    """

    venue: str
    symbol: str
    trade_id: str
    price: Decimal
    quantity: Decimal
    aggressor: Side | None = None
    ts_ns: int = 0

    def __post_init__(self) -> None:
        check_identifier(self, "venue", self.venue)
        check_identifier(self, "symbol", self.symbol)
        check_identifier(self, "trade_id", self.trade_id)
        check_positive_decimal(self, "price", self.price)
        check_positive_decimal(self, "quantity", self.quantity)
        if self.aggressor is not None:
            check_enum(self, "aggressor", self.aggressor, Side)
        check_timestamp(self, "ts_ns", self.ts_ns)


#: What the message codec registers from this module, with their wire tags
#: (never change a tag).
MARKET_MESSAGES: Final[tuple[tuple[type[Message], str], ...]] = ((MarketTrade, "market_trade"),)
