"""The journal: nothing a node decided is lost across a crash or restart.

Storage (``Journal``) is an append-only, segmented log of opaque,
checksummed records with snapshots and compaction; it knows nothing of
what the records say, and imports nothing from the trading core.

What the order manager writes into it (``JournalEntry``, ``EntryKind``),
and getting its state back (``replay``, ``recover``), belong to the OMS:
``tradenode.actors._oms_entries`` and ``_oms_replay``. Those names are
still served from here, loaded on first use, for the code that imports
them from this package (``_MOVED``).
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # what __getattr__ serves, for the type checker
    from ..actors._oms_entries import (
        EntryKind,
        JournalEntry,
        decode_entry,
        encode_entry,
        entry_to_dict,
    )
    from ..actors._oms_replay import ReplayResult, apply_entry, replay, summarize

#: Names this package exported before the OMS took its entries and replay back.
_MOVED = {
    "EntryKind": "_oms_entries",
    "JournalEntry": "_oms_entries",
    "decode_entry": "_oms_entries",
    "encode_entry": "_oms_entries",
    "entry_to_dict": "_oms_entries",
    "ReplayResult": "_oms_replay",
    "apply_entry": "_oms_replay",
    "replay": "_oms_replay",
    "summarize": "_oms_replay",
}


def __getattr__(name: str) -> Any:
    """A name of :data:`_MOVED`, from the OMS module that defines it now."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # The one import of the OMS here, on first use of a moved name (tests/test_import_graph.py).
    from ..actors import _oms_entries, _oms_replay  # noqa: PLC0415

    return getattr(_oms_entries if module == "_oms_entries" else _oms_replay, name)


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
