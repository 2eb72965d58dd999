"""The one typed layer that knows ib_async's request methods and what each costs IB.

Every call the adapter makes to TWS goes through :class:`IbkrApi`: placing,
modifying and cancelling orders, the global cancel, open/completed orders,
executions, positions, the account summary, contract details and market
data. Each counts the API messages it sends (IB limits a client to 50 a
second, whatever they are), so the broker can report its usage to the
breaker's limiter. Request answers are bounded by a timeout (ib_async's own
futures wait forever for an answer that never comes) and come back as the
codec's records, never as ib_async's mutable objects.

A lost socket is ours too. ib_async raises the built-in ``ConnectionError``
for a request written after the socket closed ("Not connected", also from
``getReqId``) and fails the requests waiting for an answer when it closes
("Socket disconnect"). The session's ``ConnectionLost`` reaches the actor
only after whatever it was already handling, so a submit or a reconcile
can meet that error first: every call here turns it into
``BrokerConnectionError`` (outcome unknown: the breaker asks before any
re-send), never an untyped crash that sends the request to dead letters.

All of it runs on the incarnation's asyncio loop (``_loop.AsyncioThread``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ib_async import IB, Contract, ExecutionFilter, Order, Ticker
from ib_async.wrapper import RequestError

from ..._exceptions import BrokerConnectionError, BrokerTimeoutError, MalformedPayloadError
from ._codec import (
    IbExecution,
    IbOpenOrder,
    IbPosition,
    parse_execution,
    parse_open_order,
    parse_position,
    to_decimal,
)

__all__ = ["AccountValue", "IbkrApi"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One account summary value (``NetLiquidation``, ``TotalCashValue``, ...)."""

    tag: str
    value: str
    currency: str


@contextlib.contextmanager
def _connected(what: str) -> Iterator[None]:
    """ib_async's ``ConnectionError`` in the block as ``BrokerConnectionError``."""
    try:
        yield
    except ConnectionError as exc:
        raise BrokerConnectionError(f"{what}: the connection to TWS is gone ({exc})") from exc


