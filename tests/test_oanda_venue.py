"""The fake OANDA (``OandaVenue``) against OANDA's own clients, unchanged, over loopback.

oandapyV20 is pointed at the fake through its ``TRADING_ENVIRONMENTS`` table
(restored after each test); raw httpx reads the streams where a test needs
the bytes. No sleeps: stream tests synchronise on the lines themselves (a
small heartbeat interval makes the first line come quickly).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import oandapyV20
import oandapyV20.endpoints.instruments
import oandapyV20.oandapyV20 as oanda_core
import pytest
import requests
from oandapyV20.endpoints import accounts, orders, positions, pricing, trades, transactions

from tradenode.testing.venues import DEFAULT_OANDA_ACCOUNT_ID, DEFAULT_OANDA_TOKEN, OandaVenue

D = Decimal
ENV = "tradenode-fake"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


class Clock:
    """Epoch milliseconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def venue(clock: Clock) -> Iterator[OandaVenue]:
    with OandaVenue(seed=1, clock=clock, heartbeat_interval=0.05, financing=True) as local:
        yield local


@pytest.fixture
def api(venue: OandaVenue) -> Iterator[oandapyV20.API]:
    oanda_core.TRADING_ENVIRONMENTS[ENV] = {"api": venue.rest_url, "stream": venue.stream_url}
    client = oandapyV20.API(access_token=venue.token, environment=ENV)
    try:
        yield client
    finally:
        client.close()
        oanda_core.TRADING_ENVIRONMENTS.pop(ENV, None)


