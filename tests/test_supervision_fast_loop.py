"""The cell's own loop: what ``Address`` queues travels without pykka's envelope.

``Address`` puts its items straight into the cell's inbox and the cell's loop
hands them to the cell without pykka's ``_handle_receive``; what pykka queues
itself (its stop, the asks ``_order`` makes through the actor ref) still comes
in pykka's envelope and takes pykka's path. What that must not change: a
user's message that is a pykka envelope reaches the behaviour as itself, a
tell to a cell whose pykka actor has stopped goes to dead letters uncounted,
asks, runtime orders and ordered stops still work.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

# pykka's envelope (private to it): what the cell's loop takes for pykka's own item.
from pykka._envelope import Envelope as PykkaEnvelope

from tradenode.supervision import (
    Actor,
    ActorStoppedError,
    ActorSystem,
    ChildSpec,
    EventRecorder,
    SupervisionEventKind,
)

# The runtime's own inbox items and the test of what travels wrapped.
from tradenode.supervision._mail import Envelope, needs_envelope

from ._supervision_helpers import Journal, is_event, start_single, worker

K = SupervisionEventKind


def test_a_pykka_envelope_told_reaches_the_behaviour_as_itself(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    stop_like = PykkaEnvelope(Envelope("inner", None))
    plain = PykkaEnvelope("inner")
    assert needs_envelope(stop_like)
    assert needs_envelope(plain)
    address.tell(stop_like)
    address.tell(plain)
    assert address.ask("after") == ("w", 1, "after")
    got = [item[3] for item in journal.items if item[0] == "got"]
    assert len(got) == 3
    assert all(a is b for a, b in zip(got, [stop_like, plain, "after"], strict=True))
    assert address.is_alive
    assert address.cell.actor_ref.is_alive()
    assert not any(is_event(K.STOPPED, "/root/w")(e) for e in events.items)


def test_an_ask_of_a_pykka_envelope_is_answered_by_the_behaviour(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    message = PykkaEnvelope("inner")
    assert address.ask(message) == ("w", 1, message)


def test_a_tell_to_a_cell_whose_pykka_actor_stopped_is_dead_lettered_and_not_counted(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    # Stop the pykka actor under the cell behind the runtime's back (as a crash of
    # pykka's loop would): the address is still open, the inbox has no reader.
    address.cell.actor_ref.stop(block=True, timeout=10)
    message = object()
    address.tell(message)
    future = address.ask_future("asked")
    assert [d.message for d in dead_letters.items if d.reason == "recipient stopped"] == [
        message,
        "asked",
    ]
    with pytest.raises(ActorStoppedError):
        future.get(timeout=10)
    system.wait_quiescent(10)
    assert not [item for item in journal.items if item[0] == "got"]


class _Gate(Actor):
    """Blocks in its handler on ("block", entered, release); logs everything else."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "block":
            message[1].set()
            message[2].wait(10)
            return None
        self.journal(message)
        return message


def test_what_is_queued_behind_a_pykka_stop_is_dead_lettered_and_asks_fail(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("g", lambda: _Gate(journal)))
    entered, release = threading.Event(), threading.Event()
    address.tell(("block", entered, release))
    assert entered.wait(10)
    # pykka's own stop, queued as ``ActorRegistry.stop_all`` queues it, behind the
    # runtime's back: the address stays open, so what is told next is queued behind it.
    pykka_stop = address.cell.actor_ref.stop(block=False)
    late = object()
    address.tell(late)
    asked = address.ask_future("late ask")
    release.set()
    pykka_stop.get(timeout=10)
    assert address.cell.actor_stopped.wait(10)
    with pytest.raises(ActorStoppedError):
        asked.get(timeout=10)
    lettered = [d.message for d in dead_letters.items if d.reason == "actor stopped"]
    assert lettered[-2:] == [late, "late ask"]
    assert late not in journal.items
