"""Run the local Coinbase Advanced Trade venue on loopback: the handle tests hold.

:class:`CoinbaseVenue` is a :class:`~._loopback.LoopbackVenue`: one trio
loop on a daemon thread serving the venue (REST and both WebSocket
endpoints on one port) and an admin port that stays up while the venue is
"down". Every change to the venue's books runs on that loop (knobs called
from other threads are handed to it), so REST requests, price moves and
inspection never race. Knobs that touch connections (``drop_streams``,
``down``, ``up``) block until done; from inside a trio task call them
through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import trio
from hypercorn.config import Config

from tradenode.sim import InstrumentSpec, SimConfig
from tradenode.testing.venues._coinbase_app import CoinbaseApp, CoinbaseFaults, Hub, _RestFault
from tradenode.testing.venues._coinbase_exchange import (
    CoinbaseExchange,
    CoinbaseFillInfo,
    CoinbaseOrderInfo,
    Json,
    VenueEvent,
    default_coinbase_config,
)
from tradenode.testing.venues._coinbase_keys import CdpKey, generate_cdp_key
from tradenode.testing.venues._knobs import Knob, admin_override, collect_knobs, knob
from tradenode.testing.venues._loopback import KeepaliveConfig, LoopbackVenue, wall_clock_ms

__all__ = ["KNOBS", "CoinbaseVenue"]

_log = logging.getLogger("tradenode.testing.venues.coinbase")
_EXPIRY_CHECK_S = 0.05
"""How often (real seconds) the venue looks for GTD orders its clock has expired."""


class CoinbaseVenue(LoopbackVenue):
    """A local Coinbase Advanced Trade account on 127.0.0.1: see the package docstring.

    Arguments: ``api_keys`` maps CDP key names to their public keys (PEM,
    EC P-256 or Ed25519); without it the venue makes one key pair,
    :attr:`key`, whose private half it hands to the test. ``config`` (a
    whole :class:`SimConfig`) or ``balances``/``instruments`` on top of
    :func:`default_coinbase_config` (BTC-USD, ETH-USD; 1,000,000 USD, 10
    BTC, 100 ETH); the simulator ``seed``; ``clock`` in epoch milliseconds
    (default wall time: it also checks the JWTs' ``nbf``/``exp``, so a
    client signing with the real time needs the real clock);
    ``host``/``port``/``admin_port`` (0: ephemeral); ``tls`` to serve HTTPS
    and WSS with a throwaway CA (:attr:`ca_file`), which Coinbase's SDK
    and ccxt need; ``heartbeat_interval`` seconds between ``heartbeats``
    messages (Coinbase: 1); ``subscribe_timeout`` seconds a new WebSocket
    has to subscribe (Coinbase: 5); ``tick_interval`` to step prices by
    themselves (off by default: prices move only when told).
    """

    VENUE_NAME = "Coinbase"
    _app: CoinbaseApp

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str | bytes] | None = None,
        config: SimConfig | None = None,
        balances: Mapping[str, Decimal] | None = None,
        instruments: Iterable[InstrumentSpec] | None = None,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        tls: bool = False,
        heartbeat_interval: float = 1.0,
        subscribe_timeout: float = 5.0,
        tick_interval: float | None = None,
    ) -> None:
        if config is None:
            config = default_coinbase_config(balances, instruments)
        elif balances is not None or instruments is not None:
            raise ValueError("give either config or balances/instruments, not both")
        if heartbeat_interval <= 0 or subscribe_timeout <= 0:
            raise ValueError("heartbeat_interval and subscribe_timeout must be > 0")
        super().__init__(
            host=host,
            port=port,
            admin_port=admin_port,
            tick_interval=tick_interval,
            log=_log,
            tls=tls,
        )
        self.key: CdpKey | None = None
        """The key pair the venue made when no ``api_keys`` were given (else None)."""
        if api_keys is None:
            self.key = generate_cdp_key()
            api_keys = {self.key.name: self.key.public_key_pem}
        self.exchange = CoinbaseExchange(
            config, api_keys=api_keys, seed=seed, clock=clock or wall_clock_ms
        )
        self._faults = CoinbaseFaults()
        self._hub = Hub(self.exchange, self._faults)
        self._app = CoinbaseApp(
            self.exchange,
            self._hub,
            self._faults,
            heartbeat_interval=heartbeat_interval,
            subscribe_timeout=subscribe_timeout,
        )
        self._expiring = False
        self.exchange.add_listener(self._on_event)

    def __repr__(self) -> str:
        state = "up" if self._is_up else ("started" if self._thread else "stopped")
        return (
            f"CoinbaseVenue(rest_url={self.rest_url!r}, keys={self.exchange.key_names()}, {state})"
        )

    # ---------------------------------------------------------- lifecycle

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        self._expiring = False

    def _venue_config(self) -> Config:
        config = KeepaliveConfig(pong_timeout=60.0)
        config.websocket_ping_interval = None
        return config

    async def _after_up(self) -> None:
        if not self._expiring and self._nursery is not None:
            self._expiring = True
            self._nursery.start_soon(self._expire_orders)

    async def _expire_orders(self) -> None:
        """GTD orders end at their ``end_time`` by themselves, as on Coinbase, not at the next request."""
        while True:
            await trio.sleep(_EXPIRY_CHECK_S)
            self.exchange.expire_due()

    async def _before_down(self) -> None:
        await self._drop_streams()

    def _tick(self) -> None:
        if self._ticking:
            self.exchange.step()

    def _on_event(self, event: VenueEvent) -> None:
        self._post(self._hub.dispatch, event)

    # -------------------------------------------------------- addresses

    @property
    def rest_url(self) -> str:
        """The REST base (``https://`` with ``tls``): paths are ``/api/v3/brokerage/...``."""
        return self._url("http")

    @property
    def ws_url(self) -> str:
        """The market data endpoint (every channel, ``user`` included)."""
        return self._url("ws", "/ws")

    @property
    def ws_user_url(self) -> str:
        """The user order data endpoint (``user``, ``heartbeats``)."""
        return self._url("ws", "/ws/user")

    # ------------------------------------------------------------ knobs

    @knob
    def set_price(self, product_id: str, price: Decimal) -> None:
        """Set ``product_id``'s last price: ticker and level2 updates, and the fills it causes."""
        self._in_trio_sync(lambda: self.exchange.set_price(product_id, Decimal(price)))

    @knob
    def step(self, n: int = 1, product_id: str | None = None) -> None:
        """Move prices ``n`` ticks of the seeded walk (one product or all)."""
        self._in_trio_sync(lambda: self.exchange.step(n, product_id))

    @knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or restart) the ``tick_interval`` moves: nothing fills behind a checker's back."""
        self._ticking = not frozen

    @knob
    def register_key(self, name: str, public_key_pem: str) -> None:
        """Accept JWTs of CDP key ``name``, whose public key (PEM) is ``public_key_pem``."""
        self._in_trio_sync(lambda: self.exchange.register_key(name, public_key_pem))

    @knob
    def drop_streams(self) -> int:
        """Cut every WebSocket at the TCP level (no close frame); returns how many."""
        return self._in_trio(self._drop_streams)

    @knob
    def down(self) -> None:
        """Cut every WebSocket and refuse connections until :meth:`up` (the admin port stays up)."""
        self._in_trio(self._bring_down)

    @knob
    def up(self) -> None:
        """Serve again on the same port."""
        self._in_trio(self._bring_up)

    @knob
    def rate_limit(self, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``count`` REST requests 429 with ``Retry-After``, without processing them.

        Body ``{"error": "RATE_LIMIT_EXCEEDED", ...}``. Coinbase documents the
        429 but not a Retry-After header; the venue sends one so a client's
        backoff can be tested.
        """
        self._faults.add(_RestFault("rate", count, None, status=429, retry_after=retry_after))

    @knob
    def fail_requests(
        self,
        count: int = 1,
        after: bool = False,
        lose: bool = False,
        status: int = 503,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Answer the next ``count`` REST requests 5xx, before or ``after`` processing them.

        ``after=True``: the request takes effect (an order is placed) but the
        client hears ``status``. ``lose=True``: it takes effect and the
        connection is cut with no answer at all. ``endpoints`` narrows the
        fault to requests named as :meth:`calls` names them (``"POST orders"``,
        ``"GET orders/historical/batch"``).
        """
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx, not {status}")
        names = None if endpoints is None else frozenset(endpoints)
        if lose:
            self._faults.add(_RestFault("lose", count, names))
        else:
            self._faults.add(_RestFault("fail", count, names, status=status, after=after))

    @knob
    def duplicate_events(self, n: int = 1) -> None:
        """Send each of the next ``n`` user-channel messages twice (same ``sequence_num``)."""
        with self._faults.lock:
            self._faults.duplicate += n

    @knob
    def reorder_events(self, n: int = 2) -> None:
        """Hold the next ``n`` user-channel messages, then send them newest first."""
        with self._faults.lock:
            self._faults.reorder += n

    @knob
    def release_events(self) -> int:
        """Send the user-channel messages held by :meth:`reorder_events` now, newest first."""
        return self._in_trio_sync(self._hub.release_held)

    @knob
    def skip_sequence(self, n: int = 1) -> int:
        """Make the next message on every open WebSocket skip ``n`` sequence numbers (a gap)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, not {n}")
        return self._in_trio_sync(lambda: self._hub.skip_sequence(n))

    @knob
    def corrupt_next_event(self) -> None:
        """Send a truncated copy (invalid JSON) before the next user-channel message."""
        with self._faults.lock:
            self._faults.corrupt += 1

    @knob
    def hold_fills(self) -> None:
        """Show price moves from now on but match them only at :meth:`release_fills` (delayed fills).

        Resting orders a move crosses stay OPEN and unfilled (a cancel wins
        the race); orders placed meanwhile still trade at the price before
        the hold.
        """
        self._in_trio_sync(self.exchange.hold_fills)

    @knob
    def release_fills(self) -> int:
        """Match the held price moves in order; returns how many fills they made."""
        return self._in_trio_sync(self.exchange.release_fills)

    @knob
    def clear_faults(self) -> None:
        """Forget every pending request and event fault (held events and fills stay held)."""
        self._faults.clear()

    # -------------------------------------------------------- inspection

    def quote(self, product_id: str) -> tuple[Decimal, Decimal, Decimal]:
        """``(bid, ask, last)`` now."""
        return self._in_trio_sync(lambda: self.exchange.quote(product_id))

    def orders(self) -> list[CoinbaseOrderInfo]:
        """Every order ever placed, oldest first, with Coinbase's statuses."""
        return self._in_trio_sync(self.exchange.orders)

    def fills(self) -> list[CoinbaseFillInfo]:
        """Every fill, oldest first (``trade_id`` is Coinbase's id for it)."""
        return self._in_trio_sync(self.exchange.fills)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{currency: (available, hold)}``."""
        return self._in_trio_sync(self.exchange.balances)

    def position(self, product_id: str) -> Decimal:
        """Base bought minus sold through this venue."""
        return self._in_trio_sync(lambda: self.exchange.position(product_id))

    def submissions(self) -> dict[str, int]:
        """How many ``POST orders`` named each client_order_id.

        Refused orders and duplicates count; requests answered 429 or failed
        before processing never reached the venue and do not.
        """
        return self._in_trio_sync(self.exchange.submissions)

    def calls(self) -> dict[str, int]:
        """Requests per endpoint (faulted ones too): ``"POST orders"``, ``"WS user"``, ..."""
        return self._app.calls()

    def streams(self) -> list[Json]:
        """The open WebSockets: endpoint, channels and products, next sequence number."""
        return self._in_trio_sync(self._hub.describe)

    # ------------------------------------------------------------- admin

    def _state(self) -> Json:
        return {
            "up": self._is_up,
            "balances": {
                currency: {"available": available, "hold": hold}
                for currency, (available, hold) in self.exchange.balances().items()
            },
            "orders": self.exchange.orders(),
            "fills": self.exchange.fills(),
            "submissions": self.exchange.submissions(),
            "calls": self.calls(),
            "faults": self._faults.pending(),
            "streams": self._hub.describe(),
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


KNOBS: dict[str, Knob] = collect_knobs(CoinbaseVenue)
"""Every knob of :class:`CoinbaseVenue` by name: its Python method and its admin endpoint."""

CoinbaseVenue.KNOBS = KNOBS
