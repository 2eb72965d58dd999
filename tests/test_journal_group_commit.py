"""Leader/follower group commit (``FsyncPolicy.GROUP``, no interval): a lone record
is fsynced at once, records that arrive while an fsync is in flight share the next
one, and nothing waits for a clock.

Deterministic: the injected fsync holds a chosen call "in flight" on an Event, so a
test decides exactly what arrives during it, and counts every call; tests wait for
the durability listener (a condition), never for time. The journal's clock is a
``ManualClock`` that is never advanced: nothing here may depend on a timer.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradenode.actors import EntryKind, decode_entry

# The OMS's write-ahead journal is what is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncMode, FsyncPolicy, Journal, JournalError

# Storage internals: tests lengthen the wait of records nobody waits for, so that only
# an urgent record or ``urge`` can commit them.
from tradenode.journal import _storage as storage
from tradenode.supervision import ManualClock

K = EntryKind
WAIT = 10.0  # seconds: only a bound on a hung test, never a measure of anything


class GatedFsync:
    """An fsync that counts its calls and, when armed, holds the next one in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.fail: OSError | None = None

    def hold_next(self) -> threading.Event:
        """Arm: the next call blocks until the returned event is set."""
        gate = threading.Event()
        with self.lock:
            self.gate = gate
            self.entered.clear()
        return gate

    def __call__(self, fd: int) -> None:
        with self.lock:
            self.calls += 1
            gate, self.gate = self.gate, None
        if gate is not None:
            self.entered.set()
            assert gate.wait(WAIT), "the test never released a held fsync"
        with self.lock:
            fail = self.fail  # read after the hold: a test may fail the fsync it holds
        if fail is not None:
            raise fail

    @property
    def count(self) -> int:
        with self.lock:
            return self.calls


