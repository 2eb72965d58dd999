"""A session ends the calls running outside its nursery before it closes.

The actor's periodic checks and background jobs call a session's REST from
tasks of the actor's trio loop, outside the session's nursery. Closing the
session's HTTP client under such a call left it running: httpx (httpcore)
closes only the connections in its pool, and a request still connecting is
not among them yet, so it completed on a connection nobody owned and its
socket was collected unclosed (the ``ResourceWarning`` that failed the OKX
in-process campaign in CI). Each case here starts a REST call, lets it run
``steps`` scheduler steps (before, during and after its connect), closes the
session and checks, at once: the call has ended, as an answer or as the
session's ``BrokerConnectionError``, and no socket is left to the collector.
"""

from __future__ import annotations

import contextlib
import gc
import time
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Protocol

import pytest
import trio
import trio.testing

from tradenode import BrokerConnectionError

# The sessions and the helper are private: the race lives between them and the
# actor's trio loop, below the broker contract.
from tradenode.brokers._outside_calls import OutsideCalls
from tradenode.testing.venues import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    AlpacaVenue,
    BinanceVenue,
    CoinbaseVenue,
    OkxVenue,
)

STEPS = range(13)
"""Scheduler steps between the call's start and the close: 0 is before it
sends; a dozen covers its connect and its answer on loopback."""


class _Session(Protocol):
    async def serve(self, *, task_status: Any = ...) -> None: ...
    async def aclose(self) -> None: ...


SessionFactory = Callable[[Any, str], tuple[_Session, Callable[[], Awaitable[object]]]]
"""(venue, the REST URL to use) -> the session and one REST call on it."""


def _okx(venue: OkxVenue, rest_url: str) -> tuple[_Session, Callable[[], Awaitable[object]]]:
    # Private: the session is below the broker contract.
    from tradenode.brokers.okx._session import OkxSession, OkxUrls
    from tradenode.brokers.okx._signing import OkxCredentials

    session = OkxSession(
        "okx",
        OkxCredentials(venue.api_key, venue.secret, venue.passphrase),
        OkxUrls(rest_url, venue.ws_private_url, venue.ws_public_url),
        deliver=lambda _event: None,
        time_ms=lambda: time.time_ns() // 1_000_000,
    )
    return session, session.api.server_time


def _alpaca(venue: AlpacaVenue, rest_url: str) -> tuple[_Session, Callable[[], Awaitable[object]]]:
    # Private: the session is below the broker contract.
    from tradenode.brokers.alpaca._session import AlpacaSession

    session = AlpacaSession(
        "alpaca",
        key_id=venue.api_key,
        secret_key=venue.secret,
        rest_url=rest_url,
        stream_url=venue.stream_url,
        data_url=venue.data_stream_url("iex"),
        deliver=lambda _event: None,
    )
    return session, session.api.clock


def _coinbase(
    venue: CoinbaseVenue, rest_url: str
) -> tuple[_Session, Callable[[], Awaitable[object]]]:
    # Private: the session is below the broker contract.
    from tradenode.brokers.coinbase._session import CoinbaseSession
    from tradenode.brokers.coinbase._signing import CdpCredentials, load_private_key

    key = venue.key
    assert key is not None
    session = CoinbaseSession(
        "coinbase",
        CdpCredentials(key.name, load_private_key(key.private_key_pem)),
        rest_url=rest_url,
        ws_url=venue.ws_url,
        ws_user_url=venue.ws_user_url,
        products=("BTC-USD",),
        deliver=lambda _event: None,
        wall_time=time.time,
    )
    return session, session.api.server_time


def _binance(
    venue: BinanceVenue, rest_url: str
) -> tuple[_Session, Callable[[], Awaitable[object]]]:
    from tradenode.brokers.binance import BinanceCredentials, BinanceEndpoints

    # Private: the session is below the broker contract.
    from tradenode.brokers.binance._session import BinanceSession

    session = BinanceSession(
        "binance",
        BinanceCredentials(DEFAULT_API_KEY, DEFAULT_API_SECRET),
        BinanceEndpoints(rest_url, venue.ws_api_url, venue.stream_url),
        deliver=lambda _event: None,
        time_ms=lambda: time.time_ns() // 1_000_000,
    )
    return session, session.api.server_time


