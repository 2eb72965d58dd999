"""The example strategy that ``tradenode run`` trades on the paper venue.

A toy trend follower with a resting-order twist: on each cycle it goes long a
symbol whose mid price rose since the last cycle and flat when it fell
(through the seed API's ``ExecutionDecision``), and it keeps one passive
limit bid below the market per symbol, re-priced (modify) as the market
moves. It exists to show every path working, not to make money.
"""

from __future__ import annotations

from decimal import Decimal

from ..messages._enums import DecisionAction, OrderType, Side
from ..messages._messages import ExecutionDecision, Message, OrderAccepted, OrderFilled, Quote
from ._strategy import Strategy

__all__ = ["ExampleStrategy"]

_SIZES = {"BTCUSDT": Decimal("0.01"), "ETHUSDT": Decimal("0.2"), "SOLUSDT": Decimal("3")}


class ExampleStrategy(Strategy):
    def __init__(
        self, strategy_id: str, venue: str, symbols: tuple[str, ...], cycle_time_ms: int | None
    ) -> None:
        self.strategy_id = strategy_id
        self.venue = venue
        self.symbols = symbols
        self.cycle_time_ms = cycle_time_ms or 500
        self._last_mid: dict[str, Decimal] = {}
        self._resting: dict[str, str] = {}
        self._acknowledged: set[str] = set()
        self.fills = 0

    def on_start(self) -> None:
        """Take back the bids a past incarnation (or a past process, through the
        journal) left resting: one per symbol is kept and re-priced from here,
        any more are cancelled. Forgetting them placed a new bid at every
        restart while the old ones kept resting at the venue."""
        for client_order_id, order in sorted(self.ctx.open_orders().items()):
            if (
                order.symbol not in self.symbols
                or order.side is not Side.BUY
                or order.order_type is not OrderType.LIMIT
            ):
                continue
            if order.symbol in self._resting:
                self.ctx.cancel_order(client_order_id)
                continue
            self._resting[order.symbol] = client_order_id
            # It was open in the OMS; if the venue has not acknowledged it
            # after all, the OMS refuses the re-pricing and nothing changes.
            self._acknowledged.add(client_order_id)

    def _drop_a_second_bid(self, client_order_id: str) -> None:
        """A bid accepted that is not this symbol's resting one: a past incarnation
        submitted it just before it stopped, too late for ``on_start`` to see it
        open. One bid per symbol is kept; this one is cancelled."""
        order = self.ctx.open_orders().get(client_order_id)
        if order is None or order.side is not Side.BUY or order.order_type is not OrderType.LIMIT:
            return
        resting = self._resting.get(order.symbol)
        if order.symbol in self.symbols and resting not in (None, client_order_id):
            self.ctx.cancel_order(client_order_id)

    def on_quote(self, quote: Quote) -> None:
        self._mid = getattr(self, "_mid", {})
        self._mid[quote.symbol] = quote

    def on_cycle(self) -> None:
        quotes: dict[str, Quote] = getattr(self, "_mid", {})
        for symbol in self.symbols:
            quote = quotes.get(symbol)
            if quote is None:
                continue
            size = _SIZES.get(symbol, Decimal("1"))
            previous = self._last_mid.get(symbol)
            self._last_mid[symbol] = quote.mid
            if previous is not None and quote.mid != previous:
                action = DecisionAction.LONG if quote.mid > previous else DecisionAction.FLAT
                self.ctx.execute_decision(
                    ExecutionDecision(
                        strategy_id=self.strategy_id,
                        symbol=symbol,
                        action=action,
                        size=size,
                        confidence=0.6,
                        venue=self.venue,
                        ts_ns=self.ctx.now_ns(),
                    )
                )
            self._keep_a_resting_bid(symbol, quote, size)

    def _keep_a_resting_bid(self, symbol: str, quote: Quote, size: Decimal) -> None:
        target = (quote.bid * Decimal("0.999")).quantize(Decimal("0.01"))
        resting = self._resting.get(symbol)
        if resting is not None and resting in self.ctx.open_orders():
            # Only what the venue has accepted can be re-priced; until then
            # the bid waits (the OMS would refuse the modify anyway).
            if resting in self._acknowledged and self.ctx.open_orders()[resting].price != target:
                replacement = self.ctx.modify_order(resting, price=target)
                if replacement is not None:
                    self._acknowledged.discard(resting)
                    self._resting[symbol] = replacement
            return
        if resting is not None:
            self._acknowledged.discard(resting)
        self._resting[symbol] = self.ctx.submit_order(
            symbol, Side.BUY, size, order_type=OrderType.LIMIT, price=target
        )

    def on_order_update(self, event: Message) -> None:
        if isinstance(event, OrderAccepted):
            self._drop_a_second_bid(event.client_order_id)
        if (
            isinstance(event, OrderAccepted | OrderFilled)
            and event.client_order_id in self._resting.values()
        ):
            self._acknowledged.add(event.client_order_id)
        if isinstance(event, OrderFilled):
            self.fills += 1
