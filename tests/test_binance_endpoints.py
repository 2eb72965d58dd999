"""The typed endpoint layer (``BinanceApi``) against the local Binance venue.

Each typed call must reach the endpoint it names, with the parameters
Binance documents, at the weight the layer declares: the venue counts calls
per endpoint and reports its used weight in every answer's headers, so both
are checked against the venue's own books, never against our expectations
of them. A recording transport pins the exact wire parameters.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import trio

from tradenode.brokers.binance import BinanceCredentials, BinanceEndpoints

# The endpoint layer, the session and the codec are private: this file tests them
# directly (and reads the actor's and session's source for paths they must not name).
from tradenode.brokers.binance import _actor as actor_module
from tradenode.brokers.binance import _endpoints as endpoints
from tradenode.brokers.binance import _session as session_module
from tradenode.brokers.binance._codec import (
    cancel_replace_params,
    new_order_params,
    parse_account,
    parse_order,
    parse_trade,
)
from tradenode.brokers.binance._endpoints import BinanceApi, Endpoint
from tradenode.brokers.binance._session import BinanceSession, RestResult
from tradenode.messages import ModifyOrder, OrderType, Side, SubmitOrder
from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceVenue

D = Decimal
T = TypeVar("T")
NOW_MS = 1_700_000_000_000
"""The venue's clock stands still: the weight window never rolls mid-test."""


@pytest.fixture
def venue() -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=5, clock=lambda: NOW_MS) as local_venue:
        yield local_venue


def with_api(venue: BinanceVenue, body: Callable[[BinanceApi], Awaitable[T]]) -> T:
    """Run ``body`` with the typed layer over a connected session (REST and WS API)."""
    results: list[T] = []

    async def main() -> None:
        session = BinanceSession(
            "binance",
            BinanceCredentials(DEFAULT_API_KEY, DEFAULT_API_SECRET),
            BinanceEndpoints(venue.rest_url, venue.ws_api_url, venue.stream_url),
            deliver=lambda _event: None,
            time_ms=lambda: NOW_MS,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(session.serve)
            try:
                results.append(await body(session.api))
            finally:
                await session.aclose()

    trio.run(main)
    return results[0]


def used_weight(result: RestResult) -> int:
    return int(result.headers["x-mbx-used-weight-1m"])


def call_name(endpoint: Endpoint) -> str:
    """How the venue counts a REST endpoint in ``calls()``: ``"GET order"``."""
    return f"{endpoint.method} {endpoint.path.removeprefix('/api/v3/')}"


async def weighed(
    api: BinanceApi, calls: Sequence[tuple[Endpoint, Callable[[], Awaitable[RestResult]]]]
) -> list[tuple[Endpoint, RestResult, int]]:
    """Make ``calls`` one after another; each with the weight the venue charged it."""
    before = used_weight(await api.server_time())
    charged = []
    for endpoint, call in calls:
        result = await call()
        assert result.error is None, (endpoint, result.error)
        charged.append((endpoint, result, used_weight(result) - before))
        before = used_weight(result)
    return charged


def submit(coid: str, order_type: OrderType = OrderType.MARKET, **fields: Any) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue="binance",
        symbol=fields.pop("symbol", "BTCUSDT"),
        side=fields.pop("side", Side.BUY),
        order_type=order_type,
        quantity=fields.pop("quantity", D("0.01")),
        **fields,
    )


# -- against the venue ---------------------------------------------------------------------


def test_public_calls_reach_their_endpoints_at_the_declared_weight(venue: BinanceVenue) -> None:
    async def body(api: BinanceApi) -> list[tuple[Endpoint, RestResult, int]]:
        return await weighed(
            api,
            [
                (endpoints.SERVER_TIME, api.server_time),
                (endpoints.EXCHANGE_INFO, api.exchange_info),
                (endpoints.BOOK_TICKER, lambda: api.book_ticker("BTCUSDT")),
                (endpoints.BOOK_TICKERS, lambda: api.book_tickers(["BTCUSDT", "ETHUSDT"])),
                (endpoints.TICKER_PRICE, lambda: api.ticker_price("ETHUSDT")),
                (endpoints.DEPTH, lambda: api.depth("BTCUSDT", 10)),
                (
                    Endpoint("GET", "/api/v3/depth", False, endpoints.depth_weight(500)),
                    lambda: api.depth("BTCUSDT", 500),
                ),
            ],
        )

    charged = with_api(venue, body)
    for endpoint, _result, weight in charged:
        assert weight == endpoint.weight, endpoint
    assert endpoints.depth_weight(500) == 25
    time, info, book, books, price, depth, _deep = (result.body for _e, result, _w in charged)
    assert time == {"serverTime": NOW_MS}
    assert {row["symbol"] for row in info["symbols"]} >= {"BTCUSDT", "ETHUSDT"}
    assert book["symbol"] == "BTCUSDT"
    assert [row["symbol"] for row in books] == ["BTCUSDT", "ETHUSDT"]
    assert price["symbol"] == "ETHUSDT"
    assert len(depth["bids"]) <= 10 and len(depth["asks"]) <= 10
    calls = venue.calls()
    assert calls["GET time"] == 2
    assert calls["GET ticker/bookTicker"] == 2
    assert calls["GET depth"] == 2
    assert calls["GET exchangeInfo"] == calls["GET ticker/price"] == 1


