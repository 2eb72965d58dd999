"""The matching simulator: a whole single-account venue in one deterministic object."""

from __future__ import annotations

import bisect
import collections
import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tradenode.messages._enums import OrderType, Side, TimeInForce
from tradenode.sim._book import PriceLevel, SyntheticBook
from tradenode.sim._config import InstrumentSpec, SimConfig
from tradenode.sim._events import (
    SimAccepted,
    SimAmended,
    SimBalance,
    SimCanceled,
    SimEvent,
    SimExpired,
    SimFill,
    SimOrder,
    SimOrderStatus,
    SimQuote,
    SimRejectCode,
    SimRejected,
    SimTriggered,
)
from tradenode.sim._ledger import Ledger
from tradenode.sim._numbers import (
    ZERO,
    bps_of,
    exact,
    is_finite_decimal,
    is_multiple,
    round_to_tick,
)
from tradenode.sim._orders import BookedOrder, fill_from_plain, fill_to_plain

__all__ = [
    "EXPIRED_BOOK_EXHAUSTED",
    "EXPIRED_FOK_UNFILLABLE",
    "EXPIRED_IOC_REMAINDER",
    "EXPIRED_TIME_REACHED",
    "EXPIRED_UNFUNDED_TRIGGER",
    "MatchingSimulator",
]

EXPIRED_FOK_UNFILLABLE = "FOK: the book could not fill the whole quantity"
EXPIRED_IOC_REMAINDER = "IOC: unfilled remainder"
EXPIRED_BOOK_EXHAUSTED = "market order: unfilled beyond the book's depth"
EXPIRED_TIME_REACHED = "expire time reached"
EXPIRED_UNFUNDED_TRIGGER = "insufficient balance when the stop triggered"

_DAY_NS = 86_400 * 10**9
_SNAPSHOT_FORMAT = 1
_RANDOM_STATE_VERSION = 3
_SHOCK_QUANTUM = Decimal("1e-9")
_RESTING_TIME_IN_FORCE = frozenset({TimeInForce.GTC, TimeInForce.DAY, TimeInForce.GTD})

# The members an order's arrival and fill test, read once: a member read off
# its enum class goes through ``EnumType``'s Python-level ``__getattr__`` hook
# (~80 ns, where a module global is ~15), a dozen times and more per order.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_TRAILING_STOP = OrderType.TRAILING_STOP
_DAY = TimeInForce.DAY
_FOK = TimeInForce.FOK
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_PARTIALLY_FILLED = SimOrderStatus.PARTIALLY_FILLED
_FILLED = SimOrderStatus.FILLED
_UNSUPPORTED_TIME_IN_FORCE = frozenset({TimeInForce.OPG, TimeInForce.CLS})


class _CountingClock:
    """Time that advances one nanosecond per read: ordered timestamps without a wall clock."""

    __slots__ = ("now_ns",)

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        self.now_ns += 1
        return self.now_ns


@dataclass(slots=True)
class _Market:
    spec: InstrumentSpec
    book: SyntheticBook
    last: Decimal
    ts_ns: int
    series_index: int
    walk: random.Random