def place(api: oandapyV20.API, order: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = api.request(
        orders.OrderCreate(DEFAULT_OANDA_ACCOUNT_ID, {"order": order})
    )
    return answer


def refused(api: oandapyV20.API, order: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(oandapyV20.V20Error) as caught:
        place(api, order)
    assert caught.value.code == 400
    body: dict[str, Any] = json.loads(caught.value.msg)
    return body


def market(units: str, instrument: str = "EUR_USD", **extra: Any) -> dict[str, Any]:
    return {"type": "MARKET", "instrument": instrument, "units": units, **extra}


def headers(venue: OandaVenue) -> dict[str, str]:
    return {"Authorization": f"Bearer {venue.token}"}


def account_url(venue: OandaVenue, tail: str, base: str | None = None) -> str:
    return f"{base or venue.rest_url}/v3/accounts/{venue.account_id}/{tail}"


def read_until(lines: Iterator[str], wanted: str, limit: int = 200) -> list[dict[str, Any]]:
    """Parsed lines up to and including the first of type ``wanted``."""
    seen = []
    for _ in range(limit):
        item = json.loads(next(lines))
        seen.append(item)
        if item["type"] == wanted:
            return seen
    raise AssertionError(f"no {wanted} in {limit} lines")


# ------------------------------------------------------------------ orders


def test_market_order_fills_with_the_201_shape(venue: OandaVenue, api: oandapyV20.API) -> None:
    bid, ask = venue.quote("EUR_USD")
    answer = place(api, market("1000", clientExtensions={"id": "c-1", "tag": "t"}))
    create, fill = answer["orderCreateTransaction"], answer["orderFillTransaction"]
    assert create["type"] == "MARKET_ORDER" and create["timeInForce"] == "FOK"
    assert create["reason"] == "CLIENT_ORDER" and create["batchID"] == create["id"]
    assert fill["type"] == "ORDER_FILL" and fill["orderID"] == create["id"]
    assert fill["clientOrderID"] == "c-1" and fill["reason"] == "MARKET_ORDER"
    assert D(fill["price"]) == ask and fill["fullVWAP"] == fill["price"]
    assert fill["tradeOpened"]["tradeID"] == fill["id"] and fill["batchID"] == create["id"]
    assert fill["accountBalance"] == "100000.0000" and fill["pl"] == "0.0000"
    assert answer["relatedTransactionIDs"] == [create["id"], fill["id"]]
    assert answer["lastTransactionID"] == fill["id"]
    assert int(fill["id"]) == int(create["id"]) + 1
    assert venue.positions() == {"EUR_USD": D(1000)}
    assert bid < ask
    order = api.request(orders.OrderDetails(venue.account_id, "@c-1"))["order"]
    assert order["state"] == "FILLED" and order["fillingTransactionID"] == fill["id"]
    assert order["tradeOpenedID"] == fill["id"]


def test_limit_stop_and_mit_rest_then_fill_when_the_price_comes(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    limit = place(
        api, {"type": "LIMIT", "instrument": "EUR_USD", "units": "100", "price": "1.07000"}
    )
    stop = place(
        api, {"type": "STOP", "instrument": "EUR_USD", "units": "-100", "price": "1.07500"}
    )
    mit = place(
        api,
        {"type": "MARKET_IF_TOUCHED", "instrument": "EUR_USD", "units": "200", "price": "1.06000"},
    )
    for answer, kind in (
        (limit, "LIMIT_ORDER"),
        (stop, "STOP_ORDER"),
        (mit, "MARKET_IF_TOUCHED_ORDER"),
    ):
        assert answer["orderCreateTransaction"]["type"] == kind
        assert set(answer) == {
            "orderCreateTransaction",
            "relatedTransactionIDs",
            "lastTransactionID",
        }
    pending = api.request(orders.OrdersPending(venue.account_id))["orders"]
    assert [o["type"] for o in pending] == ["MARKET_IF_TOUCHED", "STOP", "LIMIT"]
    assert all(o["state"] == "PENDING" for o in pending)
    venue.set_price("EUR_USD", D("1.07300"))  # through the sell stop only
    states = {o["id"]: o["state"] for o in venue.orders()}
    assert states[stop["orderCreateTransaction"]["id"]] == "FILLED"
    assert states[limit["orderCreateTransaction"]["id"]] == "PENDING"
    venue.set_price("EUR_USD", D("1.05000"))  # the buy limit and the buy MIT
    assert all(o["state"] == "FILLED" for o in venue.orders())
    fills = [t for t in venue.transactions() if t["type"] == "ORDER_FILL"]
    assert [f["reason"] for f in fills] == ["STOP_ORDER", "LIMIT_ORDER", "MARKET_IF_TOUCHED_ORDER"]
    assert D(fills[1]["price"]) <= D("1.07000")
    assert venue.positions() == {"EUR_USD": D(200)}


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (market("1.5"), "UNITS_PRECISION_EXCEEDED"),
        (market("0"), "UNITS_INVALID"),
        (market("10", timeInForce="GTC"), "TIME_IN_FORCE_INVALID"),
        (market("10", instrument="XAU_EUR"), "INSTRUMENT_UNKNOWN"),
        (
            {"type": "LIMIT", "instrument": "EUR_USD", "units": "1", "price": "1.082001"},
            "PRICE_PRECISION_EXCEEDED",
        ),
        (
            {"type": "LIMIT", "instrument": "USD_JPY", "units": "1", "price": "150.0001"},
            "PRICE_PRECISION_EXCEEDED",
        ),
        ({"type": "LIMIT", "instrument": "EUR_USD", "units": "1"}, "PRICE_MISSING"),
        (
            {
                "type": "STOP",
                "instrument": "EUR_USD",
                "units": "1",
                "price": "1.2",
                "timeInForce": "GTD",
            },
            "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING",
        ),
        (
            {
                "type": "LIMIT",
                "instrument": "EUR_USD",
                "units": "1",
                "price": "1.0",
                "timeInForce": "GTD",
                "gtdTime": "2020-01-01T00:00:00.000000000Z",
            },
            "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST",
        ),
        (market("10", positionFill="SOMETIMES"), "ORDER_FILL_POSITION_ACTION_INVALID"),
    ],
)
def test_refused_orders_answer_400_with_a_reject_transaction(
    venue: OandaVenue, api: oandapyV20.API, order: dict[str, Any], code: str
) -> None:
    body = refused(api, order)
    reject = body["orderRejectTransaction"]
    assert body["errorCode"] == code and reject["rejectReason"] == code and body["errorMessage"]
    assert reject["type"].endswith("_ORDER_REJECT")
    assert body["relatedTransactionIDs"] == [reject["id"]] == [body["lastTransactionID"]]
    assert venue.transactions()[-1] == reject
    assert venue.orders() == []


def test_a_duplicate_client_id_is_refused_and_submissions_count_every_placement(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    place(api, market("10", clientExtensions={"id": "dup"}))
    body = refused(api, market("10", clientExtensions={"id": "dup"}))
    assert body["errorCode"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"
    assert body["orderRejectTransaction"]["type"] == "MARKET_ORDER_REJECT"
    refused(api, market("1.5", clientExtensions={"id": "bad-units"}))
    pending = place(
        api,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "5",
            "price": "1.00000",
            "clientExtensions": {"id": "r"},
        },
    )
    api.request(
        orders.OrderReplace(
            venue.account_id,
            "@r",
            {
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "6",
                    "price": "1.00001",
                    "clientExtensions": {"id": "r"},
                }
            },
        )
    )
    assert venue.submissions() == {"dup": 2, "bad-units": 1, "r": 2}
    assert pending["orderCreateTransaction"]["clientExtensions"] == {"id": "r"}
    assert venue.positions() == {"EUR_USD": D(10)}


def test_replace_cancels_and_creates_in_one_batch_with_links(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    old = place(
        api,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": "1.00000",
            "clientExtensions": {"id": "a"},
        },
    )["orderCreateTransaction"]
    answer = api.request(
        orders.OrderReplace(
            venue.account_id,
            old["id"],
            {
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "150",
                    "price": "1.01000",
                    "clientExtensions": {"id": "b"},
                }
            },
        )
    )
    cancel, create = answer["orderCancelTransaction"], answer["orderCreateTransaction"]
    assert cancel["reason"] == "CLIENT_REQUEST_REPLACED" and cancel["orderID"] == old["id"]
    assert cancel["replacedByOrderID"] == create["id"] and cancel["clientOrderID"] == "a"
    assert create["reason"] == "REPLACEMENT" and create["replacesOrderID"] == old["id"]
    assert cancel["batchID"] == create["batchID"] == cancel["id"]
    assert int(cancel["id"]) < int(create["id"])
    assert answer["relatedTransactionIDs"] == [cancel["id"], create["id"]]
    views = {o["id"]: o for o in venue.orders()}
    assert views[old["id"]]["state"] == "CANCELLED"
    assert views[old["id"]]["replacedByOrderID"] == create["id"]
    assert views[create["id"]]["replacesOrderID"] == old["id"]
    detail = api.request(orders.OrderDetails(venue.account_id, "@b"))["order"]
    assert detail["id"] == create["id"] and detail["units"] == "150"
    # a different type cannot replace
    with pytest.raises(oandapyV20.V20Error) as caught:
        api.request(orders.OrderReplace(venue.account_id, "@b", {"order": market("5")}))
    assert caught.value.code == 400


