"""The local Binance venue's native iceberg (``icebergQty``), through its REST port.

Binance (Spot API, "New order"): any LIMIT or LIMIT_MAKER order becomes an
iceberg with ``icebergQty``, which needs ``timeInForce=GTC``; the symbol says
``icebergAllowed`` and its ``ICEBERG_PARTS`` filter caps ceil(quantity /
icebergQty). The public book shows only the tip, refreshed from the hidden
rest as it fills; the order keeps one orderId and shows its ``icebergQty`` in
order queries and in execution reports (``F``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tradenode.testing.venues import DEFAULT_API_KEY, DEFAULT_API_SECRET, BinanceVenue

START_MS = 1_700_000_000_000
PRICE = Decimal("49990")  # between the synthetic book's levels: only the iceberg rests there


class Rest:
    """A hand-signed REST client (hmac by hand, never the venue's helpers)."""

    def __init__(self, venue: BinanceVenue) -> None:
        self.http = httpx.Client(base_url=venue.rest_url, timeout=30)

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(f"/api/v3/{path}", params=params).json()

    def signed(self, method: str, path: str, **params: Any) -> httpx.Response:
        params.setdefault("timestamp", START_MS)
        payload = urlencode({k: str(v) for k, v in params.items()})
        signature = hmac.new(DEFAULT_API_SECRET.encode(), payload.encode(), hashlib.sha256)
        return self.http.request(
            method,
            f"/api/v3/{path}?{payload}&signature={signature.hexdigest()}",
            headers={"X-MBX-APIKEY": DEFAULT_API_KEY},
        )


@pytest.fixture
def venue() -> Iterator[BinanceVenue]:
    with BinanceVenue(seed=7, clock=lambda: START_MS) as fake:
        yield fake


@pytest.fixture
def rest(venue: BinanceVenue) -> Iterator[Rest]:
    client = Rest(venue)
    yield client
    client.http.close()


def place(rest: Rest, **params: Any) -> httpx.Response:
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1.2",
        "price": str(PRICE),
    }
    return rest.signed("POST", "order", **{**base, **params})


def refused(response: httpx.Response) -> tuple[int, int, str]:
    body = response.json()
    return response.status_code, body["code"], body["msg"]


def shown_at(rest: Rest, price: Decimal) -> Decimal:
    """The public depth's bid quantity at ``price`` (0: no level there)."""
    book = rest.get("depth", symbol="BTCUSDT", limit=20)
    return sum((Decimal(q) for p, q in book["bids"] if Decimal(p) == price), Decimal(0))


def test_the_symbol_allows_icebergs_and_declares_its_parts_filter(rest: Rest) -> None:
    (symbol,) = rest.get("exchangeInfo", symbol="BTCUSDT")["symbols"]
    assert symbol["icebergAllowed"] is True
    assert {"filterType": "ICEBERG_PARTS", "limit": 10} in symbol["filters"]


def test_bad_icebergs_get_binance_errors_and_place_nothing(rest: Rest) -> None:
    assert refused(place(rest, icebergQty="0.1")) == (400, -1013, "Filter failure: ICEBERG_PARTS")
    assert refused(place(rest, icebergQty="0.12345")) == (400, -1013, "Filter failure: LOT_SIZE")
    assert refused(place(rest, icebergQty="1.2"))[:2] == (400, -2010)
    assert refused(place(rest, icebergQty="0.5", timeInForce="IOC"))[:2] == (400, -2010)
    market = rest.signed(
        "POST", "order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1", icebergQty="0.5"
    )
    assert refused(market) == (400, -1106, "Parameter 'icebergQty' sent when not required.")
    assert rest.signed("GET", "openOrders", symbol="BTCUSDT").json() == []
    assert shown_at(rest, PRICE) == 0


