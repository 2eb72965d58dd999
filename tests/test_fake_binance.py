"""The fake Binance Spot venue, tested only through its sockets with independent clients.

Requests are signed here by hand (hmac + hashlib), never with the venue's own
helpers, so that a signing mistake on one side cannot hide one on the other;
the official ``binance-connector`` client proves the wire format further.
Prices move only when a test moves them, the venue's clock is a manual one
unless a real client needs wall time, and tests wait on messages, never on
sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request

from tradenode.sim import InstrumentSpec, SimConfig
from tradenode.testing.venues import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    BinanceVenue,
)

# The venue's knob tables are internal: the admin port must serve exactly them.
from tradenode.testing.venues._binance_server import DEPRECATED_ALIASES, INSPECTION, KNOBS

KEY = DEFAULT_API_KEY
SECRET = DEFAULT_API_SECRET
START_MS = 1_700_000_000_000  # 20 s into a minute: Retry-After of a full window is 40

# The published example account (rest-api.md "SIGNED Endpoint Examples", web-socket-api.md).
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
DOC_NON_ASCII_QUERY = (
    "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
    "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
DOC_NON_ASCII_SIGNATURE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
DOC_WS_PARAMS = {
    "apiKey": DOC_KEY,
    "price": "52000.00",
    "quantity": "0.01000000",
    "recvWindow": "100",
    "side": "SELL",
    "symbol": "BTCUSDT",
    "timeInForce": "GTC",
    "timestamp": "1645423376532",
    "type": "LIMIT",
}
DOC_WS_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def ws_payload(params: dict[str, Any]) -> str:
    return "&".join(f"{key}={params[key]}" for key in sorted(params))


class ManualMs:
    """The venue's clock, in epoch milliseconds, moved only by the test."""

    def __init__(self, now: int = START_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def ms() -> ManualMs:
    return ManualMs()


@pytest.fixture
def venue(ms: ManualMs) -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=7, clock=ms) as fake:
        yield fake


class Rest:
    """A hand-rolled signed REST client (httpx)."""

    def __init__(self, venue: BinanceVenue, ms: Callable[[], int], secret: str = SECRET) -> None:
        self.http = httpx.Client(base_url=venue.rest_url, timeout=30)
        self.ms = ms
        self.secret = secret

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(f"/api/v3/{path}", params=params)

    def signed(
        self, method: str, path: str, *, in_body: bool = False, key: str | None = KEY, **params: Any
    ) -> httpx.Response:
        params.setdefault("timestamp", self.ms())
        payload = urlencode({k: str(v) for k, v in params.items() if v is not None})
        signed = f"{payload}&signature={hmac_hex(self.secret, payload)}"
        headers = {} if key is None else {"X-MBX-APIKEY": key}
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.http.request(method, f"/api/v3/{path}", content=signed, headers=headers)
        return self.http.request(method, f"/api/v3/{path}?{signed}", headers=headers)


@pytest.fixture
def rest(venue: BinanceVenue, ms: ManualMs) -> Iterator[Rest]:
    client = Rest(venue, ms)
    yield client
    client.close()


