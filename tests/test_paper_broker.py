"""The paper broker actor against the paper venue, with a recorder standing in for the OMS."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from tradenode.actors import BrokerReply, BrokerRequest, Outcome, QuoteSubscription
from tradenode.brokers.paper import PaperBroker, PaperLink, PaperVenue
from tradenode.messages import (
    CancelOrder,
    CancelRejected,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    QueryOrder,
    Quote,
    Side,
    SubmitOrder,
)
from tradenode.sim import paper_sim_config
from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
    SupervisorSpec,
    add_child,
)

from ._supervision_helpers import is_event, wait_running

K = SupervisionEventKind


class Recorder(Actor):
    def __init__(self, sink: EventRecorder) -> None:
        self.sink = sink

    def receive(self, message: Any) -> Any:
        self.sink(message)


class Rig:
    def __init__(
        self,
        system: ActorSystem,
        events: EventRecorder,
        clock: ManualClock,
        *,
        latency: float = 0.0,
        **broker: Any,
    ) -> None:
        self.clock = clock
        self.venue = PaperVenue("paper", paper_sim_config(), seed=3, clock=clock, latency=latency)
        self.reports = EventRecorder()
        self.replies = EventRecorder()
        self.link = PaperLink()
        system.start(
            SupervisorSpec(
                "root",
                children=(
                    ChildSpec("oms", lambda: Recorder(self.reports)),
                    ChildSpec("breaker", lambda: Recorder(self.replies)),
                ),
            )
        )
        self.oms = wait_running(system, events, "/root/oms")
        self.breaker = wait_running(system, events, "/root/breaker")
        assert system.root is not None
        self.broker: Address = add_child(
            system.root,
            ChildSpec(
                "broker",
                lambda: PaperBroker(self.venue, reports_to=self.oms, link=self.link, **broker),
                backoff=Backoff(1.0, 1.0, random_factor=0.0),
            ),
        )
        self.seq = 0

    def send(self, command: Any) -> BrokerReply:
        self.seq += 1
        seq = self.seq
        self.broker.tell(BrokerRequest(seq, command, self.breaker))
        reply = self.replies.wait_for(lambda r: isinstance(r, BrokerReply) and r.seq == seq)[0]
        assert isinstance(reply, BrokerReply)
        return reply

    def of(self, kind: type, count: int = 1) -> list[Any]:
        return self.reports.wait_for(lambda m: isinstance(m, kind), count=count)


def order(coid: str, **overrides: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": coid,
        "strategy_id": "s1",
        "venue": "paper",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D("0.7"),
    }
    fields.update(overrides)
    return SubmitOrder(**fields)


@pytest.fixture
def rig(system: ActorSystem, events: EventRecorder, clock: ManualClock) -> Rig:
    return Rig(system, events, clock)


def test_market_order_is_accepted_then_filled_in_separate_reports(rig: Rig) -> None:
    assert rig.send(order("m1")).outcome is Outcome.OK
    accepted = rig.of(OrderAccepted)[0]
    fills = rig.of(OrderFilled, count=2)
    assert accepted.client_order_id == "m1"
    assert [f.last_quantity for f in fills] == [D("0.5"), D("0.2")]
    assert len({f.execution_id for f in fills}) == 2
    assert sum(f.last_quantity for f in fills) == rig.venue.position("BTCUSDT") == D("0.7")


def test_the_link_remembers_only_orders_that_may_still_change(rig: Rig) -> None:
    for n in range(5):
        assert rig.send(order(f"m{n}")).outcome is Outcome.OK
    resting = order("rest", order_type=OrderType.LIMIT, price=D("40000.00"), quantity=D("0.1"))
    assert rig.send(resting).outcome is Outcome.OK
    canceled = order("gone", order_type=OrderType.LIMIT, price=D("40000.00"), quantity=D("0.1"))
    assert rig.send(canceled).outcome is Outcome.OK
    rig.send(CancelOrder(client_order_id="gone", venue="paper", symbol="BTCUSDT"))
    rig.of(OrderCanceled)
    rig.of(OrderFilled, count=10)
    assert rig.link.in_flight == {"rest"}


def test_business_rejection_is_reported_and_is_not_a_transport_failure(rig: Rig) -> None:
    reply = rig.send(
        order("big", order_type=OrderType.LIMIT, price=D("50000.00"), quantity=D("1000"))
    )
    assert reply.outcome is Outcome.REJECTED
    rejected = rig.of(OrderRejected)[0]
    assert rejected.code == "INSUFFICIENT_BALANCE"


def test_cancel_amend_and_query(rig: Rig) -> None:
    limit = order("l1", order_type=OrderType.LIMIT, price=D("40000.00"), quantity=D("0.1"))
    assert rig.send(limit).outcome is Outcome.OK
    modify = ModifyOrder(client_order_id="l1", venue="paper", symbol="BTCUSDT", price=D("41000.00"))
    assert rig.send(modify).outcome is Outcome.OK
    assert rig.of(OrderModified)[0].price == D("41000.00")
    query = rig.send(QueryOrder(client_order_id="l1", venue="paper", symbol="BTCUSDT"))
    assert query.report is not None and query.report.status is OrderStatus.ACCEPTED
    assert query.report.filled_quantity == 0
    assert (
        rig.send(CancelOrder(client_order_id="l1", venue="paper", symbol="BTCUSDT")).outcome
        is Outcome.OK
    )
    assert rig.of(OrderCanceled)[0].client_order_id == "l1"
    again = rig.send(CancelOrder(client_order_id="l1", venue="paper", symbol="BTCUSDT"))
    assert again.outcome is Outcome.REJECTED
    assert rig.of(CancelRejected)[0].code == "ALREADY_CLOSED"
    assert (
        rig.send(QueryOrder(client_order_id="nope", venue="paper", symbol="BTCUSDT")).outcome
        is Outcome.NOT_FOUND
    )


def test_cancel_replace_mode_links_a_new_order_without_resurrecting_fills(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    rig = Rig(system, events, clock, amend_natively=False)
    assert (
        rig.send(
            order("l1", order_type=OrderType.LIMIT, price=D("49000.00"), quantity=D("1.0"))
        ).outcome
        is Outcome.OK
    )
    rig.venue.set_price("BTCUSDT", D("48990.00"))
    first_fill = rig.of(OrderFilled)[0]
    assert first_fill.last_quantity == D("0.5")
    modify = ModifyOrder(
        client_order_id="l1",
        venue="paper",
        symbol="BTCUSDT",
        quantity=D("0.8"),
        price=D("48000.00"),
        new_client_order_id="l1r",
    )
    assert rig.send(modify).outcome is Outcome.OK
    canceled = rig.of(OrderCanceled)[0]
    accepted = rig.of(OrderAccepted, count=2)[1]
    assert (canceled.client_order_id, accepted.client_order_id) == ("l1", "l1r")
    replacement = rig.venue.order("l1r")
    assert replacement is not None and replacement.quantity == D("0.3")


def test_transport_failure_before_the_venue_leaves_no_order(rig: Rig) -> None:
    rig.venue.fail_next_requests(1)
    assert rig.send(order("t1")).outcome is Outcome.TRANSPORT
    assert rig.venue.order("t1") is None


def test_transport_failure_after_processing_leaves_the_order_at_the_venue(rig: Rig) -> None:
    rig.venue.fail_next_requests(1, after_processing=True)
    assert rig.send(order("t2")).outcome is Outcome.TRANSPORT
    assert rig.venue.order("t2") is not None
    assert rig.of(OrderFilled, count=2)


def test_quotes_go_to_subscribers_for_their_symbols(rig: Rig) -> None:
    rig.broker.tell(QuoteSubscription(rig.oms, ("ETHUSDT",)))
    rig.venue.step()
    quote = rig.reports.wait_for(lambda m: isinstance(m, Quote))[0]
    assert quote.symbol == "ETHUSDT" and quote.bid < quote.ask


def test_a_dropped_stream_restarts_the_broker_which_reconciles_fills_missed_while_down(
    rig: Rig, events: EventRecorder, clock: ManualClock
) -> None:
    assert (
        rig.send(
            order("r1", order_type=OrderType.LIMIT, price=D("49000.00"), quantity=D("0.4"))
        ).outcome
        is Outcome.OK
    )
    rig.of(OrderAccepted)
    rig.venue.refuse_connections(True)
    rig.venue.drop_sessions()
    events.wait_for(is_event(K.FAILED, "/root/broker", 1))
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/broker"))
    rig.venue.set_price("BTCUSDT", D("48000.00"))
    assert rig.venue.position("BTCUSDT") == D("0.4")
    assert not any(isinstance(m, OrderFilled) for m in rig.reports.items)
    clock.advance(1.0)
    events.wait_for(is_event(K.FAILED, "/root/broker", 2))
    rig.venue.refuse_connections(False)
    clock.advance(clock.wait_for_timers(1)[0])
    wait_running(rig.broker.cell.system, events, "/root/broker", generation=3)
    fills = rig.of(OrderFilled)
    report = rig.reports.wait_for(
        lambda m: isinstance(m, OrderStatusReport) and m.client_order_id == "r1"
    )[0]
    assert report.status is OrderStatus.FILLED
    rig.broker.ask("sync")
    rig.oms.ask("sync")
    all_fills = [m for m in rig.reports.items if isinstance(m, OrderFilled)]
    assert [f.execution_id for f in all_fills] == [f.execution_id for f in fills]
    assert sum(f.last_quantity for f in all_fills) == D("0.4")


def test_a_malformed_payload_is_counted_and_dropped_without_stopping_anything(
    rig: Rig, events: EventRecorder
) -> None:
    rig.venue.corrupt_next_event()
    assert rig.send(order("c1")).outcome is Outcome.OK
    rig.of(OrderFilled, count=2)
    assert rig.link.malformed_payloads == 1
    assert not any(is_event(K.FAILED, "/root/broker")(e) for e in events.items)


def test_reports_arrive_after_the_configured_latency_of_the_node_clock(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    rig = Rig(system, events, clock, latency=0.25)
    assert rig.send(order("x1")).outcome is Outcome.OK
    rig.broker.ask("sync")
    assert not rig.reports.items
    clock.advance(0.25)
    assert rig.of(OrderAccepted)[0].client_order_id == "x1"
    assert [f.last_quantity for f in rig.of(OrderFilled, count=2)] == [D("0.5"), D("0.2")]


def test_a_query_answers_with_the_orders_trades_as_well_as_its_status(rig: Rig) -> None:
    assert rig.send(order("q1")).outcome is Outcome.OK
    streamed = rig.of(OrderFilled, count=2)
    reply = rig.send(QueryOrder(client_order_id="q1", venue="paper", symbol="BTCUSDT"))
    assert reply.report is not None and reply.report.status is OrderStatus.FILLED
    again = rig.of(OrderFilled, count=4)[2:]
    assert [f.execution_id for f in again] == [f.execution_id for f in streamed]
