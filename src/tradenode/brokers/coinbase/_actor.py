"""The Coinbase Advanced Trade broker actor: the venue's half of the contract, on ``BrokerBase``.

One incarnation is one session (``_session``). ``on_start`` opens the user
connection (``heartbeats`` and ``user`` subscribed), reads the venue's time
(JWTs are stamped with it), checks every configured product
(``GET /products/{id}``; one Coinbase does not list is a ``ConfigError``
naming it), then reconciles, and only then streams quotes and handles
requests.

**Fills, exactly once.** The user channel tells an order's *cumulative*
filled size and average price, never an execution. Coinbase's REST fills
list (``/orders/historical/fills``) has one row per execution with its
``trade_id``, so every fill reported to the OMS comes from that list, with
execution id ``coinbase-<trade_id>``, on both paths:

- live: each user-channel state goes through :class:`CumulativeFills`; a
  state that grows the order's cumulative size (a repeat or an older state
  never does) makes the actor fetch that order's fills and forward the ones
  it has not forwarded, in Coinbase's sequence order, before the status
  that shows them. Fewer fills than the cumulative size (the list lags the
  channel) are asked for again (``fills_lookups`` times), then left to the
  periodic check; a terminal status waits until its fills are all forwarded;
- reconciliation: fills since the journaled cursor (``start_sequence_timestamp``,
  the last swept fill's ``sequence_timestamp``) plus every unsettled order's
  fills, by trade id as well.

A fill derived live and the same fill seen in reconciliation are one
execution id, so the OMS applies it once whatever way it came first.

**Sequence numbers.** Every message on a connection carries the next
``sequence_num``. A repeat (not above the last) is counted and skipped; a
gap on the user connection means updates were lost: the actor fails, the
supervisor restarts it, and the new incarnation reconciles. A gap on the
market connection loses no order event: it is counted, and the ``level2``
books (whose top is the quote) are dropped, the ticker quoting until the
next connection.

**Requests** are answered one at a time (the actor waits on its trio thread
for each REST answer, at most ``request_timeout``). A submit's lost answer is
``TIMEOUT``/``TRANSPORT``; the breaker then asks (``query``: the order by its
venue id if the link learnt it, else the account's orders listed newest
first and matched by ``client_order_id``, since Coinbase has no lookup by
client id). Coinbase declares no acceptance window, so nothing is ever
re-sent blindly. Modify is ``POST /orders/edit`` (new total size, limit price, and stop
price of a stop-limit) for a GTC limit or stop-limit order, the kinds
Coinbase edits; any other order's modify is a cancel/replace (capabilities:
``AmendMode.NATIVE_WHERE_DECLARED``): cancel, wait for Coinbase to show the
original CANCELLED, and place the rest of the logical total under the new
client id with the original's terms. Cancel is ``batch_cancel`` by venue order id; a
cancel-all lists the product's open orders and cancels them in batches.

A malformed frame is logged, counted and skipped: if it was an update it
took a sequence number, so the next frame shows the gap and the actor
restarts and reconciles; one that took no number carried nothing.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
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
from ...messages._enums import OrderType, TimeInForce
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
    OrderModified,
    OrderRejected,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...supervision import Address, TrioLoopClosed, TrioThread
from .._base import IN_FLIGHT, UNKNOWN_AT_VENUE, Answer, BrokerBase, BrokerLink, refuse_if_expired
from ._codec import (
    BookEvent,
    CoinbaseAccount,
    CoinbaseErrorAnswer,
    CoinbaseFill,
    CoinbaseOrder,
    CoinbaseProduct,
    CumulativeFills,
    ErrorKind,
    HeartbeatEvent,
    SubscriptionsEvent,
    TickerEvent,
    TopOfBook,
    UnsupportedOrderError,
    UserEvent,
    UserOrder,
    encode_edit,
    encode_order,
    format_time,
    is_open_status,
    parse_accounts_page,
    parse_cancel_answer,
    parse_create_answer,
    parse_edit_answer,
    parse_fills_page,
    parse_frame,
    parse_order_answer,
    parse_orders_page,
    parse_product,
    parse_time_ns,
    status_report,
)
from ._endpoints import CoinbaseApi, RestResult
from ._session import (
    CoinbaseSession,
    ConnectionLost,
    Frame,
    NotSent,
    SessionEvent,
    retry_after_seconds,
)
from ._signing import CdpCredentials

__all__ = ["CURSOR_SCOPE", "CoinbaseBroker", "CoinbaseLink", "TrackedOrder"]

logger = logging.getLogger("tradenode.brokers.coinbase")

CURSOR_SCOPE = "fills"
#: Pages of the order list a client-id lookup reads (250 orders each), newest first.
LOOKUP_PAGES = 8
#: Order ids per ``batch_cancel`` (Coinbase documents no maximum; kept modest).
CANCEL_BATCH = 100
_TERMINAL = frozenset({"FILLED", "CANCELLED", "EXPIRED", "FAILED"})
RECENT_TRADES = 100_000


@dataclass
class TrackedOrder:
    """One of our orders (or one adopted), from its submit until settled."""

    product_id: str
    quantity: Decimal | None = None
    order_id: str | None = None
    editable: bool = False
    """A GTC limit or stop-limit order: ``POST /orders/edit`` changes it in place."""
    accepted: bool = False
    """The OMS has been told the venue has it (accepted, or a status report)."""
    forwarded: Decimal = Decimal(0)
    """Filled size forwarded to the OMS (the sum of its fills by trade id)."""
    trade_ids: set[str] = field(default_factory=set)
    venue_filled: Decimal = Decimal(0)
    """The largest cumulative filled size the venue has shown."""
    final_status: str | None = None
    """The terminal status the venue showed, until its fills are all forwarded."""
    final_reason: str = ""
    report_if_missing: bool = False
    """A journal said it was live: if the venue has never heard of it, say so."""
    lookups: int = 0
    submitted: SubmitOrder | None = None
    """The order as this connection placed it: the terms a cancel/replace keeps."""

    @property
    def settled(self) -> bool:
        return self.final_status is not None and self.forwarded >= self.venue_filled


@dataclass
class CoinbaseLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    """Client order id -> order, until settled."""
    client_ids: dict[str, str] = field(default_factory=dict)
    """Venue order id -> client order id, for the orders tracked."""
    cursor: str | None = None
    """``sequence_timestamp`` of the last fill a sweep forwarded (RFC3339)."""
    cumulative: CumulativeFills = field(default_factory=CumulativeFills)
    balances: dict[str, Decimal] = field(default_factory=dict)
    sequence_gaps: int = 0
    repeated_frames: int = 0
    fills_forwarded: int = 0
    fill_lookups: int = 0
    unsettled_fills: int = 0
    """Orders whose fills the venue's list did not yet show in full (left to a check)."""
    ignored_events: int = 0
    recent_trades: collections.OrderedDict[str, None] = field(
        default_factory=collections.OrderedDict, repr=False
    )
    """Trade ids forwarded lately (bounded): a settled order's fills seen again by a
    sweep are not forwarded again (the OMS would drop them; this spares the noise)."""

    def remember_trade(self, trade_id: str) -> None:
        self.recent_trades[trade_id] = None
        while len(self.recent_trades) > RECENT_TRADES:
            self.recent_trades.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: CoinbaseSession
    event: SessionEvent


