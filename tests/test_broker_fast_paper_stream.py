"""The paper broker forwards a request's own stream events without a message to
itself, and never ahead of a batch the venue streamed before.

With no latency the venue streams a request's events synchronously, on the
broker's thread; the broker keeps them and forwards them once the request is
answered, instead of telling itself a ``_StreamBatch`` (a message per order).
That is only safe while no earlier batch (a tick's fills, from another thread)
waits in its mailbox: the OMS must see the venue's events in the venue's order.
"""

from __future__ import annotations

import threading
from decimal import Decimal as D
from typing import Any

from tradenode.actors import BrokerReply, BrokerRequest, Outcome
from tradenode.brokers.paper import PaperBroker, PaperLink, PaperVenue
from tradenode.messages import OrderAccepted, OrderFilled, OrderType, Side, SubmitOrder
from tradenode.sim import paper_sim_config
from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    ChildSpec,
    EventRecorder,
    ManualClock,
    SupervisorSpec,
    add_child,
)

from ._supervision_helpers import wait_running


class Recorder(Actor):
    def __init__(self, sink: EventRecorder) -> None:
        self.sink = sink

    def receive(self, message: Any) -> Any:
        self.sink(message)


class Hold:
    """Keeps the broker's thread busy until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


class HoldableBroker(PaperBroker):
    def on_message(self, message: Any) -> Any:
        if isinstance(message, Hold):
            message.entered.set()
            assert message.release.wait(10)
            return None
        return super().on_message(message)


def order(coid: str, **overrides: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": coid,
        "strategy_id": "s1",
        "venue": "paper",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D("0.1"),
    }
    fields.update(overrides)
    return SubmitOrder(**fields)


class Rig:
    def __init__(self, system: ActorSystem, events: EventRecorder, clock: ManualClock) -> None:
        self.venue = PaperVenue("paper", paper_sim_config(), seed=3, clock=clock)
        self.reports = EventRecorder()
        self.replies = EventRecorder()
        system.start(
            SupervisorSpec(
                "root",
                children=(
                    ChildSpec("oms", lambda: Recorder(self.reports)),
                    ChildSpec("breaker", lambda: Recorder(self.replies)),
                ),
            )
        )
        oms = wait_running(system, events, "/root/oms")
        self.breaker = wait_running(system, events, "/root/breaker")
        assert system.root is not None
        self.broker: Address = add_child(
            system.root,
            ChildSpec(
                "broker", lambda: HoldableBroker(self.venue, reports_to=oms, link=PaperLink())
            ),
        )
        self.seq = 0

    def request(self, command: Any) -> int:
        self.seq += 1
        self.broker.tell(BrokerRequest(self.seq, command, self.breaker))
        return self.seq

    def reply(self, seq: int) -> BrokerReply:
        reply = self.replies.wait_for(lambda r: isinstance(r, BrokerReply) and r.seq == seq)[0]
        assert isinstance(reply, BrokerReply)
        return reply


def test_a_requests_events_reach_the_oms_in_order_and_before_the_next_request(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    rig = Rig(system, events, clock)
    first = rig.request(order("m1"))
    second = rig.request(order("m2"))
    assert rig.reply(first).outcome is Outcome.OK
    assert rig.reply(second).outcome is Outcome.OK
    rig.reports.wait_for(lambda m: isinstance(m, OrderFilled) and m.client_order_id == "m2")
    seen = [
        (type(m).__name__, m.client_order_id)
        for m in rig.reports.items
        if isinstance(m, OrderAccepted | OrderFilled)
    ]
    assert seen == [
        ("OrderAccepted", "m1"),
        ("OrderFilled", "m1"),
        ("OrderAccepted", "m2"),
        ("OrderFilled", "m2"),
    ]


def test_a_requests_events_never_overtake_a_batch_streamed_before_it(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    rig = Rig(system, events, clock)
    resting = order("rest", order_type=OrderType.LIMIT, price=D("40000.00"))
    assert rig.reply(rig.request(resting)).outcome is Outcome.OK
    hold = Hold()
    rig.broker.tell(hold)
    assert hold.entered.wait(10)
    # While the broker is busy, a market order waits in its mailbox; then the
    # price falls through the resting bid, whose fill is streamed from this
    # thread and queued behind the order. The order's own events, streamed on
    # the broker's thread when it is handled, come after that fill at the venue.
    market = rig.request(order("m1"))
    rig.venue.set_price("BTCUSDT", D("39000.00"))
    hold.release.set()
    assert rig.reply(market).outcome is Outcome.OK
    rig.reports.wait_for(lambda m: isinstance(m, OrderFilled) and m.client_order_id == "m1")
    seen = [
        (type(m).__name__, m.client_order_id)
        for m in rig.reports.items
        if isinstance(m, OrderAccepted | OrderFilled)
    ]
    assert seen == [
        ("OrderAccepted", "rest"),
        ("OrderFilled", "rest"),
        ("OrderAccepted", "m1"),
        ("OrderFilled", "m1"),
    ]
