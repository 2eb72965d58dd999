"""OANDA v20's REST endpoints as typed calls: the one module that names them.

Each method builds the oandapyV20 endpoint object for one call (the library
owns the paths, the methods and the status each answer must have, fact
sheet A5) and hands it to ``send``, the session's way of running a blocking
oandapyV20 request off its trio loop. Order specifiers are our client
order ids, ``@<id>`` (OANDA accepts them wherever an order id goes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from oandapyV20.endpoints import accounts, orders, positions, transactions

from ._codec import OandaErrorAnswer

__all__ = ["OandaEndpoints", "RestResult", "client_specifier"]


class RestResult:
    """One REST answer: the parsed body (success) or the error answer."""

    __slots__ = ("body", "error", "headers")

    def __init__(
        self,
        body: Any = None,
        error: OandaErrorAnswer | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.body = body
        self.error = error
        self.headers: Mapping[str, str] = headers or {}

    def __repr__(self) -> str:
        return f"RestResult(error={self.error!r})"


Send = Callable[[Any], Awaitable[RestResult]]


def client_specifier(client_order_id: str) -> str:
    """The order specifier for our client order id."""
    return f"@{client_order_id}"


class OandaEndpoints:
    """The calls the adapter makes, for one account."""

    def __init__(self, account_id: str, send: Send) -> None:
        self._account = account_id
        self._send = send

    async def instruments(self, names: Sequence[str] = ()) -> RestResult:
        params = {"instruments": ",".join(names)} if names else None
        return await self._send(accounts.AccountInstruments(self._account, params=params))

    async def summary(self) -> RestResult:
        return await self._send(accounts.AccountSummary(self._account))

    async def create_order(self, body: Mapping[str, Any]) -> RestResult:
        return await self._send(orders.OrderCreate(self._account, data=dict(body)))

    async def replace_order(self, client_order_id: str, body: Mapping[str, Any]) -> RestResult:
        spec = client_specifier(client_order_id)
        return await self._send(orders.OrderReplace(self._account, spec, data=dict(body)))

    async def cancel_order(self, specifier: str) -> RestResult:
        """``specifier``: an OANDA order id, or ``client_specifier(cid)``."""
        return await self._send(orders.OrderCancel(self._account, specifier))

    async def order(self, client_order_id: str) -> RestResult:
        spec = client_specifier(client_order_id)
        return await self._send(orders.OrderDetails(self._account, spec))

    async def pending_orders(self) -> RestResult:
        return await self._send(orders.OrdersPending(self._account))

    async def open_positions(self) -> RestResult:
        return await self._send(positions.OpenPositions(self._account))

    async def transactions_range(self, first: int, last: int) -> RestResult:
        """Transactions ``first`` to ``last``, both included, ascending."""
        params = {"from": str(first), "to": str(last)}
        return await self._send(transactions.TransactionIDRange(self._account, params=params))

    async def transactions_since(self, transaction_id: str) -> RestResult:
        """Every transaction after ``transaction_id`` (excluded), ascending."""
        params = {"id": transaction_id}
        return await self._send(transactions.TransactionsSinceID(self._account, params=params))
