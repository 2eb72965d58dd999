"""Mailboxes across restarts, backoff, dead letters, death watch, shutdown, membership."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio

from tradenode.supervision import (
    TRANSITIONS,
    Actor,
    ActorStoppedError,
    ActorSystem,
    Address,
    Backoff,
    CellState,
    ChildSpec,
    EventRecorder,
    Intensity,
    ManualClock,
    RestartType,
    Strategy,
    SupervisionError,
    SupervisionEventKind,
    SupervisorSpec,
    SystemClock,
    Terminated,
    add_child,
    remove_child,
    which_children,
)

from ._supervision_helpers import Gate, Journal, is_event, start_single, wait_running, worker

K = SupervisionEventKind


# -- backoff -----------------------------------------------------------------


def test_backoff_doubles_from_min_to_max_and_waits_for_the_clock(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    spec = ChildSpec(
        "venue",
        worker("venue", journal),
        backoff=Backoff(1.0, 8.0, random_factor=0.0, reset_after=1000),
    )
    venue = start_single(system, events, spec, intensity=Intensity(100, 1000))
    delays = []
    for generation in range(2, 7):
        venue.tell(("fail", ConnectionError("socket closed")))
        scheduled = events.wait_for(
            is_event(K.RESTART_SCHEDULED, "/root/venue"), count=generation - 1
        )
        delays.append(scheduled[-1].delay)
        assert clock.wait_for_timers(1) == [pytest.approx(scheduled[-1].delay)]
        clock.advance(scheduled[-1].delay - 0.001)
        assert not any(is_event(K.RESTARTED, "/root/venue", generation)(e) for e in events.items)
        clock.advance(0.001)
        wait_running(system, events, "/root/venue", generation)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]


def _jittered_delays(seed: int) -> list[float]:
    clock = ManualClock()
    system = ActorSystem(clock=clock, seed=seed)
    events = EventRecorder()
    system.events.subscribe(events)
    try:
        spec = ChildSpec(
            "venue", worker("venue", Journal()), backoff=Backoff(1.0, 30.0, random_factor=0.5)
        )
        venue = start_single(system, events, spec, intensity=Intensity(100, 1000))
        for generation in range(2, 6):
            venue.tell(("fail", ConnectionError("down")))
            scheduled = events.wait_for(
                is_event(K.RESTART_SCHEDULED, "/root/venue"), count=generation - 1
            )
            clock.advance(scheduled[-1].delay)
            wait_running(system, events, "/root/venue", generation)
        return [e.delay for e in events.items if is_event(K.RESTART_SCHEDULED, "/root/venue")(e)]
    finally:
        system.shutdown(timeout=10)


def test_backoff_jitter_is_bounded_and_reproducible_from_the_seed() -> None:
    first, again, other = _jittered_delays(11), _jittered_delays(11), _jittered_delays(12)
    assert first == again
    assert first != other
    for attempt, delay in enumerate(first):
        base = min(30.0, 2.0**attempt)
        assert base <= delay <= base * 1.5


def test_backoff_resets_after_a_quiet_period(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    spec = ChildSpec(
        "venue", worker("venue", Journal()), backoff=Backoff(1.0, 8.0, 0.0, reset_after=60)
    )
    venue = start_single(system, events, spec, intensity=Intensity(100, 1000))
    for generation, expected in ((2, 1.0), (3, 2.0)):
        venue.tell(("fail", ConnectionError("down")))
        scheduled = events.wait_for(
            is_event(K.RESTART_SCHEDULED, "/root/venue"), count=generation - 1
        )
        assert scheduled[-1].delay == expected
        clock.advance(expected)
        wait_running(system, events, "/root/venue", generation)
    clock.advance(60)
    venue.tell(("fail", ConnectionError("down again, much later")))
    scheduled = events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/venue"), count=3)
    assert scheduled[-1].delay == 1.0


class SlowDown(ConnectionError):
    """A failure that names when retrying can work, as a venue's Retry-After does."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"come back in {retry_after}s")
        self.retry_after = retry_after