class IbkrApi:
    """Typed requests on one connected ``IB`` (call only on its asyncio loop)."""

    def __init__(self, ib: IB, *, timeout: float, pacing_backoff: float = 1.0) -> None:
        # A request TWS refuses raises instead of ending with an empty answer: an
        # empty list of open orders or executions must mean "none", never "refused".
        ib.RaiseRequestErrors = True
        self.ib = ib
        self.pacing_backoff = pacing_backoff
        self.timeout = timeout
        self.messages_sent = 0
        """API messages sent through this layer (IB's pacing counts every one)."""
        self._one_at_a_time: dict[str, asyncio.Lock] = {}
        """ib_async keys open orders, completed orders and positions by a fixed name, not
        a request id: a second request started before the first is answered takes over
        its future, and the first waits until it times out. These go one at a time."""

    async def _answer_alone(
        self, what: str, start: Callable[[], Awaitable[T]], messages: int = 1
    ) -> T:
        """:meth:`_answer` for a request ib_async keys by name: started only once the
        previous one of its kind has its answer."""
        lock = self._one_at_a_time.setdefault(what, asyncio.Lock())
        async with lock:
            return await self._answer(what, start, messages)

    async def _answer(self, what: str, start: Callable[[], Awaitable[T]], messages: int = 1) -> T:
        """Start the request (ib_async writes it as it builds the future) and wait for
        its answer, at most ``timeout``; every failure typed."""
        self.messages_sent += messages
        try:
            with _connected(what):
                return await asyncio.wait_for(start(), self.timeout)
        except RequestError as exc:
            raise BrokerConnectionError(
                f"TWS refused {what}: {exc.code} {exc.message}",
                code=str(exc.code),
                retry_after=self.pacing_backoff if exc.code == 100 else None,
            ) from exc
        except TimeoutError as exc:
            raise BrokerTimeoutError(f"TWS did not answer {what} within {self.timeout:g}s") from exc

    # -- orders ---------------------------------------------------------------------------------

    def place_order(self, contract: Contract, order: Order) -> None:
        """placeOrder: a new order, or a modification when ``order.orderId`` is live."""
        self.messages_sent += 1
        with _connected("placeOrder"):
            self.ib.placeOrder(contract, order)

    def modify_order(self, contract: Contract, order: Order) -> None:
        """placeOrder under a live orderId: IB's native modification.

        Sent as the bare message: ib_async's ``IB.placeOrder`` refuses to modify an
        order its own bookkeeping has marked done (it marks any order error so,
        even a refused modification of an order that is still live)."""
        self.messages_sent += 1
        with _connected("placeOrder (modification)"):
            self.ib.client.placeOrder(order.orderId, contract, order)  # type: ignore[no-untyped-call]

    def cancel_order(self, order_id: int) -> None:
        """cancelOrder, as the bare message (ib_async's own marks the order locally)."""
        self.messages_sent += 1
        with _connected("cancelOrder"):
            self.ib.client.cancelOrder(order_id, "")  # type: ignore[no-untyped-call]

    def global_cancel(self) -> None:
        """reqGlobalCancel: every open order of the account, whichever client placed it."""
        self.messages_sent += 1
        with _connected("reqGlobalCancel"):
            self.ib.reqGlobalCancel()  # type: ignore[no-untyped-call]

    def next_order_id(self) -> int:
        """The next order id (from nextValidId, kept above every id TWS has shown us)."""
        with _connected("the next order id"):
            return int(self.ib.client.getReqId())

    # -- reconciliation -------------------------------------------------------------------------

    async def open_orders(self) -> list[IbOpenOrder]:
        """reqOpenOrders: this client's open orders as TWS holds them."""
        trades = await self._answer_alone("reqOpenOrders", self.ib.reqOpenOrdersAsync)
        return [
            parse_open_order(t.contract, t.order, t.orderStatus.status, filled=t.orderStatus.filled)
            for t in trades
        ]

    async def completed_orders(self) -> list[IbOpenOrder]:
        """reqCompletedOrders(apiOnly): the day's finished API orders."""
        trades = await self._answer_alone(
            "reqCompletedOrders", lambda: self.ib.reqCompletedOrdersAsync(apiOnly=True)
        )
        return [
            parse_open_order(
                t.contract, t.order, t.orderStatus.status, filled=t.order.filledQuantity
            )
            for t in trades
        ]

    async def executions(self, *, client_id: int, since: str = "") -> list[IbExecution]:
        """reqExecutions filtered by client id (and time ``yyyymmdd-hh:mm:ss`` UTC), each
        with its commission report where TWS sent one."""
        fills = await self._answer(
            "reqExecutions",
            lambda: self.ib.reqExecutionsAsync(ExecutionFilter(clientId=client_id, time=since)),
        )
        known = self.ib.wrapper.fills
        result = []
        for fill in fills:
            # ib_async keeps the first Fill it saw per execId and puts later
            # commission reports on that one, not on the request's copy.
            canonical = known.get(fill.execution.execId, fill)
            report = canonical.commissionReport
            result.append(
                parse_execution(fill.contract, fill.execution, report if report.execId else None)
            )
        return result

    async def positions(self) -> list[IbPosition]:
        items = await self._answer_alone("reqPositions", self.ib.reqPositionsAsync)
        return [parse_position(p) for p in items]

    async def account_summary(self, account: str) -> list[AccountValue]:
        """reqAccountSummary (and its cancel) for ``account``."""
        await self._answer("reqAccountSummary", self.ib.reqAccountSummaryAsync, messages=2)
        values = self.ib.wrapper.acctSummary.values()
        return [
            AccountValue(v.tag, v.value, v.currency)
            for v in values
            if not account or v.account == account
        ]

    async def contract_details(self, contract: Contract) -> list[Any]:
        """reqContractDetails; an unknown contract answers an empty list (IB's error 200)."""
        try:
            return list(
                await self._answer(
                    "reqContractDetails", lambda: self.ib.reqContractDetailsAsync(contract)
                )
            )
        except BrokerConnectionError as exc:
            if exc.code == "200":
                return []
            raise

    # -- market data ----------------------------------------------------------------------------

    def market_data_type(self, kind: int) -> None:
        self.messages_sent += 1
        with _connected("reqMarketDataType"):
            self.ib.reqMarketDataType(kind)

    def subscribe_quotes(self, contract: Contract) -> Ticker:
        self.messages_sent += 1
        with _connected("reqMktData"):
            return self.ib.reqMktData(contract)

    def unsubscribe_quotes(self, contract: Contract) -> None:
        self.messages_sent += 1
        with _connected("cancelMktData"):
            self.ib.cancelMktData(contract)


def positive_or_none(value: Any) -> Any:
    """A ticker's price when it is one (ib_async uses nan and -1 for "none")."""
    try:
        price = to_decimal(value, what="tick")
    except MalformedPayloadError:
        return None
    return price if price > 0 else None
