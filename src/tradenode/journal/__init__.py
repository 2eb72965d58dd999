"""The journal: nothing a node decided is lost across a crash or restart.

Storage (``Journal``) is an append-only, segmented log of opaque,
checksummed records with snapshots and compaction. Entries
(``JournalEntry``) say what the order manager did, one per ``OmsState``
call; ``replay`` makes those calls again to rebuild the state.
"""

from .._exceptions import CorruptJournalError, JournalError, JournalVersionError
from ._entries import EntryKind, JournalEntry, decode_entry, encode_entry, entry_to_dict
from ._policy import FsyncMode, FsyncPolicy
from ._replay import ReplayResult, apply_entry, replay, summarize
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
    "EntryKind",
    "FsyncMode",
    "FsyncPolicy",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalReport",
    "JournalStats",
    "JournalVersionError",
    "ReplayResult",
    "SnapshotInfo",
    "TornTail",
    "apply_entry",
    "decode_entry",
    "encode_entry",
    "entry_to_dict",
    "replay",
    "summarize",
    "verify_journal",
]
