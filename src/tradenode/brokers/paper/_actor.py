"""The paper broker actor: the broker contract over a ``PaperSession``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..._exceptions import BrokerConnectionError, MalformedPayloadError
from ...actors._contract import BrokerReply, BrokerRequest, Outcome, QuoteSubscription
from ...messages._enums import TimeInForce
from ...messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    Message,
    ModifyOrder,
    ModifyRejected,
    OrderFilled,
    OrderRejected,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...sim import (
    SimAmended,
    SimCanceled,
    SimExpired,
    SimFill,
    SimOrderStatus,
    SimRejectCode,
    SimRejected,
)
from ...supervision import Actor, Address
from ._codec import stream_event_to_message, to_status_report
from ._venue import CorruptEvent, PaperSession, PaperVenue, SessionClosed

__all__ = ["PaperBroker", "PaperLink"]

logger = logging.getLogger("tradenode.brokers.paper")


@dataclass
class PaperLink:
    """What the connection remembers across the broker actor's incarnations.

    Like a real adapter's cursor (the last execution it forwarded), it lets a
    new incarnation fetch exactly what happened while it was down.
    """

    last_trade_id: int | None = None
    in_flight: set[str] = field(default_factory=set)
    subscriptions: list[QuoteSubscription] = field(default_factory=list)
    malformed_payloads: int = 0
    reconciliations: int = 0


class _StreamBatch:
    __slots__ = ("events", "session")

    def __init__(self, session: PaperSession, events: list[object]) -> None:
        self.session = session
        self.events = events


class PaperBroker(Actor):
    def __init__(
        self,
        venue: PaperVenue,
        *,
        reports_to: Address,
        link: PaperLink,
        amend_natively: bool = True,
    ) -> None:
        self.venue = venue
        self.reports_to = reports_to
        self.link = link
        self.amend_natively = amend_natively
        self.session: PaperSession | None = None

    @property
    def name(self) -> str:
        return self.venue.name

    def on_start(self) -> None:
        me = self.context.self
        holder: list[PaperSession] = []

        def sink(events: Any) -> None:
            me.tell(_StreamBatch(holder[0], list(events)))

        session = self.venue.connect(sink)
        holder.append(session)
        self.session = session
        self._reconcile(session)

    def on_stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def _reconcile(self, session: PaperSession) -> None:
        """Catch up on everything that happened while no session was listening."""
        unsettled = set(self.link.in_flight)
        for fill in session.fills_after(self.link.last_trade_id):
            self._forward_stream_event(fill)
        reported = set()
        for order in session.open_orders():
            self.reports_to.tell(to_status_report(self.name, order))
            reported.add(order.client_order_id)
        for order in session.orders(sorted(unsettled - reported)):
            self.reports_to.tell(to_status_report(self.name, order))
            if not order.status.is_open:
                self.link.in_flight.discard(order.client_order_id)
        self.link.reconciliations += 1

    def receive(self, message: Any) -> Any:
        if isinstance(message, _StreamBatch):
            self._on_stream(message)
        elif isinstance(message, BrokerRequest):
            self._on_request(message)
        elif isinstance(message, QuoteSubscription):
            self.link.subscriptions.append(message)
        else:
            logger.warning("%s: ignoring unexpected %s", self.name, type(message).__name__)

    # -- the stream ---------------------------------------------------------------

    def _on_stream(self, batch: _StreamBatch) -> None:
        if batch.session is not self.session:
            return
        for event in batch.events:
            if isinstance(event, SessionClosed):
                raise BrokerConnectionError(f"stream closed: {event.reason}", broker=self.name)
            self._forward_stream_event(event)

    def _forward_stream_event(self, event: object) -> None:
        try:
            if isinstance(event, CorruptEvent):
                raise MalformedPayloadError(f"cannot parse {event.payload!r}", broker=self.name)
            message = stream_event_to_message(self.name, event)
        except MalformedPayloadError:
            self.link.malformed_payloads += 1
            logger.exception("%s: dropped a malformed payload", self.name)
            return
        if message is None:
            return
        if isinstance(message, Quote):
            for subscription in self.link.subscriptions:
                if subscription.wants(message):
                    subscription.subscriber.tell(message)
            return
        if isinstance(message, OrderFilled):
            trade_id = int(message.execution_id.rsplit("-", 1)[1])
            if self.link.last_trade_id is None or trade_id > self.link.last_trade_id:
                self.link.last_trade_id = trade_id
        closed = _closed_order(event)
        if closed is not None:
            # Only orders that may still change need a status check after a
            # restart; keeping every id ever sent grew without bound.
            self.link.in_flight.discard(closed)
        self.reports_to.tell(message)

    # -- requests -------------------------------------------------------------------

    def _on_request(self, request: BrokerRequest) -> None:
        session = self.session
        assert session is not None
        if request.expired(self.context.system.clock.monotonic()):
            logger.warning(
                "%s: request %d expired in the mailbox; not sent", self.name, request.seq
            )
            request.reply_to.tell(BrokerReply(request.seq, Outcome.TIMEOUT, "expired unsent"))
            return
        try:
            reply = self._execute(session, request)
        except BrokerConnectionError as exc:
            logger.warning("%s: request %d failed in transport: %s", self.name, request.seq, exc)
            reply = BrokerReply(request.seq, Outcome.TRANSPORT, str(exc))
        request.reply_to.tell(reply)

    def _execute(self, session: PaperSession, request: BrokerRequest) -> BrokerReply:
        command, seq = request.command, request.seq
        if isinstance(command, SubmitOrder):
            self.link.in_flight.add(command.client_order_id)
            refusal = _refusal(session.submit(command))
            if refusal is not None:
                self.link.in_flight.discard(command.client_order_id)
                return self._reject(seq, OrderRejected, command.client_order_id, refusal)
            return BrokerReply(seq, Outcome.OK)
        if isinstance(command, CancelOrder):
            refusal = _refusal(session.cancel(command.client_order_id))
            if refusal is not None:
                return self._reject(seq, CancelRejected, command.client_order_id, refusal)
            return BrokerReply(seq, Outcome.OK)
        if isinstance(command, ModifyOrder):
            return self._modify(session, seq, command)
        if isinstance(command, QueryOrder):
            order = session.query(command.client_order_id)
            if order is None:
                return BrokerReply(
                    seq, Outcome.NOT_FOUND, f"{command.client_order_id} unknown at {self.name}"
                )
            # A query answers with the order's trades too, as an adapter would
            # fetch them, so a status that shows fills never arrives without them.
            for fill in session.fills_for(command.client_order_id):
                self._forward_stream_event(fill)
            report = to_status_report(self.name, order)
            self.reports_to.tell(report)
            return BrokerReply(seq, Outcome.OK, report=report)
        if isinstance(command, CancelAllOrders):
            for order in session.open_orders():
                if command.symbol is None or order.symbol == command.symbol:
                    session.cancel(order.client_order_id)
            return BrokerReply(seq, Outcome.OK)
        raise TypeError(f"{self.name}: not a broker command: {command!r}")

    def _modify(self, session: PaperSession, seq: int, command: ModifyOrder) -> BrokerReply:
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
                return self._reject(seq, ModifyRejected, command.client_order_id, refusal)
            return BrokerReply(seq, Outcome.OK)
        original = session.query(command.client_order_id)
        if original is None or not original.status.is_open:
            return self._reject(
                seq,
                ModifyRejected,
                command.client_order_id,
                SimRejected(
                    command.client_order_id, SimRejectCode.UNKNOWN_ORDER, "order is not open", 0
                ),
            )
        events = session.cancel(command.client_order_id)
        refusal = _refusal(events)
        if refusal is not None:
            return self._reject(seq, ModifyRejected, command.client_order_id, refusal)
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
            return self._reject(seq, OrderRejected, command.new_client_order_id, refusal)
        return BrokerReply(seq, Outcome.OK)

    def _reject(
        self,
        seq: int,
        kind: type[OrderRejected] | type[CancelRejected] | type[ModifyRejected],
        client_order_id: str,
        refusal: SimRejected,
    ) -> BrokerReply:
        message: Message = kind(
            client_order_id=client_order_id,
            venue=self.name,
            code=refusal.code.value,
            reason=refusal.reason or refusal.code.value,
            ts_ns=self.context.now_ns(),
        )
        self.reports_to.tell(message)
        return BrokerReply(seq, Outcome.REJECTED, f"{refusal.code.value}: {refusal.reason}")


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
