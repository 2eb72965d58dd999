"""Parent orders in the OMS actor and the risk guard: accept, cancel, follow the children.

The OMS actor delegates here so that its own module keeps to orders. A
parent passes the risk guard first (:func:`parent_denial`: its parameters,
its venue, then its total as one order of the full quantity); the OMS then
registers it (journaled as a ``PARENT`` entry), tells subscribers
``ParentAccepted`` (the execution coordinator starts its algorithm), and
after every message that touched one of its children publishes
``ParentProgress`` (and ``ParentFilled`` / ``ParentCanceled`` once). A
child arriving for a parent that is no longer WORKING is denied, so a
cancel stops children still on their way through the risk guard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .._config import AUTO_VENUE
from ..messages._algos import ParentProfile
from ..messages._enums import DenialCode, OrderStatus, OrderType
from ..messages._execution import (
    CancelParentOrder,
    ParentAccepted,
    ParentCanceled,
    ParentDenied,
    ParentFilled,
    ParentProgress,
    ParentState,
    SubmitParentOrder,
    child_order_id,
)
from ..messages._messages import CancelOrder, OrderDenied, SubmitOrder
from ._capabilities import MarketDataKind
from ._directory import Directory
from ._oms_entries import EntryKind
from ._oms_state import OmsState, TrackedOrderView
from ._parents import ParentRecord, ParentTransitionError
from ._risk_limits import RiskContext
from ._risk_rules import RiskEngine

if TYPE_CHECKING:
    from ._oms import OmsActor

__all__ = [
    "GetParent",
    "GetParents",
    "ParentDesk",
    "ParentView",
    "child_denial",
    "parent_denial",
    "parent_summary",
    "parent_view",
]

logger = logging.getLogger("tradenode.oms")

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class GetParent:
    """Ask the OMS: one parent as a :class:`ParentView` (None if unknown)."""

    parent_id: str


@dataclass(frozen=True, slots=True)
class GetParents:
    """Ask the OMS: every parent (only those still working with ``working_only``)."""

    working_only: bool = False
    strategy_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParentView:
    """A parent as the OMS knows it now: an algorithm decides from this alone."""

    order: SubmitParentOrder
    state: ParentState
    accepted_ns: int
    filled: Decimal
    avg_price: Decimal | None
    commission: Decimal
    children: tuple[TrackedOrderView, ...]
    """Its children still retained by the OMS, in the order they were registered."""
    child_ids: tuple[str, ...]
    """Every child's client order id, retained or not."""
    reason: str = ""
    closed_ns: int | None = None
    profile: ParentProfile | None = None
    """The volume profile its algorithm learned (journaled), if it learns one."""

    @property
    def parent_id(self) -> str:
        return self.order.parent_id

    @property
    def target(self) -> Decimal:
        return self.order.quantity

    @property
    def open_quantity(self) -> Decimal:
        """What the children still working could fill (leaves, pending cancels included)."""
        return sum((c.leaves_quantity for c in self.children if not c.is_terminal), _ZERO)

    @property
    def remaining(self) -> Decimal:
        return max(_ZERO, self.target - self.filled)

    @property
    def available(self) -> Decimal:
        """What a new child may be: the target minus what is filled and still working."""
        return max(_ZERO, self.target - self.filled - self.open_quantity)

    @property
    def open_children(self) -> tuple[TrackedOrderView, ...]:
        return tuple(c for c in self.children if not c.is_terminal)


def parent_view(state: OmsState, record: ParentRecord) -> ParentView:
    children = tuple(
        view for view in (state.get(child) for child in record.children) if view is not None
    )
    return ParentView(
        order=record.order,
        state=record.state,
        accepted_ns=record.accepted_ns,
        filled=record.filled,
        avg_price=record.avg_price,
        commission=record.commission,
        children=children,
        child_ids=tuple(record.children),
        reason=record.reason,
        closed_ns=record.closed_ns,
        profile=record.profile,
    )


