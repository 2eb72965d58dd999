"""Binance's endpoints, typed: the one place that knows paths, methods, weights.

The actor and the session never spell a REST path or a WebSocket API method:
they call :class:`BinanceApi` (``new_order``, ``query_order``, ``my_trades``,
``cancel_replace``, ...), which knows for each call its HTTP method and path
(or WebSocket API method), whether it is signed, its request weight and how
its parameters are named. A new Binance endpoint, or Binance moving one, is a
change here and nowhere else.

Layering: parameter *encoding* of our orders stays in the pure codec
(``new_order_params``, ``cancel_replace_params``, ``cancel_params``,
``query_params``); this layer composes the codec with a :class:`Transport`
(the :class:`~tradenode.brokers.binance.BinanceSession` in production). It
interprets no answer: each call returns the venue's ``RestResult`` or
``WsResponse`` as it came, errors included, because what an error means
(retry, reject, fail the connection) is the actor's decision, not the
endpoint's. Placement calls (``new_order``, ``cancel_replace``) take the
codec's encoded params rather than our ``SubmitOrder``: the actor must know
an order is expressible on Binance *before* it decides to send it (an
unsupported order is rejected at once, never put in flight).

Weights are Binance's published request weights (``X-MBX-USED-WEIGHT-*``);
``Endpoint.orders`` is what a call adds to the ``ORDERS`` counters. The
breaker learns the venue's actual counters from each answer's headers; the
weights here say what a call will cost before it is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from ._codec import cancel_params, query_params

if TYPE_CHECKING:
    from ._codec import WsResponse
    from ._session import RestResult

__all__ = [
    "ACCOUNT",
    "ALL_ORDERS",
    "BOOK_TICKER",
    "BOOK_TICKERS",
    "CANCEL_OPEN_ORDERS",
    "CANCEL_ORDER",
    "CANCEL_REPLACE",
    "DEPTH",
    "EXCHANGE_INFO",
    "MY_TRADES",
    "MY_TRADES_OF_ORDER",
    "NEW_ORDER",
    "OPEN_ORDERS",
    "OPEN_ORDERS_ALL_SYMBOLS",
    "ORDER_CANCEL",
    "ORDER_CANCEL_REPLACE",
    "ORDER_PLACE",
    "ORDER_STATUS",
    "PAGE_LIMIT",
    "QUERY_ORDER",
    "SERVER_TIME",
    "SESSION_LOGON",
    "TICKER_PRICE",
    "USER_DATA_SUBSCRIBE",
    "USER_DATA_SUBSCRIBE_SIGNATURE",
    "BinanceApi",
    "Endpoint",
    "Transport",
    "WsMethod",
    "depth_weight",
    "market_streams_url",
    "subscribe_streams_message",
]

Params = Sequence[tuple[str, str]]

PAGE_LIMIT = 1000
"""The most rows ``myTrades`` and ``allOrders`` return per call (``limit``'s maximum)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint: HTTP method, path, signing, and what one call costs."""

    method: str
    path: str
    signed: bool
    weight: int
    orders: int = 0
    """How much one call adds to the ``ORDERS`` counters (it places an order)."""

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class WsMethod:
    """One WebSocket API method, its signing and weight."""

    name: str
    signed: bool
    weight: int

    def __str__(self) -> str:
        return self.name


# -- public (unsigned) ----------------------------------------------------------------

SERVER_TIME = Endpoint("GET", "/api/v3/time", signed=False, weight=1)
EXCHANGE_INFO = Endpoint("GET", "/api/v3/exchangeInfo", signed=False, weight=20)
BOOK_TICKER = Endpoint("GET", "/api/v3/ticker/bookTicker", signed=False, weight=2)
"""One symbol's best bid/ask."""
BOOK_TICKERS = replace(BOOK_TICKER, weight=4)
"""Several symbols' best bid/ask (``symbols=[...]``)."""
TICKER_PRICE = Endpoint("GET", "/api/v3/ticker/price", signed=False, weight=2)
DEPTH = Endpoint("GET", "/api/v3/depth", signed=False, weight=5)
"""The order book; its weight grows with ``limit`` (:func:`depth_weight`)."""

# -- trading and account (signed) -------------------------------------------------------

NEW_ORDER = Endpoint("POST", "/api/v3/order", signed=True, weight=1, orders=1)
CANCEL_ORDER = Endpoint("DELETE", "/api/v3/order", signed=True, weight=1)
QUERY_ORDER = Endpoint("GET", "/api/v3/order", signed=True, weight=4)
CANCEL_REPLACE = Endpoint("POST", "/api/v3/order/cancelReplace", signed=True, weight=1, orders=1)
CANCEL_OPEN_ORDERS = Endpoint("DELETE", "/api/v3/openOrders", signed=True, weight=1)
OPEN_ORDERS = Endpoint("GET", "/api/v3/openOrders", signed=True, weight=6)
"""One symbol's open orders."""
OPEN_ORDERS_ALL_SYMBOLS = replace(OPEN_ORDERS, weight=80)
"""Every open order of the account (no ``symbol``)."""
ALL_ORDERS = Endpoint("GET", "/api/v3/allOrders", signed=True, weight=20)
MY_TRADES = Endpoint("GET", "/api/v3/myTrades", signed=True, weight=20)
MY_TRADES_OF_ORDER = replace(MY_TRADES, weight=5)
"""``myTrades`` narrowed to one ``orderId``: cheaper."""
ACCOUNT = Endpoint("GET", "/api/v3/account", signed=True, weight=20)

# -- the WebSocket API ------------------------------------------------------------------

SESSION_LOGON = WsMethod("session.logon", signed=True, weight=2)
"""Authenticates the connection (Ed25519 keys only); later requests on it may
leave out ``apiKey`` and ``signature``."""
USER_DATA_SUBSCRIBE = WsMethod("userDataStream.subscribe", signed=False, weight=2)
"""The account's events on a logged-on connection: the session's key signs for it."""
USER_DATA_SUBSCRIBE_SIGNATURE = WsMethod(
    "userDataStream.subscribe.signature", signed=True, weight=2
)
"""The account's events with a signature of their own (any key type, no logon)."""


ORDER_PLACE = WsMethod("order.place", signed=True, weight=1)
"""``POST /api/v3/order`` over the WebSocket API: same params, same answer."""
ORDER_CANCEL = WsMethod("order.cancel", signed=True, weight=1)
"""``DELETE /api/v3/order`` over the WebSocket API."""
ORDER_CANCEL_REPLACE = WsMethod("order.cancelReplace", signed=True, weight=1)
"""``POST /api/v3/order/cancelReplace`` over the WebSocket API."""
ORDER_STATUS = WsMethod("order.status", signed=True, weight=4)
"""``GET /api/v3/order`` over the WebSocket API."""


def depth_weight(limit: int) -> int:
    """``GET /api/v3/depth``'s weight for ``limit`` levels."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def market_streams_url(stream_url: str, streams: Sequence[str]) -> str:
    """The combined market-stream URL for ``streams`` (``<base>/stream?streams=a/b``)."""
    return f"{stream_url.rstrip('/')}/stream?streams=" + "/".join(streams)


def subscribe_streams_message(streams: Sequence[str], request_id: int) -> str:
    """The frame that adds ``streams`` to an open market-stream connection."""
    return json.dumps({"method": "SUBSCRIBE", "params": list(streams), "id": request_id})


class Transport(Protocol):
    """What the endpoint layer needs from a connection: signed REST and WebSocket API
    calls. :class:`~tradenode.brokers.binance.BinanceSession` is one; the session
    signs (it holds the credentials and the venue's clock)."""

    @property
    def broker(self) -> str: ...

    async def rest(
        self,
        method: str,
        path: str,
        params: Params = (),
        *,
        signed: bool = False,
        api_key: bool = False,
    ) -> RestResult: ...

    async def call(
        self,
        method: str,
        params: Mapping[str, str] | None,
        *,
        signed: bool = False,
        on_answer: Callable[[WsResponse], None] | None = None,
    ) -> WsResponse: ...


class BinanceApi:
    """Binance Spot's endpoints as typed calls over one :class:`Transport`.

    Every call returns what the venue answered (``RestResult.error`` set on a
    refusal); transport failures raise as the transport raises them
    (``BrokerConnectionError``, ``BrokerTimeoutError``). Cheap to build: it
    holds nothing but the transport.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"BinanceApi({self._transport!r})"

    @property
    def broker(self) -> str:
        return self._transport.broker

    async def _rest(self, endpoint: Endpoint, params: Params = ()) -> RestResult:
        return await self._transport.rest(
            endpoint.method, endpoint.path, params, signed=endpoint.signed
        )

    # -- public market data and exchange metadata ----------------------------------------

    async def server_time(self) -> RestResult:
        """``GET /api/v3/time``: ``{"serverTime": <ms>}``."""
        return await self._rest(SERVER_TIME)

    async def exchange_info(self) -> RestResult:
        """``GET /api/v3/exchangeInfo``: every symbol's filters and the rate limits."""
        return await self._rest(EXCHANGE_INFO)

    async def book_ticker(self, symbol: str) -> RestResult:
        """``GET /api/v3/ticker/bookTicker`` for one symbol: one row."""
        return await self._rest(BOOK_TICKER, [("symbol", symbol)])

    async def book_tickers(self, symbols: Sequence[str]) -> RestResult:
        """``GET /api/v3/ticker/bookTicker?symbols=[...]``: a list of rows."""
        listed = "[" + ",".join(f'"{symbol}"' for symbol in symbols) + "]"
        return await self._rest(BOOK_TICKERS, [("symbols", listed)])

    async def ticker_price(self, symbol: str) -> RestResult:
        """``GET /api/v3/ticker/price``: the last price of one symbol."""
        return await self._rest(TICKER_PRICE, [("symbol", symbol)])

    async def depth(self, symbol: str, limit: int) -> RestResult:
        """``GET /api/v3/depth``: ``limit`` levels each side (weight: :func:`depth_weight`)."""
        endpoint = replace(DEPTH, weight=depth_weight(limit))
        return await self._rest(endpoint, [("symbol", symbol), ("limit", str(limit))])

    # -- orders ----------------------------------------------------------------------------

    async def new_order(self, params: Params) -> RestResult:
        """``POST /api/v3/order`` with ``params`` as ``new_order_params`` encodes an order.

        Signed synchronously when called, before the first await: a caller that
        checks a deadline right before calling sends nothing past it."""
        return await self._rest(NEW_ORDER, params)

    async def cancel_order(self, symbol: str, client_order_id: str) -> RestResult:
        """``DELETE /api/v3/order`` by client order id: the canceled order."""
        return await self._rest(CANCEL_ORDER, cancel_params(symbol, client_order_id))

    async def query_order(
        self, symbol: str, *, client_order_id: str | None = None, order_id: int | None = None
    ) -> RestResult:
        """``GET /api/v3/order`` by client order id or by the venue's order id."""
        if (client_order_id is None) == (order_id is None):
            raise TypeError("query_order needs exactly one of client_order_id and order_id")
        if client_order_id is not None:
            return await self._rest(QUERY_ORDER, query_params(symbol, client_order_id))
        return await self._rest(QUERY_ORDER, [("symbol", symbol), ("orderId", str(order_id))])

    async def cancel_replace(self, params: Params) -> RestResult:
        """``POST /api/v3/order/cancelReplace`` with ``params`` as
        ``cancel_replace_params`` encodes a modify (signed before the first await,
        like :meth:`new_order`)."""
        return await self._rest(CANCEL_REPLACE, params)

    async def cancel_open_orders(self, symbol: str) -> RestResult:
        """``DELETE /api/v3/openOrders``: cancel every open order of ``symbol``."""
        return await self._rest(CANCEL_OPEN_ORDERS, [("symbol", symbol)])

    async def open_orders(self, symbol: str | None = None) -> RestResult:
        """``GET /api/v3/openOrders``: one symbol's, or (weight 80) the account's."""
        if symbol is None:
            return await self._rest(OPEN_ORDERS_ALL_SYMBOLS)
        return await self._rest(OPEN_ORDERS, [("symbol", symbol)])

    async def all_orders(
        self, symbol: str, *, order_id: int | None = None, limit: int | None = None
    ) -> RestResult:
        """``GET /api/v3/allOrders``: ``symbol``'s orders from ``order_id`` on, oldest
        first; without ``order_id``, the most recent ``limit``."""
        params = [("symbol", symbol)]
        if order_id is not None:
            params.append(("orderId", str(order_id)))
        if limit is not None:
            params.append(("limit", str(limit)))
        return await self._rest(ALL_ORDERS, params)

    async def my_trades(
        self,
        symbol: str,
        *,
        order_id: int | None = None,
        from_id: int | None = None,
        limit: int | None = None,
    ) -> RestResult:
        """``GET /api/v3/myTrades``: one order's trades (``order_id``, weight 5), or
        ``symbol``'s from trade id ``from_id`` on, or the most recent ``limit``."""
        params = [("symbol", symbol)]
        if order_id is not None:
            params.append(("orderId", str(order_id)))
        if from_id is not None:
            params.append(("fromId", str(from_id)))
        if limit is not None:
            params.append(("limit", str(limit)))
        return await self._rest(MY_TRADES_OF_ORDER if order_id is not None else MY_TRADES, params)

    async def account(self, *, omit_zero_balances: bool = True) -> RestResult:
        """``GET /api/v3/account``: balances (only the non-zero ones by default)."""
        params = [("omitZeroBalances", "true")] if omit_zero_balances else []
        return await self._rest(ACCOUNT, params)

    # -- the WebSocket API -------------------------------------------------------------------

    async def _ws(
        self,
        method: WsMethod,
        params: Params,
        on_answer: Callable[[WsResponse], None] | None = None,
    ) -> WsResponse:
        return await self._transport.call(
            method.name, dict(params), signed=method.signed, on_answer=on_answer
        )

    async def ws_new_order(
        self, params: Params, *, on_answer: Callable[[WsResponse], None] | None = None
    ) -> WsResponse:
        """``order.place`` with ``params`` as ``new_order_params`` encodes an order
        (signed, or stamped for a logged-on session, before the first await);
        ``on_answer`` as the transport's ``call`` takes it."""
        return await self._ws(ORDER_PLACE, params, on_answer)

    async def ws_cancel_order(self, symbol: str, client_order_id: str) -> WsResponse:
        """``order.cancel`` by client order id: the canceled order."""
        return await self._ws(ORDER_CANCEL, cancel_params(symbol, client_order_id))

    async def ws_query_order(self, symbol: str, client_order_id: str) -> WsResponse:
        """``order.status`` by client order id."""
        return await self._ws(ORDER_STATUS, query_params(symbol, client_order_id))

    async def ws_cancel_replace(self, params: Params) -> WsResponse:
        """``order.cancelReplace`` with ``params`` as ``cancel_replace_params`` encodes
        a modify (signed before the first await, like :meth:`ws_new_order`)."""
        return await self._ws(ORDER_CANCEL_REPLACE, params)

    async def session_logon(self) -> WsResponse:
        """``session.logon``: authenticate the WebSocket API connection (Ed25519 keys)."""
        return await self._transport.call(SESSION_LOGON.name, {}, signed=SESSION_LOGON.signed)

    async def subscribe_user_data(self, *, logged_on: bool) -> WsResponse:
        """Subscribe the connection to the account's events: ``userDataStream.subscribe``
        when it is logged on (no params at all), else with a signature of its own."""
        if logged_on:
            return await self._transport.call(USER_DATA_SUBSCRIBE.name, None)
        method = USER_DATA_SUBSCRIBE_SIGNATURE
        return await self._transport.call(method.name, {}, signed=method.signed)
