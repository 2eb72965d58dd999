"""The research desk: what a RESEARCH node does with the orders it never sends.

Each order is recorded and simulated against the live quotes with the
matching simulator (``tradenode.sim``), one simulator per (venue, symbol),
created at its first quote and moved to every new quote's mid. Its book is
the simulator's synthetic one around that mid with the quote's spread, so a
market buy pays about the ask and a resting limit fills when the market
comes to it. Its reports reach the strategy wrapped as ``ResearchEvent``,
and its positions (``positions()``) are the simulation's, never the OMS's.

It lives beside the node, not in ``tradenode.actors``: the OMS's layer
imports no simulator; the router gets it as a ``ResearchBook``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .actors._execution_modes import ResearchEvent, ResearchRecord
from .messages._enums import LiquiditySide
from .messages._messages import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Quote,
    SubmitOrder,
)
from .sim import (
    InstrumentSpec,
    MatchingSimulator,
    SimAccepted,
    SimCanceled,
    SimConfig,
    SimEvent,
    SimExpired,
    SimFill,
    SimRejected,
)

__all__ = ["ResearchDesk"]

_BPS = Decimal(10_000)
_RESEARCH_CASH = Decimal(10) ** 12
_RESEARCH_LOT = Decimal("1e-8")


class ResearchDesk:
    """Simulates orders against the live quotes (see the module docstring)."""

    def __init__(self, *, seed: int, taker_fee_bps: Mapping[str, Decimal], capacity: int = 10_000):
        self._seed = seed
        self._fees = dict(taker_fee_bps)
        self._sims: dict[tuple[str, str], MatchingSimulator] = {}
        self._quotes: dict[tuple[str, str], Quote] = {}
        self.records: dict[str, ResearchRecord] = {}
        self._capacity = capacity

    def on_quote(self, quote: Quote, now_ns: int) -> list[ResearchEvent]:
        key = (quote.venue, quote.symbol)
        self._quotes[key] = quote
        sim = self._sims.get(key)
        if sim is None:
            return []
        price = _on_tick(quote.mid, sim.config.instrument(quote.symbol).tick_size)
        return self._convert(quote.venue, sim.set_price(quote.symbol, price), now_ns)

    def submit(self, order: SubmitOrder, now_ns: int) -> list[ResearchEvent]:
        """Record ``order`` and run it in the simulation; its events, in order."""
        record = ResearchRecord(order, now_ns)
        if len(self.records) >= self._capacity:
            self.records.pop(next(iter(self.records)))
        self.records[order.client_order_id] = record
        sim = self._sim(order.venue, order.symbol)
        if sim is None:
            events = [
                ResearchEvent(
                    OrderRejected(
                        client_order_id=order.client_order_id,
                        venue=order.venue,
                        code="NO_QUOTE",
                        reason=f"research: no quote for {order.symbol} on {order.venue} yet",
                        ts_ns=now_ns,
                    )
                )
            ]
        else:
            sim_events = sim.submit(
                order.client_order_id,
                order.symbol,
                order.side,
                order.order_type,
                order.quantity,
                price=order.price,
                stop_price=order.stop_price,
                trailing_offset=order.trailing_offset,
                time_in_force=order.time_in_force,
                post_only=order.post_only,
                expire_time_ns=order.expire_time_ns,
            )
            events = self._convert(order.venue, sim_events, now_ns)
        return events

    def cancel(self, client_order_id: str, now_ns: int) -> list[ResearchEvent]:
        record = self.records.get(client_order_id)
        if record is None:
            return []
        sim = self._sims.get((record.order.venue, record.order.symbol))
        if sim is None:
            return []
        return self._convert(record.order.venue, sim.cancel(client_order_id), now_ns)

    def positions(self) -> dict[tuple[str, str], Decimal]:
        """The simulation's positions by (venue, symbol)."""
        return {
            key: sim.position(key[1]) for key, sim in self._sims.items() if sim.position(key[1])
        }

    def _sim(self, venue: str, symbol: str) -> MatchingSimulator | None:
        key = (venue, symbol)
        sim = self._sims.get(key)
        if sim is not None:
            return sim
        quote = self._quotes.get(key)
        if quote is None:
            return None
        tick = _tick_of(quote)
        mid = _on_tick(quote.mid, tick)
        spread_bps = min(Decimal(9_999), (quote.ask - quote.bid) / quote.mid * _BPS)
        spec = InstrumentSpec(
            symbol=symbol,
            base_asset="BASE",
            quote_asset="QUOTE",
            initial_price=mid,
            tick_size=tick,
            lot_size=_RESEARCH_LOT,
            min_quantity=Decimal(0),
            min_notional=Decimal(0),
            spread_bps=spread_bps,
            volatility_bps=Decimal(0),
            level_quantity=Decimal(10) ** 6,
        )
        sim = MatchingSimulator(
            SimConfig(
                instruments=(spec,),
                balances={"QUOTE": _RESEARCH_CASH, "BASE": Decimal(0)},
                taker_commission_bps=self._fees.get(venue, Decimal(0)),
                maker_commission_bps=Decimal(0),
                allow_short=True,
                retain_closed_orders=self._capacity,
            ),
            seed=self._seed,
        )
        self._sims[key] = sim
        return sim

    def _convert(self, venue: str, events: list[SimEvent], now_ns: int) -> list[ResearchEvent]:
        out: list[ResearchEvent] = []
        for event in events:
            report = _report(venue, event, now_ns)
            if report is None:
                continue
            wrapped = ResearchEvent(report)
            record = self.records.get(report.client_order_id)
            if record is not None:
                record.events.append(wrapped)
            out.append(wrapped)
        return out


def _report(
    venue: str, event: SimEvent, now_ns: int
) -> OrderAccepted | OrderFilled | OrderCanceled | OrderExpired | OrderRejected | None:
    if isinstance(event, SimAccepted):
        return OrderAccepted(
            client_order_id=event.client_order_id,
            venue=venue,
            venue_order_id=f"research-{event.venue_order_id}",
            ts_ns=now_ns,
        )
    if isinstance(event, SimFill):
        return OrderFilled(
            client_order_id=event.client_order_id,
            venue=venue,
            venue_order_id=f"research-{event.venue_order_id}",
            execution_id=f"research-{venue}-{event.symbol}-{event.trade_id}",
            symbol=event.symbol,
            side=event.side,
            last_quantity=event.quantity,
            last_price=event.price,
            commission=event.commission,
            liquidity=LiquiditySide.MAKER if event.is_maker else LiquiditySide.TAKER,
            ts_ns=now_ns,
        )
    if isinstance(event, SimCanceled):
        return OrderCanceled(client_order_id=event.client_order_id, venue=venue, ts_ns=now_ns)
    if isinstance(event, SimExpired):
        return OrderExpired(client_order_id=event.client_order_id, venue=venue, ts_ns=now_ns)
    if isinstance(event, SimRejected):
        return OrderRejected(
            client_order_id=event.client_order_id,
            venue=venue,
            code=event.code.value,
            reason=f"research: {event.reason}",
            ts_ns=now_ns,
        )
    return None


def _tick_of(quote: Quote) -> Decimal:
    """The finest step the quote's prices show: the simulation's tick."""
    exponent = min(int(price.as_tuple().exponent) for price in (quote.bid, quote.ask))
    return Decimal(1).scaleb(min(exponent, 0))


def _on_tick(price: Decimal, tick: Decimal) -> Decimal:
    return max(tick, (price / tick).to_integral_value() * tick)
