"""The local OKX (``OkxVenue``) against OKX's own SDK and ccxt, unchanged, over loopback.

python-okx (``okx.Trade``, ``okx.Account``, ``okx.PublicData``,
``okx.MarketData``) and ccxt's ``okx`` are pointed at the venue by their base
URL only. python-okx's WebSocket classes always pass an SSL context to
``websockets.connect``, so they are driven against the venue served over TLS
(``tls=True``, its throwaway CA trusted through ``SSL_CERT_FILE``); the other
WebSocket tests speak plain ``ws://`` with a small synchronous client and
python-okx's own login payload (``okx.websocket.WsUtils.initLoginParams``).
ccxt.pro's ``okx`` is driven over the private WebSocket as it is. Raw httpx is
used where a test needs the bytes or a deliberately wrong signature. No
sleeps: WebSocket tests wait on the frames themselves.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro
import httpx
import okx.Account
import okx.MarketData
import okx.PublicData
import okx.Trade
import pytest
from okx.websocket import WsUtils
from okx.websocket.WsPrivateAsync import WsPrivateAsync
from okx.websocket.WsPublicAsync import WsPublicAsync
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tradenode.testing.venues import (
    DEFAULT_OKX_API_KEY,
    DEFAULT_OKX_PASSPHRASE,
    DEFAULT_OKX_SECRET,
    OkxVenue,
)

pytestmark = pytest.mark.filterwarnings(
    # python-okx posts its JSON body with httpx's data= (its code, not ours)
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)

D = Decimal
BTC = "BTC-USDT"
WAIT = 10.0
"""Seconds a frame may take before a test fails (a deadline, never a synchronisation)."""


HTTP = httpx.Client()
"""One client for the raw requests (a new one per request costs its TLS setup every time)."""


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def venue() -> Iterator[OkxVenue]:
    with OkxVenue(seed=1) as local:
        yield local


@pytest.fixture
def trade(venue: OkxVenue) -> Iterator[okx.Trade.TradeAPI]:
    with okx.Trade.TradeAPI(
        venue.api_key, venue.secret, venue.passphrase, flag="1", domain=venue.rest_url
    ) as client:
        yield client


@pytest.fixture
def account(venue: OkxVenue) -> Iterator[okx.Account.AccountAPI]:
    with okx.Account.AccountAPI(
        venue.api_key, venue.secret, venue.passphrase, flag="1", domain=venue.rest_url
    ) as client:
        yield client


@pytest.fixture
def market(venue: OkxVenue) -> Iterator[okx.MarketData.MarketAPI]:
    with okx.MarketData.MarketAPI(flag="1", domain=venue.rest_url) as client:
        yield client


@pytest.fixture
def public(venue: OkxVenue) -> Iterator[okx.PublicData.PublicAPI]:
    with okx.PublicData.PublicAPI(flag="1", domain=venue.rest_url) as client:
        yield client


def limit_buy(cl_ord_id: str, px: str = "49000", sz: str = "1") -> dict[str, str]:
    return {
        "instId": BTC,
        "tdMode": "cash",
        "side": "buy",
        "ordType": "limit",
        "px": px,
        "sz": sz,
        "clOrdId": cl_ord_id,
    }


def iso_now(offset_ms: int = 0) -> str:
    moment = datetime.fromtimestamp((time.time_ns() // 1_000_000 + offset_ms) / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sign(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp}{method}{path}{body}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def signed(
    venue: OkxVenue,
    method: str,
    path: str,
    body: Any = None,
    *,
    secret: str = DEFAULT_OKX_SECRET,
    passphrase: str = DEFAULT_OKX_PASSPHRASE,
    api_key: str = DEFAULT_OKX_API_KEY,
    timestamp: str | None = None,
    simulated: str | None = None,
    exp_time: str | None = None,
) -> httpx.Response:
    """One REST request signed as OKX documents it (every part overridable)."""
    text = "" if body is None else json.dumps(body)
    stamp = timestamp if timestamp is not None else iso_now()
    headers = {
        "OK-ACCESS-KEY": api_key,
        "OK-ACCESS-SIGN": sign(secret, stamp, method, path, text),
        "OK-ACCESS-TIMESTAMP": stamp,
        "OK-ACCESS-PASSPHRASE": passphrase,
        "Content-Type": "application/json",
    }
    if simulated is not None:
        headers["x-simulated-trading"] = simulated
    if exp_time is not None:
        headers["expTime"] = exp_time
    return HTTP.request(method, venue.rest_url + path, content=text or None, headers=headers)


# ----------------------------------------------------------- WebSocket kit


class Ws:
    """A plain WebSocket client reading JSON frames with a deadline.

    A thread of its own takes every frame off the connection as it comes (the
    sync client hands a frame over only when asked, so an unread push would
    otherwise stall its closing handshake).
    """

    def __init__(self, url: str) -> None:
        self.connection: ClientConnection = connect(url, open_timeout=WAIT)
        self.inbox: queue.Queue[str | ConnectionClosed] = queue.Queue()
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        while True:
            try:
                message = self.connection.recv()
            except ConnectionClosed as closed:
                self.inbox.put(closed)
                return
            self.inbox.put(message if isinstance(message, str) else message.decode())

    def send(self, frame: Any) -> None:
        self.connection.send(frame if isinstance(frame, str) else json.dumps(frame))

    def text(self) -> str:
        item = self.inbox.get(timeout=WAIT)
        if isinstance(item, ConnectionClosed):
            self.inbox.put(item)
            raise item
        return item

    def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(self.text())
        return frame

    def until(self, predicate: Any) -> dict[str, Any]:
        """The next frame ``predicate`` accepts (others are skipped)."""
        while True:
            frame = self.frame()
            if predicate(frame):
                return frame

    def pushes(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` ``orders`` rows."""
        rows: list[dict[str, Any]] = []
        while len(rows) < count:
            frame = self.until(lambda f: f.get("arg", {}).get("channel") == "orders")
            rows.extend(frame["data"])
        return rows

    def close(self) -> None:
        self.connection.close()
        self.reader.join(WAIT)


