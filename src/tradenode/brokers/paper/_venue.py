"""The embedded paper venue: the matching simulator behind a connection.

It behaves like a remote exchange so the paper broker actor exercises the
same contract as a real adapter: orders go in through a session, execution
reports come back asynchronously (after ``latency`` seconds of the node's
clock) on that session's stream, the venue's books outlive any session, and
a session can be dropped or refused. The fault knobs are how tests (and
users rehearsing) make the venue misbehave on purpose.

Like a real venue it prints a **public tape** on the same stream
(``TapePrint``): each market step trades a seeded random quantity (one to
``level_quantity`` in lots) at the new last price, and every fill of the
account is printed too, as an exchange's tape shows everyone's trades
without saying whose. Participation algorithms measure the market's volume
with it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..._exceptions import BrokerConnectionError
from ...messages._enums import Side
from ...messages._messages import SubmitOrder
from ...sim import (
    InstrumentSpec,
    MatchingSimulator,
    SimConfig,
    SimFill,
    SimOrder,
    SimQuote,
    SimRejected,
)
from ...supervision import Clock

__all__ = ["CorruptEvent", "PaperSession", "PaperVenue", "SessionClosed", "TapePrint"]

EventSink = Callable[[Sequence[object]], None]


class SessionClosed:
    """Pushed on a session's stream when the venue drops it."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TapePrint:
    """One trade on the venue's public tape: the market's, or the account's own.

    ``aggressor`` is the taker's side, None for the market's own prints (the
    simulated market has no sides).
    """

    symbol: str
    trade_id: int
    price: Decimal
    quantity: Decimal
    aggressor: Side | None
    ts_ns: int


