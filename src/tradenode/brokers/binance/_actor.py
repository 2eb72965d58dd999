"""The Binance broker actor: the broker contract over a :class:`BinanceSession`.

One incarnation is one connection. ``on_start`` opens the session (REST
client, WebSocket API, the account's event subscription), loads the
exchange's filters and reconciles; only then does the actor take requests,
which wait in its mailbox meanwhile. A lost connection is a failure: the
actor raises, its supervisor restarts it with backoff, and the next
incarnation reconnects and reconciles. There is no reconnect loop here.

What must survive incarnations (which orders are unsettled, the per-symbol
trade cursor, the quote subscribers) lives in :class:`BinanceLink`, owned by
the node. An order is *settled* once the venue reports it terminal and every
one of its fills has been forwarded; until then every reconciliation asks
the venue for its status and its trades, so a fill lost with a dropped
stream or a malformed event is found again. The OMS drops a fill it has
already applied (by execution id), so forwarding one twice is harmless and
forwarding one never is impossible.

The venue-independent half of the broker contract (deadlines, one request at
a time per order, reject plus reply, quote fan-out, rate observations on
replies, the link's counters) is :class:`~tradenode.brokers.BrokerBase`'s;
which Binance endpoint does what is the typed endpoint layer's
(:class:`~tradenode.brokers.binance.BinanceApi`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import trio

from ..._crashpoints import crash_point
from ..._exceptions import (
    BrokerConnectionError,
    BrokerError,
    BrokerTimeoutError,
    MalformedPayloadError,
)
from ...actors._contract import (
    BrokerReply,
    BrokerRequest,
    Outcome,
    QuoteSubscription,
    RateObservation,
    TradeSubscription,
)
from ...actors._control import VenueBalances, VenueCursor
from ...messages._market import MarketTrade
from ...messages._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    QueryOrder,
    Quote,
    SubmitOrder,
)
from ...supervision import Address, TrioLoopClosed, TrioThread
from .._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink, refuse_if_expired
from ._codec import (
    AccountPosition,
    Balance,
    BinanceErrorAnswer,
    BinanceExecutionReport,
    BinanceOrder,
    BinanceTrade,
    DepthSnapshot,
    ErrorKind,
    HeaderRates,
    UnsupportedOrderError,
    WsResponse,
    cancel_replace_params,
    execution_report_to_messages,
    new_order_params,
    parse_account,
    parse_depth,
    parse_market_message,
    parse_order,
    parse_rate_headers,
    parse_rest_book_ticker,
    parse_ticker_price,
    parse_trade,
    parse_user_event,
    placement_fills,
    retry_after_seconds,
    to_status_report,
    trade_to_fill,
)
from ._endpoints import (
    BOOK_TICKER,
    BOOK_TICKERS,
    DEPTH,
    EXCHANGE_INFO,
    PAGE_LIMIT,
    SERVER_TIME,
    TICKER_PRICE,
    BinanceApi,
    Endpoint,
)
from ._handoff import CASCADE_SECONDS, hand_over_gil
from ._rules import SymbolRules, check_order, parse_exchange_info
from ._session import (
    BinanceEndpoints,
    BinanceSession,
    ConnectionLost,
    MalformedFrame,
    MarketPayload,
    RestResult,
    SessionEvent,
    SessionSettings,
    StreamPayload,
)
from ._signing import ApiCredentials

__all__ = [
    "BinanceBroker",
    "BinanceLink",
    "GetMarketSnapshot",
    "MarketSnapshot",
    "TrackedOrder",
]

logger = logging.getLogger("tradenode.brokers.binance")


_TERMINAL = frozenset({"FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH"})
_STREAMED_TRADES_LIMIT = 100_000


@dataclass
class TrackedOrder:
    """One of our orders that is not settled yet (see the module docstring)."""

    symbol: str
    order_id: int | None = None
    terminal: bool = False
    venue_filled: Decimal = Decimal(0)
    forwarded_trades: set[int] = field(default_factory=set)
    forwarded_quantity: Decimal = Decimal(0)
    report_if_missing: bool = False
    """Set for orders a journal says were live (not merely sent): if the venue has
    never heard of one, the OMS must learn that it is not live anywhere."""
    missing_once: bool = False
    accept_told: bool = False
    """The OMS was told the venue accepted it (from the placement's answer or the
    stream's NEW, whichever came first): the other is not told again, one message
    and one journal record fewer per order (the OMS would ignore it)."""

    @property
    def settled(self) -> bool:
        return self.terminal and self.forwarded_quantity >= self.venue_filled


@dataclass
class BinanceLink(BrokerLink):
    """What a Binance connection remembers across the broker actor's incarnations.

    The quote subscriptions, the connection/reconciliation/malformed-payload
    counters and ``wait_for_reconciliations`` are :class:`~tradenode.brokers.BrokerLink`'s."""

    orders: dict[str, TrackedOrder] = field(default_factory=dict)
    client_ids: dict[tuple[str, int], str] = field(default_factory=dict)
    trade_cursor: dict[str, int] = field(default_factory=dict)
    """Per symbol, the last trade id a sweep read: every trade up to it has been
    forwarded (or adopted). Moved only by sweeps, never by the stream, which
    can deliver a later trade before an earlier one was lost; journaled by the
    OMS (``VenueCursor``) so a new process sweeps from there."""
    order_cursor: dict[str, int] = field(default_factory=dict)
    """Per symbol, the last order id an ``allOrders`` sweep read."""
    own_orders: set[tuple[str, int]] = field(default_factory=set)
    """(symbol, orderId) of orders this link placed above the order cursor: the
    sweep adopts only orders that are neither these nor unsettled."""
    streamed_trades: dict[str, set[int]] = field(default_factory=dict)
    """Trade ids forwarded since the last sweep, which the next sweep skips."""
    balances: dict[str, Balance] = field(default_factory=dict)
    last_quotes: dict[str, Quote] = field(default_factory=dict)
    used_weight: dict[str, int] = field(default_factory=dict)
    order_count: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GetMarketSnapshot:
    """Ask a Binance broker for one symbol's book now, from REST (not the stream)."""

    symbol: str
    depth: int = 10


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Best bid/ask (``ticker/bookTicker``), last price (``ticker/price``) and
    ``depth`` levels, fetched together."""

    quote: Quote
    depth: DepthSnapshot


# -- messages the actor sends itself ------------------------------------------------


class _Delivered:
    __slots__ = ("event", "session")

    def __init__(self, session: BinanceSession, event: SessionEvent) -> None:
        self.session = session
        self.event = event


@dataclass(frozen=True, slots=True)
class _Done:
    """A request's network part finished (on the trio thread); the actor maps it."""

    request: BrokerRequest
    results: tuple[RestResult, ...] = ()
    failure: BrokerError | None = None
    trades: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class _Answered:
    """A placement the session's reader reported and answered itself; the actor
    keeps the books (``_on_answered``)."""

    request: BrokerRequest
    result: RestResult
    order: BinanceOrder
    fills: tuple[tuple[int, OrderFilled], ...]
    unreadable_fills: MalformedPayloadError | None = None
    """The answer's ``fills`` could not be read (the order itself could): the actor
    counts it and reconciles through a restart, which fetches the order's trades."""
    told: bool = True
    """Whether the reader told the OMS the acceptance and ``fills`` (an
    ``order.place`` answer); if not (a REST answer), the actor tells them here."""


class _CheckTick:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _Checked:
    snapshot: _Reconciliation | None
    malformed: MalformedPayloadError | None = None
    """Why there is no snapshot, when it was an answer the check could not read."""


@dataclass(frozen=True, slots=True)
class _ClockOffset:
    offset_ms: int


@dataclass(frozen=True, slots=True)
class _Reconciliation:
    open_orders: tuple[Any, ...]
    orders: tuple[tuple[str, RestResult], ...]
    trades: tuple[Any, ...]
    adopted: tuple[Any, ...]
    account: Any
    orders_since: tuple[Any, ...] = ()
    """``allOrders`` rows past each symbol's order cursor."""
    trade_cursors: Mapping[str, int] = field(default_factory=dict)
    order_cursors: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _SweepFrom:
    """Where the next sweep starts: per symbol, the last trade and order id read
    (-1: none yet); ``symbols`` without a cursor get one at the venue's latest."""

    trades: Mapping[str, int]
    orders: Mapping[str, int]
    symbols: tuple[str, ...]


class BinanceBroker(BrokerBase[BinanceLink]):
    """Speaks the broker contract to one Binance Spot account."""

    log = logger

    def __init__(
        self,
        name: str,
        *,
        credentials: ApiCredentials,
        endpoints: BinanceEndpoints,
        reports_to: Address,
        link: BinanceLink,
        symbols: Sequence[str] = (),
        settings: SessionSettings | None = None,
        wall_time_ms: Callable[[], int] | None = None,
        check_interval: float | None = None,
        order_entry: Literal["websocket", "rest"] = "websocket",
    ) -> None:
        super().__init__(name, reports_to=reports_to, link=link)
        self.credentials = credentials
        self.endpoints = endpoints
        self.symbols = tuple(symbols)
        self.settings = settings or SessionSettings()
        self._wall_time_ms = wall_time_ms or (lambda: time.time_ns() // 1_000_000)
        self._clock_offset_ms = 0
        self.rules: dict[str, SymbolRules] = {}
        self.session: BinanceSession | None = None
        self.thread: TrioThread | None = None
        self.rate_limits: Mapping[str, tuple[float, float]] = {}
        """The venue's limits by counter; replaced whole when exchangeInfo is read,
        never changed in place, so an order's ``_PlacementAnswer`` holds the one it
        left with, uncopied, while the session's reader reads it on its thread."""
        self._dispatched: dict[int, tuple[BrokerRequest, float]] = {}
        """Seq -> (request, when it left) of this incarnation's requests in flight."""
        self._checking = False
        self.check_interval = check_interval
        self.order_entry = order_entry

    def __repr__(self) -> str:
        return f"BinanceBroker({self.name!r}, {self.endpoints.rest_url!r})"

    # -- lifecycle --------------------------------------------------------------------

    def _venue_time_ms(self) -> int:
        return self._wall_time_ms() + self._clock_offset_ms

    def on_start(self) -> None:
        me = self.context.self
        thread = self.thread = TrioThread(f"binance-{self.name}")
        holder: list[BinanceSession] = []

        def deliver(event: SessionEvent) -> None:
            me.tell(_Delivered(holder[0], event))

        session = BinanceSession(
            self.name,
            self.credentials,
            self.endpoints,
            deliver=deliver,
            time_ms=self._venue_time_ms,
            settings=self.settings,
        )
        holder.append(session)
        self.session = session
        try:
            thread.start(session.serve)
            self.link.note_connected()
            self._sync_clock()
            self._load_rules()
            self._reconcile()
            streamed = set(self.symbols)
            for subscription in self.link.subscriptions:
                streamed.update(subscription.symbols)
            if streamed:
                thread.run(session.watch_quotes, sorted(streamed))
                self._snapshot_quotes(sorted(streamed))
            taped = sorted({s for t in self.link.trade_subscriptions for s in t.symbols})
            if taped:
                thread.run(session.watch_trades, taped)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                f"the session ended while starting: {exc}", broker=self.name
            ) from exc
        if self.check_interval:
            self.context.schedule_repeating(self.check_interval, _CheckTick())
        logger.info("%s: connected and reconciled", self.name)

    def disconnect(self) -> None:
        # What is in flight may or may not have reached the venue, and its answer
        # would come back to a stopped actor: answer TRANSPORT now, so the breaker
        # looks the order up by its client order id before anything is re-sent,
        # instead of waiting for its deadline.
        # Popped one at a time: the session's reader pops what it answers itself
        # (``_PlacementAnswer.answer``), from the same dict, and whoever pops answers.
        for seq in list(self._dispatched):
            entry = self._dispatched.pop(seq, None)
            if entry is None:
                continue
            request = entry[0]
            with self.completing(request):
                self.send_reply(
                    request,
                    BrokerReply(
                        request.seq,
                        Outcome.TRANSPORT,
                        "connection closed with the request in flight",
                    ),
                )
        thread, session = self.thread, self.session
        self.thread = self.session = None
        if thread is None:
            return
        if session is not None and thread.is_running:
            with contextlib.suppress(TrioLoopClosed):
                thread.run(_close_session, session)
        thread.close()

    def _call(
        self, what: Endpoint, call: Callable[..., Awaitable[RestResult]], *args: Any
    ) -> RestResult:
        """A blocking REST call for ``on_start``: any failure fails the incarnation.
        ``what`` names the endpoint ``call`` reaches, for the error."""
        assert self.thread is not None
        sent_at = self.monotonic()
        try:
            result: RestResult = self.thread.run(call, *args)
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(f"{what}: session ended", broker=self.name) from exc
        self._observe_rates(result, sent_at)
        if result.error is not None:
            raise BrokerConnectionError(
                f"{what} refused while connecting: {result.error.code} {result.error.msg}",
                broker=self.name,
                code=str(result.error.code),
                retry_after=_asked_to_wait(result),
            )
        return result

    def _api(self) -> BinanceApi:
        assert self.session is not None
        return self.session.api

    def _sync_clock(self) -> None:
        """Sign with the venue's clock, not ours: Binance refuses a timestamp more
        than 1 s ahead of its own or older than ``recvWindow``."""
        before = self._wall_time_ms()
        result = self._call(SERVER_TIME, self._api().server_time)
        after = self._wall_time_ms()
        body = result.body
        if not isinstance(body, Mapping) or not isinstance(body.get("serverTime"), int):
            raise MalformedPayloadError(
                f"unexpected {SERVER_TIME} answer {body!r}", broker=self.name
            )
        self._clock_offset_ms = body["serverTime"] - (before + after) // 2

    def _load_rules(self) -> None:
        result = self._call(EXCHANGE_INFO, self._api().exchange_info)
        rules = parse_exchange_info(result.body, broker=self.name)
        self.rate_limits = _rate_limits(result.body)
        wanted = set(self.symbols)
        self.rules = {
            s: r
            for s, r in rules.items()
            if not wanted or s in wanted or s in self._tracked_symbols()
        }
        if not self.rules:
            self.rules = rules

    def _snapshot_quotes(self, symbols: Sequence[str]) -> None:
        """Best bid/ask from REST, so filters and subscribers have a price before
        the first stream update (a quiet market may not send one for a while)."""
        result = self._call(BOOK_TICKERS, self._api().book_tickers, tuple(symbols))
        rows = result.body if isinstance(result.body, list) else [result.body]
        now = self.context.now_ns()
        for row in rows:
            quote = parse_rest_book_ticker(self.name, row, ts_ns=now)
            self._publish_quote(quote)

    def _market_snapshot(self, request: GetMarketSnapshot) -> MarketSnapshot:
        api = self._api()
        book = self._call(BOOK_TICKER, api.book_ticker, request.symbol)
        price = self._call(TICKER_PRICE, api.ticker_price, request.symbol)
        depth = self._call(DEPTH, api.depth, request.symbol, request.depth)
        quote = dataclasses.replace(
            parse_rest_book_ticker(self.name, book.body, ts_ns=self.context.now_ns()),
            last=parse_ticker_price(price.body, broker=self.name),
        )
        return MarketSnapshot(quote, parse_depth(depth.body, broker=self.name))

    def _publish_quote(self, quote: Quote) -> None:
        self.link.last_quotes[quote.symbol] = quote
        self.publish_quote(quote)

    def _tracked_symbols(self) -> set[str]:
        return {order.symbol for order in self.link.orders.values()} | set(self.link.trade_cursor)

    # -- reconciliation -----------------------------------------------------------------

    def _reconcile_arguments(self) -> tuple[Any, ...]:
        unsettled = {
            client_id: (order.symbol, order.order_id)
            for client_id, order in self.link.orders.items()
            if not order.settled
        }
        symbols = (
            set(self.symbols)
            | {order.symbol for order in self.link.orders.values()}
            | set(self.link.trade_cursor)
            | set(self.link.order_cursor)
        )
        sweep = _SweepFrom(
            dict(self.link.trade_cursor), dict(self.link.order_cursor), tuple(sorted(symbols))
        )
        return (unsettled, sweep, dict(self.link.client_ids))

    def _reconcile(self) -> None:
        """Agree with the venue before taking requests: every unsettled order's
        status and trades, every open order, trades since the cursor, balances."""
        assert self.thread is not None and self.session is not None
        try:
            snapshot: _Reconciliation = self.thread.run(
                _fetch_reconciliation, self.session.api, *self._reconcile_arguments()
            )
        except TrioLoopClosed as exc:
            raise BrokerConnectionError(
                "session ended while reconciling", broker=self.name
            ) from exc
        self._apply_reconciliation(snapshot, strict=True)

    def _apply_reconciliation(self, snapshot: _Reconciliation, *, strict: bool) -> None:
        """What the venue says, in the order the OMS needs it: an order we never
        placed (or a past process placed and settled) is reported first, so the
        OMS can adopt it before its fills; then fills before the status that
        shows them; then balances for the position check, and the cursors,
        which the OMS journals after everything they cover."""
        foreign: dict[str, BinanceOrder] = {}
        for raw in (*snapshot.adopted, *snapshot.orders_since, *snapshot.open_orders):
            order = parse_order(raw, broker=self.name)
            self.link.client_ids[(order.symbol, order.order_id)] = order.client_order_id
            if self._is_foreign(order):
                foreign.setdefault(order.client_order_id, order)
        for order in foreign.values():
            self._note_order(order)
            self.reports_to.tell(to_status_report(self.name, order))
        orders: list[BinanceOrder] = []
        for raw in snapshot.open_orders:
            order = parse_order(raw, broker=self.name)
            if order.client_order_id not in foreign:
                orders.append(order)
        for client_id, result in snapshot.orders:
            if result.error is not None:
                if result.error.kind is ErrorKind.NOT_FOUND:
                    self._never_arrived(client_id)
                    continue
                if not strict:
                    logger.warning(
                        "%s: periodic check cannot query %s: %s",
                        self.name,
                        client_id,
                        result.error.msg,
                    )
                    continue
                raise BrokerConnectionError(
                    f"cannot query {client_id}: {result.error.code} {result.error.msg}",
                    broker=self.name,
                    client_order_id=client_id,
                )
            orders.append(parse_order(result.body, broker=self.name))
        for order in orders:
            self.link.client_ids[(order.symbol, order.order_id)] = order.client_order_id
        trades = sorted(
            (parse_trade(raw, broker=self.name) for raw in snapshot.trades),
            key=lambda trade: (trade.symbol, trade.trade_id),
        )
        for trade in trades:
            if trade.trade_id not in self.link.streamed_trades.get(trade.symbol, ()):
                self._forward_trade(trade)
        seen: set[str] = set()
        for order in orders:
            if order.client_order_id in seen:
                continue
            seen.add(order.client_order_id)
            self._note_order(order)
            self.reports_to.tell(to_status_report(self.name, order))
        for balance in parse_account(snapshot.account, broker=self.name):
            self.link.balances[balance.asset] = balance
        self._forget_settled()
        self.reports_to.tell(
            VenueBalances(
                venue=self.name,
                totals={asset: b.free + b.locked for asset, b in self.link.balances.items()},
                base_assets={symbol: rules.base_asset for symbol, rules in self.rules.items()},
                ts_ns=self.context.now_ns(),
            )
        )
        self._advance_cursors(snapshot)
        self.link.note_reconciled()

    def _is_foreign(self, order: BinanceOrder) -> bool:
        """Not an order this link placed or was handed by the journal."""
        return (
            order.client_order_id not in self.link.orders
            and (order.symbol, order.order_id) not in self.link.own_orders
        )

    def _advance_cursors(self, snapshot: _Reconciliation) -> None:
        """Move each cursor to what the sweep read, and tell the OMS to journal it."""
        for kind, cursors, mine in (
            ("trades", snapshot.trade_cursors, self.link.trade_cursor),
            ("orders", snapshot.order_cursors, self.link.order_cursor),
        ):
            for symbol, cursor in sorted(cursors.items()):
                if cursor < mine.get(symbol, -1):
                    continue
                mine[symbol] = cursor
                self.reports_to.tell(VenueCursor(self.name, f"{kind}/{symbol}", str(cursor)))
        for symbol, cursor in self.link.trade_cursor.items():
            streamed = self.link.streamed_trades.get(symbol)
            if streamed:
                streamed.difference_update({i for i in streamed if i <= cursor})
        for symbol, cursor in self.link.order_cursor.items():
            self.link.own_orders.difference_update(
                {key for key in self.link.own_orders if key[0] == symbol and key[1] <= cursor}
            )

    def _check_periodically(self) -> None:
        """Between reconnects, the same reconciliation on a timer, off the actor's
        thread; a failed check is logged and tried again next time."""
        if self._checking or self.thread is None or self.session is None:
            return
        self._checking = True
        self.thread.start_soon(
            _periodic_check, self.context.self, self.session.api, *self._reconcile_arguments()
        )

    def _on_checked(self, checked: _Checked) -> None:
        """A periodic check's result. An unreadable answer ends the check: counted and
        logged, and the next check asks again. A snapshot abandoned half-applied leaves
        nothing false behind: what it told (fills, which the OMS takes once, and
        statuses the venue showed) is true, and the cursors move only at its end."""
        self._checking = False
        if checked.malformed is not None:
            self.note_malformed(checked.malformed)
            return
        if checked.snapshot is None:
            return
        try:
            self._apply_reconciliation(checked.snapshot, strict=False)
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            logger.warning("%s: periodic check abandoned: %s", self.name, exc)

    def _never_arrived(self, client_id: str) -> None:
        """The venue has no such order: it never got there. Forget it, and say so when
        nobody else will (a submit in flight is the breaker's to resolve and re-send)."""
        tracked = self.link.orders.get(client_id)
        if tracked is not None and tracked.report_if_missing and not tracked.missing_once:
            # A request the last process sent may still be on its way; Binance
            # refuses any older than recvWindow, so ask once more after that.
            tracked.missing_once = True
            self.context.schedule_once(self.settings.recv_window_ms / 1000 + 1.0, _CheckTick())
            return
        self.link.orders.pop(client_id, None)
        if tracked is not None and tracked.report_if_missing:
            self.report_unknown_at_venue(client_id)

    def _forward_trade(self, trade: BinanceTrade) -> None:
        client_id = self.link.client_ids.get((trade.symbol, trade.order_id))
        if client_id is None:
            logger.warning(
                "%s: trade %s of unknown order %s ignored",
                self.name,
                trade.trade_id,
                trade.order_id,
            )
            return
        self._forward_fill(trade_to_fill(self.name, trade, client_id), trade.trade_id, trade.symbol)

    def _forward_fill(self, fill: OrderFilled, trade_id: int, symbol: str) -> None:
        self._note_forwarded(fill, trade_id, symbol)
        self.reports_to.tell(fill)

    def _note_forwarded(self, fill: OrderFilled, trade_id: int, symbol: str) -> None:
        """What the link remembers of a fill told to the OMS."""
        tracked = self.link.orders.get(fill.client_order_id)
        if tracked is not None and trade_id not in tracked.forwarded_trades:
            tracked.forwarded_trades.add(trade_id)
            tracked.forwarded_quantity += fill.last_quantity
        cursor = self.link.trade_cursor.get(symbol)
        if cursor is None or trade_id > cursor:
            streamed = self.link.streamed_trades.setdefault(symbol, set())
            if len(streamed) >= _STREAMED_TRADES_LIMIT:
                # Only an optimisation (the OMS drops a repeated fill by its
                # execution id): without sweeps to prune it, start again.
                streamed.clear()
            streamed.add(trade_id)

    def _note_order(self, order: BinanceOrder) -> None:
        tracked = self.link.orders.get(order.client_order_id)
        if tracked is None:
            if order.status in _TERMINAL:
                return
            tracked = self.link.orders[order.client_order_id] = TrackedOrder(order.symbol)
        tracked.order_id = order.order_id
        self.link.own_orders.add((order.symbol, order.order_id))
        tracked.venue_filled = max(tracked.venue_filled, order.executed_qty)
        tracked.terminal = tracked.terminal or order.status in _TERMINAL

    def _forget_settled(self) -> None:
        for client_id in [cid for cid, order in self.link.orders.items() if order.settled]:
            del self.link.orders[client_id]

    # -- messages -------------------------------------------------------------------------

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Delivered):
            self._on_delivered(message)
        elif isinstance(message, _Done):
            self._on_done(message)
        elif isinstance(message, _Answered):
            self._on_answered(message)
        elif isinstance(message, _ClockOffset):
            self._clock_offset_ms = message.offset_ms
        elif isinstance(message, GetMarketSnapshot):
            return self._market_snapshot(message)
        elif isinstance(message, _CheckTick):
            self._check_periodically()
        elif isinstance(message, _Checked):
            self._on_checked(message)
        else:
            return super().on_message(message)
        return None

    def on_subscribed(self, subscription: QuoteSubscription) -> None:
        if subscription.symbols and self.thread is not None and self.session is not None:
            self.thread.start_soon(_watch, self.session, tuple(subscription.symbols))

    def on_trades_subscribed(self, subscription: TradeSubscription) -> None:
        if subscription.symbols and self.thread is not None and self.session is not None:
            self.thread.start_soon(_watch_trades, self.session, tuple(subscription.symbols))

    def _on_delivered(self, delivered: _Delivered) -> None:
        if delivered.session is not self.session:
            return
        event = delivered.event
        if isinstance(event, ConnectionLost):
            raise BrokerConnectionError(event.reason, broker=self.name)
        if isinstance(event, MalformedFrame):
            self.note_malformed(event.error)
            # Only the account's socket sends these, and what could not be
            # read may have been a fill: reconcile through a restart.
            raise BrokerError(
                "unreadable frame on the WebSocket API: reconciling through a restart",
                broker=self.name,
            ) from event.error
        elif isinstance(event, StreamPayload):
            self._on_user_event(event.event)
        elif isinstance(event, MarketPayload):
            self._on_market(event.text)

    def _on_user_event(self, raw: Mapping[str, Any]) -> None:
        try:
            event = parse_user_event(self.name, raw)
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            # The event may have been a fill; a restart reconciles every
            # unsettled order's trades, so whatever it said is fetched again.
            raise BrokerError(
                "malformed user-data event: reconciling through a restart", broker=self.name
            ) from exc
        if isinstance(event, BinanceExecutionReport):
            self._on_execution(event)
        elif isinstance(event, AccountPosition):
            for balance in event.balances:
                self.link.balances[balance.asset] = balance

    def _on_execution(self, report: BinanceExecutionReport) -> None:
        client_id = report.original_client_order_id or report.client_order_id
        self.link.client_ids[(report.symbol, report.order_id)] = client_id
        tracked = self.link.orders.get(client_id)
        # Ours, and already settled and forgotten: the OMS has heard of it (accepted,
        # or found by a reconciliation). A FULL placement answer settles a taker
        # order before the stream's NEW for it arrives; that NEW is not told again.
        settled_earlier = (
            tracked is None and (report.symbol, report.order_id) in self.link.own_orders
        )
        if tracked is not None:
            tracked.order_id = report.order_id
            self.link.own_orders.add((report.symbol, report.order_id))
            tracked.venue_filled = max(tracked.venue_filled, report.cumulative_qty)
            tracked.terminal = tracked.terminal or report.status in _TERMINAL
        if self._told_already(report, tracked, settled_earlier):
            if tracked is not None and tracked.settled:
                self.link.orders.pop(client_id, None)
            return
        for message in execution_report_to_messages(self.name, report):
            if isinstance(message, OrderFilled):
                self._forward_fill(message, report.trade_id, report.symbol)
            elif isinstance(message, OrderAccepted):
                if not settled_earlier and self._first_accept(message.client_order_id):
                    self.reports_to.tell(message)
            else:
                self.reports_to.tell(message)
        if tracked is not None and tracked.settled:
            self.link.orders.pop(client_id, None)

    def _told_already(
        self, report: BinanceExecutionReport, tracked: TrackedOrder | None, settled_earlier: bool
    ) -> bool:
        """Whether the OMS has already been told what ``report`` says, so no message is
        built for it: a trade this link forwarded (a ``FULL`` placement answer carries
        an order's first trades, and the stream reports them again, with the same
        execution id, which the OMS would drop), or the acceptance of an order whose
        placement answer (or an earlier report) was told first. Only ever a repeat is
        skipped: a trade id is noted (``_note_forwarded``) only once its fill is in
        the OMS's mailbox, and one not noted is told as before."""
        kind = report.execution_type
        if kind == "TRADE":
            if tracked is not None and report.trade_id in tracked.forwarded_trades:
                return True
            return report.trade_id in self.link.streamed_trades.get(report.symbol, ())
        if kind == "NEW":
            accepted = self.link.orders.get(report.client_order_id)
            return settled_earlier or (accepted is not None and accepted.accept_told)
        return False

    def _on_market(self, text: str) -> None:
        try:
            quote = parse_market_message(self.name, text, ts_ns=self.context.now_ns())
        except MalformedPayloadError as exc:
            self.note_malformed(exc)
            return
        if quote is None:
            return
        if isinstance(quote, MarketTrade):
            self.publish_trade(quote)
            return
        self._publish_quote(quote)

    # -- requests ---------------------------------------------------------------------------

    # Each request's network part runs as its own trio task and comes back as a
    # ``_Done``, so requests run concurrently; the base holds back a second
    # request for the same order until the first is answered.

    def submit(self, request: BrokerRequest, command: SubmitOrder) -> Answer:
        refusal = self._check(command)
        if refusal is not None:
            code, reason = refusal
            return self.reject(request, OrderRejected, command.client_order_id, code, reason)
        websocket = self._over_websocket()
        try:
            # Over the WebSocket API, FULL: the trades a taker order made on arrival
            # come with the answer, on the connection that carries the account's
            # stream, before the stream reports them (the OMS keeps the first).
            params = new_order_params(command, response_type="FULL" if websocket else "RESULT")
        except UnsupportedOrderError as exc:
            return self.reject(
                request, OrderRejected, command.client_order_id, "UNSUPPORTED", str(exc)
            )
        self.link.orders.setdefault(command.client_order_id, TrackedOrder(command.symbol))
        session = self.session
        if session is None:
            raise BrokerConnectionError("session not running", broker=self.name)
        # Before the task starts: the session's thread may answer from it.
        self._dispatched[request.seq] = (request, self.monotonic())
        answer = _PlacementAnswer(
            self.context.self,
            request,
            self.name,
            self.reports_to,
            self._dispatched,
            self.rate_limits,
            self.context.now_ns,
            tells_oms=websocket,
        )
        # ``spawn`` hands the task over without waiting for the session's thread to
        # take it (``_start``'s ``TrioThread.start_soon`` waits): this handler ends
        # at once, and the session's thread, which sends the order, is not made to
        # wake this one back up first.
        try:
            session.spawn(
                _place_ws if websocket else _place_rest,
                answer,
                self._api(),
                params,
                self.monotonic,
            )
        except BrokerConnectionError:
            del self._dispatched[request.seq]
            raise
        return IN_FLIGHT

    def cancel(self, request: BrokerRequest, command: CancelOrder) -> Answer:
        job = _cancel_ws if self._over_websocket() else _cancel
        return self._start(request, job, self._api(), command)

    def query(self, request: BrokerRequest, command: QueryOrder) -> Answer:
        return self._start(request, _query, self._api(), command.symbol, command.client_order_id)

    def modify(self, request: BrokerRequest, command: ModifyOrder) -> Answer:
        if command.new_client_order_id is None:
            return self.reject(
                request,
                ModifyRejected,
                command.client_order_id,
                "UNSUPPORTED",
                "Binance modifies by cancel-replace, which needs a new client order id",
            )
        self.link.orders.setdefault(command.new_client_order_id, TrackedOrder(command.symbol))
        return self._start(
            request, _cancel_replace, self._api(), command, self.monotonic, self._over_websocket()
        )

    def _over_websocket(self) -> bool:
        """Whether orders go over the WebSocket API: asked for, and the connection is
        logged on (its key signs for every request) and up. Otherwise REST carries
        them. A request is never moved from one to the other once sent: a
        connection lost before its answer is an unknown outcome, which the
        breaker resolves by asking the venue before any re-send."""
        session = self.session
        return (
            self.order_entry == "websocket"
            and session is not None
            and session.logged_on
            and session.ws_api_open
        )

    def cancel_all(self, request: BrokerRequest, command: CancelAllOrders) -> Answer:
        symbols = (
            (command.symbol,)
            if command.symbol is not None
            else tuple(sorted({o.symbol for o in self.link.orders.values() if not o.terminal}))
        )
        return self._start(request, _cancel_all, self._api(), symbols)

    def _start(
        self, request: BrokerRequest, job: Callable[..., Awaitable[_Done]], *args: Any
    ) -> Answer:
        """Run ``job``'s network part on the trio thread; its ``_Done`` comes back here."""
        assert self.thread is not None
        self._dispatched[request.seq] = (request, self.monotonic())
        self.thread.start_soon(_perform, self.context.self, request, job, *args)
        return IN_FLIGHT

    def _check(self, order: SubmitOrder) -> tuple[str, str] | None:
        rules = self.rules.get(order.symbol)
        if rules is None:
            return "UNKNOWN_INSTRUMENT", f"{order.symbol} is not listed on {self.name}"
        quote = self.link.last_quotes.get(order.symbol)
        reference = None
        if quote is not None:
            reference = quote.last if quote.last is not None else (quote.bid + quote.ask) / 2
        violation = check_order(rules, order, reference)
        if violation is None:
            return None
        return violation.denial.value, f"Filter failure: {violation.filter} ({violation.reason})"

    def live_at_venue(self, client_order_id: str) -> bool:
        tracked = self.link.orders.get(client_order_id)
        return tracked is not None and tracked.order_id is not None

    def _observe_rates(self, result: RestResult, sent_at: float) -> tuple[RateObservation, ...]:
        """Record the venue's counters and say them in the breaker's terms;
        ``sent_at`` is when the request left (the node's monotonic clock)."""
        usage = result.usage if result.usage is not None else parse_rate_headers(result.headers)
        self.link.used_weight.update(usage.used_weight)
        self.link.order_count.update(usage.order_count)
        return _rate_observations(usage, self.rate_limits, sent_at)

    def _on_done(self, done: _Done) -> None:
        request = done.request
        dispatched = self._dispatched.pop(request.seq, None)
        if dispatched is None:
            # A previous incarnation's request: answered TRANSPORT when it stopped.
            logger.info("%s: late answer to request %d ignored", self.name, request.seq)
            return
        sent_at = dispatched[1]
        rates: tuple[RateObservation, ...] = ()
        for result in done.results:
            rates += self._observe_rates(result, sent_at)
        with self.completing(request):
            try:
                reply = self._map_done(done)
            except MalformedPayloadError as exc:
                reply = self._unreadable_answer(request, exc)
            except Exception as exc:
                # Not the venue's doing: the incarnation fails, but the request is
                # popped already (``disconnect`` would not answer it), so the breaker
                # hears now that its outcome is unknown, not at its deadline.
                self.send_reply(
                    request,
                    BrokerReply(
                        request.seq,
                        Outcome.TRANSPORT,
                        f"the answer could not be handled: {type(exc).__name__}: {exc}",
                    ),
                    rates=rates,
                )
                raise
            self.send_reply(request, reply, rates=rates)

    def _unreadable_answer(
        self, request: BrokerRequest, error: MalformedPayloadError
    ) -> BrokerReply:
        """The venue answered, in a shape we cannot read: it may have acted on the
        request (placed, canceled, replaced the order) or not. The payload is counted
        and logged, and the breaker hears the outcome is unknown (``TRANSPORT``): it
        looks the order up by its client order id before anything is re-sent. What the
        venue did reaches the OMS from the account's events, that lookup or the next
        reconciliation, never from this answer (which confirms nothing we can read)."""
        self.note_malformed(error)
        logger.warning(
            "%s: unreadable answer to request %d (%s): outcome unknown",
            self.name,
            request.seq,
            type(request.command).__name__,
        )
        return BrokerReply(request.seq, Outcome.TRANSPORT, f"unreadable answer: {error}")

    def _first_accept(self, client_order_id: str) -> bool:
        """Whether the OMS has yet to hear this order accepted (now it has)."""
        tracked = self.link.orders.get(client_order_id)
        if tracked is None:
            return True
        first, tracked.accept_told = not tracked.accept_told, True
        return first

    def _tell_first_accept(self, order: BinanceOrder) -> None:
        """Tell the OMS the order is accepted unless it has heard so already."""
        if self._first_accept(order.client_order_id):
            self.reports_to.tell(
                OrderAccepted(
                    client_order_id=order.client_order_id,
                    venue=self.name,
                    venue_order_id=str(order.order_id),
                    ts_ns=self.context.now_ns(),
                )
            )

    def _on_answered(self, answered: _Answered) -> None:
        """The bookkeeping of a placement the session's thread has already answered
        (``_PlacementAnswer``): the same state changes ``_map_done`` makes for an
        accepted order; the OMS is told here only what the reader did not tell it
        (a REST answer's acceptance and fills)."""
        request, result, order = answered.request, answered.result, answered.order
        with self.completing(request):
            usage = result.usage if result.usage is not None else parse_rate_headers(result.headers)
            self.link.used_weight.update(usage.used_weight)
            self.link.order_count.update(usage.order_count)
            self._note_order(order)
            self.link.client_ids[(order.symbol, order.order_id)] = order.client_order_id
            if answered.told:
                self._first_accept(order.client_order_id)  # the reader told it
                for trade_id, fill in answered.fills:
                    self._note_forwarded(fill, trade_id, order.symbol)
            else:
                # As ``_map_done`` tells an accepted order, after the reply instead of before.
                self._tell_first_accept(order)
                for trade_id, fill in answered.fills:
                    self._forward_fill(fill, trade_id, order.symbol)
            self._forget_settled()
            if answered.unreadable_fills is not None:
                self.note_malformed(answered.unreadable_fills)
                # The order is tracked with its executed quantity and none of its
                # trades forwarded: the next incarnation's reconciliation fetches them.
                raise BrokerError(
                    "unreadable fills in a placement answer: reconciling through a restart",
                    broker=self.name,
                ) from answered.unreadable_fills

    def _map_done(self, done: _Done) -> BrokerReply:
        """Tell the OMS what the venue's answer says; return the breaker's reply."""
        request = done.request
        if done.failure is not None:
            if isinstance(done.failure, MalformedPayloadError):
                self.note_malformed(done.failure)
            outcome = (
                Outcome.TIMEOUT
                if isinstance(done.failure, BrokerTimeoutError)
                else Outcome.TRANSPORT
            )
            return BrokerReply(request.seq, outcome, str(done.failure))
        command = request.command
        last = done.results[-1]
        if last.error is not None:
            return self._on_error(request, last.error, last)
        if isinstance(command, SubmitOrder):
            order = parse_order(last.body, broker=self.name)
            self._note_order(order)
            self.link.client_ids[(order.symbol, order.order_id)] = order.client_order_id
            self._tell_first_accept(order)
            for trade_id, fill in placement_fills(self.name, order, last.body):
                self._forward_fill(fill, trade_id, order.symbol)
            reply = BrokerReply(request.seq, Outcome.OK)
        elif isinstance(command, CancelOrder):
            order = parse_order(last.body, broker=self.name)
            self._note_order(order)
            self._forward_trades_first(done, order)
            self.reports_to.tell(
                OrderCanceled(
                    client_order_id=command.client_order_id,
                    venue=self.name,
                    venue_order_id=str(order.order_id),
                    ts_ns=self.context.now_ns(),
                )
            )
            reply = BrokerReply(request.seq, Outcome.OK)
        elif isinstance(command, QueryOrder):
            order = parse_order(done.results[0].body, broker=self.name)
            self.link.client_ids[(order.symbol, order.order_id)] = order.client_order_id
            self._note_order(order)
            for raw in done.trades:
                self._forward_trade(parse_trade(raw, broker=self.name))
            report = to_status_report(self.name, order)
            self.reports_to.tell(report)
            reply = BrokerReply(request.seq, Outcome.OK, report=report)
        elif isinstance(command, ModifyOrder):
            reply = self._on_replaced(request, command, last, done)
        elif isinstance(command, CancelAllOrders):
            for result in done.results:
                if result.error is None and isinstance(result.body, list):
                    for raw in result.body:
                        if (
                            isinstance(raw, Mapping)
                            and "orderListId" in raw
                            and "orders" not in raw
                        ):
                            order = parse_order(raw, broker=self.name)
                            self._note_order(order)
                            self.reports_to.tell(to_status_report(self.name, order))
            reply = BrokerReply(request.seq, Outcome.OK)
        self._forget_settled()
        return reply

    def _forward_trades_first(self, done: _Done, order: BinanceOrder) -> None:
        """A terminal answer over REST can overtake the stream's last fills; the OMS
        gets those fills before the order closes, so none is lost if the process
        dies before the stream catches up (the journal would show it closed)."""
        self.link.client_ids[(order.symbol, order.order_id)] = order.client_order_id
        for raw in done.trades:
            self._forward_trade(parse_trade(raw, broker=self.name))

    def _on_replaced(
        self, request: BrokerRequest, command: ModifyOrder, result: RestResult, done: _Done
    ) -> BrokerReply:
        body = result.body
        assert command.new_client_order_id is not None
        if not isinstance(body, Mapping):
            raise MalformedPayloadError(
                f"unexpected cancelReplace answer {body!r}", broker=self.name
            )
        # Both legs read before anything is told: an unreadable one is an unknown
        # outcome for the whole replace (``_unreadable_answer``), not half a story.
        canceled = parse_order(body.get("cancelResponse"), broker=self.name)
        placed = parse_order(body.get("newOrderResponse"), broker=self.name)
        self._note_order(canceled)
        self._forward_trades_first(done, canceled)
        self.reports_to.tell(
            OrderCanceled(
                client_order_id=command.client_order_id,
                venue=self.name,
                venue_order_id=str(canceled.order_id),
                ts_ns=self.context.now_ns(),
            )
        )
        self.link.client_ids[(placed.symbol, placed.order_id)] = placed.client_order_id
        self._note_order(placed)
        self._tell_first_accept(placed)
        return BrokerReply(request.seq, Outcome.OK)

    def _on_error(
        self, request: BrokerRequest, error: BinanceErrorAnswer, result: RestResult
    ) -> BrokerReply:
        command = request.command
        if error.code == -1021 and self.thread is not None and self.session is not None:
            self.thread.start_soon(
                _resync_clock, self.context.self, self.session.api, self._wall_time_ms
            )
        kind = error.kind
        detail = f"{error.code} {error.msg}"
        seq = request.seq
        if kind is ErrorKind.RATE_LIMITED or kind is ErrorKind.BANNED:
            if isinstance(command, SubmitOrder):
                self._drop_unsent(command.client_order_id)
            outcome = Outcome.RATE_LIMITED if kind is ErrorKind.RATE_LIMITED else Outcome.BANNED
            return BrokerReply(seq, outcome, detail, retry_after=_asked_to_wait(result))
        if kind is ErrorKind.UNKNOWN_OUTCOME or kind is ErrorKind.CLOCK:
            # 5xx / -1007: the order may or may not exist; the breaker asks
            # the venue by client order id before anything is re-sent.
            return BrokerReply(seq, Outcome.TRANSPORT, detail)
        if isinstance(command, QueryOrder):
            if kind is ErrorKind.NOT_FOUND:
                self._drop_unsent(command.client_order_id)
                return BrokerReply(seq, Outcome.NOT_FOUND, detail)
            return BrokerReply(seq, Outcome.REJECTED, detail)
        code = str(error.code)
        if isinstance(command, SubmitOrder):
            self._drop_unsent(command.client_order_id)
            return self.reject(request, OrderRejected, command.client_order_id, code, error.msg)
        if isinstance(command, CancelOrder):
            return self.reject(request, CancelRejected, command.client_order_id, code, error.msg)
        if isinstance(command, ModifyOrder):
            return self._on_replace_refused(request, command, error, result)
        return BrokerReply(seq, Outcome.REJECTED, detail)

    def _on_replace_refused(
        self,
        request: BrokerRequest,
        command: ModifyOrder,
        error: BinanceErrorAnswer,
        result: RestResult,
    ) -> BrokerReply:
        """-2021: one leg worked; -2022: neither did (Binance answers 409 / 400)."""
        assert command.new_client_order_id is not None
        data = error.data if isinstance(error.data, Mapping) else {}
        cancel_ok = data.get("cancelResult") == "SUCCESS"
        new_ok = data.get("newOrderResult") == "SUCCESS"
        if cancel_ok:
            self.reports_to.tell(
                OrderCanceled(
                    client_order_id=command.client_order_id,
                    venue=self.name,
                    ts_ns=self.context.now_ns(),
                )
            )
        if not new_ok and not self.live_at_venue(command.new_client_order_id):
            self._drop_unsent(command.new_client_order_id)
            reason = _leg_message(data.get("newOrderResponse")) or error.msg
            self.reports_to.tell(
                OrderRejected(
                    client_order_id=command.new_client_order_id,
                    venue=self.name,
                    code=str(error.code),
                    reason=reason,
                    ts_ns=self.context.now_ns(),
                )
            )
        if not cancel_ok:
            reason = _leg_message(data.get("cancelResponse")) or error.msg
            return self.reject(
                request, ModifyRejected, command.client_order_id, str(error.code), reason
            )
        return BrokerReply(request.seq, Outcome.REJECTED, f"{error.code} {error.msg}")

    def _drop_unsent(self, client_order_id: str) -> None:
        tracked = self.link.orders.get(client_order_id)
        if tracked is not None and tracked.order_id is None:
            del self.link.orders[client_order_id]

    # -- introspection ------------------------------------------------------------------------

    def balances(self) -> Mapping[str, Balance]:
        return dict(self.link.balances)


_INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def _rate_limits(info: object) -> dict[str, tuple[float, float]]:
    """exchangeInfo's ``rateLimits`` keyed as the headers name them: ``ORDERS:10S``."""
    limits: dict[str, tuple[float, float]] = {}
    rows = info.get("rateLimits") if isinstance(info, Mapping) else None
    for row in rows if isinstance(rows, list) else ():
        if not isinstance(row, Mapping):
            continue
        kind, interval = row.get("rateLimitType"), row.get("interval")
        number, limit = row.get("intervalNum"), row.get("limit")
        if (
            kind in ("REQUEST_WEIGHT", "ORDERS")
            and interval in _INTERVAL_SECONDS
            and isinstance(number, int)
            and isinstance(limit, int)
        ):
            key = f"{kind}:{number}{str(interval)[0]}"
            limits[key] = (float(limit), float(number * _INTERVAL_SECONDS[str(interval)]))
    return limits


def _rate_observations(
    usage: HeaderRates, rate_limits: Mapping[str, tuple[float, float]], sent_at: float
) -> tuple[RateObservation, ...]:
    """The venue's counters in the breaker's terms, for the limits exchangeInfo lists;
    ``sent_at`` is when the request left (the node's monotonic clock)."""
    observations = []
    for counter, values in (
        ("REQUEST_WEIGHT", usage.used_weight),
        ("ORDERS", usage.order_count),
    ):
        for interval, used in values.items():
            limit = rate_limits.get(f"{counter}:{interval}")
            if limit is not None:
                observations.append(
                    RateObservation(
                        f"{counter}:{interval}", float(used), limit[0], limit[1], sent_at
                    )
                )
    return tuple(observations)


