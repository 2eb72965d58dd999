"""Run the fake Binance on loopback: hypercorn + trio on a background thread.

:class:`BinanceVenue` is the handle tests hold, a :class:`~._loopback.LoopbackVenue`:
``start()`` runs the venue (REST, WebSocket API, market and user streams) and
a small admin server on a port of its own, so the admin knobs keep working
while the venue is "down". Every knob is callable from any thread. The
venue's WebSocket connections are pinged every ``ping_interval`` seconds
and dropped when ``pong_timeout`` passes without an answer, as Binance does
(:class:`~._loopback.KeepaliveConfig`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import trio
from hypercorn.config import Config

from tradenode.sim import InstrumentSpec, SimConfig
from tradenode.sim._defaults import default_instruments, paper_sim_config
from tradenode.testing.venues._binance_app import (
    CORRUPTIONS,
    Faults,
    Hub,
    build_app,
)
from tradenode.testing.venues._binance_exchange import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    BinanceExchange,
    OrderInfo,
    TradeInfo,
    VenueEvent,
)
from tradenode.testing.venues._knobs import Knob, admin_override, collect_knobs, knob
from tradenode.testing.venues._loopback import KeepaliveConfig, LoopbackVenue, wall_clock_ms

__all__ = [
    "DEFAULT_BALANCES",
    "DEPRECATED_ALIASES",
    "INSPECTION",
    "KNOBS",
    "BinanceVenue",
    "default_binance_config",
]

_log = logging.getLogger("tradenode.testing.venues.binance")

DEFAULT_BALANCES: Mapping[str, Decimal] = {
    "USDT": Decimal(1_000_000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "SOL": Decimal(1000),
}


def default_binance_config(
    balances: Mapping[str, Decimal] | None = None,
    instruments: Iterable[InstrumentSpec] | None = None,
) -> SimConfig:
    """The paper simulator's settings as a spot account: no short selling."""
    base = paper_sim_config()
    return dataclasses.replace(
        base,
        instruments=tuple(default_instruments() if instruments is None else instruments),
        balances=dict(DEFAULT_BALANCES if balances is None else balances),
        allow_short=False,
    )


def _masked(key: str) -> str:
    """Enough of a key to tell two apart in a log, never enough to use it."""
    return key if len(key) <= 8 else f"{key[:4]}…{key[-3:]}"


# ------------------------------------------------------------------ handle


