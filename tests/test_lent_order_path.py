"""A lone paper order leaves for the venue on the strategy's thread (lent turns).

The risk guard, the OMS, the breaker and the paper broker lend their turns
(``Actor.lends_turn``): an idle node runs an order from the strategy's decision
to the venue on the strategy's own thread, with the journal off and with group
commit (the OMS then commits the order's records itself, on that thread). With
the strategy's own messages waiting, its thread hands the order on instead, and
the order still goes, exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import Node, parse_config
from tradenode.brokers.paper import PaperSession, PaperVenue
from tradenode.messages import OrderStatus, Side
from tradenode.sim import paper_sim_config
from tradenode.supervision import ManualClock

from ._node_helpers import Do, Harness

# Whether the journal's commit thread sleeps is not public; that test reads it so.
from .test_journal_fast_leading import _wait_until_the_commit_thread_sleeps

CONFIG = """
node: {name: lent, seed: 5}
venues:
  - {name: paper, paper: {latency_ms: 0, tick_interval_ms: 100000000, fill_probability: 1.0}}
oms: {ack_timeout: 30}
"""


class ThreadNotingVenue(PaperVenue):
    """The paper venue, noting which thread places each order (``session.submit``)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__("paper", paper_sim_config(), seed=5, clock=clock)
        self.placed_on: dict[str, int] = {}

    def connect(self, sink: Callable[[Sequence[object]], None]) -> PaperSession:
        session = super().connect(sink)
        submit = session.submit

        def noting_submit(order: Any) -> list[object]:
            self.placed_on[order.client_order_id] = threading.get_ident()
            return submit(order)

        session.submit = noting_submit  # type: ignore[method-assign]
        return session


@contextmanager
def lent_node(journal: str | None, tmp_path: Path) -> Iterator[tuple[Harness, ThreadNotingVenue]]:
    text = CONFIG
    if journal is not None:
        text += f"journal: {{path: '{tmp_path / 'journal'}', fsync: '{journal}'}}\n"
    config = parse_config(text)
    clock = ManualClock()
    node = Node(config.model_copy(update={"venues": ()}), clock=clock)
    node.start()
    try:
        venue = ThreadNotingVenue(clock)
        node.add_venue(config.venues[0], venue=venue)
        h = Harness(node, clock)
        h.strategy()
        h.sync()
        if node.journal is not None:
            # As an idle node's: the commit thread asleep, nothing left to commit.
            node.journal.flush()
            _wait_until_the_commit_thread_sleeps(node.journal)
        yield h, venue
    finally:
        node.stop(timeout=10)


def _submit(ctx: Any) -> tuple[int, str]:
    coid = ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.001"), venue="paper")
    return threading.get_ident(), coid


@pytest.mark.parametrize("journal", [None, "group"])
def test_a_lone_order_leaves_on_the_strategys_thread(journal: str | None, tmp_path: Path) -> None:
    with lent_node(journal, tmp_path) as (h, venue):
        strategy_thread, coid = h.do(_submit)
        h.wait_status(coid, OrderStatus.FILLED)
        assert venue.placed_on[coid] == strategy_thread


@pytest.mark.parametrize("journal", [None, "group"])
def test_with_the_strategys_own_messages_waiting_the_order_is_handed_on(
    journal: str | None, tmp_path: Path
) -> None:
    with lent_node(journal, tmp_path) as (h, venue):
        address, _ = h.strategy()

        def submit_with_a_message_waiting(ctx: Any) -> tuple[int, str]:
            address.tell(Do(lambda ctx: None))  # the strategy's own, queued
            return _submit(ctx)

        strategy_thread, coid = h.do(submit_with_a_message_waiting)
        h.wait_status(coid, OrderStatus.FILLED)
        h.sync()
        assert venue.placed_on[coid] != strategy_thread
        assert list(venue.placed_on) == [coid]  # placed once