class Durable:
    """A durability listener that records what it is told and lets a test wait for it."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.threads: set[str] = set()
        self.changed = threading.Condition()

    def __call__(self, seq: int) -> None:
        with self.changed:
            self.seen.append(seq)
            self.threads.add(threading.current_thread().name)
            self.changed.notify_all()

    def wait_for(self, seq: int) -> list[int]:
        with self.changed:
            assert self.changed.wait_for(lambda: bool(self.seen) and self.seen[-1] >= seq, WAIT)
            return list(self.seen)


@pytest.fixture
def fsync() -> GatedFsync:
    return GatedFsync()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()  # never advanced: leader/follower commit needs no timer


@pytest.fixture
def journal(
    tmp_path: Path, fsync: GatedFsync, clock: ManualClock
) -> Iterator[tuple[Journal, Durable]]:
    opened = Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.GROUP, fsync_function=fsync, clock=clock
    )
    durable = Durable()
    opened.add_durability_listener(durable)
    yield opened, durable
    opened.close()


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == []  # close() ends the commit thread


def test_the_default_group_policy_is_leader_follower() -> None:
    assert FsyncPolicy.GROUP == FsyncPolicy.parse("group") == FsyncPolicy.group()
    assert (FsyncPolicy.GROUP.mode, FsyncPolicy.GROUP.interval_ms) == (FsyncMode.GROUP, 0.0)
    assert FsyncPolicy.parse("group:0ms:64") == FsyncPolicy.group(0, 64)
    assert FsyncPolicy.parse(str(FsyncPolicy.GROUP)) == FsyncPolicy.GROUP
    # An interval is still an extra wait, as before.
    assert FsyncPolicy.parse("group:5ms").interval_ms == 5.0
    assert FsyncPolicy.parse("group:5ms:256") == FsyncPolicy.group(5, 256)


def test_a_lone_append_is_durable_after_exactly_one_fsync_without_a_timer(
    journal: tuple[Journal, Durable], fsync: GatedFsync, clock: ManualClock
) -> None:
    opened, durable = journal
    before = fsync.count
    assert opened.append(b"lone") == 1
    assert durable.wait_for(1) == [1]
    assert (opened.durable_seq, fsync.count - before) == (1, 1)
    assert clock.pending_delays() == []  # no timer was armed, none was needed
    latency = opened.commit_latency()
    assert (latency.count, latency.buckets[0]) == (1, 1)  # the clock never moved: 0 s
    # The next lone record, once the journal is idle again, gets its own fsync at once.
    assert opened.append(b"second") == 2
    assert durable.wait_for(2) == [1, 2]
    assert fsync.count - before == 2
    assert durable.threads != {threading.current_thread().name}  # the commit thread fsynced


def test_appends_during_an_fsync_in_flight_share_the_next_one(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    before = fsync.count
    gate = fsync.hold_next()
    opened.append(b"first")
    assert fsync.entered.wait(WAIT)  # record 1's fsync is in flight, and stays there
    for i in range(2, 6):
        assert opened.append(f"queued-{i}".encode()) == i
    opened.append_many([b"queued-6", b"queued-7"])
    assert (opened.durable_seq, durable.seen) == (0, [])  # appends never wait for it
    gate.set()
    assert durable.wait_for(7) == [1, 7]  # one group: records 2..7, one fsync
    assert fsync.count - before == 2
    assert opened.commit_latency().count == 2
    assert [seq for seq, _ in opened.replay()] == list(range(1, 8))


def test_durability_is_told_in_order_and_covers_every_record(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    threads, per_thread = 3, 200
    barrier = threading.Barrier(threads)
    results: dict[int, list[int]] = {}

    def appender(number: int) -> None:
        barrier.wait()
        results[number] = [opened.append(f"{number}:{i}".encode()) for i in range(per_thread)]

    workers = [threading.Thread(target=appender, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    total = threads * per_thread
    seen = durable.wait_for(total)
    assert seen == sorted(set(seen)) and seen[-1] == total  # strictly increasing
    assert sorted(s for seqs in results.values() for s in seqs) == list(range(1, total + 1))
    assert all(seqs == sorted(seqs) for seqs in results.values())
    by_seq = dict(opened.replay())
    for number, seqs in results.items():
        assert [by_seq[s] for s in seqs] == [f"{number}:{i}".encode() for i in range(per_thread)]


def test_a_failed_fsync_fails_the_whole_group(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    opened.append(b"durable")
    assert durable.wait_for(1) == [1]
    gate = fsync.hold_next()
    opened.append(b"in flight")
    assert fsync.entered.wait(WAIT)
    opened.append(b"queued-3")
    opened.append(b"queued-4")
    fsync.fail = OSError(5, "I/O error")  # record 2's fsync fails, and so would any after
    gate.set()
    with pytest.raises(JournalError):  # waits for the commit in flight, whoever does it
        opened.flush()
    assert (opened.durable_seq, durable.seen) == (1, [1])  # nothing of the group is durable
    with pytest.raises(JournalError, match="must be reopened"):
        opened.append(b"after")
    with pytest.raises(JournalError, match="must be reopened"):
        opened.flush()


def test_a_stalled_disk_makes_appenders_wait_for_it(tmp_path: Path, fsync: GatedFsync) -> None:
    policy = FsyncPolicy.group(0, 2)  # backpressure at four groups' worth: 8 records queued
    with Journal.open(tmp_path / "j", fsync=policy, fsync_function=fsync) as opened:
        durable = Durable()
        opened.add_durability_listener(durable)
        gate = fsync.hold_next()
        opened.append(b"1")
        assert fsync.entered.wait(WAIT)  # the disk stalls in record 1's fsync
        for i in range(2, 9):
            opened.append(str(i).encode())  # 7 queued: still below the bound
        assert opened.durable_seq == 0
        returned: list[tuple[int, int]] = []

        def eighth_queued() -> None:
            seq = opened.append(b"9")
            returned.append((seq, opened.durable_seq))

        appender = threading.Thread(target=eighth_queued)
        appender.start()
        gate.set()
        appender.join(WAIT)
        # That append returned only once its own record was durable: it waited for the disk.
        assert returned and returned[0][0] == 9 and returned[0][1] >= 9
        assert durable.wait_for(9)[-1] == 9


def test_close_commits_what_is_queued_and_ends_the_commit_thread(
    tmp_path: Path, fsync: GatedFsync
) -> None:
    durable = Durable()
    opened = Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP, fsync_function=fsync)
    opened.add_durability_listener(durable)
    gate = fsync.hold_next()
    opened.append(b"1")
    assert fsync.entered.wait(WAIT)
    opened.append(b"2")
    closer = threading.Thread(target=opened.close)
    closer.start()
    gate.set()
    closer.join(WAIT)
    assert not closer.is_alive() and opened.closed
    assert durable.seen[-1] == 2 and opened.durable_seq == 2
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.NONE) as reopened:
        assert list(reopened.replay()) == [(1, b"1"), (2, b"2")]


def test_records_written_by_a_reader_are_still_fsynced(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    gate = fsync.hold_next()
    opened.append(b"1")
    assert fsync.entered.wait(WAIT)
    opened.append(b"2")
    reader = threading.Thread(target=opened.stats)  # writes the queue out, without fsync
    reader.start()
    gate.set()
    reader.join(WAIT)
    assert durable.wait_for(2)[-1] == 2


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records nobody waits for wait (practically) forever for one that someone does."""
    monkeypatch.setattr(storage, "_LAZY_SECONDS", 3600.0)


