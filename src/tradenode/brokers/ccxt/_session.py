"""One ccxt exchange object on the incarnation's asyncio loop, and its streams.

ccxt (``async_support``, ``pro``) is asyncio-only. As the IB adapter does with
ib_async, each broker incarnation owns an asyncio loop on its own thread
(``AsyncioThread``) and builds a fresh exchange object on it; ``aclose``
closes it (aiohttp's session, ccxt.pro's sockets) before the loop ends. The
actor never touches the exchange: it starts coroutines on the loop and gets
their outcome back as messages.

How the object is configured, and why:

- ``enableRateLimit: False``. ccxt's throttler queues a call until its token
  bucket allows it, after the broker checked the request's deadline: a
  placement could leave past its deadline, which the breaker's acceptance
  window forbids. The breaker paces instead (``breaker.rate_per_second``),
  with the calls per second this session made reported against ccxt's own
  ``rateLimit`` (milliseconds per request) on every reply.
- ``options.maxRetriesOnFailure: 0``: ccxt's own retry re-sends any call that
  failed with a ``NetworkError`` or ``OperationFailed``, an order creation
  included; an answer lost on the way would become a second order.
- ``milliseconds`` (and ``seconds``, ``microseconds``) read the node's clock:
  what ccxt stamps into signed requests (Binance's ``timestamp``, OKX's
  ``OK-ACCESS-TIMESTAMP`` and its WebSocket login) is the clock request
  deadlines are on, so the acceptance window holds.
- OKX: orders go to ``POST /api/v5/trade/order`` (``createOrder:
  privatePostTradeOrder``), not ccxt's default one-element batch.
- ccxt.pro decodes a WebSocket text frame and hands it to the exchange's
  handler inside an asyncio done-callback: an exception there (a frame that
  is not JSON, or a message its parser chokes on) would end the socket's
  receive loop silently. The class is subclassed so every client's handler
  is guarded: such a frame is reported as :class:`Malformed` and skipped.
- ccxt logs every request and response at DEBUG with their headers, which
  carry the API key (and OKX's passphrase): its ``ccxt`` logger is kept at
  INFO or above, so no secret reaches a log, whatever the root level.

The session never reconnects: a stream that fails is reported once as
:class:`ConnectionLost` and the broker fails; its next incarnation builds
everything anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..._exceptions import BrokerConnectionError, ConfigError
from ._codec import CcxtCallError, ErrorKind
from ._endpoints import CcxtApi, client_id_way
from ._settings import CcxtSettings, redirect_urls

__all__ = [
    "ConnectionLost",
    "Malformed",
    "OrdersPushed",
    "QuotesPushed",
    "SessionEvent",
    "TradesPushed",
]

logger = logging.getLogger("tradenode.brokers.ccxt")


@dataclass(frozen=True, slots=True)
class OrdersPushed:
    """What one ``watch_orders`` call returned (raw unified orders)."""

    orders: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class TradesPushed:
    """What one ``watch_my_trades`` call returned (raw unified trades)."""

    trades: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class QuotesPushed:
    """What one ``watch_bids_asks`` call returned (raw unified tickers)."""

    tickers: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Malformed:
    """A stream frame that could not be read (skipped)."""

    what: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


SessionEvent = OrdersPushed | TradesPushed | QuotesPushed | Malformed | ConnectionLost


def _guarded_class(base: type[Any], on_malformed: Callable[[str], None]) -> type[Any]:
    """``base`` with every WebSocket client's frame handler guarded (see the module doc)."""

    def client(self: Any, url: str) -> Any:
        made = base.client(self, url)
        if not getattr(made, "_tradenode_guarded", False):
            handle = made.handle_text_or_binary_message

            def guarded(data: Any) -> None:
                try:
                    handle(data)
                except Exception as exc:  # noqa: BLE001 (the venue's frame, whatever ccxt raised on it: counted)
                    text = data if isinstance(data, str) else repr(data)
                    on_malformed(f"{type(exc).__name__}: {exc}; frame {text[:120]!r}")

            made.handle_text_or_binary_message = guarded
            made._tradenode_guarded = True
        return made

    return type(f"Guarded{base.__name__}", (base,), {"client": client})


