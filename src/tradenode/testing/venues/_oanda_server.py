"""Run the fake OANDA on loopback: hypercorn + trio on a background thread.

:class:`OandaVenue` is the handle tests hold, built like
:class:`~._binance_server.BinanceVenue`: ``start()`` runs two hypercorn
servers on one trio loop in a daemon thread, the venue (REST and both
streams, on one port: ``rest_url == stream_url``) and a small admin server
on a port of its own that stays up while the venue is "down". Every knob is
a method callable from any thread and ``POST <admin_url>/<knob>`` with a
JSON object of the same keyword arguments (:data:`KNOBS`, described by the
Binance fake's machinery). Knobs that touch connections (``drop_streams``,
``down``, ``up``) block until done; from inside a trio task call them
through ``trio.to_thread.run_sync``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from tradenode.testing.venues._binance_app import AdminAnswer, AdminError, build_admin_app
from tradenode.testing.venues._binance_server import (
    Knob,
    _describe_knob,
    _install_keepalive_stream,
    _port_of,
)
from tradenode.testing.venues._oanda_app import (
    STREAM_KINDS,
    OandaApp,
    OandaFaults,
    StreamHub,
    _RestFault,
    install_abortable_http,
)
from tradenode.testing.venues._oanda_exchange import (
    DEFAULT_OANDA_ACCOUNT_ID,
    DEFAULT_OANDA_TOKEN,
    Json,
    OandaEvent,
    OandaExchange,
)

__all__ = ["KNOBS", "OandaVenue"]

_log = logging.getLogger("tradenode.testing.venues.oanda")
_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])

_KNOB_NAMES: list[str] = []
_ADMIN_OVERRIDES: dict[str, Callable[..., Awaitable[Any]]] = {}


def _knob(method: _F) -> _F:
    """Mark an :class:`OandaVenue` method as a knob, served on the admin port under its name."""
    _KNOB_NAMES.append(method.__name__)
    return method


def _admin_override(name: str) -> Callable[[_F], _F]:
    """What the admin port awaits for knob ``name`` (one that blocks on the venue's own loop)."""

    def register(function: _F) -> _F:
        _ADMIN_OVERRIDES[name] = function
        return function

    return register


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _stream_kind(kind: str) -> str:
    if kind not in (*STREAM_KINDS, "all"):
        raise ValueError(f"kind must be 'transactions', 'pricing' or 'all', not {kind!r}")
    return kind


class OandaVenue:
    """A local OANDA v20 account on 127.0.0.1, REST and streams: see the package docstring.

    Arguments: ``account_id`` and bearer ``token`` (the only ones accepted);
    the simulator ``seed``; ``host``/``port``/``admin_port`` (0: ephemeral);
    the starting ``balance`` in the home ``currency``; ``instruments``
    (default EUR_USD, USD_JPY, GBP_USD); ``clock`` in epoch milliseconds
    (default wall time) for every stamp, gtdTime and expiry;
    ``heartbeat_interval`` seconds between stream heartbeats;
    ``tick_interval`` to step prices by themselves (off by default: prices
    move only when told); ``financing`` to let :meth:`charge_financing`
    book DAILY_FINANCING; ``level_quantity`` units at each book level (what
    one price move can fill) and ``spread_bps`` between bid and ask (0: a
    resting order fills as soon as the mid reaches its price, which the
    conformance suite's price moves assume).
    """

    KNOBS: ClassVar[dict[str, Knob]]

    def __init__(
        self,
        *,
        account_id: str = DEFAULT_OANDA_ACCOUNT_ID,
        token: str = DEFAULT_OANDA_TOKEN,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_port: int = 0,
        balance: Decimal = Decimal(100000),
        currency: str = "USD",
        instruments: Sequence[str] | None = None,
        clock: Callable[[], int] | None = None,
        heartbeat_interval: float = 5.0,
        tick_interval: float | None = None,
        financing: bool = False,
        level_quantity: Decimal = Decimal(1_000_000),
        spread_bps: Decimal = Decimal("1.4"),
    ) -> None:
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval={heartbeat_interval!r}: must be > 0")
        self._host = host
        self._port = port
        self._admin_port = admin_port
        self._tick_interval = tick_interval
        self._ticking = True
        self.exchange = OandaExchange(
            account_id=account_id,
            token=token,
            instruments=instruments,
            balance=Decimal(balance),
            currency=currency,
            seed=seed,
            clock=clock or _wall_clock_ms,
            financing=financing,
            level_quantity=level_quantity,
            spread_bps=spread_bps,
        )
        self._token_value = token
        self._faults = OandaFaults()
        self._hub = StreamHub(self.exchange, self._faults, heartbeat_interval)
        self._app = OandaApp(self.exchange, self._hub, self._faults)
        self._admin_app = build_admin_app(
            self._admin,
            {
                "state": self._state,
                "calls": self.calls,
                "faults": self._faults.pending,
                "knobs": lambda: [knob.to_dict() for knob in KNOBS.values()],
            },
        )
        self._thread: threading.Thread | None = None
        self._trio_thread_id: int | None = None
        self._trio: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._main_shutdown: trio.Event | None = None
        self._main_done: trio.Event | None = None
        self._is_up = False
        self.exchange.add_listener(self._on_event)

    def __repr__(self) -> str:
        state = "up" if self._is_up else ("started" if self._thread else "stopped")
        return f"OandaVenue(rest_url={self.rest_url!r}, account_id={self.account_id!r}, {state})"

    # ---------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> OandaVenue:
        if self._thread is not None:
            raise RuntimeError("OandaVenue already started")
        _install_keepalive_stream()
        install_abortable_http()
        self._thread = threading.Thread(target=self._run, name="fake-oanda", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the fake OANDA did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the fake OANDA failed to start") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        thread, token, stop = self._thread, self._trio, self._stop
        if thread is None:
            return
        if token is not None and stop is not None and thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout)
        self._thread = None
        self._is_up = False

    def __enter__(self) -> OandaVenue:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # noqa: BLE001 - reported to start()'s caller
            _log.exception("the fake OANDA's trio loop failed")
            self._error = error
        finally:
            self._trio = None
            self._ready.set()

    async def _main(self) -> None:
        self._trio = trio.lowlevel.current_trio_token()
        self._trio_thread_id = threading.get_ident()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            admin = Config()
            admin.bind = [f"{self._host}:{self._admin_port}"]
            admin.errorlog = _log
            admin.graceful_timeout = 0
            binds = await nursery.start(_serve, self._admin_app, admin, trio.Event().wait)
            self._admin_port = _port_of(binds)
            await self._bring_up()
            if self._tick_interval is not None:
                nursery.start_soon(self._ticker, self._tick_interval)
            self._ready.set()
            await self._stop.wait()
            await self._bring_down()
            nursery.cancel_scope.cancel()

    async def _ticker(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            if self._ticking:
                self.exchange.step()

    async def _bring_up(self) -> None:
        if self._is_up:
            return
        assert self._nursery is not None
        config = Config()
        config.bind = [f"{self._host}:{self._port}"]
        config.errorlog = _log
        config.graceful_timeout = 0
        shutdown, done = trio.Event(), trio.Event()

        async def run(
            *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await _serve(self._app, config, shutdown.wait, task_status=task_status)
            finally:
                done.set()

        binds = await self._nursery.start(run)
        self._port = _port_of(binds)
        self._main_shutdown, self._main_done = shutdown, done
        self._is_up = True
        with self._faults.lock:
            self._faults.stalled.clear()
        self._hub.poke()

    async def _bring_down(self) -> None:
        if not self._is_up:
            return
        assert self._main_shutdown is not None and self._main_done is not None
        self._is_up = False
        await self._hub.drop("all")
        self._main_shutdown.set()
        await self._main_done.wait()

    def _on_event(self, event: OandaEvent) -> None:
        token = self._trio
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(self._hub.dispatch, event)

    def _in_trio(self, function: Callable[[], Awaitable[_T]]) -> _T:
        if self._trio is None:
            raise RuntimeError("the fake OANDA is not running")
        if threading.get_ident() == self._trio_thread_id:
            raise RuntimeError("call the knob from another thread, or use the admin endpoint")
        return trio.from_thread.run(function, trio_token=self._trio)

    def _in_trio_sync(self, function: Callable[[], _T]) -> _T:
        if self._trio is None:
            return function()
        if threading.get_ident() == self._trio_thread_id:
            return function()
        return trio.from_thread.run_sync(function, trio_token=self._trio)

    # -------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        return self._port

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def stream_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self._host}:{self._admin_port}/_admin"

    @property
    def account_id(self) -> str:
        return self.exchange.account_id

    @property
    def token(self) -> str:
        """The bearer token the venue accepts (never in its repr or logs)."""
        return self._token_value

    @property
    def is_up(self) -> bool:
        return self._is_up

    # ------------------------------------------------------------ knobs

    @_knob
    def set_price(self, instrument: str, price: Decimal) -> None:
        """Set ``instrument``'s mid price: a PRICE line, and the resting orders it triggers."""
        self.exchange.set_price(instrument, Decimal(price))

    @_knob
    def step(self, n: int = 1, instrument: str | None = None) -> None:
        """Move prices ``n`` ticks of the seeded walk (one instrument or all)."""
        self.exchange.step(n, instrument)

    @_knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or restart) the ``tick_interval`` moves: nothing fills behind a checker's back."""
        self._ticking = not frozen

    @_knob
    def stall_streams(self, kind: str = "all") -> None:
        """Keep ``kind`` streams open but write nothing, not even heartbeats, until up/clear/drop.

        What a half-dead connection looks like: the client's only way to
        notice is its own silence timeout. Lines produced meanwhile are kept
        and written once the stall ends (as a TCP buffer would).
        """
        _stream_kind(kind)
        with self._faults.lock:
            self._faults.stalled.add(kind)
        self._in_trio_sync(self._hub.poke)

    @_knob
    def drop_streams(self, kind: str = "all") -> int:
        """Cut ``kind`` streams at the TCP level (mid-response, no last chunk); returns how many."""
        _stream_kind(kind)
        return self._in_trio(lambda: self._drop_streams(kind))

    @_knob
    def rate_limit(self, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``count`` REST requests 429 with ``Retry-After``, without processing them."""
        self._faults.add(_RestFault("rate", count, status=429, retry_after=retry_after))

    @_knob
    def fail_requests(
        self, count: int = 1, status: int = 503, after: bool = False, path: str | None = None
    ) -> None:
        """Answer the next ``count`` REST requests ``status``, before or ``after`` processing them.

        ``after=True`` is the dangerous one: an order is placed but the client
        hears a 5xx. ``path`` narrows the fault to requests whose path
        contains it (``"/orders"``) or whose endpoint name (:meth:`calls`) it
        is (``"POST orders"``).
        """
        if not 500 <= status <= 599:
            raise ValueError(f"status must be a 5xx, not {status}")
        self._faults.add(_RestFault("fail", count, status=status, after=after, path=path))

    @_knob
    def lose_next_response(self, path: str | None = None) -> None:
        """Process the next (matching) REST request, then cut the connection without an answer.

        The outcome is unknown to the client: the order may well exist.
        ``path`` as for :meth:`fail_requests`.
        """
        self._faults.add(_RestFault("lose", 1, path=path))

    @_knob
    def duplicate_transactions(self, count: int = 1) -> None:
        """Write each of the next ``count`` streamed transactions twice."""
        with self._faults.lock:
            self._faults.duplicate += count

    @_knob
    def corrupt_next_line(self) -> None:
        """Write one malformed JSON line (a truncated copy) before the next streamed transaction."""
        with self._faults.lock:
            self._faults.corrupt += 1

    @_knob
    def hold_fills(self) -> None:
        """Queue the fills of resting orders that trigger from now on, until :meth:`release_fills`.

        A queued order stays PENDING (and cancellable: a cancel wins the race).
        """
        self.exchange.hold_fills()

    @_knob
    def release_fills(self) -> int:
        """Execute the queued fills at the prices that triggered them; returns how many filled."""
        return self.exchange.release_fills()

    @_knob
    def charge_financing(self) -> Json | None:
        """Book one DAILY_FINANCING on the open trades and return it (None unless ``financing=True``)."""
        return self.exchange.charge_financing()

    @_knob
    def down(self) -> None:
        """Cut every stream and refuse connections until :meth:`up` (the admin port stays up)."""
        self._in_trio(self._bring_down)

    @_knob
    def up(self) -> None:
        """Serve again on the same port (and end any stream stall)."""
        self._in_trio(self._bring_up)

    @_knob
    def clear_faults(self) -> None:
        """Forget every pending request fault, stall, duplicate and corruption (held fills stay held)."""
        self._faults.clear()
        self._in_trio_sync(self._hub.poke)

    # -------------------------------------------------------- inspection

    def quote(self, instrument: str) -> tuple[Decimal, Decimal]:
        """``(bid, ask)`` now."""
        return self.exchange.quote(instrument)

    def orders(self) -> list[Json]:
        """Every order ever, in id order, in OANDA's Order shape (``state``, ``clientExtensions``, ...)."""
        return self.exchange.orders()

    def transactions(self) -> list[Json]:
        """The whole transaction history, in id order."""
        return self.exchange.transactions()

    def positions(self) -> dict[str, Decimal]:
        """Net units per instrument (signed), flat instruments left out."""
        return self.exchange.positions()

    def balance(self) -> Decimal:
        return self.exchange.balance()

    def submissions(self) -> dict[str, int]:
        """How many placement requests (POST orders, replace PUTs) named each clientExtensions.id.

        Refused orders count; requests answered 429 or failed before
        processing never reached the venue and do not.
        """
        return self.exchange.submissions()

    def calls(self) -> dict[str, int]:
        """Requests per endpoint, every one counted (faulted ones too): ``"POST orders"``,
        ``"PUT orders/{id}/cancel"``, ``"GET transactions/stream"``."""
        return self._app.calls()

    def streams(self) -> list[Json]:
        """The open streams: kind, instruments, lines not yet written, whether stalled."""
        return self._in_trio_sync(self._hub.describe)

    # ------------------------------------------------------------- admin

    def _state(self) -> Json:
        return {
            "up": self._is_up,
            "account": self.account_id,
            "balance": self.balance(),
            "positions": self.positions(),
            "orders": self.orders(),
            "submissions": self.submissions(),
            "calls": self.calls(),
            "faults": self._faults.pending(),
            "streams": self._hub.describe(),
        }

    async def _admin(self, name: str, args: Json) -> AdminAnswer:
        knob = KNOBS.get(name)
        if knob is None:
            raise AdminError(f"unknown knob {name!r}", knobs=sorted(KNOBS))
        kwargs = knob.bind(args)
        override = _ADMIN_OVERRIDES.get(name)
        try:
            if override is not None:
                result = await override(self, **kwargs)
            else:
                result = getattr(self, name)(**kwargs)
        except KeyError as error:
            raise AdminError(f"{name}: unknown instrument {error.args[0]!r}") from error
        except (TypeError, ValueError) as error:
            raise AdminError(f"{name}: {error}") from error
        return AdminAnswer(result)

    @_admin_override("drop_streams")
    async def _drop_streams(self, kind: str = "all") -> int:
        return await self._hub.drop(_stream_kind(kind))

    @_admin_override("down")
    async def _down(self) -> None:
        await self._bring_down()

    @_admin_override("up")
    async def _up(self) -> None:
        await self._bring_up()

    @_admin_override("stall_streams")
    async def _stall(self, kind: str = "all") -> None:
        with self._faults.lock:
            self._faults.stalled.add(_stream_kind(kind))
        self._hub.poke()

    @_admin_override("clear_faults")
    async def _clear(self) -> None:
        self._faults.clear()
        self._hub.poke()


async def _serve(
    app: Any,
    config: Config,
    trigger: Callable[[], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve(app, config, shutdown_trigger=trigger, task_status=task_status)


KNOBS: dict[str, Knob] = {
    name: _describe_knob(getattr(OandaVenue, name)) for name in sorted(_KNOB_NAMES)
}
"""Every knob of :class:`OandaVenue` by name: its Python method and its admin endpoint."""

OandaVenue.KNOBS = KNOBS
