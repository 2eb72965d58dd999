"""The CCXT adapter when a venue's top of book is no quote: a crossed book (bid
above ask) or a negative size. It is typed, logged and counted as malformed,
and skipped; the broker never fails, and the quotes and orders after it go on.

The crossed book comes from the local OKX (traded through ccxt.pro's ``okx``)
with its ``corrupt_next_quote`` knob on the ``bbo-tbt`` push; that knob mangles
only a level's price, so the negative size is pinned at the codec's boundary.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tradenode import MalformedPayloadError

# The codec's ticker parser is internal: pinned directly for what no knob can send.
from tradenode.brokers.ccxt._codec import parse_bid_ask
from tradenode.messages import OrderStatus, Quote, Side
from tradenode.supervision import EventRecorder, SupervisionEventKind

# The suite's node driver, as in test_ccxt_node.py.
from tradenode.testing.conformance._driver import Driver

from ._node_helpers import Scripted
from .test_ccxt_node import rigged
from .test_conformance_ccxt import CcxtOkxConformanceVenue

D = Decimal


class OkxWatcher(Scripted):
    venue = "okx"


@pytest.fixture
def okx(tmp_path: pathlib.Path) -> Iterator[Driver]:
    with rigged(CcxtOkxConformanceVenue(), tmp_path) as rig:
        yield rig.start_node()


def test_a_crossed_top_of_book_is_counted_and_skipped(okx: Driver) -> None:
    node, venue = okx, okx.venue
    assert isinstance(venue, CcxtOkxConformanceVenue)
    instrument = venue.instrument()
    seen = EventRecorder()
    node.node.add_strategy("q1", lambda: OkxWatcher("q1", seen, symbols=(instrument.symbol,)))
    local = venue.venue
    local.wait_for(lambda: ("public", "bbo-tbt") in local.subscriptions(), what="bbo-tbt")
    node.sync()
    before = node.connection_status()["malformed_payloads"]
    # The next top of book has its best bid far above its ask.
    crossed = instrument.price("1.01")
    local.corrupt_next_quote("bbo-tbt", "bids", str(crossed * 2), inst_id="BTC-USDT")
    venue.set_price(instrument.symbol, crossed)
    # A price move after it: its quote reaches the strategy.
    price = instrument.price("0.99")
    venue.set_price(instrument.symbol, price)
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.bid <= price <= m.ask and m.bid < m.ask
    )[0]
    assert quote.symbol == instrument.symbol
    node.sync()
    assert not [m for m in seen.items if isinstance(m, Quote) and m.bid > m.ask]
    assert node.connection_status()["malformed_payloads"] == before + 1
    failed = node.broker_event(SupervisionEventKind.FAILED)
    assert not [e for e in node.seen.items if failed(e)], "fatal to the broker"
    assert not node.node.failed
    # Orders still go.
    coid = node.submit(Side.BUY, instrument.quantity)
    assert node.wait_status(coid, OrderStatus.FILLED).filled_quantity == instrument.quantity


@pytest.mark.parametrize(
    "fields",
    [
        {"bid": 101.0, "ask": 100.0},
        {"bid": 100.0, "ask": 101.0, "bidVolume": -1.0},
        {"bid": 100.0, "ask": 101.0, "askVolume": -0.5},
    ],
    ids=["crossed", "negative-bid-volume", "negative-ask-volume"],
)
def test_a_ticker_that_is_no_quote_is_a_typed_malformed_payload(fields: dict[str, float]) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_bid_ask({"symbol": "BTC/USDT", "timestamp": 1_700_000_000_000, **fields})