class _Refusal(Exception):
    """Raised by validation before any state changes; becomes a :class:`SimRejected`."""

    def __init__(self, code: SimRejectCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class MatchingSimulator:
    """A pure, seeded venue: prices, a synthetic book, one account's orders and balances.

    Nothing here does I/O, starts a thread, reads the wall clock or touches
    the global random state; the same seed, clock and call sequence always
    give the same events, which is what lets a paper broker's run be
    replayed and a fake venue's test be exact.

    **Prices.** Each symbol has a last price that moves only on ``step``
    (one tick of a seeded random walk, or the next value of the instrument's
    ``price_series``) or ``set_price``. Each symbol draws from its own
    stream, derived from the seed and the symbol, so a symbol's path does not
    depend on which other symbols are stepped or on the orders placed; passive
    fill draws use a further stream of their own.

    **Book.** Other participants are a :class:`SyntheticBook` around the last
    price, rebuilt on every look. Arriving orders and triggered conditional
    orders take from it as takers (several fills at several prices, with
    slippage, never past a limit price). Resting limit orders are never shown
    in it and never match each other (one account cannot trade with itself);
    instead, on each ``step``/``set_price`` a resting buy whose price is at or
    above the ask (a sell: at or below the bid) fills as maker at its own
    price, for at most one level's quantity, with probability
    ``fill_probability``.

    **Accounting.** Spot balances with free and locked columns. Commission
    is charged in the quote asset on every fill (notional times the maker or
    taker rate), which keeps base quantities exact: buying 1 BTC yields
    exactly 1 BTC, and ``position`` equals the base balance change. On
    acceptance an order locks what it may spend: a sell locks its base
    quantity; a limit, stop-limit or limit-if-touched buy locks
    ``quantity * price`` plus commission at the dearer of the two rates; a
    market buy locks the exact cost of its sweep, computed before it fills;
    a stop, trailing-stop or market-if-touched buy locks the cost of a sweep
    as if the last price were the trigger price, and tops up (or expires
    with :data:`EXPIRED_UNFUNDED_TRIGGER`) at trigger time if the market
    gapped. Fills spend from the lock; whatever an order no longer needs is
    unlocked after each fill and when it closes.
    With ``allow_short`` a sell may lock more base than is free, driving the
    free base balance negative; buys must always be covered by free quote.

    **Triggers.** Conditional orders wait, untouched by the book, until a
    ``step``/``set_price`` moves the last price to their trigger: a stop
    when it moves against them (a buy at last >= trigger, a sell at
    last <= trigger), an if-touched order when it comes to them (a buy at
    last <= trigger, a sell at last >= trigger; Binance's TAKE_PROFIT and
    TAKE_PROFIT_LIMIT). One whose trigger the last price has already reached
    is refused with ``STOP_WOULD_TRIGGER``, on submit and on amend, as
    Binance refuses both kinds ("Order would trigger immediately."). Once
    triggered, STOP, TRAILING_STOP and MARKET_IF_TOUCHED execute as market
    orders, STOP_LIMIT and LIMIT_IF_TOUCHED as limit orders that may rest.

    **Time.** Every mutating call reads the clock once and stamps all its
    events with that reading. DAY and GTD orders expire only when ``step``,
    ``set_price`` or ``expire_due`` runs at or after their expire time, so a
    caller driving time by hand sees expiry exactly when it asks for it.
    A DAY order without an explicit expire time lasts until the end of the
    UTC day of its creation by the simulator's clock.
    """

    def __init__(
        self, config: SimConfig, *, seed: int, clock: Callable[[], int] | None = None
    ) -> None:
        self._setup(config, seed=seed, clock=clock, counted_ns=0)
        now = self._clock()
        for market in self._markets.values():
            market.ts_ns = now

    def _setup(
        self, config: SimConfig, *, seed: int, clock: Callable[[], int] | None, counted_ns: int
    ) -> None:
        if not isinstance(config, SimConfig):
            raise TypeError(f"config must be a SimConfig, not {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {seed!r}")
        self._config = config
        self._seed = seed
        self._counting_clock: _CountingClock | None = None
        if clock is None:
            self._counting_clock = clock = _CountingClock(counted_ns)
        self._clock: Callable[[], int] = clock
        self._markets: dict[str, _Market] = {
            spec.symbol: _Market(
                spec=spec,
                book=SyntheticBook.for_symbol(config, spec.symbol),
                last=spec.initial_price,
                ts_ns=0,
                series_index=0,
                walk=random.Random(f"{seed}:walk:{spec.symbol}"),
            )
            for spec in config.instruments
        }
        self._fill_random = random.Random(f"{seed}:fills")
        self._ledger = Ledger(config.balances, self._instrument_assets())
        self._positions: dict[str, Decimal] = dict.fromkeys(self._markets, ZERO)
        self._orders: dict[int, BookedOrder] = {}
        self._open: dict[int, BookedOrder] = {}
        self._by_client_id: dict[str, BookedOrder] = {}
        self._fills: list[SimFill] = []
        self._closed: collections.deque[BookedOrder] = collections.deque()
        self._retain = config.retain_closed_orders
        self._next_venue_order_id = 1
        self._next_trade_id = 1

    def _instrument_assets(self) -> list[str]:
        assets: list[str] = []
        for spec in self._config.instruments:
            assets.extend((spec.base_asset, spec.quote_asset))
        return assets

    @property
    def config(self) -> SimConfig:
        return self._config

    @property
    def seed(self) -> int:
        return self._seed

    # ----------------------------------------------------------------- orders

    @exact
    def submit(
        self,
        client_order_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        *,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        trailing_offset: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        post_only: bool = False,
        expire_time_ns: int | None = None,
    ) -> list[SimEvent]:
        """Accept or reject an order, then run whatever it executes on arrival.

        The events are an acceptance followed by any fills and, if the order
        is done, its :class:`SimExpired` (a filled order ends with the fill
        whose ``leaves_quantity`` is zero); or a single :class:`SimRejected`,
        in which case nothing is kept and the client order id stays free.
        """
        now = self._clock()
        try:
            market = self._check_submission(
                client_order_id,
                symbol,
                side,
                order_type,
                quantity,
                price=price,
                stop_price=stop_price,
                trailing_offset=trailing_offset,
                time_in_force=time_in_force,
                post_only=post_only,
            )
            order = BookedOrder(
                venue_order_id=self._next_venue_order_id,
                client_order_id=client_order_id,
                symbol=symbol,
                side=side,
                order_type=order_type,
                time_in_force=time_in_force,
                quantity=quantity,
                price=price,
                stop_price=stop_price,
                trailing_offset=trailing_offset,
                trail_anchor=None,
                post_only=post_only,
                expire_time_ns=_checked_expiry(time_in_force, expire_time_ns, now),
                created_ns=now,
                updated_ns=now,
            )
            if order_type is _TRAILING_STOP:
                order.trail_anchor = market.last
                order.stop_price = _trailing_stop(order, market.last)
            plan = self._arrival_plan(order, market)
            if order.order_type is _MARKET and order.side is _BUY:
                reservation = self._cost(plan, self._config.taker_commission_bps)
            else:
                reservation = self._required_reservation(order, market)
            self._check_funds(order, market.spec, reservation)
        except _Refusal as refusal:
            return [SimRejected(client_order_id, refusal.code, refusal.reason, now)]
        self._next_venue_order_id += 1
        self._orders[order.venue_order_id] = order
        self._open[order.venue_order_id] = order
        self._by_client_id[client_order_id] = order
        self._reserve(order, reservation)
        # Positional, in ``SimAccepted``'s field order (one per order, and
        # keywords cost a third more); ``test_broker_fast_sim_events`` pins every field.
        events: list[SimEvent] = [
            SimAccepted(
                client_order_id,  # client_order_id
                order.venue_order_id,  # venue_order_id
                symbol,  # symbol
                side,  # side
                order_type,  # order_type
                time_in_force,  # time_in_force
                quantity,  # quantity
                price,  # price
                order.stop_price,  # stop_price
                now,  # ts_ns
            )
        ]
        if not order.awaits_trigger:
            events.extend(self._execute(order, plan, now))
        return events

    @exact
    def cancel(self, client_order_id: str) -> list[SimEvent]:
        now = self._clock()
        order = self._by_client_id.get(client_order_id)
        if order is None:
            return [SimRejected(client_order_id, SimRejectCode.UNKNOWN_ORDER, "no such order", now)]
        if not order.status.is_open:
            return [
                SimRejected(
                    client_order_id,
                    SimRejectCode.ALREADY_CLOSED,
                    f"order is {order.status.value}",
                    now,
                    order.venue_order_id,
                )
            ]
        return [self._cancel(order, now)]

    @exact
    def cancel_all(self, symbol: str | None = None) -> list[SimEvent]:
        """Cancel every open order, or every open order in ``symbol``, oldest first."""
        now = self._clock()
        return [
            self._cancel(order, now)
            for order in list(self._open.values())
            if symbol is None or order.symbol == symbol
        ]

    @exact
    def amend(
        self,
        client_order_id: str,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> list[SimEvent]:
        """Change an open order in place, keeping its ids.

        ``quantity`` is the new total, filled part included: it may not go
        below what has filled, and setting it to exactly that completes the
        order (status FILLED, remainder unlocked). A limit repriced through
        the touch takes liquidity at once, as a replace would on a venue.
        """
        now = self._clock()
        order = self._by_client_id.get(client_order_id)
        try:
            if order is None:
                raise _Refusal(SimRejectCode.UNKNOWN_ORDER, "no such order")
            market = self._markets[order.symbol]
            amended, required = self._check_amendment(
                order, market, quantity=quantity, price=price, stop_price=stop_price
            )
        except _Refusal as refusal:
            venue_order_id = None if order is None else order.venue_order_id
            return [SimRejected(client_order_id, refusal.code, refusal.reason, now, venue_order_id)]
        order.quantity = amended.quantity
        order.price = amended.price
        order.stop_price = amended.stop_price
        order.updated_ns = now
        if order.remaining == 0:
            self._retire(order, SimOrderStatus.FILLED, now)
        else:
            self._reserve(order, required - order.reserved)
        events: list[SimEvent] = [
            SimAmended(
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                symbol=order.symbol,
                quantity=order.quantity,
                filled_quantity=order.filled_quantity,
                price=order.price,
                stop_price=order.stop_price,
                status=order.status,
                ts_ns=now,
            )
        ]
        # Only a new price can make an order take: a resting order that a price
        # move has crossed but fill_probability has not yet filled stays a maker.
        if price is not None and order.status.is_open and order.rests_as_limit:
            plan = market.book.take(market.last, order.side, order.remaining, order.price)
            if plan:
                events.extend(self._execute(order, plan, now))
        return events

    # ----------------------------------------------------------------- market

    @exact
    def step(self, symbol: str | None = None) -> list[SimEvent]:
        """Advance one symbol's price (or every symbol's, in config order) and match.

        Expiry runs first, for every symbol, because time is shared: an
        order whose expire time has come does not get one more chance to fill.
        """
        markets = list(self._markets.values()) if symbol is None else [self._market(symbol)]
        now = self._clock()
        events = self._expire_due(now)
        for market in markets:
            market.last = self._next_price(market)
            market.ts_ns = now
            events.extend(self._match(market, now))
        return events

    @exact
    def set_price(self, symbol: str, price: Decimal) -> list[SimEvent]:
        """Move a symbol's last price and match; the price is rounded half-even to the tick."""
        market = self._market(symbol)
        if not is_finite_decimal(price) or price <= 0:
            raise ValueError(f"set_price({symbol!r}, {price!r}): price must be a positive Decimal")
        now = self._clock()
        events = self._expire_due(now)
        market.last = max(round_to_tick(price, market.spec.tick_size), market.spec.tick_size)
        market.ts_ns = now
        events.extend(self._match(market, now))
        return events

    @exact
    def expire_due(self) -> list[SimEvent]:
        """Expire DAY/GTD orders whose time has come, without moving any price."""
        return self._expire_due(self._clock())

    # ---------------------------------------------------------------- queries

    @exact
    def quote(self, symbol: str) -> SimQuote:
        market = self._market(symbol)
        bid, ask = market.book.touch(market.last)
        size = market.book.level_quantity
        return SimQuote(
            symbol=symbol,
            bid=bid,
            ask=ask,
            last=market.last,
            ts_ns=market.ts_ns,
            bid_size=size,
            ask_size=size,
        )

    @exact
    def depth(
        self, symbol: str, levels: int
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The synthetic book's best ``levels`` bids (descending) and asks (ascending)."""
        market = self._market(symbol)
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"depth levels must be an int >= 1, not {levels!r}")
        bids = market.book.levels(market.last, Side.BUY)[:levels]
        asks = market.book.levels(market.last, Side.SELL)[:levels]
        return bids, asks

    @exact
    def order(self, client_order_id: str) -> SimOrder | None:
        order = self._by_client_id.get(client_order_id)
        return None if order is None else order.view()

    @exact
    def order_by_venue_id(self, venue_order_id: int) -> SimOrder | None:
        order = self._orders.get(venue_order_id)
        return None if order is None else order.view()

    @exact
    def open_orders(self, symbol: str | None = None) -> list[SimOrder]:
        """Open orders, oldest first."""
        return [
            order.view()
            for order in self._open.values()
            if symbol is None or order.symbol == symbol
        ]

    def balances(self) -> Mapping[str, SimBalance]:
        """Every asset in the configured balances or any instrument, including zeros."""
        return self._ledger.balances()

    def balance(self, asset: str) -> SimBalance:
        """Raises ``KeyError`` for an asset the simulator does not track."""
        return SimBalance(free=self._ledger.free(asset), locked=self._ledger.locked(asset))

    def position(self, symbol: str) -> Decimal:
        """Base quantity bought minus sold through this simulator (not the balance)."""
        self._market(symbol)
        return self._positions[symbol]

    def fills(
        self, symbol: str | None = None, *, after_trade_id: int | None = None
    ) -> list[SimFill]:
        """Fills in trade id order; ``after_trade_id`` pages through them like a venue cursor."""
        start = (
            0
            if after_trade_id is None
            else bisect.bisect_right(self._fills, after_trade_id, key=lambda fill: fill.trade_id)
        )
        return [fill for fill in self._fills[start:] if symbol is None or fill.symbol == symbol]

    # --------------------------------------------------------------- snapshot

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data (str, int, bool, None, list, dict); Decimals as str.

        The random streams are included, so :meth:`restore` without a new
        seed continues exactly where this simulator would have.
        """
        return {
            "format": _SNAPSHOT_FORMAT,
            "seed": self._seed,
            "counted_ns": None if self._counting_clock is None else self._counting_clock.now_ns,
            "next_venue_order_id": self._next_venue_order_id,
            "next_trade_id": self._next_trade_id,
            "markets": {
                symbol: {
                    "last": str(market.last),
                    "ts_ns": market.ts_ns,
                    "series_index": market.series_index,
                    "walk_state": _random_state(market.walk),
                }
                for symbol, market in self._markets.items()
            },
            "fill_random_state": _random_state(self._fill_random),
            "balances": self._ledger.to_plain(),
            "positions": {symbol: str(amount) for symbol, amount in self._positions.items()},
            "orders": [order.to_plain() for order in self._orders.values()],
            "fills": [fill_to_plain(fill) for fill in self._fills],
        }

    @classmethod
    def restore(
        cls,
        config: SimConfig,
        snapshot: Mapping[str, Any],
        *,
        seed: int | None = None,
        clock: Callable[[], int] | None = None,
    ) -> MatchingSimulator:
        """Rebuild a simulator from :meth:`snapshot` output.

        With ``seed=None`` the snapshot's random streams resume exactly; a
        seed starts fresh streams from the restored state instead. ``config``
        may list instruments the snapshot lacks (they start at their initial
        price) but must list every symbol the snapshot holds. Without a
        ``clock`` the counting clock resumes from the snapshot's reading.
        Raises ``ValueError`` for a snapshot that is malformed or does not
        fit ``config``.
        """
        try:
            return cls._restore(config, snapshot, seed=seed, clock=clock)
        except (KeyError, TypeError, InvalidOperation, AttributeError) as error:
            raise ValueError(f"malformed simulator snapshot: {error!r}") from error

    @classmethod
    def _restore(
        cls,
        config: SimConfig,
        snapshot: Mapping[str, Any],
        *,
        seed: int | None,
        clock: Callable[[], int] | None,
    ) -> MatchingSimulator:
        if snapshot.get("format") != _SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported snapshot format {snapshot.get('format')!r}")
        markets: Mapping[str, Any] = snapshot["markets"]
        latest_ns = max(
            [int(plain["ts_ns"]) for plain in markets.values()]
            + [int(plain["updated_ns"]) for plain in snapshot["orders"]],
            default=0,
        )
        counted_ns = snapshot["counted_ns"]
        simulator = cls.__new__(cls)
        simulator._setup(
            config,
            seed=int(snapshot["seed"]) if seed is None else seed,
            clock=clock,
            counted_ns=latest_ns if counted_ns is None else int(counted_ns),
        )
        unknown = set(markets) - set(simulator._markets)
        if unknown:
            raise ValueError(f"snapshot holds symbols the config lacks: {sorted(unknown)}")
        for symbol, market in simulator._markets.items():
            plain = markets.get(symbol)
            if plain is None:
                market.ts_ns = latest_ns
                continue
            market.last = Decimal(plain["last"])
            market.ts_ns = int(plain["ts_ns"])
            market.series_index = int(plain["series_index"])
            if seed is None:
                _set_random_state(market.walk, plain["walk_state"])
        if seed is None:
            _set_random_state(simulator._fill_random, snapshot["fill_random_state"])
        simulator._ledger = Ledger.from_plain(snapshot["balances"], simulator._instrument_assets())
        for symbol, amount in snapshot["positions"].items():
            simulator._positions[symbol] = Decimal(amount)
        for plain in snapshot["orders"]:
            order = BookedOrder.from_plain(plain)
            if order.symbol not in simulator._markets:
                raise ValueError(f"snapshot order {order.client_order_id!r}: unknown symbol")
            simulator._orders[order.venue_order_id] = order
            simulator._by_client_id[order.client_order_id] = order
            if order.status.is_open:
                simulator._open[order.venue_order_id] = order
        simulator._fills = [fill_from_plain(plain) for plain in snapshot["fills"]]
        simulator._next_venue_order_id = int(snapshot["next_venue_order_id"])
        simulator._next_trade_id = int(snapshot["next_trade_id"])
        simulator._check_reservations()
        return simulator

    def _check_reservations(self) -> None:
        held: dict[str, Decimal] = {}
        for order in self._open.values():
            asset = self._reserve_asset(order)
            held[asset] = held.get(asset, ZERO) + order.reserved
        for asset, balance in self._ledger.balances().items():
            if balance.locked != held.get(asset, ZERO):
                raise ValueError(
                    f"snapshot inconsistent: {asset} locked {balance.locked} but open "
                    f"orders reserve {held.get(asset, ZERO)}"
                )

    # ------------------------------------------------------------- validation

    def _market(self, symbol: str) -> _Market:
        try:
            return self._markets[symbol]
        except KeyError:
            raise KeyError(f"unknown symbol {symbol!r}") from None

    def _check_submission(
        self,
        client_order_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        *,
        price: Decimal | None,
        stop_price: Decimal | None,
        trailing_offset: Decimal | None,
        time_in_force: TimeInForce,
        post_only: bool,
    ) -> _Market:
        if not isinstance(client_order_id, str) or not client_order_id:
            raise _Refusal(SimRejectCode.INVALID_ORDER, "client order id must be a non-empty str")
        if client_order_id in self._by_client_id:
            raise _Refusal(
                SimRejectCode.DUPLICATE_CLIENT_ORDER_ID,
                f"client order id {client_order_id!r} is already in use",
            )
        market = self._markets.get(symbol)
        if market is None:
            raise _Refusal(SimRejectCode.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        if (
            not isinstance(side, Side)
            or not isinstance(order_type, OrderType)
            or not isinstance(time_in_force, TimeInForce)
            or not isinstance(post_only, bool)
        ):
            raise _Refusal(SimRejectCode.INVALID_ORDER, "side, type or time in force malformed")
        if time_in_force in _UNSUPPORTED_TIME_IN_FORCE:
            raise _Refusal(
                SimRejectCode.UNSUPPORTED_TIME_IN_FORCE,
                f"{time_in_force.value} needs auctions the simulator does not run",
            )
        spec = market.spec
        _check_quantity(quantity, spec)
        if order_type.needs_price:
            _check_price("price", price, spec)
        elif price is not None:
            raise _Refusal(
                SimRejectCode.INVALID_PRICE, f"a {order_type.value} order takes no limit price"
            )
        if order_type.needs_stop_price:
            _check_price("stop price", stop_price, spec)
        elif stop_price is not None:
            raise _Refusal(
                SimRejectCode.INVALID_PRICE, f"a {order_type.value} order takes no stop price"
            )
        if order_type is _TRAILING_STOP:
            _check_price("trailing offset", trailing_offset, spec)
        elif trailing_offset is not None:
            raise _Refusal(
                SimRejectCode.INVALID_PRICE, f"a {order_type.value} order takes no trailing offset"
            )
        if post_only and (
            order_type is not OrderType.LIMIT or time_in_force not in _RESTING_TIME_IN_FORCE
        ):
            raise _Refusal(
                SimRejectCode.INVALID_ORDER, "post-only needs a LIMIT order that can rest"
            )
        if stop_price is not None and _trigger_reached(order_type, side, stop_price, market.last):
            raise _Refusal(
                SimRejectCode.STOP_WOULD_TRIGGER,
                f"trigger {stop_price} is already reached by the last price {market.last}",
            )
        if post_only and price is not None and _crosses_touch(market, side, price):
            raise _Refusal(SimRejectCode.WOULD_TAKE, f"post-only price {price} would take")
        reference = _reference_price(market, side, order_type, price, stop_price)
        _check_notional(quantity, reference, spec)
        return market

    def _check_amendment(
        self,
        order: BookedOrder,
        market: _Market,
        *,
        quantity: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> tuple[BookedOrder, Decimal]:
        """The order as it would be after the amend, and the reservation it would need."""
        if not order.status.is_open:
            raise _Refusal(SimRejectCode.ALREADY_CLOSED, f"order is {order.status.value}")
        if quantity is None and price is None and stop_price is None:
            raise _Refusal(SimRejectCode.NOTHING_TO_AMEND, "no quantity, price or stop price given")
        spec = market.spec
        new_quantity = order.quantity
        if quantity is not None:
            if not is_finite_decimal(quantity) or quantity <= 0:
                raise _Refusal(SimRejectCode.INVALID_QUANTITY, f"quantity {quantity!r}")
            if not is_multiple(quantity, spec.lot_size):
                raise _Refusal(
                    SimRejectCode.LOT_SIZE, f"quantity {quantity} off lot {spec.lot_size}"
                )
            if quantity < order.filled_quantity:
                raise _Refusal(
                    SimRejectCode.QUANTITY_BELOW_FILLED,
                    f"quantity {quantity} is below the filled {order.filled_quantity}",
                )
            new_quantity = quantity
        completes = new_quantity == order.filled_quantity
        if quantity is not None and not completes and new_quantity < spec.min_quantity:
            raise _Refusal(SimRejectCode.MIN_QUANTITY, f"quantity below {spec.min_quantity}")
        new_price = order.price
        if price is not None:
            if not order.order_type.needs_price:
                raise _Refusal(
                    SimRejectCode.NOT_AMENDABLE, f"a {order.order_type.value} order has no price"
                )
            new_price = _check_price("price", price, spec)
        new_stop = order.stop_price
        if stop_price is not None:
            if not order.order_type.needs_stop_price or order.triggered:
                raise _Refusal(
                    SimRejectCode.NOT_AMENDABLE,
                    "only an untriggered conditional order has a trigger to amend",
                )
            new_stop = _check_price("stop price", stop_price, spec)
            if _trigger_reached(order.order_type, order.side, new_stop, market.last):
                raise _Refusal(
                    SimRejectCode.STOP_WOULD_TRIGGER,
                    f"trigger {new_stop} is already reached by the last price {market.last}",
                )
        amended = dataclasses.replace(
            order, quantity=new_quantity, price=new_price, stop_price=new_stop
        )
        if completes:
            return amended, ZERO
        if order.post_only and price is not None and _crosses_touch(market, order.side, price):
            raise _Refusal(SimRejectCode.WOULD_TAKE, f"post-only price {price} would take")
        reference = _reference_price(market, order.side, order.order_type, new_price, new_stop)
        _check_notional(new_quantity, reference, spec)
        required = self._required_reservation(amended, market)
        self._check_funds(order, spec, required - order.reserved)
        return amended, required

    def _check_funds(self, order: BookedOrder, spec: InstrumentSpec, extra: Decimal) -> None:
        if extra <= 0 or (order.side is Side.SELL and self._config.allow_short):
            return
        asset = spec.quote_asset if order.side is Side.BUY else spec.base_asset
        free = self._ledger.free(asset)
        if free < extra:
            raise _Refusal(
                SimRejectCode.INSUFFICIENT_BALANCE, f"needs {extra} {asset}, {free} free"
            )

    # --------------------------------------------------------------- matching

    def _arrival_plan(self, order: BookedOrder, market: _Market) -> list[PriceLevel]:
        if order.order_type is _MARKET:
            plan = market.book.take(market.last, order.side, order.remaining, None)
        elif order.order_type is OrderType.LIMIT:
            plan = market.book.take(market.last, order.side, order.remaining, order.price)
        else:
            return []
        return _all_or_nothing(order, plan)

    def _execute(self, order: BookedOrder, plan: list[PriceLevel], now: int) -> list[SimEvent]:
        """Take ``plan`` as taker, then expire what the order's rules do not let rest."""
        if order.time_in_force is _FOK and _planned(plan) < order.remaining:
            return [self._expire(order, EXPIRED_FOK_UNFILLABLE, now)]
        events: list[SimEvent] = [
            self._fill(order, price, quantity, is_maker=False, now=now) for price, quantity in plan
        ]
        if not order.status.is_open:
            return events
        if order.takes_at_market:
            events.append(self._expire(order, EXPIRED_BOOK_EXHAUSTED, now))
        elif order.time_in_force is _IOC:
            events.append(self._expire(order, EXPIRED_IOC_REMAINDER, now))
        return events

    def _match(self, market: _Market, now: int) -> list[SimEvent]:
        events: list[SimEvent] = []
        bid, ask = market.book.touch(market.last)
        symbol = market.spec.symbol
        for order in [order for order in self._open.values() if order.symbol == symbol]:
            if order.awaits_trigger:
                if order.order_type is OrderType.TRAILING_STOP:
                    order.trail_anchor = _trailed_anchor(order, market.last)
                    order.stop_price = _trailing_stop(order, order.trail_anchor)
                stop_price = order.stop_price
                if stop_price is not None and _trigger_reached(
                    order.order_type, order.side, stop_price, market.last
                ):
                    events.extend(self._trigger(order, market, stop_price, now))
            elif order.rests_as_limit and order.price is not None:
                crossed = ask <= order.price if order.side is Side.BUY else bid >= order.price
                if crossed and self._fill_random.random() < self._config.fill_probability:
                    quantity = min(order.remaining, market.book.level_quantity)
                    events.append(self._fill(order, order.price, quantity, is_maker=True, now=now))
        return events

    def _trigger(
        self, order: BookedOrder, market: _Market, stop_price: Decimal, now: int
    ) -> list[SimEvent]:
        order.triggered = True
        order.updated_ns = now
        events: list[SimEvent] = [
            SimTriggered(
                client_order_id=order.client_order_id,
                venue_order_id=order.venue_order_id,
                symbol=order.symbol,
                stop_price=stop_price,
                last_price=market.last,
                ts_ns=now,
            )
        ]
        limit = order.price if order.rests_as_limit else None
        plan = _all_or_nothing(
            order, market.book.take(market.last, order.side, order.remaining, limit)
        )
        if order.side is Side.BUY and order.takes_at_market:
            shortfall = self._cost(plan, self._config.taker_commission_bps) - order.reserved
            if shortfall > 0:
                if self._ledger.free(market.spec.quote_asset) < shortfall:
                    events.append(self._expire(order, EXPIRED_UNFUNDED_TRIGGER, now))
                    return events
                self._reserve(order, shortfall)
        events.extend(self._execute(order, plan, now))
        return events

    def _next_price(self, market: _Market) -> Decimal:
        spec = market.spec
        if spec.price_series:
            index = min(market.series_index, len(spec.price_series) - 1)
            market.series_index = min(market.series_index + 1, len(spec.price_series))
            target = spec.price_series[index]
        else:
            shock = Decimal(market.walk.normalvariate(0.0, 1.0)).quantize(_SHOCK_QUANTUM)
            target = market.last + bps_of(market.last * shock, spec.volatility_bps)
        return max(round_to_tick(target, spec.tick_size), spec.tick_size)

    def _expire_due(self, now: int) -> list[SimEvent]:
        return [
            self._expire(order, EXPIRED_TIME_REACHED, now)
            for order in list(self._open.values())
            if order.expire_time_ns is not None and now >= order.expire_time_ns
        ]

    # ------------------------------------------------------------- accounting

    def _reserve_asset(self, order: BookedOrder) -> str:
        spec = self._markets[order.symbol].spec
        return spec.quote_asset if order.side is _BUY else spec.base_asset

    def _reserve(self, order: BookedOrder, amount: Decimal) -> None:
        """Lock ``amount`` more for ``order``; a negative amount unlocks."""
        if amount:
            self._ledger.lock(self._reserve_asset(order), amount)
            order.reserved += amount

    def _required_reservation(self, order: BookedOrder, market: _Market) -> Decimal:
        """What a resting (or untriggered) order must hold for its remaining quantity."""
        if order.side is Side.SELL:
            return order.remaining
        if order.price is not None:
            notional = order.remaining * order.price
            return notional + bps_of(notional, self._config.max_commission_bps)
        if order.stop_price is not None:
            sweep = market.book.take(order.stop_price, Side.BUY, order.remaining, None)
            return self._cost(sweep, self._config.taker_commission_bps)
        # A market buy never rests: it holds exactly its sweep's cost until it closes.
        return order.reserved

    @staticmethod
    def _cost(plan: list[PriceLevel], commission_bps: Decimal) -> Decimal:
        total = ZERO
        for price, quantity in plan:
            notional = price * quantity
            total += notional + bps_of(notional, commission_bps)
        return total

    def _fill(
        self, order: BookedOrder, price: Decimal, quantity: Decimal, *, is_maker: bool, now: int
    ) -> SimFill:
        spec = self._markets[order.symbol].spec
        notional = price * quantity
        rate = self._config.maker_commission_bps if is_maker else self._config.taker_commission_bps
        commission = bps_of(notional, rate)
        commission_asset = spec.quote_asset
        if order.side is _BUY and self._config.fee_in_received_asset:
            commission, commission_asset = bps_of(quantity, rate), spec.base_asset
            order.reserved -= notional
            self._ledger.spend_locked(spec.quote_asset, notional)
            self._ledger.credit(spec.base_asset, quantity - commission)
            self._positions[order.symbol] += quantity
        elif order.side is _BUY:
            cost = notional + commission
            order.reserved -= cost
            self._ledger.spend_locked(spec.quote_asset, cost)
            self._ledger.credit(spec.base_asset, quantity)
            self._positions[order.symbol] += quantity
        else:
            order.reserved -= quantity
            self._ledger.spend_locked(spec.base_asset, quantity)
            self._ledger.credit(spec.quote_asset, notional - commission)
            self._positions[order.symbol] -= quantity
        order.filled_quantity += quantity
        order.filled_notional += notional
        order.updated_ns = now
        order.status = _PARTIALLY_FILLED
        # Positional, in ``SimFill``'s field order (one per fill, and keywords
        # cost a third more); ``test_broker_fast_sim_events`` pins every field.
        fill = SimFill(
            self._next_trade_id,  # trade_id
            order.venue_order_id,  # venue_order_id
            order.client_order_id,  # client_order_id
            order.symbol,  # symbol
            order.side,  # side
            quantity,  # quantity
            price,  # price
            commission,  # commission
            commission_asset,  # commission_asset
            is_maker,  # is_maker
            order.filled_quantity,  # cumulative_quantity
            order.remaining,  # leaves_quantity
            now,  # ts_ns
        )
        self._next_trade_id += 1
        self._fills.append(fill)
        if self._retain is not None and len(self._fills) > 2 * self._retain:
            del self._fills[: len(self._fills) - self._retain]
        if order.remaining == 0:
            self._retire(order, _FILLED, now)
        elif order.rests_as_limit:
            market = self._markets[order.symbol]
            self._reserve(order, self._required_reservation(order, market) - order.reserved)
        return fill

    def _retire(self, order: BookedOrder, status: SimOrderStatus, now: int) -> None:
        order.status = status
        order.updated_ns = now
        self._reserve(order, -order.reserved)
        del self._open[order.venue_order_id]
        if self._retain is not None:
            self._closed.append(order)
            while len(self._closed) > self._retain:
                self._forget(self._closed.popleft())

    def _forget(self, order: BookedOrder) -> None:
        """Like a real venue's archive window: a long-closed order is no longer known."""
        self._orders.pop(order.venue_order_id, None)
        if self._by_client_id.get(order.client_order_id) is order:
            del self._by_client_id[order.client_order_id]

    def _cancel(self, order: BookedOrder, now: int) -> SimCanceled:
        self._retire(order, SimOrderStatus.CANCELED, now)
        return SimCanceled(
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            symbol=order.symbol,
            filled_quantity=order.filled_quantity,
            ts_ns=now,
        )

    def _expire(self, order: BookedOrder, reason: str, now: int) -> SimExpired:
        self._retire(order, SimOrderStatus.EXPIRED, now)
        return SimExpired(
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            symbol=order.symbol,
            filled_quantity=order.filled_quantity,
            reason=reason,
            ts_ns=now,
        )


# ------------------------------------------------------------------- helpers


def _check_quantity(quantity: object, spec: InstrumentSpec) -> Decimal:
    if not isinstance(quantity, Decimal) or not quantity.is_finite() or quantity <= 0:
        raise _Refusal(
            SimRejectCode.INVALID_QUANTITY, f"quantity {quantity!r} is not a positive Decimal"
        )
    if not is_multiple(quantity, spec.lot_size):
        raise _Refusal(
            SimRejectCode.LOT_SIZE, f"quantity {quantity} is not a multiple of {spec.lot_size}"
        )
    if quantity < spec.min_quantity:
        raise _Refusal(
            SimRejectCode.MIN_QUANTITY, f"quantity {quantity} is below {spec.min_quantity}"
        )
    return quantity


def _check_price(name: str, value: object, spec: InstrumentSpec) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise _Refusal(SimRejectCode.INVALID_PRICE, f"{name} {value!r} is not a positive Decimal")
    if not is_multiple(value, spec.tick_size):
        raise _Refusal(
            SimRejectCode.TICK_SIZE, f"{name} {value} is not a multiple of {spec.tick_size}"
        )
    return value


def _check_notional(quantity: Decimal, reference: Decimal, spec: InstrumentSpec) -> None:
    if quantity * reference < spec.min_notional:
        raise _Refusal(
            SimRejectCode.MIN_NOTIONAL,
            f"notional {quantity * reference} is below {spec.min_notional}",
        )


def _checked_expiry(time_in_force: TimeInForce, expire_time_ns: int | None, now: int) -> int | None:
    if expire_time_ns is None:
        if time_in_force is _GTD:
            raise _Refusal(SimRejectCode.INVALID_EXPIRE_TIME, "GTD needs expire_time_ns")
        if time_in_force is _DAY:
            return (now // _DAY_NS + 1) * _DAY_NS
        return None
    if time_in_force not in (TimeInForce.DAY, TimeInForce.GTD):
        raise _Refusal(
            SimRejectCode.INVALID_EXPIRE_TIME, "only DAY and GTD orders take an expire time"
        )
    if isinstance(expire_time_ns, bool) or not isinstance(expire_time_ns, int):
        raise _Refusal(SimRejectCode.INVALID_EXPIRE_TIME, "expire_time_ns must be an int")
    if expire_time_ns <= now:
        raise _Refusal(
            SimRejectCode.INVALID_EXPIRE_TIME, f"expire time {expire_time_ns} is not after {now}"
        )
    return expire_time_ns


def _reference_price(
    market: _Market,
    side: Side,
    order_type: OrderType,
    price: Decimal | None,
    stop_price: Decimal | None,
) -> Decimal:
    """The price a minimum-notional check values the order at before it fills."""
    if price is not None:
        return price
    if stop_price is not None and order_type in (OrderType.STOP, OrderType.MARKET_IF_TOUCHED):
        return stop_price
    if order_type is _MARKET:
        bid, ask = market.book.touch(market.last)
        return ask if side is _BUY else bid
    return market.last


def _trigger_reached(order_type: OrderType, side: Side, trigger: Decimal, last: Decimal) -> bool:
    """A stop triggers on a move against it, an if-touched order on a move to it."""
    rising = (side is Side.BUY) != order_type.triggers_on_touch
    return last >= trigger if rising else last <= trigger


def _crosses_touch(market: _Market, side: Side, price: Decimal) -> bool:
    bid, ask = market.book.touch(market.last)
    return price >= ask if side is Side.BUY else price <= bid


def _trailed_anchor(order: BookedOrder, last: Decimal) -> Decimal:
    """A buy trails the lowest last price seen, a sell the highest."""
    anchor = last if order.trail_anchor is None else order.trail_anchor
    return min(anchor, last) if order.side is Side.BUY else max(anchor, last)


def _trailing_stop(order: BookedOrder, anchor: Decimal) -> Decimal:
    offset = order.trailing_offset if order.trailing_offset is not None else ZERO
    return anchor + offset if order.side is Side.BUY else anchor - offset


def _planned(plan: list[PriceLevel]) -> Decimal:
    return sum((quantity for _, quantity in plan), ZERO)


def _all_or_nothing(order: BookedOrder, plan: list[PriceLevel]) -> list[PriceLevel]:
    """A FOK order takes nothing unless the plan covers all of it."""
    if order.time_in_force is _FOK and _planned(plan) < order.remaining:
        return []
    return plan


def _random_state(generator: random.Random) -> list[int]:
    _, internal, _ = generator.getstate()
    return list(internal)


def _set_random_state(generator: random.Random, internal: list[int]) -> None:
    generator.setstate((_RANDOM_STATE_VERSION, tuple(int(word) for word in internal), None))
