"""A tell travels bare through a cell's inbox: what that must not change.

The runtime queues a tell as the user's message itself and tells its own
items (an ask's envelope, a timer, a watch notice, a supervisor's orders)
apart by their exact type. A user's message that happens to be one of those
types must still reach the behaviour as itself and must never act as an
order; bare tells are stashed, replayed and dead-lettered like any other;
``messages_handled`` still counts by type name.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

# pykka's own messages, which its loop acts on: a user's message must never be taken
# for one (pykka's stop is private to it).
from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr, _ActorStop

from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    EventRecorder,
    ManualClock,
    SupervisionEventKind,
    remove_child,
)

# How the runtime orders a final stop (``stop_cell`` sends it, then waits for it).
from tradenode.supervision._cell import _order

# The runtime's own inbox items: what a user's message must never be taken for.
from tradenode.supervision._mail import (
    Envelope,
    Incarnate,
    Stop,
    Suspend,
    TimerFired,
    WatchNotice,
    needs_envelope,
)

from ._supervision_helpers import Journal, is_event, start_single, wait_running, worker

K = SupervisionEventKind


def _lookalikes(address: Address) -> list[Any]:
    return [
        Envelope("inner", None),
        TimerFired(1, "inner"),
        WatchNotice(address),
        Incarnate(5),
        Suspend(),
        Stop(),
    ]


def test_a_user_message_of_a_runtime_item_type_reaches_the_behaviour_as_itself(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    sent = _lookalikes(address)
    for message in sent:
        address.tell(message)
    assert address.ask("after") == ("w", 1, "after")
    got = [item[3] for item in journal.items if item[0] == "got"]
    assert got == [*sent, "after"]
    assert all(a is b for a, b in zip(got, sent, strict=False))
    # None of them acted as the runtime's order: still the first incarnation, running.
    assert not any(is_event(K.STOPPED, "/root/w")(e) for e in events.items)
    assert not any(is_event(K.RESTARTED, "/root/w")(e) for e in events.items)


def _pykka_lookalikes() -> list[Any]:
    return [
        _ActorStop(),
        ProxyCall(attr_path=("stop",), args=(), kwargs={}),
        ProxyGetAttr(attr_path=("address",)),
        ProxySetAttr(attr_path=("state",), value=None),
        ("a", "plain", "tuple"),
        (),
    ]


def test_pykka_own_messages_and_tuples_told_reach_the_behaviour_and_act_on_nothing(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    sent = _pykka_lookalikes()
    assert all(needs_envelope(message) for message in sent)
    for message in sent:
        address.tell(message)
    assert address.ask("after") == ("w", 1, "after")
    got = [item[3] for item in journal.items if item[0] == "got"]
    assert all(a is b for a, b in zip(got, [*sent, "after"], strict=True))
    assert address.is_alive
    assert address.cell.actor_ref.is_alive()
    assert not any(is_event(K.STOPPED, "/root/w")(e) for e in events.items)


def test_a_plain_message_travels_bare() -> None:
    assert not any(needs_envelope(m) for m in ["text", 1, None, object(), Journal(), [1], {}])


def test_an_ask_of_a_runtime_item_type_is_answered_by_the_behaviour(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    stop = Stop()
    assert address.ask(stop) == ("w", 1, stop)
    assert address.is_alive


class _Gate(Actor):
    """Blocks in its handler on ("block", entered, release); logs everything else."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "block":
            message[1].set()
            message[2].wait(10)
            return None
        if isinstance(message, tuple) and message[0] == "fail":
            raise RuntimeError("down")
        self.journal((self.context.generation, message))
        return None


def test_bare_tells_queued_while_restarting_are_replayed_in_order_with_lookalikes(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    spec = ChildSpec("g", lambda: _Gate(journal), backoff=Backoff(1.0, 1.0, 0.0))
    address = start_single(system, events, spec)
    address.tell(("fail", None))
    lookalikes = _lookalikes(address)
    for n in range(3):
        address.tell(n)
    for message in lookalikes:
        address.tell(message)
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/g"))
    system.wait_quiescent(10)
    clock.advance(1.0)
    wait_running(system, events, "/root/g", 2)
    system.wait_quiescent(10)
    assert [message for _, message in journal.items] == [0, 1, 2, *lookalikes]
    assert {generation for generation, _ in journal.items} == {2}


def test_bare_tells_stashed_at_a_final_stop_are_dead_lettered_as_themselves(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder
) -> None:
    journal = Journal()
    spec = ChildSpec("g", lambda: _Gate(journal), backoff=Backoff(10.0, 10.0, 0.0))
    address = start_single(system, events, spec)
    address.tell(("fail", None))
    sent = [0, *_lookalikes(address), 1]
    for message in sent:
        address.tell(message)
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/g"))
    assert system.root is not None
    assert remove_child(system.root, "g")
    stopped = [d.message for d in dead_letters.items if d.reason == "actor stopped"]
    assert len(stopped) == len(sent)
    assert all(a is b for a, b in zip(stopped, sent, strict=True))
    assert journal.items == []


def test_bare_tells_queued_behind_a_final_stop_are_dead_lettered_not_dropped(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("g", lambda: _Gate(journal)))
    entered, release = threading.Event(), threading.Event()
    address.tell(("block", entered, release))
    assert entered.wait(10)
    before = [n if n % 3 else _lookalikes(address)[n % 6] for n in range(20)]
    after = [n if n % 3 else _lookalikes(address)[n % 6] for n in range(20, 40)]
    for message in before:
        address.tell(message)
    # The final stop order, sent as ``stop_cell`` sends it but without waiting for it,
    # so that what is told next is queued behind it.
    stopped = _order(address.cell, Stop())
    for message in after:
        address.tell(message)  # the address is still open: queued behind the stop
    release.set()
    stopped.get(timeout=10)
    system.wait_quiescent(10)  # what was queued behind the stop counts until handled
    handled = [message for _, message in journal.items]
    lettered = [d.message for d in dead_letters.items if d.reason == "actor stopped"]
    assert len(handled) == len(before)
    assert all(a is b for a, b in zip(handled, before, strict=True))
    assert len(lettered) == len(after)
    assert all(a is b for a, b in zip(lettered, after, strict=True))


class _Tag:
    """Two message types of one name, as two modules may define."""


_OtherTag = type("_Tag", (), {})


def test_messages_handled_counts_by_type_name(system: ActorSystem, events: EventRecorder) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    before = system.messages_handled()
    address.tell(_Tag())
    address.tell(_OtherTag())
    address.tell("text")
    address.tell(Stop())
    system.wait_quiescent(10)
    after = system.messages_handled()
    delta = {key: count - before.get(key, 0) for key, count in after.items()}
    assert {key: n for key, n in delta.items() if n} == {
        ("/root/w", "_Tag"): 2,
        ("/root/w", "str"): 1,
        ("/root/w", "Stop"): 1,
    }


@pytest.mark.parametrize("lookalike", [Suspend, Stop])
def test_a_lookalike_told_to_a_supervisor_is_refused_as_a_user_message(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder, lookalike: type[Any]
) -> None:
    journal = Journal()
    start_single(system, events, ChildSpec("w", worker("w", journal)))
    assert system.root is not None
    message = lookalike()
    system.root.tell(message)
    system.wait_quiescent(10)
    assert system.root.is_alive
    assert any(d.message is message for d in dead_letters.items)
