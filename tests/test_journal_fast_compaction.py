"""Compaction knows which snapshots are intact without reading back the ones it wrote.

The OMS compacts after every snapshot. Compaction needs the latest intact
snapshot and the two newest intact ones, and used to read every snapshot
file back to find them: three files of megabytes, with their checksums and
copies, for bytes the page cache still held as written, on a CPU and a GIL
the order path shares. A journal now remembers the files it wrote whole, or
read back whole, with their ``os.stat``; a file whose stat changed since
(any write, a rename, ``os.utime``) is read back and checked again, so
damage is seen as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tradenode.journal import FsyncPolicy, Journal, verify_journal

# Storage internals: the tests count the snapshot files compaction reads back.
from tradenode.journal import _storage as storage


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seq of every snapshot file the storage engine reads back and checks."""
    seen: list[int] = []
    real: Callable[..., bytes] = storage.decode_snapshot

    def counting(path: Path, data: bytes, *, expected_seq: int, format_version: int) -> bytes:
        seen.append(expected_seq)
        return real(path, data, expected_seq=expected_seq, format_version=format_version)

    monkeypatch.setattr(storage, "decode_snapshot", counting)
    return seen


def _open(directory: Path) -> Journal:
    return Journal.open(directory, fsync=FsyncPolicy.NONE, segment_bytes=200)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = _open(tmp_path / "journal")
    yield opened
    opened.close()


def _fill(journal: Journal, count: int) -> None:
    journal.append_many([b"record %d" % i for i in range(count)])


def _snapshot_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("snapshot-*.tns"))


def test_compaction_reads_back_no_snapshot_this_journal_wrote(
    journal: Journal, reads: list[int]
) -> None:
    _fill(journal, 40)
    for seq in (10, 20, 30):
        journal.write_snapshot(seq, b"state@%d" % seq)
    result = journal.compact()
    assert result.snapshot_seq == 30
    assert [path.name for path in result.snapshots_removed] == [f"snapshot-{10:020d}.tns"]
    assert result.segments_removed  # records up to 30 went
    assert reads == []
    journal.write_snapshot(40, b"state@40")
    assert journal.compact().snapshot_seq == 40
    assert reads == []
    # Reading the payload still reads the file.
    assert journal.latest_snapshot() == (40, b"state@40")
    assert reads == [40]


@pytest.mark.parametrize("keep_times", [False, True], ids=["written", "times put back"])
def test_compaction_sees_a_snapshot_damaged_after_this_journal_wrote_it(
    journal: Journal, reads: list[int], keep_times: bool, caplog: pytest.LogCaptureFixture
) -> None:
    directory = journal.directory
    _fill(journal, 40)
    journal.write_snapshot(20, b"state@20")
    newest = journal.write_snapshot(30, b"state@30")
    before = newest.stat()
    data = bytearray(newest.read_bytes())
    data[-1] ^= 1  # same size, one bit off
    newest.write_bytes(bytes(data))
    if keep_times:
        os.utime(newest, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = journal.compact()
    assert result.snapshot_seq == 20  # the damaged one is not trusted
    assert 30 in reads and "skipping snapshot" in caplog.text
    assert journal.first_seq <= 21  # records after the intact snapshot are all kept
    replayed = [seq for seq, _payload in journal.replay(20)]
    assert replayed == list(range(21, 41))
    assert _snapshot_files(directory) == [f"snapshot-{20:020d}.tns", f"snapshot-{30:020d}.tns"]


def test_a_snapshot_replaced_by_another_file_is_read_back(
    journal: Journal, reads: list[int]
) -> None:
    _fill(journal, 40)
    journal.write_snapshot(20, b"state@20")
    newest = journal.write_snapshot(30, b"state@30")
    stranger = newest.with_name("stranger")
    stranger.write_bytes(b"XXXX" + newest.read_bytes()[4:])
    stranger.replace(newest)  # a new inode under the same name
    assert journal.compact().snapshot_seq == 20
    assert reads == [30]  # the intact one it wrote is not read again


def test_a_reopened_journal_reads_each_snapshot_back_once(tmp_path: Path, reads: list[int]) -> None:
    directory = tmp_path / "journal"
    with _open(directory) as journal:
        _fill(journal, 40)
        for seq in (10, 20, 30):
            journal.write_snapshot(seq, b"state@%d" % seq)
    reads.clear()
    with _open(directory) as journal:
        assert reads == [30]  # open checks the newest, as it always did
        assert journal.compact().snapshot_seq == 30
        assert sorted(reads) == [10, 20, 30]  # the rest once, to know which two to keep
        journal.compact()
        journal.write_snapshot(40, b"state@40")
        journal.compact()
        assert sorted(reads) == [10, 20, 30]
        assert journal.latest_snapshot() == (40, b"state@40")
    report: Any = verify_journal(directory)
    assert report.sound and report.latest_snapshot_seq == 40
