"""The Alpaca broker actor: the venue's half of the broker contract, on ``BrokerBase``.

One incarnation is one session (``_session``). ``on_start`` opens
``trade_updates`` (authenticated and listening), checks every configured
symbol (``GET /v2/assets/{symbol}``: one Alpaca does not know or will not
trade is a ``ConfigError`` naming it), reads the market clock, then
reconciles, and only then streams quotes and handles requests.

**Fills, exactly once.** ``trade_updates`` has no sequence numbers and no
replay: whatever happened while no connection listened is only in the REST
history. So every (re)connect reconciles over REST: the open orders, each
unsettled order (by id, or by client order id), and the account's ``FILL``
activities since the link's cursor (the ``transaction_time`` of the last
activity a sweep forwarded, journaled as a ``VenueCursor``, read again from
one second before it: repeats cost nothing). Each fill, live or swept,
reaches the OMS as ``alpaca-<order id>-<cumulative quantity>`` (``_codec``
explains why), so the OMS applies it once whichever way it came first. A
live fill that shows an earlier one missing (its cumulative quantity minus
its own is more than this link forwarded) sweeps first; an order's end
(cancelled, expired, replaced) is told only once its fills are all
forwarded. An unreadable ``trade_updates`` message is logged, counted and
followed by a sweep in place, since it may have been a fill.

**Requests** are answered one at a time (the actor waits on its trio thread
for each REST answer, at most ``request_timeout``). A submit carries our
client order id; its lost answer is ``TIMEOUT``/``TRANSPORT`` and the breaker
asks (``query``: ``GET /v2/orders:by_client_order_id``) before anything is
sent again. Alpaca declares no acceptance window, so nothing is ever re-sent
blindly; a 422 "client_order_id must be unique" means the venue has the
order, which is then looked up and adopted. A DAY order while the market
clock says the regular session is closed is refused before it is sent
(``MARKET_CLOSED``) or sent to be queued by Alpaca, as the settings say.
Modify is ``PATCH /v2/orders/{id}``: a new order (new id, our new client
id) for what is left of the logical total; the old one ends ``replaced``,
reported as cancelled, and the OMS links both as one logical order. The
replacement counts as accepted only once Alpaca routes it (the stream's
``new``): one that loses the race to a fill of the old order is answered
``accepted`` and then ``rejected``, and is reported rejected. Cancel
is ``DELETE /v2/orders/{id}`` (its outcome comes on the stream); cancel-all
is ``DELETE /v2/orders``, whose 207 answer says per order whether its cancel
was taken: every refusal is reported (a ``CancelRejected`` per order we know,
and in the reply's detail). Errors: 403 and 422 are business refusals, 429
is rate limited, 5xx an unknown outcome.
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
    OrderRejected,
    OrderStatusReport,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...messages._validation import CLIENT_ORDER_ID_PATTERN
from ...supervision import Address, TrioLoopClosed, TrioThread
from .._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink, refuse_if_expired
from ._codec import (
    AlpacaAccount,
    AlpacaAsset,
    AlpacaErrorAnswer,
    AlpacaOrder,
    CancelAllItem,
    DataControl,
    ErrorKind,
    Fill,
    MarketClock,
    TradeUpdate,
    UnsupportedOrderError,
    encode_order,
    encode_replace,
    format_time,
    parse_account,
    parse_activities,
    parse_asset,
    parse_cancel_all,
    parse_clock,
    parse_data_frame,
    parse_order,
    parse_orders,
    parse_positions,
    parse_rate_headers,
    parse_stream_message,
    parse_time_ns,
    status_report,
)
from ._endpoints import AlpacaApi, RestResult
from ._session import AlpacaSession, ConnectionLost, Frame, NotSent, SessionEvent
from ._settings import OutsideSession

__all__ = ["CURSOR_SCOPE", "MARKET_CLOSED", "AlpacaBroker", "AlpacaLink", "TrackedOrder"]

logger = logging.getLogger("tradenode.brokers.alpaca")

CURSOR_SCOPE = "fills"
MARKET_CLOSED = "MARKET_CLOSED"
"""The code of a DAY order refused because the regular session is closed."""
#: Fill activities per page (Alpaca's maximum is 100).
PAGE_SIZE = 100
#: Seconds a sweep reads before its cursor: activities sharing a time are read again.
OVERLAP_NS = 1_000_000_000
RECENT_EXECUTIONS = 100_000
#: Events that only say the order is working.
_WORKING = frozenset(
    {"new", "accepted", "pending_new", "accepted_for_bidding", "held", "stopped", "suspended"}
)
#: Statuses of an order Alpaca has received but not yet routed: a replace's answer in
#: one of these is not the replacement's acceptance yet (the stream's ``new`` is, or
#: a look-up later): the replacement of an order that fills first is answered
#: ``accepted``, then ``rejected`` (the spec's PATCH description).
_NOT_ROUTED = frozenset({"accepted", "pending_new", "rejected"})
#: Events that tell nothing the OMS needs (the order stays as it was).
_QUIET = frozenset({"done_for_day", "calculated", "pending_cancel", "pending_replace", "restated"})


@dataclass
class TrackedOrder:
    """One of our orders (or one adopted), from its submit until settled."""

    symbol: str
    quantity: Decimal | None = None
    order_id: str | None = None
    accepted: bool = False
    """The OMS has been told the venue has it (accepted, or a status report)."""
    forwarded: Decimal = Decimal(0)
    """Filled quantity forwarded to the OMS (the sum of its fills)."""
    executions: set[str] = field(default_factory=set)
    venue_filled: Decimal = Decimal(0)
    """The largest cumulative filled quantity the venue has shown."""
    final: AlpacaOrder | None = None
    """The order's terminal state, until its fills are all forwarded."""
    final_event: str | None = None
    """The stream event that ended it (``canceled``, ...), None when a sweep saw it."""
    filled_before: Decimal = Decimal(0)
    """What the orders it replaced filled (the logical order's earlier fills)."""
    report_if_missing: bool = False
    """A journal said it was live: if the venue has never heard of it, say so."""


