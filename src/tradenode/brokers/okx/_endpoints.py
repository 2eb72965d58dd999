"""OKX v5's endpoints as typed calls: the one module that names paths and operations.

Each call composes the codec's parameters with the session's transport
(:class:`Transport`: signed REST, operations on the private WebSocket).
Rate limits are OKX's published ones (``#overview-rate-limits`` and each
endpoint's "Rate Limit" line): N requests per 2 seconds, per user ID for
private endpoints, per instrument ID as well for the trading ones (place,
cancel and amend are counted separately, REST and WebSocket together).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ._codec import OkxAnswer, WsOpAnswer, ws_trade_args

__all__ = [
    "AMEND",
    "BATCH_CANCEL",
    "BATCH_PLACE",
    "CANCEL",
    "FILLS",
    "FILLS_HISTORY",
    "INSTRUMENTS",
    "ORDER",
    "ORDERS_HISTORY",
    "ORDERS_PENDING",
    "PAGE_LIMIT",
    "PLACE",
    "Endpoint",
    "OkxApi",
    "RestResult",
    "Transport",
]

#: The most rows one ``orders-pending``/``orders-history``/``fills`` page holds.
PAGE_LIMIT = 100
#: The most orders one ``batch-orders``/``cancel-batch-orders`` request holds.
BATCH_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST path (and the WebSocket operation doing the same, if any)."""

    method: str
    path: str
    limit: int
    """Requests (orders, for the batch ones) per ``window`` seconds."""
    window: float = 2.0
    per_instrument: bool = False
    op: str | None = None

    @property
    def name(self) -> str:
        return self.path.removeprefix("/api/v5/")


SERVER_TIME = Endpoint("GET", "/api/v5/public/time", 10)
INSTRUMENTS = Endpoint("GET", "/api/v5/public/instruments", 20)
TICKER = Endpoint("GET", "/api/v5/market/ticker", 20)
PLACE = Endpoint("POST", "/api/v5/trade/order", 60, per_instrument=True, op="order")
BATCH_PLACE = Endpoint(
    "POST", "/api/v5/trade/batch-orders", 300, per_instrument=True, op="batch-orders"
)
CANCEL = Endpoint("POST", "/api/v5/trade/cancel-order", 60, per_instrument=True, op="cancel-order")
BATCH_CANCEL = Endpoint(
    "POST", "/api/v5/trade/cancel-batch-orders", 300, per_instrument=True, op="batch-cancel-orders"
)
AMEND = Endpoint("POST", "/api/v5/trade/amend-order", 60, per_instrument=True, op="amend-order")
ORDER = Endpoint("GET", "/api/v5/trade/order", 60, per_instrument=True)
ORDERS_PENDING = Endpoint("GET", "/api/v5/trade/orders-pending", 60)
ORDERS_HISTORY = Endpoint("GET", "/api/v5/trade/orders-history", 40)
FILLS = Endpoint("GET", "/api/v5/trade/fills", 60)
FILLS_HISTORY = Endpoint("GET", "/api/v5/trade/fills-history", 10)
BALANCE = Endpoint("GET", "/api/v5/account/balance", 10)

#: The private WebSocket's channel of order updates (fills included) and the
#: public ones for quotes (``bbo-tbt``: best bid/ask, tick by tick).
ORDERS_CHANNEL = "orders"
QUOTES_CHANNEL = "bbo-tbt"


@dataclass(frozen=True, slots=True)
class RestResult:
    """One REST answer: HTTP status, the envelope (None if there was no readable
    one, e.g. a bare 5xx) and the headers (lower-case names)."""

    status: int
    answer: OkxAnswer | None
    headers: Mapping[str, str]


class Transport(Protocol):
    """What the endpoint layer needs from a session."""

    async def rest(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: object = None,
        signed: bool = True,
        exp_time_ms: int | None = None,
    ) -> RestResult: ...

    async def ws_call(
        self, op: str, args: Sequence[Mapping[str, str | int]], *, exp_time_ms: int | None = None
    ) -> WsOpAnswer: ...

    @property
    def ws_ready(self) -> bool: ...