@pytest.fixture
def private(venue: OkxVenue) -> Iterator[Ws]:
    """A logged-in private connection subscribed to the SPOT ``orders`` channel."""
    ws = Ws(venue.ws_private_url)
    ws.send(WsUtils.initLoginParams(False, venue.api_key, venue.passphrase, venue.secret))
    login = ws.frame()
    assert (login["event"], login["code"], login["msg"]) == ("login", "0", "")
    assert login["connId"]
    ws.send({"id": "s1", "op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
    ack = ws.frame()
    assert ack["event"] == "subscribe" and ack["arg"] == {"channel": "orders", "instType": "SPOT"}
    try:
        yield ws
    finally:
        ws.close()


# ------------------------------------------------------ python-okx: REST


def test_public_data_through_python_okx(
    public: okx.PublicData.PublicAPI, market: okx.MarketData.MarketAPI
) -> None:
    instruments = public.get_instruments(instType="SPOT")
    assert instruments["code"] == "0"
    btc = next(row for row in instruments["data"] if row["instId"] == BTC)
    assert (btc["baseCcy"], btc["quoteCcy"], btc["state"]) == ("BTC", "USDT", "live")
    assert (btc["tickSz"], btc["lotSz"], btc["minSz"]) == ("0.01", "0.0001", "0.0001")
    assert public.get_instruments(instType="SWAP") == {"code": "0", "msg": "", "data": []}
    assert int(public.get_system_time()["data"][0]["ts"]) > 0
    ticker = market.get_ticker(instId=BTC)["data"][0]
    assert (ticker["last"], ticker["bidPx"], ticker["askPx"]) == ("50000", "49995", "50005")
    book = market.get_orderbook(instId=BTC, sz="2")["data"][0]
    assert book["asks"][0] == ["50005", "0.5", "0", "1"] and len(book["bids"]) == 2
    assert market.get_ticker(instId="NOPE-USDT")["code"] == "51001"


def test_place_query_amend_cancel_through_python_okx(
    venue: OkxVenue, trade: okx.Trade.TradeAPI, account: okx.Account.AccountAPI
) -> None:
    placed = trade.place_order(
        instId=BTC, tdMode="cash", side="buy", ordType="limit", px="49000", sz="1", clOrdId="p1"
    )
    assert placed["code"] == "0" and placed["data"][0]["sCode"] == "0"
    assert int(placed["outTime"]) >= int(placed["inTime"]) > 0
    ord_id = placed["data"][0]["ordId"]
    by_client = trade.get_order(instId=BTC, clOrdId="p1")["data"][0]
    by_id = trade.get_order(instId=BTC, ordId=ord_id)["data"][0]
    assert by_client == by_id
    assert (by_id["state"], by_id["px"], by_id["sz"], by_id["accFillSz"]) == (
        "live",
        "49000",
        "1",
        "0",
    )
    assert by_id["ordType"] == "limit" and by_id["tdMode"] == "cash" and by_id["side"] == "buy"
    pending = trade.get_order_list(instType="SPOT")["data"]
    assert [row["clOrdId"] for row in pending] == ["p1"]
    frozen = account.get_account_balance(ccy="USDT")["data"][0]["details"][0]
    assert D(frozen["frozenBal"]) >= D(49000)
    amended = trade.amend_order(instId=BTC, clOrdId="p1", newPx="48500", newSz="2", reqId="r1")
    assert amended["data"][0] == {
        "clOrdId": "p1",
        "ordId": ord_id,
        "ts": amended["data"][0]["ts"],
        "reqId": "r1",
        "sCode": "0",
        "sMsg": "",
        "subCode": "",
    }
    row = trade.get_order(instId=BTC, ordId=ord_id)["data"][0]
    assert (row["ordId"], row["px"], row["sz"]) == (ord_id, "48500", "2")
    canceled = trade.cancel_order(instId=BTC, ordId=ord_id)
    assert canceled["code"] == "0" and canceled["data"][0]["sCode"] == "0"
    row = trade.get_order(instId=BTC, ordId=ord_id)["data"][0]
    assert (row["state"], row["cancelSource"]) == ("canceled", "1")
    assert trade.get_order_list(instType="SPOT")["data"] == []
    history = trade.get_orders_history(instType="SPOT")["data"]
    assert [r["ordId"] for r in history] == [ord_id]
    again = trade.cancel_order(instId=BTC, ordId=ord_id)
    assert again["code"] == "1" and again["data"][0]["sCode"] == "51400"
    assert trade.amend_order(instId=BTC, ordId=ord_id, newPx="1")["data"][0]["sCode"] == "51503"
    missing = trade.get_order(instId=BTC, clOrdId="never")
    assert (missing["code"], missing["data"]) == ("51603", [])
    assert venue.submissions() == {"p1": 1}


def test_client_order_ids_are_unique_among_pending_orders_only(
    venue: OkxVenue, trade: okx.Trade.TradeAPI
) -> None:
    first = trade.place_order(**limit_buy("dup"))["data"][0]
    second = trade.place_order(**limit_buy("dup"))
    assert second["code"] == "1" and second["data"][0]["sCode"] == "51016"
    trade.cancel_order(instId=BTC, clOrdId="dup")
    third = trade.place_order(**limit_buy("dup"))["data"][0]
    assert third["sCode"] == "0" and third["ordId"] != first["ordId"]
    latest = trade.get_order(instId=BTC, clOrdId="dup")["data"][0]
    assert latest["ordId"] == third["ordId"]
    assert venue.submissions() == {"dup": 3}
    bad = trade.place_order(**limit_buy("has-dash"))
    assert bad["data"][0]["sCode"] == "51000"


def test_order_rules_refuse_with_okx_codes(trade: okx.Trade.TradeAPI) -> None:
    def code(**changes: str) -> str:
        args = limit_buy("r") | changes
        answer = trade.place_order(**args)
        assert answer["code"] == "1"
        return str(answer["data"][0]["sCode"])

    assert code(px="49000.001") == "51000"
    assert code(sz="0.00005") == "51121"
    assert code(instId="NOPE-USDT") == "51001"
    assert code(sz="1000") == "51008"
    assert code(ordType="stop") == "51000"
    assert code(tdMode="") == "50014"


def test_market_orders_take_and_fok_ioc_post_only_follow_okx(
    venue: OkxVenue, trade: okx.Trade.TradeAPI
) -> None:
    sold = trade.place_order(
        instId=BTC, tdMode="cash", side="sell", ordType="market", sz="0.3", clOrdId="m1"
    )["data"][0]
    row = trade.get_order(instId=BTC, ordId=sold["ordId"])["data"][0]
    assert (row["state"], row["accFillSz"], row["avgPx"]) == ("filled", "0.3", "49995")
    bought = trade.place_order(
        instId=BTC, tdMode="cash", side="buy", ordType="market", sz="1000", clOrdId="m2"
    )["data"][0]
    row = trade.get_order(instId=BTC, ordId=bought["ordId"])["data"][0]
    assert row["tgtCcy"] == "quote_ccy" and row["sz"] == "1000"
    assert row["state"] == "filled" and D(row["accFillSz"]) == D("0.0199")
    fok = trade.place_order(**limit_buy("f1", px="50005", sz="0.6") | {"ordType": "fok"})
    row = trade.get_order(instId=BTC, ordId=fok["data"][0]["ordId"])["data"][0]
    assert (row["state"], row["accFillSz"], row["cancelSource"]) == ("canceled", "0", "13")
    ioc = trade.place_order(**limit_buy("i1", px="50005", sz="0.6") | {"ordType": "ioc"})
    row = trade.get_order(instId=BTC, ordId=ioc["data"][0]["ordId"])["data"][0]
    assert (row["state"], row["accFillSz"], row["cancelSource"]) == ("canceled", "0.5", "14")
    taker = trade.place_order(**limit_buy("po", px="50010") | {"ordType": "post_only"})
    assert taker["data"][0]["sCode"] == "0"
    row = trade.get_order(instId=BTC, clOrdId="po")["data"][0]
    assert (row["state"], row["cancelSource"], row["accFillSz"]) == ("canceled", "31", "0")


def test_batch_with_one_refused_order_is_code_2(venue: OkxVenue, trade: okx.Trade.TradeAPI) -> None:
    trade.place_order(**limit_buy("b0"))
    venue.refuse_next_order("51008", "Order failed. Insufficient USDT balance in account.")
    answer = trade.place_multiple_orders([limit_buy("b1"), limit_buy("b2"), limit_buy("b0")])
    assert answer["code"] == "2" and answer["msg"] == "Bulk operation partially succeeded."
    codes = [(item["clOrdId"], item["sCode"]) for item in answer["data"]]
    assert codes == [("b1", "51008"), ("b2", "0"), ("b0", "51016")]
    assert answer["data"][0]["ordId"] == "" and answer["data"][1]["ordId"] != ""
    live = {row["clOrdId"] for row in trade.get_order_list(instType="SPOT")["data"]}
    assert live == {"b0", "b2"}
    all_refused = trade.place_multiple_orders([limit_buy("b2"), limit_buy("b0")])
    assert all_refused["code"] == "1" and {i["sCode"] for i in all_refused["data"]} == {"51016"}
    canceled = trade.cancel_multiple_orders(
        [{"instId": BTC, "clOrdId": "b2"}, {"instId": BTC, "clOrdId": "nope"}]
    )
    assert canceled["code"] == "2"
    assert [i["sCode"] for i in canceled["data"]] == ["0", "51400"]
    assert venue.submissions() == {"b0": 3, "b1": 1, "b2": 2}


def test_partial_fills_when_the_price_passes_through_a_resting_limit(
    venue: OkxVenue, trade: okx.Trade.TradeAPI
) -> None:
    ord_id = trade.place_order(**limit_buy("pf", px="49900"))["data"][0]["ordId"]
    venue.set_price(BTC, D("49800"))
    row = trade.get_order(instId=BTC, ordId=ord_id)["data"][0]
    assert (row["state"], row["accFillSz"], row["fillSz"], row["fillPx"]) == (
        "partially_filled",
        "0.5",
        "0.5",
        "49900",
    )
    venue.set_price(BTC, D("49700"))
    row = trade.get_order(instId=BTC, ordId=ord_id)["data"][0]
    assert (row["state"], row["accFillSz"], row["avgPx"]) == ("filled", "1", "49900")
    fills = trade.get_fills(instType="SPOT", ordId=ord_id)["data"]
    assert [f["fillSz"] for f in fills] == ["0.5", "0.5"]
    assert all(f["execType"] == "M" and f["feeCcy"] == "USDT" for f in fills)
    assert len({f["tradeId"] for f in fills}) == 2
    assert [f.trade_id for f in venue.fills()] == [f["tradeId"] for f in reversed(fills)]
    assert fills[0]["fee"] == "-4.99"  # 0.5 * 49900 = 24950 at the 2 bps maker rate


def test_fills_paginate_by_bill_id(venue: OkxVenue, trade: okx.Trade.TradeAPI) -> None:
    for index in range(5):
        trade.place_order(
            instId=BTC,
            tdMode="cash",
            side="sell",
            ordType="market",
            sz="0.1",
            clOrdId=f"s{index}",
        )
    everything = trade.get_fills(instType="SPOT")["data"]
    bills = [int(row["billId"]) for row in everything]
    assert bills == sorted(bills, reverse=True) and len(bills) == 5
    older = trade.get_fills(instType="SPOT", after=str(bills[1]), limit="2")["data"]
    assert [int(r["billId"]) for r in older] == bills[2:4]
    newer = trade.get_fills(instType="SPOT", before=str(bills[4]), limit="2")["data"]
    assert [int(r["billId"]) for r in newer] == bills[2:4]
    history = trade.get_fills_history(instType="SPOT", before=str(bills[0]))["data"]
    assert history == []


def test_balance_shows_available_and_frozen(
    venue: OkxVenue, account: okx.Account.AccountAPI, trade: okx.Trade.TradeAPI
) -> None:
    trade.place_order(
        instId=BTC, tdMode="cash", side="sell", ordType="limit", px="60000", sz="2", clOrdId="f"
    )
    data = account.get_account_balance()["data"][0]
    details = {row["ccy"]: row for row in data["details"]}
    assert (details["BTC"]["availBal"], details["BTC"]["frozenBal"], details["BTC"]["eq"]) == (
        "8",
        "2",
        "10",
    )
    assert venue.balances()["BTC"] == (D(8), D(2))
    only = account.get_account_balance(ccy="ETH")["data"][0]["details"]
    assert [row["ccy"] for row in only] == ["ETH"]


# ------------------------------------------------------- authentication


def test_signature_and_header_refusals(venue: OkxVenue) -> None:
    path = "/api/v5/account/balance"
    good = signed(venue, "GET", path)
    assert good.status_code == 200 and good.json()["code"] == "0"
    cases = {
        "50113": signed(venue, "GET", path, secret="wrong"),
        "50105": signed(venue, "GET", path, passphrase="wrong"),
        "50111": signed(venue, "GET", path, api_key="someone-else"),
        "50102": signed(venue, "GET", path, timestamp=iso_now(-31_000)),
        "50112": signed(venue, "GET", path, timestamp="yesterday"),
    }
    for code, answer in cases.items():
        assert answer.status_code == 401, code
        assert answer.json()["code"] == code
    unsigned = httpx.get(venue.rest_url + path)
    assert unsigned.status_code == 401 and unsigned.json()["code"] == "50103"
    # the query string is part of what is signed
    stamp = iso_now()
    tampered = httpx.get(
        venue.rest_url + path + "?ccy=ETH",
        headers={
            "OK-ACCESS-KEY": DEFAULT_OKX_API_KEY,
            "OK-ACCESS-SIGN": sign(DEFAULT_OKX_SECRET, stamp, "GET", path + "?ccy=BTC", ""),
            "OK-ACCESS-TIMESTAMP": stamp,
            "OK-ACCESS-PASSPHRASE": DEFAULT_OKX_PASSPHRASE,
        },
    )
    assert tampered.json()["code"] == "50113"
    assert venue.orders() == []


def test_demo_and_live_environments() -> None:
    with OkxVenue(demo=True) as demo:
        path = "/api/v5/account/balance"
        assert signed(demo, "GET", path, simulated="1").json()["code"] == "0"
        live = signed(demo, "GET", path, simulated="0")
        assert live.status_code == 401 and live.json()["code"] == "50101"
        ws = Ws(demo.ws_private_url)
        ws.send(WsUtils.initLoginParams(False, demo.api_key, demo.passphrase, demo.secret))
        assert ws.frame()["event"] == "error"
        ws.close()


def test_expired_request_is_refused(venue: OkxVenue) -> None:
    past = str(time.time_ns() // 1_000_000 - 1000)
    answer = signed(venue, "POST", "/api/v5/trade/order", limit_buy("e1"), exp_time=past)
    assert answer.json()["data"][0]["sCode"] == "50037"
    assert venue.orders() == []


def test_mass_cancel_is_for_options_only(venue: OkxVenue) -> None:
    answer = signed(
        venue, "POST", "/api/v5/trade/mass-cancel", {"instType": "SPOT", "instFamily": "BTC-USDT"}
    )
    assert answer.status_code == 400 and answer.json()["code"] == "51000"


# ------------------------------------------------------------- WebSockets


def test_login_refusals_over_the_private_websocket(venue: OkxVenue) -> None:
    ws = Ws(venue.ws_private_url)
    try:
        ws.send(WsUtils.initLoginParams(False, venue.api_key, venue.passphrase, "wrong"))
        assert ws.frame()["code"] == "60007"
        ws.send(WsUtils.initLoginParams(False, venue.api_key, "wrong", venue.secret))
        assert ws.frame()["code"] == "60024"
        ws.send(WsUtils.initLoginParams(False, "nobody", venue.passphrase, venue.secret))
        assert ws.frame()["code"] == "60005"
        ws.send({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]})
        assert ws.frame()["code"] == "60011"
        ws.send({"id": "9", "op": "order", "args": [limit_buy("x")]})
        answer = ws.frame()
        assert (answer["id"], answer["op"], answer["code"]) == ("9", "order", "60011")
        ws.send("ping")
        assert ws.text() == "pong"
        ws.send("{not json")
        assert ws.frame()["code"] == "60012"
    finally:
        ws.close()
    assert venue.orders() == []


def test_orders_channel_and_trade_ops_over_the_private_websocket(
    venue: OkxVenue, private: Ws
) -> None:
    private.send({"id": "o1", "op": "order", "args": [limit_buy("w1", px="49900")]})
    answer = private.until(lambda f: f.get("id") == "o1")
    assert (answer["op"], answer["code"], answer["data"][0]["sCode"]) == ("order", "0", "0")
    assert int(answer["outTime"]) >= int(answer["inTime"])
    ord_id = answer["data"][0]["ordId"]
    (live,) = private.pushes(1)
    assert (live["ordId"], live["state"], live["accFillSz"], live["tradeId"]) == (
        ord_id,
        "live",
        "0",
        "",
    )
    venue.set_price(BTC, D("49800"))
    (partial,) = private.pushes(1)
    assert (partial["state"], partial["fillSz"], partial["fillPx"], partial["accFillSz"]) == (
        "partially_filled",
        "0.5",
        "49900",
        "0.5",
    )
    assert partial["tradeId"] == venue.fills()[0].trade_id and partial["execType"] == "M"
    private.send(
        {
            "id": "a1",
            "op": "amend-order",
            "args": [{"instId": BTC, "ordId": ord_id, "newSz": "0.8", "reqId": "q1"}],
        }
    )
    amended = private.until(lambda f: f.get("id") == "a1")
    assert amended["data"][0]["sCode"] == "0" and amended["data"][0]["ordId"] == ord_id
    (push,) = private.pushes(1)
    assert (push["amendResult"], push["reqId"], push["sz"], push["ordId"]) == (
        "0",
        "q1",
        "0.8",
        ord_id,
    )
    private.send(
        {
            "id": "a2",
            "op": "amend-order",
            "args": [{"instId": BTC, "ordId": ord_id, "newSz": "0.4", "reqId": "q2"}],
        }
    )
    assert private.until(lambda f: f.get("id") == "a2")["data"][0]["sCode"] == "0"
    (done,) = private.pushes(1)
    # OKX: a new size at or below the filled quantity completes the order
    assert (done["state"], done["sz"], done["accFillSz"], done["reqId"]) == (
        "filled",
        "0.5",
        "0.5",
        "q2",
    )
    private.send({"id": "c1", "op": "cancel-order", "args": [{"instId": BTC, "ordId": ord_id}]})
    assert private.until(lambda f: f.get("id") == "c1")["data"][0]["sCode"] == "51400"
    private.send({"id": "o2", "op": "order", "args": [limit_buy("w2", px="49000")]})
    second = private.until(lambda f: f.get("id") == "o2")["data"][0]["ordId"]
    assert private.pushes(1)[0]["state"] == "live"
    private.send({"id": "c2", "op": "cancel-order", "args": [{"instId": BTC, "clOrdId": "w2"}]})
    assert private.until(lambda f: f.get("id") == "c2")["data"][0]["ordId"] == second
    (gone,) = private.pushes(1)
    assert (gone["state"], gone["cancelSource"], gone["accFillSz"]) == ("canceled", "1", "0")


def test_batch_orders_over_the_websocket_by_inst_id_code(
    venue: OkxVenue, private: Ws, public: okx.PublicData.PublicAPI
) -> None:
    code = public.get_instruments(instType="SPOT", instId=BTC)["data"][0]["instIdCode"]
    venue.refuse_next_order("51008", "Order failed. Insufficient USDT balance in account.")
    first = limit_buy("k1")
    second = {key: value for key, value in limit_buy("k2").items() if key != "instId"}
    private.send({"id": "b1", "op": "batch-orders", "args": [first, second | {"instIdCode": code}]})
    answer = private.until(lambda f: f.get("id") == "b1")
    assert answer["code"] == "2"
    assert [(i["clOrdId"], i["sCode"]) for i in answer["data"]] == [("k1", "51008"), ("k2", "0")]
    assert [o.cl_ord_id for o in venue.orders()] == ["k2"]
    assert venue.submissions() == {"k1": 1, "k2": 1}


def test_public_tickers_and_bbo(venue: OkxVenue) -> None:
    ws = Ws(venue.ws_public_url)
    try:
        ws.send(
            {
                "op": "subscribe",
                "args": [
                    {"channel": "tickers", "instId": BTC},
                    {"channel": "bbo-tbt", "instId": BTC},
                    {"channel": "books5", "instId": BTC},
                ],
            }
        )
        frames = [ws.frame() for _ in range(6)]
        acks = [f["arg"]["channel"] for f in frames if f.get("event") == "subscribe"]
        assert acks == ["tickers", "bbo-tbt", "books5"]
        snapshots = {f["arg"]["channel"]: f["data"][0] for f in frames if "data" in f}
        assert snapshots["tickers"]["last"] == "50000"
        assert snapshots["bbo-tbt"]["bids"] == [["49995", "0.5", "0", "1"]]
        assert len(snapshots["books5"]["asks"]) == 5 and snapshots["books5"]["instId"] == BTC
        venue.set_price(BTC, D("51000"))
        ticker = ws.until(lambda f: f.get("arg", {}).get("channel") == "tickers")
        assert (ticker["data"][0]["last"], ticker["data"][0]["bidPx"]) == ("51000", "50994.9")
        bbo = ws.until(lambda f: f.get("arg", {}).get("channel") == "bbo-tbt")
        assert bbo["data"][0]["asks"][0][0] == "51005.1"
        ws.send({"op": "subscribe", "args": [{"channel": "candle1m", "instId": BTC}]})
        assert ws.until(lambda f: f.get("event") == "error")["code"] == "60018"
    finally:
        ws.close()


def test_an_idle_connection_is_closed_with_4004() -> None:
    with OkxVenue(idle_timeout=0.2) as venue:
        ws = Ws(venue.ws_public_url)
        with pytest.raises(ConnectionClosed) as closed:
            ws.text()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4004


def test_python_okx_websocket_classes_over_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """WsPrivateAsync and WsPublicAsync unchanged: login, orders channel, op order, tickers."""
    with OkxVenue(tls=True) as venue:
        assert venue.ca_file is not None and venue.rest_url.startswith("https://")
        monkeypatch.setenv("SSL_CERT_FILE", venue.ca_file)

        async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            private_frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            public_frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            private = WsPrivateAsync(
                apiKey=venue.api_key,
                passphrase=venue.passphrase,
                secretKey=venue.secret,
                url=venue.ws_private_url,
            )
            public = WsPublicAsync(url=venue.ws_public_url)
            await private.connect()
            await public.connect()
            private.callback = lambda text: private_frames.put_nowait(json.loads(text))
            public.callback = lambda text: public_frames.put_nowait(json.loads(text))
            consumers = [
                asyncio.ensure_future(private.consume()),
                asyncio.ensure_future(public.consume()),
            ]

            async def next_frame(frames: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
                return await asyncio.wait_for(frames.get(), WAIT)

            try:
                await private.login()
                seen = [await next_frame(private_frames)]
                await private.send(
                    "subscribe", [{"channel": "orders", "instType": "SPOT"}], id="s1"
                )
                seen.append(await next_frame(private_frames))
                await private.place_order([limit_buy("sdk1")], id="o1")
                seen.extend([await next_frame(private_frames) for _ in range(2)])
                await public.subscribe(
                    [{"channel": "tickers", "instId": BTC}],
                    lambda text: public_frames.put_nowait(json.loads(text)),
                )
                ticks = [await next_frame(public_frames) for _ in range(2)]
                return seen, ticks
            finally:
                for consumer in consumers:
                    consumer.cancel()
                await private.factory.close()
                await public.factory.close()

        seen, ticks = asyncio.run(scenario())
    login, subscribed, answer, push = seen
    assert (login["event"], login["code"]) == ("login", "0")
    assert subscribed["event"] == "subscribe"
    assert (answer["id"], answer["op"], answer["data"][0]["sCode"]) == ("o1", "order", "0")
    assert (push["data"][0]["clOrdId"], push["data"][0]["state"]) == ("sdk1", "live")
    assert ticks[0]["event"] == "subscribe" and ticks[1]["data"][0]["last"] == "50000"


# ------------------------------------------------------------ fault knobs


def test_rate_limit_answers_429_then_serves(venue: OkxVenue, private: Ws) -> None:
    venue.rate_limit(2, retry_after=7)
    limited = signed(venue, "POST", "/api/v5/trade/order", limit_buy("rl"))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {"code": "50011", "msg": "Too Many Requests", "data": []}
    private.send({"id": "r", "op": "order", "args": [limit_buy("rl")]})
    assert private.until(lambda f: f.get("id") == "r")["code"] == "50011"
    assert venue.orders() == [] and venue.submissions() == {}
    assert signed(venue, "POST", "/api/v5/trade/order", limit_buy("rl")).json()["code"] == "0"


def test_okx_rate_limits_per_instrument_shared_by_rest_and_websocket() -> None:
    moment = [1_700_000_000_000]
    with OkxVenue(rate_limits=True, clock=lambda: moment[0]) as venue:
        stamp = datetime.fromtimestamp(moment[0] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        ws = Ws(venue.ws_private_url)
        login = {"apiKey": venue.api_key, "passphrase": venue.passphrase}
        seconds = str(moment[0] // 1000)
        login |= {
            "timestamp": seconds,
            "sign": sign(venue.secret, seconds, "GET", "/users/self/verify", ""),
        }
        ws.send({"op": "login", "args": [login]})
        assert ws.frame()["code"] == "0"
        for index in range(59):
            answer = signed(
                venue,
                "POST",
                "/api/v5/trade/order",
                limit_buy(f"q{index}", sz="0.01"),
                timestamp=stamp,
            )
            assert answer.json()["code"] == "0"
        ws.send({"id": "60", "op": "order", "args": [limit_buy("q59", sz="0.01")]})
        assert ws.until(lambda f: f.get("id") == "60")["code"] == "0"
        ws.send({"id": "61", "op": "order", "args": [limit_buy("q60", sz="0.01")]})
        assert ws.until(lambda f: f.get("id") == "61")["code"] == "50011"
        over = signed(
            venue, "POST", "/api/v5/trade/order", limit_buy("q61", sz="0.01"), timestamp=stamp
        )
        assert over.status_code == 429 and over.json()["code"] == "50011"
        other = limit_buy("e1", sz="0.01") | {"instId": "ETH-USDT", "px": "2900"}
        assert (
            signed(venue, "POST", "/api/v5/trade/order", other, timestamp=stamp).json()["code"]
            == "0"
        )
        batch = signed(
            venue,
            "POST",
            "/api/v5/trade/batch-orders",
            [limit_buy("b1", sz="0.01"), limit_buy("b2", sz="0.01")],
            timestamp=stamp,
        )
        assert batch.json()["code"] == "0"
        cancel = signed(
            venue,
            "POST",
            "/api/v5/trade/cancel-order",
            {"instId": BTC, "clOrdId": "q0"},
            timestamp=stamp,
        )
        assert cancel.json()["data"][0]["sCode"] == "0"
        moment[0] += 2000
        stamp = datetime.fromtimestamp(moment[0] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert (
            signed(
                venue, "POST", "/api/v5/trade/order", limit_buy("q61", sz="0.01"), timestamp=stamp
            ).json()["code"]
            == "0"
        )
        assert "q60" not in venue.submissions() and venue.submissions()["q61"] == 1
        balances = [
            signed(venue, "GET", "/api/v5/account/balance", timestamp=stamp).status_code
            for _ in range(11)
        ]
        assert balances == [200] * 10 + [429]
        ws.close()


def test_fail_requests_before_and_after_processing(venue: OkxVenue, private: Ws) -> None:
    venue.fail_requests(1, endpoints=["POST trade/order"])
    failed = signed(venue, "POST", "/api/v5/trade/order", limit_buy("f1"))
    assert failed.status_code == 503 and failed.json()["code"] == "50001"
    assert venue.orders() == []
    venue.fail_requests(1, after=True, endpoints=["/api/v5/trade/order"])
    with pytest.raises(httpx.TransportError):
        signed(venue, "POST", "/api/v5/trade/order", limit_buy("f2"))
    assert [o.cl_ord_id for o in venue.orders()] == ["f2"]
    venue.fail_requests(1, after=True, endpoints=["order"])
    private.send({"id": "lost", "op": "order", "args": [limit_buy("f3")]})
    private.send({"id": "next", "op": "order", "args": [limit_buy("f4")]})
    answer = private.until(lambda f: "op" in f)
    assert answer["id"] == "next"
    assert [o.cl_ord_id for o in venue.orders()] == ["f2", "f3", "f4"]
    assert venue.submissions() == {"f2": 1, "f3": 1, "f4": 1}


def test_duplicate_reorder_and_corrupt_pushes(venue: OkxVenue, private: Ws) -> None:
    venue.duplicate_events(1)
    private.send({"id": "1", "op": "order", "args": [limit_buy("d1")]})
    first, second = private.pushes(2)
    assert first == second and first["clOrdId"] == "d1"
    venue.reorder_events(2)
    private.send({"id": "2", "op": "order", "args": [limit_buy("d2")]})
    private.send({"id": "3", "op": "order", "args": [limit_buy("d3")]})
    later, earlier = private.pushes(2)
    assert (later["clOrdId"], earlier["clOrdId"]) == ("d3", "d2")
    venue.corrupt_next_event("invalid_json")
    private.send({"id": "4", "op": "order", "args": [limit_buy("d4")]})
    mangled = ""
    while not mangled:
        text = private.text()
        try:
            json.loads(text)
        except ValueError:
            mangled = text
    assert "d4" in mangled
    venue.corrupt_next_event("missing_field")
    private.send({"id": "5", "op": "order", "args": [limit_buy("d5")]})
    (row,) = private.pushes(1)
    assert row["clOrdId"] == "d5" and "state" not in row


def test_dropped_pushes_leave_a_gap_rest_still_shows(
    venue: OkxVenue, private: Ws, trade: okx.Trade.TradeAPI
) -> None:
    venue.drop_events(1)
    private.send({"id": "1", "op": "order", "args": [limit_buy("g1")]})
    private.send({"id": "2", "op": "order", "args": [limit_buy("g2")]})
    (row,) = private.pushes(1)
    assert row["clOrdId"] == "g2"
    assert trade.get_order(instId=BTC, clOrdId="g1")["data"][0]["state"] == "live"


def test_reorder_release_on_demand(venue: OkxVenue, private: Ws) -> None:
    venue.reorder_events(5)
    private.send({"id": "1", "op": "order", "args": [limit_buy("h1")]})
    private.send({"id": "2", "op": "order", "args": [limit_buy("h2")]})
    private.until(lambda f: f.get("id") == "2")
    assert venue.release_events() == 2
    assert [row["clOrdId"] for row in private.pushes(2)] == ["h2", "h1"]


def test_hold_and_release_fills(
    venue: OkxVenue, trade: okx.Trade.TradeAPI, market: okx.MarketData.MarketAPI
) -> None:
    held = trade.place_order(**limit_buy("hold", px="49900"))["data"][0]["ordId"]
    canceled = trade.place_order(**limit_buy("race", px="49900"))["data"][0]["ordId"]
    venue.hold_fills()
    venue.set_price(BTC, D("49000"))
    assert venue.fills() == []
    assert market.get_ticker(instId=BTC)["data"][0]["last"] == "49000"
    assert trade.cancel_order(instId=BTC, ordId=canceled)["data"][0]["sCode"] == "0"
    assert venue.release_fills() == 1
    (fill,) = venue.fills()
    assert (fill.ord_id, fill.fill_px, fill.fill_sz) == (held, D("49900"), D("0.5"))
    venue.set_price(BTC, D("48900"))
    assert trade.get_order(instId=BTC, ordId=held)["data"][0]["state"] == "filled"


def test_drop_streams_and_down_up(venue: OkxVenue, private: Ws) -> None:
    assert venue.drop_streams() >= 1
    with pytest.raises(ConnectionClosed):
        private.text()
    venue.down()
    with pytest.raises(httpx.TransportError):
        httpx.get(venue.rest_url + "/api/v5/public/time")
    venue.up()
    assert httpx.get(venue.rest_url + "/api/v5/public/time").json()["code"] == "0"


def test_clear_faults_and_the_admin_port(venue: OkxVenue) -> None:
    venue.rate_limit(3)
    venue.fail_requests(2)
    venue.clear_faults()
    assert signed(venue, "GET", "/api/v5/account/balance").status_code == 200
    knob = httpx.post(f"{venue.admin_url}/set_price", json={"inst_id": BTC, "price": "52000"})
    assert knob.json() == {"ok": True, "result": None}
    assert venue.exchange.last_price(BTC) == D(52000)
    placed = httpx.post(
        f"{venue.admin_url}/place_order",
        json={"inst_id": BTC, "side": "buy", "ord_type": "limit", "sz": "1", "px": "50000"},
    ).json()
    assert placed["result"]["sCode"] == "0"
    state = httpx.get(f"{venue.admin_url}/state").json()
    assert [order["ord_id"] for order in state["orders"]] == [placed["result"]["ordId"]]
    wrong = httpx.post(f"{venue.admin_url}/rate_limit", json={"count": "x"})
    assert wrong.status_code == 400
    assert set(venue.KNOBS) >= {
        "drop_streams",
        "down",
        "up",
        "rate_limit",
        "fail_requests",
        "duplicate_events",
        "reorder_events",
        "release_events",
        "drop_events",
        "corrupt_next_event",
        "corrupt_next_fill",
        "corrupt_next_quote",
        "corrupt_next_answer",
        "hold_fills",
        "release_fills",
        "refuse_next_order",
        "clear_faults",
        "set_price",
    }


# -------------------------------------------------------------------- ccxt


def _ccxt_urls(venue: OkxVenue) -> dict[str, Any]:
    return {"rest": venue.rest_url, "ws": venue.ws_public_url.removesuffix("/public")}


def test_ccxt_okx_drives_the_venue(venue: OkxVenue) -> None:
    exchange = ccxt.okx(
        {"apiKey": venue.api_key, "secret": venue.secret, "password": venue.passphrase}
    )
    exchange.set_sandbox_mode(True)
    exchange.urls["api"] = _ccxt_urls(venue)
    exchange.options["fetchMarkets"] = {"types": ["spot"]}
    markets = exchange.load_markets()
    assert markets["BTC/USDT"]["precision"]["price"] == 0.01
    assert markets["BTC/USDT"]["limits"]["amount"]["min"] == 0.0001
    assert exchange.fetch_ticker("BTC/USDT")["last"] == 50000.0
    order = exchange.create_order("BTC/USDT", "limit", "buy", 1, 49000, {"clientOrderId": "cc1"})
    assert order["clientOrderId"] == "cc1"
    fetched = exchange.fetch_order(order["id"], "BTC/USDT")
    assert (fetched["status"], fetched["price"], fetched["amount"]) == ("open", 49000.0, 1.0)
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")] == [order["id"]]
    edited = exchange.edit_order(order["id"], "BTC/USDT", "limit", "buy", 1, 49100)
    assert edited["id"] == order["id"]
    assert exchange.fetch_order(order["id"], "BTC/USDT")["price"] == 49100.0
    exchange.cancel_order(order["id"], "BTC/USDT")
    assert exchange.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"
    sold = exchange.create_order("BTC/USDT", "market", "sell", 0.2)
    assert exchange.fetch_order(sold["id"], "BTC/USDT")["filled"] == 0.2
    trades = exchange.fetch_my_trades("BTC/USDT")
    assert [t["amount"] for t in trades] == [0.2]
    balance = exchange.fetch_balance()
    assert balance["BTC"]["free"] == 9.8
    with pytest.raises(ccxt.OrderNotFound):
        exchange.cancel_order(order["id"], "BTC/USDT")
    venue.refuse_next_order("51008", "Order failed. Insufficient USDT balance in account.")
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order("BTC/USDT", "limit", "buy", 1, 49000)
    venue.rate_limit(1, retry_after=1)
    with pytest.raises(ccxt.RateLimitExceeded):
        exchange.fetch_balance()
    bad = ccxt.okx({"apiKey": venue.api_key, "secret": "wrong", "password": venue.passphrase})
    bad.urls["api"] = _ccxt_urls(venue)
    bad.set_markets(list(markets.values()))
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()


def test_ccxt_pro_watches_orders_and_orders_over_the_websocket(venue: OkxVenue) -> None:
    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        exchange = ccxt.pro.okx(
            {"apiKey": venue.api_key, "secret": venue.secret, "password": venue.passphrase}
        )
        exchange.urls["api"] = _ccxt_urls(venue)
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
        try:
            await exchange.load_markets()
            watching = asyncio.ensure_future(exchange.watch_orders("BTC/USDT"))
            # The wait blocks a worker thread, not this loop, which runs the subscription.
            await asyncio.to_thread(
                venue.wait_for,
                lambda: ("private", "orders") in venue.subscriptions() or watching.done(),
                WAIT,
                "ccxt.pro subscribed to the orders channel",
            )
            assert not watching.done(), watching
            placed = await exchange.create_order_ws(
                "BTC/USDT", "limit", "buy", 1, 49000, {"clientOrderId": "pro1"}
            )
            updates = await asyncio.wait_for(watching, WAIT)
            return updates, placed
        finally:
            await exchange.close()

    updates, placed = asyncio.run(scenario())
    assert placed["id"] == updates[-1]["id"]
    assert updates[-1]["clientOrderId"] == "pro1" and updates[-1]["status"] == "open"
    assert venue.submissions() == {"pro1": 1}


# ------------------------------------------------------------- the command


def test_the_okx_command_prints_one_json_line_and_serves_until_sigterm() -> None:
    env = dict(
        os.environ,
        TRADENODE_FAKE_OKX_SECRET="secret-from-env",
        TRADENODE_FAKE_OKX_PASSPHRASE="phrase-from-env",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "venue", "okx", "--api-key", "k1", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        assert set(urls) == {"rest", "ws_public", "ws_private", "admin", "api_key"}
        assert urls["api_key"] == "k1" and urls["ws_private"].endswith("/ws/v5/private")
        with okx.Account.AccountAPI(
            "k1", "secret-from-env", "phrase-from-env", flag="1", domain=urls["rest"]
        ) as account:
            assert account.get_account_balance()["code"] == "0"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == ""
    assert "secret-from-env" not in out + err and "phrase-from-env" not in out + err
