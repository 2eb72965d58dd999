"""The breaker tells a broker it has resolved before its bookkeeping of the request.

The reply is handled on the breaker's own thread, after the handler that sent
the request, so it finds the request pending all the same. A broker not yet
resolved is resolved after the bookkeeping, as before: when there is none
(the lookup raises), the request is still pending and its timeout armed, so a
restarted breaker follows it up rather than losing it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from tradenode.actors import BrokerReply, BrokerRequest, Outcome

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker import BreakerActor, BreakerStore

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker_state import CircuitBreaker, DeadLetterQueue

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._directory import Directory

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._rate_limit import TokenBucket

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
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


def _order(n: int) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=f"o-{n}",
        strategy_id="s",
        venue="v",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("1"),
    )


class _Broker(Actor):
    """Answers OK to every request, after recording it."""

    def __init__(self, seen: EventRecorder) -> None:
        self.seen = seen

    def receive(self, message: Any) -> Any:
        if isinstance(message, BrokerRequest):
            self.seen(message)
            message.reply_to.tell(BrokerReply(message.seq, Outcome.OK))
        return None


class _Sink(Actor):
    def receive(self, message: Any) -> Any:
        return None


@contextmanager
def _rig(broker_path: str, seen: EventRecorder) -> Iterator[tuple[ActorSystem, BreakerStore]]:
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
        root = system.start(
            SupervisorSpec(
                "n",
                children=(
                    SupervisorSpec("core", children=(ChildSpec("oms", _Sink),)),
                    ChildSpec(
                        "breaker",
                        lambda: BreakerActor(
                            "v",
                            directory=directory,
                            store=store,
                            broker_path=broker_path,
                            request_timeout=2.0,
                            park_when_open=False,
                        ),
                    ),
                    ChildSpec("broker", lambda: _Broker(seen)),
                ),
            )
        )
        root.cell.first_start.started.wait()
        yield system, store
    finally:
        system.shutdown(10)


def test_every_request_reaches_the_broker_and_every_reply_finds_it_pending() -> None:
    seen = EventRecorder()
    with _rig("/n/broker", seen) as (system, store):
        breaker = system.lookup("/n/breaker")
        assert breaker is not None
        for n in range(5):
            breaker.tell(_order(n))
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
        breaker.tell(_order(1))
        system.wait_quiescent()
        assert seen.items == []
        # The lookup raised after the request was recorded: pending, as ever.
        assert [entry.command.client_order_id for entry in store.pending.values()] == ["o-1"]
