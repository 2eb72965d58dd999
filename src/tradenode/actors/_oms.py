"""The OMS actor: every order from intent to a terminal state, and the positions fills make.

The bookkeeping is the pure ``OmsState``; this actor routes. It registers
approved orders, hands them to their venue's breaker (or refuses them at
once when that venue is absent), applies every report a broker sends,
publishes what changed to subscribers (strategies, the risk guard), queries
venues when an acknowledgement is late, and runs the kill switch.

Its ``OmsStore`` belongs to the node, so an OMS restart loses no order;
making it durable across process restarts is the journal's job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, get_args

from .._crashpoints import crash_point
from ..messages._algos import ParentProfile
from ..messages._enums import DenialCode, OrderStatus, OrderType, Side, TradingState
from ..messages._execution import CancelParentOrder, ParentDenied, SubmitParentOrder
from ..messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    Message,
    ModifyOrder,
    ModifyRejected,
    OrderAccepted,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    OrderSubmitted,
    PositionSnapshot,
    QueryOrder,
    Quote,
    SubmitOrder,
    TradingStateChanged,
)
from ..supervision import Actor, Address, Cancellable
from ._capabilities import CancelAllScope
from ._client_ids import ClientOrderIdFamily
from ._control import (
    AcceptBalanceBaseline,
    EngageKillSwitch,
    GetFills,
    GetMetrics,
    GetOpenOrders,
    GetOrder,
    GetOrders,
    GetPositions,
    PositionDrift,
    RecordAcceptanceWindow,
    RecordAudit,
    Routed,
    SetTradingState,
    Subscribe,
    TakeSnapshot,
    Unsubscribe,
    VenueBalances,
    VenueCursor,
)
from ._directory import Directory
from ._execution_quality import (
    GetExecutionQuality,
    QualityTracker,
    arrival_price,
    order_quality,
    quality_report,
)
from ._exposure import Exposure, GetExposure, Listings, quote_mark
from ._oms_entries import EntryKind
from ._oms_journal import OmsJournal
from ._oms_parents import GetParent, GetParents, ParentDesk, child_denial
from ._oms_state import (
    ApplyResult,
    DuplicateOrderError,
    ExecutionReport,
    IgnoreReason,
    OmsState,
    ReplaceRefusedError,
    TrackedOrderView,
)
from ._order_lifecycle import LIVE_AT_VENUE, PENDING
from ._positions import FillAndPosition

__all__ = ["KillSwitchReport", "OmsActor", "OmsStore", "RiskDenied", "RiskRefusedModify"]

logger = logging.getLogger("tradenode.oms")

KILL_SWITCH_STRATEGY = "killswitch"
EXTERNAL_STRATEGY = "external"
"""The strategy id of orders found at a venue that this node did not place."""

#: Every venue report the OMS applies: the members of ``ExecutionReport``.
_REPORTS: tuple[type[Message], ...] = get_args(ExecutionReport)
_REPORT_TYPES: frozenset[type] = frozenset(_REPORTS)


@dataclass(frozen=True, slots=True)
class RiskDenied:
    """Risk guard to OMS: this order was refused; record it and tell its strategy."""

    order: SubmitOrder
    denial: OrderDenied


@dataclass(frozen=True, slots=True)
class RiskRefusedModify:
    """Risk guard to OMS: this modification was refused; tell the order's strategy."""

    modify: ModifyOrder
    code: DenialCode
    reason: str


@dataclass(frozen=True, slots=True)
class KillSwitchReport:
    """What the kill switch did and how long each part took."""

    open_orders_found: int
    cancels_confirmed: int
    cancels_failed: tuple[str, ...]
    flatten_orders: tuple[str, ...]
    positions_after: tuple[PositionSnapshot, ...]
    cancel_seconds: float
    total_seconds: float
    complete: bool
    """True only when the venues confirmed every order closed and, with flatten,
    every flatten order filled and no position is left."""
    problems: tuple[str, ...] = ()
    """What remains and why, one line each (an order not confirmed closed, a
    flatten order the venue refused with its reason, a residual position)."""


