"""What every local fake venue is as a running thing: a trio loop on a thread, serving on loopback.

:class:`LoopbackVenue` is the base of the handles tests hold
(``BinanceVenue``, ``OandaVenue``, ...). ``start()`` runs one trio loop in a
daemon thread with two servers on it: the venue itself (by default a
hypercorn server of the subclass's ASGI app; a raw-socket venue overrides
:meth:`LoopbackVenue._serve_venue`) and a small admin server on a port of
its own, which stays up while the venue is "down" so the knobs keep
working. ``down()``/``up()`` stop and restart the venue's server on the same
port. Knobs (:mod:`._knobs`) are methods callable from any thread, and the
admin port's ``POST <admin_url>/<knob>``.

WebSocket keepalive. ASGI has no ping frames, so the venues swap hypercorn's
HTTP/1.1 WebSocket stream class for a subclass (only a venue's own
connections behave differently; the swap is idempotent and inert for other
apps) that sends a ping frame every ``websocket_ping_interval`` seconds,
drops a connection whose pings stay unanswered for ``pong_timeout`` seconds
(an unsolicited pong does not count, as on Binance), and can drop a
connection at the TCP level with no close frame, which is how "drop all
streams" and "venue down" look to a client.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import trio
from hypercorn.config import Config
from hypercorn.protocol import h11 as hypercorn_h11
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import StreamClosed
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio import run as hypercorn_trio_run
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import ASGISendEvent, WebsocketAcceptEvent
from wsproto.events import Event as WSEvent
from wsproto.events import Ping, Pong

from tradenode.testing.venues._changes import ChangeSignal
from tradenode.testing.venues._knobs import (
    AdminAnswer,
    AdminError,
    Knob,
    admin_overrides,
    build_admin_app,
    key_name,
)
from tradenode.testing.venues._tls import TlsFiles, make_tls_files

__all__ = [
    "ABORT",
    "KeepaliveConfig",
    "LoopbackVenue",
    "install_abortable_http",
    "install_keepalive_stream",
    "wall_clock_ms",
]

_T = TypeVar("_T")
Json = dict[str, Any]


def wall_clock_ms() -> int:
    """Epoch milliseconds now: a venue's clock unless a test gives it one."""
    return time.time_ns() // 1_000_000


# ------------------------------------------------------ hypercorn extension


class KeepaliveConfig(Config):
    """Hypercorn settings plus the venue's keepalive rule and its live WebSocket streams."""

    def __init__(
        self, pong_timeout: float, pong_listeners: list[Callable[[], None]] | None = None
    ) -> None:
        super().__init__()
        self.pong_timeout = pong_timeout
        self.websockets: set[_KeepaliveWSStream] = set()
        self.pong_listeners = pong_listeners if pong_listeners is not None else []


class _KeepaliveWSStream(WSStream):
    """hypercorn's WebSocket stream with a ping/pong rule and an abrupt drop."""

    _outstanding: dict[bytes, float]
    _ping_number: int

    async def _accept(self, message: WebsocketAcceptEvent) -> None:
        await super()._accept(message)
        config = self.config
        if not isinstance(config, KeepaliveConfig):
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
            if isinstance(config, KeepaliveConfig):
                for listener in config.pong_listeners:
                    listener()

    async def handle(self, event: StreamEvent) -> None:
        await super().handle(event)
        if isinstance(event, StreamClosed) and isinstance(self.config, KeepaliveConfig):
            self.config.websockets.discard(self)

    async def _send_pings(self) -> None:
        config = self.config
        interval = config.websocket_ping_interval
        if not isinstance(config, KeepaliveConfig) or interval is None:
            await super()._send_pings()
            return
        self._outstanding = {}
        self._ping_number = 0
        next_ping = trio.current_time() + interval
        while not self.closed:
            now = trio.current_time()
            oldest = min(self._outstanding.values(), default=None)
            if oldest is not None and now - oldest >= config.pong_timeout:
                logging.getLogger(__name__).info(
                    "dropping a WebSocket connection that did not answer its pings"
                )
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


ABORT = "tradenode.abort"
"""The extra ASGI message that cuts the connection under a response (a lost answer)."""


class _AbortableHTTPStream(HTTPStream):
    """hypercorn's HTTP stream, plus ``{"type": "tradenode.abort"}``: close the TCP connection now."""

    async def app_send(self, message: ASGISendEvent | None) -> None:
        if message is not None and dict(message).get("type") == ABORT:
            if not self.closed:
                self.state = ASGIHTTPState.CLOSED
                await self.send(StreamClosed(stream_id=self.stream_id))
            return
        await super().app_send(message)


def install_abortable_http() -> None:
    """Swap hypercorn's HTTP/1.1 stream class (idempotent, inert for apps that never abort)."""
    hypercorn_h11.HTTPStream = _AbortableHTTPStream  # type: ignore[attr-defined]


def install_keepalive_stream() -> None:
    """Swap in the keepalive WebSocket stream and the serialized close (idempotent)."""
    hypercorn_h11.WSStream = _KeepaliveWSStream  # type: ignore[attr-defined]
    hypercorn_trio_run.TCPServer = _SerializedCloseTCPServer  # type: ignore[attr-defined]


