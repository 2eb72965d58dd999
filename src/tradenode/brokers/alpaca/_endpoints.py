"""Alpaca's Trading API v2 as typed calls: the one module that names its paths.

Each method composes one request (method, path, query, JSON body) and hands
it to ``send``, the session's way of making it; the answer comes back as a
:class:`RestResult` (the parsed body, or the classified error answer).
Alpaca counts every Trading API call against one per-minute limit (200 by
default), so there are no per-endpoint weights to declare.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._codec import AlpacaErrorAnswer

__all__ = ["AlpacaApi", "Query", "RestResult", "Send"]

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class RestResult:
    """One REST answer: the HTTP status, the parsed body (success) or the error."""

    status: int
    body: Any = None
    error: AlpacaErrorAnswer | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"RestResult({self.status}, error={self.error!r})"


Send = Callable[[str, str, Query, Mapping[str, Any] | None], Awaitable[RestResult]]


def _segment(value: str) -> str:
    """A path segment (a symbol such as ``BTC/USD`` included), percent-encoded."""
    return urllib.parse.quote(value, safe="")


class AlpacaApi:
    """The calls the adapter makes, for one account."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def account(self) -> RestResult:
        return await self._send("GET", "/v2/account", (), None)

    async def clock(self) -> RestResult:
        return await self._send("GET", "/v2/clock", (), None)

    async def asset(self, symbol: str) -> RestResult:
        return await self._send("GET", f"/v2/assets/{_segment(symbol)}", (), None)

    async def positions(self) -> RestResult:
        return await self._send("GET", "/v2/positions", (), None)

    async def create_order(self, body: Mapping[str, Any]) -> RestResult:
        return await self._send("POST", "/v2/orders", (), body)

    async def order(self, order_id: str) -> RestResult:
        return await self._send("GET", f"/v2/orders/{_segment(order_id)}", (), None)

    async def order_by_client_id(self, client_order_id: str) -> RestResult:
        """``GET /v2/orders:by_client_order_id`` (a literal colon in the path)."""
        query = (("client_order_id", client_order_id),)
        return await self._send("GET", "/v2/orders:by_client_order_id", query, None)

    async def list_orders(
        self,
        *,
        status: str = "open",
        after: str | None = None,
        limit: int = 500,
        direction: str = "asc",
        symbols: Sequence[str] = (),
    ) -> RestResult:
        query = [("status", status), ("limit", str(limit)), ("direction", direction)]
        if after is not None:
            query.append(("after", after))
        if symbols:
            query.append(("symbols", ",".join(symbols)))
        return await self._send("GET", "/v2/orders", query, None)

    async def replace_order(self, order_id: str, body: Mapping[str, Any]) -> RestResult:
        return await self._send("PATCH", f"/v2/orders/{_segment(order_id)}", (), body)

    async def cancel_order(self, order_id: str) -> RestResult:
        return await self._send("DELETE", f"/v2/orders/{_segment(order_id)}", (), None)

    async def cancel_all(self) -> RestResult:
        """``DELETE /v2/orders``: 207, one item per order attempted."""
        return await self._send("DELETE", "/v2/orders", (), None)

    async def fills(
        self, *, after: str | None = None, page_token: str | None = None, page_size: int = 100
    ) -> RestResult:
        """One page of the account's FILL activities, oldest first."""
        query = [("direction", "asc"), ("page_size", str(page_size))]
        if after is not None:
            query.append(("after", after))
        if page_token is not None:
            query.append(("page_token", page_token))
        return await self._send("GET", "/v2/account/activities/FILL", query, None)