@pytest.mark.usefixtures("patient")
def test_records_nobody_waits_for_share_the_next_urgent_ones_fsync(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    before = fsync.count
    opened.append(b"fill", urgent=False)
    opened.append_many([b"accept", b"report"], urgent=False)
    assert opened.append(b"intent") == 4  # urgent: commits everything queued, at once
    assert durable.wait_for(4) == [4]
    assert fsync.count - before == 1


@pytest.mark.usefixtures("patient")
def test_urge_commits_a_record_nobody_waited_for_yet(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    before = fsync.count
    seq = opened.append(b"submitted", urgent=False)
    opened.urge(seq)
    assert durable.wait_for(seq) == [seq] and fsync.count - before == 1
    opened.urge(seq)  # durable already: nothing to do
    assert fsync.count - before == 1


def test_a_record_nobody_waits_for_is_committed_soon_anyway(
    journal: tuple[Journal, Durable], fsync: GatedFsync
) -> None:
    opened, durable = journal
    before = fsync.count
    assert opened.append(b"fill", urgent=False) == 1
    assert durable.wait_for(1) == [1]  # within _LAZY_SECONDS, with no help
    assert fsync.count - before == 1


class Mailbox:
    """An actor's address as the OMS's write-ahead sees it: ``tell`` queues."""

    def __init__(self, name: str, into: queue.SimpleQueue[tuple[str, Any]]) -> None:
        self.name, self.into = name, into

    def tell(self, message: Any) -> None:
        self.into.put((self.name, message))


@pytest.mark.usefixtures("patient")
def test_the_oms_sends_nothing_before_it_is_durable_and_in_order(
    tmp_path: Path, fsync: GatedFsync
) -> None:
    """The node's wiring: the journal's committing thread releases what the OMS held
    (``OmsJournal.attach``), in order, never before its records are durable; the
    OMS is not woken for it. The OMS's records are not urgent: holding a message
    urges its record (else, with ``patient``, nothing would ever be committed here)."""
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    breaker = Mailbox("breaker", inbox)
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP, fsync_function=fsync) as opened:
        writer = OmsJournal(opened)
        writer.attach()
        gate = fsync.hold_next()
        first = writer.record(K.SUBMITTED, 1, client_order_id="a-1")
        writer.send_when_durable(first, breaker, "order a-1")  # type: ignore[arg-type]
        assert fsync.entered.wait(WAIT)
        second = writer.record(K.SUBMITTED, 2, client_order_id="a-2")
        writer.send_when_durable(second, breaker, "order a-2")  # type: ignore[arg-type]
        third = writer.record(K.SUBMITTED, 3, client_order_id="a-3")
        writer.send_when_durable(third, breaker, "order a-3")  # type: ignore[arg-type]
        assert len(writer.held) == 3 and inbox.empty()
        gate.set()
        sent: list[str] = []
        while len(sent) < 3:
            name, message = inbox.get(timeout=WAIT)
            assert name == "breaker"
            sent.append(message)
            # Told by the committing thread only once the records it waits for are durable.
            assert opened.durable_seq >= {"order a-1": 1, "order a-2": 2, "order a-3": 3}[message]
        assert sent == ["order a-1", "order a-2", "order a-3"] and not writer.held
        assert [decode_entry(p).kind for _, p in opened.replay()] == [K.SUBMITTED] * 3


@pytest.mark.usefixtures("patient")
def test_a_message_held_while_the_oms_thread_races_the_committer_is_sent_once_in_order(
    tmp_path: Path, fsync: GatedFsync
) -> None:
    """The OMS thread holds and the committing thread releases concurrently: many
    messages, each told once, in the order held, none before its record is durable."""
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    breaker = Mailbox("breaker", inbox)
    count = 300
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP, fsync_function=fsync) as opened:
        writer = OmsJournal(opened)
        writer.attach()
        seqs: dict[int, int] = {}
        for n in range(count):
            seq = writer.record(K.SUBMITTED, n, client_order_id=f"a-{n}")
            seqs[n] = seq
            writer.send_when_durable(seq, breaker, n)  # type: ignore[arg-type]
        told: list[int] = []
        while len(told) < count:
            name, message = inbox.get(timeout=WAIT)
            assert name == "breaker" and opened.durable_seq >= seqs[message]
            told.append(message)
        assert told == list(range(count)) and not writer.held and inbox.empty()


