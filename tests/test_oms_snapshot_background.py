"""Snapshots that never stop the OMS: taken incrementally on its thread, packed, written
and compacted on the journal's snapshot thread, and still exactly the state at their
sequence number while the OMS goes on applying records.

The snapshot thread is held (its work wrapped in a wait on an Event) while the test,
in the OMS's place, keeps changing the state; no test waits for time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradenode.actors import JournalEntry, OmsState, encode_entry, recover

# The OMS's write-ahead journal, its packer and its snapshots' record memo are what is
# under test; the node builds them.
from tradenode.actors._oms_journal import OmsJournal, pack_snapshot
from tradenode.actors._oms_snapshot import RecordMemo, remembering
from tradenode.journal import FsyncPolicy, Journal

from .test_journal_entries import call_directly, observe, oms_calls, quiet_oms, small_state
from .test_oms_snapshot import busy_state

WAIT = 10.0  # seconds: only a bound on a hung test


class HeldSnapshots:
    """A journal whose background snapshots wait for ``release`` before they start."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.release = threading.Event()
        self.handed: list[int] = []
        self.encoded = threading.Event()

    def write_snapshot_later(
        self, seq: int, encode: Callable[[], bytes], *, compact: bool = False
    ) -> None:
        def held() -> bytes:
            assert self.release.wait(WAIT)
            payload = encode()
            self.encoded.set()
            return payload

        self.handed.append(seq)
        self.journal.write_snapshot_later(seq, held, compact=compact)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.journal, name)


def _drive(state: OmsState, writer: OmsJournal, calls: list[JournalEntry]) -> Iterator[int]:
    """Apply and journal each call as the OMS does; yield after each, between messages."""
    for call in calls:
        call_directly(state, call)
        writer.last_seq = writer.log.append(encode_entry(call))
        writer.records += 1
        yield writer.last_seq


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=oms_calls(max_size=120), split=st.floats(0.0, 1.0))
def test_a_snapshot_taken_while_the_oms_goes_on_is_the_state_at_its_seq(
    tmp_path_factory: pytest.TempPathFactory, calls: list[JournalEntry], split: float
) -> None:
    directory = tmp_path_factory.mktemp("snapshot") / "j"
    at = int(len(calls) * split)
    with quiet_oms(), Journal.open(directory, fsync=FsyncPolicy.GROUP) as journal:
        held = HeldSnapshots(journal)
        writer = OmsJournal(held, snapshot_every=1)  # type: ignore[arg-type]
        state = small_state()
        for _ in _drive(state, writer, calls[:at]):
            pass
        expected = msgpack.packb(state.snapshot(), use_bin_type=True)  # the state at ``at``
        seen_before = observe(state)
        writer.snapshot_if_due(state.snapshot)  # hands over; nothing is packed yet
        assert held.handed == ([at] if at else [])
        writer.snapshot_every = 10**9  # no other snapshot: the held one is the latest
        for _ in _drive(state, writer, calls[at:]):  # the OMS goes on meanwhile
            pass
        held.release.set()
        latest = journal.latest_snapshot()  # waits for the one handed over
        if not at:
            assert latest is None
            return
        assert latest == (at, expected)
        restored = OmsState.restore(msgpack.unpackb(latest[1], raw=False))
        assert observe(restored) == seen_before
        # And the journal (snapshot + the records after it) gives the state now.
        assert observe(recover(journal).state) == observe(state)


def incremental_snapshots(
    calls: list[JournalEntry], cuts: list[float]
) -> Iterator[tuple[OmsState, dict[str, Any]]]:
    """Apply ``calls`` to a fresh state and take an incremental snapshot (one memo
    throughout) at each cut and at the end: the state then, and the snapshot."""
    memo = RecordMemo()
    state = small_state()
    points = sorted({int(len(calls) * cut) for cut in cuts} | {len(calls)})
    done = 0
    with quiet_oms():
        for point in points:
            for call in calls[done:point]:
                call_directly(state, call)
            done = point
            with remembering(memo):
                incremental = state.snapshot()
            yield state, incremental