def test_an_order_through_place_query_replace_and_cancel(venue: BinanceVenue) -> None:
    resting = submit("e1", OrderType.LIMIT, price=D("40000.00"))

    async def body(api: BinanceApi) -> dict[str, Any]:
        placed = await api.new_order(new_order_params(resting))
        order_id = placed.body["orderId"]
        by_client_id = await api.query_order("BTCUSDT", client_order_id="e1")
        by_order_id = await api.query_order("BTCUSDT", order_id=order_id)
        open_here = await api.open_orders("BTCUSDT")
        open_everywhere = await api.open_orders()
        modify = ModifyOrder(
            client_order_id="e1",
            venue="binance",
            symbol="BTCUSDT",
            price=D("41000.00"),
            new_client_order_id="e1r",
        )
        original = parse_order(by_client_id.body, broker="binance")
        replaced = await api.cancel_replace(cancel_replace_params(original, modify))
        canceled = await api.cancel_order("BTCUSDT", "e1r")
        history = await api.all_orders("BTCUSDT", order_id=order_id)
        latest = await api.all_orders("BTCUSDT", limit=1)
        return {
            "placed": placed,
            "by_client_id": by_client_id,
            "by_order_id": by_order_id,
            "open_here": open_here,
            "open_everywhere": open_everywhere,
            "replaced": replaced,
            "canceled": canceled,
            "history": history,
            "latest": latest,
        }

    r = with_api(venue, body)
    assert all(result.error is None for result in r.values()), r
    placed = parse_order(r["placed"].body, broker="binance")
    assert (placed.client_order_id, placed.status) == ("e1", "NEW")
    assert r["by_client_id"].body == r["by_order_id"].body
    assert [row["clientOrderId"] for row in r["open_here"].body] == ["e1"]
    assert [row["clientOrderId"] for row in r["open_everywhere"].body] == ["e1"]
    assert r["replaced"].body["cancelResponse"]["origClientOrderId"] == "e1"
    assert r["replaced"].body["newOrderResponse"]["clientOrderId"] == "e1r"
    assert D(r["replaced"].body["newOrderResponse"]["price"]) == D("41000")
    assert parse_order(r["canceled"].body, broker="binance").status == "CANCELED"
    assert [row["clientOrderId"] for row in r["history"].body] == ["e1", "e1r"]
    assert [row["clientOrderId"] for row in r["latest"].body] == ["e1r"]
    assert venue.submissions() == {"e1": 1, "e1r": 1}
    calls = venue.calls()
    assert calls["POST order"] == calls["POST order/cancelReplace"] == 1
    assert calls["GET order"] == 2 and calls["DELETE order"] == 1
    assert calls["GET openOrders"] == 2 and calls["GET allOrders"] == 2


