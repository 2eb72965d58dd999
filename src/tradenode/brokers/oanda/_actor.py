"""The OANDA broker actor: the venue's half of the broker contract, on ``BrokerBase``.

One incarnation is one session (``_session``). ``on_start`` opens the
transaction stream first, then reconciles: the instruments (each configured
one must be listed for the account, else a ``ConfigError`` naming it), the
account summary, every transaction after the link's cursor
(``/transactions/sinceid``), the pending orders, each unsettled order the
replay did not settle (by client id) and the open positions. Only then are
requests handled.

**One source of reports.** The account's transactions, in id order, are
the only thing reported to the OMS as the order's story (accepted, filled,
cancelled, expired, rejected); REST answers only answer the breaker (and a
refused request, which made no order, is rejected from its answer). The
link's cursor is the id of the last transaction handled in order: a
transaction at or below it is a repeat (the replay and the live stream
overlap; the venue repeats one) and is skipped, a gap above it is filled
from ``sinceid`` first. Execution ids are the ORDER_FILL transaction ids,
so the OMS drops a fill it already has, whichever way it came. The cursor
goes to the OMS as a ``VenueCursor`` (scope ``transactions``) after what it
covers, so a new process replays from there.

**Requests** are answered one at a time: the actor waits on its trio
thread for each REST answer (at most ``request_timeout``, in a worker
thread: other venues never wait). A submit whose answer is lost is
``TRANSPORT``/``TIMEOUT``; the breaker then asks (``query``, ``GET
/orders/@<client id>``) and OANDA declares no acceptance window, so nothing
is ever re-sent blindly. A replace is ``PUT /orders/@<client id>`` with the
order as the venue holds it plus the change, under the new client id: the
stream then shows the old order cancelled (``CLIENT_REQUEST_REPLACED``) and
the new one created, reported as ``OrderCanceled`` and ``OrderAccepted``,
which the OMS links as one logical order. A cancel-all cancels the
instrument's pending LIMIT/STOP/MARKET_IF_TOUCHED orders one by one (OANDA
has no cancel-all; take-profit and stop-loss orders on trades are left).

A lost stream (silent past ``stream_timeout``, ended, broken) or an
unreadable transaction line is a failure: the supervisor restarts the
actor and the next incarnation replays from the cursor. Unknown
transaction types and unreadable price lines are logged and counted
(``malformed_payloads``) and skipped.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..._exceptions import (
    BrokerConnectionError,
    BrokerError,
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
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderStatusReport,
    QueryOrder,
    SubmitOrder,
)
from ...supervision import Address, TrioLoopClosed, TrioThread
from .._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink, Rejection, refuse_if_expired
from ._codec import (
    Heartbeat,
    OandaErrorAnswer,
    OandaInstrument,
    OandaOrder,
    OrderCancelled,
    OrderCancelRejected,
    OrderCreated,
    OrderFill,
    OrderRejectedTxn,
    OtherTransaction,
    Transaction,
    UnknownTransaction,
    UnsupportedOrderError,
    encode_order,
    encode_replace,
    parse_account_summary,
    parse_instruments,
    parse_line,
    parse_order,
    parse_positions,
    parse_price,
    parse_transaction,
    parse_transactions,
    status_report,
)
from ._endpoints import OandaEndpoints, RestResult, client_specifier
from ._session import (
    ConnectionLost,
    ConnectionPacer,
    NotSent,
    OandaSession,
    SessionEvent,
    StreamLine,
    TruncatedLine,
    retry_after_seconds,
)

__all__ = ["OandaBroker", "OandaLink", "TrackedOrder"]

logger = logging.getLogger("tradenode.brokers.oanda")

#: OANDA's order types as the OMS adopts someone else's order of that type.
_ADOPTED_TYPES = {
    "MARKET": OrderType.MARKET,
    "LIMIT": OrderType.LIMIT,
    "STOP": OrderType.STOP,
    "MARKET_IF_TOUCHED": OrderType.MARKET_IF_TOUCHED,
}

CURSOR_SCOPE = "transactions"
_CANCELLABLE = frozenset({"LIMIT", "STOP", "MARKET_IF_TOUCHED"})


@dataclass
class TrackedOrder:
    """One of our orders, from its submit until the venue shows it terminal."""

    instrument: str
    units: Decimal | None = None
    """Its size, once known (from the submit or its create transaction)."""
    order_id: str | None = None
    filled: Decimal = Decimal(0)
    terminal: bool = False
    report_if_missing: bool = False
    """A journal said it was live: if the venue has never heard of it, say so."""


@dataclass
class OandaLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    cursor: int | None = None
    """The last transaction id handled in order: all up to it reached the OMS."""
    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    """Client order id -> our order, until it is terminal."""
    client_ids: dict[str, str] = field(default_factory=dict)
    """OANDA order id -> client order id, for the orders we track."""
    positions: dict[str, Decimal] = field(default_factory=dict)
    """Net units per instrument at the last reconciliation."""
    balance: Decimal | None = None
    currency: str | None = None
    unknown_transactions: int = 0
    replayed_transactions: int = 0
    skipped_repeats: int = 0
    _pacer: ConnectionPacer | None = field(default=None, repr=False)

    def pacer_for(self, spacing: float) -> ConnectionPacer:
        """The connection pacer every incarnation shares (OANDA counts new connections
        per second whoever opens them)."""
        if self._pacer is None or self._pacer.spacing != spacing:
            self._pacer = ConnectionPacer(spacing)
        return self._pacer


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: OandaSession
    event: SessionEvent


class _CheckTick:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Checked:
    snapshot: _Snapshot | None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    transactions: tuple[object, ...]
    last_transaction_id: str
    summary: Any
    pending: Any
    positions: Any
    orders: Mapping[str, RestResult] = field(default_factory=dict)
    """Answers to ``GET /orders/@cid`` for unsettled orders the sweep asked about."""


class OandaBroker(BrokerBase[OandaLink]):
    log = logger

    def __init__(
        self,
        name: str,
        *,
        rest_url: str,
        stream_url: str,
        token: str,
        account_id: str,
        instruments: Sequence[str],
        reports_to: Address,
        link: OandaLink,
        request_timeout: float = 10.0,
        stream_timeout: float = 15.0,
        connection_spacing: float = 0.5,
        check_interval: float | None = None,
        rest_rate_limit: float = 120.0,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self._rest_rate_limit = rest_rate_limit
        self._sent_times: collections.deque[float] = collections.deque()
        self._counted = 0
        self._rest_url, self._stream_url = rest_url, stream_url
        self._token = token
        self._account = account_id
        self._configured = tuple(instruments)
        self._request_timeout = request_timeout
        self._stream_timeout = stream_timeout
        self._spacing = connection_spacing
        self._check_interval = check_interval
        self._checking = False
        self.instruments: dict[str, OandaInstrument] = {}
        self.session: OandaSession | None = None
        self.thread: TrioThread | None = None

    def __repr__(self) -> str:
        return f"OandaBroker({self.name!r}, {self._rest_url!r}, account={self._account!r})"

    # -- lifecycle --------------------------------------------------------------------------

    def _streamed(self) -> tuple[str, ...]:
        """The instruments to stream prices for: configured or subscribed, and listed."""
        wanted = set(self._configured)
        for subscription in self.link.subscriptions:
            wanted.update(subscription.symbols)
        return tuple(sorted(wanted & set(self.instruments)))

    def on_start(self) -> None:
        me = self.context.self
        holder: list[OandaSession] = []
        session = OandaSession(
            self.name,
            rest_url=self._rest_url,
            stream_url=self._stream_url,
            token=self._token,
            account_id=self._account,
            deliver=lambda event: me.tell(_Delivered(holder[0], event)),
            request_timeout=self._request_timeout,
            stream_timeout=self._stream_timeout,
            pacer=self.link.pacer_for(self._spacing),
        )
        holder.append(session)
        self.session = session
        thread = self.thread = TrioThread(f"oanda-{self.name}")
        try:
            thread.start(session.serve)
            self.link.note_connected()
            listed = thread.run(_call_ok, session.api.instruments, ())
            self.instruments = parse_instruments(listed, broker=self.name)
            missing = [name for name in self._configured if name not in self.instruments]
            if missing:
                raise ConfigError(
                    f"venue {self.name}: oanda.instruments: {', '.join(missing)} "
                    f"not tradeable on account {self._account} (OANDA does not list "
                    f"{'it' if len(missing) == 1 else 'them'})",
                    key="oanda.instruments",
                )
            thread.run(session.set_instruments, self._streamed())
            snapshot = thread.run(_fetch, session.api, *self._sweep_from(first=True))
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                f"session ended while starting: {exc}", broker=self.name
            ) from exc
        self._apply(snapshot)
        if self._check_interval:
            self.context.schedule_repeating(self._check_interval, _CheckTick())
        logger.info("%s: connected and reconciled (cursor %s)", self.name, self.link.cursor)

    def disconnect(self) -> None:
        thread, session = self.thread, self.session
        self.thread = self.session = None
        if thread is None:
            return
        if session is not None and thread.is_running:
            with contextlib.suppress(TrioLoopClosed):
                thread.run(session.aclose)
        thread.close()

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        if self.thread is None or self.session is None:
            return  # the next incarnation streams what the link's subscriptions want
        unknown = [s for s in subscription.symbols if s not in self.instruments]
        if unknown:
            logger.warning("%s: no prices for %s: not listed", self.name, ", ".join(unknown))
        try:
            self.thread.run(self.session.set_instruments, self._streamed())
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    # -- reconciliation ---------------------------------------------------------------------

    def _sweep_from(self, *, first: bool = False) -> tuple[str | None, tuple[str, ...]]:
        """The cursor, and the unsettled orders whose state the sweep asks for
        (at start only: later checks follow the stream)."""
        cursor = None if self.link.cursor is None else str(self.link.cursor)
        unsettled = tuple(sorted(c for c, o in self.link.orders.items() if not o.terminal))
        return cursor, unsettled if first else ()

    def _apply(self, snapshot: _Snapshot) -> None:
        """What the venue says, in the order the OMS needs it: the transactions
        after the cursor (fills before the statuses that show them), the pending
        orders, each unsettled order's own state, positions, then the cursor."""
        name = self.name
        summary = parse_account_summary(snapshot.summary, broker=name)
        self.link.currency, self.link.balance = summary.currency, summary.balance
        if self.link.cursor is None:
            # Nothing journaled: the history before now is not ours to replay.
            self.link.cursor = int(snapshot.last_transaction_id)
        for raw in snapshot.transactions:
            self._on_raw_transaction(raw, replay=True)
        pending_raw = snapshot.pending.get("orders") if isinstance(snapshot.pending, dict) else None
        if not isinstance(pending_raw, list):
            raise MalformedPayloadError("pendingOrders: expected orders[]", broker=name)
        pending = [parse_order(raw, broker=name) for raw in pending_raw]
        for order in pending:
            if order.client_order_id is not None and order.order_type in _CANCELLABLE:
                self._report(order)
        for client_id, result in snapshot.orders.items():
            tracked = self.link.orders.get(client_id)
            if tracked is None or tracked.terminal:
                continue
            if result.error is not None:
                if result.error.status == 404:
                    self._never_arrived(client_id)
                continue
            order_raw = result.body.get("order") if isinstance(result.body, dict) else None
            self._report(parse_order(order_raw, broker=name))
        positions = parse_positions(snapshot.positions, broker=name)
        self.link.positions = {k: p.units for k, p in positions.items()}
        as_of = snapshot.positions.get("lastTransactionID")
        if isinstance(as_of, str) and as_of.isdigit() and int(as_of) == self.link.cursor:
            # Positions as of exactly the transactions the OMS has: comparable.
            totals = dict(self.link.positions)
            for instrument in self._configured:
                totals.setdefault(instrument, Decimal(0))
            self.reports_to.tell(
                VenueBalances(
                    venue=name,
                    totals=totals,
                    base_assets={symbol: symbol for symbol in totals},
                    ts_ns=self.context.now_ns(),
                )
            )
        self._tell_cursor()
        self.link.note_reconciled()

    def _tell_cursor(self) -> None:
        if self.link.cursor is not None:
            self.reports_to.tell(VenueCursor(self.name, CURSOR_SCOPE, str(self.link.cursor)))

    def _report(self, order: OandaOrder) -> OrderStatusReport | None:
        """Tell the OMS the venue's view of ``order``; track it until it is terminal."""
        cid = order.client_order_id
        if cid is None:
            return None
        tracked = self.link.orders.get(cid)
        # Built before anything is tracked: an order the report cannot carry
        # raises (ValueError) with the link as it was.
        report = status_report(
            self.name,
            order,
            cid,
            filled=Decimal(0) if tracked is None else tracked.filled,
            ts_ns=self.context.now_ns(),
        )
        if tracked is None:
            tracked = self.link.orders[cid] = TrackedOrder(order.instrument)
        tracked.order_id = order.order_id
        tracked.units = abs(order.units)
        tracked.report_if_missing = False
        self.link.client_ids[order.order_id] = cid
        if report.status.is_terminal:
            self._settle(cid)
        self.reports_to.tell(report)
        return report

    def _settle(self, client_id: str) -> None:
        tracked = self.link.orders.pop(client_id, None)
        if tracked is not None and tracked.order_id is not None:
            self.link.client_ids.pop(tracked.order_id, None)

    def _never_arrived(self, client_id: str) -> None:
        """The venue has no such order. A submit of unknown outcome is the breaker's
        to resolve; one the journal says was live is rejected, since nobody else will."""
        tracked = self.link.orders.get(client_id)
        if tracked is None or not tracked.report_if_missing:
            return
        self._settle(client_id)
        self.report_unknown_at_venue(client_id)

    # -- the transaction stream and the replay --------------------------------------------

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Delivered):
            if message.session is self.session:
                self._on_event(message.event)
        elif isinstance(message, _CheckTick):
            self._check()
        elif isinstance(message, _Checked):
            self._checking = False
            if message.snapshot is not None:
                self._apply(message.snapshot)
        else:
            return super().on_message(message)
        return None

    def _check(self) -> None:
        if self._checking or self.thread is None or self.session is None:
            return
        self._checking = True
        try:
            self.thread.start_soon(
                _periodic, self.context.self, self.session.api, *self._sweep_from()
            )
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConnectionLost):
            raise BrokerConnectionError(event.reason, broker=self.name)
        if isinstance(event, TruncatedLine):
            self.note_malformed(f"{event.stream} stream: a line cut off: {event.line[:120]!r}")
            return  # the ConnectionLost that follows restarts the actor
        assert isinstance(event, StreamLine)
        if event.stream == "pricing":
            self._on_price_line(event.line)
            return
        try:
            raw = parse_line(event.line, broker=self.name)
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            # It may have been a fill: the next incarnation replays from the cursor.
            raise BrokerError(
                "unreadable transaction line: reconciling through a restart", broker=self.name
            ) from exc
        self._on_raw_transaction(raw, replay=False)

    def _on_price_line(self, line: bytes) -> None:
        try:
            quote = parse_price(
                parse_line(line, broker=self.name), venue=self.name, broker=self.name
            )
        except (MalformedPayloadError, ValueError) as exc:  # ValueError: not a Quote (crossed)
            self.note_malformed(exc)
            return
        if quote is not None:
            self.publish_quote(quote)

    def _on_raw_transaction(self, raw: object, *, replay: bool) -> None:
        try:
            txn = parse_transaction(raw, broker=self.name)
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            if replay:
                # Skipped for good: the cursor moves past it below if it has an id.
                txn_id = raw.get("id") if isinstance(raw, dict) else None
                if isinstance(txn_id, str) and txn_id.isdigit():
                    self._advance(int(txn_id))
                return
            raise BrokerError(
                "unreadable transaction: reconciling through a restart", broker=self.name
            ) from exc
        if isinstance(txn, Heartbeat):
            last, cursor = txn.last_transaction_id, self.link.cursor
            if not replay and last is not None and cursor is not None and int(last) > cursor:
                # The account moved past what the stream showed us: replay.
                self._fill_gap()
                self._tell_cursor()
            return
        number = int(txn.txn_id)
        cursor = self.link.cursor
        if cursor is not None and number <= cursor:
            self.link.skipped_repeats += 1
            return
        if not replay and cursor is not None and number > cursor + 1:
            self._fill_gap()
            if self.link.cursor is not None and number <= self.link.cursor:
                return
        if replay:
            self.link.replayed_transactions += 1
        self._on_transaction(txn)
        self._advance(number)
        if not replay and not isinstance(txn, OtherTransaction | UnknownTransaction):
            self._tell_cursor()

    def _advance(self, number: int) -> None:
        if self.link.cursor is None or number > self.link.cursor:
            self.link.cursor = number

    def _fill_gap(self) -> None:
        """A transaction the stream skipped: replay from the cursor first (in order)."""
        assert self.thread is not None and self.session is not None
        cursor = str(self.link.cursor)
        logger.info("%s: transaction stream skipped past %s; replaying", self.name, cursor)
        try:
            transactions, _ = self.thread.run(_transactions_after, self.session.api, cursor)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        except MalformedPayloadError as exc:
            # Nothing was applied and the cursor stays: whoever called retries
            # (the stream's next incarnation, the breaker's next lookup).
            self.note_malformed(exc)
            raise
        for raw in transactions:
            self._on_raw_transaction(raw, replay=True)

    def _on_transaction(self, txn: Transaction) -> None:
        if isinstance(txn, OrderCreated):
            self._on_created(txn)
        elif isinstance(txn, OrderFill):
            self._on_fill(txn)
        elif isinstance(txn, OrderCancelled):
            self._on_cancelled(txn)
        elif isinstance(txn, OrderRejectedTxn):
            self._on_rejected(txn)
        elif isinstance(txn, OrderCancelRejected):
            logger.info(
                "%s: cancel of %s refused: %s",
                self.name,
                txn.client_order_id or txn.order_id,
                txn.reject_reason,
            )
        elif isinstance(txn, UnknownTransaction):
            self.link.unknown_transactions += 1
            self.note_malformed(f"transaction {txn.txn_id}: unknown type {txn.kind!r}; skipped")

    def _on_created(self, txn: OrderCreated) -> None:
        cid = txn.client_order_id
        if cid is None:
            return  # not ours: no client id to tell the OMS about (e.g. a take-profit)
        tracked = self.link.orders.get(cid)
        foreign = tracked is None
        if tracked is None:
            tracked = self.link.orders[cid] = TrackedOrder(txn.instrument)
        tracked.order_id = txn.txn_id
        tracked.units = abs(txn.units)
        tracked.report_if_missing = False
        self.link.client_ids[txn.txn_id] = cid
        if foreign:
            # Someone else's order (or one a lost journal forgot): reported first
            # as a status, so the OMS adopts it with the terms the venue shows.
            order_type = _ADOPTED_TYPES.get(txn.order_type)
            if order_type is None:
                logger.info("%s: %s order %s not adopted", self.name, txn.order_type, cid)
                return
            self.reports_to.tell(
                OrderStatusReport(
                    client_order_id=cid,
                    venue=self.name,
                    symbol=txn.instrument,
                    side=Side.SELL if txn.units < 0 else Side.BUY,
                    status=OrderStatus.ACCEPTED,
                    quantity=abs(txn.units),
                    filled_quantity=Decimal(0),
                    venue_order_id=txn.txn_id,
                    order_type=order_type,
                    # The report has no trigger price: a STOP or MARKET_IF_TOUCHED
                    # order is refused by the OMS's adoption (logged, counted).
                    price=txn.price if order_type is OrderType.LIMIT else None,
                    ts_ns=txn.ts_ns,
                )
            )
            return
        self.reports_to.tell(
            OrderAccepted(
                client_order_id=cid, venue=self.name, venue_order_id=txn.txn_id, ts_ns=txn.ts_ns
            )
        )

    def _on_fill(self, txn: OrderFill) -> None:
        cid = txn.client_order_id or self.link.client_ids.get(txn.order_id)
        if cid is None:
            return  # a fill of an order that is not ours (stop loss, closeout...)
        quantity = abs(txn.units)
        self.reports_to.tell(
            OrderFilled(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=txn.order_id,
                execution_id=txn.txn_id,
                symbol=txn.instrument,
                side=txn.side,
                last_quantity=quantity,
                last_price=txn.price,
                commission=txn.fee,
                commission_asset=self.link.currency,
                ts_ns=txn.ts_ns,
            )
        )
        tracked = self.link.orders.get(cid)
        if tracked is not None:
            tracked.filled += quantity
            if tracked.units is not None and tracked.filled >= tracked.units:
                self._settle(cid)

    def _on_cancelled(self, txn: OrderCancelled) -> None:
        cid = txn.client_order_id or self.link.client_ids.get(txn.order_id)
        if cid is None:
            return
        if txn.reason not in ("CLIENT_REQUEST", "CLIENT_REQUEST_REPLACED"):
            logger.info("%s: %s cancelled by the venue: %s", self.name, cid, txn.reason)
        kind = OrderExpired if txn.expired else OrderCanceled
        self.reports_to.tell(
            kind(client_order_id=cid, venue=self.name, venue_order_id=txn.order_id, ts_ns=txn.ts_ns)
        )
        self._settle(cid)

    def _on_rejected(self, txn: OrderRejectedTxn) -> None:
        cid = txn.client_order_id
        tracked = None if cid is None else self.link.orders.get(cid)
        if cid is None or tracked is None or tracked.terminal or tracked.order_id is not None:
            return  # already rejected from the REST answer, or not ours
        tracked.terminal = True
        self.reports_to.tell(
            OrderRejected(
                client_order_id=cid,
                venue=self.name,
                code=txn.reject_reason,
                reason=f"OANDA refused the order: {txn.reject_reason}",
                ts_ns=txn.ts_ns,
            )
        )
        self._settle(cid)

    # -- requests ------------------------------------------------------------------------------------

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.order_id is not None and not tracked.terminal

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        instrument = self.instruments.get(command.symbol)
        if instrument is None:
            return self.reject(
                request,
                OrderRejected,
                command.client_order_id,
                "UNKNOWN_INSTRUMENT",
                f"{command.symbol} is not tradeable on {self.name}",
            )
        try:
            body = encode_order(command, instrument)
        except UnsupportedOrderError as exc:
            return self.reject(
                request, OrderRejected, command.client_order_id, exc.code or "UNSUPPORTED", str(exc)
            )
        tracked = self.link.orders.setdefault(command.client_order_id, TrackedOrder(command.symbol))
        tracked.units = command.quantity
        return self._run(request, _submit, self.session_api(), body, request, self.monotonic)

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        spec = client_specifier(command.client_order_id)
        return self._run(request, _one, self.session_api().cancel_order, spec)

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        if command.new_client_order_id is None:
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                "UNSUPPORTED",
                "OANDA replaces an order (a new order id), which needs a new client order id",
            )
        instrument = self.instruments.get(command.symbol)
        if instrument is None:
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                "UNKNOWN_INSTRUMENT",
                f"{command.symbol} is not tradeable on {self.name}",
            )
        self.link.orders.setdefault(command.new_client_order_id, TrackedOrder(command.symbol))
        return self._run(request, _replace, self.session_api(), command, instrument)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        return self._run(request, _one, self.session_api().order, command.client_order_id)

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        return self._run(request, _cancel_all, self.session_api(), command.symbol)

    def session_api(self) -> OandaEndpoints:
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        return self.session.api

    def _run(
        self, request: BrokerRequest, job: Callable[..., Awaitable[Any]], *args: Any
    ) -> Answer:
        """Run ``job`` on the trio thread and answer from its result."""
        assert self.thread is not None
        reply = self._reply(request, job, *args)
        if isinstance(reply, BrokerReply) and not reply.rates:
            reply = dataclasses.replace(reply, rates=self._rate_observations())
        return reply

    def _rate_observations(self) -> tuple[RateObservation, ...]:
        """OANDA reports no usage counter: what this connection itself sent in the
        last second (every REST request, its own sweeps and look-ups included)
        against OANDA's limit, for the breaker's limiter."""
        session = self.session
        if session is None:
            return ()
        now = self.monotonic()
        sent = session.requests_sent - self._counted
        self._counted = session.requests_sent
        self._sent_times.extend([now] * sent)
        while self._sent_times and self._sent_times[0] <= now - 1.0:
            self._sent_times.popleft()
        used = float(len(self._sent_times))
        return (RateObservation("REST:1s", used, self._rest_rate_limit, 1.0, now),)

    def _reply(
        self, request: BrokerRequest, job: Callable[..., Awaitable[Any]], *args: Any
    ) -> Answer:
        assert self.thread is not None
        try:
            result = self.thread.run(_guarded, job, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        if isinstance(result, NotSent):
            if self.session is not None and self.session.closed:
                # The session is gone and its ConnectionLost is queued: this
                # incarnation is ending. The request goes behind it, to the next.
                self.context.self.tell(request)
                return IN_FLIGHT
            # Certainly not processed (no connection could be opened). The
            # contract has no "not sent" outcome; a 429's is the same promise:
            # the breaker asks, finds nothing, and sends it again.
            return BrokerReply(request.seq, Outcome.RATE_LIMITED, f"not sent: {result}")
        if isinstance(result, BrokerError):
            if isinstance(result, MalformedPayloadError):
                self.note_malformed(result)  # an answer not even JSON: outcome unknown
            outcome = (
                Outcome.TIMEOUT if isinstance(result, BrokerTimeoutError) else Outcome.TRANSPORT
            )
            return BrokerReply(request.seq, outcome, str(result))
        return self._answer(request, result)

    def _answer(self, request: BrokerRequest, result: Any) -> BrokerReply:
        command, seq = request.command, request.seq
        if isinstance(command, CancelAllOrders):
            failures = [r.error for r in result if r.error is not None]
            detail = "; ".join(f"{e.code} {e.message}" for e in failures)
            return BrokerReply(seq, Outcome.OK, detail)
        assert isinstance(result, RestResult)
        if result.error is not None:
            return self._on_error(request, result)
        if isinstance(command, QueryOrder):
            return self._on_queried(request, command, result)
        # Accepts, fills, cancels and replacements arrive as transactions, in order.
        return BrokerReply(seq, Outcome.OK)

    def _on_queried(
        self, request: BrokerRequest, command: QueryOrder, result: RestResult
    ) -> BrokerReply:
        """The lookup's answer: the order's transactions first, then its status.

        An answer that cannot be read (or reported) is counted and answered
        ``TRANSPORT``, as is a replay that fails (``TIMEOUT`` when it timed out):
        the outcome stays unknown, nothing is reported, and the breaker asks again."""
        seq = request.seq
        order_raw = result.body.get("order") if isinstance(result.body, dict) else None
        try:
            order = parse_order(order_raw, broker=self.name)
            if order.client_order_id != command.client_order_id:
                raise MalformedPayloadError(
                    f"asked for {command.client_order_id}, answered {order.client_order_id!r}",
                    broker=self.name,
                )
        except MalformedPayloadError as exc:
            return self._unreadable_lookup(seq, command, exc)
        if order.state != "PENDING" or order.order_id not in self.link.client_ids:
            # Its transactions (the fills above all) go before the status that shows them.
            try:
                self._fill_gap()
            except BrokerTimeoutError as exc:
                return BrokerReply(seq, Outcome.TIMEOUT, f"replaying transactions: {exc}")
            except MalformedPayloadError as exc:  # counted by _fill_gap
                return BrokerReply(seq, Outcome.TRANSPORT, f"replaying transactions: {exc}")
        tracked = self.link.orders.get(command.client_order_id)
        try:
            if tracked is None:
                # Settled by the transactions just replayed: the status still answers.
                report = status_report(
                    self.name,
                    order,
                    command.client_order_id,
                    filled=abs(order.units) if order.state == "FILLED" else Decimal(0),
                    ts_ns=self.context.now_ns(),
                )
                self.reports_to.tell(report)
            else:
                reported = self._report(order)
                assert reported is not None
                report = reported
        except ValueError as exc:  # the order as the venue shows it is no status report
            return self._unreadable_lookup(seq, command, exc)
        return BrokerReply(seq, Outcome.OK, report=report)

    def _unreadable_lookup(self, seq: int, command: QueryOrder, error: Exception) -> BrokerReply:
        self.note_malformed(f"order lookup of {command.client_order_id}: {error}")
        return BrokerReply(seq, Outcome.TRANSPORT, f"unreadable order answer: {error}")

    def _on_error(self, request: BrokerRequest, result: RestResult) -> BrokerReply:
        command, seq = request.command, request.seq
        error = result.error
        assert error is not None
        detail = f"{error.status} {error.code}: {error.message}"
        if error.rate_limited:
            # Definitely not processed: the breaker waits retry_after and sends again.
            return BrokerReply(
                seq, Outcome.RATE_LIMITED, detail, retry_after=retry_after_seconds(result.headers)
            )
        if error.unknown_outcome or error.unauthorized:
            return BrokerReply(seq, Outcome.TRANSPORT, detail)
        if isinstance(command, QueryOrder):
            if error.status == 404:
                self._never_arrived(command.client_order_id)
                return BrokerReply(seq, Outcome.NOT_FOUND, detail)
            return BrokerReply(seq, Outcome.REJECTED, detail)
        kind: Rejection
        if isinstance(command, SubmitOrder):
            kind, client_id = OrderRejected, command.client_order_id
            tracked = self.link.orders.get(client_id)
            if error.code == "CLIENT_ORDER_ID_ALREADY_EXISTS":
                pass  # the venue has it: its transactions tell its story
            elif tracked is not None and tracked.order_id is None:
                tracked.terminal = True
                self._settle(client_id)
        elif isinstance(command, CancelOrder):
            kind, client_id = CancelRejected, command.client_order_id
        elif isinstance(command, ModifyOrder):
            kind, client_id = ModifyRejected, command.client_order_id
            if command.new_client_order_id is not None:
                new = self.link.orders.get(command.new_client_order_id)
                if new is not None and new.order_id is None:
                    self._settle(command.new_client_order_id)
        else:
            return BrokerReply(seq, Outcome.REJECTED, detail)
        return self.reject(request, kind, client_id, error.code, error.message)


# -- the network half of each request, on the trio thread ---------------------------------


async def _guarded(job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``job``'s result, or the ``BrokerError`` it raised (outcome unknown)."""
    try:
        return await job(*args)
    except BrokerError as exc:
        return exc


async def _one(call: Callable[..., Awaitable[RestResult]], *args: Any) -> RestResult:
    return await call(*args)


async def _submit(
    api: OandaEndpoints,
    body: Mapping[str, Any],
    request: BrokerRequest,
    monotonic: Callable[[], float],
) -> RestResult:
    # Nothing leaves past the request's deadline: the breaker may have moved on.
    refuse_if_expired(request, monotonic)
    return await api.create_order(body)


async def _replace(
    api: OandaEndpoints, command: ModifyOrder, instrument: OandaInstrument
) -> RestResult:
    """The order as the venue holds it, changed, under the new client id."""
    current = await api.order(command.client_order_id)
    if current.error is not None:
        return current
    order = current.body.get("order") if isinstance(current.body, dict) else None
    if not isinstance(order, dict):
        raise MalformedPayloadError(f"order answer without order: {current.body!r}")
    if order.get("state") != "PENDING":
        return RestResult(
            error=OandaErrorAnswer(
                404, "ORDER_DOESNT_EXIST", f"the order is {order.get('state')}, not pending"
            )
        )
    try:
        body = encode_replace(order, command, instrument)
    except UnsupportedOrderError as exc:
        return RestResult(error=OandaErrorAnswer(400, exc.code or "UNSUPPORTED", str(exc)))
    return await api.replace_order(command.client_order_id, body)


async def _cancel_all(api: OandaEndpoints, symbol: str | None) -> list[RestResult]:
    pending = await _call_ok(api.pending_orders, ())
    raw_orders = pending.get("orders") if isinstance(pending, dict) else None
    if not isinstance(raw_orders, list):
        raise MalformedPayloadError(f"pendingOrders without orders: {pending!r}")
    results = []
    for raw in raw_orders:
        order = parse_order(raw)
        if order.order_type in _CANCELLABLE and (symbol is None or order.instrument == symbol):
            results.append(await api.cancel_order(order.order_id))
    return results


async def _call_ok(call: Callable[..., Awaitable[RestResult]], args: tuple[Any, ...]) -> Any:
    """A call whose refusal fails the incarnation (while connecting or sweeping)."""
    return _body_or_raise(await call(*args))


def _body_or_raise(result: RestResult) -> Any:
    error = result.error
    if error is not None:
        raise BrokerConnectionError(
            f"refused: {error.status} {error.code} {error.message}",
            code=error.code,
            retry_after=retry_after_seconds(result.headers),
        )
    return result.body


#: Transactions asked for per ``idrange`` page when ``sinceid`` answers 416 (too many).
REPLAY_PAGE = 500


async def _transactions_after(api: OandaEndpoints, cursor: str) -> tuple[list[object], str]:
    """Every transaction after ``cursor``, ascending, and the account's last id.

    ``sinceid`` first; if OANDA answers 416 (a range too large: its limit is not
    documented), the account's last id from the summary, then ``idrange`` pages."""
    result = await api.transactions_since(cursor)
    if result.error is None or result.error.status != 416:
        return parse_transactions(_body_or_raise(result))
    last = int(parse_account_summary(await _call_ok(api.summary, ())).last_transaction_id)
    collected: list[object] = []
    first = int(cursor) + 1
    while first <= last:
        page_last = min(last, first + REPLAY_PAGE - 1)
        page, _ = parse_transactions(
            await _call_ok(api.transactions_range, (first, page_last)), require_last=False
        )
        collected.extend(page)
        first = page_last + 1
    return collected, str(last)


async def _fetch(api: OandaEndpoints, cursor: str | None, unsettled: tuple[str, ...]) -> _Snapshot:
    summary = await _call_ok(api.summary, ())
    if cursor is None:
        transactions: list[object] = []
        last = parse_account_summary(summary).last_transaction_id
    else:
        transactions, last = await _transactions_after(api, cursor)
    pending = await _call_ok(api.pending_orders, ())
    listed = pending.get("orders") if isinstance(pending, dict) else None
    resting = {
        raw.get("clientExtensions", {}).get("id")
        for raw in listed or ()
        if isinstance(raw, dict) and isinstance(raw.get("clientExtensions"), dict)
    }
    orders = {}
    for client_id in unsettled:
        if client_id not in resting:  # the pending list already says where it is
            orders[client_id] = await api.order(client_id)
    positions = await _call_ok(api.open_positions, ())
    return _Snapshot(tuple(transactions), last, summary, pending, positions, orders)


async def _periodic(
    me: Address, api: OandaEndpoints, cursor: str | None, unsettled: tuple[str, ...]
) -> None:
    try:
        snapshot = await _fetch(api, cursor, unsettled)
    except Exception as exc:  # noqa: BLE001 - an escaping error would end the session's loop
        logger.warning("periodic check failed: %s: %s", type(exc).__name__, exc)
        me.tell(_Checked(None))
        return
    me.tell(_Checked(snapshot))