def _leg_message(leg: object) -> str | None:
    if isinstance(leg, Mapping) and isinstance(leg.get("msg"), str):
        return str(leg["msg"])
    return None


# -- the network parts, run on the trio thread -----------------------------------------------


async def _periodic_check(
    me: Address,
    api: BinanceApi,
    unsettled: Mapping[str, tuple[str, int | None]],
    sweep: _SweepFrom,
    known: Mapping[tuple[str, int], str],
) -> None:
    """The periodic reconciliation's network part, a task in the session's loop: nothing
    may escape it (an escaping error would end that loop and every stream with it),
    and the actor always hears it ended (``_Checked``), or it would never check again."""
    try:
        snapshot = await _fetch_reconciliation(api, unsettled, sweep, known)
    except MalformedPayloadError as exc:
        logger.warning("%s: periodic check failed: %s", api.broker, exc)
        me.tell(_Checked(None, malformed=exc))
        return
    except BrokerError as exc:
        logger.warning("%s: periodic check failed: %s", api.broker, exc)
        me.tell(_Checked(None))
        return
    except Exception:  # an escaping error would end the session's loop
        logger.exception("%s: periodic check failed", api.broker)
        me.tell(_Checked(None))
        return
    me.tell(_Checked(snapshot))


async def _close_session(session: BinanceSession) -> None:
    with trio.move_on_after(5.0):
        await session.aclose()


