"""The breaker spends the venue's own rate counters, as the broker reports them.

A broker that reads a venue's used-weight / order-count headers puts them on
its ``BrokerReply`` as ``RateObservation``s; the breaker then holds back
submits that would pass the venue's limit until the window has room, instead
of sending them and collecting 429s (and, on Binance, an IP ban).
"""

from __future__ import annotations

from typing import Any

from tradenode.actors import BrokerReply, BrokerRequest, GetBreakerStats, Outcome, RateObservation

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker import BreakerActor

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._directory import Directory
from tradenode.supervision import Actor, EventRecorder, ManualClock

from ._breaker_helpers import BROKER_PATH, breaker_store, breaker_system, market_order


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


def test_submits_wait_for_room_in_the_venues_order_window() -> None:
    clock = ManualClock()
    store = breaker_store(clock)
    seen = EventRecorder()
    used = [1.0]

    def make_breaker(directory: Directory) -> BreakerActor:
        return BreakerActor(
            "v",
            directory=directory,
            store=store,
            broker_path=BROKER_PATH,
            request_timeout=5.0,
            park_when_open=False,
        )

    with breaker_system(clock, make_breaker, lambda: ReportingBroker(seen, used, clock)) as system:
        breaker = system.lookup("/n/breaker")
        assert breaker is not None
        breaker.tell(market_order(1))
        seen.wait_for(lambda m: isinstance(m, BrokerRequest), count=1)
        # The venue says our 10 s order window holds 1 of 3 (headroom 10%:
        # budget 2.7): one more fits, the third must wait for the window.
        used[0] = 2.0
        breaker.tell(market_order(2))
        seen.wait_for(lambda m: isinstance(m, BrokerRequest), count=2)
        breaker.tell(market_order(3))
        breaker.ask(GetBreakerStats())
        broker = system.lookup("/n/broker")
        assert broker is not None
        broker.ask("sync")
        assert len([m for m in seen.items if isinstance(m, BrokerRequest)]) == 2
        clock.advance(10.0)
        seen.wait_for(lambda m: isinstance(m, BrokerRequest), count=3)
        sent = [m.command.client_order_id for m in seen.items if isinstance(m, BrokerRequest)]
        assert sent == ["o-1", "o-2", "o-3"]
