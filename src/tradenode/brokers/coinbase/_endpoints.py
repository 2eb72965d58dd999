"""Coinbase Advanced Trade's REST endpoints as typed calls: the one module that names them.

Paths and methods are Coinbase's (fact sheet 3.3; coinbase-advanced-py
``rest/orders.py``, ``accounts.py``, ``products.py``, ``public.py``). Each
call hands method, path, query and body to ``send``, the session's
transport, which signs it (one JWT per request, its ``uri`` claim naming
this method and path) unless the endpoint is public. Lists in a query go as
repeated keys (``order_ids=a&order_ids=b``), as ``requests`` sends them for the SDK.
The preview endpoints are not used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._codec import CoinbaseErrorAnswer

__all__ = ["API_PREFIX", "CoinbaseApi", "Query", "RestResult", "Send"]

API_PREFIX = "/api/v3/brokerage"

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class RestResult:
    """One REST answer: the parsed body (2xx) or the error answer, with the headers."""

    status: int
    body: Any = None
    error: CoinbaseErrorAnswer | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RestResult(status={self.status}, error={self.error!r})"


class Send(Protocol):
    def __call__(
        self,
        method: str,
        path: str,
        query: Query = (),
        body: Mapping[str, Any] | None = None,
        *,
        public: bool = False,
    ) -> Awaitable[RestResult]: ...


def _many(name: str, values: Sequence[str]) -> list[tuple[str, str]]:
    return [(name, value) for value in values]


class CoinbaseApi:
    """The calls the adapter makes."""

    def __init__(self, send: Send) -> None:
        self._send = send

    # -- public --------------------------------------------------------------------

    async def server_time(self) -> RestResult:
        return await self._send("GET", f"{API_PREFIX}/time", public=True)

    # -- products and accounts -------------------------------------------------------

    async def product(self, product_id: str) -> RestResult:
        return await self._send("GET", f"{API_PREFIX}/products/{product_id}")

    async def best_bid_ask(self, product_ids: Sequence[str]) -> RestResult:
        return await self._send(
            "GET", f"{API_PREFIX}/best_bid_ask", _many("product_ids", product_ids)
        )

    async def accounts(self, cursor: str | None = None, limit: int = 250) -> RestResult:
        query = [("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
        return await self._send("GET", f"{API_PREFIX}/accounts", query)

    # -- orders --------------------------------------------------------------------------

    async def create_order(self, body: Mapping[str, Any]) -> RestResult:
        return await self._send("POST", f"{API_PREFIX}/orders", body=body)

    async def cancel_orders(self, order_ids: Sequence[str]) -> RestResult:
        return await self._send(
            "POST", f"{API_PREFIX}/orders/batch_cancel", body={"order_ids": list(order_ids)}
        )

    async def edit_order(self, body: Mapping[str, Any]) -> RestResult:
        return await self._send("POST", f"{API_PREFIX}/orders/edit", body=body)

    async def order(self, order_id: str) -> RestResult:
        return await self._send("GET", f"{API_PREFIX}/orders/historical/{order_id}")

    async def list_orders(
        self,
        *,
        order_status: Sequence[str] = (),
        product_ids: Sequence[str] = (),
        order_ids: Sequence[str] = (),
        cursor: str | None = None,
        limit: int = 250,
    ) -> RestResult:
        query = (
            _many("order_status", order_status)
            + _many("product_ids", product_ids)
            + _many("order_ids", order_ids)
            + [("limit", str(limit))]
            + ([("cursor", cursor)] if cursor else [])
        )
        return await self._send("GET", f"{API_PREFIX}/orders/historical/batch", query)

    async def fills(
        self,
        *,
        order_ids: Sequence[str] = (),
        product_ids: Sequence[str] = (),
        start_sequence_timestamp: str | None = None,
        cursor: str | None = None,
        limit: int = 250,
    ) -> RestResult:
        query = (
            _many("order_ids", order_ids)
            + _many("product_ids", product_ids)
            + (
                [("start_sequence_timestamp", start_sequence_timestamp)]
                if start_sequence_timestamp
                else []
            )
            + [("limit", str(limit))]
            + ([("cursor", cursor)] if cursor else [])
        )
        return await self._send("GET", f"{API_PREFIX}/orders/historical/fills", query)
