"""A lost TWS socket reaches the IBKR adapter as its own error, from every call.

ib_async raises the built-in ``ConnectionError`` for a request written after
its socket closed ("Not connected", ``getReqId`` included) and fails the
requests still waiting for an answer when it closes ("Socket disconnect").
The session's ``ConnectionLost`` reaches the actor only after what it is
already handling, so a submit (its order id comes from ``getReqId``), a
cancel-all or a reconcile can meet that error first. Untyped, it failed the
actor as a crash and sent the request to dead letters with no reply; typed
(``BrokerConnectionError``), the broker base answers TRANSPORT and the
breaker asks TWS before any re-send.

The session (private, below the broker contract) runs on an asyncio loop of
the test's own, against the local TWS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import ib_async
import pytest

from tradenode import BrokerConnectionError

# Private: the session and its endpoint layer are below the broker contract.
from tradenode.brokers.ibkr._session import ConnectionLost, IbkrSession, SessionEvent
from tradenode.testing.venues import IbkrVenue

# Private: the TWS message ids, to wait until the request reached the venue.
from tradenode.testing.venues._ibkr_codec import In

WAIT = 10.0


@pytest.fixture
def venue() -> Iterator[IbkrVenue]:
    with IbkrVenue(seed=5) as local_venue:
        yield local_venue


class _Lost:
    """The session's deliver: notes ConnectionLost (on the loop) for the test to await."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, ConnectionLost):
            self.event.set()


def _aapl() -> ib_async.Stock:
    return ib_async.Stock("AAPL", "SMART", "USD", primaryExchange="NASDAQ")


async def _connected(venue: IbkrVenue) -> tuple[IbkrSession, _Lost, ib_async.Contract]:
    """A session connected to the local TWS, its ConnectionLost watch, and AAPL as TWS
    knows it (conId included, so a placement reaches the venue whole)."""
    lost = _Lost()
    session = IbkrSession("ibkr", lost, timeout=WAIT)
    await session.connect(venue.host, venue.port, client_id=11, connect_timeout=WAIT)
    contract = (await session.api.contract_details(_aapl()))[0].contract
    return session, lost, contract


def _run(main: Callable[[], Awaitable[None]]) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        # A disconnect closes the transport on the loop's next turns: let them run.
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()


def test_every_call_after_the_socket_closed_raises_broker_connection_error(
    venue: IbkrVenue,
) -> None:
    checked: list[str] = []

    async def main() -> None:
        session, lost, contract = await _connected(venue)
        api = session.api
        order = ib_async.LimitOrder("BUY", 1, 100.0, orderRef="after-the-drop")
        assert await asyncio.get_running_loop().run_in_executor(None, venue.drop_connections)
        await asyncio.wait_for(lost.event.wait(), WAIT)

        sync_calls: dict[str, Callable[[], object]] = {
            "next_order_id": api.next_order_id,
            "place_order": lambda: api.place_order(contract, order),
            "modify_order": lambda: api.modify_order(contract, order),
            "cancel_order": lambda: api.cancel_order(5),
            "global_cancel": api.global_cancel,
            "market_data_type": lambda: api.market_data_type(3),
            "subscribe_quotes": lambda: api.subscribe_quotes(contract),
        }
        for name, call in sync_calls.items():
            with pytest.raises(BrokerConnectionError, match="connection to TWS is gone"):
                call()
            checked.append(name)
        async_calls: dict[str, Callable[[], Awaitable[object]]] = {
            "open_orders": api.open_orders,
            "completed_orders": api.completed_orders,
            "executions": lambda: api.executions(client_id=11),
            "positions": api.positions,
            "account_summary": lambda: api.account_summary(""),
            "contract_details": lambda: api.contract_details(_aapl()),
        }
        for name, request in async_calls.items():
            with pytest.raises(BrokerConnectionError, match="connection to TWS is gone"):
                await request()
            checked.append(name)
        await session.aclose()

    _run(main)
    assert len(checked) == 13  # every call above was made, and each raised ours


def test_a_request_waiting_for_its_answer_when_the_socket_drops_raises_broker_connection_error(
    venue: IbkrVenue,
) -> None:
    outcome: list[BaseException] = []

    async def main() -> None:
        session, _lost, contract = await _connected(venue)
        api = session.api
        loop = asyncio.get_running_loop()
        asked_before = venue.requests().get(In.REQ_OPEN_ORDERS, 0)
        # TWS reads a connection's messages in order: a held placement holds what follows.
        venue.delay_orders(1)
        order = ib_async.LimitOrder("BUY", 1, 100.0, orderRef="held")
        order.orderId = api.next_order_id()
        api.place_order(contract, order)
        waiting = asyncio.ensure_future(api.open_orders())
        await loop.run_in_executor(
            None,
            lambda: venue.wait_for(
                lambda: venue.requests().get(In.REQ_OPEN_ORDERS, 0) > asked_before,
                WAIT,
                "reqOpenOrders to reach the venue",
            ),
        )
        assert not waiting.done()  # held behind the placement: no answer yet
        assert await loop.run_in_executor(None, venue.drop_connections)
        try:
            await asyncio.wait_for(waiting, WAIT)
        except BaseException as exc:  # the outcome under test, whatever it is
            outcome.append(exc)
        await session.aclose()

    _run(main)
    assert len(outcome) == 1
    assert isinstance(outcome[0], BrokerConnectionError), repr(outcome[0])
    assert "reqOpenOrders" in str(outcome[0])
