"""The Interactive Brokers broker actor: the venue's half of the broker contract, on ``BrokerBase``.

One incarnation is one asyncio loop (``_loop.AsyncioThread``) and one
socket to TWS (``_session.IbkrSession``). ``on_start`` connects (handshake,
nextValidId, managedAccounts), qualifies every configured instrument with
IB's contract details (one IB does not know is a ``ConfigError`` naming it),
then reconciles: this client's open orders, its executions since the
journaled cursor (with their commissions), the day's completed orders for
orders (to settle ours and adopt what the journal lacks), positions and the account summary. Only then are
requests handled; quotes stream from market data ticks.

**One source of reports.** What TWS sends about an order (``openOrder``,
``orderStatus``, ``execDetails`` + ``commissionReport``, ``error``) is the
only thing told to the OMS; a request's own answer only answers the
breaker. Our client order id travels in ``orderRef``; the IB orderId
(from ``nextValidId``) reaches the OMS as the ``venue_order_id`` of
``OrderAccepted``, which the OMS journals, so a new process maps IB order
ids back to its orders (``_factory.seed_link``) before it reconnects, and
finds by ``orderRef`` whatever it had not heard of. A fill is told once its
``commissionReport`` has arrived (IB sends it right after the execution),
with IB's commission on it; its execution id is IB's execId without the
correction suffix, so a corrected execution (``.01`` -> ``.02``) is the
same execution to the OMS, and a repeat (live and in a replay) reaches it
once. The execution cursor (the time of the last execution told, scope
``executions``) goes to the OMS as a ``VenueCursor`` after the fills it
covers.

**Connectivity.** A closed socket and IB's 1100 (TWS lost IB) fail the actor:
the supervisor restarts it and the next incarnation reconnects and
reconciles. 1101/1102 (restored) reconcile again in place (1101 also
resubscribes market data). A message that cannot be read is logged and
counted (``malformed_payloads``) and followed by a reconciliation, since it
may have been a fill. A pacing violation (error 100) is counted, reported to
the breaker as IB's message counter at its limit, and a refused placement
is answered ``RATE_LIMITED`` with the configured back-off.

**Unknown outcomes.** A placement that TWS said nothing about within the
request timeout is ``TIMEOUT``; the breaker asks (``query``: open orders,
executions and completed orders, by ``orderRef``) before anything is sent
again. TWS takes an order whenever it arrives, so IB declares no acceptance
window and nothing is ever re-sent blindly.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ib_async import Order

from ..._exceptions import (
    BrokerConnectionError,
    BrokerTimeoutError,
    ConfigError,
    MalformedPayloadError,
)
from ...actors._contract import (
    BrokerReply,
    BrokerRequest,
    Outcome,
    QuoteSubscription,
    RateObservation,
)
from ...actors._control import VenueBalances, VenueCursor
from ...messages._enums import OrderStatus, OrderType, Side
from ...messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatusReport,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...messages._validation import CLIENT_ORDER_ID_PATTERN
from ...supervision import Address
from .._asyncio import AsyncioLoopClosed, AsyncioThread
from .._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink
from ._codec import (
    ErrorKind,
    IbCommission,
    IbError,
    IbExecution,
    IbkrInstrument,
    IbOpenOrder,
    IbOrderStatus,
    IbTick,
    UnsupportedOrderError,
    contract_for,
    encode_modify,
    encode_order,
    instrument_from_details,
    map_status,
    redact,
)
from ._endpoints import AccountValue, IbkrApi
from ._session import ConnectionLost, IbkrSession, Malformed, SessionEvent, VenueAnswer
from ._settings import IbkrContractSpec

__all__ = ["CURSOR_SCOPE", "IbkrBroker", "IbkrLink", "TrackedOrder"]

logger = logging.getLogger("tradenode.brokers.ibkr")

CURSOR_SCOPE = "executions"
#: How far before the cursor a replay asks for executions (clocks, same-second fills).
REPLAY_MARGIN = datetime.timedelta(seconds=60)
#: Execution identities remembered as told (a replay overlapping the live feed).
FORWARDED_CAPACITY = 20_000
_CURSOR_FORMAT = "%Y%m%d-%H:%M:%S"


@dataclass
class TrackedOrder:
    """One of our orders, from its submit until the venue shows it done."""

    symbol: str
    side: Side | None = None
    quantity: Decimal | None = None
    order_id: int | None = None
    """IB's orderId (from nextValidId), once one was given to it."""
    placed: Order | None = None
    """The order as last sent (what a modify changes)."""
    acknowledged: bool = False
    filled: Decimal = Decimal(0)
    terminal: bool = False
    report_if_missing: bool = False
    """A journal said it was live: if the venue has never heard of it, say so."""
    modifying: ModifyOrder | None = None
    cancelling: bool = False