async def serve_asgi(
    app: Any,
    config: Config,
    trigger: Callable[[], Awaitable[None]],
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """hypercorn's trio server for ``app`` until ``trigger`` returns; starts with its binds."""
    await serve(app, config, shutdown_trigger=trigger, task_status=task_status)


def _port_of(binds: list[str]) -> int:
    return int(binds[0].rsplit(":", 1)[1])


# ------------------------------------------------------------------ handle


class LoopbackVenue:
    """A local venue's lifecycle: see the module docstring.

    A subclass sets :attr:`VENUE_NAME` (``"Binance"``: "the fake Binance" in
    errors, ``fake-binance`` as the thread's name), builds ``self._app`` (its
    ASGI app) before calling :meth:`start`, marks its knobs with
    :func:`~._knobs.knob` and fills in :attr:`KNOBS` with
    :func:`~._knobs.collect_knobs` below the class. Hooks: :meth:`_venue_config`
    (hypercorn settings, e.g. a :class:`KeepaliveConfig`), :meth:`_serve_venue`
    (a venue that is not an ASGI app), :meth:`_after_up`, :meth:`_before_down`
    (drop the streams), :meth:`_tick`, :meth:`_state` and :meth:`_admin_views`.
    """

    VENUE_NAME: ClassVar[str] = "venue"
    KNOBS: ClassVar[Mapping[str, Knob]] = {}
    """Every knob by name (set below each subclass)."""
    DEPRECATED_ALIASES: ClassVar[Mapping[str, str]] = {}
    """Old admin names still accepted, with a warning, for the knob they now name."""

    _app: Any

    def __init__(
        self,
        *,
        host: str,
        port: int,
        admin_port: int,
        tick_interval: float | None,
        log: logging.Logger,
        tls: bool = False,
    ) -> None:
        self._host = host
        self._tls = tls
        self._tls_dir: Path | None = None
        self._tls_files: TlsFiles | None = None
        self._port = port
        self._admin_port = admin_port
        self._tick_interval = tick_interval
        self._ticking = True
        self._log = log
        self._thread: threading.Thread | None = None
        self._trio_thread_id: int | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._venue_served: Config | None = None
        """The settings the venue's server runs with (its WebSockets, if keepalive)."""
        self._venue_shutdown: trio.Event | None = None
        self._venue_done: trio.Event | None = None
        self._is_up = False
        self._changes = ChangeSignal(f"the fake {self.VENUE_NAME}")
        """Noted by the subclass wherever a state its tests wait for may change."""

    # ---------------------------------------------------------- waiting

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Block until ``predicate()`` holds, re-checked whenever the venue notes a change
        (which changes a venue notes: its class docstring); ``TimeoutError`` naming
        ``what`` if it does not hold within ``timeout`` seconds. The predicate may call
        the venue's inspection methods, those that ask its loop included.

        A fake notes only the changes its own tests have needed (OKX, Binance, IBKR
        and Alpaca; the fake Coinbase and OANDA note none yet): on a fake that does
        not note a change, a wait for it checks once and then runs to its timeout.
        Add the fake's ``self._changes.note()`` where that state changes first."""
        self._changes.wait_for(predicate, timeout, what)

    # ---------------------------------------------------------- lifecycle

    def start(self, timeout: float = 30.0) -> Self:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._prepare()
        self._thread = threading.Thread(
            target=self._run, name=f"fake-{self.VENUE_NAME.lower()}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the fake {self.VENUE_NAME} did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"the fake {self.VENUE_NAME} failed to start") from self._error
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
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = self._tls_files = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _prepare(self) -> None:
        """Process-wide setup before the loop starts (idempotent): the keepalive
        WebSocket stream and the abortable HTTP stream."""
        install_keepalive_stream()
        install_abortable_http()
        if self._tls and self._tls_files is None:
            prefix = f"tradenode-{self.VENUE_NAME.lower()}-tls-"
            self._tls_dir = Path(tempfile.mkdtemp(prefix=prefix))
            self._tls_files = make_tls_files(self._tls_dir, self._host)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as error:  # noqa: BLE001 - reported to start()'s caller
            self._log.exception("the fake %s's trio loop failed", self.VENUE_NAME)
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
            admin.errorlog = self._log
            admin.graceful_timeout = 0
            admin_app = build_admin_app(self._admin, self._admin_views())
            binds = await nursery.start(serve_asgi, admin_app, admin, trio.Event().wait)
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
            self._tick()

    def _tick(self) -> None:
        """One ``tick_interval`` tick (default: nothing)."""

    async def _bring_up(self) -> None:
        if self._is_up:
            return
        assert self._nursery is not None
        shutdown, done = trio.Event(), trio.Event()

        async def run(
            *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await self._serve_venue(shutdown.wait, task_status=task_status)
            finally:
                done.set()

        binds = await self._nursery.start(run)
        self._port = _port_of(binds)
        self._venue_shutdown, self._venue_done = shutdown, done
        self._is_up = True
        await self._after_up()

    async def _bring_down(self) -> None:
        if not self._is_up:
            return
        assert self._venue_shutdown is not None and self._venue_done is not None
        self._is_up = False
        await self._before_down()
        self._venue_shutdown.set()
        await self._venue_done.wait()

    async def _serve_venue(
        self,
        trigger: Callable[[], Awaitable[None]],
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the venue until ``trigger`` returns; ``task_status.started(["host:port"])``.

        Default: hypercorn serving ``self._app`` with :meth:`_venue_config`.
        """
        config = self._venue_config()
        self._venue_served = config
        if self._tls_files is not None:
            config.certfile = str(self._tls_files.cert_file)
            config.keyfile = str(self._tls_files.key_file)
        config.bind = [f"{self._host}:{self._port}"]
        config.errorlog = self._log
        config.graceful_timeout = 0
        await serve_asgi(self._app, config, trigger, task_status=task_status)

    def _venue_config(self) -> Config:
        """The venue server's hypercorn settings (bind and logging are set after)."""
        return Config()

    async def _after_up(self) -> None:
        """Runs on the loop once the venue serves again (default: nothing)."""

    async def _before_down(self) -> None:
        """Runs on the loop before the venue's server stops: drop its streams (default: nothing)."""

    async def _drop_websockets(self) -> int:
        """Cut every WebSocket of the venue's server at the TCP level (no close frame),
        as a network failure would; returns how many. Needs a :class:`KeepaliveConfig`."""
        config = self._venue_served
        if not isinstance(config, KeepaliveConfig):
            return 0
        streams = list(config.websockets)
        for stream in streams:
            await stream.drop()
        return len(streams)

    def _post(self, function: Callable[..., object], *args: object) -> None:
        """Run ``function(*args)`` on the venue's loop soon, in call order (events to streams)."""
        token = self._token
        if token is None:
            return
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(function, *args)

    def _in_trio(self, function: Callable[[], Awaitable[_T]]) -> _T:
        if self._token is None:
            raise RuntimeError(f"the fake {self.VENUE_NAME} is not running")
        if threading.get_ident() == self._trio_thread_id:
            raise RuntimeError("call the knob from another thread, or use the admin endpoint")
        return trio.from_thread.run(function, trio_token=self._token)

    def _in_trio_sync(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the venue's loop (directly when no loop runs: nothing can race it)."""
        if self._token is None or threading.get_ident() == self._trio_thread_id:
            return function()
        return trio.from_thread.run_sync(function, trio_token=self._token)

    # --------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        return self._port

    @property
    def ca_file(self) -> str | None:
        """With ``tls``, the CA certificate that signed the venue's (once started); else None."""
        return None if self._tls_files is None else str(self._tls_files.ca_file)

    def _url(self, scheme: str, path: str = "") -> str:
        """``http``/``ws`` URL of the venue's server (``https``/``wss`` with ``tls``)."""
        secure = {"http": "https", "ws": "wss"}[scheme] if self._tls else scheme
        return f"{secure}://{self._host}:{self._port}{path}"

    @property
    def admin_url(self) -> str:
        return f"http://{self._host}:{self._admin_port}/_admin"

    @property
    def is_up(self) -> bool:
        return self._is_up

    # -------------------------------------------------------------- admin

    def _state(self) -> Json:
        """``GET <admin_url>/state``: the venue's books as a third party sees them."""
        return {"up": self._is_up}

    def _admin_views(self) -> Mapping[str, Callable[[], Any]]:
        """The admin port's read-only ``GET`` pages (default: state and knobs)."""
        return {
            "state": self._state,
            "knobs": lambda: [knob.to_dict() for knob in type(self).KNOBS.values()],
        }

    async def _admin(self, name: str, args: Json) -> AdminAnswer:
        """``POST <admin_url>/<name>``: one knob of :attr:`KNOBS` (or a deprecated alias)."""
        knobs, aliases = type(self).KNOBS, type(self).DEPRECATED_ALIASES
        canonical = aliases.get(name, name)
        knob = knobs.get(canonical)
        if knob is None:
            extra: dict[str, Any] = {"knobs": sorted(knobs)}
            if aliases:
                extra["deprecated_aliases"] = dict(sorted(aliases.items()))
            raise AdminError(f"unknown knob {name!r}", **extra)
        deprecated = None
        if canonical != name:
            deprecated = f"{name!r} is a deprecated alias of {canonical!r}"
            self._log.warning("admin knob %r is deprecated: use %r", name, canonical)
        kwargs = knob.bind(args)
        override = admin_overrides(type(self)).get(canonical)
        try:
            if override is not None:
                result = await getattr(self, override)(**kwargs)
            else:
                result = getattr(self, canonical)(**kwargs)
        except KeyError as error:
            raise AdminError(f"{canonical}: unknown {key_name(knob)} {error.args[0]!r}") from error
        except (TypeError, ValueError) as error:
            raise AdminError(f"{canonical}: {error}") from error
        return AdminAnswer(result, deprecated)