def error(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["msg"]


# ------------------------------------------------------------ WebSocket kit


@asynccontextmanager
async def open_ws(url: str) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client over a TCP stream this helper owns (and always closes)."""
    parts = urlsplit(url)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    async with trio.open_nursery() as nursery:
        stream = await trio.open_tcp_stream(host, port)
        try:
            ws = await wrap_client_stream(nursery, stream, host, resource)
            try:
                yield ws
            finally:
                await ws.aclose()
        finally:
            await trio.aclose_forcefully(stream)


class WsApi:
    """A WebSocket API client: requests by id, everything else kept in arrival order."""

    def __init__(self, ws: WebSocketConnection, ms: Callable[[], int]) -> None:
        self.ws = ws
        self.ms = ms
        self.frames: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    async def call(self, method: str, *, signed: bool = True, **params: Any) -> dict[str, Any]:
        if signed:
            params["apiKey"] = KEY
            params.setdefault("timestamp", self.ms())
            params["signature"] = hmac_hex(SECRET, ws_payload(params))
        request_id = next(self._ids)
        await self.ws.send_message(
            json.dumps({"id": request_id, "method": method, "params": params})
        )
        while True:
            frame = json.loads(await self.ws.get_message())
            if frame.get("id") == request_id and "status" in frame:
                return frame
            self.frames.append(frame)

    async def ok(self, method: str, **params: Any) -> Any:
        frame = await self.call(method, **params)
        assert frame["status"] == 200, frame
        return frame["result"]

    async def next_frame(self) -> dict[str, Any]:
        if self.frames:
            return self.frames.pop(0)
        return json.loads(await self.ws.get_message())  # type: ignore[no-any-return]

    async def event(self, kind: str = "executionReport") -> dict[str, Any]:
        """The next user event of ``kind``; the events before it of other kinds are dropped."""
        while True:
            frame = await self.next_frame()
            event = frame.get("event", {})
            if event.get("e") == kind:
                assert frame["subscriptionId"] == 0
                return event  # type: ignore[no-any-return]

    async def reports(self, count: int) -> list[dict[str, Any]]:
        return [await self.event() for _ in range(count)]


@asynccontextmanager
async def ws_api(venue: BinanceVenue, ms: ManualMs) -> AsyncIterator[WsApi]:
    async with open_ws(venue.ws_api_url) as ws:
        yield WsApi(ws, ms)


async def subscribed(api: WsApi) -> None:
    result = await api.ok("userDataStream.subscribe.signature")
    assert result == {"subscriptionId": 0}


# ----------------------------------------------------------------- signing


def test_the_venue_imports_no_broker_adapter() -> None:
    """Two independent readings of the protocol: the fake never borrows the adapter's."""
    import subprocess
    import sys

    probe = (
        "import sys, tradenode.testing.venues;"
        "print(','.join(m for m in sys.modules if m.startswith('tradenode.brokers')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_published_hmac_vectors_hold_for_our_signing() -> None:
    assert hmac_hex(DOC_SECRET, DOC_QUERY) == DOC_SIGNATURE
    assert hmac_hex(DOC_SECRET, DOC_NON_ASCII_QUERY) == DOC_NON_ASCII_SIGNATURE
    mixed = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC" + DOC_QUERY.split("GTC&", 1)[1]
    assert hmac_hex(DOC_SECRET, mixed) == DOC_MIXED_SIGNATURE
    assert hmac_hex(DOC_SECRET, ws_payload(DOC_WS_PARAMS)) == DOC_WS_SIGNATURE


LTCBTC = InstrumentSpec(
    symbol="LTCBTC",
    base_asset="LTC",
    quote_asset="BTC",
    initial_price=Decimal("0.10000"),
    tick_size=Decimal("0.00001"),
    lot_size=Decimal("0.01"),
    min_quantity=Decimal("0.01"),
    min_notional=Decimal("0.0001"),
    spread_bps=Decimal("10"),
    volatility_bps=Decimal("10"),
    level_quantity=Decimal("100"),
)


@pytest.fixture
def doc_venue() -> Iterator[BinanceVenue]:
    """The documentation's account, at the documentation's moment, trading its LTCBTC."""
    config = SimConfig(instruments=(LTCBTC,), balances={"BTC": Decimal(10), "LTC": Decimal(0)})
    with BinanceVenue(
        config=config, api_key=DOC_KEY, api_secret=DOC_SECRET, clock=lambda: 1499827319559 + 10
    ) as fake:
        yield fake


def test_the_venue_accepts_the_documented_signed_requests(doc_venue: BinanceVenue) -> None:
    headers = {"X-MBX-APIKEY": DOC_KEY}
    with httpx.Client(base_url=doc_venue.rest_url) as http:
        # Example 1: everything in the query string.
        first = http.post(f"/api/v3/order?{DOC_QUERY}&signature={DOC_SIGNATURE}", headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "NEW"
        assert first.json()["price"] == "0.10000000"
        # Example 2: everything in the body, signature last.
        second = http.post(
            "/api/v3/order",
            content=f"{DOC_QUERY}&signature={DOC_SIGNATURE}",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert second.status_code == 200, second.text
        # Example 3: query and body concatenated with no separator.
        query, body = DOC_QUERY.split("GTC&", 1)
        third = http.post(
            f"/api/v3/order?{query}GTC",
            content=f"{body}&signature={DOC_MIXED_SIGNATURE}",
            headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert third.status_code == 200, third.text
        # The percent-encoded non-ASCII symbol passes authentication, then is unknown.
        fourth = http.post(
            f"/api/v3/order?{DOC_NON_ASCII_QUERY}&signature={DOC_NON_ASCII_SIGNATURE}",
            headers=headers,
        )
        assert error(fourth) == (400, -1121, "Invalid symbol.")
        # Upper-case hex is accepted too: HMAC verification is case-insensitive.
        fifth = http.post(
            f"/api/v3/order?{DOC_QUERY}&signature={DOC_SIGNATURE.upper()}", headers=headers
        )
        assert fifth.status_code == 200
    assert len(doc_venue.orders()) == 4


async def _doc_ws_order(doc_venue: BinanceVenue) -> dict[str, Any]:
    async with open_ws(doc_venue.ws_api_url) as ws:
        params = dict(DOC_WS_PARAMS, symbol="LTCBTC", price="0.20", quantity="1", side="BUY")
        params["timestamp"] = "1499827319569"
        params["recvWindow"] = "5000"
        params["signature"] = hmac_hex(DOC_SECRET, ws_payload(params))
        await ws.send_message(json.dumps({"id": "doc", "method": "order.place", "params": params}))
        return json.loads(await ws.get_message())  # type: ignore[no-any-return]


@pytest.mark.trio
async def test_websocket_api_signature_is_over_sorted_unencoded_params(
    doc_venue: BinanceVenue,
) -> None:
    answer = await _doc_ws_order(doc_venue)
    assert answer["id"] == "doc"
    assert answer["status"] == 200, answer
    assert answer["result"]["status"] == "FILLED"


# ------------------------------------------------------ security failures


def test_timestamp_outside_the_recv_window_or_ahead_is_minus_1021(rest: Rest, ms: ManualMs) -> None:
    old = rest.signed("GET", "account", timestamp=ms.now - 5001)
    assert error(old) == (400, -1021, "Timestamp for this request is outside of the recvWindow.")
    assert rest.signed("GET", "account", timestamp=ms.now - 5000).status_code == 200
    wide = rest.signed("GET", "account", timestamp=ms.now - 9000, recvWindow=10000)
    assert wide.status_code == 200
    ahead = rest.signed("GET", "account", timestamp=ms.now + 1000)
    assert error(ahead) == (
        400,
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    )
    assert rest.signed("GET", "account", timestamp=ms.now + 999).status_code == 200
    micro = rest.signed("GET", "account", timestamp=(ms.now - 100) * 1000)
    assert micro.status_code == 200
    too_wide = rest.signed("GET", "account", recvWindow=60001)
    assert error(too_wide)[:2] == (400, -1102)


def test_bad_signature_key_and_missing_params(rest: Rest, venue: BinanceVenue) -> None:
    payload = f"timestamp={venue.exchange.now()}"
    bad = rest.http.get(
        f"/api/v3/account?{payload}&signature={hmac_hex('wrong', payload)}",
        headers={"X-MBX-APIKEY": KEY},
    )
    assert error(bad) == (400, -1022, "Signature for this request is not valid.")
    tampered = rest.http.get(
        f"/api/v3/account?{payload}&omitZeroBalances=true&signature={hmac_hex(SECRET, payload)}",
        headers={"X-MBX-APIKEY": KEY},
    )
    assert error(tampered)[1] == -1022
    unknown = rest.signed("GET", "account", key="someone-else")
    assert error(unknown) == (401, -2015, "Invalid API-key, IP, or permissions for action.")
    assert error(rest.signed("GET", "account", key=None)) == (401, -2014, "API-key format invalid.")
    unsigned = rest.http.get(f"/api/v3/account?{payload}", headers={"X-MBX-APIKEY": KEY})
    assert error(unsigned) == (
        400,
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    )
    no_time = rest.http.get(
        f"/api/v3/account?signature={hmac_hex(SECRET, '')}", headers={"X-MBX-APIKEY": KEY}
    )
    assert error(no_time)[1:] == (
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    )


# ------------------------------------------------------------ market data


def test_public_endpoints_and_weight_header(rest: Rest, ms: ManualMs) -> None:
    assert rest.get("ping").json() == {}
    time_answer = rest.get("time")
    assert time_answer.json() == {"serverTime": ms.now}
    assert time_answer.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    info = rest.get("exchangeInfo", symbol="BTCUSDT").json()
    assert rest.get("ping").headers["X-MBX-USED-WEIGHT-1M"] == "23"
    (symbol,) = info["symbols"]
    assert symbol["symbol"] == "BTCUSDT"
    assert (symbol["baseAsset"], symbol["quoteAsset"]) == ("BTC", "USDT")
    assert "TAKE_PROFIT_LIMIT" in symbol["orderTypes"]
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    assert filters["LOT_SIZE"]["minQty"] == "0.00010000"
    assert filters["MARKET_LOT_SIZE"]["stepSize"] == "0.00010000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    both = rest.get("exchangeInfo", symbols='["ETHUSDT","SOLUSDT"]').json()
    assert [s["symbol"] for s in both["symbols"]] == ["ETHUSDT", "SOLUSDT"]
    assert len(rest.get("exchangeInfo").json()["symbols"]) == 3
    assert error(rest.get("exchangeInfo", symbol="NOPE")) == (400, -1121, "Invalid symbol.")
    assert rest.get("ticker/bookTicker", symbol="BTCUSDT").json() == {
        "symbol": "BTCUSDT",
        "bidPrice": "49995.00000000",
        "bidQty": "0.50000000",
        "askPrice": "50005.00000000",
        "askQty": "0.50000000",
    }
    assert rest.get("ticker/price", symbol="BTCUSDT").json() == {
        "symbol": "BTCUSDT",
        "price": "50000.00000000",
    }
    assert len(rest.get("ticker/price").json()) == 3
    depth = rest.get("depth", symbol="BTCUSDT", limit=5).json()
    assert depth["bids"][0] == ["49995.00000000", "0.50000000"]
    assert depth["asks"][0] == ["50005.00000000", "0.50000000"]
    assert len(depth["asks"]) == 5


# ----------------------------------------------------------------- orders


def test_filters_and_parameter_checks_answer_binance_errors(rest: Rest) -> None:
    def place(**params: Any) -> tuple[int, int, str]:
        base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        return error(rest.signed("POST", "order", **{**base, **params}))

    assert place(quantity="0.00015", price="49000") == (400, -1013, "Filter failure: LOT_SIZE")
    assert place(quantity="0.001", price="49000.001") == (
        400,
        -1013,
        "Filter failure: PRICE_FILTER",
    )
    assert place(quantity="0.0001", price="49000") == (400, -1013, "Filter failure: NOTIONAL")
    assert place(quantity="0.000000001", price="49000") == (
        400,
        -1111,
        "Parameter 'quantity' has too much precision.",
    )
    assert place(quantity="1e-3", price="49000")[:2] == (400, -1100)
    assert place(type="MARKET", quantity="0.01") == (
        400,
        -1114,
        "TimeInForce parameter sent when not required.",
    )
    market = error(
        rest.signed(
            "POST", "order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.00015"
        )
    )
    assert market == (400, -1013, "Filter failure: MARKET_LOT_SIZE")
    assert place(quantity="0.01") == (
        400,
        -1102,
        "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
    )
    assert place(type="LIMITED", quantity="0.01", price="1") == (400, -1116, "Invalid orderType.")
    assert place(side="HOLD", quantity="0.01", price="49000") == (400, -1117, "Invalid side.")
    assert place(timeInForce="GTX", quantity="0.01", price="49000") == (
        400,
        -1115,
        "Invalid timeInForce.",
    )
    assert place(symbol="DOGEUSDT", quantity="1", price="1") == (400, -1121, "Invalid symbol.")
    assert place(quantity="0.01", price="49000", newClientOrderId="bad id!") == (
        400,
        -1100,
        "Illegal characters found in parameter 'newClientOrderId'; "
        "legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
    )
    assert place(quantity="0.01", price="49000", newClientOrderId="x" * 37)[1] == -1100
    assert place(quantity="100", price="49000") == (
        400,
        -2010,
        "Account has insufficient balance for requested action.",
    )
    neither = rest.signed("POST", "order", symbol="BTCUSDT", side="BUY", type="MARKET")
    assert error(neither) == (
        400,
        -1102,
        "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
    )
    assert (
        rest.signed(
            "POST", "order/test", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01"
        ).json()
        == {}
    )


def test_duplicate_open_client_order_id_is_rejected_and_reusable_once_closed(
    rest: Rest, venue: BinanceVenue
) -> None:
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "49000",
        "newClientOrderId": "my-order_1",
    }
    first = rest.signed("POST", "order", **order)
    assert first.status_code == 200
    assert first.json()["clientOrderId"] == "my-order_1"
    assert first.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert first.headers["X-MBX-ORDER-COUNT-1D"] == "1"
    assert error(rest.signed("POST", "order", **order)) == (400, -2010, "Duplicate order sent.")
    canceled = rest.signed("DELETE", "order", symbol="BTCUSDT", origClientOrderId="my-order_1")
    assert canceled.json()["status"] == "CANCELED"
    again = rest.signed("POST", "order", **order)
    assert again.status_code == 200
    assert again.json()["orderId"] != first.json()["orderId"]
    assert venue.submissions() == {"my-order_1": 3}
    query = rest.signed("GET", "order", symbol="BTCUSDT", origClientOrderId="my-order_1")
    assert query.json()["orderId"] == again.json()["orderId"]
    assert query.json()["status"] == "NEW"


def test_rest_order_lifecycle_rows_and_account(rest: Rest, venue: BinanceVenue) -> None:
    placed = rest.signed(
        "POST",
        "order",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.7",
        price="49990",
        newClientOrderId="rest-1",
        newOrderRespType="RESULT",
    ).json()
    assert "fills" not in placed
    assert placed["status"] == "NEW"
    assert placed["origQty"] == "0.70000000"
    assert placed["cummulativeQuoteQty"] == "0.00000000"
    assert placed["orderListId"] == -1
    assert placed["selfTradePreventionMode"] == "EXPIRE_MAKER"
    (open_row,) = rest.signed("GET", "openOrders", symbol="BTCUSDT").json()
    assert open_row["clientOrderId"] == "rest-1"
    assert open_row["isWorking"] is True
    assert open_row["stopPrice"] == "0.00000000"
    venue.set_price("BTCUSDT", Decimal("49980"))
    row = rest.signed("GET", "order", symbol="BTCUSDT", orderId=placed["orderId"]).json()
    assert (row["status"], row["executedQty"]) == ("PARTIALLY_FILLED", "0.50000000")
    assert row["cummulativeQuoteQty"] == "24995.00000000"
    venue.set_price("BTCUSDT", Decimal("49980"))
    row = rest.signed("GET", "order", symbol="BTCUSDT", orderId=placed["orderId"]).json()
    assert (row["status"], row["executedQty"]) == ("FILLED", "0.70000000")
    assert rest.signed("GET", "openOrders").json() == []
    trades = rest.signed("GET", "myTrades", symbol="BTCUSDT").json()
    assert [(t["qty"], t["isMaker"], t["isBuyer"]) for t in trades] == [
        ("0.50000000", True, True),
        ("0.20000000", True, True),
    ]
    assert trades[0]["commissionAsset"] == "USDT"
    assert trades[0]["quoteQty"] == "24995.00000000"
    assert rest.signed("GET", "myTrades", symbol="BTCUSDT", fromId=2).json() == trades[1:]
    by_order = rest.signed("GET", "myTrades", symbol="BTCUSDT", orderId=placed["orderId"])
    assert by_order.headers["X-MBX-USED-WEIGHT-1M"]
    assert len(by_order.json()) == 2
    account = rest.signed("GET", "account", omitZeroBalances="true").json()
    balances = {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}
    assert balances["BTC"] == ("10.70000000", "0.00000000")
    assert account["accountType"] == "SPOT"
    assert account["commissionRates"]["maker"] == "0.00020000"
    assert venue.balances()["BTC"] == (Decimal("10.7"), Decimal(0))
    history = rest.signed("GET", "allOrders", symbol="BTCUSDT").json()
    assert [o["status"] for o in history] == ["FILLED"]
    limits = rest.signed("GET", "rateLimit/order").json()
    assert limits[0]["rateLimitType"] == "ORDERS"
    assert error(rest.signed("GET", "order", symbol="BTCUSDT", orderId=999)) == (
        400,
        -2013,
        "Order does not exist.",
    )
    assert error(rest.signed("DELETE", "order", symbol="BTCUSDT", orderId=999)) == (
        400,
        -2011,
        "Unknown order sent.",
    )
    assert error(rest.signed("DELETE", "openOrders", symbol="BTCUSDT"))[1] == -2011


def test_cancel_replace_success_and_documented_failures(rest: Rest, venue: BinanceVenue) -> None:
    base = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC"}
    rest.signed("POST", "order", **base, quantity="0.1", price="51000", newClientOrderId="cr-1")
    replaced = rest.signed(
        "POST",
        "order/cancelReplace",
        **base,
        quantity="0.2",
        price="52000",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrigClientOrderId="cr-1",
        cancelNewClientOrderId="cr-1-cancel",
        newClientOrderId="cr-1",
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert body["cancelResponse"]["clientOrderId"] == "cr-1-cancel"
    assert body["cancelResponse"]["origClientOrderId"] == "cr-1"
    assert body["cancelResponse"]["status"] == "CANCELED"
    assert body["newOrderResponse"]["clientOrderId"] == "cr-1"
    assert body["newOrderResponse"]["price"] == "52000.00000000"
    assert replaced.headers["X-MBX-ORDER-COUNT-10S"] == "2"
    failed = rest.signed(
        "POST",
        "order/cancelReplace",
        **base,
        quantity="0.2",
        price="52000",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=999,
    )
    assert failed.status_code == 400
    assert failed.json() == {
        "code": -2022,
        "msg": "Order cancel-replace failed.",
        "data": {
            "cancelResult": "FAILURE",
            "newOrderResult": "NOT_ATTEMPTED",
            "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
            "newOrderResponse": None,
        },
    }
    partial = rest.signed(
        "POST",
        "order/cancelReplace",
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT_MAKER",
        quantity="0.2",
        price="49000",
        cancelReplaceMode="ALLOW_FAILURE",
        cancelOrigClientOrderId="cr-1",
    )
    assert partial.status_code == 409
    data = partial.json()["data"]
    assert partial.json()["code"] == -2021
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert data["newOrderResponse"] == {
        "code": -2010,
        "msg": "Order would immediately match and take.",
    }
    assert [o.status for o in venue.orders()] == ["CANCELED", "CANCELED"]


# ------------------------------------------------- lifecycle over WS API


@pytest.mark.trio
async def test_limit_partial_fills_and_cancel_stream_execution_reports(
    venue: BinanceVenue, ms: ManualMs
) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        placed = await api.ok(
            "order.place",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="1.2",
            price="49990",
            newClientOrderId="ws-1",
        )
        assert placed["status"] == "NEW"
        new = await api.event()
        assert (new["x"], new["X"], new["c"], new["C"], new["t"]) == ("NEW", "NEW", "ws-1", "", -1)
        assert (new["s"], new["S"], new["o"], new["f"]) == ("BTCUSDT", "BUY", "LIMIT", "GTC")
        assert (new["q"], new["p"], new["w"], new["N"], new["g"]) == (
            "1.20000000",
            "49990.00000000",
            True,
            None,
            -1,
        )
        position = await api.event("outboundAccountPosition")
        assert position["B"] == [{"a": "USDT", "f": "939952.01200000", "l": "60047.98800000"}]
        venue.set_price("BTCUSDT", Decimal("49980"))
        trade = await api.event()
        assert (trade["x"], trade["X"], trade["l"], trade["z"], trade["L"]) == (
            "TRADE",
            "PARTIALLY_FILLED",
            "0.50000000",
            "0.50000000",
            "49990.00000000",
        )
        assert (trade["m"], trade["t"], trade["N"], trade["n"]) == (True, 1, "USDT", "4.99900000")
        assert trade["Z"] == trade["Y"] == "24995.00000000"
        assert trade["I"] > new["I"]
        canceled = await api.ok(
            "order.cancel", symbol="BTCUSDT", origClientOrderId="ws-1", newClientOrderId="ws-1-x"
        )
        assert (canceled["status"], canceled["executedQty"]) == ("CANCELED", "0.50000000")
        report = await api.event()
        assert (report["x"], report["X"], report["c"], report["C"], report["z"]) == (
            "CANCELED",
            "CANCELED",
            "ws-1-x",
            "ws-1",
            "0.50000000",
        )
        status = await api.ok("order.status", symbol="BTCUSDT", origClientOrderId="ws-1")
        assert status["status"] == "CANCELED"
        assert await api.ok("openOrders.status") == []
        trades = await api.ok("myTrades", symbol="BTCUSDT")
        assert [t["id"] for t in trades] == [1]
        account = await api.ok("account.status", omitZeroBalances="true")
        assert {b["asset"] for b in account["balances"]} == {"USDT", "BTC", "ETH", "SOL"}
        assert await api.ok("session.subscriptions", signed=False) == [{"subscriptionId": 0}]


@pytest.mark.trio
async def test_market_ioc_fok_and_limit_maker(venue: BinanceVenue, ms: ManualMs) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        market = await api.ok(
            "order.place", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.7"
        )
        assert market["status"] == "FILLED"
        assert [(f["price"], f["qty"]) for f in market["fills"]] == [
            ("50005.00000000", "0.50000000"),
            ("50030.01000000", "0.20000000"),
        ]
        assert market["fills"][0]["commission"] == "25.00250000"
        reports = await api.reports(3)
        assert [(r["x"], r["X"]) for r in reports] == [
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "FILLED"),
        ]
        assert reports[2]["z"] == "0.70000000"
        assert reports[2]["Z"] == "35008.50200000"
        assert reports[0]["w"] is False
        quote = await api.ok(
            "order.place", symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="1000"
        )
        assert (quote["executedQty"], quote["origQuoteOrderQty"]) == ("0.01990000", "1000.00000000")
        ioc = await api.ok(
            "order.place",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="IOC",
            quantity="1",
            price="50010",
        )
        assert (ioc["status"], ioc["executedQty"]) == ("EXPIRED", "0.50000000")
        fok = await api.ok(
            "order.place",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="FOK",
            quantity="1",
            price="50010",
        )
        assert (fok["status"], fok["executedQty"], fok["fills"]) == ("EXPIRED", "0.00000000", [])
        await api.reports(2)  # the quote-quantity order: NEW, then one fill
        ioc_reports = await api.reports(3)
        assert [(r["x"], r["X"]) for r in ioc_reports] == [
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("EXPIRED", "EXPIRED"),
        ]
        fok_reports = await api.reports(2)
        assert [(r["x"], r["X"]) for r in fok_reports] == [("NEW", "NEW"), ("EXPIRED", "EXPIRED")]
        taking = await api.call(
            "order.place",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT_MAKER",
            quantity="0.1",
            price="50005",
        )
        assert taking["status"] == 400
        assert taking["error"] == {"code": -2010, "msg": "Order would immediately match and take."}
        maker = await api.ok(
            "order.place",
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT_MAKER",
            quantity="0.1",
            price="49000",
        )
        assert set(maker) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        row = await api.ok("order.status", symbol="BTCUSDT", orderId=maker["orderId"])
        assert (row["type"], row["status"], row["timeInForce"]) == ("LIMIT_MAKER", "NEW", "GTC")


@pytest.mark.trio
@pytest.mark.parametrize(
    ("order", "trigger", "crossed"),
    [
        (
            {"type": "STOP_LOSS", "side": "SELL", "stopPrice": "49000"},
            Decimal("48900"),
            {"type": "STOP_LOSS", "side": "SELL", "stopPrice": "51000"},
        ),
        (
            {
                "type": "STOP_LOSS_LIMIT",
                "side": "SELL",
                "stopPrice": "49000",
                "price": "48000",
                "timeInForce": "GTC",
            },
            Decimal("48900"),
            {
                "type": "STOP_LOSS_LIMIT",
                "side": "BUY",
                "stopPrice": "48000",
                "price": "48100",
                "timeInForce": "GTC",
            },
        ),
        (
            {"type": "TAKE_PROFIT", "side": "SELL", "stopPrice": "51000"},
            Decimal("51100"),
            {"type": "TAKE_PROFIT", "side": "SELL", "stopPrice": "49000"},
        ),
        (
            {
                "type": "TAKE_PROFIT_LIMIT",
                "side": "BUY",
                "stopPrice": "49000",
                "price": "49500",
                "timeInForce": "GTC",
            },
            Decimal("48900"),
            {
                "type": "TAKE_PROFIT_LIMIT",
                "side": "BUY",
                "stopPrice": "51000",
                "price": "51000",
                "timeInForce": "GTC",
            },
        ),
    ],
    ids=["STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
)
async def test_conditional_orders_wait_trigger_and_fill(
    venue: BinanceVenue,
    ms: ManualMs,
    order: dict[str, str],
    trigger: Decimal,
    crossed: dict[str, str],
) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        placed = await api.ok(
            "order.place", symbol="BTCUSDT", quantity="0.1", newClientOrderId="cond", **order
        )
        assert set(placed) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        new = await api.event()
        assert (new["x"], new["X"], new["o"], new["w"], new["P"]) == (
            "NEW",
            "NEW",
            order["type"],
            False,
            f"{Decimal(order['stopPrice']):.8f}",
        )
        assert "W" not in new
        row = await api.ok("order.status", symbol="BTCUSDT", origClientOrderId="cond")
        assert (row["status"], row["workingTime"], row["isWorking"]) == ("NEW", -1, False)
        venue.step(1, "ETHUSDT")  # another symbol moving changes nothing here
        venue.set_price("BTCUSDT", trigger)
        filled = await api.event()
        assert (filled["x"], filled["X"], filled["l"]) == ("TRADE", "FILLED", "0.10000000")
        assert filled["W"] >= filled["O"]
        rejected = await api.call("order.place", symbol="BTCUSDT", quantity="0.1", **crossed)
        venue_last = venue.exchange.last_price("BTCUSDT")
        assert venue_last == trigger
        assert rejected["status"] == 400, rejected
        assert rejected["error"] == {"code": -2010, "msg": "Order would trigger immediately."}


# ------------------------------------------------------------ rate limits


def test_weight_limit_answers_429_then_bans_with_418(ms: ManualMs) -> None:
    with (
        BinanceVenue(clock=ms, weight_limit=10, ban_seconds=120) as fake,
        httpx.Client(base_url=fake.rest_url) as http,
    ):
        used = [http.get("/api/v3/ping").headers["X-MBX-USED-WEIGHT-1M"] for _ in range(10)]
        assert used == [str(n) for n in range(1, 11)]
        limited = http.get("/api/v3/ping")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "40"
        assert limited.json()["code"] == -1003
        assert limited.json()["msg"].startswith("Too much request weight used;")
        banned = http.get("/api/v3/ping")
        assert banned.status_code == 418
        assert banned.headers["Retry-After"] == "120"
        assert "IP banned until" in banned.json()["msg"]
        ms.now += 119_000
        assert http.get("/api/v3/ping").headers["Retry-After"] == "1"
        ms.now += 1_000
        again = http.get("/api/v3/ping")
        assert again.status_code == 200
        assert again.headers["X-MBX-USED-WEIGHT-1M"] == "1"


def test_rate_limit_and_ban_knobs(venue: BinanceVenue, rest: Rest, ms: ManualMs) -> None:
    venue.rate_limit(1, retry_after=7)
    limited = rest.get("time")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    ms.now += 7_000
    assert rest.get("time").status_code == 200
    venue.ban(30)
    banned = rest.get("time")
    assert (banned.status_code, banned.headers["Retry-After"]) == (418, "30")
    ms.now += 30_000
    assert rest.get("time").status_code == 200


@pytest.mark.trio
async def test_websocket_api_reports_rate_limits(venue: BinanceVenue, ms: ManualMs) -> None:
    async with ws_api(venue, ms) as api:
        answer = await api.call("time", signed=False)
        assert answer["result"] == {"serverTime": ms.now}
        assert answer["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
        await trio.to_thread.run_sync(lambda: venue.rate_limit(1, retry_after=3))
        limited = await api.call("ping", signed=False)
        assert limited["status"] == 429
        assert limited["error"]["code"] == -1003
        assert limited["error"]["data"]["retryAfter"] == ms.now + 3_000


# ------------------------------------------------------------- fault knobs


@pytest.mark.trio
async def test_delayed_request_is_answered_after_a_prompt_one(venue: BinanceVenue) -> None:
    venue.delay_requests(1, 0.3, endpoints=["GET time"])
    finished: list[str] = []
    async with httpx.AsyncClient(base_url=venue.rest_url) as http:

        async def fetch(path: str) -> None:
            response = await http.get(f"/api/v3/{path}")
            assert response.status_code == 200
            finished.append(path)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch, "time")
            nursery.start_soon(fetch, "ping")
    assert finished == ["ping", "time"]


@pytest.mark.trio
async def test_state_shows_pending_faults_and_the_requests_held_now(venue: BinanceVenue) -> None:
    venue.delay_requests(2, 0.5, endpoints=["GET time", "POST order"])
    venue.fail_requests(2, after=True, endpoints=["POST order"])
    async with httpx.AsyncClient(base_url=venue.rest_url) as http, httpx.AsyncClient() as admin:

        async def faults() -> dict[str, Any]:
            pending: dict[str, Any] = (await admin.get(f"{venue.admin_url}/state")).json()
            return pending["faults"]

        before = await faults()
        assert before["delays"] == [
            {"remaining": 2, "endpoints": ["GET time", "POST order"], "seconds": 0.5}
        ]
        assert before["failures"] == [
            {
                "remaining": 2,
                "endpoints": ["POST order"],
                "status": 503,
                "code": -1007,
                "after": True,
            }
        ]
        assert (before["holding"], before["held"]) == ({}, [])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(http.get, "/api/v3/time")
            # Unsigned: refused, but only once the venue has held it.
            nursery.start_soon(http.post, "/api/v3/order?symbol=BTCUSDT&newClientOrderId=held-1")
            with trio.fail_after(10):
                while len((held := await faults())["held"]) < 2:  # each look is a round trip
                    pass
            assert held["delays"] == []
            assert held["holding"] == {"GET time": 1, "POST order": 1}
            assert sorted(held["held"], key=str) == sorted(
                [
                    {"endpoint": "GET time", "client_order_id": None},
                    {"endpoint": "POST order", "client_order_id": "held-1"},
                ],
                key=str,
            )
            assert (await admin.get(f"{venue.admin_url}/faults")).json() == held
        after = await faults()
        assert (after["holding"], after["held"]) == ({}, [])
        assert after["failures"][0]["remaining"] == 1  # the refused placement took one


def test_failure_before_and_after_processing(rest: Rest, venue: BinanceVenue) -> None:
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "49000",
    }
    venue.fail_requests(1, endpoints=["POST order"])
    before = rest.signed("POST", "order", **order, newClientOrderId="f-1")
    assert before.status_code == 503
    assert before.json()["code"] == -1007
    assert venue.orders() == []
    assert rest.signed("POST", "order", **order, newClientOrderId="f-1").status_code == 200
    venue.fail_requests(1, after=True)
    after = rest.signed("POST", "order", **order, newClientOrderId="f-2")
    assert error(after) == (
        503,
        -1007,
        "Timeout waiting for response from backend server. "
        "Send status unknown; execution status unknown.",
    )
    found = rest.signed("GET", "order", symbol="BTCUSDT", origClientOrderId="f-2")
    assert found.json()["status"] == "NEW"
    assert venue.submissions() == {"f-1": 1, "f-2": 1}


def test_mangled_answers_take_effect_with_their_fields_spoiled(
    rest: Rest, venue: BinanceVenue
) -> None:
    order = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "49000",
    }
    venue.mangle_answers(["orderId", "status"], endpoints=["POST order"])
    venue.mangle_answers(["orderId"], 2, how="null", endpoints=["GET order"])
    assert venue._faults.pending()["manglings"] == [
        {
            "remaining": 1,
            "endpoints": ["POST order"],
            "fields": ["orderId", "status"],
            "how": "drop",
        },
        {"remaining": 2, "endpoints": ["GET order"], "fields": ["orderId"], "how": "null"},
    ]
    placed = rest.signed("POST", "order", **order, newClientOrderId="m-1").json()
    assert "orderId" not in placed and "status" not in placed
    assert placed["clientOrderId"] == "m-1"
    assert [o.client_order_id for o in venue.orders()] == ["m-1"]
    found = rest.signed("GET", "order", symbol="BTCUSDT", origClientOrderId="m-1")
    assert found.status_code == 200 and found.json()["orderId"] is None
    missing = rest.signed("GET", "order", symbol="BTCUSDT", origClientOrderId="nope")
    assert missing.status_code == 400, "a refusal is answered as it is"
    again = rest.signed("GET", "order", symbol="BTCUSDT", origClientOrderId="m-1").json()
    assert isinstance(again["orderId"], int), "two answers used up the knob"
    venue.mangle_answers(["orderId"], how="text", endpoints=["GET openOrders"])
    rows = rest.signed("GET", "openOrders").json()
    assert [row["orderId"] for row in rows] == ["garbled"]
    with pytest.raises(ValueError, match="how must be one of"):
        venue.mangle_answers(["orderId"], how="shuffle")


@pytest.mark.trio
async def test_drop_streams_closes_every_websocket(venue: BinanceVenue, ms: ManualMs) -> None:
    async with ws_api(venue, ms) as api, open_ws(f"{venue.stream_url}/ws/btcusdt@bookTicker") as md:
        await subscribed(api)
        assert await trio.to_thread.run_sync(venue.drop_streams) == 2
        with pytest.raises(ConnectionClosed):
            await api.ws.get_message()
        with pytest.raises(ConnectionClosed):
            await md.get_message()
    async with ws_api(venue, ms) as api:
        await subscribed(api)


@pytest.mark.trio
async def test_down_refuses_and_cuts_then_up_serves_the_same_port(
    venue: BinanceVenue, ms: ManualMs
) -> None:
    port = venue.port
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        await trio.to_thread.run_sync(venue.down)
        with pytest.raises(ConnectionClosed):
            await api.ws.get_message()
    async with httpx.AsyncClient(base_url=venue.rest_url) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/api/v3/time")
        async with httpx.AsyncClient() as admin:
            state = await admin.get(f"{venue.admin_url}/state")
            assert state.json()["up"] is False
            assert (await admin.post(f"{venue.admin_url}/up")).json() == {
                "ok": True,
                "result": None,
            }
        assert venue.port == port
        assert (await http.get("/api/v3/time")).status_code == 200
    await trio.to_thread.run_sync(venue.down)
    await trio.to_thread.run_sync(venue.up)
    async with ws_api(venue, ms) as api:
        await subscribed(api)


async def _place_limit(api: WsApi, client_id: str) -> None:
    await api.ok(
        "order.place",
        symbol="BTCUSDT",
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.01",
        price="49000",
        newClientOrderId=client_id,
    )


@pytest.mark.trio
async def test_duplicated_and_reordered_user_events(venue: BinanceVenue, ms: ManualMs) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        venue.duplicate_events(1)
        await _place_limit(api, "dup")
        first, second, third = [await api.next_frame() for _ in range(3)]
        assert first == second
        assert first["event"]["e"] == "executionReport"
        assert third["event"]["e"] == "outboundAccountPosition"
        venue.reorder_events(2)
        await _place_limit(api, "rev")
        first, second = [await api.next_frame() for _ in range(2)]
        assert [first["event"]["e"], second["event"]["e"]] == [
            "outboundAccountPosition",
            "executionReport",
        ]
        venue.reorder_events(5)
        await _place_limit(api, "held")
        await trio.to_thread.run_sync(venue.release_events)
        first, second = [await api.next_frame() for _ in range(2)]
        assert [first["event"]["e"], second["event"]["e"]] == [
            "outboundAccountPosition",
            "executionReport",
        ]
        assert second["event"]["c"] == "held"
        await _place_limit(api, "after")
        assert (await api.next_frame())["event"]["c"] == "after"


@pytest.mark.trio
@pytest.mark.parametrize("kind", ["invalid_json", "unknown_event", "missing_field"])
async def test_corrupted_user_event(venue: BinanceVenue, ms: ManualMs, kind: str) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        venue.corrupt_next_event(kind)
        request = {"id": 9, "method": "order.place"}
        params = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "49000",
            "apiKey": KEY,
            "timestamp": ms.now,
        }
        params["signature"] = hmac_hex(SECRET, ws_payload(params))
        await api.ws.send_message(json.dumps({**request, "params": params}))
        texts = [await api.ws.get_message() for _ in range(3)]
        assert json.loads(texts[0])["status"] == 200
        if kind == "invalid_json":
            with pytest.raises(ValueError):
                json.loads(texts[1])
        else:
            event = json.loads(texts[1])["event"]
            if kind == "unknown_event":
                assert event["e"] == "unknownEventType"
            else:
                assert event["e"] == "executionReport"
                assert "X" not in event
        assert json.loads(texts[2])["event"]["e"] == "outboundAccountPosition"


@pytest.mark.trio
async def test_stream_termination_unsubscribe_and_server_shutdown(
    venue: BinanceVenue, ms: ManualMs
) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        assert await trio.to_thread.run_sync(venue.terminate_user_streams) == 1
        ended = await api.next_frame()
        assert ended == {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": ms.now}}
        assert await api.ok("session.subscriptions", signed=False) == []
        assert await api.ok("userDataStream.subscribe.signature") == {"subscriptionId": 1}
        again = await api.call("userDataStream.subscribe.signature")
        assert again["error"]["code"] == -2035
        assert await api.ok("userDataStream.unsubscribe", signed=False) == {}
        assert (await api.next_frame())["event"]["e"] == "eventStreamTerminated"
        await trio.to_thread.run_sync(venue.server_shutdown)
        assert await api.next_frame() == {"event": {"e": "serverShutdown", "E": ms.now}}


@pytest.mark.trio
async def test_deposit_sends_balance_update(venue: BinanceVenue, ms: ManualMs) -> None:
    async with ws_api(venue, ms) as api:
        await subscribed(api)
        venue.deposit("USDT", Decimal("250.5"))
        update = await api.event("balanceUpdate")
        assert update == {
            "e": "balanceUpdate",
            "E": ms.now,
            "a": "USDT",
            "d": "250.50000000",
            "T": ms.now,
        }
        position = await api.event("outboundAccountPosition")
        assert position["B"] == [{"a": "USDT", "f": "1000250.50000000", "l": "0.00000000"}]


def test_admin_endpoint_drives_prices_faults_and_shows_state(
    venue: BinanceVenue, rest: Rest
) -> None:
    with httpx.Client(base_url=venue.admin_url) as admin:
        assert admin.post("/set_price", json={"symbol": "BTCUSDT", "price": "51000"}).json()["ok"]
        assert rest.get("ticker/price", symbol="BTCUSDT").json()["price"] == "51000.00000000"
        admin.post("/step", json={"n": 2, "symbol": "ETHUSDT"})
        assert rest.get("ticker/price", symbol="ETHUSDT").json()["price"] != "3000.00000000"
        admin.post("/fail_requests", json={"n": 1, "endpoints": ["GET time"]})
        assert rest.get("time").status_code == 503
        assert rest.get("time").status_code == 200
        assert admin.post("/nope").status_code == 400
        rest.signed(
            "POST",
            "order",
            symbol="BTCUSDT",
            side="BUY",
            type="MARKET",
            quantity="0.01",
            newClientOrderId="adm",
        )
        state = admin.get("/state").json()
        assert state["submissions"] == {"adm": 1}
        assert state["orders"][0]["status"] == "FILLED"
        assert state["balances"]["BTC"]["free"] == "10.01"
        assert len(state["trades"]) == 1
        assert state["calls"]["POST order"] == 1
        assert state["calls"] == admin.get("/calls").json() == venue.calls()


def _knob_methods() -> set[str]:
    """Public methods of BinanceVenue that are not lifecycle or inspection: the knobs."""
    return {
        name
        for name, member in vars(BinanceVenue).items()
        if not name.startswith("_") and inspect.isfunction(member)
    } - INSPECTION


def test_every_knob_method_is_an_admin_knob_of_the_same_name_and_arguments(
    venue: BinanceVenue,
) -> None:
    assert _knob_methods() == set(KNOBS) == set(BinanceVenue.KNOBS)
    assert {
        "delay_requests",
        "fail_requests",
        "mangle_answers",
        "corrupt_next_event",
        "clear_faults",
    } <= set(KNOBS)
    with httpx.Client(base_url=venue.admin_url) as admin:
        served = {knob["name"]: knob for knob in admin.get("/knobs").json()}
        assert set(served) == set(KNOBS)
        for name, knob in KNOBS.items():
            python = list(inspect.signature(getattr(BinanceVenue, name)).parameters)[1:]
            assert [p.name for p in knob.parameters] == python, name
            assert [p["name"] for p in served[name]["parameters"]] == python, name
            assert knob.summary, name
            # Reaches that knob's own argument check (and changes nothing).
            refused = admin.post(f"/{name}", json={"no_such_argument": 1})
            assert refused.status_code == 400, name
            assert refused.json()["error"].startswith(f"{name}: unknown argument"), name
        unknown = admin.post("/delay", json={"n": 1, "seconds": 0, "bogus": 1}).json()
        assert unknown["error"].startswith("delay_requests: unknown argument(s) bogus")


def test_an_unknown_knob_is_400_with_the_known_names(venue: BinanceVenue) -> None:
    with httpx.Client(base_url=venue.admin_url) as admin:
        answer = admin.post("/delay_everything", json={})
        assert answer.status_code == 400
        body = answer.json()
        assert body["ok"] is False
        assert "delay_everything" in body["error"]
        assert body["knobs"] == sorted(KNOBS)
        assert body["deprecated_aliases"] == dict(DEPRECATED_ALIASES)
        page = admin.get("/nothing_here")
        assert page.status_code == 404
        assert page.json()["pages"] == ["calls", "faults", "knobs", "state"]


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("delay_requests", {"seconds": 1}, "delay_requests: missing required argument(s) n"),
        ("delay_requests", {"n": "two", "seconds": 1}, "delay_requests: n must be an integer"),
        ("delay_requests", {"n": 1, "seconds": "soon"}, "delay_requests: seconds must be a number"),
        (
            "delay_requests",
            {"n": 1, "seconds": 1, "endpoints": "POST order"},
            "delay_requests: endpoints must be a list of strings or null",
        ),
        ("fail_requests", {"after": "yes"}, "fail_requests: after must be true or false"),
        (
            "set_price",
            {"symbol": "BTCUSDT", "price": "cheap"},
            "set_price: price must be a decimal",
        ),
        ("set_price", {"symbol": "NOPEUSDT", "price": "1"}, "set_price: unknown symbol 'NOPEUSDT'"),
        ("step", {"symbol": "NOPEUSDT"}, "step: unknown symbol 'NOPEUSDT'"),
        ("ban", {}, "ban: missing required argument(s) seconds"),
        ("corrupt_next_event", {"kind": "garbled"}, "corrupt_next_event: kind must be one of"),
        ("deposit", {"asset": "USDT", "amount": "-1e12"}, "deposit: deposit('USDT'"),
        ("down", {"seconds": "NaN"}, "down: seconds must be a number or null"),
    ],
)
def test_bad_knob_arguments_are_400_with_a_reason(
    venue: BinanceVenue, name: str, args: dict[str, Any], message: str
) -> None:
    with httpx.Client(base_url=venue.admin_url) as admin:
        answer = admin.post(f"/{name}", json=args)
        assert answer.status_code == 400, answer.text
        assert answer.json()["ok"] is False
        assert answer.json()["error"].startswith(message), answer.json()
        for body in (b"[1, 2]", b"{not json"):
            refused = admin.post(f"/{name}", content=body)
            assert refused.status_code == 400
            assert refused.json()["error"].startswith(f"{name}: ")
    assert venue.is_up


def test_deprecated_admin_aliases_still_work_and_say_so(venue: BinanceVenue, rest: Rest) -> None:
    with httpx.Client(base_url=venue.admin_url) as admin:

        def call(name: str, **args: Any) -> dict[str, Any]:
            answer = admin.post(f"/{name}", json=args).json()
            assert answer["ok"], answer
            assert answer["deprecated"] == (
                f"{name!r} is a deprecated alias of {DEPRECATED_ALIASES[name]!r}"
            )
            return answer

        assert set(DEPRECATED_ALIASES.values()) <= set(KNOBS)
        assert not set(DEPRECATED_ALIASES) & set(KNOBS)
        call("fail", n=1, endpoints=["GET time"])
        assert rest.get("time").status_code == 503
        call("fail", n=1, endpoints=["GET time"])
        call("clear")
        assert rest.get("time").status_code == 200
        call("delay", n=1, seconds=0, endpoints=["GET time"])
        assert rest.get("time").status_code == 200
        call("duplicate", n=1)
        call("reorder", n=2)
        call("release")
        call("corrupt", kind="unknown_event")
        assert "deprecated" not in admin.post("/clear_faults").json()


def test_down_for_some_seconds_comes_back_by_itself(venue: BinanceVenue) -> None:
    with httpx.Client(base_url=venue.admin_url) as admin, httpx.Client() as http:
        assert admin.post("/down", json={"seconds": 0.05}).json() == {"ok": True, "result": None}
        assert admin.get("/state").json()["up"] is False
        deadline = time.monotonic() + 20
        while not admin.get("/state").json()["up"]:  # each look is a round trip to the venue
            assert time.monotonic() < deadline, "the venue did not come back up"
        assert venue.is_up
        assert http.get(f"{venue.rest_url}/api/v3/time").status_code == 200


def test_frozen_prices_stop_the_tick_interval_moves_until_thawed() -> None:
    ticks: dict[bool, threading.Semaphore] = {
        True: threading.Semaphore(0),
        False: threading.Semaphore(0),
    }

    def wait_ticks(moved: bool, n: int) -> None:
        for _ in range(n):
            assert ticks[moved].acquire(timeout=10), "the ticker stopped"

    with BinanceVenue(seed=8, tick_interval=0.001) as ticking:
        ticking.tick_listeners.append(lambda moved: ticks[moved].release())
        with httpx.Client(base_url=ticking.admin_url) as admin, httpx.Client() as http:

            def price() -> str:
                url = f"{ticking.rest_url}/api/v3/ticker/price?symbol=BTCUSDT"
                value: str = http.get(url).json()["price"]
                return value

            wait_ticks(True, 1)
            assert admin.post("/freeze_prices", json={}).json()["ok"]
            frozen_at = price()
            wait_ticks(False, 5)
            assert price() == frozen_at
            ticks[True] = threading.Semaphore(0)
            admin.post("/freeze_prices", json={"frozen": False})
            for _ in range(200):
                wait_ticks(True, 1)
                if price() != frozen_at:
                    break
            assert price() != frozen_at


# ------------------------------------------------------- legacy listenKey


@pytest.mark.trio
async def test_legacy_listen_key_flow(venue: BinanceVenue, ms: ManualMs) -> None:
    async with httpx.AsyncClient(base_url=venue.rest_url) as http:
        missing = await http.post("/api/v3/userDataStream")
        assert missing.json()["code"] == -2014
        created = await http.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": KEY})
        key = created.json()["listenKey"]
        assert len(key) == 64
        same = await http.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": KEY})
        assert same.json() == {"listenKey": key}
        async with (
            open_ws(f"{venue.stream_url}/ws/{key}") as raw,
            open_ws(f"{venue.stream_url}/stream?streams={key}") as combined,
        ):
            payload = f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.01&timestamp={ms.now}"
            placed = await http.post(
                f"/api/v3/order?{payload}&signature={hmac_hex(SECRET, payload)}",
                headers={"X-MBX-APIKEY": KEY},
            )
            assert placed.status_code == 200
            event = json.loads(await raw.get_message())
            assert (event["e"], event["x"]) == ("executionReport", "NEW")
            wrapped = json.loads(await combined.get_message())
            assert wrapped == {"stream": key, "data": event}
            keepalive = await http.put(
                f"/api/v3/userDataStream?listenKey={key}", headers={"X-MBX-APIKEY": KEY}
            )
            assert keepalive.json() == {}
            assert await trio.to_thread.run_sync(venue.expire_listen_key) == key
            while (message := json.loads(await raw.get_message()))["e"] != "listenKeyExpired":
                pass
            assert message == {"e": "listenKeyExpired", "E": ms.now, "listenKey": key}
            gone = await http.put(
                f"/api/v3/userDataStream?listenKey={key}", headers={"X-MBX-APIKEY": KEY}
            )
            assert gone.json() == {"code": -1125, "msg": "This listenKey does not exist."}
        fresh = await http.post("/api/v3/userDataStream", headers={"X-MBX-APIKEY": KEY})
        new_key = fresh.json()["listenKey"]
        assert new_key != key
        closed = await http.delete(
            f"/api/v3/userDataStream?listenKey={new_key}", headers={"X-MBX-APIKEY": KEY}
        )
        assert closed.json() == {}


# ---------------------------------------------------------- market streams


@pytest.mark.trio
async def test_book_ticker_raw_combined_and_live_subscriptions(venue: BinanceVenue) -> None:
    base = venue.stream_url
    async with (
        open_ws(f"{base}/ws/btcusdt@bookTicker") as raw,
        open_ws(f"{base}/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker") as combined,
        open_ws(f"{base}/ws") as live,
    ):
        await live.send_message(
            json.dumps({"method": "SUBSCRIBE", "params": ["solusdt@bookTicker"], "id": 1})
        )
        assert json.loads(await live.get_message()) == {"result": None, "id": 1}
        venue.set_price("BTCUSDT", Decimal("51000"))
        assert json.loads(await raw.get_message()) == {
            "u": 1,
            "s": "BTCUSDT",
            "b": "50994.90000000",
            "B": "0.50000000",
            "a": "51005.10000000",
            "A": "0.50000000",
        }
        first = json.loads(await combined.get_message())
        assert first["stream"] == "btcusdt@bookTicker"
        assert first["data"]["u"] == 1
        venue.step()
        streams = [json.loads(await combined.get_message())["stream"] for _ in range(2)]
        assert streams == ["btcusdt@bookTicker", "ethusdt@bookTicker"]
        sol = json.loads(await live.get_message())
        assert (sol["s"], sol["u"]) == ("SOLUSDT", 4)
        await live.send_message(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert json.loads(await live.get_message()) == {"result": ["solusdt@bookTicker"], "id": 2}
        await live.send_message(
            json.dumps({"method": "UNSUBSCRIBE", "params": ["solusdt@bookTicker"], "id": 3})
        )
        assert json.loads(await live.get_message()) == {"result": None, "id": 3}
        await live.send_message("not json")
        assert json.loads(await live.get_message())["code"] == 3


# ------------------------------------------------------------- keepalive


async def _raw_client(port: int, *, answer_pings: bool, pings_wanted: int) -> tuple[int, bool]:
    """A bare wsproto client: counts pings, answers them or not; True if the server hung up."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        connection = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(connection.send(Request(host="127.0.0.1", target="/ws-api/v3")))
        pings = 0
        while pings < pings_wanted:
            data = await stream.receive_some(65536)
            if not data:
                return pings, True
            connection.receive_data(data)
            for event in connection.events():
                if isinstance(event, AcceptConnection):
                    continue
                if isinstance(event, CloseConnection):
                    return pings, True
                if isinstance(event, Ping):
                    pings += 1
                    if answer_pings:
                        await stream.send_all(connection.send(event.response()))
        return pings, False


@pytest.mark.trio
async def test_server_pings_and_drops_a_client_that_never_pongs() -> None:
    fake = BinanceVenue(ping_interval=0.05, pong_timeout=0.25)
    await trio.to_thread.run_sync(fake.start)
    try:
        # Answered pings keep the connection well past the pong timeout (20 x 0.05 s > 0.25 s).
        pings, hung_up = await _raw_client(fake.port, answer_pings=True, pings_wanted=20)
        assert (pings, hung_up) == (20, False)
        pings, hung_up = await _raw_client(fake.port, answer_pings=False, pings_wanted=1000)
        assert hung_up
        assert pings >= 1
    finally:
        await trio.to_thread.run_sync(fake.stop)


# ----------------------------------------------------------- determinism


def _scripted_run(seed: int) -> list[tuple[Any, ...]]:
    ms = ManualMs()
    with BinanceVenue(seed=seed, clock=ms) as fake:
        client = Rest(fake, ms)
        try:
            client.signed(
                "POST",
                "order",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="2",
                price="49950",
            )
            fake.step(40)
        finally:
            client.close()
        return [(t.trade_id, t.price, t.qty, t.is_maker) for t in fake.trades()] + [
            (fake.exchange.last_price("BTCUSDT"),),
            tuple(o.client_order_id for o in fake.orders()),
        ]


def test_same_seed_same_run() -> None:
    assert _scripted_run(3) == _scripted_run(3)
    assert _scripted_run(3) != _scripted_run(4)


# --------------------------------------------------- the official client


def test_official_binance_connector_trades_unchanged() -> None:
    from binance.error import ClientError
    from binance.spot import Spot

    with BinanceVenue(seed=11) as fake:
        client = Spot(
            api_key=fake.api_key, api_secret=SECRET, base_url=fake.rest_url, show_limit_usage=True
        )
        try:
            assert client.ping()["data"] == {}
            assert "serverTime" in client.time()["data"]
            info = client.exchange_info(symbol="BTCUSDT")["data"]
            assert info["symbols"][0]["symbol"] == "BTCUSDT"
            placed = client.new_order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price="49000",
                newClientOrderId="connector-1",
            )
            assert placed["data"]["status"] == "NEW"
            assert placed["limit_usage"]["x-mbx-order-count-10s"] == "1"
            with pytest.raises(ClientError) as duplicate:
                client.new_order(
                    symbol="BTCUSDT",
                    side="BUY",
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity="0.01",
                    price="49000",
                    newClientOrderId="connector-1",
                )
            assert (duplicate.value.status_code, duplicate.value.error_code) == (400, -2010)
            assert duplicate.value.error_message == "Duplicate order sent."
            got = client.get_order("BTCUSDT", origClientOrderId="connector-1")["data"]
            assert got["orderId"] == placed["data"]["orderId"]
            assert [o["clientOrderId"] for o in client.get_open_orders("BTCUSDT")["data"]] == [
                "connector-1"
            ]
            canceled = client.cancel_order("BTCUSDT", origClientOrderId="connector-1")["data"]
            assert canceled["status"] == "CANCELED"
            bought = client.new_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.02")
            assert bought["data"]["status"] == "FILLED"
            trades = client.my_trades("BTCUSDT")["data"]
            assert sum(Decimal(t["qty"]) for t in trades) == Decimal("0.02")
            balances = {b["asset"]: b for b in client.account()["data"]["balances"]}
            assert Decimal(balances["BTC"]["free"]) == Decimal("10.02")
            listen_key = client.new_listen_key()["data"]["listenKey"]
            assert client.renew_listen_key(listen_key)["data"] == {}
            assert client.close_listen_key(listen_key)["data"] == {}
            with pytest.raises(ClientError) as bad:
                Spot(api_key=fake.api_key, api_secret="wrong", base_url=fake.rest_url).account()
            assert bad.value.error_code == -1022
        finally:
            client.session.close()
    assert fake.submissions() == {"connector-1": 2, fake.orders()[1].client_order_id: 1}


def test_official_websocket_clients_trade_and_stream_unchanged() -> None:
    import queue

    from binance.websocket.spot.websocket_api import SpotWebsocketAPIClient
    from binance.websocket.spot.websocket_stream import SpotWebsocketStreamClient

    api_messages: queue.Queue[dict[str, Any]] = queue.Queue()
    stream_messages: queue.Queue[dict[str, Any]] = queue.Queue()
    with BinanceVenue(seed=13) as fake:
        api = SpotWebsocketAPIClient(
            stream_url=fake.ws_api_url,
            api_key=fake.api_key,
            api_secret=SECRET,
            on_message=lambda _socket, text: api_messages.put(json.loads(text)),
        )
        stream = SpotWebsocketStreamClient(
            stream_url=fake.stream_url,
            on_message=lambda _socket, text: stream_messages.put(json.loads(text)),
        )
        try:
            api.new_order(
                id="official-1",
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price="49000",
                newClientOrderId="official-ws",
            )
            placed = api_messages.get(timeout=30)
            assert placed["id"] == "official-1"
            assert placed["status"] == 200, placed
            assert placed["result"]["clientOrderId"] == "official-ws"
            api.get_order(id="official-2", symbol="BTCUSDT", origClientOrderId="official-ws")
            status = api_messages.get(timeout=30)
            assert (status["id"], status["result"]["status"]) == ("official-2", "NEW")
            stream.book_ticker(symbol="btcusdt", id=1)
            assert stream_messages.get(timeout=30) == {"result": None, "id": 1}
            fake.set_price("BTCUSDT", Decimal("50100"))
            ticker = stream_messages.get(timeout=30)
            assert (ticker["s"], ticker["b"]) == ("BTCUSDT", "50094.99000000")
        finally:
            for client in (api, stream):
                client.stop()
                # binance-connector leaves the socket open after the close handshake.
                client.socket_manager.ws.shutdown()


# ------------------------------------------- public market data (issue #12)
#
# Binance's documented example payloads, copied from rest-api.md "Market Data
# endpoints", web-socket-streams.md and web-socket-api.md "Authentication
# requests" / "User Data Stream requests"; the wallet's from the Wallet docs
# (GET /sapi/v1/asset/tradeFee). The venue's answers must have the same keys
# in the same order, with values of the same JSON types.

DOC_TICKER_FULL: dict[str, Any] = {
    "symbol": "BNBBTC",
    "priceChange": "-94.99999800",
    "priceChangePercent": "-95.960",
    "weightedAvgPrice": "0.29628482",
    "prevClosePrice": "0.10002000",
    "lastPrice": "4.00000200",
    "lastQty": "200.00000000",
    "bidPrice": "4.00000000",
    "bidQty": "100.00000000",
    "askPrice": "4.00000200",
    "askQty": "100.00000000",
    "openPrice": "99.00000000",
    "highPrice": "100.00000000",
    "lowPrice": "0.10000000",
    "volume": "8913.30000000",
    "quoteVolume": "15.30000000",
    "openTime": 1499783499040,
    "closeTime": 1499869899040,
    "firstId": 28385,
    "lastId": 28460,
    "count": 76,
}
DOC_TICKER_MINI: dict[str, Any] = {
    "symbol": "BNBBTC",
    "openPrice": "99.00000000",
    "highPrice": "100.00000000",
    "lowPrice": "0.10000000",
    "lastPrice": "4.00000200",
    "volume": "8913.30000000",
    "quoteVolume": "15.30000000",
    "openTime": 1499783499040,
    "closeTime": 1499869899040,
    "firstId": 28385,
    "lastId": 28460,
    "count": 76,
}
DOC_KLINE: list[Any] = [
    1499040000000,
    "0.01634790",
    "0.80000000",
    "0.01575800",
    "0.01577100",
    "148976.11427815",
    1499644799999,
    "2434.19055334",
    308,
    "1756.87402397",
    "28.46694368",
    "0",
]
DOC_TRADE: dict[str, Any] = {
    "id": 28457,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "time": 1499865549590,
    "isBuyerMaker": True,
    "isBestMatch": True,
}
DOC_AGG_TRADE: dict[str, Any] = {
    "a": 26129,
    "p": "0.01633102",
    "q": "4.70443515",
    "f": 27781,
    "l": 27781,
    "T": 1498793709153,
    "m": True,
    "M": True,
}
DOC_AVG_PRICE: dict[str, Any] = {"mins": 5, "price": "9.35751834", "closeTime": 1694061154503}
DOC_TRADE_FEE: list[dict[str, Any]] = [
    {"symbol": "ADABNB", "makerCommission": "0.001", "takerCommission": "0.001"},
    {"symbol": "BNBBTC", "makerCommission": "0.001", "takerCommission": "0.001"},
]
# <symbol>@trade since 2024-06-05 (CHANGELOG: buyer/seller order ids "b"/"a" removed).
DOC_TRADE_EVENT: dict[str, Any] = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
DOC_KLINE_EVENT: dict[str, Any] = {
    "e": "kline",
    "E": 1672515782136,
    "s": "BNBBTC",
    "k": {
        "t": 1672515780000,
        "T": 1672515839999,
        "s": "BNBBTC",
        "i": "1m",
        "f": 100,
        "L": 200,
        "o": "0.0010",
        "c": "0.0020",
        "h": "0.0025",
        "l": "0.0015",
        "v": "1000",
        "n": 100,
        "x": False,
        "q": "1.0000",
        "V": "500",
        "Q": "0.500",
        "B": "123456",
    },
}
DOC_DEPTH_UPDATE: dict[str, Any] = {
    "e": "depthUpdate",
    "E": 1672515782136,
    "s": "BNBBTC",
    "U": 157,
    "u": 160,
    "b": [["0.0024", "10"]],
    "a": [["0.0026", "100"]],
}
DOC_PARTIAL_DEPTH: dict[str, Any] = {
    "lastUpdateId": 160,
    "bids": [["0.0024", "10"]],
    "asks": [["0.0026", "100"]],
}
DOC_SESSION_LOGON: dict[str, Any] = {
    "apiKey": DOC_KEY,
    "authorizedSince": 1649729878532,
    "connectedSince": 1649729873021,
    "returnRateLimits": False,
    "serverTime": 1649729878630,
    "userDataStream": False,
}
DOC_SESSION_LOGOUT: dict[str, Any] = {
    "apiKey": None,
    "authorizedSince": None,
    "connectedSince": 1649729873021,
    "returnRateLimits": False,
    "serverTime": 1649730611671,
    "userDataStream": False,
}
DOC_SUBSCRIBE: dict[str, Any] = {"subscriptionId": 0}


def layout(value: Any) -> Any:
    """Keys in order and JSON value types, recursively (a list by its first item)."""
    if isinstance(value, dict):
        return [(key, layout(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [layout(value[0])] if value else []
    return type(value).__name__


def assert_documented(actual: Any, documented: Any) -> None:
    assert layout(actual) == layout(documented), actual


def assert_decimal_strings(row: dict[str, Any], *names: str) -> None:
    for name in names:
        assert Decimal(row[name]).is_finite(), (name, row[name])


# The RFC 8032 (section 7.1, TEST 1) key, registered with the venue as an Ed25519 API key.
ED_KEY = "tradenode-ed25519-test-key"
ED_PRIVATE_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)
ED_PUBLIC_PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
    "-----END PUBLIC KEY-----\n"
)


def ed_sign(payload: str) -> str:
    """Base64 Ed25519 over ``payload``, with the ``cryptography`` library directly."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(ED_PRIVATE_PEM.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return base64.b64encode(key.sign(payload.encode())).decode()


def weight(response: httpx.Response) -> int:
    return int(response.headers["x-mbx-used-weight-1m"])


def test_24hr_ticker_answers_as_documented_for_one_several_and_all_symbols(
    venue: BinanceVenue, rest: Rest, ms: ManualMs
) -> None:
    ms.now += 1000
    venue.set_price("BTCUSDT", Decimal("51000"))
    single = rest.get("ticker/24hr", symbol="BTCUSDT")
    assert single.status_code == 200
    ticker = single.json()
    assert_documented(ticker, DOC_TICKER_FULL)
    numbers = [k for k, v in DOC_TICKER_FULL.items() if isinstance(v, str) and k != "symbol"]
    assert_decimal_strings(ticker, *numbers)
    trades = rest.get("trades", symbol="BTCUSDT").json()
    assert [t["id"] for t in trades] == [1, 2]  # the listing's opening trade, then the move
    assert (ticker["openPrice"], ticker["lastPrice"], ticker["highPrice"]) == (
        "50000.00000000",
        "51000.00000000",
        "51000.00000000",
    )
    assert (ticker["priceChange"], ticker["priceChangePercent"]) == ("1000.00000000", "2.000")
    assert (ticker["firstId"], ticker["lastId"], ticker["count"]) == (1, 2, 2)
    assert ticker["lastQty"] == trades[-1]["qty"]
    assert Decimal(ticker["volume"]) == sum(Decimal(t["qty"]) for t in trades)
    assert Decimal(ticker["quoteVolume"]) == sum(Decimal(t["quoteQty"]) for t in trades)
    assert (ticker["openTime"], ticker["closeTime"]) == (ms.now - 86_400_000, ms.now)
    book_answer = rest.get("ticker/bookTicker", symbol="BTCUSDT")
    book = book_answer.json()
    assert {k: ticker[k] for k in ("bidPrice", "bidQty", "askPrice", "askQty")} == {
        k: book[k] for k in ("bidPrice", "bidQty", "askPrice", "askQty")
    }
    before = weight(book_answer)
    everything = rest.get("ticker/24hr")
    assert [row["symbol"] for row in everything.json()] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    for row in everything.json():
        assert_documented(row, DOC_TICKER_FULL)
    assert weight(everything) - before == 80
    several = rest.get("ticker/24hr", symbols='["ETHUSDT","BTCUSDT"]')
    assert [row["symbol"] for row in several.json()] == ["ETHUSDT", "BTCUSDT"]
    assert weight(several) - weight(everything) == 2
    mini = rest.get("ticker/24hr", symbol="BTCUSDT", type="MINI").json()
    assert_documented(mini, DOC_TICKER_MINI)
    assert mini["lastPrice"] == "51000.00000000"
    for row in rest.get("ticker/24hr", type="MINI").json():
        assert_documented(row, DOC_TICKER_MINI)
    assert error(rest.get("ticker/24hr", symbol="BTCUSDT", type="TINY")) == (
        400,
        -1139,
        "Invalid ticker type.",
    )
    assert error(rest.get("ticker/24hr", symbol="DOGEUSDT"))[1] == -1121
    assert error(rest.get("ticker/24hr", symbol="BTCUSDT", symbols='["BTCUSDT"]'))[1] == -1128
    ms.now += 86_400_000 + 1  # a quiet day later: no trade in the window
    quiet = rest.get("ticker/24hr", symbol="BTCUSDT").json()
    assert (quiet["count"], quiet["firstId"], quiet["lastId"]) == (0, -1, -1)
    assert (quiet["lastPrice"], quiet["prevClosePrice"], quiet["volume"]) == (
        "51000.00000000",
        "51000.00000000",
        "0.00000000",
    )


def test_klines_are_the_public_trades_per_interval_with_flat_gaps(
    venue: BinanceVenue, rest: Rest, ms: ManualMs
) -> None:
    minute = START_MS - START_MS % 60_000  # START_MS is 20 s into its minute
    ms.now = START_MS + 10_000
    venue.set_price("BTCUSDT", Decimal("50100"))
    ms.now = minute + 120_000 + 5_000  # the minute in between has no trade
    venue.set_price("BTCUSDT", Decimal("49900"))
    trades = rest.get("trades", symbol="BTCUSDT").json()
    klines = rest.get("klines", symbol="BTCUSDT", interval="1m").json()
    for row in klines:
        assert_documented(row, DOC_KLINE)
    assert [row[0] for row in klines] == [minute, minute + 60_000, minute + 120_000]
    assert [row[6] for row in klines] == [minute + 59_999, minute + 119_999, minute + 179_999]
    first, gap, last = klines
    assert first[1:5] == ["50000.00000000", "50100.00000000", "50000.00000000", "50100.00000000"]
    assert Decimal(first[5]) == Decimal(trades[0]["qty"]) + Decimal(trades[1]["qty"])
    assert Decimal(first[7]) == Decimal(trades[0]["quoteQty"]) + Decimal(trades[1]["quoteQty"])
    assert first[8] == 2
    takers = [t for t in trades[:2] if not t["isBuyerMaker"]]
    assert Decimal(first[9]) == sum((Decimal(t["qty"]) for t in takers), Decimal(0))
    assert gap[1:6] == ["50100.00000000"] * 4 + ["0.00000000"]
    assert (gap[8], last[8], last[4]) == (0, 1, "49900.00000000")
    assert rest.get("klines", symbol="BTCUSDT", interval="1m", limit=1).json() == [last]
    assert rest.get("klines", symbol="BTCUSDT", interval="1m", startTime=minute + 1).json() == [
        gap,
        last,
    ]
    assert rest.get("klines", symbol="BTCUSDT", interval="1m", endTime=minute).json() == [first]
    assert rest.get("uiKlines", symbol="BTCUSDT", interval="1m").json() == klines
    weekly = rest.get("klines", symbol="BTCUSDT", interval="1w").json()
    opened = weekly[0][0] // 1000
    assert time.gmtime(opened)[6:] == (0, time.gmtime(opened).tm_yday, 0)  # a Monday
    assert (time.gmtime(opened).tm_hour, time.gmtime(opened).tm_min) == (0, 0)
    monthly = rest.get("klines", symbol="BTCUSDT", interval="1M").json()
    assert time.gmtime(monthly[0][0] // 1000)[2:6] == (1, 0, 0, 0)
    daily_cn = rest.get("klines", symbol="BTCUSDT", interval="1d", timeZone="8").json()
    assert time.gmtime(daily_cn[0][0] // 1000)[3:5] == (16, 0)  # midnight in UTC+8
    assert error(rest.get("klines", symbol="BTCUSDT", interval="2m")) == (
        400,
        -1120,
        "Invalid interval.",
    )
    assert error(rest.get("klines", symbol="BTCUSDT"))[1] == -1102
    assert error(rest.get("klines", symbol="BTCUSDT", interval="1m", timeZone="15"))[1] == -1130
    assert error(rest.get("klines", symbol="BTCUSDT", interval="1m", limit=1001))[1] == -1130


def test_recent_historical_and_aggregate_trades_include_the_accounts_fills(
    venue: BinanceVenue, rest: Rest, ms: ManualMs
) -> None:
    ms.now += 1
    bought = rest.signed(
        "POST", "order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.8"
    ).json()
    fills = bought["fills"]
    assert len(fills) == 2  # two levels of the book
    trades = rest.get("trades", symbol="BTCUSDT")
    assert weight(trades) == 1 + 25
    rows = trades.json()
    for row in rows:
        assert_documented(row, DOC_TRADE)
        assert Decimal(row["quoteQty"]) == Decimal(row["price"]) * Decimal(row["qty"])
    assert [row["id"] for row in rows] == [1, 2, 3]
    assert [(row["price"], row["qty"], row["isBuyerMaker"]) for row in rows[1:]] == [
        (fill["price"], fill["qty"], False)
        for fill in fills  # a buyer took the offers
    ]
    assert rest.get("trades", symbol="BTCUSDT", limit=1).json() == rows[-1:]
    assert rest.get("historicalTrades", symbol="BTCUSDT", fromId=2, limit=1).json() == rows[1:2]
    assert rest.get("historicalTrades", symbol="BTCUSDT").json() == rows
    aggregates = rest.get("aggTrades", symbol="BTCUSDT").json()
    for row in aggregates:
        assert_documented(row, DOC_AGG_TRADE)
    assert [(a["a"], a["f"], a["l"], a["p"], a["q"]) for a in aggregates] == [
        (n, row["id"], row["id"], row["price"], row["qty"]) for n, row in enumerate(rows, 1)
    ]
    assert rest.get("aggTrades", symbol="BTCUSDT", fromId=3).json() == aggregates[2:]
    assert rest.get("aggTrades", symbol="BTCUSDT", startTime=ms.now).json() == aggregates[1:]
    assert rest.get("aggTrades", symbol="BTCUSDT", endTime=ms.now - 1).json() == aggregates[:1]
    assert error(rest.get("trades", symbol="NOPE"))[1] == -1121
    assert error(rest.get("trades"))[1] == -1102
    # The account's own trade ids are its own (the simulator's), as before.
    assert [t["id"] for t in rest.signed("GET", "myTrades", symbol="BTCUSDT").json()] == [1, 2]


def test_avg_price_is_the_volume_weighted_price_of_the_last_five_minutes(
    venue: BinanceVenue, rest: Rest, ms: ManualMs
) -> None:
    ms.now += 6 * 60_000  # the opening trade has left the window
    venue.set_price("BTCUSDT", Decimal("50100"))
    ms.now += 1000
    venue.set_price("BTCUSDT", Decimal("50300"))
    answer = rest.get("avgPrice", symbol="BTCUSDT")
    assert weight(answer) == 2
    average = answer.json()
    assert_documented(average, DOC_AVG_PRICE)
    recent = rest.get("trades", symbol="BTCUSDT").json()[1:]
    volume = sum(Decimal(t["qty"]) for t in recent)
    vwap = sum(Decimal(t["quoteQty"]) for t in recent) / volume
    assert average == {"mins": 5, "price": str(vwap.quantize(Decimal("1e-8"))), "closeTime": ms.now}
    ms.now += 10 * 60_000
    assert rest.get("avgPrice", symbol="BTCUSDT").json()["price"] == "50300.00000000"


def test_trade_fee_wallet_endpoint_is_signed_and_documented(
    venue: BinanceVenue, ms: ManualMs
) -> None:
    with httpx.Client(base_url=venue.rest_url) as http:

        def fee(key: str | None = KEY, **params: Any) -> httpx.Response:
            payload = urlencode({**params, "timestamp": ms()})
            query = f"{payload}&signature={hmac_hex(SECRET, payload)}"
            headers = {} if key is None else {"X-MBX-APIKEY": key}
            return http.get(f"/sapi/v1/asset/tradeFee?{query}", headers=headers)

        everything = fee()
        assert everything.status_code == 200
        rows = everything.json()
        assert_documented(rows, DOC_TRADE_FEE)
        assert rows == [
            {"symbol": symbol, "makerCommission": "0.0002", "takerCommission": "0.001"}
            for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
        ]
        assert "x-sapi-used-ip-weight-1m" in everything.headers
        assert fee(symbol="ETHUSDT").json() == rows[1:2]
        assert error(fee(symbol="DOGEUSDT"))[1] == -1121
        assert error(fee(key=None)) == (401, -2014, "API-key format invalid.")
        unsigned = http.get("/sapi/v1/asset/tradeFee", headers={"X-MBX-APIKEY": KEY})
        assert error(unsigned)[1] == -1102
        assert http.get("/sapi/v1/asset/nothing").status_code == 404
    assert venue.calls()["GET sapi/v1/asset/tradeFee"] == 5


@pytest.mark.trio
async def test_trade_kline_and_depth_streams_follow_the_simulator(
    venue: BinanceVenue, ms: ManualMs
) -> None:
    names = "btcusdt@trade/btcusdt@kline_1m/btcusdt@depth/btcusdt@depth5"
    async with (
        open_ws(f"{venue.stream_url}/stream?streams={names}") as combined,
        open_ws(f"{venue.stream_url}/ws/btcusdt@trade") as raw,
    ):
        async with httpx.AsyncClient(base_url=venue.rest_url) as http:
            snapshot = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})).json()
        ms.now += 1000
        await trio.to_thread.run_sync(venue.set_price, "BTCUSDT", Decimal("51000"))
        frames = [json.loads(await combined.get_message()) for _ in range(4)]
        streams = [frame["stream"] for frame in frames]
        assert streams == names.split("/")
        trade, kline, depth, partial = (frame["data"] for frame in frames)
        assert json.loads(await raw.get_message()) == trade
        assert_documented(trade, DOC_TRADE_EVENT)
        assert (trade["s"], trade["t"], trade["p"], trade["T"]) == (
            "BTCUSDT",
            2,
            "51000.00000000",
            ms.now,
        )
        assert_documented(kline, DOC_KLINE_EVENT)
        candle = kline["k"]
        assert (candle["i"], candle["x"], candle["o"], candle["c"], candle["n"]) == (
            "1m",
            False,
            "50000.00000000",
            "51000.00000000",
            2,
        )
        assert (candle["f"], candle["L"], candle["t"] % 60_000, candle["T"] - candle["t"]) == (
            1,
            2,
            0,
            59_999,
        )
        assert_documented(depth, DOC_DEPTH_UPDATE)
        # Binance's local order book rules: U <= lastUpdateId + 1 <= u, then U == previous u + 1.
        assert depth["U"] <= snapshot["lastUpdateId"] + 1 <= depth["u"]
        assert depth["b"] and depth["a"]
        assert_documented(partial, DOC_PARTIAL_DEPTH)
        assert partial["lastUpdateId"] == depth["u"]
        async with httpx.AsyncClient(base_url=venue.rest_url) as http:
            book = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT"})).json()
        assert (partial["bids"], partial["asks"]) == (book["bids"][:5], book["asks"][:5])
        previous = depth["u"]
        ms.now += 60_000  # into the next minute
        await trio.to_thread.run_sync(venue.step)
        frames = [json.loads(await combined.get_message()) for _ in range(5)]
        assert [frame["stream"] for frame in frames] == [
            "btcusdt@trade",
            "btcusdt@kline_1m",
            "btcusdt@kline_1m",
            "btcusdt@depth",
            "btcusdt@depth5",
        ]
        closed, opened = frames[1]["data"]["k"], frames[2]["data"]["k"]
        assert (closed["t"], closed["x"], opened["t"], opened["x"]) == (
            candle["t"],
            True,
            candle["t"] + 60_000,
            False,
        )
        assert frames[3]["data"]["U"] == previous + 1
        assert frames[3]["data"]["u"] >= frames[3]["data"]["U"]


# ------------------------------------------------ WebSocket API sessions


async def ed_call(api: WsApi, method: str, key: str = ED_KEY, **params: Any) -> dict[str, Any]:
    """A request signed with the Ed25519 key (``cryptography``), or HMAC for the HMAC key."""
    params["apiKey"] = key
    params.setdefault("timestamp", api.ms())
    payload = ws_payload(params)
    params["signature"] = ed_sign(payload) if key == ED_KEY else hmac_hex(SECRET, payload)
    return await api.call(method, signed=False, **params)


@pytest.mark.trio
async def test_session_logon_status_logout_and_subscribe_with_an_ed25519_key(
    venue: BinanceVenue, ms: ManualMs
) -> None:
    venue.register_ed25519_key(ED_KEY, ED_PUBLIC_PEM)
    connected = ms.now
    async with ws_api(venue, ms) as api:
        ms.now += 500
        status = await api.ok("session.status", signed=False)
        assert_documented(status, DOC_SESSION_LOGOUT)
        assert (status["apiKey"], status["connectedSince"], status["userDataStream"]) == (
            None,
            connected,
            False,
        )
        refused = await api.call("userDataStream.subscribe", signed=False)
        assert (refused["status"], refused["error"]["code"]) == (401, -2015)
        hmac_logon = await ed_call(api, "session.logon", key=KEY)
        assert (hmac_logon["status"], hmac_logon["error"]["code"]) == (401, -2015)
        forged = await api.call(
            "session.logon", signed=False, apiKey=ED_KEY, timestamp=ms(), signature=ed_sign("x")
        )
        assert (forged["status"], forged["error"]["code"]) == (400, -1022)
        stale = await ed_call(api, "session.logon", timestamp=ms() - 6000)
        assert stale["error"]["code"] == -1021
        stamp = ms()
        logon = await ed_call(api, "session.logon", timestamp=stamp, recvWindow=5000)
        assert logon["status"] == 200
        assert_documented(logon["result"], DOC_SESSION_LOGON)
        assert logon["result"] == {
            "apiKey": ED_KEY,
            "authorizedSince": stamp,
            "connectedSince": connected,
            "returnRateLimits": True,
            "serverTime": ms.now,
            "userDataStream": False,
        }
        assert logon["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
        extra = await api.call("userDataStream.subscribe", signed=False, foo="1")
        assert extra["error"] == {
            "code": -1104,
            "msg": "Not all sent parameters were read; read '0' parameter(s) but was sent '1'.",
        }
        subscribed_now = await api.ok("userDataStream.subscribe", signed=False)
        assert_documented(subscribed_now, DOC_SUBSCRIBE)
        assert subscribed_now == {"subscriptionId": 0}
        again = await api.call("userDataStream.subscribe", signed=False)
        assert again["error"]["code"] == -2035
        status = await api.ok("session.status", signed=False)
        assert (status["apiKey"], status["authorizedSince"], status["userDataStream"]) == (
            ED_KEY,
            stamp,
            True,
        )
        # Logged on: requests need a timestamp, not apiKey nor signature.
        placed = await api.ok(
            "order.place",
            signed=False,
            symbol="BTCUSDT",
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity="0.1",
            price="49000",
            newClientOrderId="session-1",
            timestamp=ms(),
        )
        assert placed["status"] == "NEW"
        report = await api.event()
        assert (report["c"], report["x"]) == ("session-1", "NEW")
        unstamped = await api.call("account.status", signed=False)
        assert unstamped["error"]["code"] == -1102
        # Ad hoc: an explicit key and signature still authorize one request.
        adhoc = await api.ok("order.status", symbol="BTCUSDT", origClientOrderId="session-1")
        assert adhoc["status"] == "NEW"
        logout = await api.ok("session.logout", signed=False)
        assert_documented(logout, DOC_SESSION_LOGOUT)
        assert (logout["apiKey"], logout["authorizedSince"], logout["userDataStream"]) == (
            None,
            None,
            False,
        )
        ended = await api.next_frame()
        while "event" not in ended or ended["event"]["e"] != "eventStreamTerminated":
            ended = await api.next_frame()
        assert ended == {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": ms.now}}
        anonymous = await api.call(
            "openOrders.status", signed=False, symbol="BTCUSDT", timestamp=ms()
        )
        assert anonymous["error"]["code"] == -1102  # apiKey again mandatory
        assert (await api.ok("session.logout", signed=False))["apiKey"] is None
    calls = venue.calls()
    assert (calls["session.logon"], calls["userDataStream.subscribe"]) == (4, 4)
    assert (calls["session.status"], calls["session.logout"]) == (2, 2)


@pytest.mark.trio
async def test_signature_subscriptions_outlive_a_logout(venue: BinanceVenue, ms: ManualMs) -> None:
    venue.register_ed25519_key(ED_KEY, ED_PUBLIC_PEM)
    async with ws_api(venue, ms) as api:
        assert (await ed_call(api, "session.logon"))["status"] == 200
        await subscribed(api)  # userDataStream.subscribe.signature with the HMAC key
        logout = await api.ok("session.logout", signed=False)
        assert logout["userDataStream"] is True
        await trio.to_thread.run_sync(venue.deposit, "USDT", Decimal(5))
        assert (await api.event("balanceUpdate"))["d"] == "5.00000000"


def test_rest_requests_signed_with_an_ed25519_key(venue: BinanceVenue, ms: ManualMs) -> None:
    venue.register_ed25519_key(ED_KEY, ED_PUBLIC_PEM)
    with httpx.Client(base_url=venue.rest_url) as http:

        def signed(method: str, path: str, signature: str | None = None, **params: Any) -> Any:
            payload = urlencode({**params, "timestamp": ms()})
            sig = quote(signature if signature is not None else ed_sign(payload), safe="")
            return http.request(
                method,
                f"/api/v3/{path}?{payload}&signature={sig}",
                headers={"X-MBX-APIKEY": ED_KEY},
            )

        account = signed("GET", "account")
        assert account.status_code == 200, account.text
        placed = signed(
            "POST", "order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01"
        )
        assert placed.json()["status"] == "FILLED"
        assert error(signed("GET", "account", signature=ed_sign("other")))[1] == -1022
        payload = urlencode({"timestamp": ms()})
        hexed = hmac_hex(SECRET, payload)  # the HMAC secret does not sign for this key
        forged = http.get(
            f"/api/v3/account?{payload}&signature={hexed}", headers={"X-MBX-APIKEY": ED_KEY}
        )
        assert error(forged)[1] == -1022
        body = urlencode({"timestamp": ms()})
        in_body = http.post(
            "/api/v3/userDataStream", headers={"X-MBX-APIKEY": ED_KEY}, content=body
        )
        assert "listenKey" in in_body.json()
    with pytest.raises(ValueError, match="HMAC key"):
        venue.register_ed25519_key(KEY, ED_PUBLIC_PEM)
    with pytest.raises(ValueError, match="PEM"):
        venue.register_ed25519_key("other", "not a key")


def test_official_connector_reads_market_data_and_signs_with_ed25519() -> None:
    from binance.spot import Spot

    with BinanceVenue(seed=17, ed25519_public_keys={ED_KEY: ED_PUBLIC_PEM}) as fake:
        fake.step(3)
        public = Spot(base_url=fake.rest_url)
        hmac_client = Spot(api_key=fake.api_key, api_secret=SECRET, base_url=fake.rest_url)
        ed_client = Spot(api_key=ED_KEY, private_key=ED_PRIVATE_PEM, base_url=fake.rest_url)
        try:
            ticker = public.ticker_24hr("BTCUSDT")
            assert_documented(ticker, DOC_TICKER_FULL)
            assert ticker["count"] == 4
            mini = public.ticker_24hr(symbols=["BTCUSDT", "ETHUSDT"], type="MINI")
            assert [row["symbol"] for row in mini] == ["BTCUSDT", "ETHUSDT"]
            klines = public.klines("BTCUSDT", "1m", limit=5)
            assert klines and all(layout(row) == layout(DOC_KLINE) for row in klines)
            assert klines[-1][4] == ticker["lastPrice"]
            assert [t["id"] for t in public.trades("BTCUSDT")] == [1, 2, 3, 4]
            assert public.agg_trades("BTCUSDT", limit=2)[-1]["a"] == 4
            assert_documented(public.avg_price("BTCUSDT"), DOC_AVG_PRICE)
            assert hmac_client.trade_fee(symbol="BTCUSDT") == [
                {"symbol": "BTCUSDT", "makerCommission": "0.0002", "takerCommission": "0.001"}
            ]
            # pycryptodome signs here: a third Ed25519 implementation the venue must accept.
            assert ed_client.account()["accountType"] == "SPOT"
            sold = ed_client.new_order(
                symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01"
            )
            assert sold["status"] == "FILLED"
        finally:
            for client in (public, hmac_client, ed_client):
                client.session.close()
    assert fake.calls()["GET ticker/24hr"] == 2