@settings(max_examples=60, deadline=None)
@given(calls=oms_calls(max_size=120), cuts=st.lists(st.floats(0.0, 1.0), max_size=4))
def test_an_incremental_snapshot_is_byte_for_byte_a_full_one(
    calls: list[JournalEntry], cuts: list[float]
) -> None:
    """Completed orders unchanged since the last snapshot reuse their records; changed,
    revived or forgotten ones do not: the bytes equal a snapshot taken from scratch."""
    for state, incremental in incremental_snapshots(calls, cuts):
        assert pack_snapshot(incremental) == msgpack.packb(state.snapshot(), use_bin_type=True)


def test_unchanged_completed_orders_are_not_encoded_again() -> None:
    state = busy_state()
    memo = RecordMemo()
    with remembering(memo):
        first = state.snapshot()
    completed = len(first["completed"])
    assert completed and (memo.hits, memo.misses) == (0, completed)
    with remembering(memo):
        second = state.snapshot()
    assert (memo.hits, memo.misses) == (completed, completed)
    assert second == first


def test_pack_snapshot_packs_large_sections_exactly_like_packb() -> None:
    plain = {
        "version": 2,
        "completed": [[f"o-{i}", "filled", bytes([i % 256]) * (i % 7)] for i in range(1000)],
        "nested": {"rows": [[i, str(i)] for i in range(600)], "small": [1, 2, 3]},
        "metrics": {"ack": list(range(700)), "none": None},
        "empty": [],
        "text": "x" * 70_000,
    }
    assert pack_snapshot(plain) == msgpack.packb(plain, use_bin_type=True)


def test_snapshots_are_written_in_order_and_a_later_one_replaces_one_not_started(
    tmp_path: Path,
) -> None:
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.EVERY_RECORD) as journal:
        for i in range(1, 6):
            journal.append(f"r{i}".encode())
        started, release = threading.Event(), threading.Event()
        order: list[int] = []

        def slow(seq: int) -> Callable[[], bytes]:
            def encode() -> bytes:
                started.set()
                assert release.wait(WAIT)
                order.append(seq)
                return f"state {seq}".encode()

            return encode

        def quick(seq: int) -> Callable[[], bytes]:
            def encode() -> bytes:
                order.append(seq)
                return f"state {seq}".encode()

            return encode

        journal.write_snapshot_later(2, slow(2))
        assert started.wait(WAIT)  # 2 is being written
        journal.write_snapshot_later(3, quick(3))  # waits its turn ...
        journal.write_snapshot_later(4, quick(4), compact=True)  # ... and is replaced by 4
        release.set()
        assert journal.latest_snapshot() == (4, b"state 4")
        assert order == [2, 4]
        assert [info.seq for info in journal.snapshots()] == [2, 4]
        journal.write_snapshot(5, b"state 5")  # a direct one comes after the handed ones
        assert journal.latest_snapshot() == (5, b"state 5")


def test_a_failed_background_snapshot_is_logged_and_the_journal_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP) as journal:
        journal.append(b"a")

        def broken() -> bytes:
            raise RuntimeError("cannot encode")

        journal.write_snapshot_later(1, broken)
        assert journal.latest_snapshot() is None
        assert journal.snapshot_failures == 1
        assert "snapshot after record 1 failed" in caplog.text
        journal.append(b"b")
        journal.write_snapshot_later(2, lambda: b"fine")
        assert journal.latest_snapshot() == (2, b"fine")
        with pytest.raises(ValueError, match="outside"):
            journal.write_snapshot_later(7, lambda: b"ahead of the journal")


def test_close_writes_the_snapshot_handed_over(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP)
    journal.append(b"a")
    journal.write_snapshot_later(1, lambda: b"state 1", compact=True)
    journal.close()
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.NONE) as reopened:
        assert reopened.latest_snapshot() == (1, b"state 1")
