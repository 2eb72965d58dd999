"""Stamps taken inside a running node without touching its source.

``StampedVenue`` is the paper venue with two probes on the connection the
paper broker opens in ``on_start``:

- ``left[coid]``: the broker calls ``session.submit(order)``, the moment the
  order leaves the node for the venue (the paper venue's equivalent of the
  bytes leaving for an exchange);
- ``arrived[coid]``: the venue hands its first fill report for ``coid`` to
  the broker's connection (the stream sink, which queues it into the broker
  actor's mailbox): the venue's report arriving at the broker actor.

A strategy stamps the decision and its fill callback itself (``perf_ns``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from tradenode.actors import Strategy
from tradenode.brokers.paper import PaperSession, PaperVenue
from tradenode.messages import Message, OrderType
from tradenode.sim import SimFill, paper_sim_config
from tradenode.supervision import Clock

from ._common import perf_ns

SYMBOL = "BTCUSDT"


class StampedVenue(PaperVenue):
    def __init__(self, name: str, clock: Clock, *, seed: int = 1) -> None:
        super().__init__(name, paper_sim_config(), seed=seed, clock=clock)
        self.left: dict[str, int] = {}
        self.arrived: dict[str, int] = {}
        self.stamping = True

    def connect(self, sink: Callable[[Sequence[object]], None]) -> PaperSession:
        arrived = self.arrived

        def stamped_sink(events: Sequence[object]) -> None:
            if self.stamping:
                now = perf_ns()
                for event in events:
                    if isinstance(event, SimFill) and event.client_order_id not in arrived:
                        arrived[event.client_order_id] = now
            sink(events)

        session = super().connect(stamped_sink)
        submit = session.submit
        left = self.left

        def stamped_submit(order: Any) -> list[object]:
            if self.stamping:
                left[order.client_order_id] = perf_ns()
            return submit(order)

        session.submit = stamped_submit  # type: ignore[method-assign]
        return session

    def clear(self) -> None:
        self.left.clear()
        self.arrived.clear()


class Place:
    """Told to a ``Placer``: submit ``orders`` (``(venue, side, quantity, price|None)``)."""

    def __init__(self, orders: list[tuple[str, Any, Any, Any]]) -> None:
        self.orders = orders
        self.coids: list[str] = []
        self.placed = threading.Event()


class Placer(Strategy):
    """Places what it is told to and stamps every report it gets (``perf_ns``)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}
        self.changed = threading.Condition()

    def on_message(self, message: Any) -> Any:
        if isinstance(message, Place):
            for venue, side, quantity, price in message.orders:
                if price is None:
                    coid = self.ctx.submit_order(SYMBOL, side, quantity, venue=venue)
                else:
                    coid = self.ctx.submit_order(
                        SYMBOL,
                        side,
                        quantity,
                        order_type=OrderType.LIMIT,
                        price=price,
                        venue=venue,
                    )
                message.coids.append(coid)
            message.placed.set()
        return None

    def on_order_update(self, event: Message) -> None:
        now = perf_ns()
        coid = getattr(event, "client_order_id", None)
        if coid is None:
            return
        with self.changed:
            self.seen.setdefault((type(event).__name__, coid), now)
            self.changed.notify_all()

    def wait_for(self, kind: str, coids: list[str], timeout: float) -> dict[str, int]:
        """Wait until every one of ``coids`` has had a ``kind`` report; their stamps."""
        with self.changed:
            if not self.changed.wait_for(
                lambda: all((kind, c) in self.seen for c in coids), timeout
            ):
                missing = [c for c in coids if (kind, c) not in self.seen]
                failures = {k: c for (k, c) in self.seen if c in missing}
                raise TimeoutError(f"no {kind} for {len(missing)} order(s) ({failures})")
            return {c: self.seen[(kind, c)] for c in coids}


def add_placer(node: Any, strategy_id: str) -> tuple[Any, Placer]:
    """A ``Placer`` strategy on ``node``: its address and the instance."""
    holder: list[Placer] = []

    def factory() -> Placer:
        holder.append(Placer())
        return holder[-1]

    address = node.add_strategy(strategy_id, factory)
    return address, holder[-1]
