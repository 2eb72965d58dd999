"""The OKX broker actor: the venue's half of the broker contract, on ``BrokerBase``.

One incarnation is one session (``_session``). ``on_start`` opens it (REST
client; private WebSocket logged in and subscribed to ``orders``), measures
the venue's clock (``/public/time``), loads the SPOT instrument rules (each
configured symbol must be listed, else a ``ConfigError`` naming it) and
reconciles; only then are requests handled.

**Reconciliation** (at start and every ``check_interval``): each unsettled
order by ``clOrdId`` (``/trade/order``) with its fills (``/trade/fills?ordId=``)
before its status; the open orders (``/trade/orders-pending``), ours and
anyone else's (which the OMS adopts); then every fill after the link's
``billId`` cursor (``/trade/fills?before=``), an order we did not know being
reported before its fills. The cursor goes to the OMS (``VenueCursor``
scope ``fills``) after what it covers, so a new process sweeps from there.
An order is *settled* once the venue shows it terminal and all its fills
were forwarded.

**The stream** (``orders`` channel) tells each order's story: accepted
once, each fill by ``tradeId`` (execution id ``okx-<instId>-<tradeId>``, the
same as the sweep's), amends (``amendResult``), the end (a terminal push
whose fills are not all forwarded fetches them first). Duplicated pushes
change nothing. An unreadable private frame is counted and fails the
incarnation (it might have been a fill: the next one reconciles); an
unreadable quote is counted and skipped.

**Requests** are answered one at a time on the actor's trio thread.
Orders, cancels and amends go over the private WebSocket (the fast path,
``ws_orders``) and over REST when the socket cannot take them (not logged
in, or refused the operation itself with a 60xxx code before it reached the
trading system). Every place and amend carries ``expTime``, the request's
deadline on the venue's clock, which bounds when OKX may still accept it
(``okx_capabilities().acceptance``). A placement whose answer is lost (no
answer in time, the socket closed) is ``TIMEOUT``/``TRANSPORT``: the breaker
then asks the venue by ``clOrdId`` over REST (``query``) before anything is
sent again, so a client id is never placed twice. Cancel-all lists the open
orders and cancels them 20 at a time (``cancel-batch-orders``), each order's
``sCode`` read on its own. An answer that cannot be read is counted and
answered ``TRANSPORT`` (outcome unknown: the breaker looks it up); in a batch
only the unreadable item's order is, each readable item answers its own.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import trio

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
from ...messages._enums import OrderStatus, Side
from ...messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderModified,
    OrderRejected,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...supervision import Address, TrioLoopClosed, TrioThread
from .._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink, Rejection, refuse_if_expired
from ._codec import (
    ErrorKind,
    OkxAck,
    OkxAnswer,
    OkxFill,
    OkxInstrument,
    OkxOrder,
    UnsupportedOrderError,
    WsOpAnswer,
    WsPush,
    amend_args,
    cancel_args,
    check_order,
    classify,
    fill_from_order_push,
    fill_to_message,
    order_args,
    order_status,
    parse_ack,
    parse_acks,
    parse_answer,
    parse_balances,
    parse_fill,
    parse_instruments,
    parse_order,
    parse_quote,
    status_report,
)
from ._endpoints import BATCH_CANCEL, BATCH_LIMIT, PAGE_LIMIT, SERVER_TIME, OkxApi, RestResult
from ._session import (
    ConnectionLost,
    MalformedFrame,
    NotSent,
    OkxSession,
    OkxUrls,
    OrdersPush,
    QuotePush,
    SessionEvent,
    SessionSettings,
)
from ._signing import OkxCredentials

__all__ = ["CURSOR_SCOPE", "OkxBroker", "OkxLink", "TrackedOrder"]

logger = logging.getLogger("tradenode.brokers.okx")

CURSOR_SCOPE = "fills"
#: The place and amend limits (each 60 per 2 s per instrument, REST and WebSocket
#: together), and the batch placement's (300 orders per 2 s per instrument): what the
#: broker reports to its breaker's limiter, per counter kind.
ORDER_RATE = (60.0, 2.0)
RATE_LIMITS = {"order": ORDER_RATE, "amend": ORDER_RATE, "batch-orders": (300.0, 2.0)}
_ZERO = Decimal(0)


@dataclass
class TrackedOrder:
    """One order (ours, or one the venue showed us), until it is settled."""

    inst_id: str
    order_id: str | None = None
    accepted: bool = False
    """``OrderAccepted`` was told (once, from the answer or the stream)."""
    terminal: bool = False
    ended: bool = False
    """Its end (cancel/expiry) was told."""
    venue_filled: Decimal = _ZERO
    forwarded: set[str] = field(default_factory=set)
    """Trade ids forwarded to the OMS."""
    forwarded_quantity: Decimal = _ZERO
    report_if_missing: bool = False
    """A journal said it was live: if the venue has never heard of it, say so."""

    @property
    def settled(self) -> bool:
        return self.terminal and self.forwarded_quantity >= self.venue_filled


@dataclass
class OkxLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    client_ids: dict[str, str] = field(default_factory=dict)
    """OKX ordId -> client order id, for the orders tracked."""
    fill_cursor: str | None = None
    """The newest fill ``billId`` a sweep read: every fill up to it was forwarded."""
    ws_requests: int = 0
    rest_requests: int = 0
    """Order operations sent over the WebSocket / over REST (the fallback)."""
    sent: dict[str, collections.deque[float]] = field(default_factory=dict)
    """Per rate counter, when its requests left (node monotonic clock)."""
    last_quotes: dict[str, Quote] = field(default_factory=dict)
    """The latest quote per instrument: the reference price of market-order checks."""
    last_sweep_ns: int | None = None
    """When the last reconciliation was applied (node clock)."""
    settled: collections.OrderedDict[str, str] = field(default_factory=collections.OrderedDict)
    """ordId -> client order id of the orders settled lately (at most ``SETTLED_MEMORY``):
    a late or repeated push about one changes nothing."""


# -- messages the actor sends itself ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: OkxSession
    event: SessionEvent


class _CheckTick:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Asked:
    """An unsettled order as the venue shows it (None: not shown, ``missing``: OKX
    has no such order), and its fills the link may lack."""

    client_order_id: str
    order: OkxOrder | None
    missing: bool = False
    fills: tuple[OkxFill, ...] = ()


@dataclass(frozen=True, slots=True)
class _Sweep:
    """What a reconciliation read, in the order the OMS needs it."""

    unsettled: tuple[_Asked, ...]
    pending: tuple[OkxOrder, ...]
    fills: tuple[OkxFill, ...]
    foreign: Mapping[str, OkxOrder]
    """Orders of swept fills that the link did not know, by ordId."""
    cursor: str | None
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    """Each currency's cash balance, read after the fills."""


@dataclass(frozen=True, slots=True)
class _Checked:
    sweep: _Sweep | None
    malformed: MalformedPayloadError | None = None
    """Why there is no sweep, when it was an answer the check could not read."""