@dataclass
class IbkrLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    """Client order id -> our order, until it is done at the venue."""
    client_ids: dict[int, str] = field(default_factory=dict)
    """IB orderId -> client order id (orderRef), for the orders we track."""
    forwarded: collections.OrderedDict[str, str] = field(default_factory=collections.OrderedDict)
    """Execution identity -> the execId told to the OMS (the latest ones)."""
    cursor: str | None = None
    """``yyyymmdd-hh:mm:ss`` (UTC) of the last execution told, all before it told too."""
    positions: dict[str, Decimal] = field(default_factory=dict)
    """Position per configured symbol at the last reconciliation (IB's own numbers)."""
    account_values: dict[str, str] = field(default_factory=dict)
    """The account summary at the last reconciliation (``NetLiquidation``, ...)."""
    accounts: tuple[str, ...] = ()
    corrections: int = 0
    """Corrected executions seen (same execution, new execId suffix)."""
    repeats: int = 0
    """Executions seen again (replay overlap, duplicates) and not told twice."""
    pacing_violations: int = 0
    restorations: int = 0
    """1101/1102 notices (IB <-> TWS connectivity restored), each reconciled."""
    info_messages: int = 0

    settled: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    """Client order ids this link saw done (the latest ones): a late event about one
    is not an order to adopt."""

    def note_settled(self, cid: str) -> None:
        self.settled[cid] = None
        self.settled.move_to_end(cid)
        while len(self.settled) > FORWARDED_CAPACITY:
            self.settled.popitem(last=False)

    def remember(self, identity: str, exec_id: str) -> None:
        self.forwarded[identity] = exec_id
        self.forwarded.move_to_end(identity)
        while len(self.forwarded) > FORWARDED_CAPACITY:
            self.forwarded.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: IbkrSession
    event: SessionEvent


@dataclass(frozen=True, slots=True)
class _Answered:
    session: IbkrSession
    request: BrokerRequest
    result: object


class _CheckTick:
    __slots__ = ()


class _LoopDied:
    """The incarnation's asyncio loop refused work: fail, so the next one starts afresh."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What one reconciliation read from TWS."""

    open_orders: tuple[IbOpenOrder, ...]
    executions: tuple[IbExecution, ...]
    completed: tuple[IbOpenOrder, ...] | None
    positions: tuple[Any, ...]
    account: tuple[AccountValue, ...]


@dataclass(frozen=True, slots=True)
class _Lookup:
    """Everything TWS has about one client order id."""

    open_order: IbOpenOrder | None
    completed: IbOpenOrder | None
    executions: tuple[IbExecution, ...]


