"""Each pykka 4.5 pitfall the runtime designs around, pinned twice: bare pykka
shows the pitfall (so an upgrade that changes it is noticed) and our runtime
shows it handled."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pykka
import pytest
import trio

from tradenode.supervision import (
    ActorSystem,
    ChildSpec,
    EventRecorder,
    SupervisionEventKind,
    SupervisorSpec,
    TrioLoopClosed,
    TrioThread,
    ask_async,
)

from ._supervision_helpers import Journal, is_event, wait_running, worker

K = SupervisionEventKind


class _BareRecorder(pykka.ThreadingActor):
    def __init__(self, seen: list[Any], gate: threading.Event) -> None:
        super().__init__()
        self.seen = seen
        self.gate = gate

    def on_receive(self, message: Any) -> Any:
        if message == "wait":
            self.gate.wait(10)
        if message == "boom":
            raise RuntimeError("boom")
        self.seen.append(message)
        return message


def test_bare_pykka_tell_failure_stops_the_actor_and_drops_queued_tells() -> None:
    seen: list[Any] = []
    gate = threading.Event()
    ref = _BareRecorder.start(seen, gate)
    ref.tell("wait")
    ref.tell("boom")
    for n in range(5):
        ref.tell(n)
    gate.set()
    with pytest.raises(pykka.ActorDeadError):
        for _ in range(1000):
            ref.ask("probe", timeout=5)
    assert seen == ["wait"]


def test_ours_keeps_the_queued_tells_after_a_tell_failure(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(SupervisorSpec("root", children=(ChildSpec("w", worker("w", journal)),)))
    w = wait_running(system, events, "/root/w")
    w.tell(("fail", RuntimeError("boom")))
    for n in range(5):
        w.tell(n)
    journal.wait_for(lambda item: item[0] == "got", count=5)
    assert [item[3] for item in journal.items if item[0] == "got"] == [0, 1, 2, 3, 4]


def test_bare_pykka_ask_failure_only_fails_the_caller() -> None:
    ref = _BareRecorder.start([], threading.Event())
    with pytest.raises(RuntimeError, match="boom"):
        ref.ask("boom")
    assert ref.is_alive()
    ref.stop()


def test_ours_reports_an_ask_failure_to_the_supervisor(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(SupervisorSpec("root", children=(ChildSpec("w", worker("w", journal)),)))
    w = wait_running(system, events, "/root/w")
    with pytest.raises(RuntimeError):
        w.ask(("fail", RuntimeError("boom")))
    events.wait_for(is_event(K.FAILED, "/root/w", 1))
    wait_running(system, events, "/root/w", generation=2)


class _BareFailingStart(pykka.ThreadingActor):
    hooks: ClassVar[list[str]] = []

    def on_start(self) -> None:
        raise OSError("cannot connect")

    def on_stop(self) -> None:
        self.hooks.append("on_stop")

    def on_failure(self, *args: Any) -> None:
        self.hooks.append("on_failure")


def test_bare_pykka_on_start_failure_is_a_silent_death() -> None:
    ref = _BareFailingStart.start()
    with pytest.raises(pykka.ActorDeadError):
        for _ in range(1000):
            ref.ask("probe", timeout=5)
    assert _BareFailingStart.hooks == []


def test_bare_pykka_base_exception_stops_every_actor_in_the_process() -> None:
    bystander = _BareRecorder.start([], threading.Event())

    class Fatal(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            raise SystemExit(1)

    Fatal.start().tell("die")
    with pytest.raises(pykka.ActorDeadError):
        for _ in range(1000):
            bystander.ask("probe", timeout=5)


def test_bare_pykka_future_cannot_be_awaited_in_trio_but_ask_async_works(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(SupervisorSpec("root", children=(ChildSpec("w", worker("w", journal)),)))
    w = wait_running(system, events, "/root/w")
    bare = _BareRecorder.start([], threading.Event())

    async def main() -> Any:
        with pytest.raises(TypeError):
            await bare.ask("x", block=False)
        return await ask_async(w, "from trio")

    assert trio.run(main) == ("w", 1, "from trio")
    bare.stop()


def test_trio_thread_turns_a_finished_loop_into_an_ordinary_error() -> None:
    loop = TrioThread("test")

    async def double(x: int) -> int:
        await trio.lowlevel.checkpoint()
        return 2 * x

    assert loop.run(double, 21) == 42
    loop.close()
    with pytest.raises(TrioLoopClosed):
        loop.run(double, 1)


def test_trio_thread_turns_a_cancelled_call_into_an_ordinary_error() -> None:
    loop = TrioThread("test")

    async def cancelled_outside() -> None:
        trio.lowlevel.current_task().parent_nursery.cancel_scope.cancel()  # type: ignore[union-attr]
        await trio.lowlevel.checkpoint()

    with pytest.raises(TrioLoopClosed, match="cancelled the call") as caught:
        loop.run(cancelled_outside)
    assert isinstance(caught.value.__cause__, trio.Cancelled)
    loop.close()
