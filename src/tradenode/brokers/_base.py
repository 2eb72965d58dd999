"""The shared half of the broker actor contract, owned once for every adapter.

Every venue adapter's actor speaks the same contract to its circuit breaker
(``tradenode.actors._contract``; the rules are in docs/architecture.md, "The
broker actor contract"). Half of it does not depend on the venue at all, and
each adapter used to write it again, with small differences that were bugs
waiting to happen. :class:`BrokerBase` owns that half:

- **the deadline check**: a request that waited in the mailbox past its
  deadline is answered ``TIMEOUT`` and never sent (the breaker has already
  treated it as timed out and may have re-sent the order under the same id);
  :func:`refuse_if_expired` is the same check for an adapter that sends off
  the actor's thread, right before it signs or sends;
- **one request at a time per order**: a cancel or a replace waits until the
  request in flight for the same client order id is answered, or the venue
  would be asked about an order it has not seen yet; waiting requests are
  answered ``TRANSPORT`` if the incarnation ends before they go;
- **reject plus reply**: a business refusal is told to the OMS as a typed
  rejection *and* answered ``REJECTED`` to the breaker (never counted as a
  transport failure), except that a refused repeat never rejects an order
  the venue has live;
- **quote fan-out** to every ``QuoteSubscription`` that wants the quote;
- **rate observations**: the venue counters an answer carried ride on every
  reply sent while it is being handled;
- **the link's counters** (connections, reconciliations, malformed payloads)
  in :class:`BrokerLink`, which the node owns so they survive restarts.

The adapter implements the other half: connect and reconcile (``on_start``),
``submit``, ``cancel``, ``modify``, ``query``, ``cancel_all``, its streams
(``on_message`` for whatever its session delivers, ``on_subscribed`` to
start streaming a subscription's symbols) and ``disconnect``. A hook answers
at once by returning a :class:`BrokerReply`, or returns :data:`IN_FLIGHT`
after starting the work elsewhere; the adapter then replies with
:meth:`BrokerBase.send_reply` inside :meth:`BrokerBase.completing`, which
lets the order's next request go.

Nothing here does I/O or knows a venue: no trio, no httpx, no adapter
imports. The paper broker, which has no network at all, is built on it as
much as the Binance one.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeAlias, TypeVar

from .._exceptions import BrokerConnectionError, BrokerTimeoutError
from ..actors._contract import (
    BrokerReply,
    BrokerRequest,
    Outcome,
    QuoteSubscription,
    RateObservation,
    TradeSubscription,
)
from ..messages._market import MarketTrade
from ..messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderRejected,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ..supervision import Actor

if TYPE_CHECKING:
    from ..supervision import Address

__all__ = [
    "IN_FLIGHT",
    "UNKNOWN_AT_VENUE",
    "Answer",
    "BrokerBase",
    "BrokerLink",
    "InFlight",
    "Rejection",
    "order_keys",
    "refuse_if_expired",
]

Rejection: TypeAlias = type[OrderRejected] | type[CancelRejected] | type[ModifyRejected]
"""The typed rejections :meth:`BrokerBase.reject` tells the OMS."""


@dataclass
class BrokerLink:
    """What every broker connection remembers across its actor's incarnations.

    Owned by the node, handed to each incarnation: a restart replaces the
    behaviour, never these. Adapters subclass it with their own cursors
    (``PaperLink``, ``BinanceLink``).
    """

    subscriptions: list[QuoteSubscription] = field(default_factory=list)
    """Who gets which quotes; a new incarnation streams them again."""
    trade_subscriptions: list[TradeSubscription] = field(default_factory=list)
    """Who gets which prints of the public tape (one subscription per subscriber)."""
    malformed_payloads: int = 0
    """Payloads the venue sent that could not be read (logged, counted, skipped)."""
    reconciliations: int = 0
    """Reconciliations applied (at connect, and periodic ones where the adapter has them)."""
    connections: int = 0
    """Connections opened: one per incarnation that got as far as connecting."""
    _reconciled: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def note_connected(self) -> None:
        self.connections += 1

    def note_reconciled(self) -> None:
        with self._reconciled:
            self.reconciliations += 1
            self._reconciled.notify_all()

    def wait_for_reconciliations(self, count: int, timeout: float | None = None) -> bool:
        """Block until ``count`` reconciliations (at connect or periodic) have been
        applied: how an operator or a benchmark knows the venue is caught up."""
        with self._reconciled:
            return self._reconciled.wait_for(lambda: self.reconciliations >= count, timeout)


class InFlight:
    """The type of :data:`IN_FLIGHT`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "IN_FLIGHT"


