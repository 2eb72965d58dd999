"""The generic CCXT broker actor: the venue's half of the broker contract, on ``BrokerBase``.

One incarnation is one asyncio loop (``AsyncioThread``, as for IB) and one
ccxt exchange object on it (``_session.CcxtSession``). ``on_start`` builds
the object, loads the markets (a symbol the exchange lacks is a
``ConfigError`` naming it), starts the streams (ccxt.pro ``watch_orders`` and
``watch_my_trades`` where the class has both), then reconciles: open orders,
every unsettled order by client id, our trades since the journaled cursor,
balances. Without streams the same sweep runs every ``poll_interval`` on the
node's clock.

**One funnel per kind.** Every unified order ccxt gives back (a create's
answer, a stream update, a poll, a lookup) goes through :meth:`_on_order`,
every trade through :meth:`_on_trade`: an order the link does not know is
adopted (reported as the venue shows it, before its fills), a fill is told
once by its execution id (``<exchange>-<market id>-<trade id>``), and a
cancel or expiry is told only once the fills the venue counted have been
told, so the OMS never sees a fill after its order closed.

**Unknown outcomes.** A create that raised anything but a definite refusal
(``_codec.classify``) answers ``TIMEOUT``/``TRANSPORT``; the breaker's query
looks the order up by client id (``fetch_order`` with the exchange's
parameter, else the order lists) with its trades, before anything is sent
again. ccxt's own retries are off (``_session``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..._exceptions import BrokerConnectionError, BrokerTimeoutError, MalformedPayloadError
from ...actors._contract import BrokerReply, BrokerRequest, Outcome, QuoteSubscription
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
    Quote,
    SubmitOrder,
)
from ...messages._validation import CLIENT_ORDER_ID_PATTERN
from ...supervision import Address
from .._asyncio import AsyncioLoopClosed, AsyncioThread
from .._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink, refuse_if_expired
from ._codec import (
    CcxtCallError,
    CcxtOrder,
    CcxtTrade,
    ErrorKind,
    OrderRequest,
    Placement,
    UnsupportedOrderError,
    check_order,
    encode_order,
    execution_id,
    map_status,
    parse_bid_ask,
    parse_order,
    parse_trade,
)
from ._endpoints import CcxtApi
from ._session import (
    CcxtSession,
    ConnectionLost,
    Malformed,
    OrdersPushed,
    QuotesPushed,
    SessionEvent,
    TradesPushed,
)
from ._settings import CcxtSettings

__all__ = ["CURSOR_PREFIX", "CcxtBroker", "CcxtLink", "TrackedOrder"]

logger = logging.getLogger("tradenode.brokers.ccxt")

CURSOR_PREFIX = "trades:"
"""A trade cursor's scope: ``trades:<symbol>``, the venue time (ms) of the last fill told."""
#: How far before the cursor a sweep asks for trades (same-millisecond fills, clocks).
SWEEP_MARGIN_MS = 60_000
#: Execution ids and settled client ids remembered (a replay overlapping the stream).
MEMORY = 20_000


@dataclass
class TrackedOrder:
    """One of our orders, from its submit until the venue shows it done and its fills are told."""

    symbol: str
    side: Side | None = None
    quantity: Decimal | None = None
    order_id: str | None = None
    acknowledged: bool = False
    filled: Decimal = Decimal(0)
    """Told to the OMS."""
    venue_filled: Decimal = Decimal(0)
    """What the venue last said it filled."""
    terminal: OrderStatus | None = None
    """The venue's final word, told once ``filled`` reaches ``venue_filled``."""
    told_terminal: bool = False
    report_if_missing: bool = False
    """A journal said it was live: if the venue has never heard of it, say so."""


@dataclass
class CcxtLink(BrokerLink):
    """What the connection remembers across incarnations (owned by the node)."""

    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    order_ids: dict[str, str] = field(default_factory=dict)
    """Venue order id -> client order id, for the orders tracked."""
    forwarded: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    settled: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    cursors: dict[str, int] = field(default_factory=dict)
    """Symbol -> venue time (ms) of the last fill told."""
    repeats: int = 0
    """Fills seen again (stream and sweep overlap) and not told twice."""
    polls: int = 0
    streaming: bool = False

    def remember(self, execution: str) -> None:
        self.forwarded[execution] = None
        while len(self.forwarded) > MEMORY:
            self.forwarded.popitem(last=False)

    def note_settled(self, cid: str) -> None:
        self.settled[cid] = None
        while len(self.settled) > MEMORY:
            self.settled.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _Delivered:
    session: CcxtSession
    event: SessionEvent


@dataclass(frozen=True, slots=True)
class _Answered:
    session: CcxtSession
    request: BrokerRequest
    result: object


@dataclass(frozen=True, slots=True)
class _Swept:
    session: CcxtSession
    result: object


class _PollTick:
    __slots__ = ()


class _CheckTick:
    __slots__ = ()