def _query(**params: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((key, value) for key, value in params.items() if value is not None)


class OkxApi:
    """The calls the adapter makes; REST unless the method says WebSocket."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport
        self.inst_codes: dict[str, int] = {}
        """instId -> instIdCode, from the instrument list: the WebSocket trade
        operations name instruments by it."""

    # -- public ---------------------------------------------------------------------------

    async def server_time(self) -> RestResult:
        return await self._t.rest(SERVER_TIME.method, SERVER_TIME.path, signed=False)

    async def instruments(self) -> RestResult:
        params = _query(instType="SPOT")
        return await self._t.rest(INSTRUMENTS.method, INSTRUMENTS.path, params=params, signed=False)

    async def ticker(self, inst_id: str) -> RestResult:
        params = _query(instId=inst_id)
        return await self._t.rest(TICKER.method, TICKER.path, params=params, signed=False)

    # -- trading over REST ----------------------------------------------------------------

    async def place(self, args: Mapping[str, str], *, exp_time_ms: int | None) -> RestResult:
        return await self._t.rest(
            PLACE.method, PLACE.path, body=dict(args), exp_time_ms=exp_time_ms
        )

    async def place_batch(
        self, orders: Sequence[Mapping[str, str]], *, exp_time_ms: int | None
    ) -> RestResult:
        body = [dict(args) for args in orders]
        return await self._t.rest(
            BATCH_PLACE.method, BATCH_PLACE.path, body=body, exp_time_ms=exp_time_ms
        )

    async def cancel(self, args: Mapping[str, str]) -> RestResult:
        return await self._t.rest(CANCEL.method, CANCEL.path, body=dict(args))

    async def cancel_batch(self, orders: Sequence[Mapping[str, str]]) -> RestResult:
        body = [dict(args) for args in orders]
        return await self._t.rest(BATCH_CANCEL.method, BATCH_CANCEL.path, body=body)

    async def amend(self, args: Mapping[str, str], *, exp_time_ms: int | None) -> RestResult:
        return await self._t.rest(
            AMEND.method, AMEND.path, body=dict(args), exp_time_ms=exp_time_ms
        )

    # -- trading over the private WebSocket -------------------------------------------------

    @property
    def ws_ready(self) -> bool:
        """Whether the private WebSocket is logged in (the fast path is open)."""
        return self._t.ws_ready

    async def ws_place(self, args: Mapping[str, str], *, exp_time_ms: int | None) -> WsOpAnswer:
        assert PLACE.op is not None
        return await self._t.ws_call(
            PLACE.op, [ws_trade_args(args, self.inst_codes)], exp_time_ms=exp_time_ms
        )

    async def ws_place_batch(
        self, orders: Sequence[Mapping[str, str]], *, exp_time_ms: int | None
    ) -> WsOpAnswer:
        assert BATCH_PLACE.op is not None
        args = [ws_trade_args(order, self.inst_codes) for order in orders]
        return await self._t.ws_call(BATCH_PLACE.op, args, exp_time_ms=exp_time_ms)

    async def ws_cancel(self, args: Mapping[str, str]) -> WsOpAnswer:
        assert CANCEL.op is not None
        return await self._t.ws_call(CANCEL.op, [ws_trade_args(args, self.inst_codes)])

    async def ws_amend(self, args: Mapping[str, str], *, exp_time_ms: int | None) -> WsOpAnswer:
        assert AMEND.op is not None
        return await self._t.ws_call(
            AMEND.op, [ws_trade_args(args, self.inst_codes)], exp_time_ms=exp_time_ms
        )

    # -- queries --------------------------------------------------------------------------

    async def order(
        self, inst_id: str, *, client_order_id: str | None = None, order_id: str | None = None
    ) -> RestResult:
        """One order by ``clOrdId`` (the latest with that id) or ``ordId``."""
        params = _query(instId=inst_id, ordId=order_id, clOrdId=client_order_id)
        return await self._t.rest(ORDER.method, ORDER.path, params=params)

    async def orders_pending(
        self, inst_id: str | None = None, *, after: str | None = None
    ) -> RestResult:
        """Open orders, newest first; ``after`` (an ordId) pages to older ones."""
        params = _query(instType="SPOT", instId=inst_id, after=after, limit=str(PAGE_LIMIT))
        return await self._t.rest(ORDERS_PENDING.method, ORDERS_PENDING.path, params=params)

    async def orders_history(
        self, inst_id: str | None = None, *, before: str | None = None, after: str | None = None
    ) -> RestResult:
        """Finished orders of the last 7 days, newest first."""
        params = _query(
            instType="SPOT", instId=inst_id, before=before, after=after, limit=str(PAGE_LIMIT)
        )
        return await self._t.rest(ORDERS_HISTORY.method, ORDERS_HISTORY.path, params=params)

    async def fills(
        self,
        *,
        inst_id: str | None = None,
        order_id: str | None = None,
        before: str | None = None,
        after: str | None = None,
        history: bool = False,
    ) -> RestResult:
        """Fills of the last 3 days (``history``: 3 months, a tighter limit), newest
        first; ``before``/``after`` are billIds (rows newer / older than it)."""
        params = _query(
            instType="SPOT",
            instId=inst_id,
            ordId=order_id,
            before=before,
            after=after,
            limit=str(PAGE_LIMIT),
        )
        endpoint = FILLS_HISTORY if history else FILLS
        return await self._t.rest(endpoint.method, endpoint.path, params=params)

    async def balance(self) -> RestResult:
        return await self._t.rest(BALANCE.method, BALANCE.path)
