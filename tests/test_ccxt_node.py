"""The CCXT adapter in a node against the local venues: polling, a lost placement, quotes.

The conformance runs (``test_conformance_ccxt.py``) stream with ccxt.pro; here
the same venue is traded with ``streaming: off`` (what an exchange without
``watchOrders``/``watchMyTrades`` gets), and a placement whose answer is lost
is looked up by its client id at the venue (Binance's ``GET /api/v3/order``
with ``origClientOrderId``) before anything is sent again.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from tradenode.actors import MarketDataKind, Outcome
from tradenode.messages import OrderStatus, Quote, Side
from tradenode.supervision import EventRecorder, ManualClock

# The suite's node driver: the same harness as the conformance runs, reused here.
from tradenode.testing.conformance._driver import Driver, Rig
from tradenode.testing.conformance._suite import fill_at_venue

from ._node_helpers import Scripted
from .test_conformance_ccxt import CcxtBinanceConformanceVenue, CcxtOkxConformanceVenue


class PollingBinance(CcxtBinanceConformanceVenue):
    def venue_config(self) -> Mapping[str, Any]:
        config = dict(super().venue_config())
        config["ccxt"] = {**config["ccxt"], "streaming": "off", "poll_interval": 2.0}
        return config


@contextmanager
def rigged(venue: Any, tmp_path: pathlib.Path) -> Iterator[Rig]:
    """``venue`` started on a ``ManualClock`` and the suite's rig around it; both
    closed on the way out, the rig first."""
    clock = ManualClock()
    venue.start(clock)
    rig = Rig(venue, clock, tmp_path)
    try:
        yield rig
    finally:
        try:
            rig.close()
        finally:
            venue.stop()


@pytest.fixture
def polling(tmp_path: pathlib.Path) -> Iterator[tuple[Rig, Driver]]:
    with rigged(PollingBinance(), tmp_path) as rig:
        yield rig, rig.start_node()


def test_without_streams_fills_arrive_by_polling_on_the_node_clock(
    polling: tuple[Rig, Driver],
) -> None:
    _, node = polling
    venue, instrument = node.venue, node.venue.instrument()
    assert node.connection_status()["streaming"] is False
    coid = node.limit(Side.BUY, instrument.price("0.99"), instrument.quantity)
    node.wait_status(coid, OrderStatus.ACCEPTED)
    venue.set_price(instrument.symbol, instrument.price("0.985"))
    at_venue = venue.order(coid)
    assert at_venue is not None and at_venue.filled_quantity == instrument.quantity
    node.sync()
    assert node.status_of(coid) is OrderStatus.ACCEPTED, "heard of without a poll?"
    polls = node.connection_status()["polls"]
    node.clock.advance(2.0)  # one poll_interval on the node's clock: one sweep
    view = node.wait_status(coid, OrderStatus.FILLED)
    assert view.filled_quantity == instrument.quantity
    assert node.connection_status()["polls"] == polls + 1
    assert {f.execution_id for f in node.fills()} == {f.execution_id for f in venue.fills()}


def test_a_lost_placement_is_found_by_client_id_and_never_sent_twice(
    polling: tuple[Rig, Driver],
) -> None:
    _, node = polling
    venue = node.venue
    assert isinstance(venue, PollingBinance)
    instrument = venue.instrument()
    venue.lose_next_submit_response()  # processed, answer lost (503 -1007)
    lookups = venue.venue.calls().get("GET order", 0)
    coid = node.submit(Side.BUY, instrument.quantity)
    lost = node.replies.wait_for(lambda reply: not reply.outcome.venue_answered)[0]
    assert lost.outcome in (Outcome.TIMEOUT, Outcome.TRANSPORT)
    node.sync()
    node.clock.advance(0.5)  # the breaker's retry delay: it asks the venue
    node.wait_status(coid, OrderStatus.FILLED)
    assert venue.venue.calls().get("GET order", 0) > lookups, "not looked up by client id"
    node.clock.advance(15)  # past Binance's acceptance window (recvWindow 10 s + 1 s)
    node.sync()
    assert venue.submissions()[coid] == 1
    assert [o.client_order_id for o in venue.orders()].count(coid) == 1


def test_a_new_process_knows_the_journals_fills_as_told_and_settles_only_after_the_last(
    polling: tuple[Rig, Driver],
) -> None:
    """A partly filled order outlives its process; the rest fills while no node runs.
    The next process starts its count from the journal and its first sweep brings the
    old trade again with the new one: the old one is a repeat (not counted twice,
    which would settle the order before the new fill is told), the new one is told
    once, and the order ends FILLED with the venue's fills, no more, no fewer."""
    rig, node = polling
    venue, instrument = node.venue, node.venue.instrument()
    coid = node.limit(Side.BUY, instrument.price("0.99"), instrument.large_quantity)
    node.wait_status(coid, OrderStatus.ACCEPTED)
    venue.set_price(instrument.symbol, instrument.price("0.985"))
    node.clock.advance(2.0)  # one poll
    partly = node.wait_status(coid, OrderStatus.PARTIALLY_FILLED)
    told = {f.execution_id for f in node.fills()}
    assert len(told) == partly.fill_count >= 1
    rig.stop_node(node)

    fill_at_venue(venue, coid, instrument.price("0.984"))
    at_venue = {f.execution_id for f in venue.fills() if f.client_order_id == coid}
    assert told < at_venue

    again = rig.start_node()
    again.clock.advance(2.0)  # the next poll, if the reconcile's sweep did not finish it
    view = again.wait_status(coid, OrderStatus.FILLED)
    again.sync()
    assert view.filled_quantity == instrument.large_quantity
    assert {f.execution_id for f in again.fills() if f.client_order_id == coid} == at_venue
    assert again.connection_status()["repeated_fills"] >= len(told)
    assert again.connection_status()["unsettled_orders"] == 0


