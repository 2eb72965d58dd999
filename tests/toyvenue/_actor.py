"""The toy broker actor: the venue's half of the broker contract, on ``BrokerBase``.

One incarnation is one session. ``on_start`` logs on, loads the venue's
instruments and reconciles; only then are requests handled. Each request is
answered before the next is taken (the actor waits on its trio thread for
the venue's answer, at most ``request_timeout``): the toy venue answers on
loopback in microseconds, and one request at a time keeps the broker's
mailbox an honest barrier (everything told to it before was sent *and*
answered). A lost connection or an unreadable event is a failure: the
supervisor restarts the actor and the next incarnation reconciles.

**Reconciliation** (at every start, and every ``check_interval``): the
fills after the link's trade cursor, the open orders, every unsettled
order (sent and not seen terminal) and the order of every swept fill, and
the balances. An order this link did not send (another client's) is
reported *before* its fills, so the OMS adopts it; our own orders' fills
go before the status that shows them. The cursor moves with the stream
(one ordered connection: a fill after a lost one can never arrive on it)
and with sweeps, and is sent to the OMS as a ``VenueCursor`` after each
sweep so a new process sweeps from there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradenode import BrokerConnectionError, BrokerError, BrokerTimeoutError, MalformedPayloadError
from tradenode.actors import BrokerReply, BrokerRequest, Outcome, VenueBalances, VenueCursor
from tradenode.brokers import Answer, BrokerBase, BrokerLink, refuse_if_expired
from tradenode.messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderRejected,
    OrderStatusReport,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from tradenode.supervision import Address, TrioLoopClosed, TrioThread

from ._codec import (
    ToyError,
    ToyFill,
    ToyOrder,
    UnsupportedOrderError,
    fill_to_message,
    parse_balances,
    parse_event,
    parse_fill,
    parse_instruments,
    parse_order,
    submit_params,
    to_status_report,
)
from ._session import ConnectionLost, MalformedFrame, SessionEvent, StreamEvent, ToySession

__all__ = ["ToyBroker", "ToyLink"]

logger = logging.getLogger("tradenode.brokers.toy")

Rejection = type[OrderRejected] | type[CancelRejected] | type[ModifyRejected]


@dataclass
class ToyLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    trade_cursor: int | None = None
    """The last trade id forwarded in order: every fill up to it reached the OMS."""
    cursor_held: bool = False
    """A streamed fill could not be forwarded (its order is unknown): the stream may
    not move the cursor past it; the next sweep will."""
    unsettled: dict[str, str] = field(default_factory=dict)
    """client order id -> symbol, for orders sent (or adopted) and not seen terminal."""
    at_venue: set[str] = field(default_factory=set)
    """Unsettled orders the venue has acknowledged."""
    report_if_missing: set[str] = field(default_factory=set)
    """Orders a journal says were live: if the venue has never heard of one, say so."""
    base_assets: dict[str, str] = field(default_factory=dict)
    balances: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: ToySession
    event: SessionEvent


@dataclass(frozen=True, slots=True)
class _Done:
    request: BrokerRequest
    ok: dict[str, Any] | None = None
    error: ToyError | None = None
    failure: BrokerError | None = None


@dataclass(frozen=True, slots=True)
class _Snapshot:
    asked: tuple[str, ...]
    """The unsettled orders the sweep asked about (a later submit is not among them)."""
    fills: tuple[Any, ...]
    orders: tuple[Any, ...]
    open_orders: tuple[Any, ...]
    balances: Any


class _CheckTick:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Checked:
    snapshot: _Snapshot | None


class ToyBroker(BrokerBase[ToyLink]):
    log = logger

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        api_key: str,
        reports_to: Address,
        link: ToyLink,
        wall_time_ms: Callable[[], int],
        recv_window_ms: int,
        request_timeout: float,
        check_interval: float | None = None,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self._host, self._port, self._api_key = host, port, api_key
        self._wall_time_ms = wall_time_ms
        self._recv_window_ms = recv_window_ms
        self._request_timeout = request_timeout
        self._check_interval = check_interval
        self._checking = False
        self.session: ToySession | None = None
        self.thread: TrioThread | None = None

    def __repr__(self) -> str:
        return f"ToyBroker({self.name!r}, {self._host}:{self._port})"

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.context.self
        holder: list[ToySession] = []
        session = ToySession(
            self.name,
            self._host,
            self._port,
            self._api_key,
            deliver=lambda event: me.tell(_Delivered(holder[0], event)),
            request_timeout=self._request_timeout,
        )
        holder.append(session)
        self.session = session
        thread = self.thread = TrioThread(f"toy-{self.name}")
        try:
            thread.start(session.serve)
            self.link.note_connected()
            instruments = self.thread.run(_call_ok, session, "instruments", {})
            self.link.base_assets = parse_instruments(instruments, broker=self.name)
            snapshot = thread.run(_fetch, session, *self._sweep_from())
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                f"session ended while starting: {exc}", broker=self.name
            ) from exc
        self._apply(snapshot)
        if self._check_interval:
            self.context.schedule_repeating(self._check_interval, _CheckTick())
        logger.info("%s: connected and reconciled", self.name)

    def disconnect(self) -> None:
        thread, session = self.thread, self.session
        self.thread = self.session = None
        if thread is None:
            return
        if session is not None and thread.is_running:
            with contextlib.suppress(TrioLoopClosed):
                thread.run(session.aclose)
        thread.close()

    # -- reconciliation -----------------------------------------------------------------------

    def _sweep_from(self) -> tuple[int | None, tuple[str, ...]]:
        return self.link.trade_cursor, tuple(sorted(self.link.unsettled))

    def _apply(self, snapshot: _Snapshot) -> None:
        """What the venue says, in the order the OMS needs it (module docstring)."""
        name = self.name
        orders: dict[str, ToyOrder] = {}
        for raw in (*snapshot.orders, *snapshot.open_orders):
            order = parse_order(raw, broker=name)
            orders[order.client_order_id] = order
        foreign = [o for o in orders.values() if o.client_order_id not in self.link.unsettled]
        for order in foreign:
            self._report(order)  # not ours: reported first, so the OMS can adopt it
        fills = sorted((parse_fill(raw, broker=name) for raw in snapshot.fills), key=_trade_id)
        for fill in fills:
            self.reports_to.tell(fill_to_message(name, fill))
        for order in orders.values():
            if order not in foreign:
                self._report(order)
        for client_id in snapshot.asked:
            if client_id in self.link.unsettled and client_id not in orders:
                self._never_arrived(client_id)
        self.link.balances = parse_balances(snapshot.balances, broker=name)
        self.reports_to.tell(
            VenueBalances(
                venue=name,
                totals=dict(self.link.balances),
                base_assets=dict(self.link.base_assets),
                ts_ns=self.context.now_ns(),
            )
        )
        if fills:
            last = fills[-1].trade_id
            if self.link.trade_cursor is None or last > self.link.trade_cursor:
                self.link.trade_cursor = last
        self.link.cursor_held = False
        if self.link.trade_cursor is not None:
            self.reports_to.tell(VenueCursor(name, "trades", str(self.link.trade_cursor)))
        self.link.note_reconciled()

    def _report(self, order: ToyOrder) -> OrderStatusReport:
        """Tell the OMS the venue's view of ``order`` and track it until it is terminal."""
        cid = order.client_order_id
        if order.is_open:
            self.link.unsettled[cid] = order.symbol
            self.link.at_venue.add(cid)
        else:
            self._settle(cid)
        self.link.report_if_missing.discard(cid)
        report = to_status_report(self.name, order)
        self.reports_to.tell(report)
        return report

    def _settle(self, client_id: str) -> None:
        self.link.unsettled.pop(client_id, None)
        self.link.at_venue.discard(client_id)
        self.link.report_if_missing.discard(client_id)

    def _never_arrived(self, client_id: str) -> None:
        """The venue has no such order. A submit of unknown outcome is the breaker's
        to resolve; one the journal says was live is rejected, since nobody else will."""
        missing = client_id in self.link.report_if_missing
        self._settle(client_id)
        if missing:
            self.report_unknown_at_venue(client_id)

    # -- messages ---------------------------------------------------------------------------------

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
        self.thread.start_soon(_periodic, self.context.self, self.session, *self._sweep_from())

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConnectionLost):
            raise BrokerConnectionError(event.reason, broker=self.name)
        if isinstance(event, MalformedFrame):
            self.note_malformed(event.error)
            # It may have been a fill: the next incarnation sweeps from the cursor.
            raise BrokerError("unreadable event: reconciling through a restart", broker=self.name)
        assert isinstance(event, StreamEvent)
        try:
            parsed = parse_event(self.name, event.frame)
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            raise BrokerError(
                "unreadable event: reconciling through a restart", broker=self.name
            ) from exc
        if isinstance(parsed, Quote):
            self.publish_quote(parsed)
        elif isinstance(parsed, ToyFill):
            self._on_fill(parsed)
        else:
            cid = parsed.client_order_id  # type: ignore[attr-defined]
            if cid not in self.link.unsettled and event.frame.get("ev") == "accepted":
                # Someone else's order, live now: the OMS adopts it from the report.
                self._report(parse_order(event.frame["order"], broker=self.name))
                return
            self.link.at_venue.add(cid)
            if event.frame.get("ev") in ("canceled", "expired"):
                self._settle(cid)
            self.reports_to.tell(parsed)

    def _on_fill(self, fill: ToyFill) -> None:
        if fill.client_order_id not in self.link.unsettled:
            # An order we know nothing of: forwarding its fill would be ignored,
            # and moving the cursor past it would lose it. Sweep now instead.
            self.link.cursor_held = True
            self._check()
            return
        self.reports_to.tell(fill_to_message(self.name, fill))
        if not self.link.cursor_held and (
            self.link.trade_cursor is None or fill.trade_id > self.link.trade_cursor
        ):
            self.link.trade_cursor = fill.trade_id
        if fill.leaves <= 0:
            self._settle(fill.client_order_id)

    # -- requests ------------------------------------------------------------------------------------

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        if self.link.base_assets and command.symbol not in self.link.base_assets:
            return self.reject(
                request,
                OrderRejected,
                command.client_order_id,
                "UNKNOWN_INSTRUMENT",
                f"{command.symbol} is not listed on {self.name}",
            )
        try:
            params = submit_params(command)
        except UnsupportedOrderError as exc:
            return self.reject(
                request, OrderRejected, command.client_order_id, "UNSUPPORTED", str(exc)
            )
        self.link.unsettled.setdefault(command.client_order_id, command.symbol)
        return self._start(request, _submit, params, self.monotonic, self._stamp)

    def _stamp(self) -> dict[str, int]:
        """When the request leaves, and how long after that the venue may accept it."""
        return {"ts": self._wall_time_ms(), "window": self._recv_window_ms}

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        return self._start(request, _simple, "cancel", {"cid": command.client_order_id})

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        if command.new_client_order_id is not None or command.stop_price is not None:
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                "UNSUPPORTED",
                "the toy venue amends quantity and price in place only",
            )
        params: dict[str, Any] = {"cid": command.client_order_id}
        if command.quantity is not None:
            params["qty"] = str(command.quantity)
        if command.price is not None:
            params["price"] = str(command.price)
        return self._start(request, _simple, "amend", params)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        return self._start(request, _simple, "query", {"cid": command.client_order_id})

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        params = {} if command.symbol is None else {"symbol": command.symbol}
        return self._start(request, _simple, "cancel_all", params)

    def live_at_venue(self, client_order_id: str) -> bool:
        return client_order_id in self.link.at_venue

    def _start(
        self, request: BrokerRequest, job: Callable[..., Awaitable[_Done]], *args: Any
    ) -> Answer:
        """Send ``request`` and wait for its answer (see the module docstring)."""
        assert self.thread is not None and self.session is not None
        try:
            done = self.thread.run(_perform, request, job, self.session, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        return self._on_done(done)

    def _on_done(self, done: _Done) -> BrokerReply:
        request, command = done.request, done.request.command
        seq = request.seq
        if done.failure is not None:
            timed_out = isinstance(done.failure, BrokerTimeoutError)
            outcome = Outcome.TIMEOUT if timed_out else Outcome.TRANSPORT
            return BrokerReply(seq, outcome, str(done.failure))
        if done.error is not None:
            return self._on_error(request, done.error)
        assert done.ok is not None
        if isinstance(command, QueryOrder):
            order = parse_order(done.ok["order"], broker=self.name)
            for raw in done.ok.get("fills", ()):
                # Fills before the status that shows them; the OMS drops repeats.
                self.reports_to.tell(fill_to_message(self.name, parse_fill(raw, broker=self.name)))
            report = self._report(order)
            return BrokerReply(seq, Outcome.OK, report=report)
        if isinstance(command, SubmitOrder | CancelOrder | ModifyOrder):
            order = parse_order(done.ok["order"], broker=self.name)
            if order.is_open:
                self.link.at_venue.add(order.client_order_id)
        # Accepts, fills, cancels and amends arrive on the stream, in order.
        return BrokerReply(seq, Outcome.OK)

    def _on_error(self, request: BrokerRequest, error: ToyError) -> BrokerReply:
        command, seq = request.command, request.seq
        if error.code == "BUSY":
            # Definitely not processed: the breaker waits retry_after and sends again.
            return BrokerReply(seq, Outcome.RATE_LIMITED, error.msg, retry_after=error.retry_after)
        if isinstance(command, QueryOrder) and error.code == "NOT_FOUND":
            return BrokerReply(seq, Outcome.NOT_FOUND, error.msg)
        if error.code in ("AUTH", "MALFORMED", "BAD_REQUEST", "UNKNOWN_OP"):
            return BrokerReply(seq, Outcome.TRANSPORT, error.msg)
        kind: Rejection = OrderRejected
        if isinstance(command, CancelOrder):
            kind = CancelRejected
        elif isinstance(command, ModifyOrder):
            kind = ModifyRejected
        if isinstance(command, SubmitOrder) and error.code != "DUPLICATE_CLIENT_ORDER_ID":
            self._settle(command.client_order_id)
        client_id = getattr(command, "client_order_id", "")
        if not client_id:
            return BrokerReply(seq, Outcome.REJECTED, error.msg)
        return self.reject(request, kind, client_id, error.code, error.msg)


def _trade_id(fill: ToyFill) -> int:
    return fill.trade_id


# -- the network half of each request, on the trio thread ---------------------------------


async def _perform(
    request: BrokerRequest, job: Callable[..., Awaitable[_Done]], *args: Any
) -> _Done:
    try:
        return await job(request, *args)
    except BrokerError as exc:
        return _Done(request, failure=exc)


async def _submit(
    request: BrokerRequest,
    session: ToySession,
    params: dict[str, Any],
    monotonic: Callable[[], float],
    stamp: Callable[[], dict[str, int]],
) -> _Done:
    # Never stamp a request past its deadline: the venue accepts it only until
    # ts + window, which bounds the acceptance window the breaker relies on.
    refuse_if_expired(request, monotonic)
    answer = await session.call("submit", **stamp(), order=params)
    return _Done(request, answer.ok, answer.error)


async def _simple(
    request: BrokerRequest, session: ToySession, op: str, params: dict[str, Any]
) -> _Done:
    answer = await session.call(op, **params)
    return _Done(request, answer.ok, answer.error)


async def _call_ok(session: ToySession, op: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A call whose refusal fails the incarnation (while connecting or sweeping)."""
    answer = await session.call(op, **params)
    if answer.error is not None:
        raise BrokerConnectionError(
            f"{op} refused: {answer.error.code} {answer.error.msg}",
            broker=session.broker,
            code=answer.error.code,
            retry_after=answer.error.retry_after,
        )
    assert answer.ok is not None
    return answer.ok


async def _fetch(session: ToySession, after: int | None, unsettled: tuple[str, ...]) -> _Snapshot:
    fills = (await _call_ok(session, "fills", {"after": after}))["fills"]
    open_orders = (await _call_ok(session, "open_orders", {}))["orders"]
    wanted = sorted(set(unsettled) | {raw.get("cid") for raw in fills if isinstance(raw, dict)})
    orders = (await _call_ok(session, "orders", {"cids": wanted}))["orders"] if wanted else []
    balances = await _call_ok(session, "balances", {})
    return _Snapshot(unsettled, tuple(fills), tuple(orders), tuple(open_orders), balances)


async def _periodic(
    me: Address, session: ToySession, after: int | None, unsettled: tuple[str, ...]
) -> None:
    try:
        snapshot = await _fetch(session, after, unsettled)
    except BrokerError as exc:
        logger.warning("%s: periodic check failed: %s", session.broker, exc)
        me.tell(_Checked(None))
        return
    me.tell(_Checked(snapshot))
