"""OTP strategies, restart types, intensity and escalation."""

from __future__ import annotations

import logging

import pytest

from tradenode.supervision import (
    ActorSystem,
    ChildSpec,
    EventRecorder,
    Intensity,
    ManualClock,
    RestartType,
    Strategy,
    SupervisionEventKind,
    SupervisorSpec,
    which_children,
)

from ._supervision_helpers import Journal, is_event, wait_running, worker

K = SupervisionEventKind


def _tree(journal: Journal, strategy: Strategy, **intensity: float) -> SupervisorSpec:
    return SupervisorSpec(
        "root",
        strategy=strategy,
        intensity=Intensity(**intensity)
        if intensity
        else Intensity(max_restarts=10, within_seconds=60),
        children=tuple(ChildSpec(name, worker(name, journal)) for name in ("a", "b", "c")),
    )


def _start_three(system: ActorSystem, events: EventRecorder, journal: Journal, strategy: Strategy):
    system.start(_tree(journal, strategy))
    return [wait_running(system, events, f"/root/{n}") for n in ("a", "b", "c")]


def _generations(system: ActorSystem) -> dict[str, int]:
    root = system.root
    assert root is not None
    return {info.name: info.generation for info in which_children(root)}


def test_children_start_in_spec_order(system: ActorSystem, events: EventRecorder) -> None:
    journal = Journal()
    _start_three(system, events, journal, Strategy.ONE_FOR_ONE)
    assert [item for item in journal.items if item[0] == "start"] == [
        ("start", "a", 1),
        ("start", "b", 1),
        ("start", "c", 1),
    ]


def test_one_for_one_restarts_only_the_failed_child(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    a, b, c = _start_three(system, events, journal, Strategy.ONE_FOR_ONE)
    b.tell(("fail", RuntimeError("b broke")))
    wait_running(system, events, "/root/b", generation=2)
    assert b.ask("ping") == ("b", 2, "ping")
    assert a.ask("ping") == ("a", 1, "ping")
    assert c.ask("ping") == ("c", 1, "ping")
    assert _generations(system) == {"a": 1, "b": 2, "c": 1}


def test_one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    _, b, _ = _start_three(system, events, journal, Strategy.ONE_FOR_ALL)
    b.tell(("fail", RuntimeError("b broke")))
    for name in ("a", "b", "c"):
        wait_running(system, events, f"/root/{name}", generation=2)
    lifecycle = [item for item in journal.items if item[0] in ("start", "stop")][3:]
    assert lifecycle == [
        ("stop", "b", 1),
        ("stop", "c", 1),
        ("stop", "a", 1),
        ("start", "a", 2),
        ("start", "b", 2),
        ("start", "c", 2),
    ]
    assert _generations(system) == {"a": 2, "b": 2, "c": 2}


def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    a, b, _ = _start_three(system, events, journal, Strategy.REST_FOR_ONE)
    b.tell(("fail", RuntimeError("b broke")))
    wait_running(system, events, "/root/c", generation=2)
    assert b.ask("ping") == ("b", 2, "ping")
    assert a.ask("ping") == ("a", 1, "ping")
    lifecycle = [item for item in journal.items if item[0] in ("start", "stop")][3:]
    assert lifecycle == [("stop", "b", 1), ("stop", "c", 1), ("start", "b", 2), ("start", "c", 2)]


def test_temporary_child_is_never_restarted(system: ActorSystem, events: EventRecorder) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            children=(ChildSpec("temp", worker("temp", journal), restart=RestartType.TEMPORARY),),
        )
    )
    temp = wait_running(system, events, "/root/temp")
    temp.tell(("fail", RuntimeError("once")))
    events.wait_for(is_event(K.STOPPED, "/root/temp"))
    assert not temp.is_alive
    assert system.root is not None and which_children(system.root) == ()


