"""The example strategy of ``tradenode run``: its resting bids survive a restart.

It keeps one passive bid per symbol. A new incarnation (a restarted actor, or
a restarted process recovering its orders from the journal) used to forget
the bids the last one left resting and place new ones: across restarts the
bids piled up at the venue.
"""

from __future__ import annotations

from typing import Any

from tradenode import Node, parse_config
from tradenode.actors import ExampleStrategy, GetOpenOrders
from tradenode.messages import OrderType, Side
from tradenode.supervision import EventRecorder, ManualClock, SupervisionEventKind

CONFIG = """
node: {name: examplenode, seed: 2}
venues:
  - {name: paper, paper: {tick_interval_ms: 250}}
status_interval: 60
"""


class Crash:
    """Makes the strategy raise, so its supervisor restarts it."""


class Crashable(ExampleStrategy):
    def on_message(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise RuntimeError("crash on request")
        return super().on_message(message)


def resting_bids(node: Node) -> dict[str, list[str]]:
    bids: dict[str, list[str]] = {}
    for order in node.oms.ask(GetOpenOrders(strategy_id="ex")):
        if order.side is Side.BUY and order.order_type is OrderType.LIMIT:
            bids.setdefault(order.symbol, []).append(order.client_order_id)
    return bids


def run_cycles(node: Node, clock: ManualClock, count: int) -> None:
    """Move the clock in steps, each one's work done (the strategy's timers, the bids
    they place, the venue's ticks) before the next: an ask to the OMS alone would
    return before a bid still on its way from the strategy through the risk guard."""
    for _ in range(count):
        clock.advance(0.1)
        node.system.wait_quiescent()


def test_a_restarted_example_strategy_keeps_its_resting_bids_instead_of_adding_more() -> None:
    clock = ManualClock()
    node = Node(parse_config(CONFIG), clock=clock)
    node.start()
    events = EventRecorder()
    node.system.events.subscribe(events)
    try:
        strategy = node.add_strategy(
            "ex", lambda: Crashable("ex", "paper", ("BTCUSDT", "ETHUSDT"), 100)
        )
        run_cycles(node, clock, 20)
        before = resting_bids(node)
        assert set(before) == {"BTCUSDT", "ETHUSDT"}
        assert all(len(ids) == 1 for ids in before.values()), before
        for generation in (2, 3, 4):
            strategy.tell(Crash())
            events.wait_for(
                lambda e, g=generation: (
                    e.kind is SupervisionEventKind.RESTARTED
                    and e.path.endswith("/strategies/ex")
                    and e.generation == g
                )
            )
            run_cycles(node, clock, 20)
            after = resting_bids(node)
            assert all(len(ids) <= 1 for ids in after.values()), (generation, after)
    finally:
        node.stop()
