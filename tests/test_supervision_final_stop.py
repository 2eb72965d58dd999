"""What an actor is told when it ends: is_stopping at a final stop, failed asks, failed starts."""

from __future__ import annotations

from typing import Any

import pytest

from tradenode.supervision import (
    Actor,
    ActorSystem,
    Backoff,
    ChildSpec,
    EventRecorder,
    Intensity,
    ManualClock,
    SupervisionError,
    SupervisionEventKind,
    SupervisorSpec,
)

from ._supervision_helpers import Journal, is_event, wait_running

K = SupervisionEventKind


class Lifecycle(Actor):
    """Journals ("stop", name, generation, is_stopping); raises on ("fail", exc)."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal

    def on_stop(self) -> None:
        self.journal(("stop", self.name, self.context.generation, self.context.is_stopping))

    def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "fail":
            raise message[1]
        self.journal(("got", self.name, self.context.generation, message))
        return message


def _spec(name: str, journal: Journal) -> ChildSpec:
    return ChildSpec(name, lambda: Lifecycle(name, journal))


def _stops(journal: Journal, name: str) -> list[tuple[Any, ...]]:
    return [item for item in journal.items if item[0] == "stop" and item[1] == name]


def test_when_the_root_gives_up_its_children_stop_with_is_stopping(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            intensity=Intensity(0, 60),
            children=(_spec("a", journal), _spec("b", journal), _spec("c", journal)),
        )
    )
    for name in "abc":
        wait_running(system, events, f"/root/{name}")
    b = system.lookup("/root/b")
    assert b is not None
    b.tell(("fail", RuntimeError("boom")))
    assert system.wait_terminated(timeout=10)
    assert system.failed
    # The siblings stop once, for good, and are told so.
    assert _stops(journal, "a") == [("stop", "a", 1, True)]
    assert _stops(journal, "c") == [("stop", "c", 1, True)]
    # The incarnation that failed ended at its failure, before anyone decided.
    assert _stops(journal, "b") == [("stop", "b", 1, False)]


def test_children_of_an_escalating_supervisor_stop_with_is_stopping_when_the_root_gives_up(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            intensity=Intensity(0, 60),
            children=(
                _spec("first", journal),
                SupervisorSpec(
                    "sub",
                    intensity=Intensity(0, 60),
                    children=(_spec("x", journal), _spec("y", journal), _spec("z", journal)),
                ),
            ),
        )
    )
    for path in ("/root/first", "/root/sub/x", "/root/sub/y", "/root/sub/z"):
        wait_running(system, events, path)
    y = system.lookup("/root/sub/y")
    assert y is not None
    y.tell(("fail", RuntimeError("boom")))
    assert system.wait_terminated(timeout=10)
    assert [e.path for e in events.items if e.kind is K.ESCALATED] == ["/root/sub", "/root"]
    assert _stops(journal, "x") == [("stop", "x", 1, True)]
    assert _stops(journal, "z") == [("stop", "z", 1, True)]
    assert _stops(journal, "first") == [("stop", "first", 1, True)]
    assert _stops(journal, "y") == [("stop", "y", 1, False)]
    # Children stop in reverse order, the subtree before the sibling started first.
    order = [item[1] for item in journal.items if item[0] == "stop" and item[3]]
    assert order == ["z", "x", "first"]


def test_children_of_an_escalating_supervisor_that_is_restarted_restart_once_keeping_mail(
    system: ActorSystem, events: EventRecorder
) -> None:
    """Paused, not ended, at the escalation; ended (is_stopping False) and restarted
    when the parent restarts the supervisor; what arrived meanwhile is kept."""
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            intensity=Intensity(10, 60),
            children=(
                SupervisorSpec(
                    "sub",
                    intensity=Intensity(0, 60),
                    children=(_spec("x", journal), _spec("y", journal)),
                ),
            ),
        )
    )
    x = wait_running(system, events, "/root/sub/x")
    y = wait_running(system, events, "/root/sub/y")
    y.tell(("fail", RuntimeError("boom")))
    x.tell("during")
    wait_running(system, events, "/root/sub/x", generation=2)
    wait_running(system, events, "/root/sub/y", generation=2)
    system.wait_quiescent()
    assert _stops(journal, "x") == [("stop", "x", 1, False)]
    assert _stops(journal, "y") == [("stop", "y", 1, False)]
    assert [item for item in journal.items if item[0] == "got"] in (
        [("got", "x", 2, "during")],
        [("got", "x", 1, "during")],  # handled before the escalation paused x
    )
    assert x.ask("after") == "after"


def test_an_ask_whose_handler_raised_a_base_exception_gets_it_wrapped_in_supervision_error(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(SupervisorSpec("root", children=(_spec("w", journal),)))
    w = wait_running(system, events, "/root/w")
    fatal = SystemExit(3)
    with pytest.raises(SupervisionError, match="/root/w: handler raised SystemExit") as caught:
        w.ask(("fail", fatal))
    assert caught.value.__cause__ is fatal
    wait_running(system, events, "/root/w", generation=2)
    ordinary = ValueError("bad order")
    with pytest.raises(ValueError, match="bad order") as raised:
        w.ask(("fail", ordinary))
    assert raised.value is ordinary  # an Exception comes back as itself


def test_a_failed_on_start_publishes_failed_never_started_and_restarted_only_when_one_succeeds(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    attempts: list[int] = []

    class Flaky(Actor):
        def on_start(self) -> None:
            attempts.append(self.context.generation)
            if len(attempts) <= 2:
                raise ConnectionError("venue down")

    system.start(
        SupervisorSpec(
            "root",
            intensity=Intensity(10, 60),
            children=(ChildSpec("f", Flaky, backoff=Backoff(1.0, 1.0, random_factor=0.0)),),
        )
    )
    for generation in (1, 2):
        events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/f", generation + 1))
        system.wait_quiescent()
        clock.advance(1.0)
    wait_running(system, events, "/root/f", generation=3)
    kinds = [(e.kind, e.generation) for e in events.items if e.path == "/root/f"]
    assert kinds == [
        (K.FAILED, 1),
        (K.RESTART_SCHEDULED, 2),
        (K.FAILED, 2),
        (K.RESTART_SCHEDULED, 3),
        (K.RESTARTED, 3),
    ]
    assert attempts == [1, 2, 3]