@dataclass
class OmsStore:
    state: OmsState
    subscribers: list[Subscribe] = field(default_factory=list)
    ids: ClientOrderIdFamily = field(default_factory=lambda: ClientOrderIdFamily("ks"))
    journal: OmsJournal | None = None
    """The write-ahead log; None runs without one (state lives until the process ends)."""
    drift_events: int = 0
    position_drifts: int = 0
    drift_alerts: int = 0
    """Position drifts reported, one per check that still sees one."""
    adopted: int = 0
    adoptions: dict[str, OrderStatusReport] = field(default_factory=dict)
    """Adopted orders whose venue report waits for their fills (see ``_adopt``)."""
    drift_suspects: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    base_assets: dict[tuple[str, str], str] = field(default_factory=dict)
    """(venue, symbol) -> base asset, from the venues' balance reports."""
    drifting: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """Confirmed position drifts still unexplained: (venue, asset) -> gap."""
    last_balances: dict[tuple[str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)
    """(venue, asset) -> (the venue's total, our position) at the last check."""
    denials: int = 0
    rejections: int = 0
    parents: ParentDesk = field(default_factory=ParentDesk)
    """Parent orders' handling (``_oms_parents``); their state is ``state.parents``."""
    quotes: dict[tuple[str, str], Quote] = field(default_factory=dict)
    """The last quote per (venue, symbol): an order's arrival price is its mid."""
    listings: Listings | None = None
    """Which (venue, symbol) are one instrument (the config's ``instruments:``)."""
    quality: QualityTracker = field(default_factory=QualityTracker)
    """Execution-quality totals, recomputed for the orders that changed only."""

    def exposure(self) -> Exposure:
        """Positions per instrument across venues, each venue at its last quote's mark."""
        quotes = dict(self.quotes)
        marks = {key: quote_mark(quote) for key, quote in quotes.items()}
        return Exposure.build(self.state.positions(), listings=self.listings, marks=marks)


class _AckSweep:
    """The acknowledgement sweep's timer: look at every order whose ack is due."""

    __slots__ = ()


_ACK_SLACK = 1e-6
"""Seconds of float rounding a timer's deadline may fall short of the order's by."""


@dataclass
class _KillRun:
    command: EngageKillSwitch
    started: float
    waiting: set[str]
    found: int
    confirmed: int = 0
    failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    flatten: list[str] = field(default_factory=list)
    flattening: bool = False
    flattened_venues: set[str] = field(default_factory=set)
    cancel_seconds: float = 0.0
    phase: int = 0
    timers: list[Cancellable] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _KillSweep:
    phase: int


@dataclass(frozen=True, slots=True)
class _KillDeadline:
    phase: int


class OmsActor(Actor):
    lends_turn = True
    """It never waits for another actor. With a journal, a lent OMS that finds the
    thread idle commits the order's records itself (``OmsJournal.idle``), the
    fsync the order waits for anyway (``Actor.lends_turn``)."""

    def __init__(
        self,
        directory: Directory,
        store: OmsStore,
        *,
        ack_timeout: float,
        on_drift: TradingState | None = TradingState.REDUCING,
    ) -> None:
        self.directory = directory
        self.store = store
        self.state = store.state
        self.ack_timeout = ack_timeout
        self.on_drift = on_drift
        self._kill: _KillRun | None = None
        self._awaiting_ack: dict[str, float] = {}
        """Client order id -> when (node clock) its acknowledgement is due. One timeout
        and a monotonic clock keep insertion order = deadline order, so the sweep
        looks only at the head; an acknowledged order leaves at once."""
        self._ack_timer: Cancellable | None = None
        self._risk_address: Address | None = None

    def receive(self, message: Any) -> Any:
        journal = self.store.journal
        try:
            answer = self._receive(message)
        finally:
            if journal is not None:
                journal.flush()  # what ``record_*with_next`` deferred, even if the handler raised
        if self.state.parents and isinstance(message, Message | RiskDenied):
            self.store.parents.touched(self, message)
        if journal is not None and self._kill is None:
            # Not while the kill switch runs: a snapshot (the whole state,
            # written and fsynced) would stall the cancels and confirmations
            # of the one moment that cannot wait; it is taken after the run.
            journal.snapshot_if_due(self.state.snapshot)
        return answer

    def _receive(self, message: Any) -> Any:
        # The messages of every order first, by their exact type (a set lookup):
        # the isinstance chain below would test a SubmitOrder against a dozen types.
        kind = type(message)
        if kind in _REPORT_TYPES:
            self._on_report(message)
        elif kind is SubmitOrder:
            self._submit(message)
        elif isinstance(message, _REPORTS):
            self._on_report(message)
        elif isinstance(message, SubmitOrder):
            self._submit(message)
        elif isinstance(message, SubmitParentOrder):
            self.store.parents.submit(self, message)
        elif isinstance(message, CancelParentOrder):
            self.store.parents.cancel(self, message)
        elif isinstance(message, ParentProfile):
            self.store.parents.learned(self, message)
        elif isinstance(message, ParentDenied):
            self._publish(message, message.strategy_id)
        elif isinstance(message, RiskDenied):
            self._denied(message)
        elif isinstance(message, RiskRefusedModify):
            modify = message.modify
            self._publish_report(
                ModifyRejected(
                    client_order_id=modify.client_order_id,
                    venue=modify.venue,
                    code=message.code.value,
                    reason=message.reason,
                    ts_ns=self.context.now_ns(),
                ),
                self.state.get(modify.client_order_id),
            )
        elif isinstance(message, OrderDenied):
            self._publish(message, message.strategy_id)
        elif isinstance(message, TradingStateChanged):
            self._publish(message, None)
        elif isinstance(message, CancelOrder):
            self._cancel(message)
        elif isinstance(message, ModifyOrder):
            self._modify(message)
        elif isinstance(message, Quote):
            self._mark(message)
        elif isinstance(message, VenueBalances):
            self._check_positions(message)
        elif isinstance(message, VenueCursor):
            self._on_cursor(message)
        elif isinstance(message, RecordAcceptanceWindow):
            self._on_acceptance_window(message)
        elif isinstance(message, AcceptBalanceBaseline):
            return self._accept_baseline(message)
        elif isinstance(message, _AckSweep):
            self._ack_sweep()
        elif isinstance(message, Subscribe):
            self.store.subscribers = [
                s for s in self.store.subscribers if s.subscriber is not message.subscriber
            ]
            self.store.subscribers.append(message)
        elif isinstance(message, Unsubscribe):
            self.store.subscribers = [
                s for s in self.store.subscribers if s.subscriber is not message.subscriber
            ]
        elif isinstance(message, EngageKillSwitch):
            self._engage_kill_switch(message)
        elif isinstance(message, _KillSweep):
            self._kill_sweep(message.phase)
        elif isinstance(message, _KillDeadline):
            self._kill_deadline(message.phase)
        elif isinstance(message, RecordAudit):
            if self.store.journal is None:
                return None
            return self._record(
                EntryKind.AUDIT,
                self.context.now_ns(),
                who=message.who,
                action=message.action,
                detail=message.detail,
                result=message.result,
            )
        elif isinstance(message, TakeSnapshot):
            if self.store.journal is None:
                return None
            return self.store.journal.snapshot_now(self.state.snapshot)
        else:
            return self._query(message)
        return None

    # -- queries ----------------------------------------------------------------

    def _query(self, message: Any) -> Any:
        if isinstance(message, GetPositions):
            snapshots = self.state.positions(by_strategy=message.strategy_id is not None)
            return tuple(
                s
                for s in snapshots
                if (message.venue is None or s.venue == message.venue)
                and (message.strategy_id is None or s.strategy_id == message.strategy_id)
            )
        if isinstance(message, GetOpenOrders):
            return tuple(
                view.order
                for view in self.state.open_orders(venue=message.venue)
                if message.strategy_id is None or view.strategy_id == message.strategy_id
            )
        if isinstance(message, GetFills):
            fills = self.state.fills(message.client_order_id)
            if message.strategy_id is None:
                return fills
            return tuple(
                f for f in fills if self._strategy_of(f.client_order_id) == message.strategy_id
            )
        if isinstance(message, GetOrder):
            return self.state.get(message.client_order_id)
        if isinstance(message, GetOrders):
            return self.state.recent_orders(
                limit=message.limit,
                venue=message.venue,
                strategy_id=message.strategy_id,
                status=message.status,
            )
        if isinstance(message, GetParent | GetParents):
            return self.store.parents.query(self, message)
        if isinstance(message, GetExposure):
            return self.store.exposure()
        if isinstance(message, GetExecutionQuality):
            if message.client_order_id is not None:
                return order_quality(self.state, message.client_order_id)
            return quality_report(self.state, tracker=self.store.quality)
        if isinstance(message, GetMetrics):
            metrics = dict(self.state.metrics())
            metrics.update(self.store.quality.refresh(self.state).metrics())
            metrics["drift_events"] = self.store.drift_events
            metrics["adopted_orders"] = self.store.adopted
            metrics["position_drifts"] = self.store.position_drifts
            metrics["drift_alerts"] = self.store.drift_alerts
            metrics["denied_orders"] = self.store.denials
            metrics["rejected_orders"] = self.store.rejections
            return metrics
        logger.warning("OMS: ignoring unexpected %s", type(message).__name__)
        return None

    def _strategy_of(self, client_order_id: str) -> str | None:
        view = self.state.get(client_order_id)
        return None if view is None else view.strategy_id

    # -- the journal ----------------------------------------------------------------

    def _record(self, kind: EntryKind, ts_ns: int, **fields: Any) -> int:
        journal = self.store.journal
        return 0 if journal is None else journal.record(kind, ts_ns, **fields)

    def _send(self, seq: int, address: Address, message: Any) -> None:
        """Tell ``address`` once record ``seq`` is durable (at once without a journal)."""
        journal = self.store.journal
        if journal is None:
            address.tell(message)
        else:
            journal.send_when_durable(seq, address, message)

    # -- commands -----------------------------------------------------------------

    def _submit(self, order: SubmitOrder) -> None:
        if order.parent_id is not None:
            why = child_denial(self.state, order)
            if why is not None:
                self.store.parents.deny_child(self, order, why)
                return
        now = self.context.now_ns()
        try:
            self.state.track(order, now)
        except DuplicateOrderError as exc:
            self._publish(
                OrderDenied(
                    client_order_id=order.client_order_id,
                    strategy_id=order.strategy_id,
                    code=DenialCode.DUPLICATE_ORDER,
                    reason=str(exc),
                    ts_ns=now,
                ),
                order.strategy_id,
            )
            return
        # Appended with the SUBMITTED (or DENIED) that ``_route`` records next
        # (``record_with_next``; without a journal there is nothing to record).
        journal = self.store.journal
        if journal is not None:
            journal.record_message_with_next(EntryKind.REGISTER, now, order)
        if self.store.quotes:  # without any quote there is no arrival price to note
            self._note_arrival(order.client_order_id, order.venue, order.symbol, now)
        self._route(order, now)

    def _route(self, order: SubmitOrder, now: int) -> None:
        entry = self.directory.venue(order.venue)
        if entry is None:
            reason = f"venue {order.venue!r} is not connected to this node"
            self.state.mark_denied(order.client_order_id, DenialCode.VENUE_UNAVAILABLE, reason, now)
            self._record(
                EntryKind.DENIED,
                now,
                client_order_id=order.client_order_id,
                code=DenialCode.VENUE_UNAVAILABLE,
                reason=reason,
            )
            self._publish(
                OrderDenied(
                    client_order_id=order.client_order_id,
                    strategy_id=order.strategy_id,
                    code=DenialCode.VENUE_UNAVAILABLE,
                    reason=reason,
                    ts_ns=now,
                ),
                order.strategy_id,
            )
            return
        self.state.submitted(order.client_order_id, now)
        journal = self.store.journal
        if journal is None:
            crash_point("after_intent")
            # The breaker first: it is the order's way out; subscribers hear one
            # event (the strategy's OrderSubmitted rides on it).
            entry.breaker.tell(order)
            self._tell_routed(order, now)
            return
        # With a journal the order waits for its records' fsync, which an idle OMS
        # does itself (``OmsJournal.record_to_send``): the subscribers hear of it
        # first, so that the strategy handles its event while the disk works, rather
        # than holding the GIL when the order could leave. But not when the OMS is
        # idle and commits the records itself: then it runs on the thread that
        # would handle that event (the strategy's, a lent OMS, ``Actor.lends_turn``),
        # which cannot handle it meanwhile, and which would lend the breaker its
        # turn only with nothing of its own queued; they hear once it has gone.
        lead = journal.idle_now()
        if not lead:
            self._tell_routed(order, now)
        seq = journal.record_to_send(
            EntryKind.SUBMITTED, now, lead=lead, client_order_id=order.client_order_id
        )
        crash_point("after_intent")
        journal.send_when_durable(seq, entry.breaker, order)
        if lead:
            self._tell_routed(order, now)

    def _tell_routed(self, order: SubmitOrder, now: int) -> None:
        """Tell the order's subscribers it went to its venue (``Routed``, which carries
        the strategy's ``OrderSubmitted``) and start waiting for the venue's answer."""
        submitted = OrderSubmitted(
            client_order_id=order.client_order_id, venue=order.venue, ts_ns=now
        )
        # Not to the risk guard: it added this very order to its book when it
        # approved it (``_risk.py``, ``RiskGuard._on_order``: ``book.approved.add``,
        # which ignores an id it has), so the event would only wake it. The
        # Routed of a replacement (``_modify``) and of a flatten order
        # (``_flatten``), orders the guard never approved, still reach it.
        risk = self._risk_address or self._risk_guard()
        self._publish(Routed(order, submitted), order.strategy_id, skip=risk)
        self._await_ack(order.client_order_id)

    def _denied(self, denied: RiskDenied) -> None:
        now = self.context.now_ns()
        try:
            self.state.register(denied.order, now)
            self.state.mark_denied(
                denied.order.client_order_id, denied.denial.code, denied.denial.reason, now
            )
            self._record(EntryKind.REGISTER, now, message=denied.order)
            self._record(
                EntryKind.DENIED,
                now,
                client_order_id=denied.order.client_order_id,
                code=denied.denial.code,
                reason=denied.denial.reason,
            )
        except DuplicateOrderError:
            logger.warning(
                "OMS: denial for an id already in use: %s",
                denied.order.client_order_id,
                extra={
                    "venue": denied.order.venue,
                    "strategy": denied.order.strategy_id,
                    "client_order_id": denied.order.client_order_id,
                },
            )
        self._publish(denied.denial, denied.order.strategy_id)

    def _cancel(self, cancel: CancelOrder) -> None:
        view = self.state.get(cancel.client_order_id)
        entry = self.directory.venue(cancel.venue)
        if view is None or not view.is_open or entry is None:
            why = "venue not connected" if entry is None else "order is not open"
            self._publish_report(
                CancelRejected(
                    client_order_id=cancel.client_order_id,
                    venue=cancel.venue,
                    code="NOT_OPEN" if entry is not None else "VENUE_UNAVAILABLE",
                    reason=why,
                    ts_ns=self.context.now_ns(),
                ),
                view,
            )
            return
        now = self.context.now_ns()
        self.state.mark_pending_cancel(cancel.client_order_id, now)
        seq = self._record(EntryKind.PENDING_CANCEL, now, client_order_id=cancel.client_order_id)
        self._send(seq, entry.breaker, cancel)

    def _modify(self, modify: ModifyOrder) -> None:
        now = self.context.now_ns()
        view = self.state.get(modify.client_order_id)
        entry = self.directory.venue(modify.venue)
        if view is None or not view.is_open or entry is None:
            self._publish_report(
                ModifyRejected(
                    client_order_id=modify.client_order_id,
                    venue=modify.venue,
                    code="NOT_OPEN" if entry is not None else "VENUE_UNAVAILABLE",
                    reason="order is not open" if entry is not None else "venue not connected",
                    ts_ns=now,
                ),
                view,
            )
            return
        if not _acknowledged(view):
            # A modify racing the order's own submit either reaches the venue
            # first (an amend or cancel/replace of an order that does not yet
            # exist, refused) or leaves the replacement's fate tied to a submit
            # whose outcome is unknown; after a crash neither can be told
            # apart. Venues' own rule is the same: amend what they accepted.
            self._publish_report(
                ModifyRejected(
                    client_order_id=modify.client_order_id,
                    venue=modify.venue,
                    code="NOT_ACKNOWLEDGED",
                    reason="the venue has not acknowledged the order yet",
                    ts_ns=now,
                ),
                view,
            )
            return
        native = entry.amends_natively(view.order)
        if native or modify.new_client_order_id is None:
            self.state.mark_pending_replace(modify.client_order_id, now)
            seq = self._record(
                EntryKind.PENDING_REPLACE, now, client_order_id=modify.client_order_id
            )
            self._send(
                seq,
                entry.breaker,
                ModifyOrder(
                    client_order_id=modify.client_order_id,
                    venue=modify.venue,
                    symbol=modify.symbol,
                    quantity=modify.quantity,
                    price=modify.price,
                    stop_price=modify.stop_price,
                    ts_ns=now,
                ),
            )
            return
        old = view.order
        replacement = SubmitOrder(
            client_order_id=modify.new_client_order_id,
            strategy_id=old.strategy_id,
            venue=old.venue,
            symbol=old.symbol,
            side=old.side,
            order_type=old.order_type,
            quantity=modify.quantity if modify.quantity is not None else old.quantity,
            price=modify.price if modify.price is not None else old.price,
            stop_price=modify.stop_price if modify.stop_price is not None else old.stop_price,
            trailing_offset=old.trailing_offset,
            time_in_force=old.time_in_force,
            expire_time_ns=old.expire_time_ns,
            post_only=old.post_only,
            reduce_only=old.reduce_only,
            ts_ns=now,
        )
        try:
            registered = self.state.link_replacement(modify.client_order_id, replacement, now)
        except (ReplaceRefusedError, DuplicateOrderError) as exc:
            self._publish_report(
                ModifyRejected(
                    client_order_id=modify.client_order_id,
                    venue=modify.venue,
                    code="REPLACE_REFUSED",
                    reason=str(exc),
                    ts_ns=now,
                ),
                view,
            )
            return
        self.state.mark_pending_replace(modify.client_order_id, now)
        self.state.mark_submitted(replacement.client_order_id, now)
        self._record(
            EntryKind.LINK_REPLACEMENT,
            now,
            client_order_id=modify.client_order_id,
            message=replacement,
        )
        self._record(EntryKind.PENDING_REPLACE, now, client_order_id=modify.client_order_id)
        seq = self._record(EntryKind.SUBMITTED, now, client_order_id=replacement.client_order_id)
        self._publish(Routed(registered.order), old.strategy_id)
        # ModifyOrder.quantity stays the logical total: a cancel/replace broker
        # sends the total minus what the venue had filled at cancel time, the
        # same rule OmsState applied to ``registered``.
        self._send(seq, entry.breaker, modify)

    def _ack_timeout(self, client_order_id: str) -> None:
        view = self.state.get(client_order_id)
        if view is None or view.status is not OrderStatus.SUBMITTED:
            return
        entry = self.directory.venue(view.venue)
        if entry is None:
            return
        logger.warning(
            "OMS: no acknowledgement for %s within %ss; querying",
            client_order_id,
            self.ack_timeout,
            extra={
                "venue": view.venue,
                "strategy": view.strategy_id,
                "client_order_id": client_order_id,
            },
        )
        entry.breaker.tell(
            QueryOrder(client_order_id=client_order_id, venue=view.venue, symbol=view.symbol)
        )
        self._await_ack(client_order_id)

    # -- the acknowledgement sweep ----------------------------------------------------

    def _await_ack(self, client_order_id: str) -> None:
        """Query the venue if ``client_order_id`` is still unacknowledged ``ack_timeout``
        from now. One timer for all orders, armed for the soonest deadline, rather
        than a timer (and a message) per order."""
        self._awaiting_ack.pop(client_order_id, None)
        clock = self.context.system.clock
        self._awaiting_ack[client_order_id] = clock.monotonic() + self.ack_timeout
        if self._ack_timer is None:
            self._arm_ack_sweep()

    def _arm_ack_sweep(self) -> None:
        self._ack_timer = None
        if not self._awaiting_ack:
            return
        due = next(iter(self._awaiting_ack.values()))
        delay = max(0.0, due - self.context.system.clock.monotonic())
        self._ack_timer = self.context.schedule_once(delay, _AckSweep())

    def _ack_sweep(self) -> None:
        """Every order whose acknowledgement is due and still missing is looked up
        at its venue (``_ack_timeout``); then the timer is armed for the next one."""
        now = self.context.system.clock.monotonic() + _ACK_SLACK
        awaiting = self._awaiting_ack
        while awaiting:
            client_order_id, due = next(iter(awaiting.items()))
            if due > now:
                break
            del awaiting[client_order_id]
            self._ack_timeout(client_order_id)
        self._arm_ack_sweep()

    def _note_arrival(self, key: str, venue: str | None, symbol: str, now: int) -> None:
        """Records (and journals) the arrival price of an order or a parent order: the
        mid of the last quote for its venue and symbol; for a parent without a venue
        (routed), of the first venue listing the instrument that has a quote."""
        quote = None
        if venue is not None:
            quote = self.store.quotes.get((venue, symbol))
        elif self.store.listings is not None:
            for listing in self.store.listings.listings(symbol):
                quote = self.store.quotes.get(listing)
                if quote is not None:
                    break
        if quote is None:
            return  # no quote, no arrival price (as ``arrival_price`` answers)
        price = arrival_price(quote)
        if price is not None:
            self.state.set_arrival(key, price)
            self._record(EntryKind.ARRIVAL, now, client_order_id=key, price=price)

    def _mark(self, quote: Quote) -> None:
        """Re-value an open position so loss limits see a price move, not only the next fill."""
        self.store.quotes[(quote.venue, quote.symbol)] = quote
        self.state.mark(quote.venue, quote.symbol, quote.last or quote.mid)
        position = self.state.position(quote.venue, quote.symbol)
        if position.quantity != 0:
            self._publish(position, None)

    # -- positions against the venue's account -----------------------------------------

    def _check_positions(self, balances: VenueBalances) -> None:
        """Spot positions are balances: the venue's balance of each base asset must
        move exactly as our fills moved our position. The first look sets the
        baseline (what the account held that our fills do not explain); a
        difference seen twice in a row is a drift, and it stays one, reported
        at every check, until the fills explain it or an operator accepts the
        venue's account (:class:`AcceptBalanceBaseline`). Re-baselining by
        itself would hide a lost fill for good."""
        ours: dict[str, Decimal] = {}
        for symbol, asset in balances.base_assets.items():
            self.store.base_assets[(balances.venue, symbol)] = asset
            quantity = self.state.position(balances.venue, symbol).quantity
            ours[asset] = ours.get(asset, Decimal(0)) + quantity
        for asset in ours:
            # A fee charged in the base asset leaves the account holding less than
            # the fills bought: what our fills explain is net of it.
            ours[asset] -= self.state.fees_paid(balances.venue, asset)
        for asset, our_position in ours.items():
            key = (balances.venue, asset)
            total = balances.totals.get(asset, Decimal(0))
            self.store.last_balances[key] = (total, our_position)
            baseline = self.state.balance_baseline(balances.venue, asset)
            if baseline is None:
                self._set_baseline(balances.venue, asset, total - our_position, balances.ts_ns)
                continue
            gap = total - baseline - our_position
            if gap == 0:
                self.store.drift_suspects.pop(key, None)
                if self.store.drifting.pop(key, None) is not None:
                    logger.warning(
                        "OMS: position drift on %s %s resolved: fills and account agree again",
                        balances.venue,
                        asset,
                        extra={"venue": balances.venue},
                    )
            elif key in self.store.drifting or self.store.drift_suspects.get(key) == gap:
                self._drifted(balances, asset, our_position, total - baseline, gap)
            else:
                self.store.drift_suspects[key] = gap

    def _set_baseline(self, venue: str, asset: str, quantity: Decimal, ts_ns: int) -> None:
        self.state.set_balance_baseline(venue, asset, quantity)
        self._record(EntryKind.BALANCE_BASELINE, ts_ns, venue=venue, asset=asset, quantity=quantity)

    def _drifted(
        self,
        balances: VenueBalances,
        asset: str,
        ours: Decimal,
        venue_change: Decimal,
        gap: Decimal,
    ) -> None:
        key = (balances.venue, asset)
        self.store.drift_suspects.pop(key, None)
        if self.store.drifting.get(key) != gap:
            # A new drift (or a different gap): one more counted; the same gap
            # seen again is the same drift, alerted again but counted once.
            self.store.position_drifts += 1
            self.store.drift_events += 1
        self.store.drifting[key] = gap
        self.store.drift_alerts += 1
        logger.error(
            "OMS: position drift on %s %s: our fills say %s, the venue's account %s "
            "(unexplained %s; stays a drift until explained or accepted)",
            balances.venue,
            asset,
            ours,
            venue_change,
            gap,
            extra={"venue": balances.venue},
        )
        self._publish(
            PositionDrift(
                venue=balances.venue,
                asset=asset,
                our_change=ours,
                venue_change=venue_change,
                ts_ns=balances.ts_ns,
            ),
            None,
        )
        if self.on_drift is not None:
            self.directory.risk().tell(
                SetTradingState(
                    self.on_drift,
                    f"position drift on {balances.venue} {asset}: "
                    f"ours {ours}, venue {venue_change}",
                )
            )

    def _accept_baseline(self, command: AcceptBalanceBaseline) -> tuple[str, ...]:
        """The operator's word that the venue's account is right: the baseline
        becomes what the last check saw, journaled. Returns the assets accepted."""
        accepted = []
        for (venue, asset), (total, ours) in sorted(self.store.last_balances.items()):
            if venue != command.venue or command.asset not in (None, asset):
                continue
            self._set_baseline(venue, asset, total - ours, self.context.now_ns())
            self.store.drifting.pop((venue, asset), None)
            self.store.drift_suspects.pop((venue, asset), None)
            accepted.append(asset)
            logger.warning(
                "OMS: balance baseline of %s %s accepted (%s): the account's %s is explained",
                venue,
                asset,
                command.reason,
                total,
                extra={"venue": venue},
            )
        return tuple(accepted)

    def _on_acceptance_window(self, window: RecordAcceptanceWindow) -> None:
        if self.state.acceptance_window(window.venue) == window.seconds:
            return
        self.state.set_acceptance_window(window.venue, window.seconds)
        self._record(
            EntryKind.ACCEPTANCE_WINDOW,
            self.context.now_ns(),
            venue=window.venue,
            seconds=window.seconds,
        )

    def _on_cursor(self, cursor: VenueCursor) -> None:
        if self.state.venue_cursors(cursor.venue).get(cursor.scope) == cursor.cursor:
            return
        self.state.set_venue_cursor(cursor.venue, cursor.scope, cursor.cursor)
        self._record(
            EntryKind.VENUE_CURSOR,
            self.context.now_ns(),
            venue=cursor.venue,
            scope=cursor.scope,
            cursor=cursor.cursor,
        )

    # -- reports --------------------------------------------------------------------

    def _on_report(self, report: Message) -> None:
        now = self.context.now_ns()
        result = self.state.apply(report, now)
        journaled = False
        if result.reason is IgnoreReason.UNKNOWN_ORDER and isinstance(report, OrderStatusReport):
            journaled = True  # adopting journals its own calls
            adopted = self._adopt(report)
            if adopted is not None:
                result = adopted
        try:
            self._tell_report(report, result)
        finally:
            if not journaled:
                # Every apply is journaled, ignored ones too: replay must walk the
                # state through the same calls (an ignored report still ages the
                # completed-order list). After the subscribers are told, so that the
                # strategy hears of its fill (or accept) without waiting for the
                # encoding and the append: a report is never held for durability
                # (its record is not urgent, so it was not durable when it was told
                # either), and a record appended a moment later, on the same thread
                # and before any other record or the next message, is the same
                # record at the same place in the journal. In ``finally``: an actor
                # failure while telling still journals the state change it follows.
                if result.applied and isinstance(report, OrderFilled):
                    crash_point("before_fill_journaled")
                journal = self.store.journal
                if journal is not None:
                    journal.record_message(EntryKind.REPORT, now, report)
        self._advance_kill_switch(result)
        if self.store.adoptions and result.applied and isinstance(report, OrderFilled):
            self._complete_adoption(report.client_order_id)

    def _tell_report(self, report: Message, result: ApplyResult) -> None:
        """Log the report's drifts and tell its subscribers what it changed; records nothing
        (``_on_report`` journals the report after this)."""
        self.store.drift_events += len(result.drifts)
        for drift in result.drifts:
            logger.warning(
                "OMS: %s drift on %s: %s (%s)",
                drift.kind.value,
                drift.client_order_id,
                drift.detail,
                type(report).__name__,
                extra={"client_order_id": drift.client_order_id},
            )
        if result.applied:
            order = result.order
            if (
                self._awaiting_ack
                and order is not None
                and order.status is not OrderStatus.SUBMITTED
            ):
                self._awaiting_ack.pop(order.client_order_id, None)
            if result.inferred_accept is not None:
                self._publish_report(result.inferred_accept, order)
            # The net position only (risk's input). The strategy's own position
            # is in GetPositions(strategy_id=...) and in its actor's view, which
            # counts the fills it is told: a second snapshot per fill, to every
            # subscriber, was a message nobody handled. Published with the fill,
            # so a subscriber of both may take them as one message (``_publish``).
            updates = result.position_updates  # the net position first, then the strategy's
            net = updates[0] if updates and updates[0].strategy_id is None else None
            self._publish(report, None if order is None else order.strategy_id, position=net)
            for linked in result.linked_orders:
                logger.info(
                    "OMS: %s moved to %s with its logical order",
                    linked.client_order_id,
                    linked.status.value,
                )

    def _adopt(self, report: OrderStatusReport) -> ApplyResult | None:
        """An order the venue has and we do not (placed by hand or by another
        client, or before a lost journal), whatever its state: track it as
        ``external`` so its fills and position count.

        The venue's report may already show fills the OMS has not seen yet
        (brokers send an unknown order's status before its fills). The order
        is registered and acknowledged (the venue has it, so it accepted it);
        the report itself is applied once the fills add up to what it shows,
        so adopting never looks like missing fills."""
        now = self.context.now_ns()
        try:
            order = SubmitOrder(
                client_order_id=report.client_order_id,
                strategy_id=EXTERNAL_STRATEGY,
                venue=report.venue,
                symbol=report.symbol,
                side=report.side,
                order_type=report.order_type,
                quantity=report.quantity,
                price=report.price,
                ts_ns=now,
            )
            self.state.register(order, now)
        except (ValueError, DuplicateOrderError) as exc:
            self.store.drift_events += 1
            logger.warning(
                "OMS: cannot adopt %s from %s: %s",
                report.client_order_id,
                report.venue,
                exc,
                extra={"venue": report.venue, "client_order_id": report.client_order_id},
            )
            return None
        self.store.adopted += 1
        logger.warning(
            "OMS: adopted external order %s on %s (%s %s %s, %s, %s filled)",
            report.client_order_id,
            report.venue,
            report.side.value,
            report.quantity,
            report.symbol,
            report.status.value,
            report.filled_quantity,
            extra={"venue": report.venue, "client_order_id": report.client_order_id},
        )
        self.state.mark_submitted(report.client_order_id, now)
        self._record(EntryKind.REGISTER, now, message=order)
        self._record(EntryKind.SUBMITTED, now, client_order_id=order.client_order_id)
        if report.venue_order_id is not None and (
            report.filled_quantity > 0 or report.status is OrderStatus.FILLED
        ):
            accepted = OrderAccepted(
                client_order_id=report.client_order_id,
                venue=report.venue,
                venue_order_id=report.venue_order_id,
                ts_ns=now,
            )
            result = self.state.apply(accepted, now)
            self._record(EntryKind.REPORT, now, message=accepted)
            self.store.adoptions[report.client_order_id] = report
            return result
        result = self.state.apply(report, now)
        self._record(EntryKind.REPORT, now, message=report)
        return result

    def _complete_adoption(self, client_order_id: str) -> None:
        """Apply an adopted order's own report once its fills have caught up."""
        report = self.store.adoptions.get(client_order_id)
        view = self.state.get(client_order_id)
        if report is None or view is None or view.filled_quantity < report.filled_quantity:
            return
        del self.store.adoptions[client_order_id]
        self._on_report(report)

    def _publish_report(self, report: Message, view: TrackedOrderView | None) -> None:
        self._publish(report, None if view is None else view.strategy_id)

    def _risk_guard(self) -> Address | None:
        """The risk guard's address (stable across its restarts: resolved once it exists)."""
        address = self._risk_address
        if address is None:
            address = self._risk_address = self.directory.system.lookup(
                self.directory.path("core", "risk")
            )
        return address

    def _publish(
        self,
        message: Message | Routed | PositionDrift,
        strategy_id: str | None,
        *,
        skip: Address | None = None,
        position: PositionSnapshot | None = None,
    ) -> None:
        """Tell ``message`` to every subscriber it concerns, but ``skip``; then ``position``
        (the net position a fill left) to every one that concerns, as a message of its
        own, strategy-wide (``strategy_id`` None).

        A subscriber concerned by both that named ``FillAndPosition`` in its kinds
        (the risk guard) gets the two as that one message, in ``message``'s turn:
        one wake-up of its thread, and one handler, per fill instead of two. What
        it gets is still the fill, then the position, and nobody else's messages
        or their order change.
        """
        if isinstance(message, OrderDenied):
            self.store.denials += 1
        elif isinstance(message, OrderRejected):
            self.store.rejections += 1
        broadcast = isinstance(message, TradingStateChanged | PositionDrift)
        position_to: list[Address] = []
        for subscription in self.store.subscribers:
            subscriber = subscription.subscriber
            if subscriber is skip:
                continue
            kinds = subscription.kinds
            if (
                position is not None
                and subscription.strategy_id is None  # strategy-wide, as ``position`` is
                and (kinds is None or isinstance(position, kinds))
            ):
                if kinds is not None and FillAndPosition in kinds and isinstance(message, kinds):
                    assert isinstance(message, OrderFilled)  # only a fill moves a position
                    subscriber.tell(FillAndPosition(message, position))
                    continue
                position_to.append(subscriber)
            if (
                broadcast
                or subscription.strategy_id is None
                or subscription.strategy_id == strategy_id
            ) and (kinds is None or isinstance(message, kinds)):
                subscriber.tell(message)
        if position is not None:
            for subscriber in position_to:
                subscriber.tell(position)

    # -- kill switch -------------------------------------------------------------------

    def _engage_kill_switch(self, command: EngageKillSwitch) -> None:
        """Cancel every open order, with one request per symbol (or account) where
        the venue has a cancel-all, and wait for the venue to confirm each one
        closed; then, with ``flatten``, close every position. Whatever the venue
        does not confirm within ``command.confirm_within`` is reported, with why."""
        if self.state.parents:
            self.store.parents.stop_all(self, "kill switch")
        open_orders = self.state.open_orders()
        run = _KillRun(command, time.perf_counter(), set(), len(open_orders))
        self._kill = run
        by_venue: dict[str, list[TrackedOrderView]] = {}
        for view in open_orders:
            by_venue.setdefault(view.venue, []).append(view)
        for venue, views in sorted(by_venue.items()):
            entry = self.directory.venue(venue)
            if entry is None:
                for view in views:
                    run.failed.append(view.client_order_id)
                    run.problems.append(f"{view.client_order_id}: venue {venue} is not connected")
                continue
            # The cancels leave first, without waiting for their records to be
            # durable: unlike a submit, a cancel the journal does not know of
            # cannot leave anything behind (the next reconciliation sees the
            # order closed), and every millisecond here is exposure. Sequence
            # 0 still queues them behind any message held for durability (a
            # submit approved before the halt), so none overtakes it.
            scope = entry.capabilities.cancel_all
            if scope is CancelAllScope.SYMBOL:
                for symbol in sorted({view.symbol for view in views}):
                    self._send(0, entry.breaker, CancelAllOrders(venue=venue, symbol=symbol))
            elif scope is CancelAllScope.ACCOUNT:
                self._send(0, entry.breaker, CancelAllOrders(venue=venue))
            for view in views:
                now = self.context.now_ns()
                if view.status is not OrderStatus.PENDING_CANCEL:
                    self.state.mark_pending_cancel(view.client_order_id, now)
                    self._record(
                        EntryKind.PENDING_CANCEL, now, client_order_id=view.client_order_id
                    )
                if scope is CancelAllScope.NONE:
                    self._send(0, entry.breaker, _cancel_of(view))
                run.waiting.add(view.client_order_id)
        if run.waiting:
            self._arm_kill_timers(run)
        self._advance_kill_switch(None)

    def _arm_kill_timers(self, run: _KillRun) -> None:
        within = run.command.confirm_within
        run.timers = [
            # An order a cancel-all did not close (it filled meanwhile, or the
            # answer was lost) is cancelled on its own before the deadline.
            self.context.schedule_once(min(1.0, within / 2), _KillSweep(run.phase)),
            self.context.schedule_once(within, _KillDeadline(run.phase)),
        ]

    def _kill_sweep(self, phase: int) -> None:
        run = self._kill
        if run is None or run.phase != phase or run.flattening:
            return
        for client_order_id in sorted(run.waiting):
            view = self.state.get(client_order_id)
            entry = None if view is None else self.directory.venue(view.venue)
            if view is not None and entry is not None and not view.is_terminal:
                entry.breaker.tell(_cancel_of(view))

    def _kill_deadline(self, phase: int) -> None:
        run = self._kill
        if run is None or run.phase != phase:
            return
        within = run.command.confirm_within
        for client_order_id in sorted(run.waiting):
            view = self.state.get(client_order_id)
            status = "unknown" if view is None else view.status.value
            what = "flatten order" if run.flattening else "order"
            run.failed.append(client_order_id)
            run.problems.append(
                f"{client_order_id}: {what} not confirmed closed by the venue within "
                f"{within:g}s (OMS has it {status})"
            )
        run.waiting.clear()
        self._advance_kill_switch(None)

    def _advance_kill_switch(self, result: ApplyResult | None) -> None:
        run = self._kill
        if run is None:
            return
        if result is not None and result.client_order_id in run.waiting:
            view = self.state.get(result.client_order_id)
            if view is None or view.is_terminal:
                run.waiting.discard(result.client_order_id)
                if run.flattening:
                    self._flatten_finished(run, view)
                else:
                    run.confirmed += 1
        if run.waiting:
            return
        for timer in run.timers:
            timer.cancel()
        run.timers = []
        run.phase += 1
        if run.command.flatten and not run.flattening:
            run.cancel_seconds = time.perf_counter() - run.started
            run.flattening = True
            self._flatten(run)
            if run.waiting:
                self._arm_kill_timers(run)
                return
        if not run.flattening:
            run.cancel_seconds = time.perf_counter() - run.started
        self._kill = None
        positions = self.state.positions()
        if run.command.flatten:
            for position in positions:
                if position.quantity != 0 and position.venue in run.flattened_venues:
                    run.problems.append(
                        f"{position.venue} {position.symbol}: {position.quantity} left after "
                        "flattening"
                    )
        run.command.done.fulfil(
            KillSwitchReport(
                open_orders_found=run.found,
                cancels_confirmed=run.confirmed,
                cancels_failed=tuple(run.failed),
                flatten_orders=tuple(run.flatten),
                positions_after=positions,
                cancel_seconds=run.cancel_seconds,
                total_seconds=time.perf_counter() - run.started,
                complete=not run.failed and not run.problems,
                problems=tuple(run.problems),
            )
        )

    def _flatten_finished(self, run: _KillRun, view: TrackedOrderView | None) -> None:
        if view is None or view.status is OrderStatus.FILLED:
            return
        order = view.order
        if view.status is OrderStatus.REJECTED:
            code = view.rejection_code or "REJECTED"
            run.problems.append(
                f"{view.client_order_id}: flatten {order.side.value} {order.quantity} "
                f"{order.symbol} on {order.venue} refused by the venue: {code} {view.reason or ''}".rstrip()
            )
        else:
            run.problems.append(
                f"{view.client_order_id}: flatten {order.side.value} {order.quantity} "
                f"{order.symbol} on {order.venue} ended {view.status.value} with "
                f"{view.filled_quantity} filled"
            )

    def _flatten(self, run: _KillRun) -> None:
        """One market order per non-zero position, the opposite side. Reduce-only
        where the venue honours it; on a spot venue (positions are balances) it
        is sized to what the venue's account shows, never more."""
        now = self.context.now_ns()
        for position in self.state.positions():
            if position.quantity == 0:
                continue
            entry = self.directory.venue(position.venue)
            if entry is None:
                run.problems.append(
                    f"{position.venue} {position.symbol}: {position.quantity} not flattened: "
                    "venue not connected"
                )
                continue
            run.flattened_venues.add(position.venue)
            capabilities = entry.capabilities
            quantity = abs(position.quantity)
            if capabilities.positions_are_balances:
                held = self._venue_position(position.venue, position.symbol, position.quantity)
                if held * position.quantity <= 0:
                    run.problems.append(
                        f"{position.venue} {position.symbol}: ours {position.quantity}, but the "
                        f"venue's account shows {held}: nothing it would let us flatten"
                    )
                    continue
                quantity = min(quantity, abs(held))
            order = SubmitOrder(
                client_order_id=self.store.ids.next(capabilities.client_ids),
                strategy_id=KILL_SWITCH_STRATEGY,
                venue=position.venue,
                symbol=position.symbol,
                side=Side.SELL if position.quantity > 0 else Side.BUY,
                order_type=OrderType.MARKET,
                quantity=quantity,
                reduce_only=capabilities.reduce_only,
                ts_ns=now,
            )
            self.state.register(order, now)
            self.state.mark_submitted(order.client_order_id, now)
            self._record(EntryKind.REGISTER, now, message=order)
            seq = self._record(EntryKind.SUBMITTED, now, client_order_id=order.client_order_id)
            self._send(seq, entry.breaker, order)
            self._publish(Routed(order), KILL_SWITCH_STRATEGY)
            run.flatten.append(order.client_order_id)
            run.waiting.add(order.client_order_id)

    def _venue_position(self, venue: str, symbol: str, ours: Decimal) -> Decimal:
        """The position the venue's account implies: ours plus any gap the last
        balance check saw (a drift), when that check covered the symbol."""
        asset = self.store.base_assets.get((venue, symbol))
        seen = None if asset is None else self.store.last_balances.get((venue, asset))
        baseline = None if asset is None else self.state.balance_baseline(venue, asset)
        if seen is None or baseline is None:
            return ours
        total, ours_then = seen
        return ours + (total - baseline - ours_then)


def _cancel_of(view: TrackedOrderView) -> CancelOrder:
    return CancelOrder(client_order_id=view.client_order_id, venue=view.venue, symbol=view.symbol)


def _acknowledged(view: TrackedOrderView) -> bool:
    """Whether the venue has shown it holds the order (accepted it, or filled some)."""
    status = view.status
    if status in PENDING:
        status = view.resume_status or OrderStatus.SUBMITTED
    return status in LIVE_AT_VENUE
