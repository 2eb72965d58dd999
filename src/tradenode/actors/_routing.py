"""The router: every strategy order passes it on its way to the risk guard, but
one it would only forward (FULL_AUTO, its venue named), which the strategy's
bridge tells the guard itself when that is provably the same (``DirectLane``).

It sits between the strategies and the risk guard (``/<node>/core/router``)
because both of its jobs come before any check of an order's venue:

1. **Execution mode** (``_execution_modes``): EMERGENCY refuses the order;
   SEMI_AUTO (above the thresholds) and MANUAL hold it in the
   ``ApprovalQueue`` until a person approves or rejects it, or its timeout
   (node clock) denies it ``APPROVAL_TIMEOUT``; RESEARCH records it and
   simulates it against live quotes (``ResearchDesk``), never sending it.
2. **Routing** (``_routing_policy``): an order whose venue is ``auto``
   names an instrument; the policy picks the venue(s) and the venue's symbol
   from the current quotes, taker fees and breaker states. The route and why
   is written on the order itself (``SubmitOrder.route``), so the OMS
   journals it with the order and every view of the order shows it.

Layers stay one way: the router tells the risk guard, which tells the OMS;
it hears back only as any OMS subscriber does (order events), which is how
it fails over: an order it routed that the venue's breaker refused
(``CIRCUIT_OPEN``: the circuit was open, or the venue was asked and does not
have it) or the OMS refused because the venue is absent
(``VENUE_UNAVAILABLE``) goes again, under a new client order id, to the next
venue of its route. A venue's own refusal (a business answer: insufficient
balance, a bad price) is final: failing over on it would send an order the
strategy's venue already judged.

Its memory (``RouterStore``) belongs to the node, so a restarted router keeps
the pending approvals, the failover routes and the research records.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._config import (
    AUTO_VENUE,
    ApprovalConfig,
    ExecutionMode,
    InstrumentMap,
    RoutingConfig,
)
from ..messages._enums import DenialCode, TradingState
from ..messages._execution import CancelParentOrder, ParentDenied, SubmitParentOrder
from ..messages._messages import (
    CancelOrder,
    Message,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    Quote,
    SubmitOrder,
)
from ..supervision import Actor, Address
from ._approvals import (
    ApprovalLog,
    ApprovalOutcome,
    ApprovalQueue,
    ApprovalQueueFullError,
    PendingApproval,
)
from ._breaker_state import CircuitState
from ._client_ids import ClientOrderIdFamily
from ._control import PositionDrift, Routed, SetTradingState, Subscribe, Unsubscribe
from ._directory import Directory
from ._execution_modes import (
    DirectLane,
    ResearchBook,
    ResearchEvent,
    ThroughRouter,
    approval_needed,
    mode_for,
)
from ._oms import RiskDenied
from ._routing_policy import Listing, NoRouteError, RouteDecision, choose_route

if TYPE_CHECKING:
    from .._config import NodeConfig
    from ..supervision import Clock
    from ._oms import KillSwitchReport

__all__ = [
    "Approve",
    "AwaitingApproval",
    "FailedOver",
    "GetApprovals",
    "GetExecutionModes",
    "GetRouterStatus",
    "OpenLane",
    "Reject",
    "RoutedAs",
    "RouterActor",
    "RouterControl",
    "RouterStore",
    "SetExecutionMode",
    "is_transport_refusal",
    "router_store",
]

logger = logging.getLogger("tradenode.router")

#: Refusals that mean the order never reached the venue for a transport reason:
#: the breaker's (its circuit was open, or it asked the venue after a lost answer
#: and the venue does not have the order). Everything else a venue says is business.
FAILOVER_REJECTIONS = frozenset({"CIRCUIT_OPEN"})
FAILOVER_DENIALS = frozenset({DenialCode.VENUE_UNAVAILABLE})

_MAX_ROUTE_TEXT = 480
_REMEMBERED = 10_000


# -- control messages (in-process, like ``_control``) ----------------------------------


@dataclass(frozen=True, slots=True)
class OpenLane:
    """A strategy bridge asks for its ``DirectLane`` (answered by the router; a tree
    without one answers None, and the bridge sends everything to the guard)."""

    strategy_id: str


@dataclass(frozen=True, slots=True)
class GetApprovals:
    """Answer: the pending approvals, oldest first (``PendingApproval``)."""


@dataclass(frozen=True, slots=True)
class Approve:
    """Answer: the approved ``PendingApproval``, or None if it was not pending."""

    approval_id: str
    who: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Answer: the rejected ``PendingApproval``, or None if it was not pending."""

    approval_id: str
    who: str
    reason: str