def test_an_iceberg_shows_only_its_tip_refreshed_until_filled(
    rest: Rest, venue: BinanceVenue
) -> None:
    placed = place(rest, icebergQty="0.5", newClientOrderId="ice-1")
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    assert shown_at(rest, PRICE) == Decimal("0.5")
    tips: list[Decimal] = []
    for _ in range(40):
        row = rest.signed("GET", "order", symbol="BTCUSDT", origClientOrderId="ice-1").json()
        assert (row["orderId"], row["icebergQty"]) == (order_id, "0.50000000")
        if row["status"] == "FILLED":
            break
        tip = shown_at(rest, PRICE)
        leaves = Decimal(row["origQty"]) - Decimal(row["executedQty"])
        # Never more than icebergQty; the whole tip while the rest can refill it.
        assert tip == min(Decimal("0.5"), leaves), row
        tips.append(tip)
        # The market trades down through the limit (the tip fills; a crossed iceberg is
        # left out of the public book, never crossed), then comes back above it.
        venue.set_price("BTCUSDT", PRICE - 10)
        ticker = rest.get("ticker/bookTicker", symbol="BTCUSDT")
        assert Decimal(ticker["bidPrice"]) < Decimal(ticker["askPrice"])
        venue.set_price("BTCUSDT", Decimal("50000"))
    assert row["status"] == "FILLED" and row["executedQty"] == "1.20000000"
    assert tips[0] == Decimal("0.5") and Decimal("0.2") in tips  # the last part is smaller
    assert shown_at(rest, PRICE) == 0
    trades = rest.signed("GET", "myTrades", symbol="BTCUSDT").json()
    ours = [t for t in trades if t["orderId"] == order_id]
    assert sum(Decimal(t["qty"]) for t in ours) == Decimal("1.2")
    assert all(Decimal(t["qty"]) <= Decimal("0.5") for t in ours)


def test_a_cancelled_iceberg_leaves_the_book_and_the_ticker_follows_the_tip(
    rest: Rest, venue: BinanceVenue
) -> None:
    ticker = rest.get("ticker/bookTicker", symbol="BTCUSDT")
    inside = Decimal(ticker["bidPrice"]) + 1  # a better bid than the book's
    assert place(rest, price=str(inside), icebergQty="0.4", newClientOrderId="ice-2").is_success
    ticker = rest.get("ticker/bookTicker", symbol="BTCUSDT")
    assert (Decimal(ticker["bidPrice"]), Decimal(ticker["bidQty"])) == (inside, Decimal("0.4"))
    cancelled = rest.signed("DELETE", "order", symbol="BTCUSDT", origClientOrderId="ice-2")
    assert cancelled.json()["status"] == "CANCELED"
    ticker = rest.get("ticker/bookTicker", symbol="BTCUSDT")
    assert Decimal(ticker["bidPrice"]) < inside
    assert shown_at(rest, inside) == 0


def test_the_user_stream_reports_the_iceberg_quantity(venue: BinanceVenue, rest: Rest) -> None:
    """``F`` in every executionReport of an iceberg is its icebergQty."""
    reports: list[dict[str, Any]] = []
    venue.exchange.add_listener(
        lambda event: (
            reports.append(event.payload)
            if getattr(event, "payload", {}).get("e") == "executionReport"
            else None
        )
    )
    assert place(rest, icebergQty="0.5", newClientOrderId="ice-3").is_success
    assert [(r["c"], r["x"], r["F"]) for r in reports] == [("ice-3", "NEW", "0.50000000")]


def test_the_official_connector_places_and_reads_an_iceberg_unchanged() -> None:
    from binance.error import ClientError
    from binance.spot import Spot

    with BinanceVenue(seed=11) as fake:
        client = Spot(api_key=fake.api_key, api_secret=DEFAULT_API_SECRET, base_url=fake.rest_url)
        try:
            (symbol,) = client.exchange_info(symbol="BTCUSDT")["symbols"]
            assert symbol["icebergAllowed"]
            parts = [f for f in symbol["filters"] if f["filterType"] == "ICEBERG_PARTS"]
            placed = client.new_order(
                symbol="BTCUSDT",
                side="SELL",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.02",
                price="50100",
                icebergQty="0.005",
                newClientOrderId="connector-ice",
            )
            assert placed["status"] == "NEW"
            row = client.get_order("BTCUSDT", origClientOrderId="connector-ice")
            assert (row["icebergQty"], row["origQty"]) == ("0.00500000", "0.02000000")
            asks = client.depth("BTCUSDT", limit=20)["asks"]
            assert ["50100.00000000", "0.00500000"] in asks
            with pytest.raises(ClientError) as too_many:
                client.new_order(
                    symbol="BTCUSDT",
                    side="SELL",
                    type="LIMIT",
                    timeInForce="GTC",
                    quantity="0.02",
                    price="50100",
                    icebergQty="0.001",
                )
            assert parts == [{"filterType": "ICEBERG_PARTS", "limit": 10}]
            assert (too_many.value.error_code, too_many.value.error_message) == (
                -1013,
                "Filter failure: ICEBERG_PARTS",
            )
        finally:
            client.session.close()
