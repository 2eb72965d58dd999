"""The one typed layer between the broker and a ccxt exchange object.

Only this module calls ccxt's methods, and every one of them goes through
:meth:`CcxtApi._call`: a ccxt exception becomes our :class:`CcxtCallError`
there (``raise ... from exc``, with its meaning from ``_codec.classify`` and
the Retry-After of a 429), an answer becomes typed records (``_codec``), and
each call is counted for the rate observations the breaker reads.

**Client order ids** travel where each exchange's ccxt class expects them
(``ccxt.md`` section 5, checked in ccxt 4.5.90's source): the unified
``clientOrderId`` on most classes (Binance sends ``newClientOrderId``, OKX
``clOrdId``, Gate ``text``); Coinbase's class ignores ``clientOrderId`` and
needs ``client_order_id``; Bybit's ``orderLinkId``; Kraken's ``cl_ord_id``.
Looking an order up by client id works through ``fetch_order`` where the
class reads the id (Binance's ``origClientOrderId``, OKX's ``clOrdId``); where
it is broken (Coinbase, Kraken: they send ``None`` as an order id) the open
and closed order lists are searched instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from ._codec import (
    CcxtCallError,
    CcxtOrder,
    CcxtTrade,
    ErrorKind,
    OrderRequest,
    Placement,
    classify,
    parse_order,
    parse_orders,
    parse_placement,
    parse_trades,
    retry_after_seconds,
)

__all__ = ["CLIENT_ID_PARAMS", "CcxtApi", "ClientIdWay", "client_id_way"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClientIdWay:
    """How one exchange's ccxt class takes a client order id."""

    create: str
    """The ``create_order`` parameter."""
    fetch: str | None
    """The ``fetch_order``/``cancel_order`` parameter, or None: ccxt cannot look
    an order up by client id there (the order lists are searched)."""


CLIENT_ID_PARAMS: Mapping[str, ClientIdWay] = {
    "coinbase": ClientIdWay("client_order_id", None),
    "bybit": ClientIdWay("orderLinkId", "orderLinkId"),
    "kraken": ClientIdWay("cl_ord_id", None),
}
_UNIFIED = ClientIdWay("clientOrderId", "clientOrderId")


def client_id_way(exchange: str, override: str | None = None) -> ClientIdWay:
    way = CLIENT_ID_PARAMS.get(exchange, _UNIFIED)
    return way if override is None else ClientIdWay(override, way.fetch)


