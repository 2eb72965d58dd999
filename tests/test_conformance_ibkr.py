"""The conformance suite against the local TWS (issue #14 acceptance).

The fake speaks the TWS API socket protocol on loopback in this process
(``tradenode.testing.venues.IbkrVenue``) and reads the node's manual clock;
the adapter reaches it through ib_async. The suite trades AAPL (SMART,
primary NASDAQ), whose book at the local TWS has 100 shares per level, so a
price move through a resting order of 250 fills it in parts.
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
from tradenode.testing.venues import IbkrVenue

from ._ibkr_helpers import IbkrCampaignVenue, venue_clock

D = Decimal

_OPEN = frozenset({"PreSubmitted", "Submitted", "PendingSubmit", "ApiPending"})
#: IB's pacing violation carries no Retry-After: the adapter backs off its
#: configured ``pacing_backoff``, set here to what the suite asks for.
PACING_BACKOFF = 7.0
CLIENT_ID = 5


def _side(raw: object) -> str:
    return "BUY" if raw in ("BOT", "BUY") else "SELL"


class IbkrConformanceVenue(ConformanceVenue):
    def __init__(self) -> None:
        self._venue: IbkrVenue | None = None

    @property
    def venue(self) -> IbkrVenue:
        assert self._venue is not None, "not started"
        return self._venue

    @property
    def name(self) -> str:
        return "ibkr"

    def start(self, clock: ManualClock) -> None:
        self._venue = IbkrVenue(seed=29, clock=venue_clock(clock)).start()

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.stop()

    def venue_config(self) -> Mapping[str, Any]:
        venue = self.venue
        return {
            "name": "ibkr",
            "kind": "ibkr",
            "ibkr": {
                "host": venue.host,
                "port": venue.port,
                "client_id": CLIENT_ID,
                "account": venue.account,
                "request_timeout": 1.0,
                "pacing_backoff": PACING_BACKOFF,
                "instruments": {
                    "AAPL": {
                        "sec_type": "STK",
                        "symbol": "AAPL",
                        "exchange": "SMART",
                        "primary_exchange": "NASDAQ",
                    }
                },
            },
        }

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="AAPL",
            base_asset="AAPL",
            quote_asset="USD",
            reference_price=D("190.00"),
            tick_size=D("0.01"),
            lot_size=D(1),
            quantity=D(10),
            large_quantity=D(250),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def orders(self) -> Sequence[VenueOrder]:
        return [
            VenueOrder(
                client_order_id=str(order["orderRef"]),
                order_id=str(order["orderId"]),
                symbol=str(order["symbol"]),
                side=_side(order["action"]),
                status=str(order["status"]),
                is_open=order["status"] in _OPEN,
                quantity=D(str(order["totalQuantity"])),
                filled_quantity=D(str(order["filled"])),
            )
            for order in self.venue.orders()
        ]

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                # The adapter's execution id: IB's execId without its correction suffix.
                execution_id=str(fill["execId"]).rsplit(".", 1)[0],
                client_order_id=str(fill["orderRef"]),
                order_id=str(fill["orderId"]),
                symbol="AAPL" if fill["conId"] == 265598 else str(fill["conId"]),
                side=_side(fill["side"]),
                quantity=D(str(fill["shares"])),
                price=D(str(fill["price"])),
            )
            for fill in self.venue.fills()
        ]

    def position(self, symbol: str) -> Decimal:
        return self.venue.positions().get(symbol, D(0))

    def submissions(self) -> Mapping[str, int]:
        # New placements per orderRef (the local TWS's submissions() counts modifications too).
        return self.venue.placements()

    def place_directly(self, order: SubmitOrder) -> None:
        # Under the node's own client id, as a crashed node of ours had placed it:
        # TWS shows a client its own orders and executions.
        self.venue.place_order(
            order.symbol,
            order.side.value,
            order.quantity,
            order_type="LMT" if order.order_type is OrderType.LIMIT else "MKT",
            lmt_price=order.price,
            tif="GTC",
            client_id=CLIENT_ID,
            order_ref=order.client_order_id,
        )

    def drop_stream(self) -> None:
        self.venue.drop_connections()

    def lose_next_submit_response(self) -> None:
        # IB answers a placement only with later messages on the socket: TWS processes
        # the next placeOrder, then the socket drops before anything about it is sent.
        self.venue.lose_next_order_answer()

    def rate_limit_next_request(self, retry_after: int) -> None:
        if retry_after != PACING_BACKOFF:
            raise NotSupported(
                "IB's pacing violation (error 100) carries no Retry-After; the adapter "
                f"backs off its configured pacing_backoff ({PACING_BACKOFF:g} s)"
            )
        # The suite's "next request" is the order it places next: a quote subscription
        # the client wrote before may still be unread at the fake, and must not take it.
        self.venue.pacing_violation(1, placements_only=True)

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_message()

    def campaign_venue(self) -> CampaignVenue:
        return IbkrCampaignVenue()


class TestIbkrConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return IbkrConformanceVenue()
