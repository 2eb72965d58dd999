"""Parent orders on a running node (paper venues, manual clock), driven at the message level.

Shared by the execution tests (TWAP here; VWAP, Iceberg, POV, routing and
analytics build on it): submit a parent, move the clock slice by slice with
the node quiescent in between, read the parent and its children back from
the OMS.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradenode.actors import GetOrder, ParentView, Strategy, TrackedOrderView
from tradenode.messages import (
    AlgoParams,
    Message,
    ParentAccepted,
    ParentCanceled,
    ParentDenied,
    ParentFilled,
    ParentState,
    Side,
    TwapParams,
)

from ._node_helpers import Harness

NS = 1_000_000_000


def submit_parent(
    h: Harness,
    quantity: Decimal,
    algorithm: AlgoParams,
    *,
    symbol: str = "BTCUSDT",
    side: Side = Side.BUY,
    venue: str | None = "paper",
    parent_id: str | None = None,
    strategy_id: str = "s1",
) -> str:
    """Submit from strategy ``strategy_id`` (a scripted strategy) and wait for the node
    to be quiescent: the parent is accepted or denied, and its first slice (if due) out."""
    pid = h.do(
        lambda ctx: ctx.submit_parent(
            symbol, side, quantity, algorithm, venue=venue, parent_id=parent_id
        ),
        strategy_id,
    )
    assert isinstance(pid, str)
    h.sync()
    return pid


def parent(h: Harness, parent_id: str) -> ParentView:
    view = h.node.parent(parent_id)
    assert view is not None, f"the OMS has no parent {parent_id}"
    return view


def advance(h: Harness, seconds: float) -> None:
    """Move the node's clock and wait until everything it caused is handled."""
    h.clock.advance(seconds)
    h.sync()


def parent_events(h: Harness, parent_id: str, strategy_id: str = "s1") -> list[Message]:
    return [m for m in h.events(strategy_id).items if getattr(m, "parent_id", None) == parent_id]


def wait_parent_event(h: Harness, parent_id: str, kind: type, strategy_id: str = "s1") -> Any:
    return h.events(strategy_id).wait_for(
        lambda m: isinstance(m, kind) and getattr(m, "parent_id", None) == parent_id
    )[0]


def children(h: Harness, parent_id: str) -> list[TrackedOrderView]:
    """Every child the OMS linked to the parent, in the order they were registered."""
    views = []
    for child_id in parent(h, parent_id).child_ids:
        view = h.node.oms.ask(GetOrder(child_id))
        assert isinstance(view, TrackedOrderView)
        views.append(view)
    return views


def working(view: ParentView) -> Decimal:
    """Filled plus still working: what a parent has committed; never above its target."""
    return view.filled + view.open_quantity


class SubmitTwapOnce(Strategy):
    """The drill's node strategy: submits one TWAP parent when it starts.

    Its parent id is fixed, so a process restarted on the same journal that
    submits it again is answered ``ParentDenied(DUPLICATE_ORDER)``, and the
    parent the journal holds goes on (resumed by the execution coordinator).
    """

    def __init__(
        self, parent_id: str, quantity: str, duration: float, slices: int, side: str = "BUY"
    ) -> None:
        self.parent_id = parent_id
        self.quantity = Decimal(quantity)
        self.params = TwapParams(duration=duration, slices=slices)
        self.side = Side(side)

    def on_start(self) -> None:
        self.ctx.submit_parent(
            self.symbols[0], self.side, self.quantity, self.params, parent_id=self.parent_id
        )


__all__ = [
    "NS",
    "ParentAccepted",
    "ParentCanceled",
    "ParentDenied",
    "ParentFilled",
    "ParentState",
    "ParentView",
    "SubmitTwapOnce",
    "advance",
    "children",
    "parent",
    "parent_events",
    "submit_parent",
    "wait_parent_event",
    "working",
]
