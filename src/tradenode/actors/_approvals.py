"""Orders waiting for a person's approval (SEMI_AUTO above thresholds, MANUAL always).

A pending approval is an order that has reached no one yet: not the risk
guard, not the OMS, not a venue. The queue therefore keeps it itself and,
when the node has a journal, writes it to its own small journal in
``<journal path>/approvals`` (the OMS's journal holds only what the OMS
decided). **A pending approval survives a restart** until its deadline: the
person may be reading it right now, nothing else knows of the order, and
its deadline (node clock, wall time) still bounds how stale an approval can
be. One whose deadline passed while the node was down is denied
``APPROVAL_TIMEOUT`` at start, explicitly, like any other that times out.

Records are msgpack maps; the order travels in the message codec's frame.
After every ``_SNAPSHOT_EVERY`` records the pending set is snapshotted and
older segments compacted, so the file never grows with the approvals ever
handled.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgpack

from .._exceptions import DecodeError
from ..journal import FsyncPolicy, Journal
from ..messages._codec import decode, encode
from ..messages._execution import SubmitParentOrder
from ..messages._messages import SubmitOrder

__all__ = [
    "ApprovalLog",
    "ApprovalOutcome",
    "ApprovalQueue",
    "ApprovalQueueFullError",
    "PendingApproval",
]

logger = logging.getLogger("tradenode.approvals")

_SNAPSHOT_EVERY = 64


class ApprovalOutcome(enum.Enum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    """Refused by a person, or cancelled by its strategy while it waited."""
    EXPIRED = "EXPIRED"
    """Its deadline passed (``APPROVAL_TIMEOUT``)."""
    WITHDRAWN = "WITHDRAWN"
    """The node stopped wanting it without a decision (an emergency halted trading)."""


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An order (or a parent order) waiting for a decision; ``approval_id`` is its
    client order id (its parent id)."""

    approval_id: str
    order: SubmitOrder | SubmitParentOrder
    why: str
    requested_ns: int
    deadline_ns: int

    def describe(self) -> dict[str, str]:
        """What the CLI and the status show: strings, nothing secret."""
        order = self.order
        if isinstance(order, SubmitParentOrder):
            kind = f"parent {type(order.algorithm).__name__}"
            price = None
        else:
            kind, price = order.order_type.value, order.price
        return {
            "id": self.approval_id,
            "strategy": order.strategy_id,
            "venue": order.venue or "auto",
            "symbol": order.symbol,
            "side": order.side.value,
            "type": kind,
            "quantity": str(order.quantity),
            "price": "" if price is None else str(price),
            "why": self.why,
            "requested_ns": str(self.requested_ns),
            "deadline_ns": str(self.deadline_ns),
        }


class ApprovalQueueFullError(Exception):
    """The queue holds ``capacity`` approvals already; the order is denied at once."""


class ApprovalLog:
    """The queue's own journal: one writer (the router actor), every record fsynced."""

    def __init__(self, directory: Path) -> None:
        self._journal = Journal.open(directory, fsync=FsyncPolicy.parse("every_record"))
        self._since_snapshot = 0

    @classmethod
    def open(cls, directory: Path) -> tuple[ApprovalLog, list[PendingApproval]]:
        """Open (creating) the log and read back what was pending when it was last written."""
        log = cls(directory)
        pending = _pending_in(log._journal)
        log._since_snapshot = log._journal.last_seq - (log._journal.first_seq - 1)
        return log, pending

    @classmethod
    def read(cls, directory: Path) -> list[PendingApproval]:
        """What is pending, read-only (a tool's view; a running node's log included)."""
        if not directory.is_dir():
            return []
        journal = Journal.open_read_only(directory)
        try:
            return _pending_in(journal)
        finally:
            journal.close()

    def pending(self, approval: PendingApproval) -> None:
        self._append({"k": "pending", **_approval_to(approval)})

    def resolved(
        self,
        approval_id: str,
        outcome: ApprovalOutcome,
        who: str,
        reason: str,
        pending: Iterable[PendingApproval],
    ) -> None:
        seq = self._append(
            {"k": "resolved", "id": approval_id, "outcome": outcome.value, "who": who, "r": reason}
        )
        if self._since_snapshot >= _SNAPSHOT_EVERY:
            payload = msgpack.packb({"pending": [_approval_to(a) for a in pending]})
            self._journal.write_snapshot(seq, payload)
            self._journal.compact()
            self._since_snapshot = 0

    def close(self) -> None:
        self._journal.close()

    def _append(self, record: dict[str, object]) -> int:
        self._since_snapshot += 1
        return self._journal.append(msgpack.packb(record))


