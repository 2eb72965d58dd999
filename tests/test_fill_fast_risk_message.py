"""A fill and the net position it left reach the risk guard as one message
(``FillAndPosition``), and every other subscriber exactly as before.

Each message to an actor wakes its thread, which then fights the strategy's for
the GIL on the fill's way back; the guard follows both the fill (its book of
approved orders) and the position (its loss limit), so it opts in to hearing them
together. A subscriber that did not opt in (a user's) must not see the difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from tradenode import Node, parse_config
from tradenode.actors import GetPositions, GetRiskStatus, Subscribe

# FillAndPosition is internal: the OMS and the risk guard agree on it, users never see it.
from tradenode.actors._positions import FillAndPosition
from tradenode.messages import OrderFilled, OrderStatus, PositionSnapshot, Side
from tradenode.supervision import Actor, Address, ChildSpec, EventRecorder, ManualClock, add_child

from ._node_helpers import Harness

CONFIG = """
node: {name: fillpos, seed: 5}
venues:
  - {name: paper, paper: {latency_ms: 0, tick_interval_ms: 100000000, fill_probability: 1.0}}
oms: {ack_timeout: 30}
"""

_BOTH = (FillAndPosition, OrderFilled, PositionSnapshot)


class _Tap(Actor):
    """Subscribes to the OMS as ``subscription`` says and records what it is told."""

    def __init__(
        self,
        oms: Address,
        seen: EventRecorder,
        strategy_id: str | None,
        kinds: tuple[type, ...] | None,
    ) -> None:
        self.oms = oms
        self.seen = seen
        self.strategy_id = strategy_id
        self.kinds = kinds

    def on_start(self) -> None:
        self.oms.tell(Subscribe(self.context.self, self.strategy_id, kinds=self.kinds))

    def receive(self, message: Any) -> None:
        self.seen(message)


@pytest.fixture
def h() -> Iterator[Harness]:
    clock = ManualClock()
    node = Node(parse_config(CONFIG), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=10)


def _tap(h: Harness, name: str, strategy_id: str | None, kinds: tuple[type, ...] | None) -> Any:
    seen = EventRecorder()
    oms = h.node.oms
    add_child(
        h.node.supervisor("core/strategies"),
        ChildSpec(name, lambda: _Tap(oms, seen, strategy_id, kinds)),
    )
    return seen


def _fills_and_positions(seen: EventRecorder) -> list[Any]:
    return [
        m for m in seen.items if isinstance(m, FillAndPosition | OrderFilled | PositionSnapshot)
    ]


def test_a_subscriber_that_names_it_gets_each_fill_with_its_position_as_one_message(
    h: Harness,
) -> None:
    h.strategy()
    plain = _tap(h, "plain", None, None)
    joined = _tap(h, "joined", None, _BOTH)
    own = _tap(h, "own", "s1", _BOTH)
    h.sync()
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, D("0.002"), venue="paper"))
    h.wait_status(coid, OrderStatus.FILLED)
    h.sync()
    net = h.node.oms.ask(GetPositions(venue="paper"))
    assert len(net) == 1 and net[0].quantity == D("0.002")

    # A subscriber of everything (a user's) still gets the fill, then the position.
    told = _fills_and_positions(plain)
    assert [type(m) for m in told] == [OrderFilled, PositionSnapshot]
    fill, position = told
    assert fill.client_order_id == coid
    assert position == net[0]

    # One that named FillAndPosition gets the same two, as one message.
    assert _fills_and_positions(joined) == [FillAndPosition(fill, position)]

    # One that follows a strategy gets no net position, so its fill comes alone.
    assert _fills_and_positions(own) == [fill]


def test_the_risk_guard_hears_each_fill_once_and_its_book_follows_it(h: Harness) -> None:
    h.strategy()
    h.sync()
    before = h.node.system.messages_handled()
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.SELL, D("0.003"), venue="paper"))
    h.wait_status(coid, OrderStatus.FILLED)
    h.sync()
    after = h.node.system.messages_handled()
    risk = h.node.risk
    told = sorted(
        (kind, count - before.get((path, kind), 0))
        for (path, kind), count in after.items()
        if path == risk.path and count - before.get((path, kind), 0)
    )
    assert told == [("FillAndPosition", 1), ("SubmitOrder", 1)]
    # Its book counted the fill (the order no longer open) and the position (the
    # loss it reads is the OMS's net figure for it).
    status = risk.ask(GetRiskStatus())
    assert status["approved_open"] == 0
    net = h.node.oms.ask(GetPositions(venue="paper"))[0]
    assert net.quantity == D("-0.003")
    assert D(status["pnl"]) == net.realized_pnl + net.unrealized_pnl