class _LoopDied:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Lookup:
    cid: str
    order: CcxtOrder | None
    trades: tuple[CcxtTrade, ...] = ()


@dataclass(frozen=True, slots=True)
class _Sweep:
    """What one reconciliation read: open orders, lookups, trades, balances."""

    open_orders: tuple[CcxtOrder, ...]
    lookups: tuple[_Lookup, ...]
    trades: tuple[CcxtTrade, ...]
    adopted: tuple[CcxtOrder, ...]
    balances: dict[str, Any] | None
    as_of: int = 0
    """Node-clock ms when the sweep began: every fill before it is in ``trades``."""


@dataclass(frozen=True, slots=True)
class _CancelAnswer:
    answer: object
    order: CcxtOrder | None
    missing: bool


@dataclass(frozen=True, slots=True)
class _Refused:
    """Refused before sending, by a check that needed the venue (a market order's notional)."""

    code: str
    reason: str


def _market_notional_max(api: CcxtApi, command: SubmitOrder) -> Decimal | None:
    if command.order_type is not OrderType.MARKET:
        return None
    limits = api.exchange.market(command.symbol).get("limits") or {}
    most = (limits.get("cost") or {}).get("max")
    if most is None or isinstance(most, bool) or not isinstance(most, int | float):
        return None
    return Decimal(repr(most)) if most > 0 else None


@dataclass(frozen=True, slots=True)
class _Replaced:
    old: CcxtOrder | None
    new: CcxtOrder | Placement | None = None
    old_trades: tuple[CcxtTrade, ...] = ()
    """The original's fills, told before the replacement: the OMS sizes it the same."""
    refused: tuple[str, str] | None = None
    not_placed: tuple[str, str] | None = None