class ApprovalQueue:
    """Pending approvals in arrival order, bounded; optionally journaled."""

    def __init__(self, capacity: int, log: ApprovalLog | None = None) -> None:
        self.capacity = capacity
        self.log = log
        self._pending: dict[str, PendingApproval] = {}
        self.approved = 0
        self.rejected = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, approval_id: object) -> bool:
        return approval_id in self._pending

    def restore(self, approvals: Iterable[PendingApproval]) -> None:
        """What the log held at start (already journaled: not written again)."""
        for approval in approvals:
            self._pending[approval.approval_id] = approval

    def add(self, approval: PendingApproval) -> None:
        if len(self._pending) >= self.capacity:
            raise ApprovalQueueFullError(
                f"{len(self._pending)} approvals already pending (capacity {self.capacity})"
            )
        self._pending[approval.approval_id] = approval
        if self.log is not None:
            self.log.pending(approval)

    def get(self, approval_id: str) -> PendingApproval | None:
        return self._pending.get(approval_id)

    def pending(self) -> tuple[PendingApproval, ...]:
        return tuple(self._pending.values())

    def resolve(
        self, approval_id: str, outcome: ApprovalOutcome, who: str, reason: str = ""
    ) -> PendingApproval | None:
        """Take the approval out with its outcome (journaled first); None if not pending."""
        approval = self._pending.pop(approval_id, None)
        if approval is None:
            return None
        if outcome is ApprovalOutcome.APPROVED:
            self.approved += 1
        elif outcome is ApprovalOutcome.EXPIRED:
            self.expired += 1
        else:
            self.rejected += 1
        if self.log is not None:
            self.log.resolved(approval_id, outcome, who, reason, self._pending.values())
        logger.info(
            "approval %s: %s by %s%s",
            approval_id,
            outcome.value,
            who,
            f" ({reason})" if reason else "",
        )
        return approval

    def counts(self) -> dict[str, int]:
        return {
            "pending": len(self._pending),
            "approved": self.approved,
            "rejected": self.rejected,
            "expired": self.expired,
        }


def _pending_in(journal: Journal) -> list[PendingApproval]:
    pending: dict[str, PendingApproval] = {}
    after = 0
    snapshot = journal.latest_snapshot()
    if snapshot is not None:
        after, payload = snapshot
        items = _unpack(payload).get("pending", [])
        if not isinstance(items, list):
            raise DecodeError("approvals journal: a snapshot without its pending list")
        for item in items:
            if not isinstance(item, dict):
                raise DecodeError("approvals journal: a snapshot item is not a map")
            approval = _approval_from(item)
            pending[approval.approval_id] = approval
    for _, payload in journal.replay(after_seq=after):
        record = _unpack(payload)
        if record.get("k") == "pending":
            approval = _approval_from(record)
            pending[approval.approval_id] = approval
        elif record.get("k") == "resolved":
            pending.pop(str(record.get("id")), None)
    return sorted(pending.values(), key=lambda a: a.requested_ns)


def _approval_to(approval: PendingApproval) -> dict[str, object]:
    return {
        "id": approval.approval_id,
        "order": encode(approval.order),
        "why": approval.why,
        "at": approval.requested_ns,
        "until": approval.deadline_ns,
    }


def _approval_from(record: dict[str, object]) -> PendingApproval:
    order_frame = record.get("order")
    if not isinstance(order_frame, bytes):
        raise DecodeError("approvals journal: a pending record without its order")
    order = decode(order_frame)
    if not isinstance(order, SubmitOrder | SubmitParentOrder):
        raise DecodeError(f"approvals journal: expected an order, got {type(order).__name__}")
    requested, deadline = record.get("at"), record.get("until")
    if not isinstance(requested, int) or not isinstance(deadline, int):
        raise DecodeError("approvals journal: a pending record without its times")
    return PendingApproval(
        approval_id=str(record.get("id")),
        order=order,
        why=str(record.get("why", "")),
        requested_ns=requested,
        deadline_ns=deadline,
    )


def _unpack(payload: bytes) -> dict[str, object]:
    try:
        record = msgpack.unpackb(payload)
    except (ValueError, msgpack.UnpackException) as exc:
        raise DecodeError(f"approvals journal: unreadable record: {exc}") from exc
    if not isinstance(record, dict):
        raise DecodeError("approvals journal: a record is not a map")
    return record