@dataclass(frozen=True, slots=True)
class SetExecutionMode:
    """Set the node's mode (``strategy_id`` None) or one strategy's override (``mode``
    None removes it). Answer: the node's mode before. Entering EMERGENCY
    withdraws every pending approval (denied ``TRADING_HALTED``)."""

    mode: ExecutionMode | None
    who: str
    strategy_id: str | None = None


@dataclass(frozen=True, slots=True)
class GetExecutionModes:
    """Answer: ``(node mode, {strategy id: override})``."""


@dataclass(frozen=True, slots=True)
class GetRouterStatus:
    """Answer: a dict for the status view (modes, approvals, routes, research)."""


@dataclass(frozen=True, slots=True)
class AwaitingApproval:
    """Router to a strategy: this order of yours waits for a person's approval."""

    approval_id: str
    why: str
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class FailedOver:
    """Router to a strategy: its routed order ``client_order_id``, refused for a
    transport reason, went on as ``replacement`` (another venue, a new id), or
    nowhere (None: no venue of its route could take it). Until this arrives the
    strategy keeps counting the refused order, so a decision taken meanwhile
    does not buy it twice."""

    client_order_id: str
    replacement: SubmitOrder | None


@dataclass(frozen=True, slots=True)
class RoutedAs:
    """Router to a strategy: its order ``client_order_id`` (venue ``auto``) goes out as
    ``legs``: under another id (the venue's client-id rules refused its own), or split
    across venues. Told before the legs leave, so the strategy's view counts them
    from the start and never the original twice."""

    client_order_id: str
    legs: tuple[SubmitOrder, ...]


def is_transport_refusal(message: object) -> bool:
    """A refusal the router may fail over on: never a venue's business answer."""
    if isinstance(message, OrderRejected):
        return message.code in FAILOVER_REJECTIONS
    if isinstance(message, OrderDenied):
        return message.code in FAILOVER_DENIALS
    return False


@dataclass(frozen=True, slots=True)
class _ApprovalDeadline:
    approval_id: str


@dataclass
class _Attempt:
    """A routed order that may still fail over: where it could go next."""

    order: SubmitOrder
    failover: tuple[tuple[str, str], ...]


