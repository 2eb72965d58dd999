"""The local Alpaca (``tradenode.testing.venues.AlpacaVenue``) driven by Alpaca's own SDK.

alpaca-py's ``TradingClient``, ``TradingStream`` and ``StockDataStream`` talk to
the fake unchanged but for ``url_override``: if the venue's shapes drift from
Alpaca's, the SDK's strict pydantic models fail here. The streams run their
own asyncio loop, so each runs in a thread of its own; tests wait on the
venue's conditions (:meth:`AlpacaVenue.wait_for`) and on events, never on time.
A few checks use a raw WebSocket where alpaca-py cannot say what is meant
(the JSON market-data codec, auth refusals, dropped connections).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import msgpack
import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.live import StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopOrderRequest,
    TrailingStopOrderRequest,
)
from alpaca.trading.stream import TradingStream
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tradenode.testing.venues import AlpacaVenue

D = Decimal
# Wednesday 2 December 2026, 10:00 in New York (15:00 UTC): the regular session.
WEDNESDAY_10AM_MS = int(datetime(2026, 12, 2, 15, 0, tzinfo=UTC).timestamp() * 1000)


class Clock:
    """The venue's clock in epoch ms, moved only by the test."""

    def __init__(self, ms: int = WEDNESDAY_10AM_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def venue(clock: Clock) -> Iterator[AlpacaVenue]:
    with AlpacaVenue(seed=5, clock=clock) as venue:
        yield venue


def trading_client(venue: AlpacaVenue, *, secret: str | None = None) -> TradingClient:
    client = TradingClient(
        venue.api_key, secret or venue.secret, paper=True, url_override=venue.rest_url
    )
    client._retry = 0  # alpaca-py retries 429/504 three times with 3 s sleeps
    return client


@dataclass
class Collected:
    """What a stream handler received, with a condition to wait on."""

    items: list[Any] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handler(self, item: Any) -> None:
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[list[Any]], bool], timeout: float = 10.0) -> list[Any]:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"stream condition not met; got {self.items!r}")
            return list(self.items)

    def events(self) -> list[str]:
        with self.changed:
            return [str(getattr(u.event, "value", u.event)) for u in self.items]


@contextlib.contextmanager
def running(venue: AlpacaVenue, stream: Any, ready: Callable[[], bool]) -> Iterator[None]:
    """Run an alpaca-py stream in a thread until the block ends, then stop it cleanly."""
    thread = threading.Thread(target=stream.run, name="alpaca-py-stream", daemon=True)
    thread.start()
    try:
        venue.wait_for(ready)
        yield
    finally:
        stream.stop()
        # alpaca-py looks at its stop request between receives (5 s timeouts); cutting
        # the socket wakes it at once, and a stopped stream does not reconnect.
        venue.drop_streams()
        thread.join(15)
        assert not thread.is_alive(), "the alpaca-py stream did not stop"


@pytest.fixture
def trade_updates(venue: AlpacaVenue) -> Iterator[Collected]:
    """alpaca-py's TradingStream listening to the venue, its TradeUpdates collected."""
    collected = Collected()
    stream = TradingStream(venue.api_key, venue.secret, url_override=venue.stream_url)
    stream.subscribe_trade_updates(collected.handler)
    with running(venue, stream, lambda: venue.trade_listeners() == 1):
        yield collected


def ev(update: TradeUpdate) -> str:
    """A TradeUpdate's event name (alpaca-py keeps events it does not know as ``str``)."""
    return str(getattr(update.event, "value", update.event))


def updates_of(collected: Collected, order_id: object) -> list[TradeUpdate]:
    return [u for u in collected.items if str(u.order.id) == str(order_id)]


def buy_market(client: TradingClient, qty: float, cid: str, symbol: str = "AAPL") -> Order:
    order = client.submit_order(
        MarketOrderRequest(
            symbol=symbol,
            qty=qty,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            client_order_id=cid,
        )
    )
    assert isinstance(order, Order)
    return order


def buy_limit(
    client: TradingClient, qty: float, price: float, cid: str, tif: TimeInForce = TimeInForce.GTC
) -> Order:
    order = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=qty,
            side=OrderSide.BUY,
            time_in_force=tif,
            limit_price=price,
            client_order_id=cid,
        )
    )
    assert isinstance(order, Order)
    return order


# ------------------------------------------------------------ trading REST