class CorruptEvent:
    """A payload no adapter can parse: injected to prove bad input is contained."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


class PaperVenue:
    def __init__(
        self,
        name: str,
        config: SimConfig,
        *,
        seed: int,
        clock: Clock,
        latency: float = 0.0,
    ) -> None:
        self.name = name
        self._clock = clock
        self._latency = latency
        self._lock = threading.RLock()
        self._sim = MatchingSimulator(config, seed=seed, clock=clock.time_ns)
        self._sessions: list[PaperSession] = []
        self._fail_before = 0
        self._fail_after = 0
        self._refuse = False
        self._corrupt_next = 0
        self._duplicate = False
        self.requests_seen = 0
        # The tape draws from its own generator: the simulator's prices and
        # fills are the same with or without anyone reading the tape.
        self._tape_random = random.Random(f"{seed}:paper-tape")
        self._tape_ids = 0

    @property
    def latency(self) -> float:
        """Seconds between a request reaching the venue and the venue acting on it."""
        return self._latency

    @property
    def instruments(self) -> tuple[InstrumentSpec, ...]:
        """The simulated instruments, with their tick and lot sizes."""
        return tuple(self._sim.config.instruments)

    # -- connections ----------------------------------------------------------

    def connect(self, sink: EventSink) -> PaperSession:
        with self._lock:
            if self._refuse:
                raise BrokerConnectionError("paper venue refused the connection", broker=self.name)
            session = PaperSession(self, sink)
            self._sessions.append(session)
            return session

    def _detach(self, session: PaperSession) -> None:
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)

    @property
    def session_count(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- market ------------------------------------------------------------------

    def step(self, symbol: str | None = None) -> None:
        """Advance the price process one tick and push fills and quotes."""
        with self._lock:
            events: list[object] = list(self._sim.step(symbol))
            events.extend(self._quotes(symbol))
            events.extend(self._tape(events, self._symbols(symbol)))
            self._publish(events)

    def set_price(self, symbol: str, price: Decimal) -> None:
        with self._lock:
            events: list[object] = list(self._sim.set_price(symbol, price))
            events.extend(self._quotes(symbol))
            events.extend(self._tape(events, [symbol]))
            self._publish(events)

    def quote(self, symbol: str) -> SimQuote:
        with self._lock:
            return self._sim.quote(symbol)

    def _symbols(self, symbol: str | None) -> list[str]:
        return [symbol] if symbol is not None else [i.symbol for i in self._sim.config.instruments]

    def _quotes(self, symbol: str | None) -> list[SimQuote]:
        return [self._sim.quote(s) for s in self._symbols(symbol)]

    def _tape(self, events: Sequence[object], market: Sequence[str]) -> list[TapePrint]:
        """The prints ``events`` make on the public tape: each of the account's
        fills, then one market trade per symbol in ``market`` at its last price."""
        prints = []
        for event in events:
            if isinstance(event, SimFill):
                aggressor = event.side.opposite if event.is_maker else event.side
                prints.append(
                    self._print(event.symbol, event.price, event.quantity, aggressor, event.ts_ns)
                )
        config = self._sim.config
        for symbol in market:
            lot = config.instrument(symbol).lot_size
            lots = max(1, int(config.level_quantity_for(symbol) / lot))
            quantity = lot * self._tape_random.randint(1, lots)
            quote = self._sim.quote(symbol)
            prints.append(self._print(symbol, quote.last, quantity, None, quote.ts_ns))
        return prints

    def _print(
        self, symbol: str, price: Decimal, quantity: Decimal, aggressor: Side | None, ts_ns: int
    ) -> TapePrint:
        self._tape_ids += 1
        return TapePrint(symbol, self._tape_ids, price, quantity, aggressor, ts_ns)

    # -- the venue's own books (what tests compare positions with) --------------------

    def position(self, symbol: str) -> Decimal:
        with self._lock:
            return self._sim.position(symbol)

    def fills(self, symbol: str | None = None) -> list[SimFill]:
        with self._lock:
            return list(self._sim.fills(symbol))

    def order(self, client_order_id: str) -> SimOrder | None:
        with self._lock:
            return self._sim.order(client_order_id)

    def open_orders(self) -> list[SimOrder]:
        with self._lock:
            return list(self._sim.open_orders())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self._sim.snapshot()

    # -- fault knobs -------------------------------------------------------------

    def fail_next_requests(self, count: int = 1, *, after_processing: bool = False) -> None:
        """Make the next requests fail in transport, before the venue sees them, or
        after it processed them (the answer is lost but the order exists)."""
        with self._lock:
            if after_processing:
                self._fail_after += count
            else:
                self._fail_before += count

    def refuse_connections(self, refuse: bool = True) -> None:
        with self._lock:
            self._refuse = refuse

    def drop_sessions(self, reason: str = "venue dropped the connection") -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
            for session in sessions:
                session._push([SessionClosed(reason)])
                session._closed = True

    def corrupt_next_event(self, count: int = 1) -> None:
        with self._lock:
            self._corrupt_next += count

    def duplicate_events(self, duplicate: bool = True) -> None:
        with self._lock:
            self._duplicate = duplicate

    # -- plumbing -----------------------------------------------------------------

    def _publish(self, events: Sequence[object]) -> None:
        if not events:
            return
        batch = list(events)
        if self._corrupt_next:
            self._corrupt_next -= 1
            batch.insert(0, CorruptEvent({"e": "executionReport", "garbage": True}))
        if self._duplicate:
            batch = [event for event in batch for _ in (0, 1)]
        for session in list(self._sessions):
            session._push(batch)

    def _request(self, action: Callable[[], list[object]]) -> list[object]:
        with self._lock:
            self.requests_seen += 1
            if self._fail_before:
                self._fail_before -= 1
                raise BrokerConnectionError(
                    "paper venue: request lost in transport", broker=self.name
                )
            events = action()
            # A refusal is the request's answer, never a stream event, as at
            # real venues: the stream only carries what happened to orders.
            streamed = [event for event in events if not isinstance(event, SimRejected)]
            streamed.extend(self._tape(streamed, ()))
            self._publish(streamed)
            if self._fail_after:
                self._fail_after -= 1
                raise BrokerConnectionError(
                    "paper venue: response lost in transport (request was processed)",
                    broker=self.name,
                )
            return events

    def _deliver(self, session: PaperSession, batch: Sequence[object]) -> None:
        if self._latency <= 0:
            session._sink(batch)
            return

        def later() -> None:
            if not session._closed:
                session._sink(batch)

        self._clock.call_later(self._latency, later)


class PaperSession:
    """One connection to the venue; its stream carries every event of the account."""

    def __init__(self, venue: PaperVenue, sink: EventSink) -> None:
        self._venue = venue
        self._sink = sink
        self._closed = False

    def _push(self, batch: Sequence[object]) -> None:
        if not self._closed:
            self._venue._deliver(self, batch)

    def _check_open(self) -> None:
        if self._closed:
            raise BrokerConnectionError("paper session is closed", broker=self._venue.name)

    def submit(self, order: SubmitOrder) -> list[object]:
        self._check_open()
        sim = self._venue._sim
        return self._venue._request(
            lambda: list(
                sim.submit(
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
            )
        )

    def cancel(self, client_order_id: str) -> list[object]:
        self._check_open()
        sim = self._venue._sim
        return self._venue._request(lambda: list(sim.cancel(client_order_id)))

    def amend(
        self,
        client_order_id: str,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> list[object]:
        self._check_open()
        sim = self._venue._sim
        return self._venue._request(
            lambda: list(
                sim.amend(client_order_id, quantity=quantity, price=price, stop_price=stop_price)
            )
        )

    def query(self, client_order_id: str) -> SimOrder | None:
        self._check_open()
        found: list[SimOrder | None] = []

        def look() -> list[object]:
            found.append(self._venue._sim.order(client_order_id))
            return []

        self._venue._request(look)
        return found[0]

    def open_orders(self) -> list[SimOrder]:
        self._check_open()
        return self._venue.open_orders()

    def fills_after(self, trade_id: int | None) -> list[SimFill]:
        self._check_open()
        with self._venue._lock:
            return list(self._venue._sim.fills(after_trade_id=trade_id))

    def fills_for(self, client_order_id: str) -> list[SimFill]:
        self._check_open()
        with self._venue._lock:
            return [f for f in self._venue._sim.fills() if f.client_order_id == client_order_id]

    def orders(self, client_order_ids: Sequence[str]) -> list[SimOrder]:
        self._check_open()
        with self._venue._lock:
            found = (self._venue._sim.order(coid) for coid in client_order_ids)
            return [order for order in found if order is not None]

    def close(self) -> None:
        self._closed = True
        self._venue._detach(self)
