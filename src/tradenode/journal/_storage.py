"""The journal's storage engine: an append-only, segmented, checksummed log of opaque records.

It knows nothing of orders: a record is a payload (``bytes``) and the
sequence number the journal gave it (1, 2, 3, ... with no gaps, across
segments and across reopenings). The file format is in ``_segments`` and
``_snapshots``; when fsync happens is the ``FsyncPolicy``.

Concurrency: ``append`` only frames the record and queues it in memory,
under one short lock that is never held across a system call; the queued
records reach the file in one ``os.write`` per batch, under a second lock
(the sync lock) that serialises writes, segment rollovers and fsyncs (lock
order: the sync lock, then the append lock; the leader's wake-up lock is
taken by no one holding either). Who writes the batch is the fsync
policy's business: the appender itself before ``append`` returns
(``EVERY_RECORD``, ``NONE``), or, under ``GROUP``, a thread of the
journal's own, so that a group-commit appender makes no system call and
never waits for the disk: on a busy node a system call costs the calling
thread far more than the call, because it gives up the GIL and must queue
to get it back.

``GROUP`` without an interval (the default) is leader/follower group
commit. The journal's commit thread (the leader) sleeps while every record
is durable; the append that finds it asleep wakes it (releasing a lock,
which does not give up the GIL), and it writes and fsyncs at once, so a
lone record pays one fsync and no wait. Records appended while that fsync
is in flight queue behind it and are written and fsynced together, as one
group, as soon as it returns; the leader sleeps again only when nothing is
left. An appender with nothing else to do until its record is durable (the
OMS with an empty mailbox) may lead instead (``append(lead=True)``): when
no commit is in flight it writes and fsyncs the group on its own thread,
which spares the wake-up of the commit thread and its wait for the GIL. Records appended as not urgent (nobody waits for them) wait up to
``_LAZY_SECONDS`` for an urgent one (or ``urge``) to share its fsync. With an interval (``group:2ms``) a timer on the journal's clock
commits the group instead, ``interval_ms`` after its oldest record (see
``_schedule_group_locked``). Either way an appender steps in only when the
committer is far behind: ``_BACKLOG_GROUPS`` groups' worth of records
queued (backpressure: it then waits for the disk), or, with a timer, a
group four intervals old. One fsync covers every record written before it
started. Durability listeners run with the append lock released, on the
committing thread, in order.

A commit makes its records durable with ``fdatasync`` where the platform has
it (``sync_data``): it flushes the data and whatever metadata reading them
back needs (a new file size, new blocks), and leaves out the file's
modification time, which a crash may lose without losing a record. ``fsync``
also makes that time durable, a file-system journal commit whenever the time
has moved (every few milliseconds on a busy node): PostgreSQL syncs its
write-ahead log with ``fdatasync`` on Linux by default for the same reason.
Directories, new segments and snapshots are still ``fsync``ed.

Records overwrite zeros written ahead of them in the last segment
(``_preallocate``, under the fsync policies that fsync), so that an fsync
seldom has a new file size to make durable, which costs a file-system
journal commit and most of the slow tail of an order's commit. A segment
loses its zeros when the next one starts (made durable before it) and when
the journal closes; after a crash, or read while the journal is open
elsewhere, they read as the clean end of the records (``SegmentReader``),
and a writable open writes over them again.
The next segment is made ready the same way
ahead of the roll that starts it (``_prepare_spare``, on the snapshot
thread), so that a roll on the order path renames a file instead of
creating one and making its zeros durable.

A failed write or fsync is fatal to this ``Journal`` object: records after
it may be missing from the file while their sequence numbers were already
handed out, and after a failed fsync the kernel may have dropped unsynced
pages while the file still looks intact. Every later call raises until
the journal is reopened, which rescans the files (a partly written record
is a torn tail then).
"""

from __future__ import annotations

import bisect
import contextlib
import enum
import fcntl
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from .._exceptions import CorruptJournalError, JournalError, JournalVersionError
from ..supervision import Cancellable, Clock, SystemClock
from ._policy import FsyncMode, FsyncPolicy
from ._segments import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    RECORD_HEADER,
    SegmentReader,
    TornTail,
    encode_header,
    encode_record,
    segment_name,
    segment_paths,
)
from ._snapshots import (
    SnapshotError,
    SnapshotInfo,
    decode_snapshot,
    file_identity,
    fsync_directory,
    snapshot_header,
    snapshot_name,
    snapshot_paths,
    temporary_snapshot_paths,
    write_file_atomically,
)

__all__ = [
    "COMMIT_LATENCY_BOUNDS",
    "DEFAULT_SEGMENT_BYTES",
    "CommitLatency",
    "CompactionResult",
    "Journal",
    "JournalReport",
    "JournalStats",
    "verify_journal",
]

logger = logging.getLogger("tradenode.journal")

DEFAULT_SEGMENT_BYTES = 64 * 2**20
_MIN_SEGMENT_BYTES = HEADER_SIZE + RECORD_HEADER.size
_LOCK_FILE = "journal.lock"
_KEEP_SNAPSHOTS = 2
#: Group commit's backpressure: groups' worth of records that may wait for a late
#: timer before appenders write and fsync themselves.
_BACKLOG_GROUPS = 4
#: Group commit's latency bound: intervals the oldest queued record may wait for a
#: late timer before an appender writes and fsyncs the group itself.
_OVERDUE_INTERVALS = 4
#: Leader/follower group commit: seconds a record appended with ``urgent=False`` may wait
#: for an urgent one (or ``urge``) to share its fsync before the leader commits it anyway.
_LAZY_SECONDS = 0.002
#: Zero bytes written ahead of the records in the last segment, at most, at a time
#: (see ``_preallocate``).
_PREALLOCATE_BYTES = 2**20
#: The snapshot thread writes the next ``_PREALLOCATE_BYTES`` of zeros ahead once fewer
#: than these are left in the last segment (``_top_up``), long before a record needs them.
_TOP_UP_BELOW = _PREALLOCATE_BYTES // 2
#: The next segment's file, made ready ahead of the roll that needs it (``_prepare_spare``);
#: not a segment name, so readers never see it, and a writable open removes a leftover one.
_SPARE_SEGMENT = "segment-next.tnj.spare"


class _Then(enum.Enum):
    """What an appender does after queueing records under group commit (see
    ``Journal._schedule_group_locked``)."""

    NOTHING = enum.auto()
    WAKE = enum.auto()
    COMMIT_IF_FREE = enum.auto()
    COMMIT = enum.auto()
    LEAD = enum.auto()


_NOTHING, _WAKE, _COMMIT_IF_FREE, _COMMIT, _LEAD = _Then


@dataclass(frozen=True, slots=True)
class JournalStats:
    """Counters of one open journal.

    ``records`` and ``bytes`` cover what the segments on disk hold now
    (compaction lowers them); ``appended`` and ``fsyncs`` count since open.
    ``first_seq`` is the oldest record still in a segment (``last_seq + 1``
    when there is none).
    """

    records: int
    bytes: int
    segments: int
    fsyncs: int
    appended: int
    first_seq: int
    last_seq: int
    durable_seq: int


#: Upper bounds (seconds) of the commit latency buckets: 0.5 ms to 10 s.
COMMIT_LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


@dataclass(frozen=True, slots=True)
class CommitLatency:
    """Append-to-durable latency of the commits since open, as a fixed-bucket histogram.

    One observation per fsync that made records durable: the seconds
    (monotonic) from the append of the oldest record it covered to the end
    of its fsync, so a group commit counts its wait for the timer too.
    ``buckets[i]`` counts commits at or below ``bounds[i]`` (cumulative, as
    Prometheus has it); ``count`` includes those above the last bound.
    Bounded memory: counters only.
    """

    bounds: tuple[float, ...]
    buckets: tuple[int, ...]
    count: int
    sum: float