@dataclass
class AlpacaLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    """Client order id -> order, until settled."""
    client_ids: dict[str, str] = field(default_factory=dict)
    """Alpaca order id -> client order id, for the orders tracked."""
    cursor: str | None = None
    """``transaction_time`` of the last FILL activity a sweep forwarded (RFC 3339)."""
    positions: dict[str, Decimal] = field(default_factory=dict)
    cash: Decimal | None = None
    currency: str | None = None
    fills_forwarded: int = 0
    stream_fills: int = 0
    swept_fills: int = 0
    ignored_events: int = 0
    market_closed_refusals: int = 0
    cancel_all_failures: int = 0
    recent_executions: collections.OrderedDict[str, None] = field(
        default_factory=collections.OrderedDict, repr=False
    )
    """Execution ids forwarded lately (bounded): a settled order's fills seen again
    by a sweep are not forwarded again (the OMS would drop them; this spares noise)."""
    settled_orders: collections.OrderedDict[str, None] = field(
        default_factory=collections.OrderedDict, repr=False
    )
    """Order ids settled lately (bounded): a periodic sweep read before the stream
    settled one does not bring it back as an order to adopt."""

    def remember(self, execution: str) -> None:
        self.recent_executions[execution] = None
        while len(self.recent_executions) > RECENT_EXECUTIONS:
            self.recent_executions.popitem(last=False)

    def forget_order(self, order_id: str) -> None:
        self.settled_orders[order_id] = None
        while len(self.settled_orders) > RECENT_EXECUTIONS:
            self.settled_orders.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: AlpacaSession
    event: SessionEvent


class _CheckTick:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Checked:
    sweep: _Sweep | None


@dataclass(frozen=True, slots=True)
class _SweepFrom:
    """What a reconciliation asks about: the unsettled orders (client id -> order
    id, if known), the order ids the link knows, where the fills sweep starts."""

    unsettled: Mapping[str, str | None]
    known_ids: frozenset[str]
    after: str


@dataclass(frozen=True, slots=True)
class _Sweep:
    """What one reconciliation read from the venue."""

    orders: tuple[AlpacaOrder, ...]
    fills: tuple[Fill, ...]
    swept_to: str | None
    """The ``transaction_time`` of the last activity read (None: nothing new)."""
    missing: tuple[str, ...]
    """Client ids of tracked orders the venue does not have."""
    positions: Mapping[str, Decimal]
    account: AlpacaAccount
    after: str
    """Where the fills sweep started."""


