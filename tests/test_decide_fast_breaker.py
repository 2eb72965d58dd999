"""The breaker tells a broker it has resolved before its bookkeeping of the request.

The reply is handled on the breaker's own thread, after the handler that sent
the request, so it finds the request pending all the same. A broker not yet
resolved is resolved after the bookkeeping, as before: when there is none
(the lookup raises), the request is still pending and its timeout armed, so a
restarted breaker follows it up rather than losing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tradenode.actors import BrokerReply, BrokerRequest, Outcome

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker import BreakerActor, BreakerStore

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._directory import Directory
from tradenode.supervision import Actor, ActorSystem, EventRecorder, ManualClock

from ._breaker_helpers import breaker_store, breaker_system, market_order


class _Broker(Actor):
    """Answers OK to every request, after recording it."""

    def __init__(self, seen: EventRecorder) -> None:
        self.seen = seen

    def receive(self, message: Any) -> Any:
        if isinstance(message, BrokerRequest):
            self.seen(message)
            message.reply_to.tell(BrokerReply(message.seq, Outcome.OK))
        return None


@contextmanager
def _rig(broker_path: str, seen: EventRecorder) -> Iterator[tuple[ActorSystem, BreakerStore]]:
    clock = ManualClock()
    store = breaker_store(clock)

    def breaker(directory: Directory) -> BreakerActor:
        return BreakerActor(
            "v",
            directory=directory,
            store=store,
            broker_path=broker_path,
            request_timeout=2.0,
            park_when_open=False,
        )

    with breaker_system(clock, breaker, lambda: _Broker(seen)) as system:
        yield system, store


def test_every_request_reaches_the_broker_and_every_reply_finds_it_pending() -> None:
    seen = EventRecorder()
    with _rig("/n/broker", seen) as (system, store):
        breaker = system.lookup("/n/breaker")
        assert breaker is not None
        for n in range(5):
            breaker.tell(market_order(n))
        system.wait_quiescent()
        assert [m.command.client_order_id for m in seen.items] == [f"o-{n}" for n in range(5)]
        assert [m.seq for m in seen.items] == [1, 2, 3, 4, 5]
        # Each OK reply found its request and closed it.
        assert store.pending == {}
        assert store.breaker.stats().failure_count == 0


def test_without_a_broker_the_request_is_still_pending_with_its_timeout() -> None:
    seen = EventRecorder()
    with _rig("/n/no-broker", seen) as (system, store):
        breaker = system.lookup("/n/breaker")
        assert breaker is not None
        breaker.tell(market_order(1))
        system.wait_quiescent()
        assert seen.items == []
        # The lookup raised after the request was recorded: pending, as ever.
        assert [entry.command.client_order_id for entry in store.pending.values()] == ["o-1"]