@dataclass
class RouterStore:
    """The router's memory, owned by the node: a restart loses no approval or route."""

    instruments: InstrumentMap
    routing: RoutingConfig
    approval: ApprovalConfig
    node_mode: ExecutionMode
    approvals: ApprovalQueue
    research: ResearchBook
    ids: ClientOrderIdFamily
    circuit: Callable[[str], CircuitState | None]
    """The breaker state of a venue (None: no breaker known)."""
    overrides: dict[str, ExecutionMode] = field(default_factory=dict)
    quotes: dict[tuple[str, str], Quote] = field(default_factory=dict)
    attempts: dict[str, _Attempt] = field(default_factory=dict)
    placed: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Client order id of a routed order -> (venue, symbol) it went to, so a cancel or
    modify the strategy sends with venue ``auto`` finds it."""
    routes: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=100))
    """(client order id, route) of the last orders routed, for the status view."""
    failovers: int = 0
    no_route: int = 0
    research_orders: set[str] = field(default_factory=set)
    gate: threading.Lock = field(default_factory=threading.Lock)
    """Held while ``node_mode`` or ``overrides`` change, and while a strategy bridge
    reads them to tell an order to the risk guard itself (``DirectLane``)."""
    lanes: dict[str, DirectLane] = field(default_factory=dict)
    """Strategy id -> its lane past the router, kept across restarts of either."""


_OMS_EVENTS = (OrderRejected, OrderDenied, OrderAccepted, OrderFilled, OrderCanceled, OrderExpired)
"""The OMS events routing acts on (``receive``); the others would only wake it."""


class RouterActor(Actor):
    """Hears the OMS's events only once it has routed an order (``_follow_orders``).

    Every event it acts on concerns a routed order that may still fail over
    (``RouterStore.attempts``: an order of venue ``auto`` or a failover's
    replacement): a refusal fails it over, the rest forget it. An order that
    named its venue never becomes an attempt, so for a node whose strategies
    all name theirs, each accept and fill the OMS told the router was a thread
    woken for nothing (two per order). So the router subscribes when it makes
    its first attempt, before that order leaves it: its ``Subscribe`` is queued
    at the OMS before the order can reach the OMS through the risk guard, so no
    event of the order is missed. It stays subscribed from then on (an order
    routed in a closed loop would otherwise cost a subscribe and an unsubscribe
    each); a restarted router starts subscribed if attempts are pending.
    """

    def __init__(self, directory: Directory, store: RouterStore) -> None:
        self.directory = directory
        self.store = store
        self._following = False
        self._risk: Address | None = None

    def on_start(self) -> None:
        # Replaces (or, with no attempt pending, drops) what an earlier
        # incarnation subscribed: the OMS keeps one subscription per address.
        self._following = False
        if self.store.attempts:
            self._follow_orders()
        else:
            self.directory.oms().tell(Unsubscribe(self.context.self))
        now = self.context.now_ns()
        for approval in self.store.approvals.pending():
            # Recovered from the log, or kept across this actor's restart: each
            # gets its timer again; one whose deadline passed meanwhile (the node
            # was down) is denied APPROVAL_TIMEOUT now, explicitly.
            if approval.deadline_ns <= now:
                self._on_deadline(approval.approval_id)
            else:
                delay = (approval.deadline_ns - now) / 1e9
                self.context.schedule_once(delay, _ApprovalDeadline(approval.approval_id))

    def receive(self, message: Any) -> Any:
        if type(message) is ThroughRouter:
            try:
                return self.receive(message.message)
            finally:
                # Counted once the message is dealt with, whatever became of it:
                # anything it made the router tell the guard is queued there now.
                message.lane.handled += 1
        if isinstance(message, SubmitOrder | SubmitParentOrder):
            self._on_order(message)
        elif isinstance(message, CancelParentOrder):
            self._on_cancel_parent(message)
        elif isinstance(message, CancelOrder):
            self._on_cancel(message)
        elif isinstance(message, ModifyOrder):
            self._on_modify(message)
        elif isinstance(message, Quote):
            self._on_quote(message)
        elif isinstance(message, OrderRejected | OrderDenied):
            self._on_refusal(message)
        elif isinstance(message, OrderAccepted | OrderFilled | OrderCanceled | OrderExpired):
            self.store.attempts.pop(message.client_order_id, None)
        elif isinstance(message, _ApprovalDeadline):
            self._on_deadline(message.approval_id)
        else:
            return self._control(message)
        return None

    # -- control ---------------------------------------------------------------------

    def _control(self, message: Any) -> Any:
        store = self.store
        if isinstance(message, GetApprovals):
            return store.approvals.pending()
        if isinstance(message, Approve):
            approval = store.approvals.resolve(
                message.approval_id, ApprovalOutcome.APPROVED, message.who
            )
            if approval is not None:
                self._dispatch(approval.order)
            return approval
        if isinstance(message, Reject):
            approval = store.approvals.resolve(
                message.approval_id, ApprovalOutcome.REJECTED, message.who, message.reason
            )
            if approval is not None:
                self._deny(
                    approval.order,
                    DenialCode.APPROVAL_REJECTED,
                    f"rejected by {message.who}: {message.reason}",
                )
            return approval
        if isinstance(message, SetExecutionMode):
            return self._set_mode(message)
        if isinstance(message, GetExecutionModes):
            return store.node_mode, dict(store.overrides)
        if isinstance(message, OpenLane):
            lane = store.lanes.get(message.strategy_id)
            if lane is None:
                lane = DirectLane(message.strategy_id, store, store.gate)
                store.lanes[message.strategy_id] = lane
            return lane
        if isinstance(message, GetRouterStatus):
            return self.status()
        if isinstance(message, Message | Routed | PositionDrift):
            return None  # other OMS events (OrderSubmitted, Routed, ...) say nothing to routing
        logger.warning("router: ignoring unexpected %s", type(message).__name__)
        return None

    def status(self) -> dict[str, Any]:
        store = self.store
        return {
            "execution_mode": store.node_mode.value,
            "strategy_modes": {k: v.value for k, v in sorted(store.overrides.items())},
            "approvals": store.approvals.counts(),
            "pending_approvals": [a.describe() for a in store.approvals.pending()],
            "routing_policy": store.routing.policy.value,
            "failovers": store.failovers,
            "no_route": store.no_route,
            "recent_routes": [{"order": cid, "route": route} for cid, route in store.routes],
            "research_orders": len(store.research.records),
            "research_positions": {
                f"{venue}:{symbol}": str(quantity)
                for (venue, symbol), quantity in sorted(store.research.positions().items())
            },
        }

    def _set_mode(self, message: SetExecutionMode) -> ExecutionMode:
        store = self.store
        before = store.node_mode
        if message.strategy_id is not None:
            with store.gate:  # a bridge reading it to skip the router sees it whole
                if message.mode is None:
                    store.overrides.pop(message.strategy_id, None)
                else:
                    store.overrides[message.strategy_id] = message.mode
            logger.warning(
                "execution mode of strategy %s: %s (by %s)",
                message.strategy_id,
                "node's" if message.mode is None else message.mode.value,
                message.who,
            )
            return before
        if message.mode is None:
            return before
        with store.gate:  # a bridge reading it to skip the router sees it whole
            store.node_mode = message.mode
        logger.warning(
            "execution mode: %s -> %s (by %s)", before.value, message.mode.value, message.who
        )
        if message.mode is ExecutionMode.EMERGENCY:
            for approval in store.approvals.pending():
                store.approvals.resolve(
                    approval.approval_id, ApprovalOutcome.WITHDRAWN, message.who, "emergency"
                )
                self._deny(
                    approval.order,
                    DenialCode.TRADING_HALTED,
                    "execution mode EMERGENCY: pending approvals withdrawn",
                )
        return before

    # -- orders ----------------------------------------------------------------------

    def _on_order(self, order: SubmitOrder | SubmitParentOrder) -> None:
        store = self.store
        mode = mode_for(order.strategy_id, store.node_mode, store.overrides)
        if mode is ExecutionMode.EMERGENCY:
            self._deny(
                order,
                DenialCode.TRADING_HALTED,
                "execution mode EMERGENCY: trading halted until an operator resumes",
            )
            return
        if isinstance(order, SubmitParentOrder) and mode is ExecutionMode.RESEARCH:
            # Its algorithm reads its children back from the OMS, which a simulated
            # child never reaches: it would resend slices. Refused, plainly.
            self._deny(
                order,
                DenialCode.INVALID_ORDER,
                "execution mode RESEARCH simulates plain orders only; parent orders "
                "are not simulated",
            )
            return
        # A parent's child was approved with its parent: it is not asked about again.
        if isinstance(order, SubmitParentOrder) or order.parent_id is None:
            # Only SEMI_AUTO weighs a notional: the last price is looked up for it alone.
            last_price = self._last_price(order) if mode is ExecutionMode.SEMI_AUTO else None
            why = approval_needed(mode, order, store.approval, last_price)
            if why is not None:
                self._hold(order, why)
                return
        self._dispatch(order, mode)

    def _hold(self, order: SubmitOrder | SubmitParentOrder, why: str) -> None:
        now = self.context.now_ns()
        timeout = self.store.approval.timeout
        approval_id = _id_of(order)
        approval = PendingApproval(
            approval_id=approval_id,
            order=order,
            why=why,
            requested_ns=now,
            deadline_ns=now + round(timeout * 1e9),
        )
        if approval.approval_id in self.store.approvals:
            self._deny(order, DenialCode.DUPLICATE_ORDER, "already awaiting approval")
            return
        try:
            self.store.approvals.add(approval)
        except ApprovalQueueFullError as exc:
            self._deny(order, DenialCode.APPROVAL_REJECTED, str(exc))
            return
        logger.warning(
            "approval needed for %s (%s %s %s on %s): %s",
            approval_id,
            order.side.value,
            order.quantity,
            order.symbol,
            order.venue or AUTO_VENUE,
            why,
        )
        self.context.schedule_once(timeout, _ApprovalDeadline(approval_id))
        self._tell_strategy(
            order.strategy_id, AwaitingApproval(approval_id, why, approval.deadline_ns)
        )

    def _on_deadline(self, approval_id: str) -> None:
        approval = self.store.approvals.get(approval_id)
        if approval is None:
            return
        if self.context.now_ns() < approval.deadline_ns:
            # A timer armed before a restart may fire early on a new clock reading.
            delay = (approval.deadline_ns - self.context.now_ns()) / 1e9
            self.context.schedule_once(delay, _ApprovalDeadline(approval_id))
            return
        self.store.approvals.resolve(
            approval_id, ApprovalOutcome.EXPIRED, "timeout", "no decision in time"
        )
        self._deny(
            approval.order,
            DenialCode.APPROVAL_TIMEOUT,
            f"no approval within {self.store.approval.timeout:g}s ({approval.why})",
        )

    def _dispatch(
        self, order: SubmitOrder | SubmitParentOrder, mode: ExecutionMode | None = None
    ) -> None:
        """Route it if it names no venue, then send it on (or simulate it in RESEARCH).
        A parent goes to the risk guard as it is: its children come back here.
        ``mode``: the order's execution mode if the caller just worked it out."""
        store = self.store
        if isinstance(order, SubmitParentOrder):
            self._risk_address().tell(order)
            return
        if order.venue == AUTO_VENUE:
            try:
                decision = self._route(order)
            except NoRouteError as exc:
                store.no_route += 1
                self._deny(order, exc.code, exc.reason)
                return
            legs = self._legs(order, decision)
            if len(legs) > 1 or legs[0].client_order_id != order.client_order_id:
                self._tell_strategy(order.strategy_id, RoutedAs(order.client_order_id, tuple(legs)))
        else:
            legs = [order]
        if mode is None:
            mode = mode_for(order.strategy_id, store.node_mode, store.overrides)
        for leg in legs:
            if mode is ExecutionMode.RESEARCH:
                self._research(leg)
            else:
                self._risk_address().tell(leg)

    def _route(self, order: SubmitOrder) -> RouteDecision:
        store = self.store
        instrument = store.instruments.get(order.symbol)
        if instrument is None:
            raise NoRouteError(
                DenialCode.NO_ROUTE,
                f"{order.symbol} is not an instrument of this node's config "
                f"(instruments: {', '.join(store.instruments.instruments()) or 'none'})",
            )
        listings = [
            Listing(
                venue=venue,
                symbol=symbol,
                connected=self.directory.venue(venue) is not None,
                circuit=store.circuit(venue),
                quote=store.quotes.get((venue, symbol)),
                taker_fee_bps=store.routing.taker_fee_bps.get(venue, Decimal(0)),
            )
            for venue, symbol in self._preference(order.symbol)
        ]
        return choose_route(
            instrument=order.symbol,
            side=order.side,
            quantity=order.quantity,
            listings=listings,
            policy=instrument.policy or store.routing.policy,
            min_split_quantity=store.routing.min_split_quantity,
        )

    def _preference(self, instrument: str) -> list[tuple[str, str]]:
        listings = dict(self.store.instruments.listings(instrument))
        order = [v for v in self.store.routing.venues if v in listings]
        order += [v for v in listings if v not in order]
        return [(venue, listings[venue]) for venue in order]

    def _legs(self, order: SubmitOrder, decision: RouteDecision) -> list[SubmitOrder]:
        store = self.store
        legs: list[SubmitOrder] = []
        for index, leg in enumerate(decision.legs):
            client_order_id = order.client_order_id
            if index > 0 or not self._id_fits(client_order_id, leg.venue):
                client_order_id = self._next_id(leg.venue)
            routed = replace(
                order,
                client_order_id=client_order_id,
                venue=leg.venue,
                symbol=leg.symbol,
                quantity=leg.quantity,
                route=_clip(decision.describe(leg)),
            )
            legs.append(routed)
            self._remember(routed)
            # Kept with failover off too: the strategy hears what became of it.
            failover = (
                tuple(v for v in decision.failover if v[0] != leg.venue)
                if store.routing.failover
                else ()
            )
            self._attempt(routed, failover)
            logger.info("routed %s: %s", client_order_id, routed.route)
        return legs

    def _remember(self, routed: SubmitOrder) -> None:
        store = self.store
        assert routed.route is not None
        store.placed[routed.client_order_id] = (routed.venue, routed.symbol)
        if len(store.placed) > _REMEMBERED:
            store.placed.pop(next(iter(store.placed)))
        store.routes.append((routed.client_order_id, routed.route))
        while len(store.attempts) > _REMEMBERED:
            store.attempts.pop(next(iter(store.attempts)))

    def _on_refusal(self, refusal: OrderRejected | OrderDenied) -> None:
        store = self.store
        attempt = store.attempts.pop(refusal.client_order_id, None)
        if attempt is None:
            return
        if not is_transport_refusal(refusal):
            return  # a business refusal is final: never sent elsewhere
        code = refusal.code if isinstance(refusal, OrderRejected) else refusal.code.value
        failed = attempt.order
        for index, (venue, symbol) in enumerate(attempt.failover):
            listing = Listing(
                venue=venue,
                symbol=symbol,
                connected=self.directory.venue(venue) is not None,
                circuit=store.circuit(venue),
            )
            if listing.unavailable is not None:
                continue
            client_order_id = self._next_id(venue)
            order = replace(
                failed,
                client_order_id=client_order_id,
                venue=venue,
                symbol=symbol,
                route=_clip(
                    f"failover -> {venue}: {failed.venue} refused {failed.client_order_id} "
                    f"{code} ({refusal.reason}); was {failed.route}"
                ),
            )
            store.failovers += 1
            self._remember(order)
            self._attempt(order, attempt.failover[index + 1 :])
            logger.warning("router: %s", order.route)
            mode = mode_for(order.strategy_id, store.node_mode, store.overrides)
            # The strategy first, so it counts the replacement before its Routed.
            self._tell_strategy(failed.strategy_id, FailedOver(failed.client_order_id, order))
            if mode is ExecutionMode.EMERGENCY:
                self._deny(order, DenialCode.TRADING_HALTED, "execution mode EMERGENCY")
            else:
                self._risk_address().tell(order)
            return
        logger.warning(
            "router: %s refused %s (%s) and no other venue of its route can take it",
            failed.venue,
            failed.client_order_id,
            code,
        )
        self._tell_strategy(failed.strategy_id, FailedOver(failed.client_order_id, None))

    def _on_cancel_parent(self, cancel: CancelParentOrder) -> None:
        approval = self.store.approvals.get(cancel.parent_id)
        if approval is None:
            self._risk_address().tell(cancel)
            return
        self.store.approvals.resolve(
            cancel.parent_id, ApprovalOutcome.REJECTED, cancel.parent_id, "cancel"
        )
        self._deny(
            approval.order,
            DenialCode.APPROVAL_REJECTED,
            f"cancelled while awaiting approval ({cancel.reason})",
        )

    def _on_cancel(self, cancel: CancelOrder) -> None:
        store = self.store
        approval = store.approvals.get(cancel.client_order_id)
        if approval is not None:
            store.approvals.resolve(
                cancel.client_order_id, ApprovalOutcome.REJECTED, cancel.client_order_id, "cancel"
            )
            self._deny(
                approval.order,
                DenialCode.APPROVAL_REJECTED,
                "cancelled by its strategy while awaiting approval",
            )
            return
        if cancel.client_order_id in store.research.records:
            self._deliver(store.research.cancel(cancel.client_order_id, self.context.now_ns()))
            return
        if cancel.venue == AUTO_VENUE:
            placed = store.placed.get(cancel.client_order_id)
            if placed is None:
                logger.warning("router: cancel of %s, never routed", cancel.client_order_id)
                return
            cancel = replace(cancel, venue=placed[0], symbol=placed[1])
        self._risk_address().tell(cancel)

    def _on_modify(self, modify: ModifyOrder) -> None:
        if modify.venue == AUTO_VENUE:
            placed = self.store.placed.get(modify.client_order_id)
            if placed is None:
                logger.warning("router: modify of %s, never routed", modify.client_order_id)
                return
            modify = replace(modify, venue=placed[0], symbol=placed[1])
        self._risk_address().tell(modify)

    # -- quotes and research ---------------------------------------------------------

    def _on_quote(self, quote: Quote) -> None:
        self.store.quotes[(quote.venue, quote.symbol)] = quote
        self._deliver(self.store.research.on_quote(quote, self.context.now_ns()))

    def _research(self, order: SubmitOrder) -> None:
        logger.info(
            "research: %s %s %s %s on %s recorded, simulated, not sent",
            order.client_order_id,
            order.side.value,
            order.quantity,
            order.symbol,
            order.venue,
        )
        self._deliver(self.store.research.submit(order, self.context.now_ns()))

    def _deliver(self, events: list[ResearchEvent]) -> None:
        for event in events:
            record = self.store.research.records.get(event.report.client_order_id)
            if record is not None:
                self._tell_strategy(record.order.strategy_id, event)

    # -- helpers -----------------------------------------------------------------------

    def _deny(self, order: SubmitOrder | SubmitParentOrder, code: DenialCode, reason: str) -> None:
        """Refuse through the OMS, which records the denial (journaled) and tells the strategy."""
        if isinstance(order, SubmitParentOrder):
            self.directory.oms().tell(
                ParentDenied(
                    parent_id=order.parent_id,
                    strategy_id=order.strategy_id,
                    code=code,
                    reason=reason,
                    ts_ns=self.context.now_ns(),
                )
            )
            return
        denial = OrderDenied(
            client_order_id=order.client_order_id,
            strategy_id=order.strategy_id,
            code=code,
            reason=reason,
            ts_ns=self.context.now_ns(),
        )
        self.directory.oms().tell(RiskDenied(order, denial))

    def _attempt(self, order: SubmitOrder, failover: tuple[tuple[str, str], ...]) -> None:
        """Keep ``order`` as an attempt that may fail over, and hear the OMS's events
        from now on; call before the order leaves for the risk guard."""
        self.store.attempts[order.client_order_id] = _Attempt(order, failover)
        if not self._following:
            self._follow_orders()

    def _follow_orders(self) -> None:
        self.directory.oms().tell(Subscribe(self.context.self, kinds=_OMS_EVENTS))
        self._following = True

    def _risk_address(self) -> Address:
        """The risk guard, resolved once: addresses are stable across restarts."""
        address = self._risk
        if address is None or not address.is_alive:
            address = self._risk = self.directory.risk()
        return address

    def _tell_strategy(self, strategy_id: str, message: Any) -> None:
        address: Address | None = self.directory.system.lookup(
            self.directory.path("core", "strategies", strategy_id)
        )
        if address is not None:
            address.tell(message)

    def _last_price(self, order: SubmitOrder | SubmitParentOrder) -> Decimal | None:
        if order.venue is None or order.venue == AUTO_VENUE:
            keys = self.store.instruments.listings(order.symbol)
        else:
            keys = ((order.venue, order.symbol),)
        for key in keys:
            quote = self.store.quotes.get(key)
            if quote is not None:
                return quote.last or quote.mid
        return None

    def _id_fits(self, client_order_id: str, venue: str) -> bool:
        entry = self.directory.venue(venue)
        if entry is None:
            return True
        rules = entry.capabilities.client_ids
        return len(client_order_id) <= rules.effective_length and set(client_order_id) <= set(
            rules.characters
        )

    def _next_id(self, venue: str) -> str:
        entry = self.directory.venue(venue)
        return self.store.ids.next(None if entry is None else entry.capabilities.client_ids)