def test_signed_calls_are_charged_the_declared_weight(venue: BinanceVenue) -> None:
    resting = submit("w1", OrderType.LIMIT, price=D("40000.00"))

    other = submit("w2", OrderType.LIMIT, price=D("40000.00"))

    async def body(api: BinanceApi) -> list[tuple[Endpoint, RestResult, int]]:
        assert (await api.new_order(new_order_params(other))).error is None
        return await weighed(
            api,
            [
                (endpoints.NEW_ORDER, lambda: api.new_order(new_order_params(resting))),
                (endpoints.QUERY_ORDER, lambda: api.query_order("BTCUSDT", client_order_id="w1")),
                (endpoints.OPEN_ORDERS, lambda: api.open_orders("BTCUSDT")),
                (endpoints.OPEN_ORDERS_ALL_SYMBOLS, api.open_orders),
                (endpoints.ALL_ORDERS, lambda: api.all_orders("BTCUSDT", limit=5)),
                (endpoints.MY_TRADES, lambda: api.my_trades("BTCUSDT", from_id=0)),
                (endpoints.MY_TRADES_OF_ORDER, lambda: api.my_trades("BTCUSDT", order_id=1)),
                (endpoints.ACCOUNT, api.account),
                (endpoints.CANCEL_ORDER, lambda: api.cancel_order("BTCUSDT", "w1")),
                (endpoints.CANCEL_OPEN_ORDERS, lambda: api.cancel_open_orders("BTCUSDT")),
            ],
        )

    for endpoint, result, weight in with_api(venue, body):
        assert weight == endpoint.weight, (endpoint, result.body)
    calls = venue.calls()
    for endpoint in (endpoints.ACCOUNT, endpoints.CANCEL_ORDER, endpoints.CANCEL_OPEN_ORDERS):
        assert calls[call_name(endpoint)] == 1, endpoint
    assert calls[call_name(endpoints.NEW_ORDER)] == 2


def test_trades_of_an_order_and_the_account(venue: BinanceVenue) -> None:
    async def body(api: BinanceApi) -> tuple[RestResult, ...]:
        placed = await api.new_order(new_order_params(submit("t1", quantity=D("0.3"))))
        order_id = placed.body["orderId"]
        of_order = await api.my_trades("BTCUSDT", order_id=order_id)
        since = await api.my_trades("BTCUSDT", from_id=0, limit=1000)
        latest = await api.my_trades("BTCUSDT", limit=1)
        account = await api.account()
        everything = await api.account(omit_zero_balances=False)
        return placed, of_order, since, latest, account, everything

    placed, of_order, since, latest, account, everything = with_api(venue, body)
    assert placed.body["status"] == "FILLED"
    trades = [parse_trade(row, broker="binance") for row in of_order.body]
    assert trades and sum(t.qty for t in trades) == D("0.3")
    assert {t.order_id for t in trades} == {placed.body["orderId"]}
    assert [row["id"] for row in since.body] == [t.trade_id for t in trades]
    assert [row["id"] for row in latest.body] == [trades[-1].trade_id]
    assets = {balance.asset for balance in parse_account(account.body, broker="binance")}
    assert {"BTC", "USDT"} <= assets
    every_asset = {b.asset for b in parse_account(everything.body, broker="binance")}
    assert assets <= every_asset
    assert all(b.free + b.locked > 0 for b in parse_account(account.body, broker="binance"))


def test_cancel_open_orders_cancels_every_order_of_the_symbol(venue: BinanceVenue) -> None:
    async def body(api: BinanceApi) -> tuple[RestResult, RestResult]:
        for n in range(3):
            resting = submit(f"c{n}", OrderType.LIMIT, price=D("40000.00"))
            assert (await api.new_order(new_order_params(resting))).error is None
        return await api.cancel_open_orders("BTCUSDT"), await api.open_orders("BTCUSDT")

    canceled, still_open = with_api(venue, body)
    assert sorted(row["origClientOrderId"] for row in canceled.body) == ["c0", "c1", "c2"]
    assert still_open.body == []


def test_a_refusal_is_the_venues_answer_not_an_exception(venue: BinanceVenue) -> None:
    async def body(api: BinanceApi) -> tuple[RestResult, RestResult]:
        return (
            await api.query_order("BTCUSDT", client_order_id="nobody"),
            await api.cancel_order("BTCUSDT", "nobody"),
        )

    query, cancel = with_api(venue, body)
    assert query.error is not None and query.error.code == -2013
    assert cancel.error is not None and cancel.error.code == -2011


def test_the_session_subscribes_to_the_account_through_the_layer(venue: BinanceVenue) -> None:
    async def body(api: BinanceApi) -> None:
        return None

    with_api(venue, body)
    calls = venue.calls()
    assert calls[str(endpoints.USER_DATA_SUBSCRIBE_SIGNATURE)] == 1
    assert str(endpoints.USER_DATA_SUBSCRIBE) not in calls
    assert str(endpoints.SESSION_LOGON) not in calls


# -- the wire parameters, on a recording transport ------------------------------------------------


