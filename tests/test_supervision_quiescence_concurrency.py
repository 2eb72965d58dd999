"""Quiescence counts without a lock (issue #20): it must still never report idle while a
message is queued or a handler runs, however the threads telling each other interleave."""

from __future__ import annotations

import threading
from typing import Any

from tradenode.supervision import (
    Actor,
    ActorSystem,
    Address,
    ChildSpec,
    EventRecorder,
    SupervisorSpec,
)

from ._supervision_helpers import Journal, wait_running

RELAYS = 6
HOPS = 9


def _fan_out(hops: int, payload: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
    return [(hops - 1, (*payload, n)) for n in range(1 + sum(payload) % 2 + (hops % 3 == 0))]


def _leaves(hops: int, payload: tuple[int, ...]) -> int:
    if hops == 0:
        return 1
    return sum(_leaves(*onward) for onward in _fan_out(hops, payload))


class Relay(Actor):
    """Passes ``(hops, payload)`` on to the other relays (each on its own thread, so
    several tell the same relay at once); the last hop journals ``payload``."""

    def __init__(self, journal: Journal, peers: list[Address]) -> None:
        self.journal = journal
        self.peers = peers

    def receive(self, message: Any) -> Any:
        hops, payload = message
        if hops == 0:
            self.journal(payload)
            return None
        for onward in _fan_out(hops, payload):
            self.peers[(sum(onward[1]) + hops) % len(self.peers)].tell(onward)
        return None


class Watcher:
    """A thread that looks at ``is_quiescent`` as often as it can and, each time it is
    true, notes how many leaves have arrived. ``gate`` keeps the test from seeding a new
    cascade between a look and its note."""

    def __init__(self, system: ActorSystem, journal: Journal) -> None:
        self.system = system
        self.journal = journal
        self.gate = threading.Lock()
        self.seen: list[int] = []
        self.noted = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.gate:
                if self.system.is_quiescent:
                    with self.noted:
                        self.seen.append(len(self.journal.items))
                        self.noted.notify_all()

    def wait_seen(self, count: int) -> bool:
        with self.noted:
            return self.noted.wait_for(lambda: count in self.seen, timeout=30)


def test_never_quiescent_while_a_cascade_of_concurrent_tells_is_in_flight(
    system: ActorSystem, events: EventRecorder
) -> None:
    journal = Journal()
    peers: list[Address] = []
    specs = [ChildSpec(f"r{n}", lambda: Relay(journal, peers)) for n in range(RELAYS)]
    system.start(SupervisorSpec("root", children=tuple(specs)))
    for n in range(RELAYS):
        peers.append(wait_running(system, events, f"/root/r{n}"))
    system.wait_quiescent()
    watcher = Watcher(system, journal)
    watcher.thread.start()
    totals = [0]
    try:
        assert watcher.wait_seen(0)
        for round_ in range(25):
            with watcher.gate:
                peers[round_ % RELAYS].tell((HOPS, (round_,)))
            totals.append(totals[-1] + _leaves(HOPS, (round_,)))
            system.wait_quiescent()
            assert len(journal.items) == totals[-1]
            # The watcher sees this round's end too (so it looked during every round).
            assert watcher.wait_seen(totals[-1])
    finally:
        watcher.stop.set()
        watcher.thread.join(10)
    # Every moment the watcher saw quiescence, every cascade seeded so far had fully
    # arrived: never a count from the middle of one.
    assert totals[-1] > 25 * 20
    assert set(watcher.seen) <= set(totals), sorted(set(watcher.seen) - set(totals))[:5]
