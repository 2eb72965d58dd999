"""The core exactly-once rule, at the breaker: an order of unknown outcome is
sent again only once the venue can no longer accept the original.

A scripted broker answers the first submit with a transport failure (outcome
unknown) and every query with "not found" (or, once the original "lands",
with the order). The breaker must ask, wait out the venue's acceptance window,
ask again, and only then re-send; a venue that declares no window never gets
a blind re-send.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tradenode.actors import AcceptanceWindow, BrokerReply, BrokerRequest, GetBreakerStats, Outcome

# A breaker built by hand, without a node: its actor and directory are internal.
from tradenode.actors._breaker import BreakerActor, ResolveSubmit

# A breaker built by hand, without a node: its actor, state machine and limiters are internal.
from tradenode.actors._directory import Directory
from tradenode.messages import OrderRejected, QueryOrder, SubmitOrder
from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    EventRecorder,
    ManualClock,
)

from ._breaker_helpers import BROKER_PATH, breaker_store, breaker_system, market_order

ORDER = market_order(1)


class ScriptedBroker(Actor):
    """First submit: TRANSPORT (unknown outcome). Queries: NOT_FOUND until
    ``landed`` is set, then OK. Later submits: OK."""

    def __init__(self, seen: EventRecorder, landed: list[bool], bans: list[int]) -> None:
        self.seen = seen
        self.landed = landed
        self.bans = bans
        self.submits = 0

    def receive(self, message: Any) -> Any:
        if not isinstance(message, BrokerRequest):
            return None
        command = message.command
        if isinstance(command, SubmitOrder):
            self.submits += 1
            outcome = Outcome.TRANSPORT if self.submits == 1 else Outcome.OK
        elif isinstance(command, QueryOrder) and self.bans[0] > 0:
            self.bans[0] -= 1
            message.reply_to.tell(BrokerReply(message.seq, Outcome.BANNED, retry_after=30.0))
            self.seen(message)
            return None
        elif isinstance(command, QueryOrder):
            outcome = Outcome.OK if self.landed[0] else Outcome.NOT_FOUND
        else:
            outcome = Outcome.OK
        message.reply_to.tell(BrokerReply(message.seq, outcome))
        self.seen(message)
        return None


class Sink(Actor):
    """The OMS's place: records what the breaker tells it."""

    told = EventRecorder()

    def receive(self, message: Any) -> Any:
        if not isinstance(message, str):
            Sink.told(message)
        return None


class Rig:
    def __init__(
        self, system: ActorSystem, clock: ManualClock, breaker: Address, broker: Address
    ) -> None:
        self.system = system
        self.clock = clock
        self.breaker = breaker
        self.broker = broker

    def settle(self) -> None:
        """Every actor has handled what was sent to it, and what that sent in turn:
        the moment the test may move the clock."""
        self.system.wait_quiescent()


@contextmanager
def rig(
    acceptance: AcceptanceWindow | None,
    seen: EventRecorder,
    landed: list[bool],
    bans: list[int] | None = None,
    unknown_outcome_timeout: float = 60.0,
) -> Iterator[Rig]:
    bans = bans if bans is not None else [0]
    clock = ManualClock()
    store = breaker_store(clock)  # outlives the breaker's incarnations, as the node's does

    def breaker(directory: Directory) -> BreakerActor:
        return BreakerActor(
            "v",
            directory=directory,
            store=store,
            broker_path=BROKER_PATH,
            request_timeout=2.0,
            park_when_open=False,
            acceptance=acceptance,
            unknown_outcome_timeout=unknown_outcome_timeout,
        )

    with breaker_system(clock, breaker, lambda: ScriptedBroker(seen, landed, bans), Sink) as system:
        found, broker = system.lookup("/n/breaker"), system.lookup(BROKER_PATH)
        assert found is not None and broker is not None
        yield Rig(system, clock, found, broker)


def submits(seen: EventRecorder) -> int:
    return sum(isinstance(m.command, SubmitOrder) for m in seen.items)


def queries(seen: EventRecorder) -> int:
    return sum(isinstance(m.command, QueryOrder) for m in seen.items)


def test_not_found_inside_the_window_means_not_yet_and_the_resend_waits_for_it_to_close() -> None:
    seen = EventRecorder()
    with rig(AcceptanceWindow(5.0, 1.0), seen, [False]) as r:
        r.breaker.tell(ORDER)
        r.settle()
        r.clock.advance(0.5)  # the retry delay: the breaker asks
        r.settle()
        assert (submits(seen), queries(seen)) == (1, 1)
        # The failure came back at t=0, so the original may be accepted until 6 s.
        r.clock.advance(5.0)
        r.settle()
        assert (submits(seen), queries(seen)) == (1, 1), "re-sent inside the window"
        r.clock.advance(0.5)
        r.settle()
        assert queries(seen) == 2, "asks again once the window has closed"
        assert submits(seen) == 2, "and only then sends it again, under the same id"
        ids = {m.command.client_order_id for m in seen.items}
        assert ids == {"o-1"}


