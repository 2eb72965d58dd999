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

import logging
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tradenode.testing.venues._knobs import Knob, admin_override, collect_knobs, knob
from tradenode.testing.venues._loopback import LoopbackVenue, wall_clock_ms
from tradenode.testing.venues._oanda_app import (
    STREAM_KINDS,
    OandaApp,
    OandaFaults,
    StreamHub,
    _RestFault,
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


def _stream_kind(kind: str) -> str:
    if kind not in (*STREAM_KINDS, "all"):
        raise ValueError(f"kind must be 'transactions', 'pricing' or 'all', not {kind!r}")
    return kind


class OandaVenue(LoopbackVenue):
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

    VENUE_NAME = "OANDA"
    _app: OandaApp

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
        super().__init__(
            host=host, port=port, admin_port=admin_port, tick_interval=tick_interval, log=_log
        )
        self.exchange = OandaExchange(
            account_id=account_id,
            token=token,
            instruments=instruments,
            balance=Decimal(balance),
            currency=currency,
            seed=seed,
            clock=clock or wall_clock_ms,
            financing=financing,
            level_quantity=level_quantity,
            spread_bps=spread_bps,
        )
        self._token_value = token
        self._faults = OandaFaults()
        self._hub = StreamHub(self.exchange, self._faults, heartbeat_interval)
        self._app = OandaApp(self.exchange, self._hub, self._faults)
        self.exchange.add_listener(self._on_event)

    def __repr__(self) -> str:
        state = "up" if self._is_up else ("started" if self._thread else "stopped")
        return f"OandaVenue(rest_url={self.rest_url!r}, account_id={self.account_id!r}, {state})"

    # ---------------------------------------------------------- lifecycle

    def _tick(self) -> None:
        if self._ticking:
            self.exchange.step()

    async def _after_up(self) -> None:
        with self._faults.lock:
            self._faults.stalled.clear()
        self._hub.poke()

    async def _before_down(self) -> None:
        await self._hub.drop("all")

    def _on_event(self, event: OandaEvent) -> None:
        self._post(self._hub.dispatch, event)

    # -------------------------------------------------------- addresses

    @property
    def rest_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def stream_url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def account_id(self) -> str:
        return self.exchange.account_id

    @property
    def token(self) -> str:
        """The bearer token the venue accepts (never in its repr or logs)."""
        return self._token_value

    # ------------------------------------------------------------ knobs

    @knob
    def set_price(self, instrument: str, price: Decimal) -> None:
        """Set ``instrument``'s mid price: a PRICE line, and the resting orders it triggers."""
        self.exchange.set_price(instrument, Decimal(price))

    @knob
    def step(self, n: int = 1, instrument: str | None = None) -> None:
        """Move prices ``n`` ticks of the seeded walk (one instrument or all)."""
        self.exchange.step(n, instrument)

    @knob
    def freeze_prices(self, frozen: bool = True) -> None:
        """Stop (or restart) the ``tick_interval`` moves: nothing fills behind a checker's back."""
        self._ticking = not frozen

    @knob
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

    @knob
    def drop_streams(self, kind: str = "all") -> int:
        """Cut ``kind`` streams at the TCP level (mid-response, no last chunk); returns how many."""
        _stream_kind(kind)
        return self._in_trio(lambda: self._drop_streams(kind))

    @knob
    def rate_limit(self, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``count`` REST requests 429 with ``Retry-After``, without processing them."""
        self._faults.add(_RestFault("rate", count, status=429, retry_after=retry_after))

    @knob
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

    @knob
    def lose_next_response(self, path: str | None = None) -> None:
        """Process the next (matching) REST request, then cut the connection without an answer.

        The outcome is unknown to the client: the order may well exist.
        ``path`` as for :meth:`fail_requests`.
        """
        self._faults.add(_RestFault("lose", 1, path=path))

    @knob
    def hold_requests(self, count: int = 1, path: str | None = None) -> None:
        """Hold the next ``count`` (matching) REST requests, unprocessed, until :meth:`release_requests`.

        A slow venue: the request is on the wire and its answer is not, for
        as long as the test wants and no longer (no wall-time delay).
        :meth:`wait_held` waits until requests are held; ``GET
        <admin>/faults`` lists them under ``held``. ``path`` as for
        :meth:`fail_requests`.
        """
        if count < 1:
            raise ValueError(f"count must be >= 1, not {count}")
        self._faults.add(_RestFault("hold", count, path=path))

    @knob
    def release_requests(self) -> int:
        """Let every held REST request be processed and answered; returns how many."""
        return self._in_trio_sync(self._faults.release_held)

    def held_requests(self) -> list[str]:
        """The endpoints (:meth:`calls`' names) of the REST requests held right now."""
        held: list[str] = self._faults.pending()["held"]
        return held

    def wait_held(self, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` REST requests are held at once (``TimeoutError`` after ``timeout`` s)."""
        self._faults.wait_held(count, timeout)

    @knob
    def duplicate_transactions(self, count: int = 1) -> None:
        """Write each of the next ``count`` streamed transactions twice."""
        with self._faults.lock:
            self._faults.duplicate += count

    @knob
    def corrupt_next_line(self) -> None:
        """Write one malformed JSON line (a truncated copy) before the next streamed transaction."""
        with self._faults.lock:
            self._faults.corrupt += 1

    @knob
    def cross_next_price(self) -> None:
        """Write the next streamed PRICE line crossed: bids and asks swapped, best bid above best ask.

        It goes to the price streams of the next price move's instrument
        (:meth:`set_price`, :meth:`step`); it needs a spread (``spread_bps`` > 0).
        """
        with self._faults.lock:
            self._faults.crossed += 1

    @knob
    def corrupt_next_answer(
        self, path: str | None = None, field: str | None = None, value: str | None = None
    ) -> None:
        """Process the next (matching) REST request, then answer it with a malformed body.

        With ``field`` (a dotted path into the answer, ``order.units``), that
        field is set to ``value`` (null: JSON null); without it, the body is
        cut in half (not JSON). The status is the real one. ``path`` as for
        :meth:`fail_requests`.
        """
        self._faults.add(_RestFault("corrupt", 1, path=path, target=field, value=value))

    @knob
    def hold_fills(self) -> None:
        """Queue the fills of resting orders that trigger from now on, until :meth:`release_fills`.

        A queued order stays PENDING (and cancellable: a cancel wins the race).
        """
        self.exchange.hold_fills()

    @knob
    def release_fills(self) -> int:
        """Execute the queued fills at the prices that triggered them; returns how many filled."""
        return self.exchange.release_fills()

    @knob
    def charge_financing(self) -> Json | None:
        """Book one DAILY_FINANCING on the open trades and return it (None unless ``financing=True``)."""
        return self.exchange.charge_financing()

    @knob
    def book_transaction(self, kind: str) -> Json:
        """Book a bare transaction of type ``kind`` (one OANDA added later, say): history, stream."""
        return self.exchange.book_transaction(kind)

    @knob
    def down(self) -> None:
        """Cut every stream and refuse connections until :meth:`up` (the admin port stays up)."""
        self._in_trio(self._bring_down)

    @knob
    def up(self) -> None:
        """Serve again on the same port (and end any stream stall)."""
        self._in_trio(self._bring_up)

    @knob
    def clear_faults(self) -> None:
        """Forget every pending request fault, stall, duplicate and corruption, and release
        held requests (held fills stay held)."""
        self._faults.clear()
        self._in_trio_sync(self._release_and_poke)

    def _release_and_poke(self) -> None:
        self._faults.release_held()
        self._hub.poke()

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

    def _admin_views(self) -> Mapping[str, Callable[[], Any]]:
        return {**super()._admin_views(), "calls": self.calls, "faults": self._faults.pending}

    @admin_override("drop_streams")
    async def _drop_streams(self, kind: str = "all") -> int:
        return await self._hub.drop(_stream_kind(kind))

    @admin_override("down")
    async def _down(self) -> None:
        await self._bring_down()

    @admin_override("up")
    async def _up(self) -> None:
        await self._bring_up()

    @admin_override("stall_streams")
    async def _stall(self, kind: str = "all") -> None:
        with self._faults.lock:
            self._faults.stalled.add(_stream_kind(kind))
        self._hub.poke()

    @admin_override("clear_faults")
    async def _clear(self) -> None:
        self._faults.clear()
        self._release_and_poke()


KNOBS: dict[str, Knob] = collect_knobs(OandaVenue)
"""Every knob of :class:`OandaVenue` by name: its Python method and its admin endpoint."""

OandaVenue.KNOBS = KNOBS
