"""Run the fake Binance on loopback: hypercorn + trio on a background thread.

:class:`BinanceVenue` is the handle tests hold. ``start()`` runs two
hypercorn servers (``hypercorn.trio.serve``) on one trio loop in a daemon
thread: the venue itself (REST, WebSocket API, market and user streams) and
a small admin server on a port of its own, so the admin knobs keep working
while the venue is "down". Every knob is callable from any thread.

WebSocket keepalive. ASGI has no ping frames, so the venue swaps hypercorn's
HTTP/1.1 WebSocket stream class for a subclass (only its own connections
behave differently; the swap is idempotent and inert for other apps) that
sends a ping frame every ``ping_interval`` seconds, drops a connection whose
pings stay unanswered for ``pong_timeout`` seconds (an unsolicited pong does
not count, as on Binance), and can drop a connection at the TCP level with no
close frame, which is how "drop all streams" and "venue down" look to a client.
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import inspect
import logging
import math
import re
import threading
import time
import types
import typing
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import trio
from hypercorn.config import Config
from hypercorn.protocol import h11 as hypercorn_h11
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio import run as hypercorn_trio_run
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import WebsocketAcceptEvent
from wsproto.events import Event as WSEvent
from wsproto.events import Ping, Pong

from tradenode.sim import InstrumentSpec, SimConfig
from tradenode.sim._defaults import default_instruments, paper_sim_config
from tradenode.testing.venues._binance_app import (
    CORRUPTIONS,
    AdminAnswer,
    AdminError,
    Faults,
    Hub,
    build_admin_app,
    build_app,
)
from tradenode.testing.venues._binance_exchange import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    BinanceExchange,
    Json,
    OrderInfo,
    TradeInfo,
    VenueEvent,
)

__all__ = [
    "DEFAULT_BALANCES",
    "DEPRECATED_ALIASES",
    "INSPECTION",
    "KNOBS",
    "BinanceVenue",
    "Knob",
    "KnobParameter",
    "default_binance_config",
]

_log = logging.getLogger("tradenode.testing.venues.binance")
_T = TypeVar("_T")

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


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# ------------------------------------------------------ hypercorn extension


class _VenueConfig(Config):
    """Hypercorn settings plus the venue's keepalive rule and its live WebSocket streams."""

    def __init__(
        self, pong_timeout: float, pong_listeners: list[Callable[[], None]] | None = None
    ) -> None:
        super().__init__()
        self.pong_timeout = pong_timeout
        self.websockets: set[_KeepaliveWSStream] = set()
        self.pong_listeners = pong_listeners if pong_listeners is not None else []


class _KeepaliveWSStream(WSStream):
    """hypercorn's WebSocket stream with Binance's ping/pong rule and an abrupt drop."""

    _outstanding: dict[bytes, float]
    _ping_number: int

    async def _accept(self, message: WebsocketAcceptEvent) -> None:
        await super()._accept(message)
        config = self.config
        if not isinstance(config, _VenueConfig):
            return
        config.websockets.add(self)
        original = self.connection.events

        def watched() -> Generator[WSEvent, None, None]:
            for event in original():
                if isinstance(event, Pong):
                    self._on_pong(bytes(event.payload))
                yield event

        self.connection.events = watched  # type: ignore[method-assign]

    def _on_pong(self, payload: bytes) -> None:
        outstanding = getattr(self, "_outstanding", {})
        sent = outstanding.get(payload)
        if sent is not None:
            for key, when in list(outstanding.items()):
                if when <= sent:
                    del outstanding[key]
            config = self.config
            if isinstance(config, _VenueConfig):
                for listener in config.pong_listeners:
                    listener()

    async def handle(self, event: StreamEvent) -> None:
        await super().handle(event)
        if isinstance(event, StreamClosed) and isinstance(self.config, _VenueConfig):
            self.config.websockets.discard(self)

    async def _send_pings(self) -> None:
        config = self.config
        interval = config.websocket_ping_interval
        if not isinstance(config, _VenueConfig) or interval is None:
            await super()._send_pings()
            return
        self._outstanding = {}
        self._ping_number = 0
        next_ping = trio.current_time() + interval
        while not self.closed:
            now = trio.current_time()
            oldest = min(self._outstanding.values(), default=None)
            if oldest is not None and now - oldest >= config.pong_timeout:
                _log.info("dropping a WebSocket connection that did not answer its pings")
                await self.drop()
                return
            if now >= next_ping:
                self._ping_number += 1
                payload = str(self._ping_number).encode()
                self._outstanding[payload] = now
                await self._send_wsproto_event(Ping(payload=payload))
                next_ping = now + interval
                oldest = min(self._outstanding.values(), default=None)
            wake = next_ping if oldest is None else min(next_ping, oldest + config.pong_timeout)
            await trio.sleep_until(wake)

    async def drop(self) -> None:
        """Close the TCP connection under the stream, without a close frame."""
        if not self.closed:
            await self.send(StreamClosed(stream_id=self.stream_id))


