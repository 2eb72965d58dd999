"""What one order costs in actor messages, counted (never timed), and the one
acknowledgement sweep that replaced a timer per order.

Every message is a wake-up of another thread that competes for the GIL with the
order's own path (strategy -> router -> risk -> OMS -> breaker -> broker ->
venue -> back), so the count is pinned: a change that adds a message per order
shows here, not only as a slower benchmark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from pathlib import Path

import pytest

from tradenode import Node, parse_config
from tradenode.brokers import VenueConfig
from tradenode.messages import OrderAccepted, OrderFilled, OrderStatus, OrderSubmitted, Side
from tradenode.supervision import ManualClock

from ._node_helpers import Harness

CONFIG = """
node: {name: count, seed: 5}
venues:
  - {name: paper, paper: {latency_ms: 0, tick_interval_ms: 100000000, fill_probability: 1.0}}
oms: {ack_timeout: 30}
"""

NO_JOURNAL_BOUND = 11
"""strategy -> risk -> OMS -> breaker -> broker (request, reply), the
OMS's accept and fill, and what it publishes: the order routed (the strategy),
the accept (strategy), the fill (strategy), the fill with the net position it
left (risk, one ``FillAndPosition``).
It was 31 before issue #20 (each order also announced twice, two position
snapshots per fill, every event to every subscriber), then 17 until: the router
stopped hearing the accepts and fills of orders it did not route (it follows the
OMS's events only once it routed an order: ``RouterActor``), the risk guard stopped
hearing the ``Routed`` of an order it had just approved (it adds it to its book
when it approves), and the paper broker stopped telling itself its own request's
venue events (they go to the OMS right after the reply); 13 until a FULL_AUTO
order naming its venue went from the strategy to the risk guard without the router,
which only forwarded it (``DirectLane``); 12 until the risk guard heard each fill
and the net position it left as one message, not two (``FillAndPosition``)."""

JOURNAL_BOUND = NO_JOURNAL_BOUND
"""Group commit adds none: the journal's committing thread sends what the OMS held once
its records are durable (it was one more, a ``WriteAhead`` to the OMS, before)."""


@contextmanager
def counting_node(journal: str | None, tmp_path: Path) -> Iterator[Harness]:
    text = CONFIG
    if journal is not None:
        text += f"journal: {{path: '{tmp_path / 'journal'}', fsync: '{journal}'}}\n"
    clock = ManualClock()
    node = Node(parse_config(text), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=10)


def one_order(h: Harness) -> tuple[str, Counter[tuple[str, str]]]:
    """Messages handled while one market order goes out and fills, by (path, type);
    the test's own ``Do`` ask and status reads are left out."""
    h.sync()
    before = h.node.system.messages_handled()
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.001"), venue="paper"))
    h.sync()
    while h.order(coid).status is not OrderStatus.FILLED:
        # A group commit waits for its interval on the node's clock.
        h.clock.advance(0.005)
        h.sync()
    after = h.node.system.messages_handled()
    counts: Counter[tuple[str, str]] = Counter()
    for key, count in after.items():
        counts[key] = count - before.get(key, 0)
    del counts[(h.node.oms.path, "GetOrder")]  # the test's own reads
    strategy_path = h.strategy()[0].path
    counts[(strategy_path, "Do")] -= 1
    return coid, +counts


@pytest.mark.parametrize(
    ("journal", "bound"),
    [(None, NO_JOURNAL_BOUND), ("group:2ms:256", JOURNAL_BOUND)],
    ids=["journal-off", "group-commit"],
)
def test_one_order_on_the_paper_venue_costs_a_bounded_number_of_messages(
    journal: str | None, bound: int, tmp_path: Path
) -> None:
    with counting_node(journal, tmp_path) as h:
        h.strategy()
        one_order(h)  # the first order also warms up quotes, subscriptions, caches
        coid, counts = one_order(h)
        total = sum(counts.values())
        breakdown = "\n".join(f"{n} {path} {kind}" for (path, kind), n in sorted(counts.items()))
        assert total <= bound, f"{total} messages for one order (at most {bound}):\n{breakdown}"
        # Counted, not skipped: the order really went out and back.
        assert counts[(h.node.oms.path, "SubmitOrder")] == 1
        assert counts[(h.node.oms.path, "OrderFilled")] == 1
        # What the strategy relies on is still there, once each, in order.
        seen = [
            type(m)
            for m in h.events().items
            if isinstance(m, OrderSubmitted | OrderAccepted | OrderFilled)
            and m.client_order_id == coid
        ]
        assert seen == [OrderSubmitted, OrderAccepted, OrderFilled]


def test_one_sweep_queries_each_unacknowledged_order_when_its_own_timeout_is_due(
    tmp_path: Path,
) -> None:
    """A venue that never answers in time: each order is looked up at the venue
    ``ack_timeout`` after it was sent (not at a shared tick), once, and again after
    another ``ack_timeout`` if still unanswered; an answered order is never queried."""
    with counting_node(None, tmp_path) as h:
        h.node.add_venue(
            VenueConfig(name="slow", paper={"latency_ms": 600_000, "tick_interval_ms": 100_000})
        )
        breaker = h.node.directory.venue("slow")
        assert breaker is not None
        path = breaker.breaker.path

        def queries() -> int:
            h.sync()
            return h.node.system.messages_handled().get((path, "QueryOrder"), 0)

        def submit() -> str:
            coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.1"), venue="slow"))
            assert isinstance(coid, str)
            h.sync()  # the OMS has sent it: its timeout runs from now
            return coid

        first = submit()
        h.clock.advance(10)
        second = submit()
        h.sync()
        assert queries() == 0
        h.clock.advance(19)
        assert queries() == 0
        h.clock.advance(1)  # 30 s after the first: only the first is due
        assert queries() == 1
        h.wait_status(first, OrderStatus.FILLED)  # the lookup found it at the venue
        assert h.order(second).status is OrderStatus.SUBMITTED
        h.clock.advance(10)  # 30 s after the second
        assert queries() == 2
        h.wait_status(second, OrderStatus.FILLED)
        h.clock.advance(60)  # both answered: nothing more to look up
        assert queries() == 2