class Recorder:
    """A transport that answers nothing and remembers what it was asked."""

    broker = "binance"

    def __init__(self) -> None:
        self.rest_calls: list[tuple[str, str, tuple[tuple[str, str], ...], bool]] = []
        self.ws_calls: list[tuple[str, Mapping[str, str] | None, bool]] = []

    async def rest(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]] = (),
        *,
        signed: bool = False,
        api_key: bool = False,
    ) -> RestResult:
        self.rest_calls.append((method, path, tuple(params), signed))
        return RestResult(200, {}, {}, 0.0)

    async def call(
        self, method: str, params: Mapping[str, str] | None, *, signed: bool = False
    ) -> Any:
        self.ws_calls.append((method, params, signed))
        return None


def test_each_call_sends_binances_parameter_names() -> None:
    transport = Recorder()
    api = BinanceApi(transport)

    async def main() -> None:
        await api.book_tickers(["BTCUSDT", "ETHUSDT"])
        await api.depth("BTCUSDT", 20)
        await api.cancel_order("BTCUSDT", "a1")
        await api.query_order("BTCUSDT", client_order_id="a1")
        await api.query_order("BTCUSDT", order_id=7)
        await api.my_trades("BTCUSDT", order_id=7, limit=1000)
        await api.my_trades("BTCUSDT", from_id=12, limit=1000)
        await api.all_orders("BTCUSDT", order_id=3, limit=1000)
        await api.account()
        await api.open_orders()
        await api.session_logon()
        await api.subscribe_user_data(logged_on=True)
        await api.subscribe_user_data(logged_on=False)

    trio.run(main)
    assert transport.rest_calls == [
        ("GET", "/api/v3/ticker/bookTicker", (("symbols", '["BTCUSDT","ETHUSDT"]'),), False),
        ("GET", "/api/v3/depth", (("symbol", "BTCUSDT"), ("limit", "20")), False),
        ("DELETE", "/api/v3/order", (("symbol", "BTCUSDT"), ("origClientOrderId", "a1")), True),
        ("GET", "/api/v3/order", (("symbol", "BTCUSDT"), ("origClientOrderId", "a1")), True),
        ("GET", "/api/v3/order", (("symbol", "BTCUSDT"), ("orderId", "7")), True),
        (
            "GET",
            "/api/v3/myTrades",
            (("symbol", "BTCUSDT"), ("orderId", "7"), ("limit", "1000")),
            True,
        ),
        (
            "GET",
            "/api/v3/myTrades",
            (("symbol", "BTCUSDT"), ("fromId", "12"), ("limit", "1000")),
            True,
        ),
        (
            "GET",
            "/api/v3/allOrders",
            (("symbol", "BTCUSDT"), ("orderId", "3"), ("limit", "1000")),
            True,
        ),
        ("GET", "/api/v3/account", (("omitZeroBalances", "true"),), True),
        ("GET", "/api/v3/openOrders", (), True),
    ]
    assert transport.ws_calls == [
        ("session.logon", {}, True),
        ("userDataStream.subscribe", None, False),
        ("userDataStream.subscribe.signature", {}, True),
    ]


def test_query_order_names_the_order_exactly_once() -> None:
    api = BinanceApi(Recorder())
    with pytest.raises(TypeError):
        trio.run(lambda: api.query_order("BTCUSDT"))
    with pytest.raises(TypeError):
        trio.run(lambda: api.query_order("BTCUSDT", client_order_id="a", order_id=1))


def test_market_stream_url_and_subscription_frame() -> None:
    url = endpoints.market_streams_url("ws://host:1/", ["a@bookTicker", "b@bookTicker"])
    assert url == "ws://host:1/stream?streams=a@bookTicker/b@bookTicker"
    frame = json.loads(endpoints.subscribe_streams_message(["c@bookTicker"], 9))
    assert frame == {"method": "SUBSCRIBE", "params": ["c@bookTicker"], "id": 9}


def test_no_endpoint_is_spelled_outside_the_endpoint_layer() -> None:
    """Paths and WebSocket API methods live in ``_endpoints`` only."""
    for module in (actor_module, session_module):
        source = inspect.getsource(module)
        assert '"/api/' not in source, module.__name__
        for method in (
            endpoints.SESSION_LOGON,
            endpoints.USER_DATA_SUBSCRIBE,
            endpoints.USER_DATA_SUBSCRIBE_SIGNATURE,
        ):
            assert f'"{method}"' not in source, (module.__name__, method)
        assert '"SUBSCRIBE"' not in source, module.__name__