class CcxtSession:
    """The exchange object, its markets and its streams (built on the loop's thread)."""

    def __init__(
        self,
        name: str,
        settings: CcxtSettings,
        *,
        milliseconds: Callable[[], int],
        deliver: Callable[[SessionEvent], None],
    ) -> None:
        self.name = name
        self.settings = settings
        ccxt_logger = logging.getLogger("ccxt")
        if ccxt_logger.getEffectiveLevel() < logging.INFO:
            ccxt_logger.setLevel(logging.INFO)
        self._deliver = deliver
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False
        self.streaming = False
        self.quoting = False
        """ccxt.pro streams this exchange's top of book (``watchBidsAsks``)."""
        self._quoted: set[str] = set()
        import ccxt.async_support  # type: ignore[import-untyped]  # noqa: PLC0415 (heavy; built on the loop)
        import ccxt.pro  # type: ignore[import-untyped]  # noqa: PLC0415

        exchange_id = settings.exchange
        pro = getattr(ccxt.pro, exchange_id, None)
        if settings.streaming == "auto" and pro is not None:
            flags = pro().has
            self.streaming = bool(flags.get("watchOrders") and flags.get("watchMyTrades"))
            self.quoting = self.streaming and flags.get("watchBidsAsks") is True
        base: type[Any] = (
            pro if self.streaming and pro is not None else getattr(ccxt.async_support, exchange_id)
        )
        cls = _guarded_class(base, lambda what: deliver(Malformed(what)))
        config: dict[str, Any] = {
            "enableRateLimit": False,
            "timeout": int(settings.request_timeout * 1000),
        }
        for key, secret in (
            ("apiKey", settings.api_key),
            ("secret", settings.secret),
            ("password", settings.password),
        ):
            if secret is not None:
                config[key] = secret.get_secret_value()
        if settings.uid:
            config["uid"] = settings.uid
        exchange = cls(config)
        options = dict(settings.options)
        if exchange_id == "okx":
            options.setdefault("createOrder", "privatePostTradeOrder")
        options["maxRetriesOnFailure"] = 0
        exchange.options.update(options)
        exchange.milliseconds = milliseconds
        exchange.seconds = lambda: milliseconds() // 1000
        exchange.microseconds = lambda: milliseconds() * 1000
        if settings.sandbox:
            if not exchange.urls.get("test"):
                raise ConfigError(
                    f"ccxt's {exchange_id} has no sandbox URLs (urls['test'])", key="sandbox"
                )
            exchange.set_sandbox_mode(True)
        if settings.rest_url or settings.ws_url:
            exchange.urls["api"] = redirect_urls(
                exchange.urls["api"], settings.rest_url, settings.ws_url
            )
        if settings.api_urls:
            urls = exchange.urls["api"]
            if isinstance(urls, dict):
                urls.update(settings.api_urls)
            else:
                exchange.urls["api"] = dict(settings.api_urls)
        self.exchange = exchange
        self.api = CcxtApi(
            exchange, name=name, way=client_id_way(exchange_id, settings.client_id_param)
        )

    def __repr__(self) -> str:
        return f"CcxtSession({self.name!r}, {self.settings.exchange})"

    @property
    def rate_limit_per_second(self) -> float:
        """ccxt's own pacing for this class (``rateLimit`` ms per request) as a rate."""
        ms = float(self.exchange.rateLimit or 0)
        return 1000.0 / ms if ms > 0 else 0.0

    async def open(self) -> None:
        """Load the markets (the first request: bad keys or a down venue show here)."""
        try:
            await self.api.load_markets()
        except CcxtCallError as exc:
            if exc.kind is ErrorKind.REJECTED:
                raise ConfigError(
                    f"venue {self.name}: ccxt's {self.settings.exchange} refused to load its "
                    f"markets: {exc.reason}",
                    key="ccxt",
                ) from exc
            raise BrokerConnectionError(
                f"loading markets failed: {exc.reason}", broker=self.name
            ) from exc
        markets = self.exchange.markets or {}
        unknown = [s for s in self.settings.symbols if s not in markets]
        if unknown:
            raise ConfigError(
                f"venue {self.name}: ccxt's {self.settings.exchange} has no market "
                f"{', '.join(unknown)}",
                key="ccxt.symbols",
            )

    def start_streams(self) -> None:
        """Watch orders and trades (ccxt.pro), each reported as it arrives; the first
        failure is :class:`ConnectionLost`. Called on the loop's thread."""
        if not self.streaming:
            return
        for watch, wrap in (
            (self.api.watch_orders, OrdersPushed),
            (self.api.watch_my_trades, TradesPushed),
        ):
            self._tasks.append(
                asyncio.get_running_loop().create_task(self._watch(watch, _listed(wrap)))
            )

    def start_quotes(self, symbols: list[str]) -> None:
        """Stream the top of book of those of ``symbols`` not streamed yet (one
        ``watch_bids_asks`` loop per call; the first failure is :class:`ConnectionLost`).
        Called on the loop's thread."""
        fresh = [symbol for symbol in symbols if symbol not in self._quoted]
        if not self.quoting or not fresh:
            return
        self._quoted.update(fresh)

        async def watch() -> Any:
            return await self.api.watch_bids_asks(fresh)

        self._tasks.append(asyncio.get_running_loop().create_task(self._watch(watch, _tickers)))

    async def _watch(self, watch: Callable[[], Any], unpack: Callable[[Any], SessionEvent]) -> None:
        try:
            while not self.closed:
                self._deliver(unpack(await watch()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (converted at the boundary: the stream is lost)
            if not self.closed:
                self.closed = True
                self._deliver(ConnectionLost(f"stream ended: {exc}"))

    async def aclose(self) -> None:
        self.closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await self.exchange.close()


def _listed(wrap: Callable[[tuple[object, ...]], SessionEvent]) -> Callable[[Any], SessionEvent]:
    """What a ``watch_orders``/``watch_my_trades`` answer means: a list, wrapped."""

    def unpack(updates: Any) -> SessionEvent:
        if not isinstance(updates, list):
            return Malformed(f"a watch returned {type(updates).__name__}")
        return wrap(tuple(updates))

    return unpack


def _tickers(updates: Any) -> SessionEvent:
    """What a ``watch_bids_asks`` answer means: the tickers that changed, by symbol."""
    if not isinstance(updates, dict):
        return Malformed(f"watch_bids_asks returned {type(updates).__name__}")
    return QuotesPushed(tuple(updates.values()))