@pytest.mark.parametrize("backoff", [Backoff(1.0, 8.0, 0.0), None], ids=["backoff", "immediate"])
def test_a_failure_that_names_its_retry_after_delays_the_restart_at_least_that_long(
    system: ActorSystem, events: EventRecorder, clock: ManualClock, backoff: Backoff | None
) -> None:
    spec = ChildSpec("venue", worker("venue", Journal()), backoff=backoff)
    venue = start_single(system, events, spec, intensity=Intensity(100, 1000))
    venue.tell(("fail", SlowDown(30)))
    scheduled = events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/venue"))
    assert scheduled[-1].delay == 30
    clock.advance(29.9)
    assert not any(is_event(K.RESTARTED, "/root/venue", 2)(e) for e in events.items)
    clock.advance(0.1)
    wait_running(system, events, "/root/venue", 2)
    if backoff is not None:
        venue.tell(("fail", SlowDown(0.5)))
        scheduled = events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/venue"), count=2)
        assert scheduled[-1].delay == 2.0, "a short Retry-After never shortens the backoff"


# -- mailbox across restarts ---------------------------------------------------


class Sequencer(Actor):
    """Records (sender, seq); fails on the poisoned message."""

    def __init__(self, journal: Journal, poison: tuple[int, int]) -> None:
        self.journal = journal
        self.poison = poison

    def receive(self, message: Any) -> Any:
        if message == self.poison:
            raise RuntimeError(f"poisoned by {message}")
        self.journal(message)


def test_mailbox_survives_restart_under_a_concurrent_flood(
    system: ActorSystem, events: EventRecorder, clock: ManualClock, dead_letters: EventRecorder
) -> None:
    senders, per_sender, poison = 4, 2500, (2, 100)
    journal = Journal()
    spec = ChildSpec(
        "seq", lambda: Sequencer(journal, poison), backoff=Backoff(5.0, 5.0, random_factor=0.0)
    )
    address = start_single(system, events, spec)

    def flood(sender: int) -> None:
        for seq in range(per_sender):
            address.tell((sender, seq))

    threads = [threading.Thread(target=flood, args=(sender,)) for sender in range(senders)]
    for thread in threads:
        thread.start()
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/seq"))
    for thread in threads:
        thread.join()
    clock.advance(5.0)
    journal.wait_for(lambda _: True, count=senders * per_sender - 1)
    processed = journal.items
    assert len(processed) == senders * per_sender - 1
    for sender in range(senders):
        seqs = [seq for s, seq in processed if s == sender]
        expected = [seq for seq in range(per_sender) if (sender, seq) != poison]
        assert seqs == expected
    letters = dead_letters.items
    assert [(d.message, d.reason) for d in letters] == [(poison, "handler raised")]
    assert isinstance(letters[0].error, RuntimeError)


