"""Algorithms that measure the market's volume on the venue's public tape.

POV and VWAP's participation bounds need to know how much the market
traded. The venue's public tape (``MarketTrade``, where the venue declares
``MarketDataKind.TRADES``) prints everyone's trades, this parent's own
fills included (a tape does not say whose a trade is), so the market's
volume is what the tape printed minus what the parent traded meanwhile
(filled, or possibly traded by a child still open: a tape may print a fill
before the account's stream reports it).

What the tape printed is the one thing an algorithm keeps in memory: a
venue does not replay its tape, so a new incarnation (after a crash or a
restart) counts from the moment it subscribed, and each algorithm says how
it resumes from that (POV presumes the parent was on target; VWAP bounds
the rest of the bucket by what it sees from then on). Either way the
maximum participation holds: fills and volume are counted over the same
span.
"""

from __future__ import annotations

import logging
from collections import deque
from decimal import Decimal
from typing import Any

from ..actors._capabilities import MarketDataKind
from ..actors._contract import TradeSubscription
from ..actors._oms_parents import ParentView
from ..messages._market import MarketTrade
from ._algorithm import AlgorithmActor, AlgorithmEnv

__all__ = ["TapeAlgorithm"]

logger = logging.getLogger("tradenode.execution")

_ZERO = Decimal(0)

#: How many recent trade ids an algorithm remembers to count a repeated print
#: once: a repeat comes right behind its original, and a busy tape must not
#: grow an algorithm's memory without bound.
RECENT_PRINTS = 10_000


class TapeAlgorithm(AlgorithmActor):
    """An :class:`AlgorithmActor` subscribed to its parent's symbol on its venue's tape."""

    def __init__(self, parent_id: str, env: AlgorithmEnv) -> None:
        super().__init__(parent_id, env)
        self.tape_volume = _ZERO
        """What the tape printed for the parent's symbol since this incarnation subscribed."""
        self.filled_at_subscribe: Decimal | None = None
        """The parent's fills when this incarnation subscribed (None: not subscribed)."""
        self.subscribed_ns = 0
        self.has_tape = False
        self._venue: str | None = None
        self._symbol: str | None = None
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()

    # -- the tape -----------------------------------------------------------------------

    def watch(self, view: ParentView) -> None:
        """Subscribe once per incarnation, where the venue prints its tape."""
        if self.filled_at_subscribe is not None:
            return
        order = view.order
        self._venue, self._symbol = order.venue, order.symbol
        self.filled_at_subscribe = view.filled
        self.subscribed_ns = self.context.now_ns()
        entry = self.env.directory.venue(order.venue) if order.venue is not None else None
        if entry is None or MarketDataKind.TRADES not in entry.capabilities.market_data:
            logger.warning(
                "execution: %s: venue %s publishes no trades", self.parent_id, order.venue
            )
            return
        self.has_tape = True
        entry.broker.tell(TradeSubscription(self.context.self, (order.symbol,)))

    def market_volume(self, view: ParentView) -> Decimal:
        """The market's volume since this incarnation subscribed, the parent's own
        trades taken out: what it filled, and what its open children may already
        have traded. A venue's public tape can print a fill before the account's
        own stream reports it (Binance does), and counting that print as the
        market's would make the parent chase its own trades; an open child that
        has not traded only makes the estimate cautious. Never negative."""
        own = view.filled - (self.filled_at_subscribe or _ZERO) + view.open_quantity
        return max(_ZERO, self.tape_volume - own)

    def on_print(self, trade: MarketTrade) -> None:
        """A new print of the parent's symbol (after it was counted in ``tape_volume``)."""

    # -- the loop ---------------------------------------------------------------------------

    def view(self) -> ParentView | None:
        view = super().view()
        if view is not None:
            self.watch(view)
        return view

    def receive(self, message: Any) -> Any:
        if isinstance(message, MarketTrade):
            if (
                message.venue == self._venue
                and message.symbol == self._symbol
                and message.trade_id not in self._seen
            ):
                # A venue may repeat a print (a duplicated stream event): counted once.
                self._seen.add(message.trade_id)
                self._seen_order.append(message.trade_id)
                if len(self._seen_order) > RECENT_PRINTS:
                    self._seen.discard(self._seen_order.popleft())
                self.tape_volume += message.quantity
                self.on_print(message)
            return None
        return super().receive(message)
