"""The conformance suite against the local Coinbase Advanced Trade account (issue #16).

The fake speaks Coinbase's REST API and its user and market WebSockets on
loopback in this process (``tradenode.testing.venues.CoinbaseVenue``) and
reads the node's manual clock (the JWTs' ``nbf``/``exp`` are checked against
it). Another client's orders are placed through the REST API with a JWT made
by PyJWT, not by the adapter's signing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from tradenode.messages import OrderType, SubmitOrder
from tradenode.supervision import ManualClock
from tradenode.testing.conformance import (
    ConformanceSuite,
    ConformanceVenue,
    Instrument,
    VenueFill,
    VenueOrder,
)
from tradenode.testing.venues import DEFAULT_COINBASE_BALANCES, CoinbaseVenue

from ._coinbase_helpers import post_as_another_client, venue_clock

D = Decimal

_OPEN = frozenset({"OPEN", "PENDING", "QUEUED", "CANCEL_QUEUED", "EDIT_QUEUED"})
_BASE = {"BTC-USD": "BTC", "ETH-USD": "ETH"}


class CoinbaseConformanceVenue(ConformanceVenue):
    def __init__(self) -> None:
        self._venue: CoinbaseVenue | None = None
        self._clock: ManualClock | None = None

    @property
    def venue(self) -> CoinbaseVenue:
        assert self._venue is not None, "not started"
        return self._venue

    @property
    def name(self) -> str:
        return "coinbase"

    def start(self, clock: ManualClock) -> None:
        self._clock = clock
        venue = CoinbaseVenue(seed=11, clock=venue_clock(clock), heartbeat_interval=0.2)
        self._venue = venue.start()
        venue.freeze_prices()
        venue.set_price("BTC-USD", self.instrument().reference_price)

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.stop()

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        key = venue.key
        assert key is not None
        return {
            "name": "coinbase",
            "kind": "coinbase",
            "coinbase": {
                "environment": "custom",
                "api_key_name": key.name,
                "private_key": key.private_key_pem,
                "rest_url": venue.rest_url,
                "ws_url": venue.ws_url,
                "ws_user_url": venue.ws_user_url,
                "products": ["BTC-USD", "ETH-USD"],
                "request_timeout": 5.0,
                "stream_timeout": 30.0,
            },
        }

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="BTC-USD",
            base_asset="BTC",
            quote_asset="USD",
            reference_price=D("50000.00"),
            tick_size=D("0.01"),
            lot_size=D("0.00000001"),
            quantity=D("0.1"),
            large_quantity=D("1.2"),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def orders(self) -> Sequence[VenueOrder]:
        return [
            VenueOrder(
                client_order_id=order.client_order_id,
                order_id=order.order_id,
                symbol=order.product_id,
                side=order.side,
                status=order.status,
                is_open=order.status in _OPEN,
                quantity=order.size,
                filled_quantity=order.filled_size,
            )
            for order in self.venue.orders()
        ]

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                execution_id=f"coinbase-{fill.trade_id}",
                client_order_id=fill.client_order_id,
                order_id=fill.order_id,
                symbol=fill.product_id,
                side=fill.side,
                quantity=fill.size,
                price=fill.price,
            )
            for fill in self.venue.fills()
        ]

    def position(self, symbol: str) -> Decimal:
        asset = _BASE[symbol]
        available, hold = self.venue.balances()[asset]
        return available + hold - DEFAULT_COINBASE_BALANCES[asset]

    def submissions(self) -> Mapping[str, int]:
        return self.venue.submissions()

    def drop_stream(self) -> None:
        self.venue.drop_streams()

    def lose_next_submit_response(self) -> None:
        self.venue.fail_requests(1, after=True, lose=True, endpoints=["POST orders"])

    def rate_limit_next_request(self, retry_after: int) -> None:
        self.venue.rate_limit(1, retry_after=retry_after)

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_event()

    def place_directly(self, order: SubmitOrder) -> None:
        size = str(order.quantity)
        if order.order_type is OrderType.LIMIT:
            assert order.price is not None
            config: dict[str, Any] = {
                "limit_limit_gtc": {"base_size": size, "limit_price": str(order.price)}
            }
        else:
            config = {"market_market_ioc": {"base_size": size}}
        assert self._clock is not None
        post_as_another_client(
            self.venue,
            self._clock.time_ns() // 1_000_000_000,
            {
                "client_order_id": order.client_order_id,
                "product_id": order.symbol,
                "side": order.side.value,
                "order_configuration": config,
            },
        )

    def secrets(self) -> tuple[str, ...]:
        key = self.venue.key
        assert key is not None
        # The PEM's base64 body lines: any of them printed is a leak.
        body = [line for line in key.private_key_pem.splitlines() if line and "-----" not in line]
        return (key.private_key_pem, *body)


class TestCoinbaseConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return CoinbaseConformanceVenue()
