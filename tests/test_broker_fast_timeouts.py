"""The breaker's request timeouts with one timer for everything in flight.

The breaker arms a single timer, due at the earliest expiry of what it has
sent, instead of one per request. Each request must still time out exactly
at its own deadline, a request answered in time must never time out, and a
restarted breaker must give what is still in flight a full request_timeout.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tradenode.actors import BrokerReply, BrokerRequest, GetBreakerStats, Outcome

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker import BreakerActor
from tradenode.actors._directory import Directory
from tradenode.actors._retry import RetryPolicy
from tradenode.messages import QueryOrder
from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    EventRecorder,
    ManualClock,
)

from ._breaker_helpers import BROKER_PATH, breaker_store, breaker_system

TIMEOUT = 2.0


class Crash:
    """Makes the breaker's handler raise, so its supervisor restarts it."""


class CrashableBreaker(BreakerActor):
    def receive(self, message: Any) -> Any:
        if isinstance(message, Crash):
            raise RuntimeError("crash on purpose")
        return super().receive(message)


class SelectiveBroker(Actor):
    """Answers at once the queries for ids starting with ``ok-``; stays silent on the rest."""

    def __init__(self, seen: EventRecorder) -> None:
        self.seen = seen

    def receive(self, message: Any) -> Any:
        if isinstance(message, BrokerRequest):
            self.seen(message)
            assert isinstance(message.command, QueryOrder)
            if message.command.client_order_id.startswith("ok-"):
                message.reply_to.tell(BrokerReply(message.seq, Outcome.OK))
        return None


class Rig:
    def __init__(self, system: ActorSystem, clock: ManualClock, breaker: Address) -> None:
        self.system = system
        self.clock = clock
        self.breaker = breaker

    def query(self, client_order_id: str) -> None:
        self.breaker.tell(QueryOrder(client_order_id=client_order_id, venue="v", symbol="BTCUSDT"))
        self.system.wait_quiescent()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.system.wait_quiescent()

    def timeouts(self) -> int:
        return int(self.breaker.ask(GetBreakerStats()).failure_count)

    def in_flight(self) -> int:
        return int(self.breaker.ask(GetBreakerStats()).in_flight)


@contextmanager
def rig(seen: EventRecorder) -> Iterator[Rig]:
    clock = ManualClock()
    # Retries far apart, so a retried query never lands inside the test's window.
    store = breaker_store(
        clock, failure_threshold=100, retry=RetryPolicy(3, 100.0, 100.0, 0.0, random.Random(1))
    )

    def breaker(directory: Directory) -> CrashableBreaker:
        return CrashableBreaker(
            "v",
            directory=directory,
            store=store,
            broker_path=BROKER_PATH,
            request_timeout=TIMEOUT,
            park_when_open=False,
        )

    with breaker_system(clock, breaker, lambda: SelectiveBroker(seen)) as system:
        found = system.lookup("/n/breaker")
        assert found is not None
        yield Rig(system, clock, found)


def test_each_request_times_out_at_its_own_deadline_under_one_timer() -> None:
    with rig(EventRecorder()) as r:
        r.query("silent-1")  # t=0, expires at 2
        assert r.clock.pending_delays() == [TIMEOUT]
        r.advance(0.5)
        r.query("ok-1")  # answered at once: must never time out
        r.advance(0.5)
        r.query("silent-2")  # t=1, expires at 3
        # One timer for both silent requests, due at the earlier expiry.
        assert r.clock.pending_delays() == [1.0]
        assert r.in_flight() == 2
        r.advance(0.999)
        assert r.timeouts() == 0
        r.advance(0.001)  # t=2
        assert (r.timeouts(), r.in_flight()) == (1, 1)
        r.advance(0.5)  # t=2.5: ok-1's old deadline passes unnoticed
        assert r.timeouts() == 1
        r.advance(0.499)
        assert r.timeouts() == 1
        r.advance(0.001)  # t=3
        assert (r.timeouts(), r.in_flight()) == (2, 0)


def test_an_advance_past_several_deadlines_times_out_every_one() -> None:
    with rig(EventRecorder()) as r:
        r.query("silent-1")
        r.advance(0.25)
        r.query("silent-2")
        r.advance(0.25)
        r.query("silent-3")
        r.advance(10.0)
        assert (r.timeouts(), r.in_flight()) == (3, 0)


def test_a_restarted_breaker_waits_a_full_timeout_for_what_is_in_flight() -> None:
    with rig(EventRecorder()) as r:
        r.query("silent-1")  # t=0, expires at 2 in this incarnation
        r.advance(1.5)
        r.breaker.tell(Crash())
        r.system.wait_quiescent()
        assert r.in_flight() == 1
        r.advance(1.0)  # t=2.5: past the first deadline, inside the new wait
        assert (r.timeouts(), r.in_flight()) == (0, 1)
        r.advance(1.0)  # t=3.5: a full timeout after the restart at 1.5
        assert (r.timeouts(), r.in_flight()) == (1, 0)