def test_cancel_and_cancel_unknown(venue: OandaVenue, api: oandapyV20.API) -> None:
    created = place(
        api,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": "1.00000",
            "clientExtensions": {"id": "x"},
        },
    )["orderCreateTransaction"]
    answer = api.request(orders.OrderCancel(venue.account_id, "@x"))
    cancel = answer["orderCancelTransaction"]
    assert cancel["reason"] == "CLIENT_REQUEST" and cancel["orderID"] == created["id"]
    assert cancel["clientOrderID"] == "x" and answer["lastTransactionID"] == cancel["id"]
    for specifier in (created["id"], "999", "@nobody"):
        with pytest.raises(oandapyV20.V20Error) as caught:
            api.request(orders.OrderCancel(venue.account_id, specifier))
        assert caught.value.code == 404
        body = json.loads(caught.value.msg)
        assert body["errorCode"] == "ORDER_DOESNT_EXIST"
        assert body["orderCancelRejectTransaction"]["rejectReason"] == "ORDER_DOESNT_EXIST"
    with pytest.raises(oandapyV20.V20Error) as missing:
        api.request(orders.OrderDetails(venue.account_id, "@nobody"))
    assert missing.value.code == 404
    listed = api.request(orders.OrderList(venue.account_id, params={"state": "ALL"}))["orders"]
    assert [o["state"] for o in listed] == ["CANCELLED"]


def test_fok_market_cancels_and_ioc_fills_partially(venue: OandaVenue, api: oandapyV20.API) -> None:
    _, ask = venue.quote("USD_JPY")
    fok = place(api, market("1500000", instrument="USD_JPY", priceBound=str(ask)))
    assert "orderFillTransaction" not in fok
    assert fok["orderCancelTransaction"]["reason"] == "BOUNDS_VIOLATION"
    too_big = place(api, market("6000000", instrument="USD_JPY"))
    assert too_big["orderCancelTransaction"]["reason"] == "INSUFFICIENT_LIQUIDITY"
    ioc = place(
        api, market("1500000", instrument="USD_JPY", priceBound=str(ask), timeInForce="IOC")
    )
    fill, cancel = ioc["orderFillTransaction"], ioc["orderCancelTransaction"]
    assert fill["units"] == "1000000" and D(fill["price"]) == ask
    assert cancel["orderID"] == fill["orderID"] and cancel["batchID"] == fill["batchID"]
    assert venue.positions() == {"USD_JPY": D(1000000)}


def test_netting_reduces_fifo_and_books_pl_in_usd(venue: OandaVenue, api: oandapyV20.API) -> None:
    first = place(api, market("100", instrument="USD_JPY"))["orderFillTransaction"]
    second = place(api, market("100", instrument="USD_JPY"))["orderFillTransaction"]
    venue.set_price("USD_JPY", D("151.500"))
    bid, _ = venue.quote("USD_JPY")
    reduce = place(api, market("-150", instrument="USD_JPY"))["orderFillTransaction"]
    assert [c["tradeID"] for c in reduce["tradesClosed"]] == [first["id"]]
    assert reduce["tradeReduced"]["tradeID"] == second["id"]
    assert reduce["tradeReduced"]["units"] == "-50"
    assert "tradeOpened" not in reduce
    expected = (bid - D(first["price"])) * 150 / ((bid + venue.quote("USD_JPY")[1]) / 2)
    assert abs(D(reduce["pl"]) - expected) < D("0.01")
    assert venue.balance() == D("100000") + D(reduce["pl"])
    flip = place(api, market("-100", instrument="USD_JPY"))["orderFillTransaction"]
    assert flip["tradesClosed"][0]["tradeID"] == second["id"]
    assert flip["tradeOpened"]["units"] == "-50"
    assert venue.positions() == {"USD_JPY": D(-50)}
    open_positions = api.request(positions.OpenPositions(venue.account_id))["positions"]
    assert (
        open_positions[0]["short"]["units"] == "-50" and open_positions[0]["long"]["units"] == "0"
    )
    assert open_positions[0]["short"]["tradeIDs"] == [flip["id"]]
    open_trades = api.request(trades.OpenTrades(venue.account_id))["trades"]
    assert [t["id"] for t in open_trades] == [flip["id"]]
    summary = api.request(accounts.AccountSummary(venue.account_id))["account"]
    assert summary["hedgingEnabled"] is False and summary["openTradeCount"] == 1
    assert summary["balance"] == str(venue.balance())


