"""POV (percent of volume) as a pure policy: follow the market's own volume.

A POV parent trades a fixed fraction of what the market trades: after the
market has traded V (from the venue's public trade stream, *excluding* this
parent's own fills, which the tape also prints) the parent aims to have
filled ``participation`` x V, and stays within its bounds:

- never above ``max_participation`` x V, counting every open child as if it
  filled: a child is sized so that even then the bound holds;
- when below ``min_participation`` x V, the policy says the parent is
  *behind*, and the actor sends the catch-up child marketable.

The policy holds no state: the actor hands it the market volume since the
parent started, what the OMS says is filled and open, and gets the next
child's size. Children below ``min_child_quantity`` wait for more volume
(tiny orders cost more than they track), except the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ..actors._oms_parents import ParentView
from ..messages._algos import PovParams
from ..messages._enums import OrderStatus, OrderType
from ..messages._execution import child_number, child_order_id
from ._algorithm import AlgorithmEnv, ChildIntent, Decision, register_algorithm
from ._sizing import floor_to_lot, seconds_to_ns
from ._tape import TapeAlgorithm

__all__ = ["PovAlgorithm", "PovChild", "PovPolicy"]


@dataclass(frozen=True, slots=True)
class PovChild:
    """The next child: its size, and whether it catches up a parent below its minimum."""

    quantity: Decimal
    behind: bool


class PovPolicy:
    """The next child of a parent that trades ``participation`` of the market's volume."""

    def __init__(
        self,
        *,
        quantity: Decimal,
        participation: Decimal,
        lot: Decimal,
        min_participation: Decimal | None = None,
        max_participation: Decimal | None = None,
        min_child_quantity: Decimal | None = None,
    ) -> None:
        self.quantity = quantity
        self.participation = participation
        self.lot = lot
        self.min_participation = min_participation if min_participation is not None else Decimal(0)
        self.max_participation = (
            max_participation if max_participation is not None else participation
        )
        self.min_child_quantity = min_child_quantity if min_child_quantity is not None else lot

    def ceiling(self, market_volume: Decimal) -> Decimal:
        """The most the parent may have filled (or have open) after ``market_volume``."""
        return min(self.quantity, floor_to_lot(self.max_participation * market_volume, self.lot))

    def floor(self, market_volume: Decimal) -> Decimal:
        """The least the parent should have filled after ``market_volume``."""
        return min(self.quantity, self.min_participation * market_volume)

    def target(self, market_volume: Decimal) -> Decimal:
        return min(self.quantity, floor_to_lot(self.participation * market_volume, self.lot))

    def is_behind(self, market_volume: Decimal, filled: Decimal) -> bool:
        return filled < self.floor(market_volume)

    def within_bounds(self, market_volume: Decimal, filled: Decimal, *, slack: Decimal) -> bool:
        """Whether ``filled`` is within [min, max] x ``market_volume``; ``slack``
        forgives the minimum by the granularity children are sent in."""
        return self.floor(market_volume) - slack <= filled <= self.ceiling(market_volume)

    def next_child(
        self, *, market_volume: Decimal, filled: Decimal, open_quantity: Decimal
    ) -> PovChild | None:
        """The next child, or None until the market has traded enough for one."""
        committed = filled + open_quantity
        left = self.quantity - committed
        if left <= 0:
            return None
        wanted = min(self.target(market_volume), self.ceiling(market_volume)) - committed
        size = floor_to_lot(min(wanted, left), self.lot)
        if size <= 0 or (size < self.min_child_quantity and size < left):
            return None
        return PovChild(quantity=size, behind=self.is_behind(market_volume, filled))


class PovAlgorithm(TapeAlgorithm):
    """Works a parent whose ``algorithm`` is ``PovParams``.

    It looks every ``interval`` seconds (and whenever the parent progresses)
    at the market's volume on the venue's tape since the parent started,
    and sends the policy's child as ``<parent>-<n>``: at market when the
    parent is below its minimum (or has no limit), else at ``limit_price``.
    A new incarnation cannot see the prints it missed (a venue does not
    replay its tape), so it presumes the parent was on target when it
    subscribed (volume so far = filled / participation) and counts from
    there: the maximum still holds over what it sees. A venue that prints
    no tape ends the parent at once; so does the end of ``duration``, once
    the children still working are cancelled.
    """

    def __init__(self, parent_id: str, env: AlgorithmEnv) -> None:
        super().__init__(parent_id, env)
        self._policy: PovPolicy | None = None
        self._volume_before = Decimal(0)

    def policy(self, view: ParentView) -> PovPolicy:
        if self._policy is None:
            params = _pov_params(view)
            self._policy = PovPolicy(
                quantity=view.target,
                participation=params.participation,
                lot=self.env.lot_size(view.order.symbol, view.target),
                min_participation=params.min_participation,
                max_participation=params.max_participation,
                min_child_quantity=params.min_child_quantity,
            )
            # What the market traded before this incarnation subscribed, presumed
            # from where the parent stands (nothing, for a parent just accepted).
            self._volume_before = view.filled / params.participation
        return self._policy

    def volume(self, view: ParentView) -> Decimal:
        """The market's volume since the parent started, its own fills excluded."""
        self.policy(view)
        return self._volume_before + self.market_volume(view)

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        params = _pov_params(view)
        policy = self.policy(view)
        if not self.has_tape:
            return Decision(
                finish=f"POV needs the venue's public trades; {view.order.venue} prints none"
            )
        step = max(1, seconds_to_ns(params.interval))
        next_wake = now_ns + step
        if params.duration is not None and now_ns >= view.accepted_ns + seconds_to_ns(
            params.duration
        ):
            if view.open_children:
                cancels = tuple(
                    c.client_order_id
                    for c in view.open_children
                    if c.status is not OrderStatus.PENDING_CANCEL
                )
                return Decision(cancels=cancels, wake_at_ns=next_wake)
            if view.filled < view.target:
                return Decision(
                    finish=f"POV duration over with {view.filled} of {view.target} filled"
                )
            return Decision()
        child = policy.next_child(
            market_volume=self.volume(view),
            filled=view.filled,
            open_quantity=view.open_quantity,
        )
        if child is None:
            return Decision(wake_at_ns=next_wake)
        quantity = min(child.quantity, floor_to_lot(view.available, policy.lot))
        if quantity <= 0:
            return Decision(wake_at_ns=next_wake)
        numbers = (child_number(view.parent_id, cid) for cid in view.child_ids)
        number = 1 + max((n[0] for n in numbers if n is not None), default=0)
        client_order_id = child_order_id(view.parent_id, number)
        if child.behind or params.limit_price is None:
            intent = ChildIntent(client_order_id, quantity)
        else:
            intent = ChildIntent(
                client_order_id, quantity, OrderType.LIMIT, price=params.limit_price
            )
        return Decision(children=(intent,), wake_at_ns=next_wake)


def _pov_params(view: ParentView) -> PovParams:
    params = view.order.algorithm
    if not isinstance(params, PovParams):
        raise TypeError(f"{view.parent_id}: not a POV parent ({params.name})")
    return params


register_algorithm(PovParams, PovAlgorithm)