async def _resync_clock(me: Address, api: BinanceApi, wall_time_ms: Callable[[], int]) -> None:
    """After a -1021, measure the venue's clock again; the breaker re-sends meanwhile."""
    before = wall_time_ms()
    try:
        result = await api.server_time()
    except BrokerError as exc:
        logger.warning("%s: cannot re-read the venue clock: %s", api.broker, exc)
        return
    after = wall_time_ms()
    body = result.body
    if isinstance(body, Mapping) and isinstance(body.get("serverTime"), int):
        me.tell(_ClockOffset(body["serverTime"] - (before + after) // 2))


async def _watch(session: BinanceSession, symbols: tuple[str, ...]) -> None:
    try:
        await session.watch_quotes(symbols)
    except BrokerError as exc:
        logger.warning("%s: cannot stream quotes for %s: %s", session.broker, symbols, exc)


async def _watch_trades(session: BinanceSession, symbols: tuple[str, ...]) -> None:
    try:
        await session.watch_trades(symbols)
    except BrokerError as exc:
        logger.warning("%s: cannot stream trades for %s: %s", session.broker, symbols, exc)


async def _perform(
    me: Address, request: BrokerRequest, job: Callable[..., Any], *args: Any
) -> None:
    """Run one request's network part and hand the result back to the actor."""
    try:
        done = await job(request, *args)
    except BrokerError as exc:
        done = _Done(request, failure=exc)
    except trio.Cancelled:
        me.tell(_lost_in_flight(request))
        raise
    me.tell(done)


def _lost_in_flight(request: BrokerRequest) -> _Done:
    """The answer of a request whose connection closed before the venue's came."""
    return _Done(
        request,
        failure=BrokerConnectionError(
            "connection closed with the request in flight",
            broker=request.command.venue or None,
        ),
    )


@dataclass(frozen=True, slots=True)
class _PlacementAnswer:
    """What the session's reader needs to answer an ``order.place`` itself: an
    accepted order's reply goes to the breaker, then the order goes to the OMS (with
    the fills of a FULL answer), straight from the reader, one hop sooner than
    through the actor's mailbox; the actor gets the bookkeeping (``_Answered``) last.
    Anything else (a refusal, an unreadable answer, a failure) goes to the actor as a
    ``_Done``. A REST placement (``_place_rest``, ``tells_oms`` false) is answered the
    same way from the session's thread, but only the reply goes from here: the
    actor tells the OMS when it handles ``_Answered``.

    Why this order: the reply is the acknowledgement the breaker (and whoever waits
    behind it) is waiting for, so nothing else is built or told before it; the order
    is known accepted by then (the order's state parsed; the FULL answer's fills are
    read right after the reply, before the OMS is told: an unreadable one reaches
    the actor as ``_Answered.unreadable_fills``, which reconciles). The breaker's next
    request about the same order still finds the books done: the base keeps the
    order busy until the actor has handled ``_Answered`` (``completing``), and holds
    such a request back until then. ``_Answered`` goes last so the request stops
    counting as I/O in flight only once the OMS's messages are in its mailbox (the
    node is never seen quiescent between the two), and still before the account's
    events for the order, which the reader handles after this returns. Between the
    OMS's messages and ``_Answered`` the reader hands the GIL over once, for
    ``CASCADE_SECONDS`` (``hand_over_gil``): the breaker's and the OMS's threads, just
    woken, and the strategy's after them, run before it reads the frames behind the
    answer, instead of waiting until it is idle.

    Only reads here: the actor's ``dispatched`` is shared, and whoever pops the
    request's entry (this, ``_on_done`` or ``disconnect``) is the one that answers."""

    me: Address
    request: BrokerRequest
    broker: str
    reports_to: Address
    dispatched: dict[int, tuple[BrokerRequest, float]]
    rate_limits: Mapping[str, tuple[float, float]]
    now_ns: Callable[[], int]
    tells_oms: bool = True
    """Whether the OMS hears the acceptance (and a FULL answer's fills) from here:
    over the WebSocket API, whose answer comes on the connection that carries the
    account's events, ahead of them. Over REST those events come on another
    connection and may be handled first: the actor, which handles them, tells the
    OMS (``_on_answered``), so only one thread ever decides that an acceptance is
    the first; this only replies."""

    def done(self, done: _Done) -> None:
        self.me.tell(done)

    def answer(self, result: RestResult) -> None:
        request = self.request
        if result.error is None:
            try:
                order = parse_order(result.body, broker=self.broker)
            except MalformedPayloadError:
                order = None
            if order is not None:
                entry = self.dispatched.pop(request.seq, None)
                if entry is None:
                    return  # answered TRANSPORT by a stopping actor meanwhile
                usage = (
                    result.usage if result.usage is not None else parse_rate_headers(result.headers)
                )
                rates = _rate_observations(usage, self.rate_limits, entry[1])
                request.reply_to.tell(BrokerReply(request.seq, Outcome.OK, rates=rates))
                if not self.tells_oms:
                    self._hand_over(result, order)
                    return
                # The order's state is read and accepted: that is all the reply needs.
                # Its trades are read after it (an unreadable one does not unmake the
                # acceptance: the actor reconciles them through a restart).
                unreadable: MalformedPayloadError | None = None
                try:
                    fills = tuple(placement_fills(self.broker, order, result.body))
                except MalformedPayloadError as exc:
                    fills, unreadable = (), exc
                self.reports_to.tell(
                    OrderAccepted(
                        client_order_id=order.client_order_id,
                        venue=self.broker,
                        venue_order_id=str(order.order_id),
                        ts_ns=self.now_ns(),
                    )
                )
                for _trade_id, fill in fills:
                    self.reports_to.tell(fill)
                # The breaker and the OMS are waking for what was just told: let them,
                # and what they set off, run before this thread reads the frames the
                # venue sent behind the answer (and before our own actor wakes for the
                # bookkeeping).
                hand_over_gil(CASCADE_SECONDS)
                self.me.tell(_Answered(request, result, order, fills, unreadable))
                return
        self.me.tell(_Done(request, (result,)))

    def _hand_over(self, result: RestResult, order: BinanceOrder) -> None:
        """The rest of a replied REST placement goes to the actor: it tells the OMS.

        Then the GIL goes to the threads just woken (the breaker for the reply, the
        actor for ``_Answered``) before this thread reads on: over REST the account's
        events for the same order arrive on the user-data stream together with the
        answer, and reading them first kept the reply waiting for the GIL (in the
        wire benchmark's timeline, 693 us from this answer to the reply's arrival,
        355 us with the hand-over; in 24 alternated rounds of ``benchmarks/ab.py
        --what wire`` submit -> ack went from 1.367x to 1.275x the bare client)."""
        unreadable: MalformedPayloadError | None = None
        try:
            fills = tuple(placement_fills(self.broker, order, result.body))
        except MalformedPayloadError as exc:
            fills, unreadable = (), exc
        self.me.tell(_Answered(self.request, result, order, fills, unreadable, told=False))
        hand_over_gil()


async def _place_ws(
    answer: _PlacementAnswer,
    api: BinanceApi,
    params: Sequence[tuple[str, str]],
    monotonic: Callable[[], float],
) -> None:
    """``order.place`` on the logged-on WebSocket API connection, answered straight
    from the session's reader (before the account's events for the same order, which
    follow the answer on that connection: see ``_PlacementAnswer``); as ``_place_rest``,
    nothing is stamped or sent past the request's deadline. Exactly one answer per
    request."""
    request = answer.request
    answered = False

    def on_answer(response: WsResponse) -> None:
        nonlocal answered
        answered = True
        crash_point("after_send")
        answer.answer(RestResult.from_ws(response, sent_at))

    sent_at = trio.current_time()
    try:
        refuse_if_expired(request, monotonic)
        await api.ws_new_order(params, on_answer=on_answer)
    except BrokerError as exc:
        if not answered:
            answer.done(_Done(request, failure=exc))
    except trio.Cancelled:
        if not answered:
            answer.done(_lost_in_flight(request))
        raise


async def _place_rest(
    answer: _PlacementAnswer,
    api: BinanceApi,
    params: Sequence[tuple[str, str]],
    monotonic: Callable[[], float],
) -> None:
    """``POST /api/v3/order``, answered from the session's thread as soon as the
    venue's answer is read (``_PlacementAnswer``, which replies to the breaker there
    and leaves the OMS's messages to the actor), one hop sooner than through the
    actor's mailbox. Exactly one answer per request."""
    request = answer.request
    try:
        # Never sign an order request after its deadline: the signed timestamp plus
        # recvWindow bounds the venue's acceptance (``binance_acceptance_window``)
        # only if the timestamp is no later than the deadline. The endpoint call
        # signs synchronously, right after this check, with no await between.
        refuse_if_expired(request, monotonic)
        result = await api.new_order(params)
    except BrokerError as exc:
        answer.done(_Done(request, failure=exc))
        return
    except trio.Cancelled:
        answer.done(_lost_in_flight(request))
        raise
    crash_point("after_send")
    answer.answer(result)


async def _ws_answer(call: Awaitable[WsResponse]) -> RestResult:
    sent_at = trio.current_time()
    return RestResult.from_ws(await call, sent_at)


async def _cancel_ws(request: BrokerRequest, api: BinanceApi, command: CancelOrder) -> _Done:
    result = await _ws_answer(api.ws_cancel_order(command.symbol, command.client_order_id))
    trades = await _trades_of(api, result.body) if result.error is None else ()
    return _Done(request, (result,), trades=trades)


async def _trades_of(api: BinanceApi, order: object) -> tuple[Any, ...]:
    """The trades of an order a REST answer shows partly or wholly filled."""
    if not isinstance(order, Mapping):
        return ()
    order_id, symbol = order.get("orderId"), order.get("symbol")
    try:
        executed = Decimal(str(order.get("executedQty", "0")))
    except ArithmeticError:
        return ()
    if not isinstance(order_id, int) or not isinstance(symbol, str) or executed <= 0:
        return ()
    result = await api.my_trades(symbol, order_id=order_id)
    if result.error is None and isinstance(result.body, list):
        return tuple(result.body)
    return ()


async def _cancel(request: BrokerRequest, api: BinanceApi, command: CancelOrder) -> _Done:
    result = await api.cancel_order(command.symbol, command.client_order_id)
    trades = await _trades_of(api, result.body) if result.error is None else ()
    return _Done(request, (result,), trades=trades)


async def _query(request: BrokerRequest, api: BinanceApi, symbol: str, client_id: str) -> _Done:
    status = await api.query_order(symbol, client_order_id=client_id)
    if status.error is not None or not isinstance(status.body, Mapping):
        return _Done(request, (status,))
    order_id = status.body.get("orderId")
    trades: tuple[Any, ...] = ()
    if isinstance(order_id, int):
        result = await api.my_trades(symbol, order_id=order_id)
        if result.error is None and isinstance(result.body, list):
            trades = tuple(result.body)
    return _Done(request, (status,), trades=trades)


async def _cancel_replace(
    request: BrokerRequest,
    api: BinanceApi,
    command: ModifyOrder,
    monotonic: Callable[[], float],
    websocket: bool = False,
) -> _Done:
    """The original's status, then the cancel/replace that keeps what it must of it:
    over REST, or over the WebSocket API (``order.status``, ``order.cancelReplace``)."""
    if websocket:
        status = await _ws_answer(api.ws_query_order(command.symbol, command.client_order_id))
    else:
        status = await api.query_order(command.symbol, client_order_id=command.client_order_id)
    if status.error is not None:
        return _Done(request, (status,))
    original = parse_order(status.body, broker=api.broker)
    try:
        params = cancel_replace_params(original, command)
    except UnsupportedOrderError as exc:
        body = BinanceErrorAnswer(400, -1102, str(exc))
        return _Done(request, (RestResult(400, None, {}, status.sent_at, body),))
    refuse_if_expired(request, monotonic)  # as in _place_rest
    if websocket:
        result = await _ws_answer(api.ws_cancel_replace(params))
    else:
        result = await api.cancel_replace(params)
    trades: tuple[Any, ...] = ()
    if result.error is None and isinstance(result.body, Mapping):
        trades = await _trades_of(api, result.body.get("cancelResponse"))
    return _Done(request, (status, result), trades=trades)


async def _cancel_all(request: BrokerRequest, api: BinanceApi, symbols: tuple[str, ...]) -> _Done:
    results = []
    for symbol in symbols:
        results.append(await api.cancel_open_orders(symbol))
    if not results:
        return _Done(request, (RestResult(200, [], {}, trio.current_time()),))
    ok = [r for r in results if r.error is None or r.error.code == -2011]
    return _Done(request, tuple(ok) if ok else tuple(results))


async def _fetch_reconciliation(
    api: BinanceApi,
    unsettled: Mapping[str, tuple[str, int | None]],
    sweep: _SweepFrom,
    known: Mapping[tuple[str, int], str],
) -> _Reconciliation:
    def ok(result: RestResult, what: str) -> Any:
        if result.error is not None:
            raise BrokerConnectionError(
                f"{what} refused while reconciling: {result.error.code} {result.error.msg}",
                broker=api.broker,
                code=str(result.error.code),
                retry_after=_asked_to_wait(result),
            )
        return result.body

    open_orders = ok(await api.open_orders(), "openOrders")
    if not isinstance(open_orders, list):
        raise MalformedPayloadError("openOrders is not a list", broker=api.broker)
    orders: list[tuple[str, RestResult]] = []
    trades: list[Any] = []
    open_rows = {row.get("clientOrderId"): row for row in open_orders if isinstance(row, Mapping)}
    for client_id, (symbol, _order_id) in sorted(unsettled.items()):
        # An open order's status is already in the openOrders answer.
        row = open_rows.get(client_id)
        if row is None:
            status = await api.query_order(symbol, client_order_id=client_id)
            orders.append((client_id, status))
            row = status.body if status.error is None else None
        order_id = row.get("orderId") if isinstance(row, Mapping) else None
        if isinstance(order_id, int) and _has_executed(row):
            trades.extend(await _all_trades(api, symbol, ok, order_id=order_id))
    trade_cursors = dict(sweep.trades)
    order_cursors = dict(sweep.orders)
    for symbol in sweep.symbols:
        # First sight of a symbol (a new journal): its history so far is the
        # account's past, not ours; the sweep starts at the venue's latest.
        if symbol not in trade_cursors:
            latest = ok(await api.my_trades(symbol, limit=1), "myTrades")
            trade_cursors[symbol] = _last_id(latest, "id", api.broker)
        if symbol not in order_cursors:
            latest = ok(await api.all_orders(symbol, limit=1), "allOrders")
            order_cursors[symbol] = _last_id(latest, "orderId", api.broker)
    for symbol, cursor in sorted(sweep.trades.items()):
        swept = await _all_trades(api, symbol, ok, from_id=cursor + 1)
        trades.extend(swept)
        trade_cursors[symbol] = max(cursor, _last_id(swept, "id", api.broker))
    orders_since: list[Any] = []
    for symbol, cursor in sorted(sweep.orders.items()):
        swept = await _all_orders(api, symbol, cursor + 1, ok)
        orders_since.extend(swept)
        order_cursors[symbol] = max(cursor, _last_id(swept, "orderId", api.broker))
    known_ids = dict(known)
    for row in (*open_orders, *orders_since):
        if isinstance(row, Mapping) and isinstance(row.get("orderId"), int):
            known_ids[(str(row.get("symbol")), row["orderId"])] = str(row.get("clientOrderId"))
    for client_id, status in orders:
        if status.error is None and isinstance(status.body, Mapping):
            body = status.body
            order_id = body.get("orderId")
            if not isinstance(order_id, int) or isinstance(order_id, bool):
                raise MalformedPayloadError(
                    f"order answer for {client_id} without a numeric orderId: {order_id!r:.40}",
                    broker=api.broker,
                    client_order_id=client_id,
                )
            known_ids[(str(body.get("symbol")), order_id)] = str(body.get("clientOrderId"))
    adopted: list[Any] = []
    for row in trades:
        if not isinstance(row, Mapping):
            continue
        key = (str(row.get("symbol")), row.get("orderId"))
        if isinstance(key[1], int) and key not in known_ids:
            order = ok(await api.query_order(key[0], order_id=key[1]), "order")
            adopted.append(order)
            known_ids[(key[0], key[1])] = (
                str(order.get("clientOrderId")) if isinstance(order, Mapping) else ""
            )
    account = ok(await api.account(omit_zero_balances=True), "account")
    return _Reconciliation(
        tuple(open_orders),
        tuple(orders),
        tuple(trades),
        tuple(adopted),
        account,
        orders_since=tuple(orders_since),
        trade_cursors=trade_cursors,
        order_cursors=order_cursors,
    )


def _last_id(rows: object, name: str, broker: str) -> int:
    """The largest ``name`` in a list of rows; -1 for none."""
    if not isinstance(rows, list):
        raise MalformedPayloadError(f"expected a list of rows, got {rows!r:.80}", broker=broker)
    ids = [row.get(name) for row in rows if isinstance(row, Mapping)]
    return max((i for i in ids if isinstance(i, int) and not isinstance(i, bool)), default=-1)


async def _all_orders(
    api: BinanceApi, symbol: str, from_id: int, ok: Callable[[RestResult, str], Any]
) -> list[Any]:
    """Every order of ``symbol`` with orderId >= ``from_id``, page by page."""
    rows: list[Any] = []
    while True:
        page = ok(await api.all_orders(symbol, order_id=from_id, limit=PAGE_LIMIT), "allOrders")
        if not isinstance(page, list):
            raise MalformedPayloadError("allOrders is not a list", broker=api.broker)
        rows.extend(page)
        last = _last_id(page, "orderId", api.broker)
        if len(page) < PAGE_LIMIT or last < from_id:
            return rows
        from_id = last + 1


async def _all_trades(
    api: BinanceApi,
    symbol: str,
    ok: Callable[[RestResult, str], Any],
    *,
    order_id: int | None = None,
    from_id: int | None = None,
) -> list[Any]:
    """One order's trades (``order_id``), or every trade of ``symbol`` from trade id
    ``from_id`` on, page by page."""
    rows: list[Any] = []
    while True:
        page = ok(
            await api.my_trades(symbol, order_id=order_id, from_id=from_id, limit=PAGE_LIMIT),
            "myTrades",
        )
        if not isinstance(page, list):
            raise MalformedPayloadError("myTrades is not a list", broker=api.broker)
        rows.extend(page)
        if len(page) < PAGE_LIMIT or from_id is None:
            return rows
        last = page[-1].get("id") if isinstance(page[-1], Mapping) else None
        if not isinstance(last, int):
            return rows
        from_id = last + 1


def _asked_to_wait(result: RestResult) -> float | None:
    """Retry-After of a rate-limit or ban answer (REST's header, or the WebSocket
    API's ``retryAfter``): the restart or the breaker waits that long."""
    if result.error is None or result.error.kind not in (
        ErrorKind.RATE_LIMITED,
        ErrorKind.BANNED,
    ):
        return None
    if result.retry_after is not None:
        return result.retry_after
    return retry_after_seconds(result.headers)


def _has_executed(row: object) -> bool:
    """Whether an order answer shows any execution: only then can it have trades
    to fetch (a weight-5 call per order that a reconnect can skip)."""
    executed = row.get("executedQty") if isinstance(row, Mapping) else None
    try:
        return executed is None or Decimal(str(executed)) != 0
    except ArithmeticError:
        return True