IN_FLIGHT: Final = InFlight()
"""A hook's answer meaning "started; the reply comes later, in ``completing``"."""

UNKNOWN_AT_VENUE: Final = "UNKNOWN_AT_VENUE"
"""The code of the rejection :meth:`BrokerBase.report_unknown_at_venue` tells."""

Answer: TypeAlias = BrokerReply | InFlight
"""What a request hook returns: the reply now, or :data:`IN_FLIGHT`."""

L = TypeVar("L", bound=BrokerLink)


def order_keys(command: object) -> tuple[str, ...]:
    """The client order ids a command touches: requests sharing one go one at a time.

    A replace touches both the order it replaces and its replacement; a
    cancel-all touches none (it never waits, and nothing waits for it)."""
    if isinstance(command, ModifyOrder) and command.new_client_order_id is not None:
        return (command.client_order_id, command.new_client_order_id)
    if isinstance(command, SubmitOrder | CancelOrder | ModifyOrder | QueryOrder):
        return (command.client_order_id,)
    return ()


def refuse_if_expired(request: BrokerRequest, monotonic: Callable[[], float]) -> None:
    """Raise ``BrokerTimeoutError`` if ``request``'s deadline has passed: nothing is sent.

    :class:`BrokerBase` checks the deadline before a request's hook runs; an
    adapter that sends later, off the actor's thread, checks again with this
    right before it signs or sends, with nothing that waits in between. The
    breaker reckons when the venue can no longer accept a request from its
    deadline (``AcceptanceWindow``), which holds only if nothing leaves after it.
    """
    if request.expired(monotonic()):
        raise BrokerTimeoutError(
            "the request's deadline passed before it was sent; not sent",
            broker=request.command.venue or None,
        )


