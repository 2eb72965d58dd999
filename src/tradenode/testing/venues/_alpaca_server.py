"""Run the fake Alpaca on loopback: :class:`AlpacaVenue`, the handle tests hold.

Built on :class:`~._loopback.LoopbackVenue` (a trio loop on a thread serving
the venue and its admin port); REST, the trading stream and the market-data
stream share one port. Every knob is a method callable from any thread and
``POST <admin_url>/<knob>`` with a JSON object of the same keyword arguments.
Knobs that touch connections (``drop_streams``, ``down``, ``up``,
``release_events``) block until done; from inside a trio task call them
through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from hypercorn.config import Config

from tradenode.sim import InstrumentSpec, SimConfig
from tradenode.testing.venues._alpaca_app import (
    CORRUPTIONS,
    AlpacaApp,
    AlpacaFaults,
    AlpacaHub,
    _RequestFault,
)
from tradenode.testing.venues._alpaca_exchange import (
    CODE_FORBIDDEN,
    DEFAULT_ALPACA_API_KEY,
    DEFAULT_ALPACA_SECRET,
    AlpacaEvent,
    AlpacaExchange,
    AlpacaFillInfo,
    AlpacaOrderInfo,
    Json,
    alpaca_sim_config,
)
from tradenode.testing.venues._alpaca_hours import Session
from tradenode.testing.venues._knobs import admin_override, collect_knobs, knob
from tradenode.testing.venues._loopback import KeepaliveConfig, LoopbackVenue, wall_clock_ms

__all__ = ["DEFAULT_ALPACA_CASH", "AlpacaVenue"]

_log = logging.getLogger("tradenode.testing.venues.alpaca")

DEFAULT_ALPACA_CASH = Decimal(100_000)


class AlpacaVenue(LoopbackVenue):
    """A local Alpaca paper account on 127.0.0.1: Trading API v2, ``trade_updates``,
    the stock market-data stream and an admin port.

    Arguments: ``config`` (a whole :class:`SimConfig` with tickers quoted in
    USD; see :func:`~._alpaca_exchange.alpaca_sim_config`) or ``cash`` and
    ``instruments`` on top of it (default AAPL, MSFT, SPY fractionable and
    SIRI whole shares only); ``not_shortable`` tickers; the account's
    ``api_key``/``secret``; the simulator ``seed`` (it also seeds the UUIDs);
    ``clock`` in epoch milliseconds (default wall time), which drives the
    market clock (New York sessions; :meth:`set_market_open` and
    :meth:`set_time` move it without picking a time of day);
    ``host``/``port``/``admin_port`` (0: ephemeral); ``tick_interval`` to
    step prices by themselves (off by default); ``binary_frames`` (default
    True, as Alpaca's paper ``trade_updates`` sends JSON in binary frames;
    False: text frames, as live); ``rate_limits`` to answer 429 past
    Alpaca's 200 requests per minute (off by default);
    ``data_connection_limit`` authenticated market-data connections per feed
    (Alpaca: 1 on most plans, ``406 connection limit exceeded``; None: no limit).

    :meth:`wait_for` looks again whenever the venue's streams change: a
    connection comes, goes, listens or subscribes; an event goes out.
    """

    VENUE_NAME = "Alpaca"

    def __init__(
        self,
        *,
        config: SimConfig | None = None,
        cash: Decimal = DEFAULT_ALPACA_CASH,
        instruments: Iterable[InstrumentSpec] | None = None,
        not_shortable: Iterable[str] = ("SIRI",),
        api_key: str = DEFAULT_ALPACA_API_KEY,
        secret: str = DEFAULT_ALPACA_SECRET,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        tick_interval: float | None = None,
        binary_frames: bool = True,
        rate_limits: bool = False,
        data_connection_limit: int | None = 1,
    ) -> None:
        super().__init__(
            host=host, port=port, admin_port=admin_port, tick_interval=tick_interval, log=_log
        )
        self.exchange = AlpacaExchange(
            config if config is not None else alpaca_sim_config(Decimal(cash), instruments),
            api_key=api_key,
            secret=secret,
            seed=seed,
            clock=clock or wall_clock_ms,
            not_shortable=not_shortable,
            rate_limits=rate_limits,
        )
        self._secret = secret
        self._faults = AlpacaFaults()
        self._hub = AlpacaHub(self.exchange, self._faults)
        self._app = AlpacaApp(
            self.exchange,
            self._hub,
            self._faults,
            binary_frames=binary_frames,
            data_connection_limit=data_connection_limit,
        )
        self._view_lock = threading.Lock()
        self._view: Json = self._hub.view()
        self._hub.on_change = self._notify
        self.exchange.add_listener(self._on_event)

    def __repr__(self) -> str:
        state = "up" if self.is_up else ("started" if self._thread else "stopped")
        return f"AlpacaVenue(rest_url={self.rest_url!r}, api_key={self.api_key!r}, {state})"

    # ------------------------------------------------------------ hooks

    def _venue_config(self) -> Config:
        return KeepaliveConfig(pong_timeout=60.0)

    async def _before_down(self) -> None:
        await self._drop_streams()

    def _tick(self) -> None:
        if self._ticking:
            self.exchange.step()

    def _on_event(self, event: AlpacaEvent) -> None:
        self._post(self._dispatch, event)

    def _dispatch(self, event: AlpacaEvent) -> None:
        self._hub.dispatch(event)
        self._notify()

    def _notify(self) -> None:
        """On the trio thread: refresh the view the inspection methods read (so they never
        wait for the loop), then wake the waits of :meth:`wait_for` to look again."""
        view = self._hub.view()
        with self._view_lock:
            self._view = view
        self._changes.note()

    # -------------------------------------------------------- addresses

    @property
    def rest_url(self) -> str:
        """The Trading API base (what ``TradingClient(url_override=...)`` takes): paths ``/v2/...``."""
        return self._url("http")

    @property
    def stream_url(self) -> str:
        """The ``trade_updates`` WebSocket (``TradingStream(url_override=...)``)."""
        return self._url("ws", "/stream")

    def data_stream_url(self, feed: str = "iex") -> str:
        """The stock market-data WebSocket of ``feed`` (``iex``, ``sip``, ``delayed_sip``, ``test``)."""
        return self._url("ws", f"/v2/{feed}")

    @property
    def api_key(self) -> str:
        return self.exchange.api_key

    @property
    def secret(self) -> str:
        """The API secret key the venue checks (never in its repr or logs)."""
        return self._secret

    # ------------------------------------------------------------ knobs

    @knob
    def step(self, n: int = 1, symbol: str | None = None) -> None:
        """Move prices ``n`` ticks of the seeded walk (one symbol or all): quotes, maybe fills."""
        self.exchange.step(n, symbol)

    @knob
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set ``symbol``'s last price: a trade print and a quote pushed, and the fills it triggers."""
        self.exchange.set_price(symbol, Decimal(price))

    @knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or restart) the ``tick_interval`` moves: nothing fills behind a checker's back."""
        self._ticking = not frozen

    @knob
    def publish_bar(self, symbol: str) -> None:
        """Close ``symbol``'s current minute bar and push it to ``bars`` subscribers."""
        self.exchange.publish_bar(symbol)

    @knob
    def set_market_open(self, is_open: bool | None = True) -> None:
        """Force the regular session open (true) or the market closed (false); null: the clock.

        Opening releases the queued orders; closing expires the open DAY orders.
        """
        self.exchange.force_market(is_open)

    @knob
    def set_time(self, when: str) -> None:
        """Move the venue's clock to ``when`` (ISO 8601 with an offset); it runs on from there."""
        self.exchange.set_time(datetime.fromisoformat(when.replace("Z", "+00:00")))

    def set_datetime(self, moment: datetime) -> None:
        """:meth:`set_time` with an aware ``datetime``."""
        self.exchange.set_time(moment)

    def session(self) -> Session:
        """The market session the venue's clock is in now."""
        return self.exchange.session()

    @knob
    def drop_streams(self) -> int:
        """Close every WebSocket (trading and market data) at the TCP level; returns how many."""
        return self._in_trio(self._drop_streams)

    @knob
    def down(self) -> None:
        """Cut every WebSocket and refuse connections until :meth:`up` (the admin port stays up)."""
        self._in_trio(self._bring_down)

    @knob
    def up(self) -> None:
        """Serve again, on the same port."""
        self._in_trio(self._bring_up)

    @knob
    def rate_limit(self, count: int = 1, retry_after: int = 1, header: bool = False) -> None:
        """Answer the next ``count`` REST requests 429 ``42910000`` without processing them.

        ``X-Ratelimit-Remaining: 0`` and ``X-Ratelimit-Reset`` (epoch seconds)
        ``retry_after`` seconds on, as Alpaca says when to come back;
        ``header``: also ``Retry-After`` (Alpaca documents none).
        """
        if count < 1:
            raise ValueError(f"count must be >= 1, not {count}")
        self._faults.add(
            _RequestFault("rate", count, None, retry_after=retry_after, retry_after_header=header)
        )

    @knob
    def delay_requests(
        self, n: int = 1, seconds: float = 1.0, *, endpoints: Iterable[str] | None = None
    ) -> None:
        """Hold the next ``n`` REST requests ``seconds`` (wall time) before processing them.

        A held placement is acted on late, as an order stuck on its way; the
        requests being held show in ``GET <admin>/faults`` under ``held`` (with
        the placement's ``client_order_id``). ``endpoints`` as for :meth:`fail_requests`.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, not {n}")
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, not {seconds}")
        keys = None if endpoints is None else frozenset(endpoints)
        self._faults.add(_RequestFault("delay", n, keys, delay=seconds))

    def held_requests(self) -> list[Json]:
        """The REST requests a delay holds right now: ``{"endpoint", "client_order_id"}``."""
        held: list[Json] = self._faults.pending()["held"]
        return held

    @knob
    def fail_requests(
        self,
        count: int = 1,
        *,
        after: bool = False,
        status: int = 503,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Fail the next ``count`` REST requests: 5xx before processing, or ``after``: process, no answer.

        ``after=True`` is the dangerous one: the order is placed but the client
        hears nothing (the TCP connection is cut). ``endpoints`` narrows it to
        routes, ``"POST orders"`` or ``"orders"``, ``"PATCH orders/{id}"``,
        ``"DELETE orders"``, ``"GET orders:by_client_order_id"``, ...
        """
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx, not {status}")
        if count < 1:
            raise ValueError(f"count must be >= 1, not {count}")
        keys = None if endpoints is None else frozenset(endpoints)
        self._faults.add(_RequestFault("lose" if after else "fail", count, keys, status=status))

    @knob
    def refuse_next_order(
        self,
        status: int = 403,
        message: str = "insufficient buying power",
        code: int = CODE_FORBIDDEN,
    ) -> None:
        """Refuse the next order placement (POST /v2/orders) with ``status`` and ``{code, message}``."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be a 4xx or 5xx, not {status}")
        self.exchange.refuse_next_order(status, code, message)

    @knob
    def fail_cancel_all_for(self, order_id: str | None = None, count: int = 0) -> None:
        """Make the next DELETE /v2/orders fail for ``order_id`` (or its first ``count`` orders):
        per-order status 500 in the 207 answer, the order left open."""
        if order_id is None and count < 1:
            raise ValueError("give an order_id or a count >= 1")
        self.exchange.fail_cancel_all_for([] if order_id is None else [order_id], count)

    @knob
    def race_next_replace(self) -> None:
        """The next PATCH of a limit order loses Alpaca's replace race: answered 200 with the
        new order, but the old one fills first (the price is moved through its limit and
        back), so the old ends ``filled`` and the new one ``rejected`` on the stream."""
        self.exchange.race_next_replace()

    @knob
    def place_order(
        self,
        symbol: str,
        side: str,
        type: str,
        qty: Decimal,
        *,
        limit_price: Decimal | None = None,
        time_in_force: str = "day",
        client_order_id: str = "",
    ) -> Json:
        """Place an order as another client of the account would; returns Alpaca's Order JSON.

        Its events go to ``trade_updates`` like any order's: what a node must
        adopt as an order it did not place.
        """
        body: Json = {
            "symbol": symbol,
            "side": side,
            "type": type,
            "qty": str(qty),
            "time_in_force": time_in_force,
        }
        if limit_price is not None:
            body["limit_price"] = str(limit_price)
        if client_order_id:
            body["client_order_id"] = client_order_id
        return self.exchange.place(body)

    @knob
    def cancel_order(self, order_id: str) -> None:
        """Cancel an order as another client of the account would."""
        self.exchange.cancel(order_id)

    @knob
    def duplicate_events(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` ``trade_updates`` events twice."""
        self._faults.add_event_faults(duplicate=n)

    @knob
    def drop_events(self, n: int = 1) -> None:
        """Lose the next ``n`` ``trade_updates`` events: a gap only a REST look can fill."""
        self._faults.add_event_faults(drop=n)

    @knob
    def reorder_events(self, n: int = 2) -> None:
        """Hold the next ``n`` ``trade_updates`` events, then deliver them in reverse order."""
        self._faults.add_event_faults(reorder=n)

    @knob
    def release_events(self) -> int:
        """Deliver, newest first, the events :meth:`reorder_events` holds so far; returns how many."""
        return self._in_trio_sync(self._hub.release_held)

    @knob
    def corrupt_next_event(self, kind: str = "invalid_json") -> None:
        """Mangle the next ``trade_updates`` event: ``invalid_json``, ``missing_field`` or ``unknown_event``."""
        if kind not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, not {kind!r}")
        self._faults.add_event_faults(corrupt=kind)

    @knob
    def corrupt_next_fills(self, field: str = "price", value: str | None = "0") -> None:
        """Answer the next FILL activities page with ``field`` of each of its FILL rows set to ``value``.

        The default is a fill at a price of 0, which no execution has. Only
        the answer is spoiled: the fills themselves, the orders and the
        ``trade_updates`` events are as they were; the page after is sound.
        """
        endpoints = frozenset({"GET account/activities/FILL", "GET account/activities"})
        self._faults.add(_RequestFault("spoil_fills", 1, endpoints, target=field, value=value))

    @knob
    def hold_fills(self) -> None:
        """Resting orders stop filling on price moves (the moves are kept) until :meth:`release_fills`.

        A held order stays open and cancelable: a cancel wins the race.
        """
        self.exchange.hold_fills()

    @knob
    def release_fills(self) -> int:
        """Replay the held price moves against the resting orders; returns how many fills."""
        return self.exchange.release_fills()

    @knob
    def clear_faults(self) -> None:
        """Forget every pending request and event fault (held events and fills stay held)."""
        self._faults.clear()

    # -------------------------------------------------------- inspection

    def orders(self) -> list[AlpacaOrderInfo]:
        """Every order ever, oldest first (refused placements are not orders)."""
        return self.exchange.orders()

    def fills(self) -> list[AlpacaFillInfo]:
        """Every execution, oldest first, with its ``execution_id``."""
        return self.exchange.fills()

    def positions(self) -> dict[str, Decimal]:
        """``{symbol: signed qty}`` of every open position (short is negative)."""
        return self.exchange.positions()

    def position(self, symbol: str) -> Decimal:
        return self.exchange.positions().get(symbol, Decimal(0))

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}``: ``USD`` cash and the shares the ledger holds."""
        return self.exchange.balances()

    def submissions(self) -> dict[str, int]:
        """How many POST /v2/orders named each client_order_id, refused ones included.

        Requests answered 429 or failed before processing never reached the
        venue and do not count.
        """
        return self.exchange.submissions()

    def calls(self) -> dict[str, int]:
        """REST requests per endpoint: ``"POST orders"``, ``"GET orders/{id}"``, ..."""
        return self.exchange.calls()

    def connections(self) -> int:
        """How many WebSocket connections are open now."""
        return int(self._current_view()["connections"])

    def trade_listeners(self) -> int:
        """How many authorized connections listen to ``trade_updates`` now."""
        return int(self._current_view()["trade_listeners"])

    def data_subscribers(self, channel: str, symbol: str) -> int:
        """How many market-data connections receive ``channel`` (``quotes``...) of ``symbol``."""
        pairs = self._current_view()["data"]
        return sum(1 for pair in pairs if pair in ((channel, symbol), (channel, "*")))

    def trade_updates_delivered(self) -> int:
        """How many ``trade_updates`` messages the venue has written to listeners so far."""
        return int(self._current_view()["delivered"])

    def _current_view(self) -> Json:
        with self._view_lock:
            return self._view

    # ------------------------------------------------------------- admin

    def _state(self) -> Json:
        return {
            "up": self.is_up,
            "session": self.exchange.session().value,
            "balances": {
                asset: {"free": free, "locked": locked}
                for asset, (free, locked) in self.balances().items()
            },
            "positions": self.positions(),
            "orders": self.orders(),
            "fills": self.fills(),
            "submissions": self.submissions(),
            "calls": self.calls(),
            "faults": self._faults.pending(),
        }

    def _admin_views(self) -> Mapping[str, Callable[[], Any]]:
        return {**super()._admin_views(), "calls": self.calls, "faults": self._faults.pending}

    @admin_override("drop_streams")
    async def _drop_streams(self) -> int:
        return await self._drop_websockets()

    @admin_override("down")
    async def _down(self) -> None:
        await self._bring_down()

    @admin_override("up")
    async def _up(self) -> None:
        await self._bring_up()


AlpacaVenue.KNOBS = collect_knobs(AlpacaVenue)
