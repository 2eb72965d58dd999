"""The segment file format, and reading it back with every checksum checked.

A segment is ``segment-<first seq, 20 digits>.tnj``::

    header   b"TNJ1"  u32 format version                       (8 bytes)
    record   u32 payload length  u32 CRC32(seq + payload)  u64 seq  payload
    record   ...

All integers are little-endian. The CRC covers the sequence number and the
payload, which sit next to each other, so a record is checked with one
``zlib.crc32`` over ``frame[8:]``. Sequence numbers start at 1 and rise by
exactly 1 from record to record and from segment to segment; the first
record of a segment carries the number in its file name.

Reading tells a **torn tail** (the unfinished last write of a process or
machine that died: harmless, truncated on open) from **corruption** (a
damaged record that was once complete: never repaired silently). A bad
record is a torn tail only when it is in the last segment and nothing
valid follows it: its frame runs past the end of the file, or it ends
exactly at the end of the file, or only zero bytes follow it; and the
record after it (seq + 1) cannot be found intact further on, which would
mean a flipped length field rather than a torn write.

Zeros after the last record of a segment, from a record boundary to the
end of the file, are neither: they are space the journal wrote ahead of
its records (see ``Journal``), which every record boundary of a live or
crashed journal's last segment may show, and a segment rolled before they
were cut off (``Journal._roll``) too. The next segment starting at the
record after its last one (checked on open) says that nothing is missing. A record header of zeros is never a record
(payloads are not empty and sequence numbers start at 1), so reading ends
there cleanly, with ``zero_tail`` saying how many bytes follow.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._exceptions import CorruptJournalError, JournalVersionError

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAYLOAD",
    "RECORD_HEADER",
    "SegmentReader",
    "TornTail",
    "encode_header",
    "encode_record",
    "segment_name",
    "segment_paths",
]

MAGIC = b"TNJ1"
_HEADER = struct.Struct("<4sI")
HEADER_SIZE = _HEADER.size
RECORD_HEADER = struct.Struct("<IIQ")
_SEQ = struct.Struct("<Q")
MAX_PAYLOAD = 0xFFFF_FFFF
_NAME = re.compile(r"^segment-(\d{1,20})\.tnj$")


def segment_name(first_seq: int) -> str:
    return f"segment-{first_seq:020d}.tnj"


def segment_paths(directory: Path) -> list[tuple[int, Path]]:
    """Every segment file in ``directory`` as ``(first seq, path)``, in sequence order."""
    return numbered_files(directory, _NAME)


def numbered_files(directory: Path, name: re.Pattern[str]) -> list[tuple[int, Path]]:
    """The files whose name ``name`` matches, by the number its one group captures."""
    found = []
    for path in directory.iterdir():
        match = name.match(path.name)
        if match is not None and path.is_file():
            found.append((int(match.group(1)), path))
    found.sort()
    return found


def encode_header(format_version: int) -> bytes:
    return _HEADER.pack(MAGIC, format_version)


def encode_record(seq: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq)))
    return RECORD_HEADER.pack(len(payload), crc, seq) + payload


@dataclass(frozen=True, slots=True)
class TornTail:
    """An unfinished write at the end of the last segment."""

    segment: Path
    offset: int
    size: int
    reason: str

    def describe(self) -> str:
        return (
            f"{self.segment.name}: torn tail of {self.size - self.offset} byte(s) at byte offset "
            f"{self.offset} ({self.reason})"
        )


class SegmentReader:
    """Walks one segment's bytes, checking the header, every CRC and the sequence.

    Iterate ``records()`` for ``(seq, payload start, payload end)``; once it is
    exhausted, ``end`` is the offset after the last good record, ``count``
    the number of good records and ``torn`` the torn tail, if any.
    ``is_last`` allows a torn tail; anywhere else a bad record raises
    ``CorruptJournalError``.
    """

    def __init__(
        self,
        path: Path,
        data: bytes,
        *,
        first_seq: int,
        format_version: int,
        is_last: bool,
    ) -> None:
        self.path = path
        self.data = data
        self.first_seq = first_seq
        self.format_version = format_version
        self.is_last = is_last
        self.end = 0
        self.count = 0
        self.last_seq = first_seq - 1
        self.torn: TornTail | None = None
        self.zero_tail = 0
        """Bytes of zeros written ahead after the last record."""

    def records(self) -> Iterator[tuple[int, int, int]]:
        data, size = self.data, len(self.data)
        if size < HEADER_SIZE:
            self._bad(0, f"segment header is truncated ({size} of {HEADER_SIZE} bytes)")
            return
        magic, version = _HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise JournalVersionError(
                f"not a tradenode journal segment (magic {magic!r}, expected {MAGIC!r})",
                path=self.path,
            )
        if version != self.format_version:
            raise JournalVersionError(
                f"journal format version {version}, but this journal is opened as "
                f"version {self.format_version}",
                path=self.path,
            )
        view = memoryview(data)
        crc32, unpack_from, record_size = zlib.crc32, RECORD_HEADER.unpack_from, RECORD_HEADER.size
        offset, expected = HEADER_SIZE, self.first_seq
        try:
            while offset < size:
                if size - offset < record_size:
                    if self._zeros_from(offset):
                        break
                    self._bad(offset, "record header is cut short")
                    break
                length, crc, seq = unpack_from(data, offset)
                if seq == 0 and self._zeros_from(offset):
                    break
                end = offset + record_size + length
                if end > size:
                    self._bad(offset, f"payload of {length} bytes runs past the end of the file")
                    break
                if crc32(view[offset + 8 : end]) != crc:
                    self._bad(offset, f"checksum mismatch in record {expected}", frame_end=end)
                    break
                if seq != expected:
                    raise CorruptJournalError(
                        f"sequence gap: record {seq} where {expected} was expected",
                        segment=self.path,
                        offset=offset,
                    )
                self.end, self.count, self.last_seq = end, self.count + 1, seq
                yield seq, offset + record_size, end
                offset, expected = end, expected + 1
        finally:
            view.release()
        if self.torn is None:
            self.end = max(self.end, HEADER_SIZE)

    def _zeros_from(self, offset: int) -> bool:
        """Whether the segment holds only zeros from ``offset`` on: space written
        ahead of the records, not a record (``zero_tail`` then counts it)."""
        size = len(self.data)
        if self.data.count(0, offset) != size - offset:
            return False
        self.zero_tail = size - offset
        return True

    def scan(self) -> SegmentReader:
        """Check the whole segment without keeping the payloads."""
        for _ in self.records():
            pass
        return self

    def _bad(self, offset: int, reason: str, *, frame_end: int | None = None) -> None:
        size = len(self.data)
        if self.is_last and offset == 0:
            torn = True  # the crash came while the segment was being created
        elif not self.is_last:
            torn = False
        elif frame_end is not None and frame_end < size:
            # A complete frame with a bad checksum and more bytes after it: only
            # zeros (space the file system allocated but never wrote) may follow.
            torn = self.data.count(0, frame_end) == size - frame_end
        else:
            torn = True
        if torn and offset > 0 and self._intact_record_after(offset, self.count + self.first_seq):
            torn = False
        if not torn:
            raise CorruptJournalError(reason, segment=self.path, offset=offset)
        self.end = offset
        self.torn = TornTail(self.path, offset, size, reason)

    def _intact_record_after(self, offset: int, bad_seq: int) -> bool:
        """Whether record ``bad_seq + 1`` sits intact somewhere after ``offset``."""
        data, needle = self.data, _SEQ.pack(bad_seq + 1)
        position = data.find(needle, offset + RECORD_HEADER.size)
        while position != -1:
            start = position - 8
            length, crc, _seq = RECORD_HEADER.unpack_from(data, start)
            end = start + RECORD_HEADER.size + length
            if end <= len(data) and zlib.crc32(data[position:end]) == crc:
                return True
            position = data.find(needle, position + 1)
        return False
