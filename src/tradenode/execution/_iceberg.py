"""Iceberg as a pure policy: show a little, refresh on fill, never show more.

An iceberg works a large limit order while the book only ever sees its
*display quantity*: one child at a time rests at the venue, and only when it
has filled (or ended) does the next one go out. The rule that matters is the
one the venue can check: the open children's remaining quantity never
exceeds the display quantity, so a child is sent only when nothing of the
parent is showing (a child sent but not yet acknowledged counts as
showing: its outcome is not known).

An optional ``price_offset`` makes the refreshes harder to spot: each
refresh's price is drawn, from a generator seeded by the parent's id and the
refresh number, within ``price_offset`` of the limit on the passive side
(below it for a buy, above it for a sell), so a refresh is never worse than
the limit and a restarted actor draws the same price for the same refresh.

Where the parent's venue declares a native iceberg
(``VenueCapabilities.native_iceberg``: Binance's ``icebergQty``), the venue
itself hides the rest: the algorithm sends **one** child for everything left,
with ``display_quantity`` set, and the venue shows and refreshes the tip (no
refresh loop here). A ``price_offset`` needs a refresh of ours to draw each
price, which a native iceberg has not, so a parent with an offset is emulated
on every venue; so is one without a venue (routed child by child: which
venue, and so which capabilities, is the router's choice). Whether the venue
takes the iceberg is its own judgement (Binance's ``ICEBERG_PARTS`` filter
caps quantity / display, a limit the core does not know): once the venue has
refused a native child, the parent is emulated from then on (the refused
child is in the parent's record, so a restarted actor decides the same); a
refused emulated child ends the parent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from ..actors._oms_parents import ParentView
from ..actors._oms_state import TrackedOrderView
from ..messages._algos import IcebergParams
from ..messages._enums import OrderStatus, OrderType, Side
from ..messages._execution import child_order_id
from ._algorithm import AlgorithmActor, AlgorithmEnv, ChildIntent, Decision, register_algorithm

__all__ = ["IcebergAlgorithm", "IcebergChild", "IcebergPolicy"]

_DRAW_SCALE = 2**64


@dataclass(frozen=True, slots=True)
class IcebergChild:
    """The next slice to show: its size, its limit price and its refresh number."""

    refresh: int
    quantity: Decimal
    price: Decimal


class IcebergPolicy:
    """Which child to show next, given what the parent has filled and has showing."""

    def __init__(
        self,
        *,
        parent_id: str,
        side: Side,
        quantity: Decimal,
        display_quantity: Decimal,
        limit_price: Decimal,
        price_offset: Decimal | None = None,
        tick_size: Decimal | None = None,
    ) -> None:
        self.parent_id = parent_id
        self.side = side
        self.quantity = quantity
        self.display_quantity = display_quantity
        self.limit_price = limit_price
        self.price_offset = price_offset
        self.tick_size = tick_size if tick_size is not None else _quantum(limit_price)

    def price_for(self, refresh: int) -> Decimal:
        """Refresh ``refresh``'s limit: the limit itself, or a seeded draw within
        ``price_offset`` of it on the passive side, in whole ticks."""
        if not self.price_offset:
            return self.limit_price
        ticks = int(self.price_offset // self.tick_size)
        if ticks <= 0:
            return self.limit_price
        digest = hashlib.sha256(f"{self.parent_id}:{refresh}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") * (ticks + 1) // _DRAW_SCALE
        price = self.limit_price - self.side.sign * draw * self.tick_size
        return price if price > 0 else self.limit_price

    def next_child(
        self, *, filled: Decimal, showing: Decimal, refreshes: int
    ) -> IcebergChild | None:
        """The next child, or None while anything is showing or nothing is left.

        ``showing``: the remaining quantity of every child not yet terminal
        (sent but unacknowledged included); ``refreshes``: how many children
        were sent so far (the next one's number).
        """
        if showing > 0:
            return None
        left = self.quantity - filled
        if left <= 0:
            return None
        return IcebergChild(
            refresh=refreshes,
            quantity=min(self.display_quantity, left),
            price=self.price_for(refreshes),
        )


def _refused_native(child: TrackedOrderView) -> bool:
    """A native iceberg child the venue refused: emulate instead (see the module)."""
    return (
        child.order.display_quantity is not None
        and child.status is OrderStatus.REJECTED
        and child.filled_quantity == 0
    )


def _quantum(value: Decimal) -> Decimal:
    """The smallest step ``value`` is written in (``12.50`` -> ``0.01``)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(min(exponent, 0))


class IcebergAlgorithm(AlgorithmActor):
    """Works a parent whose ``algorithm`` is ``IcebergParams``.

    No timer: it looks again whenever the parent progresses (a child
    accepted, filled, cancelled), and sends refresh ``n`` as child
    ``<parent>-<n+1>`` once nothing is showing (natively: one child for
    everything left, with ``display_quantity``; the venue refreshes). A child the venue refused,
    or the risk guard denied, without filling anything ends the parent
    (sending the same refresh again would be refused again); one that ended
    otherwise (expired, cancelled by the venue) is refreshed with the rest.
    """

    def __init__(self, parent_id: str, env: AlgorithmEnv) -> None:
        super().__init__(parent_id, env)
        self._policy: IcebergPolicy | None = None

    def native(self, view: ParentView) -> bool:
        """Whether the venue shows and refreshes the iceberg itself (see the module)."""
        policy = self.policy(view)
        venue = view.order.venue
        if policy.price_offset or venue is None:
            return False
        if any(_refused_native(child) for child in view.children):
            return False
        entry = self.env.directory.venue(venue)
        return entry is not None and entry.capabilities.native_iceberg

    def policy(self, view: ParentView) -> IcebergPolicy:
        if self._policy is None:
            params = view.order.algorithm
            if not isinstance(params, IcebergParams):
                raise TypeError(f"{self.parent_id}: not an Iceberg parent ({params.name})")
            self._policy = IcebergPolicy(
                parent_id=view.parent_id,
                side=view.order.side,
                quantity=view.target,
                display_quantity=params.display_quantity,
                limit_price=params.limit_price,
                price_offset=params.price_offset,
            )
        return self._policy

    def decide(self, view: ParentView, now_ns: int) -> Decision:
        policy = self.policy(view)
        if view.children:
            last = view.children[-1]
            if (
                last.status in (OrderStatus.REJECTED, OrderStatus.DENIED)
                and last.filled_quantity == 0
                and not _refused_native(last)
            ):
                return Decision(
                    finish=f"Iceberg child {last.client_order_id} refused: "
                    f"{last.rejection_code or last.denial_code}: {last.reason}"
                )
        # Every child not yet terminal shows (or may show) at the venue, at most
        # what it has left; a child sent and not yet acknowledged included.
        child = policy.next_child(
            filled=view.filled, showing=view.open_quantity, refreshes=len(view.child_ids)
        )
        if child is None:
            return Decision()
        display: Decimal | None = None
        if self.native(view):
            # One order for all that is left; the venue shows the display quantity.
            quantity = min(policy.quantity - view.filled, view.available)
            if policy.display_quantity < quantity:
                display = policy.display_quantity
        else:
            quantity = min(child.quantity, view.available)
        if quantity <= 0:
            return Decision()
        return Decision(
            children=(
                ChildIntent(
                    child_order_id(view.parent_id, child.refresh + 1),
                    quantity,
                    OrderType.LIMIT,
                    price=child.price,
                    display_quantity=display,
                ),
            )
        )


register_algorithm(IcebergParams, IcebergAlgorithm)
