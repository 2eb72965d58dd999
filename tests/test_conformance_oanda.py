"""The conformance suite against the local OANDA v20 account (issue #15).

The fake speaks OANDA's REST API and its transaction and pricing streams on
loopback in this process (``tradenode.testing.venues.OandaVenue``) and reads
the node's manual clock. The book is flat (no spread) so that a resting
order fills when the price reaches it, as the suite's price moves assume.
OANDA is a dealer: a resting order fills whole or not at all, so the suite's
partial-fill checks are skipped with that reason and its stream-drop check
drops the stream while the order rests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tradenode.messages import OrderType, SubmitOrder
from tradenode.supervision import ManualClock
from tradenode.testing.conformance import (
    ConformanceSuite,
    ConformanceVenue,
    Instrument,
    NotSupported,
    VenueFill,
    VenueOrder,
)
from tradenode.testing.venues import OandaVenue

from ._oanda_helpers import venue_clock

D = Decimal


class OandaConformanceVenue(ConformanceVenue):
    def __init__(self) -> None:
        self._venue: OandaVenue | None = None

    @property
    def venue(self) -> OandaVenue:
        assert self._venue is not None, "not started"
        return self._venue

    @property
    def name(self) -> str:
        return "oanda"

    def start(self, clock: ManualClock) -> None:
        venue = OandaVenue(
            seed=11,
            clock=venue_clock(clock),
            heartbeat_interval=0.2,
            spread_bps=D(0),
            instruments=["EUR_USD", "USD_JPY"],
        )
        self._venue = venue.start()
        venue.freeze_prices()
        venue.set_price("EUR_USD", self.instrument().reference_price)

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.stop()

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        return {
            "name": "oanda",
            "kind": "oanda",
            "oanda": {
                "environment": "custom",
                "token": venue.token,
                "account_id": venue.account_id,
                "rest_url": venue.rest_url,
                "stream_url": venue.stream_url,
                "instruments": ["EUR_USD", "USD_JPY"],
                "request_timeout": 5.0,
                "stream_timeout": 30.0,
                "connection_spacing": 0,
            },
        }

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="EUR_USD",
            base_asset="EUR",
            quote_asset="USD",
            reference_price=D("1.08000"),
            tick_size=D("0.00001"),
            lot_size=D("1"),
            quantity=D("1000"),
            large_quantity=D("30000"),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def fills_resting_orders_in_parts(self) -> None:
        raise NotSupported(
            "OANDA is the counterparty: a resting order fills whole when its price is reached"
        )

    def _filled_units(self) -> dict[str, Decimal]:
        filled: dict[str, Decimal] = {}
        for txn in self.venue.transactions():
            if txn["type"] == "ORDER_FILL":
                order_id = str(txn["orderID"])
                filled[order_id] = filled.get(order_id, D(0)) + abs(D(txn["units"]))
        return filled

    def orders(self) -> Sequence[VenueOrder]:
        filled = self._filled_units()
        orders = []
        for order in self.venue.orders():
            if order["type"] not in ("MARKET", "LIMIT", "STOP", "MARKET_IF_TOUCHED"):
                continue
            units = D(order["units"])
            orders.append(
                VenueOrder(
                    client_order_id=(order.get("clientExtensions") or {}).get("id", ""),
                    order_id=str(order["id"]),
                    symbol=order["instrument"],
                    side="BUY" if units > 0 else "SELL",
                    status=order["state"],
                    is_open=order["state"] == "PENDING",
                    quantity=abs(units),
                    filled_quantity=filled.get(str(order["id"]), D(0)),
                )
            )
        return orders

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                execution_id=str(txn["id"]),
                client_order_id=txn.get("clientOrderID") or "",
                order_id=str(txn["orderID"]),
                symbol=txn["instrument"],
                side="BUY" if D(txn["units"]) > 0 else "SELL",
                quantity=abs(D(txn["units"])),
                price=D(txn["price"]),
            )
            for txn in self.venue.transactions()
            if txn["type"] == "ORDER_FILL"
        ]

    def position(self, symbol: str) -> Decimal:
        return self.venue.positions().get(symbol, D(0))

    def submissions(self) -> Mapping[str, int]:
        return self.venue.submissions()

    def drop_stream(self) -> None:
        self.venue.drop_streams()

    def lose_next_submit_response(self) -> None:
        self.venue.lose_next_response("POST orders")

    def rate_limit_next_request(self, retry_after: int) -> None:
        self.venue.rate_limit(1, retry_after=retry_after)

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_line()

    def place_directly(self, order: SubmitOrder) -> None:
        """Another client's order on the account: OANDA's REST API, the client id in
        ``clientExtensions`` as any v20 client may set it."""
        units = order.quantity if order.side.value == "BUY" else -order.quantity
        body: dict[str, Any] = {
            "type": order.order_type.value,
            "instrument": order.symbol,
            "units": str(units),
            "clientExtensions": {"id": order.client_order_id},
        }
        if order.order_type is OrderType.LIMIT:
            assert order.price is not None
            body |= {"price": str(order.price), "timeInForce": "GTC"}
        venue = self.venue
        with httpx.Client() as http:
            answer = http.post(
                f"{venue.rest_url}/v3/accounts/{venue.account_id}/orders",
                json={"order": body},
                headers={"Authorization": f"Bearer {venue.token}"},
            )
        assert answer.status_code == 201, answer.text

    def secrets(self) -> tuple[str, ...]:
        return (self.venue.token,)


class TestOandaConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return OandaConformanceVenue()
