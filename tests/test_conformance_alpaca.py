"""The conformance suite against the local Alpaca paper account (issue #17).

The fake speaks Alpaca's Trading API v2, ``trade_updates`` (binary frames, as
paper sends them) and the market-data stream on loopback in this process
(``tradenode.testing.venues.AlpacaVenue``) and reads the node's manual clock;
its regular session is forced open. Fills are spelled as the adapter spells
them (``alpaca-<order id>-<cumulative quantity>``), from the venue's own
execution records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from tradenode.messages import OrderType, SubmitOrder
from tradenode.supervision import ManualClock
from tradenode.testing.campaign import CampaignVenue
from tradenode.testing.conformance import (
    ConformanceSuite,
    ConformanceVenue,
    Instrument,
    NotSupported,
    VenueFill,
    VenueOrder,
)
from tradenode.testing.venues import AlpacaVenue

from ._alpaca_helpers import AlpacaCampaignVenue, data_base, venue_clock

D = Decimal


def execution_id(order_id: str, cumulative: Decimal) -> str:
    """The adapter's execution id, written out here from Alpaca's own fields."""
    return f"alpaca-{order_id}-{format(cumulative.normalize(), 'f')}"


class AlpacaConformanceVenue(ConformanceVenue):
    def __init__(self) -> None:
        self._venue: AlpacaVenue | None = None

    @property
    def venue(self) -> AlpacaVenue:
        assert self._venue is not None, "not started"
        return self._venue

    @property
    def name(self) -> str:
        return "alpaca"

    def start(self, clock: ManualClock) -> None:
        venue = AlpacaVenue(seed=11, clock=venue_clock(clock))
        self._venue = venue.start()
        venue.freeze_prices()
        venue.set_market_open(True)
        venue.set_price("AAPL", self.instrument().reference_price)

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.stop()

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        return {
            "name": "alpaca",
            "kind": "alpaca",
            "alpaca": {
                "environment": "custom",
                "key_id": venue.api_key,
                "secret_key": venue.secret,
                "rest_url": venue.rest_url,
                "stream_url": venue.stream_url,
                "data_url": data_base(venue),
                "symbols": ["AAPL", "MSFT"],
                "request_timeout": 5.0,
                "check_interval": 0,
            },
        }

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="AAPL",
            base_asset="AAPL",
            quote_asset="USD",
            reference_price=D("190.00"),
            tick_size=D("0.01"),
            lot_size=D("1"),
            quantity=D("10"),
            large_quantity=D("250"),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def orders(self) -> Sequence[VenueOrder]:
        return [
            VenueOrder(
                client_order_id=order.client_order_id,
                order_id=order.id,
                symbol=order.symbol,
                side=order.side.upper(),
                status=order.status,
                is_open=order.is_open,
                quantity=order.qty if order.qty is not None else order.filled_qty,
                filled_quantity=order.filled_qty,
            )
            for order in self.venue.orders()
        ]

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                execution_id=execution_id(fill.order_id, fill.cum_qty),
                client_order_id=fill.client_order_id,
                order_id=fill.order_id,
                symbol=fill.symbol,
                side=fill.side.upper(),
                quantity=fill.qty,
                price=fill.price,
            )
            for fill in self.venue.fills()
        ]

    def position(self, symbol: str) -> Decimal:
        return self.venue.position(symbol)

    def submissions(self) -> Mapping[str, int]:
        return self.venue.submissions()

    def drop_stream(self) -> None:
        self.venue.drop_streams()

    def lose_next_submit_response(self) -> None:
        self.venue.fail_requests(1, after=True, endpoints=["POST orders"])

    def rate_limit_next_request(self, retry_after: int) -> None:
        self.venue.rate_limit(1, retry_after=retry_after)

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_event()

    def place_directly(self, order: SubmitOrder) -> None:
        if order.order_type is OrderType.LIMIT:
            assert order.price is not None
            self.venue.place_order(
                order.symbol,
                order.side.value.lower(),
                "limit",
                order.quantity,
                limit_price=order.price,
                time_in_force="gtc",
                client_order_id=order.client_order_id,
            )
        elif order.order_type is OrderType.MARKET:
            self.venue.place_order(
                order.symbol,
                order.side.value.lower(),
                "market",
                order.quantity,
                client_order_id=order.client_order_id,
            )
        else:
            raise NotSupported(f"{order.order_type.value} is not placed as another client here")

    def secrets(self) -> tuple[str, ...]:
        return (self.venue.secret,)

    def campaign_venue(self) -> CampaignVenue:
        return AlpacaCampaignVenue()


class TestAlpacaConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return AlpacaConformanceVenue()