def test_every_record_and_none_are_unchanged(tmp_path: Path, fsync: GatedFsync) -> None:
    with Journal.open(
        tmp_path / "every", fsync=FsyncPolicy.EVERY_RECORD, fsync_function=fsync
    ) as opened:
        before = fsync.count
        opened.append(b"a")
        assert (opened.durable_seq, fsync.count - before) == (1, 1)
    with Journal.open(tmp_path / "none", fsync=FsyncPolicy.NONE, fsync_function=fsync) as opened:
        before = fsync.count
        opened.append(b"a")
        assert (opened.durable_seq, fsync.count - before) == (0, 0)
        assert os.path.getsize(next((tmp_path / "none").glob("segment-*.tnj"))) > 0


class RacingWake:
    """The leader's wake-up lock, with its first timed sleep running out just as an
    appender claims the wake-up and releases it, and a second appender claiming the
    leader's next sleep before that sleep begins (the releases' errors are kept)."""

    def __init__(self, opened: Journal) -> None:
        self.opened = opened
        self.real = opened._wake
        self.errors: list[BaseException] = []
        self.timed_out = False
        self.raced = threading.Event()

    def _claim_and_release(self) -> None:
        with self.opened._lock:
            claimed, self.opened._leader_asleep = self.opened._leader_asleep, False
        if claimed:
            try:
                self.real.release()
            except RuntimeError as exc:
                self.errors.append(exc)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not self.timed_out and timeout > 0:
            self.timed_out = True
            self._claim_and_release()  # the first appender, a moment too late
            return False
        if self.timed_out and not self.raced.is_set():
            self._claim_and_release()  # the second one, before the leader sleeps
            self.raced.set()
        return self.real.acquire(blocking, timeout)

    def release(self) -> None:
        self.real.release()


@pytest.mark.usefixtures("patient")
def test_a_wake_up_claimed_as_a_timed_sleep_runs_out_is_not_released_twice(
    journal: tuple[Journal, Durable],
) -> None:
    opened, durable = journal
    wake = RacingWake(opened)
    opened._wake = wake  # type: ignore[assignment]
    seq = opened.append(b"fill", urgent=False)  # the leader wakes, then sleeps for the lazy wait
    assert wake.raced.wait(WAIT)
    opened.urge(seq)
    assert durable.wait_for(seq) == [seq]
    assert wake.errors == []
