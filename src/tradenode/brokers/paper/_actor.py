"""The paper broker actor: the broker contract over a ``PaperSession``.

The venue-independent half of the contract (deadlines, one request at a time
per order, reject plus reply, quote fan-out, the link's counters) is
:class:`~tradenode.brokers.BrokerBase`'s; this is the paper venue's half:
connect and reconcile, the five requests, each answered at once (the paper
session is synchronous), and the session's event stream.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..._exceptions import BrokerConnectionError, MalformedPayloadError
from ...actors._contract import BrokerReply, BrokerRequest, Outcome
from ...messages._enums import TimeInForce
from ...messages._market import MarketTrade
from ...messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderFilled,
    OrderRejected,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...sim import (
    SimAccepted,
    SimAmended,
    SimCanceled,
    SimExpired,
    SimFill,
    SimOrderStatus,
    SimRejectCode,
    SimRejected,
)
from ...supervision import Address
from .._base import Answer, BrokerBase, BrokerLink, Rejection
from ._codec import (
    accepted_to_message,
    fill_to_message,
    stream_event_to_message,
    to_status_report,
)
from ._venue import CorruptEvent, PaperSession, PaperVenue, SessionClosed, TapePrint

__all__ = ["PaperBroker", "PaperLink"]

logger = logging.getLogger("tradenode.brokers.paper")

_OK = Outcome.OK
"""Read once: every submit answers it, and a member read off its enum class pays
``EnumType``'s Python-level ``__getattr__`` hook (~80 ns)."""


@dataclass
class PaperLink(BrokerLink):
    """What the connection remembers across the broker actor's incarnations.

    Like a real adapter's cursor (the last execution it forwarded), it lets a
    new incarnation fetch exactly what happened while it was down. The
    subscriptions and counters are :class:`~tradenode.brokers.BrokerLink`'s.
    """

    last_trade_id: int | None = None
    in_flight: set[str] = field(default_factory=set)


class _StreamBatch:
    __slots__ = ("events", "session")

    def __init__(self, session: PaperSession, events: list[object]) -> None:
        self.session = session
        self.events = events