def test_an_original_that_lands_inside_the_window_is_adopted_not_sent_again() -> None:
    seen, landed = EventRecorder(), [False]
    with rig(AcceptanceWindow(5.0, 1.0), seen, landed) as r:
        r.breaker.tell(ORDER)
        r.settle()
        r.clock.advance(0.5)
        r.settle()
        landed[0] = True
        r.clock.advance(10.0)
        r.settle()
        assert (submits(seen), queries(seen)) == (1, 2)


def not_placed() -> list[OrderRejected]:
    """Every NOT_PLACED rejection the breaker has told the OMS (all tests so far)."""
    return [m for m in Sink.told.items if isinstance(m, OrderRejected) and m.code == "NOT_PLACED"]


def test_a_venue_without_a_window_never_gets_a_blind_resend_and_the_order_is_reported_not_placed() -> (
    None
):
    seen, before = EventRecorder(), len(not_placed())
    with rig(None, seen, [False], unknown_outcome_timeout=60.0) as r:
        r.breaker.tell(ORDER)
        r.settle()
        r.clock.advance(0.5)  # the retry delay: the breaker asks
        r.settle()
        r.clock.advance(58.0)  # the presumed window (60 s after sending) is still open
        r.settle()
        assert (submits(seen), len(not_placed())) == (1, before)
        for _ in range(5):
            r.clock.advance(60.0)
            r.settle()
        assert submits(seen) == 1, "re-sent to a venue that names no acceptance window"
        assert [m.client_order_id for m in not_placed()[before:]] == ["o-1"]
        assert "no acceptance window" in not_placed()[-1].reason
        stats = r.breaker.ask(GetBreakerStats())
        assert stats.presumed_not_placed == 1


def test_without_a_window_an_original_that_lands_in_time_is_kept_not_rejected() -> None:
    seen, landed, before = EventRecorder(), [False], len(not_placed())
    with rig(None, seen, landed, unknown_outcome_timeout=60.0) as r:
        r.breaker.tell(ORDER)
        r.settle()
        r.clock.advance(0.5)
        r.settle()
        landed[0] = True
        r.clock.advance(60.0)
        r.settle()
        assert (submits(seen), queries(seen), len(not_placed())) == (1, 2, before)
        assert r.breaker.ask(GetBreakerStats()).presumed_not_placed == 0


@pytest.mark.parametrize("journaled", [None, AcceptanceWindow(20.0)])
def test_a_recovered_order_waits_for_the_longer_of_its_own_window_and_the_journaled_one(
    journaled: AcceptanceWindow | None,
) -> None:
    seen = EventRecorder()
    with rig(AcceptanceWindow(5.0, 1.0), seen, [False]) as r:
        r.breaker.tell(ResolveSubmit(ORDER, sent_by=r.clock.monotonic(), window=journaled))
        r.settle()
        assert (submits(seen), queries(seen)) == (0, 1)
        closes = 6.0 if journaled is None else 20.0
        r.clock.advance(closes - 0.1)
        r.settle()
        assert submits(seen) == 0, "re-sent while the last process's request could land"
        r.clock.advance(0.1)
        r.settle()
        assert (submits(seen), queries(seen)) == (1, 2)


def test_a_replacement_of_unknown_outcome_is_reported_not_placed_never_sent_on_its_own() -> None:
    """A cancel/replace's new order found in the journal with its fate unknown:
    its predecessor may have filled since, so sending it alone as a fresh order
    would buy twice. The campaign found exactly that."""
    seen = EventRecorder()
    Sink.told = EventRecorder()
    with rig(AcceptanceWindow(5.0, 1.0), seen, [False]) as r:
        r.breaker.tell(ResolveSubmit(ORDER, sent_by=r.clock.monotonic(), resend=False))
        r.settle()
        r.clock.advance(6.0)
        r.settle()
        assert (submits(seen), queries(seen)) == (0, 2)
        rejected = Sink.told.wait_for(lambda m: isinstance(m, OrderRejected))[0]
        assert (rejected.client_order_id, rejected.code) == ("o-1", "NOT_PLACED")


def test_a_question_about_an_order_of_unknown_outcome_is_never_given_up_not_even_after_a_ban() -> (
    None
):
    """A ban used to end the resolution ("giving up on QueryOrder"): the order
    stayed SUBMITTED for the rest of the process, blocking the risk budget."""
    seen, bans = EventRecorder(), [2]
    Sink.told = EventRecorder()
    with rig(AcceptanceWindow(5.0, 1.0), seen, [False], bans) as r:
        r.breaker.tell(ResolveSubmit(ORDER, sent_by=r.clock.monotonic()))
        r.settle()
        assert queries(seen) == 1
        r.clock.advance(29.0)
        r.settle()
        assert queries(seen) == 1, "asked again inside the ban's Retry-After"
        r.clock.advance(1.0)
        r.settle()
        assert queries(seen) == 2
        r.clock.advance(30.0)
        r.settle()
        assert queries(seen) == 3, "answered at last: not found, and the window has closed"
        # The attempt budget (3) went on the ban: the order is reported not at
        # the venue (which is now certain) instead of being sent a minute late.
        assert submits(seen) == 0
        rejected = Sink.told.wait_for(lambda m: isinstance(m, OrderRejected))[0]
        assert rejected.client_order_id == "o-1"
        assert "does not have it" in rejected.reason
