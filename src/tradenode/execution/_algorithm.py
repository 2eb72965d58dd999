"""The algorithm actor framework: one supervised actor per working parent.

An algorithm keeps nothing that matters in memory. Each time it wakes (its
timer on the node's clock, or a ``ParentProgress`` the coordinator
forwards) it reads the parent from the OMS (``GetParent``: spec, state,
fills, every child with its status) and asks its pure policy what to do
now (:meth:`AlgorithmActor.decide` -> :class:`Decision`). The children it
sends carry deterministic client order ids (``child_order_id(parent, n)``),
so an incarnation that starts after a crash or a restart sees in the OMS
which children exist, and never sends one twice: one that reached a venue
is in the journal (the OMS journals an order before it leaves), one that
was still on its way through the risk guard when an incarnation died is
waited for (:meth:`AlgorithmActor.view` first asks the risk guard, behind
everything this actor told it).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .._config import AUTO_VENUE
from ..actors._control import GetRiskStatus
from ..actors._directory import Directory
from ..actors._oms_parents import GetParent, ParentView
from ..actors._routing import GetRouterStatus
from ..messages._enums import OrderType, TimeInForce
from ..messages._execution import (
    AlgoParams,
    CancelParentOrder,
    ParentAccepted,
    ParentProgress,
    ParentState,
)
from ..messages._messages import CancelOrder, SubmitOrder
from ..supervision import Actor, Cancellable

__all__ = [
    "ALGORITHMS",
    "AlgorithmActor",
    "AlgorithmEnv",
    "ChildIntent",
    "Decision",
    "Wake",
    "register_algorithm",
]

logger = logging.getLogger("tradenode.execution")

#: How long an algorithm waits for the risk guard or the OMS to answer before it
#: fails (and is restarted, which reads everything again).
ASK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ChildIntent:
    """One child order an algorithm wants sent now."""

    client_order_id: str
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    display_quantity: Decimal | None = None
    """A native iceberg child: the venue shows this much at a time (``SubmitOrder``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What an algorithm does at one wake: children to send, children to cancel,
    when to wake next (node-clock nanoseconds; None: only on progress), and
    whether its work is over short of the target (``finish``: the reason; the
    parent's open children are cancelled and it ends EXPIRED)."""

    children: tuple[ChildIntent, ...] = ()
    cancels: tuple[str, ...] = ()
    wake_at_ns: int | None = None
    finish: str | None = None


@dataclass(frozen=True, slots=True)
class AlgorithmEnv:
    """What every algorithm is built with, from the node."""

    directory: Directory
    seed: int = 0
    lot_sizes: Mapping[str, Decimal] = field(default_factory=dict)
    """Per symbol, the lot children are rounded down to (risk config instruments)."""

    def rng(self, parent_id: str) -> random.Random:
        """The parent's own generator: the same schedule in every incarnation."""
        return random.Random(f"{self.seed}:{parent_id}")

    def lot_size(self, symbol: str, quantity: Decimal) -> Decimal:
        """The configured lot for ``symbol``; otherwise the precision ``quantity`` is written in."""
        lot = self.lot_sizes.get(symbol)
        if lot is not None and lot > 0:
            return lot
        exponent = quantity.as_tuple().exponent
        return Decimal(1).scaleb(min(exponent, 0) if isinstance(exponent, int) else 0)


@dataclass(frozen=True, slots=True)
class Wake:
    """An algorithm's timer (or a nudge): look at the parent again."""


class AlgorithmActor(Actor):
    """Base of every execution algorithm; subclasses implement :meth:`decide`.

    ``decide`` must be a function of the view and the time (and of
    generators seeded from ``env.rng(parent_id)``), never of what an earlier
    call did: the actor may be a new incarnation at any call.
    """

    def __init__(self, parent_id: str, env: AlgorithmEnv) -> None:
        self.parent_id = parent_id
        self.env = env
        self._timer: Cancellable | None = None
        self._timer_at: int | None = None
        self._finished = False

    # -- to implement ------------------------------------------------------------

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------

    def on_start(self) -> None:
        self.context.self.tell(Wake())

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def receive(self, message: Any) -> Any:
        if isinstance(message, Wake):
            self._timer, self._timer_at = None, None
        if isinstance(message, Wake | ParentProgress | ParentAccepted):
            self.step()
        return None

    def view(self) -> ParentView | None:
        """The parent as the OMS has it, including every child this actor (or a dead
        incarnation of it) has sent: asking the router, then the risk guard, puts this
        behind them, and each hands a child on before it answers."""
        directory = self.env.directory
        directory.router().ask(GetRouterStatus(), timeout=ASK_TIMEOUT)
        directory.risk().ask(GetRiskStatus(), timeout=ASK_TIMEOUT)
        view = directory.oms().ask(GetParent(self.parent_id), timeout=ASK_TIMEOUT)
        if view is not None and not isinstance(view, ParentView):
            raise TypeError(f"OMS answered GetParent with {type(view).__name__}")
        return view

    def step(self) -> None:
        view = self.view()
        if view is None or view.state is not ParentState.WORKING or self._finished:
            return
        now = self.context.now_ns()
        decision = self.decide(view, now)
        # Children go where a strategy's orders go: the router (execution modes; a
        # parent without a venue has each child placed there), then the risk guard.
        router = self.env.directory.router()
        order = view.order
        venue = order.venue or AUTO_VENUE
        working = {c.client_order_id: c for c in view.children}
        for client_order_id in decision.cancels:
            resting = working.get(client_order_id)
            if resting is not None:
                router.tell(
                    CancelOrder(
                        client_order_id=client_order_id,
                        venue=resting.venue,
                        symbol=resting.symbol,
                        ts_ns=now,
                    )
                )
        available = view.available
        for child in decision.children:
            if child.quantity <= 0 or child.quantity > available:
                # The policy's bug must not become an over-fill.
                raise ValueError(
                    f"{self.parent_id}: child {child.client_order_id} of {child.quantity} "
                    f"exceeds what the parent may still send ({available})"
                )
            available -= child.quantity
            logger.info(
                "execution: %s sends %s %s %s",
                self.parent_id,
                child.client_order_id,
                order.side.value,
                child.quantity,
            )
            router.tell(
                SubmitOrder(
                    client_order_id=child.client_order_id,
                    strategy_id=order.strategy_id,
                    venue=venue,
                    symbol=order.symbol,
                    side=order.side,
                    order_type=child.order_type,
                    quantity=child.quantity,
                    price=child.price,
                    time_in_force=child.time_in_force,
                    post_only=child.post_only,
                    ts_ns=now,
                    parent_id=self.parent_id,
                    display_quantity=child.display_quantity,
                )
            )
        if decision.finish is not None:
            self._finished = True
            self.env.directory.risk().tell(
                CancelParentOrder(
                    parent_id=self.parent_id, reason=decision.finish, expire=True, ts_ns=now
                )
            )
        self._arm(decision.wake_at_ns, now)

    def _arm(self, wake_at_ns: int | None, now: int) -> None:
        if wake_at_ns == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = wake_at_ns
        if wake_at_ns is not None:
            self._timer = self.context.schedule_once(max(0, wake_at_ns - now) / 1e9, Wake())


AlgorithmFactory = Callable[[str, AlgorithmEnv], AlgorithmActor]

#: The algorithm actor for each parameter type; ``register_algorithm`` adds one.
ALGORITHMS: dict[type[AlgoParams], AlgorithmFactory] = {}


def register_algorithm(params: type[AlgoParams], factory: AlgorithmFactory) -> None:
    """Have parents whose ``algorithm`` is a ``params`` worked by ``factory(parent_id, env)``."""
    ALGORITHMS[params] = factory
