"""Run the fake OKX on loopback: :class:`OkxVenue`, the handle tests hold.

Built on :class:`~._loopback.LoopbackVenue` (a trio loop on a thread serving
the venue and its admin port); REST and both WebSockets share one port.
Every knob is a method callable from any thread and ``POST
<admin_url>/<knob>`` with a JSON object of the same keyword arguments.
Knobs that touch connections (``drop_streams``, ``down``, ``up``,
``release_events``) block until done; from inside a trio task call them
through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from hypercorn.config import Config

from tradenode.sim import InstrumentSpec, SimConfig
from tradenode.sim._defaults import default_instruments, paper_sim_config
from tradenode.testing.venues._knobs import admin_override, collect_knobs, knob
from tradenode.testing.venues._loopback import KeepaliveConfig, LoopbackVenue, wall_clock_ms
from tradenode.testing.venues._okx_app import (
    CORRUPTIONS,
    OkxApp,
    OkxFaults,
    OkxHub,
    _FieldFault,
    _RequestFault,
)
from tradenode.testing.venues._okx_exchange import (
    DEFAULT_OKX_API_KEY,
    DEFAULT_OKX_PASSPHRASE,
    DEFAULT_OKX_SECRET,
    Json,
    OkxEvent,
    OkxExchange,
    OkxFillInfo,
    OkxOrderInfo,
    okx_sim_config,
)

__all__ = ["DEFAULT_OKX_BALANCES", "OkxVenue", "default_okx_config"]

_log = logging.getLogger("tradenode.testing.venues.okx")

DEFAULT_OKX_BALANCES: Mapping[str, Decimal] = {
    "USDT": Decimal(1_000_000),
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "SOL": Decimal(1000),
}


def default_okx_config(
    balances: Mapping[str, Decimal] | None = None,
    instruments: Iterable[InstrumentSpec] | None = None,
) -> SimConfig:
    """The paper simulator's settings as an OKX spot account: ``BTC-USDT``, ``ETH-USDT``, ``SOL-USDT``."""
    base = dataclasses.replace(
        paper_sim_config(),
        instruments=tuple(default_instruments() if instruments is None else instruments),
        retain_closed_orders=None,
    )
    return okx_sim_config(DEFAULT_OKX_BALANCES if balances is None else balances, base)