class CcxtApi:
    """Typed calls on one ccxt exchange object (on the incarnation's asyncio loop)."""

    def __init__(self, exchange: Any, *, name: str, way: ClientIdWay) -> None:
        self.exchange = exchange
        self.name = name
        self.way = way
        self.calls = 0
        """Requests started (for the rate observations)."""

    @property
    def id(self) -> str:
        return str(self.exchange.id)

    @property
    def precision_mode(self) -> int:
        return int(self.exchange.precisionMode)

    def market_id(self, symbol: str) -> str:
        return str(self.exchange.market(symbol)["id"])

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        self.calls += 1
        try:
            return await call()
        except Exception as exc:  # ccxt's tree, or what its transport let through
            kind = classify(exc)
            headers = getattr(self.exchange, "last_response_headers", None)
            raise CcxtCallError(
                f"{what}: {type(exc).__name__}: {exc}",
                kind=kind,
                broker=self.name,
                code=type(exc).__name__,
                retry_after=retry_after_seconds(headers)
                if kind is ErrorKind.RATE_LIMITED
                else None,
            ) from exc

    async def load_markets(self) -> None:
        ex = self.exchange
        await self._call("load_markets", ex.load_markets)

    # -- orders ----------------------------------------------------------------------------

    async def create_order(self, order: OrderRequest) -> CcxtOrder | Placement:
        ex = self.exchange
        raw = await self._call(
            "create_order",
            lambda: ex.create_order(
                order.symbol, order.type, order.side, order.amount, order.price, dict(order.params)
            ),
        )
        return parse_placement(raw)

    async def cancel_order(self, symbol: str, order_id: str | None, cid: str) -> object:
        """Cancel by the venue's id when known, else by client id. The answer's shape
        differs per exchange (Binance: the order; OKX: an acknowledgement), so it
        is returned raw: what happened comes from the order itself."""
        ex = self.exchange
        params: dict[str, Any] = {}
        if order_id is None:
            if self.way.fetch is None:
                raise CcxtCallError(
                    f"{cid}: no venue order id known and {self.id} cancels by id only",
                    kind=ErrorKind.NOT_FOUND,
                    broker=self.name,
                    code="OrderNotFound",
                )
            params[self.way.fetch] = cid
        result: object = await self._call(
            "cancel_order", lambda: ex.cancel_order(order_id or "", symbol, params)
        )
        return result

    async def cancel_all(self, symbol: str) -> object:
        ex = self.exchange
        result: object = await self._call("cancel_all_orders", lambda: ex.cancel_all_orders(symbol))
        return result

    async def order_by_id(self, symbol: str, order_id: str) -> CcxtOrder:
        ex = self.exchange
        return parse_order(
            await self._call("fetch_order", lambda: ex.fetch_order(order_id, symbol))
        )

    async def find_order(self, symbol: str, cid: str) -> CcxtOrder | None:
        """The venue's order under client id ``cid``, or None if it has none."""
        ex = self.exchange
        fetch = self.way.fetch
        if fetch is not None and ex.has.get("fetchOrder"):
            try:
                raw = await self._call(
                    "fetch_order", lambda: ex.fetch_order("", symbol, {fetch: cid})
                )
            except CcxtCallError as exc:
                if exc.kind is ErrorKind.NOT_FOUND:
                    return None
                raise
            return parse_order(raw)
        for order in await self.open_orders(symbol):
            if order.client_order_id == cid:
                return order
        if ex.has.get("fetchClosedOrders"):
            closed = await self._call("fetch_closed_orders", lambda: ex.fetch_closed_orders(symbol))
            for order in parse_orders(closed):
                if order.client_order_id == cid:
                    return order
        return None

    async def open_orders(self, symbol: str) -> tuple[CcxtOrder, ...]:
        ex = self.exchange
        return parse_orders(
            await self._call("fetch_open_orders", lambda: ex.fetch_open_orders(symbol))
        )

    async def my_trades(self, symbol: str, since: int | None) -> tuple[CcxtTrade, ...]:
        """Our fills on ``symbol`` from ``since`` (ms, the venue's clock), oldest first."""
        ex = self.exchange
        return parse_trades(
            await self._call("fetch_my_trades", lambda: ex.fetch_my_trades(symbol, since))
        )

    async def order_trades(self, order: CcxtOrder) -> tuple[CcxtTrade, ...]:
        """The fills of one order: our trades on its symbol since it was placed."""
        since = None if order.timestamp is None else order.timestamp - 1_000
        return tuple(t for t in await self.my_trades(order.symbol, since) if t.order_id == order.id)

    async def last_price(self, symbol: str) -> Decimal | None:
        """The market's last trade price (a ticker), or None if the venue gives none."""
        ex = self.exchange
        ticker = await self._call("fetch_ticker", lambda: ex.fetch_ticker(symbol))
        last = ticker.get("last") if isinstance(ticker, Mapping) else None
        if last is None or isinstance(last, bool) or not isinstance(last, int | float | str):
            return None
        return Decimal(repr(last) if isinstance(last, float) else str(last))

    async def balances(self) -> dict[str, Any]:
        """Totals per currency (free and used)."""
        ex = self.exchange
        raw = await self._call("fetch_balance", ex.fetch_balance)
        totals = raw.get("total") if isinstance(raw, Mapping) else None
        return dict(totals) if isinstance(totals, Mapping) else {}

    # -- streams (ccxt.pro) ------------------------------------------------------------------

    async def watch_orders(self) -> list[Any]:
        ex = self.exchange
        result: list[Any] = await self._call("watch_orders", ex.watch_orders)
        return result

    async def watch_bids_asks(self, symbols: list[str]) -> dict[str, Any]:
        """ccxt.pro's top of book for ``symbols`` (Binance ``bookTicker``, OKX
        ``bbo-tbt``): the tickers that changed, by symbol."""
        ex = self.exchange
        result: dict[str, Any] = await self._call(
            "watch_bids_asks", lambda: ex.watch_bids_asks(symbols)
        )
        return result

    async def watch_my_trades(self) -> list[Any]:
        ex = self.exchange
        result: list[Any] = await self._call("watch_my_trades", ex.watch_my_trades)
        return result