def test_temporary_sibling_is_not_restarted_by_one_for_all(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            strategy=Strategy.ONE_FOR_ALL,
            children=(
                ChildSpec("perm", worker("perm", journal)),
                ChildSpec("temp", worker("temp", journal), restart=RestartType.TEMPORARY),
            ),
        )
    )
    perm = wait_running(system, events, "/root/perm")
    wait_running(system, events, "/root/temp")
    perm.tell(("fail", RuntimeError("perm broke")))
    wait_running(system, events, "/root/perm", generation=2)
    events.wait_for(is_event(K.STOPPED, "/root/temp"))
    assert system.root is not None
    assert [info.name for info in which_children(system.root)] == ["perm"]


def test_transient_child_restarts_after_failure_but_not_after_normal_exit(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root", children=(ChildSpec("t", worker("t", journal), restart=RestartType.TRANSIENT),)
        )
    )
    t = wait_running(system, events, "/root/t")
    t.tell(("fail", RuntimeError("abnormal")))
    wait_running(system, events, "/root/t", generation=2)
    t.tell("exit")
    events.wait_for(is_event(K.STOPPED, "/root/t"))
    assert not t.is_alive


def test_permanent_child_is_restarted_even_after_a_normal_exit(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(SupervisorSpec("root", children=(ChildSpec("p", worker("p", journal)),)))
    p = wait_running(system, events, "/root/p")
    p.tell("exit")
    wait_running(system, events, "/root/p", generation=2)
    assert p.ask("ping") == ("p", 2, "ping")


def test_restarts_within_intensity_do_not_escalate(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    system.start(_tree(journal, Strategy.ONE_FOR_ONE, max_restarts=2, within_seconds=10))
    a = wait_running(system, events, "/root/a")
    for generation in range(2, 6):
        a.tell(("fail", RuntimeError(f"failure {generation}")))
        wait_running(system, events, "/root/a", generation=generation)
        clock.advance(6)
    assert not any(is_event(K.ESCALATED, "/root")(e) for e in events.items)


def test_too_many_restarts_escalate_and_the_parent_restarts_the_subtree(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    inner = SupervisorSpec(
        "inner",
        intensity=Intensity(max_restarts=2, within_seconds=10),
        children=(ChildSpec("x", worker("x", journal)), ChildSpec("y", worker("y", journal))),
    )
    system.start(SupervisorSpec("root", intensity=Intensity(5, 10), children=(inner,)))
    x = wait_running(system, events, "/root/inner/x")
    y = wait_running(system, events, "/root/inner/y")
    x.tell(("fail", RuntimeError("1")))
    wait_running(system, events, "/root/inner/x", generation=2)
    x.tell(("fail", RuntimeError("2")))
    wait_running(system, events, "/root/inner/x", generation=3)
    x.tell(("fail", RuntimeError("3")))
    escalated = events.wait_for(is_event(K.ESCALATED, "/root/inner"))[0]
    assert "3 restarts within 10" in escalated.detail
    wait_running(system, events, "/root/inner", generation=2)
    wait_running(system, events, "/root/inner/y", generation=2)
    assert x.ask("ping") == ("x", 4, "ping")
    assert y.ask("ping") == ("y", 2, "ping")
    assert system.lookup("/root/inner/x") is x


def test_root_giving_up_stops_the_node_cleanly_with_a_clear_log_line(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    system = ActorSystem(clock=clock)
    events = EventRecorder()
    system.events.subscribe(events)
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            intensity=Intensity(max_restarts=1, within_seconds=5),
            children=(ChildSpec("a", worker("a", journal)), ChildSpec("b", worker("b", journal))),
        )
    )
    a = wait_running(system, events, "/root/a")
    wait_running(system, events, "/root/b")
    a.tell(("fail", RuntimeError("first")))
    wait_running(system, events, "/root/a", generation=2)
    a.tell(("fail", RuntimeError("second")))
    assert system.wait_terminated(timeout=10)
    assert system.failed
    assert system.termination_reason is not None
    assert "RestartIntensityExceeded" in system.termination_reason
    assert "2 restarts within 5" in system.termination_reason
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1 and "stopping the node" in critical[0].getMessage()
    stops = [item for item in journal.items if item[0] == "stop"]
    assert stops[-2:] == [("stop", "b", 1), ("stop", "a", 1)] or ("stop", "b", 1) in stops
    assert not a.is_alive