@dataclass(frozen=True, slots=True)
class CompactionResult:
    """What ``Journal.compact`` removed, relative to the snapshot it trusted."""

    snapshot_seq: int | None
    segments_removed: tuple[Path, ...]
    snapshots_removed: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class JournalReport:
    """What ``verify_journal`` found; ``problems`` is empty when the journal is sound.

    A torn tail is not a problem: it is the unfinished last write of a crash,
    and the next writable open truncates it (``torn_tail`` says where).
    """

    directory: Path
    segments: int
    records: int
    bytes: int
    first_seq: int
    last_seq: int
    torn_tail: TornTail | None
    snapshots: tuple[SnapshotInfo, ...]
    problems: tuple[str, ...]

    @property
    def sound(self) -> bool:
        return not self.problems

    @property
    def latest_snapshot_seq(self) -> int | None:
        intact = [info.seq for info in self.snapshots if info.problem is None]
        return max(intact) if intact else None


@dataclass(slots=True)
class _Segment:
    path: Path
    first_seq: int
    last_seq: int  # first_seq - 1 while the segment holds no record
    size: int

    @property
    def empty(self) -> bool:
        return self.last_seq < self.first_seq


class Journal:
    """An append-only log of opaque payloads in ``segment-*.tnj`` files; see the module docstring.

    Build one with ``Journal.open`` (writable, one process at a time) or
    ``Journal.open_read_only`` (tools; never modifies the files). Thread-safe;
    a context manager that closes (flushes) on exit.
    """

    def __init__(
        self,
        directory: Path,
        *,
        fsync: FsyncPolicy,
        segment_bytes: int,
        format_version: int,
        fsync_function: Callable[[int], None] | None,
        clock: Clock | None,
        read_only: bool,
        thread_setup: Callable[[], object] | None = None,
    ) -> None:
        """Prefer ``Journal.open`` / ``Journal.open_read_only``; this scans and recovers."""
        if not isinstance(fsync, FsyncPolicy):
            raise TypeError(f"fsync must be a FsyncPolicy, not {fsync!r}")
        if isinstance(segment_bytes, bool) or segment_bytes < _MIN_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes must be at least {_MIN_SEGMENT_BYTES}")
        if isinstance(format_version, bool) or not 1 <= format_version <= 0xFFFF_FFFF:
            raise ValueError(
                f"format_version must be a positive 32-bit number, not {format_version}"
            )
        self._directory = Path(directory)
        self._policy = fsync
        self._segment_bytes = segment_bytes
        self._format_version = format_version
        self._fsync_function = fsync_function or os.fsync
        self._sync_records = fsync_function or sync_data
        self._read_only = read_only
        self._thread_setup = thread_setup
        self._lock = threading.Lock()
        self._sync_lock = threading.RLock()
        self._count_lock = threading.Lock()
        self._listeners: list[Callable[[int], None]] = []
        self._segments: list[_Segment] = []  # as written: queued records are not in them yet
        self._fd = -1
        self._lock_fd = -1
        self._last_seq = 0  # the last sequence number handed out, written or still queued
        self._written_seq = 0  # the last record that reached the file
        self._durable_seq = 0
        # Framed records not written yet, in sequence order; an int starts a new
        # segment whose first record is that sequence number.
        self._queue: list[bytes | int] = []
        # Where the last segment starts and how long it is once the queue is written.
        self._tail_first_seq = 1
        self._tail_size = 0
        # The last segment's bytes on disk: its records, then zeros written ahead
        # (``_preallocate``), which ``_roll`` and ``close`` cut off again.
        self._allocated = 0
        # Not under ``NONE``: it never fsyncs on its own, so there is no commit to speed up.
        self._preallocates = fsync.mode is not FsyncMode.NONE
        self._appended = 0
        self._fsyncs = 0
        # Commit latency: when the oldest queued record was appended, when the oldest
        # written-but-not-fsynced one was, and the histogram of append -> durable.
        self._queued_since: float | None = None
        self._unsynced_since: float | None = None
        # Commits per bucket, not cumulative: index i counts latencies in
        # (bounds[i-1], bounds[i]], the last one those above every bound.
        self._latency_hits = [0] * (len(COMMIT_LATENCY_BOUNDS) + 1)
        self._latency_count = 0
        self._latency_sum = 0.0
        self._pending_count = 0
        self._pending_since = 0.0
        self._timer: Cancellable | None = None
        self._timer_immediate = False
        # Leader/follower group commit (GROUP without an interval): the commit
        # thread, whether it sleeps (only the append lock decides who wakes it,
        # so every release of ``_wake`` matches one acquire), and its wake-up lock.
        self._leads = fsync.mode is FsyncMode.GROUP and fsync.interval_ms == 0 and not read_only
        self._timed = fsync.mode is FsyncMode.GROUP and fsync.interval_ms > 0 and not read_only
        self._leader: threading.Thread | None = None
        self._leader_asleep = False
        # Whether its sleep is timed: it then looks at the queue again within
        # ``_LAZY_SECONDS`` of now, so a record nobody waits for need not wake it.
        self._leader_timed = False
        self._wake = threading.Lock()
        self._urgent_seq = 0  # the last record someone waits for (``urgent`` or ``urge``)
        # Snapshots written in the background (``write_snapshot_later``): the one
        # handed over and not started yet, whether one is being written, the thread.
        # Its condition's lock is never held while another lock is taken.
        self._snapshot_changed = threading.Condition(threading.Lock())
        self._snapshot_next: tuple[int, Callable[[], bytes], bool] | None = None
        self._snapshot_busy = False
        self._snapshot_stop = False
        self._snapshot_thread: threading.Thread | None = None
        self._snapshot_failures = 0
        # The next segment made ready off the order path (``_prepare_spare``): its
        # zeros written ahead, as one size; whether the snapshot thread should make one.
        self._spare: int | None = None
        self._tidy_wanted = False
        # Segments rolled with their zeros written ahead still on them, as (path, size
        # of their records): ``_cut_rolled`` cuts them off the order path, under its lock.
        self._uncut: list[tuple[Path, int]] = []
        # Snapshot files known intact, each with the ``os.stat`` it had then
        # (``file_identity``): those this object wrote, and those it read back
        # whole. Compaction asks which snapshots are intact after every snapshot;
        # reading each back again (three files of megabytes, their checksums and
        # copies) only re-read the page cache, on the order path's CPU.
        self._known_intact: dict[Path, tuple[int, int, int, int]] = {}
        self._cut_lock = threading.Lock()
        # Held by whoever writes zeros ahead in the last segment or replaces it (the
        # sync lock's holder, the snapshot thread's ``_top_up``), so that zeros never
        # land on a record; whether a top-up was asked for and not done yet.
        self._top_up_lock = threading.Lock()
        self._top_up_asked = False
        self._committing = False
        self._unsynced_paths: list[Path] = []
        self._dir_dirty = False
        self._closed = False
        self._failure: JournalError | None = None
        self._roll_requested = False
        self._torn_tail: TornTail | None = None
        self._owns_clock = clock is None and self._timed
        self._clock: Clock | None = SystemClock() if self._owns_clock else clock
        # Commit latency is read on the journal's clock when it has one (a test's
        # ManualClock gives exact figures), else on the process's monotonic clock.
        self._monotonic = time.monotonic if self._clock is None else self._clock.monotonic
        try:
            self._open_files()
        except BaseException:
            self._release_files()
            raise
        if self._leads:
            self._wake.acquire()  # held while the leader may sleep on it
            self._leader = threading.Thread(
                target=self._run_thread,
                args=(self._lead,),
                name=f"tradenode-journal-{self._directory.name}",
                daemon=True,
            )
            self._leader.start()
        if self._preallocates and not read_only:
            self._want_tidy()

    def _run_thread(self, body: Callable[[], None]) -> None:
        """A thread of the journal's own: ``thread_setup`` first, then ``body``."""
        if self._thread_setup is not None:
            self._thread_setup()
        body()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        fsync: FsyncPolicy,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        format_version: int = 1,
        fsync_function: Callable[[int], None] | None = None,
        clock: Clock | None = None,
        thread_setup: Callable[[], object] | None = None,
    ) -> Journal:
        """Open (creating it if needed) the journal in ``directory`` for appending.

        Scans every segment and checks every record: a torn last record is
        truncated away with a WARNING, anything else damaged raises
        ``CorruptJournalError`` (segment and byte offset), a header of another
        format ``JournalVersionError``. ``fsync_function`` (by default
        ``sync_data`` for records and ``os.fsync`` for everything else; one
        given is called for both, so a test sees every sync) and
        ``clock`` (a private ``SystemClock`` for group commit; a
        ``ManualClock`` in tests) are injectable. Only one process may have a
        journal open for writing (``JournalError`` otherwise). ``thread_setup``
        runs first on each thread the journal starts (its commit thread and its
        snapshot thread): a node puts them under its thread scheduling there.
        """
        return cls(
            directory,
            fsync=fsync,
            segment_bytes=segment_bytes,
            format_version=format_version,
            fsync_function=fsync_function,
            clock=clock,
            read_only=False,
            thread_setup=thread_setup,
        )

    @classmethod
    def open_read_only(cls, directory: Path, *, format_version: int = 1) -> Journal:
        """Open an existing journal to read it, even while a node is writing to it.

        Checks every record like ``open`` but never modifies a file: a torn
        tail is only reported (WARNING, ``torn_tail``) and left out of replay.
        Appending, snapshots and compaction raise ``JournalError``.
        """
        return cls(
            directory,
            fsync=FsyncPolicy.NONE,
            segment_bytes=DEFAULT_SEGMENT_BYTES,
            format_version=format_version,
            fsync_function=None,
            clock=None,
            read_only=True,
        )

    def _open_files(self) -> None:
        directory = self._directory
        if self._read_only:
            if not directory.is_dir():
                raise JournalError(f"{directory}: no such journal directory")
        else:
            directory.mkdir(parents=True, exist_ok=True)
            self._lock_directory()
            for leftover in temporary_snapshot_paths(directory):
                logger.info("removing %s, left over by an unfinished snapshot", leftover)
                leftover.unlink(missing_ok=True)
            (directory / _SPARE_SEGMENT).unlink(missing_ok=True)
        found = segment_paths(directory)
        for index, (first_seq, path) in enumerate(found):
            is_last = index == len(found) - 1
            previous = self._segments[-1] if self._segments else None
            if first_seq < 1:
                raise CorruptJournalError(
                    "segment names sequence number 0; records start at 1",
                    segment=path,
                    offset=HEADER_SIZE,
                )
            if previous is not None and first_seq != previous.last_seq + 1:
                raise CorruptJournalError(
                    f"sequence gap: segment starts at record {first_seq} but "
                    f"{previous.path.name} ends at record {previous.last_seq}",
                    segment=path,
                    offset=HEADER_SIZE,
                )
            data = path.read_bytes()
            reader = SegmentReader(
                path,
                data,
                first_seq=first_seq,
                format_version=self._format_version,
                is_last=is_last,
            ).scan()
            if reader.count == 0 and not is_last:
                raise CorruptJournalError(
                    "segment holds no record but is not the last one",
                    segment=path,
                    offset=HEADER_SIZE,
                )
            # Zeros written ahead of the records are not part of the segment's records;
            # a writable journal writes over them again (``_allocated``), or cuts them
            # off a segment that is not the last (rolled before its cut, see ``_roll``).
            size = len(data) - reader.zero_tail
            if reader.zero_tail and not is_last and not self._read_only:
                self._truncate(path, size)
            if reader.torn is not None:
                self._torn_tail = reader.torn
                if self._read_only:
                    logger.warning("%s; left in place (read-only)", reader.torn.describe())
                else:
                    logger.warning(
                        "%s; truncating it: the journal ends at record %d",
                        reader.torn.describe(),
                        reader.last_seq,
                    )
                    self._truncate(path, reader.end)
                size = reader.end if self._read_only else max(reader.end, HEADER_SIZE)
            self._segments.append(_Segment(path, first_seq, reader.last_seq, size))
        latest = self._latest_intact_snapshot_seq()
        if self._segments:
            self._last_seq = self._segments[-1].last_seq
            if latest is not None and latest > self._last_seq:
                last = self._segments[-1]
                raise CorruptJournalError(
                    f"snapshot {snapshot_name(latest)} is newer than the last record "
                    f"({self._last_seq}): durable records are missing",
                    segment=last.path,
                    offset=last.size,
                )
        else:
            self._last_seq = latest or 0
        self._durable_seq = self._written_seq = self._last_seq
        if self._read_only:
            return
        for segment in self._segments:  # a crashed NONE-policy writer may have left dirty pages
            self._fsync_path(segment.path)
        if not self._segments:
            self._create_segment(self._last_seq + 1)
        else:
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY)
            self._allocated = os.fstat(self._fd).st_size
        tail = self._segments[-1]
        self._tail_first_seq, self._tail_size = tail.first_seq, tail.size
        fsync_directory(directory, self._counted_fsync)
        self._dir_dirty = False

    def _lock_directory(self) -> None:
        self._lock_fd = os.open(self._directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise JournalError(
                f"{self._directory}: the journal is open for writing in another process or object"
            ) from exc

    def _truncate(self, path: Path, end: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            if end < HEADER_SIZE:  # the header itself was torn: start the segment afresh
                os.ftruncate(fd, 0)
                _write_all(fd, encode_header(self._format_version), 0)
            else:
                os.ftruncate(fd, end)
            self._counted_fsync(fd)
        finally:
            os.close(fd)

    def _create_segment(self, first_seq: int) -> None:
        path = self._directory / segment_name(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, encode_header(self._format_version), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._allocated = HEADER_SIZE
        with self._lock:
            self._segments.append(_Segment(path, first_seq, first_seq - 1, HEADER_SIZE))
            self._dir_dirty = True

    def _latest_intact_snapshot_seq(self) -> int | None:
        for seq, _path in self._intact_snapshots_newest_first():
            return seq
        return None

    # -- properties --------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def policy(self) -> FsyncPolicy:
        return self._policy

    @property
    def format_version(self) -> int:
        return self._format_version

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_seq(self) -> int:
        """The sequence number of the last record written (0 for an empty journal)."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """The highest sequence number known to be fsynced (every record up to it is)."""
        return self._durable_seq

    @property
    def first_seq(self) -> int:
        """The oldest record still held in a segment (``last_seq + 1`` when there is none)."""
        with self._lock:
            return self._first_seq_locked()

    @property
    def torn_tail(self) -> TornTail | None:
        """The torn tail found (and, unless read-only, truncated) when the journal was opened."""
        return self._torn_tail

    def _first_seq_locked(self) -> int:
        for segment in self._segments:
            if not segment.empty:
                return segment.first_seq
        return self._written_seq + 1

    # -- appending ---------------------------------------------------------------------------

    def append(self, payload: bytes, *, urgent: bool = True, lead: bool = False) -> int:
        """Append one record and return its sequence number; durable per the fsync policy.

        ``EVERY_RECORD`` fsyncs it and ``NONE`` writes it to the file before
        returning; ``GROUP`` leaves it queued in memory for the journal's
        commit thread (waking it when it sleeps) or its group-commit timer,
        which writes and fsyncs the whole group; the appender commits the
        group itself only when that committer is far behind.

        ``urgent=False`` (leader/follower group commit only; elsewhere it
        changes nothing) is for a record nobody waits for: it does not start
        an fsync of its own, which a record someone does wait for, appended
        a moment later, would have to wait out; it shares the next urgent
        record's fsync, or ``urge``'s, or is committed ``_LAZY_SECONDS``
        after it was appended.

        ``lead=True`` (leader/follower group commit, an urgent record; elsewhere
        it changes nothing) is for an appender that has nothing else to do
        until the record is durable: when no commit is in flight it writes and
        fsyncs the group itself before returning, the classic leader of
        leader/follower group commit, instead of waking the commit thread and
        going idle. That spares the thread hop to the commit thread (a wake-up
        and a wait for the GIL, which the appender holds until it is idle) on
        the record's way to the disk. When a commit is in flight the record
        queues behind it as usual, and the commit thread takes it.
        """
        _check_payload(payload)
        with self._lock:
            self._check_writable_locked()
            seq = self._last_seq + 1
            self._queue_locked(seq, encode_record(seq, payload))
            self._appended += 1
            mode = self._policy.mode
            if urgent:
                self._urgent_seq = seq
            commit = (
                self._schedule_group_locked(1, urgent, lead)
                if mode is FsyncMode.GROUP
                else _NOTHING
            )
        if mode is not FsyncMode.GROUP:
            self._finish_append(mode, seq)
        elif commit is not _NOTHING:
            self._follow_schedule(commit)
        return seq

    def append_many(
        self, payloads: Iterable[bytes], *, urgent: bool = True, lead: bool = False
    ) -> int:
        """Append records in order with one write and at most one fsync; return the last seq.

        Returns ``last_seq`` unchanged for no payloads; ``urgent`` as for ``append``.
        """
        batch = list(payloads)
        for payload in batch:
            _check_payload(payload)
        if not batch:
            return self._last_seq
        with self._lock:
            self._check_writable_locked()
            seq = self._last_seq
            for payload in batch:
                seq += 1
                self._queue_locked(seq, encode_record(seq, payload))
            self._appended += len(batch)
            mode = self._policy.mode
            if urgent:
                self._urgent_seq = seq
            commit = (
                self._schedule_group_locked(len(batch), urgent, lead)
                if mode is FsyncMode.GROUP
                else _NOTHING
            )
        if mode is not FsyncMode.GROUP:
            self._finish_append(mode, seq)
        elif commit is not _NOTHING:
            self._follow_schedule(commit)
        return seq

    def _follow_schedule(self, commit: _Then) -> None:
        """Do what ``_schedule_group_locked`` told the appender to, the append lock released."""
        if commit is _WAKE:
            self._wake.release()
        elif commit is _LEAD:
            self._lead_inline()
        else:
            self._sync(wait=commit is _COMMIT)

    def _lead_inline(self) -> None:
        """Commit the group on the appending thread (``append(lead=True)``).

        The commit thread sleeps and nobody is committing (``_schedule_group_locked``
        looked), so the sync lock is normally free; if another thread took it
        meanwhile (a ``flush``, a timed-out watch of the commit thread), the
        record is left to the commit thread, woken if it sleeps, rather than
        waited for here.
        """
        if not self._sync_lock.acquire(blocking=False):
            self._wake_leader_if_asleep()
            return
        try:
            self._sync_locked()
        finally:
            self._sync_lock.release()
        # Records another thread appended meanwhile found the commit thread asleep
        # and woke it if they needed it (``_schedule_group_locked``, ``urge``).

    def _wake_leader_if_asleep(self) -> None:
        with self._lock:
            wake = self._leader_asleep
            self._leader_asleep = False
        if wake:
            self._wake.release()

    def _check_writable_locked(self) -> None:
        if self._read_only:
            raise JournalError(f"{self._directory}: journal is open read-only")
        if self._closed:
            raise JournalError(f"{self._directory}: journal is closed")
        self._raise_if_failed_locked()

    def _raise_if_failed_locked(self) -> None:
        if self._failure is not None:
            raise JournalError(
                f"{self._directory}: journal failed earlier and must be reopened: {self._failure}"
            ) from self._failure

    def _queue_locked(self, seq: int, frame: bytes) -> None:
        """Queue record ``seq`` (the one after ``_last_seq``), starting a new segment first
        when the last one is full or a snapshot asked for it."""
        if self._last_seq >= self._tail_first_seq and (
            self._tail_size + len(frame) > self._segment_bytes or self._roll_requested
        ):
            self._roll_requested = False
            self._queue.append(seq)
            self._tail_first_seq, self._tail_size = seq, HEADER_SIZE
        self._queue.append(frame)
        self._tail_size += len(frame)
        self._last_seq = seq
        if self._queued_since is None:
            self._queued_since = self._monotonic()

    def _schedule_group_locked(self, count: int, urgent: bool = True, lead: bool = False) -> _Then:
        """Get ``count`` newly queued records committed; return what the appender must do.

        ``_NOTHING`` when the committer will see to them. Leader/follower
        (no interval): ``_WAKE`` when the commit thread sleeps and the
        records are urgent, or are the first of a group (it then sleeps
        until ``_LAZY_SECONDS`` have passed); the appender releases
        ``_wake`` once it has dropped the append lock. With an
        interval: arm the timer, ``interval_ms`` after the group's first
        record or at once when ``max_records`` are waiting; the timer's
        thread does the writing.

        Or that the appender must commit the group itself, because the
        committer is far behind. ``_COMMIT_IF_FREE`` (a timer only): the
        oldest queued record has waited ``_OVERDUE_INTERVALS`` intervals and
        its timer has not even fired (on a busy node the timer's thread can
        wait many switch intervals for the GIL, and held orders wait with
        it), so commit unless another thread already is; a timer that fired
        and waits for a slow disk is left to it, as the appender would only
        wait for the same disk. ``_COMMIT``: ``_BACKLOG_GROUPS`` groups'
        worth of records are queued, so commit even if that means waiting
        (the disk has stalled, and an appender that never waited would queue
        without bound). The commit thread commits everything queued as soon
        as its fsync returns, so records queue only behind an fsync in
        flight, and only a stalled disk makes that many.

        ``_LEAD`` (leader/follower, ``lead`` and ``urgent``): the commit
        thread sleeps and no commit is in flight, so the appender commits the
        group itself at once (see ``append``). The commit thread is left
        asleep: a timed watch of it ends finding nothing to do.
        """
        first = self._pending_count == 0
        if first:
            self._pending_since = time.monotonic() if self._leads else self._clock_now()
        self._pending_count += count
        policy = self._policy
        if self._pending_count >= _BACKLOG_GROUPS * policy.max_records:
            return _COMMIT
        if self._leads:
            if lead and urgent and self._leader_asleep and not self._committing:
                return _LEAD
            # A first record nobody waits for wakes the leader only from an untimed
            # sleep: every timed one ends within ``_LAZY_SECONDS`` of now (a lazy
            # wait for older records, or the watch after a commit; see ``_lead``),
            # and the leader then sees this record and waits out its lazy wait.
            if self._leader_asleep and (urgent or (first and not self._leader_timed)):
                self._leader_asleep = False
                return _WAKE
            return _NOTHING
        now = self._clock_now()
        if self._timer is None or (
            self._pending_count >= policy.max_records and not self._timer_immediate
        ):
            self._arm_group_timer_locked(now)
        elif now - self._pending_since >= _OVERDUE_INTERVALS * policy.interval_ms / 1000.0:
            return _COMMIT_IF_FREE
        return _NOTHING

    def _clock_now(self) -> float:
        clock = self._clock
        assert clock is not None
        return clock.monotonic()

    def urge(self, seq: int) -> None:
        """Someone waits for record ``seq``: commit it as soon as no fsync is in flight.

        For records appended with ``urgent=False`` (leader/follower group
        commit); does nothing when ``seq`` is durable already or elsewhere.
        """
        with self._lock:
            if not self._leads or seq <= self._durable_seq or seq <= self._urgent_seq:
                return
            self._urgent_seq = min(seq, self._last_seq)
            wake = self._leader_asleep
            self._leader_asleep = False
        if wake:
            self._wake.release()

    def _lead(self) -> None:
        """The leader of leader/follower group commit: the journal's commit thread.

        While records someone waits for are not durable, write and fsync
        everything queued (one group: whatever arrived during the previous
        fsync); records nobody waits for (``urgent=False``) wait up to
        ``_LAZY_SECONDS`` for one that someone does, so that they never
        start an fsync an urgent record would have to wait out. Then sleep
        on ``_wake`` until an append wakes it. It asks whether anything is
        left on ``last_seq``, not on the queue, so that records another
        thread took off the queue and wrote without an fsync (``replay``,
        ``stats``) are fsynced too. Ends when the journal closes or fails.

        After a commit that leaves nothing queued it first watches for
        ``_LAZY_SECONDS`` (a timed sleep) before sleeping until woken: a
        record nobody waits for, appended during the watch, need not wake it
        (see ``_schedule_group_locked``). On a busy node that is an order's
        venue accept, which woke the leader only for it to go back to sleep
        for the lazy wait: a thread switch and a fight for the GIL on the
        order's path. The cost is one timed wake-up when a busy spell ends.
        """
        watch = False  # the last commit may be followed by more records soon
        while True:
            with self._lock:
                if self._closed or self._failure is not None:
                    return
                timeout: float | None = None  # sleep until woken
                if self._last_seq > self._durable_seq:
                    timeout = 0.0  # commit now
                    if self._urgent_seq <= self._durable_seq:
                        timeout = max(0.0, self._pending_since + _LAZY_SECONDS - time.monotonic())
                elif watch:
                    timeout = _LAZY_SECONDS
                watch = False
                self._leader_asleep = timeout != 0.0
                self._leader_timed = timeout is not None
            if timeout is None:
                self._wake.acquire()
                continue
            if timeout > 0.0:
                if not self._wake.acquire(timeout=timeout):
                    self._after_timed_sleep()
                continue
            try:
                self._sync()
            except Exception:
                logger.exception("group commit failed; the journal refuses further appends")
                return
            watch = True

    def _after_timed_sleep(self) -> None:
        """The leader's timed sleep ran out: it is awake, and says so.

        An appender (or ``urge``, or ``close``) may have claimed the wake-up
        meanwhile, setting ``_leader_asleep`` False under the lock, and be
        about to release ``_wake``; that release is waited for here, so each
        release still matches one acquire. Going round the loop instead, the
        leader would sleep again, a second appender would claim that sleep
        too, and its release would find ``_wake`` already released: a
        ``RuntimeError`` in the appender's thread (the OMS's).
        """
        with self._lock:
            claimed = not self._leader_asleep
            self._leader_asleep = False
        if claimed:
            self._wake.acquire()

    def _arm_group_timer_locked(self, now: float) -> None:
        """Arm the timer for the queued group, or bring it forward to now at ``max_records``.

        Not while a commit runs: its thread arms the timer when it is done,
        which spares waking the timer's thread once per group when that
        thread is the one committing.
        """
        if self._committing or self._closed or self._failure or not self._pending_count:
            return
        clock = self._clock
        assert clock is not None
        if self._pending_count >= self._policy.max_records:
            if not self._timer_immediate:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = clock.call_later(0.0, self._on_group_timer)
                self._timer_immediate = True
        elif self._timer is None:
            due = self._pending_since + self._policy.interval_ms / 1000.0
            self._timer = clock.call_later(max(0.0, due - now), self._on_group_timer)

    def _finish_append(self, mode: FsyncMode, seq: int) -> None:
        """Write (``NONE``) or write and fsync (``EVERY_RECORD``) up to record ``seq``."""
        if mode is FsyncMode.NONE:
            self._write_queued()
            reached = self._written_seq
        else:
            self._sync()
            reached = self._durable_seq
        if reached < seq:  # another thread took this record with its own and failed
            with self._lock:
                self._raise_if_failed_locked()
            raise JournalError(f"{self._directory}: record {seq} was not written")

    def _write_queued(self) -> None:
        """Write every queued record to the files, without fsync (nothing if failed or closed)."""
        with self._sync_lock:
            with self._lock:
                if self._failure is not None or self._fd < 0 or not self._queue:
                    return
                queue, self._queue = self._queue, []
                self._take_queued_since_locked()
            self._write(queue)

    def _write(self, queue: list[bytes | int]) -> None:
        """Write taken records in order, one write per segment, starting new segments where
        the queue says; the caller holds the sync lock."""
        chunk: list[bytes] = []
        seq = self._written_seq
        for item in queue:
            if isinstance(item, int):
                self._write_chunk(chunk, seq)
                chunk = []
                self._roll(item)
            else:
                chunk.append(item)
                seq += 1
        self._write_chunk(chunk, seq)

    def _write_chunk(self, chunk: list[bytes], last_seq: int) -> None:
        if not chunk:
            return
        data = chunk[0] if len(chunk) == 1 else b"".join(chunk)
        segment = self._segments[-1]
        try:
            if segment.size + len(data) > self._allocated and self._preallocates:
                with self._top_up_lock:  # a top-up in flight finishes first (and may do)
                    if segment.size + len(data) > self._allocated:
                        self._preallocate(segment.size + len(data))
            _write_all(self._fd, data, segment.size)
        except OSError as exc:
            with contextlib.suppress(OSError):  # else reopening finds a torn tail
                os.ftruncate(self._fd, segment.size)
            self._fail(JournalError(f"{segment.path}: writing records failed: {exc}"), exc)
        with self._lock:
            segment.size += len(data)
            segment.last_seq = last_seq
            self._written_seq = last_seq
        if (
            self._preallocates
            and self._allocated - segment.size < _TOP_UP_BELOW
            and self._allocated < self._segment_bytes
            and not self._top_up_asked
        ):
            self._top_up_asked = True
            self._want_tidy()

    def _preallocate(self, end: int) -> None:
        """Write zeros from the last segment's end on disk to past ``end``; sync lock held.

        Why: an fsync that must also make a new file size durable costs a
        file-system journal commit, and on this kind of disk its slow tail
        (p99 ~0.7-0.9 ms against ~0.2 ms for overwriting blocks the file
        already has) is what made the slowest orders slow. So records
        overwrite zeros written ahead, ``_PREALLOCATE_BYTES`` at a time (never
        past ``segment_bytes`` unless a record needs it): one fsync in that
        many bytes pays for the new size. A crash leaves the zeros after the
        last record, which opening reads as the clean end of the records
        (a header of zeros is never a record) and writes over again.
        """
        limit = max(end, min(self._allocated + _PREALLOCATE_BYTES, self._segment_bytes))
        _write_all(self._fd, bytes(limit - self._allocated), self._allocated)
        self._allocated = limit

    def _cut_preallocated(self, segment: _Segment) -> bool:
        """Truncate the zeros written ahead of the last segment's records; whether there were any."""
        if self._allocated <= segment.size:
            return False
        os.ftruncate(self._fd, segment.size)
        self._allocated = segment.size
        return True

    def _roll(self, first_seq: int) -> None:
        """Close the last segment and start the next at record ``first_seq``; sync lock held.

        The old segment's records are made durable first, before any record
        of the next one is written, so that a crash never finds the next
        segment's records on disk and not all of the old one's (a gap, which
        opening takes for corruption). Its zeros written ahead are cut off
        later (``_cut_rolled``, on the snapshot thread): on the order path
        that ftruncate and the fsync of the new size cost 0.5-9 ms, where
        this fsync, which overwrites blocks the file has, costs what a
        commit's does. Until then, and after a crash before then, a reader
        takes the zeros for the end of the segment's records, as for the
        last segment (``SegmentReader``), and a writable open cuts them.
        """
        with self._top_up_lock:
            self._roll_locked(first_seq)

    def _roll_locked(self, first_seq: int) -> None:
        old = self._segments[-1]
        zeros = self._allocated > old.size
        try:
            # Not when they are durable already (only this thread, the sync lock's
            # holder, moves ``_durable_seq``): the commit need not fsync it either.
            if zeros and self._durable_seq < old.last_seq:
                self._counted_fsync(self._fd, self._sync_records)
        except OSError as exc:
            self._fail(JournalError(f"{old.path}: fsync of the segment failed: {exc}"), exc)
        os.close(self._fd)
        self._fd = -1
        with self._lock:
            if zeros:
                self._uncut.append((old.path, old.size))
            elif self._durable_seq < old.last_seq:
                self._unsynced_paths.append(old.path)
        try:
            if not self._adopt_spare(first_seq):
                self._create_segment(first_seq)
        except OSError as exc:
            self._fail(
                JournalError(f"could not start segment {segment_name(first_seq)}: {exc}"), exc
            )
        if self._preallocates:
            self._want_tidy()  # for the next roll, and the old segment's cut

    def _top_up(self) -> None:
        """Write the next zeros ahead in the last segment and fsync them; snapshot thread.

        Why: records overwrite zeros written ahead (``_preallocate``), and
        the record that found them used up wrote the next ``_PREALLOCATE_BYTES``
        and paid for their fsync (a new size and 1 MiB of data: ~1.4 ms) in
        its commit, on the order path. Asked for by the commit that leaves
        fewer than ``_TOP_UP_BELOW`` bytes, this writes them long before a
        record needs them, through a file descriptor of its own and under
        the top-up lock (records are written below ``_allocated``, these zeros
        above it; the sync lock's holder takes the top-up lock before it
        writes zeros itself or replaces the segment). ``_allocated`` moves only
        once they are durable, so a record is never written past zeros whose
        size an fsync would still have to make durable.
        """
        with self._top_up_lock:
            with self._lock:
                self._top_up_asked = False
                if self._closed or self._failure is not None or not self._segments:
                    return
                segment, start = self._segments[-1], self._allocated
                if start - segment.size >= _TOP_UP_BELOW or start >= self._segment_bytes:
                    return
                end = min(start + _PREALLOCATE_BYTES, self._segment_bytes)
            try:
                fd = os.open(segment.path, os.O_WRONLY)
                try:
                    _write_all(fd, bytes(end - start), start)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                # The records' own commit writes zeros when it needs them, as it always could.
                logger.warning("could not write zeros ahead in %s", segment.path, exc_info=True)
                return
            with self._lock:
                if self._segments and self._segments[-1] is segment:
                    self._allocated = end

    def _cut_rolled(self) -> None:
        """Cut the zeros written ahead off the segments rolled since the last cut, and fsync
        that; off the order path (see ``_roll``). A segment compacted away meanwhile is
        skipped; a failure is logged and leaves the zeros, which the next open cuts."""
        with self._cut_lock:
            with self._lock:
                uncut, self._uncut = self._uncut, []
            for path, size in uncut:
                try:
                    fd = os.open(path, os.O_WRONLY)
                except FileNotFoundError:
                    continue
                except OSError:
                    logger.warning("could not cut the zeros off %s", path, exc_info=True)
                    continue
                try:
                    os.ftruncate(fd, size)
                    self._counted_fsync(fd)
                except OSError:
                    logger.warning("could not cut the zeros off %s", path, exc_info=True)
                finally:
                    os.close(fd)

    def _adopt_spare(self, first_seq: int) -> bool:
        """Start the segment at ``first_seq`` from the spare made ready ahead
        (``_prepare_spare``): a rename instead of a new file and its zeros; whether
        there was one. Sync lock held; the commit fsyncs the directory (``_dir_dirty``)."""
        with self._lock:
            size, self._spare = self._spare, None
        if size is None:
            return False
        path = self._directory / segment_name(first_seq)
        os.rename(self._directory / _SPARE_SEGMENT, path)
        self._fd = os.open(path, os.O_WRONLY)
        self._allocated = size
        with self._lock:
            self._segments.append(_Segment(path, first_seq, first_seq - 1, HEADER_SIZE))
            self._dir_dirty = True
        return True

    def _fail(self, failure: JournalError, cause: OSError) -> NoReturn:
        with self._lock:
            self._failure = failure
        raise failure from cause

    def _on_group_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._timer_immediate = False
            if self._closed:
                return  # close() flushes
        try:
            self._sync()
        except Exception:
            logger.exception("group commit failed; the journal refuses further appends")

    # -- durability --------------------------------------------------------------------------

    def flush(self) -> int:
        """Write and fsync everything appended so far, whatever the policy; return the durable seq.

        Also finishes cutting the zeros off rolled segments (``_cut_rolled``), so that
        on disk every segment but the last then ends with its last record.
        """
        with self._lock:
            self._raise_if_failed_locked()
            if self._read_only or self._closed:
                return self._durable_seq
        durable = self._sync()
        self._cut_rolled()
        return durable

    def add_durability_listener(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(durable_seq)`` after every fsync that makes more records durable.

        It runs on the thread that fsynced (an appender, the group-commit
        timer, or a ``flush`` caller), with no journal lock held but fsyncs
        held back, so it should only hand the number on. Values only grow.
        An exception from it is logged and ignored.
        """
        with self._lock:
            self._listeners.append(callback)

    def remove_durability_listener(self, callback: Callable[[int], None]) -> None:
        with self._lock:
            self._listeners.remove(callback)

    def _sync(self, *, wait: bool = True) -> int:
        """Write the queue, fsync, tell the listeners; return the durable seq.

        ``wait=False`` returns at once when another thread is committing.
        """
        if not self._sync_lock.acquire(blocking=wait):
            return self._durable_seq
        try:
            return self._sync_locked()
        finally:
            self._sync_lock.release()

    def _sync_locked(self) -> int:
        with self._lock:
            self._raise_if_failed_locked()
            if self._fd < 0:
                return self._durable_seq
            queue, self._queue = self._queue, []
            self._take_queued_since_locked()
            self._pending_count = 0
            if self._timer is not None:
                self._timer.cancel()
                self._timer, self._timer_immediate = None, False
            self._committing = True
        try:
            return self._commit(queue)
        finally:
            with self._lock:
                self._committing = False
                if self._timed and self._clock is not None:
                    self._arm_group_timer_locked(self._clock.monotonic())

    def _commit(self, queue: list[bytes | int]) -> int:
        self._write(queue)
        with self._lock:
            target = self._written_seq
            paths, self._unsynced_paths = self._unsynced_paths, []
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            if target <= self._durable_seq and not paths and not dir_dirty:
                return self._durable_seq
        try:
            for path in paths:
                self._fsync_path(path)
            self._counted_fsync(self._fd, self._sync_records)
            if dir_dirty:
                fsync_directory(self._directory, self._counted_fsync)
        except OSError as exc:
            self._fail(
                JournalError(
                    f"{self._directory}: fsync failed, records after {self._durable_seq} "
                    f"may be lost: {exc}"
                ),
                exc,
            )
        with self._lock:
            advanced = target > self._durable_seq
            if advanced:
                self._durable_seq = target
                self._observe_commit_locked()
            listeners = tuple(self._listeners)
        if advanced:
            for listener in listeners:
                try:
                    listener(target)
                except Exception:
                    logger.exception("durability listener %r failed", listener)
        return self._durable_seq

    def _take_queued_since_locked(self) -> None:
        """The queue was taken to be written: its oldest append time moves to the
        not-yet-durable records (an older one already waiting there stays)."""
        if self._unsynced_since is None:
            self._unsynced_since = self._queued_since
        self._queued_since = None

    def _observe_commit_locked(self) -> None:
        since, self._unsynced_since = self._unsynced_since, None
        if since is None:
            return
        latency = max(0.0, self._monotonic() - since)
        self._latency_count += 1
        self._latency_sum += latency
        # One bucket per commit, found by bisection: this runs on every order's way
        # out, after its fsync and before its message is released (a loop over all
        # the cumulative buckets cost ~1 us there); ``commit_latency`` sums them up.
        self._latency_hits[bisect.bisect_left(COMMIT_LATENCY_BOUNDS, latency)] += 1

    def commit_latency(self) -> CommitLatency:
        """The append-to-durable latency histogram of the commits since open."""
        with self._lock:
            return CommitLatency(
                bounds=COMMIT_LATENCY_BOUNDS,
                buckets=tuple(itertools.accumulate(self._latency_hits[:-1])),
                count=self._latency_count,
                sum=self._latency_sum,
            )

    def _counted_fsync(self, fd: int, sync: Callable[[int], None] | None = None) -> None:
        (sync or self._fsync_function)(fd)
        with self._count_lock:
            self._fsyncs += 1

    def _fsync_path(self, path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return  # compacted away meanwhile
        try:
            self._counted_fsync(fd)
        finally:
            os.close(fd)

    # -- reading -----------------------------------------------------------------------------

    def replay(self, after_seq: int = 0) -> Iterator[tuple[int, bytes]]:
        """Every record with a sequence number above ``after_seq``, in order, as ``(seq, payload)``.

        Covers what was appended when ``replay`` was called (records still
        queued for group commit are written first); checksums are
        checked again on the way. Raises ``JournalError`` at once when
        records after ``after_seq`` were compacted away (replay from the
        latest snapshot's seq instead), and ``CorruptJournalError`` if a file
        was damaged since it was opened.
        """
        self._write_queued()
        with self._lock:
            first_seq = self._first_seq_locked()
            last_seq = self._written_seq
            segments = [
                (s.path, s.first_seq, s.last_seq, s.size) for s in self._segments if not s.empty
            ]
        if after_seq < first_seq - 1 and after_seq < last_seq:
            raise JournalError(
                f"{self._directory}: records {after_seq + 1}..{first_seq - 1} are no longer in "
                f"the journal (compacted); replay after the latest snapshot (seq >= "
                f"{first_seq - 1})"
            )
        return self._replay(segments, after_seq)

    def _replay(
        self, segments: list[tuple[Path, int, int, int]], after_seq: int
    ) -> Iterator[tuple[int, bytes]]:
        for path, first_seq, last_seq, size in segments:
            if last_seq <= after_seq:
                continue
            try:
                with path.open("rb") as file:
                    data = file.read(size)
            except FileNotFoundError as exc:
                raise JournalError(f"{path}: segment disappeared during replay") from exc
            if len(data) < size:
                raise CorruptJournalError(
                    f"segment shrank to {len(data)} bytes while open",
                    segment=path,
                    offset=len(data),
                )
            reader = SegmentReader(
                path,
                data,
                first_seq=first_seq,
                format_version=self._format_version,
                is_last=False,
            )
            for seq, start, end in reader.records():
                if seq > after_seq:
                    yield seq, data[start:end]

    # -- snapshots ---------------------------------------------------------------------------

    def write_snapshot(self, seq: int, payload: bytes) -> Path:
        """Store ``payload`` as the state after record ``seq``, atomically; return its path.

        Records up to ``seq`` are made durable first, so a snapshot never
        gets ahead of the journal. Waits for a snapshot handed to
        ``write_snapshot_later`` first, so snapshots are written in order.
        """
        self._wait_for_snapshots()
        return self._write_snapshot(seq, payload)

    def _write_snapshot(self, seq: int, payload: bytes) -> Path:
        _check_payload(payload)
        with self._lock:
            self._check_writable_locked()
            first_seq, last_seq, durable_seq = (
                self._first_seq_locked(),
                self._last_seq,
                self._durable_seq,
            )
        if not first_seq - 1 <= seq <= last_seq:
            raise ValueError(
                f"snapshot seq {seq} is outside the journal's records ({first_seq - 1}..{last_seq})"
            )
        if seq > durable_seq:
            self.flush()
        path = self._directory / snapshot_name(seq)
        temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        write_file_atomically(
            path,
            (snapshot_header(seq, payload, self._format_version), payload),
            fsync=self._counted_fsync,
            temporary=temporary,
        )
        self._remember_intact(path)
        self._roll_after_snapshot(seq)
        return path

    def _roll_after_snapshot(self, seq: int) -> None:
        with self._lock:
            # Start the next record in a fresh segment, so that ``compact`` can
            # drop everything this snapshot covers and a restart reads only the tail.
            if self._last_seq == seq >= self._tail_first_seq:
                self._roll_requested = True

    def write_snapshot_later(
        self, seq: int, encode: Callable[[], bytes], *, compact: bool = False
    ) -> None:
        """Have the journal's snapshot thread store the state after record ``seq``; return at once.

        For a caller that must not stop for a snapshot (the OMS): only the
        checks run on its thread. On the snapshot thread ``encode()`` makes
        the payload, so it must read nothing its caller goes on changing (an
        immutable view of the state at ``seq``); then, as ``write_snapshot``
        does, the records up to ``seq`` are made durable and the file is
        written and fsynced, and with ``compact`` the journal compacts. A
        snapshot handed over while an older one has not started replaces
        it. ``write_snapshot``, ``latest_snapshot``, ``snapshots``,
        ``compact`` and ``close`` wait for what was handed over, so this
        object's readers never see the journal without it. A failure is
        logged (ERROR) and counted (``snapshot_failures``), and nothing else:
        a missing snapshot only makes the next replay longer.
        """
        with self._lock:
            self._check_writable_locked()
            first_seq, last_seq = self._first_seq_locked(), self._last_seq
        if not first_seq - 1 <= seq <= last_seq:
            raise ValueError(
                f"snapshot seq {seq} is outside the journal's records ({first_seq - 1}..{last_seq})"
            )
        self._roll_after_snapshot(seq)  # now, while nothing was appended after ``seq``
        with self._snapshot_changed:
            if self._snapshot_stop:
                raise JournalError(f"{self._directory}: journal is closed")
            self._snapshot_next = (seq, encode, compact)
            self._start_snapshot_thread_locked()
            self._snapshot_changed.notify_all()

    def _start_snapshot_thread_locked(self) -> None:
        """Start the snapshot thread unless it runs; ``_snapshot_changed`` held."""
        if self._snapshot_thread is None:
            self._snapshot_thread = threading.Thread(
                target=self._run_thread,
                args=(self._write_snapshots,),
                name=f"tradenode-snapshot-{self._directory.name}",
                daemon=True,
            )
            self._snapshot_thread.start()

    def _want_tidy(self) -> None:
        """Have the snapshot thread make the next segment ready (``_prepare_spare``),
        write zeros ahead in the last one (``_top_up``) and cut the zeros off rolled
        segments (``_cut_rolled``): the journal's file work that no record waits for.

        Called at open and by the roll that used the spare (or found none),
        with the sync lock possibly held: the condition's lock is taken last.
        """
        with self._snapshot_changed:
            if self._snapshot_stop:
                return
            self._tidy_wanted = True
            self._start_snapshot_thread_locked()
            self._snapshot_changed.notify_all()

    def _prepare_spare(self) -> None:
        """Write the next segment's file ahead of the roll that will need it; snapshot thread.

        Why: a roll (every snapshot starts a new segment) used to create the
        file, write its header and ``_PREALLOCATE_BYTES`` of zeros, and make
        all of that durable in the commit of the record that started it, on
        the order path: 2-8 ms with the fsync of a new file's size and data,
        the slowest orders of a run. Here the file (header, then zeros) is
        written and fsynced under a name no reader takes for a segment, with
        no journal lock held (it is no segment yet, nobody else writes it);
        the roll renames it to the segment's name, which the commit makes
        durable with the directory's fsync, as it did for a created file.
        Until that rename the file is nothing: a crash leaves it to be removed
        at the next open. A failure here only means the next roll creates
        its segment itself, as it always could.
        """
        with self._lock:
            if self._spare is not None:
                return  # ready, and a roll may be renaming it: never write it again
        path = self._directory / _SPARE_SEGMENT
        size = max(HEADER_SIZE, min(_PREALLOCATE_BYTES, self._segment_bytes))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, encode_header(self._format_version) + bytes(size - HEADER_SIZE), 0)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            logger.warning("could not make the next segment ready ahead", exc_info=True)
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return
        with self._lock:
            if not self._closed and self._failure is None:
                self._spare = size
                return
        path.unlink(missing_ok=True)  # closed meanwhile: nobody will use it

    @property
    def snapshot_failures(self) -> int:
        """Snapshots handed to ``write_snapshot_later`` that failed since open."""
        return self._snapshot_failures

    def _write_snapshots(self) -> None:
        """The snapshot thread: write what is handed over until the journal closes."""
        changed = self._snapshot_changed
        while True:
            with changed:
                while (
                    self._snapshot_next is None
                    and not self._tidy_wanted
                    and not self._snapshot_stop
                ):
                    changed.wait()
                spare, self._tidy_wanted = self._tidy_wanted, False
                self._snapshot_busy = spare
            if spare:
                try:
                    if not self._snapshot_stop:
                        self._top_up()
                        self._prepare_spare()
                        self._cut_rolled()
                finally:
                    with changed:
                        self._snapshot_busy = False
                        changed.notify_all()
            with changed:
                job, self._snapshot_next = self._snapshot_next, None
                if job is None:
                    if self._snapshot_stop:
                        return
                    continue
                self._snapshot_busy = True
            seq, encode, compact = job
            try:
                self._write_snapshot(seq, encode())
                if compact:
                    self._compact()
            except Exception:
                with changed:
                    self._snapshot_failures += 1
                logger.exception(
                    "%s: snapshot after record %d failed; replay starts from an older one",
                    self._directory,
                    seq,
                )
            finally:
                with changed:
                    self._snapshot_busy = False
                    changed.notify_all()

    def _wait_for_snapshots(self) -> None:
        if threading.current_thread() is self._snapshot_thread:
            return
        with self._snapshot_changed:
            self._snapshot_changed.wait_for(
                lambda: (
                    self._snapshot_next is None
                    and not self._snapshot_busy
                    and not self._tidy_wanted
                )
            )

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        """The newest intact snapshot as ``(seq, payload)``; damaged ones are skipped with a WARNING."""
        self._wait_for_snapshots()
        return self._read_latest_snapshot()

    def _read_snapshot(self, seq: int, path: Path) -> bytes:
        """The payload of snapshot file ``path``, read back and checked; ``SnapshotError``,
        ``JournalVersionError`` or ``OSError`` when it is unusable."""
        return decode_snapshot(
            path, path.read_bytes(), expected_seq=seq, format_version=self._format_version
        )

    def _read_latest_snapshot(self) -> tuple[int, bytes] | None:
        for seq, path in reversed(snapshot_paths(self._directory)):
            try:
                payload = self._read_snapshot(seq, path)
            except (SnapshotError, JournalVersionError, OSError) as exc:
                logger.warning("skipping snapshot %s: %s", path, exc)
                continue
            return seq, payload
        return None

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot file, oldest first, each read back and checked."""
        self._wait_for_snapshots()
        return self._snapshots()

    def _snapshots(self) -> list[SnapshotInfo]:
        found = []
        for seq, path in snapshot_paths(self._directory):
            problem = None
            try:
                self._read_snapshot(seq, path)
            except (SnapshotError, JournalVersionError, OSError) as exc:
                problem = str(exc)
            found.append(SnapshotInfo(seq, path, problem))
        return found

    def _intact_snapshots_newest_first(self) -> Iterator[tuple[int, Path]]:
        """The intact snapshot files as ``(seq, path)``, newest first (lazily).

        A file this object wrote, or read back whole, and whose ``os.stat``
        has not changed since (``_known_intact``) is not read again; any
        other is read back and checked, and skipped with a WARNING if
        damaged. For open and compaction, which need to know which snapshots
        are intact, not their payloads: compaction runs after every
        snapshot, and reading the two or three files of megabytes back each
        time (from the page cache: it checked nothing the write had not),
        with their checksums and copies, took the CPU and the GIL from the
        order path (``snapshots`` still reads every file).
        """
        known = self._known_intact
        found = snapshot_paths(self._directory)
        present = {path for _seq, path in found}
        # ``list`` copies the keys in one step: ``compact`` is public, and a caller on
        # another thread may be here while the snapshot thread compacts.
        for gone in [path for path in list(known) if path not in present]:
            known.pop(gone, None)
        for seq, path in reversed(found):
            identity = file_identity(path)  # before reading: a change after it shows next time
            if identity is None or known.get(path) != identity:
                try:
                    self._read_snapshot(seq, path)
                except (SnapshotError, JournalVersionError, OSError) as exc:
                    known.pop(path, None)
                    logger.warning("skipping snapshot %s: %s", path, exc)
                    continue
                if identity is not None:
                    known[path] = identity
            yield seq, path

    def _remember_intact(self, path: Path) -> None:
        """``path`` was just written and fsynced whole by this object: it is intact."""
        identity = file_identity(path)
        if identity is not None:
            self._known_intact[path] = identity

    def compact(self) -> CompactionResult:
        """Delete what the latest intact snapshot makes redundant.

        Removes every segment whose records are all at or below the
        snapshot's seq (never the segment being written, and only from the
        front, so no gap can open), and every snapshot older than the latest
        two intact ones. Replay after the snapshot's seq is unchanged.
        """
        self._wait_for_snapshots()
        return self._compact()

    def _compact(self) -> CompactionResult:
        intact = list(self._intact_snapshots_newest_first())
        with self._lock:
            self._check_writable_locked()
            if not intact:
                return CompactionResult(None, (), ())
            snapshot_seq = intact[0][0]
            removable = 0
            for segment in self._segments[:-1]:
                if segment.last_seq > snapshot_seq:
                    break
                removable += 1
            removed_segments = self._segments[:removable]
            del self._segments[:removable]
            gone = {segment.path for segment in removed_segments}
            self._unsynced_paths = [p for p in self._unsynced_paths if p not in gone]
        for segment in removed_segments:
            segment.path.unlink(missing_ok=True)
            logger.info("compaction removed %s (records up to %d)", segment.path, segment.last_seq)
        kept = {seq for seq, _path in intact[:_KEEP_SNAPSHOTS]}
        removed_snapshots = []
        for seq, path in snapshot_paths(self._directory):
            if seq < snapshot_seq and seq not in kept:
                path.unlink(missing_ok=True)
                removed_snapshots.append(path)
        if removed_segments or removed_snapshots:
            fsync_directory(self._directory, self._counted_fsync)
        return CompactionResult(
            snapshot_seq, tuple(s.path for s in removed_segments), tuple(removed_snapshots)
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def stats(self) -> JournalStats:
        self._write_queued()
        with self._lock:
            first_seq = self._first_seq_locked()
            return JournalStats(
                records=max(0, self._last_seq - first_seq + 1),
                bytes=sum(segment.size for segment in self._segments),
                segments=len(self._segments),
                fsyncs=self._fsyncs,
                appended=self._appended,
                first_seq=first_seq,
                last_seq=self._last_seq,
                durable_seq=self._durable_seq,
            )

    def close(self) -> None:
        """Finish the snapshots handed over, flush, stop the journal's threads and the
        group-commit timer, and release the files; idempotent."""
        with self._snapshot_changed:
            self._snapshot_stop = True
            self._snapshot_changed.notify_all()
            snapshots = self._snapshot_thread
        if snapshots is not None and snapshots is not threading.current_thread():
            snapshots.join()  # it writes what was handed over first
        with self._lock:
            if self._closed:
                return
            self._closed = True
            timer, self._timer = self._timer, None
            wake, self._leader_asleep = self._leader_asleep, False
        if timer is not None:
            timer.cancel()
        if wake:
            self._wake.release()
        leader = self._leader
        if leader is not None and leader is not threading.current_thread():
            leader.join()  # it finishes the commit in flight; the flush below does the rest
        try:
            if self._failure is None:
                self._sync()
                self._cut_rolled()
        finally:
            with self._sync_lock, self._lock:
                self._release_files()
            if self._owns_clock and isinstance(self._clock, SystemClock):
                self._clock.close()

    def _release_files(self) -> None:
        if self._fd >= 0:
            if self._failure is None and self._segments:
                # Not fsynced: after a power loss the zeros read as the end of the records.
                with contextlib.suppress(OSError):
                    self._cut_preallocated(self._segments[-1])
            os.close(self._fd)
            self._fd = -1
        if self._spare is not None:
            self._spare = None
            with contextlib.suppress(OSError):
                (self._directory / _SPARE_SEGMENT).unlink(missing_ok=True)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self._read_only else "open")
        return (
            f"Journal({str(self._directory)!r}, {state}, policy={self._policy}, "
            f"last_seq={self._last_seq}, durable_seq={self._durable_seq})"
        )


def verify_journal(directory: Path, *, format_version: int = 1) -> JournalReport:
    """Check every record and snapshot in ``directory`` without modifying anything.

    Raises ``CorruptJournalError`` (segment and byte offset) or
    ``JournalVersionError`` for a damaged or foreign segment; damaged
    snapshots and missing records are listed in ``problems``.
    """
    with Journal.open_read_only(directory, format_version=format_version) as journal:
        stats = journal.stats()
        snapshots = tuple(journal.snapshots())
        torn = journal.torn_tail
    problems = [
        f"snapshot {info.path.name} is damaged: {info.problem}"
        for info in snapshots
        if info.problem is not None
    ]
    intact = [info.seq for info in snapshots if info.problem is None]
    covered = max(intact) if intact else 0
    if stats.records and stats.first_seq > covered + 1:
        problems.append(
            f"records {covered + 1}..{stats.first_seq - 1} are missing: the oldest segment starts "
            f"at {stats.first_seq} and no intact snapshot covers what came before"
        )
    return JournalReport(
        directory=Path(directory),
        segments=stats.segments,
        records=stats.records,
        bytes=stats.bytes,
        first_seq=stats.first_seq,
        last_seq=stats.last_seq,
        torn_tail=torn,
        snapshots=snapshots,
        problems=tuple(problems),
    )


def sync_data(fd: int) -> None:
    """Make a file's data durable, and the metadata reading it back needs: ``fdatasync``.

    What a commit calls for its records (see the module's docstring): the
    modification time, which ``fsync`` would also make durable at the cost
    of a file-system journal commit, is not needed to read a record back.
    ``os.fsync`` where the platform has no ``fdatasync`` (macOS). Looked up
    at each call, not bound once, so a test can watch which one runs.
    """
    datasync = getattr(os, "fdatasync", None)
    (os.fsync if datasync is None else datasync)(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    written = 0
    while written < len(view):
        written += os.pwrite(fd, view[written:], offset + written)


def _check_payload(payload: object) -> None:
    if type(payload) is bytes and len(payload) <= MAX_PAYLOAD:
        return  # the common case, once per record: no more checks than needed
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"a journal payload is bytes, not {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a journal payload is at most {MAX_PAYLOAD} bytes, not {len(payload)}")
