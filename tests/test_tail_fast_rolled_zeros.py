"""A roll leaves the old segment's zeros written ahead for the snapshot thread to cut, off
the order path: a segment that is not the last may then end in zeros (a crash before the
cut leaves them), which read as the end of its records and which a writable open cuts;
anything else after its records is still corruption, and a missing record still a gap."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradenode.journal import CorruptJournalError, FsyncPolicy, Journal, verify_journal

from ._segment_helpers import FRAME, payload, records_end, segments

SEGMENT_BYTES = 4096


def build(directory: Path, count: int = 60) -> list[Path]:
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=SEGMENT_BYTES) as j:
        for i in range(1, count + 1):
            j.append(payload(i))
    found = segments(directory)
    assert len(found) >= 3
    return found


def test_flush_leaves_every_segment_but_the_last_ending_with_its_last_record(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "j"
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=SEGMENT_BYTES) as j:
        for i in range(1, 61):
            j.append(payload(i))
            if i % 20 == 0:
                j.flush()
                *full, _last = segments(directory)
                for path in full:
                    assert path.stat().st_size == records_end(path)[0]


def test_zeros_after_a_rolled_segments_records_read_as_its_end_and_open_cuts_them(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "j"
    first, *_ = build(directory)
    end, seqs = records_end(first)
    with first.open("ab") as file:  # a crash after the roll, before the cut
        file.write(bytes(SEGMENT_BYTES - end))
    report = verify_journal(directory)
    assert report.torn_tail is None and report.last_seq == 60
    with Journal.open_read_only(directory) as reader:
        assert [p for _, p in reader.replay()] == [payload(i) for i in range(1, 61)]
    assert first.stat().st_size == SEGMENT_BYTES  # read-only: left in place
    with Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=SEGMENT_BYTES) as j:
        assert j.torn_tail is None and j.last_seq == 60
        assert first.stat().st_size == end
        assert records_end(first)[1] == seqs
        assert [p for _, p in j.replay()] == [payload(i) for i in range(1, 61)]


def test_anything_but_zeros_after_a_rolled_segments_records_is_corruption(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "j"
    first, *_ = build(directory)
    end, _ = records_end(first)
    tail = bytearray(SEGMENT_BYTES - end)
    tail[len(tail) // 2] = 1
    with first.open("ab") as file:
        file.write(bytes(tail))
    with pytest.raises(CorruptJournalError) as info:
        Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=SEGMENT_BYTES)
    assert info.value.segment == first and info.value.offset == end
    assert first.stat().st_size == SEGMENT_BYTES  # corruption is never "repaired"


def test_a_rolled_segments_last_record_turned_to_zeros_is_a_gap(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    first, *_ = build(directory)
    end, seqs = records_end(first)
    data = bytearray(first.read_bytes())
    length = FRAME.size + len(payload(seqs[-1]))
    data[end - length : end] = bytes(length)
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptJournalError, match="sequence gap"):
        Journal.open(directory, fsync=FsyncPolicy.group(), segment_bytes=SEGMENT_BYTES)
    with pytest.raises(CorruptJournalError, match="sequence gap"):
        verify_journal(directory)