# -- quotes ---------------------------------------------------------------------------------------


@pytest.fixture(params=["binance", "okx"])
def streaming(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Driver]:
    venue = (
        CcxtBinanceConformanceVenue() if request.param == "binance" else CcxtOkxConformanceVenue()
    )
    with rigged(venue, tmp_path) as rig:
        yield rig.start_node()


class BinanceWatcher(Scripted):
    venue = "binance"


class OkxWatcher(Scripted):
    venue = "okx"


def test_quotes_stream_from_ccxt_pros_top_of_book(streaming: Driver) -> None:
    """ccxt.pro's ``watch_bids_asks`` (Binance ``bookTicker``, OKX ``bbo-tbt``) reaches
    a strategy as Quotes under the unified symbol, and the venue declares QUOTES, so
    strategies subscribe and a market order can be valued by the risk guard."""
    node, venue = streaming, streaming.venue
    instrument = venue.instrument()
    entry = node.node.directory.venue(node.name)
    assert entry is not None and MarketDataKind.QUOTES in entry.capabilities.market_data
    seen = EventRecorder()
    watcher = {"binance": BinanceWatcher, "okx": OkxWatcher}[node.name]
    node.node.add_strategy("q1", lambda: watcher("q1", seen, symbols=(instrument.symbol,)))
    local = venue.venue
    if isinstance(venue, CcxtOkxConformanceVenue):
        local.wait_for(lambda: ("public", "bbo-tbt") in local.subscriptions(), what="bbo-tbt")
    else:
        local.wait_for(
            lambda: "btcusdt@bookticker" in (s.lower() for s in local.market_streams()),
            what="bookTicker",
        )
    price = instrument.price("1.01")
    venue.set_price(instrument.symbol, price)
    quote = seen.wait_for(
        lambda m: isinstance(m, Quote) and m.bid <= price <= m.ask and m.bid < m.ask
    )[0]
    assert quote.venue == node.name and quote.symbol == instrument.symbol
    assert quote.bid_size is None or quote.bid_size >= Decimal(0)