class IbkrBroker(BrokerBase[IbkrLink]):
    log = logger

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        client_id: int,
        account: str,
        instruments: dict[str, IbkrContractSpec],
        reports_to: Address,
        link: IbkrLink,
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
        message_rate_limit: float = 50.0,
        pacing_backoff: float = 1.0,
        outside_rth: bool = False,
        market_data_type: int = 1,
        check_interval: float | None = None,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self._host, self._port, self._client_id = host, port, client_id
        self._account = account
        self._specs = dict(instruments)
        self._connect_timeout = connect_timeout
        self._request_timeout = request_timeout
        self._rate_limit = message_rate_limit
        self._pacing_backoff = pacing_backoff
        self._outside_rth = outside_rth
        self._market_data_type = market_data_type
        self._check_interval = check_interval
        self.instruments: dict[str, IbkrInstrument] = {}
        self._by_con_id: dict[int, IbkrInstrument] = {}
        self.session: IbkrSession | None = None
        self.thread: AsyncioThread | None = None
        self._in_flight: dict[int, BrokerRequest] = {}
        """Seq -> a request started on the loop and not answered yet."""
        self._pending: dict[str, IbExecution] = {}
        """execId -> a live execution waiting for its commission report."""
        self._sent_times: collections.deque[float] = collections.deque()
        self._counted = 0
        self._paced_at: float | None = None

    def __repr__(self) -> str:
        return f"IbkrBroker({self.name!r}, {self._host}:{self._port}, client {self._client_id})"

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.context.self
        thread = self.thread = AsyncioThread(f"ibkr-{self.name}")
        holder: list[IbkrSession] = []

        def deliver(event: SessionEvent) -> None:
            me.tell(_Delivered(holder[0], event))

        async def build() -> IbkrSession:
            return IbkrSession(self.name, deliver, timeout=self._request_timeout)

        session = thread.run(build())
        holder.append(session)
        self.session = session
        thread.run(
            session.connect(
                self._host,
                self._port,
                self._client_id,
                self._connect_timeout,
                pacing_backoff=self._pacing_backoff,
            )
        )
        self.link.note_connected()
        self.link.accounts = tuple(session.accounts)
        self._qualify()
        self._reconcile(first=True)
        self._stream_quotes()
        if self._check_interval:
            self.context.schedule_repeating(self._check_interval, _CheckTick())
        logger.info(
            "%s: connected to TWS %s:%d as client %d and reconciled (cursor %s)",
            self.name,
            self._host,
            self._port,
            self._client_id,
            self.link.cursor,
        )

    def disconnect(self) -> None:
        # What was sent and not answered: the breaker asks the venue before any re-send.
        for request in self._in_flight.values():
            self.send_reply(
                request,
                BrokerReply(request.seq, Outcome.TRANSPORT, "connection to TWS ended unanswered"),
            )
        self._in_flight.clear()
        thread, session = self.thread, self.session
        self.thread = self.session = None
        if thread is None:
            return
        if session is not None and thread.is_running:
            with contextlib.suppress(BrokerConnectionError):
                thread.run(session.aclose())
        thread.close()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Wait for ``coro`` on the loop: used while connecting and reconciling."""
        if self.thread is None:
            coro.close()
            raise BrokerConnectionError("not connected", broker=self.name)
        return self.thread.run(coro)

    def _qualify(self) -> None:
        """Contract details for every configured instrument: conId, minTick, size increment."""
        assert self.session is not None
        api = self.session.api
        unknown: list[str] = []
        for symbol, spec in self._specs.items():
            details = self._run(api.contract_details(contract_for(spec)))
            if len(details) != 1:
                unknown.append(
                    f"{symbol} ({spec.sec_type} {spec.symbol} {spec.exchange} {spec.currency}"
                    f"{' ' + spec.expiry if spec.expiry else ''}: "
                    f"{'no such contract' if not details else f'{len(details)} matches'})"
                )
                continue
            instrument = instrument_from_details(symbol, spec, details[0])
            self.instruments[symbol] = instrument
            self._by_con_id[instrument.con_id] = instrument
        if unknown:
            raise ConfigError(
                f"venue {self.name}: ibkr.instruments: IB does not know {'; '.join(unknown)}",
                key="ibkr.instruments",
            )

    def _streamed(self) -> list[IbkrInstrument]:
        wanted: set[str] = set()
        for subscription in self.link.subscriptions:
            wanted.update(subscription.symbols or self.instruments)
        return [self.instruments[s] for s in sorted(wanted) if s in self.instruments]

    def _stream_quotes(self) -> None:
        session, thread = self.session, self.thread
        if session is None or thread is None:
            return
        contracts = [i.contract for i in self._streamed()]
        if not contracts:
            return
        market_data_type = self._market_data_type

        async def stream() -> None:
            session.stream_quotes(contracts, market_data_type)

        # Waited for: once a subscription is handled, its requests have left.
        thread.run(stream())

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        unknown = [s for s in subscription.symbols if s not in self._specs]
        if unknown:
            logger.warning("%s: no quotes for %s: not configured", self.name, ", ".join(unknown))
        self._stream_quotes()

    # -- reconciliation ---------------------------------------------------------------------

    def _since(self) -> str:
        cursor = self.link.cursor
        if cursor is None:
            return ""
        try:
            at = datetime.datetime.strptime(cursor, _CURSOR_FORMAT)
        except ValueError:
            return ""
        return (at - REPLAY_MARGIN).strftime(_CURSOR_FORMAT)

    async def _fetch(self, session: IbkrSession) -> _Snapshot:
        api = session.api
        open_orders = await api.open_orders()
        executions = await api.executions(client_id=self._client_id, since=self._since())
        completed = None
        try:
            completed = tuple(await api.completed_orders())
        except BrokerTimeoutError:
            logger.warning("%s: TWS did not answer reqCompletedOrders", self.name)
        positions = await api.positions()
        account = await api.account_summary(self._account)
        return _Snapshot(
            tuple(open_orders), tuple(executions), completed, tuple(positions), tuple(account)
        )

    def _reconcile(self, *, first: bool = False) -> None:
        """Read TWS's books and tell the OMS what it lacks, in the order it needs it."""
        session = self.session
        if session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        snapshot = self._run(self._fetch(session))
        self._apply(snapshot, first=first)

    def _apply(self, snapshot: _Snapshot, *, first: bool) -> None:
        mine = [o for o in snapshot.open_orders if o.order_ref]
        # Orders we never heard of first (the OMS adopts them), then every execution
        # (fills before the statuses that show them), then the orders' states.
        for order in mine:
            if order.order_ref not in self.link.orders:
                self._adopt(order)
        for execution in sorted(snapshot.executions, key=lambda e: (e.time_ns, e.exec_id)):
            cid = self._client_id_of(execution.order_ref, execution.order_id)
            if (
                cid is not None
                and cid not in self.link.orders
                and execution.identity not in self.link.forwarded
            ):
                its = tuple(e for e in snapshot.executions if e.order_ref == cid)
                done = _find(snapshot.completed, cid) or _filled_order(cid, list(its))
                self._adopt(done, its)
            self._on_execution(execution, replay=True)
        open_refs = set()
        for order in mine:
            open_refs.add(order.order_ref)
            self._report(order)
        for cid, tracked in list(self.link.orders.items()):
            if tracked.terminal or cid in open_refs or cid not in self.link.orders:
                continue
            finished = _find(snapshot.completed, cid)
            if finished is not None:
                self._report(finished)
            elif snapshot.completed is not None and tracked.filled == 0:
                # Neither open nor done today: unknown at TWS (if the journal says live).
                self._never_arrived(cid)
        self._apply_positions(snapshot)
        self.link.account_values = {
            f"{v.tag}{':' + v.currency if v.currency else ''}": v.value for v in snapshot.account
        }
        self._tell_cursor()
        self.link.note_reconciled()
        if first:
            logger.info(
                "%s: reconciled %d open orders, %d executions",
                self.name,
                len(mine),
                len(snapshot.executions),
            )

    def _apply_positions(self, snapshot: _Snapshot) -> None:
        positions: dict[str, Decimal] = {symbol: Decimal(0) for symbol in self.instruments}
        for position in snapshot.positions:
            if self._account and position.account and position.account != self._account:
                continue
            instrument = self._by_con_id.get(position.con_id)
            if instrument is not None:
                positions[instrument.symbol] = position.quantity
        self.link.positions = positions
        if not self._pending:
            # Positions as of every execution told: comparable with the OMS's own.
            self.reports_to.tell(
                VenueBalances(
                    venue=self.name,
                    totals=dict(positions),
                    base_assets={symbol: symbol for symbol in positions},
                    ts_ns=self.context.now_ns(),
                )
            )

    def _tell_cursor(self) -> None:
        if self.link.cursor is not None:
            self.reports_to.tell(VenueCursor(self.name, CURSOR_SCOPE, self.link.cursor))

    def _client_id_of(self, order_ref: str, order_id: int) -> str | None:
        if order_ref and CLIENT_ORDER_ID_PATTERN.fullmatch(order_ref):
            return order_ref
        return self.link.client_ids.get(order_id)

    def _adopt(self, order: IbOpenOrder, executions: tuple[IbExecution, ...] = ()) -> None:
        """An order TWS has under an orderRef this link does not track (another
        process's, one the journal lost, or one the OMS has and this process never
        tracked): reported first as TWS shows it (status, filled quantity), so the OMS
        adopts what it lacks, and finds what it has consistent, before the fills."""
        cid = order.order_ref
        if not CLIENT_ORDER_ID_PATTERN.fullmatch(cid):
            logger.info("%s: order %d's orderRef %r is not ours", self.name, order.order_id, cid)
            return
        instrument = self._by_con_id.get(order.con_id)
        if instrument is None:
            logger.info("%s: order %s is on a contract not configured", self.name, cid)
            return
        # A completed order carries no orderId (0): its executions do.
        order_id = order.order_id or next((e.order_id for e in executions if e.order_id), 0)
        status = map_status(order.status, filled=order.filled, quantity=order.quantity)
        if status is None:
            status = OrderStatus.ACCEPTED
        tracked = self.link.orders[cid] = TrackedOrder(
            instrument.symbol, order.side, order.quantity, order_id or None
        )
        tracked.acknowledged = True
        tracked.terminal = status.is_terminal  # kept only until its fills are told
        mine = [e for e in executions if e.order_ref == cid]
        tracked.filled = sum(
            (e.shares for e in mine if e.identity in self.link.forwarded), Decimal(0)
        )
        if order_id:
            self.link.client_ids[order_id] = cid
        self.reports_to.tell(
            OrderStatusReport(
                client_order_id=cid,
                venue=self.name,
                symbol=instrument.symbol,
                side=order.side,
                status=status,
                quantity=order.quantity,
                filled_quantity=min(order.filled, order.quantity),
                venue_order_id=str(order_id) if order_id else None,
                order_type=order.order_type or OrderType.LIMIT,
                price=order.limit_price,
                ts_ns=self.context.now_ns(),
            )
        )
        if status.is_terminal and all(e.identity in self.link.forwarded for e in mine):
            self._settle(cid)

    def _report(self, order: IbOpenOrder) -> OrderStatusReport | None:
        """The venue's view of one of our orders, as a status report (never more
        filled than the fills told: the status waits for the rest)."""
        cid = order.order_ref
        instrument = self._by_con_id.get(order.con_id)
        if instrument is None:
            return None
        tracked = self.link.orders.get(cid)
        if tracked is not None and order.order_id:
            self._bind(cid, tracked, order.order_id)
        order_id = (tracked.order_id if tracked is not None else None) or order.order_id or None
        # Untracked: settled here, every fill told.
        told = tracked.filled if tracked is not None else order.filled
        status = map_status(order.status, filled=max(told, order.filled), quantity=order.quantity)
        if status is None:
            return None
        if status is OrderStatus.FILLED and told < order.quantity:
            status = OrderStatus.PARTIALLY_FILLED if told > 0 else OrderStatus.ACCEPTED
        if tracked is not None:
            tracked.side, tracked.quantity = order.side, order.quantity
            tracked.acknowledged = True
        report = OrderStatusReport(
            client_order_id=cid,
            venue=self.name,
            symbol=instrument.symbol,
            side=order.side,
            status=status,
            quantity=order.quantity,
            filled_quantity=min(told, order.quantity),
            venue_order_id=None if order_id is None else str(order_id),
            order_type=order.order_type or OrderType.LIMIT,
            price=order.limit_price,
            ts_ns=self.context.now_ns(),
        )
        self.reports_to.tell(report)
        if status.is_terminal and tracked is not None:
            self._settle(cid)
        return report

    def _bind(self, cid: str, tracked: TrackedOrder, order_id: int) -> None:
        if tracked.order_id != order_id:
            if tracked.order_id is not None:
                self.link.client_ids.pop(tracked.order_id, None)
            tracked.order_id = order_id
        self.link.client_ids[order_id] = cid

    def _settle(self, cid: str) -> None:
        tracked = self.link.orders.get(cid)
        if tracked is None:
            return
        tracked.terminal = True
        if any(e.order_id == tracked.order_id for e in self._pending.values()):
            return  # an execution awaits its commission: it must still find the order
        self.link.orders.pop(cid, None)
        self.link.note_settled(cid)
        if tracked.order_id is not None:
            self.link.client_ids.pop(tracked.order_id, None)

    def _never_arrived(self, cid: str) -> None:
        """TWS has no such order. A submit of unknown outcome is the breaker's to
        resolve; one the journal says was live is rejected, since nobody else will."""
        tracked = self.link.orders.get(cid)
        if tracked is None or not tracked.report_if_missing:
            return
        self.link.orders.pop(cid, None)
        self.report_unknown_at_venue(cid, "TWS has no order with this orderRef")

    # -- what TWS sends ---------------------------------------------------------------------

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Delivered):
            if message.session is self.session:
                self._on_event(message.event)
        elif isinstance(message, _Answered):
            # An answer from an earlier incarnation's session was answered TRANSPORT
            # when that incarnation ended (``disconnect``): never twice.
            if message.session is self.session:
                self._in_flight.pop(message.request.seq, None)
                with self.completing(message.request):
                    self._on_answer(message.request, message.result)
        elif isinstance(message, _LoopDied):
            raise BrokerConnectionError("the asyncio loop has stopped", broker=self.name)
        elif isinstance(message, _CheckTick):
            if self.session is not None:
                self._reconcile()
        else:
            return super().on_message(message)
        return None

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConnectionLost):
            raise BrokerConnectionError(event.reason, broker=self.name)
        if isinstance(event, Malformed):
            self.note_malformed(f"TWS message: {redact(event.what, self._account)}")
            # It may have been a fill or a status: read the books again.
            self._reconcile()
        elif isinstance(event, IbError):
            self._on_error(event)
        elif isinstance(event, IbOpenOrder):
            self._on_open_order(event)
        elif isinstance(event, IbOrderStatus):
            self._on_status(event)
        elif isinstance(event, IbExecution):
            self._on_execution(event, replay=False)
        elif isinstance(event, IbCommission):
            self._on_commission(event)
        elif isinstance(event, IbTick):
            self._on_tick(event)

    def _on_open_order(self, order: IbOpenOrder) -> None:
        cid = self._client_id_of(order.order_ref, order.order_id)
        if cid is None:
            return
        tracked = self.link.orders.get(cid)
        if tracked is None:
            if cid not in self.link.settled:
                self._adopt(order)
            return
        if tracked.terminal:
            return
        self._bind(cid, tracked, order.order_id)
        status = map_status(order.status, filled=tracked.filled, quantity=order.quantity)
        if status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
            self._acknowledge(cid, tracked)
        modifying = tracked.modifying
        if modifying is not None and tracked.acknowledged and _shows(order, modifying):
            tracked.modifying = None
            tracked.quantity = order.quantity
            self.reports_to.tell(
                OrderModified(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=str(order.order_id),
                    quantity=order.quantity,
                    price=order.limit_price if modifying.price is not None else None,
                    stop_price=order.aux_price if modifying.stop_price is not None else None,
                    ts_ns=self.context.now_ns(),
                )
            )
        elif status is OrderStatus.CANCELED:
            self._cancelled(cid, tracked)

    def _acknowledge(self, cid: str, tracked: TrackedOrder) -> None:
        if tracked.acknowledged or tracked.order_id is None:
            return
        tracked.acknowledged = True
        self.reports_to.tell(
            OrderAccepted(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=str(tracked.order_id),
                ts_ns=self.context.now_ns(),
            )
        )

    def _on_status(self, status: IbOrderStatus) -> None:
        cid = self.link.client_ids.get(status.order_id)
        tracked = None if cid is None else self.link.orders.get(cid)
        if cid is None or tracked is None or tracked.terminal:
            return
        quantity = status.filled + status.remaining
        mapped = map_status(status.status, filled=status.filled, quantity=quantity)
        if mapped in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            self._acknowledge(cid, tracked)
        elif mapped is OrderStatus.CANCELED:
            self._cancelled(cid, tracked)
        elif mapped is OrderStatus.REJECTED and not tracked.acknowledged:
            self._rejected(cid, tracked, "Inactive", "TWS made the order inactive")

    def _cancelled(self, cid: str, tracked: TrackedOrder) -> None:
        if tracked.terminal:
            return
        tracked.cancelling = False
        if not tracked.acknowledged and tracked.order_id is not None:
            self._acknowledge(cid, tracked)
        self.reports_to.tell(
            OrderCanceled(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=None if tracked.order_id is None else str(tracked.order_id),
                ts_ns=self.context.now_ns(),
            )
        )
        self._settle(cid)

    def _rejected(self, cid: str, tracked: TrackedOrder, code: str, reason: str) -> None:
        if tracked.terminal or tracked.acknowledged:
            return
        self.reports_to.tell(
            OrderRejected(
                client_order_id=cid,
                venue=self.name,
                code=code,
                reason=redact(reason, self._account) or code,
                ts_ns=self.context.now_ns(),
            )
        )
        self._settle(cid)

    def _on_error(self, error: IbError) -> None:
        kind = error.kind
        text = redact(error.text, self._account)
        if kind is ErrorKind.INFO:
            self.link.info_messages += 1
            logger.info("%s: TWS %d: %s", self.name, error.code, text)
            return
        if kind is ErrorKind.CONNECTIVITY_LOST:
            raise BrokerConnectionError(f"TWS {error.code}: {text}", broker=self.name)
        if kind is ErrorKind.RESTORED:
            self.link.restorations += 1
            logger.warning("%s: TWS %d: %s; reconciling", self.name, error.code, text)
            self._reconcile()
            if error.code == 1101 and self.session is not None:
                # Market data was lost: subscribe again.
                self._stream_quotes()
            return
        if kind is ErrorKind.PACING:
            self.link.pacing_violations += 1
            self._paced_at = self.monotonic()
            logger.warning("%s: TWS pacing violation %d: %s", self.name, error.code, text)
            return
        cid = self.link.client_ids.get(error.req_id)
        tracked = None if cid is None else self.link.orders.get(cid)
        if cid is None or tracked is None:
            logger.warning(
                "%s: TWS error %d (id %d): %s", self.name, error.code, error.req_id, text
            )
            return
        code = str(error.code)
        if kind is ErrorKind.ORDER_CANCELLED:
            self._cancelled(cid, tracked)
        elif kind is ErrorKind.CANCEL_REJECTED:
            if tracked.cancelling:
                tracked.cancelling = False
                self.reports_to.tell(
                    CancelRejected(
                        client_order_id=cid,
                        venue=self.name,
                        code=code,
                        reason=text or code,
                        ts_ns=self.context.now_ns(),
                    )
                )
        elif tracked.modifying is not None and tracked.acknowledged:
            tracked.modifying = None
            self.reports_to.tell(
                ModifyRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code=code,
                    reason=text or code,
                    ts_ns=self.context.now_ns(),
                )
            )
        elif not tracked.acknowledged:
            self._rejected(cid, tracked, code, text)
        else:
            logger.warning("%s: TWS error %d on %s: %s", self.name, error.code, cid, text)

    def _on_execution(self, execution: IbExecution, *, replay: bool) -> None:
        identity = execution.identity
        told = self.link.forwarded.get(identity)
        if told is not None:
            self.link.repeats += 1
            if told != execution.exec_id:
                self.link.corrections += 1
                logger.error(
                    "%s: IB corrected execution %s as %s (%s @ %s); the fill told stands",
                    self.name,
                    told,
                    execution.exec_id,
                    execution.shares,
                    execution.price,
                )
            return
        if replay or execution.commission is not None:
            self._pending.pop(execution.exec_id, None)
            self._forward(execution)
        elif execution.exec_id not in self._pending:
            self._pending[execution.exec_id] = execution

    def _on_commission(self, commission: IbCommission) -> None:
        execution = self._pending.pop(commission.exec_id, None)
        if execution is None:
            return  # a replayed execution's (told with it), or not this client's
        self._forward(
            IbExecution(
                exec_id=execution.exec_id,
                order_id=execution.order_id,
                perm_id=execution.perm_id,
                client_id=execution.client_id,
                order_ref=execution.order_ref,
                con_id=execution.con_id,
                side=execution.side,
                shares=execution.shares,
                price=execution.price,
                time_ns=execution.time_ns,
                commission=commission.commission,
                commission_currency=commission.currency,
            )
        )
        self._tell_cursor()

    def _forward(self, execution: IbExecution) -> None:
        cid = self._client_id_of(execution.order_ref, execution.order_id)
        instrument = self._by_con_id.get(execution.con_id)
        if cid is None or instrument is None:
            logger.info(
                "%s: execution %s is not of our orders or instruments; skipped",
                self.name,
                execution.exec_id,
            )
            return
        self.reports_to.tell(
            OrderFilled(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=str(execution.order_id),
                execution_id=execution.identity,
                symbol=instrument.symbol,
                side=execution.side,
                last_quantity=execution.shares,
                last_price=execution.price,
                commission=execution.commission or Decimal(0),
                commission_asset=execution.commission_currency,
                ts_ns=execution.time_ns or self.context.now_ns(),
            )
        )
        self.link.remember(execution.identity, execution.exec_id)
        if execution.time_ns:
            at = datetime.datetime.fromtimestamp(execution.time_ns / 1e9, datetime.UTC)
            stamp = at.strftime(_CURSOR_FORMAT)
            if not self._pending and (self.link.cursor is None or stamp > self.link.cursor):
                self.link.cursor = stamp
        tracked = self.link.orders.get(cid)
        if tracked is not None:
            tracked.filled += execution.shares
            if not tracked.acknowledged and tracked.order_id is not None:
                self._acknowledge(cid, tracked)
            if tracked.terminal or (
                tracked.quantity is not None and tracked.filled >= tracked.quantity
            ):
                self._settle(cid)

    def _on_tick(self, tick: IbTick) -> None:
        instrument = self._by_con_id.get(tick.con_id)
        if instrument is None or tick.bid is None or tick.ask is None or tick.bid > tick.ask:
            return
        self.publish_quote(
            Quote(
                venue=self.name,
                symbol=instrument.symbol,
                bid=tick.bid,
                ask=tick.ask,
                last=tick.last,
                ts_ns=self.context.now_ns(),
            )
        )

    # -- requests ----------------------------------------------------------------------------

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.acknowledged and not tracked.terminal

    def _start(self, request: BrokerRequest, coro: Coroutine[Any, Any, Any]) -> Answer:
        """Run ``coro`` on the loop; its outcome comes back as ``_Answered``."""
        session, thread = self.session, self.thread
        if session is None or thread is None:
            coro.close()
            raise BrokerConnectionError("not connected", broker=self.name)
        me = self.context.self

        def done(result: object) -> None:
            me.tell(_Answered(session, request, result))

        self._in_flight[request.seq] = request
        try:
            thread.submit(coro, done)
        except AsyncioLoopClosed:
            self._in_flight.pop(request.seq, None)
            # Not sent (answered TRANSPORT by the base); the incarnation fails next.
            me.tell(_LoopDied())
            raise
        return IN_FLIGHT

    def _next_order_id(self) -> int:
        assert self.session is not None
        api = self.session.api

        async def allocate() -> int:
            return api.next_order_id()

        result: int = self._run(allocate())
        return result

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        instrument = self.instruments.get(command.symbol)
        if instrument is None:
            return self.reject(
                request,
                OrderRejected,
                command.client_order_id,
                "UNKNOWN_INSTRUMENT",
                f"{command.symbol} is not configured for {self.name}",
            )
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        order_id = self._next_order_id()
        try:
            order = encode_order(
                command,
                instrument,
                order_id=order_id,
                account=self._account,
                outside_rth=self._outside_rth,
            )
        except UnsupportedOrderError as exc:
            return self.reject(request, OrderRejected, command.client_order_id, exc.code, str(exc))
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        if tracked is None or tracked.terminal:
            tracked = self.link.orders[cid] = TrackedOrder(command.symbol)
        tracked.side, tracked.quantity, tracked.placed = command.side, command.quantity, order
        if tracked.order_id is None or not tracked.acknowledged:
            self._bind(cid, tracked, order_id)
        else:
            # Live at the venue under another id: a re-send must not place it twice.
            return BrokerReply(request.seq, Outcome.OK, "already live at the venue")
        session = self.session
        return self._start(
            request, session.place(instrument.contract, order, request, self.monotonic)
        )

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        tracked = self.link.orders.get(command.client_order_id)
        if tracked is None or tracked.order_id is None or self.session is None:
            if self.session is None:
                raise BrokerConnectionError("not connected", broker=self.name)
            return self.reject(
                request,
                CancelRejected,
                command.client_order_id,
                "10147",
                "no IB order id is known for this order",
            )
        tracked.cancelling = True
        return self._start(request, self.session.cancel(tracked.order_id))

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        instrument = self.instruments.get(command.symbol)
        if tracked is None or tracked.order_id is None or instrument is None:
            return self.reject(
                request, ModifyRejected, cid, "UNKNOWN_ORDER", "no live IB order for this id"
            )
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        placed = tracked.placed
        try:
            if placed is None:
                placed = self._rebuild(cid, tracked, instrument)
            changed = encode_modify(placed, command, instrument)
        except UnsupportedOrderError as exc:
            # Refused before anything was sent (not expressible, or no longer open).
            return self.reject(request, ModifyRejected, cid, exc.code, str(exc))
        except BrokerTimeoutError as exc:
            # Nothing was sent, but nor did TWS say whether the order is still open.
            return BrokerReply(request.seq, Outcome.TIMEOUT, f"modify not sent: {exc}")
        except MalformedPayloadError as exc:
            detail = redact(str(exc), self._account)
            self.note_malformed(f"TWS open orders: {detail}")
            return BrokerReply(request.seq, Outcome.TRANSPORT, f"modify not sent: {detail}")
        tracked.placed = changed
        tracked.modifying = command
        return self._start(
            request,
            self.session.modify(instrument.contract, changed, request, self.monotonic),
        )

    def _rebuild(self, cid: str, tracked: TrackedOrder, instrument: IbkrInstrument) -> Order:
        """The order as TWS holds it (an earlier process placed it): from reqOpenOrders.

        Only while TWS shows it open: an openOrder of a finished order (filled or
        cancelled a moment ago) may come back among the answers too."""
        assert self.session is not None
        for order in self._run(self.session.api.open_orders()):
            if order.order_ref != cid:
                continue
            status = map_status(order.status, filled=order.filled, quantity=order.quantity)
            if status is None or not status.is_terminal:
                return Order(
                    orderId=order.order_id,
                    action=order.side.value,
                    totalQuantity=float(order.quantity),
                    orderType={
                        OrderType.MARKET: "MKT",
                        OrderType.LIMIT: "LMT",
                        OrderType.STOP: "STP",
                        OrderType.STOP_LIMIT: "STP LMT",
                        OrderType.TRAILING_STOP: "TRAIL",
                    }.get(order.order_type or OrderType.LIMIT, "LMT"),
                    lmtPrice=float(order.limit_price) if order.limit_price else None,
                    auxPrice=float(order.aux_price) if order.aux_price else None,
                    orderRef=cid,
                    account=self._account,
                    outsideRth=self._outside_rth,
                )
        raise UnsupportedOrderError(f"{cid} is not open at TWS", code="NOT_OPEN")

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        return self._start(request, self._lookup(self.session, command.client_order_id))

    async def _lookup(self, session: IbkrSession, cid: str) -> _Lookup:
        """Everything TWS has under orderRef ``cid``: open, done today, executions."""
        api = session.api
        open_orders = await api.open_orders()
        found = next((o for o in open_orders if o.order_ref == cid), None)
        executions = await api.executions(client_id=self._client_id)
        mine = tuple(e for e in executions if e.order_ref == cid)
        completed = None
        if found is None:
            try:
                completed = _find(tuple(await api.completed_orders()), cid)
            except BrokerTimeoutError:
                logger.warning("%s: TWS did not answer reqCompletedOrders", self.name)
        return _Lookup(found, completed, mine)

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        session, thread = self.session, self.thread
        if session is None or thread is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        order_ids: list[int] | None = None  # reqGlobalCancel
        if command.symbol is not None:
            order_ids = []
            for tracked in self.link.orders.values():
                if (
                    tracked.symbol == command.symbol
                    and tracked.order_id is not None
                    and not tracked.terminal
                ):
                    tracked.cancelling = True
                    order_ids.append(tracked.order_id)
        # Written before the answer: TWS confirms a cancel only through each order's
        # status, so OK says the cancels went out, and a socket lost before they did
        # is a BrokerConnectionError (TRANSPORT: the breaker asks), never OK.
        self._run(_send_cancels(session.api, order_ids))
        return BrokerReply(request.seq, Outcome.OK, rates=self._rates())

    # -- answers -------------------------------------------------------------------------------

    def _rates(self) -> tuple[RateObservation, ...]:
        """IB counts every API message a client sends against its per-second limit:
        what this connection sent in the last second (or the limit itself right
        after a pacing violation), for the breaker's limiter."""
        session = self.session
        if session is None:
            return ()
        now = self.monotonic()
        sent = session.api.messages_sent - self._counted
        self._counted = session.api.messages_sent
        self._sent_times.extend([now] * sent)
        while self._sent_times and self._sent_times[0] <= now - 1.0:
            self._sent_times.popleft()
        used = float(len(self._sent_times))
        if self._paced_at is not None and now - self._paced_at < self._pacing_backoff:
            used = self._rate_limit
        return (RateObservation("API:1s", used, self._rate_limit, 1.0, now),)

    def _on_answer(self, request: BrokerRequest, result: object) -> None:
        command, seq = request.command, request.seq
        if isinstance(result, BaseException):
            if isinstance(result, BrokerTimeoutError):
                reply = BrokerReply(seq, Outcome.TIMEOUT, str(result))
            elif isinstance(result, BrokerConnectionError | MalformedPayloadError):
                reply = BrokerReply(seq, Outcome.TRANSPORT, str(result))
            elif isinstance(result, Exception):
                logger.error("%s: request %d failed: %r", self.name, seq, result)
                reply = BrokerReply(seq, Outcome.TRANSPORT, f"{type(result).__name__}: {result}")
            else:
                raise result
            self.send_reply(request, reply, rates=self._rates())
            return
        if isinstance(command, QueryOrder):
            assert isinstance(result, _Lookup)
            self.send_reply(request, self._on_lookup(request, command, result), rates=self._rates())
            return
        answer: VenueAnswer = result  # type: ignore[assignment]
        self.send_reply(request, self._verdict(request, answer), rates=self._rates())

    def _verdict(self, request: BrokerRequest, answer: VenueAnswer) -> BrokerReply:
        """The breaker's answer from TWS's first word on the order (the OMS hears the
        story from the events themselves)."""
        seq = request.seq
        if isinstance(answer, IbError):
            detail = f"{answer.code}: {redact(answer.text, self._account)}"
            kind = answer.kind
            if kind is ErrorKind.PACING:
                return BrokerReply(
                    seq, Outcome.RATE_LIMITED, detail, retry_after=self._pacing_backoff
                )
            if kind is ErrorKind.CONNECTIVITY_LOST:
                return BrokerReply(seq, Outcome.TRANSPORT, detail)
            if kind is ErrorKind.ORDER_CANCELLED and isinstance(request.command, CancelOrder):
                return BrokerReply(seq, Outcome.OK, detail)
            return BrokerReply(seq, Outcome.REJECTED, detail)
        if (
            isinstance(answer, IbOrderStatus)
            and isinstance(request.command, CancelOrder)
            and answer.status == "Filled"
        ):
            cid = request.command.client_order_id
            tracked = self.link.orders.get(cid)
            if tracked is not None:
                tracked.cancelling = False
            self.reports_to.tell(
                CancelRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code="FILLED",
                    reason="the order filled before the cancel arrived",
                    ts_ns=self.context.now_ns(),
                )
            )
            return BrokerReply(seq, Outcome.REJECTED, "FILLED: the order has filled")
        return BrokerReply(seq, Outcome.OK)

    def _on_lookup(
        self, request: BrokerRequest, command: QueryOrder, found: _Lookup
    ) -> BrokerReply:
        cid = command.client_order_id
        order = found.open_order or found.completed
        if order is None and found.executions:
            # Filled and gone from the open orders, with no completed order to show it.
            order = _filled_order(cid, list(found.executions))
        if order is None:
            self._never_arrived(cid)
            return BrokerReply(request.seq, Outcome.NOT_FOUND, f"TWS has no order {cid}")
        if cid not in self.link.orders:
            self._adopt(order, found.executions)
        for execution in sorted(found.executions, key=lambda e: (e.time_ns, e.exec_id)):
            self._on_execution(execution, replay=True)
        shown = self._report(order)
        if shown is None:
            return BrokerReply(request.seq, Outcome.NOT_FOUND, f"{cid}: not readable yet")
        return BrokerReply(request.seq, Outcome.OK, report=shown)