def test_account_assets_clock_and_calendar_parse_in_alpaca_py(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    account = client.get_account()
    assert account.status.value == "ACTIVE"
    assert account.cash == "100000" and account.buying_power == "100000"
    assets = {asset.symbol: asset for asset in client.get_all_assets()}
    assert set(assets) == {"AAPL", "MSFT", "SPY", "SIRI"}
    assert assets["AAPL"].fractionable and not assets["SIRI"].fractionable
    assert assets["AAPL"].min_trade_increment == pytest.approx(1e-9)
    assert client.get_asset("AAPL").price_increment == pytest.approx(0.01)
    with pytest.raises(APIError) as unknown:
        client.get_asset("NOPE")
    assert unknown.value.status_code == 404 and unknown.value.code == 40410000
    market_clock = client.get_clock()
    assert market_clock.is_open
    assert market_clock.next_close == datetime(2026, 12, 2, 21, 0, tzinfo=UTC)
    assert market_clock.next_open == datetime(2026, 12, 3, 14, 30, tzinfo=UTC)
    days = {day.date.isoformat(): day for day in client.get_calendar()}
    assert days and all(day.date.weekday() < 5 for day in days.values())
    assert all(day.open.hour == 9 and day.open.minute == 30 for day in days.values())
    assert days["2026-12-02"].close.hour == 16 and days["2026-12-24"].close.hour == 13
    assert "2026-12-25" not in days and "2026-11-26" not in days  # Christmas, Thanksgiving


def test_a_market_order_fills_and_trade_updates_carry_each_execution(
    venue: AlpacaVenue, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    order = buy_market(client, 3, "m-1")
    assert order.status is OrderStatus.ACCEPTED and order.filled_qty == "0"
    assert order.client_order_id == "m-1"
    updates = trade_updates.wait(lambda items: len(items) >= 2)
    assert [ev(u) for u in updates] == ["new", "fill"]
    fill = updates[1]
    assert fill.execution_id == uuid.UUID(venue.fills()[0].execution_id)
    assert fill.qty == 3 and fill.position_qty == 3
    assert fill.price == float(venue.fills()[0].price)
    assert fill.order.status is OrderStatus.FILLED and fill.order.filled_qty == "3"
    assert client.get_order_by_client_id("m-1").status is OrderStatus.FILLED
    [position] = client.get_all_positions()
    assert position.symbol == "AAPL" and position.qty == "3" and position.side.value == "long"
    assert venue.positions() == {"AAPL": D(3)}
    assert venue.submissions() == {"m-1": 1}


def test_partial_fills_each_with_its_own_execution(
    venue: AlpacaVenue, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    order = buy_limit(client, 150, 180.0, "p-1")
    trade_updates.wait(lambda items: len(items) >= 1)
    venue.set_price("AAPL", D("179.90"))  # one book level (100 shares) fills at the limit
    first = trade_updates.wait(lambda items: len(items) >= 2)[1]
    assert ev(first) == "partial_fill" and first.qty == 100 and first.price == 180.0
    assert first.order.status is OrderStatus.PARTIALLY_FILLED and first.order.filled_qty == "100"
    venue.set_price("AAPL", D("179.80"))
    second = trade_updates.wait(lambda items: len(items) >= 3)[2]
    assert ev(second) == "fill" and second.qty == 50 and second.position_qty == 150
    assert first.execution_id != second.execution_id
    final = client.get_order_by_id(order.id)
    assert final.status is OrderStatus.FILLED and final.filled_avg_price == "180"
    rows = client.get("/account/activities/FILL", {"direction": "asc"})
    assert [(r["type"], r["qty"], r["cum_qty"], r["leaves_qty"]) for r in rows] == [
        ("partial_fill", "100", "100", "50"),
        ("fill", "50", "150", "0"),
    ]
    assert all(r["order_id"] == str(order.id) for r in rows)


def test_the_fill_activities_page_with_page_token(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    for n in range(3):
        buy_market(client, 1, f"a-{n}")
    first = client.get("/account/activities/FILL", {"direction": "asc", "page_size": 2})
    assert len(first) == 2
    rest = client.get(
        "/account/activities/FILL",
        {"direction": "asc", "page_size": 2, "page_token": first[-1]["id"]},
    )
    assert len(rest) == 1
    ids = [row["id"] for row in first + rest]
    assert ids == [fill.activity_id for fill in venue.fills()]
    assert all("::" in row_id for row_id in ids)
    assert client.get("/account/activities/FILL")[0]["id"] == ids[-1]  # default: newest first
    with pytest.raises(APIError) as bad:
        client.get("/account/activities/NOPE")
    assert bad.value.status_code == 422


def test_corrupt_next_fills_spoils_one_activities_answer(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    buy_market(client, 1, "z-1")
    assert "corrupt_next_fills" in AlpacaVenue.KNOBS
    spoil = {"field": "price", "value": "0"}
    assert httpx.post(f"{venue.admin_url}/corrupt_next_fills", json=spoil).json()["ok"]
    assert client.get("/account/activities/FILL", {"direction": "asc"})[0]["price"] == "0"
    assert client.get("/account/activities/FILL", {"direction": "asc"})[0]["price"] != "0"
    assert venue.fills()[0].price > 0  # only the answer was spoiled


def test_order_validation_answers_as_alpaca(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    buy_market(client, 1, "dup")

    def refused(body: dict[str, Any]) -> APIError:
        with pytest.raises(APIError) as error:
            client.post("/orders", body)
        return error.value

    duplicate = refused(
        {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "dup",
        }
    )
    assert (duplicate.status_code, duplicate.code) == (422, 40010001)
    assert duplicate.message == "client_order_id must be unique"
    sub_penny = refused(
        {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "time_in_force": "day",
            "limit_price": "190.123",
        }
    )
    assert (sub_penny.status_code, sub_penny.code) == (422, 42210000)
    assert "sub-penny" in sub_penny.message
    fractional_gtc = refused(
        {"symbol": "AAPL", "qty": "0.5", "side": "buy", "type": "market", "time_in_force": "gtc"}
    )
    assert fractional_gtc.status_code == 422
    not_fractionable = refused(
        {"symbol": "SIRI", "qty": "1.5", "side": "buy", "type": "market", "time_in_force": "day"}
    )
    assert "not fractionable" in not_fractionable.message
    both = refused(
        {
            "symbol": "AAPL",
            "qty": "1",
            "notional": "100",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
        }
    )
    assert both.status_code == 422
    extended_market = refused(
        {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "extended_hours": True,
        }
    )
    assert (extended_market.status_code, extended_market.code) == (422, 40010001)
    assert extended_market.message == 'only type="limit" is allowed for extended hours orders'
    extended_gtc = refused(
        {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "limit",
            "time_in_force": "gtc",
            "limit_price": "190",
            "extended_hours": "true",
        }
    )
    assert extended_gtc.message == "extended hours order must be DAY limit orders"
    too_long = refused(
        {
            "symbol": "AAPL",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "x" * 129,
        }
    )
    assert too_long.status_code == 422
    broke = refused(
        {"symbol": "AAPL", "qty": "10000", "side": "buy", "type": "market", "time_in_force": "day"}
    )
    assert (broke.status_code, broke.code) == (403, 40310000)
    assert json.loads(str(broke))["buying_power"]
    short_unshortable = refused(
        {"symbol": "SIRI", "qty": "5", "side": "sell", "type": "market", "time_in_force": "day"}
    )
    assert short_unshortable.status_code == 403 and "insufficient qty" in short_unshortable.message
    assert [o.client_order_id for o in venue.orders()] == ["dup"]
    assert venue.submissions()["dup"] == 2


def test_fractional_and_notional_orders(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    fractional = client.submit_order(
        MarketOrderRequest(
            symbol="AAPL", qty=0.25, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )
    assert isinstance(fractional, Order) and fractional.qty == "0.25"
    notional = client.submit_order(
        MarketOrderRequest(
            symbol="SPY", notional=1000, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        )
    )
    assert isinstance(notional, Order) and notional.notional == "1000" and notional.qty is None
    filled = client.get_order_by_id(notional.id)
    assert filled.status is OrderStatus.FILLED
    assert D(str(filled.filled_qty)) * D(str(filled.filled_avg_price)) <= D(1000)
    assert venue.positions()["AAPL"] == D("0.25")


def test_stop_and_trailing_stop_orders_wait_for_their_trigger(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    buy_market(client, 10, "base")
    stop = client.submit_order(
        StopOrderRequest(
            symbol="AAPL",
            qty=10,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            stop_price=185.0,
        )
    )
    trailing = client.submit_order(
        TrailingStopOrderRequest(
            symbol="AAPL",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            trail_price=2.0,
        )
    )
    assert isinstance(stop, Order) and isinstance(trailing, Order)
    assert client.get_order_by_id(stop.id).status is OrderStatus.NEW
    venue.set_price("AAPL", D("184.90"))
    assert client.get_order_by_id(stop.id).status is OrderStatus.FILLED
    trailing_now = client.get_order_by_id(trailing.id)
    assert trailing_now.stop_price == "186.9" and trailing_now.hwm == "184.9"
    venue.set_price("AAPL", D("187.00"))
    assert client.get_order_by_id(trailing.id).status is OrderStatus.FILLED


def test_list_orders_filters_as_alpaca(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    buy_market(client, 1, "closed-1")
    buy_limit(client, 1, 150.0, "open-1")
    buy_limit(client, 1, 151.0, "open-2")
    open_ids = [o.client_order_id for o in client.get_orders()]
    assert open_ids == ["open-2", "open-1"]  # default: open, newest first
    everything = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc"))
    assert [o.client_order_id for o in everything] == ["closed-1", "open-1", "open-2"]
    closed = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [o.client_order_id for o in closed] == ["closed-1"]
    limited = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1))
    assert [o.client_order_id for o in limited] == ["open-2"]
    assert client.get_orders(GetOrdersRequest(symbols=["MSFT"])) == []
    with pytest.raises(APIError) as missing:
        client.get_order_by_client_id("never")
    assert missing.value.status_code == 404 and missing.value.code == 40410000


# ----------------------------------------------------- replace and cancel


def test_replace_is_a_new_order_linked_to_the_old_one(
    venue: AlpacaVenue, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    old = buy_limit(client, 10, 180.0, "r-old")
    trade_updates.wait(lambda items: len(items) >= 1)
    new = client.replace_order_by_id(
        old.id, ReplaceOrderRequest(qty=8, limit_price=181.0, client_order_id="r-new")
    )
    assert isinstance(new, Order)
    assert new.id != old.id and str(new.replaces) == str(old.id)
    assert new.client_order_id == "r-new" and new.qty == "8" and new.limit_price == "181"
    replaced = client.get_order_by_id(old.id)
    assert replaced.status is OrderStatus.REPLACED and str(replaced.replaced_by) == str(new.id)
    assert replaced.replaced_at is not None
    updates = trade_updates.wait(lambda items: len(items) >= 4)
    assert [(ev(u), str(u.order.id)) for u in updates[1:4]] == [
        ("pending_replace", str(old.id)),
        ("replaced", str(old.id)),
        ("new", str(new.id)),
    ]
    assert str(updates[2].order.replaced_by) == str(new.id)
    with pytest.raises(APIError) as again:
        client.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=182.0))
    assert again.value.status_code == 422 and "replaced" in again.value.message
    with pytest.raises(APIError) as unchanged:
        client.patch(f"/orders/{new.id}", {})
    assert unchanged.value.status_code == 403


def test_a_replace_that_loses_the_race_leaves_the_old_filled_and_the_new_rejected(
    venue: AlpacaVenue, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    old = buy_limit(client, 150, 180.0, "race-old")
    venue.race_next_replace()
    new = client.replace_order_by_id(
        old.id, ReplaceOrderRequest(qty=150, limit_price=181.0, client_order_id="race-new")
    )
    assert isinstance(new, Order) and str(new.replaces) == str(old.id)
    assert client.get_order_by_id(old.id).status is OrderStatus.FILLED
    assert client.get_order_by_id(new.id).status is OrderStatus.REJECTED
    updates = trade_updates.wait(lambda items: bool(items) and ev(items[-1]) == "rejected")
    assert [ev(u) for u in updates] == [
        "new",
        "pending_replace",
        "partial_fill",
        "fill",
        "rejected",
    ]
    assert str(updates[-1].order.id) == str(new.id)
    assert venue.positions() == {"AAPL": D(150)}
    assert venue.exchange.last_price("AAPL") == D("190.00")


def test_cancel_answers_204_and_a_terminal_order_is_not_cancelable(
    venue: AlpacaVenue, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    resting = buy_limit(client, 1, 170.0, "c-rest")
    assert client.cancel_order_by_id(resting.id) is None
    updates = trade_updates.wait(lambda items: bool(items) and ev(items[-1]) == "canceled")
    assert updates[-1].order.canceled_at is not None
    filled = buy_market(client, 1, "c-done")
    with pytest.raises(APIError) as terminal:
        client.cancel_order_by_id(filled.id)
    assert terminal.value.status_code == 422 and terminal.value.code == 42210000
    assert terminal.value.message == 'order is already in "filled" state'
    with pytest.raises(APIError) as unknown:
        client.cancel_order_by_id("d56ba3ea-6d04-48ce-8175-817e242ee608")
    assert unknown.value.status_code == 404


def test_cancel_all_is_a_207_with_the_failures_the_knob_asks_for(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    orders = [buy_limit(client, 1, 170.0 + n, f"ca-{n}") for n in range(3)]
    venue.fail_cancel_all_for(order_id=str(orders[1].id))
    response = httpx.delete(
        f"{venue.rest_url}/v2/orders",
        headers={"APCA-API-KEY-ID": venue.api_key, "APCA-API-SECRET-KEY": venue.secret},
    )
    assert response.status_code == 207
    items = {item["id"]: item for item in response.json()}
    assert items[str(orders[1].id)]["status"] == 500
    assert items[str(orders[1].id)]["body"]["code"] == 50010000
    assert items[str(orders[0].id)]["status"] == 200 == items[str(orders[2].id)]["status"]
    assert [o.client_order_id for o in client.get_orders()] == ["ca-1"]
    parsed = client.cancel_orders()  # alpaca-py's own model of the 207 answer
    assert [(str(r.id), r.status) for r in parsed] == [(str(orders[1].id), 200)]


def test_fail_cancel_all_for_a_count_and_clear_faults(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    orders = [buy_limit(client, 1, 170.0 + n, f"cc-{n}") for n in range(3)]
    venue.fail_cancel_all_for(count=2)
    answers = client.cancel_orders()
    assert [(str(a.id), a.status) for a in answers] == [
        (str(orders[0].id), 500),
        (str(orders[1].id), 500),
        (str(orders[2].id), 200),
    ]
    venue.fail_requests(1)
    venue.rate_limit(1)
    venue.drop_events(3)
    venue.clear_faults()
    assert httpx.get(f"{venue.admin_url}/faults").json()["requests"] == []
    assert [a.status for a in client.cancel_orders()] == [200, 200]
    with pytest.raises(ValueError, match="order_id or a count"):
        venue.fail_cancel_all_for()


def test_step_moves_prices_by_the_seeded_walk(clock: Clock) -> None:
    paths = []
    for _ in range(2):
        with AlpacaVenue(seed=9, clock=clock) as venue:
            venue.step(5)
            paths.append([venue.exchange.last_price(s) for s in ("AAPL", "MSFT", "SPY")])
    assert paths[0] == paths[1] and paths[0] != [D("190.00"), D("420.00"), D("500.00")]


def test_close_position_sells_it_flat(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    buy_market(client, 4, "cp-1")
    closing = client.close_position("AAPL")
    assert isinstance(closing, Order) and closing.side is OrderSide.SELL and closing.qty == "4"
    assert venue.positions() == {}
    with pytest.raises(APIError) as flat:
        client.get_open_position("AAPL")
    assert flat.value.status_code == 404 and flat.value.message == "position does not exist"


def test_close_all_positions_is_a_207_alpaca_py_parses(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    buy_market(client, 3, "cap-1")
    buy_market(client, 2, "cap-2", symbol="MSFT")
    resting = buy_limit(client, 1, 150.0, "cap-rest")
    answers = client.close_all_positions(cancel_orders=True)
    assert sorted((a.symbol, a.status) for a in answers) == [("AAPL", 200), ("MSFT", 200)]
    assert all(isinstance(a.body, Order) and a.body.side is OrderSide.SELL for a in answers)
    assert client.get_order_by_id(resting.id).status is OrderStatus.CANCELED
    assert venue.positions() == {}
    assert client.get_all_positions() == []


# --------------------------------------------------------------- auth


def test_bad_keys_are_refused_on_rest_and_both_streams(venue: AlpacaVenue) -> None:
    with pytest.raises(APIError) as refused:
        trading_client(venue, secret="wrong").get_account()
    assert refused.value.status_code == 401
    assert "wrong" not in str(refused.value)
    with connect(venue.stream_url) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        early = json.loads(ws.recv(timeout=5))
        assert early == {
            "stream": "authorization",
            "data": {"status": "unauthorized", "action": "listen"},
        }
        ws.send(
            json.dumps(
                {"action": "authenticate", "data": {"key_id": venue.api_key, "secret_key": "no"}}
            )
        )
        answer = ws.recv(timeout=5)
        assert isinstance(answer, bytes)  # paper sends trade_updates in binary frames
        assert json.loads(answer)["data"]["status"] == "unauthorized"
    with connect(venue.data_stream_url("iex")) as ws:
        assert json.loads(ws.recv(timeout=5)) == [{"T": "success", "msg": "connected"}]
        ws.send(json.dumps({"action": "subscribe", "quotes": ["AAPL"]}))
        assert json.loads(ws.recv(timeout=5))[0]["code"] == 401
        ws.send(json.dumps({"action": "auth", "key": venue.api_key, "secret": "no"}))
        assert json.loads(ws.recv(timeout=5)) == [{"T": "error", "code": 402, "msg": "auth failed"}]


# --------------------------------------------------------- market data


def test_stock_data_stream_in_msgpack_gets_quotes_trades_and_bars(venue: AlpacaVenue) -> None:
    received = Collected()
    stream = StockDataStream(venue.api_key, venue.secret, url_override=venue.data_stream_url("iex"))
    stream.subscribe_quotes(received.handler, "AAPL")
    stream.subscribe_trades(received.handler, "AAPL")
    stream.subscribe_bars(received.handler, "AAPL")
    with running(venue, stream, lambda: venue.data_subscribers("bars", "AAPL") == 1):
        venue.set_price("AAPL", D("191.50"))
        venue.publish_bar("AAPL")
        items = received.wait(lambda got: any(type(x).__name__ == "Bar" for x in got))
    kinds = [type(item).__name__ for item in items]
    assert kinds[:4] == ["Quote", "Trade", "Quote", "Bar"]  # subscribe's snapshot, then the move
    quote = items[2]
    assert quote.symbol == "AAPL" and quote.bid_price < 191.5 < quote.ask_price
    assert quote.timestamp == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert items[1].price == 191.5
    assert items[3].close == 191.5 and items[3].open == 190.0


def test_market_data_json_codec_and_subscription_acks(venue: AlpacaVenue) -> None:
    with connect(venue.data_stream_url("sip")) as ws:
        assert json.loads(ws.recv(timeout=5)) == [{"T": "success", "msg": "connected"}]
        ws.send(json.dumps({"action": "auth", "key": venue.api_key, "secret": venue.secret}))
        assert json.loads(ws.recv(timeout=5)) == [{"T": "success", "msg": "authenticated"}]
        ws.send(json.dumps({"action": "subscribe", "trades": ["MSFT"], "quotes": ["AAPL"]}))
        ack = json.loads(ws.recv(timeout=5))[0]
        assert ack["T"] == "subscription" and ack["trades"] == ["MSFT"]
        assert ack["quotes"] == ["AAPL"] and ack["bars"] == []
        snapshot = json.loads(ws.recv(timeout=5))[0]
        assert snapshot["T"] == "q" and snapshot["t"] == "2026-12-02T15:00:00.000000000Z"
        ws.send(json.dumps({"action": "unsubscribe", "quotes": ["AAPL"]}))
        assert json.loads(ws.recv(timeout=5))[0]["quotes"] == []
        venue.set_price("MSFT", D("421"))
        trade = json.loads(ws.recv(timeout=5))
        assert trade[0]["T"] == "t" and trade[0]["S"] == "MSFT" and trade[0]["p"] == 421.0


def test_one_market_data_connection_per_feed(venue: AlpacaVenue) -> None:
    auth = json.dumps({"action": "auth", "key": venue.api_key, "secret": venue.secret})
    with connect(venue.data_stream_url("iex")) as first:
        first.recv(timeout=5)
        first.send(auth)
        assert json.loads(first.recv(timeout=5))[0]["msg"] == "authenticated"
        with connect(venue.data_stream_url("iex")) as second:
            second.recv(timeout=5)
            second.send(auth)
            assert json.loads(second.recv(timeout=5)) == [
                {"T": "error", "code": 406, "msg": "connection limit exceeded"}
            ]
        with connect(venue.data_stream_url("sip")) as other_feed:
            other_feed.recv(timeout=5)
            other_feed.send(auth)
            assert json.loads(other_feed.recv(timeout=5))[0]["msg"] == "authenticated"


def test_market_data_header_auth_and_msgpack_timestamps(venue: AlpacaVenue) -> None:
    headers = {
        "Content-Type": "application/msgpack",
        "APCA-API-KEY-ID": venue.api_key,
        "APCA-API-SECRET-KEY": venue.secret,
    }
    with connect(venue.data_stream_url("iex"), additional_headers=headers) as ws:
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{"T": "success", "msg": "connected"}]
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{"T": "success", "msg": "authenticated"}]
        ws.send(msgpack.packb({"action": "subscribe", "quotes": ["*"]}))
        assert msgpack.unpackb(ws.recv(timeout=5))[0]["quotes"] == ["*"]
        venue.set_price("SPY", D("501"))
        [quote] = msgpack.unpackb(ws.recv(timeout=5), timestamp=0)
        assert quote["S"] == "SPY" and isinstance(quote["t"], msgpack.Timestamp)


# ------------------------------------------------------------ market clock


def test_orders_outside_the_session_are_queued_until_the_open(
    venue: AlpacaVenue, clock: Clock, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    venue.set_time("2026-12-05T12:00:00-05:00")  # a Saturday
    assert not client.get_clock().is_open
    queued = buy_market(client, 2, "q-1")
    assert client.get_order_by_id(queued.id).status is OrderStatus.ACCEPTED
    assert venue.fills() == []
    clock.ms += 2 * 86_400_000  # Monday 12:00 in New York: the next look opens the market
    assert client.get_clock().is_open
    assert client.get_order_by_id(queued.id).status is OrderStatus.FILLED
    events = trade_updates.wait(lambda items: len(items) >= 2)
    assert [ev(u) for u in events] == ["new", "fill"]


def test_day_orders_expire_at_the_close_and_extended_hours_limits_trade_after_it(
    venue: AlpacaVenue, trade_updates: Collected
) -> None:
    client = trading_client(venue)
    day = buy_limit(client, 1, 170.0, "d-day", TimeInForce.DAY)
    gtc = buy_limit(client, 1, 170.0, "d-gtc", TimeInForce.GTC)
    venue.set_time("2026-12-02T16:30:00-05:00")  # after-hours
    assert client.get_order_by_id(day.id).status.value == "expired"
    assert client.get_order_by_id(gtc.id).status is OrderStatus.NEW
    assert trade_updates.wait(lambda items: any(ev(u) == "expired" for u in items))
    regular = buy_limit(client, 1, 200.0, "d-queued", TimeInForce.DAY)
    assert client.get_order_by_id(regular.id).status is OrderStatus.ACCEPTED  # waits for the open
    extended = client.submit_order(
        LimitOrderRequest(
            symbol="AAPL",
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=200.0,
            extended_hours=True,
            client_order_id="d-ext",
        )
    )
    assert isinstance(extended, Order)
    assert client.get_order_by_id(extended.id).status is OrderStatus.FILLED
    venue.set_market_open(True)
    assert client.get_order_by_id(regular.id).status is OrderStatus.FILLED
    venue.set_market_open(None)  # back to the clock: 16:30, the regular session is over
    assert not client.get_clock().is_open


def test_opg_and_cls_orders_wait_for_the_open_and_the_close(venue: AlpacaVenue) -> None:
    client = trading_client(venue)

    def auction_order(tif: TimeInForce, cid: str) -> Order:
        order = client.submit_order(
            MarketOrderRequest(
                symbol="AAPL", qty=2, side=OrderSide.BUY, time_in_force=tif, client_order_id=cid
            )
        )
        assert isinstance(order, Order)
        return order

    with pytest.raises(APIError) as too_late:  # 10:00: the opening auction has gone
        auction_order(TimeInForce.OPG, "opg-late")
    assert too_late.value.status_code == 422
    assert too_late.value.message == "opg orders must be submitted after 7:00pm and before 9:28am"
    at_close = auction_order(TimeInForce.CLS, "cls-1")
    assert client.get_order_by_id(at_close.id).status is OrderStatus.ACCEPTED
    venue.set_time("2026-12-02T16:00:01-05:00")
    assert client.get_order_by_id(at_close.id).status is OrderStatus.FILLED
    venue.set_time("2026-12-02T20:00:00-05:00")
    at_open = auction_order(TimeInForce.OPG, "opg-1")
    venue.set_time("2026-12-03T09:00:00-05:00")  # pre-market: still waiting
    assert client.get_order_by_id(at_open.id).status is OrderStatus.ACCEPTED
    venue.set_time("2026-12-03T09:30:00-05:00")
    assert client.get_order_by_id(at_open.id).status is OrderStatus.FILLED
    assert venue.positions() == {"AAPL": D(4)}


def test_the_market_clock_knows_nyse_holidays_and_early_closes(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    venue.set_time("2026-11-26T10:00:00-05:00")  # Thanksgiving
    thanksgiving = client.get_clock()
    assert not thanksgiving.is_open
    assert thanksgiving.next_open == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    assert thanksgiving.next_close == datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 13:00
    queued = buy_market(client, 1, "hol-1")
    venue.set_time("2026-11-27T12:59:00-05:00")
    assert client.get_order_by_id(queued.id).status is OrderStatus.FILLED
    venue.set_time("2026-11-27T13:00:00-05:00")
    assert not client.get_clock().is_open
    days = client.get("/calendar", {"start": "2026-11-25", "end": "2026-11-30"})
    assert [(d["date"], d["close"]) for d in days] == [
        ("2026-11-25", "16:00"),
        ("2026-11-27", "13:00"),
        ("2026-11-30", "16:00"),
    ]


def test_set_market_open_false_closes_and_expires_day_orders(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    day = buy_limit(client, 1, 170.0, "x-day", TimeInForce.DAY)
    venue.set_market_open(False)
    assert not client.get_clock().is_open
    assert client.get_order_by_id(day.id).status.value == "expired"
    assert venue.session().value == "closed"


# ------------------------------------------------------------- fault knobs


def test_rate_limit_answers_429_with_alpacas_headers(venue: AlpacaVenue, clock: Clock) -> None:
    headers = {"APCA-API-KEY-ID": venue.api_key, "APCA-API-SECRET-KEY": venue.secret}
    ok = httpx.get(f"{venue.rest_url}/v2/account", headers=headers)
    assert ok.headers["X-Ratelimit-Limit"] == "200"
    assert ok.headers["X-Ratelimit-Remaining"] == "199"
    venue.rate_limit(1, retry_after=7)
    limited = httpx.get(f"{venue.rest_url}/v2/account", headers=headers)
    assert limited.status_code == 429
    assert limited.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert limited.headers["X-Ratelimit-Remaining"] == "0"
    assert int(limited.headers["X-Ratelimit-Reset"]) == clock.ms // 1000 + 7
    assert "Retry-After" not in limited.headers
    venue.rate_limit(1, retry_after=1, header=True)
    with pytest.raises(APIError) as sdk:
        trading_client(venue).get_account()
    assert sdk.value.status_code == 429
    assert httpx.get(f"{venue.rest_url}/v2/account", headers=headers).status_code == 200


def test_rate_limits_enforce_200_requests_a_minute(clock: Clock) -> None:
    with AlpacaVenue(clock=clock, rate_limits=True) as venue:
        headers = {"APCA-API-KEY-ID": venue.api_key, "APCA-API-SECRET-KEY": venue.secret}
        with httpx.Client(base_url=venue.rest_url, headers=headers) as http:
            statuses = [http.get("/v2/clock").status_code for _ in range(201)]
            assert statuses[:200] == [200] * 200 and statuses[200] == 429
            clock.ms += 60_000
            assert http.get("/v2/clock").status_code == 200


def test_fail_requests_before_processing_places_nothing(venue: AlpacaVenue) -> None:
    venue.fail_requests(1, status=503, endpoints=["POST orders"])
    client = trading_client(venue)
    with pytest.raises(APIError) as failed:
        buy_market(client, 1, "f-1")
    assert failed.value.status_code == 503 and failed.value.code == 50010000
    assert venue.orders() == [] and venue.submissions() == {}
    buy_market(client, 1, "f-1")
    assert venue.submissions() == {"f-1": 1}


def test_a_lost_answer_leaves_the_order_placed_and_findable_by_client_id(
    venue: AlpacaVenue,
) -> None:
    venue.fail_requests(1, after=True, endpoints=["POST orders"])
    client = trading_client(venue)
    with pytest.raises(requests.ConnectionError):
        buy_market(client, 1, "lost-1")
    found = client.get_order_by_client_id("lost-1")
    assert found.status is OrderStatus.FILLED
    assert venue.submissions() == {"lost-1": 1}


def test_delay_requests_holds_a_placement_and_shows_it_held(venue: AlpacaVenue) -> None:
    venue.delay_requests(1, seconds=30, endpoints=["POST orders"])
    client = trading_client(venue)
    outcome: list[object] = []

    def place() -> None:
        try:
            outcome.append(buy_market(client, 1, "held-1"))
        except requests.ConnectionError as error:
            outcome.append(error)

    thread = threading.Thread(target=place)
    thread.start()
    try:
        venue.wait_for(lambda: bool(venue.held_requests()), timeout=10)
        assert venue.held_requests() == [{"endpoint": "POST orders", "client_order_id": "held-1"}]
        assert venue.orders() == []  # not acted on while held
        faults = httpx.get(f"{venue.admin_url}/faults").json()
        assert faults["held"] == venue.held_requests()
    finally:
        venue.down()  # ends the held request without an answer
        thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError)
    assert venue.orders() == [] and venue.held_requests() == []


def test_refuse_next_order(venue: AlpacaVenue) -> None:
    venue.refuse_next_order(403, "potential wash trade detected. use complex orders")
    client = trading_client(venue)
    with pytest.raises(APIError) as refused:
        buy_market(client, 1, "rf-1")
    assert refused.value.status_code == 403 and refused.value.code == 40310000
    assert refused.value.message == "potential wash trade detected. use complex orders"
    assert venue.orders() == [] and venue.submissions() == {"rf-1": 1}
    buy_market(client, 1, "rf-2")


@pytest.fixture
def raw_trade_stream(venue: AlpacaVenue) -> Iterator[ClientConnection]:
    with connect(venue.stream_url) as ws:
        ws.send(json.dumps({"action": "auth", "key": venue.api_key, "secret": venue.secret}))
        assert json.loads(ws.recv(timeout=5))["data"]["status"] == "authorized"
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates", "x"]}}))
        assert json.loads(ws.recv(timeout=5)) == {
            "stream": "listening",
            "data": {"streams": ["trade_updates"]},
        }
        yield ws


def next_update(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(ws.recv(timeout=5))
    assert message["stream"] == "trade_updates"
    data: dict[str, Any] = message["data"]
    return data


def test_duplicate_drop_and_reorder_events(
    venue: AlpacaVenue, raw_trade_stream: ClientConnection
) -> None:
    client = trading_client(venue)
    venue.duplicate_events(1)
    buy_market(client, 1, "e-1")
    new, again, fill = (next_update(raw_trade_stream) for _ in range(3))
    assert new == again and new["event"] == "new" and fill["event"] == "fill"
    venue.drop_events(1)
    buy_market(client, 1, "e-2")
    assert next_update(raw_trade_stream)["event"] == "fill"  # its "new" was lost
    venue.reorder_events(2)
    buy_market(client, 1, "e-3")
    first, second = next_update(raw_trade_stream), next_update(raw_trade_stream)
    assert (first["event"], second["event"]) == ("fill", "new")
    venue.reorder_events(5)
    buy_market(client, 1, "e-4")
    assert venue.release_events() == 2
    assert [next_update(raw_trade_stream)["event"] for _ in range(2)] == ["fill", "new"]
    venue.clear_faults()
    buy_market(client, 1, "e-5")
    assert [next_update(raw_trade_stream)["event"] for _ in range(2)] == ["new", "fill"]


def test_corrupt_next_event_kinds(venue: AlpacaVenue, raw_trade_stream: ClientConnection) -> None:
    client = trading_client(venue)
    venue.corrupt_next_event("invalid_json")
    buy_market(client, 1, "k-1")
    with pytest.raises(ValueError):
        json.loads(raw_trade_stream.recv(timeout=5))
    assert next_update(raw_trade_stream)["event"] == "fill"
    venue.corrupt_next_event("missing_field")
    venue.corrupt_next_event("unknown_event")
    buy_market(client, 1, "k-2")
    assert "order" not in next_update(raw_trade_stream)
    assert next_update(raw_trade_stream)["event"] == "tradenode_unknown_event"
    with pytest.raises(ValueError, match="kind must be one of"):
        venue.corrupt_next_event("nonsense")


def test_hold_fills_keeps_resting_orders_until_released(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    order = buy_limit(client, 10, 180.0, "h-1")
    venue.hold_fills()
    venue.set_price("AAPL", D("179"))
    assert client.get_order_by_id(order.id).status is OrderStatus.NEW
    assert venue.release_fills() == 1
    assert client.get_order_by_id(order.id).status is OrderStatus.FILLED


def test_drop_streams_cuts_without_a_close_frame_and_nothing_is_replayed(
    venue: AlpacaVenue, raw_trade_stream: ClientConnection
) -> None:
    assert venue.drop_streams() == 1
    with pytest.raises(ConnectionClosed) as closed:
        raw_trade_stream.recv(timeout=5)
    assert closed.value.rcvd is None  # no close frame: a network failure
    client = trading_client(venue)
    buy_market(client, 1, "ds-1")
    with connect(venue.stream_url) as again:
        again.send(json.dumps({"action": "auth", "key": venue.api_key, "secret": venue.secret}))
        again.recv(timeout=5)
        again.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        again.recv(timeout=5)
        venue.wait_for(lambda: venue.trade_listeners() == 1)
        buy_market(client, 1, "ds-2")
        new, fill = next_update(again), next_update(again)
        assert new["order"]["client_order_id"] == "ds-2"  # ds-1's events are gone
        assert (new["event"], fill["event"]) == ("new", "fill")


def test_down_refuses_connections_until_up(venue: AlpacaVenue) -> None:
    client = trading_client(venue)
    venue.down()
    with pytest.raises(requests.ConnectionError):
        client.get_account()
    venue.up()
    assert client.get_account().status.value == "ACTIVE"


def test_place_order_as_another_client_reaches_the_stream(
    venue: AlpacaVenue, raw_trade_stream: ClientConnection
) -> None:
    placed = venue.place_order(
        "MSFT",
        "buy",
        "limit",
        D(2),
        limit_price=D("400"),
        time_in_force="gtc",
        client_order_id="other-1",
    )
    assert placed["status"] == "accepted" and placed["client_order_id"] == "other-1"
    assert next_update(raw_trade_stream)["order"]["id"] == placed["id"]
    venue.cancel_order(placed["id"])
    assert next_update(raw_trade_stream)["event"] == "canceled"


def test_knobs_over_the_admin_port(venue: AlpacaVenue) -> None:
    base = venue.admin_url
    assert httpx.post(f"{base}/set_price", json={"symbol": "AAPL", "price": "195"}).json()["ok"]
    assert venue.exchange.last_price("AAPL") == D("195")
    assert httpx.post(f"{base}/set_market_open", json={"is_open": False}).json()["ok"]
    assert venue.session().value == "closed"
    bad = httpx.post(f"{base}/set_price", json={"symbol": "NOPE", "price": "1"})
    assert bad.status_code == 400 and "symbol" in bad.json()["error"]
    state = httpx.get(f"{base}/state").json()
    assert state["session"] == "closed" and state["orders"] == []
    assert venue.secret not in json.dumps(state) and venue.secret not in repr(venue)


# ---------------------------------------------------------- the command


def test_the_alpaca_command_prints_one_json_line_and_serves_until_sigterm() -> None:
    env = dict(os.environ, TRADENODE_FAKE_ALPACA_SECRET="secret-from-env")
    process = subprocess.Popen(
        [sys.executable, "-m", "tradenode", "venue", "alpaca", "--api-key", "k1", "--market-open"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        urls = json.loads(process.stdout.readline())
        assert set(urls) == {"rest", "stream", "data_stream", "admin", "api_key"}
        assert urls["api_key"] == "k1" and urls["stream"].endswith("/stream")
        assert urls["data_stream"].endswith("/v2/iex")
        client = TradingClient("k1", "secret-from-env", url_override=urls["rest"])
        assert client.get_clock().is_open
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == ""
    assert "secret-from-env" not in out + err


def test_the_alpaca_command_help_lists_every_knob() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradenode", "venue", "alpaca", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    unwrapped = "".join(result.stdout.split())
    for knob in AlpacaVenue.KNOBS.values():
        assert "".join(knob.signature.split()) in unwrapped, knob.name
    for page in ("state", "calls", "faults", "knobs"):
        assert page in result.stdout


def test_trading_stream_speaks_msgpack_when_asked(venue: AlpacaVenue) -> None:
    headers = {"Content-Type": "application/msgpack"}
    with connect(venue.stream_url, additional_headers=headers) as ws:
        auth = {"key_id": venue.api_key, "secret_key": venue.secret}
        ws.send(msgpack.packb({"action": "authenticate", "data": auth}))
        assert msgpack.unpackb(ws.recv(timeout=5))["data"]["status"] == "authorized"
        ws.send(msgpack.packb({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert msgpack.unpackb(ws.recv(timeout=5))["stream"] == "listening"
        buy_market(trading_client(venue), 1, "mp-1")
        update = msgpack.unpackb(ws.recv(timeout=5))
        # (websockets' sync client holds one unread message and cannot close past it)
        fill = msgpack.unpackb(ws.recv(timeout=5))
    assert update["stream"] == "trade_updates" and update["data"]["event"] == "new"
    assert fill["data"]["event"] == "fill" and fill["data"]["order"]["filled_qty"] == "1"