@dataclass(frozen=True, slots=True)
class _Placed:
    """A placement, amend or cancel's answer, and whether it went over the WebSocket."""

    answer: OkxAnswer | None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    ws: bool = False


class _Flush:
    """Send the submits queued since the last flush (one ``batch-orders`` for several)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Queued:
    request: BrokerRequest
    command: SubmitOrder
    args: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch placement's answer (None: nothing was left to send) and the requests
    whose deadline had passed before it left (never sent)."""

    placed: _Placed | None
    expired: frozenset[int]


class OkxBroker(BrokerBase[OkxLink]):
    """Speaks the broker contract to one OKX account (spot)."""

    log = logger

    def __init__(
        self,
        name: str,
        *,
        credentials: OkxCredentials,
        urls: OkxUrls,
        reports_to: Address,
        link: OkxLink,
        symbols: Sequence[str] = (),
        settings: SessionSettings | None = None,
        wall_time_ms: Callable[[], int],
        ws_orders: bool = True,
        check_interval: float | None = None,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self._credentials = credentials
        self.urls = urls
        self.symbols = tuple(symbols)
        self.settings = settings or SessionSettings()
        self._wall_time_ms = wall_time_ms
        self._offset_ms = 0
        self.ws_orders = ws_orders
        self.check_interval = check_interval
        self._checking = False
        self.instruments: dict[str, OkxInstrument] = {}
        self.session: OkxSession | None = None
        self.thread: TrioThread | None = None
        self._queued: list[_Queued] = []

    def __repr__(self) -> str:
        return f"OkxBroker({self.name!r}, {self.urls.rest!r})"

    def venue_time_ms(self) -> int:
        return self._wall_time_ms() + self._offset_ms

    # -- lifecycle ------------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.context.self
        holder: list[OkxSession] = []
        session = OkxSession(
            self.name,
            self._credentials,
            self.urls,
            deliver=lambda event: me.tell(_Delivered(holder[0], event)),
            time_ms=self.venue_time_ms,
            settings=self.settings,
        )
        holder.append(session)
        self.session = session
        thread = self.thread = TrioThread(f"okx-{self.name}")
        try:
            self._sync_clock(thread, session.api)
            thread.start(session.serve)
            self.link.note_connected()
            listed = self._ok(thread.run(session.api.instruments), "instruments")
            self.instruments = parse_instruments(listed, broker=self.name)
            session.api.inst_codes = {
                inst.inst_id: inst.code
                for inst in self.instruments.values()
                if inst.code is not None
            }
            missing = [s for s in self.symbols if s not in self.instruments]
            if missing:
                raise ConfigError(
                    f"venue {self.name}: okx.symbols: {', '.join(missing)} "
                    "not listed as SPOT instruments by OKX",
                    key="okx.symbols",
                )
            # The journaled cursor may be older than the 3 days /trade/fills covers.
            sweep = thread.run(
                functools.partial(
                    _sweep, session.api, *self._sweep_arguments(), self.name, history=True
                )
            )
            self._apply(sweep)
            streamed = self._streamed()
            if streamed:
                thread.run(session.watch_quotes, streamed)
                self._snapshot_quotes(thread, session.api, streamed)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                f"session ended while starting: {exc}", broker=self.name
            ) from exc
        if self.check_interval:
            self.context.schedule_repeating(self.check_interval, _CheckTick())
        logger.info(
            "%s: connected and reconciled (fill cursor %s)", self.name, self.link.fill_cursor
        )

    def _snapshot_quotes(self, thread: TrioThread, api: OkxApi, symbols: Sequence[str]) -> None:
        """Each streamed instrument's ticker now (``/market/ticker``): a reference price
        from the start, before the stream's first change."""
        for symbol in symbols:
            answer = self._ok(thread.run(api.ticker, symbol), f"ticker {symbol}")
            push = WsPush("tickers", {"channel": "tickers", "instId": symbol}, answer.data)
            try:
                quotes = parse_quote(self.name, push, ts_ns=self.context.now_ns())
            except MalformedPayloadError as exc:
                self.note_malformed(exc)  # no reference price until the stream's first quote
                continue
            for quote in quotes:
                self.link.last_quotes[quote.symbol] = quote
                self.publish_quote(quote)

    def _sync_clock(self, thread: TrioThread, api: OkxApi) -> None:
        """Measure OKX's clock before anything is signed (REST timestamps must be
        within 30 s of it; ``expTime`` is on it)."""
        before = self._wall_time_ms()
        venue_ms = thread.run(_plain_time, self.urls.rest, self.settings.request_timeout, self.name)
        after = self._wall_time_ms()
        self._offset_ms = venue_ms - (before + after) // 2

    def disconnect(self) -> None:
        queued, self._queued = self._queued, []
        for item in queued:
            # Never sent: the breaker asks the venue, then sends it again.
            with self.completing(item.request):
                self.send_reply(
                    item.request,
                    BrokerReply(
                        item.request.seq, Outcome.TRANSPORT, "broker restarted before sending"
                    ),
                )
        thread, session = self.thread, self.session
        self.thread = self.session = None
        if thread is None:
            return
        if session is not None and thread.is_running:
            with contextlib.suppress(TrioLoopClosed):
                thread.run(session.aclose)
        thread.close()

    def _ok(self, result: RestResult, what: str) -> OkxAnswer:
        """The answer of a call that must succeed while connecting."""
        answer = result.answer
        if answer is None or not answer.ok:
            code = answer.code if answer is not None else str(result.status)
            raise BrokerConnectionError(
                f"{what} refused: {result.status} {code} {answer.msg if answer else ''}",
                broker=self.name,
                code=code,
                retry_after=_retry_after(result.headers),
            )
        return answer

    def _streamed(self) -> tuple[str, ...]:
        wanted = set(self.symbols)
        for subscription in self.link.subscriptions:
            wanted.update(subscription.symbols)
        return tuple(sorted(wanted & set(self.instruments)))

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        if self.thread is None or self.session is None:
            return  # the next incarnation streams what the subscriptions want
        unknown = [s for s in subscription.symbols if s not in self.instruments]
        if unknown:
            logger.warning("%s: no quotes for %s: not listed", self.name, ", ".join(unknown))
        try:
            self.thread.run(self.session.watch_quotes, self._streamed())
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    # -- reconciliation -------------------------------------------------------------------

    def _sweep_arguments(
        self,
    ) -> tuple[Mapping[str, tuple[str, Decimal]], Mapping[str, str], str | None]:
        unsettled = {
            cid: (order.inst_id, order.forwarded_quantity)
            for cid, order in self.link.orders.items()
            if not order.settled
        }
        known = {**self.link.settled, **self.link.client_ids}
        return unsettled, known, self.link.fill_cursor

    def _sweep_is_old(self) -> bool:
        """Whether the last sweep is old enough that /trade/fills (3 days) may miss
        fills after its cursor (then /trade/fills-history, 3 months, is read)."""
        last = self.link.last_sweep_ns
        return last is None or self.context.now_ns() - last > HISTORY_AFTER_NS

    def _apply(self, sweep: _Sweep) -> None:
        for asked in sweep.unsettled:
            cid = asked.client_order_id
            tracked = self.link.orders.get(cid)
            if tracked is None or tracked.settled:
                continue
            if asked.missing and tracked.order_id is not None:
                self._gone_from_records(cid, tracked)
                continue
            if asked.missing:
                self._never_arrived(cid)
                continue
            if asked.order is None:
                continue  # asked again at the next reconciliation
            self._note(cid, asked.order)
            for fill in asked.fills:
                self._forward(cid, fill)
            self._report_status(cid, asked.order)
        for order in sweep.pending:
            cid = self._client_id(order)
            self._note(cid, order)
            self._report_status(cid, order)
        for fill in sweep.fills:
            done = self.link.settled.get(fill.order_id)
            if done is not None and fill.order_id not in self.link.client_ids:
                # A settled order's fill: forwarded before (the OMS drops a repeat).
                self.reports_to.tell(fill_to_message(self.name, fill, done))
                continue
            owner = self.link.client_ids.get(fill.order_id)
            if owner is None:
                shown = sweep.foreign.get(fill.order_id)
                if shown is None:
                    raise MalformedPayloadError(
                        f"fill {fill.trade_id} of order {fill.order_id}, which OKX did not show",
                        broker=self.name,
                    )
                owner = self._client_id(shown)
                self._report_status(owner, shown)  # adopted before its fills
            self._forward(owner, fill)
        self._tell_balances(sweep.balances)
        self.link.last_sweep_ns = self.context.now_ns()
        if sweep.cursor is not None:
            self.link.fill_cursor = sweep.cursor
            self.reports_to.tell(VenueCursor(self.name, CURSOR_SCOPE, sweep.cursor))
        self._forget_settled()
        self.link.note_reconciled()

    def _tell_balances(self, balances: Mapping[str, Decimal]) -> None:
        """The account's balances, after the fills they reflect: spot positions are
        balances, and the OMS checks ours against them (and sizes a flatten by them)."""
        traded = set(self.symbols) | {order.inst_id for order in self.link.orders.values()}
        base_assets = {s: self.instruments[s].base for s in traded if s in self.instruments}
        if not base_assets:
            return
        self.reports_to.tell(
            VenueBalances(
                venue=self.name,
                totals={asset: balances.get(asset, _ZERO) for asset in base_assets.values()},
                base_assets=base_assets,
                ts_ns=self.context.now_ns(),
            )
        )

    def _client_id(self, order: OkxOrder) -> str:
        """Our id for an order: its ``clOrdId``, or ``okx<ordId>`` for one placed
        without (the OMS adopts it under that name)."""
        known = self.link.client_ids.get(order.order_id)
        if known is not None:
            return known
        return order.client_order_id or f"okx{order.order_id}"

    def _note(self, cid: str, order: OkxOrder) -> TrackedOrder:
        tracked = self.link.orders.setdefault(cid, TrackedOrder(order.inst_id))
        tracked.order_id = order.order_id
        self.link.client_ids[order.order_id] = cid
        tracked.venue_filled = max(tracked.venue_filled, order.filled)
        if order.is_terminal:
            tracked.terminal = True
        return tracked

    def _report_status(self, cid: str, order: OkxOrder) -> None:
        tracked = self._note(cid, order)
        tracked.accepted = True
        if order.is_terminal:
            tracked.ended = True
        self.reports_to.tell(status_report(self.name, order, cid, ts_ns=self.context.now_ns()))

    def _forward(self, cid: str, fill: OkxFill) -> None:
        """Tell ``fill`` once. Nothing is marked forwarded unless its message was built
        (``MalformedPayloadError`` before that): a fill not told is never skipped later."""
        known = self.link.orders.get(cid)
        if known is not None and fill.trade_id in known.forwarded:
            return
        message = fill_to_message(self.name, fill, cid)
        tracked = self.link.orders.setdefault(cid, TrackedOrder(fill.inst_id))
        tracked.forwarded.add(fill.trade_id)
        tracked.forwarded_quantity += fill.quantity
        tracked.venue_filled = max(tracked.venue_filled, tracked.forwarded_quantity)
        self.reports_to.tell(message)

    def _forget_settled(self) -> None:
        settled = self.link.settled
        for cid in [cid for cid, order in self.link.orders.items() if order.settled]:
            tracked = self.link.orders.pop(cid)
            if tracked.order_id is not None:
                self.link.client_ids.pop(tracked.order_id, None)
                settled[tracked.order_id] = cid
        while len(settled) > SETTLED_MEMORY:
            settled.popitem(last=False)

    def _gone_from_records(self, cid: str, tracked: TrackedOrder) -> None:
        """An order OKX had (its ordId is known) that is neither open nor on record
        any more: OKX keeps an order cancelled without a fill for 2 hours only (its
        fills, had it any, would keep it on record, and the fills sweep reports
        them). It ended cancelled, and is reported so."""
        logger.warning(
            "%s: %s (ordId %s) is neither open nor on OKX's record, which keeps a "
            "cancelled order without fills 2 hours: reported cancelled",
            self.name,
            cid,
            tracked.order_id,
        )
        tracked.terminal = tracked.ended = True
        self.reports_to.tell(
            OrderCanceled(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=tracked.order_id,
                ts_ns=self.context.now_ns(),
            )
        )

    def _never_arrived(self, cid: str) -> None:
        """The venue has no such order. A submit of unknown outcome is the breaker's
        to resolve; one the journal says was live is rejected, since nobody else will."""
        tracked = self.link.orders.get(cid)
        if tracked is None or tracked.order_id is not None:
            return
        if not tracked.report_if_missing:
            return
        del self.link.orders[cid]
        self.report_unknown_at_venue(cid)

    def _check(self) -> None:
        if self._checking or self.thread is None or self.session is None:
            return
        self._checking = True
        unsettled, known, cursor = self._sweep_arguments()
        self.thread.start_soon(
            functools.partial(
                _periodic,
                self.context.self,
                self.session.api,
                unsettled=unsettled,
                known=known,
                cursor=cursor,
                broker=self.name,
                history=self._sweep_is_old(),
            )
        )

    # -- the stream -----------------------------------------------------------------------

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Delivered):
            if message.session is self.session:
                self._on_event(message.event)
        elif isinstance(message, _Flush):
            self._flush()
        elif isinstance(message, _CheckTick):
            self._check()
        elif isinstance(message, _Checked):
            self._checking = False
            if message.malformed is not None:
                self.note_malformed(message.malformed)  # the next check asks again
            if message.sweep is not None:
                self._apply(message.sweep)
        else:
            return super().on_message(message)
        return None

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, OrdersPush):
            for row in event.rows:
                try:
                    order = parse_order(row, broker=self.name)
                    fill = fill_from_order_push(row, broker=self.name)
                    self._on_order_push(order, fill, row)
                except MalformedPayloadError as exc:
                    # Readable as JSON but not as an order update (a fill at price 0,
                    # an empty instId): nothing of it was marked forwarded, and the
                    # next incarnation's reconciliation reads the venue's record.
                    self._malformed_private(exc)
            self._forget_settled()
        elif isinstance(event, QuotePush):
            try:
                quotes = parse_quote(self.name, event.push, ts_ns=self.context.now_ns())
            except MalformedPayloadError as exc:
                self.note_malformed(exc)
                return
            for quote in quotes:
                self.link.last_quotes[quote.symbol] = quote
                self.publish_quote(quote)
        elif isinstance(event, MalformedFrame):
            if event.private:
                self._malformed_private(event.error)
            self.note_malformed(event.error)
        elif isinstance(event, ConnectionLost):
            raise BrokerConnectionError(f"connection lost: {event.reason}", broker=self.name)

    def _malformed_private(self, error: MalformedPayloadError) -> None:
        """An unreadable order update may have been a fill: count it, then fail so
        that the next incarnation reconciles."""
        self.note_malformed(error)
        raise BrokerConnectionError(
            "unreadable order update (malformed payload): reconciling in a new session",
            broker=self.name,
        ) from error

    def _on_order_push(self, order: OkxOrder, fill: OkxFill | None, row: Mapping[str, Any]) -> None:
        done = self.link.settled.get(order.order_id)
        if done is not None:
            # A late or repeated push about a settled order: its fill, if any, went
            # already (the OMS drops it by execution id); nothing else to say.
            if fill is not None:
                self.reports_to.tell(fill_to_message(self.name, fill, done))
            return
        known = order.order_id in self.link.client_ids or order.client_order_id in self.link.orders
        cid = self._client_id(order)
        if not known:
            # Placed by someone else (or a past process) while we run: adopt it
            # first, as the sweep would; its fills follow.
            if fill is not None:
                self._report_status(cid, _without_last_fill(order, fill))
            else:
                self._report_status(cid, order)
        tracked = self._note(cid, order)
        if not tracked.accepted:
            tracked.accepted = True
            self.reports_to.tell(
                OrderAccepted(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=order.order_id,
                    ts_ns=self.context.now_ns(),
                )
            )
        if fill is not None:
            self._forward(cid, fill)
        amend = row.get("amendResult")
        if amend == "0" and not order.is_terminal:
            self._report_modified(cid, order)
        elif amend == "-1":
            code = row.get("code") if isinstance(row.get("code"), str) else "-1"
            message = row.get("msg") if isinstance(row.get("msg"), str) else "amend failed"
            self.reports_to.tell(
                ModifyRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code=str(code or "-1"),
                    reason=str(message or "amend failed"),
                    ts_ns=self.context.now_ns(),
                )
            )
        if order.is_terminal and not tracked.ended:
            if tracked.forwarded_quantity < order.filled:
                self._fetch_fills(cid, order)
            tracked.ended = True
            self._report_end(cid, order)

    def _report_end(self, cid: str, order: OkxOrder) -> None:
        status = order_status(order)
        kind = {OrderStatus.CANCELED: OrderCanceled, OrderStatus.EXPIRED: OrderExpired}.get(status)
        if kind is not None:
            self.reports_to.tell(
                kind(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=order.order_id,
                    ts_ns=self.context.now_ns(),
                )
            )

    def _report_modified(self, cid: str, order: OkxOrder) -> None:
        self.reports_to.tell(
            OrderModified(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=order.order_id,
                quantity=order.size,
                price=order.price,
                ts_ns=self.context.now_ns(),
            )
        )

    def _fetch_fills(self, cid: str, order: OkxOrder) -> None:
        """The fills a terminal update shows but the stream has not delivered: forwarded
        before the order's end, so a crash cannot leave it closed without them."""
        if self.thread is None or self.session is None:
            return
        try:
            rows = self.thread.run(_guarded, _order_fills, self.session.api, order, self.name)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        if isinstance(rows, BrokerError):
            logger.warning("%s: fills of %s not fetched: %s", self.name, cid, rows)
            return
        for fill in rows:
            self._forward(cid, fill)

    # -- requests -------------------------------------------------------------------------

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.order_id is not None and not tracked.terminal

    def _exp_time_ms(self, request: BrokerRequest) -> int | None:
        """The request's deadline on the venue's clock (``expTime``)."""
        if request.deadline is None:
            return None
        left = max(0.0, request.deadline - self.monotonic())
        return self.venue_time_ms() + int(left * 1000)

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        instrument = self.instruments.get(command.symbol)
        if instrument is None:
            return self.reject(
                request,
                OrderRejected,
                command.client_order_id,
                "UNKNOWN_INSTRUMENT",
                f"{command.symbol} is not a listed SPOT instrument on {self.name}",
            )
        violation = check_order(instrument, command, self._reference(command))
        if violation is not None:
            return self.reject(
                request, OrderRejected, command.client_order_id, violation.code, violation.reason
            )
        try:
            args = order_args(command)
        except UnsupportedOrderError as exc:
            return self.reject(request, OrderRejected, command.client_order_id, exc.code, str(exc))
        self._api()  # not connected: answered at once
        self.link.orders.setdefault(command.client_order_id, TrackedOrder(command.symbol))
        # Submits that arrive while this one waits for its turn go together: the
        # flush is queued behind every request already in the mailbox.
        self._queued.append(_Queued(request, command, args))
        if len(self._queued) == 1:
            self.context.self.tell(_Flush())
        return IN_FLIGHT

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        if self.session is None or self.session.closed:
            # This incarnation is ending (its ConnectionLost is queued): the submits
            # go behind it, to the next one. Nothing was sent.
            for item in queued:
                self.context.self.tell(item.request)
            return
        kind = "order" if len(queued) == 1 else "batch-orders"
        for each in queued:
            self._count(f"{kind}:{each.command.symbol}")
        if len(queued) == 1:
            (item,) = queued
            place = functools.partial(
                _place,
                self._api(),
                item.args,
                exp_time_ms=self._exp_time_ms(item.request),
                use_ws=self.ws_orders,
                request=item.request,
                monotonic=self.monotonic,
            )
            answer = self._run(item.request, place)
            if isinstance(answer, BrokerReply):
                with self.completing(item.request):
                    self.send_reply(item.request, answer)
            return
        for start in range(0, len(queued), BATCH_LIMIT):
            self._flush_batch(queued[start : start + BATCH_LIMIT])

    def _flush_batch(self, batch: Sequence[_Queued]) -> None:
        """One ``batch-orders`` for several submits, each answered from its own item.
        Its ``expTime`` is the earliest deadline: nothing is accepted past any."""
        assert self.thread is not None and self.session is not None
        deadlines = [self._exp_time_ms(item.request) for item in batch]
        exp_time_ms = None if None in deadlines else min(d for d in deadlines if d is not None)
        job = functools.partial(
            _place_batch,
            self._api(),
            [(item.request, item.args) for item in batch],
            exp_time_ms=exp_time_ms,
            use_ws=self.ws_orders,
            monotonic=self.monotonic,
        )
        try:
            result = self.thread.run(_guarded, job)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        rates = self._rates()
        acks: Mapping[str, OkxAck] = {}
        if isinstance(result, MalformedPayloadError):
            self.note_malformed(result)
        if isinstance(result, _Batch) and result.placed is not None:
            if result.placed.ws:
                self.link.ws_requests += 1
            else:
                self.link.rest_requests += 1
            acks = self._batch_acks(result.placed)
        for item in batch:
            request = item.request
            reply: BrokerReply
            if isinstance(result, NotSent) and self.session is not None and self.session.closed:
                self.context.self.tell(request)  # to the next incarnation
                continue
            if isinstance(result, BrokerError):
                reply = _failure_reply(request, result)
            elif request.seq in result.expired or result.placed is None:
                reply = BrokerReply(request.seq, Outcome.TIMEOUT, "expired unsent")
            else:
                reply = self._batch_item(request, item.command, result.placed, acks)
            with self.completing(request):
                self.send_reply(request, reply, rates=rates)

    def _batch_acks(self, placed: _Placed) -> dict[str, OkxAck]:
        """The readable items of a batch answer by client id; each unreadable one is
        counted (its order's outcome is unknown: the breaker looks it up)."""
        acks: dict[str, OkxAck] = {}
        for row in placed.answer.data if placed.answer is not None else ():
            try:
                ack = parse_ack(row, broker=self.name)
            except MalformedPayloadError as exc:
                self.note_malformed(exc)
                continue
            acks[ack.client_order_id] = ack
        return acks

    def _batch_item(
        self,
        request: BrokerRequest,
        command: SubmitOrder,
        placed: _Placed,
        acks: Mapping[str, OkxAck],
    ) -> BrokerReply:
        refusal = self._transport_refusal(request, placed)
        if refusal is not None:
            return refusal
        ack = acks.get(command.client_order_id)
        if ack is None:
            # The venue answered without a readable item for it: its outcome is unknown.
            return BrokerReply(request.seq, Outcome.TRANSPORT, "no item for it in the answer")
        return self._on_place_item(request, command, ack, placed)

    def _reference(self, order: SubmitOrder) -> Decimal | None:
        """What a market order will pay about: the side it takes of the latest quote."""
        quote = self.link.last_quotes.get(order.symbol)
        if quote is None:
            return None
        return quote.ask if order.side is Side.BUY else quote.bid

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        args = cancel_args(command.symbol, command.client_order_id)
        return self._run(request, _cancel, self._api(), args, self.ws_orders)

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        if command.new_client_order_id is not None:
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                "UNSUPPORTED",
                "OKX amends in place (the order keeps its ids): no replacement id",
            )
        try:
            args = amend_args(command, f"tn{request.seq}")
        except UnsupportedOrderError as exc:
            return self.reject(request, ModifyRejected, command.client_order_id, exc.code, str(exc))
        self._count(f"amend:{command.symbol}")
        return self._run(
            request, _amend, self._api(), args, self._exp_time_ms(request), self.ws_orders
        )

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        return self._run(
            request, _query, self._api(), command.symbol, command.client_order_id, self.name
        )

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        return self._run(request, _cancel_all, self._api(), command.symbol, self.name)

    def _api(self) -> OkxApi:
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        return self.session.api

    def _count(self, counter: str) -> None:
        self.link.sent.setdefault(counter, collections.deque()).append(self.monotonic())

    def _rates(self) -> tuple[RateObservation, ...]:
        """OKX reports no usage: what this link sent per counter in the last window,
        against OKX's limit, for the breaker's limiter."""
        now = self.monotonic()
        observations = []
        for counter, times in self.link.sent.items():
            limit, window = RATE_LIMITS[counter.partition(":")[0]]
            while times and times[0] <= now - window:
                times.popleft()
            observations.append(RateObservation(counter, float(len(times)), limit, window, now))
        return tuple(observations)

    def _run(
        self, request: BrokerRequest, job: Callable[..., Awaitable[Any]], *args: Any
    ) -> Answer:
        """Run ``job`` on the trio thread and answer from its result."""
        assert self.thread is not None
        try:
            result = self.thread.run(_guarded, job, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        if isinstance(result, NotSent):
            if self.session is not None and self.session.closed:
                # This incarnation is ending (its ConnectionLost is queued): the
                # request goes behind it, to the next one.
                self.context.self.tell(request)
                return IN_FLIGHT
            return BrokerReply(request.seq, Outcome.RATE_LIMITED, f"not sent: {result}")
        try:
            if isinstance(result, MalformedPayloadError):
                raise result  # read on the trio thread
            if isinstance(result, BrokerError):
                reply = _failure_reply(request, result)
            else:
                reply = self._answer(request, result)
        except MalformedPayloadError as exc:
            # An answer we cannot read: whatever it said is unknown, and the
            # breaker asks the venue before anything is sent again.
            self.note_malformed(exc)
            reply = BrokerReply(
                request.seq, Outcome.TRANSPORT, f"unreadable answer (outcome unknown): {exc}"
            )
        if not reply.rates:
            reply = BrokerReply(
                reply.seq,
                reply.outcome,
                reply.detail,
                reply.retry_after,
                reply.report,
                self._rates(),
            )
        return reply

    def _answer(self, request: BrokerRequest, result: Any) -> BrokerReply:
        command = request.command
        if isinstance(command, SubmitOrder):
            return self._on_placed(request, command, result)
        if isinstance(command, CancelOrder):
            return self._on_canceled(request, command, result)
        if isinstance(command, ModifyOrder):
            return self._on_amended(request, command, result)
        if isinstance(command, QueryOrder):
            return self._on_queried(request, command, result)
        assert isinstance(command, CancelAllOrders)
        refused = [ack for ack in result if not ack.ok]
        detail = "; ".join(
            f"{a.client_order_id or a.order_id}: {a.code} {a.message}" for a in refused
        )
        return BrokerReply(request.seq, Outcome.OK, detail)

    def _transport_refusal(self, request: BrokerRequest, placed: _Placed) -> BrokerReply | None:
        """The reply for an answer that refused the request as a whole (no items),
        or None when the items say how each order fared."""
        answer = placed.answer
        if answer is not None and (answer.ok or answer.data):
            return None
        code = answer.code if answer is not None else str(placed.status)
        message = answer.msg if answer is not None else f"HTTP {placed.status}"
        detail = f"{placed.status} {code}: {message}"
        kind = classify(code, placed.status)
        if kind is ErrorKind.RATE_LIMITED:
            return BrokerReply(
                request.seq, Outcome.RATE_LIMITED, detail, retry_after=_rate_wait(placed.headers)
            )
        if kind in (ErrorKind.UNKNOWN_OUTCOME, ErrorKind.AUTH):
            return BrokerReply(request.seq, Outcome.TRANSPORT, detail)
        return None

    def _item(self, request: BrokerRequest, placed: _Placed) -> OkxAck | BrokerReply:
        refusal = self._transport_refusal(request, placed)
        if refusal is not None:
            return refusal
        answer = placed.answer
        assert answer is not None
        acks = [parse_ack(row, broker=self.name) for row in answer.data]
        if len(acks) != 1:
            if not acks:
                return OkxAck("", "", answer.code, answer.msg)
            raise MalformedPayloadError(f"{len(acks)} items for one order", broker=self.name)
        return acks[0]

    def _item_failure(
        self, request: BrokerRequest, ack: OkxAck, placed: _Placed
    ) -> BrokerReply | None:
        kind = ack.kind
        detail = f"{ack.code}: {ack.message}"
        if kind is ErrorKind.RATE_LIMITED:
            return BrokerReply(
                request.seq, Outcome.RATE_LIMITED, detail, retry_after=_rate_wait(placed.headers)
            )
        if kind is ErrorKind.UNKNOWN_OUTCOME:
            return BrokerReply(request.seq, Outcome.TRANSPORT, detail)
        return None

    def _on_placed(
        self, request: BrokerRequest, command: SubmitOrder, placed: _Placed
    ) -> BrokerReply:
        if placed.ws:
            self.link.ws_requests += 1
        else:
            self.link.rest_requests += 1
        item = self._item(request, placed)
        if isinstance(item, BrokerReply):
            return item
        return self._on_place_item(request, command, item, placed)

    def _on_place_item(
        self, request: BrokerRequest, command: SubmitOrder, item: OkxAck, placed: _Placed
    ) -> BrokerReply:
        """One order's item in a placement answer: accepted, refused, or unknown."""
        cid = command.client_order_id
        if item.ok:
            tracked = self.link.orders.setdefault(cid, TrackedOrder(command.symbol))
            tracked.order_id = item.order_id
            self.link.client_ids[item.order_id] = cid
            if not tracked.accepted:
                tracked.accepted = True
                self.reports_to.tell(
                    OrderAccepted(
                        client_order_id=cid,
                        venue=self.name,
                        venue_order_id=item.order_id,
                        ts_ns=self.context.now_ns(),
                    )
                )
            return BrokerReply(request.seq, Outcome.OK)
        failure = self._item_failure(request, item, placed)
        if failure is not None:
            return failure
        if item.kind is ErrorKind.DUPLICATE:
            # The venue has this client id pending: never a second order. Its
            # stream and the breaker's look-up tell its story.
            return BrokerReply(request.seq, Outcome.TRANSPORT, f"{item.code}: {item.message}")
        unsent = self.link.orders.get(cid)
        if unsent is not None and unsent.order_id is None:
            del self.link.orders[cid]
        return self.reject(request, OrderRejected, cid, item.code, item.message)

    def _on_canceled(
        self, request: BrokerRequest, command: CancelOrder, placed: _Placed
    ) -> BrokerReply:
        item = self._item(request, placed)
        if isinstance(item, BrokerReply):
            return item
        if item.ok:
            return BrokerReply(request.seq, Outcome.OK)  # the stream tells the cancel
        failure = self._item_failure(request, item, placed)
        if failure is not None:
            return failure
        return self.reject(
            request, CancelRejected, command.client_order_id, item.code, item.message
        )

    def _on_amended(
        self,
        request: BrokerRequest,
        command: ModifyOrder,
        result: tuple[_Placed, RestResult | None],
    ) -> BrokerReply:
        placed, after = result
        item = self._item(request, placed)
        if isinstance(item, BrokerReply):
            return item
        if item.ok:
            answer = after.answer if after is not None else None
            if answer is not None and answer.ok and answer.data:
                # What the venue shows now: the amend's result, never more.
                try:
                    order = parse_order(answer.data[0], broker=self.name)
                except MalformedPayloadError as exc:
                    # The amend was accepted (its item says so); what it made of the
                    # order is unknown: no report here, the stream's push tells it.
                    self.note_malformed(exc)
                    return BrokerReply(request.seq, Outcome.OK)
                wanted_size = command.quantity is None or order.size == command.quantity
                wanted_price = command.price is None or order.price == command.price
                if wanted_size and wanted_price and not order.is_terminal:
                    self._note(command.client_order_id, order)
                    self._report_modified(command.client_order_id, order)
            return BrokerReply(request.seq, Outcome.OK)
        failure = self._item_failure(request, item, placed)
        if failure is not None:
            return failure
        kind: Rejection = ModifyRejected
        return self.reject(request, kind, command.client_order_id, item.code, item.message)

    def _on_queried(
        self,
        request: BrokerRequest,
        command: QueryOrder,
        result: tuple[RestResult, tuple[OkxFill, ...]],
    ) -> BrokerReply:
        found, fills = result
        answer = found.answer
        seq = request.seq
        if answer is None or not answer.ok:
            code = answer.code if answer is not None else str(found.status)
            message = answer.msg if answer is not None else f"HTTP {found.status}"
            kind = classify(code, found.status)
            detail = f"{found.status} {code}: {message}"
            if kind is ErrorKind.NOT_FOUND:
                self._never_arrived(command.client_order_id)
                return BrokerReply(seq, Outcome.NOT_FOUND, detail)
            if kind is ErrorKind.RATE_LIMITED:
                return BrokerReply(
                    seq, Outcome.RATE_LIMITED, detail, retry_after=_retry_after(found.headers)
                )
            if kind in (ErrorKind.UNKNOWN_OUTCOME, ErrorKind.AUTH):
                return BrokerReply(seq, Outcome.TRANSPORT, detail)
            return BrokerReply(seq, Outcome.REJECTED, detail)
        if not answer.data:
            return BrokerReply(seq, Outcome.NOT_FOUND, "no such order")
        order = parse_order(answer.data[0], broker=self.name)
        cid = command.client_order_id
        # Built before anything changes: an order that cannot be reported is unread.
        report = status_report(self.name, order, cid, ts_ns=self.context.now_ns())
        self._note(cid, order)
        for fill in fills:
            self._forward(cid, fill)
        tracked = self.link.orders[cid]
        tracked.accepted = True
        if order.is_terminal:
            tracked.ended = True
        self.reports_to.tell(report)
        self._forget_settled()
        return BrokerReply(seq, Outcome.OK, report=report)


#: A sweep this long after the last one reads fills-history (3 months), not fills (3 days).
HISTORY_AFTER_NS = 2 * 24 * 3600 * 1_000_000_000

#: How many settled orders the link remembers, to know their late pushes.
SETTLED_MEMORY = 10_000


def _failure_reply(request: BrokerRequest, error: BrokerError) -> BrokerReply:
    """A request whose answer never came: the outcome is unknown, or (``NotSent``)
    nothing left, which, like a 429, the breaker may send again at once."""
    if isinstance(error, NotSent):
        return BrokerReply(request.seq, Outcome.RATE_LIMITED, f"not sent: {error}")
    outcome = Outcome.TIMEOUT if isinstance(error, BrokerTimeoutError) else Outcome.TRANSPORT
    return BrokerReply(request.seq, outcome, str(error))


def _without_last_fill(order: OkxOrder, fill: OkxFill) -> OkxOrder:
    """``order`` as it stood before ``fill`` (an adopted order's report must not
    claim the fill that follows it)."""
    filled = max(_ZERO, order.filled - fill.quantity)
    state = order.state if filled == order.filled else ("partially_filled" if filled else "live")
    return dataclasses.replace(order, filled=filled, state=state)


def _rate_wait(headers: Mapping[str, str]) -> float:
    """How long to wait after a rate-limit answer: its Retry-After when there is one
    (OKX documents none), else OKX's rate window (its limits are per 2 s), after
    which the budget has been restored."""
    retry_after = _retry_after(headers)
    return ORDER_RATE[1] if retry_after is None else retry_after


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


# -- the network half of each request, on the trio thread --------------------------------------


async def _plain_time(rest_url: str, timeout: float, broker: str) -> int:
    """OKX's clock (``/public/time``), read before the session exists."""
    try:
        async with httpx.AsyncClient(base_url=rest_url, timeout=timeout) as client:
            response = await client.get(SERVER_TIME.path)
    except httpx.HTTPError as exc:
        raise BrokerConnectionError(
            f"cannot read OKX's time: {type(exc).__name__}", broker=broker
        ) from exc
    try:
        answer = parse_answer(response.json(), broker=broker)
    except ValueError as exc:
        raise BrokerConnectionError(
            f"/public/time: HTTP {response.status_code}", broker=broker
        ) from exc
    ts = answer.data[0].get("ts") if answer.ok and answer.data else None
    if not isinstance(ts, str) or not ts.isdigit():
        raise BrokerConnectionError(f"/public/time: {answer.code} {answer.msg}", broker=broker)
    return int(ts)


async def _guarded(job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``job``'s result, or the ``BrokerError`` it raised (outcome unknown)."""
    try:
        return await job(*args)
    except BrokerError as exc:
        return exc


def _is_ws_refusal(answer: WsOpAnswer) -> bool:
    """An operation the WebSocket refused as such (60xxx, no items): it never reached
    the trading system, so REST may take it. 60014 (too frequent) is a rate limit."""
    code = answer.answer.code
    return not answer.answer.data and code.startswith("60") and code != "60014"


async def _send(
    api: OkxApi,
    use_ws: bool,
    ws_call: Callable[[], Awaitable[WsOpAnswer]],
    rest_call: Callable[[], Awaitable[RestResult]],
) -> _Placed:
    """The fast path, or REST when the WebSocket cannot take the operation."""
    if use_ws and api.ws_ready:
        try:
            answer = await ws_call()
        except NotSent:
            pass  # the socket was gone before anything left: REST takes it
        else:
            if not _is_ws_refusal(answer):
                return _Placed(answer.answer, ws=True)
            logger.warning(
                "%s refused over the WebSocket (%s %s): sending over REST",
                answer.op,
                answer.answer.code,
                answer.answer.msg,
            )
    result = await rest_call()
    return _Placed(result.answer, result.status, result.headers)


async def _place(
    api: OkxApi,
    args: Mapping[str, str],
    *,
    exp_time_ms: int | None,
    use_ws: bool,
    request: BrokerRequest,
    monotonic: Callable[[], float],
) -> _Placed:
    # Nothing leaves past the request's deadline: the breaker may have moved on,
    # and expTime would refuse it anyway.
    refuse_if_expired(request, monotonic)
    placed = await _send(
        api,
        use_ws,
        lambda: api.ws_place(args, exp_time_ms=exp_time_ms),
        lambda: api.place(args, exp_time_ms=exp_time_ms),
    )
    return placed


async def _place_batch(
    api: OkxApi,
    orders: Sequence[tuple[BrokerRequest, Mapping[str, str]]],
    *,
    exp_time_ms: int | None,
    use_ws: bool,
    monotonic: Callable[[], float],
) -> _Batch:
    """Several placements in one ``batch-orders``; a request past its deadline stays out."""
    expired = frozenset(request.seq for request, _ in orders if request.expired(monotonic()))
    live = [args for request, args in orders if request.seq not in expired]
    if not live:
        return _Batch(None, expired)
    placed = await _send(
        api,
        use_ws,
        lambda: api.ws_place_batch(live, exp_time_ms=exp_time_ms),
        lambda: api.place_batch(live, exp_time_ms=exp_time_ms),
    )
    return _Batch(placed, expired)


async def _cancel(api: OkxApi, args: Mapping[str, str], use_ws: bool) -> _Placed:
    return await _send(api, use_ws, lambda: api.ws_cancel(args), lambda: api.cancel(args))


async def _amend(
    api: OkxApi, args: Mapping[str, str], exp_time_ms: int | None, use_ws: bool
) -> tuple[_Placed, RestResult | None]:
    placed = await _send(
        api,
        use_ws,
        lambda: api.ws_amend(args, exp_time_ms=exp_time_ms),
        lambda: api.amend(args, exp_time_ms=exp_time_ms),
    )
    after = None
    answer = placed.answer
    if answer is not None and answer.ok:
        after = await api.order(args["instId"], client_order_id=args["clOrdId"])
    return placed, after


async def _order_fills(
    api: OkxApi, order: OkxOrder, broker: str, *, history: bool = False
) -> tuple[OkxFill, ...]:
    """Every fill of ``order`` (``/trade/fills?ordId=``, paged), oldest first."""
    rows: list[OkxFill] = []
    after: str | None = None
    while True:
        result = await api.fills(
            inst_id=order.inst_id, order_id=order.order_id, after=after, history=history
        )
        answer = _must(result, "fills", broker)
        page = [parse_fill(row, broker=broker) for row in answer.data]
        rows.extend(page)
        if len(page) < PAGE_LIMIT or not page[-1].bill_id:
            break
        after = page[-1].bill_id
    return tuple(reversed(rows))


#: Pages of ``orders-history`` a reconciliation reads per instrument before asking for
#: the unsettled orders it did not find there one by one (``trade/order``).
HISTORY_PAGES = 2


async def _recent_history(api: OkxApi, instruments: set[str], broker: str) -> dict[str, OkxOrder]:
    """The most recent finished orders of ``instruments`` by client id (``orders-history``,
    newest first, ``HISTORY_PAGES`` pages each): one read settles many orders that
    ended while nobody watched, where ``trade/order`` would take a request each."""
    found: dict[str, OkxOrder] = {}
    for inst_id in sorted(instruments):
        after: str | None = None
        for _ in range(HISTORY_PAGES):
            answer = _must(await api.orders_history(inst_id, after=after), "orders-history", broker)
            page = [parse_order(row, broker=broker) for row in answer.data]
            for order in page:
                if order.client_order_id and order.client_order_id not in found:
                    found[order.client_order_id] = order
            if len(page) < PAGE_LIMIT:
                break
            after = page[-1].order_id
    return found


async def _query(
    api: OkxApi, inst_id: str, client_order_id: str, broker: str, *, history: bool = False
) -> tuple[RestResult, tuple[OkxFill, ...]]:
    found = await api.order(inst_id, client_order_id=client_order_id)
    answer = found.answer
    if answer is None or not answer.ok or not answer.data:
        return found, ()
    order = parse_order(answer.data[0], broker=broker)
    fills = await _order_fills(api, order, broker, history=history) if order.filled > 0 else ()
    return found, fills


async def _cancel_all(api: OkxApi, symbol: str | None, broker: str) -> list[OkxAck]:
    """Every open order (of ``symbol``), cancelled up to 20 per request, per instrument
    no faster than OKX's 300 orders per 2 s (``cancel-batch-orders``)."""
    pending = await _pending(api, symbol, broker)
    by_instrument: dict[str, list[OkxOrder]] = {}
    for order in pending:
        by_instrument.setdefault(order.inst_id, []).append(order)
    acks: list[OkxAck] = []
    for orders in by_instrument.values():
        window_start, used = trio.current_time(), 0
        for start in range(0, len(orders), BATCH_LIMIT):
            batch = orders[start : start + BATCH_LIMIT]
            if used + len(batch) > BATCH_CANCEL.limit:
                await trio.sleep_until(window_start + BATCH_CANCEL.window)
                window_start, used = trio.current_time(), 0
            used += len(batch)
            result = await api.cancel_batch(
                [{"instId": o.inst_id, "ordId": o.order_id} for o in batch]
            )
            acks.extend(batch_acks(result, [o.order_id for o in batch], broker))
    return acks


def batch_acks(result: RestResult, order_ids: Sequence[str], broker: str) -> list[OkxAck]:
    """Each order's outcome in a batch answer: its own item when the venue gave one;
    the whole answer's code for each order when it refused the batch as such."""
    answer = result.answer
    if answer is not None and answer.data:
        return list(parse_acks(answer, broker=broker))
    code = answer.code if answer is not None else str(result.status)
    message = answer.msg if answer is not None else f"HTTP {result.status}"
    return [OkxAck("", order_id, code, message) for order_id in order_ids]


async def _pending(api: OkxApi, symbol: str | None, broker: str) -> list[OkxOrder]:
    orders: list[OkxOrder] = []
    after: str | None = None
    while True:
        answer = _must(await api.orders_pending(symbol, after=after), "orders-pending", broker)
        page = [parse_order(row, broker=broker) for row in answer.data]
        orders.extend(page)
        if len(page) < PAGE_LIMIT:
            return orders
        after = page[-1].order_id


def _must(result: RestResult, what: str, broker: str) -> OkxAnswer:
    answer = result.answer
    if answer is None or not answer.ok:
        code = answer.code if answer is not None else str(result.status)
        raise BrokerConnectionError(
            f"{what} refused: {result.status} {code} {answer.msg if answer else ''}",
            broker=broker,
            code=code,
            retry_after=_retry_after(result.headers),
        )
    return answer


async def _fills_after(
    api: OkxApi, cursor: str | None, broker: str, *, history: bool = False
) -> tuple[list[OkxFill], str | None]:
    """Every fill after the ``billId`` ``cursor``, oldest first, and the new cursor.

    Without a cursor (a new journal), the history before now is not ours to
    sweep: the cursor starts at the newest fill (``"0"`` when there is none)."""
    if cursor is None:
        answer = _must(await api.fills(history=history), "fills", broker)
        latest = [parse_fill(row, broker=broker) for row in answer.data[:1]]
        return [], latest[0].bill_id if latest and latest[0].bill_id else "0"
    collected: list[OkxFill] = []
    before = cursor
    while True:
        answer = _must(await api.fills(before=before, history=history), "fills", broker)
        page = [parse_fill(row, broker=broker) for row in answer.data]
        if not page:
            break
        collected.extend(page)
        newest = max(page, key=lambda fill: int(fill.bill_id) if fill.bill_id.isdigit() else 0)
        if not newest.bill_id or newest.bill_id == before or len(page) < PAGE_LIMIT:
            before = newest.bill_id or before
            break
        before = newest.bill_id
    collected.sort(key=lambda fill: int(fill.bill_id) if fill.bill_id.isdigit() else 0)
    unique = {fill.trade_id + "/" + fill.inst_id: fill for fill in collected}
    return list(unique.values()), before


async def _sweep(
    api: OkxApi,
    unsettled: Mapping[str, tuple[str, Decimal]],
    known: Mapping[str, str],
    cursor: str | None,
    broker: str,
    *,
    history: bool = False,
) -> _Sweep:
    """One reconciliation's reads. An unsettled order the open-orders list or the
    recent order history (``orders-history``) shows is not asked for again (OKX
    counts order look-ups per instrument; the rest are asked by ``clOrdId``), and its fills
    are read only when it shows more filled than the link forwarded. ``history``:
    fills from ``fills-history`` (3 months) rather than ``fills`` (3 days), for a
    sweep whose cursor may be older than that."""
    pending = await _pending(api, None, broker)
    resting = {o.client_order_id: o for o in pending if o.client_order_id}
    finished = await _recent_history(
        api, {inst for cid, (inst, _) in unsettled.items() if cid not in resting}, broker
    )
    asked = []
    for cid, (inst_id, forwarded) in sorted(unsettled.items()):
        shown = resting.get(cid) or finished.get(cid)
        if shown is not None:
            fills = (
                await _order_fills(api, shown, broker, history=history)
                if shown.filled > forwarded
                else ()
            )
            asked.append(_Asked(cid, shown, fills=fills))
            continue
        found, fills = await _query(api, inst_id, cid, broker, history=history)
        answer = found.answer
        if answer is not None and answer.ok and answer.data:
            asked.append(_Asked(cid, parse_order(answer.data[0], broker=broker), fills=fills))
        else:
            code = answer.code if answer is not None else str(found.status)
            missing = classify(code, found.status) is ErrorKind.NOT_FOUND
            asked.append(_Asked(cid, None, missing=missing))
    swept, new_cursor = await _fills_after(api, cursor, broker, history=history)
    balances = parse_balances(_must(await api.balance(), "balance", broker), broker=broker)
    seen = set(known) | {o.order_id for o in pending}
    seen.update(a.order.order_id for a in asked if a.order is not None)
    foreign: dict[str, OkxOrder] = {}
    for fill in swept:
        if fill.order_id in seen or fill.order_id in foreign:
            continue
        result = await api.order(fill.inst_id, order_id=fill.order_id)
        answer = _must(result, "order", broker)
        if answer.data:
            foreign[fill.order_id] = parse_order(answer.data[0], broker=broker)
    return _Sweep(tuple(asked), tuple(pending), tuple(swept), foreign, new_cursor, balances)


async def _periodic(
    me: Address,
    api: OkxApi,
    *,
    unsettled: Mapping[str, tuple[str, Decimal]],
    known: Mapping[str, str],
    cursor: str | None,
    broker: str,
    history: bool,
) -> None:
    try:
        sweep = await _sweep(api, unsettled, known, cursor, broker, history=history)
    except MalformedPayloadError as exc:  # never dropped silently: the actor counts it
        logger.warning("%s: periodic check failed: %s", broker, exc)
        me.tell(_Checked(None, malformed=exc))
        return
    except Exception as exc:  # noqa: BLE001 - an escaping error would end the session's loop
        logger.warning("%s: periodic check failed: %s: %s", broker, type(exc).__name__, exc)
        me.tell(_Checked(None))
        return
    me.tell(_Checked(sweep))
