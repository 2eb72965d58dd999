"""Display precision from the venues' own rules (issue #19: the terminal view and the
dashboard round to each instrument's precision).

Each adapter publishes the price and size increments it learned from the venue in
its status (``Node.status()["connections"][venue]["instruments"]``); ``tradenode
run``'s terminal view and the dashboard's snapshot round to them. Here against the
local Binance venue (``PRICE_FILTER`` tickSize, ``LOT_SIZE`` stepSize) and the
local OANDA venue (``displayPrecision``, ``tradeUnitsPrecision``), with no
``risk.instruments`` in the config: without what the venue published, the views
would fall back to 2 places for prices and a quantity's own digits.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from rich.console import Console

# The terminal view is the CLI's own, not a public API: its module is private.
from tradenode._terminal import (
    Precision,
    PrecisionMap,
    plain_status,
    render_status,
    terminal_view,
)
from tradenode.messages import OrderStatus, Side
from tradenode.sim import default_instruments
from tradenode.supervision import ManualClock

# The conformance suite's node driver, reused here for the ccxt venues.
from tradenode.testing.conformance._driver import Rig
from tradenode.testing.venues import BinanceVenue, CoinbaseVenue, IbkrVenue, OandaVenue, OkxVenue

from . import _coinbase_helpers, _ibkr_helpers, _okx_helpers
from ._binance_helpers import BinanceHarness, binance_node, market
from ._binance_helpers import venue_clock as binance_clock
from ._oanda_helpers import OandaHarness, oanda_node
from ._oanda_helpers import market as oanda_market
from ._oanda_helpers import venue_clock as oanda_clock
from .test_conformance_ccxt import CcxtBinanceConformanceVenue, CcxtOkxConformanceVenue

D = Decimal
CONTROL = "control: {enabled: true, port: 0}\n"


def _text(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, legacy_windows=False).print(renderable)
    return out.getvalue()


def _snapshot(h: Any) -> dict[str, Any]:
    url = h.node.control_url
    assert url is not None
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.get("/v1/snapshot")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def _position_row(text: str, venue: str, symbol: str) -> str:
    """The row of the positions table (between its title and the next table's)."""
    lines = [line.rstrip() for line in text.splitlines()]
    start = lines.index("positions")
    end = next(i for i in range(start + 1, len(lines)) if lines[i] in ("orders", "recent fills"))
    (row,) = [line for line in lines[start:end] if f" {venue} " in line and f" {symbol} " in line]
    return row


# -- Binance: tickSize 0.01, stepSize 0.00001 ---------------------------------------------------


@pytest.fixture
def binance(tmp_path: Any) -> Iterator[BinanceHarness]:
    clock = ManualClock()
    specs = tuple(
        dataclasses.replace(spec, lot_size=D("0.00001"), min_quantity=D("0.00001"))
        if spec.symbol == "BTCUSDT"
        else spec
        for spec in default_instruments()
    )
    with (
        BinanceVenue(seed=11, clock=binance_clock(clock), instruments=specs) as venue,
        binance_node(venue, CONTROL, clock=clock) as harness,
    ):
        yield harness


def test_binance_publishes_its_filters_increments_in_the_venue_status(
    binance: BinanceHarness,
) -> None:
    instruments = binance.node.status()["connections"]["binance"]["instruments"]
    assert instruments["BTCUSDT"] == {"price_increment": "0.01", "size_increment": "0.00001"}
    assert instruments["ETHUSDT"] == {"price_increment": "0.01", "size_increment": "0.001"}


def test_binance_figures_are_rounded_to_the_venues_tick_and_step(
    binance: BinanceHarness,
) -> None:
    h = binance
    first = h.do(market(Side.BUY, "0.00100"))
    h.wait_status(first, OrderStatus.FILLED)
    h.venue.step(symbol="BTCUSDT")
    second = h.do(market(Side.BUY, "0.00020"))
    h.wait_status(second, OrderStatus.FILLED)
    h.sync()
    view = terminal_view(h.node)
    (position,) = [p for p in view["positions"] if p["symbol"] == "BTCUSDT"]
    assert D(position["quantity"]) == D("0.0012")
    # Without the venue's step the quantity would show its own digits: 0.0012.
    precision = PrecisionMap.from_node(h.node)
    assert precision.quantity("binance", "BTCUSDT", position["quantity"]) == "0.0012"
    text = _text(render_status(view, precision, width=200))
    row = _position_row(text, "binance", "BTCUSDT")
    assert " 0.00120 " in row, row
    average = D(position["avg_price"])
    assert f" {average.quantize(D('0.01'))} " in row, row
    lines = "\n".join(plain_status(view, precision))
    assert "binance:BTCUSDT qty=0.00120 " in lines
    # Each order at the step too (quantity and filled).
    (order,) = [line for line in lines.splitlines() if line.startswith(f"  order {first} ")]
    assert " qty=0.00100 " in order and " filled=0.00100 " in order, order

    # The dashboard's snapshot carries the increments and rounds to them.
    snapshot = _snapshot(h)
    assert snapshot["instruments"]["binance"]["BTCUSDT"] == {
        "price_increment": "0.01",
        "size_increment": "0.00001",
    }
    (shown,) = [p for p in snapshot["positions"] if p["symbol"] == "BTCUSDT"]
    assert shown["quantity"] == "0.00120"
    assert shown["avg_price"] == str(average.quantize(D("0.01")))
    quantities = {o["client_order_id"]: o["quantity"] for o in snapshot["orders"]}
    assert quantities == {first: "0.00100", second: "0.00020"}
    assert {f["quantity"] for f in snapshot["fills"]} <= {"0.00100", "0.00020"}


# -- OANDA: displayPrecision 5 (EUR_USD) and 3 (USD_JPY), whole units ---------------------------


@pytest.fixture
def oanda() -> Iterator[OandaHarness]:
    clock = ManualClock()
    with OandaVenue(seed=7, clock=oanda_clock(clock), heartbeat_interval=0.2) as venue:
        venue.freeze_prices()
        venue.set_price("EUR_USD", D("1.10000"))
        venue.set_price("USD_JPY", D("150.000"))
        with oanda_node(venue, CONTROL, clock=clock) as harness:
            yield harness


def test_oanda_figures_are_rounded_to_the_instruments_display_precision(
    oanda: OandaHarness,
) -> None:
    h = oanda
    instruments = h.node.status()["connections"]["oanda"]["instruments"]
    assert instruments["EUR_USD"] == {"price_increment": "0.00001", "size_increment": "1"}
    assert instruments["USD_JPY"] == {"price_increment": "0.001", "size_increment": "1"}
    bought = h.do(oanda_market(Side.BUY, "1000"))
    h.wait_status(bought, OrderStatus.FILLED)
    h.sync()
    view = terminal_view(h.node)
    (position,) = [p for p in view["positions"] if p["symbol"] == "EUR_USD"]
    average = D(position["avg_price"]).quantize(D("0.00001"))
    assert average != average.quantize(D("0.01"))  # 2 places would lose digits here
    text = _text(render_status(view, PrecisionMap.from_node(h.node), width=200))
    row = _position_row(text, "oanda", "EUR_USD")
    assert f" {average} " in row and " 1000 " in row, row

    snapshot = _snapshot(h)
    assert snapshot["instruments"]["oanda"]["EUR_USD"]["price_increment"] == "0.00001"
    (shown,) = [p for p in snapshot["positions"] if p["symbol"] == "EUR_USD"]
    assert shown["avg_price"] == str(average) and shown["quantity"] == "1000"


# -- every other adapter publishes what its venue states --------------------------------------


@pytest.mark.parametrize(
    ("name", "venue_type", "helpers", "expected"),
    [
        (
            "okx",
            OkxVenue,
            _okx_helpers,
            {"BTC-USDT": {"price_increment": "0.01", "size_increment": "0.0001"}},
        ),
        (
            "coinbase",
            CoinbaseVenue,
            _coinbase_helpers,
            {"BTC-USD": {"price_increment": "0.01", "size_increment": "0.00000001"}},
        ),
        (
            "ibkr",
            IbkrVenue,
            _ibkr_helpers,
            {
                "AAPL": {"price_increment": "0.01", "size_increment": "1"},
                "ESZ6": {"price_increment": "0.25", "size_increment": "1"},
                "EURUSD": {"price_increment": "0.00005", "size_increment": "1"},
            },
        ),
    ],
)
def test_each_adapter_publishes_the_increments_its_venue_states(
    name: str, venue_type: Any, helpers: Any, expected: dict[str, dict[str, str]]
) -> None:
    """OKX ``tickSz``/``lotSz``, Coinbase ``price_increment``/``base_increment``, IBKR
    ``minTick``/``sizeIncrement`` from contract details, each from its local venue."""
    clock = ManualClock()
    node_of = getattr(helpers, f"{name}_node")
    with (
        venue_type(seed=7, clock=helpers.venue_clock(clock)) as venue,
        node_of(venue, clock=clock) as h,
    ):
        published = h.node.status()["connections"][name]["instruments"]
        assert {symbol: published.get(symbol) for symbol in expected} == expected
        precision = PrecisionMap.from_node(h.node).learn(h.node.status())
        symbol, entry = next(iter(expected.items()))
        places = len(entry["price_increment"].partition(".")[2])
        assert precision.price(name, symbol, "1.123456789") == f"{D('1.123456789'):.{places}f}"


@pytest.mark.parametrize("exchange", ["binance", "okx"])
def test_ccxt_publishes_each_markets_precision(exchange: str, tmp_path: Any) -> None:
    """ccxt's unified ``precision`` (TICK_SIZE mode for both) of the configured markets."""
    venue = CcxtBinanceConformanceVenue() if exchange == "binance" else CcxtOkxConformanceVenue()
    clock = ManualClock()
    venue.start(clock)
    rig = Rig(venue, clock, tmp_path)
    try:
        driver = rig.start_node()
        published = driver.node.status()["connections"][driver.name]["instruments"]
        assert published["BTC/USDT"] == {"price_increment": "0.01", "size_increment": "0.0001"}
    finally:
        try:
            rig.close()
        finally:
            venue.stop()


# -- the contract, pure ------------------------------------------------------------------------


def test_a_published_increment_wins_over_the_configs_copy_and_bad_entries_are_ignored() -> None:
    configured = PrecisionMap(by_symbol={"BTCUSDT": Precision(D("0.1"), D("0.1"))})
    status = {
        "connections": {
            "v1": {"instruments": {"BTCUSDT": {"price_increment": "0.001"}}},
            "v2": {"instruments": {"BTCUSDT": {"price_increment": "x", "size_increment": "-1"}}},
            "v3": {"error": "RuntimeError"},
            "v4": {"instruments": ["not", "a", "mapping"]},
        }
    }
    learned = configured.learn(status)
    assert learned.price("v1", "BTCUSDT", "1.23456") == "1.235"
    assert learned.quantity("v1", "BTCUSDT", "1.26") == "1.3"  # the config's lot: none published
    assert learned.price("v2", "BTCUSDT", "1.23456") == "1.2"  # unusable entries: the config's
    assert learned.price("v3", "BTCUSDT", "1.23456") == "1.2"
    assert configured.learn({}) is configured
