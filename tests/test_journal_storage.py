"""The journal's storage engine: framing, recovery, snapshots, compaction, fsync policies."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradenode import ConfigError, TradenodeError
from tradenode.journal import (
    CorruptJournalError,
    FsyncMode,
    FsyncPolicy,
    Journal,
    JournalError,
    JournalVersionError,
    verify_journal,
)
from tradenode.supervision import Cancellable, ManualClock

HEADER = 8
FRAME = struct.Struct("<IIQ")


class CountingFsync:
    """An injectable fsync: counts calls, names the files, can fail on demand."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.fail: OSError | None = None
        self.lock = threading.Lock()

    def __call__(self, fd: int) -> None:
        if self.fail is not None:
            raise self.fail
        with self.lock:
            self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))

    @property
    def count(self) -> int:
        return len(self.paths)


class StepClock:
    """A clock whose time moves only when set and whose timers fire only when told to."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def monotonic(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return int(self.now * 1e9)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        entry = (delay, callback)
        self.timers.append(entry)
        clock = self

        class _Handle:
            def cancel(self) -> None:
                if entry in clock.timers:
                    clock.timers.remove(entry)

        return _Handle()


def payload(i: int, size: int = 20) -> bytes:
    return f"record-{i:06d}-".encode().ljust(size, b".")


def records_in(path: Path) -> list[tuple[int, int, int]]:
    """(offset, length, seq) of every record in a (sound) segment file."""
    data = path.read_bytes()
    out, offset = [], HEADER
    while offset < len(data):
        length, _crc, seq = FRAME.unpack_from(data, offset)
        out.append((offset, length, seq))
        offset += FRAME.size + length
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.tnj"))


def replayed(journal: Journal, after: int = 0) -> list[tuple[int, bytes]]:
    return list(journal.replay(after))


@pytest.fixture
def fsync() -> CountingFsync:
    return CountingFsync()


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journal"


def open_journal(
    directory: Path,
    policy: FsyncPolicy = FsyncPolicy.NONE,
    *,
    fsync_function: Callable[[int], None] | None = None,
    **kwargs: object,
) -> Journal:
    return Journal.open(
        directory,
        fsync=policy,
        fsync_function=fsync_function or CountingFsync(),
        **kwargs,  # type: ignore[arg-type]
    )


def build(directory: Path, count: int, *, segment_bytes: int = 256, size: int = 20) -> None:
    with open_journal(directory, segment_bytes=segment_bytes) as journal:
        for i in range(1, count + 1):
            journal.append(payload(i, size))


# -- round trip ---------------------------------------------------------------------------------


def test_round_trip_across_rollover_and_reopen(journal_dir: Path) -> None:
    expected = [(i, payload(i, 10 + i % 37)) for i in range(1, 201)]
    with open_journal(journal_dir, segment_bytes=512) as journal:
        for seq, data in expected:
            assert journal.append(data) == seq
        assert replayed(journal) == expected
        stats = journal.stats()
    assert stats.segments == len(segments(journal_dir)) > 5
    assert (stats.records, stats.last_seq, stats.appended) == (200, 200, 200)
    assert all(p.stat().st_size <= 512 for p in segments(journal_dir))
    assert (
        segments(journal_dir)[1].name
        == f"segment-{records_in(segments(journal_dir)[1])[0][2]:020d}.tnj"
    )

    with open_journal(journal_dir, segment_bytes=512) as journal:
        assert replayed(journal) == expected
        assert replayed(journal, 150) == expected[150:]
        assert replayed(journal, 200) == []
        assert journal.durable_seq == journal.last_seq == 200


def test_sequence_continues_after_reopen(journal_dir: Path) -> None:
    build(journal_dir, 5)
    with open_journal(journal_dir) as journal:
        assert journal.append(b"six") == 6
        assert journal.append_many([b"seven", b"eight"]) == 8
    with open_journal(journal_dir) as journal:
        assert journal.append(b"nine") == 9
        assert [seq for seq, _ in journal.replay()] == list(range(1, 10))


def test_append_many_across_rollover(journal_dir: Path, fsync: CountingFsync) -> None:
    batch = [payload(i, 40) for i in range(1, 51)]
    with open_journal(
        journal_dir, FsyncPolicy.EVERY_RECORD, fsync_function=fsync, segment_bytes=300
    ) as journal:
        before = fsync.count
        assert journal.append_many([]) == 0
        assert fsync.count == before
        assert journal.append_many(batch) == 50
        assert journal.durable_seq == 50
        assert replayed(journal) == list(enumerate(batch, start=1))
        assert journal.append_many(iter([b"x"])) == 51
    assert len(segments(journal_dir)) > 5


def test_payloads_are_opaque_bytes(journal_dir: Path) -> None:
    with open_journal(journal_dir) as journal:
        assert journal.append(b"") == 1
        assert journal.append(bytearray(b"\x00\xff")) == 2
        assert journal.append(memoryview(b"mv")) == 3
        with pytest.raises(TypeError):
            journal.append("text")  # type: ignore[arg-type]
        assert replayed(journal) == [(1, b""), (2, b"\x00\xff"), (3, b"mv")]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(st.binary(max_size=90), max_size=12), min_size=1, max_size=6),
    segment_bytes=st.integers(min_value=24, max_value=400),
)
def test_any_payloads_round_trip_through_reopens(
    batches: list[list[bytes]], segment_bytes: int
) -> None:
    expected: list[bytes] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for batch in batches:
            with open_journal(directory, segment_bytes=segment_bytes) as journal:
                for item in batch[:2]:
                    journal.append(item)
                journal.append_many(batch[2:])
                expected.extend(batch)
        with open_journal(directory, segment_bytes=segment_bytes) as journal:
            assert replayed(journal) == list(enumerate(expected, start=1))


# -- torn tails ---------------------------------------------------------------------------------


def test_torn_last_record_at_every_byte_offset_is_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pristine = tmp_path / "pristine"
    build(pristine, 12, segment_bytes=200, size=24)
    last_segment = segments(pristine)[-1]
    offset, length, last_seq = records_in(last_segment)[-1]
    size = last_segment.stat().st_size
    assert size == offset + FRAME.size + length and len(segments(pristine)) > 1
    before = [(i, payload(i, 24)) for i in range(1, last_seq)]

    for cut in range(offset, size):
        work = tmp_path / f"cut-{cut}"
        shutil.copytree(pristine, work)
        target = work / last_segment.name
        with target.open("r+b") as file:
            file.truncate(cut)
        caplog.clear()
        with open_journal(work) as journal:
            assert replayed(journal) == before, cut
            assert journal.last_seq == journal.durable_seq == last_seq - 1
            torn = [r for r in caplog.records if r.levelno == logging.WARNING]
            if cut == offset:
                assert torn == [] and journal.torn_tail is None
            else:
                assert len(torn) == 1 and "torn tail" in torn[0].getMessage()
                assert torn[0].name == "tradenode.journal"
                assert journal.torn_tail is not None and journal.torn_tail.offset == offset
            assert target.stat().st_size == offset
            assert journal.append(b"after") == last_seq
        with open_journal(work) as journal:
            assert replayed(journal) == [*before, (last_seq, b"after")]
        shutil.rmtree(work)


@pytest.mark.parametrize("where", ["length", "crc", "seq", "payload", "last byte"])
def test_damaged_last_record_at_the_very_tail_is_torn(
    journal_dir: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    build(journal_dir, 6)
    last = segments(journal_dir)[-1]
    offset, length, seq = records_in(last)[-1]
    position = {
        "length": offset,
        "crc": offset + 4,
        "seq": offset + 8,
        "payload": offset + 16,
        "last byte": offset + 16 + length - 1,
    }[where]
    data = bytearray(last.read_bytes())
    data[position] ^= 0x40
    last.write_bytes(bytes(data))
    with open_journal(journal_dir) as journal:
        assert [s for s, _ in journal.replay()] == list(range(1, seq))
        assert journal.append(b"next") == seq
    assert "torn tail" in caplog.text


def test_zero_filled_tail_is_torn(journal_dir: Path) -> None:
    build(journal_dir, 4)
    last = segments(journal_dir)[-1]
    good = last.stat().st_size
    with last.open("ab") as file:
        file.write(bytes(4096))  # a file system that extended the file but never wrote it
    with open_journal(journal_dir) as journal:
        assert journal.last_seq == 4
        assert journal.append(b"five") == 5
    assert last.stat().st_size == good + FRAME.size + 4


def test_torn_header_of_a_new_last_segment(journal_dir: Path) -> None:
    build(journal_dir, 10)
    last_seq = records_in(segments(journal_dir)[-1])[-1][2]
    fresh = journal_dir / f"segment-{last_seq + 1:020d}.tnj"
    fresh.write_bytes(b"TN")  # died while creating the next segment
    with open_journal(journal_dir) as journal:
        assert journal.last_seq == last_seq
        assert journal.append(b"x") == last_seq + 1
        assert replayed(journal, last_seq) == [(last_seq + 1, b"x")]
    assert fresh.read_bytes()[:4] == b"TNJ1"


def test_read_only_open_reports_a_torn_tail_but_leaves_it(journal_dir: Path) -> None:
    build(journal_dir, 4)
    last = segments(journal_dir)[-1]
    with last.open("ab") as file:
        file.write(b"\x05\x00\x00")
    size = last.stat().st_size
    with Journal.open_read_only(journal_dir) as journal:
        assert journal.torn_tail is not None
        assert [s for s, _ in journal.replay()] == [1, 2, 3, 4]
        with pytest.raises(JournalError, match="read-only"):
            journal.append(b"no")
    assert last.stat().st_size == size
    report = verify_journal(journal_dir)
    assert report.sound and report.torn_tail is not None and report.last_seq == 4


# -- corruption ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", [0, 3, 4, 8, 15, 16, 20])
@pytest.mark.parametrize("segment_index", [0, -1])
def test_flipped_byte_in_a_middle_record_is_corruption(
    journal_dir: Path, field: int, segment_index: int
) -> None:
    build(journal_dir, 22)
    target = segments(journal_dir)[segment_index]
    records = records_in(target)
    assert len(records) >= 3
    offset = records[1][0]
    data = bytearray(target.read_bytes())
    data[offset + field] ^= 0x80
    target.write_bytes(bytes(data))
    with pytest.raises(CorruptJournalError) as info:
        open_journal(journal_dir)
    assert info.value.segment == target
    assert info.value.offset == offset
    assert target.name in str(info.value) and f"byte offset {offset}" in str(info.value)
    assert target.read_bytes() == bytes(data)  # corruption is never "repaired"
    with pytest.raises(CorruptJournalError):
        verify_journal(journal_dir)


def test_two_damaged_records_at_the_end_are_corruption_not_a_torn_tail(journal_dir: Path) -> None:
    build(journal_dir, 22)
    last = segments(journal_dir)[-1]
    (second_last, *_), (final, *_) = records_in(last)[-2:]
    data = bytearray(last.read_bytes())
    data[second_last + 20] ^= 1
    data[final + 20] ^= 1
    last.write_bytes(bytes(data))
    with pytest.raises(CorruptJournalError) as info:
        open_journal(journal_dir)
    assert (info.value.segment, info.value.offset) == (last, second_last)


def test_damaged_last_record_of_an_earlier_segment_is_corruption(journal_dir: Path) -> None:
    build(journal_dir, 20)
    first = segments(journal_dir)[0]
    offset, _length, _seq = records_in(first)[-1]
    with first.open("r+b") as file:
        file.truncate(first.stat().st_size - 1)
    with pytest.raises(CorruptJournalError) as info:
        open_journal(journal_dir)
    assert (info.value.segment, info.value.offset) == (first, offset)


def test_bad_magic_and_bad_version(journal_dir: Path) -> None:
    build(journal_dir, 3)
    with pytest.raises(JournalVersionError, match="format version 1"):
        open_journal(journal_dir, format_version=2)
    only = segments(journal_dir)[0]
    data = bytearray(only.read_bytes())
    data[4:8] = struct.pack("<I", 7)
    only.write_bytes(bytes(data))
    with pytest.raises(JournalVersionError, match="version 7") as info:
        open_journal(journal_dir)
    assert info.value.path == only
    data[0:4] = b"XXXX"
    only.write_bytes(bytes(data))
    with pytest.raises(JournalVersionError, match="not a tradenode journal segment"):
        open_journal(journal_dir)
    assert issubclass(JournalVersionError, JournalError)
    assert issubclass(CorruptJournalError, TradenodeError)


def test_version_two_journal_round_trips(journal_dir: Path) -> None:
    with open_journal(journal_dir, format_version=2) as journal:
        journal.append(b"v2")
        journal.write_snapshot(1, b"state")
    with open_journal(journal_dir, format_version=2) as journal:
        assert replayed(journal) == [(1, b"v2")]
        assert journal.latest_snapshot() == (1, b"state")


def test_truncated_header_of_an_earlier_segment_is_corruption(journal_dir: Path) -> None:
    build(journal_dir, 20)
    first = segments(journal_dir)[0]
    first.write_bytes(b"TNJ")
    with pytest.raises(CorruptJournalError) as info:
        open_journal(journal_dir)
    assert (info.value.segment, info.value.offset) == (first, 0)


def test_missing_segment_is_a_gap(journal_dir: Path) -> None:
    build(journal_dir, 30)
    files = segments(journal_dir)
    assert len(files) >= 3
    files[1].unlink()
    with pytest.raises(CorruptJournalError, match="sequence gap") as info:
        open_journal(journal_dir)
    assert (info.value.segment, info.value.offset) == (files[2], HEADER)


def test_skipped_sequence_number_inside_a_segment_is_a_gap(journal_dir: Path) -> None:
    build(journal_dir, 20)
    target = segments(journal_dir)[-1]
    offset, length, seq = records_in(target)[1]
    data = bytearray(target.read_bytes())
    body = struct.pack("<Q", seq + 1) + bytes(data[offset + 16 : offset + 16 + length])
    data[offset : offset + 16] = FRAME.pack(length, zlib.crc32(body), seq + 1)
    target.write_bytes(bytes(data))
    with pytest.raises(CorruptJournalError, match="sequence gap") as info:
        open_journal(journal_dir)
    assert (info.value.segment, info.value.offset) == (target, offset)


def test_only_one_writer_at_a_time(journal_dir: Path) -> None:
    with open_journal(journal_dir) as journal:
        journal.append(b"a")
        with pytest.raises(JournalError, match="open for writing"):
            open_journal(journal_dir)
        with Journal.open_read_only(journal_dir) as reader:
            assert replayed(reader) == [(1, b"a")]
    with open_journal(journal_dir) as journal:
        assert journal.last_seq == 1


def test_closed_journal(journal_dir: Path) -> None:
    journal = open_journal(journal_dir)
    journal.append(b"a")
    journal.close()
    journal.close()
    assert journal.closed
    with pytest.raises(JournalError, match="closed"):
        journal.append(b"b")
    assert journal.flush() == 1
    assert replayed(journal) == [(1, b"a")]
    with pytest.raises(JournalError, match="no such journal"):
        Journal.open_read_only(journal_dir / "missing")


# -- snapshots and compaction -------------------------------------------------------------------


def test_snapshot_round_trip_and_leftover_temp_file(journal_dir: Path) -> None:
    with open_journal(journal_dir) as journal:
        assert journal.latest_snapshot() is None
        journal.append_many([b"a", b"b", b"c"])
        path = journal.write_snapshot(2, b"state@2")
        assert path.name == f"snapshot-{2:020d}.tns"
        assert journal.durable_seq == 3  # records up to the snapshot were made durable first
        leftover = journal_dir / f"snapshot-{3:020d}.tns.deadbeef.tmp"
        leftover.write_bytes(b"half a snapshot")
        assert journal.latest_snapshot() == (2, b"state@2")
        with pytest.raises(ValueError, match="outside"):
            journal.write_snapshot(4, b"future")
    with open_journal(journal_dir) as journal:
        assert not leftover.exists()  # a writable open cleans it up
        assert journal.latest_snapshot() == (2, b"state@2")


def test_crash_while_writing_a_snapshot_leaves_the_previous_one(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    with open_journal(journal_dir, fsync_function=fsync) as journal:
        journal.append_many([b"a", b"b"])
        journal.write_snapshot(1, b"one")
        journal.flush()
        fsync.fail = OSError(5, "I/O error")
        with pytest.raises(OSError):
            journal.write_snapshot(2, b"two")
        fsync.fail = None
        assert journal.latest_snapshot() == (1, b"one")
        assert sorted(p.name for p in journal_dir.glob("snapshot-*")) == [f"snapshot-{1:020d}.tns"]


@pytest.mark.parametrize(
    "damage", ["flip payload", "truncate", "empty", "wrong seq in name", "bad magic"]
)
def test_damaged_newest_snapshot_falls_back_to_the_previous(
    journal_dir: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    with open_journal(journal_dir) as journal:
        journal.append_many([b"a", b"b", b"c"])
        journal.write_snapshot(1, b"one")
        newest = journal.write_snapshot(3, b"three")
        data = bytearray(newest.read_bytes())
        if damage == "flip payload":
            data[-1] ^= 1
            newest.write_bytes(bytes(data))
        elif damage == "truncate":
            newest.write_bytes(bytes(data[:-2]))
        elif damage == "empty":
            newest.write_bytes(b"")
        elif damage == "wrong seq in name":
            newest.rename(journal_dir / f"snapshot-{2:020d}.tns")
        else:
            newest.write_bytes(b"XXXX" + bytes(data[4:]))
        assert journal.latest_snapshot() == (1, b"one")
    assert "skipping snapshot" in caplog.text
    report = verify_journal(journal_dir)
    assert not report.sound and "damaged" in report.problems[0]
    assert report.latest_snapshot_seq == 1


def test_snapshot_ahead_of_the_journal_is_corruption(journal_dir: Path) -> None:
    with open_journal(journal_dir) as journal:
        journal.append_many([b"a", b"b", b"c"])
        journal.write_snapshot(3, b"three")
    last = segments(journal_dir)[-1]
    offset = records_in(last)[-1][0]
    with last.open("r+b") as file:
        file.truncate(offset)  # a durable record vanished
    with pytest.raises(CorruptJournalError, match="newer than the last record"):
        open_journal(journal_dir)


def test_compaction_keeps_replay_equal_to_snapshot_plus_tail(journal_dir: Path) -> None:
    def state_after(records: list[tuple[int, bytes]], base: bytes = b"") -> bytes:
        return base + b"".join(data for _seq, data in records)

    with open_journal(journal_dir, segment_bytes=200) as journal:
        journal.append_many([payload(i) for i in range(1, 41)])
        journal.write_snapshot(10, state_after(replayed(journal)[:10]))
        journal.write_snapshot(20, state_after(replayed(journal)[:20]))
        journal.write_snapshot(30, state_after(replayed(journal)[:30]))
        journal.append_many([payload(i) for i in range(41, 61)])
        full_state = state_after(replayed(journal))
        segments_before = len(segments(journal_dir))

        result = journal.compact()

        assert result.snapshot_seq == 30
        assert [p.name for p in result.snapshots_removed] == [f"snapshot-{10:020d}.tns"]
        assert len(result.segments_removed) == segments_before - len(segments(journal_dir)) > 0
        assert all(not p.exists() for p in result.segments_removed)
        latest = journal.latest_snapshot()
        assert latest is not None
        assert state_after(replayed(journal, latest[0]), latest[1]) == full_state
        assert journal.first_seq <= 31
        with pytest.raises(JournalError, match="compacted"):
            journal.replay(0)
        assert journal.stats().records == 60 - journal.first_seq + 1
        assert journal.compact().segments_removed == ()
    with open_journal(journal_dir, segment_bytes=200) as journal:
        latest = journal.latest_snapshot()
        assert latest is not None
        assert state_after(replayed(journal, latest[0]), latest[1]) == full_state
        assert journal.append(b"more") == 61
    assert verify_journal(journal_dir).sound


def test_compaction_never_removes_the_segment_being_written(journal_dir: Path) -> None:
    with open_journal(journal_dir, segment_bytes=200) as journal:
        assert journal.compact().snapshot_seq is None
        journal.append_many([payload(i) for i in range(1, 31)])
        journal.write_snapshot(30, b"everything")
        journal.compact()
        assert len(segments(journal_dir)) == 1
        assert replayed(journal, 30) == []
        assert journal.append(b"31") == 31
    with open_journal(journal_dir, segment_bytes=200) as journal:
        assert replayed(journal, 30) == [(31, b"31")]


def test_verify_reports_records_missing_without_a_snapshot(journal_dir: Path) -> None:
    build(journal_dir, 30)
    segments(journal_dir)[0].unlink()
    report = verify_journal(journal_dir)
    assert not report.sound and "missing" in report.problems[0]


# -- fsync policies -----------------------------------------------------------------------------


def test_policy_parsing() -> None:
    assert FsyncPolicy.parse("every_record") is FsyncPolicy.EVERY_RECORD
    assert FsyncPolicy.parse(" NONE ") is FsyncPolicy.NONE
    # Leader/follower group commit, no extra wait; an interval adds one.
    assert FsyncPolicy.parse("group") == FsyncPolicy.GROUP == FsyncPolicy.group(0, 256)
    assert FsyncPolicy.parse("group:0ms") == FsyncPolicy.GROUP
    assert FsyncPolicy.parse("group:5ms") == FsyncPolicy.group(5.0, 256)
    assert FsyncPolicy.parse("group:2ms:64") == FsyncPolicy(FsyncMode.GROUP, 2.0, 64)
    assert FsyncPolicy.parse("group:500us:8") == FsyncPolicy.group(0.5, 8)
    assert FsyncPolicy.parse("group:0.01s") == FsyncPolicy.group(10.0)
    for policy in (FsyncPolicy.EVERY_RECORD, FsyncPolicy.NONE, FsyncPolicy.group(2.5, 7)):
        assert FsyncPolicy.parse(str(policy)) == policy
    for bad in ("sometimes", "group:fast", "group:5ms:many", "group:-1ms", "group:5ms:0", "none:1"):
        with pytest.raises(ConfigError, match="fsync policy"):
            FsyncPolicy.parse(bad)


def test_every_record_is_durable_before_append_returns(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    seen: list[int] = []
    with open_journal(journal_dir, FsyncPolicy.EVERY_RECORD, fsync_function=fsync) as journal:
        journal.add_durability_listener(seen.append)
        before = fsync.count
        for i in range(1, 6):
            assert journal.append(b"r") == i
            assert journal.durable_seq == i
        assert fsync.count == before + 5
        assert seen == [1, 2, 3, 4, 5]
        assert journal.flush() == 5 and fsync.count == before + 5  # nothing new: no fsync


def test_group_commit_at_max_records_and_on_the_timer(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    clock = ManualClock()
    seen: list[int] = []
    policy = FsyncPolicy.parse("group:5ms:3")
    with open_journal(journal_dir, policy, fsync_function=fsync, clock=clock) as journal:
        journal.add_durability_listener(seen.append)
        before = fsync.count
        journal.append(b"1")
        journal.append(b"2")
        assert (journal.durable_seq, fsync.count, seen) == (0, before, [])
        assert clock.pending_delays() == [pytest.approx(0.005)]
        journal.append(b"3")  # max_records reached: the timer is due at once
        assert (journal.durable_seq, fsync.count, seen) == (0, before, [])
        assert clock.pending_delays() == [0.0]
        clock.advance(0)
        assert (journal.durable_seq, fsync.count, seen) == (3, before + 1, [3])
        assert clock.pending_delays() == []

        journal.append(b"4")
        clock.advance(0.004)
        assert journal.durable_seq == 3
        clock.advance(0.001)  # the interval since record 4 is up
        assert (journal.durable_seq, fsync.count, seen) == (4, before + 2, [3, 4])

        journal.append_many([b"5", b"6", b"7", b"8"])  # one batch over max_records
        assert clock.pending_delays() == [0.0]
        clock.advance(0)
        assert (journal.durable_seq, fsync.count, seen) == (8, before + 3, [3, 4, 8])
        clock.advance(1.0)
        assert fsync.count == before + 3  # no timer left, nothing to do


def test_group_commit_leaves_a_late_group_to_its_timer(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    clock = StepClock()
    policy = FsyncPolicy.group(interval_ms=5, max_records=100)
    with open_journal(journal_dir, policy, fsync_function=fsync, clock=clock) as journal:
        before = fsync.count
        journal.append(b"1")
        clock.now = 0.003
        journal.append(b"2")
        assert journal.durable_seq == 0 and len(clock.timers) == 1
        assert clock.timers[0][0] == pytest.approx(0.005)
        clock.now = 0.007
        journal.append(b"3")  # overdue, yet the appender never waits for the disk
        assert (journal.durable_seq, fsync.count, len(clock.timers)) == (0, before, 1)
        clock.timers[0][1]()
        assert (journal.durable_seq, fsync.count) == (3, before + 1)


def test_group_commit_appender_commits_a_group_four_intervals_old(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    clock = StepClock()  # a timer thread that never gets to run
    policy = FsyncPolicy.group(interval_ms=5, max_records=100)
    with open_journal(journal_dir, policy, fsync_function=fsync, clock=clock) as journal:
        before = fsync.count
        journal.append(b"1")
        clock.now = 0.0199
        journal.append(b"2")
        assert (journal.durable_seq, fsync.count) == (0, before)
        clock.now = 0.020
        journal.append(b"3")  # record 1 has waited four intervals: held orders would too
        assert (journal.durable_seq, fsync.count) == (3, before + 1)
        journal.append(b"4")  # a new group, left to the timer again
        assert (journal.durable_seq, fsync.count) == (3, before + 1)


def test_an_overdue_appender_never_waits_for_another_committer(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    clock = StepClock()
    policy = FsyncPolicy.group(interval_ms=5, max_records=100)
    with open_journal(journal_dir, policy, fsync_function=fsync, clock=clock) as journal:
        committing, release = threading.Event(), threading.Event()

        def slow_committer() -> None:  # holds the commit lock the way a slow fsync would
            with journal._sync_lock:
                committing.set()
                release.wait(10)

        other = threading.Thread(target=slow_committer)
        other.start()
        try:
            assert committing.wait(10)
            journal.append(b"1")
            clock.now = 0.05
            assert journal.append(b"2") == 2  # overdue, but someone is committing: no wait
            assert journal.durable_seq == 0
        finally:
            release.set()
            other.join(10)
        assert journal.flush() == 2


def test_group_commit_appenders_commit_themselves_when_the_timer_is_far_behind(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    clock = StepClock()  # its timers never fire unless told: a timer thread that is stuck
    with open_journal(
        journal_dir, FsyncPolicy.group(5, 3), fsync_function=fsync, clock=clock
    ) as journal:
        before = fsync.count
        for i in range(1, 12):
            journal.append(payload(i))
        assert (journal.durable_seq, fsync.count) == (0, before)
        journal.append(payload(12))  # four groups behind: this append commits them all
        assert (journal.durable_seq, fsync.count) == (12, before + 1)


def test_group_commit_appenders_make_no_system_calls(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    clock = ManualClock()
    policy = FsyncPolicy.group(interval_ms=5, max_records=1000)
    with open_journal(
        journal_dir, policy, fsync_function=fsync, clock=clock, segment_bytes=100
    ) as journal:
        (segment,) = segments(journal_dir)
        fsyncs = fsync.count
        journal.append_many([payload(i) for i in range(1, 11)])  # several rollovers' worth
        journal.append(payload(11))
        # The snapshot thread may write zeros ahead in the segment meanwhile (``_top_up``,
        # from open, on a thread of its own): the file may grow, but holds no record yet.
        assert segments(journal_dir) == [segment] and fsync.count == fsyncs
        assert segment.read_bytes()[HEADER:].strip(b"\0") == b""
        assert journal.last_seq == 11 and journal.first_seq == 1
        # Reading back writes the queue out first (without fsync), so it misses nothing.
        assert replayed(journal) == [(i, payload(i)) for i in range(1, 12)]
        assert journal.durable_seq == 0 and len(segments(journal_dir)) > 1
        clock.advance(0.005)
        assert journal.durable_seq == 11
    with open_journal(journal_dir) as reopened:
        assert replayed(reopened) == [(i, payload(i)) for i in range(1, 12)]


def test_manual_flush_under_group_commit(journal_dir: Path, fsync: CountingFsync) -> None:
    clock = ManualClock()
    seen: list[int] = []
    with open_journal(
        journal_dir, FsyncPolicy.group(5, 100), fsync_function=fsync, clock=clock
    ) as journal:
        journal.add_durability_listener(seen.append)
        journal.append_many([b"a", b"b"])
        assert journal.flush() == 2
        assert (journal.durable_seq, seen, clock.pending_delays()) == (2, [2], [])
        journal.append(b"c")
        assert journal.durable_seq == 2
    assert seen == [2, 3]  # close flushed


def test_group_commit_with_the_real_clock(journal_dir: Path) -> None:
    durable = threading.Event()

    def on_durable(seq: int) -> None:
        if seq >= 2:
            durable.set()

    with open_journal(journal_dir, FsyncPolicy.parse("group:1ms:1000")) as journal:
        journal.add_durability_listener(on_durable)
        journal.append_many([b"a", b"b"])
        assert durable.wait(10)
        assert journal.durable_seq == 2


def test_none_never_fsyncs_until_flush(journal_dir: Path, fsync: CountingFsync) -> None:
    seen: list[int] = []
    with open_journal(
        journal_dir, FsyncPolicy.NONE, fsync_function=fsync, segment_bytes=100
    ) as journal:
        journal.add_durability_listener(seen.append)
        before = fsync.count
        journal.append_many([payload(i) for i in range(1, 11)])  # several rollovers
        assert (journal.durable_seq, fsync.count, seen) == (0, before, [])
        assert journal.flush() == 10
        assert seen == [10]
        synced = fsync.paths[before:]
        files = {Path(p).name for p in synced}
        assert {p.name for p in segments(journal_dir)} <= files  # every segment written to
        assert str(journal_dir) in synced  # and the directory entries of the new ones
        assert journal.stats().fsyncs >= len(synced)


def test_listener_failure_is_logged_and_ignored(
    journal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def broken(seq: int) -> None:
        raise RuntimeError("listener bug")

    with open_journal(journal_dir, FsyncPolicy.EVERY_RECORD) as journal:
        journal.add_durability_listener(broken)
        journal.add_durability_listener(seen.append)
        assert journal.append(b"a") == 1
        journal.remove_durability_listener(broken)
        journal.append(b"b")
    assert seen == [1, 2]
    assert caplog.text.count("durability listener") == 1


def test_failed_fsync_is_fatal_until_reopened(journal_dir: Path, fsync: CountingFsync) -> None:
    journal = open_journal(journal_dir, FsyncPolicy.EVERY_RECORD, fsync_function=fsync)
    journal.append(b"a")
    fsync.fail = OSError(5, "I/O error")
    with pytest.raises(JournalError, match="fsync failed"):
        journal.append(b"b")
    fsync.fail = None
    assert journal.durable_seq == 1
    with pytest.raises(JournalError, match="must be reopened"):
        journal.append(b"c")
    with pytest.raises(JournalError, match="must be reopened"):
        journal.flush()
    journal.close()
    with open_journal(journal_dir) as reopened:
        assert [s for s, _ in reopened.replay()] == [1, 2]


def test_concurrent_appends_get_unique_ordered_sequence_numbers(
    journal_dir: Path, fsync: CountingFsync
) -> None:
    threads, per_thread = 4, 300
    clock = ManualClock()
    seen: list[int] = []
    results: dict[int, list[int]] = {}
    barrier = threading.Barrier(threads)

    def worker(number: int) -> None:
        barrier.wait()
        results[number] = [
            journal.append(f"{number}:{i}".encode())
            if i % 7
            else journal.append_many([f"{number}:{i}".encode()])
            for i in range(per_thread)
        ]

    with open_journal(
        journal_dir,
        FsyncPolicy.group(5, 16),
        fsync_function=fsync,
        clock=clock,
        segment_bytes=1024,
    ) as journal:
        journal.add_durability_listener(seen.append)
        workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(30)
        assert not any(thread.is_alive() for thread in workers)
        journal.flush()
        everything = replayed(journal)
    total = threads * per_thread
    assert sorted(seq for seqs in results.values() for seq in seqs) == list(range(1, total + 1))
    by_seq = dict(everything)
    for number, seqs in results.items():
        assert seqs == sorted(seqs)
        assert [by_seq[seq] for seq in seqs] == [
            f"{number}:{i}".encode() for i in range(per_thread)
        ]
    assert seen == sorted(seen) and seen[-1] == total


# -- helpers for the reader ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftover = [
        t
        for t in set(threading.enumerate()) - before
        if t.is_alive() and t.name != "tradenode-clock"
    ]
    assert leftover == []
