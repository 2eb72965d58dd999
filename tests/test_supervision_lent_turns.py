"""Lent turns: an idle actor that lends its turn handles a tell on the sender's thread.

``Actor.lends_turn`` (see ``Address._lend``): one thread at a time in a
behaviour, each sender's tells in the order told, a failure the recipient's own,
and only actors' threads borrow.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    EventRecorder,
    Intensity,
    ManualClock,
    SupervisionEventKind,
    SupervisorSpec,
)

from ._supervision_helpers import Gate, Journal, is_event, wait_running

K = SupervisionEventKind


class Send:
    """Tell each (address, message) in turn, from the handler."""

    def __init__(self, *pairs: tuple[Address, Any]) -> None:
        self.pairs = pairs


class Probe(Actor):
    """Logs (name, message, thread id); sends what ``Send`` says; ``gate`` blocks it."""

    def __init__(self, name: str, journal: Journal, gate: Gate | None = None) -> None:
        self.name = name
        self.journal = journal
        self.gate = gate
        self.inside = False
        self.last_seen: dict[str, int] = {}

    def receive(self, message: Any) -> Any:
        if self.inside:  # two threads in one behaviour at once
            self.journal(("overlap", self.name, message))
        self.inside = True
        try:
            return self._handle(message)
        finally:
            self.inside = False

    def _handle(self, message: Any) -> Any:
        ident = threading.get_ident()
        if isinstance(message, Send):
            self.journal(("send", self.name, ident))
            for address, payload in message.pairs:
                address.tell(payload)
            return ident
        if message == "block":
            assert self.gate is not None
            self.journal(("got", self.name, message, ident))
            self.gate.block()
            return None
        if isinstance(message, tuple) and message[0] == "fail":
            raise message[1]
        if isinstance(message, tuple) and message[0] == "numbered":
            _, sender, number = message
            if number != self.last_seen.get(sender, -1) + 1:
                self.journal(("out of order", self.name, sender, number))
            self.last_seen[sender] = number
            return None
        if message == "probe":
            self.journal(("idle", self.name, self.context.mailbox_empty(), ident))
            return None
        if isinstance(message, tuple) and message[0] == "tell, then probe":
            message[1].tell("told by the lender")
            self.journal(("idle", self.name, self.context.mailbox_empty(), ident))
            return None
        self.journal(("got", self.name, message, ident, self.context.generation))
        return ident


class LendingProbe(Probe):
    lends_turn = True


class Bouncer(LendingProbe):
    """On ``("bounce", back)``: tells ``back`` two messages (its turn is lent further up)."""

    def _handle(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "bounce":
            self.journal(("got", self.name, "bounce", threading.get_ident()))
            message[1].tell("pong1")
            message[1].tell("pong2")
            return None
        return super()._handle(message)


class Forwarder(LendingProbe):
    """On ``("forward", to, back)``: logs, tells ``to`` a bounce back to itself, logs again."""

    def _handle(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "forward":
            _, to, back = message
            self.journal(("got", self.name, "forward-start", threading.get_ident()))
            to.tell(("bounce", back))
            self.journal(("got", self.name, "forward-end", threading.get_ident()))
            return None
        return super()._handle(message)


def _start(
    system: ActorSystem, events: EventRecorder, *specs: ChildSpec, **supervisor: Any
) -> list[Address]:
    system.start(SupervisorSpec("root", children=specs, **supervisor))
    return [wait_running(system, events, f"/root/{spec.name}") for spec in specs]


def _sender_and_lender(
    system: ActorSystem, events: EventRecorder, journal: Journal, gate: Gate | None = None
) -> list[Address]:
    """An actor that does not lend (``sender``) and one that does (``lender``)."""
    return _start(
        system,
        events,
        ChildSpec("sender", lambda: Probe("sender", journal)),
        ChildSpec("lender", lambda: LendingProbe("lender", journal, gate)),
    )


def _got(journal: Journal, name: str) -> list[tuple[Any, ...]]:
    return [item for item in journal.items if item[0] == "got" and item[1] == name]


def test_an_idle_lending_actor_handles_an_actors_tell_on_the_senders_thread(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    sender, lender, keeper = _start(
        system,
        events,
        ChildSpec("sender", lambda: Probe("sender", journal)),
        ChildSpec("lender", lambda: LendingProbe("lender", journal)),
        ChildSpec("keeper", lambda: Probe("keeper", journal)),
    )
    sender_thread = sender.ask(Send((lender, "hello"), (keeper, "hello")))
    journal.wait_for(lambda item: item[:3] == ("got", "keeper", "hello"))
    (lent,) = _got(journal, "lender")
    (kept,) = _got(journal, "keeper")
    assert lent[3] == sender_thread  # handled inside the sender's tell
    assert kept[3] != sender_thread  # an actor that does not lend: its own thread
    # Counted as handled by the lender, like any message (messages per order).
    assert lender.cell.handled[str] == 1


def test_a_tell_from_a_thread_that_is_no_actors_is_queued(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    (lender,) = _start(system, events, ChildSpec("lender", lambda: LendingProbe("lender", journal)))
    lender.tell("from the test")
    journal.wait_for(lambda item: item[:3] == ("got", "lender", "from the test"))
    assert _got(journal, "lender")[0][3] != threading.get_ident()


def test_a_busy_lender_is_not_lent_and_takes_a_senders_tells_in_order(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    gate = Gate()
    sender, lender = _sender_and_lender(system, events, journal, gate)
    lender.tell("block")
    assert gate.entered.wait(30)
    own_thread = _got(journal, "lender")[0][3]
    sender.ask(Send((lender, "a"), (lender, "b")))
    # The sender's handler has returned: a lent tell would have been handled by now.
    assert [item[2] for item in _got(journal, "lender")] == ["block"]
    gate.opened.set()
    journal.wait_for(lambda item: item[:3] == ("got", "lender", "b"))
    got = _got(journal, "lender")
    assert [item[2] for item in got] == ["block", "a", "b"]
    assert {item[3] for item in got} == {own_thread}


def test_tells_back_to_an_actor_lent_further_up_the_thread_follow_its_handler(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    sender, forwarder, bouncer = _start(
        system,
        events,
        ChildSpec("sender", lambda: Probe("sender", journal)),
        ChildSpec("forwarder", lambda: Forwarder("forwarder", journal)),
        ChildSpec("bouncer", lambda: Bouncer("bouncer", journal)),
    )
    sender_thread = sender.ask(Send((forwarder, ("forward", bouncer, forwarder))))
    # All of it ran inside the sender's tell: the sender's ask returned after it.
    got = _got(journal, "forwarder")
    assert [item[2] for item in got] == ["forward-start", "forward-end", "pong1", "pong2"]
    assert {item[3] for item in got} == {sender_thread}
    assert _got(journal, "bouncer")[0][3] == sender_thread
    system.wait_quiescent(timeout=10)


def test_a_lent_handler_that_raises_fails_its_own_actor_not_the_sender(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    sender, lender = _start(
        system,
        events,
        ChildSpec("sender", lambda: Probe("sender", journal)),
        ChildSpec(
            "lender",
            lambda: LendingProbe("lender", journal),
            backoff=Backoff(1.0, 1.0, random_factor=0.0),
        ),
        intensity=Intensity(10, 1000),
    )
    sender.ask(Send((lender, ("fail", ValueError("bad input"))), (lender, "after")))
    failed = events.wait_for(is_event(K.FAILED, "/root/lender", 1))
    assert isinstance(failed[0].error, ValueError)
    # Between incarnations the lender lends nothing: "after" waits in its mailbox.
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/lender"))
    assert _got(journal, "lender") == []
    assert clock.wait_for_timers(1)
    clock.advance(1.0)
    journal.wait_for(lambda item: item[:3] == ("got", "lender", "after"))
    assert _got(journal, "lender")[0][4] == 2  # the next incarnation's
    assert sender.ask("still here") is not None
    assert not [e for e in events.items if is_event(K.FAILED, "/root/sender")(e)]
    assert sender.cell.generation == 1


def test_a_sender_with_messages_of_its_own_waiting_hands_a_tell_on(
    system: ActorSystem, events: EventRecorder
) -> None:
    """Its thread has work of its own: the recipient's thread does the recipient's."""
    journal = Journal()
    sender, lender = _sender_and_lender(system, events, journal)
    sender_thread = sender.ask(Send((sender, "queued for the sender"), (lender, "handed on")))
    journal.wait_for(lambda item: item[:3] == ("got", "lender", "handed on"))
    journal.wait_for(lambda item: item[:3] == ("got", "sender", "queued for the sender"))
    assert _got(journal, "lender")[0][3] != sender_thread


def test_mailbox_empty_on_a_lent_turn_asks_whether_the_thread_goes_idle(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    sender, lender = _sender_and_lender(system, events, journal)
    first = sender.ask(Send((lender, "probe")))
    # Lent, the lender tells the sender something, then asks: the sender's thread,
    # which it runs on, has that message to handle next.
    second = sender.ask(Send((lender, ("tell, then probe", sender))))
    journal.wait_for(lambda item: item[:3] == ("got", "sender", "told by the lender"))
    probes = [item for item in journal.items if item[0] == "idle"]
    assert [(item[2], item[3]) for item in probes] == [(True, first), (False, second)]


def test_one_thread_at_a_time_in_a_lender_and_each_senders_order_kept(
    system: ActorSystem, events: EventRecorder
) -> None:
    """Two actors' threads and the lender's own race for its turn, thousands of times."""
    journal = Journal()
    count, rounds = 3_000, 6
    first, second, lender = _start(
        system,
        events,
        ChildSpec("first", lambda: Probe("first", journal)),
        ChildSpec("second", lambda: Probe("second", journal)),
        ChildSpec("lender", lambda: LendingProbe("lender", journal)),
    )

    def burst(name: str) -> Send:
        return Send(*[(lender, ("numbered", name, n)) for n in range(count)])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the GIL changes hands as often as it can: more races
    try:
        for race in range(rounds):
            first.tell(burst(f"first {race}"))
            second.tell(burst(f"second {race}"))
            journal.wait_for(lambda item: item[0] == "send", count=2 * race + 1)
            for n in range(count):  # from this thread: always queued, for the lender's own
                lender.tell(("numbered", f"test {race}", n))
            system.wait_quiescent(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    assert [item for item in journal.items if item[0] in ("overlap", "out of order")] == []
    assert lender.ask("probe") is None
    assert lender.cell.handled[tuple] == rounds * 3 * count
