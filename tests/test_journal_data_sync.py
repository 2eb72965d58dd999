"""A commit makes its records durable with ``fdatasync``; the rest is ``fsync``ed.

``fdatasync`` flushes a file's data and the metadata reading it back needs (a
new size, new blocks) and leaves out its modification time, whose ``fsync``
costs a file-system journal commit whenever the time has moved: on a busy node,
every few milliseconds, on an order's way out. PostgreSQL syncs its write-ahead
log the same way on Linux. Directories, new segments and snapshots keep
``fsync`` (a directory's entries are not a file's data).

The tests watch which system call runs by wrapping ``os.fdatasync`` and
``os.fsync`` (they still sync) and naming the file each was called on, and the
thread: the journal's snapshot thread also ``fsync``s the last segment, for the
zeros it writes ahead of the records (a new size), never for records.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tradenode.journal import FsyncPolicy, Journal

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fdatasync") or not Path("/proc/self/fd").is_dir(),
    reason="fdatasync and /proc/self/fd (Linux) are what is under test",
)


SNAPSHOT_THREAD = "tradenode-snapshot-"


@dataclass
class Syncs:
    """Each sync call: which one, the file it was made on, and the calling thread's name."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def wrap(self, name: str, real: Callable[[int], None]) -> Callable[[int], None]:
        def sync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            self.calls.append((name, path, threading.current_thread().name))
            real(fd)

        return sync

    def on(self, name: str, suffix: str = "", *, records_only: bool = False) -> list[str]:
        """Paths ``name`` was called on; ``records_only``: not by the snapshot thread."""
        return [
            path
            for call, path, thread in self.calls
            if call == name
            and path.endswith(suffix)
            and not (records_only and thread.startswith(SNAPSHOT_THREAD))
        ]


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Syncs]:
    watched = Syncs()
    monkeypatch.setattr(os, "fdatasync", watched.wrap("fdatasync", os.fdatasync))
    monkeypatch.setattr(os, "fsync", watched.wrap("fsync", os.fsync))
    yield watched


@pytest.mark.parametrize(
    "policy", [FsyncPolicy.GROUP, FsyncPolicy.EVERY_RECORD, FsyncPolicy.group(1, 1)]
)
def test_a_commit_syncs_its_records_with_fdatasync(
    tmp_path: Path, syncs: Syncs, policy: FsyncPolicy
) -> None:
    with Journal.open(tmp_path / "j", fsync=policy) as journal:
        syncs.calls.clear()  # opening makes the directory and first segment durable
        for number in range(5):
            seq = journal.append(b"record %d" % number, lead=True)
            journal.flush()
            assert journal.durable_seq >= seq
        segment_syncs = syncs.on("fdatasync", ".tnj")
        assert segment_syncs, syncs.calls
        assert {Path(path).parent.name for path in segment_syncs} == {"j"}
        # No record was fsynced: only the snapshot thread fsyncs a segment (its zeros).
        assert syncs.on("fsync", ".tnj", records_only=True) == []
    with Journal.open_read_only(tmp_path / "j") as reopened:
        assert [payload for _, payload in reopened.replay()] == [
            b"record %d" % number for number in range(5)
        ]


def test_a_new_segment_and_the_directory_are_still_fsynced(tmp_path: Path, syncs: Syncs) -> None:
    # Segments of one record each: every append after the first starts a new file,
    # made ready ahead as a spare (on the snapshot thread) or created on the spot.
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.EVERY_RECORD, segment_bytes=64) as journal:
        syncs.calls.clear()
        for number in range(3):
            journal.append(b"x" * 40 + b"%d" % number)
    new_files = [path for path in syncs.on("fsync") if path.endswith((".tnj", ".spare"))]
    assert new_files, syncs.calls
    assert str(tmp_path / "j") in syncs.on("fsync")  # the new names made durable
    assert len(set(syncs.on("fdatasync", ".tnj"))) == 3  # each segment's record


def test_a_snapshot_file_is_fsynced(tmp_path: Path, syncs: Syncs) -> None:
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.EVERY_RECORD) as journal:
        seq = journal.append(b"state")
        syncs.calls.clear()
        written = journal.write_snapshot(seq, b"the state at " + str(seq).encode())
        synced = syncs.on("fsync")
        assert any(Path(path).parent == written.parent for path in synced), syncs.calls
        assert str(tmp_path / "j") in synced


def test_a_given_fsync_function_sees_every_sync_records_too(tmp_path: Path, syncs: Syncs) -> None:
    seen: list[int] = []
    with Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.EVERY_RECORD, fsync_function=seen.append
    ) as journal:
        before = len(seen)
        journal.append(b"one")
        journal.append(b"two")
        assert len(seen) - before == 2
    # Neither system call ran for a record: the test's function was all (the snapshot
    # thread makes the next segment's spare file ready with ``os.fsync`` of its own).
    assert syncs.on("fdatasync") == []
    assert syncs.on("fsync", records_only=True) == []