class BinanceVenue(LoopbackVenue):
    """A local Binance Spot venue on 127.0.0.1: see the package docstring for the tour.

    Arguments: ``config`` (a whole :class:`SimConfig`) or ``balances`` and
    ``instruments`` on top of :func:`default_binance_config`; the account's
    ``api_key``/``api_secret``; the simulator ``seed``; ``clock`` in epoch
    milliseconds (default wall time) for serverTime, timestamp checks and
    every stamp; ``port`` (0: ephemeral) and ``admin_port``; ``tick_interval``
    to step prices by themselves every so many seconds (off by default);
    ``ping_interval``/``pong_timeout`` for the WebSocket keepalive;
    ``weight_limit`` (per minute), ``order_limit_10s`` and ``ban_seconds``
    for the rate limits; ``ed25519_public_keys`` maps more API keys of the
    same account to Ed25519 public keys (PEM): they sign with Ed25519 and may
    ``session.logon`` on the WebSocket API (:meth:`register_ed25519_key`
    adds one later).

    Knobs (:data:`KNOBS`) are methods, and the same names with the same
    keyword arguments on the admin port: ``POST <admin_url>/<knob>`` with a
    JSON object; ``GET <admin_url>/state`` (books, balances, submissions,
    ``calls()``, the request faults still pending and the requests held right
    now), ``GET <admin_url>/calls``, ``GET <admin_url>/faults`` (those faults
    alone) and ``GET <admin_url>/knobs``.

    :meth:`wait_for` looks again whenever a connection's streams change
    (:meth:`market_streams`) and whenever a request starts or stops being held
    by ``delay_requests``.
    """

    VENUE_NAME = "Binance"

    def __init__(
        self,
        *,
        config: SimConfig | None = None,
        balances: Mapping[str, Decimal] | None = None,
        instruments: Iterable[InstrumentSpec] | None = None,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        tick_interval: float | None = None,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        weight_limit: int = 6000,
        order_limit_10s: int = 50,
        ban_seconds: int = 120,
        ed25519_public_keys: Mapping[str, str | bytes] | None = None,
    ) -> None:
        if config is None:
            config = default_binance_config(balances, instruments)
        elif balances is not None or instruments is not None:
            raise ValueError("give either config or balances/instruments, not both")
        super().__init__(
            host=host, port=port, admin_port=admin_port, tick_interval=tick_interval, log=_log
        )
        self.tick_listeners: list[Callable[[bool], None]] = []
        """Called after each ``tick_interval`` tick with whether prices moved."""
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self.exchange = BinanceExchange(
            config,
            api_key=api_key,
            api_secret=api_secret,
            seed=seed,
            clock=clock or wall_clock_ms,
            weight_limit=weight_limit,
            order_limit_10s=order_limit_10s,
            ban_seconds=ban_seconds,
            ed25519_public_keys=ed25519_public_keys,
        )
        self._faults = Faults()
        self._hub = Hub(self.exchange, self._faults)
        self._faults.on_change = self._hub.on_change = self._changes.note
        self._app = build_app(self.exchange, self._hub, self._faults)
        self.pong_listeners: list[Callable[[], None]] = []
        """Called (on the venue's thread) whenever a client answers one of its pings."""
        self.exchange.add_listener(self._on_event)

    def __repr__(self) -> str:
        state = "up" if self._is_up else ("started" if self._thread else "stopped")
        return (
            f"BinanceVenue(rest_url={self.rest_url!r}, api_key={_masked(self.exchange.api_key)!r}, "
            f"{state})"
        )

    # ---------------------------------------------------------- lifecycle

    def _tick(self) -> None:
        moved = self._ticking
        if moved:
            self.exchange.step()
        for listener in self.tick_listeners:
            listener(moved)

    def _venue_config(self) -> Config:
        config = KeepaliveConfig(self._pong_timeout, self.pong_listeners)
        config.websocket_ping_interval = self._ping_interval
        return config

    async def _before_down(self) -> None:
        await self._drop_streams()

    def _on_event(self, event: VenueEvent) -> None:
        self._post(self._hub.dispatch, event)

    # --------------------------------------------------------------- URLs

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def ws_api_url(self) -> str:
        return f"ws://{self._host}:{self._port}/ws-api/v3"

    @property
    def stream_url(self) -> str:
        return f"ws://{self._host}:{self._port}"

    @property
    def api_key(self) -> str:
        return self.exchange.api_key

    # --------------------------------------------------------------- knobs
    #
    # Every method marked @knob is also ``POST <admin_url>/<method name>``
    # with a JSON object of its keyword arguments (see KNOBS): one table, so
    # the Python and HTTP names cannot drift apart.

    @knob
    def step(self, n: int = 1, symbol: str | None = None) -> None:
        """Move prices ``n`` ticks (one symbol or all): bookTicker updates, maybe fills."""
        self.exchange.step(n, symbol)

    @knob
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set ``symbol``'s price: a bookTicker update, and the fills it triggers."""
        self.exchange.set_price(symbol, Decimal(price))

    @knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or, ``frozen=False``, restart) the ``tick_interval`` price moves.

        Resting orders then stop filling by themselves: a checker can compare
        the account with a node that has stopped, knowing nothing changed
        behind its back.
        """
        self._ticking = not frozen

    @knob
    def deposit(self, asset: str, amount: Decimal) -> None:
        """Credit ``amount`` of ``asset`` (negative debits): ``balanceUpdate`` on the user streams."""
        self.exchange.deposit(asset, Decimal(amount))

    @knob
    def drop_streams(self) -> int:
        """Close every WebSocket (WS API, user and market streams) at the TCP level; returns how many."""
        return self._in_trio(self._drop_streams)

    @knob
    def down(self, seconds: float | None = None) -> None:
        """Refuse new connections and cut existing ones, until :meth:`up` (or for ``seconds``)."""
        self._in_trio(lambda: self._down(seconds))

    @knob
    def up(self) -> None:
        """Serve again, on the same port."""
        self._in_trio(self._bring_up)

    @knob
    def delay_requests(
        self, n: int, seconds: float, *, endpoints: Iterable[str] | None = None
    ) -> None:
        """Hold the next ``n`` requests ``seconds`` before processing and answering them.

        ``endpoints`` narrows the knob to some requests, named ``"POST order"``
        (REST: method and the path after ``/api/v3/``) or ``"order.place"``
        (WebSocket API method).
        """
        self._faults.delay_requests(n, seconds, endpoints)

    @knob
    def fail_requests(
        self,
        n: int = 1,
        *,
        after: bool = False,
        status: int = 503,
        code: int = -1007,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Answer the next ``n`` requests with a 5xx, before or ``after`` processing them.

        With ``after=True`` the request takes effect (an order is placed) but
        the client hears ``status`` with ``{"code": -1007, ...}``: Binance's
        "execution status unknown". ``endpoints`` as for :meth:`delay_requests`.
        """
        self._faults.fail_requests(n, after=after, status=status, code=code, endpoints=endpoints)

    @knob
    def mangle_answers(
        self,
        fields: Iterable[str],
        n: int = 1,
        *,
        how: str = "drop",
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Spoil ``fields`` in the successful answers to the next ``n`` requests.

        The request takes effect as usual (an order is placed, canceled or
        replaced) but the client reads a 200 answer (a REST body, a WebSocket
        API ``result``) whose top-level ``fields`` are gone (``how="drop"``),
        ``null`` (``"null"``) or the string ``"garbled"`` (``"text"``); in a list
        answer, every row's. A refusal is answered as it is (and uses up one of
        the ``n``). ``endpoints`` as for :meth:`delay_requests`.
        """
        self._faults.mangle_answers(n, fields, how, endpoints)

    @knob
    def register_ed25519_key(self, api_key: str, public_key_pem: str) -> None:
        """Let ``api_key`` sign with the Ed25519 key whose public half is ``public_key_pem``.

        The key then signs REST and WebSocket API requests (base64 Ed25519
        signatures) and may ``session.logon``. Private keys never reach the venue.
        """
        self.exchange.register_ed25519_key(api_key, public_key_pem)

    @knob
    def rate_limit(self, n: int = 1, retry_after: int = 5) -> None:
        """Answer the next ``n`` requests 429 ``-1003`` with ``Retry-After: retry_after``."""
        self.exchange.force_429(n, retry_after)

    @knob
    def ban(self, seconds: int) -> None:
        """Answer 418 with ``Retry-After`` until ``seconds`` have passed on the venue's clock."""
        self.exchange.ban(seconds)

    @knob
    def clear_faults(self) -> None:
        """Forget every pending request and event fault, 429 and ban (held events stay held)."""
        self.exchange.clear_limits()
        self._faults.clear()

    @knob
    def duplicate_events(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` user events twice."""
        self._faults.add_event_faults(duplicate=n)

    @knob
    def reorder_events(self, n: int = 2) -> None:
        """Hold the next ``n`` user events, then release them in reverse order."""
        self._faults.add_event_faults(reorder=n)

    @knob
    def release_events(self) -> None:
        """Release, in reverse order, user events held by :meth:`reorder_events` so far."""
        self._in_trio_sync(self._hub.release_held)

    @knob
    def corrupt_next_event(self, kind: str = "invalid_json") -> None:
        """Mangle the next user event: ``invalid_json``, ``unknown_event`` or ``missing_field``."""
        if kind not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, not {kind!r}")
        self._faults.add_event_faults(corrupt=kind)

    @knob
    def terminate_user_streams(self) -> int:
        """Send ``eventStreamTerminated`` on every user data subscription and end them."""
        return self._in_trio_sync(self._hub.terminate_user_streams)

    @knob
    def server_shutdown(self) -> None:
        """Send ``serverShutdown`` on every WebSocket connection."""
        self._in_trio_sync(self._hub.server_shutdown)

    @knob
    def expire_listen_key(self) -> str | None:
        """Expire the legacy listenKey: ``listenKeyExpired`` on its streams, -1125 afterwards."""
        return self._in_trio_sync(self._hub.expire_listen_key)

    # ---------------------------------------------------------- inspection

    def market_streams(self) -> list[str]:
        """The market streams (``btcusdt@bookTicker``, ...) some connection is
        subscribed to now: a test waits for a client's subscription to be in before
        it moves a price (Binance sends no bookTicker on subscribe)."""
        return self._in_trio_sync(self._hub.market_streams)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{asset: (free, locked)}``."""
        return self.exchange.balances()

    def orders(self) -> list[OrderInfo]:
        return self.exchange.orders()

    def submissions(self) -> dict[str, int]:
        """How many placement requests each clientOrderId was ever sent in."""
        return self.exchange.submissions()

    def trades(self) -> list[TradeInfo]:
        return self.exchange.trades()

    def calls(self) -> dict[str, int]:
        """Requests per endpoint so far: ``"GET order"`` (REST), ``"order.status"`` (WS API)."""
        return self.exchange.calls()

    # -------------------------------------------------------------- admin

    def _state(self) -> dict[str, Any]:
        return {
            "up": self._is_up,
            "balances": {
                asset: {"free": free, "locked": locked}
                for asset, (free, locked) in self.balances().items()
            },
            "orders": self.orders(),
            "submissions": self.submissions(),
            "trades": self.trades(),
            "calls": self.calls(),
            "faults": self._faults.pending(),
        }

    def _admin_views(self) -> Mapping[str, Callable[[], Any]]:
        return {**super()._admin_views(), "calls": self.calls, "faults": self._faults.pending}

    @admin_override("drop_streams")
    async def _drop_streams(self) -> int:
        return await self._drop_websockets()

    @admin_override("down")
    async def _down(self, seconds: float | None = None) -> None:
        await self._bring_down()
        if seconds is not None:
            assert self._nursery is not None
            self._nursery.start_soon(self._up_after, seconds)

    @admin_override("up")
    async def _up(self) -> None:
        await self._bring_up()

    async def _up_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self._bring_up()


KNOBS: Mapping[str, Knob] = collect_knobs(BinanceVenue)
"""Every knob of :class:`BinanceVenue` by name: its Python method and its admin endpoint."""

BinanceVenue.KNOBS = KNOBS

DEPRECATED_ALIASES: Mapping[str, str] = {
    "clear": "clear_faults",
    "corrupt": "corrupt_next_event",
    "delay": "delay_requests",
    "duplicate": "duplicate_events",
    "fail": "fail_requests",
    "release": "release_events",
    "reorder": "reorder_events",
}
"""Admin names before they matched the Python methods; still served, with a warning
and ``"deprecated"`` in the answer. They will go."""

BinanceVenue.DEPRECATED_ALIASES = DEPRECATED_ALIASES

INSPECTION = frozenset(
    {"start", "stop", "balances", "orders", "submissions", "trades", "calls", "market_streams"}
)
"""The public methods of :class:`BinanceVenue` that are not knobs (lifecycle and inspection)."""