class CcxtBroker(BrokerBase[CcxtLink]):
    log = logger

    def __init__(
        self,
        name: str,
        *,
        settings: CcxtSettings,
        reports_to: Address,
        link: CcxtLink,
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self.settings = settings
        self.session: CcxtSession | None = None
        self.thread: AsyncioThread | None = None
        self._in_flight: dict[int, BrokerRequest] = {}
        self._sweeping = False
        self._started_ms = 0
        self._orphans: dict[str, dict[str, CcxtTrade]] = {}
        """Venue order id -> trades of it seen before the order was bound."""

    def __repr__(self) -> str:
        return f"CcxtBroker({self.name!r}, {self.settings.exchange})"

    # -- lifecycle --------------------------------------------------------------------------

    def on_start(self) -> None:
        me = self.context.self
        clock = self.context.system.clock
        thread = self.thread = AsyncioThread(f"ccxt-{self.name}")
        holder: list[CcxtSession] = []

        def deliver(event: SessionEvent) -> None:
            me.tell(_Delivered(holder[0], event))

        settings = self.settings

        async def build() -> CcxtSession:
            return CcxtSession(
                self.name,
                settings,
                milliseconds=lambda: clock.time_ns() // 1_000_000,
                deliver=deliver,
            )

        session = thread.run(build())
        holder.append(session)
        self.session = session
        thread.run(session.open())
        self.link.note_connected()
        self.link.streaming = session.streaming
        self._started_ms = clock.time_ns() // 1_000_000

        async def streams() -> None:
            session.start_streams()

        # Streams first, then the sweep: whatever happens in between arrives twice
        # at worst (and is told once), never not at all.
        thread.run(streams())
        self._stream_quotes()
        self._apply(thread.run(self._sweep(session, balances=True)))
        if not session.streaming:
            self.context.schedule_repeating(settings.poll_interval, _PollTick())
        if settings.check_interval:
            self.context.schedule_repeating(settings.check_interval, _CheckTick())
        logger.info(
            "%s: connected to %s through ccxt (%s) and reconciled",
            self.name,
            settings.exchange,
            "streams" if session.streaming else f"polling every {settings.poll_interval:g} s",
        )

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        self._stream_quotes()

    def _stream_quotes(self) -> None:
        """Stream the top of book of every configured symbol a subscription wants
        (a subscription naming no symbol wants them all)."""
        thread, session = self.thread, self.session
        if thread is None or session is None or not session.quoting:
            return  # the next incarnation streams what the subscriptions want
        wanted: set[str] = set()
        for subscription in self.link.subscriptions:
            wanted.update(subscription.symbols or self.settings.symbols)
        symbols = sorted(wanted & set(self.settings.symbols))

        async def start() -> None:
            session.start_quotes(symbols)

        try:
            thread.run(start())
        except AsyncioLoopClosed as exc:
            raise BrokerConnectionError("session ended", broker=self.name) from exc

    def disconnect(self) -> None:
        for request in self._in_flight.values():
            self.send_reply(
                request, BrokerReply(request.seq, Outcome.TRANSPORT, "session ended unanswered")
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

    # -- the sweep (reconciliation, polling) --------------------------------------------------

    def _since(self, symbol: str) -> int:
        cursor = self.link.cursors.get(symbol)
        return self._started_ms if cursor is None else cursor - SWEEP_MARGIN_MS

    def _sweep(
        self, session: CcxtSession, *, balances: bool = False
    ) -> Coroutine[Any, Any, _Sweep]:
        """The coroutine reading the venue's books; what it needs of the link is
        copied here, on the actor's thread."""
        symbols = list(self.settings.symbols)
        since = {symbol: self._since(symbol) for symbol in symbols}
        unsettled = [
            (cid, t.symbol, t.filled) for cid, t in self.link.orders.items() if not t.told_terminal
        ]
        known = set(self.link.order_ids)
        api = session.api

        clock = self.context.system.clock

        async def sweep() -> _Sweep:
            as_of = clock.time_ns() // 1_000_000
            open_orders: list[CcxtOrder] = []
            trades: list[CcxtTrade] = []
            for symbol in symbols:
                open_orders += await api.open_orders(symbol)
                trades += await api.my_trades(symbol, since[symbol])
            lookups = []
            open_by_cid = {o.client_order_id: o for o in open_orders}
            for cid, symbol, told in unsettled:
                order = open_by_cid.get(cid)
                if order is not None and order.filled <= told:
                    continue  # open, and every fill it shows was told
                if order is None:
                    order = await api.find_order(symbol, cid)
                found = () if order is None else await api.order_trades(order)
                lookups.append(_Lookup(cid, order, found))
            seen = (
                known
                | {o.id for o in open_orders}
                | {lk.order.id for lk in lookups if lk.order is not None}
            )
            adopted = []
            for order_id in sorted({t.order_id for t in trades} - seen):
                symbol = next(t.symbol for t in trades if t.order_id == order_id)
                adopted.append(await api.order_by_id(symbol, order_id))
            totals = await api.balances() if balances else None
            return _Sweep(
                tuple(open_orders), tuple(lookups), tuple(trades), tuple(adopted), totals, as_of
            )

        return sweep()

    def _apply(self, sweep: _Sweep) -> None:
        """Tell the OMS what the sweep found, in the order it needs it: orders it
        lacks (adopted as the venue shows them) first, then fills, then states."""
        for order in (*sweep.adopted, *sweep.open_orders):
            self._on_order(order)
        for lookup in sweep.lookups:
            if lookup.order is not None:
                self._on_order(lookup.order)
        trades = [*sweep.trades, *(t for lk in sweep.lookups for t in lk.trades)]
        for trade in sorted(trades, key=lambda t: (t.timestamp or 0, t.id)):
            self._on_trade(trade)
        # The cursors move with sweeps only: a stream can deliver a later fill before
        # an earlier one it lost, and the next sweep must still reach back to that one.
        for symbol in self.settings.symbols:
            latest = max((t.timestamp or 0 for t in sweep.trades if t.symbol == symbol), default=0)
            reached = max(latest, sweep.as_of - SWEEP_MARGIN_MS, self.link.cursors.get(symbol, 0))
            if reached > 0:
                self.link.cursors[symbol] = reached
        for lookup in sweep.lookups:
            if lookup.order is None:
                self._never_arrived(lookup.cid)
        # The sweep adopted every order of ours it found: fills still unbound are not
        # ours, unless a placement in flight is still to bind them.
        if not self._placing():
            for order_id, unbound in self._orphans.items():
                logger.warning(
                    "%s: %d fill(s) of order %s, which is not ours; not told",
                    self.name,
                    len(unbound),
                    order_id,
                )
            self._orphans.clear()
        if sweep.balances is not None:
            self._tell_balances(sweep.balances)
        self._tell_cursors()
        self.link.note_reconciled()

    def _tell_balances(self, totals: dict[str, Any]) -> None:
        bases: dict[str, str] = {}
        amounts: dict[str, Decimal] = {}
        for symbol in self.settings.symbols:
            base = symbol.split("/", 1)[0]
            bases[symbol] = base
            value = totals.get(base)
            try:
                amounts[base] = Decimal(repr(value)) if value is not None else Decimal(0)
            except ArithmeticError:
                self.note_malformed(f"balance of {base}: {value!r}")
                return
        self.reports_to.tell(
            VenueBalances(
                venue=self.name, totals=amounts, base_assets=bases, ts_ns=self.context.now_ns()
            )
        )

    def _tell_cursors(self) -> None:
        for symbol, cursor in sorted(self.link.cursors.items()):
            self.reports_to.tell(VenueCursor(self.name, f"{CURSOR_PREFIX}{symbol}", str(cursor)))

    def _start_sweep(self, *, balances: bool = False) -> None:
        session, thread = self.session, self.thread
        if session is None or thread is None or self._sweeping:
            return
        me = self.context.self
        self._sweeping = True

        def done(result: object) -> None:
            me.tell(_Swept(session, result))

        try:
            thread.submit(self._sweep(session, balances=balances), done)
        except AsyncioLoopClosed:
            self._sweeping = False
            me.tell(_LoopDied())

    # -- the funnels ----------------------------------------------------------------------------

    def _client_id_of(self, order: CcxtOrder) -> str | None:
        cid = self.link.order_ids.get(order.id)
        if cid is not None:
            return cid
        ours = order.client_order_id
        if ours and CLIENT_ORDER_ID_PATTERN.fullmatch(ours):
            return ours
        return None

    def _on_order(self, order: CcxtOrder) -> None:
        if order.symbol not in self.settings.symbols:
            return
        cid = self._client_id_of(order)
        if cid is None:
            logger.info("%s: order %s is not one of ours (no client id)", self.name, order.id)
            return
        tracked = self.link.orders.get(cid)
        if tracked is None:
            if cid not in self.link.settled:
                self._adopt(cid, order)
            return
        if tracked.told_terminal:
            return
        self._bind(cid, tracked, order.id)
        status = map_status(order.status, filled=order.filled, amount=order.amount)
        if status is None:
            return
        tracked.side, tracked.quantity = order.side, order.amount
        if status is OrderStatus.REJECTED and not tracked.acknowledged:
            tracked.told_terminal = True
            self.reports_to.tell(
                OrderRejected(
                    client_order_id=cid,
                    venue=self.name,
                    code="rejected",
                    reason=f"{self.settings.exchange} rejected the order",
                    ts_ns=self.context.now_ns(),
                )
            )
            self._settle(cid)
            return
        self._acknowledge(cid, tracked)
        tracked.venue_filled = max(tracked.venue_filled, order.filled)
        if status.is_terminal:
            tracked.terminal = status
        self._maybe_finish(cid, tracked)

    def _adopt(self, cid: str, order: CcxtOrder) -> None:
        """An order the venue has under a client id this link does not track (another
        client's, one the journal lost): reported as the venue shows it, so the OMS
        adopts it, before its fills."""
        status = map_status(order.status, filled=order.filled, amount=order.amount)
        if status is None:
            return
        tracked = self.link.orders[cid] = TrackedOrder(
            order.symbol, order.side, order.amount, order.id, acknowledged=True
        )
        tracked.venue_filled = order.filled
        self.link.order_ids[order.id] = cid
        self.reports_to.tell(
            OrderStatusReport(
                client_order_id=cid,
                venue=self.name,
                symbol=order.symbol,
                side=order.side,
                status=status,
                quantity=order.amount,
                filled_quantity=order.filled,
                venue_order_id=order.id,
                order_type=order.order_type,
                price=order.price,
                ts_ns=self.context.now_ns(),
            )
        )
        if status.is_terminal:
            tracked.terminal = status
            tracked.told_terminal = True  # the report said it
            self._maybe_finish(cid, tracked)

    def _bind(self, cid: str, tracked: TrackedOrder, order_id: str) -> None:
        if tracked.order_id != order_id:
            if tracked.order_id is not None:
                self.link.order_ids.pop(tracked.order_id, None)
            tracked.order_id = order_id
        self.link.order_ids[order_id] = cid
        waiting = self._orphans.pop(order_id, None)
        if waiting:
            self._acknowledge(cid, tracked)
            for trade in sorted(waiting.values(), key=lambda t: (t.timestamp or 0, t.id)):
                self._on_trade(trade)

    def _sweep_for_orphans(self) -> None:
        """Fills of orders nobody bound: unless a placement still in flight may bind
        them, a sweep adopts their orders (another client's, a past process's)."""
        if not self._orphans:
            return
        if not self._placing():
            self._start_sweep()

    def _placing(self) -> bool:
        """Whether a placement is in flight (its answer may bind an orphan's order)."""
        return any(
            isinstance(r.command, SubmitOrder | ModifyOrder) for r in self._in_flight.values()
        )

    def _acknowledge(self, cid: str, tracked: TrackedOrder) -> None:
        if tracked.acknowledged or tracked.order_id is None:
            return
        tracked.acknowledged = True
        self.reports_to.tell(
            OrderAccepted(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=tracked.order_id,
                ts_ns=self.context.now_ns(),
            )
        )

    def _maybe_finish(self, cid: str, tracked: TrackedOrder) -> None:
        """Tell a cancel or expiry once every fill the venue counted was told; settle."""
        if tracked.terminal is None or tracked.filled < tracked.venue_filled:
            return
        if not tracked.told_terminal:
            tracked.told_terminal = True
            if tracked.terminal is OrderStatus.CANCELED:
                self.reports_to.tell(
                    OrderCanceled(
                        client_order_id=cid,
                        venue=self.name,
                        venue_order_id=tracked.order_id,
                        ts_ns=self.context.now_ns(),
                    )
                )
            elif tracked.terminal is OrderStatus.EXPIRED:
                self.reports_to.tell(
                    OrderExpired(
                        client_order_id=cid,
                        venue=self.name,
                        venue_order_id=tracked.order_id,
                        ts_ns=self.context.now_ns(),
                    )
                )
            elif (
                tracked.terminal is OrderStatus.FILLED
                and tracked.side is not None
                and tracked.quantity is not None
            ):
                # Filled as the venue sized it. A replacement is placed for what is left
                # when the original is cancelled, which may be less than the OMS
                # reckoned when it linked them (the original's last fills were still on
                # their way): the OMS hears the venue's size (it keeps the logical
                # order's total), and the order's end, with the venue's own cumulative.
                self.reports_to.tell(
                    OrderStatusReport(
                        client_order_id=cid,
                        venue=self.name,
                        symbol=tracked.symbol,
                        side=tracked.side,
                        status=OrderStatus.FILLED,
                        quantity=tracked.quantity,
                        filled_quantity=min(tracked.venue_filled, tracked.quantity),
                        venue_order_id=tracked.order_id,
                        ts_ns=self.context.now_ns(),
                    )
                )
        self._settle(cid)

    def _settle(self, cid: str) -> None:
        tracked = self.link.orders.pop(cid, None)
        self.link.note_settled(cid)
        if tracked is not None and tracked.order_id is not None:
            self.link.order_ids.pop(tracked.order_id, None)

    def _on_trade(self, trade: CcxtTrade) -> None:
        if trade.symbol not in self.settings.symbols or self.session is None:
            return
        execution = execution_id(
            self.settings.exchange, self.session.api.market_id(trade.symbol), trade.id
        )
        if execution in self.link.forwarded:
            self.link.repeats += 1
            return
        cid = self.link.order_ids.get(trade.order_id)
        if cid is None:
            # Not bound yet (a stream can beat the placement's answer), or not ours yet:
            # kept until the answer binds its order, else a sweep adopts the order.
            self._orphans.setdefault(trade.order_id, {})[trade.id] = trade
            self._sweep_for_orphans()
            return
        self.reports_to.tell(
            OrderFilled(
                client_order_id=cid,
                venue=self.name,
                venue_order_id=trade.order_id,
                execution_id=execution,
                symbol=trade.symbol,
                side=trade.side,
                last_quantity=trade.amount,
                last_price=trade.price,
                commission=trade.fee,
                commission_asset=trade.fee_currency,
                ts_ns=(trade.timestamp or 0) * 1_000_000 or self.context.now_ns(),
            )
        )
        self.link.remember(execution)
        tracked = self.link.orders.get(cid)
        if tracked is not None:
            tracked.filled += trade.amount
            if not tracked.acknowledged:
                self._acknowledge(cid, tracked)
            self._maybe_finish(cid, tracked)

    def _never_arrived(self, cid: str) -> None:
        tracked = self.link.orders.get(cid)
        if tracked is None or not tracked.report_if_missing:
            return
        self.link.orders.pop(cid, None)
        self.report_unknown_at_venue(cid, f"{self.settings.exchange} has no such client order id")

    # -- what the session delivers -------------------------------------------------------------

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Delivered):
            if message.session is self.session:
                self._on_event(message.event)
        elif isinstance(message, _Answered):
            if message.session is self.session:
                self._in_flight.pop(message.request.seq, None)
                with self.completing(message.request):
                    self._on_answer(message.request, message.result)
        elif isinstance(message, _Swept):
            if message.session is self.session:
                self._sweeping = False
                self._on_swept(message.result)
        elif isinstance(message, _PollTick):
            self.link.polls += 1
            self._start_sweep()
        elif isinstance(message, _CheckTick):
            self._start_sweep(balances=True)
        elif isinstance(message, _LoopDied):
            raise BrokerConnectionError("the asyncio loop has stopped", broker=self.name)
        else:
            return super().on_message(message)
        return None

    def _on_swept(self, result: object) -> None:
        if isinstance(result, _Sweep):
            self._apply(result)
        elif isinstance(result, MalformedPayloadError):
            self.note_malformed(f"{self.settings.exchange} answer: {result}")
        elif isinstance(result, CcxtCallError) and result.kind is ErrorKind.RATE_LIMITED:
            logger.warning("%s: sweep rate limited: %s", self.name, result.reason)
        elif isinstance(result, Exception):
            raise BrokerConnectionError(f"sweep failed: {result}", broker=self.name) from result

    def _on_event(self, event: SessionEvent) -> None:
        if isinstance(event, ConnectionLost):
            raise BrokerConnectionError(event.reason, broker=self.name)
        if isinstance(event, Malformed):
            self.note_malformed(f"{self.settings.exchange} stream: {event.what}")
            # It may have been a fill or a status: read the books again.
            self._start_sweep()
        elif isinstance(event, OrdersPushed):
            for raw in event.orders:
                try:
                    order = parse_order(raw)
                except MalformedPayloadError as exc:
                    self.note_malformed(f"{self.settings.exchange} order update: {exc}")
                    self._start_sweep()
                    continue
                self._on_order(order)
        elif isinstance(event, QuotesPushed):
            for raw in event.tickers:
                try:
                    top = parse_bid_ask(raw)
                    quote = Quote(
                        venue=self.name,
                        symbol=top.symbol,
                        bid=top.bid,
                        ask=top.ask,
                        bid_size=top.bid_size,
                        ask_size=top.ask_size,
                        ts_ns=self.context.now_ns(),
                    )
                except (MalformedPayloadError, ValueError) as exc:
                    # Not a quote (one-sided, crossed, a negative size): skipped. A
                    # quote carries no order state: nothing to sweep for.
                    self.note_malformed(f"{self.settings.exchange} ticker: {exc}")
                    continue
                self.publish_quote(quote)
        elif isinstance(event, TradesPushed):
            for raw in event.trades:
                try:
                    trade = parse_trade(raw)
                except MalformedPayloadError as exc:
                    self.note_malformed(f"{self.settings.exchange} trade: {exc}")
                    self._start_sweep()
                    continue
                self._on_trade(trade)
            self._tell_cursors()

    # -- requests -------------------------------------------------------------------------------

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.acknowledged and tracked.terminal is None

    def _api(self) -> CcxtApi:
        if self.session is None:
            raise BrokerConnectionError("not connected", broker=self.name)
        return self.session.api

    def _start(self, request: BrokerRequest, coro: Coroutine[Any, Any, Any]) -> Answer:
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
            me.tell(_LoopDied())
            raise
        return IN_FLIGHT

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        cid = command.client_order_id
        if command.symbol not in self.settings.symbols:
            return self.reject(
                request,
                OrderRejected,
                cid,
                "UNKNOWN_INSTRUMENT",
                f"{command.symbol} is not configured for {self.name}",
            )
        api = self._api()
        try:
            check_order(
                command, api.exchange.market(command.symbol), precision_mode=api.precision_mode
            )
            order = encode_order(
                command,
                client_id_param=api.way.create,
                post_only=api.exchange.has.get("createPostOnlyOrder") is True,
            )
        except UnsupportedOrderError as exc:
            return self.reject(request, OrderRejected, cid, exc.code, str(exc))
        tracked = self.link.orders.get(cid)
        if tracked is not None and tracked.acknowledged and tracked.terminal is None:
            return BrokerReply(request.seq, Outcome.OK, "already live at the venue")
        if tracked is None:
            tracked = self.link.orders[cid] = TrackedOrder(command.symbol)
        tracked.side, tracked.quantity = command.side, command.quantity
        monotonic = self.monotonic
        most = _market_notional_max(api, command)

        async def place() -> CcxtOrder | Placement | _Refused:
            if most is not None:
                # A market order's notional at the last price, against the venue's maximum.
                last = await api.last_price(command.symbol)
                if last is not None and command.quantity * last > most:
                    return _Refused("NOTIONAL", f"notional at {last} is above {most}")
            refuse_if_expired(request, monotonic)
            return await api.create_order(order)

        return self._start(request, place())

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        api = self._api()
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        symbol = tracked.symbol if tracked is not None else command.symbol
        order_id = tracked.order_id if tracked is not None else None

        async def cancel() -> _CancelAnswer:
            try:
                answer = await api.cancel_order(symbol, order_id, cid)
            except CcxtCallError as exc:
                if exc.kind is not ErrorKind.NOT_FOUND:
                    raise
                # Already done, or never there: the order itself says which.
                return _CancelAnswer(exc, await api.find_order(symbol, cid), missing=True)
            return _CancelAnswer(answer, None, missing=False)

        return self._start(request, cancel())

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        cid, new_cid = command.client_order_id, command.new_client_order_id
        tracked = self.link.orders.get(cid)
        if new_cid is None or tracked is None or tracked.terminal is not None:
            return self.reject(
                request, ModifyRejected, cid, "UNKNOWN_ORDER", "no live order to replace"
            )
        api = self._api()
        symbol, order_id, monotonic = tracked.symbol, tracked.order_id, self.monotonic
        self.link.orders[new_cid] = TrackedOrder(symbol)

        async def replace() -> _Replaced:
            refuse_if_expired(request, monotonic)
            try:
                await api.cancel_order(symbol, order_id, cid)
            except CcxtCallError as exc:
                if exc.kind is not ErrorKind.REJECTED and exc.kind is not ErrorKind.NOT_FOUND:
                    raise
                return _Replaced(
                    await api.find_order(symbol, cid), refused=(exc.code or "", exc.reason)
                )
            old = await api.find_order(symbol, cid)
            if old is None or old.status not in ("canceled", "expired"):
                return _Replaced(old, refused=("NOT_CANCELED", "the original did not end"))
            total = command.quantity if command.quantity is not None else old.amount
            remaining = total - old.filled
            if remaining <= 0:
                return _Replaced(old, not_placed=("NOTHING_LEFT", "the original filled it all"))
            price = command.price if command.price is not None else old.price
            new = await api.create_order(
                OrderRequest(
                    symbol=symbol,
                    type="limit" if price is not None else "market",
                    side="buy" if old.side is Side.BUY else "sell",
                    amount=format(remaining.normalize(), "f"),
                    price=None if price is None else format(price.normalize(), "f"),
                    params={api.way.create: new_cid},
                )
            )
            return _Replaced(old, new, old_trades=await api.order_trades(old))

        return self._start(request, replace())

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        api = self._api()
        cid = command.client_order_id
        tracked = self.link.orders.get(cid)
        symbol = tracked.symbol if tracked is not None else command.symbol

        async def lookup() -> _Lookup:
            order = await api.find_order(symbol, cid)
            trades = () if order is None else await api.order_trades(order)
            return _Lookup(cid, order, trades)

        return self._start(request, lookup())

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        api = self._api()
        symbols = [command.symbol] if command.symbol else list(self.settings.symbols)
        by_symbol = api.exchange.has.get("cancelAllOrders") is True
        targets = [
            (t.symbol, t.order_id, cid)
            for cid, t in self.link.orders.items()
            if t.symbol in symbols and t.terminal is None
        ]

        async def cancel_all() -> list[object]:
            answers: list[object] = []
            if by_symbol:
                for symbol in symbols:
                    answer = await api.cancel_all(symbol)
                    answers += answer if isinstance(answer, list) else []
                return answers
            for symbol, order_id, cid in targets:
                try:
                    answers.append(await api.cancel_order(symbol, order_id, cid))
                except CcxtCallError as exc:
                    if exc.kind is not ErrorKind.NOT_FOUND:
                        raise
            return answers

        return self._start(request, cancel_all())

    # -- answers ---------------------------------------------------------------------------------

    def _on_answer(self, request: BrokerRequest, result: object) -> None:
        if isinstance(result, BaseException):
            reply = self._on_failure(request, result)
        else:
            reply = self._on_success(request, result)
        self.send_reply(request, reply)
        self._sweep_for_orphans()

    def _on_failure(self, request: BrokerRequest, error: BaseException) -> BrokerReply:
        seq, command = request.seq, request.command
        if isinstance(error, BrokerTimeoutError):
            return BrokerReply(seq, Outcome.TIMEOUT, str(error))
        if isinstance(error, MalformedPayloadError):
            self.note_malformed(f"{self.settings.exchange} answer: {error}")
            return BrokerReply(seq, Outcome.TRANSPORT, f"unreadable answer: {error}")
        if not isinstance(error, CcxtCallError):
            if not isinstance(error, Exception):
                raise error
            logger.error("%s: request %d failed: %r", self.name, seq, error)
            return BrokerReply(seq, Outcome.TRANSPORT, f"{type(error).__name__}: {error}")
        kind, detail = error.kind, error.reason
        if kind is ErrorKind.RATE_LIMITED:
            return BrokerReply(
                seq, Outcome.RATE_LIMITED, detail, retry_after=error.retry_after or 1.0
            )
        if kind is ErrorKind.BANNED:
            return BrokerReply(seq, Outcome.BANNED, detail, retry_after=error.retry_after)
        if kind is ErrorKind.TIMEOUT:
            return BrokerReply(seq, Outcome.TIMEOUT, detail)
        if kind is ErrorKind.UNKNOWN:
            return BrokerReply(seq, Outcome.TRANSPORT, detail)
        code = error.code or kind.value
        if isinstance(command, SubmitOrder):
            cid = command.client_order_id
            tracked = self.link.orders.get(cid)
            if kind is ErrorKind.REJECTED and tracked is not None and not tracked.acknowledged:
                self.link.orders.pop(cid, None)
            if kind is ErrorKind.NOT_FOUND:
                return BrokerReply(seq, Outcome.TRANSPORT, detail)
            return self.reject(request, OrderRejected, cid, code, detail)
        if isinstance(command, CancelOrder):
            return self.reject(request, CancelRejected, command.client_order_id, code, detail)
        if isinstance(command, ModifyOrder):
            if command.new_client_order_id is not None:
                self.link.orders.pop(command.new_client_order_id, None)
            return self.reject(request, ModifyRejected, command.client_order_id, code, detail)
        if isinstance(command, QueryOrder) and kind is ErrorKind.NOT_FOUND:
            return BrokerReply(seq, Outcome.NOT_FOUND, detail)
        return BrokerReply(seq, Outcome.REJECTED, detail)

    def _on_success(self, request: BrokerRequest, result: object) -> BrokerReply:
        seq, command = request.seq, request.command
        if isinstance(result, _Refused):
            assert isinstance(command, SubmitOrder)
            self.link.orders.pop(command.client_order_id, None)
            return self.reject(
                request, OrderRejected, command.client_order_id, result.code, result.reason
            )
        if isinstance(result, CcxtOrder):  # a placement's answer: the whole order
            self._on_order(result)
            return BrokerReply(seq, Outcome.OK)
        if isinstance(result, Placement):  # a placement's answer: an acknowledgement
            self._on_placed(result, command)
            return BrokerReply(seq, Outcome.OK)
        if isinstance(result, _Lookup):
            return self._on_lookup(request, result)
        if isinstance(result, _CancelAnswer):
            assert isinstance(command, CancelOrder)
            return self._on_cancelled(request, command, result)
        if isinstance(result, _Replaced):
            assert isinstance(command, ModifyOrder)
            return self._on_replaced(request, command, result)
        if isinstance(result, list):  # cancel-all: whatever orders it answered with
            self._funnel(result)
            return BrokerReply(seq, Outcome.OK)
        return BrokerReply(seq, Outcome.OK)

    def _on_placed(self, placed: Placement, command: object) -> None:
        cid = command.client_order_id if isinstance(command, SubmitOrder) else None
        cid = cid or placed.client_order_id
        tracked = None if cid is None else self.link.orders.get(cid)
        if cid is None or tracked is None or tracked.told_terminal:
            return
        self._bind(cid, tracked, placed.id)
        self._acknowledge(cid, tracked)

    def _funnel(self, answers: Sequence[object]) -> None:
        """Cancel answers that may be orders (their shape differs per exchange): the
        ones that read as orders of ours go through the funnel; the rest only
        acknowledge. Never adopted from here: a cancel's answer may carry the cancel's
        own client id (Binance's ``clientOrderId`` next to ``origClientOrderId``)."""
        for answer in answers:
            try:
                order = parse_order(answer)
            except MalformedPayloadError:
                continue
            if order.id in self.link.order_ids:
                self._on_order(order)

    def _on_cancelled(
        self, request: BrokerRequest, command: CancelOrder, result: _CancelAnswer
    ) -> BrokerReply:
        cid = command.client_order_id
        if not result.missing:
            self._funnel([result.answer])
            return BrokerReply(request.seq, Outcome.OK)
        order = result.order
        if order is not None:
            self._on_order(order)
            if order.status in ("canceled", "expired"):
                return BrokerReply(request.seq, Outcome.OK, "already cancelled")
            if order.status == "closed":
                return self.reject(request, CancelRejected, cid, "FILLED", "the order has filled")
        return self.reject(request, CancelRejected, cid, "NOT_FOUND", "the venue has no such order")

    def _on_replaced(
        self, request: BrokerRequest, command: ModifyOrder, result: _Replaced
    ) -> BrokerReply:
        assert command.new_client_order_id is not None
        new_cid = command.new_client_order_id
        if result.old is not None:
            self._on_order(result.old)
        for trade in sorted(result.old_trades, key=lambda t: (t.timestamp or 0, t.id)):
            self._on_trade(trade)
        if result.refused is not None:
            self.link.orders.pop(new_cid, None)
            code, reason = result.refused
            return self.reject(request, ModifyRejected, command.client_order_id, code, reason)
        if result.not_placed is not None or result.new is None:
            self.link.orders.pop(new_cid, None)
            self.link.note_settled(new_cid)
            code, reason = result.not_placed or ("NOT_PLACED", "nothing placed")
            self.reports_to.tell(
                OrderRejected(
                    client_order_id=new_cid,
                    venue=self.name,
                    code=code,
                    reason=reason,
                    ts_ns=self.context.now_ns(),
                )
            )
            return BrokerReply(request.seq, Outcome.OK, reason)
        if isinstance(result.new, Placement):
            self._on_placed(result.new, None)
        else:
            self._on_order(result.new)
        return BrokerReply(request.seq, Outcome.OK)

    def _on_lookup(self, request: BrokerRequest, found: _Lookup) -> BrokerReply:
        cid, order = found.cid, found.order
        if order is None:
            self._never_arrived(cid)
            return BrokerReply(request.seq, Outcome.NOT_FOUND, f"the venue has no order {cid}")
        self._on_order(order)
        for trade in sorted(found.trades, key=lambda t: (t.timestamp or 0, t.id)):
            self._on_trade(trade)
        self._tell_cursors()
        tracked = self.link.orders.get(cid)
        told = tracked.filled if tracked is not None else order.filled
        status = map_status(order.status, filled=order.filled, amount=order.amount)
        if status is None:
            return BrokerReply(request.seq, Outcome.NOT_FOUND, f"{cid}: not readable yet")
        if status is OrderStatus.FILLED and told < order.amount:
            status = OrderStatus.PARTIALLY_FILLED if told > 0 else OrderStatus.ACCEPTED
        report = OrderStatusReport(
            client_order_id=cid,
            venue=self.name,
            symbol=order.symbol,
            side=order.side,
            status=status,
            quantity=order.amount,
            filled_quantity=min(told, order.amount),
            venue_order_id=order.id,
            order_type=order.order_type,
            price=order.price,
            ts_ns=self.context.now_ns(),
        )
        return BrokerReply(request.seq, Outcome.OK, report=report)
