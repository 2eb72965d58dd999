"""The circuit-breaker actor that gates each broker actor's mailbox.

Every command for a venue passes here. Submits and modifies need the
breaker's admission and a rate-limit token; cancels and queries always go
through, because refusing to cancel during an outage is how positions get
stuck. Each forwarded command is numbered and must come back as a
``BrokerReply`` before ``request_timeout``; transport failures and timeouts
count toward opening the circuit, business rejections never do.

A submit whose outcome is unknown (transport error or timeout) is never
simply re-sent: the breaker first queries the venue by client order id and
re-sends under the *same* id only if the venue does not have it *and* can no
longer accept the original (its ``AcceptanceWindow`` has closed); until then
a "not found" means "not yet", and the breaker asks again when the window
closes. A venue without a window never gets a blind re-send.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderRejected,
    QueryOrder,
    SubmitOrder,
)
from ..supervision import Actor, Address
from ._breaker_state import Admission, BreakerStats, CircuitBreaker, DeadLetterQueue, FailureKind
from ._contract import AcceptanceWindow, BrokerCommand, BrokerReply, BrokerRequest, Outcome
from ._directory import Directory
from ._rate_limit import TokenBucket, WeightedLimiter
from ._retry import Operation, RetryDecision, RetryPolicy

__all__ = [
    "BreakerActor",
    "BreakerStore",
    "GetBreakerStats",
    "ReprocessParked",
    "ResolveSubmit",
    "VenueFailureStats",
]

logger = logging.getLogger("tradenode.breaker")

CIRCUIT_OPEN_CODE = "CIRCUIT_OPEN"
NOT_PLACED_CODE = "NOT_PLACED"

_FAILURE_KIND = {
    Outcome.TRANSPORT: FailureKind.TRANSPORT,
    Outcome.TIMEOUT: FailureKind.TIMEOUT,
    Outcome.RATE_LIMITED: FailureKind.RATE_LIMITED,
    Outcome.BANNED: FailureKind.BANNED,
}

_REJECTED = Outcome.REJECTED
"""Read once: every reply is tested against it, and a member read off its enum
class pays ``EnumType``'s Python-level ``__getattr__`` hook (~80 ns)."""


@dataclass(frozen=True, slots=True)
class GetBreakerStats:
    pass


@dataclass(frozen=True, slots=True)
class ResolveSubmit:
    """An order whose fate is unknown (sent, or about to be, before a crash):
    ask the venue for it by client order id, and send it under the same id
    only if the venue does not have it."""

    order: SubmitOrder
    sent_by: float | None = None
    """A moment (node monotonic clock) by which the original had certainly left,
    if it ever did: for an order recovered from the journal, when this process
    started. None: now."""
    window: AcceptanceWindow | None = None
    """The window the original was sent under, if not the breaker's own (a
    past process may have used a longer one)."""
    resend: bool = True
    """False for the replacement half of a cancel/replace: it was sent as part
    of a replace of an order that may have filled or closed since, so when the
    venue does not have it, it is reported not placed, never sent on its own
    as a fresh order (which would buy what the old order already bought)."""


@dataclass(frozen=True, slots=True)
class ReprocessParked:
    """Re-dispatch every order parked while the circuit was open."""


@dataclass(frozen=True, slots=True)
class VenueFailureStats:
    """The seed API's ``get_failure_stats()``: breaker state plus what waits."""

    venue: str
    circuit_state: str
    failure_count: int
    consecutive_failures: int
    dlq_size: int
    rate_limited_waiting: int
    in_flight: int
    """Requests sent to the broker and not yet answered (or timed out)."""
    presumed_not_placed: int
    """Orders of unknown outcome a venue without an acceptance window still did not
    have ``unknown_outcome_timeout`` seconds after they were sent: reported not
    placed (``NOT_PLACED``), never re-sent."""
    recent_failures: tuple[str, ...]
    breaker: BreakerStats