def test_messages_sent_while_suspended_by_a_sibling_restart_are_kept_in_order(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    gate = Gate()

    class Slow(Actor):
        def receive(self, message: Any) -> Any:
            if message == "block":
                gate.block()
            journal(("slow", self.context.generation, message))

    system.start(
        SupervisorSpec(
            "root",
            strategy=Strategy.ONE_FOR_ALL,
            children=(ChildSpec("failing", worker("failing", journal)), ChildSpec("slow", Slow)),
        )
    )
    failing = wait_running(system, events, "/root/failing")
    slow = wait_running(system, events, "/root/slow")
    slow.tell("block")
    gate.entered.wait(10)
    failing.tell(("fail", RuntimeError("sibling broke")))
    for n in range(50):
        slow.tell(n)
    gate.opened.set()
    wait_running(system, events, "/root/slow", generation=2)
    journal.wait_for(lambda item: item[0] == "slow", count=51)
    slow_items = [item for item in journal.items if item[0] == "slow"]
    assert slow_items[0] == ("slow", 1, "block")
    assert [message for _, _, message in slow_items[1:]] == list(range(50))
    generations = [generation for _, generation, _ in slow_items[1:]]
    assert generations == sorted(generations)


def test_stash_overflow_is_visible_in_dead_letters(
    system: ActorSystem, events: EventRecorder, clock: ManualClock, dead_letters: EventRecorder
) -> None:
    journal = Journal()
    spec = ChildSpec(
        "small",
        worker("small", journal),
        backoff=Backoff(1.0, 1.0, random_factor=0.0),
        stash_capacity=3,
    )
    small = start_single(system, events, spec)
    small.tell(("fail", RuntimeError("down")))
    for n in range(5):
        small.tell(n)
    overflow = dead_letters.wait_for(lambda d: d.reason.startswith("stash overflow"), count=2)
    assert [d.message for d in overflow] == [3, 4]
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/small"))
    clock.advance(1.0)
    journal.wait_for(lambda item: item[0] == "got", count=3)
    assert [item[3] for item in journal.items if item[0] == "got"] == [0, 1, 2]


# -- failures on every path ------------------------------------------------------


def test_an_ask_that_raises_fails_the_caller_and_restarts_the_actor(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    with pytest.raises(ValueError, match="bad request"):
        address.ask(("fail", ValueError("bad request")))
    wait_running(system, events, "/root/w", generation=2)
    assert address.ask("ping") == ("w", 2, "ping")


@pytest.mark.parametrize("where", ["constructor", "on_start"])
def test_a_child_failing_to_start_is_restarted_and_queued_messages_wait_for_it(
    system: ActorSystem, events: EventRecorder, where: str
) -> None:
    attempts = []

    class Flaky(Actor):
        def __init__(self) -> None:
            attempts.append(where)
            if where == "constructor" and len(attempts) < 3:
                raise OSError("cannot construct yet")

        def on_start(self) -> None:
            if where == "on_start" and len(attempts) < 3:
                raise OSError("cannot start yet")

        def receive(self, message: Any) -> Any:
            return (self.context.generation, message)

    system.start(SupervisorSpec("root", children=(ChildSpec("flaky", Flaky),)))
    events.wait_for(is_event(K.RESTARTED, "/root/flaky", 3))
    flaky = system.lookup("/root/flaky")
    assert flaky is not None
    assert flaky.ask("hello") == (3, "hello")
    failures = [e for e in events.items if is_event(K.FAILED, "/root/flaky")(e)]
    assert [type(e.error) for e in failures] == [OSError, OSError]


def test_a_child_that_never_starts_escalates_instead_of_hanging(clock: ManualClock) -> None:
    system = ActorSystem(clock=clock)

    class Broken(Actor):
        def on_start(self) -> None:
            raise OSError("config points at nothing")

    system.start(
        SupervisorSpec("root", intensity=Intensity(3, 5), children=(ChildSpec("b", Broken),))
    )
    assert system.wait_terminated(timeout=10)
    assert system.failed and "4 restarts" in (system.termination_reason or "")


def _captured_trio_cancelled() -> BaseException:
    captured: list[BaseException] = []

    async def main() -> None:
        with trio.CancelScope() as scope:
            scope.cancel()
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled as exc:
                captured.append(exc)
                raise

    trio.run(main)
    return captured[0]


@pytest.mark.parametrize(
    "fatal",
    [KeyboardInterrupt("ctrl-c"), SystemExit(3), _captured_trio_cancelled()],
    ids=["KeyboardInterrupt", "SystemExit", "trio.Cancelled"],
)
def test_base_exceptions_are_contained_to_the_one_actor(
    system: ActorSystem, events: EventRecorder, fatal: BaseException
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            children=(
                ChildSpec("victim", worker("victim", journal)),
                ChildSpec("bystander", worker("bystander", journal)),
            ),
        )
    )
    victim = wait_running(system, events, "/root/victim")
    bystander = wait_running(system, events, "/root/bystander")
    with pytest.raises(SupervisionError, match=type(fatal).__name__):
        victim.ask(("fail", fatal))
    wait_running(system, events, "/root/victim", generation=2)
    assert bystander.ask("still here?") == ("bystander", 1, "still here?")
    assert victim.ask("back?") == ("victim", 2, "back?")


# -- dead letters ------------------------------------------------------------------


def test_messages_to_a_stopped_actor_go_to_dead_letters(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder
) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    assert system.root is not None
    assert remove_child(system.root, "w")
    address.tell("too late")
    with pytest.raises(ActorStoppedError):
        address.ask("also too late")
    reasons = [(d.message, d.reason) for d in dead_letters.items]
    assert reasons == [("too late", "recipient stopped"), ("also too late", "recipient stopped")]


def test_messages_queued_behind_a_final_stop_are_dead_lettered_not_dropped(
    system: ActorSystem, events: EventRecorder, dead_letters: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()
    spec = ChildSpec("w", worker("w", journal), backoff=Backoff(10.0, 10.0, 0.0))
    address = start_single(system, events, spec)
    address.tell(("fail", RuntimeError("down")))
    for n in range(3):
        address.tell(n)
    events.wait_for(is_event(K.RESTART_SCHEDULED, "/root/w"))
    assert system.root is not None
    remove_child(system.root, "w")
    stopped = [(d.message, d.reason) for d in dead_letters.items if d.reason == "actor stopped"]
    assert stopped == [(0, "actor stopped"), (1, "actor stopped"), (2, "actor stopped")]


# -- death watch ---------------------------------------------------------------------


class Watcher(Actor):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "watch":
            self.context.watch(message[1], *message[2:])
        elif isinstance(message, tuple) and message[0] == "unwatch":
            self.context.unwatch(message[1])
        elif isinstance(message, tuple) and message[0] == "block-then-unwatch":
            message[1].block()
            self.context.unwatch(message[2])
        else:
            self.journal(message)


def _watch_setup(system: ActorSystem, events: EventRecorder) -> tuple[Address, Address, Journal]:
    seen = Journal()
    system.start(
        SupervisorSpec(
            "root",
            children=(
                ChildSpec("target", worker("target", Journal())),
                ChildSpec("watcher", lambda: Watcher(seen)),
            ),
        )
    )
    return (
        wait_running(system, events, "/root/target"),
        wait_running(system, events, "/root/watcher"),
        seen,
    )


def test_watcher_is_told_when_the_watched_actor_stops_but_not_when_it_restarts(
    system: ActorSystem, events: EventRecorder
) -> None:
    target, watcher, seen = _watch_setup(system, events)
    watcher.ask(("watch", target))
    target.tell(("fail", RuntimeError("restart, not death")))
    wait_running(system, events, "/root/target", generation=2)
    assert system.root is not None
    remove_child(system.root, "target")
    assert seen.wait_for(lambda m: isinstance(m, Terminated)) == [Terminated(target)]
    watcher.ask("sync")
    assert seen.items == [Terminated(target), "sync"]


def test_watching_an_already_dead_actor_notifies_at_once_with_a_custom_message(
    system: ActorSystem, events: EventRecorder
) -> None:
    target, watcher, seen = _watch_setup(system, events)
    assert system.root is not None
    remove_child(system.root, "target")
    watcher.ask(("watch", target, ("venue-gone", "target")))
    assert seen.wait_for(lambda m: m == ("venue-gone", "target"))


def test_unwatch_discards_a_notice_already_queued(
    system: ActorSystem, events: EventRecorder
) -> None:
    target, watcher, seen = _watch_setup(system, events)
    gate = Gate()
    watcher.ask(("watch", target))
    watcher.tell(("block-then-unwatch", gate, target))
    gate.entered.wait(10)
    assert system.root is not None
    remove_child(system.root, "target")
    watcher.tell("after")
    gate.opened.set()
    seen.wait_for(lambda m: m == "after")
    assert not any(isinstance(m, Terminated) for m in seen.items)


# -- shutdown and membership -------------------------------------------------------------


def test_shutdown_stops_children_before_parents_in_reverse_start_order(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            children=(
                ChildSpec("first", worker("first", journal)),
                SupervisorSpec(
                    "group",
                    children=(
                        ChildSpec("inner1", worker("inner1", journal)),
                        ChildSpec("inner2", worker("inner2", journal)),
                    ),
                ),
                ChildSpec("last", worker("last", journal)),
            ),
        )
    )
    wait_running(system, events, "/root/last")
    system.shutdown(timeout=10)
    stopped = [e.path for e in events.items if e.kind is K.STOPPED]
    assert stopped == [
        "/root/last",
        "/root/group/inner2",
        "/root/group/inner1",
        "/root/group",
        "/root/first",
        "/root",
    ]


def test_a_child_stuck_past_its_shutdown_timeout_is_abandoned_and_shutdown_completes(
    system: ActorSystem, events: EventRecorder
) -> None:
    gate = Gate()

    class Stuck(Actor):
        def on_stop(self) -> None:
            gate.block()

    journal = Journal()
    system.start(
        SupervisorSpec(
            "root",
            children=(
                ChildSpec("ok", worker("ok", journal)),
                ChildSpec("stuck", Stuck, shutdown_timeout=0.05),
            ),
        )
    )
    wait_running(system, events, "/root/stuck")
    system.shutdown(timeout=10)
    abandoned = [e for e in events.items if e.kind is K.STOPPED and e.path == "/root/stuck"]
    assert abandoned[0].detail == "abandoned after shutdown timeout"
    assert ("stop", "ok", 1) in journal.items
    gate.opened.set()


def test_children_are_added_and_removed_at_runtime(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    system.start(SupervisorSpec("root", children=(ChildSpec("static", worker("static", journal)),)))
    root = system.root
    assert root is not None
    wait_running(system, events, "/root/static")
    added = add_child(root, ChildSpec("adapter", worker("adapter", journal)))
    assert added.ask("order") == ("adapter", 1, "order")
    with pytest.raises(ValueError, match="already has a child 'adapter'"):
        add_child(root, ChildSpec("adapter", worker("adapter", journal)))
    subtree = add_child(
        root, SupervisorSpec("brokers", children=(ChildSpec("paper", worker("paper", journal)),))
    )
    assert [i.name for i in which_children(subtree)] == ["paper"]
    assert [i.name for i in which_children(root)] == ["static", "adapter", "brokers"]
    assert remove_child(root, "adapter")
    assert not remove_child(root, "adapter")
    assert not added.is_alive
    assert [i.name for i in which_children(root)] == ["static", "brokers"]


def test_children_added_at_runtime_survive_their_supervisors_restart(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    brokers = SupervisorSpec("brokers", intensity=Intensity(0, 5))
    system.start(SupervisorSpec("root", children=(brokers,)))
    sup = wait_running(system, events, "/root/brokers")
    adapter = add_child(sup, ChildSpec("venue", worker("venue", journal)))
    adapter.tell(("fail", RuntimeError("one too many for intensity 0")))
    wait_running(system, events, "/root/brokers", generation=2)
    assert adapter.ask("still mine") == ("venue", 2, "still mine")
    assert system.lookup("/root/brokers/venue") is adapter


def test_addresses_are_stable_across_restarts(system: ActorSystem, events: EventRecorder) -> None:
    journal = Journal()
    address = start_single(system, events, ChildSpec("w", worker("w", journal)))
    for generation in (2, 3):
        address.tell(("fail", RuntimeError("again")))
        wait_running(system, events, "/root/w", generation)
        assert system.lookup("/root/w") is address


# -- timers and lifecycle table ------------------------------------------------------------


def test_timers_follow_the_clock_and_die_with_their_incarnation(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    journal = Journal()

    class Ticker(Actor):
        def on_start(self) -> None:
            self.context.schedule_repeating(1.0, ("tick", self.context.generation))

        def receive(self, message: Any) -> Any:
            if message == "crash":
                raise RuntimeError("crash")
            if message != "sync":
                journal(message)

    ticker = start_single(system, events, ChildSpec("ticker", Ticker))
    clock.advance(1.0)
    clock.advance(1.0)
    journal.wait_for(lambda m: m == ("tick", 1), count=2)
    ticker.tell("crash")
    wait_running(system, events, "/root/ticker", generation=2)
    clock.advance(1.0)
    journal.wait_for(lambda m: m == ("tick", 2))
    ticker.ask("sync")
    assert journal.items == [("tick", 1), ("tick", 1), ("tick", 2)]


def test_cell_lifecycle_table_is_explicit() -> None:
    assert TRANSITIONS[CellState.STOPPED] == frozenset()
    assert CellState.RUNNING in TRANSITIONS[CellState.SUSPENDED]
    assert CellState.RUNNING not in TRANSITIONS[CellState.STOPPED]
    assert set(TRANSITIONS) == set(CellState)


def test_restart_types_are_the_otp_three() -> None:
    assert {r.value for r in RestartType} == {"permanent", "transient", "temporary"}


def test_the_system_clock_drops_cancelled_timers_and_still_fires_the_live_ones() -> None:
    clock = SystemClock()
    fired = threading.Event()
    try:
        for _ in range(5000):
            clock.call_later(3600, lambda: None).cancel()
        keep = [clock.call_later(3600, lambda: None) for _ in range(10)]
        clock.call_later(0.0, fired.set)
        assert clock.pending() < 1100, "cancelled timers were kept until their deadline"
        assert fired.wait(10)
        assert not any(timer.cancelled for timer in keep)
    finally:
        clock.close()


class _Ticker(Actor):
    """Schedules one-shot timers on request and counts what fires."""

    def __init__(self, fired: threading.Semaphore) -> None:
        self.fired = fired

    def receive(self, message: Any) -> Any:
        if message == "arm":
            for _ in range(50):
                self.context.schedule_once(1.0, "tick")
            self.context.schedule_once(3600.0, "never").cancel()
        elif message == "tick":
            self.fired.release()
        return None


def test_fired_and_cancelled_one_shot_timers_are_not_kept_by_the_cell(
    system: ActorSystem, events: EventRecorder, clock: ManualClock
) -> None:
    fired = threading.Semaphore(0)
    ticker = start_single(system, events, ChildSpec("ticker", lambda: _Ticker(fired)))
    for _ in range(4):
        ticker.tell("arm")
        clock.wait_for_timers(50)
        clock.advance(1.0)
        for _ in range(50):
            assert fired.acquire(timeout=10)
    assert ticker.cell.live_timers == 0, "one-shot timers accumulate until the incarnation ends"