class _SerializedCloseTCPServer(TCPServer):
    """hypercorn's TCP server, closing under its send lock.

    hypercorn sends EOF from ``_close`` without the lock its other sends
    hold, so a connection dropped while a frame is going out raises
    ``BusyResourceError`` and takes the whole server down. Closing under
    the lock (unless this task already holds it) serializes the two.
    """

    async def _close(self) -> None:
        lock = self.send_lock
        if lock.statistics().owner is trio.lowlevel.current_task():
            await super()._close()
            return
        async with lock:
            await super()._close()


def _install_keepalive_stream() -> None:
    hypercorn_h11.WSStream = _KeepaliveWSStream  # type: ignore[attr-defined]
    hypercorn_trio_run.TCPServer = _SerializedCloseTCPServer  # type: ignore[attr-defined]


# ------------------------------------------------------------------- knobs

_KNOB_NAMES: list[str] = []
_ADMIN_OVERRIDES: dict[str, Callable[..., Awaitable[Any]]] = {}

_F = TypeVar("_F", bound=Callable[..., Any])


def _knob(method: _F) -> _F:
    """Mark a :class:`BinanceVenue` method as a fault/price knob, served on the admin port
    under its own name with its own keyword names (see :data:`KNOBS`)."""
    _KNOB_NAMES.append(method.__name__)
    return method


def _admin_override(name: str) -> Callable[[_F], _F]:
    """What the admin port runs for knob ``name`` instead of the method itself.

    Only for knobs whose method blocks until the venue's trio loop has done
    the work: the admin is served on that loop, so it awaits the same work.
    """

    def register(function: _F) -> _F:
        _ADMIN_OVERRIDES[name] = function
        return function

    return register


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(value)
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    exact = Decimal(str(value))
    if not exact.is_finite():
        raise ValueError(value)
    return exact


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _as_strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(value)
    return list(value)


_CONVERTERS: Mapping[str, Callable[[Any], Any]] = {
    "bool": _as_bool,
    "int": _as_int,
    "float": _as_float,
    "decimal": _as_decimal,
    "str": _as_str,
    "list[str]": _as_strings,
}


@dataclasses.dataclass(frozen=True, slots=True)
class KnobParameter:
    """One keyword argument of a knob, as the admin endpoint accepts it in its JSON object."""

    name: str
    kind: str
    """``int``, ``float``, ``bool``, ``decimal``, ``str`` or ``list[str]``; ``?`` suffix: null allowed."""
    required: bool
    default: Any = None

    def describe(self) -> str:
        return self.name if self.required else f"{self.name}={self.default!r}"

    def convert(self, knob: str, value: Any) -> Any:
        """``value`` (decoded JSON) as the method's argument; ``AdminError`` if it is not one."""
        if value is None and self.kind.endswith("?"):
            return None
        try:
            return _CONVERTERS[self.kind.removesuffix("?")](value)
        except (TypeError, ValueError, ArithmeticError):
            raise self._wrong(knob, value) from None

    def _wrong(self, knob: str, value: Any) -> AdminError:
        expected = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "decimal": "a decimal number (string or number)",
            "str": "a string",
            "list[str]": "a list of strings",
        }[self.kind.removesuffix("?")]
        if self.kind.endswith("?"):
            expected += " or null"
        return AdminError(f"{knob}: {self.name} must be {expected}, not {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Knob:
    """One knob of :class:`BinanceVenue`: ``POST <admin_url>/<name>`` with its keyword arguments."""

    name: str
    summary: str
    """The first line of the method's docstring."""
    parameters: tuple[KnobParameter, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(p.describe() for p in self.parameters)})"

    def bind(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON arguments as keyword arguments, or ``AdminError`` naming what is wrong."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(args) - set(known))
        if unknown:
            accepted = ", ".join(known) or "none"
            raise AdminError(
                f"{self.name}: unknown argument(s) {', '.join(unknown)} (accepted: {accepted})"
            )
        missing = [p.name for p in self.parameters if p.required and p.name not in args]
        if missing:
            raise AdminError(f"{self.name}: missing required argument(s) {', '.join(missing)}")
        return {name: known[name].convert(self.name, value) for name, value in args.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "parameters": [
                {"name": p.name, "type": p.kind, "required": p.required}
                | ({} if p.required else {"default": p.default})
                for p in self.parameters
            ],
        }


def _kind_of(hint: Any) -> str:
    """A knob parameter's annotation as a :attr:`KnobParameter.kind`."""
    optional = ""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"knob parameters take one type or None, not {hint!r}")
        hint, optional = members[0], "?"
    if typing.get_origin(hint) in (collections.abc.Iterable, list) and typing.get_args(hint) == (
        str,
    ):
        return "list[str]" + optional
    kinds = {int: "int", float: "float", bool: "bool", Decimal: "decimal", str: "str"}
    if hint not in kinds:
        raise TypeError(f"no admin conversion for a knob parameter of type {hint!r}")
    return kinds[hint] + optional