@dataclass(slots=True)
class _Pending:
    command: BrokerCommand
    admission: Admission | None
    attempt: int
    resolving: SubmitOrder | ModifyOrder | None = None
    deadline: float = 0.0
    expires_at: float = 0.0
    """When this incarnation stops waiting for the reply: the deadline, or a
    full ``request_timeout`` after a restart (the new incarnation's own wait)."""
    accept_until: float | None = None
    """While resolving: when the venue can no longer accept the original."""
    resend: bool = True
    presumed: bool = False
    """While resolving: ``accept_until`` is the breaker's presumption (the venue
    names no acceptance window), so a "not found" after it means "not placed",
    reported as such, and never a re-send."""


@dataclass
class BreakerStore:
    """The breaker's memory, owned by the node so a restarted breaker keeps it."""

    breaker: CircuitBreaker
    bucket: TokenBucket
    retry: RetryPolicy
    dlq: DeadLetterQueue[BrokerCommand]
    pending: dict[int, _Pending] = field(default_factory=dict)
    waiting: collections.deque[BrokerCommand] = field(default_factory=collections.deque)
    next_seq: int = 0
    observers: list[Callable[[BrokerReply], None]] = field(default_factory=list)
    """Called with every reply the breaker takes in (metrics, tests); must be quick."""
    venue_limits: dict[str, WeightedLimiter] = field(default_factory=dict)
    presumed_not_placed: int = 0
    """One limiter per venue counter the broker reports (request weight, order
    count per window), fed from response headers; empty for venues that say nothing."""


