"""TWAP: a parent's target in ``slices`` children spread over ``duration``.

The schedule is a pure function of the parent (its accept time, quantity
and ``TwapParams``) and of a generator seeded by the node seed and the
parent id, so every incarnation, and a node restarted on its journal,
computes the same one. Slice ``k`` (1-based) has a time ``t_k`` and a
cumulative target ``C_k`` (rounded down to the lot; ``C_N`` is the whole
quantity). At slice ``k`` the child ``<parent>-<k>`` is sent for

- with ``catch_up``: ``C_k`` minus what is filled and still working, so an
  earlier slice's shortfall is added (resting children of earlier slices
  are cancelled first; what they free joins the next slice);
- without: ``C_k - C_(k-1)``, its own share;

never more than the target minus what is filled and working. Slices whose
time passed while no incarnation ran (a crash) are sent at once, each under
its own number. After the last slice, once nothing is working, a shortfall (a
child the venue refused or expired) gets up to ``MAX_FINAL_CHILDREN``
further children ``<parent>-<N>.<j>`` with catch-up; then, or without
catch-up, the parent is cancelled with the reason.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from ..actors._oms_parents import ParentView
from ..messages._enums import OrderStatus, OrderType
from ..messages._execution import TwapParams, child_number, child_order_id
from ._algorithm import AlgorithmActor, AlgorithmEnv, ChildIntent, Decision, register_algorithm

__all__ = ["MAX_FINAL_CHILDREN", "TwapAlgorithm", "TwapSchedule", "twap_schedule"]

MAX_FINAL_CHILDREN = 3

_ZERO = Decimal(0)
_NS = 1_000_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class TwapSchedule:
    times_ns: tuple[int, ...]
    """Slice k's time is ``times_ns[k - 1]``, non-decreasing."""
    cumulative: tuple[Decimal, ...]
    """What should be done by slice k: ``cumulative[k - 1]``; the last is the target."""

    @property
    def slices(self) -> int:
        return len(self.times_ns)

    def due(self, now_ns: int) -> int:
        """How many slices' times have come."""
        return sum(1 for t in self.times_ns if t <= now_ns)

    def share(self, k: int) -> Decimal:
        """Slice k's own quantity."""
        return self.cumulative[k - 1] - (self.cumulative[k - 2] if k > 1 else _ZERO)


def twap_schedule(
    params: TwapParams,
    quantity: Decimal,
    start_ns: int,
    rng_seed: str,
    lot: Decimal,
) -> TwapSchedule:
    """The slices of a TWAP parent accepted at ``start_ns`` (see the module docstring)."""
    import random  # noqa: PLC0415 - kept next to its one use: the schedule's only randomness

    rng = random.Random(rng_seed)
    n = params.slices
    interval_ns = params.duration * _NS / n
    times = []
    weights = []
    for k in range(n):
        shift = rng.uniform(-1.0, 1.0) * params.time_jitter if k else 0.0
        times.append(start_ns + round((k + shift) * interval_ns))
        weights.append(Decimal(repr(1.0 + rng.uniform(-1.0, 1.0) * params.size_jitter)))
    total_weight = sum(weights, _ZERO)
    cumulative = []
    running = _ZERO
    for k, weight in enumerate(weights):
        running += weight
        if k == n - 1:
            cumulative.append(quantity)
        else:
            exact = quantity * running / total_weight
            cumulative.append(min(quantity, (exact // lot) * lot))
    return TwapSchedule(times_ns=tuple(times), cumulative=tuple(cumulative))


class TwapAlgorithm(AlgorithmActor):
    """Works a parent whose ``algorithm`` is ``TwapParams``."""

    def __init__(self, parent_id: str, env: AlgorithmEnv) -> None:
        super().__init__(parent_id, env)
        self._schedule: TwapSchedule | None = None

    def schedule(self, view: ParentView) -> TwapSchedule:
        if self._schedule is None:
            params = view.order.algorithm
            if not isinstance(params, TwapParams):
                raise TypeError(f"{self.parent_id}: not a TWAP parent ({params.name})")
            self._schedule = twap_schedule(
                params,
                view.target,
                view.accepted_ns,
                f"{self.env.seed}:{self.parent_id}",
                self.lot(view),
            )
        return self._schedule

    def lot(self, view: ParentView) -> Decimal:
        return self.env.lot_size(view.order.symbol, view.target)

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        return twap_decide(view, now_ns, self.schedule(view), self.lot(view))


def twap_decide(view: ParentView, now_ns: int, schedule: TwapSchedule, lot: Decimal) -> Decision:
    """The TWAP policy: pure, from the OMS's view of the parent and the time."""
    params = view.order.algorithm
    assert isinstance(params, TwapParams)
    pid = view.parent_id
    numbers = [child_number(pid, cid) for cid in view.child_ids]
    sent = max((n[0] for n in numbers if n is not None), default=0)
    due = schedule.due(now_ns)
    n = schedule.slices
    next_wake = schedule.times_ns[due] if due < n else None
    working = view.filled + view.open_quantity
    if due > sent:
        cancels: tuple[str, ...] = ()
        if params.catch_up:
            cancels = tuple(
                c.client_order_id
                for c in view.open_children
                if c.status is not OrderStatus.PENDING_CANCEL
            )
        intents = []
        available = view.available
        for k in range(sent + 1, due + 1):
            # Every slice due is sent under its own number (after a crash, several at
            # once): each says what the schedule wants done by its time.
            wanted = schedule.cumulative[k - 1] - working if params.catch_up else schedule.share(k)
            quantity = _floor(min(wanted, available), lot)
            if quantity > 0:
                intents.append(_child(pid, k, 0, quantity, params))
                working += quantity
                available -= quantity
        # A slice with nothing to add yet (what works covers the schedule, or a cancel
        # must free it first) is sent at a later wake, if there is then.
        return Decision(children=tuple(intents), cancels=cancels, wake_at_ns=next_wake)
    if due < n or view.open_children:
        return Decision(wake_at_ns=next_wake)
    # Every slice is out and nothing is working.
    if view.filled >= view.target:
        return Decision()
    extras = sum(1 for x in numbers if x is not None and x[0] == n and x[1] > 0)
    quantity = _floor(view.available, lot)
    if params.catch_up and extras < MAX_FINAL_CHILDREN and quantity > 0:
        return Decision(children=(_child(pid, n, extras + 1, quantity, params),))
    return Decision(
        finish=f"TWAP schedule over with {view.filled} of {view.target} filled",
    )


def _child(pid: str, k: int, extra: int, quantity: Decimal, params: TwapParams) -> ChildIntent:
    if params.limit_price is None:
        return ChildIntent(child_order_id(pid, k, extra), quantity)
    return ChildIntent(
        child_order_id(pid, k, extra), quantity, OrderType.LIMIT, price=params.limit_price
    )


def _floor(quantity: Decimal, lot: Decimal) -> Decimal:
    if quantity <= 0:
        return _ZERO
    return (quantity // lot) * lot


register_algorithm(TwapParams, TwapAlgorithm)
