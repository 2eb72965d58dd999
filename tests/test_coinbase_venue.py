"""The local Coinbase venue (``CoinbaseVenue``) against Coinbase's own SDK, ccxt and raw wire.

coinbase-advanced-py's ``RESTClient``/``WSClient`` and ccxt's ``coinbase``
talk to the venue unchanged but for the base URL; both only speak HTTPS, so
those tests run the venue with ``tls=True`` and trust its throwaway CA the
way ``requests`` is told to (``REQUESTS_CA_BUNDLE``). The other tests sign
their own JWTs (PyJWT, an independent implementation of what the venue
verifies with ``cryptography``) and read the WebSockets with ``websockets``'
blocking client. No sleeps: every wait is on a message or a queue, with a
timeout that only bounds a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt  # type: ignore[import-untyped]
import httpx
import jwt
import pytest
import requests
from coinbase.rest import RESTClient  # type: ignore[import-untyped]
from coinbase.websocket import WSClient  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from requests.exceptions import HTTPError
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection as ClientConnection

from tradenode.testing.venues import CdpKey, CoinbaseVenue, generate_cdp_key

D = Decimal
API = "/api/v3/brokerage"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
WAIT = 10.0
"""Seconds before a wait for a message counts as a failure (never a synchronisation)."""


class Clock:
    """Epoch milliseconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def token(
    key: CdpKey,
    uri: str | None,
    now_s: int,
    *,
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A CDP JWT as Coinbase's SDK builds one (``coinbase/jwt_generator.py``), claims overridable."""
    payload: dict[str, Any] = {"sub": key.name, "iss": "cdp", "nbf": now_s, "exp": now_s + 120}
    if uri is not None:
        payload["uri"] = uri
    payload.update(claims)
    return jwt.encode(
        {k: v for k, v in payload.items() if v is not None},
        key.private_key_pem,
        algorithm="ES256",
        headers={"kid": key.name, "nonce": uuid.uuid4().hex, **(headers or {})},
    )


class Rest:
    """A minimal signed REST client over httpx: one fresh JWT per request, as the SDK does."""

    def __init__(self, venue: CoinbaseVenue, key: CdpKey, clock: Clock | None = None) -> None:
        self.venue = venue
        self.key = key
        self.clock = clock
        self.client = httpx.Client(base_url=venue.rest_url, timeout=WAIT)
        self.host = httpx.URL(venue.rest_url).netloc.decode()

    def now_s(self) -> int:
        return (self.clock.now if self.clock else time.time_ns() // 1_000_000) // 1000

    def request(
        self, method: str, path: str, *, params: Any = None, body: Any = None, **claims: Any
    ) -> httpx.Response:
        uri = f"{method} {self.host}{API}/{path}"
        auth = token(self.key, uri, self.now_s(), **claims)
        return self.client.request(
            method,
            f"{API}/{path}",
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {auth}"},
        )

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.request("GET", path, params=params or None)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def post(self, path: str, body: Any) -> dict[str, Any]:
        response = self.request("POST", path, body=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def order(
        self,
        client_order_id: str,
        side: str,
        configuration: dict[str, Any],
        product: str = "BTC-USD",
    ) -> dict[str, Any]:
        return self.post(
            "orders",
            {
                "client_order_id": client_order_id,
                "product_id": product,
                "side": side,
                "order_configuration": configuration,
            },
        )

    def limit(self, client_order_id: str, side: str, size: str, price: str) -> str:
        answer = self.order(
            client_order_id, side, {"limit_limit_gtc": {"base_size": size, "limit_price": price}}
        )
        assert answer["success"], answer
        order_id: str = answer["success_response"]["order_id"]
        return order_id


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def venue(clock: Clock) -> Iterator[CoinbaseVenue]:
    with CoinbaseVenue(seed=1, clock=clock, heartbeat_interval=3600) as local:
        yield local


@pytest.fixture
def rest(venue: CoinbaseVenue, clock: Clock) -> Iterator[Rest]:
    assert venue.key is not None
    client = Rest(venue, venue.key, clock)
    try:
        yield client
    finally:
        client.client.close()


@pytest.fixture
def tls_venue() -> Iterator[CoinbaseVenue]:
    with CoinbaseVenue(seed=2, tls=True, heartbeat_interval=0.05) as local:
        yield local


@pytest.fixture
def trust_venue_ca(tls_venue: CoinbaseVenue, monkeypatch: pytest.MonkeyPatch) -> None:
    """``requests`` reads its CA bundle from the environment (this one sets it globally)."""
    assert tls_venue.ca_file is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_venue.ca_file)
    monkeypatch.setenv("CURL_CA_BUNDLE", tls_venue.ca_file)


def subscribe(
    connection: ClientConnection,
    channel: str,
    jwt_text: str | None,
    products: list[str] | None = None,
) -> None:
    message: dict[str, Any] = {"type": "subscribe", "channel": channel}
    if products is not None:
        message["product_ids"] = products
    if jwt_text is not None:
        message["jwt"] = jwt_text
    connection.send(json.dumps(message))


def receive(connection: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(connection.recv(timeout=WAIT))
    return message


def until(connection: ClientConnection, channel: str) -> dict[str, Any]:
    """The next message on ``channel`` (others, e.g. subscriptions, are skipped)."""
    while True:
        message = receive(connection)
        if message.get("channel") == channel:
            return message


def user_stream(venue: CoinbaseVenue, key: CdpKey, clock: Clock) -> ClientConnection:
    """A connection to the user endpoint, subscribed to ``user`` for BTC-USD, snapshot read."""
    connection = connect(venue.ws_user_url)
    subscribe(connection, "user", token(key, None, clock.now // 1000), ["BTC-USD"])
    snapshot = receive(connection)
    assert snapshot["channel"] == "user" and snapshot["events"][0]["type"] == "snapshot"
    assert receive(connection)["channel"] == "subscriptions"
    return connection


# ---------------------------------------------------------------- Coinbase's SDK


@pytest.fixture
def sessions() -> Iterator[list[requests.Session]]:
    """The HTTP sessions of the clients a test made, closed after it."""
    made: list[requests.Session] = []
    yield made
    for session in made:
        session.close()


def sdk_client(
    venue: CoinbaseVenue, sessions: list[requests.Session], **credentials: Any
) -> RESTClient:
    if not credentials:
        assert venue.key is not None
        credentials = {"api_key": venue.key.name, "api_secret": venue.key.private_key_pem}
    client = RESTClient(base_url=venue.rest_url.removeprefix("https://"), **credentials)
    sessions.append(client.session)
    return client


@pytest.mark.usefixtures("trust_venue_ca")
def test_sdk_rest_orders_fills_accounts_and_products(
    tls_venue: CoinbaseVenue, sessions: list[requests.Session]
) -> None:
    client = sdk_client(tls_venue, sessions)
    accounts = client.get_accounts().to_dict()["accounts"]
    assert {a["currency"]: a["available_balance"]["value"] for a in accounts} == {
        "USD": "1000000",
        "BTC": "10",
        "ETH": "100",
    }
    product = client.get_product("BTC-USD")
    assert (product.base_increment, product.price_increment) == ("0.00000001", "0.01")
    assert client.get_best_bid_ask(product_ids=["BTC-USD"]).pricebooks[0]["product_id"] == "BTC-USD"
    assert int(client.get_unix_time().epoch_seconds) > 0

    market = client.market_order_buy(
        client_order_id="sdk-m1", product_id="BTC-USD", base_size="0.1"
    )
    assert market.success
    order = client.get_order(market.success_response["order_id"]).order
    assert (order.status, order.filled_size, order.order_type) == ("FILLED", "0.1", "MARKET")

    limit = client.limit_order_gtc_buy(
        client_order_id="sdk-l1", product_id="BTC-USD", base_size="1.2", limit_price="49000"
    )
    order_id = limit.success_response["order_id"]
    tls_venue.set_price("BTC-USD", D("48990"))
    tls_venue.set_price("BTC-USD", D("48995"))
    order = client.get_order(order_id).order
    assert (order.status, order.filled_size, order.number_of_fills) == ("OPEN", "1", "2")
    fills = client.get_fills(order_ids=[order_id]).fills
    assert [(f.size, f.price, f.liquidity_indicator) for f in fills] == [
        ("0.5", "49000", "MAKER"),
        ("0.5", "49000", "MAKER"),
    ]
    edited = client.edit_order(order_id, size="1.1", price="48000")
    assert edited.success
    assert (
        client.get_order(order_id).order.order_configuration.limit_limit_gtc.limit_price == "48000"
    )
    listed = client.list_orders(order_status=["OPEN"], product_ids=["BTC-USD"]).orders
    assert [o.order_id for o in listed] == [order_id]
    cancelled = client.cancel_orders(order_ids=[order_id]).results
    assert cancelled[0].success
    assert client.get_order(order_id).order.status == "CANCELLED"

    refused = client.limit_order_gtc_buy(
        client_order_id="sdk-m2", product_id="BTC-USD", base_size="100", limit_price="49000"
    )
    assert not refused.success
    assert refused.error_response["error"] == "INSUFFICIENT_FUND"
    again = client.market_order_buy(client_order_id="sdk-m1", product_id="BTC-USD", base_size="0.1")
    assert (
        again.success and again.success_response["order_id"] == market.success_response["order_id"]
    )
    assert tls_venue.submissions() == {"sdk-m1": 2, "sdk-l1": 1, "sdk-m2": 1}
    assert len([o for o in tls_venue.orders() if o.client_order_id == "sdk-m1"]) == 1


@pytest.mark.usefixtures("trust_venue_ca")
def test_sdk_key_file_and_signature_refusal(
    tls_venue: CoinbaseVenue, tmp_path: Path, sessions: list[requests.Session]
) -> None:
    assert tls_venue.key is not None
    key_file = tmp_path / "cdp_api_key.json"
    key_file.write_text(tls_venue.key.to_json())
    assert sdk_client(tls_venue, sessions, key_file=str(key_file)).get_accounts().accounts
    stranger = generate_cdp_key()
    client = sdk_client(
        tls_venue, sessions, api_key=stranger.name, api_secret=stranger.private_key_pem
    )
    with pytest.raises(HTTPError, match="401 Client Error"):
        client.get_accounts()


@pytest.mark.usefixtures("trust_venue_ca")
@pytest.mark.filterwarnings(
    # The SDK's own wss setup (websocket_base.py: ssl.SSLContext()), not the venue's.
    "ignore:ssl.SSLContext\\(\\) without protocol argument is deprecated:DeprecationWarning",
    "ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning",
)
def test_sdk_websocket_user_and_heartbeats(
    tls_venue: CoinbaseVenue, sessions: list[requests.Session]
) -> None:
    assert tls_venue.key is not None
    client = sdk_client(tls_venue, sessions)
    order_id = client.limit_order_gtc_buy(
        client_order_id="ws-l1", product_id="BTC-USD", base_size="1", limit_price="49000"
    ).success_response["order_id"]
    messages: queue.Queue[dict[str, Any]] = queue.Queue()
    ws = WSClient(
        api_key=tls_venue.key.name,
        api_secret=tls_venue.key.private_key_pem,
        base_url=tls_venue.ws_user_url,
        on_message=lambda text: messages.put(json.loads(text)),
        retry=False,
    )
    ws.open()
    try:
        ws.subscribe(["BTC-USD"], ["heartbeats", "user"])
        seen: list[dict[str, Any]] = []

        def next_on(channel: str) -> dict[str, Any]:
            while True:
                message = messages.get(timeout=WAIT)
                seen.append(message)
                if message["channel"] == channel:
                    return message

        snapshot = next_on("user")["events"][0]
        assert snapshot["type"] == "snapshot"
        assert [o["order_id"] for o in snapshot["orders"]] == [order_id]
        assert next_on("heartbeats")["events"][0]["heartbeat_counter"] == "1"
        tls_venue.set_price("BTC-USD", D("48990"))
        update = next_on("user")["events"][0]
        assert update["type"] == "update"
        order = update["orders"][0]
        assert (order["cumulative_quantity"], order["leaves_quantity"], order["avg_price"]) == (
            "0.5",
            "0.5",
            "49000",
        )
        assert (order["status"], order["client_order_id"]) == ("OPEN", "ws-l1")
        assert [m["sequence_num"] for m in seen] == list(range(len(seen)))
    finally:
        ws.close()


# ------------------------------------------------------------------------- ccxt


@pytest.mark.usefixtures("trust_venue_ca")
def test_ccxt_coinbase_trades_against_the_venue(
    tls_venue: CoinbaseVenue, sessions: list[requests.Session]
) -> None:
    assert tls_venue.key is not None
    exchange = ccxt.coinbase(
        {
            "apiKey": tls_venue.key.name,
            "secret": tls_venue.key.private_key_pem,
            "requests_trust_env": True,
        }
    )
    sessions.append(exchange.session)
    exchange.urls["api"]["rest"] = tls_venue.rest_url
    exchange.load_markets()
    assert {"BTC/USD", "ETH/USD"} <= set(exchange.markets)
    # ccxt's default balance is the Coinbase App's /v2/accounts; v3 on request.
    assert exchange.fetch_balance()["total"]["BTC"] == 10
    assert exchange.fetch_balance({"v3": True})["total"]["BTC"] == 10
    order = exchange.create_order("BTC/USD", "limit", "buy", 1, 49000)
    tls_venue.set_price("BTC-USD", D("48990"))
    fetched = exchange.fetch_order(order["id"], "BTC/USD")
    assert (fetched["filled"], fetched["remaining"], fetched["status"]) == (0.5, 0.5, "open")
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USD")] == [order["id"]]
    trades = exchange.fetch_my_trades("BTC/USD")
    assert [(t["order"], t["amount"], t["price"]) for t in trades] == [(order["id"], 0.5, 49000)]
    exchange.cancel_order(order["id"], "BTC/USD")
    assert exchange.fetch_order(order["id"], "BTC/USD")["status"] == "canceled"
    ticker = exchange.fetch_ticker("BTC/USD")
    assert ticker["bid"] < ticker["ask"]


# -------------------------------------------------------------- authentication


def test_every_private_request_needs_a_valid_jwt(
    venue: CoinbaseVenue, rest: Rest, clock: Clock
) -> None:
    assert venue.key is not None
    now = clock.now // 1000
    host = rest.host
    uri = f"GET {host}{API}/accounts"
    refused = {
        "no header": None,
        "another key": token(generate_cdp_key(), uri, now),
        "expired": token(venue.key, uri, now, nbf=now - 121, exp=now - 1),
        "not yet valid": token(venue.key, uri, now, nbf=now + 5, exp=now + 60),
        "too long-lived": token(venue.key, uri, now, exp=now + 3600),
        "other path": token(venue.key, f"GET {host}{API}/orders/historical/batch", now),
        "other method": token(venue.key, f"POST {host}{API}/accounts", now),
        "other host": token(venue.key, f"GET api.coinbase.com{API}/accounts", now),
        "query in uri": token(venue.key, uri + "?limit=1", now),
        "no uri": token(venue.key, None, now),
        "wrong issuer": token(venue.key, uri, now, iss="someone"),
        "kid is not sub": token(venue.key, uri, now, headers={"kid": "organizations/x/apiKeys/y"}),
    }
    for case, value in refused.items():
        headers = {} if value is None else {"Authorization": f"Bearer {value}"}
        response = rest.client.get(f"{API}/accounts", headers=headers)
        assert (response.status_code, response.text) == (401, "Unauthorized\n"), case
    good = token(venue.key, uri, now)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    response = rest.client.get(f"{API}/accounts", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    response = rest.client.get(f"{API}/accounts", headers={"Authorization": f"Bearer {good}"})
    assert response.status_code == 200
    # The Coinbase App's /v2/accounts takes the same JWTs, for its own path.
    wallets = f"GET {host}/v2/accounts"
    response = rest.client.get("/v2/accounts", headers={"Authorization": f"Bearer {good}"})
    assert (response.status_code, response.text) == (401, "Unauthorized\n")
    response = rest.client.get(
        "/v2/accounts", headers={"Authorization": f"Bearer {token(venue.key, wallets, now)}"}
    )
    assert response.status_code == 200
    assert {w["balance"]["currency"] for w in response.json()["data"]} >= {"BTC", "USD"}
    assert rest.client.get(f"{API}/time").json()["epochMillis"] == str(T0)
    clock.now += 120_000
    response = rest.client.get(f"{API}/accounts", headers={"Authorization": f"Bearer {good}"})
    assert response.status_code == 401, "a token is refused once two minutes have passed"


def test_registered_keys_ccxt_issuer_and_ed25519(clock: Clock) -> None:
    given = generate_cdp_key(org_id="org-1", key_id="key-1")
    assert given.name == "organizations/org-1/apiKeys/key-1"
    assert "PRIVATE" not in repr(given)
    with (
        CoinbaseVenue(api_keys={given.name: given.public_key_pem}, clock=clock) as venue,
        contextlib.ExitStack() as closer,
    ):
        assert venue.key is None
        rest = Rest(venue, given, clock)
        closer.callback(rest.client.close)
        assert rest.request("GET", "accounts").status_code == 200
        assert (
            rest.request(
                "GET", "accounts", iss="coinbase-cloud", aud=["retail_rest_api_proxy"]
            ).status_code
            == 200
        )
        private = ed25519.Ed25519PrivateKey.generate()
        public_pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        venue.register_key("ed-key", public_pem)
        now = clock.now // 1000
        signed = jwt.encode(
            {"sub": "ed-key", "iss": "cdp", "nbf": now, "exp": now + 120,
             "uri": f"GET {rest.host}{API}/accounts"},
            private,
            algorithm="EdDSA",
            headers={"kid": "ed-key", "nonce": "00"},
        )  # fmt: skip
        response = rest.client.get(f"{API}/accounts", headers={"Authorization": f"Bearer {signed}"})
        assert response.status_code == 200
        with pytest.raises(ValueError, match="PEM"):
            venue.register_key("bad", "not a key")


def test_user_channel_needs_a_valid_jwt_market_channels_do_not(
    venue: CoinbaseVenue, clock: Clock
) -> None:
    assert venue.key is not None
    with connect(venue.ws_user_url) as connection:
        subscribe(connection, "user", token(generate_cdp_key(), None, clock.now // 1000))
        assert receive(connection) == {"type": "error", "message": "authentication failure"}
        subscribe(connection, "ticker", None, ["BTC-USD"])
        assert receive(connection)["type"] == "error", "the user endpoint carries no market data"
    with connect(venue.ws_url) as connection:
        subscribe(connection, "ticker", None, ["BTC-USD"])
        ticker = receive(connection)
        assert ticker["channel"] == "ticker" and ticker["sequence_num"] == 0
        assert ticker["events"][0]["tickers"][0]["best_bid"] == "49995"
        assert receive(connection)["channel"] == "subscriptions"
        subscribe(connection, "level2", None, ["BTC-USD"])
        book = receive(connection)
        assert book["channel"] == "l2_data" and book["events"][0]["type"] == "snapshot"
        assert {row["side"] for row in book["events"][0]["updates"]} == {"bid", "offer"}
        assert receive(connection)["channel"] == "subscriptions"
        venue.set_price("BTC-USD", D("50100"))
        assert until(connection, "ticker")["events"][0]["tickers"][0]["price"] == "50100"
        update = until(connection, "l2_data")["events"][0]
        assert update["type"] == "update" and "0" in {r["new_quantity"] for r in update["updates"]}


def test_a_client_that_does_not_subscribe_is_disconnected(clock: Clock) -> None:
    with (
        CoinbaseVenue(clock=clock, subscribe_timeout=0.2) as venue,
        connect(venue.ws_url) as connection,
        pytest.raises(ConnectionClosed),
    ):
        connection.recv(timeout=WAIT)


# ----------------------------------------------------------------- semantics


def test_resting_limit_fills_in_parts_over_price_moves(venue: CoinbaseVenue, rest: Rest) -> None:
    order_id = rest.limit("p1", "SELL", "1.2", "50100")
    assert venue.balances()["BTC"] == (D("8.8"), D("1.2"))
    for price in ("50200", "50250", "50300"):
        venue.set_price("BTC-USD", D(price))
    order = rest.get(f"orders/historical/{order_id}")["order"]
    assert (order["status"], order["filled_size"], order["number_of_fills"]) == (
        "FILLED",
        "1.2",
        "3",
    )
    sizes = [f.size for f in venue.fills()]
    assert sizes == [D("0.5"), D("0.5"), D("0.2")]
    assert len({f.trade_id for f in venue.fills()}) == 3
    fills = rest.get("orders/historical/fills", order_ids=order_id)["fills"]
    assert sum(D(f["commission"]) for f in fills) == D("1.2") * D("50100") * D("0.004")
    assert venue.balances()["BTC"] == (D("8.8"), D(0))
    assert venue.position("BTC-USD") == D("-1.2")


def test_market_orders_by_base_and_quote_size(venue: CoinbaseVenue, rest: Rest) -> None:
    answer = rest.order("m1", "BUY", {"market_market_ioc": {"base_size": "0.25"}})
    assert answer["success"]
    answer = rest.order("m2", "BUY", {"market_market_ioc": {"quote_size": "1000"}})
    order = rest.get(f"orders/historical/{answer['success_response']['order_id']}")["order"]
    assert order["status"] == "FILLED"
    assert D(order["filled_value"]) <= D(1000) and D(order["filled_size"]) > 0
    assert [o.status for o in venue.orders()] == ["FILLED", "FILLED"]


def test_stop_limit_triggers_on_the_last_price(venue: CoinbaseVenue, rest: Rest) -> None:
    stop = {"base_size": "0.1", "limit_price": "48900", "stop_price": "49000",
            "stop_direction": "STOP_DIRECTION_STOP_DOWN"}  # fmt: skip
    answer = rest.order("s1", "SELL", {"stop_limit_stop_limit_gtc": stop})
    order_id = answer["success_response"]["order_id"]
    order = rest.get(f"orders/historical/{order_id}")["order"]
    assert (order["status"], order["trigger_status"]) == ("OPEN", "STOP_PENDING")
    venue.set_price("BTC-USD", D("49500"))
    assert rest.get(f"orders/historical/{order_id}")["order"]["filled_size"] == "0"
    venue.set_price("BTC-USD", D("49000"))
    order = rest.get(f"orders/historical/{order_id}")["order"]
    assert (order["status"], order["trigger_status"], order["filled_size"]) == (
        "FILLED",
        "STOP_TRIGGERED",
        "0.1",
    )
    late = rest.order("s2", "SELL", {"stop_limit_stop_limit_gtc": {**stop, "stop_price": "49500"}})
    assert not late["success"]
    assert (
        late["error_response"]["preview_failure_reason"]
        == "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE"
    )


def test_refusals_are_200_with_coinbase_reasons(venue: CoinbaseVenue, rest: Rest) -> None:
    def reason(
        configuration: dict[str, Any], side: str = "BUY", product: str = "BTC-USD"
    ) -> tuple[str, str]:
        answer = rest.order(f"r-{uuid.uuid4().hex}", side, configuration, product)
        assert answer["success"] is False and answer["order_id"] == ""
        response = answer["error_response"]
        return response["error"], response["preview_failure_reason"]

    post_only = {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "50100", "post_only": True}}
    assert reason(post_only)[0] == "INVALID_LIMIT_PRICE_POST_ONLY"
    tick = {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "49000.001"}}
    assert reason(tick)[0] == "INVALID_PRICE_PRECISION"
    lot = {"limit_limit_gtc": {"base_size": "0.000000001", "limit_price": "49000"}}
    assert reason(lot)[0] == "INVALID_SIZE_PRECISION"
    assert (
        reason({"market_market_ioc": {"base_size": "0.1"}}, product="DOGE-USD")[0]
        == "INVALID_PRODUCT_ID"
    )
    assert reason({"twap_limit_gtd": {}})[0] == "UNSUPPORTED_ORDER_CONFIGURATION"
    assert venue.orders() == []
    fok = rest.order("fok", "BUY", {"limit_limit_fok": {"base_size": "5", "limit_price": "50010"}})
    order = rest.get(f"orders/historical/{fok['success_response']['order_id']}")["order"]
    assert (order["status"], order["filled_size"]) == ("CANCELLED", "0")
    response = rest.request("POST", "orders", body={"product_id": "BTC-USD"})
    assert response.status_code == 400 and response.json()["error"] == "INVALID_ARGUMENT"
    response = rest.request("GET", "orders/historical/no-such-order")
    assert response.status_code == 404 and response.json()["error"] == "NOT_FOUND"
    results = rest.post("orders/batch_cancel", {"order_ids": ["nope"]})["results"]
    assert results == [
        {"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": "nope"}
    ]


def test_gtd_orders_expire_at_their_end_time(
    venue: CoinbaseVenue, rest: Rest, clock: Clock
) -> None:
    gtd = {"base_size": "0.1", "limit_price": "49000", "end_time": "2023-11-14T22:15:00Z"}
    order_id = rest.order("g1", "BUY", {"limit_limit_gtd": gtd})["success_response"]["order_id"]
    assert rest.get(f"orders/historical/{order_id}")["order"]["status"] == "OPEN"
    clock.now += 100_000
    order = rest.get(f"orders/historical/{order_id}")["order"]
    assert (order["status"], order["time_in_force"]) == ("EXPIRED", "GOOD_UNTIL_DATE_TIME")
    assert venue.balances()["USD"][1] == 0


def test_lists_page_with_cursors_newest_first(venue: CoinbaseVenue, rest: Rest) -> None:
    ids = [rest.limit(f"c{i}", "BUY", "0.01", "40000") for i in range(5)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = rest.get(
            "orders/historical/batch",
            order_status="OPEN",
            limit=2,
            **({"cursor": cursor} if cursor else {}),
        )
        seen += [o["order_id"] for o in page["orders"]]
        if not page["has_next"]:
            assert page["cursor"] == ""
            break
        cursor = page["cursor"]
    assert seen == ids[::-1]
    rest.post("orders/batch_cancel", {"order_ids": ids[:2]})
    open_ids = [
        o["order_id"] for o in rest.get("orders/historical/batch", order_status="OPEN")["orders"]
    ]
    assert open_ids == ids[2:][::-1]
    cancelled = rest.get("orders/historical/batch", order_status="CANCELLED")["orders"]
    assert {o["order_id"] for o in cancelled} == set(ids[:2])


# --------------------------------------------------------------------- faults


def test_rate_limit_answers_429_with_retry_after_and_places_nothing(
    venue: CoinbaseVenue, rest: Rest
) -> None:
    venue.rate_limit(count=1, retry_after=7)
    body = {"client_order_id": "rl", "product_id": "BTC-USD", "side": "BUY",
            "order_configuration": {"market_market_ioc": {"base_size": "0.1"}}}  # fmt: skip
    response = rest.request("POST", "orders", body=body)
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert response.json()["error"] == "RATE_LIMIT_EXCEEDED"
    assert venue.orders() == [] and venue.submissions() == {}
    assert rest.request("POST", "orders", body=body).json()["success"]


def test_failed_and_lost_answers(venue: CoinbaseVenue, rest: Rest) -> None:
    def body(client_order_id: str) -> dict[str, Any]:
        return {"client_order_id": client_order_id, "product_id": "BTC-USD", "side": "BUY",
                "order_configuration": {"market_market_ioc": {"base_size": "0.1"}}}  # fmt: skip

    venue.fail_requests(count=1, endpoints=["POST orders"])
    assert rest.request("GET", "accounts").status_code == 200, "other endpoints are untouched"
    assert rest.request("POST", "orders", body=body("before")).status_code == 503
    assert venue.submissions() == {}
    venue.fail_requests(count=1, after=True, status=500)
    assert rest.request("POST", "orders", body=body("after")).status_code == 500
    assert [o.client_order_id for o in venue.orders()] == ["after"]
    venue.fail_requests(lose=True, endpoints=["POST orders"])
    with pytest.raises(httpx.RemoteProtocolError):
        rest.request("POST", "orders", body=body("lost"))
    assert [o.status for o in venue.orders() if o.client_order_id == "lost"] == ["FILLED"]
    venue.fail_requests(count=3)
    venue.clear_faults()
    assert rest.request("GET", "accounts").status_code == 200
    with pytest.raises(ValueError, match="5xx"):
        venue.fail_requests(status=404)


def test_down_and_up_keep_the_port(venue: CoinbaseVenue, rest: Rest, clock: Clock) -> None:
    assert venue.key is not None
    connection = user_stream(venue, venue.key, clock)
    port = venue.port
    venue.down()
    with pytest.raises(ConnectionClosed):
        connection.recv(timeout=WAIT)
    with pytest.raises(httpx.ConnectError):
        rest.request("GET", "accounts")
    venue.up()
    assert venue.port == port
    assert rest.request("GET", "accounts").status_code == 200


def test_drop_streams_cuts_every_websocket(venue: CoinbaseVenue, clock: Clock) -> None:
    assert venue.key is not None
    connection = user_stream(venue, venue.key, clock)
    with connect(venue.ws_url) as market:
        subscribe(market, "heartbeats", None)
        assert receive(market)["channel"] == "subscriptions"
        assert venue.drop_streams() == 2
        for dropped in (connection, market):
            with pytest.raises(ConnectionClosed):
                dropped.recv(timeout=WAIT)
    assert venue.streams() == []


def test_sequence_faults_on_the_user_channel(
    venue: CoinbaseVenue, rest: Rest, clock: Clock
) -> None:
    assert venue.key is not None
    connection = user_stream(venue, venue.key, clock)  # snapshot 0, subscriptions 1

    def order_update() -> tuple[int, str]:
        message = receive(connection)
        assert message["channel"] == "user"
        return message["sequence_num"], message["events"][0]["orders"][0]["client_order_id"]

    rest.limit("a", "BUY", "0.01", "40000")
    assert order_update() == (2, "a")
    venue.duplicate_events()
    rest.limit("b", "BUY", "0.01", "40000")
    assert [order_update(), order_update()] == [(3, "b"), (3, "b")]
    venue.skip_sequence(2)
    rest.limit("c", "BUY", "0.01", "40000")
    assert order_update() == (6, "c")
    venue.reorder_events(2)
    rest.limit("d", "BUY", "0.01", "40000")
    rest.limit("e", "BUY", "0.01", "40000")
    assert [order_update(), order_update()] == [(8, "e"), (7, "d")]
    venue.reorder_events(5)
    rest.limit("f", "BUY", "0.01", "40000")
    assert venue.release_events() == 1
    assert order_update() == (9, "f")
    venue.corrupt_next_event()
    rest.limit("g", "BUY", "0.01", "40000")
    text = connection.recv(timeout=WAIT)
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert order_update() == (10, "g")
    connection.close()


def test_held_fills_wait_for_release_and_a_cancel_wins(venue: CoinbaseVenue, rest: Rest) -> None:
    held = rest.limit("h1", "BUY", "0.4", "49000")
    cancelled = rest.limit("h2", "BUY", "0.1", "48000")
    venue.hold_fills()
    venue.set_price("BTC-USD", D("48990"))
    venue.set_price("BTC-USD", D("47990"))
    assert venue.quote("BTC-USD")[2] == D("47990"), "the move is shown at once"
    assert rest.get(f"orders/historical/{held}")["order"]["status"] == "OPEN"
    assert venue.fills() == []
    rest.post("orders/batch_cancel", {"order_ids": [cancelled]})
    assert venue.release_fills() == 1
    assert [(o.client_order_id, o.status) for o in venue.orders()] == [
        ("h1", "FILLED"),
        ("h2", "CANCELLED"),
    ]


def test_admin_port_runs_knobs_and_shows_state(venue: CoinbaseVenue, rest: Rest) -> None:
    order_id = rest.limit("adm", "BUY", "0.5", "49000")
    answer = httpx.post(
        f"{venue.admin_url}/set_price", json={"product_id": "BTC-USD", "price": "48990"}
    )
    assert answer.json() == {"ok": True, "result": None}
    state = httpx.get(f"{venue.admin_url}/state").json()
    assert [o["order_id"] for o in state["orders"]] == [order_id]
    assert state["orders"][0]["status"] == "FILLED"
    assert state["submissions"] == {"adm": 1}
    bad = httpx.post(f"{venue.admin_url}/set_price", json={"product_id": "NOPE-USD", "price": "1"})
    assert bad.status_code == 400 and "NOPE-USD" in bad.json()["error"]
    assert httpx.post(f"{venue.admin_url}/skip_sequence", json={"n": 1}).json()["ok"]


# -------------------------------------------------------------------- command


def test_the_coinbase_command_prints_one_json_line_and_a_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "venue", "coinbase", "--seed", "3",
         "--key-file", str(key_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        urls = json.loads(line)
        assert set(urls) == {"rest", "ws", "ws_user", "admin", "key_file"}
        assert urls["key_file"] == str(key_file)
        saved = json.loads(key_file.read_text())
        assert saved["name"].startswith("organizations/")
        assert "PRIVATE KEY" in saved["privateKey"] and "PRIVATE KEY" not in line
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        key = CdpKey(saved["name"], saved["privateKey"], "")
        host = httpx.URL(urls["rest"]).netloc.decode()
        now = int(time.time())
        signed = token(key, f"GET {host}{API}/accounts", now)
        answer = httpx.get(
            f"{urls['rest']}{API}/accounts", headers={"Authorization": f"Bearer {signed}"}
        )
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
    assert os.path.exists(key_file)


def test_a_market_buy_beyond_the_balance_is_refused_not_filled_in_part(
    venue: CoinbaseVenue, rest: Rest
) -> None:
    answer = rest.order("huge", "BUY", {"market_market_ioc": {"base_size": "100000000"}})
    assert answer["success"] is False
    assert answer["error_response"]["error"] == "INSUFFICIENT_FUND"
    assert answer["error_response"]["preview_failure_reason"] == "PREVIEW_INSUFFICIENT_FUND"
    sell = rest.order("huge-sell", "SELL", {"market_market_ioc": {"base_size": "11"}})
    assert sell["error_response"]["error"] == "INSUFFICIENT_FUND"
    assert venue.orders() == [] and venue.fills() == []


def test_ioc_edit_and_cancel_edges(venue: CoinbaseVenue, rest: Rest) -> None:
    ioc = rest.order("ioc", "BUY", {"sor_limit_ioc": {"base_size": "0.8", "limit_price": "50010"}})
    order = rest.get(f"orders/historical/{ioc['success_response']['order_id']}")["order"]
    assert (order["status"], order["filled_size"], order["time_in_force"]) == (
        "CANCELLED",
        "0.5",
        "IMMEDIATE_OR_CANCEL",
    ), "one level at or under the limit: the remainder is cancelled"
    order_id = rest.limit("e1", "BUY", "1", "49000")
    venue.set_price("BTC-USD", D("48990"))
    refused = rest.post("orders/edit", {"order_id": order_id, "size": "0.4", "price": "49000"})
    assert refused["success"] is False
    assert refused["errors"][0]["edit_failure_reason"] == "CANNOT_EDIT_TO_BELOW_FILLED_SIZE"
    unknown = rest.post("orders/edit", {"order_id": "nope", "size": "1", "price": "1"})
    assert unknown["errors"][0]["edit_failure_reason"] == "ORDER_NOT_FOUND"
    assert rest.post("orders/edit", {"order_id": order_id, "size": "0.5", "price": "49000"})[
        "success"
    ]
    order = rest.get(f"orders/historical/{order_id}")["order"]
    assert (order["status"], order["filled_size"]) == ("FILLED", "0.5")
    assert order["edit_history"][0]["size"] == "0.5"
    results = rest.post("orders/batch_cancel", {"order_ids": [order_id]})["results"]
    assert results[0]["success"] is False
    assert results[0]["failure_reason"] == "ORDER_IS_FULLY_FILLED"
    ioc_id = ioc["success_response"]["order_id"]
    again = rest.post("orders/batch_cancel", {"order_ids": [ioc_id]})["results"]
    assert again[0]["failure_reason"] == "DUPLICATE_CANCEL_REQUEST"
    price_only = rest.post("orders/edit", {"order_id": order_id, "price": "48000"})
    assert price_only["errors"][0]["edit_failure_reason"] == "ONLY_OPEN_ORDERS_CAN_BE_EDITED"
    fresh = rest.limit("e2", "BUY", "0.2", "40000")
    missing_size = rest.post("orders/edit", {"order_id": fresh, "price": "41000"})
    assert missing_size["errors"][0]["edit_failure_reason"] == "INVALID_EDITED_SIZE"
    same = rest.post("orders/edit", {"order_id": fresh, "price": "40000", "size": "0.2"})
    assert same["errors"][0]["edit_failure_reason"] == "EDIT_REQUEST_EQUAL_TO_ORIGINAL_REQUEST"
    gtd = {"base_size": "0.1", "limit_price": "40000", "end_time": "2023-11-15T00:00:00Z"}
    gtd_id = rest.order("e3", "BUY", {"limit_limit_gtd": gtd})["success_response"]["order_id"]
    not_gtc = rest.post("orders/edit", {"order_id": gtd_id, "price": "41000", "size": "0.1"})
    assert not_gtc["errors"][0]["edit_failure_reason"] == "ONLY_LIMIT_ORDER_EDITS_SUPPORTED"


def test_a_buy_stop_up_waits_for_the_price_to_rise(venue: CoinbaseVenue, rest: Rest) -> None:
    stop = {"base_size": "0.1", "limit_price": "51100", "stop_price": "51000",
            "stop_direction": "STOP_DIRECTION_STOP_UP", "end_time": "2023-11-15T00:00:00Z"}  # fmt: skip
    order_id = rest.order("up", "BUY", {"stop_limit_stop_limit_gtd": stop})["success_response"][
        "order_id"
    ]
    venue.set_price("BTC-USD", D("50900"))
    assert rest.get(f"orders/historical/{order_id}")["order"]["trigger_status"] == "STOP_PENDING"
    venue.set_price("BTC-USD", D("51000"))
    order = rest.get(f"orders/historical/{order_id}")["order"]
    assert (order["status"], order["order_type"], order["filled_size"]) == (
        "FILLED",
        "STOP_LIMIT",
        "0.1",
    )


def test_market_endpoint_carries_the_user_channel_and_unsubscribes(
    venue: CoinbaseVenue, rest: Rest, clock: Clock
) -> None:
    assert venue.key is not None
    with (
        CoinbaseVenue(clock=clock, heartbeat_interval=0.01) as beating,
        connect(beating.ws_url) as connection,
    ):
        subscribe(connection, "heartbeats", None)
        assert receive(connection)["channel"] == "subscriptions"
        counters = [int(until(connection, "heartbeats")["events"][0]["heartbeat_counter"])]
        counters.append(int(until(connection, "heartbeats")["events"][0]["heartbeat_counter"]))
        assert counters[1] == counters[0] + 1
    with connect(venue.ws_url) as connection:
        subscribe(connection, "user", token(venue.key, None, clock.now // 1000))
        assert until(connection, "subscriptions")["events"][0]["subscriptions"] == {"user": []}
        rest.limit("mkt", "BUY", "0.01", "40000")
        update = until(connection, "user")["events"][0]
        assert update["orders"][0]["client_order_id"] == "mkt"
        connection.send(
            json.dumps(
                {"type": "unsubscribe", "channel": "user",
                 "jwt": token(venue.key, None, clock.now // 1000)}
            )
        )  # fmt: skip
        assert receive(connection)["events"][0]["subscriptions"] == {}
        rest.limit("after", "BUY", "0.01", "40000")
        subscribe(connection, "ticker", None, ["ETH-USD"])
        assert receive(connection)["channel"] == "ticker", "no user update came in between"
        assert receive(connection)["channel"] == "subscriptions"


def test_gtd_expiry_reaches_the_user_channel_by_itself(
    venue: CoinbaseVenue, rest: Rest, clock: Clock
) -> None:
    assert venue.key is not None
    gtd = {"base_size": "0.1", "limit_price": "49000", "end_time": "2023-11-14T22:15:00Z"}
    rest.order("g2", "BUY", {"limit_limit_gtd": gtd})
    connection = user_stream(venue, venue.key, clock)
    clock.now += 100_000
    order = until(connection, "user")["events"][0]["orders"][0]
    assert (order["client_order_id"], order["status"]) == ("g2", "EXPIRED")
    assert order["end_time"] == "2023-11-14T22:15:00Z"
    connection.close()
