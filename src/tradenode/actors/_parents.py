"""The OMS's parent orders: what each targets, which children it has, what they filled.

Pure bookkeeping held by ``OmsState`` (``state.parents``), so a parent is
journaled, snapshotted and replayed with the orders it links: an algorithm
that restarts (or a node restarted on its journal) reads everything from
here and from the children's own order records, never from memory of its
own. Fills accumulate here as the OMS applies them to children, so a
parent's totals stay right after its finished children have left the
OMS's completed-order LRU.

Lifecycle (``ParentState``, legal moves ``PARENT_TRANSITIONS``)::

    WORKING ──► PENDING_CANCEL ──► CANCELED
       │  │            └─────────► FILLED
       │  └──► EXPIRED / CANCELED
       └─────► FILLED                 (when filled reaches the target)
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradenode._exceptions import OmsError
from tradenode.messages._algos import ParentProfile
from tradenode.messages._codec import decode as decode_message
from tradenode.messages._codec import encode as encode_message
from tradenode.messages._execution import (
    PARENT_TRANSITIONS,
    ParentState,
    SubmitParentOrder,
)
from tradenode.messages._messages import OrderFilled

__all__ = ["ParentBook", "ParentRecord", "ParentTransitionError"]

_LOGGER = logging.getLogger("tradenode.oms")
_ZERO = Decimal(0)


class ParentTransitionError(OmsError, ValueError):
    """A parent move its lifecycle does not allow (e.g. cancelling a filled parent)."""


@dataclass(slots=True)
class ParentRecord:
    """One parent: its order, lifecycle and the children linked to it, in order."""

    order: SubmitParentOrder
    accepted_ns: int
    state: ParentState = ParentState.WORKING
    reason: str = ""
    children: list[str] = field(default_factory=list)
    filled: Decimal = _ZERO
    notional: Decimal = _ZERO
    commission: Decimal = _ZERO
    closed_ns: int | None = None
    ending: ParentState = ParentState.CANCELED
    """What a PENDING_CANCEL parent becomes once its children are closed: CANCELED,
    or EXPIRED when its algorithm's schedule ended short of the target."""
    profile: ParentProfile | None = None
    """The volume profile its algorithm learned from the market (observed VWAP), once."""

    @property
    def parent_id(self) -> str:
        return self.order.parent_id

    @property
    def target(self) -> Decimal:
        return self.order.quantity

    @property
    def remaining(self) -> Decimal:
        return max(_ZERO, self.order.quantity - self.filled)

    @property
    def avg_price(self) -> Decimal | None:
        return None if self.filled <= 0 else self.notional / self.filled

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal

    def to_plain(self) -> list[Any]:
        return [
            encode_message(self.order),
            self.accepted_ns,
            self.state.value,
            self.reason,
            list(self.children),
            str(self.filled),
            str(self.notional),
            str(self.commission),
            self.closed_ns,
            self.ending.value,
            None if self.profile is None else encode_message(self.profile),
        ]

    @classmethod
    def from_plain(cls, plain: object, where: str) -> ParentRecord:
        # 10 fields before learned profiles (older snapshots), 11 since.
        if not isinstance(plain, list) or len(plain) not in (10, 11):
            raise ValueError(f"{where}: a parent is a list of 10 or 11 fields")
        raw, accepted, state, reason, children, filled, notional, commission, closed, ending = (
            plain[:10]
        )
        learned: ParentProfile | None = None
        if len(plain) == 11 and plain[10] is not None:
            if not isinstance(plain[10], bytes):
                raise ValueError(f"{where}: the learned profile must be message bytes")
            decoded = decode_message(plain[10])
            if not isinstance(decoded, ParentProfile):
                raise ValueError(f"{where}: holds a {type(decoded).__name__}, not a ParentProfile")
            learned = decoded
        if not isinstance(raw, bytes):
            raise ValueError(f"{where}: the parent order must be message bytes")
        order = decode_message(raw)
        if not isinstance(order, SubmitParentOrder):
            raise ValueError(f"{where}: holds a {type(order).__name__}, not a SubmitParentOrder")
        if type(accepted) is not int or not isinstance(reason, str):
            raise ValueError(f"{where}: malformed accepted_ns or reason")
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise ValueError(f"{where}: children must be a list of client order ids")
        if closed is not None and type(closed) is not int:
            raise ValueError(f"{where}: closed_ns must be an int or None")
        amounts = []
        for name, text in (("filled", filled), ("notional", notional), ("commission", commission)):
            if not isinstance(text, str):
                raise ValueError(f"{where}: {name} must be decimal text")
            value = Decimal(text)
            if not value.is_finite():
                raise ValueError(f"{where}: {name} {text!r} is not finite")
            amounts.append(value)
        return cls(
            order=order,
            accepted_ns=accepted,
            state=ParentState(state),
            reason=reason,
            children=list(children),
            filled=amounts[0],
            notional=amounts[1],
            commission=amounts[2],
            closed_ns=closed,
            ending=ParentState(ending),
            profile=learned,
        )


