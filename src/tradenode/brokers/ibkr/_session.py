"""One connection to TWS / IB Gateway through ib_async, on the incarnation's asyncio loop.

**What the venue said, not what ib_async infers.** ib_async keeps its own
``Trade`` objects and fires ``orderStatusEvent`` for changes it makes up
locally (``PendingCancel`` on our own cancel, ``Cancelled`` on any order
error, even a refused modification of a live order; ``ValidationError`` on a
warning) and skips repeats and orders it has not seen an ``openOrder`` for.
The session therefore listens one level lower: :class:`_TapWrapper`
subclasses ib_async's ``Wrapper`` and, after ib_async has done its own
bookkeeping, hands every ``openOrder``, ``orderStatus``, live ``execDetails``,
``commissionReport`` and ``error`` TWS sent to the actor as a codec record.
``disconnectedEvent`` and ``pendingTickersEvent`` are ib_async's events.
A message ib_async cannot decode, or whose id it does not know, is caught in
:class:`_CountingDecoder` and delivered as :class:`Malformed` (ib_async would
only log it).

Requests that wait for the venue (:meth:`IbkrSession.place`,
:meth:`IbkrSession.cancel`) send their message and wait, bounded by the
request timeout, for the first message TWS sends about that order id.

A lost socket is delivered once as :class:`ConnectionLost`; the session never
reconnects (the actor fails and the supervisor restarts it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from ib_async import IB, Contract, Order, StartupFetch, Ticker, Wrapper
from ib_async.client import Client
from ib_async.decoder import Decoder

from ..._crashpoints import crash_point
from ..._exceptions import BrokerConnectionError, BrokerTimeoutError, MalformedPayloadError
from ...actors._contract import BrokerRequest
from .._base import refuse_if_expired
from ._codec import (
    ErrorKind,
    IbCommission,
    IbError,
    IbExecution,
    IbOpenOrder,
    IbOrderStatus,
    IbTick,
    parse_commission,
    parse_execution,
    parse_open_order,
    parse_order_status,
)
from ._endpoints import IbkrApi, positive_or_none

__all__ = [
    "ConnectionLost",
    "IbkrSession",
    "Malformed",
    "SessionEvent",
    "VenueAnswer",
]

logger = logging.getLogger("tradenode.brokers.ibkr")


@dataclass(frozen=True, slots=True)
class Malformed:
    """A socket message that could not be read (unknown id, bad fields)."""

    what: str


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    reason: str


SessionEvent: TypeAlias = (
    IbOpenOrder | IbOrderStatus | IbExecution | IbCommission | IbError | IbTick | Malformed
) | ConnectionLost
VenueAnswer: TypeAlias = IbOpenOrder | IbOrderStatus | IbError
"""The first thing TWS says about an order after a request for it."""

_LOCAL_STATUSES = frozenset({"PendingSubmit", "PendingCancel", "ApiPending", "ValidationError"})


class _Tap:
    """Where the wrapper's records go: the actor, and any waiter for that order id."""

    def __init__(self, deliver: Callable[[SessionEvent], None]) -> None:
        self.deliver = deliver
        self.waiters: dict[int, tuple[Callable[[VenueAnswer], bool], asyncio.Future[Any]]] = {}
        self.on_connect_error: asyncio.Future[IbError] | None = None
        """While connecting: where a pacing violation goes (it fails the attempt)."""

    def emit(self, make: Callable[[], SessionEvent]) -> None:
        try:
            event = make()
        except MalformedPayloadError as exc:
            self.deliver(Malformed(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - one bad message never ends the session
            self.deliver(Malformed(f"{type(exc).__name__}: {exc}"))
            return
        self.deliver(event)
        connecting = self.on_connect_error
        if (
            connecting is not None
            and isinstance(event, IbError)
            and event.kind is ErrorKind.PACING
            and not connecting.done()
        ):
            connecting.set_result(event)
        if isinstance(event, IbOpenOrder | IbOrderStatus | IbError):
            order_id = event.req_id if isinstance(event, IbError) else event.order_id
            waiting = self.waiters.get(order_id)
            if waiting is not None:
                accepts, future = waiting
                if not future.done() and accepts(event):
                    future.set_result(event)


class _TapWrapper(Wrapper):
    """ib_async's wrapper, which also tells the tap what TWS sent (see the module doc)."""

    tap: _Tap

    def openOrder(self, orderId: int, contract: Any, order: Any, orderState: Any) -> None:
        super().openOrder(orderId, contract, order, orderState)
        if not getattr(order, "whatIf", False):
            status = getattr(orderState, "status", "")
            self.tap.emit(lambda: parse_open_order(contract, order, status))

    def orderStatus(  # noqa: PLR0917 - ib_async's signature
        self,
        orderId: int,
        status: str,
        filled: float,
        remaining: float,
        avgFillPrice: float,
        permId: int,
        parentId: int,
        lastFillPrice: float,
        clientId: int,
        whyHeld: str,
        mktCapPrice: float = 0.0,
    ) -> None:
        super().orderStatus(
            orderId,
            status,
            filled,
            remaining,
            avgFillPrice,
            permId,
            parentId,
            lastFillPrice,
            clientId,
            whyHeld,
            mktCapPrice,
        )
        self.tap.emit(
            lambda: parse_order_status(
                orderId,
                status=status,
                filled=filled,
                remaining=remaining,
                avg_fill_price=avgFillPrice,
                perm_id=permId,
                client_id=clientId,
            )
        )

    def execDetails(self, reqId: int, contract: Any, execution: Any) -> None:
        live = reqId not in self._futures
        super().execDetails(reqId, contract, execution)
        if live:  # a request's executions come back through IbkrApi.executions
            self.tap.emit(lambda: parse_execution(contract, execution))

    def commissionReport(self, commissionReport: Any) -> None:
        super().commissionReport(commissionReport)
        self.tap.emit(lambda: parse_commission(commissionReport))

    def error(
        self, reqId: int, errorCode: int, errorString: str, advancedOrderRejectJson: str
    ) -> None:
        super().error(reqId, errorCode, errorString, advancedOrderRejectJson)
        self.tap.emit(lambda: IbError(int(reqId), int(errorCode), str(errorString)))


class _CountingDecoder(Decoder):
    """ib_async's decoder, which reports what it cannot decode instead of only logging it."""

    tap: _Tap

    def interpret(self, fields: Any) -> None:
        try:
            handler = self.handlers[int(fields[0])]
        except (ValueError, IndexError, KeyError):
            shown = ",".join(str(f) for f in fields[:3])
            self.tap.deliver(Malformed(f"unknown message from TWS: {shown[:80]!r}"))
            return
        try:
            handler(fields)
        except Exception as exc:  # noqa: BLE001 - ib_async's own decoder logs and goes on
            shown = ",".join(str(f) for f in fields[:3])
            self.tap.deliver(
                Malformed(f"unreadable message {shown[:80]!r}: {type(exc).__name__}: {exc}")
            )


class _ReportingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The decoder's logger: ib_async catches a message its handlers cannot read and only
    logs it (``logger.exception``); this one also reports it to the tap."""

    def __init__(self, logger: logging.Logger, tap: _Tap) -> None:
        super().__init__(logger, {})
        self.tap = tap

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.tap.deliver(Malformed(f"ib_async could not read a message: {str(msg)[:160]}"))
        super().exception(msg, *args, **kwargs)


class _TappedIB(IB):
    """``IB`` with the tap wrapper and decoder in place of ib_async's own."""

    def __init__(self, tap: _Tap) -> None:
        super().__init__()
        wrapper = _TapWrapper(self)
        wrapper.tap = tap
        self.wrapper = wrapper
        self.client = Client(wrapper)  # type: ignore[no-untyped-call]
        decoder = _CountingDecoder(wrapper, 0)
        decoder.tap = tap
        decoder.logger = _ReportingLogger(decoder.logger, tap)  # type: ignore[assignment]
        self.client.decoder = decoder
        self.client.apiEnd += self.disconnectedEvent


class IbkrSession:
    """One socket to TWS and the ib_async objects on it (built on the asyncio loop)."""

    def __init__(self, name: str, deliver: Callable[[SessionEvent], None], *, timeout: float):
        self.name = name
        self._tap = _Tap(deliver)
        self.ib = _TappedIB(self._tap)
        self.api = IbkrApi(self.ib, timeout=timeout)
        self.timeout = timeout
        self.closed = False
        self._tickers: dict[int, Ticker] = {}
        self.ib.disconnectedEvent += self._on_disconnected
        self.ib.pendingTickersEvent += self._on_tickers

    @property
    def accounts(self) -> list[str]:
        return list(self.ib.client.getAccounts())

    async def connect(
        self,
        host: str,
        port: int,
        client_id: int,
        connect_timeout: float,
        *,
        pacing_backoff: float = 1.0,
    ) -> None:
        """Handshake, startApi, nextValidId and managedAccounts; positions (ib_async always
        asks). Open orders and executions the actor asks for itself, when it reconciles.

        A pacing violation while connecting ends the attempt at once (ib_async would
        wait out ``connect_timeout`` for the answer TWS refused to give), with the
        back-off as its ``retry_after``."""
        refused: asyncio.Future[IbError] = asyncio.get_running_loop().create_future()
        self._tap.on_connect_error = refused
        attempt = asyncio.ensure_future(
            self.ib.connectAsync(
                host,
                port,
                clientId=client_id,
                timeout=connect_timeout,
                fetchFields=StartupFetch.POSITIONS,
            )
        )
        try:
            await asyncio.wait({attempt, refused}, return_when=asyncio.FIRST_COMPLETED)
            if not attempt.done():
                attempt.cancel()
                self.ib.disconnect()
                self.closed = True
                error = refused.result()
                raise BrokerConnectionError(
                    f"TWS refused the connection's requests: {error.code} {error.text}",
                    code=str(error.code),
                    retry_after=pacing_backoff,
                )
            attempt.result()
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.closed = True
            raise BrokerConnectionError(
                f"cannot connect to TWS at {host}:{port} as client {client_id}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self._tap.on_connect_error = None
            if not refused.done():
                refused.cancel()

    def _on_disconnected(self) -> None:
        if not self.closed:
            self.closed = True
            for _, future in self._tap.waiters.values():
                if not future.done():
                    future.set_exception(BrokerConnectionError("socket to TWS closed"))
            self._tap.deliver(ConnectionLost("the socket to TWS closed"))

    def _on_tickers(self, tickers: Any) -> None:
        for ticker in tickers:
            contract = ticker.contract
            if contract is None:
                continue
            self._tap.emit(_tick_of(ticker, contract))

    async def aclose(self) -> None:
        self.closed = True
        self.ib.disconnect()

    # -- requests that wait for the venue -------------------------------------------------------

    async def _send_and_wait(
        self, order_id: int, accepts: Callable[[VenueAnswer], bool], send: Callable[[], None]
    ) -> VenueAnswer:
        if self.closed:
            raise BrokerConnectionError("not connected to TWS")
        future: asyncio.Future[VenueAnswer] = asyncio.get_running_loop().create_future()
        self._tap.waiters[order_id] = (accepts, future)
        try:
            send()
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            raise BrokerTimeoutError(
                f"TWS said nothing about order {order_id} within {self.timeout:g}s"
            ) from exc
        finally:
            if self._tap.waiters.get(order_id, (None, future))[1] is future:
                del self._tap.waiters[order_id]

    async def place(
        self,
        contract: Contract,
        order: Order,
        request: BrokerRequest,
        monotonic: Callable[[], float],
    ) -> VenueAnswer:
        """placeOrder (new or modify), then the first thing TWS says about the order."""
        # Nothing leaves past the request's deadline: the breaker may have moved on.
        refuse_if_expired(request, monotonic)

        def send() -> None:
            self.api.place_order(contract, order)
            # The drill's narrowest window: the placement left, nothing came back yet.
            crash_point("after_send")

        return await self._send_and_wait(order.orderId, _placement_answer, send)

    async def modify(
        self,
        contract: Contract,
        order: Order,
        request: BrokerRequest,
        monotonic: Callable[[], float],
    ) -> VenueAnswer:
        """placeOrder under the live orderId, then TWS's answer: the order as it now
        holds it (openOrder), or the error refusing the change."""
        refuse_if_expired(request, monotonic)
        return await self._send_and_wait(
            order.orderId, _modify_answer, lambda: self.api.modify_order(contract, order)
        )

    async def cancel(self, order_id: int) -> VenueAnswer:
        """cancelOrder, then TWS's verdict: the order's status, or the error refusing it."""
        return await self._send_and_wait(
            order_id, _cancel_answer, lambda: self.api.cancel_order(order_id)
        )

    # -- market data ----------------------------------------------------------------------------

    def stream_quotes(self, contracts: list[Contract], market_data_type: int) -> None:
        if market_data_type != 1:
            self.api.market_data_type(market_data_type)
        wanted = {c.conId for c in contracts}
        for con_id in list(self._tickers):
            if con_id not in wanted:
                ticker = self._tickers.pop(con_id)
                if ticker.contract is not None:
                    self.api.unsubscribe_quotes(ticker.contract)
        for contract in contracts:
            if contract.conId not in self._tickers:
                self._tickers[contract.conId] = self.api.subscribe_quotes(contract)


def _tick_of(ticker: Ticker, contract: Contract) -> Callable[[], SessionEvent]:
    def make() -> SessionEvent:
        return IbTick(
            con_id=int(contract.conId),
            bid=positive_or_none(ticker.bid),
            ask=positive_or_none(ticker.ask),
            last=positive_or_none(ticker.last),
        )

    return make


def _placement_answer(answer: VenueAnswer) -> bool:
    if isinstance(answer, IbError):
        return answer.kind is not ErrorKind.INFO
    if isinstance(answer, IbOrderStatus):
        return answer.status not in _LOCAL_STATUSES
    return True


def _modify_answer(answer: VenueAnswer) -> bool:
    if isinstance(answer, IbError):
        return answer.kind is not ErrorKind.INFO
    return isinstance(answer, IbOpenOrder)


def _cancel_answer(answer: VenueAnswer) -> bool:
    if isinstance(answer, IbError):
        return answer.kind in (
            ErrorKind.ORDER_CANCELLED,
            ErrorKind.CANCEL_REJECTED,
            ErrorKind.PACING,
        )
    if isinstance(answer, IbOrderStatus):
        return answer.status in ("Cancelled", "ApiCancelled", "Filled", "Inactive")
    return False
