"""Snapshot files: the state after record ``seq``, so replay can start there.

A snapshot is ``snapshot-<seq, 20 digits>.tns``::

    b"TNS1"  u32 format version  u64 seq  u32 payload length  u32 CRC32(seq + payload)  payload

written under a temporary name (``*.tmp``), fsynced, renamed into place and
the directory fsynced, so a snapshot file either exists complete or not at
all. A temporary file left by a crash is never read (and removed on the
next writable open).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import JournalVersionError, SnapshotError
from ._segments import numbered_files

__all__ = [
    "SNAPSHOT_MAGIC",
    "SnapshotError",
    "SnapshotInfo",
    "decode_snapshot",
    "file_identity",
    "fsync_directory",
    "snapshot_header",
    "snapshot_name",
    "snapshot_paths",
    "temporary_snapshot_paths",
    "write_file_atomically",
]

SNAPSHOT_MAGIC = b"TNS1"
_HEADER = struct.Struct("<4sIQII")
_SEQ = struct.Struct("<Q")
_NAME = re.compile(r"^snapshot-(\d{1,20})\.tns$")
_TEMPORARY = re.compile(r"^snapshot-\d{1,20}\.tns\..*\.tmp$")


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot file as found on disk; ``problem`` is None when it reads back intact."""

    seq: int
    path: Path
    problem: str | None


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.tns"


def snapshot_paths(directory: Path) -> list[tuple[int, Path]]:
    """Every snapshot file as ``(seq, path)``, oldest first."""
    return numbered_files(directory, _NAME)


def temporary_snapshot_paths(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if _TEMPORARY.match(path.name))


def snapshot_header(seq: int, payload: bytes, format_version: int) -> bytes:
    """The header a snapshot file of ``payload`` starts with (the payload follows it)."""
    crc = zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq)))
    return _HEADER.pack(SNAPSHOT_MAGIC, format_version, seq, len(payload), crc)


def decode_snapshot(path: Path, data: bytes, *, expected_seq: int, format_version: int) -> bytes:
    """The payload of a snapshot file; ``SnapshotError`` or ``JournalVersionError`` if unusable."""
    if len(data) < _HEADER.size:
        raise SnapshotError(f"header is truncated ({len(data)} of {_HEADER.size} bytes)")
    magic, version, seq, length, crc = _HEADER.unpack_from(data, 0)
    if magic != SNAPSHOT_MAGIC:
        raise JournalVersionError(
            f"not a tradenode snapshot (magic {magic!r}, expected {SNAPSHOT_MAGIC!r})", path=path
        )
    if version != format_version:
        raise JournalVersionError(
            f"snapshot format version {version}, but the journal is opened as version "
            f"{format_version}",
            path=path,
        )
    if seq != expected_seq:
        raise SnapshotError(f"holds seq {seq} but its name says {expected_seq}")
    if len(data) != _HEADER.size + length:
        raise SnapshotError(f"is {len(data)} bytes, its header says {_HEADER.size + length}")
    if zlib.crc32(memoryview(data)[_HEADER.size :], zlib.crc32(data[8:16])) != crc:
        raise SnapshotError("checksum mismatch")
    return data[_HEADER.size :]


def write_file_atomically(
    path: Path, parts: Sequence[bytes], *, fsync: Callable[[int], None], temporary: Path
) -> None:
    """Write ``parts`` one after another to ``temporary``, fsync it, rename it to ``path``
    and fsync the directory.

    In parts, so that a snapshot's header and payload need not be joined
    first: that copy of megabytes held the GIL, and faulted in fresh pages,
    while the order path waited for it.
    """
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for part in parts:
            view = memoryview(part)
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
        fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent, fsync)


def file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What ``os.stat`` says of ``path`` that any change to the file changes (its
    inode, size, modification and change times), or None when it can not be stat'ed."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def fsync_directory(directory: Path, fsync: Callable[[int], None]) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        os.close(fd)