class PaperBroker(BrokerBase[PaperLink]):
    lends_turn = True
    """The embedded venue answers at once, on the caller's thread, under its own
    lock; a lent request's events are forwarded after it as on this actor's
    thread (``sink``; ``Actor.lends_turn``)."""
    log = logger

    def __init__(
        self,
        venue: PaperVenue,
        *,
        reports_to: Address,
        link: PaperLink,
        amend_natively: bool = True,
    ) -> None:
        super().__init__(venue.name, reports_to=reports_to, link=link)
        self.venue = venue
        self.amend_natively = amend_natively
        self.session: PaperSession | None = None
        self._inline: list[object] | None = None
        """While a request is handled: the events its own session call streamed,
        forwarded once the request is answered (see ``receive``)."""
        self._inline_thread: int | None = None
        self._batches_handled = 0
        """Batches of the current session handled so far; written only in this actor's handlers."""

    def on_start(self) -> None:
        me = self.context.self
        holder: list[PaperSession] = []
        told = [0]

        def sink(events: Any) -> None:
            # A request's own events stream synchronously on the thread handling
            # it, this actor's or one it lent its turn to (latency 0, under the
            # venue's lock, which orders every delivery).
            # Telling them to ourselves costs a message per order; they are kept
            # for after the request instead, but only when every batch told
            # before has been handled, so nothing overtakes an earlier batch.
            # Another thread's identity never equals this actor's, so a delivery
            # from the tick or clock thread always goes by message.
            inline = self._inline
            if (
                inline is not None
                and self._inline_thread == threading.get_ident()
                and told[0] == self._batches_handled
            ):
                inline.extend(events)
                return
            told[0] += 1
            me.tell(_StreamBatch(holder[0], list(events)))

        session = self.venue.connect(sink)
        holder.append(session)
        self.session = session
        self.link.note_connected()
        self._reconcile(session)

    def disconnect(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def _reconcile(self, session: PaperSession) -> None:
        """Catch up on everything that happened while no session was listening."""
        unsettled = set(self.link.in_flight)
        fills = session.fills_after(self.link.last_trade_id)
        for fill in fills:
            self._forward_stream_event(fill)
        reported = set()
        # An order this link did not send (another client's, or one a past
        # process placed) has fills the OMS cannot apply before it knows the
        # order: report the order, then its fills again (the OMS applies a
        # fill once per execution id, so the repeat is harmless for ours).
        for order in session.orders(sorted({f.client_order_id for f in fills} - unsettled)):
            self.reports_to.tell(to_status_report(self.name, order))
            reported.add(order.client_order_id)
            for fill in session.fills_for(order.client_order_id):
                self._forward_stream_event(fill)
        for order in session.open_orders():
            if order.client_order_id not in reported:
                self.reports_to.tell(to_status_report(self.name, order))
                reported.add(order.client_order_id)
        for order in session.orders(sorted(unsettled - reported)):
            self.reports_to.tell(to_status_report(self.name, order))
            if not order.status.is_open:
                self.link.in_flight.discard(order.client_order_id)
        self.link.note_reconciled()

    def receive(self, message: Any) -> Any:
        if not isinstance(message, BrokerRequest):
            return super().receive(message)
        inline: list[object] = []
        self._inline, self._inline_thread = inline, threading.get_ident()
        try:
            # What the base's ``receive`` does with a request (and answers None),
            # without testing its type a second time.
            self._on_request(message)
        finally:
            self._inline = self._inline_thread = None
        # The reply went first, as when the events came back as a message. On an
        # exception they are dropped, as a queued batch would be: the next
        # incarnation's session ignores it and reconciliation fetches the fills.
        self._forward_events(inline)
        return None

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _StreamBatch):
            self._on_stream(message)
            return None
        return super().on_message(message)

    # -- the stream ---------------------------------------------------------------

    def _on_stream(self, batch: _StreamBatch) -> None:
        if batch.session is not self.session:
            return
        self._batches_handled += 1
        self._forward_events(batch.events)

    def _forward_events(self, events: list[object]) -> None:
        for event in events:
            if isinstance(event, SessionClosed):
                raise BrokerConnectionError(f"stream closed: {event.reason}", broker=self.name)
            self._forward_stream_event(event)

    def _forward_stream_event(self, event: object) -> None:
        # Every order's two events first, by exact type: what the general path
        # below does with them, without its chain of isinstance tests (a
        # subclass, never sent by the venue, still takes the general path).
        if type(event) is SimAccepted:
            # An acceptance ends no order and moves no cursor: only told.
            self.reports_to.tell(accepted_to_message(self.name, event))
            return
        if type(event) is SimFill:
            self._forward_fill(event)
            return
        if isinstance(event, TapePrint) and not self.link.trade_subscriptions:
            # Nobody follows the tape: the MarketTrade would be built (and
            # validated) only to be dropped. A print is the venue's own record
            # of a trade, not a payload read off a wire, so skipping it hides
            # nothing malformed.
            return
        try:
            if isinstance(event, CorruptEvent):
                raise MalformedPayloadError(f"cannot parse {event.payload!r}", broker=self.name)
            message = stream_event_to_message(self.name, event)
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            return
        if message is None:
            return
        if isinstance(message, Quote):
            self.publish_quote(message)
            return
        if isinstance(message, MarketTrade):
            self.publish_trade(message)
            return
        if isinstance(message, OrderFilled):
            assert isinstance(event, SimFill)  # the codec makes an OrderFilled of nothing else
            self._note_trade(event.trade_id)
        closed = _closed_order(event)
        if closed is not None:
            # Only orders that may still change need a status check after a
            # restart; keeping every id ever sent grew without bound.
            self.link.in_flight.discard(closed)
        self.reports_to.tell(message)

    def _forward_fill(self, fill: SimFill) -> None:
        """``_forward_stream_event`` of a ``SimFill``, without its type tests."""
        message = fill_to_message(self.name, fill)
        self._note_trade(fill.trade_id)
        if fill.leaves_quantity <= 0:  # ``_closed_order``: the order's last fill
            self.link.in_flight.discard(fill.client_order_id)
        self.reports_to.tell(message)

    def _note_trade(self, trade_id: int) -> None:
        """Move the link's cursor to ``trade_id`` (what the execution id was built from)."""
        last = self.link.last_trade_id
        if last is None or trade_id > last:
            self.link.last_trade_id = trade_id

    # -- requests: each answered at once ------------------------------------------------

    def _session(self) -> PaperSession:
        assert self.session is not None
        return self.session

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        self.link.in_flight.add(command.client_order_id)
        refusal = _refusal(self._session().submit(command))
        if refusal is not None:
            self.link.in_flight.discard(command.client_order_id)
            return self._refuse(request, OrderRejected, command.client_order_id, refusal)
        return BrokerReply(request.seq, _OK)

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        refusal = _refusal(self._session().cancel(command.client_order_id))
        if refusal is not None:
            return self._refuse(request, CancelRejected, command.client_order_id, refusal)
        return BrokerReply(request.seq, Outcome.OK)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        session = self._session()
        order = session.query(command.client_order_id)
        if order is None:
            return BrokerReply(
                request.seq,
                Outcome.NOT_FOUND,
                f"{command.client_order_id} unknown at {self.name}",
            )
        # A query answers with the order's trades too, as an adapter would
        # fetch them, so a status that shows fills never arrives without them.
        for fill in session.fills_for(command.client_order_id):
            self._forward_stream_event(fill)
        report = to_status_report(self.name, order)
        self.reports_to.tell(report)
        return BrokerReply(request.seq, Outcome.OK, report=report)

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        session = self._session()
        for order in session.open_orders():
            if command.symbol is None or order.symbol == command.symbol:
                session.cancel(order.client_order_id)
        return BrokerReply(request.seq, Outcome.OK)

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        session, seq = self._session(), request.seq
        if self.amend_natively or command.new_client_order_id is None:
            refusal = _refusal(
                session.amend(
                    command.client_order_id,
                    quantity=command.quantity,
                    price=command.price,
                    stop_price=command.stop_price,
                )
            )
            if refusal is not None:
                return self._refuse(request, ModifyRejected, command.client_order_id, refusal)
            return BrokerReply(seq, Outcome.OK)
        original = session.query(command.client_order_id)
        if original is None or not original.status.is_open:
            return self._refuse(
                request,
                ModifyRejected,
                command.client_order_id,
                SimRejected(
                    command.client_order_id, SimRejectCode.UNKNOWN_ORDER, "order is not open", 0
                ),
            )
        events = session.cancel(command.client_order_id)
        refusal = _refusal(events)
        if refusal is not None:
            return self._refuse(request, ModifyRejected, command.client_order_id, refusal)
        canceled = next(e for e in events if isinstance(e, SimCanceled))
        total = command.quantity if command.quantity is not None else original.quantity
        remaining = total - canceled.filled_quantity
        if remaining <= Decimal(0):
            return BrokerReply(seq, Outcome.OK, "nothing left to replace")
        self.link.in_flight.add(command.new_client_order_id)
        replacement = SubmitOrder(
            client_order_id=command.new_client_order_id,
            strategy_id="replace",
            venue=self.name,
            symbol=original.symbol,
            side=original.side,
            order_type=original.order_type,
            quantity=remaining,
            price=command.price if command.price is not None else original.price,
            stop_price=command.stop_price
            if command.stop_price is not None
            else original.stop_price,
            trailing_offset=original.trailing_offset,
            time_in_force=original.time_in_force,
            expire_time_ns=original.expire_time_ns
            if original.time_in_force is TimeInForce.GTD
            else None,
            post_only=original.post_only,
        )
        refusal = _refusal(session.submit(replacement))
        if refusal is not None:
            return self._refuse(request, OrderRejected, command.new_client_order_id, refusal)
        return BrokerReply(seq, Outcome.OK)

    def _refuse(
        self,
        request: BrokerRequest,
        kind: Rejection,
        client_order_id: str,
        refusal: SimRejected,
    ) -> BrokerReply:
        code = refusal.code.value
        return self.reject(
            request,
            kind,
            client_order_id,
            code,
            refusal.reason or code,
            detail=f"{code}: {refusal.reason}",
        )


def _refusal(events: list[object]) -> SimRejected | None:
    return next((e for e in events if isinstance(e, SimRejected)), None)


def _closed_order(event: object) -> str | None:
    """The client order id a venue event ends (nothing more will come for it)."""
    if isinstance(event, SimFill):
        return event.client_order_id if event.leaves_quantity <= 0 else None
    if isinstance(event, SimAmended):
        return event.client_order_id if event.status is SimOrderStatus.FILLED else None
    if isinstance(event, SimCanceled | SimExpired | SimRejected):
        return event.client_order_id
    return None
