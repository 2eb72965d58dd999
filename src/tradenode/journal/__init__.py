"""The journal: nothing a node decided is lost across a crash or restart.

Storage (``Journal``) is an append-only, segmented log of opaque,
checksummed records with snapshots and compaction; it knows nothing of
what the records say, and imports nothing from the trading core.

What the order manager writes into it (``JournalEntry``, ``EntryKind``),
and getting its state back (``replay``, ``recover``), belong to the OMS:
they are exported by :mod:`tradenode.actors`.
"""

from .._exceptions import CorruptJournalError, JournalError, JournalVersionError
from ._policy import FsyncMode, FsyncPolicy
from ._segments import TornTail
from ._snapshots import SnapshotInfo
from ._storage import (
    DEFAULT_SEGMENT_BYTES,
    CompactionResult,
    Journal,
    JournalReport,
    JournalStats,
    verify_journal,
)

__all__ = [
    "DEFAULT_SEGMENT_BYTES",
    "CompactionResult",
    "CorruptJournalError",
    "FsyncMode",
    "FsyncPolicy",
    "Journal",
    "JournalError",
    "JournalReport",
    "JournalStats",
    "JournalVersionError",
    "SnapshotInfo",
    "TornTail",
    "verify_journal",
]