CASES: dict[str, tuple[Callable[[], AbstractContextManager[Any]], SessionFactory]] = {
    "okx": (lambda: OkxVenue(seed=1), _okx),
    "alpaca": (lambda: AlpacaVenue(seed=1), _alpaca),
    "coinbase": (lambda: CoinbaseVenue(seed=1), _coinbase),
    "binance": (lambda: BinanceVenue(seed=1), _binance),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[tuple[Any, SessionFactory]]:
    make_venue, make_session = CASES[request.param]
    with make_venue() as venue:
        yield venue, make_session


@asynccontextmanager
async def _served(session: _Session) -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        await nursery.start(session.serve)
        yield nursery


def _run_leaving_no_socket(main: Callable[[], Awaitable[None]]) -> None:
    """``trio.run(main)``, then a collection: no socket may be left to it unclosed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        trio.run(main)
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, leaked


async def _record(
    ended: dict[int, object], steps: int, call: Callable[[], Awaitable[object]]
) -> None:
    try:
        ended[steps] = await call()
    except BrokerConnectionError as exc:
        ended[steps] = exc


def test_a_rest_call_in_flight_when_the_session_closes_ends_with_it_and_leaks_no_socket(
    case: tuple[Any, SessionFactory],
) -> None:
    venue, make_session = case
    ended: dict[int, object] = {}

    async def main() -> None:
        for steps in STEPS:
            session, call = make_session(venue, venue.rest_url)
            async with _served(session) as nursery, trio.open_nursery() as callers:
                callers.start_soon(_record, ended, steps, call)
                for _ in range(steps):
                    await trio.lowlevel.checkpoint()
                await session.aclose()
                # No checkpoint since aclose returned: the call has ended already.
                assert steps in ended, f"{steps} steps: the call outlived the session"
                nursery.cancel_scope.cancel()

    _run_leaving_no_socket(main)
    assert sorted(ended) == list(STEPS)
    # Cancelled on the way out: an unknown outcome, never an untyped error.
    for outcome in ended.values():
        if isinstance(outcome, BrokerConnectionError):
            assert "session" in str(outcome), outcome


class _Gate:
    """A TCP host in front of the venue's REST port that can stop letting anyone in.

    Open, it relays each connection to the venue. Blocked, it closes the
    relayed connections (so the client's pool has nothing left to reuse),
    stops accepting and fills its accept queue (``listen(0)``: one connection)
    with one of its own: Linux then drops every new SYN, so a client's
    connect stays in progress for as long as the gate is blocked. That is the
    window the race needs, held open instead of hoped for.
    """

    def __init__(self, listener: trio.SocketListener, upstream_port: int) -> None:
        self._listener = listener
        self._upstream_port = upstream_port
        self._relays = trio.CancelScope()
        self._plug: trio.SocketStream | None = None

    @classmethod
    async def open(cls, nursery: trio.Nursery, upstream_port: int) -> _Gate:
        (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=0)
        gate = cls(listener, upstream_port)
        nursery.start_soon(gate._accept)
        return gate

    @property
    def url(self) -> str:
        host, port = self._listener.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    async def _accept(self) -> None:
        with self._relays:
            async with trio.open_nursery() as relays:
                while True:
                    client = await self._listener.accept()
                    relays.start_soon(self._relay, client)

    async def _relay(self, client: trio.SocketStream) -> None:
        async with client, await trio.open_tcp_stream("127.0.0.1", self._upstream_port) as venue:

            async def pipe(source: trio.SocketStream, sink: trio.SocketStream) -> None:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    async for data in source:
                        await sink.send_all(data)
                    await sink.send_eof()

            async with trio.open_nursery() as pipes:
                pipes.start_soon(pipe, client, venue)
                pipes.start_soon(pipe, venue, client)

    async def block(self) -> None:
        self._relays.cancel()
        self._plug = await trio.open_tcp_stream(*self._listener.socket.getsockname()[:2])

    async def aclose(self) -> None:
        self._relays.cancel()
        if self._plug is not None:
            await self._plug.aclose()
        await self._listener.aclose()


def test_a_rest_call_still_connecting_when_the_session_closes_is_cancelled_not_orphaned(
    case: tuple[Any, SessionFactory],
) -> None:
    """The CI failure's race, held open: the call's connect is in progress (the
    gate is blocked) when the session closes. Before, closing the client left it
    connecting, to finish later on a connection nobody owned."""
    venue, make_session = case
    ended: dict[int, object] = {}

    async def main() -> None:
        async with trio.open_nursery() as outer:
            gate = await _Gate.open(outer, urllib.parse.urlsplit(venue.rest_url).port or 80)
            session, call = make_session(venue, gate.url)
            async with _served(session) as nursery:
                await gate.block()
                outer.start_soon(_record, ended, 0, call)
                await trio.testing.wait_all_tasks_blocked()
                assert not ended, ended  # connecting, behind the gate
                await session.aclose()
                # No checkpoint since aclose returned: the call has ended already.
                assert ended, "the call outlived the session"
                nursery.cancel_scope.cancel()
            await gate.aclose()

    _run_leaving_no_socket(main)
    (outcome,) = ended.values()
    assert isinstance(outcome, BrokerConnectionError), outcome
    assert "the session closed during the request" in str(outcome)


def test_a_call_after_the_session_closed_is_refused_as_not_sent(
    case: tuple[Any, SessionFactory],
) -> None:
    venue, make_session = case
    session, call = make_session(venue, venue.rest_url)

    async def main() -> None:
        async with _served(session):
            await session.aclose()
        with pytest.raises(BrokerConnectionError):
            await call()

    trio.run(main)


# -- the helper itself -------------------------------------------------------------------


def test_end_cancels_the_running_calls_waits_for_them_and_refuses_new_ones() -> None:
    calls = OutsideCalls("venue")
    events: list[str] = []

    async def running_call(name: str) -> None:
        with calls.running() as scope:
            events.append(f"{name} started")
            await trio.sleep_forever()
        assert scope.cancelled_caught
        events.append(f"{name} unwound")  # what a session raises, before any checkpoint

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(running_call, "a")
            nursery.start_soon(running_call, "b")
            await trio.testing.wait_all_tasks_blocked()
            assert calls.running_count == 2
            await calls.end()
            events.append("ended")
        assert calls.ending and calls.running_count == 0
        with calls.running() as late:
            await trio.lowlevel.checkpoint()  # cancelled here
        assert late.cancelled_caught

    trio.run(main)
    assert events[-1] == "ended"
    assert sorted(events[:-1]) == ["a started", "a unwound", "b started", "b unwound"]


def test_closing_ends_the_calls_before_it_closes_the_client() -> None:
    calls = OutsideCalls("venue")
    order: list[str] = []

    class Client:
        async def aclose(self) -> None:
            order.append(f"client closed with {calls.running_count} call(s) running")

    async def call() -> None:
        with calls.running():
            await trio.sleep_forever()
        order.append("call ended")

    async def main() -> None:
        async with trio.open_nursery() as nursery, calls.closing(Client()):
            nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()

    trio.run(main)
    assert order == ["call ended", "client closed with 0 call(s) running"]


def test_repr_names_the_broker_and_the_state() -> None:
    assert repr(OutsideCalls("okx")) == "OutsideCalls('okx', open, 0 running)"


def test_an_okx_websocket_order_awaiting_its_answer_ends_when_the_connection_is_lost() -> None:
    """The answer to ``op: order`` is lost, then the venue drops the streams: the
    call ends with the session (outcome unknown, so the breaker looks the order
    up) instead of holding the actor for the request timeout (an hour here)."""
    # Private: the session is below the broker contract.
    from tradenode.brokers.okx._session import (
        ConnectionLost,
        OkxSession,
        OkxUrls,
        SessionSettings,
    )
    from tradenode.brokers.okx._signing import OkxCredentials

    ended: dict[int, object] = {}
    with OkxVenue(seed=1) as venue:
        venue.freeze_prices()
        venue.fail_requests(after=True, endpoints=["order"])
        lost = trio.Event()
        session = OkxSession(
            "okx",
            OkxCredentials(venue.api_key, venue.secret, venue.passphrase),
            OkxUrls(venue.rest_url, venue.ws_private_url, venue.ws_public_url),
            deliver=lambda event: lost.set() if isinstance(event, ConnectionLost) else None,
            time_ms=lambda: time.time_ns() // 1_000_000,
            settings=SessionSettings(request_timeout=3600.0),
        )
        order = {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "clOrdId": "lost1",
            "side": "buy",
            "ordType": "market",
            "sz": "0.001",
        }

        async def place() -> object:
            return await session.ws_call("order", [order])

        async def main() -> None:
            async with _served(session) as nursery:
                nursery.start_soon(_record, ended, 0, place)
                await trio.testing.wait_all_tasks_blocked()
                assert not ended, ended  # sent, its answer lost: waiting
                await trio.to_thread.run_sync(venue.drop_streams)
                await lost.wait()
                await session.aclose()
                assert ended, "the call outlived the session"
                nursery.cancel_scope.cancel()

        trio.run(main)
    (outcome,) = ended.values()
    assert isinstance(outcome, BrokerConnectionError), outcome
    assert "outcome unknown" in str(outcome)