class BrokerBase(Actor, abc.ABC, Generic[L]):
    """A broker actor's venue-independent half (see the module docstring).

    Subclasses set ``log`` to their adapter's logger, call
    ``super().__init__(name, reports_to=..., link=...)``, and implement the
    abstract hooks. ``receive`` is the base's: requests and subscriptions are
    handled here, anything else goes to :meth:`on_message`.
    """

    log: ClassVar[logging.Logger] = logging.getLogger("tradenode.brokers")

    def __init__(self, name: str, *, reports_to: Address, link: L) -> None:
        self.name = name
        self.reports_to = reports_to
        self.link = link
        self._busy: dict[str, int] = {}
        """Client order id -> seq of the request in flight for it."""
        self._deferred: dict[str, collections.deque[BrokerRequest]] = {}
        """Client order id -> requests waiting for that one, in arrival order."""
        self._io: dict[int, Callable[[], None]] = {}
        """Seq -> ``done`` of an in-flight request's quiescence count (``begin_io``)."""

    # -- the adapter's half ---------------------------------------------------------------

    @abc.abstractmethod
    def on_start(self) -> None:
        """Connect, then reconcile with the venue (fills since the link's cursor,
        every open or unsettled order), before the first request is handled.
        Raise if that fails: the supervisor restarts the actor with backoff."""

    @abc.abstractmethod
    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        """Place an order."""

    @abc.abstractmethod
    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        """Cancel one order."""

    @abc.abstractmethod
    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        """Amend an order natively, or cancel/replace it under ``new_client_order_id``."""

    @abc.abstractmethod
    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        """Ask for an order's status (and trades); the reply carries the report."""

    @abc.abstractmethod
    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        """Cancel every open order (of ``command.symbol``, when given)."""

    def on_message(self, message: Any) -> Any:
        """Anything that is not a request or a subscription: the adapter's streams,
        its own timers, answers coming back from its I/O. The return value
        answers an ``ask``."""
        self.log.warning(
            "%s: ignoring unexpected %s",
            self.name,
            type(message).__name__,
            extra={"venue": self.name},
        )

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        """A subscription was added to the link: start streaming its symbols."""

    def on_trades_subscribed(self, subscription: TradeSubscription) -> None:
        """A trade subscription was added to the link: start streaming the public
        tape of its symbols (where the venue declares ``MarketDataKind.TRADES``)."""

    def disconnect(self) -> None:
        """Close this incarnation's connection (called from ``on_stop``)."""

    def live_at_venue(self, client_order_id: str) -> bool:
        """Whether the venue is known to hold ``client_order_id``: then a refused
        repeat of its submit (a re-send, a retried replace) does not reject it."""
        return False

    # -- the runtime's hooks ----------------------------------------------------------------

    def receive(self, message: Any) -> Any:
        if isinstance(message, BrokerRequest):
            self._on_request(message)
        elif isinstance(message, QuoteSubscription):
            self.link.subscriptions.append(message)
            self.on_subscribed(message)
        elif isinstance(message, TradeSubscription):
            subscriptions = self.link.trade_subscriptions
            subscriptions[:] = [s for s in subscriptions if s.subscriber != message.subscriber]
            subscriptions.append(message)
            self.on_trades_subscribed(message)
        else:
            return self.on_message(message)
        return None

    def on_stop(self) -> None:
        """Answer what never left (the breaker must not wait for it), then disconnect."""
        for waiting in self._deferred.values():
            for request in waiting:
                request.reply_to.tell(
                    BrokerReply(request.seq, Outcome.TRANSPORT, "broker restarted before sending")
                )
        self._deferred.clear()
        self.disconnect()

    # -- requests -------------------------------------------------------------------------------

    def monotonic(self) -> float:
        """The node's monotonic clock, which request deadlines are on."""
        return self.context.system.clock.monotonic()

    def _on_request(self, request: BrokerRequest) -> None:
        keys = order_keys(request.command)
        if self._busy:  # nothing in flight (always so for a synchronous venue): no scan
            busy = next((key for key in keys if key in self._busy), None)
            if busy is not None:
                self._deferred.setdefault(busy, collections.deque()).append(request)
                return
        if self._dispatch(request):
            self._io[request.seq] = self.context.begin_io(f"request {request.seq}")
            for key in keys:
                self._busy[key] = request.seq

    def _dispatch(self, request: BrokerRequest) -> bool:
        """Hand ``request`` to its hook; True while its answer is still to come."""
        command = request.command
        if request.expired(self.monotonic()):
            self.log.warning(
                "%s: request %d (%s) expired in the mailbox; not sent",
                self.name,
                request.seq,
                type(command).__name__,
                extra={"venue": self.name},
            )
            self.send_reply(request, BrokerReply(request.seq, Outcome.TIMEOUT, "expired unsent"))
            return False
        try:
            answer = self._handle(request)
        except BrokerConnectionError as exc:
            # Sent or not, nobody knows: the breaker asks the venue before any re-send.
            self.log.warning(
                "%s: request %d failed in transport: %s",
                self.name,
                request.seq,
                exc,
                extra={"venue": self.name},
            )
            answer = BrokerReply(request.seq, Outcome.TRANSPORT, str(exc))
        if isinstance(answer, InFlight):
            return True
        self.send_reply(request, answer)
        return False

    def _handle(self, request: BrokerRequest) -> Answer:
        command = request.command
        if isinstance(command, SubmitOrder):
            return self.submit(request, command)
        if isinstance(command, CancelOrder):
            return self.cancel(request, command)
        if isinstance(command, ModifyOrder):
            return self.modify(request, command)
        if isinstance(command, QueryOrder):
            return self.query(request, command)
        if isinstance(command, CancelAllOrders):
            return self.cancel_all(request, command)
        raise TypeError(f"{self.name}: not a broker command: {command!r}")

    @contextlib.contextmanager
    def completing(self, request: BrokerRequest) -> Iterator[None]:
        """Around the handling of an in-flight request's answer: when it ends (even
        by an exception), the request no longer counts as I/O in flight and the next
        request waiting for the same order goes."""
        try:
            yield
        finally:
            self._release(request)

    def _release(self, request: BrokerRequest) -> None:
        done = self._io.pop(request.seq, None)
        if done is not None:
            done()
        for key in order_keys(request.command):
            if self._busy.get(key) != request.seq:
                continue
            del self._busy[key]
            waiting = self._deferred.get(key)
            if waiting:
                following = waiting.popleft()
                if not waiting:
                    del self._deferred[key]
                self._on_request(following)

    def send_reply(
        self,
        request: BrokerRequest,
        reply: BrokerReply,
        *,
        rates: tuple[RateObservation, ...] = (),
    ) -> None:
        """Answer the breaker; ``rates`` (what the venue said about its counters in
        the answer being handled) ride along unless the reply carries its own."""
        if rates and not reply.rates:
            reply = dataclasses.replace(reply, rates=rates)
        request.reply_to.tell(reply)

    def report_unknown_at_venue(
        self,
        client_order_id: str,
        reason: str = "the venue has no order with this client order id",
    ) -> None:
        """Reject an order the journal says was live and the venue has never heard of.

        Reconciliation found nothing under its id. An order of unknown outcome
        is the breaker's to resolve (it asks the venue and waits out the
        acceptance window); one a previous process saw live is told here,
        since nobody else will (``OrderRejected``, code :data:`UNKNOWN_AT_VENUE`).
        """
        self.log.warning(
            "%s: %s is unknown at the venue",
            self.name,
            client_order_id,
            extra={"venue": self.name, "client_order_id": client_order_id},
        )
        self.reports_to.tell(
            OrderRejected(
                client_order_id=client_order_id,
                venue=self.name,
                code=UNKNOWN_AT_VENUE,
                reason=reason,
                ts_ns=self.context.now_ns(),
            )
        )

    def reject(
        self,
        request: BrokerRequest,
        kind: Rejection,
        client_order_id: str,
        code: str,
        reason: str,
        *,
        detail: str | None = None,
    ) -> BrokerReply:
        """Tell the OMS the venue's refusal (``kind`` with the venue's own ``code``)
        and return the ``REJECTED`` reply for the breaker (``detail``, by default
        ``"<code>: <reason>"``). A refused submit of an order the venue has live
        (a re-send, a retried replace) is not told: rejecting it would orphan a
        live order, and the venue's own reports keep telling its story."""
        if kind is OrderRejected and self.live_at_venue(client_order_id):
            self.log.warning(
                "%s: %s refused again (%s %s) but it is live at the venue; not rejecting it",
                self.name,
                client_order_id,
                code,
                reason,
                extra={"venue": self.name, "client_order_id": client_order_id},
            )
        else:
            self.reports_to.tell(
                kind(
                    client_order_id=client_order_id,
                    venue=self.name,
                    code=code,
                    reason=reason,
                    ts_ns=self.context.now_ns(),
                )
            )
        return BrokerReply(
            request.seq, Outcome.REJECTED, f"{code}: {reason}" if detail is None else detail
        )

    # -- streams ------------------------------------------------------------------------------

    def publish_quote(self, quote: Quote) -> None:
        """Tell ``quote`` to every subscription that wants it."""
        for subscription in self.link.subscriptions:
            if subscription.wants(quote):
                subscription.subscriber.tell(quote)

    def publish_trade(self, trade: MarketTrade) -> None:
        """Tell a print of the public tape to every subscription that wants it; a
        subscriber that stopped for good is forgotten (algorithms come and go)."""
        subscriptions = self.link.trade_subscriptions
        if any(not s.subscriber.is_alive for s in subscriptions):
            subscriptions[:] = [s for s in subscriptions if s.subscriber.is_alive]
        for subscription in subscriptions:
            if subscription.wants(trade):
                subscription.subscriber.tell(trade)

    def note_malformed(self, error: object) -> None:
        """A payload that could not be read: never dropped silently. Logged and
        counted; the adapter decides whether to skip it or fail."""
        self.link.malformed_payloads += 1
        self.log.error(
            "%s: dropped a malformed payload: %s", self.name, error, extra={"venue": self.name}
        )
