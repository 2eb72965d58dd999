"""The snapshot thread writes the next zeros ahead in the last segment, and fsyncs them,
long before a record needs them: the records' commits then write no zeros of their own,
and what is on disk reads back exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradenode.journal import FsyncPolicy, Journal, verify_journal

# Storage internals: the test shrinks the zeros written ahead at a time and counts the
# commits that still had to write zeros themselves.
from tradenode.journal import _storage as storage

from ._segment_helpers import payload, records_end

AHEAD = 4096


@pytest.mark.parametrize("policy", [FsyncPolicy.group(), FsyncPolicy.EVERY_RECORD])
def test_zeros_are_written_ahead_off_the_records_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: FsyncPolicy
) -> None:
    monkeypatch.setattr(storage, "_PREALLOCATE_BYTES", AHEAD)
    monkeypatch.setattr(storage, "_TOP_UP_BELOW", AHEAD // 2)
    on_commit: list[int] = []
    preallocate = storage.Journal._preallocate

    def counted(self: Journal, end: int) -> None:
        on_commit.append(end)
        preallocate(self, end)

    monkeypatch.setattr(storage.Journal, "_preallocate", counted)
    directory = tmp_path / "j"
    count = 200  # ~44 KiB of records: ten times the zeros written ahead at a time
    with Journal.open(directory, fsync=policy) as journal:
        journal.append(payload(1))
        journal.flush()
        first = len(on_commit)  # a fresh segment's first zeros: written by its first commit
        assert first == 1
        (segment,) = sorted(directory.glob("segment-*.tnj"))
        for i in range(2, count + 1):
            journal.snapshots()  # waits for the snapshot thread's file work
            journal.append(payload(i))
            journal.flush()
            end, _ = records_end(segment)
            size = segment.stat().st_size
            assert end <= size and segment.read_bytes()[end:] == bytes(size - end)
        assert len(on_commit) == first  # every later zero was written ahead, off the commits
        assert records_end(segment)[1] == list(range(1, count + 1))
    assert records_end(segment) == (segment.stat().st_size, list(range(1, count + 1)))
    assert verify_journal(directory).last_seq == count


def test_records_racing_the_top_up_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits may catch up with a top-up in flight: they wait for it or write zeros
    themselves, and zeros never land on a record."""
    monkeypatch.setattr(storage, "_PREALLOCATE_BYTES", AHEAD)
    monkeypatch.setattr(storage, "_TOP_UP_BELOW", AHEAD // 2)
    directory = tmp_path / "j"
    count = 1500
    with Journal.open(directory, fsync=FsyncPolicy.group()) as journal:
        for i in range(1, count + 1):
            journal.append(payload(i), urgent=i % 5 == 0)
        journal.flush()
        assert [p for _, p in journal.replay()] == [payload(i) for i in range(1, count + 1)]
    with Journal.open(directory, fsync=FsyncPolicy.group()) as again:
        assert again.torn_tail is None and again.last_seq == count
        assert [p for _, p in again.replay()] == [payload(i) for i in range(1, count + 1)]
