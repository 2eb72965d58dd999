"""Leader/follower group commit wakes its commit thread only when it must.

After a commit the leader watches for ``_LAZY_SECONDS`` (a timed sleep) before
sleeping until woken: a record nobody waits for, appended during the watch, does
not wake it (on a node, an order's venue accept used to wake it just for it to go
back to sleep), and is still committed within ``_LAZY_SECONDS`` or with the next
urgent record. Deterministic: the leader's wake-up lock is wrapped so that a test
counts the appenders' releases and waits for the leader's sleeps (conditions,
never time).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradenode.journal import FsyncPolicy, Journal

# Storage internals: the tests watch the commit thread's wake-up lock and lengthen
# the lazy wait of records nobody waits for.
from tradenode.journal import _storage as storage

WAIT = 10.0  # seconds: only a bound on a hung test, never a measure of anything


class WatchedWake:
    """The leader's wake-up lock, counting releases and noting each sleep the leader starts."""

    def __init__(self, real: threading.Lock) -> None:
        self.real = real
        self.changed = threading.Condition()
        self.releases = 0
        self.sleeps: list[bool] = []  # True: a timed sleep

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        with self.changed:
            self.sleeps.append(timeout > 0)
            self.changed.notify_all()
        return self.real.acquire(blocking, timeout)

    def release(self) -> None:
        with self.changed:
            self.releases += 1
        self.real.release()

    def wait_for_sleep(self, timed: bool, after: int) -> int:
        """Wait until the leader starts a sleep of that kind after ``after`` sleeps; its index."""
        with self.changed:
            found: list[int] = []

            def started() -> bool:
                found[:] = [i for i in range(after, len(self.sleeps)) if self.sleeps[i] is timed]
                return bool(found)

            assert self.changed.wait_for(started, WAIT)
            return found[0]


class Durable:
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.changed = threading.Condition()

    def __call__(self, seq: int) -> None:
        with self.changed:
            self.seen.append(seq)
            self.changed.notify_all()

    def wait_for(self, seq: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: bool(self.seen) and self.seen[-1] >= seq, WAIT)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[Journal, Durable, WatchedWake]]:
    opened = Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP)
    wake = WatchedWake(opened._wake)
    opened._wake = wake  # type: ignore[assignment]
    durable = Durable()
    opened.add_durability_listener(durable)
    yield opened, durable, wake
    opened.close()


def test_a_record_nobody_waits_for_does_not_wake_the_leader_watching_after_a_commit(
    journal: tuple[Journal, Durable, WatchedWake], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "_LAZY_SECONDS", 3600.0)  # the watch outlasts the test
    opened, durable, wake = journal
    intent = opened.append(b"intent")  # urgent: wakes the leader, which commits it
    durable.wait_for(intent)
    wake.wait_for_sleep(timed=True, after=0)  # the watch after the commit
    releases = wake.releases
    accept = opened.append(b"accept", urgent=False)
    assert wake.releases == releases  # not woken: it would only go back to sleep
    assert opened.durable_seq < accept  # and not committed: it waits for an urgent one
    opened.urge(accept)
    durable.wait_for(accept)
    assert wake.releases == releases + 1


def test_a_record_appended_during_the_watch_is_committed_with_no_help(
    journal: tuple[Journal, Durable, WatchedWake],
) -> None:
    opened, durable, wake = journal
    durable.wait_for(opened.append(b"intent"))
    wake.wait_for_sleep(timed=True, after=0)
    durable.wait_for(opened.append(b"fill", urgent=False))  # within _LAZY_SECONDS


def test_after_the_watch_the_leader_sleeps_until_a_record_wakes_it(
    journal: tuple[Journal, Durable, WatchedWake],
) -> None:
    opened, durable, wake = journal
    durable.wait_for(opened.append(b"intent"))
    watch = wake.wait_for_sleep(timed=True, after=0)
    wake.wait_for_sleep(timed=False, after=watch + 1)  # the watch ran out: nothing was queued
    releases = wake.releases
    fill = opened.append(b"fill", urgent=False)
    assert wake.releases == releases + 1  # the first of a group wakes an untimed sleep
    durable.wait_for(fill)