def test_reduce_only_never_opens_or_flips(venue: OandaVenue, api: oandapyV20.API) -> None:
    nothing = place(api, market("100", positionFill="REDUCE_ONLY"))
    assert nothing["orderCancelTransaction"]["reason"] == "POSITION_SIZE_EXCEEDED"
    place(api, market("100"))
    same_side = place(api, market("50", positionFill="REDUCE_ONLY"))
    assert "orderFillTransaction" not in same_side
    capped = place(api, market("-300", positionFill="REDUCE_ONLY"))["orderFillTransaction"]
    assert capped["units"] == "-100" and "tradeOpened" not in capped
    assert venue.positions() == {}


def test_position_close_and_trade_close(venue: OandaVenue, api: oandapyV20.API) -> None:
    opened = place(api, market("300", tradeClientExtensions={"id": "my-trade"}))[
        "orderFillTransaction"
    ]
    closed = api.request(trades.TradeClose(venue.account_id, "@my-trade", data={"units": "100"}))
    assert closed["orderFillTransaction"]["reason"] == "MARKET_ORDER_TRADE_CLOSE"
    assert closed["orderFillTransaction"]["tradeReduced"]["tradeID"] == opened["id"]
    answer = api.request(
        positions.PositionClose(venue.account_id, "EUR_USD", data={"longUnits": "ALL"})
    )
    assert answer["longOrderCreateTransaction"]["longPositionCloseout"]["units"] == "ALL"
    assert answer["longOrderFillTransaction"]["units"] == "-200"
    assert answer["longOrderFillTransaction"]["reason"] == "MARKET_ORDER_POSITION_CLOSEOUT"
    assert venue.positions() == {}
    with pytest.raises(oandapyV20.V20Error) as caught:
        api.request(positions.PositionClose(venue.account_id, "EUR_USD", data={"longUnits": "ALL"}))
    assert caught.value.code == 400
    trade = api.request(trades.TradeDetails(venue.account_id, opened["id"]))["trade"]
    assert trade["state"] == "CLOSED" and trade["currentUnits"] == "0"
    assert (
        api.request(positions.PositionDetails(venue.account_id, "EUR_USD"))["position"]["long"][
            "units"
        ]
        == "0"
    )


def test_gtd_expires_on_the_venue_clock(
    venue: OandaVenue, api: oandapyV20.API, clock: Clock
) -> None:
    created = place(
        api,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "1",
            "price": "1.00000",
            "timeInForce": "GTD",
            "gtdTime": str((T0 + 60_000) / 1000),
        },
    )["orderCreateTransaction"]
    assert created["gtdTime"] == "2023-11-14T22:14:20.000000000Z"
    clock.now += 60_000
    assert api.request(orders.OrdersPending(venue.account_id))["orders"] == []
    cancel = venue.transactions()[-1]
    assert cancel["type"] == "ORDER_CANCEL" and cancel["reason"] == "TIME_IN_FORCE_EXPIRED"


def test_financing_books_daily_financing(venue: OandaVenue, api: oandapyV20.API) -> None:
    with OandaVenue(seed=1, clock=Clock()) as plain:
        assert plain.charge_financing() is None and len(plain.transactions()) == 2
    fill = place(api, market("10000"))["orderFillTransaction"]
    booked = venue.charge_financing()
    assert booked == venue.transactions()[-1]
    assert booked is not None
    assert booked["type"] == "DAILY_FINANCING" and D(booked["financing"]) < 0
    assert booked["positionFinancings"][0]["openTradeFinancings"][0]["tradeID"] == fill["id"]
    assert venue.balance() == D("100000") + D(booked["financing"])


# ------------------------------------------------------ account and history