class OkxVenue(LoopbackVenue):
    """A local OKX v5 account on 127.0.0.1: REST, public and private WebSockets, admin port.

    Arguments: ``config`` (a whole :class:`SimConfig` with OKX instIds) or
    ``balances`` on top of :func:`default_okx_config`; the account's
    ``api_key``/``secret``/``passphrase``; ``demo`` (True: only demo-trading
    requests, ``x-simulated-trading: 1``; False: only live ones; None:
    both); the simulator ``seed``; ``clock`` in epoch milliseconds (default
    wall time); ``host``/``port``/``admin_port`` (0: ephemeral);
    ``tick_interval`` to step prices by themselves (off by default: prices
    move only when told); ``idle_timeout`` seconds without traffic before a
    WebSocket is closed (OKX: 30); ``rate_limits`` to enforce OKX's per-2 s
    limits (off by default: a burst of test orders is not refused): place,
    cancel and amend 60 requests per instId each (their batch endpoints 300
    orders), shared by REST and WebSocket, and the query endpoints' own;
    ``tls`` to serve HTTPS and WSS with a throwaway CA (:attr:`ca_file`):
    python-okx's WebSocket classes always pass an SSL context, so they reach
    the venue only over WSS (trust the CA with ``SSL_CERT_FILE``).

    :meth:`wait_for` looks again whenever a WebSocket connection comes or goes
    and after every frame one sends is handled (a login, a subscription, an
    ``op: order``), so a test waits for :meth:`subscriptions` to show a
    client's subscription instead of polling it.
    """

    VENUE_NAME = "OKX"

    def __init__(
        self,
        *,
        config: SimConfig | None = None,
        balances: Mapping[str, Decimal] | None = None,
        api_key: str = DEFAULT_OKX_API_KEY,
        secret: str = DEFAULT_OKX_SECRET,
        passphrase: str = DEFAULT_OKX_PASSPHRASE,
        demo: bool | None = None,
        seed: int = 0,
        clock: Callable[[], int] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        tick_interval: float | None = None,
        idle_timeout: float = 30.0,
        rate_limits: bool = False,
        tls: bool = False,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            admin_port=admin_port,
            tick_interval=tick_interval,
            log=_log,
            tls=tls,
        )
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout={idle_timeout!r}: must be > 0")
        self.exchange = OkxExchange(
            config if config is not None else default_okx_config(balances),
            api_key=api_key,
            secret=secret,
            passphrase=passphrase,
            seed=seed,
            clock=clock or wall_clock_ms,
            demo=demo,
            rate_limits=rate_limits,
        )
        self._secret = secret
        self._passphrase = passphrase
        self._faults = OkxFaults()
        self._hub = OkxHub(self.exchange, self._faults)
        self._hub.on_change = self._changes.note
        self._okx_app = OkxApp(self.exchange, self._hub, self._faults, idle_timeout=idle_timeout)
        self.ping_listeners = self._okx_app.ping_listeners
        """Called (on the venue's thread) for every text ``ping`` a client sends."""
        self._app = self._okx_app
        self.exchange.add_listener(self._on_event)

    def __repr__(self) -> str:
        state = "up" if self.is_up else ("started" if self._thread else "stopped")
        return f"OkxVenue(rest_url={self.rest_url!r}, api_key={self.api_key!r}, {state})"

    # ------------------------------------------------------------ hooks

    def _venue_config(self) -> Config:
        config = KeepaliveConfig(pong_timeout=60.0)
        return config

    async def _before_down(self) -> None:
        await self._drop_streams()

    def _tick(self) -> None:
        if self._ticking:
            self.exchange.step()

    def _on_event(self, event: OkxEvent) -> None:
        self._post(self._hub.dispatch, event)

    # -------------------------------------------------------- addresses

    @property
    def rest_url(self) -> str:
        """The REST base (``https://`` with ``tls``): paths are ``/api/v5/...``."""
        return self._url("http")

    @property
    def ws_public_url(self) -> str:
        return self._url("ws", "/ws/v5/public")

    @property
    def ws_private_url(self) -> str:
        return self._url("ws", "/ws/v5/private")

    @property
    def ca_file(self) -> str | None:
        """With ``tls``, the throwaway CA that signed the venue's certificate (once started)."""
        return None if self._tls_files is None else str(self._tls_files.ca_file)

    @property
    def api_key(self) -> str:
        return self.exchange.api_key

    @property
    def secret(self) -> str:
        """The HMAC secret the venue checks signatures with (never in its repr or logs)."""
        return self._secret

    @property
    def passphrase(self) -> str:
        """The API key's passphrase (never in its repr or logs)."""
        return self._passphrase

    @property
    def idle_timeout(self) -> float:
        return self._okx_app.idle_timeout

    # ------------------------------------------------------------ knobs

    @knob
    def step(self, n: int = 1, inst_id: str | None = None) -> None:
        """Move prices ``n`` ticks of the seeded walk (one instrument or all): tickers, maybe fills."""
        self.exchange.step(n, inst_id)

    @knob
    def set_price(self, inst_id: str, price: Decimal) -> None:
        """Set ``inst_id``'s last price: tickers/bbo-tbt pushes and the fills it triggers."""
        self.exchange.set_price(inst_id, Decimal(price))

    @knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or restart) the ``tick_interval`` moves: nothing fills behind a checker's back."""
        self._ticking = not frozen

    @knob
    def drop_streams(self) -> int:
        """Close every WebSocket (public and private) at the TCP level; returns how many."""
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
    def rate_limit(self, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``count`` requests as rate limited, without processing them.

        REST: HTTP 429 ``{"code": "50011", "msg": "Too Many Requests"}`` (with
        ``Retry-After``; OKX documents no such header). WebSocket trade ops:
        ``code 50011``.
        """
        if count < 1:
            raise ValueError(f"count must be >= 1, not {count}")
        self._faults.add(_RequestFault("rate", count, None, retry_after=retry_after))

    @knob
    def fail_requests(
        self,
        count: int = 1,
        *,
        after: bool = False,
        status: int = 503,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """Fail the next ``count`` requests: 5xx before processing, or ``after``: process, no answer.

        ``after=True`` is the dangerous one: the order is placed but the client
        hears nothing (REST: the TCP connection is cut; WebSocket: no
        response to the op). ``endpoints`` narrows it to REST routes
        (``"POST trade/order"`` or ``"trade/order"``) and WebSocket ops
        (``"order"``, ``"batch-orders"``, ...).
        """
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx, not {status}")
        keys = None if endpoints is None else frozenset(endpoints)
        kind = "lose" if after else "fail"
        self._faults.add(_RequestFault(kind, count, keys, status=status))

    @knob
    def refuse_next_order(
        self, code: str = "51008", msg: str = "Order failed. Insufficient balance."
    ) -> None:
        """Refuse the next order placed (REST or WS, single or in a batch) with ``sCode``/``sMsg``."""
        self.exchange.refuse_next_order(code, msg)

    @knob
    def place_order(
        self,
        inst_id: str,
        side: str,
        ord_type: str,
        sz: Decimal,
        *,
        px: Decimal | None = None,
        cl_ord_id: str = "",
    ) -> Json:
        """Place an order as another client of the account would; returns OKX's ``data`` item.

        Its pushes go to the ``orders`` channel like any order's: what a
        node must adopt as an order it did not place.
        """
        args: Json = {
            "instId": inst_id,
            "tdMode": "cash",
            "side": side,
            "ordType": ord_type,
            "sz": str(sz),
            "clOrdId": cl_ord_id,
        }
        if px is not None:
            args["px"] = str(px)
        if ord_type == "market":
            args["tgtCcy"] = "base_ccy"
        return self.exchange.place(args)

    def cancel_order(self, inst_id: str, *, cl_ord_id: str = "", ord_id: str = "") -> Json:
        """Cancel an order as another client of the account would; returns OKX's ``data`` item."""
        args: Json = {"instId": inst_id}
        if cl_ord_id:
            args["clOrdId"] = cl_ord_id
        if ord_id:
            args["ordId"] = ord_id
        return self.exchange.cancel(args)

    @knob
    def duplicate_events(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` ``orders`` channel pushes twice."""
        self._faults.add_event_faults(duplicate=n)

    @knob
    def drop_events(self, n: int = 1) -> None:
        """Lose the next ``n`` ``orders`` pushes: a gap that only a REST look can fill."""
        self._faults.add_event_faults(drop=n)

    @knob
    def reorder_events(self, n: int = 2) -> None:
        """Hold the next ``n`` ``orders`` pushes, then deliver them in reverse order."""
        self._faults.add_event_faults(reorder=n)

    @knob
    def release_events(self) -> int:
        """Deliver, newest first, the pushes :meth:`reorder_events` holds so far; returns how many."""
        return self._in_trio_sync(self._hub.release_held)

    @knob
    def corrupt_next_event(self, kind: str = "invalid_json") -> None:
        """Mangle the next ``orders`` push: ``invalid_json``, ``missing_field`` or ``unknown_channel``."""
        if kind not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, not {kind!r}")
        self._faults.add_event_faults(corrupt=kind)

    @knob
    def corrupt_next_fill(self, field: str, value: str | None = None) -> None:
        """Set ``field`` to ``value`` (None: remove it) in the next ``orders`` push carrying a fill.

        Only the push is mangled: ``/trade/fills`` and the order's record keep
        the venue's true values (``fillPx`` ``"0"``, ``instId`` ``""``, ...).
        """
        self._faults.add_field_fault("fills", _FieldFault(frozenset(), field, value))

    @knob
    def corrupt_next_quote(
        self, channel: str, field: str, value: str | None = None, inst_id: str | None = None
    ) -> None:
        """Set ``field`` to ``value`` (None: remove it) in the next ``channel`` push (of ``inst_id``).

        ``channel``: ``tickers``, ``bbo-tbt`` or ``books5``; for ``bids``/``asks``
        the value is the best level's price (``"NaN"``, one above the ask, ...).
        """
        if channel not in ("tickers", "bbo-tbt", "books5"):
            raise ValueError(f"channel must be tickers, bbo-tbt or books5, not {channel!r}")
        fault = _FieldFault(frozenset({channel}), field, value, inst_id=inst_id)
        self._faults.add_field_fault("quotes", fault)

    @knob
    def corrupt_next_answer(
        self, endpoint: str, field: str, value: str | None = None, item: int = 0
    ) -> None:
        """Set ``field`` to ``value`` (None: remove it) in ``data[item]`` of the next answer to ``endpoint``.

        ``endpoint``: a REST route (``"GET trade/order"`` or ``"trade/order"``) or
        a WebSocket op (``"batch-orders"``, ``"ws amend-order"``). The request is
        processed as usual; only its answer is mangled.
        """
        if item < 0:
            raise ValueError(f"item must be >= 0, not {item}")
        fault = _FieldFault(frozenset({endpoint}), field, value, item=item)
        self._faults.add_field_fault("answers", fault)

    @knob
    def hold_fills(self) -> None:
        """Resting orders stop filling on price moves (the moves are kept) until :meth:`release_fills`.

        A held order stays live and cancellable: a cancel wins the race.
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

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{ccy: (available, frozen)}``."""
        return self.exchange.balances()

    def orders(self) -> list[OkxOrderInfo]:
        """Every order ever, in ordId order (refused placements are not orders)."""
        return self.exchange.orders()

    def fills(self) -> list[OkxFillInfo]:
        """Every fill, oldest first, with its tradeId and billId."""
        return self.exchange.fills()

    def submissions(self) -> dict[str, int]:
        """How many placement requests named each clOrdId, over REST and WS, refused ones included.

        Requests answered 429 or failed before processing never reached the
        venue and do not count.
        """
        return self.exchange.submissions()

    def calls(self) -> dict[str, int]:
        """Requests per endpoint: ``"POST trade/order"`` (REST), ``"ws order"`` (WS op)."""
        return self.exchange.calls()

    def connections(self) -> int:
        """How many WebSocket connections are open now."""
        return self._in_trio_sync(lambda: len(self._hub.connections))

    def subscriptions(self) -> list[tuple[str, str]]:
        """``(public|private, channel)`` of every live subscription, one per connection and arg."""
        return self._in_trio_sync(
            lambda: [
                (connection.kind, str(arg["channel"]))
                for connection in self._hub.connections
                for arg in connection.subscriptions
            ]
        )

    # ------------------------------------------------------------- admin

    def _state(self) -> Json:
        return {
            "up": self.is_up,
            "balances": {
                ccy: {"available": available, "frozen": frozen}
                for ccy, (available, frozen) in self.balances().items()
            },
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


OkxVenue.KNOBS = collect_knobs(OkxVenue)
