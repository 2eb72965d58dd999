"""The order-management core: every order's state, fills and positions, with no I/O.

The OMS actor wraps one :class:`OmsState`, hands it the commands it issues
(``register``, ``mark_submitted``, ...) and the reports venues send
(``apply``), and publishes what comes back. Nothing here reads a clock or
touches a thread: time arrives as ``ts_ns`` from the caller, so replaying a
journal through a fresh instance rebuilds the same state, and the actor's
restart is a replay rather than a guess.

Venue reports are never trusted to arrive once or in order. Fills are
idempotent by ``(venue, execution_id)``; a report that cannot be applied is
logged on ``tradenode.oms`` and answered with an ignored :class:`ApplyResult`
naming the reason; a report that is applied but reveals a disagreement with
the venue (an overfill, a fill we never saw) carries a :class:`Drift` so the
actor can reconcile. ``apply`` never raises for anything a venue sends.
"""

from __future__ import annotations

import collections
import copy
import decimal
import enum
import logging
import math
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from tradenode._exceptions import (
    DuplicateOrderError,
    OmsError,
    OmsSnapshotError,
    ReplaceRefusedError,
)
from tradenode.messages._enums import DenialCode, OrderStatus
from tradenode.messages._execution import ParentState, SubmitParentOrder
from tradenode.messages._fast_init import with_fast_init
from tradenode.messages._messages import (
    CancelRejected,
    Message,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatusReport,
    PositionSnapshot,
    SubmitOrder,
)

from ._execution_quality import ArrivalBook
from ._oms_snapshot import (
    OMS_SNAPSHOT_VERSION,
    READABLE_SNAPSHOT_VERSIONS,
    RECORD_NAMES,
    SCHEMA,
    StoredOrder,
    completed_entry,
    execution,
    hot_entry,
    kind_name,
    memo_in_use,
    order_from_plain,
    read_completed,
    read_decimal,
    typed,
)
from ._order_lifecycle import (
    LIVE_AT_VENUE,
    OPEN,
    PENDING,
    PENDING_STATUSES,
    TERMINAL,
    is_legal_transition,
)
from ._parents import ParentBook, ParentRecord
from ._positions import PositionBook

__all__ = [
    "OMS_SNAPSHOT_VERSION",
    "ApplyResult",
    "Drift",
    "DriftKind",
    "DuplicateOrderError",
    "ExecutionReport",
    "IgnoreReason",
    "LogicalOrderView",
    "MetricValue",
    "OmsCounts",
    "OmsError",
    "OmsSnapshotError",
    "OmsState",
    "ReplaceRefusedError",
    "TrackedOrderView",
]

_LOGGER = logging.getLogger("tradenode.oms")

_S = OrderStatus
_ZERO = Decimal(0)
_AVERAGE_CONTEXT = decimal.Context(prec=34)

ExecutionReport = (
    OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCanceled
    | OrderExpired
    | OrderModified
    | CancelRejected
    | ModifyRejected
    | OrderStatusReport
)
_EXECUTION_REPORT_TYPES = (
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCanceled,
    OrderExpired,
    OrderModified,
    CancelRejected,
    ModifyRejected,
    OrderStatusReport,
)

MetricValue = int | float | Decimal | None

_UNACKNOWLEDGED = frozenset({_S.INITIALIZED, _S.SUBMITTED})
_AMENDABLE = frozenset({_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED, *PENDING})
_NEVER_AT_VENUE = frozenset({_S.INITIALIZED, _S.DENIED, _S.REJECTED})
_NOT_REPLACEABLE = frozenset({_S.INITIALIZED, _S.DENIED, _S.REJECTED, _S.FILLED})
_REPLACEMENT_FAILED = frozenset({_S.DENIED, _S.REJECTED})
_VENUE_FINAL = frozenset({_S.FILLED, _S.CANCELED, _S.EXPIRED, _S.REJECTED})
_VENUE_LIVE = frozenset({*LIVE_AT_VENUE, *PENDING})


class IgnoreReason(enum.StrEnum):
    """Why a report or command changed nothing."""

    DUPLICATE_EXECUTION = "duplicate_execution"
    DUPLICATE_REPORT = "duplicate_report"
    UNKNOWN_ORDER = "unknown_order"
    ILLEGAL_TRANSITION = "illegal_transition"
    STALE_REPORT = "stale_report"
    """Consistent but too late to matter, e.g. a cancel refused because the order already filled."""
    MISMATCH = "mismatch"
    """The report names our order but another venue, symbol or side."""
    UNSUPPORTED_REPORT = "unsupported_report"


class DriftKind(enum.StrEnum):
    """A disagreement with the venue, found while applying a report."""

    OVERFILL = "overfill"
    MISSING_FILLS = "missing_fills"
    """The venue shows more filled than our fills add up to: fetch its trades."""
    UNCONFIRMED_FILLS = "unconfirmed_fills"
    """We hold fills the venue's own status does not show (yet)."""
    STATUS_MISMATCH = "status_mismatch"
    QUANTITY_MISMATCH = "quantity_mismatch"
    DUPLICATE_LIVE_ORDERS = "duplicate_live_orders"
    """Two venue orders are live for one logical order: a replace left the old one alive."""
    LOGICAL_OVERFILL = "logical_overfill"
    """Fills across a cancel/replace chain exceed what the logical order asked for."""
    REDUNDANT_REPLACEMENT = "redundant_replacement"
    """The logical order is filled but its newest member can still fill: cancel it."""
    AMEND_BELOW_FILLED = "amend_below_filled"
    UNEXPECTED_FILL = "unexpected_fill"
    """A fill for an order the venue never had or refused."""
    VENUE_ORDER_ID_CHANGED = "venue_order_id_changed"