def parent_summary(state: OmsState) -> dict[str, Any]:
    """JSON-able parents for the status view and the summary: every working parent
    (algorithm, target, filled, average price, children) and how many finished how."""
    try:
        records = list(state.parents)
    except RuntimeError:  # read off the OMS's thread while it changed: next time
        return {"error": "changing"}
    finished: dict[str, int] = {}
    working = []
    for record in records:
        if record.is_terminal:
            finished[record.state.value] = finished.get(record.state.value, 0) + 1
            continue
        order = record.order
        avg = record.avg_price
        working.append(
            {
                "parent_id": record.parent_id,
                "strategy_id": order.strategy_id,
                "algorithm": order.algorithm.name,
                "venue": order.venue,
                "symbol": order.symbol,
                "side": order.side.value,
                "state": record.state.value,
                "target": str(record.target),
                "filled": str(record.filled),
                "avg_price": None if avg is None else str(avg),
                "children": len(record.children),
            }
        )
    return {"working": working, "finished": finished}


def parent_denial(
    parent: SubmitParentOrder,
    directory: Directory,
    engine: RiskEngine,
    ctx: RiskContext,
    now_ns: int,
) -> ParentDenied | None:
    """The risk guard's verdict on a parent before its first child; None approves.

    Parameters out of range, an absent venue, then the total as one order of
    the full quantity at the algorithm's limit price (market without one)."""

    def deny(code: DenialCode, reason: str) -> ParentDenied:
        return ParentDenied(
            parent_id=parent.parent_id,
            strategy_id=parent.strategy_id,
            code=code,
            reason=reason,
            ts_ns=now_ns,
        )

    problem = parent.problems()
    if problem is not None:
        return deny(DenialCode.INVALID_ORDER, problem)
    capabilities = None
    if parent.venue is not None:
        entry = directory.venue(parent.venue)
        if entry is None:
            return deny(
                DenialCode.VENUE_UNAVAILABLE,
                f"venue {parent.venue!r} is not connected to this node",
            )
        capabilities = entry.capabilities
        listed = dict(directory.instruments.listings(parent.symbol))
        if listed and listed.get(parent.venue) != parent.symbol:
            # ``symbol`` names an instrument of the config: on a venue that does not list
            # it, or lists it under its own symbol, no child could be placed as named.
            where = ", ".join(f"{venue} as {symbol}" for venue, symbol in listed.items())
            return deny(
                DenialCode.NO_ROUTE,
                f"instrument {parent.symbol} is not listed on venue {parent.venue} under that "
                f"name (listed: {where}); name the venue's own symbol, or venue 'auto'",
            )
        rules = capabilities.client_ids
        longest = child_order_id(parent.parent_id, 99_999, 9)
        if len(longest) > rules.max_length or not set(longest) <= set(rules.characters):
            return deny(
                DenialCode.INVALID_ORDER,
                f"SubmitParentOrder.parent_id={parent.parent_id!r}: its children's ids "
                f"({longest!r}) do not fit venue {parent.venue}'s client order ids "
                f"(at most {rules.max_length} of {rules.characters!r})",
            )
    if parent.algorithm.needs_tape:
        # The algorithm learns from one venue's public trades: without them it
        # could only guess, so it is refused before it starts.
        name = type(parent.algorithm).__name__
        if parent.venue is None:
            return deny(
                DenialCode.INVALID_ORDER,
                f"NO_TAPE: {name} learns from one venue's public trades: name the venue",
            )
        if capabilities is None or MarketDataKind.TRADES not in capabilities.market_data:
            return deny(
                DenialCode.UNSUPPORTED_BY_VENUE,
                f"NO_TAPE: {name} learns from the venue's public trades, and venue "
                f"{parent.venue} does not print them (MarketDataKind.TRADES)",
            )
    # Without a venue the router places each child (``symbol`` is an instrument of the
    # config); the total is checked as one order there, each child at its venue.
    price = parent.algorithm.worst_price
    try:
        total = SubmitOrder(
            client_order_id=parent.parent_id,
            strategy_id=parent.strategy_id,
            venue=parent.venue or AUTO_VENUE,
            symbol=parent.symbol,
            side=parent.side,
            order_type=OrderType.MARKET if price is None else OrderType.LIMIT,
            quantity=parent.quantity,
            price=price,
            ts_ns=now_ns,
        )
    except ValueError as exc:
        return deny(DenialCode.INVALID_ORDER, str(exc))
    decision = engine.check_parent(total, ctx, capabilities=capabilities)
    if decision.approved:
        return None
    assert decision.code is not None
    return deny(decision.code, f"parent total: {decision.reason}")