def _id_of(order: SubmitOrder | SubmitParentOrder) -> str:
    return order.parent_id if isinstance(order, SubmitParentOrder) else order.client_order_id


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ROUTE_TEXT else text[: _MAX_ROUTE_TEXT - 3] + "..."


def router_store(
    config: NodeConfig,
    *,
    ids: ClientOrderIdFamily,
    circuit: Callable[[str], CircuitState | None],
    research: ResearchBook,
) -> RouterStore:
    """The router's node-owned memory, with the approvals a past process left pending
    (from ``<journal path>/approvals``) when the node has a journal."""
    log: ApprovalLog | None = None
    recovered: list[PendingApproval] = []
    if config.journal is not None:
        log, recovered = ApprovalLog.open(Path(config.journal.path) / "approvals")
        if recovered:
            logger.warning("approvals: %d pending approval(s) recovered", len(recovered))
    approvals = ApprovalQueue(config.approval.capacity, log)
    approvals.restore(recovered)
    return RouterStore(
        instruments=InstrumentMap(config.instruments),
        routing=config.routing,
        approval=config.approval,
        node_mode=config.execution_mode,
        approvals=approvals,
        research=research,
        ids=ids,
        circuit=circuit,
        overrides={
            strategy.id: strategy.execution_mode
            for strategy in config.strategies
            if strategy.execution_mode is not None
        },
    )