def _find(orders: tuple[IbOpenOrder, ...] | None, cid: str) -> IbOpenOrder | None:
    if not orders:
        return None
    found = [o for o in orders if o.order_ref == cid]
    return found[-1] if found else None


def _filled_order(cid: str, executions: list[IbExecution]) -> IbOpenOrder:
    """An order TWS no longer lists, as its executions show it (filled)."""
    first = executions[0]
    total = sum((e.shares for e in executions), Decimal(0))
    return IbOpenOrder(
        order_id=first.order_id,
        perm_id=first.perm_id,
        client_id=first.client_id,
        order_ref=cid,
        con_id=first.con_id,
        side=first.side,
        quantity=total,
        order_type=None,
        limit_price=None,
        aux_price=None,
        status="Filled",
        filled=total,
    )


def _shows(order: IbOpenOrder, modify: ModifyOrder) -> bool:
    """Whether TWS's openOrder shows the modification asked for."""
    if modify.quantity is not None and order.quantity != modify.quantity:
        return False
    if modify.price is not None and order.limit_price != modify.price:
        return False
    return not (modify.stop_price is not None and order.aux_price != modify.stop_price)


async def _send_cancels(api: IbkrApi, order_ids: list[int] | None) -> None:
    """reqGlobalCancel (``None``: every open order of the account; IB has no
    per-symbol one), or cancelOrder for each of ``order_ids``."""
    if order_ids is None:
        api.global_cancel()
        return
    for order_id in order_ids:
        api.cancel_order(order_id)