class _Timeout:
    """The one request-timeout timer: due at ``at``, the earliest ``expires_at``
    of what was pending when it was armed."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class _Retry:
    __slots__ = ("accept_until", "attempt", "command", "presumed", "resend", "resolving")

    def __init__(
        self,
        command: BrokerCommand,
        attempt: int,
        resolving: SubmitOrder | ModifyOrder | None,
        accept_until: float | None = None,
        resend: bool = True,
        *,
        presumed: bool = False,
    ) -> None:
        self.command = command
        self.attempt = attempt
        self.resolving = resolving
        self.accept_until = accept_until
        self.resend = resend
        self.presumed = presumed


class _Drain:
    __slots__ = ()


class BreakerActor(Actor):
    lends_turn = True
    """It gates and forwards, never waits (``Actor.lends_turn``)."""

    def __init__(
        self,
        venue: str,
        *,
        directory: Directory,
        store: BreakerStore,
        broker_path: str,
        request_timeout: float,
        park_when_open: bool,
        acceptance: AcceptanceWindow | None = None,
        unknown_outcome_timeout: float = 60.0,
    ) -> None:
        self.venue = venue
        self.acceptance = acceptance
        self.unknown_outcome_timeout = unknown_outcome_timeout
        self.directory = directory
        self.store = store
        self.broker_path = broker_path
        self.request_timeout = request_timeout
        self.park_when_open = park_when_open
        self._drain_scheduled = False
        self._broker_address: Address | None = None
        self._timeout_armed = False
        """Whether this incarnation's one request-timeout timer is set. One timer
        for every request in flight, due at the earliest expiry, instead of one
        armed and cancelled per request: each cost a clock-heap entry, a lock
        and a cancellation on the hot path, and requests answered in time (nearly
        all of them) never needed theirs."""

    def on_start(self) -> None:
        # A new incarnation waits a full request_timeout for what is still in
        # flight (the old incarnation's timer died with it).
        pending = self.store.pending
        if pending:
            expires_at = self.directory.system.clock.monotonic() + self.request_timeout
            for entry in pending.values():
                entry.expires_at = expires_at
            self._arm_timeout(self.request_timeout, expires_at)
        if self.store.waiting:
            self._schedule_drain()

    def _broker(self) -> Address:
        # Resolved once: an address outlives the broker's restarts; only a broker
        # stopped for good (its venue removed) closes it.
        address = self._broker_address
        if address is not None and address.is_alive:
            return address
        address = self.directory.system.lookup(self.broker_path)
        if address is None:
            raise LookupError(f"breaker {self.venue}: no broker at {self.broker_path}")
        self._broker_address = address
        return address

    def receive(self, message: Any) -> Any:
        # The two messages of every order first, by exact type (what the chain
        # below would pick for them anyway, without its union isinstance checks).
        kind = type(message)
        if kind is BrokerReply:
            self._on_reply(message)
            return None
        if kind is SubmitOrder:
            self._gated(message)
            return None
        if isinstance(message, SubmitOrder | ModifyOrder):
            self._gated(message)
        elif isinstance(message, CancelOrder | QueryOrder | CancelAllOrders):
            self._send(message, admission=None, attempt=1)
        elif isinstance(message, BrokerReply):
            self._on_reply(message)
        elif isinstance(message, _Timeout):
            self._on_timeouts(message.at)
        elif isinstance(message, _Retry):
            self._on_retry(message)
        elif isinstance(message, _Drain):
            self._drain_scheduled = False
            self._drain()
        elif isinstance(message, ResolveSubmit):
            window = message.window or self.acceptance
            if message.window is not None and self.acceptance is not None:
                window = max(message.window, self.acceptance, key=lambda w: w.closes_at(0.0))
            sent_by = (
                message.sent_by
                if message.sent_by is not None
                else self.directory.system.clock.monotonic()
            )
            accept_until, presumed = self._closes(window, sent_by)
            self._send(
                _query_for(message.order),
                admission=None,
                attempt=1,
                resolving=message.order,
                accept_until=accept_until,
                resend=message.resend,
                presumed=presumed,
            )
        elif isinstance(message, ReprocessParked):
            for command in self.store.dlq.drain():
                self.receive(command)
        elif isinstance(message, GetBreakerStats):
            return self.stats()
        else:
            logger.warning(
                "breaker %s: ignoring %s",
                self.venue,
                type(message).__name__,
                extra={"venue": self.venue},
            )
        return None

    def stats(self) -> VenueFailureStats:
        breaker = self.store.breaker.stats()
        return VenueFailureStats(
            venue=self.venue,
            circuit_state=breaker.circuit_state.value,
            failure_count=breaker.failure_count,
            consecutive_failures=breaker.consecutive_failures,
            dlq_size=len(self.store.dlq),
            rate_limited_waiting=len(self.store.waiting),
            in_flight=len(self.store.pending),
            presumed_not_placed=self.store.presumed_not_placed,
            recent_failures=tuple(f"{r.kind.name}: {r.text}" for r in breaker.recent_failures),
            breaker=breaker,
        )

    # -- gating ------------------------------------------------------------------

    def _gated(self, command: SubmitOrder | ModifyOrder) -> None:
        if self.store.waiting or not self._admit_and_send(command):
            self.store.waiting.append(command)
            self._schedule_drain()

    def _admit_and_send(self, command: SubmitOrder | ModifyOrder) -> bool:
        """False when the rate limiter has no token yet (the caller keeps the command)."""
        admission = self.store.breaker.allow()
        if not admission.allowed:  # what ``Admission.__bool__`` answers, without its call
            if self.park_when_open and self.store.dlq.park(command, admission.reason):
                logger.warning(
                    "breaker %s: parked %s (%s)",
                    self.venue,
                    command.client_order_id,
                    admission.reason,
                    extra={"venue": self.venue, "client_order_id": command.client_order_id},
                )
            else:
                self._refuse(command, admission.reason)
            return True
        limiters = self.store.venue_limits
        # The venue's own counters first (most venues report none: skip the scan).
        if (limiters and any(limiter.seconds_until() > 0 for limiter in limiters.values())) or (
            not self.store.bucket.try_acquire()
        ):
            self.store.breaker.release(admission)
            return False
        for limiter in limiters.values():
            limiter.try_acquire()
        self._send(command, admission=admission, attempt=1)
        return True

    def _drain(self) -> None:
        while self.store.waiting:
            command = self.store.waiting[0]
            assert isinstance(command, SubmitOrder | ModifyOrder)
            if not self._admit_and_send(command):
                self._schedule_drain()
                return
            self.store.waiting.popleft()

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            delay = max(
                self.store.bucket.seconds_until(),
                *(limiter.seconds_until() for limiter in self.store.venue_limits.values()),
                0.001,
            )
            self.context.schedule_once(delay, _Drain())

    def _refuse(self, command: SubmitOrder | ModifyOrder, reason: str) -> None:
        oms = self.directory.oms()
        if isinstance(command, SubmitOrder):
            oms.tell(
                OrderRejected(
                    client_order_id=command.client_order_id,
                    venue=self.venue,
                    code=CIRCUIT_OPEN_CODE,
                    reason=reason,
                    ts_ns=self.context.now_ns(),
                )
            )
        else:
            oms.tell(
                ModifyRejected(
                    client_order_id=command.client_order_id,
                    venue=self.venue,
                    code=CIRCUIT_OPEN_CODE,
                    reason=reason,
                    ts_ns=self.context.now_ns(),
                )
            )

    # -- requests and replies -----------------------------------------------------

    def _send(
        self,
        command: BrokerCommand,
        *,
        admission: Admission | None,
        attempt: int,
        resolving: SubmitOrder | ModifyOrder | None = None,
        accept_until: float | None = None,
        resend: bool = True,
        presumed: bool = False,
    ) -> None:
        store = self.store
        store.next_seq += 1
        seq = store.next_seq
        deadline = self.directory.system.clock.monotonic() + self.request_timeout
        request = BrokerRequest(seq, command, self.context.self, deadline)
        # To a broker already resolved, the request goes first and its bookkeeping
        # after, so the broker's thread wakes sooner: the reply is handled on this
        # thread, after this handler, and finds the entry all the same.
        broker = self._broker_address
        told = False
        if broker is not None and broker.is_alive:
            broker.tell(request)
            told = True
        # Positional, in field order (command, admission, attempt, resolving,
        # deadline, expires_at, accept_until, resend, presumed): one per request
        # sent, and keywords cost half as much again.
        store.pending[seq] = _Pending(
            command,
            admission,
            attempt,
            resolving,
            deadline,
            deadline,
            accept_until,
            resend,
            presumed,
        )
        if not self._timeout_armed:
            # No timer means nothing else is in flight, so this expiry is the
            # earliest. (An armed timer is due no later than any request's
            # expiry: requests only join later, with later expiries.)
            self._arm_timeout(self.request_timeout, deadline)
        if not told:
            # Resolving the broker may raise (none at its path): the request is
            # pending and its timeout armed first, as for every request.
            self._broker().tell(request)

    def _arm_timeout(self, delay: float, at: float) -> None:
        self._timeout_armed = True
        self.context.schedule_once(delay, _Timeout(at))

    def _on_timeouts(self, at: float) -> None:
        """Time out every request whose expiry has come, oldest first, then arm
        the timer again for the earliest one still in flight."""
        self._timeout_armed = False
        pending = self.store.pending
        now = self.directory.system.clock.monotonic()
        # ``at`` counts as reached even if the clock reads a hair earlier: the
        # timer was set for it, and a float rounding must not postpone a timeout.
        due = max(at, now)
        for seq in [seq for seq, entry in pending.items() if entry.expires_at <= due]:
            self._on_timeout(seq)
        if pending and not self._timeout_armed:
            earliest = min(entry.expires_at for entry in pending.values())
            self._arm_timeout(earliest - now, earliest)

    def _on_reply(self, reply: BrokerReply) -> None:
        pending = self.store.pending.pop(reply.seq, None)
        if pending is None:
            return
        self._observe(reply)
        for observer in self.store.observers:
            observer(reply)
        if reply.outcome.venue_answered:
            if reply.outcome is _REJECTED:
                self.store.breaker.record_failure(
                    reply.detail, FailureKind.BUSINESS, admission=pending.admission
                )
            else:
                self.store.breaker.record_success(pending.admission)
            if pending.resolving is not None:
                self._resolved(pending, found=reply.outcome is not Outcome.NOT_FOUND)
            return
        kind = _FAILURE_KIND[reply.outcome]
        if kind is FailureKind.RATE_LIMITED:
            now = self.directory.system.clock.monotonic()
            self.store.bucket.pause_until(now + (reply.retry_after or 1.0))
            self.store.breaker.record_failure(reply.detail, kind, admission=pending.admission)
        elif kind is FailureKind.BANNED:
            self.store.breaker.record_failure(
                reply.detail, kind, admission=pending.admission, retry_after=reply.retry_after
            )
        else:
            self.store.breaker.record_failure(reply.detail, kind, admission=pending.admission)
        # The broker answered, so whatever it sent left before now.
        sent_by = min(pending.deadline, self.directory.system.clock.monotonic())
        self._after_failure(pending, kind, not_before=reply.retry_after, sent_by=sent_by)

    def _observe(self, reply: BrokerReply) -> None:
        for rate in reply.rates:
            limiter = self.store.venue_limits.get(rate.counter)
            if limiter is None:
                limiter = self.store.venue_limits[rate.counter] = WeightedLimiter(
                    monotonic=self.directory.system.clock.monotonic, headroom=0.1
                )
            limiter.observe_used_weight(
                rate.used, rate.limit, rate.window_seconds, sent_at=rate.sent_at
            )

    def _on_timeout(self, seq: int) -> None:
        pending = self.store.pending.pop(seq, None)
        if pending is None:
            return
        detail = f"no reply within {self.request_timeout}s"
        self.store.breaker.record_failure(detail, FailureKind.TIMEOUT, admission=pending.admission)
        self._after_failure(pending, FailureKind.TIMEOUT, sent_by=pending.deadline)

    def _after_failure(
        self,
        pending: _Pending,
        kind: FailureKind,
        *,
        sent_by: float,
        not_before: float | None = None,
    ) -> None:
        """Decide what follows a failed request; ``not_before`` is the venue's
        Retry-After, which no follow-up (query or re-send) may precede;
        ``sent_by`` is when the request had certainly left the broker, if it
        ever did (its deadline, or the broker's answer if that came first)."""
        command = pending.command
        retry = self.store.retry
        delay = max(retry.delay(pending.attempt), not_before or 0.0)
        if pending.resolving is not None:
            # Asking the venue about an order of unknown outcome is never given
            # up (not after a ban, not past the attempt budget): an abandoned
            # question leaves an order nobody will ever resolve.
            self.context.schedule_once(
                delay,
                _Retry(
                    command,
                    pending.attempt + 1,
                    pending.resolving,
                    pending.accept_until,
                    pending.resend,
                    presumed=pending.presumed,
                ),
            )
            return
        if isinstance(command, SubmitOrder):
            operation = Operation.SUBMIT
        elif isinstance(command, ModifyOrder):
            operation = Operation.MODIFY
        elif isinstance(command, CancelOrder | CancelAllOrders):
            operation = Operation.CANCEL
        else:
            operation = Operation.QUERY
        decision = retry.decide(operation, pending.attempt, kind, venue_has_order=None)
        if decision is RetryDecision.QUERY_FIRST:
            assert isinstance(command, SubmitOrder | ModifyOrder)
            query = _query_for(command)
            if kind is FailureKind.RATE_LIMITED:
                # A 429 is the venue's definite "not processed": nothing of it
                # can arrive later, only Retry-After must pass.
                accept_until, presumed = 0.0, False
            else:
                accept_until, presumed = self._closes(self.acceptance, sent_by)
            self.context.schedule_once(
                delay,
                _Retry(query, pending.attempt, command, accept_until, presumed=presumed),
            )
        elif decision is RetryDecision.RETRY:
            self.context.schedule_once(delay, _Retry(command, pending.attempt + 1, None))
        else:
            logger.error(
                "breaker %s: giving up on %s after %d attempt(s) (%s)",
                self.venue,
                type(command).__name__,
                pending.attempt,
                kind.name,
                extra={"venue": self.venue},
            )
            if isinstance(command, CancelOrder):
                self.directory.oms().tell(
                    CancelRejected(
                        client_order_id=command.client_order_id,
                        venue=self.venue,
                        code=kind.name,
                        reason=f"cancel not confirmed after {pending.attempt} attempt(s)",
                        ts_ns=self.context.now_ns(),
                    )
                )

    def _on_retry(self, retry: _Retry) -> None:
        command = retry.command
        if isinstance(command, SubmitOrder | ModifyOrder):
            admission = self.store.breaker.allow()
            if not admission:
                self._refuse(command, admission.reason)
                return
            self._send(command, admission=admission, attempt=retry.attempt)
        else:
            self._send(
                command,
                admission=None,
                attempt=retry.attempt,
                resolving=retry.resolving,
                accept_until=retry.accept_until,
                resend=retry.resend,
                presumed=retry.presumed,
            )

    def _resolved(self, pending: _Pending, *, found: bool) -> None:
        """A query answered whether an order of unknown outcome reached the venue."""
        original = pending.resolving
        assert original is not None
        decision = self.store.retry.decide(
            Operation.SUBMIT if isinstance(original, SubmitOrder) else Operation.MODIFY,
            pending.attempt,
            FailureKind.TRANSPORT,
            venue_has_order=found,
        )
        if decision is RetryDecision.DO_NOT_RESEND:
            logger.info(
                "breaker %s: %s reached the venue; not re-sending",
                self.venue,
                original.client_order_id,
                extra={"venue": self.venue, "client_order_id": original.client_order_id},
            )
            return
        if isinstance(original, ModifyOrder) and original.new_client_order_id is None:
            return
        if decision is RetryDecision.RETRY and not self._window_closed(pending, original):
            return
        if decision is RetryDecision.RETRY and pending.presumed:
            self.store.presumed_not_placed += 1
            logger.warning(
                "breaker %s: %s is still not at the venue %.0fs after it was sent; the venue "
                "names no acceptance window: reported not placed, never re-sent",
                self.venue,
                original.client_order_id,
                self.unknown_outcome_timeout,
                extra={"venue": self.venue, "client_order_id": original.client_order_id},
            )
            self.directory.oms().tell(
                OrderRejected(
                    client_order_id=_query_for(original).client_order_id,
                    venue=self.venue,
                    code=NOT_PLACED_CODE,
                    reason=(
                        f"not at the venue {self.unknown_outcome_timeout:g}s after it was sent "
                        "(the venue names no acceptance window); not re-sent"
                    ),
                    ts_ns=self.context.now_ns(),
                )
            )
            return
        if decision is RetryDecision.RETRY and not pending.resend:
            assert isinstance(original, SubmitOrder)
            logger.warning(
                "breaker %s: replacement %s never reached the venue; reported not placed, "
                "not sent on its own",
                self.venue,
                original.client_order_id,
                extra={"venue": self.venue, "client_order_id": original.client_order_id},
            )
            self.directory.oms().tell(
                OrderRejected(
                    client_order_id=original.client_order_id,
                    venue=self.venue,
                    code=NOT_PLACED_CODE,
                    reason="the replace it belonged to never reached the venue",
                    ts_ns=self.context.now_ns(),
                )
            )
            return
        if decision is RetryDecision.RETRY:
            logger.info(
                "breaker %s: re-sending %s under the same id",
                self.venue,
                original.client_order_id,
                extra={"venue": self.venue, "client_order_id": original.client_order_id},
            )
            self._on_retry(_Retry(original, pending.attempt + 1, None))
        elif isinstance(original, SubmitOrder):
            self._refuse(
                original, f"gave up after {pending.attempt} attempt(s); the venue does not have it"
            )

    def _closes(self, window: AcceptanceWindow | None, sent_by: float) -> tuple[float, bool]:
        """When the venue can no longer accept a request sent by ``sent_by``, and
        whether that moment is presumed (the venue names no window: then
        ``unknown_outcome_timeout`` after it was sent)."""
        if window is None:
            return sent_by + self.unknown_outcome_timeout, True
        return window.closes_at(sent_by), False

    def _window_closed(self, pending: _Pending, original: SubmitOrder | ModifyOrder) -> bool:
        """Whether the venue can no longer accept the original; if it still can,
        ask again once it cannot (the window presumed when the venue names none)."""
        client_order_id = _query_for(original).client_order_id
        assert pending.accept_until is not None, "a resolving query always has a window"
        now = self.directory.system.clock.monotonic()
        if now >= pending.accept_until:
            return True
        logger.info(
            "breaker %s: %s is not at the venue yet; it may still arrive for %.3fs, "
            "asking again then",
            self.venue,
            client_order_id,
            pending.accept_until - now,
            extra={"venue": self.venue, "client_order_id": client_order_id},
        )
        self.context.schedule_once(
            pending.accept_until - now,
            _Retry(
                _query_for(original),
                pending.attempt,
                original,
                pending.accept_until,
                pending.resend,
                presumed=pending.presumed,
            ),
        )
        return False


def _query_for(command: SubmitOrder | ModifyOrder) -> QueryOrder:
    if isinstance(command, ModifyOrder) and command.new_client_order_id is not None:
        client_order_id = command.new_client_order_id
    else:
        client_order_id = command.client_order_id
    return QueryOrder(client_order_id=client_order_id, venue=command.venue, symbol=command.symbol)
