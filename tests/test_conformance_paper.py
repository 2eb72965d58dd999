"""The conformance suite against the embedded paper venue (issue #12 point 4).

The paper venue is a ``PaperVenue`` in this process, handed to each node
incarnation with ``Node.add_venue(config, venue=...)``: its books outlive
the nodes, as a remote venue's would. It counts placement requests per
client order id (a session wrapper) so the suite can prove nothing was
sent twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from tradenode.brokers.paper import PaperSession, PaperVenue

# EventSink is the paper session's internal callback type.
from tradenode.brokers.paper._venue import EventSink
from tradenode.messages import SubmitOrder
from tradenode.sim import paper_sim_config
from tradenode.supervision import ManualClock
from tradenode.testing.conformance import (
    ConformanceSuite,
    ConformanceVenue,
    Instrument,
    NotSupported,
    VenueFill,
    VenueOrder,
)

D = Decimal


class CountingPaperVenue(PaperVenue):
    """A paper venue that counts the placement requests that reached it, per client id.

    A request counts when it placed the order, or when the venue already had
    an order under that id (a second send of a placed order: the defect the
    suite looks for). A request the venue refused without placing anything
    (no balance left, say) does not: the venue has no order to find, and
    once the acceptance window has passed, sending it again under the same
    id is what the exactly-once protocol must do, as at a real venue, where
    a refused order does not exist either.
    """

    def __init__(self, clock: ManualClock) -> None:
        super().__init__("paper", paper_sim_config(), seed=11, clock=clock)
        self.placements: Counter[str] = Counter()

    def connect(self, sink: EventSink) -> PaperSession:
        session = super().connect(sink)
        submit = session.submit

        def counted(order: SubmitOrder) -> list[object]:
            coid = order.client_order_id
            known = self.order(coid) is not None
            try:
                return submit(order)
            finally:
                if known or self.order(coid) is not None:
                    self.placements[coid] += 1

        session.submit = counted  # type: ignore[method-assign]
        return session


class PaperConformanceVenue(ConformanceVenue):
    def __init__(self) -> None:
        self._venue: CountingPaperVenue | None = None

    @property
    def venue(self) -> CountingPaperVenue:
        assert self._venue is not None, "not started"
        return self._venue

    @property
    def name(self) -> str:
        return "paper"

    def start(self, clock: ManualClock) -> None:
        self._venue = CountingPaperVenue(clock)

    def stop(self) -> None:
        if self._venue is not None:
            self._venue.drop_sessions("conformance test over")

    def venue_config(self) -> Mapping[str, Any]:
        return {"name": "paper", "kind": "paper", "paper": {"tick_interval_ms": 1000}}

    def provided(self) -> object:
        return self.venue

    def instrument(self) -> Instrument:
        return Instrument(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            reference_price=D("50000.00"),
            tick_size=D("0.01"),
            lot_size=D("0.0001"),
            quantity=D("0.1"),
            large_quantity=D("1.2"),
        )

    def set_price(self, symbol: str, price: Decimal) -> None:
        self.venue.set_price(symbol, price)

    def orders(self) -> Sequence[VenueOrder]:
        found = (self.venue.order(coid) for coid in self.venue.placements)
        return [
            VenueOrder(
                client_order_id=order.client_order_id,
                order_id=str(order.venue_order_id),
                symbol=order.symbol,
                side=order.side.value,
                status=order.status.value,
                is_open=order.is_open,
                quantity=order.quantity,
                filled_quantity=order.filled_quantity,
            )
            for order in found
            if order is not None
        ]

    def fills(self) -> Sequence[VenueFill]:
        return [
            VenueFill(
                execution_id=f"paper-{fill.trade_id}",
                client_order_id=fill.client_order_id,
                order_id=str(fill.venue_order_id),
                symbol=fill.symbol,
                side=fill.side.value,
                quantity=fill.quantity,
                price=fill.price,
            )
            for fill in self.venue.fills()
        ]

    def position(self, symbol: str) -> Decimal:
        return self.venue.position(symbol)

    def submissions(self) -> Mapping[str, int]:
        return dict(self.venue.placements)

    def drop_stream(self) -> None:
        self.venue.drop_sessions()

    def lose_next_submit_response(self) -> None:
        self.venue.fail_next_requests(1, after_processing=True)

    def rate_limit_next_request(self, retry_after: int) -> None:
        raise NotSupported("the embedded paper venue has no rate limits")

    def corrupt_next_event(self) -> None:
        self.venue.corrupt_next_event(1)

    def place_directly(self, order: SubmitOrder) -> None:
        session = self.venue.connect(lambda batch: None)
        try:
            session.submit(order)
        finally:
            session.close()

    def secrets(self) -> tuple[str, ...]:
        raise NotSupported("the embedded paper venue takes no credentials")

    def campaign_venue(self) -> Any:
        raise NotSupported(
            "the embedded paper venue lives in the node's process and dies with a SIGKILLed "
            "node; test_randomized_incarnations_in_process runs its campaign"
        )


class TestPaperConformance(ConformanceSuite):
    @pytest.fixture
    def conformance_venue(self) -> ConformanceVenue:
        return PaperConformanceVenue()
