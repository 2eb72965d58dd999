"""The conformance suite against the local Binance venue (issue #12 point 4).

The fake speaks Binance's REST and WebSocket protocols on loopback in this
process (``tradenode.testing.venues.BinanceVenue``) and reads the node's
manual clock; the out-of-process campaign runs it in another process
(``BinanceCampaignVenue``) with a bounded seed set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from tradenode.messages import SubmitOrder
from tradenode.supervision import ManualClock
from tradenode.testing.campaign import BinanceCampaignVenue, CampaignVenue
from tradenode.testing.conformance import (
    ConformanceSuite,
    ConformanceVenue,
    Instrument,
    VenueFill,
    VenueOrder,
)
from tradenode.testing.venues import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_BALANCES,
    BinanceVenue,
)

from ._binance_helpers import place_directly, venue_clock

D = Decimal

_OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
_BASE = {"BTCUSDT": "BTC", "ETHUSDT": "ETH"}


class BinanceConformanceVenue(ConformanceVenue):
    def __init__(self) -> None:
        self._venue: BinanceVenue | None = None
        self._clock: ManualClock | None = None

    @property
    def venue(self) -> BinanceVenue:
        assert self._venue is not None, "not started"
        return self._venue

    @property
    def name(self) -> str:
        return "binance"

    def start(self, clock: ManualClock) -> None:
        self._clock = clock
        self._venue = BinanceVenue(seed=23, clock=venue_clock(clock)).start()

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.stop()

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        return {
            "name": "binance",
            "kind": "binance",
            "binance": {
                "environment": "custom",
                "api_key": DEFAULT_API_KEY,
                "api_secret": DEFAULT_API_SECRET,
                "rest_url": venue.rest_url,
                "ws_api_url": venue.ws_api_url,
                "stream_url": venue.stream_url,
                "symbols": ["BTCUSDT", "ETHUSDT"],
                "request_timeout": 5.0,
            },
        }

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            reference_price=D("50000.00"),
            tick_size=D("0.01"),
            lot_size=D("0.00001"),
            quantity=D("0.1"),
            large_quantity=D("1.2"),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def orders(self) -> Sequence[VenueOrder]:
        return [
            VenueOrder(
                client_order_id=order.client_order_id,
                order_id=str(order.order_id),
                symbol=order.symbol,
                side=order.side,
                status=order.status,
                is_open=order.status in _OPEN,
                quantity=order.orig_qty,
                filled_quantity=order.executed_qty,
            )
            for order in self.venue.orders()
        ]

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                execution_id=f"binance-{trade.symbol}-{trade.trade_id}",
                client_order_id=trade.client_order_id,
                order_id=str(trade.order_id),
                symbol=trade.symbol,
                side=trade.side,
                quantity=trade.qty,
                price=trade.price,
            )
            for trade in self.venue.trades()
        ]

    def position(self, symbol: str) -> Decimal:
        asset = _BASE[symbol]
        free, locked = self.venue.balances()[asset]
        return free + locked - DEFAULT_BALANCES[asset]

    def submissions(self) -> Mapping[str, int]:
        return self.venue.submissions()

    def drop_stream(self) -> None:
        self.venue.drop_streams()

    def lose_next_submit_response(self) -> None:
        self.venue.fail_requests(1, after=True, endpoints=["POST order", "order.place"])

    def rate_limit_next_request(self, retry_after: int) -> None:
        self.venue.rate_limit(1, retry_after=retry_after)

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_event("invalid_json")

    def place_directly(self, order: SubmitOrder) -> None:
        assert self._clock is not None
        place_directly(self.venue, self._clock, order)

    def secrets(self) -> tuple[str, ...]:
        return (DEFAULT_API_SECRET,)

    def campaign_venue(self) -> CampaignVenue:
        return BinanceCampaignVenue()


class TestBinanceConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return BinanceConformanceVenue()
