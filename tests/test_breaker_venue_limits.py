"""The breaker spends the venue's own rate counters, as the broker reports them.

A broker that reads a venue's used-weight / order-count headers puts them on
its ``BrokerReply`` as ``RateObservation``s; the breaker then holds back
submits that would pass the venue's limit until the window has room, instead
of sending them and collecting 429s (and, on Binance, an IP ban).
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from tradenode.actors import BrokerReply, BrokerRequest, GetBreakerStats, Outcome, RateObservation

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker import BreakerActor, BreakerStore
from tradenode.actors._breaker_state import CircuitBreaker, DeadLetterQueue

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._directory import Directory
from tradenode.actors._rate_limit import TokenBucket
from tradenode.actors._retry import RetryPolicy
from tradenode.messages import OrderType, Side, SubmitOrder
from tradenode.supervision import (
    Actor,
    ActorSystem,
    ChildSpec,
    EventRecorder,
    ManualClock,
    SupervisorSpec,
)


class ReportingBroker(Actor):
    """Answers every request OK and says the venue's order counter is at ``used``."""

    def __init__(self, seen: EventRecorder, used: list[float], clock: ManualClock) -> None:
        self.seen = seen
        self.used = used
        self.clock = clock

    def receive(self, message: Any) -> Any:
        if isinstance(message, BrokerRequest):
            self.seen(message)
            rate = RateObservation("ORDERS:10S", self.used[0], 3.0, 10.0, self.clock.monotonic())
            message.reply_to.tell(BrokerReply(message.seq, Outcome.OK, rates=(rate,)))
        return None


class Sink(Actor):
    def receive(self, message: Any) -> Any:
        return None


def order(n: int) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=f"o-{n}",
        strategy_id="s",
        venue="v",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("1"),
    )


def test_submits_wait_for_room_in_the_venues_order_window() -> None:
    clock = ManualClock()
    system = ActorSystem(clock=clock, seed=1, name="n")
    try:
        directory = Directory(system, "n")
        store = BreakerStore(
            breaker=CircuitBreaker(
                "v", failure_threshold=5, open_timeout=10.0, monotonic=clock.monotonic
            ),
            bucket=TokenBucket(1000.0, 1000.0, monotonic=clock.monotonic),
            retry=RetryPolicy(3, 0.5, 4.0, 0.0, random.Random(1)),
            dlq=DeadLetterQueue(10),
        )
        seen = EventRecorder()
        used = [1.0]
        root = system.start(
            SupervisorSpec(
                "n",
                children=(
                    SupervisorSpec("core", children=(ChildSpec("oms", Sink),)),
                    ChildSpec(
                        "breaker",
                        lambda: BreakerActor(
                            "v",
                            directory=directory,
                            store=store,
                            broker_path="/n/broker",
                            request_timeout=5.0,
                            park_when_open=False,
                        ),
                    ),
                    ChildSpec("broker", lambda: ReportingBroker(seen, used, clock)),
                ),
            )
        )
        root.cell.first_start.started.wait()
        breaker = system.lookup("/n/breaker")
        assert breaker is not None
        breaker.tell(order(1))
        seen.wait_for(lambda m: isinstance(m, BrokerRequest), count=1)
        # The venue says our 10 s order window holds 1 of 3 (headroom 10%:
        # budget 2.7): one more fits, the third must wait for the window.
        used[0] = 2.0
        breaker.tell(order(2))
        seen.wait_for(lambda m: isinstance(m, BrokerRequest), count=2)
        breaker.tell(order(3))
        breaker.ask(GetBreakerStats())
        broker = system.lookup("/n/broker")
        assert broker is not None
        broker.ask("sync")
        assert len([m for m in seen.items if isinstance(m, BrokerRequest)]) == 2
        clock.advance(10.0)
        seen.wait_for(lambda m: isinstance(m, BrokerRequest), count=3)
        sent = [m.command.client_order_id for m in seen.items if isinstance(m, BrokerRequest)]
        assert sent == ["o-1", "o-2", "o-3"]
    finally:
        system.shutdown(timeout=10)
