"""The next segment is made ready ahead of the roll that starts it (a spare file of zeros
under a name no reader takes for a segment): rolls rename it, what is on disk reads back
exactly, and a spare left by a crash is removed at the next open."""

from __future__ import annotations

import shutil
from pathlib import Path

from tradenode.journal import FsyncPolicy, Journal, verify_journal

from ._segment_helpers import HEADER, payload, records_end, segments

SPARE = "segment-next.tnj.spare"


def test_an_open_journal_has_the_next_segment_ready_and_close_removes_it(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    segment_bytes = 4096
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=segment_bytes) as journal:
        journal.snapshots()  # waits for the snapshot thread, which makes the spare
        spare = directory / SPARE
        data = spare.read_bytes()
        assert len(data) == segment_bytes  # never written ahead past the limit
        assert data[HEADER:] == bytes(segment_bytes - HEADER)
        assert data[:HEADER] == segments(directory)[0].read_bytes()[:HEADER]
    assert not (directory / SPARE).exists()
    assert [p.name for p in segments(directory)] == ["segment-00000000000000000001.tnj"]


def test_rolls_start_segments_from_the_spare_and_every_record_reads_back(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    segment_bytes = 4096
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=segment_bytes) as journal:
        for i in range(1, 121):
            journal.snapshots()  # the spare is ready before every append: each roll renames it
            journal.append(payload(i))
        journal.flush()
        *full, last = segments(directory)
        assert len(full) >= 4
        seen: list[int] = []
        for path in full:
            end, seqs = records_end(path)
            assert path.stat().st_size == end  # no zeros: the next segment follows it
            assert path.name == f"segment-{seqs[0]:020d}.tnj"
            seen += seqs
        end, seqs = records_end(last)
        # The last one came from a spare: its zeros were written ahead, to the limit.
        assert end < last.stat().st_size == segment_bytes
        assert seen + seqs == list(range(1, 121))
        journal.snapshots()
        assert (directory / SPARE).exists()
    assert verify_journal(directory).last_seq == 120
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=segment_bytes) as again:
        assert again.torn_tail is None and again.last_seq == 120
        assert [p for _, p in again.replay()] == [payload(i) for i in range(1, 121)]


def test_a_crash_leaves_the_spare_which_is_no_segment_and_the_next_open_removes(
    tmp_path: Path,
) -> None:
    directory, crashed = tmp_path / "j", tmp_path / "crashed"
    segment_bytes = 4096
    with Journal.open(
        directory, fsync=FsyncPolicy.EVERY_RECORD, segment_bytes=segment_bytes
    ) as journal:
        for i in range(1, 41):
            journal.append(payload(i))
        journal.snapshots()
        shutil.copytree(directory, crashed)  # the files as a crash would leave them
    assert (crashed / SPARE).exists()
    report = verify_journal(crashed)
    assert report.torn_tail is None and report.last_seq == 40
    with Journal.open_read_only(crashed) as reader:
        assert [p for _, p in reader.replay()] == [payload(i) for i in range(1, 41)]
    assert (crashed / SPARE).exists()  # read-only: left in place
    with Journal.open(
        crashed, fsync=FsyncPolicy.EVERY_RECORD, segment_bytes=segment_bytes
    ) as reopened:
        assert reopened.torn_tail is None and reopened.last_seq == 40
        for i in range(41, 81):
            reopened.append(payload(i))
        assert [p for _, p in reopened.replay()] == [payload(i) for i in range(1, 81)]
    assert not (crashed / SPARE).exists()


def test_the_none_policy_makes_no_spare(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    with Journal.open(directory, fsync=FsyncPolicy.NONE, segment_bytes=4096) as journal:
        for i in range(1, 41):
            journal.append(payload(i))
        journal.snapshots()
        assert not (directory / SPARE).exists()


def test_rolls_racing_the_spare_lose_nothing(tmp_path: Path) -> None:
    """Rolls come faster than spares are made: some create their segment, some rename the
    spare, and a spare is never written again once it is ready (a roll may be renaming it)."""
    directory = tmp_path / "j"
    segment_bytes = 4096
    count = 600
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=segment_bytes) as journal:
        for i in range(1, count + 1):
            journal.append(payload(i), urgent=i % 7 == 0)
        journal.flush()
        *full, _last = segments(directory)
        for path in full:
            end, seqs = records_end(path)
            assert path.stat().st_size == end and path.name == f"segment-{seqs[0]:020d}.tnj"
        assert [p for _, p in journal.replay()] == [payload(i) for i in range(1, count + 1)]
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=segment_bytes) as again:
        assert again.torn_tail is None and again.last_seq == count
        assert [p for _, p in again.replay()] == [payload(i) for i in range(1, count + 1)]
