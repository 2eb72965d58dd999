"""Small actors and waits shared by the supervision tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    ChildSpec,
    EventRecorder,
    SupervisionEvent,
    SupervisionEventKind,
    SupervisorSpec,
)


class Journal:
    """A thread-safe log of what actors did, kept outside them so it survives restarts."""

    def __init__(self) -> None:
        self.recorder = EventRecorder()

    def __call__(self, item: Any) -> None:
        self.recorder(item)

    @property
    def items(self) -> list[Any]:
        return self.recorder.items

    def wait_for(self, predicate: Callable[[Any], bool], count: int = 1) -> list[Any]:
        return self.recorder.wait_for(predicate, count=count)


class Worker(Actor):
    """Replies (name, generation, message); raises on ("fail", exc); logs lifecycle."""

    def __init__(self, name: str, journal: Journal) -> None:
        self.name = name
        self.journal = journal

    def on_start(self) -> None:
        self.journal(("start", self.name, self.context.generation))

    def on_stop(self) -> None:
        self.journal(("stop", self.name, self.context.generation))

    def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message and message[0] == "fail":
            raise message[1]
        if message == "exit":
            self.context.stop_self()
            return None
        self.journal(("got", self.name, self.context.generation, message))
        return (self.name, self.context.generation, message)


def worker(name: str, journal: Journal) -> Callable[[], Actor]:
    return lambda: Worker(name, journal)


def is_event(
    kind: SupervisionEventKind, path: str, generation: int | None = None
) -> Callable[[Any], bool]:
    def match(event: Any) -> bool:
        return (
            isinstance(event, SupervisionEvent)
            and event.kind is kind
            and event.path == path
            and (generation is None or event.generation == generation)
        )

    return match


def wait_running(
    system: ActorSystem, events: EventRecorder, path: str, generation: int = 1
) -> Address:
    kind = SupervisionEventKind.STARTED if generation == 1 else SupervisionEventKind.RESTARTED
    events.wait_for(is_event(kind, path, generation))
    address = system.lookup(path)
    assert address is not None
    return address


def start_single(
    system: ActorSystem, events: EventRecorder, spec: ChildSpec, **supervisor: Any
) -> Address:
    """Start ``spec`` as the one child of a supervisor ``root`` and wait until it runs."""
    system.start(SupervisorSpec("root", children=(spec,), **supervisor))
    return wait_running(system, events, f"/root/{spec.name}")


class Gate:
    """Blocks an actor's handler until the test opens it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.opened = threading.Event()

    def block(self) -> None:
        self.entered.set()
        assert self.opened.wait(30)
