"""A breaker built by hand, without a node, for the tests of its gating and timing.

The tree is the node's in miniature: ``/n/core/oms`` (a sink for what the
breaker tells the OMS), ``/n/breaker`` and a test's broker at ``/n/broker``,
on a ``ManualClock`` so that a test moves time itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker import BreakerStore

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._breaker_state import CircuitBreaker, DeadLetterQueue

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._directory import Directory

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._rate_limit import TokenBucket

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._retry import RetryPolicy
from tradenode.messages import OrderType, Side, SubmitOrder
from tradenode.supervision import Actor, ActorSystem, ChildSpec, ManualClock, SupervisorSpec

BROKER_PATH = "/n/broker"


def market_order(n: int) -> SubmitOrder:
    """A market buy of 1 BTCUSDT on venue ``v``, client order id ``o-<n>``."""
    return SubmitOrder(
        client_order_id=f"o-{n}",
        strategy_id="s",
        venue="v",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("1"),
    )


class Sink(Actor):
    """Takes whatever it is told (the OMS of a breaker under test)."""

    def receive(self, message: Any) -> Any:
        return None


def breaker_store(
    clock: ManualClock, *, failure_threshold: int = 5, retry: RetryPolicy | None = None
) -> BreakerStore:
    """The breaker's state: a circuit opening after ``failure_threshold`` failures for
    10 s, a token bucket that never runs dry here, and ``retry`` (3 attempts, 0.5 s
    to 4 s apart, no jitter, by default)."""
    return BreakerStore(
        breaker=CircuitBreaker(
            "v",
            failure_threshold=failure_threshold,
            open_timeout=10.0,
            monotonic=clock.monotonic,
        ),
        bucket=TokenBucket(1000.0, 1000.0, monotonic=clock.monotonic),
        retry=retry if retry is not None else RetryPolicy(3, 0.5, 4.0, 0.0, random.Random(1)),
        dlq=DeadLetterQueue(10),
    )


@contextmanager
def breaker_system(
    clock: ManualClock,
    breaker: Callable[[Directory], Actor],
    broker: Callable[[], Actor],
    oms: Callable[[], Actor] = Sink,
) -> Iterator[ActorSystem]:
    """Start ``/n`` with ``oms()`` (a sink by default), ``breaker(directory)`` and
    ``broker()``; shut it down when the test is done."""
    system = ActorSystem(clock=clock, seed=1, name="n")
    try:
        directory = Directory(system, "n")
        root = system.start(
            SupervisorSpec(
                "n",
                children=(
                    SupervisorSpec("core", children=(ChildSpec("oms", oms),)),
                    ChildSpec("breaker", lambda: breaker(directory)),
                    ChildSpec("broker", broker),
                ),
            )
        )
        root.cell.first_start.started.wait()
        yield system
    finally:
        system.shutdown(10)