class _Node(Protocol):
    """What ``RouterControl`` needs of the node (typed here to keep layers one way)."""

    config: NodeConfig
    clock: Clock
    directory: Directory
    router_store: RouterStore

    def kill_switch(self, *, flatten: bool = False, timeout: float = 30.0) -> KillSwitchReport: ...


class RouterControl:
    """The node's Python API over the router: approvals, modes, emergency and resume.

    Asks go to the router actor, so they are ordered with the orders it handles."""

    def __init__(self, node: _Node) -> None:
        self._node = node

    def _router(self) -> Address:
        return self._node.directory.router()

    def pending(self) -> tuple[PendingApproval, ...]:
        answer = self._router().ask(GetApprovals())
        assert isinstance(answer, tuple)
        return answer

    def approve(self, approval_id: str, who: str) -> bool:
        return self._router().ask(Approve(approval_id, _who(who))) is not None

    def reject(self, approval_id: str, who: str, reason: str) -> bool:
        return (
            self._router().ask(Reject(approval_id, _who(who), reason or "no reason given"))
            is not None
        )

    def mode(self, strategy_id: str | None = None) -> ExecutionMode:
        node_mode, overrides = self._router().ask(GetExecutionModes())
        if strategy_id is None:
            return node_mode  # type: ignore[no-any-return]
        return mode_for(strategy_id, node_mode, overrides)

    def set_mode(
        self,
        mode: ExecutionMode | str | None,
        *,
        who: str,
        strategy_id: str | None,
        timeout: float,
    ) -> KillSwitchReport | None:
        wanted = None if mode is None else ExecutionMode(mode)
        if strategy_id is not None:
            if wanted is ExecutionMode.EMERGENCY:
                raise ValueError("EMERGENCY is node-wide: set it without a strategy_id")
            self._router().ask(SetExecutionMode(wanted, _who(who), strategy_id))
            return None
        if wanted is None:
            raise ValueError("the node's execution mode cannot be None")
        if wanted is ExecutionMode.EMERGENCY:
            return self.emergency(_who(who), timeout=timeout)
        if self.mode() is ExecutionMode.EMERGENCY:
            raise ValueError("the node is in EMERGENCY: an operator must resume() it")
        self._router().ask(SetExecutionMode(wanted, _who(who)))
        return None

    def emergency(self, who: str, *, timeout: float = 30.0) -> KillSwitchReport:
        """EMERGENCY: refuse every new order first, then the kill switch with flatten
        on every venue (the risk guard HALTED until ``resume``)."""
        self._router().ask(SetExecutionMode(ExecutionMode.EMERGENCY, who))
        return self._node.kill_switch(flatten=True, timeout=timeout)

    def resume(self, who: str, mode: ExecutionMode | str | None = None) -> ExecutionMode:
        configured = self._node.config.execution_mode
        if mode is not None:
            target = ExecutionMode(mode)
        elif configured is ExecutionMode.EMERGENCY:
            target = ExecutionMode.FULL_AUTO
        else:
            target = configured
        if target is ExecutionMode.EMERGENCY:
            raise ValueError("resume into EMERGENCY: use set_execution_mode")
        self._node.directory.risk().ask(
            SetTradingState(TradingState.ACTIVE, f"resumed by {_who(who)}")
        )
        self._router().ask(SetExecutionMode(target, _who(who)))
        return target

    def status(self) -> dict[str, Any]:
        answer = self._router().ask(GetRouterStatus(), timeout=5)
        assert isinstance(answer, dict)
        return answer

    def close(self) -> None:
        log = self._node.router_store.approvals.log
        if log is not None:
            log.close()


def _who(who: str) -> str:
    text = " ".join(str(who).split())
    if not text:
        raise ValueError("who: name the person deciding")
    return text[:80]