def _describe_knob(method: Callable[..., Any]) -> Knob:
    hints = typing.get_type_hints(method)
    parameters = []
    for parameter in list(inspect.signature(method).parameters.values())[1:]:
        required = parameter.default is inspect.Parameter.empty
        parameters.append(
            KnobParameter(
                name=parameter.name,
                kind=_kind_of(hints[parameter.name]),
                required=required,
                default=None if required else parameter.default,
            )
        )
    doc = inspect.getdoc(method) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    if not summary:
        raise TypeError(f"knob {method.__name__} needs a docstring: its first line is its help")
    plain = re.sub(r":\w+:`~?\.?([^`]+)`", r"\1()", summary).replace("``", "")
    return Knob(method.__name__, plain, tuple(parameters))


# ------------------------------------------------------------------ handle


class BinanceVenue:
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
    """

    KNOBS: ClassVar[Mapping[str, Knob]]
    """Every knob by name (filled in below the class; the same object as :data:`KNOBS`)."""

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
        self._host = host
        self._port = port
        self._admin_port = admin_port
        self._tick_interval = tick_interval
        self._ticking = True
        self.tick_listeners: list[Callable[[bool], None]] = []
        """Called after each ``tick_interval`` tick with whether prices moved."""
        self._ping_interval = ping_interval
        self._pong_timeout = pong_timeout
        self.exchange = BinanceExchange(
            config,
            api_key=api_key,
            api_secret=api_secret,
            seed=seed,
            clock=clock or _wall_clock_ms,
            weight_limit=weight_limit,
            order_limit_10s=order_limit_10s,
            ban_seconds=ban_seconds,
            ed25519_public_keys=ed25519_public_keys,
        )
        self._faults = Faults()
        self._hub = Hub(self.exchange, self._faults)
        self._app = build_app(self.exchange, self._hub, self._faults)
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
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._main_shutdown: trio.Event | None = None
        self._main_done: trio.Event | None = None
        self._main_config: _VenueConfig | None = None
        self._is_up = False
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

    def start(self, timeout: float = 30.0) -> BinanceVenue:
        if self._thread is not None:
            raise RuntimeError("BinanceVenue already started")
        _install_keepalive_stream()
        self._thread = threading.Thread(target=self._run, name="fake-binance", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the fake Binance did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the fake Binance failed to start") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        thread, token, stop = self._thread, self._token, self._stop
        if thread is None:
            return
        if token is not None and stop is not None and thread.is_alive():
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(timeout)
        self._thread = None
        self._is_up = False

    def __enter__(self) -> BinanceVenue:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # noqa: BLE001 - reported to start()'s caller
            _log.exception("the fake Binance's trio loop failed")
            self._error = error
        finally:
            self._token = None
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._trio_thread_id = threading.get_ident()
        self._stop = trio.Event()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            admin = Config()
            admin.bind = [f"{self._host}:{self._admin_port}"]
            admin.errorlog = _log
            admin.graceful_timeout = 0
            binds = await nursery.start(self._serve, self._admin_app, admin, trio.Event().wait)
            self._admin_port = _port_of(binds)
            await self._bring_up()
            if self._tick_interval is not None:
                nursery.start_soon(self._ticker, self._tick_interval)
            self._ready.set()
            await self._stop.wait()
            await self._bring_down()
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _serve(
        app: Any,
        config: Config,
        trigger: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await serve(app, config, shutdown_trigger=trigger, task_status=task_status)

    async def _ticker(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            moved = self._ticking
            if moved:
                self.exchange.step()
            for listener in self.tick_listeners:
                listener(moved)

    async def _bring_up(self) -> None:
        if self._is_up:
            return
        assert self._nursery is not None
        config = _VenueConfig(self._pong_timeout, self.pong_listeners)
        config.bind = [f"{self._host}:{self._port}"]
        config.errorlog = _log
        config.graceful_timeout = 0
        config.websocket_ping_interval = self._ping_interval
        shutdown, done = trio.Event(), trio.Event()

        async def run(
            *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await self._serve(self._app, config, shutdown.wait, task_status=task_status)
            finally:
                done.set()

        binds = await self._nursery.start(run)
        self._port = _port_of(binds)
        self._main_shutdown, self._main_done, self._main_config = shutdown, done, config
        self._is_up = True

    async def _bring_down(self) -> None:
        if not self._is_up:
            return
        assert self._main_shutdown is not None and self._main_done is not None
        self._is_up = False
        await self._drop_streams()
        self._main_shutdown.set()
        await self._main_done.wait()

    def _on_event(self, event: VenueEvent) -> None:
        token = self._token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(self._hub.dispatch, event)

    def _in_trio(self, function: Callable[[], Awaitable[_T]]) -> _T:
        if self._token is None:
            raise RuntimeError("the fake Binance is not running")
        if threading.get_ident() == self._trio_thread_id:
            raise RuntimeError("call the knob from another thread, or use the admin endpoint")
        return trio.from_thread.run(function, trio_token=self._token)

    def _in_trio_sync(self, function: Callable[[], _T]) -> _T:
        if self._token is None:
            raise RuntimeError("the fake Binance is not running")
        if threading.get_ident() == self._trio_thread_id:
            return function()
        return trio.from_thread.run_sync(function, trio_token=self._token)

    # --------------------------------------------------------------- URLs

    @property
    def port(self) -> int:
        return self._port

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
    def admin_url(self) -> str:
        return f"http://{self._host}:{self._admin_port}/_admin"

    @property
    def api_key(self) -> str:
        return self.exchange.api_key

    @property
    def is_up(self) -> bool:
        return self._is_up

    # --------------------------------------------------------------- knobs
    #
    # Every method marked @_knob is also ``POST <admin_url>/<method name>``
    # with a JSON object of its keyword arguments (see KNOBS): one table, so
    # the Python and HTTP names cannot drift apart.

    @_knob
    def step(self, n: int = 1, symbol: str | None = None) -> None:
        """Move prices ``n`` ticks (one symbol or all): bookTicker updates, maybe fills."""
        self.exchange.step(n, symbol)

    @_knob
    def set_price(self, symbol: str, price: Decimal) -> None:
        """Set ``symbol``'s price: a bookTicker update, and the fills it triggers."""
        self.exchange.set_price(symbol, Decimal(price))

    @_knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or, ``frozen=False``, restart) the ``tick_interval`` price moves.

        Resting orders then stop filling by themselves: a checker can compare
        the account with a node that has stopped, knowing nothing changed
        behind its back.
        """
        self._ticking = not frozen

    @_knob
    def deposit(self, asset: str, amount: Decimal) -> None:
        """Credit ``amount`` of ``asset`` (negative debits): ``balanceUpdate`` on the user streams."""
        self.exchange.deposit(asset, Decimal(amount))

    @_knob
    def drop_streams(self) -> int:
        """Close every WebSocket (WS API, user and market streams) at the TCP level; returns how many."""
        return self._in_trio(self._drop_streams)

    @_knob
    def down(self, seconds: float | None = None) -> None:
        """Refuse new connections and cut existing ones, until :meth:`up` (or for ``seconds``)."""
        self._in_trio(lambda: self._down(seconds))

    @_knob
    def up(self) -> None:
        """Serve again, on the same port."""
        self._in_trio(self._bring_up)

    @_knob
    def delay_requests(
        self, n: int, seconds: float, *, endpoints: Iterable[str] | None = None
    ) -> None:
        """Hold the next ``n`` requests ``seconds`` before processing and answering them.

        ``endpoints`` narrows the knob to some requests, named ``"POST order"``
        (REST: method and the path after ``/api/v3/``) or ``"order.place"``
        (WebSocket API method).
        """
        self._faults.delay_requests(n, seconds, endpoints)

    @_knob
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

    @_knob
    def register_ed25519_key(self, api_key: str, public_key_pem: str) -> None:
        """Let ``api_key`` sign with the Ed25519 key whose public half is ``public_key_pem``.

        The key then signs REST and WebSocket API requests (base64 Ed25519
        signatures) and may ``session.logon``. Private keys never reach the venue.
        """
        self.exchange.register_ed25519_key(api_key, public_key_pem)

    @_knob
    def rate_limit(self, n: int = 1, retry_after: int = 5) -> None:
        """Answer the next ``n`` requests 429 ``-1003`` with ``Retry-After: retry_after``."""
        self.exchange.force_429(n, retry_after)

    @_knob
    def ban(self, seconds: int) -> None:
        """Answer 418 with ``Retry-After`` until ``seconds`` have passed on the venue's clock."""
        self.exchange.ban(seconds)

    @_knob
    def clear_faults(self) -> None:
        """Forget every pending request and event fault, 429 and ban (held events stay held)."""
        self.exchange.clear_limits()
        self._faults.clear()

    @_knob
    def duplicate_events(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` user events twice."""
        self._faults.add_event_faults(duplicate=n)

    @_knob
    def reorder_events(self, n: int = 2) -> None:
        """Hold the next ``n`` user events, then release them in reverse order."""
        self._faults.add_event_faults(reorder=n)

    @_knob
    def release_events(self) -> None:
        """Release, in reverse order, user events held by :meth:`reorder_events` so far."""
        self._in_trio_sync(self._hub.release_held)

    @_knob
    def corrupt_next_event(self, kind: str = "invalid_json") -> None:
        """Mangle the next user event: ``invalid_json``, ``unknown_event`` or ``missing_field``."""
        if kind not in CORRUPTIONS:
            raise ValueError(f"kind must be one of {', '.join(CORRUPTIONS)}, not {kind!r}")
        self._faults.add_event_faults(corrupt=kind)

    @_knob
    def terminate_user_streams(self) -> int:
        """Send ``eventStreamTerminated`` on every user data subscription and end them."""
        return self._in_trio_sync(self._hub.terminate_user_streams)

    @_knob
    def server_shutdown(self) -> None:
        """Send ``serverShutdown`` on every WebSocket connection."""
        self._in_trio_sync(self._hub.server_shutdown)

    @_knob
    def expire_listen_key(self) -> str | None:
        """Expire the legacy listenKey: ``listenKeyExpired`` on its streams, -1125 afterwards."""
        return self._in_trio_sync(self._hub.expire_listen_key)

    # ---------------------------------------------------------- inspection

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

    async def _admin(self, name: str, args: Json) -> AdminAnswer:
        """``POST <admin_url>/<name>``: one knob of :data:`KNOBS` (or a deprecated alias)."""
        canonical = DEPRECATED_ALIASES.get(name, name)
        knob = KNOBS.get(canonical)
        if knob is None:
            raise AdminError(
                f"unknown knob {name!r}",
                knobs=sorted(KNOBS),
                deprecated_aliases=dict(sorted(DEPRECATED_ALIASES.items())),
            )
        deprecated = None
        if canonical != name:
            deprecated = f"{name!r} is a deprecated alias of {canonical!r}"
            _log.warning("admin knob %r is deprecated: use %r", name, canonical)
        kwargs = knob.bind(args)
        override = _ADMIN_OVERRIDES.get(canonical)
        try:
            if override is not None:
                result = await override(self, **kwargs)
            else:
                result = getattr(self, canonical)(**kwargs)
        except KeyError as error:
            raise AdminError(f"{canonical}: unknown {_key_name(knob)} {error.args[0]!r}") from error
        except (TypeError, ValueError) as error:
            raise AdminError(f"{canonical}: {error}") from error
        return AdminAnswer(result, deprecated)

    @_admin_override("drop_streams")
    async def _drop_streams(self) -> int:
        config = self._main_config
        if config is None:
            return 0
        streams = list(config.websockets)
        for stream in streams:
            await stream.drop()
        return len(streams)

    @_admin_override("down")
    async def _down(self, seconds: float | None = None) -> None:
        await self._bring_down()
        if seconds is not None:
            assert self._nursery is not None
            self._nursery.start_soon(self._up_after, seconds)

    @_admin_override("up")
    async def _up(self) -> None:
        await self._bring_up()

    async def _up_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        await self._bring_up()


def _key_name(knob: Knob) -> str:
    """What a ``KeyError`` from ``knob`` is about: its symbol or asset argument."""
    names = [p.name for p in knob.parameters if p.name in ("symbol", "asset")]
    return names[0] if names else "name"


KNOBS: Mapping[str, Knob] = {
    name: _describe_knob(getattr(BinanceVenue, name)) for name in sorted(_KNOB_NAMES)
}
"""Every knob of :class:`BinanceVenue` by name: its Python method and its admin endpoint."""

BinanceVenue.KNOBS = KNOBS

INSPECTION = frozenset({"start", "stop", "balances", "orders", "submissions", "trades", "calls"})
"""The public methods of :class:`BinanceVenue` that are not knobs (lifecycle and inspection)."""

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


def _port_of(binds: list[str]) -> int:
    return int(binds[0].rsplit(":", 1)[1])