_IGNORE_LOG_LEVELS = {
    IgnoreReason.DUPLICATE_EXECUTION: logging.DEBUG,
    IgnoreReason.DUPLICATE_REPORT: logging.DEBUG,
    IgnoreReason.STALE_REPORT: logging.INFO,
    IgnoreReason.UNKNOWN_ORDER: logging.INFO,
    IgnoreReason.ILLEGAL_TRANSITION: logging.WARNING,
    IgnoreReason.UNSUPPORTED_REPORT: logging.WARNING,
    IgnoreReason.MISMATCH: logging.ERROR,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    kind: DriftKind
    client_order_id: str
    detail: str
    quantity: Decimal | None = None
    """How much: the overfilled or missing quantity, when the drift is one."""


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class TrackedOrderView:
    """One order as the OMS knows it; ``order`` carries the current (amended) terms."""

    order: SubmitOrder
    status: OrderStatus
    filled_quantity: Decimal
    avg_fill_price: Decimal | None
    commission: Decimal
    fill_count: int
    venue_order_id: str | None
    resume_status: OrderStatus | None
    """While a cancel or replace is pending: the open status a refusal returns to."""
    replacement_of: str | None
    replaced_by: str | None
    predecessors_filled_quantity: Decimal
    """Filled by the orders this one replaced; part of the same logical order."""
    created_ns: int
    submitted_ns: int | None
    accepted_ns: int | None
    first_fill_ns: int | None
    last_update_ns: int
    denial_code: DenialCode | None
    rejection_code: str | None
    reason: str | None

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    @property
    def venue(self) -> str:
        return self.order.venue

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def strategy_id(self) -> str:
        return self.order.strategy_id

    @property
    def quantity(self) -> Decimal:
        return self.order.quantity

    @property
    def leaves_quantity(self) -> Decimal:
        if self.status.is_terminal:
            return _ZERO
        return max(_ZERO, self.order.quantity - self.filled_quantity)

    @property
    def overfilled_quantity(self) -> Decimal:
        return max(_ZERO, self.filled_quantity - self.order.quantity)

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


@dataclass(frozen=True, slots=True, kw_only=True)
class LogicalOrderView:
    """A cancel/replace chain seen as the one order the strategy asked for."""

    client_order_ids: tuple[str, ...]
    """Oldest first; members already forgotten are left out."""
    current_client_order_id: str
    status: OrderStatus
    """The current member's status."""
    requested_quantity: Decimal
    filled_quantity: Decimal
    live_client_order_ids: tuple[str, ...]

    @property
    def leaves_quantity(self) -> Decimal:
        if self.status.is_terminal:
            return _ZERO
        return max(_ZERO, self.requested_quantity - self.filled_quantity)

    @property
    def overfilled_quantity(self) -> Decimal:
        return max(_ZERO, self.filled_quantity - self.requested_quantity)

    @property
    def has_duplicate_live_orders(self) -> bool:
        return len(self.live_client_order_ids) > 1


@with_fast_init
@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    """What one report or command did; ``applied`` is False when it changed nothing."""

    client_order_id: str
    applied: bool
    status: OrderStatus | None
    """The order's status afterwards; None for an order the OMS does not know."""
    previous_status: OrderStatus | None
    reason: IgnoreReason | None = None
    detail: str = ""
    drifts: tuple[Drift, ...] = ()
    order: TrackedOrderView | None = None
    fill: OrderFilled | None = None
    """The execution this result applied, so the actor can publish exactly what counted."""
    position_updates: tuple[PositionSnapshot, ...] = ()
    """Net position, then the strategy's, after an applied fill."""
    linked_orders: tuple[TrackedOrderView, ...] = ()
    """Other orders of the same logical order that this report changed."""
    inferred_accept: OrderAccepted | None = None
    """The acceptance a fill implies when it overtook the venue's accept (a user
    stream can tell a fill before the REST answer arrives): published before the
    fill, so a strategy always hears "accepted" first; the late accept is then a
    duplicate."""

    @property
    def ignored(self) -> bool:
        return not self.applied

    @property
    def status_changed(self) -> bool:
        return self.status is not self.previous_status

    @property
    def flags(self) -> frozenset[str]:
        """The ignore reason and every drift kind, for ``"overfill" in result.flags``."""
        names = {drift.kind.value for drift in self.drifts}
        if self.reason is not None:
            names.add(self.reason.value)
        return frozenset(names)

    def drift(self, kind: DriftKind) -> Drift | None:
        return next((drift for drift in self.drifts if drift.kind is kind), None)

    @property
    def missing_fill_quantity(self) -> Decimal:
        missing = self.drift(DriftKind.MISSING_FILLS)
        if missing is None or missing.quantity is None:
            return _ZERO
        return missing.quantity


@dataclass(frozen=True, slots=True, kw_only=True)
class OmsCounts:
    hot: int
    """Orders still in play: not terminal, or part of a logical order that is not."""
    completed: int
    """Finished orders kept for late reports, at most ``completed_capacity``."""
    open: int
    executions: int
    """Execution ids remembered for deduplication; they leave with their order."""

    @property
    def retained(self) -> int:
        return self.hot + self.completed


class _Order:
    """The mutable record behind a :class:`TrackedOrderView`."""

    __slots__ = (
        "accepted_ns",
        "carried_at_link",
        "commission",
        "created_ns",
        "denial_code",
        "fill_notional",
        "filled",
        "fills",
        "first_fill_ns",
        "last_update_ns",
        "order",
        "predecessors_filled",
        "reason",
        "rejection_code",
        "replaced_by",
        "replacement_of",
        "resume_status",
        "status",
        "submitted_ns",
        "venue_order_id",
    )

    def __init__(
        self,
        order: SubmitOrder,
        ts_ns: int,
        *,
        replacement_of: str | None,
        carried_at_link: Decimal,
    ) -> None:
        self.order = order
        self.status = _S.INITIALIZED
        self.resume_status: OrderStatus | None = None
        self.filled = _ZERO
        self.fill_notional = _ZERO
        self.commission = _ZERO
        self.fills: list[tuple[int, OrderFilled]] = []
        self.venue_order_id: str | None = None
        self.created_ns = ts_ns
        self.submitted_ns: int | None = None
        self.accepted_ns: int | None = None
        self.first_fill_ns: int | None = None
        self.last_update_ns = ts_ns
        self.replacement_of = replacement_of
        self.replaced_by: str | None = None
        self.carried_at_link = carried_at_link
        self.predecessors_filled = carried_at_link
        self.denial_code: DenialCode | None = None
        self.rejection_code: str | None = None
        self.reason: str | None = None

    @classmethod
    def from_values(cls, values: list[Any]) -> _Order:
        """The order whose :meth:`values` these are (as a snapshot reads them back)."""
        tracked = object.__new__(cls)
        for slot, value in zip(_SLOTS, values, strict=True):
            slot.__set__(tracked, value)
        return tracked

    def values(self) -> tuple[Any, ...]:
        """Every slot's value, in the snapshot's order (``RECORD_NAMES``)."""
        values: tuple[Any, ...] = _VALUES(self)
        return values

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id

    def open_status(self, quantity: Decimal) -> OrderStatus:
        """The status the venue's order is in, judged by our fills alone."""
        if self.filled >= quantity:
            return _S.FILLED
        return _S.PARTIALLY_FILLED if self.filled > 0 else _S.ACCEPTED

    def view(self) -> TrackedOrderView:
        average = _AVERAGE_CONTEXT.divide(self.fill_notional, self.filled) if self.filled else None
        return TrackedOrderView(
            order=self.order,
            status=self.status,
            filled_quantity=self.filled,
            avg_fill_price=average,
            commission=self.commission,
            fill_count=len(self.fills),
            venue_order_id=self.venue_order_id,
            resume_status=self.resume_status,
            replacement_of=self.replacement_of,
            replaced_by=self.replaced_by,
            predecessors_filled_quantity=self.predecessors_filled,
            created_ns=self.created_ns,
            submitted_ns=self.submitted_ns,
            accepted_ns=self.accepted_ns,
            first_fill_ns=self.first_fill_ns,
            last_update_ns=self.last_update_ns,
            denial_code=self.denial_code,
            rejection_code=self.rejection_code,
            reason=self.reason,
        )


_SLOTS: Final[tuple[Any, ...]] = tuple(_Order.__dict__[name] for name in RECORD_NAMES)
_VALUES: Final = operator.attrgetter(*RECORD_NAMES)
# Held while a stored completed order is decoded into the LRU and while orders leave it.
_DECODING: Final = threading.Lock()


class _Effects:
    """What a handler did besides changing its order, gathered into the result."""

    __slots__ = ("detail", "drifts", "fill", "inferred_accept", "linked", "positions")

    def __init__(self) -> None:
        self.detail = ""
        self.drifts: list[Drift] = []
        self.fill: OrderFilled | None = None
        self.inferred_accept: OrderAccepted | None = None
        self.linked: list[_Order] = []
        self.positions: tuple[PositionSnapshot, ...] = ()

    def drift(
        self, kind: DriftKind, order: _Order, detail: str, quantity: Decimal | None = None
    ) -> None:
        self.drifts.append(
            Drift(
                kind=kind, client_order_id=order.client_order_id, detail=detail, quantity=quantity
            )
        )


_Verdict = tuple[IgnoreReason, str]
_Handler = Callable[[_Order, _Effects], _Verdict | None]


class _Metrics:
    __slots__ = (
        "ack_latencies",
        "commission",
        "fill_latencies",
        "fill_latency_count",
        "fill_latency_total",
        "filled_notional",
        "filled_orders",
        "submitted_orders",
        "total_orders",
    )

    def __init__(self, latency_window: int) -> None:
        self.total_orders = 0
        self.submitted_orders = 0
        self.filled_orders = 0
        self.fill_latency_total = 0
        self.fill_latency_count = 0
        self.filled_notional = _ZERO
        self.commission = _ZERO
        self.ack_latencies: collections.deque[int] = collections.deque(maxlen=latency_window)
        self.fill_latencies: collections.deque[int] = collections.deque(maxlen=latency_window)

    def to_plain(self) -> dict[str, Any]:
        return {
            "total_orders": self.total_orders,
            "submitted_orders": self.submitted_orders,
            "filled_orders": self.filled_orders,
            # A sum of nanoseconds may outgrow msgpack's 64-bit integers.
            "fill_latency_total": str(self.fill_latency_total),
            "fill_latency_count": self.fill_latency_count,
            "filled_notional": str(self.filled_notional),
            "commission": str(self.commission),
            "ack_latencies": list(self.ack_latencies),
            "fill_latencies": list(self.fill_latencies),
        }

    @classmethod
    def from_plain(cls, plain: dict[str, Any], latency_window: int) -> _Metrics:
        metrics = cls(latency_window)
        metrics.total_orders = typed(plain["total_orders"], int, "metrics.total_orders")
        metrics.submitted_orders = typed(plain["submitted_orders"], int, "metrics.submitted_orders")
        metrics.filled_orders = typed(plain["filled_orders"], int, "metrics.filled_orders")
        metrics.fill_latency_total = int(
            typed(plain["fill_latency_total"], str, "metrics.fill_latency_total")
        )
        metrics.fill_latency_count = typed(
            plain["fill_latency_count"], int, "metrics.fill_latency_count"
        )
        metrics.filled_notional = read_decimal(plain["filled_notional"], "metrics.filled_notional")
        metrics.commission = read_decimal(plain["commission"], "metrics.commission")
        for name, window in (
            ("ack_latencies", metrics.ack_latencies),
            ("fill_latencies", metrics.fill_latencies),
        ):
            samples = plain[name]
            # Up to latency_window samples each: check them all at once, one by one only to say
            # which.
            if type(samples) is list and set(map(type, samples)) <= {int}:
                window.extend(samples)
            else:
                window.extend(typed(sample, int, f"metrics.{name}") for sample in samples)
        return metrics


class OmsState:
    """Orders keyed by client order id, their fills, and the positions those fills make.

    Orders that are finished (terminal, and not part of a cancel/replace
    chain that is still going) leave the hot set for a bounded LRU of
    ``completed_capacity`` orders, which still answers :meth:`get` and
    still recognises late duplicate executions; past it an order is
    forgotten and its reports are ``unknown_order``. Latency percentiles
    cover the last ``latency_window`` samples.
    """

    def __init__(self, *, completed_capacity: int = 10_000, latency_window: int = 10_000) -> None:
        if isinstance(completed_capacity, bool) or completed_capacity < 0:
            raise ValueError(f"OmsState.completed_capacity={completed_capacity!r}: must be >= 0")
        if isinstance(latency_window, bool) or latency_window < 1:
            raise ValueError(f"OmsState.latency_window={latency_window!r}: must be >= 1")
        self._completed_capacity = completed_capacity
        self._hot: dict[str, _Order] = {}
        self._completed: collections.OrderedDict[str, _Order | StoredOrder] = (
            collections.OrderedDict()
        )
        """Least recently used first; an order restored from a snapshot stays a
        ``StoredOrder`` until :meth:`_find` first looks it up."""
        self._looked_up: set[str] | None = None
        """Ids :meth:`_find` was asked for since the last incremental snapshot, which
        started keeping them (None: none taken, nothing kept). Every change to an order
        is made to an object ``_find`` returned, so the snapshot's ``RecordMemo`` need
        not compare the others' values (``OmsState.snapshot``)."""
        self._executions: dict[tuple[str, str], str] = {}
        self._open_by_venue: collections.Counter[str] = collections.Counter()
        self._positions = PositionBook()
        self._metrics = _Metrics(latency_window)
        self._fill_sequence = 0
        self._balance_baselines: dict[tuple[str, str], Decimal] = {}
        self._fees_paid: dict[tuple[str, str], Decimal] = {}
        self._venue_cursors: dict[tuple[str, str], str] = {}
        self._acceptance_windows: dict[str, Decimal] = {}
        self._arrivals = ArrivalBook()
        self.parents = ParentBook()
        """Parent orders and their children (``_parents``), journaled and snapshotted here."""

    # Commands the OMS issues ------------------------------------------------

    def register(self, order: SubmitOrder, ts_ns: int) -> TrackedOrderView:
        """Tracks a new order as INITIALIZED; raises :class:`DuplicateOrderError` on a reused id.

        A child (``order.parent_id``) is linked to its parent."""
        return self._track(order, ts_ns).view()

    def track(self, order: SubmitOrder, ts_ns: int) -> None:
        """:meth:`register` for a caller that reads no view of the order (the OMS
        actor routing a new order): the same state change, no view built."""
        self._track(order, ts_ns)

    def _track(self, order: SubmitOrder, ts_ns: int) -> _Order:
        tracked = self._register(order, ts_ns, replacement_of=None, carried_at_link=_ZERO)
        if order.parent_id is not None:
            self.parents.link_child(order.parent_id, order.client_order_id)
        return tracked

    def register_parent(self, order: SubmitParentOrder, ts_ns: int) -> ParentRecord:
        """Tracks a parent order as WORKING (``ParentTransitionError`` on a reused id)."""
        return self.parents.register(order, ts_ns)

    def move_parent(
        self,
        parent_id: str,
        target: ParentState,
        reason: str,
        ts_ns: int,
        *,
        ending: ParentState = ParentState.CANCELED,
    ) -> ParentRecord:
        """One move of a parent's lifecycle (``ParentTransitionError`` if illegal)."""
        return self.parents.move(parent_id, target, reason, ts_ns, ending=ending)

    def mark_denied(
        self, client_order_id: str, code: DenialCode, reason: str, ts_ns: int
    ) -> ApplyResult:
        def deny(tracked: _Order, effects: _Effects) -> _Verdict | None:
            verdict = self._transition(tracked, _S.DENIED)
            if verdict is None:
                tracked.denial_code = code
                tracked.reason = reason
                self._replacement_failed(tracked, effects)
            return verdict

        return self._run(client_order_id, ts_ns, "mark_denied", deny)

    def mark_submitted(self, client_order_id: str, ts_ns: int) -> ApplyResult:
        """Call before handing the order to its broker, so no report can overtake it."""
        return self._run(client_order_id, ts_ns, "mark_submitted", self._submitter(ts_ns))

    def submitted(self, client_order_id: str, ts_ns: int) -> bool:
        """:meth:`mark_submitted` for a caller that reads no result but whether it
        applied (the OMS actor routing an order it has just registered): the same
        state change and log line, no result or view built."""
        return self._step(client_order_id, ts_ns, "mark_submitted", self._submitter(ts_ns))[0]

    def _submitter(self, ts_ns: int) -> _Handler:
        def submit(tracked: _Order, _: _Effects) -> _Verdict | None:
            verdict = self._transition(tracked, _S.SUBMITTED)
            if verdict is None:
                tracked.submitted_ns = ts_ns
                self._metrics.submitted_orders += 1
            return verdict

        return submit

    def mark_pending_cancel(self, client_order_id: str, ts_ns: int) -> ApplyResult:
        return self._run(
            client_order_id,
            ts_ns,
            "mark_pending_cancel",
            lambda tracked, _: self._transition(tracked, _S.PENDING_CANCEL),
        )

    def mark_pending_replace(self, client_order_id: str, ts_ns: int) -> ApplyResult:
        return self._run(
            client_order_id,
            ts_ns,
            "mark_pending_replace",
            lambda tracked, _: self._transition(tracked, _S.PENDING_REPLACE),
        )

    def link_replacement(
        self, old_client_order_id: str, new_order: SubmitOrder, ts_ns: int
    ) -> TrackedOrderView:
        """Registers ``new_order`` as the replacement of an order, as one logical order.

        ``new_order.quantity`` is the logical order's requested total; the
        replacement is registered, and must be sent, with that total minus
        everything the chain has already filled, because a replace must
        never buy again what was already bought. Raises
        :class:`ReplaceRefusedError` when nothing would be left, when the
        old order cannot be replaced, or when the terms name another
        instrument; :class:`DuplicateOrderError` on a reused id.
        """
        old = self._find(old_client_order_id)
        if old is None:
            raise ReplaceRefusedError(f"replace of {old_client_order_id}: order not tracked")
        if old.status in _NOT_REPLACEABLE:
            raise ReplaceRefusedError(
                f"replace of {old_client_order_id}: a {old.status.value} order cannot be replaced"
            )
        previous_replacement = self._successor(old)
        if previous_replacement is not None and (
            previous_replacement.status not in _REPLACEMENT_FAILED
        ):
            raise ReplaceRefusedError(
                f"replace of {old_client_order_id}: already replaced by "
                f"{previous_replacement.client_order_id}"
            )
        for field in ("venue", "symbol", "side", "strategy_id"):
            if getattr(new_order, field) != getattr(old.order, field):
                raise ReplaceRefusedError(
                    f"replace of {old_client_order_id}: {field} "
                    f"{getattr(new_order, field)!r} differs from {getattr(old.order, field)!r}"
                )
        already_filled = old.filled + old.predecessors_filled
        remainder = new_order.quantity - already_filled
        if remainder <= 0:
            raise ReplaceRefusedError(
                f"replace of {old_client_order_id}: requested {new_order.quantity} but "
                f"{already_filled} is already filled; nothing is left to replace"
            )
        replacement = self._register(
            replace(new_order, quantity=remainder),
            ts_ns,
            replacement_of=old_client_order_id,
            carried_at_link=already_filled,
        )
        old.replaced_by = replacement.client_order_id
        old.last_update_ns = ts_ns
        self.parents.link_replacement(old_client_order_id, replacement.client_order_id)
        self._arrivals.inherit(replacement.client_order_id, old_client_order_id)
        for member in self._chain(old):
            with _DECODING:
                revived = self._completed.pop(member.client_order_id, None)
            if revived is not None:
                self._hot[member.client_order_id] = member
        if previous_replacement is not None:
            self._retire_if_done(previous_replacement)
        return replacement.view()

    # Reports venues send ----------------------------------------------------

    def apply(self, report: Message, ts_ns: int) -> ApplyResult:
        """Applies one venue report (any :data:`ExecutionReport`); never raises for its content.

        ``ts_ns`` is when the OMS received it; latencies are measured on the
        OMS's own clock because venue clocks drift.
        """
        if not isinstance(report, _EXECUTION_REPORT_TYPES):
            reason = IgnoreReason.UNSUPPORTED_REPORT
            detail = f"{type(report).__name__} is not an execution report"
            _LOGGER.warning("apply ignored: %s (%s)", reason.value, detail)
            return ApplyResult(
                client_order_id="",
                applied=False,
                status=None,
                previous_status=None,
                reason=reason,
                detail=detail,
            )
        return self._run(
            report.client_order_id,
            ts_ns,
            type(report).__name__,
            lambda tracked, effects: self._on_report(tracked, report, ts_ns, effects),
            venue=report.venue,
        )

    def mark(self, venue: str, symbol: str, price: Decimal) -> None:
        """Sets the price unrealized PnL is measured against."""
        self._positions.mark(venue, symbol, price)

    def set_balance_baseline(self, venue: str, asset: str, quantity: Decimal) -> None:
        """Records how much of ``asset`` the venue account holds that our fills do not
        explain. It lives with the orders (journaled, snapshotted) because a
        drift that happens while the node is down shows only against the
        baseline the last run knew."""
        self._balance_baselines[(venue, asset)] = quantity

    def balance_baseline(self, venue: str, asset: str) -> Decimal | None:
        return self._balance_baselines.get((venue, asset))

    def fees_paid(self, venue: str, asset: str) -> Decimal:
        """The commissions every applied fill on ``venue`` paid in ``asset`` (a spot
        venue that charges a buy's fee in the base asset holds that much less of it
        than the fills bought)."""
        return self._fees_paid.get((venue, asset), Decimal(0))

    def set_venue_cursor(self, venue: str, scope: str, cursor: str) -> None:
        """Records how far a venue's history has been read: for ``scope`` (an
        adapter's name for one history, e.g. ``trades/BTCUSDT``) everything up to
        ``cursor`` (the adapter's opaque position) has reached the OMS. It lives
        with the orders because a new process must sweep the venue's executions
        from where the last one stopped, not from its own first fill."""
        self._venue_cursors[(venue, scope)] = cursor

    def venue_cursors(self, venue: str) -> dict[str, str]:
        """``{scope: cursor}`` of one venue."""
        return {scope: cursor for (v, scope), cursor in self._venue_cursors.items() if v == venue}

    def set_acceptance_window(self, venue: str, seconds: Decimal) -> None:
        """Records how long after its deadline a request to ``venue`` may still be
        accepted there (see ``AcceptanceWindow``). A restarted node resolving an
        order the last process sent must wait as long as that process's window
        said, which the new process's configuration may not."""
        self._acceptance_windows[venue] = seconds

    def acceptance_window(self, venue: str) -> Decimal | None:
        return self._acceptance_windows.get(venue)

    def set_arrival(self, client_order_id: str, price: Decimal) -> None:
        """Records an order's arrival price (the mid of the quote the OMS held when it
        registered the order), for execution quality; see ``_execution_quality``."""
        if self._tracks(client_order_id):
            self._arrivals.set_arrival(client_order_id, price)
        elif client_order_id in self.parents:
            # A parent's arrival; those of parents the book has forgotten go now.
            self._arrivals.keep_parents(self.parents)
            self._arrivals.set_arrival(client_order_id, price, parent=True)

    @property
    def arrivals(self) -> ArrivalBook:
        """Arrival prices and completion times (node clock) of the retained orders."""
        return self._arrivals

    # Queries ------------------------------------------------------------------

    def get(self, client_order_id: str) -> TrackedOrderView | None:
        tracked = self._find(client_order_id)
        return None if tracked is None else tracked.view()

    def open_orders(
        self, venue: str | None = None, symbol: str | None = None
    ) -> tuple[TrackedOrderView, ...]:
        return tuple(
            tracked.view()
            for tracked in self._hot.values()
            if tracked.status.is_open
            and (venue is None or tracked.order.venue == venue)
            and (symbol is None or tracked.order.symbol == symbol)
        )

    def execution_ids(self, client_order_id: str) -> tuple[str, ...]:
        """The execution ids of the fills applied to one order, in the order applied.

        A new incarnation of an adapter that counts fills per order (to know
        when the venue's last one was told) starts from these, so the venue's
        replay of the same executions adds nothing to its count."""
        tracked = self._find(client_order_id)
        if tracked is None:
            return ()
        return tuple(fill.execution_id for _, fill in tracked.fills)

    def recent_orders(
        self,
        *,
        limit: int,
        venue: str | None = None,
        strategy_id: str | None = None,
        status: OrderStatus | None = None,
    ) -> tuple[TrackedOrderView, ...]:
        """Up to ``limit`` retained orders (open or finished, fills or none), newest
        registration first, matching the filters: what an operator lists. Finished
        orders are read most recently finished first; only as many as it takes are
        decoded."""
        wanted: list[TrackedOrderView] = []

        def take(view: TrackedOrderView) -> bool:
            if (
                (venue is None or view.order.venue == venue)
                and (strategy_id is None or view.order.strategy_id == strategy_id)
                and (status is None or view.status is status)
            ):
                wanted.append(view)
            return len(wanted) >= limit

        for tracked in reversed(list(self._hot.values())):
            if take(tracked.view()):
                break
        else:
            for client_order_id in reversed(list(self._completed)):
                found = self._find(client_order_id)
                if found is not None and take(found.view()):
                    break
        return tuple(wanted)

    def open_count(self, venue: str | None = None) -> int:
        """Orders the venue may still fill (INITIALIZED ones have not been sent yet)."""
        if venue is None:
            return sum(self._open_by_venue.values())
        return self._open_by_venue[venue]

    def fills(self, client_order_id: str | None = None) -> tuple[OrderFilled, ...]:
        """Applied fills in the order they were applied, of one order or of all retained ones."""
        if client_order_id is not None:
            # Not _find: of an order still stored, only its fills need decoding.
            tracked = self._hot.get(client_order_id) or self._completed.get(client_order_id)
            return () if tracked is None else tuple(fill for _, fill in tracked.fills)
        numbered = [
            entry
            for orders in (self._hot, self._completed)
            for tracked in orders.values()
            for entry in tracked.fills
        ]
        numbered.sort(key=lambda entry: entry[0])
        return tuple(fill for _, fill in numbered)

    def replacement_of(self, client_order_id: str) -> str | None:
        tracked = self._find(client_order_id)
        return None if tracked is None else tracked.replacement_of

    def replaced_by(self, client_order_id: str) -> str | None:
        tracked = self._find(client_order_id)
        return None if tracked is None else tracked.replaced_by

    def logical_order(self, client_order_id: str) -> LogicalOrderView | None:
        tracked = self._find(client_order_id)
        if tracked is None:
            return None
        chain = self._chain(tracked)
        current = chain[-1]
        return LogicalOrderView(
            client_order_ids=tuple(member.client_order_id for member in chain),
            current_client_order_id=current.client_order_id,
            status=current.status,
            requested_quantity=current.order.quantity + current.carried_at_link,
            filled_quantity=current.filled + current.predecessors_filled,
            live_client_order_ids=tuple(
                member.client_order_id for member in chain if member.status in LIVE_AT_VENUE
            ),
        )

    def positions(self, *, by_strategy: bool = False) -> tuple[PositionSnapshot, ...]:
        """Net positions per (venue, symbol), or per (venue, symbol, strategy)."""
        return self._positions.snapshots(by_strategy=by_strategy)

    def position(self, venue: str, symbol: str, strategy_id: str | None = None) -> PositionSnapshot:
        return self._positions.snapshot(venue, symbol, strategy_id)

    def commission(self, venue: str, symbol: str, strategy_id: str | None = None) -> Decimal:
        return self._positions.commission(venue, symbol, strategy_id)

    def commissions(
        self, venue: str, symbol: str, strategy_id: str | None = None
    ) -> dict[str | None, Decimal]:
        """Commission per asset; sums across assets only make sense when they are one."""
        return self._positions.commissions(venue, symbol, strategy_id)

    def counts(self) -> OmsCounts:
        return OmsCounts(
            hot=len(self._hot),
            completed=len(self._completed),
            open=self.open_count(),
            executions=len(self._executions),
        )

    def metrics(self) -> dict[str, MetricValue]:
        """Lifetime counters (forgetting an order does not uncount it) and recent latencies."""
        metrics = self._metrics
        fill_rate = (
            metrics.filled_orders / metrics.submitted_orders if metrics.submitted_orders else 0.0
        )
        average_fill_latency = (
            metrics.fill_latency_total // metrics.fill_latency_count
            if metrics.fill_latency_count
            else None
        )
        ack = sorted(metrics.ack_latencies)
        first_fill = sorted(metrics.fill_latencies)
        return {
            "total_orders": metrics.total_orders,
            "submitted_orders": metrics.submitted_orders,
            "filled_orders": metrics.filled_orders,
            "fill_rate": fill_rate,
            "avg_fill_latency_ns": average_fill_latency,
            "total_filled_notional": metrics.filled_notional,
            "total_commission": metrics.commission,
            "ack_latency_p50_ns": _percentile(ack, 50),
            "ack_latency_p99_ns": _percentile(ack, 99),
            "fill_latency_p50_ns": _percentile(first_fill, 50),
            "fill_latency_p99_ns": _percentile(first_fill, 99),
            "open_orders": self.open_count(),
            "retained_orders": len(self._hot) + len(self._completed),
        }

    # Snapshots ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything this state holds, as plain data :meth:`restore` rebuilds it from.

        Only dicts with string keys, lists, strings, ints, None and bytes:
        it packs as msgpack as it is. Decimals and exact fractions are
        strings, enums their values, a hot order's messages the bytes of
        the message codec. Each completed order is ``[client_order_id,
        status, record]``, the record an opaque msgpack row described by
        ``schema``, so a restore can leave it undecoded until it is used.
        Orders keep their order (hot in insertion order, completed least
        recently used first), so a restored state forgets, lists and
        numbers exactly as this one would.
        """
        memo = memo_in_use()
        if memo is not None:
            # Incremental (``OmsJournal._take``): a section at a time, sparing the orders
            # not looked up since the memo's last snapshot (``RecordMemo.marks``).
            looked_up = self._looked_up
            hot = memo.hot_entries(self._hot.items(), _VALUES, looked_up)
            completed = memo.completed_entries(self._completed.items(), _VALUES, looked_up)
            self._looked_up = memo.marks()
        else:
            hot = [
                hot_entry(client_order_id, tracked.values())
                for client_order_id, tracked in self._hot.items()
            ]
            completed = [
                # Untouched since restore, a stored order's record is what encoding it would give.
                tracked.entry()
                if isinstance(tracked, StoredOrder)
                else completed_entry(client_order_id, tracked.values())
                for client_order_id, tracked in self._completed.items()
            ]
        return {
            "version": OMS_SNAPSHOT_VERSION,
            "completed_capacity": self._completed_capacity,
            "latency_window": self._metrics.ack_latencies.maxlen,
            "fill_sequence": self._fill_sequence,
            "hot": hot,
            "schema": copy.deepcopy(SCHEMA),
            "completed": completed,
            "executions": [
                [venue, execution_id, owner]
                for (venue, execution_id), owner in self._executions.items()
            ],
            "open_by_venue": [[venue, count] for venue, count in self._open_by_venue.items()],
            "positions": self._positions.to_plain(),
            "metrics": self._metrics.to_plain(),
            "balance_baselines": [
                [venue, asset, str(quantity)]
                for (venue, asset), quantity in self._balance_baselines.items()
            ],
            "fees_paid": [
                [venue, asset, str(amount)] for (venue, asset), amount in self._fees_paid.items()
            ],
            "venue_cursors": [
                [venue, scope, cursor] for (venue, scope), cursor in self._venue_cursors.items()
            ],
            "acceptance_windows": [
                [venue, str(seconds)] for venue, seconds in self._acceptance_windows.items()
            ],
            "arrivals": self._arrivals.to_plain(),
            "parents": self.parents.to_plain(),
        }

    @classmethod
    def restore(cls, plain: Mapping[str, Any], *, lazy: bool = True) -> OmsState:
        """The state a :meth:`snapshot` (this version or version 1) was taken of, as it was then.

        Completed orders are decoded the first time anything touches them,
        because decoding thousands nobody asks about again was most of a
        restart; ``lazy=False`` decodes them here, for tools that must know
        now that every record reads back. Raises :class:`OmsSnapshotError`
        (a ``ValueError``) for a snapshot of another version or one that is
        malformed (the message says where); a record restored lazily that
        turns out damaged raises it when first touched.
        """
        if not isinstance(plain, Mapping):
            raise OmsSnapshotError(
                f"OmsState.restore: a snapshot is a mapping, not {kind_name(plain)}"
            )
        version = plain.get("version")
        if type(version) is not int or version not in READABLE_SNAPSHOT_VERSIONS:
            raise OmsSnapshotError(
                f"OmsState.restore: unsupported snapshot version {version!r:.60} "
                f"(this code reads versions {', '.join(map(str, READABLE_SNAPSHOT_VERSIONS))})"
            )
        try:
            return cls._restore(plain, version, lazy=lazy)
        except KeyError as exc:
            raise OmsSnapshotError(f"OmsState.restore: snapshot has no {exc}") from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise OmsSnapshotError(f"OmsState.restore: malformed snapshot: {exc}") from exc

    @classmethod
    def _restore(cls, plain: Mapping[str, Any], version: int, *, lazy: bool) -> OmsState:
        latency_window = typed(plain["latency_window"], int, "latency_window")
        state = cls(
            completed_capacity=typed(plain["completed_capacity"], int, "completed_capacity"),
            latency_window=latency_window,
        )
        state._fill_sequence = typed(plain["fill_sequence"], int, "fill_sequence")
        sections = (("hot", state._hot), ("completed", state._completed))
        for section, orders in sections if version == 1 else sections[:1]:
            for index, item in enumerate(typed(plain[section], list, section)):
                tracked = _Order.from_values(order_from_plain(item, f"{section}[{index}]"))
                if state._tracks(tracked.client_order_id):
                    raise ValueError(f"{section}[{index}]: {tracked.client_order_id} appears twice")
                orders[tracked.client_order_id] = tracked
        if version != 1:
            for client_order_id, stored in read_completed(plain, lazy=lazy, known=state._tracks):
                state._completed[client_order_id] = (
                    stored if isinstance(stored, StoredOrder) else _Order.from_values(stored)
                )
        executions = state._executions
        for index, item in enumerate(typed(plain["executions"], list, "executions")):
            venue, execution_id, owner = execution(item, index)
            executions[(venue, execution_id)] = owner
        for index, item in enumerate(typed(plain["open_by_venue"], list, "open_by_venue")):
            where = f"open_by_venue[{index}]"
            pair = typed(item, list, where)
            if len(pair) != 2:
                raise ValueError(f"{where}: expected [venue, count]")
            state._open_by_venue[typed(pair[0], str, where)] = typed(pair[1], int, where)
        state._positions = PositionBook.from_plain(typed(plain["positions"], dict, "positions"))
        state._metrics = _Metrics.from_plain(
            typed(plain["metrics"], dict, "metrics"), latency_window
        )
        # Absent from snapshots taken before baselines were journaled.
        for where, (venue, asset, text) in _rows(plain, "balance_baselines", "asset, quantity"):
            quantity = Decimal(text)
            if not quantity.is_finite():
                raise ValueError(f"{where}: quantity {text!r} is not a finite decimal")
            state._balance_baselines[(venue, asset)] = quantity
        # Absent from snapshots taken before fees were counted per asset.
        for where, (venue, asset, text) in _rows(plain, "fees_paid", "asset, amount"):
            amount = Decimal(text)
            if not amount.is_finite():
                raise ValueError(f"{where}: amount {text!r} is not a finite decimal")
            state._fees_paid[(venue, asset)] = amount
        # Absent from snapshots taken before cursors and windows were journaled.
        for _, (venue, scope, cursor) in _rows(plain, "venue_cursors", "scope, cursor"):
            state._venue_cursors[(venue, scope)] = cursor
        for where, (venue, text) in _rows(plain, "acceptance_windows", "seconds"):
            seconds = Decimal(text)
            if not seconds.is_finite() or seconds < 0:
                raise ValueError(f"{where}: seconds {text!r} is not a finite decimal >= 0")
            state._acceptance_windows[venue] = seconds
        # Absent from snapshots taken before arrival prices were journaled.
        state._arrivals = ArrivalBook.from_plain(plain.get("arrivals", []))
        # Absent from snapshots taken before parent orders existed.
        if "parents" in plain:
            state.parents = ParentBook.from_plain(plain["parents"])
        state._arrivals.mark_parents(record.parent_id for record in state.parents)
        return state

    # Report handlers ----------------------------------------------------------

    def _on_report(
        self, tracked: _Order, report: ExecutionReport, ts_ns: int, effects: _Effects
    ) -> _Verdict | None:
        if isinstance(report, OrderFilled):
            return self._on_fill(tracked, report, ts_ns, effects)
        if isinstance(report, OrderAccepted):
            return self._on_accepted(tracked, report, ts_ns, effects)
        if isinstance(report, OrderRejected):
            return self._on_rejected(tracked, report, effects)
        if isinstance(report, OrderCanceled | OrderExpired):
            target = _S.CANCELED if isinstance(report, OrderCanceled) else _S.EXPIRED
            verdict = self._transition(tracked, target)
            if verdict is None:
                self._record_venue_order_id(tracked, report.venue_order_id, effects)
            return verdict
        if isinstance(report, OrderModified):
            return self._on_modified(tracked, report, effects)
        if isinstance(report, CancelRejected):
            effects.detail = f"{report.code}: {report.reason}"
            if tracked.status is not _S.PENDING_CANCEL:
                return (IgnoreReason.STALE_REPORT, f"no cancel in flight ({tracked.status.value})")
            return self._resume(tracked)
        if isinstance(report, ModifyRejected):
            effects.detail = f"{report.code}: {report.reason}"
            return self._on_modify_rejected(tracked, report, effects)
        return self._on_status_report(tracked, report, effects)

    def _on_fill(
        self, tracked: _Order, fill: OrderFilled, ts_ns: int, effects: _Effects
    ) -> _Verdict | None:
        owner = self._executions.get((fill.venue, fill.execution_id))
        if owner is not None:
            return (
                IgnoreReason.DUPLICATE_EXECUTION,
                f"execution {fill.venue}/{fill.execution_id} already applied to {owner}",
            )
        if fill.symbol != tracked.order.symbol or fill.side is not tracked.order.side:
            return (
                IgnoreReason.MISMATCH,
                f"fill is {fill.side.value} {fill.symbol}, order is "
                f"{tracked.order.side.value} {tracked.order.symbol}",
            )
        self._executions[(fill.venue, fill.execution_id)] = tracked.client_order_id
        if tracked.accepted_ns is None and self._unacknowledged(tracked):
            tracked.accepted_ns = ts_ns
            if tracked.status in PENDING_STATUSES and tracked.resume_status is _S.SUBMITTED:
                tracked.resume_status = _S.ACCEPTED
            effects.inferred_accept = OrderAccepted(
                client_order_id=tracked.client_order_id,
                venue=fill.venue,
                venue_order_id=fill.venue_order_id,
                ts_ns=fill.ts_ns,
            )
        self._fill_sequence += 1
        tracked.fills.append((self._fill_sequence, fill))
        tracked.filled += fill.last_quantity
        notional = fill.notional  # a product: computed once, for the order and the metrics
        commission = fill.commission
        tracked.fill_notional += notional
        tracked.commission += commission
        self._record_venue_order_id(tracked, fill.venue_order_id, effects)
        metrics = self._metrics
        metrics.filled_notional += notional
        metrics.commission += commission
        if commission and fill.commission_asset:
            key = (fill.venue, fill.commission_asset)
            self._fees_paid[key] = self._fees_paid.get(key, _ZERO) + commission
        if tracked.first_fill_ns is None:
            tracked.first_fill_ns = ts_ns
            if tracked.submitted_ns is not None:
                latency = ts_ns - tracked.submitted_ns
                self._metrics.fill_latencies.append(latency)
                self._metrics.fill_latency_total += latency
                self._metrics.fill_latency_count += 1

        complete = tracked.filled >= tracked.order.quantity
        self._arrivals.filled(tracked.client_order_id, ts_ns, complete=complete)
        status = tracked.status
        if status in (_S.SUBMITTED, _S.ACCEPTED, _S.PARTIALLY_FILLED):
            target = _S.FILLED if complete else _S.PARTIALLY_FILLED
            if target is not status:
                self._set_status(tracked, target)
        elif status in PENDING_STATUSES:
            if complete:
                self._set_status(tracked, _S.FILLED)
            else:
                tracked.resume_status = _S.PARTIALLY_FILLED
        elif status in _NEVER_AT_VENUE:
            effects.drift(
                DriftKind.UNEXPECTED_FILL,
                tracked,
                f"fill {fill.execution_id} for a {status.value} order",
                fill.last_quantity,
            )
        # A replacement's excess is the logical order's, and the logical check
        # (which sees the whole chain) reports it once.
        if tracked.filled > tracked.order.quantity and self._predecessor(tracked) is None:
            excess = tracked.filled - tracked.order.quantity
            effects.drift(
                DriftKind.OVERFILL,
                tracked,
                f"filled {tracked.filled} of {tracked.order.quantity}",
                excess,
            )

        successor = self._successor(tracked)
        while successor is not None:
            successor.predecessors_filled += fill.last_quantity
            self._carry_late_fill(successor, fill.last_quantity)
            successor = self._successor(successor)

        self.parents.on_fill(tracked.client_order_id, fill, ts_ns)
        effects.fill = fill
        effects.positions = self._positions.execute(
            venue=fill.venue,
            symbol=fill.symbol,
            strategy_id=tracked.order.strategy_id,
            side=fill.side,
            quantity=fill.last_quantity,
            price=fill.last_price,
            commission=fill.commission,
            commission_asset=fill.commission_asset,
            ts_ns=ts_ns,
        )
        return None

    @staticmethod
    def _carry_late_fill(successor: _Order, quantity: Decimal) -> None:
        """Moves a fill of a replaced order into what its replacement carries.

        The replacement was registered for the logical order's total minus what
        the chain had filled when it was linked; a fill of an earlier member that
        arrives after the link (it was on its way) leaves the replacement that
        much less to do. Venues that place the replacement only once the original
        is gone size it from their own count, so they report it at the smaller
        size: this keeps the member's quantity equal to theirs, while the logical
        order's requested total (quantity plus carried) stays what the strategy
        asked. Never below what the member itself filled, and never to zero (an
        order has a positive quantity): the logical-order check reports what is
        then redundant or overfilled. Deterministic, so a replay does the same.
        """
        order = successor.order
        remaining = max(order.quantity - quantity, successor.filled)
        if remaining <= 0 or remaining >= order.quantity:
            return
        successor.carried_at_link += order.quantity - remaining
        successor.order = replace(order, quantity=remaining)

    def _on_accepted(
        self, tracked: _Order, accepted: OrderAccepted, ts_ns: int, effects: _Effects
    ) -> _Verdict | None:
        if tracked.status in _NEVER_AT_VENUE:
            return (
                IgnoreReason.ILLEGAL_TRANSITION,
                f"{tracked.status.value} -> {_S.ACCEPTED.value}",
            )
        if tracked.accepted_ns is not None:
            return (IgnoreReason.DUPLICATE_REPORT, "already accepted")
        tracked.accepted_ns = ts_ns
        if tracked.submitted_ns is not None:
            self._metrics.ack_latencies.append(ts_ns - tracked.submitted_ns)
        self._record_venue_order_id(tracked, accepted.venue_order_id, effects)
        if tracked.status is _S.SUBMITTED:
            self._set_status(tracked, _S.ACCEPTED)
        elif tracked.status in PENDING and tracked.resume_status is _S.SUBMITTED:
            tracked.resume_status = _S.ACCEPTED
        # Otherwise fills or a cancel overtook the accept: it still tells us
        # the venue's order id and the ack latency, but not a new status.
        return None

    def _on_rejected(
        self, tracked: _Order, rejected: OrderRejected, effects: _Effects
    ) -> _Verdict | None:
        if tracked.status is _S.REJECTED:
            return (IgnoreReason.DUPLICATE_REPORT, "already rejected")
        if not self._unacknowledged(tracked):
            return (
                IgnoreReason.ILLEGAL_TRANSITION,
                f"{tracked.status.value} -> {_S.REJECTED.value}",
            )
        self._set_status(tracked, _S.REJECTED)
        tracked.rejection_code = rejected.code
        tracked.reason = rejected.reason
        self._replacement_failed(tracked, effects)
        return None

    def _on_modified(
        self, tracked: _Order, modified: OrderModified, effects: _Effects
    ) -> _Verdict | None:
        if tracked.status not in _AMENDABLE:
            return (IgnoreReason.ILLEGAL_TRANSITION, f"amend of a {tracked.status.value} order")
        quantity = max(modified.quantity, tracked.filled)
        order = tracked.order
        # A venue may echo a price the order type has no use for; keep the order valid.
        price = order.price if modified.price is None or order.price is None else modified.price
        stop_price = (
            order.stop_price
            if modified.stop_price is None or order.stop_price is None
            else modified.stop_price
        )
        opened = tracked.open_status(quantity)
        pending_cancel_stays = tracked.status is _S.PENDING_CANCEL and opened is not _S.FILLED
        if not (
            pending_cancel_stays
            or opened is tracked.status
            or is_legal_transition(tracked.status, opened)
        ):
            return (IgnoreReason.ILLEGAL_TRANSITION, f"{tracked.status.value} -> {opened.value}")

        if modified.quantity < tracked.filled:
            effects.drift(
                DriftKind.AMEND_BELOW_FILLED,
                tracked,
                f"venue amended to {modified.quantity} with {tracked.filled} filled",
                tracked.filled - modified.quantity,
            )
        if (quantity, price, stop_price) != (order.quantity, order.price, order.stop_price):
            tracked.order = replace(order, quantity=quantity, price=price, stop_price=stop_price)
        self._record_venue_order_id(tracked, modified.venue_order_id, effects)
        if pending_cancel_stays:
            tracked.resume_status = opened
        elif opened is not tracked.status:
            self._set_status(tracked, opened)
        return None

    def _on_modify_rejected(
        self, tracked: _Order, rejected: ModifyRejected, effects: _Effects
    ) -> _Verdict | None:
        # Venues name either side of a refused cancel/replace: the order it
        # was meant to replace, or the replacement that will never exist.
        replacement = self._successor(tracked)
        if replacement is not None and not self._never_reached_venue(replacement):
            replacement = None
        if tracked.status is _S.PENDING_REPLACE:
            verdict = self._resume(tracked)
            if verdict is not None:
                return verdict
        elif replacement is None:
            if self._predecessor(tracked) is not None and self._never_reached_venue(tracked):
                self._fail_replacement(tracked, rejected, effects)
                return None
            return (IgnoreReason.STALE_REPORT, f"no replace in flight ({tracked.status.value})")
        # Also when the original already filled or ended: the replace was
        # refused because of it, and the replacement will never exist.
        if replacement is not None:
            self._fail_replacement(replacement, rejected, effects)
            effects.linked.append(replacement)
        return None

    def _on_status_report(
        self, tracked: _Order, report: OrderStatusReport, effects: _Effects
    ) -> _Verdict | None:
        order = tracked.order
        if report.symbol != order.symbol or report.side is not order.side:
            return (
                IgnoreReason.MISMATCH,
                f"report is {report.side.value} {report.symbol}, order is "
                f"{order.side.value} {order.symbol}",
            )
        ours = tracked.status
        venue_status = report.status
        target: OrderStatus | None = None
        acknowledge = False
        disagreement: str | None = None
        if venue_status in _VENUE_FINAL:
            if venue_status is not ours:
                legal = (
                    self._unacknowledged(tracked)
                    if venue_status is _S.REJECTED
                    else is_legal_transition(ours, venue_status)
                )
                if legal:
                    target = venue_status
                else:
                    disagreement = f"venue says {venue_status.value}, OMS has {ours.value}"
        elif venue_status in _VENUE_LIVE or venue_status is _S.SUBMITTED:
            if ours.is_terminal or ours is _S.INITIALIZED:
                disagreement = f"venue has it {venue_status.value}, OMS has {ours.value}"
            else:
                acknowledge = venue_status is not _S.SUBMITTED
        else:
            disagreement = f"venue reported {venue_status.value}, a status only the OMS assigns"

        self._record_venue_order_id(tracked, report.venue_order_id, effects)
        if report.quantity != order.quantity:
            adopted = max(report.quantity, tracked.filled)
            effects.drift(
                DriftKind.QUANTITY_MISMATCH,
                tracked,
                f"venue has quantity {report.quantity}, OMS had {order.quantity}",
                report.quantity - order.quantity,
            )
            if adopted != order.quantity:
                if adopted < order.quantity and self._predecessor(tracked) is not None:
                    # A replacement the venue sized from its own count (its
                    # original's last fills were still on their way here): the
                    # logical order still asks what the strategy asked.
                    tracked.carried_at_link += order.quantity - adopted
                tracked.order = replace(order, quantity=adopted)
        if report.filled_quantity > tracked.filled:
            effects.drift(
                DriftKind.MISSING_FILLS,
                tracked,
                f"venue has {report.filled_quantity} filled, our fills add up to {tracked.filled}",
                report.filled_quantity - tracked.filled,
            )
        elif report.filled_quantity < tracked.filled:
            effects.drift(
                DriftKind.UNCONFIRMED_FILLS,
                tracked,
                f"venue has {report.filled_quantity} filled, our fills add up to {tracked.filled}",
                tracked.filled - report.filled_quantity,
            )
        if disagreement is not None:
            effects.drift(DriftKind.STATUS_MISMATCH, tracked, disagreement)
        if target is not None:
            self._set_status(tracked, target)
            if target is _S.REJECTED:
                tracked.reason = "rejected, per the venue's status report"
                self._replacement_failed(tracked, effects)
        elif acknowledge:
            if ours is _S.SUBMITTED:
                self._set_status(tracked, _S.ACCEPTED)
            elif ours in PENDING and tracked.resume_status is _S.SUBMITTED:
                tracked.resume_status = _S.ACCEPTED
        return None

    # Lifecycle ----------------------------------------------------------------

    def _transition(self, tracked: _Order, target: OrderStatus) -> _Verdict | None:
        if tracked.status is target:
            return (IgnoreReason.DUPLICATE_REPORT, f"already {target.value}")
        if not is_legal_transition(tracked.status, target):
            return (IgnoreReason.ILLEGAL_TRANSITION, f"{tracked.status.value} -> {target.value}")
        self._set_status(tracked, target)
        return None

    def _resume(self, tracked: _Order) -> _Verdict | None:
        if tracked.resume_status is None:
            return (
                IgnoreReason.ILLEGAL_TRANSITION,
                f"{tracked.status.value} has nothing to resume",
            )
        return self._transition(tracked, tracked.resume_status)

    def _set_status(self, tracked: _Order, target: OrderStatus) -> None:
        if target in PENDING_STATUSES:
            if tracked.status not in PENDING_STATUSES:
                tracked.resume_status = tracked.status
        else:
            tracked.resume_status = None
        was_open = tracked.status in OPEN
        tracked.status = target
        now_open = target in OPEN
        if was_open != now_open:
            self._open_by_venue[tracked.order.venue] += 1 if now_open else -1
        if target is _S.FILLED:
            self._metrics.filled_orders += 1

    def _unacknowledged(self, tracked: _Order) -> bool:
        return tracked.status is _S.SUBMITTED or (
            tracked.status in PENDING_STATUSES and tracked.resume_status is _S.SUBMITTED
        )

    @staticmethod
    def _never_reached_venue(tracked: _Order) -> bool:
        return tracked.status in _UNACKNOWLEDGED and not tracked.fills

    def _fail_replacement(
        self, replacement: _Order, rejected: ModifyRejected, effects: _Effects
    ) -> None:
        if replacement.status is _S.SUBMITTED:
            self._set_status(replacement, _S.REJECTED)
            replacement.rejection_code = rejected.code
        else:
            self._set_status(replacement, _S.DENIED)
            replacement.denial_code = DenialCode.VENUE_REJECTED
        replacement.reason = rejected.reason
        self._replacement_failed(replacement, effects)

    def _replacement_failed(self, replacement: _Order, effects: _Effects) -> None:
        """A replacement that never came to be leaves the order it replaces in force."""
        original = self._predecessor(replacement)
        if original is not None and original.status is _S.PENDING_REPLACE:
            self._resume(original)
            effects.linked.append(original)

    def _record_venue_order_id(
        self, tracked: _Order, venue_order_id: str | None, effects: _Effects
    ) -> None:
        if venue_order_id is None or venue_order_id == tracked.venue_order_id:
            return
        if tracked.venue_order_id is None:
            tracked.venue_order_id = venue_order_id
            return
        effects.drift(
            DriftKind.VENUE_ORDER_ID_CHANGED,
            tracked,
            f"venue order id {venue_order_id}, first seen as {tracked.venue_order_id}",
        )

    # Bookkeeping --------------------------------------------------------------

    def _register(
        self,
        order: SubmitOrder,
        ts_ns: int,
        *,
        replacement_of: str | None,
        carried_at_link: Decimal,
    ) -> _Order:
        if self._tracks(order.client_order_id):
            raise DuplicateOrderError(f"client order id {order.client_order_id} is already tracked")
        tracked = _Order(
            order, ts_ns, replacement_of=replacement_of, carried_at_link=carried_at_link
        )
        self._hot[order.client_order_id] = tracked
        self._metrics.total_orders += 1
        return tracked

    def _run(
        self,
        client_order_id: str,
        ts_ns: int,
        action: str,
        handler: _Handler,
        *,
        venue: str | None = None,
    ) -> ApplyResult:
        """The one path every command and report takes (:meth:`_step`), as a result."""
        _, tracked, previous_status, verdict, effects = self._step(
            client_order_id, ts_ns, action, handler, venue=venue
        )
        if tracked is None:
            return ApplyResult(
                client_order_id=client_order_id,
                applied=False,
                status=None,
                previous_status=None,
                reason=IgnoreReason.UNKNOWN_ORDER,
                detail="not tracked, or completed long enough ago to be forgotten",
            )
        if verdict is not None:
            reason, detail = verdict
            return ApplyResult(
                client_order_id=client_order_id,
                applied=False,
                status=tracked.status,
                previous_status=previous_status,
                reason=reason,
                detail=detail,
                order=tracked.view(),
            )
        return ApplyResult(
            client_order_id=client_order_id,
            applied=True,
            status=tracked.status,
            previous_status=previous_status,
            detail=effects.detail,
            drifts=tuple(effects.drifts),
            order=tracked.view(),
            fill=effects.fill,
            position_updates=effects.positions,
            linked_orders=tuple([linked.view() for linked in effects.linked])
            if effects.linked
            else (),
            inferred_accept=effects.inferred_accept,
        )

    def _step(
        self,
        client_order_id: str,
        ts_ns: int,
        action: str,
        handler: _Handler,
        *,
        venue: str | None = None,
    ) -> tuple[bool, _Order | None, OrderStatus | None, _Verdict | None, _Effects]:
        """Find, handle, check links, retire; log what was ignored. Returns whether
        it applied, the order (None when unknown), its status before, the verdict
        that ignored it (None when applied) and what the handler did besides."""
        effects = _Effects()
        tracked = self._find(client_order_id)
        if tracked is None:
            _LOGGER.info(
                "%s %s ignored: %s", action, client_order_id, IgnoreReason.UNKNOWN_ORDER.value
            )
            return False, None, None, None, effects
        if client_order_id in self._completed:
            self._completed.move_to_end(client_order_id)
        previous_status = tracked.status
        if venue is not None and venue != tracked.order.venue:
            verdict: _Verdict | None = (
                IgnoreReason.MISMATCH,
                f"report from {venue}, order is at {tracked.order.venue}",
            )
        else:
            verdict = handler(tracked, effects)
        if verdict is not None:
            reason, detail = verdict
            _LOGGER.log(
                _IGNORE_LOG_LEVELS[reason],
                "%s %s ignored: %s (%s)",
                action,
                client_order_id,
                reason.value,
                detail,
            )
            return False, tracked, previous_status, verdict, effects

        tracked.last_update_ns = ts_ns
        for linked in effects.linked:
            linked.last_update_ns = ts_ns
        # Drifts are not logged here: replaying a journal makes these calls
        # again, and a drift the last run already reported is not news.
        self._check_logical_order(tracked, effects)
        for member in (tracked, *effects.linked):
            self._retire_if_done(member)
        return True, tracked, previous_status, None, effects

    def _check_logical_order(self, tracked: _Order, effects: _Effects) -> None:
        if tracked.replacement_of is None and tracked.replaced_by is None:
            return
        chain = self._chain(tracked)
        live = [member.client_order_id for member in chain if member.status in LIVE_AT_VENUE]
        if len(live) > 1:
            effects.drift(
                DriftKind.DUPLICATE_LIVE_ORDERS,
                tracked,
                f"live at the venue together: {', '.join(live)}",
            )
        if effects.fill is not None and len(chain) > 1:
            current = chain[-1]
            requested = current.order.quantity + current.carried_at_link
            filled = current.filled + current.predecessors_filled
            if filled > requested:
                effects.drift(
                    DriftKind.LOGICAL_OVERFILL,
                    tracked,
                    f"logical order filled {filled} of {requested}",
                    filled - requested,
                )
            if filled >= requested and not current.status.is_terminal:
                effects.drift(
                    DriftKind.REDUNDANT_REPLACEMENT,
                    tracked,
                    f"logical order filled {filled} of {requested}, "
                    f"{current.client_order_id} is still {current.status.value}",
                )

    def _tracks(self, client_order_id: str) -> bool:
        return client_order_id in self._hot or client_order_id in self._completed

    def _find(self, client_order_id: str) -> _Order | None:
        """The order ``client_order_id`` names (hot, or completed: decoded if stored).

        Marks the id for the next incremental snapshot (``_looked_up``), which
        compares only the values of orders marked since the last one: every
        change to an order is made to an object this returned (directly, or
        through ``_predecessor``/``_successor``/``_chain``), or to a new one
        (``_register``). Code that changes an ``_Order`` reached any other way
        must add its id to ``_looked_up`` too (when not None), or a snapshot
        keeps its old values: ``tests/test_oms_snapshot_fast_marks.py``.
        """
        looked_up = self._looked_up
        if looked_up is not None:
            looked_up.add(client_order_id)
        tracked = self._hot.get(client_order_id)
        if tracked is not None:
            return tracked
        completed = self._completed.get(client_order_id)
        if isinstance(completed, StoredOrder):
            return self._decode(client_order_id, completed)
        return completed

    def _decode(self, client_order_id: str, stored: StoredOrder) -> _Order:
        """The order ``stored`` holds, put in its place in the LRU (which it keeps).

        Another thread may read the state (a status view) while the OMS
        actor touches the same order, so both get the same order object, and
        an order forgotten meanwhile is not put back.
        """
        with _DECODING:
            current = self._completed.get(client_order_id)
            if isinstance(current, _Order):
                return current
            tracked = _Order.from_values(stored.values())
            if current is stored:
                self._completed[client_order_id] = tracked
            return tracked

    def _predecessor(self, tracked: _Order) -> _Order | None:
        if tracked.replacement_of is None:
            return None
        original = self._find(tracked.replacement_of)
        # A replacement that failed and was superseded no longer belongs to the chain.
        if original is None or original.replaced_by != tracked.client_order_id:
            return None
        return original

    def _successor(self, tracked: _Order) -> _Order | None:
        return None if tracked.replaced_by is None else self._find(tracked.replaced_by)

    def _chain(self, tracked: _Order) -> list[_Order]:
        """The retained members of ``tracked``'s logical order, oldest first."""
        earlier: list[_Order] = []
        cursor = self._predecessor(tracked)
        while cursor is not None:
            earlier.append(cursor)
            cursor = self._predecessor(cursor)
        chain = [*reversed(earlier), tracked]
        cursor = self._successor(tracked)
        while cursor is not None:
            chain.append(cursor)
            cursor = self._successor(cursor)
        return chain

    def _retire_if_done(self, tracked: _Order) -> None:
        """Moves a finished logical order, all members at once, to the completed LRU."""
        client_order_id = tracked.client_order_id
        if tracked.status not in TERMINAL or client_order_id not in self._hot:
            return
        if tracked.replacement_of is None and tracked.replaced_by is None:
            # An order never replaced is its whole logical order (``_chain`` would
            # return it alone), and it is terminal: retire it without walking a chain.
            self._completed[client_order_id] = self._hot.pop(client_order_id)
        else:
            chain = self._chain(tracked)
            if not all(member.status in TERMINAL for member in chain):
                return
            for member in chain:
                retired = self._hot.pop(member.client_order_id, None)
                if retired is not None:
                    self._completed[member.client_order_id] = retired
        while len(self._completed) > self._completed_capacity:
            with _DECODING:
                _, forgotten = self._completed.popitem(last=False)
            # A stored order decodes only its fills, to drop their executions.
            for _, fill in forgotten.fills:
                self._executions.pop((fill.venue, fill.execution_id), None)
            self._arrivals.forget(forgotten.client_order_id)


def _rows(plain: Mapping[str, Any], name: str, fields: str) -> Iterator[tuple[str, list[str]]]:
    """The rows of strings ``[venue, <fields>]`` of a section older snapshots lack."""
    count = fields.count(",") + 2
    for index, item in enumerate(typed(plain.get(name, []), list, name)):
        where = f"{name}[{index}]"
        row = typed(item, list, where)
        if len(row) != count:
            raise ValueError(f"{where}: expected [venue, {fields}]")
        yield where, [typed(value, str, where) for value in row]


def _percentile(ordered: list[int], percent: int) -> int | None:
    """Nearest-rank percentile: always a latency that was actually observed."""
    if not ordered:
        return None
    rank = math.ceil(percent * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]