class ParentBook:
    """Parents by id, and each child's parent.

    Finished parents are kept for ``closed_capacity`` more parents (least
    recently finished forgotten first), so the book, its snapshot and the
    node's memory do not grow with every parent ever worked. Forgetting is
    a consequence of the journaled calls alone, so replay forgets the same.
    """

    __slots__ = ("_child_parent", "_closed", "_parents", "closed_capacity")

    def __init__(self, *, closed_capacity: int = 10_000) -> None:
        self._parents: dict[str, ParentRecord] = {}
        self._child_parent: dict[str, str] = {}
        self._closed: collections.deque[str] = collections.deque()
        self.closed_capacity = closed_capacity

    def __len__(self) -> int:
        return len(self._parents)

    def __contains__(self, parent_id: object) -> bool:
        return parent_id in self._parents

    def __iter__(self) -> Iterator[ParentRecord]:
        return iter(self._parents.values())

    def get(self, parent_id: str) -> ParentRecord | None:
        return self._parents.get(parent_id)

    def parent_of(self, client_order_id: str) -> ParentRecord | None:
        parent_id = self._child_parent.get(client_order_id)
        return None if parent_id is None else self._parents.get(parent_id)

    def working(self) -> tuple[ParentRecord, ...]:
        """Parents not yet terminal (an algorithm must be running for each)."""
        return tuple(p for p in self._parents.values() if not p.is_terminal)

    # -- the calls the OMS journals ---------------------------------------------------

    def register(self, order: SubmitParentOrder, ts_ns: int) -> ParentRecord:
        """Tracks a new parent as WORKING; a reused id raises ``ParentTransitionError``."""
        if order.parent_id in self._parents:
            raise ParentTransitionError(f"parent id {order.parent_id} is already in use")
        record = ParentRecord(order=order, accepted_ns=ts_ns)
        self._parents[order.parent_id] = record
        return record

    def move(
        self,
        parent_id: str,
        target: ParentState,
        reason: str,
        ts_ns: int,
        *,
        ending: ParentState = ParentState.CANCELED,
    ) -> ParentRecord:
        """One lifecycle move; an illegal one raises ``ParentTransitionError``.
        ``ending`` is what a move to PENDING_CANCEL ends as (CANCELED or EXPIRED)."""
        record = self._parents.get(parent_id)
        if record is None:
            raise ParentTransitionError(f"no parent {parent_id}")
        if target not in PARENT_TRANSITIONS[record.state]:
            raise ParentTransitionError(
                f"parent {parent_id}: {record.state.value} -> {target.value} is not allowed"
            )
        record.state = target
        if target is ParentState.PENDING_CANCEL:
            record.ending = ending
        if reason:
            record.reason = reason
        if target.is_terminal:
            self._close(record, ts_ns)
        return record

    def _close(self, record: ParentRecord, ts_ns: int) -> None:
        record.closed_ns = ts_ns
        self._closed.append(record.parent_id)
        while len(self._closed) > self.closed_capacity:
            forgotten = self._parents.pop(self._closed.popleft(), None)
            if forgotten is not None:
                for child in forgotten.children:
                    self._child_parent.pop(child, None)

    def learn(self, profile: ParentProfile) -> ParentRecord:
        """The profile a working parent's algorithm learned; a parent learns one once
        (a second, or one for a parent not working, raises ``ParentTransitionError``)."""
        record = self._parents.get(profile.parent_id)
        if record is None:
            raise ParentTransitionError(f"no parent {profile.parent_id}")
        if record.profile is not None:
            raise ParentTransitionError(f"parent {profile.parent_id} already has its profile")
        if record.state is not ParentState.WORKING:
            raise ParentTransitionError(
                f"parent {profile.parent_id} is {record.state.value}: it learns nothing more"
            )
        record.profile = profile
        return record

    # -- what OmsState tells it -----------------------------------------------------

    def link_child(self, parent_id: str, client_order_id: str) -> ParentRecord | None:
        """A registered order names ``parent_id``; None (logged) if no such parent."""
        record = self._parents.get(parent_id)
        if record is None:
            _LOGGER.warning("order %s names an unknown parent %s", client_order_id, parent_id)
            return None
        if client_order_id not in self._child_parent:
            record.children.append(client_order_id)
            self._child_parent[client_order_id] = parent_id
        return record

    def link_replacement(self, old_client_order_id: str, new_client_order_id: str) -> None:
        """A child replaced under a new id (cancel/replace) stays the parent's child."""
        record = self.parent_of(old_client_order_id)
        if record is not None and new_client_order_id not in self._child_parent:
            record.children.append(new_client_order_id)
            self._child_parent[new_client_order_id] = record.parent_id

    def on_fill(self, client_order_id: str, fill: OrderFilled, ts_ns: int) -> ParentRecord | None:
        """An applied (never duplicate) fill of a child: the parent's totals grow;
        reaching the target moves it to FILLED."""
        record = self.parent_of(client_order_id)
        if record is None:
            return None
        record.filled += fill.last_quantity
        record.notional += fill.notional
        record.commission += fill.commission
        if record.filled >= record.target and not record.is_terminal:
            record.state = ParentState.FILLED
            self._close(record, ts_ns)
        if record.filled > record.target:
            _LOGGER.error(
                "parent %s over-filled: %s of %s", record.parent_id, record.filled, record.target
            )
        return record

    # -- snapshots --------------------------------------------------------------------

    def to_plain(self) -> dict[str, Any]:
        return {
            "records": [record.to_plain() for record in self._parents.values()],
            "closed": list(self._closed),
            "closed_capacity": self.closed_capacity,
        }

    @classmethod
    def from_plain(cls, plain: object) -> ParentBook:
        if not isinstance(plain, dict):
            raise ValueError("parents: expected a mapping")
        capacity = plain.get("closed_capacity")
        records, closed = plain.get("records"), plain.get("closed")
        if type(capacity) is not int or capacity < 0:
            raise ValueError("parents.closed_capacity: expected an int >= 0")
        if not isinstance(records, list) or not isinstance(closed, list):
            raise ValueError("parents: records and closed must be lists")
        book = cls(closed_capacity=capacity)
        for index, item in enumerate(records):
            record = ParentRecord.from_plain(item, f"parents[{index}]")
            if record.parent_id in book._parents:
                raise ValueError(f"parents[{index}]: {record.parent_id} appears twice")
            book._parents[record.parent_id] = record
            for child in record.children:
                book._child_parent[child] = record.parent_id
        for parent_id in closed:
            if not isinstance(parent_id, str) or parent_id not in book._parents:
                raise ValueError(f"parents.closed: {parent_id!r} is not a parent held")
            book._closed.append(parent_id)
        return book

    def summary(self) -> Mapping[str, Any]:
        return {
            "parents": len(self._parents),
            "working": sum(1 for p in self._parents.values() if not p.is_terminal),
        }