def test_account_endpoints(venue: OandaVenue, api: oandapyV20.API) -> None:
    assert api.request(accounts.AccountList())["accounts"] == [{"id": venue.account_id, "tags": []}]
    summary = api.request(accounts.AccountSummary(venue.account_id))
    assert (
        summary["account"]["balance"] == "100000.0000" and summary["account"]["currency"] == "USD"
    )
    assert summary["lastTransactionID"] == "2"
    details = api.request(accounts.AccountDetails(venue.account_id))["account"]
    assert details["orders"] == [] and details["trades"] == [] and details["positions"] == []
    listed = api.request(accounts.AccountInstruments(venue.account_id))["instruments"]
    by_name = {i["name"]: i for i in listed}
    assert set(by_name) == {"EUR_USD", "USD_JPY", "GBP_USD"}
    assert by_name["USD_JPY"]["displayPrecision"] == 3 and by_name["USD_JPY"]["pipLocation"] == -2
    assert (
        by_name["EUR_USD"]["displayPrecision"] == 5
        and by_name["EUR_USD"]["tradeUnitsPrecision"] == 0
    )
    assert (
        by_name["EUR_USD"]["type"] == "CURRENCY" and by_name["EUR_USD"]["minimumTradeSize"] == "1"
    )
    prices = api.request(
        pricing.PricingInfo(venue.account_id, params={"instruments": "EUR_USD,USD_JPY"})
    )
    bid, ask = venue.quote("USD_JPY")
    assert prices["prices"][1]["closeoutBid"] == str(bid) and prices["prices"][1]["asks"][0][
        "price"
    ] == str(ask)


def test_transactions_sinceid_idrange_and_details(venue: OandaVenue, api: oandapyV20.API) -> None:
    answer = place(api, market("10"))
    fill_id = answer["orderFillTransaction"]["id"]
    since = api.request(transactions.TransactionsSinceID(venue.account_id, params={"id": "3"}))
    assert [t["id"] for t in since["transactions"]] == [fill_id]
    assert since["lastTransactionID"] == fill_id
    everything = api.request(transactions.TransactionsSinceID(venue.account_id, params={"id": "0"}))
    assert [t["type"] for t in everything["transactions"]] == [
        "CREATE",
        "TRANSFER_FUNDS",
        "MARKET_ORDER",
        "ORDER_FILL",
    ]
    window = api.request(
        transactions.TransactionIDRange(venue.account_id, params={"from": "2", "to": "3"})
    )
    assert [t["id"] for t in window["transactions"]] == ["2", "3"]
    only = api.request(
        transactions.TransactionIDRange(
            venue.account_id, params={"from": "1", "to": "9", "type": "ORDER_FILL"}
        )
    )
    assert [t["id"] for t in only["transactions"]] == [fill_id]
    one = api.request(transactions.TransactionDetails(venue.account_id, fill_id))
    assert one["transaction"] == answer["orderFillTransaction"]
    pages = api.request(transactions.TransactionList(venue.account_id, params={"pageSize": 2}))
    assert pages["count"] == 4 and len(pages["pages"]) == 2
    with pytest.raises(oandapyV20.V20Error) as caught:
        api.request(transactions.TransactionDetails(venue.account_id, "77"))
    assert caught.value.code == 404


def test_authorization_and_account_checks(venue: OandaVenue) -> None:
    url = account_url(venue, "summary")
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "errorMessage" in wrong.json()
    other = httpx.get(url.replace(venue.account_id, "101-001-9999999-001"), headers=headers(venue))
    assert other.status_code == 404 and "errorMessage" in other.json()
    bad = httpx.get(url.replace(venue.account_id, "nope"), headers=headers(venue))
    assert bad.status_code == 400
    oanda_core.TRADING_ENVIRONMENTS[ENV] = {"api": venue.rest_url, "stream": venue.stream_url}
    try:
        no_token = oandapyV20.API(access_token="wrong", environment=ENV)
        with pytest.raises(oandapyV20.V20Error) as caught:
            no_token.request(accounts.AccountSummary(venue.account_id))
        assert caught.value.code == 401
    finally:
        no_token.close()
        oanda_core.TRADING_ENVIRONMENTS.pop(ENV, None)
    assert DEFAULT_OANDA_TOKEN not in repr(venue) and venue.token not in repr(venue)


# ----------------------------------------------------------------- streams