def child_denial(state: OmsState, order: SubmitOrder) -> str | None:
    """Why the OMS must refuse a child order (its parent unknown or no longer working)."""
    if order.parent_id is None:
        return None
    record = state.parents.get(order.parent_id)
    if record is None:
        return f"parent {order.parent_id} is unknown"
    if record.state is not ParentState.WORKING:
        return f"parent {order.parent_id} is {record.state.value}: it sends no more children"
    return None


@dataclass
class ParentDesk:
    """The OMS actor's parent handling; its memory is only what it has announced."""

    announced: set[str] = field(default_factory=set)
    """Parents whose final event was published (by this process)."""

    def submit(self, oms: OmsActor, order: SubmitParentOrder) -> None:
        now = oms.context.now_ns()
        state = oms.state
        try:
            state.register_parent(order, now)
        except ParentTransitionError as exc:
            oms._publish(
                ParentDenied(
                    parent_id=order.parent_id,
                    strategy_id=order.strategy_id,
                    code=DenialCode.DUPLICATE_ORDER,
                    reason=str(exc),
                    ts_ns=now,
                ),
                order.strategy_id,
            )
            return
        oms._record(EntryKind.PARENT, now, message=order)
        oms._note_arrival(order.parent_id, order.venue, order.symbol, now)
        logger.info(
            "OMS: parent %s accepted: %s %s %s on %s by %s",
            order.parent_id,
            order.side.value,
            order.quantity,
            order.symbol,
            order.venue,
            order.algorithm.name,
        )
        oms._publish(
            ParentAccepted(parent_id=order.parent_id, strategy_id=order.strategy_id, ts_ns=now),
            order.strategy_id,
        )

    def cancel(self, oms: OmsActor, cancel: CancelParentOrder) -> None:
        now = oms.context.now_ns()
        state = oms.state
        record = state.parents.get(cancel.parent_id)
        if record is None or record.state is not ParentState.WORKING:
            logger.info(
                "OMS: cancel of parent %s ignored: %s",
                cancel.parent_id,
                "unknown" if record is None else record.state.value,
            )
            return
        ending = ParentState.EXPIRED if cancel.expire else ParentState.CANCELED
        state.move_parent(
            cancel.parent_id, ParentState.PENDING_CANCEL, cancel.reason, now, ending=ending
        )
        oms._record(EntryKind.PARENT, now, message=cancel)
        for child in record.children:
            view = state.get(child)
            if view is not None and view.is_open and view.status is not OrderStatus.PENDING_CANCEL:
                oms._cancel(
                    CancelOrder(
                        client_order_id=child, venue=view.venue, symbol=view.symbol, ts_ns=now
                    )
                )
        self.changed(oms, record)

    def learned(self, oms: OmsActor, profile: ParentProfile) -> None:
        """An algorithm learned its parent's profile: journaled before any child it
        shapes is sent (the algorithm tells this before its first child, which comes
        the longer way, through the router and the risk guard)."""
        now = oms.context.now_ns()
        try:
            oms.state.parents.learn(profile)
        except ParentTransitionError as exc:
            logger.warning("OMS: profile of parent %s ignored: %s", profile.parent_id, exc)
            return
        oms._record(EntryKind.PARENT, now, message=profile)
        logger.info(
            "OMS: parent %s works to the profile it learned: %s from %s",
            profile.parent_id,
            ", ".join(str(w) for w in profile.weights),
            profile.start_ns,
        )

    def stop_all(self, oms: OmsActor, reason: str) -> None:
        """The kill switch: every working parent stops sending children (PENDING_CANCEL,
        journaled) and ends CANCELED once its children are closed; the kill switch
        itself cancels the orders, so none is cancelled twice."""
        now = oms.context.now_ns()
        for record in oms.state.parents.working():
            if record.state is not ParentState.WORKING:
                continue
            oms.state.move_parent(record.parent_id, ParentState.PENDING_CANCEL, reason, now)
            oms._record(
                EntryKind.PARENT,
                now,
                message=CancelParentOrder(parent_id=record.parent_id, reason=reason, ts_ns=now),
            )
            self.changed(oms, record)

    def touched(self, oms: OmsActor, message: Any) -> None:
        """After any message: if it concerned a child, its parent moved on."""
        order_id = getattr(message, "client_order_id", None)
        if order_id is None:
            order = getattr(message, "order", None)
            order_id = getattr(order, "client_order_id", None)
        if not isinstance(order_id, str):
            return
        record = oms.state.parents.parent_of(order_id)
        if record is not None:
            self.changed(oms, record)

    def changed(self, oms: OmsActor, record: ParentRecord) -> None:
        state = oms.state
        now = oms.context.now_ns()
        view = parent_view(state, record)
        if record.state is ParentState.PENDING_CANCEL and not view.open_children:
            reason = record.reason or "cancel requested"
            closed = ParentCanceled(
                parent_id=record.parent_id,
                strategy_id=record.order.strategy_id,
                state=record.ending,
                filled=record.filled,
                reason=reason,
                avg_price=record.avg_price,
                ts_ns=now,
            )
            state.move_parent(record.parent_id, record.ending, reason, now)
            oms._record(EntryKind.PARENT, now, message=closed)
        strategy_id = record.order.strategy_id
        oms._publish(
            ParentProgress(
                parent_id=record.parent_id,
                strategy_id=strategy_id,
                state=record.state,
                target=record.target,
                filled=record.filled,
                open_quantity=view.open_quantity,
                avg_price=record.avg_price,
                children=len(record.children),
                ts_ns=now,
            ),
            strategy_id,
        )
        if not record.is_terminal or record.parent_id in self.announced:
            return
        self.announced.add(record.parent_id)
        if len(self.announced) > 2 * max(1, state.parents.closed_capacity):
            # Only parents the book still holds can be touched again.
            self.announced = {pid for pid in self.announced if pid in state.parents}
        if record.state is ParentState.FILLED:
            avg = record.avg_price
            assert avg is not None
            logger.info("OMS: parent %s filled: %s at %s", record.parent_id, record.filled, avg)
            oms._publish(
                ParentFilled(
                    parent_id=record.parent_id,
                    strategy_id=strategy_id,
                    filled=record.filled,
                    avg_price=avg,
                    ts_ns=now,
                ),
                strategy_id,
            )
        else:
            logger.info(
                "OMS: parent %s %s with %s of %s filled",
                record.parent_id,
                record.state.value,
                record.filled,
                record.target,
            )
            oms._publish(
                ParentCanceled(
                    parent_id=record.parent_id,
                    strategy_id=strategy_id,
                    state=record.state,
                    filled=record.filled,
                    reason=record.reason or record.state.value.lower(),
                    avg_price=record.avg_price,
                    ts_ns=now,
                ),
                strategy_id,
            )

    def deny_child(self, oms: OmsActor, order: SubmitOrder, reason: str) -> None:
        """Refuse a child whose parent stopped: recorded DENIED like a risk denial."""
        now = oms.context.now_ns()
        denial = OrderDenied(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            code=DenialCode.INVALID_ORDER,
            reason=reason,
            ts_ns=now,
        )
        from ._oms import RiskDenied  # noqa: PLC0415 - _oms imports this module

        oms._denied(RiskDenied(order, denial))

    def query(self, oms: OmsActor, message: GetParent | GetParents) -> Any:
        state = oms.state
        if isinstance(message, GetParent):
            record = state.parents.get(message.parent_id)
            return None if record is None else parent_view(state, record)
        return tuple(
            parent_view(state, record)
            for record in state.parents
            if (not message.working_only or not record.is_terminal)
            and (message.strategy_id is None or record.order.strategy_id == message.strategy_id)
        )