class AlpacaBroker(BrokerBase[AlpacaLink]):
    log = logger

    def __init__(
        self,
        name: str,
        *,
        key_id: str,
        secret_key: str,
        rest_url: str,
        stream_url: str,
        data_url: str,
        symbols: Sequence[str],
        reports_to: Address,
        link: AlpacaLink,
        outside_session: OutsideSession = OutsideSession.DENY,
        extended_hours: bool = False,
        request_timeout: float = 10.0,
        ping_interval: float = 10.0,
        ping_timeout: float = 20.0,
        check_interval: float | None = None,
        rest_rate_limit: float = 200.0,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self._key_id = key_id
        self._secret = secret_key
        self._rest_url, self._stream_url, self._data_url = rest_url, stream_url, data_url
        self._configured = tuple(symbols)
        self._outside_session = outside_session
        self._extended_hours = extended_hours
        self._request_timeout = request_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._check_interval = check_interval
        self._rest_rate_limit = rest_rate_limit
        self._checking = False
        self._sent_times: collections.deque[float] = collections.deque()
        self._counted = 0
        self._clock: MarketClock | None = None
        self._clock_read_ns = 0
        self.assets: dict[str, AlpacaAsset] = {}
        self.session: AlpacaSession | None = None
        self.thread: TrioThread | None = None

    def __repr__(self) -> str:
        return f"AlpacaBroker({self.name!r}, {self._rest_url!r})"

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.context.self
        holder: list[AlpacaSession] = []
        session = AlpacaSession(
            self.name,
            key_id=self._key_id,
            secret_key=self._secret,
            rest_url=self._rest_url,
            stream_url=self._stream_url,
            data_url=self._data_url,
            deliver=lambda event: me.tell(_Delivered(holder[0], event)),
            request_timeout=self._request_timeout,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
        )
        holder.append(session)
        self.session = session
        thread = self.thread = TrioThread(f"alpaca-{self.name}")
        try:
            thread.start(session.serve)
            self.link.note_connected()
            self._load_assets()
            self._read_clock()
            self._apply(self._run_ok(_sweep, self._sweep_arguments()))
            self._watch_quotes()
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                f"session ended while starting: {exc}", broker=self.name
            ) from exc
        if self._check_interval:
            self.context.schedule_repeating(self._check_interval, _CheckTick())
        logger.info("%s: connected and reconciled (cursor %s)", self.name, self.link.cursor)

    def _load_assets(self) -> None:
        missing = []
        for symbol in self._configured:
            asset = self._run_ok(_asset, symbol)
            if asset is None or not asset.tradable:
                missing.append(symbol)
                continue
            self.assets[symbol] = asset
        if missing:
            raise ConfigError(
                f"venue {self.name}: alpaca.symbols: {', '.join(missing)} not tradable at Alpaca",
                key="alpaca.symbols",
            )

    def _read_clock(self) -> None:
        self._clock = self._run_ok(_clock)
        self._clock_read_ns = self.context.now_ns()

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
        return tuple(sorted(wanted & set(self.assets)))

    def _watch_quotes(self) -> None:
        assert self.thread is not None and self.session is not None
        refused = self.thread.run(self.session.watch_quotes, self._streamed())
        if refused is not None:
            logger.warning("%s: no quotes: %s", self.name, refused)

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        if self.thread is None or self.session is None:
            return  # the next incarnation streams what the link's subscriptions want
        unknown = [s for s in subscription.symbols if s not in self.assets]
        if unknown:
            logger.warning("%s: no quotes for %s: not configured", self.name, ", ".join(unknown))
        try:
            self._watch_quotes()
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    def _run_ok(self, job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``job`` on the session; a transport failure or a refusal fails the actor
        (a read it depends on could not be made: the next incarnation reconciles)."""
        if self.thread is None or self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        try:
            return self.thread.run(job, self.session.api, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    # -- the market clock -------------------------------------------------------------------

    def session_open(self) -> bool:
        """Whether Alpaca's regular session is open now, by the clock read at connect
        (on the venue's time: what it said, plus how long ago it said it); read
        again once the edge it named has passed."""
        for _ in range(2):
            clock = self._clock
            if clock is not None:
                now = clock.ts_ns + (self.context.now_ns() - self._clock_read_ns)
                is_open = clock.open_at(now)
                if is_open is not None:
                    return is_open
            self._read_clock()
        return False

    def _refused_outside_session(self, command: SubmitOrder, asset: AlpacaAsset) -> bool:
        if self._outside_session is OutsideSession.QUEUE or asset.crypto:
            return False
        if command.time_in_force is not TimeInForce.DAY:
            return False
        if self._extended_hours and command.order_type is OrderType.LIMIT:
            return False  # an extended-hours limit order trades before and after the session
        return not self.session_open()

    # -- reconciliation ---------------------------------------------------------------------

    def _sweep_arguments(self) -> _SweepFrom:
        cursor = self.link.cursor
        if cursor is None:
            # A new journal: fills before now are not ours to replay, except those of
            # orders the journal knows (their own lookups find them).
            start = self._clock.ts_ns if self._clock is not None else self.context.now_ns()
        else:
            start = parse_time_ns(cursor) - OVERLAP_NS
        return _SweepFrom(
            unsettled={cid: tracked.order_id for cid, tracked in self.link.orders.items()},
            known_ids=frozenset(self.link.client_ids),
            after=format_time(start),
        )

    def _apply(self, sweep: _Sweep) -> None:
        """What the venue says, in the order the OMS needs it: each order (one we did
        not place first, as a status report, so the OMS can adopt it), its fills,
        then its final state; positions; the cursor last."""
        fills_of: dict[str, list[Fill]] = collections.defaultdict(list)
        for fill in sweep.fills:
            fills_of[fill.order_id].append(fill)
        for order in sweep.orders:
            self._sighted(order, fills_of.pop(order.order_id, []))
        for order_id, fills in fills_of.items():
            cid = self.link.client_ids.get(order_id)
            if cid is not None:
                self._forward_fills(cid, fills, swept=True)
            elif not all(f.execution_id in self.link.recent_executions for f in fills):
                logger.warning(
                    "%s: %d fill(s) of order %s, which the venue did not show, skipped",
                    self.name,
                    len(fills),
                    order_id,
                )
        for cid in sweep.missing:
            self._never_arrived(cid)
        account = sweep.account
        self.link.positions = dict(sweep.positions)
        self.link.cash, self.link.currency = account.cash, account.currency
        totals = dict(sweep.positions)
        for symbol in self._configured:
            totals.setdefault(symbol, Decimal(0))
        self.reports_to.tell(
            VenueBalances(
                venue=self.name,
                totals=totals,
                base_assets={symbol: symbol for symbol in totals},
                ts_ns=self.context.now_ns(),
            )
        )
        swept_to = sweep.swept_to
        if swept_to is not None and (
            self.link.cursor is None or parse_time_ns(swept_to) >= parse_time_ns(self.link.cursor)
        ):
            self.link.cursor = swept_to
        elif self.link.cursor is None:
            self.link.cursor = sweep.after  # nothing since: where this sweep started
        if self.link.cursor is not None:
            self.reports_to.tell(VenueCursor(self.name, CURSOR_SCOPE, self.link.cursor))
        self.link.note_reconciled()

    def _sighted(self, order: AlpacaOrder, fills: Sequence[Fill]) -> OrderStatusReport | None:
        """An order as REST shows it, with fills of it a sweep read."""
        cid = self.link.client_ids.get(order.order_id) or order.client_order_id
        tracked = self.link.orders.get(cid)
        if tracked is None:
            if order.terminal and (
                all(f.execution_id in self.link.recent_executions for f in fills)
                and (fills or order.filled_qty == 0)
            ):
                return None  # settled here already, or closed without trading
            if order.order_id in self.link.settled_orders and not order.terminal:
                return None  # a sweep older than what the stream already settled
            if not self._adoptable(order):
                return None
            tracked = self._track(cid, order.symbol, order.order_id)
            tracked.quantity = order.qty
            tracked.accepted = True
            # Not placed by this link: reported first, so the OMS adopts it.
            report = status_report(
                self.name, order, cid, filled=order.filled_qty, ts_ns=self.context.now_ns()
            )
            self.reports_to.tell(report)
        else:
            self._learn_order_id(cid, tracked, order.order_id)
            if order.qty is not None:
                tracked.quantity = order.qty
            report = None
        tracked.report_if_missing = False
        tracked.venue_filled = max(tracked.venue_filled, order.filled_qty)
        self._forward_fills(cid, fills, swept=True)
        if order.terminal:
            self._final(cid, order, None)
            return self._settle_if_done(cid) or report
        if not tracked.accepted:
            tracked.accepted = True
            report = status_report(
                self.name, order, cid, filled=tracked.forwarded, ts_ns=self.context.now_ns()
            )
            self.reports_to.tell(report)
        return report

    def _adoptable(self, order: AlpacaOrder) -> bool:
        """Whether an order this link did not place can be told to the OMS: its client
        order id must be one the core accepts (Alpaca allows 128 characters)."""
        if CLIENT_ORDER_ID_PATTERN.fullmatch(order.client_order_id):
            return True
        self.link.ignored_events += 1
        logger.warning(
            "%s: order %s has client order id %r, which the node cannot carry: not adopted",
            self.name,
            order.order_id,
            order.client_order_id[:64],
        )
        return False

    def _track(self, cid: str, symbol: str, order_id: str | None) -> TrackedOrder:
        tracked = self.link.orders.get(cid)
        if tracked is None:
            tracked = self.link.orders[cid] = TrackedOrder(symbol)
        if order_id is not None:
            self._learn_order_id(cid, tracked, order_id)
        return tracked

    def _learn_order_id(self, cid: str, tracked: TrackedOrder, order_id: str) -> None:
        tracked.order_id = order_id
        self.link.client_ids[order_id] = cid

    def _accept(self, cid: str, tracked: TrackedOrder, order_id: str, ts_ns: int) -> None:
        if tracked.accepted:
            return
        tracked.accepted = True
        self.reports_to.tell(
            OrderAccepted(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=order_id,
                ts_ns=ts_ns or self.context.now_ns(),
            )
        )

    def _forward_fills(self, cid: str, fills: Iterable[Fill], *, swept: bool) -> None:
        """Tell the OMS each fill not yet forwarded, in the order's execution order.

        A fill the OMS could not take (no quantity, no price) is counted as
        malformed and skipped, never marked seen: a readable report of the same
        execution (the next sweep, the stream) still goes."""
        tracked = self.link.orders.get(cid)
        for fill in sorted(fills, key=lambda f: f.cumulative):
            execution = fill.execution_id
            if execution in self.link.recent_executions:
                continue
            if tracked is not None and execution in tracked.executions:
                continue
            try:
                filled = OrderFilled(
                    client_order_id=cid,
                    venue=self.name,
                    venue_order_id=fill.order_id,
                    execution_id=execution,
                    symbol=fill.symbol,
                    side=fill.side,
                    last_quantity=fill.qty,
                    last_price=fill.price,
                    ts_ns=fill.ts_ns,
                )
            except ValueError as exc:
                self.note_malformed(
                    MalformedPayloadError(
                        f"fill {execution} of {cid} ({fill.qty} at {fill.price}): {exc}",
                        broker=self.name,
                    )
                )
                continue
            if tracked is not None:
                tracked.executions.add(execution)
                tracked.forwarded += fill.qty
                tracked.venue_filled = max(tracked.venue_filled, fill.cumulative)
                self._accept(cid, tracked, fill.order_id, fill.ts_ns)
            self.link.fills_forwarded += 1
            if swept:
                self.link.swept_fills += 1
            else:
                self.link.stream_fills += 1
            self.link.remember(execution)
            self.reports_to.tell(filled)

    def _final(self, cid: str, order: AlpacaOrder, event: str | None) -> None:
        tracked = self.link.orders.get(cid)
        if tracked is not None and tracked.final is None:
            tracked.final = order
            tracked.final_event = event
        if tracked is not None:
            tracked.venue_filled = max(tracked.venue_filled, order.filled_qty)

    def _settle_if_done(self, cid: str) -> OrderStatusReport | None:
        """Report the final state once every fill it shows has been forwarded."""
        tracked = self.link.orders.get(cid)
        if tracked is None or tracked.final is None:
            return None
        order = tracked.final
        if tracked.forwarded < tracked.venue_filled:
            logger.info(
                "%s: %s is %s but %s of %s filled forwarded: waiting for its fills",
                self.name,
                cid,
                order.status,
                tracked.forwarded,
                tracked.venue_filled,
            )
            return None
        now = self.context.now_ns()
        report: OrderStatusReport | None = None
        event = tracked.final_event
        if event in ("canceled", "replaced"):
            self.reports_to.tell(
                OrderCanceled(
                    client_order_id=cid, venue=self.name, venue_order_id=order.order_id, ts_ns=now
                )
            )
        elif event == "expired":
            self.reports_to.tell(
                OrderExpired(
                    client_order_id=cid, venue=self.name, venue_order_id=order.order_id, ts_ns=now
                )
            )
        elif event == "rejected" and tracked.accepted:
            # Rejected after the OMS heard it was accepted (Alpaca had routed it):
            # a rejection is no longer a legal end for it, so it ends cancelled.
            logger.warning(
                "%s: %s rejected by Alpaca after it was accepted: reported cancelled",
                self.name,
                cid,
            )
            self.reports_to.tell(
                OrderCanceled(
                    client_order_id=cid, venue=self.name, venue_order_id=order.order_id, ts_ns=now
                )
            )
        elif event == "rejected":
            self.reports_to.tell(
                OrderRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code="REJECTED",
                    reason="Alpaca rejected the order",
                    ts_ns=now,
                )
            )
        elif event != "fill":
            # Seen by a sweep (or an event that says nothing more): the venue's view.
            report = status_report(self.name, order, cid, filled=tracked.forwarded, ts_ns=now)
            self.reports_to.tell(report)
        self._settle(cid)
        return report

    def _settle(self, cid: str) -> None:
        tracked = self.link.orders.pop(cid, None)
        if tracked is not None and tracked.order_id is not None:
            self.link.client_ids.pop(tracked.order_id, None)
            self.link.forget_order(tracked.order_id)

    def _never_arrived(self, cid: str) -> None:
        """The venue has no such order. A submit of unknown outcome is the breaker's
        to resolve; one the journal says was live is rejected, since nobody else will."""
        tracked = self.link.orders.get(cid)
        if tracked is None or not tracked.report_if_missing:
            return
        self._settle(cid)
        self.report_unknown_at_venue(cid)

    def _sweep_now(self, why: str) -> None:
        """Reconcile in place (a fill may have gone missing on the stream)."""
        logger.info("%s: reconciling now: %s", self.name, why)
        self._apply(self._run_ok(_sweep, self._sweep_arguments()))

    # -- streams and timers -----------------------------------------------------------------

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
        if event.connection == "data":
            self._on_data(event.text)
            return
        try:
            message = parse_stream_message(event.text, broker=self.name)
        except MalformedPayloadError as exc:
            # Logged, counted; it may have been a fill, and this stream has no
            # sequence numbers to show a gap: reconcile over REST now.
            self.note_malformed(f"trade_updates: {exc}")
            self._sweep_now("after a malformed trade_updates message")
            return
        if isinstance(message, TradeUpdate):
            self._on_trade_update(message)
        else:
            self.link.ignored_events += 1

    def _on_data(self, text: str | bytes) -> None:
        try:
            items = parse_data_frame(text, venue=self.name, broker=self.name)
        except MalformedPayloadError as exc:
            self.note_malformed(f"market data: {exc}")
            return
        for item in items:
            if isinstance(item, Quote):
                if item.symbol in self.assets:
                    self.publish_quote(item)
            elif isinstance(item, DataControl) and item.kind == "error":
                logger.warning("%s: market data error %s: %s", self.name, item.code, item.message)

    def _on_trade_update(self, update: TradeUpdate) -> None:
        order = update.order
        cid = self.link.client_ids.get(order.order_id) or order.client_order_id
        tracked = self.link.orders.get(cid)
        if tracked is None:
            fill = update.fill
            if order.terminal and (
                fill is None or fill.execution_id in self.link.recent_executions
            ):
                self.link.ignored_events += 1
                return  # settled here already, or someone else's order that never traded
            if order.order_id in self.link.settled_orders or not self._adoptable(order):
                self.link.ignored_events += 1
                return
            # Not one we track: what the venue has (the order reported for adoption,
            # its fills) comes from REST, in order.
            self._sweep_now(f"trade_updates told of an order we do not track ({order.order_id})")
            if cid in self.link.orders:
                self._on_trade_update(update)  # now tracked (adopted): this event goes too
            return
        self._learn_order_id(cid, tracked, order.order_id)
        tracked.report_if_missing = False
        event = update.event
        if event in _WORKING:
            self._accept(cid, tracked, order.order_id, update.ts_ns)
        elif update.fill is not None:
            self._on_fill(cid, tracked, update.fill)
            if order.terminal:
                self._final(cid, order, "fill")
                self._settle_when_complete(cid)
        elif event in ("canceled", "expired", "replaced", "rejected"):
            self._final(cid, order, event)
            self._settle_when_complete(cid)
        elif event == "order_cancel_rejected":
            self.reports_to.tell(
                CancelRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code="ORDER_CANCEL_REJECTED",
                    reason=f"Alpaca refused the cancel; the order is {order.status}",
                    ts_ns=update.ts_ns or self.context.now_ns(),
                )
            )
        elif event == "order_replace_rejected":
            logger.info("%s: replace of %s refused; it is %s", self.name, cid, order.status)
        elif event not in _QUIET:
            self.link.ignored_events += 1
            logger.info("%s: trade_updates event %r of %s ignored", self.name, event, cid)

    def _on_fill(self, cid: str, tracked: TrackedOrder, fill: Fill) -> None:
        if fill.execution_id in tracked.executions:
            return
        if fill.cumulative - fill.qty > tracked.forwarded:
            # An earlier fill of this order never reached us: read them all first.
            self._sweep_now(f"{cid}: a fill to {fill.cumulative} after {tracked.forwarded}")
            tracked = self.link.orders.get(cid) or tracked
        self._forward_fills(cid, [fill], swept=False)

    def _settle_when_complete(self, cid: str) -> None:
        self._settle_if_done(cid)
        tracked = self.link.orders.get(cid)
        if tracked is not None and tracked.final is not None:
            # Ended with fills we never saw: they are in the REST history.
            self._sweep_now(f"{cid} ended with fills not yet forwarded")
            self._settle_if_done(cid)

    # -- requests ------------------------------------------------------------------------------

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.order_id is not None and tracked.final is None

    def _asset(self, symbol: str) -> AlpacaAsset | None:
        asset = self.assets.get(symbol)
        if asset is None:
            asset = self._run_ok(_asset, symbol)
            if asset is not None:
                self.assets[symbol] = asset
        return asset

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        cid = command.client_order_id
        asset = self._asset(command.symbol)
        if asset is None:
            return self.reject(
                request,
                OrderRejected,
                cid,
                "UNKNOWN_SYMBOL",
                f"Alpaca has no asset {command.symbol}",
            )
        try:
            body = encode_order(command, asset, extended_hours=self._extended_hours)
        except UnsupportedOrderError as exc:
            return self.reject(request, OrderRejected, cid, exc.code or "UNSUPPORTED", str(exc))
        if self._refused_outside_session(command, asset):
            self.link.market_closed_refusals += 1
            return self.reject(
                request,
                OrderRejected,
                cid,
                MARKET_CLOSED,
                "the regular session is closed and this venue refuses DAY orders outside it "
                "(alpaca.outside_session: deny)",
            )
        tracked = self._track(cid, command.symbol, None)
        tracked.quantity = command.quantity
        return self._call(request, _submit, body, request, self.monotonic)

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        return self._call(
            request, _cancel, self._order_id_of(command.client_order_id), command.client_order_id
        )

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        cid, new_cid = command.client_order_id, command.new_client_order_id
        if new_cid is None:
            return self.reject(
                request,
                ModifyRejected,
                cid,
                "UNSUPPORTED",
                "Alpaca replaces an order (a new order id), which needs a new client order id",
            )
        asset = self._asset(command.symbol)
        if asset is None:
            return self.reject(
                request,
                ModifyRejected,
                cid,
                "UNKNOWN_SYMBOL",
                f"Alpaca has no asset {command.symbol}",
            )
        tracked = self.link.orders.get(cid)
        before = tracked.filled_before if tracked is not None else Decimal(0)
        # Known before the PATCH answer: the stream may tell of it first.
        self._track(new_cid, command.symbol, None)
        job = _ReplaceJob(self._order_id_of(cid), command, new_cid, asset, before)
        return self._call(request, _replace, job)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        return self._call(request, _lookup, command.client_order_id, self._sweep_arguments().after)

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        return self._call(request, _cancel_all, command.symbol)

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
            # Certainly not processed: the breaker asks, finds nothing, sends again.
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
        """Alpaca's ``X-Ratelimit-*`` headers (per minute) where it sent them, else
        what this connection sent in the last minute against ``rest_rate_limit``."""
        session = self.session
        if session is None:
            return ()
        now = self.monotonic()
        sent = session.requests_sent - self._counted
        self._counted = session.requests_sent
        self._sent_times.extend([now] * sent)
        while self._sent_times and self._sent_times[0] <= now - 60.0:
            self._sent_times.popleft()
        used, limit = float(len(self._sent_times)), self._rest_rate_limit
        rates = parse_rate_headers(session.last_headers)
        if rates is not None and rates.limit > 0:
            used, limit = max(0.0, rates.limit - rates.remaining), rates.limit
        return (RateObservation("REST:60s", used, limit, 60.0, now),)

    def _retry_after(self, headers: Mapping[str, str]) -> float:
        """Retry-After if sent, else until ``X-Ratelimit-Reset`` (epoch seconds), else 1 s."""
        value = headers.get("retry-after")
        try:
            if value is not None and float(value) >= 0:
                return float(value)
        except ValueError:
            pass
        rates = parse_rate_headers(headers)
        if rates is not None and rates.reset_s is not None:
            return max(0.0, rates.reset_s - self.context.now_ns() / 1e9)
        return 1.0

    def _answer(self, request: BrokerRequest, result: Any) -> BrokerReply:
        command, seq = request.command, request.seq
        if isinstance(result, RestResult):
            return self._on_error(request, result)
        if isinstance(command, SubmitOrder):
            return self._on_submitted(request, command, result)
        if isinstance(command, CancelOrder):
            return BrokerReply(seq, Outcome.OK)  # its outcome comes on the stream
        if isinstance(command, ModifyOrder):
            return self._on_replaced(request, command, result)
        if isinstance(command, QueryOrder):
            return self._on_looked_up(request, command, result)
        if isinstance(command, CancelAllOrders):
            return self._on_cancelled_all(request, result)
        raise TypeError(f"{self.name}: unexpected command {command!r}")  # pragma: no cover

    def _on_submitted(
        self, request: BrokerRequest, command: SubmitOrder, order: AlpacaOrder
    ) -> BrokerReply:
        cid = command.client_order_id
        tracked = self._track(cid, command.symbol, order.order_id)
        if order.status != "rejected":  # Alpaca has it (queued outside the session, too)
            self._accept(cid, tracked, order.order_id, order.ts_ns)
        return BrokerReply(request.seq, Outcome.OK)

    def _on_replaced(
        self, request: BrokerRequest, command: ModifyOrder, result: tuple[AlpacaOrder, AlpacaOrder]
    ) -> BrokerReply:
        old, new = result
        assert command.new_client_order_id is not None
        new_cid = command.new_client_order_id
        placed = self._track(new_cid, new.symbol, new.order_id)
        placed.quantity = new.qty
        previous = self.link.orders.get(command.client_order_id)
        placed.filled_before = (previous.filled_before if previous else Decimal(0)) + old.filled_qty
        if new.status not in _NOT_ROUTED:
            self._accept(new_cid, placed, new.order_id, new.ts_ns)
        return BrokerReply(request.seq, Outcome.OK)

    def _on_looked_up(
        self, request: BrokerRequest, command: QueryOrder, found: tuple[AlpacaOrder, list[Fill]]
    ) -> BrokerReply:
        cid = command.client_order_id
        order, fills = found
        self.link.client_ids.setdefault(order.order_id, cid)
        told = self._sighted(order, fills)
        tracked = self.link.orders.get(cid)
        forwarded = order.filled_qty if tracked is None else tracked.forwarded
        report = told or status_report(
            self.name, order, cid, filled=forwarded, ts_ns=self.context.now_ns()
        )
        if told is None and tracked is not None:
            self.reports_to.tell(report)
        return BrokerReply(request.seq, Outcome.OK, report=report)

    def _on_cancelled_all(self, request: BrokerRequest, items: list[CancelAllItem]) -> BrokerReply:
        """Every order whose cancel Alpaca did not take is reported: to the OMS as a
        ``CancelRejected`` (when we know its client id) and in the reply's detail."""
        failures = []
        for item in items:
            if item.ok:
                continue
            self.link.cancel_all_failures += 1
            code = item.code or f"HTTP_{item.status}"
            reason = item.message or f"cancel answered {item.status}"
            failures.append(f"{item.order_id}: {item.status} {code} {reason}")
            cid = self.link.client_ids.get(item.order_id)
            if cid is not None:
                self.reports_to.tell(
                    CancelRejected(
                        client_order_id=cid,
                        venue=self.name,
                        code=code,
                        reason=f"cancel-all: {reason}",
                        ts_ns=self.context.now_ns(),
                    )
                )
        if failures:
            logger.warning("%s: cancel-all refused for %s", self.name, "; ".join(failures))
        detail = f"{len(items) - len(failures)} of {len(items)} cancels taken"
        if failures:
            detail += "; refused: " + "; ".join(failures)
        return BrokerReply(request.seq, Outcome.OK, detail)

    def _on_error(self, request: BrokerRequest, result: RestResult) -> BrokerReply:
        command, seq = request.command, request.seq
        error = result.error
        assert error is not None
        detail = f"{error.status} {error.code}: {error.message}"
        kind = error.kind
        if kind is ErrorKind.RATE_LIMITED:
            # Definitely not processed: the breaker waits and sends again.
            return BrokerReply(
                seq, Outcome.RATE_LIMITED, detail, retry_after=self._retry_after(result.headers)
            )
        if kind in (ErrorKind.UNKNOWN_OUTCOME, ErrorKind.UNAUTHORIZED):
            return BrokerReply(seq, Outcome.TRANSPORT, detail)
        if isinstance(command, QueryOrder):
            if kind is ErrorKind.NOT_FOUND:
                self._never_arrived(command.client_order_id)
                return BrokerReply(seq, Outcome.NOT_FOUND, detail)
            return BrokerReply(seq, Outcome.REJECTED, detail)
        if isinstance(command, SubmitOrder):
            cid = command.client_order_id
            if kind is ErrorKind.DUPLICATE_CLIENT_ID:
                # The venue has this client id: the placement arrived after all.
                # Its own reports tell its story; the breaker asks for its state.
                return BrokerReply(seq, Outcome.TRANSPORT, detail)
            tracked = self.link.orders.get(cid)
            if tracked is not None and tracked.order_id is None:
                self._settle(cid)
            return self.reject(request, OrderRejected, cid, error.code, error.message)
        if isinstance(command, CancelOrder):
            if kind is ErrorKind.NOT_FOUND:
                self._never_arrived(command.client_order_id)
            return self.reject(
                request, CancelRejected, command.client_order_id, error.code, error.message
            )
        if isinstance(command, ModifyOrder):
            if command.new_client_order_id is not None:
                new = self.link.orders.get(command.new_client_order_id)
                if new is not None and new.order_id is None:
                    self._settle(command.new_client_order_id)
            return self.reject(
                request, ModifyRejected, command.client_order_id, error.code, error.message
            )
        return BrokerReply(seq, Outcome.REJECTED, detail)


# -- the network half of each request, on the trio thread -----------------------------------


async def _guarded(job: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``job``'s result, or the ``BrokerError`` it raised (outcome unknown)."""
    try:
        return await job(*args)
    except BrokerError as exc:
        return exc


def _refused(result: RestResult, where: str) -> BrokerConnectionError:
    error = result.error
    assert error is not None
    return BrokerConnectionError(
        f"{where} refused: {error.status} {error.code} {error.message}", code=error.code
    )


def _body(result: RestResult, where: str) -> Any:
    if result.error is not None:
        raise _refused(result, where)
    return result.body


def _error(status: int, code: str, message: str, kind: ErrorKind) -> RestResult:
    return RestResult(status, error=AlpacaErrorAnswer(status, code, message, kind))


async def _asset(api: AlpacaApi, symbol: str) -> AlpacaAsset | None:
    result = await api.asset(symbol)
    if result.error is not None and result.error.kind is ErrorKind.NOT_FOUND:
        return None
    return parse_asset(_body(result, f"GET assets/{symbol}"))


async def _clock(api: AlpacaApi) -> MarketClock:
    return parse_clock(_body(await api.clock(), "GET clock"))


async def _submit(
    api: AlpacaApi, body: Mapping[str, Any], request: BrokerRequest, monotonic: Callable[[], float]
) -> Any:
    # Nothing leaves past the request's deadline: the breaker may have moved on.
    refuse_if_expired(request, monotonic)
    result = await api.create_order(body)
    if result.error is not None:
        return result
    return parse_order(result.body)


async def _find(api: AlpacaApi, cid: str, order_id: str | None) -> AlpacaOrder | RestResult:
    result = await (api.order(order_id) if order_id else api.order_by_client_id(cid))
    if result.error is not None:
        return result
    return parse_order(result.body)


async def _cancel(api: AlpacaApi, order_id: str | None, cid: str) -> Any:
    if order_id is None:
        found = await _find(api, cid, None)
        if isinstance(found, RestResult):
            return found
        order_id = found.order_id
    result = await api.cancel_order(order_id)
    return result if result.error is not None else None


@dataclass(frozen=True, slots=True)
class _ReplaceJob:
    order_id: str | None
    command: ModifyOrder
    new_client_order_id: str
    asset: AlpacaAsset
    filled_before: Decimal


async def _replace(api: AlpacaApi, job: _ReplaceJob) -> Any:
    """The order as the venue holds it, then ``PATCH`` what is left of the total."""
    command = job.command
    current = await _find(api, command.client_order_id, job.order_id)
    if isinstance(current, RestResult):
        return current
    if current.terminal:
        return _error(
            422, "ORDER_NOT_OPEN", f"the order is {current.status}: not replaced", ErrorKind.REFUSED
        )
    try:
        body = encode_replace(
            current, command, job.new_client_order_id, job.asset, filled_before=job.filled_before
        )
    except UnsupportedOrderError as exc:
        return _error(422, exc.code or "INVALID_REPLACE", str(exc), ErrorKind.REFUSED)
    result = await api.replace_order(current.order_id, body)
    if result.error is not None:
        return result
    return current, parse_order(result.body)


async def _activities(api: AlpacaApi, after: str) -> tuple[list[Fill], str | None]:
    """Every FILL activity after ``after``, oldest first, and the last one's time."""
    fills: list[Fill] = []
    token: str | None = None
    last_time: str | None = None
    while True:
        page = parse_activities(
            _body(await api.fills(after=after, page_token=token, page_size=PAGE_SIZE), "activities")
        )
        fills.extend(page.fills)
        if page.last_time is not None:
            last_time = page.last_time
        if page.rows < PAGE_SIZE or page.last_id is None or page.last_id == token:
            return fills, last_time
        token = page.last_id


async def _lookup(api: AlpacaApi, cid: str, after: str) -> Any:
    """The order by our client id, and its fills since ``after`` if it has any."""
    found = await _find(api, cid, None)
    if isinstance(found, RestResult):
        return found
    fills: list[Fill] = []
    if found.filled_qty > 0:
        start = min(parse_time_ns(after), found.created_ns - OVERLAP_NS)
        every, _ = await _activities(api, format_time(max(start, 0)))
        fills = [f for f in every if f.order_id == found.order_id]
    return found, fills


async def _cancel_all(api: AlpacaApi, symbol: str | None) -> Any:
    if symbol is None:
        result = await api.cancel_all()
        if result.error is not None:
            return result
        return parse_cancel_all(result.body)
    listed = await api.list_orders(status="open", symbols=(symbol,))
    items = []
    for order in parse_orders(_body(listed, "GET orders")):
        answer = await api.cancel_order(order.order_id)
        error = answer.error
        items.append(
            CancelAllItem(
                order.order_id,
                answer.status,
                error.code if error else "",
                error.message if error else "",
            )
        )
    return items


async def _sweep(api: AlpacaApi, asked: _SweepFrom) -> _Sweep:
    """One reconciliation's reads: open orders, ours closed since the cursor, each other
    unsettled order, the fills since ``asked.after`` (or since the creation of an
    unsettled order that ended with fills), the orders of fills we do not know,
    positions and the account."""
    orders: dict[str, AlpacaOrder] = {}
    for order in parse_orders(_body(await api.list_orders(status="open"), "GET orders")):
        orders[order.order_id] = order
    # Ours that ended since the cursor, in one list rather than one look-up each
    # (``after`` filters by submission time: older ones are looked up below).
    closed = await api.list_orders(status="closed", after=asked.after)
    for order in parse_orders(_body(closed, "GET orders")):
        if order.client_order_id in asked.unsettled or order.order_id in asked.known_ids:
            orders.setdefault(order.order_id, order)
    by_client = {o.client_order_id: o for o in orders.values()}
    missing: list[str] = []
    earliest: int | None = None
    for cid, order_id in sorted(asked.unsettled.items()):
        listed = by_client.get(cid)
        if listed is not None:
            if listed.terminal and listed.filled_qty > 0:
                created = listed.created_ns - OVERLAP_NS
                earliest = created if earliest is None else min(earliest, created)
            continue
        found = await _find(api, cid, order_id)
        if isinstance(found, RestResult):
            if found.error is not None and found.error.kind is ErrorKind.NOT_FOUND:
                missing.append(cid)
                continue
            raise _refused(found, f"GET order {cid}")
        orders[found.order_id] = found
        if found.filled_qty > 0:
            created = found.created_ns - OVERLAP_NS
            earliest = created if earliest is None else min(earliest, created)
    after = asked.after
    if earliest is not None and earliest < parse_time_ns(after):
        after = format_time(max(earliest, 0))  # an unsettled order's fills may predate the cursor
    fills, swept_to = await _activities(api, after)
    unknown = {f.order_id for f in fills} - set(orders) - asked.known_ids
    for order_id in sorted(unknown):
        found = await _find(api, "", order_id)
        if isinstance(found, AlpacaOrder):
            orders[order_id] = found
    positions = parse_positions(_body(await api.positions(), "GET positions"))
    account = parse_account(_body(await api.account(), "GET account"))
    ordered = sorted(orders.values(), key=lambda o: (o.created_ns, o.order_id))
    return _Sweep(
        tuple(ordered), tuple(fills), swept_to, tuple(missing), positions, account, asked.after
    )


async def _periodic(me: Address, api: AlpacaApi, asked: _SweepFrom) -> None:
    try:
        sweep = await _sweep(api, asked)
    except Exception as exc:  # noqa: BLE001 - an escaping error would end the session's loop
        logger.warning("periodic check failed: %s: %s", type(exc).__name__, exc)
        me.tell(_Checked(None))
        return
    me.tell(_Checked(sweep))
