"""The runtime's threads run under ``SCHED_BATCH`` by default (``ThreadScheduling``).

Every actor's thread, the threads an actor starts and the journal's own; a
node's ``thread_scheduling: default`` leaves them as started; a policy the
operator chose (``chrt``) is never overridden, and a refusal is logged, not
raised. What the policy buys is measured, not tested (``benchmarks/ab.py``:
no test asserts a time).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tradenode import ConfigError, Node, parse_config

# ``_scheduling``: the refusal path's seam, and its once-per-process log.
from tradenode.supervision import (
    Actor,
    ActorSystem,
    ChildSpec,
    EventRecorder,
    ManualClock,
    ThreadScheduling,
    TrioThread,
    _scheduling,
)

from ._node_helpers import running_node
from ._supervision_helpers import start_single

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setscheduler"), reason="Linux's scheduling policies"
)

BATCH = getattr(os, "SCHED_BATCH", -1)
OTHER = getattr(os, "SCHED_OTHER", -1)
IDLE = getattr(os, "SCHED_IDLE", -1)


async def _policy_here() -> int:
    return os.sched_getscheduler(0)


class PolicyProbe(Actor):
    """Answers the scheduling policy of its own thread, or of the trio thread it
    started in ``on_start`` (as a broker starts its session's loop)."""

    def __init__(self) -> None:
        self.loop: TrioThread | None = None

    def on_start(self) -> None:
        self.loop = TrioThread("policy-probe")

    def on_stop(self) -> None:
        if self.loop is not None:
            self.loop.close()

    def receive(self, message: Any) -> Any:
        if message == "own":
            return os.sched_getscheduler(0)
        assert message == "started" and self.loop is not None
        return self.loop.run(_policy_here)


@pytest.fixture
def main_thread_policy() -> Iterator[None]:
    """The test's own thread starts under the operating system's default, as a node's
    caller usually does; a test must not leave it otherwise."""
    if os.sched_getscheduler(0) != OTHER:
        pytest.skip("this test process was not started under SCHED_OTHER")
    yield
    assert os.sched_getscheduler(0) == OTHER


def _system_probe(scheduling: ThreadScheduling | None) -> tuple[ActorSystem, Any]:
    system = (
        ActorSystem(clock=ManualClock())
        if scheduling is None
        else ActorSystem(clock=ManualClock(), thread_scheduling=scheduling)
    )
    events = EventRecorder()
    system.events.subscribe(events)
    probe = start_single(system, events, ChildSpec("probe", PolicyProbe))
    return system, probe


@pytest.mark.usefixtures("main_thread_policy")
@pytest.mark.parametrize(
    ("scheduling", "expected"),
    [(None, BATCH), (ThreadScheduling.BATCH, BATCH), (ThreadScheduling.DEFAULT, OTHER)],
    ids=["by-default", "batch", "default"],
)
def test_an_actor_and_the_threads_it_starts_run_under_the_systems_scheduling(
    scheduling: ThreadScheduling | None, expected: int
) -> None:
    """``SCHED_BATCH`` unless told otherwise; ``default`` leaves the threads as started."""
    system, probe = _system_probe(scheduling)
    try:
        assert system.thread_scheduling is (scheduling or ThreadScheduling.BATCH)
        assert probe.ask("own") == expected
        assert probe.ask("started") == expected
    finally:
        system.shutdown(timeout=10)


@pytest.mark.usefixtures("main_thread_policy")
def test_a_policy_the_operator_chose_is_left_alone() -> None:
    """A node started under ``chrt --idle`` (here: from a thread under SCHED_IDLE,
    whose policy the actors' threads inherit) keeps it."""
    started: list[tuple[ActorSystem, Any]] = []

    def start_under_idle() -> None:
        os.sched_setscheduler(0, IDLE, os.sched_param(0))
        started.append(_system_probe(ThreadScheduling.BATCH))

    starter = threading.Thread(target=start_under_idle)
    starter.start()
    starter.join(timeout=10)
    assert started, "the system did not start"
    system, probe = started[0]
    try:
        assert probe.ask("own") == IDLE
        assert probe.ask("started") == IDLE
    finally:
        system.shutdown(timeout=10)


def _on_a_fresh_thread(action: Callable[[], Any]) -> Any:
    """Run ``action`` on a thread of its own under the system's default policy, so the
    test's own thread is never changed; return what it returned."""
    result: list[Any] = []

    def body() -> None:
        os.sched_setscheduler(0, OTHER, os.sched_param(0))
        result.append(action())

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert result, "the thread did not finish"
    return result[0]


def test_a_refusal_is_logged_once_and_the_thread_goes_on_unchanged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_scheduling, "_refusal_logged", threading.Event())
    calls: list[int] = []

    def refuse(pid: int, policy: int, param: os.sched_param) -> None:
        calls.append(policy)
        raise PermissionError(1, "Operation not permitted")

    def try_twice() -> tuple[bool, bool, int]:
        first = _scheduling.apply_thread_scheduling(ThreadScheduling.BATCH, _set_policy=refuse)
        second = _scheduling.apply_thread_scheduling(ThreadScheduling.BATCH, _set_policy=refuse)
        return first, second, os.sched_getscheduler(0)

    with caplog.at_level(logging.WARNING, logger="tradenode.supervision"):
        first, second, policy = _on_a_fresh_thread(try_twice)
    assert (first, second, policy) == (False, False, OTHER)
    assert calls == [BATCH, BATCH]
    refusals = [r for r in caplog.records if "thread scheduling batch refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "Operation not permitted" in refusals[0].getMessage()


def test_a_thread_already_under_batch_and_default_scheduling_ask_nothing_of_the_system() -> None:
    def never(pid: int, policy: int, param: os.sched_param) -> None:
        raise AssertionError("the policy was set again")

    def apply_both() -> tuple[bool, bool, int]:
        default = _scheduling.apply_thread_scheduling(ThreadScheduling.DEFAULT, _set_policy=never)
        os.sched_setscheduler(0, BATCH, os.sched_param(0))
        batch = _scheduling.apply_thread_scheduling(ThreadScheduling.BATCH, _set_policy=never)
        return default, batch, os.sched_getscheduler(0)

    assert _on_a_fresh_thread(apply_both) == (True, True, BATCH)


# -- a node ------------------------------------------------------------------------------


def _threads_now() -> set[int]:
    return {thread.ident for thread in threading.enumerate() if thread.ident is not None}


def _node_thread_policies(before: set[int]) -> dict[str, int]:
    """The policy of every actor thread and journal thread started since ``before``
    (the threads then running: another test's, still finishing, are not the node's),
    by thread name."""
    return {
        thread.name: os.sched_getscheduler(thread.native_id)
        for thread in threading.enumerate()
        if thread.ident not in before
        and thread.native_id is not None
        and thread.is_alive()
        and (thread.name.startswith("Cell-") or thread.name.startswith("tradenode-journal-"))
    }


@pytest.mark.usefixtures("main_thread_policy")
def test_a_node_runs_its_actors_and_its_journal_under_sched_batch(tmp_path: Path) -> None:
    before = _threads_now()
    with running_node(f"journal: {{path: '{tmp_path / 'journal'}', fsync: group}}\n") as harness:
        harness.strategy("s1")
        policies = _node_thread_policies(before)
    assert any(name.startswith("tradenode-journal-") for name in policies), policies
    assert sum(name.startswith("Cell-") for name in policies) >= 8, policies
    assert set(policies.values()) == {BATCH}, policies


@pytest.mark.usefixtures("main_thread_policy")
def test_a_node_with_default_scheduling_leaves_its_threads_as_started(tmp_path: Path) -> None:
    config = parse_config(
        "node: {name: testnode, thread_scheduling: default}\n"
        "venues: [{name: paper, paper: {tick_interval_ms: 1000}}]\n"
        f"journal: {{path: '{tmp_path / 'journal'}', fsync: group}}\n"
    )
    before = _threads_now()
    node = Node(config, clock=ManualClock())
    node.start()
    try:
        policies = _node_thread_policies(before)
    finally:
        node.stop(timeout=10)
    assert any(name.startswith("tradenode-journal-") for name in policies), policies
    assert set(policies.values()) == {OTHER}, policies


def test_an_unknown_thread_scheduling_is_a_config_error_naming_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("node:\n  thread_scheduling: realtime\n")
    assert "node.thread_scheduling" in str(caught.value)
    assert parse_config("").node.thread_scheduling is ThreadScheduling.BATCH
    assert (
        parse_config("node:\n  thread_scheduling: default\n").node.thread_scheduling
        is ThreadScheduling.DEFAULT
    )