def test_transaction_stream_yields_heartbeats_and_transactions(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    stream = transactions.TransactionsStream(venue.account_id)
    lines = api.request(stream)
    first = next(lines)
    assert first["type"] == "HEARTBEAT" and first["lastTransactionID"] == "2" and first["time"]
    answer = place(api, market("25", clientExtensions={"id": "s1"}))
    seen = []
    while len([t for t in seen if t["type"] != "HEARTBEAT"]) < 2:
        seen.append(next(lines))
    streamed = [t for t in seen if t["type"] != "HEARTBEAT"]
    assert streamed == [answer["orderCreateTransaction"], answer["orderFillTransaction"]]
    beat = next(line for line in lines if line["type"] == "HEARTBEAT")
    assert beat["lastTransactionID"] == answer["lastTransactionID"]
    with pytest.raises(oandapyV20.exceptions.StreamTerminated):
        stream.terminate()


def test_pricing_stream_snapshot_then_prices_on_change(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    lines = api.request(
        pricing.PricingStream(venue.account_id, params={"instruments": "EUR_USD,USD_JPY"})
    )
    snapshot = [next(lines), next(lines)]
    assert [p["instrument"] for p in snapshot] == ["EUR_USD", "USD_JPY"]
    assert all(p["type"] == "PRICE" and p["tradeable"] for p in snapshot)
    venue.set_price("USD_JPY", D("152.000"))
    venue.set_price("GBP_USD", D("1.30000"))  # not subscribed
    venue.set_price("EUR_USD", D("1.10000"))
    prices: list[dict[str, Any]] = []
    while len(prices) < 2:
        line = next(lines)
        if line["type"] == "PRICE":
            prices.append(line)
    assert [p["instrument"] for p in prices] == ["USD_JPY", "EUR_USD"]
    bid, ask = venue.quote("EUR_USD")
    assert prices[1]["bids"][0]["price"] == str(bid) and prices[1]["asks"][0]["price"] == str(ask)
    assert D(prices[1]["bids"][0]["price"]) > D(prices[1]["bids"][1]["price"])
    quiet = httpx.Client(headers=headers(venue), timeout=10)
    with quiet.stream(
        "GET", account_url(venue, "pricing/stream?instruments=EUR_USD&snapshot=false")
    ) as r:
        assert json.loads(next(r.iter_lines()))["type"] == "HEARTBEAT"
    quiet.close()


# ------------------------------------------------------------------ faults


def test_rate_limit_answers_429_without_processing(venue: OandaVenue, api: oandapyV20.API) -> None:
    venue.rate_limit(count=2, retry_after=3)
    for _ in range(2):
        answer = httpx.post(
            account_url(venue, "orders"),
            headers=headers(venue),
            json={"order": market("1", clientExtensions={"id": "rl"})},
        )
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
        assert "errorMessage" in answer.json()
    assert venue.orders() == [] and venue.submissions() == {}
    created = httpx.post(
        account_url(venue, "orders"),
        headers=headers(venue),
        json={"order": market("1", clientExtensions={"id": "rl"})},
    )
    order_id = created.json()["orderCreateTransaction"]["id"]
    assert created.status_code == 201
    assert created.headers["Location"] == f"/v3/accounts/{venue.account_id}/orders/{order_id}"
    assert venue.calls()["POST orders"] == 3


def test_fail_requests_before_and_after_processing(venue: OandaVenue, api: oandapyV20.API) -> None:
    venue.fail_requests(count=1, status=503, path="POST orders")
    with pytest.raises(oandapyV20.V20Error) as before:
        place(api, market("1", clientExtensions={"id": "f1"}))
    assert before.value.code == 503 and venue.orders() == []
    api.request(orders.OrdersPending(venue.account_id))  # other paths unaffected
    venue.fail_requests(count=1, status=500, after=True, path="/orders")
    with pytest.raises(oandapyV20.V20Error) as after:
        place(api, market("1", clientExtensions={"id": "f1"}))
    assert after.value.code == 500
    assert [o["clientExtensions"]["id"] for o in venue.orders()] == ["f1"]
    assert venue.positions() == {"EUR_USD": D(1)}


def test_lose_next_response_processes_but_never_answers(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    venue.lose_next_response(path="/orders")
    with pytest.raises(requests.exceptions.ConnectionError):
        place(api, market("7", clientExtensions={"id": "lost"}))
    assert venue.orders()[0]["clientExtensions"]["id"] == "lost"
    assert api.request(orders.OrderDetails(venue.account_id, "@lost"))["order"]["state"] == "FILLED"


def test_held_requests_wait_unprocessed_until_released(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    venue.hold_requests(count=1, path="POST orders")
    answers: list[dict[str, Any]] = []
    placing = threading.Thread(
        target=lambda: answers.append(place(api, market("2", clientExtensions={"id": "held"})))
    )
    placing.start()
    venue.wait_held(1)
    assert venue.held_requests() == ["POST orders"]
    assert venue.orders() == [] and venue.submissions() == {}  # read, not processed
    assert httpx.get(f"{venue.admin_url}/faults").json()["held"] == ["POST orders"]
    api.request(orders.OrdersPending(venue.account_id))  # other requests are answered
    assert venue.release_requests() == 1
    placing.join(10)
    assert not placing.is_alive()
    assert answers[0]["orderFillTransaction"]["units"] == "2"
    assert venue.held_requests() == [] and venue.submissions() == {"held": 1}
    with pytest.raises(TimeoutError, match="1 hold"):
        venue.hold_requests(count=1)
        venue.wait_held(1, timeout=0)


def test_clear_faults_releases_held_requests(venue: OandaVenue, api: oandapyV20.API) -> None:
    venue.hold_requests(count=2)
    done: list[object] = []
    reading = threading.Thread(
        target=lambda: done.append(api.request(orders.OrdersPending(venue.account_id)))
    )
    reading.start()
    venue.wait_held(1)
    venue.clear_faults()
    reading.join(10)
    assert not reading.is_alive() and len(done) == 1
    assert venue.held_requests() == []
    assert httpx.get(f"{venue.admin_url}/faults").json()["requests"] == []  # the 2nd hold is gone


def test_duplicate_and_corrupt_stream_lines(venue: OandaVenue, api: oandapyV20.API) -> None:
    client = httpx.Client(headers=headers(venue), timeout=10)
    with client.stream("GET", account_url(venue, "transactions/stream", venue.stream_url)) as r:
        lines = r.iter_lines()
        read_until(lines, "HEARTBEAT")
        venue.duplicate_transactions(count=1)
        venue.corrupt_next_line()
        place(api, market("3"))
        raw = []
        while len([x for x in raw if '"ORDER_FILL"' in x and x.endswith("}")]) < 1:
            line = next(lines)
            if '"HEARTBEAT"' not in line:
                raw.append(line)
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw[0])
        parsed = [json.loads(x) for x in raw[1:]]
        assert [t["type"] for t in parsed] == ["MARKET_ORDER", "MARKET_ORDER", "ORDER_FILL"]
        assert parsed[0] == parsed[1]
    client.close()


def test_stall_keeps_the_stream_open_and_silent_until_cleared(
    venue: OandaVenue, api: oandapyV20.API
) -> None:
    client = httpx.Client(headers=headers(venue), timeout=10)
    with client.stream("GET", account_url(venue, "transactions/stream")) as r:
        lines = r.iter_lines()
        read_until(lines, "HEARTBEAT")
        venue.stall_streams("transactions")
        answer = place(api, market("4"))
        [stream] = venue.streams()
        assert stream["stalled"] is True and stream["unwritten"] == 2
        venue.clear_faults()
        seen = read_until(lines, "ORDER_FILL")
        assert seen[-1]["id"] == answer["orderFillTransaction"]["id"]
    client.close()


def test_drop_streams_cuts_the_connection(venue: OandaVenue, api: oandapyV20.API) -> None:
    client = httpx.Client(headers=headers(venue), timeout=10)
    with client.stream("GET", account_url(venue, "pricing/stream?instruments=EUR_USD")) as r:
        lines = r.iter_lines()
        assert json.loads(next(lines))["type"] == "PRICE"
        assert venue.drop_streams("transactions") == 0
        assert venue.drop_streams("pricing") == 1
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            for _ in range(1000):
                next(lines)
    client.close()
    assert venue.streams() == []
    place(api, market("1"))  # REST unaffected


def test_stall_ends_with_a_drop_and_the_reconnection_is_served(venue: OandaVenue) -> None:
    client = httpx.Client(headers=headers(venue), timeout=10)
    url = account_url(venue, "pricing/stream?instruments=EUR_USD&snapshot=false")
    venue.stall_streams()
    with client.stream("GET", url) as r:
        assert venue.streams()[0]["stalled"] is True
        assert venue.drop_streams() == 1
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            for _ in r.iter_lines():
                pass
    with client.stream("GET", url) as r:
        assert json.loads(next(r.iter_lines()))["type"] == "HEARTBEAT"
    client.close()


def test_tick_interval_moves_prices_by_itself() -> None:
    with OandaVenue(seed=2, heartbeat_interval=0.05, tick_interval=0.01) as ticking:
        client = httpx.Client(headers=headers(ticking), timeout=10)
        url = account_url(ticking, "pricing/stream?instruments=GBP_USD&snapshot=false")
        with client.stream("GET", url) as r:
            assert read_until(r.iter_lines(), "PRICE")[-1]["instrument"] == "GBP_USD"
        client.close()


def test_hold_and_release_fills(venue: OandaVenue, api: oandapyV20.API) -> None:
    a = place(
        api,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "10",
            "price": "1.07000",
            "clientExtensions": {"id": "ha"},
        },
    )
    b = place(
        api,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "20",
            "price": "1.07000",
            "clientExtensions": {"id": "hb"},
        },
    )
    venue.hold_fills()
    venue.set_price("EUR_USD", D("1.06000"))
    assert [o["state"] for o in venue.orders()] == ["PENDING", "PENDING"]
    api.request(orders.OrderCancel(venue.account_id, "@hb"))  # the cancel wins
    assert venue.release_fills() == 1
    states = {o["id"]: o["state"] for o in venue.orders()}
    assert states == {
        a["orderCreateTransaction"]["id"]: "FILLED",
        b["orderCreateTransaction"]["id"]: "CANCELLED",
    }
    assert venue.positions() == {"EUR_USD": D(10)}


def test_down_refuses_connections_until_up(venue: OandaVenue, api: oandapyV20.API) -> None:
    client = httpx.Client(headers=headers(venue), timeout=10)
    with client.stream("GET", account_url(venue, "transactions/stream")) as r:
        lines = r.iter_lines()
        read_until(lines, "HEARTBEAT")
        venue.down()
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            for _ in range(1000):
                next(lines)
    client.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(account_url(venue, "summary"), headers=headers(venue))
    admin = httpx.post(f"{venue.admin_url}/up", json={})
    assert admin.json() == {"ok": True, "result": None}
    assert (
        api.request(accounts.AccountSummary(venue.account_id))["account"]["id"] == venue.account_id
    )


def test_admin_knobs_by_their_python_names(venue: OandaVenue) -> None:
    knobs = httpx.get(f"{venue.admin_url}/knobs").json()
    names = {k["name"] for k in knobs}
    assert {
        "set_price",
        "stall_streams",
        "drop_streams",
        "rate_limit",
        "fail_requests",
        "lose_next_response",
        "hold_requests",
        "release_requests",
        "duplicate_transactions",
        "corrupt_next_line",
        "cross_next_price",
        "corrupt_next_answer",
        "hold_fills",
        "release_fills",
        "down",
        "up",
        "clear_faults",
        "step",
        "freeze_prices",
        "charge_financing",
    } <= names
    assert httpx.post(
        f"{venue.admin_url}/set_price", json={"instrument": "EUR_USD", "price": "1.2"}
    ).json()["ok"]
    assert venue.quote("EUR_USD")[0] < D("1.2") < venue.quote("EUR_USD")[1]
    refused_call = httpx.post(
        f"{venue.admin_url}/set_price", json={"instrument": "XAU_EUR", "price": "1"}
    )
    assert refused_call.status_code == 400
    assert httpx.post(f"{venue.admin_url}/rate_limit", json={"count": 1}).json()["ok"]
    state = httpx.get(f"{venue.admin_url}/state").json()
    assert state["faults"]["requests"][0]["kind"] == "rate"
    assert DEFAULT_OANDA_TOKEN not in json.dumps(state)


# ---------------------------------------------------- OANDA's own v20 library


def test_oandas_v20_library_drives_the_fake(venue: OandaVenue) -> None:
    v20 = pytest.importorskip("v20")
    context = v20.Context("127.0.0.1", venue.port, ssl=False, token=venue.token, stream_timeout=10)
    created = context.order.market(venue.account_id, instrument="EUR_USD", units=100)
    assert created.status == 201
    assert created.get("orderFillTransaction", 201).units == 100
    context.order.limit(venue.account_id, instrument="EUR_USD", units=5, price="1.00000")
    pending = context.order.list_pending(venue.account_id)
    assert [o.type for o in pending.get("orders", 200)] == ["LIMIT"]
    stream = context.transaction.stream(venue.account_id)
    parts = stream.parts()
    kind, beat = next(parts)
    assert kind == "transaction.TransactionHeartbeat"
    context.order.market(venue.account_id, instrument="EUR_USD", units=-100)
    types = []
    for kind, message in parts:
        assert kind.startswith("transaction.")
        types.append(message.type)
        if message.type == "ORDER_FILL":
            break
    assert types[-2:] == ["MARKET_ORDER", "ORDER_FILL"]
    assert beat.lastTransactionID == "5"


# -------------------------------------------------------------- the command


def test_the_oanda_command_serves_until_sigterm() -> None:
    """``tradenode venue oanda``, found through the tradenode.venue_commands entry point."""
    env = dict(os.environ, TRADENODE_FAKE_OANDA_TOKEN="secret-from-env")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradenode",
            "venue",
            "oanda",
            "--port",
            "0",
            "--seed",
            "3",
            "--heartbeat-interval",
            "0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        assert set(urls) == {"rest", "stream", "admin", "account"}
        answer = httpx.get(
            f"{urls['rest']}/v3/accounts/{urls['account']}/summary",
            headers={"Authorization": "Bearer secret-from-env"},
        )
        assert (
            answer.status_code == 200 and answer.json()["account"]["id"] == DEFAULT_OANDA_ACCOUNT_ID
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "secret-from-env" not in out + err


def test_spread_and_depth_are_settable(clock: Clock) -> None:
    """``spread_bps=0``: bid equals ask, and a resting buy fills when the mid reaches
    its price; ``level_quantity`` is what each book level shows."""
    with OandaVenue(
        seed=1, clock=clock, spread_bps=D(0), level_quantity=D(5000), heartbeat_interval=0.05
    ) as flat:
        bid, ask = flat.quote("EUR_USD")
        assert bid == ask == D("1.08000")
        answer = httpx.post(
            f"{flat.rest_url}/v3/accounts/{flat.account_id}/orders",
            headers={"Authorization": f"Bearer {flat.token}"},
            json={
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "1000",
                    "price": "1.07500",
                    "clientExtensions": {"id": "flat-1"},
                }
            },
        )
        assert answer.status_code == 201
        flat.set_price("EUR_USD", D("1.07500"))
        assert flat.positions() == {"EUR_USD": D(1000)}
        prices = httpx.get(
            f"{flat.rest_url}/v3/accounts/{flat.account_id}/pricing",
            params={"instruments": "EUR_USD"},
            headers={"Authorization": f"Bearer {flat.token}"},
        ).json()["prices"][0]
        assert [level["liquidity"] for level in prices["bids"]] == [5000] * len(prices["bids"])
    with OandaVenue(seed=1, clock=clock, heartbeat_interval=0.05) as default:
        bid, ask = default.quote("EUR_USD")
        assert bid < ask