class _CheckTick:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Refetch:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class _Checked:
    sweep: _Sweep | None


@dataclass(frozen=True, slots=True)
class _SweepFrom:
    """What a reconciliation asks about: the products, the unsettled orders (client
    id -> venue id, if known), the venue ids the link knows, the fills cursor."""

    products: tuple[str, ...]
    unsettled: Mapping[str, str | None]
    known_ids: frozenset[str]
    cursor: str


@dataclass(frozen=True, slots=True)
class _Sweep:
    """What one reconciliation read from the venue."""

    orders: tuple[CoinbaseOrder, ...]
    fills: tuple[CoinbaseFill, ...]
    swept_to: str | None
    """The cursor the fills sweep reached (None: nothing new)."""
    missing: tuple[str, ...]
    """Client ids of tracked orders the venue does not have."""
    accounts: tuple[CoinbaseAccount, ...]


class CoinbaseBroker(BrokerBase[CoinbaseLink]):
    log = logger

    def __init__(
        self,
        name: str,
        *,
        credentials: CdpCredentials,
        rest_url: str,
        ws_url: str,
        ws_user_url: str,
        products: Sequence[str],
        reports_to: Address,
        link: CoinbaseLink,
        request_timeout: float = 10.0,
        stream_timeout: float = 10.0,
        check_interval: float | None = None,
        rest_rate_limit: float = 30.0,
        fills_lookups: int = 3,
        wall_time: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self._credentials = credentials
        self._rest_url, self._ws_url, self._ws_user_url = rest_url, ws_url, ws_user_url
        self._configured = tuple(products)
        self._request_timeout = request_timeout
        self._stream_timeout = stream_timeout
        self._check_interval = check_interval
        self._rest_rate_limit = rest_rate_limit
        self._fills_lookups = fills_lookups
        self._wall_time = wall_time
        self._checking = False
        self._sent_times: collections.deque[float] = collections.deque()
        self._counted = 0
        self._sequence: dict[str, int] = {}
        self._sockets: dict[str, int] = {}
        self._books = TopOfBook()
        self._tops: dict[str, tuple[Decimal, Decimal]] = {}
        self._last: dict[str, Decimal] = {}
        self.products: dict[str, CoinbaseProduct] = {}
        self.session: CoinbaseSession | None = None
        self.thread: TrioThread | None = None

    def __repr__(self) -> str:
        return f"CoinbaseBroker({self.name!r}, {self._rest_url!r})"

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.context.self
        holder: list[CoinbaseSession] = []
        wall_time = self._wall_time
        if wall_time is None:
            clock = self.context.system.clock

            def wall_time() -> float:
                return clock.time_ns() / 1e9

        session = CoinbaseSession(
            self.name,
            self._credentials,
            rest_url=self._rest_url,
            ws_url=self._ws_url,
            ws_user_url=self._ws_user_url,
            products=self._configured,
            deliver=lambda event: me.tell(_Delivered(holder[0], event)),
            wall_time=wall_time,
            request_timeout=self._request_timeout,
            stream_timeout=self._stream_timeout,
        )
        holder.append(session)
        self.session = session
        thread = self.thread = TrioThread(f"coinbase-{self.name}")
        try:
            thread.start(session.serve)
            self.link.note_connected()
            self._load_products(thread, session.api)
            sweep = thread.run(_sweep, session.api, self._sweep_arguments(), True)
            self._apply(sweep)
            thread.run(session.watch_quotes, self._streamed())
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                f"session ended while starting: {exc}", broker=self.name
            ) from exc
        if self._check_interval:
            self.context.schedule_repeating(self._check_interval, _CheckTick())
        logger.info("%s: connected and reconciled (cursor %s)", self.name, self.link.cursor)

    def _load_products(self, thread: TrioThread, api: CoinbaseApi) -> None:
        missing = []
        for product_id in self._configured:
            result = thread.run(_guarded, api.product, product_id)
            if isinstance(result, BrokerError):
                raise result
            if result.error is not None:
                if result.error.kind in (ErrorKind.NOT_FOUND, ErrorKind.REFUSED):
                    missing.append(product_id)
                    continue
                raise _refused(result, f"GET products/{product_id}", broker=self.name)
            product = parse_product(result.body, broker=self.name)
            self.products[product.product_id] = product
        if missing:
            raise ConfigError(
                f"venue {self.name}: coinbase.products: {', '.join(missing)} "
                f"not listed by Coinbase",
                key="coinbase.products",
            )

    def disconnect(self) -> None:
        thread, session = self.thread, self.session
        self.thread = self.session = None
        if thread is None:
            return
        if session is not None and thread.is_running:
            with contextlib.suppress(TrioLoopClosed):
                thread.run(session.aclose)
        thread.close()

    def _streamed(self) -> tuple[str, ...]:
        wanted = set(self._configured)
        for subscription in self.link.subscriptions:
            wanted.update(subscription.symbols)
        return tuple(sorted(wanted & set(self.products)))

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        if self.thread is None or self.session is None:
            return  # the next incarnation streams what the link's subscriptions want
        unknown = [s for s in subscription.symbols if s not in self.products]
        if unknown:
            logger.warning("%s: no quotes for %s: not configured", self.name, ", ".join(unknown))
        try:
            self.thread.run(self.session.watch_quotes, self._streamed())
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    # -- reconciliation ---------------------------------------------------------------------

    def _sweep_arguments(self) -> _SweepFrom:
        cursor = self.link.cursor
        if cursor is None:
            # A new journal: history before now is not ours to replay.
            assert self.session is not None
            cursor = format_time(self.session.time_s() * 1_000_000_000)
        return _SweepFrom(
            products=self._configured,
            unsettled={cid: tracked.order_id for cid, tracked in self.link.orders.items()},
            known_ids=frozenset(self.link.client_ids),
            cursor=cursor,
        )

    def _apply(self, sweep: _Sweep) -> None:
        """What the venue says, in the order the OMS needs it: each order (one we
        did not place first, as a status report, so the OMS can adopt it), its
        fills by trade id, then its final state; balances; the cursor last."""
        fills_of: dict[str, list[CoinbaseFill]] = collections.defaultdict(list)
        for fill in sweep.fills:
            fills_of[fill.order_id].append(fill)
        for order in sweep.orders:
            self._sighted_rest(order, fills_of.pop(order.order_id, []))
        for order_id, fills in fills_of.items():
            cid = self.link.client_ids.get(order_id)
            if cid is not None:
                self._forward_fills(cid, fills)
            else:
                logger.warning(
                    "%s: %d fill(s) of order %s, which the venue did not show, skipped",
                    self.name,
                    len(fills),
                    order_id,
                )
        for cid in sweep.missing:
            self._never_arrived(cid)
        if sweep.accounts:
            self.link.balances = {a.currency: a.total for a in sweep.accounts}
            self.reports_to.tell(
                VenueBalances(
                    venue=self.name,
                    totals=dict(self.link.balances),
                    base_assets={p.product_id: p.base_currency for p in self.products.values()},
                    ts_ns=self.context.now_ns(),
                )
            )
        if sweep.swept_to is not None and (
            self.link.cursor is None
            or parse_time_ns(sweep.swept_to) >= parse_time_ns(self.link.cursor)
        ):
            self.link.cursor = sweep.swept_to
            self.reports_to.tell(VenueCursor(self.name, CURSOR_SCOPE, sweep.swept_to))
        self.link.note_reconciled()

    def _sighted_rest(self, order: CoinbaseOrder, fills: Sequence[CoinbaseFill]) -> None:
        """An order as REST shows it, with fills of it the sweep read."""
        cid = self.link.client_ids.get(order.order_id) or order.client_order_id
        if cid is None:
            self.link.ignored_events += 1
            return
        tracked = self.link.orders.get(cid)
        if tracked is None:
            if order.status in _TERMINAL and (
                all(f.trade_id in self.link.recent_trades for f in fills)
                and (fills or order.filled_size == 0)
            ):
                return  # settled here already, or closed without trading: nothing new
            tracked = self._track(cid, order.product_id, order.order_id)
            tracked.quantity = order.size
            tracked.editable = order.editable
            # Not placed by this link: reported first, so the OMS adopts it.
            tracked.accepted = True
            self.reports_to.tell(
                status_report(
                    self.name, order, cid, filled=order.filled_size, ts_ns=self.context.now_ns()
                )
            )
        else:
            self._learn_order_id(cid, tracked, order.order_id)
            tracked.editable = tracked.editable or order.editable
            if tracked.quantity is None:
                tracked.quantity = order.size
        tracked.report_if_missing = False
        tracked.venue_filled = max(tracked.venue_filled, order.filled_size)
        self.link.cumulative.start_at(
            order.order_id, order.filled_size, order.average_filled_price or Decimal(0)
        )
        self._forward_fills(cid, fills)
        if order.status in _TERMINAL:
            self._final(cid, order.status, "")
            self._settle_if_done(cid, report=order)
        elif not tracked.accepted and order.status != "FAILED":
            tracked.accepted = True
            self.reports_to.tell(
                status_report(
                    self.name, order, cid, filled=tracked.forwarded, ts_ns=self.context.now_ns()
                )
            )

    def _track(self, cid: str, product_id: str, order_id: str | None) -> TrackedOrder:
        tracked = self.link.orders.get(cid)
        if tracked is None:
            tracked = self.link.orders[cid] = TrackedOrder(product_id)
        if order_id is not None:
            self._learn_order_id(cid, tracked, order_id)
        return tracked

    def _learn_order_id(self, cid: str, tracked: TrackedOrder, order_id: str) -> None:
        tracked.order_id = order_id
        self.link.client_ids[order_id] = cid

    def _forward_fills(self, cid: str, fills: Iterable[CoinbaseFill]) -> None:
        """Tell the OMS each fill not yet forwarded, in the venue's sequence order."""
        tracked = self.link.orders.get(cid)
        ordered = sorted(fills, key=lambda f: (parse_time_ns(f.sequence_timestamp), f.trade_id))
        for fill in ordered:
            if fill.trade_id in self.link.recent_trades:
                continue
            if tracked is not None:
                if fill.trade_id in tracked.trade_ids:
                    continue
                tracked.trade_ids.add(fill.trade_id)
                tracked.forwarded += fill.size
                tracked.venue_filled = max(tracked.venue_filled, tracked.forwarded)
                if not tracked.accepted:
                    tracked.accepted = True
                    self.reports_to.tell(
                        OrderAccepted(
                            client_order_id=cid,
                            venue=self.name,
                            venue_order_id=fill.order_id,
                            ts_ns=fill.ts_ns,
                        )
                    )
            self.link.fills_forwarded += 1
            self.link.remember_trade(fill.trade_id)
            quote = fill.product_id.partition("-")[2] or None
            self.reports_to.tell(
                OrderFilled(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=fill.order_id,
                    execution_id=fill.execution_id,
                    symbol=fill.product_id,
                    side=fill.side,
                    last_quantity=fill.size,
                    last_price=fill.price,
                    commission=fill.commission,
                    commission_asset=quote if fill.commission else None,
                    liquidity=fill.liquidity,
                    ts_ns=fill.ts_ns,
                )
            )

    def _final(self, cid: str, status: str, reason: str) -> None:
        tracked = self.link.orders.get(cid)
        if tracked is not None and tracked.final_status is None:
            tracked.final_status = status
            tracked.final_reason = reason

    def _settle_if_done(self, cid: str, *, report: CoinbaseOrder | None = None) -> None:
        """Report the final state once every fill it shows has been forwarded."""
        tracked = self.link.orders.get(cid)
        if tracked is None or tracked.final_status is None:
            return
        if tracked.forwarded < tracked.venue_filled:
            logger.info(
                "%s: %s is %s but %s of %s filled forwarded: waiting for its fills",
                self.name,
                cid,
                tracked.final_status,
                tracked.forwarded,
                tracked.venue_filled,
            )
            return
        status, order_id = tracked.final_status, tracked.order_id or ""
        now = self.context.now_ns()
        if report is not None:
            self.reports_to.tell(
                status_report(self.name, report, cid, filled=tracked.forwarded, ts_ns=now)
            )
        elif status == "CANCELLED":
            self.reports_to.tell(
                OrderCanceled(
                    client_order_id=cid, venue=self.name, venue_order_id=order_id, ts_ns=now
                )
            )
        elif status == "EXPIRED":
            self.reports_to.tell(
                OrderExpired(
                    client_order_id=cid, venue=self.name, venue_order_id=order_id, ts_ns=now
                )
            )
        elif status == "FAILED":
            self.reports_to.tell(
                OrderRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code=tracked.final_reason or "FAILED",
                    reason=f"Coinbase failed the order: {tracked.final_reason or 'no reason given'}",
                    ts_ns=now,
                )
            )
        self._settle(cid)

    def _settle(self, cid: str) -> None:
        tracked = self.link.orders.pop(cid, None)
        if tracked is not None and tracked.order_id is not None:
            self.link.client_ids.pop(tracked.order_id, None)
            self.link.cumulative.forget(tracked.order_id)

    def _never_arrived(self, cid: str) -> None:
        """The venue has no such order. A submit of unknown outcome is the breaker's
        to resolve; one the journal says was live is rejected, since nobody else will."""
        tracked = self.link.orders.get(cid)
        if tracked is None or not tracked.report_if_missing:
            return
        self._settle(cid)
        self.report_unknown_at_venue(cid)

    # -- streams and timers ---------------------------------------------------------------

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Delivered):
            if message.session is self.session:
                self._on_event(message.event)
        elif isinstance(message, _CheckTick):
            self._check()
        elif isinstance(message, _Checked):
            self._checking = False
            if message.sweep is not None:
                self._apply(message.sweep)
        elif isinstance(message, _Refetch):
            self._refetch(message.client_order_id)
        else:
            return super().on_message(message)
        return None

    def _check(self) -> None:
        if self._checking or self.thread is None or self.session is None:
            return
        self._checking = True
        try:
            self.thread.start_soon(
                _periodic, self.context.self, self.session.api, self._sweep_arguments()
            )
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConnectionLost):
            raise BrokerConnectionError(event.reason, broker=self.name)
        assert isinstance(event, Frame)
        try:
            frame = parse_frame(event.text, venue=self.name, broker=self.name)
        except MalformedPayloadError as exc:
            # Logged, counted, skipped. Nothing is lost unseen: a frame that was an
            # update took a sequence number, so the next frame shows a gap (and the
            # actor restarts and reconciles); one that took none carried nothing.
            self.note_malformed(f"{event.connection} connection: {exc}")
            return
        if frame.error is not None:
            if event.connection == "user":
                # Without the user channel nothing the venue does reaches us.
                raise BrokerConnectionError(
                    f"the venue refused the user channel: {frame.error.message}",
                    broker=self.name,
                )
            logger.error("%s: market connection error: %s", self.name, frame.error.message)
            return
        if frame.sequence_num is not None and not self._in_sequence(
            event.connection, event.socket, frame.sequence_num
        ):
            return
        self.link.ignored_events += frame.ignored
        for item in frame.events:
            if isinstance(item, UserEvent):
                for order in item.orders:
                    self._on_user_order(order)
            elif isinstance(item, TickerEvent):
                for quote in item.quotes:
                    if quote.last is not None:
                        self._last[quote.symbol] = quote.last
                    if quote.symbol in self.products and not self._books.has(quote.symbol):
                        self.publish_quote(quote)
            elif isinstance(item, BookEvent):
                self._on_book(item)
            elif isinstance(item, HeartbeatEvent | SubscriptionsEvent):
                pass

    def _on_book(self, event: BookEvent) -> None:
        """The top of a product's ``level2`` book as a quote, when it changes."""
        top = self._books.apply(event)
        product = event.product_id
        if top is None or product not in self.products or self._tops.get(product) == top:
            return
        self._tops[product] = top
        bid, ask = top
        try:
            quote = Quote(
                venue=self.name,
                symbol=product,
                bid=bid,
                ask=ask,
                last=self._last.get(product),
                ts_ns=event.ts_ns or self.context.now_ns(),
            )
        except ValueError as exc:  # a crossed book: not a quote
            self.note_malformed(f"level2 {product}: {exc}")
            return
        self.publish_quote(quote)

    def _in_sequence(self, connection: str, socket: int, number: int) -> bool:
        """Whether to handle this frame; raises on a gap on the user connection."""
        if self._sockets.get(connection) != socket:
            self._sockets[connection] = socket  # a new connection counts from its own start
            self._sequence.pop(connection, None)
        last = self._sequence.get(connection)
        if last is not None and number <= last:
            self.link.repeated_frames += 1
            logger.info(
                "%s: %s frame %d repeated (last %d); skipped", self.name, connection, number, last
            )
            return False
        self._sequence[connection] = number
        if last is not None and number > last + 1:
            self.link.sequence_gaps += 1
            if connection == "user":
                raise BrokerConnectionError(
                    f"user channel skipped from sequence {last} to {number}: updates lost, "
                    "reconciling through a restart",
                    broker=self.name,
                )
            # The level2 books may be wrong now: the ticker quotes until the next connection.
            self._books.forget()
            self._tops.clear()
            logger.info("%s: market frames %d..%d missed", self.name, last + 1, number - 1)
        return True

    def _on_user_order(self, order: UserOrder) -> None:
        cid = self.link.client_ids.get(order.order_id) or order.client_order_id
        if cid is None:
            self.link.ignored_events += 1
            return
        tracked = self.link.orders.get(cid)
        if tracked is None:
            if order.status in _TERMINAL and order.cumulative_quantity == 0:
                return  # settled already, or someone else's order that never traded
            # Not one we track: its REST state first (reported for adoption), then fills.
            self._refresh(cid, order.order_id)
            return
        self._learn_order_id(cid, tracked, order.order_id)
        tracked.report_if_missing = False
        tracked.venue_filled = max(tracked.venue_filled, order.cumulative_quantity)
        if not tracked.accepted and order.status != "FAILED":
            tracked.accepted = True
            self.reports_to.tell(
                OrderAccepted(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=order.order_id,
                    ts_ns=order.ts_ns or self.context.now_ns(),
                )
            )
        derived = self.link.cumulative.observe(
            order.order_id, order.cumulative_quantity, order.avg_price
        )
        if derived is not None or tracked.forwarded < tracked.venue_filled:
            self._fetch_fills(cid, tracked)
        if order.status in _TERMINAL:
            self._final(cid, order.status, order.reason)
            self._settle_if_done(cid)

    def _fetch_fills(self, cid: str, tracked: TrackedOrder) -> None:
        """The order's fills from the REST list, forwarded by trade id; asked again
        a little later if the list does not yet show what the channel said (or the
        lookup failed), ``fills_lookups`` times in all. Then the periodic check
        takes over; without one, the actor fails and the next incarnation's
        reconciliation reads them: a fill is never left behind."""
        assert tracked.order_id is not None and self.thread is not None
        self.link.fill_lookups += 1
        try:
            fills = self.thread.run(_guarded, _order_fills, self._api(), tracked.order_id)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        if isinstance(fills, BrokerError):
            logger.warning("%s: fills of %s not read: %s", self.name, cid, fills)
        else:
            self._forward_fills(cid, fills)
            if tracked.forwarded >= tracked.venue_filled:
                tracked.lookups = 0
                return
        tracked.lookups += 1
        if tracked.lookups < self._fills_lookups:
            self.context.schedule_once(0.2 * tracked.lookups, _Refetch(cid))
            return
        self.link.unsettled_fills += 1
        message = (
            f"{cid}: the venue shows {tracked.venue_filled} filled, its fills list "
            f"{tracked.forwarded} after {tracked.lookups} lookups"
        )
        if self._check_interval:
            logger.warning("%s: %s; the periodic check will look again", self.name, message)
            tracked.lookups = 0
            return
        raise BrokerError(f"{message}: reconciling through a restart", broker=self.name)

    def _api(self) -> CoinbaseApi:
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        return self.session.api

    def _refetch(self, cid: str) -> None:
        tracked = self.link.orders.get(cid)
        if tracked is None or tracked.order_id is None or self.session is None:
            return
        if tracked.forwarded < tracked.venue_filled:
            self._fetch_fills(cid, tracked)
            self._settle_if_done(cid)

    def _refresh(self, cid: str, order_id: str) -> None:
        """The order's REST state and fills, applied as a reconciliation of one order."""
        result: tuple[CoinbaseOrder, list[CoinbaseFill]] | None
        result = self._run_ok(_order_and_fills, order_id)
        if result is None:
            return
        order, fills = result
        self.link.client_ids.setdefault(order.order_id, cid)
        self._sighted_rest(order, fills)

    def _run_ok(self, job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``job`` on the session; a transport failure or a refusal fails the actor
        (a lookup it depends on could not be made: the next incarnation reconciles)."""
        assert self.thread is not None and self.session is not None
        try:
            return self.thread.run(job, self.session.api, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    # -- requests ------------------------------------------------------------------------------

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.order_id is not None and tracked.final_status is None

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        product = self.products.get(command.symbol)
        if product is None:
            return self.reject(
                request,
                OrderRejected,
                command.client_order_id,
                "INVALID_PRODUCT_ID",
                f"{command.symbol} is not configured on {self.name}",
            )
        try:
            body = encode_order(command, product)
        except UnsupportedOrderError as exc:
            return self.reject(
                request,
                OrderRejected,
                command.client_order_id,
                exc.code or "UNSUPPORTED_ORDER_CONFIGURATION",
                str(exc),
            )
        tracked = self._track(command.client_order_id, command.symbol, None)
        tracked.quantity = command.quantity
        tracked.submitted = command
        tracked.editable = (
            command.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
            and command.time_in_force is TimeInForce.GTC
        )
        return self._call(request, _submit, body, request, self.monotonic)

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        order_id = self._order_id_of(command.client_order_id)
        return self._call(request, _cancel, order_id, command.client_order_id)

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        product = self.products.get(command.symbol)
        if command.new_client_order_id is not None:
            return self._cancel_replace(request, command, command.new_client_order_id)
        if tracked is None or product is None or not tracked.editable:
            return self.reject(
                request,
                ModifyRejected,
                cid,
                "EDIT_UNSUPPORTED",
                "Coinbase edits GTC limit and stop-limit orders only; cancel and submit a "
                "new order instead",
            )
        return self._call(request, _edit, cid, tracked.order_id, command, product)

    def _cancel_replace(self, request: BrokerRequest, command: ModifyOrder, new_cid: str) -> Answer:
        """What Coinbase cannot edit in place: cancel, read what filled, and place the
        rest under ``new_cid`` with the original's terms and the new price/size.

        The replacement leaves only once Coinbase shows the original CANCELLED
        (a fill racing the cancel is then in its filled size): never two live
        orders, never more than the logical total."""
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        product = self.products.get(command.symbol)
        if tracked is None or tracked.order_id is None or tracked.submitted is None:
            return self.reject(
                request,
                ModifyRejected,
                cid,
                "REPLACE_UNAVAILABLE",
                "this connection did not place the order, so its terms are unknown: "
                "cancel it and submit a new order",
            )
        if product is None:
            return self.reject(
                request,
                ModifyRejected,
                cid,
                "INVALID_PRODUCT_ID",
                f"{command.symbol} is not configured on {self.name}",
            )
        # Known before its create answer: the user channel may tell of it first.
        self._track(new_cid, command.symbol, None)
        job = _ReplaceJob(
            tracked.order_id, tracked.submitted, command, product, request, self.monotonic
        )
        return self._call(request, _cancel_replace, job)

    def _on_replaced(
        self, request: BrokerRequest, command: ModifyOrder, result: _Replaced
    ) -> BrokerReply:
        assert command.new_client_order_id is not None
        new_cid = command.new_client_order_id
        if result.cancel_refused is not None:
            self._settle(new_cid)
            code, reason = result.cancel_refused
            return self.reject(request, ModifyRejected, command.client_order_id, code, reason)
        if result.replacement is None or result.answer is None:
            # Cancelled, and nothing placed: the old order's end comes through
            # the user channel (or the next sweep); the replacement never existed.
            self._settle(new_cid)
            self.reports_to.tell(
                OrderRejected(
                    client_order_id=new_cid,
                    venue=self.name,
                    code=result.not_placed_code,
                    reason=result.not_placed_reason,
                    ts_ns=self.context.now_ns(),
                )
            )
            return BrokerReply(request.seq, Outcome.OK, result.not_placed_reason)
        placed = self._track(new_cid, command.symbol, None)
        placed.quantity = result.replacement.quantity
        placed.submitted = result.replacement
        return self._on_submitted(request, result.replacement, result.answer)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        order_id = self._order_id_of(command.client_order_id)
        return self._call(request, _lookup, command.client_order_id, order_id)

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        products = (command.symbol,) if command.symbol else ()
        return self._call(request, _cancel_all, products)

    def _order_id_of(self, cid: str) -> str | None:
        tracked = self.link.orders.get(cid)
        return None if tracked is None else tracked.order_id

    def _call(
        self, request: BrokerRequest, job: Callable[..., Awaitable[Any]], *args: Any
    ) -> Answer:
        """Run ``job`` on the trio thread and answer from its result."""
        if self.thread is None or self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        try:
            result = self.thread.run(_guarded, job, self.session.api, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc
        if isinstance(result, NotSent):
            if self.session is not None and self.session.closed:
                # This incarnation is ending (its ConnectionLost is queued): the
                # request goes behind it, to the next.
                self.context.self.tell(request)
                return IN_FLIGHT
            return BrokerReply(request.seq, Outcome.RATE_LIMITED, f"not sent: {result}")
        if isinstance(result, BrokerError):
            outcome = (
                Outcome.TIMEOUT if isinstance(result, BrokerTimeoutError) else Outcome.TRANSPORT
            )
            reply = BrokerReply(request.seq, outcome, str(result))
        else:
            reply = self._answer(request, result)
        if not reply.rates:
            reply = dataclasses.replace(reply, rates=self._rate_observations())
        return reply

    def _rate_observations(self) -> tuple[RateObservation, ...]:
        """Coinbase's ``x-ratelimit-*`` headers where it sent them, else what this
        connection sent in the last second against the private REST limit."""
        session = self.session
        if session is None:
            return ()
        now = self.monotonic()
        sent = session.requests_sent - self._counted
        self._counted = session.requests_sent
        self._sent_times.extend([now] * sent)
        while self._sent_times and self._sent_times[0] <= now - 1.0:
            self._sent_times.popleft()
        used, limit = float(len(self._sent_times)), self._rest_rate_limit
        headers = session.last_headers
        try:
            if "x-ratelimit-limit" in headers and "x-ratelimit-remaining" in headers:
                limit = float(headers["x-ratelimit-limit"])
                used = max(0.0, limit - float(headers["x-ratelimit-remaining"]))
        except ValueError:
            pass
        return (RateObservation("REST:1s", used, limit, 1.0, now),)

    def _answer(self, request: BrokerRequest, result: Any) -> BrokerReply:
        command, seq = request.command, request.seq
        if isinstance(result, RestResult):
            return self._on_error(request, result)
        if isinstance(command, SubmitOrder):
            return self._on_submitted(request, command, result)
        if isinstance(command, CancelOrder):
            code, reason = result
            if code is None:
                return BrokerReply(seq, Outcome.OK)
            if code == UNKNOWN_AT_VENUE:
                self._never_arrived(command.client_order_id)
            return self.reject(request, CancelRejected, command.client_order_id, code, reason)
        if isinstance(command, ModifyOrder) and isinstance(result, _Replaced):
            return self._on_replaced(request, command, result)
        if isinstance(command, ModifyOrder):
            return self._on_edited(request, command, result)
        if isinstance(command, QueryOrder):
            return self._on_looked_up(request, command, result)
        if isinstance(command, CancelAllOrders):
            failures = [f"{r.order_id}: {r.failure_reason}" for r in result if not r.success]
            return BrokerReply(seq, Outcome.OK, "; ".join(failures))
        raise TypeError(f"{self.name}: unexpected command {command!r}")  # pragma: no cover

    def _on_submitted(
        self, request: BrokerRequest, command: SubmitOrder, answer: Any
    ) -> BrokerReply:
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        if not answer.success:
            if tracked is not None and tracked.order_id is None:
                self._settle(cid)
            return self.reject(request, OrderRejected, cid, answer.code, answer.message)
        tracked = self._track(cid, command.symbol, answer.order_id)
        if not tracked.accepted:
            tracked.accepted = True
            self.reports_to.tell(
                OrderAccepted(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=answer.order_id,
                    ts_ns=self.context.now_ns(),
                )
            )
        return BrokerReply(request.seq, Outcome.OK)

    def _on_edited(self, request: BrokerRequest, command: ModifyOrder, result: Any) -> BrokerReply:
        answer, size, price, stop, order_id = result
        if not answer.success:
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                answer.code,
                f"Coinbase refused the edit: {answer.code}",
            )
        tracked = self.link.orders.get(command.client_order_id)
        if tracked is not None:
            tracked.quantity = size
        self.reports_to.tell(
            OrderModified(
                client_order_id=command.client_order_id,
                venue=self.name,
                venue_order_id=order_id,
                quantity=size,
                price=price,
                stop_price=stop,
                ts_ns=self.context.now_ns(),
            )
        )
        return BrokerReply(request.seq, Outcome.OK)

    def _on_looked_up(self, request: BrokerRequest, command: QueryOrder, found: Any) -> BrokerReply:
        cid = command.client_order_id
        if found is None:
            self._never_arrived(cid)
            return BrokerReply(request.seq, Outcome.NOT_FOUND, "no order with this client order id")
        order, fills = found
        self.link.client_ids.setdefault(order.order_id, cid)
        known = cid in self.link.orders
        self._sighted_rest(order, fills)
        tracked = self.link.orders.get(cid)
        forwarded = order.filled_size if tracked is None else tracked.forwarded
        report = status_report(self.name, order, cid, filled=forwarded, ts_ns=self.context.now_ns())
        if known:
            self.reports_to.tell(report)
        return BrokerReply(request.seq, Outcome.OK, report=report)

    def _on_error(self, request: BrokerRequest, result: RestResult) -> BrokerReply:
        command, seq = request.command, request.seq
        error = result.error
        assert error is not None
        detail = f"{error.status} {error.code}: {error.message}"
        kind = error.kind
        if kind is ErrorKind.RATE_LIMITED:
            # Definitely not processed: the breaker waits and sends again.
            wait = retry_after_seconds(result.headers)
            return BrokerReply(
                seq, Outcome.RATE_LIMITED, detail, retry_after=wait if wait is not None else 1.0
            )
        if kind in (ErrorKind.UNKNOWN_OUTCOME, ErrorKind.UNAUTHORIZED):
            return BrokerReply(seq, Outcome.TRANSPORT, detail)
        if isinstance(command, QueryOrder):
            if kind is ErrorKind.NOT_FOUND:
                self._never_arrived(command.client_order_id)
                return BrokerReply(seq, Outcome.NOT_FOUND, detail)
            return BrokerReply(seq, Outcome.REJECTED, detail)
        if isinstance(command, SubmitOrder):
            tracked = self.link.orders.get(command.client_order_id)
            if tracked is not None and tracked.order_id is None:
                self._settle(command.client_order_id)
            return self.reject(
                request, OrderRejected, command.client_order_id, error.code, error.message or detail
            )
        if isinstance(command, CancelOrder):
            return self.reject(
                request,
                CancelRejected,
                command.client_order_id,
                error.code,
                error.message or detail,
            )
        if isinstance(command, ModifyOrder):
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                error.code,
                error.message or detail,
            )
        return BrokerReply(seq, Outcome.REJECTED, detail)


def _refused(result: RestResult, where: str, *, broker: str) -> BrokerConnectionError:
    error = result.error
    assert error is not None
    return BrokerConnectionError(
        f"{where} refused: {error.status} {error.code} {error.message}",
        broker=broker,
        code=error.code,
        retry_after=retry_after_seconds(result.headers),
    )


# -- the network half of each request, on the trio thread -----------------------------------


async def _guarded(job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``job``'s result, or the ``BrokerError`` it raised (outcome unknown)."""
    try:
        return await job(*args)
    except BrokerError as exc:
        return exc


def _body(result: RestResult, where: str) -> Any:
    if result.error is not None:
        raise _refused(result, where, broker="coinbase")
    return result.body


async def _submit(
    api: CoinbaseApi,
    body: Mapping[str, Any],
    request: BrokerRequest,
    monotonic: Callable[[], float],
) -> Any:
    # Nothing leaves past the request's deadline: the breaker may have moved on.
    refuse_if_expired(request, monotonic)
    result = await api.create_order(body)
    if result.error is not None:
        return result
    return parse_create_answer(result.body)


async def _cancel(api: CoinbaseApi, order_id: str | None, cid: str) -> Any:
    """``(None, "")`` when Coinbase took the cancel, else its reason; a RestResult on error."""
    if order_id is None:
        found = await _find(api, cid)
        if found is None:
            return UNKNOWN_AT_VENUE, "the venue has no order with this client order id"
        order_id = found.order_id
    result = await api.cancel_orders([order_id])
    if result.error is not None:
        return result
    answers = parse_cancel_answer(result.body)
    mine = next((a for a in answers if a.order_id == order_id), None)
    if mine is None:
        raise MalformedPayloadError(f"batch_cancel answered nothing about {order_id}")
    if mine.success:
        return None, ""
    return mine.failure_reason or "UNKNOWN_CANCEL_FAILURE_REASON", "Coinbase refused the cancel"


async def _edit(
    api: CoinbaseApi, cid: str, order_id: str | None, command: ModifyOrder, product: CoinbaseProduct
) -> Any:
    """The order as the venue holds it, with the change: new total size and price."""
    if order_id is None:
        found = await _find(api, cid)
        if found is None:
            return RestResult(
                404, error=CoinbaseErrorAnswer(404, "ORDER_NOT_FOUND", "no such order")
            )
        order_id = found.order_id
    current = await api.order(order_id)
    if current.error is not None:
        return current
    order = parse_order_answer(current.body)
    if not order.editable:
        return RestResult(
            400,
            error=CoinbaseErrorAnswer(
                400, "EDIT_UNSUPPORTED", "only GTC limit and stop-limit orders can be edited"
            ),
        )
    size = command.quantity if command.quantity is not None else order.size
    price = command.price if command.price is not None else order.limit_price
    stop: Decimal | None = None
    if order.order_type is OrderType.STOP_LIMIT:
        stop = command.stop_price if command.stop_price is not None else order.stop_price
    elif command.stop_price is not None:
        return RestResult(
            400, error=CoinbaseErrorAnswer(400, "EDIT_UNSUPPORTED", "a limit order has no stop")
        )
    if size is None or price is None:
        return RestResult(
            400, error=CoinbaseErrorAnswer(400, "EDIT_UNSUPPORTED", "size or price unknown")
        )
    try:
        body = encode_edit(order_id, size=size, price=price, product=product, stop_price=stop)
    except UnsupportedOrderError as exc:
        return RestResult(
            400, error=CoinbaseErrorAnswer(400, exc.code or "INVALID_ARGUMENT", str(exc))
        )
    result = await api.edit_order(body)
    if result.error is not None:
        return result
    return parse_edit_answer(result.body), size, price, stop, order_id


@dataclass(frozen=True, slots=True)
class _Replaced:
    """How a cancel/replace went: the cancel refused, or cancelled and either the
    replacement's create answer or why nothing was placed."""

    cancel_refused: tuple[str, str] | None = None
    replacement: SubmitOrder | None = None
    answer: Any = None
    not_placed_code: str = "REPLACE_NOT_PLACED"
    not_placed_reason: str = ""


@dataclass(frozen=True, slots=True)
class _ReplaceJob:
    order_id: str
    original: SubmitOrder
    command: ModifyOrder
    product: CoinbaseProduct
    request: BrokerRequest
    monotonic: Callable[[], float]


async def _cancel_replace(api: CoinbaseApi, job: _ReplaceJob) -> Any:
    """Cancel the order; once Coinbase shows it CANCELLED, place what is left of the
    logical total under the new client id. A RestResult on a transport error."""
    order_id, original, command = job.order_id, job.original, job.command
    assert command.new_client_order_id is not None
    refuse_if_expired(job.request, job.monotonic)
    refused = await _cancel(api, order_id, original.client_order_id)
    if isinstance(refused, RestResult):
        return refused
    code, reason = refused
    if code is not None:
        return _Replaced(cancel_refused=(code, reason))
    current = await api.order(order_id)
    if current.error is not None:
        return current
    order = parse_order_answer(current.body)
    if order.status != "CANCELLED":
        return _Replaced(
            not_placed_reason=f"the original is {order.status} after its cancel: not replaced"
        )
    total = command.quantity if command.quantity is not None else original.quantity
    remaining = total - order.filled_size
    if remaining <= 0:
        return _Replaced(
            not_placed_code="NOTHING_LEFT",
            not_placed_reason="the original filled the whole quantity before its cancel",
        )
    replacement = dataclasses.replace(
        original,
        client_order_id=command.new_client_order_id,
        quantity=remaining,
        price=command.price if command.price is not None else original.price,
        stop_price=command.stop_price if command.stop_price is not None else original.stop_price,
        ts_ns=command.ts_ns,
    )
    try:
        body = encode_order(replacement, job.product)
    except UnsupportedOrderError as exc:
        return _Replaced(not_placed_code=exc.code or "INVALID_ARGUMENT", not_placed_reason=str(exc))
    result = await api.create_order(body)
    if result.error is not None:
        return result
    return _Replaced(replacement=replacement, answer=parse_create_answer(result.body))


async def _find(api: CoinbaseApi, cid: str) -> CoinbaseOrder | None:
    """The order with client id ``cid``: Coinbase has no lookup by client id, so the
    account's orders are listed (newest first) and matched."""
    cursor = None
    for _ in range(LOOKUP_PAGES):
        page, cursor = parse_orders_page(_body(await api.list_orders(cursor=cursor), "list orders"))
        for order in page:
            if order.client_order_id == cid:
                return order
        if cursor is None:
            return None
    return None


async def _order_fills(api: CoinbaseApi, order_id: str) -> list[CoinbaseFill]:
    fills: list[CoinbaseFill] = []
    cursor = None
    while True:
        page, cursor = parse_fills_page(
            _body(await api.fills(order_ids=[order_id], cursor=cursor), "list fills")
        )
        fills.extend(page)
        if cursor is None or not page:
            return fills


async def _order_and_fills(
    api: CoinbaseApi, order_id: str
) -> tuple[CoinbaseOrder, list[CoinbaseFill]] | None:
    result = await api.order(order_id)
    if result.error is not None:
        if result.error.kind is ErrorKind.NOT_FOUND:
            return None
        raise _refused(result, f"GET orders/historical/{order_id}", broker="coinbase")
    order = parse_order_answer(result.body)
    return order, await _order_fills(api, order_id)


async def _lookup(
    api: CoinbaseApi, cid: str, order_id: str | None
) -> tuple[CoinbaseOrder, list[CoinbaseFill]] | None:
    if order_id is None:
        found = await _find(api, cid)
        if found is None:
            return None
        order_id = found.order_id
    return await _order_and_fills(api, order_id)


async def _cancel_all(api: CoinbaseApi, products: tuple[str, ...]) -> list[Any]:
    open_orders = await _list_all(api, order_status=("OPEN",), product_ids=products)
    ids = [o.order_id for o in open_orders if is_open_status(o.status)]
    results = []
    for start in range(0, len(ids), CANCEL_BATCH):
        answer = await api.cancel_orders(ids[start : start + CANCEL_BATCH])
        results.extend(parse_cancel_answer(_body(answer, "batch cancel")))
    return results


async def _list_all(
    api: CoinbaseApi, *, order_status: Sequence[str], product_ids: Sequence[str]
) -> list[CoinbaseOrder]:
    orders: list[CoinbaseOrder] = []
    cursor = None
    while True:
        page, cursor = parse_orders_page(
            _body(
                await api.list_orders(
                    order_status=order_status, product_ids=product_ids, cursor=cursor
                ),
                "list orders",
            )
        )
        orders.extend(page)
        if cursor is None or not page:
            return orders


async def _sweep(api: CoinbaseApi, asked: _SweepFrom, first: bool) -> _Sweep:
    """One reconciliation's reads: open orders, each unsettled order, fills since
    the cursor (and each unsettled order's), orders of fills we do not know, balances."""
    products, cursor = asked.products, asked.cursor
    orders: dict[str, CoinbaseOrder] = {}
    for order in await _list_all(api, order_status=("OPEN",), product_ids=products):
        orders[order.order_id] = order
    missing: list[str] = []
    fills: dict[str, CoinbaseFill] = {}
    by_client = {o.client_order_id: o for o in orders.values() if o.client_order_id}
    for cid, known_id in sorted(asked.unsettled.items()):
        order_id = known_id
        if cid in by_client:
            order_id = by_client[cid].order_id
        elif order_id is None:
            found = await _find(api, cid)
            if found is None:
                missing.append(cid)
                continue
            order_id = found.order_id
        if order_id not in orders:
            got = await _order_and_fills(api, order_id)
            if got is None:
                missing.append(cid)
                continue
            orders[order_id] = got[0]
            fills.update((f.trade_id, f) for f in got[1])
        else:
            fills.update((f.trade_id, f) for f in await _order_fills(api, order_id))
    swept_to: str | None = None
    page_cursor = None
    while True:
        page, page_cursor = parse_fills_page(
            _body(
                await api.fills(
                    product_ids=products,
                    start_sequence_timestamp=cursor,
                    cursor=page_cursor,
                ),
                "list fills",
            )
        )
        for fill in page:
            fills.setdefault(fill.trade_id, fill)
            if swept_to is None or parse_time_ns(fill.sequence_timestamp) > parse_time_ns(swept_to):
                swept_to = fill.sequence_timestamp
        if page_cursor is None or not page:
            break
    if swept_to is None and first:
        swept_to = cursor  # nothing since: the cursor stands (journaled for a new link)
    unknown = {f.order_id for f in fills.values()} - set(orders) - asked.known_ids
    for order_id in sorted(unknown):
        got = await _order_and_fills(api, order_id)
        if got is not None:
            orders[order_id] = got[0]
            fills.update((f.trade_id, f) for f in got[1])
    accounts: list[CoinbaseAccount] = []
    account_cursor = None
    while True:
        page_accounts, account_cursor = parse_accounts_page(
            _body(await api.accounts(cursor=account_cursor), "list accounts")
        )
        accounts.extend(page_accounts)
        if account_cursor is None or not page_accounts:
            break
    ordered = sorted(orders.values(), key=lambda o: (o.ts_ns, o.order_id))
    return _Sweep(tuple(ordered), tuple(fills.values()), swept_to, tuple(missing), tuple(accounts))


async def _periodic(me: Address, api: CoinbaseApi, asked: _SweepFrom) -> None:
    try:
        sweep = await _sweep(api, asked, False)
    except Exception as exc:  # noqa: BLE001 - an escaping error would end the session's loop
        logger.warning("periodic check failed: %s: %s", type(exc).__name__, exc)
        me.tell(_Checked(None))
        return
    me.tell(_Checked(sweep))
