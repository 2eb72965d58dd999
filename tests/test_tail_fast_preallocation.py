"""The journal writes zeros ahead of its records, so that an fsync rarely has a new file size
to make durable; what is on disk still reads back exactly, before and after a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

from tradenode.journal import FsyncPolicy, Journal, verify_journal

from ._segment_helpers import FRAME, payload, records_end, segments


def test_records_overwrite_zeros_written_ahead_which_close_cuts_off(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    with Journal.open(directory, fsync=FsyncPolicy.EVERY_RECORD) as journal:
        for i in range(1, 4):
            journal.append(payload(i))
        (segment,) = segments(directory)
        end, seqs = records_end(segment)
        data = segment.read_bytes()
        assert seqs == [1, 2, 3]
        assert len(data) > end and data[end:] == bytes(len(data) - end)
    assert segment.stat().st_size == end
    with Journal.open(directory, fsync=FsyncPolicy.EVERY_RECORD) as reopened:
        assert reopened.torn_tail is None
        assert [p for _, p in reopened.replay()] == [payload(i) for i in range(1, 4)]


def test_a_crash_leaves_the_zeros_which_read_as_the_clean_end_of_the_records(
    tmp_path: Path,
) -> None:
    """Nothing was torn: no torn tail is reported, and the zeros are written over."""
    directory, crashed = tmp_path / "j", tmp_path / "crashed"
    with Journal.open(directory, fsync=FsyncPolicy.EVERY_RECORD) as journal:
        for i in range(1, 6):
            journal.append(payload(i))
        shutil.copytree(directory, crashed)  # the files as a crash would leave them
    (segment,) = segments(crashed)
    end, seqs = records_end(segment)
    size = segment.stat().st_size
    assert seqs == [1, 2, 3, 4, 5] and size > end
    report = verify_journal(crashed)
    assert report.torn_tail is None and report.last_seq == 5
    with Journal.open(crashed, fsync=FsyncPolicy.EVERY_RECORD) as reopened:
        assert reopened.torn_tail is None and reopened.last_seq == 5
        assert [p for _, p in reopened.replay()] == [payload(i) for i in range(1, 6)]
        assert reopened.append(payload(6)) == 6
        # Written over the zeros: the file did not grow for it.
        assert segment.stat().st_size == size
        assert records_end(segment)[1] == [1, 2, 3, 4, 5, 6]
    assert records_end(segment) == (segment.stat().st_size, [1, 2, 3, 4, 5, 6])
    with Journal.open(crashed, fsync=FsyncPolicy.EVERY_RECORD) as again:
        assert again.torn_tail is None and again.last_seq == 6


def test_a_journal_read_while_open_elsewhere_shows_no_torn_tail(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    with Journal.open(directory, fsync=FsyncPolicy.group()) as journal:
        for i in range(1, 4):
            journal.append(payload(i))
        journal.flush()
        with Journal.open_read_only(directory) as reader:
            assert reader.torn_tail is None and reader.last_seq == 3
            assert [p for _, p in reader.replay()] == [payload(i) for i in range(1, 4)]


def test_a_torn_record_before_the_zeros_is_still_a_torn_tail(tmp_path: Path) -> None:
    directory, crashed = tmp_path / "j", tmp_path / "crashed"
    with Journal.open(directory, fsync=FsyncPolicy.EVERY_RECORD) as journal:
        for i in range(1, 4):
            journal.append(payload(i))
        shutil.copytree(directory, crashed)
    (segment,) = segments(crashed)
    end, _ = records_end(segment)
    data = bytearray(segment.read_bytes())
    # Half of a fourth record's frame reached the disk; the zeros ahead follow it.
    frame = FRAME.pack(len(payload(4)), 12345, 4) + payload(4)
    data[end : end + len(frame) // 2] = frame[: len(frame) // 2]
    segment.write_bytes(bytes(data))
    with Journal.open(crashed, fsync=FsyncPolicy.EVERY_RECORD) as reopened:
        assert reopened.torn_tail is not None and reopened.torn_tail.offset == end
        assert reopened.last_seq == 3


def test_a_segment_that_is_not_the_last_ends_with_its_last_record(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    segment_bytes = 4096
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=segment_bytes) as journal:
        for i in range(1, 61):
            journal.append(payload(i))
        journal.flush()
        *full, last = segments(directory)
        assert len(full) >= 2
        seen: list[int] = []
        for path in full:
            end, seqs = records_end(path)
            assert path.stat().st_size == end  # no zeros: the next segment follows it
            seen += seqs
        end, seqs = records_end(last)
        assert end <= last.stat().st_size <= segment_bytes  # never written ahead past the limit
        assert seen + seqs == list(range(1, 61))


def test_the_none_policy_writes_nothing_ahead(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as journal:
        journal.append(payload(1))
        (segment,) = segments(directory)
        assert records_end(segment) == (segment.stat().st_size, [1])
