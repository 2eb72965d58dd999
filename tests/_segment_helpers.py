"""Reading a journal's segment files byte by byte, for the tests of what sits after the
records (zeros written ahead, spare segments): the file layout is ``_segments``'s
(an 8-byte header, then records framed as length, CRC32, seq, payload)."""

from __future__ import annotations

import struct
from pathlib import Path

HEADER = 8
FRAME = struct.Struct("<IIQ")


def payload(i: int, size: int = 200) -> bytes:
    return f"record-{i:06d}-".encode().ljust(size, b".")


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.tnj"))


def records_end(path: Path) -> tuple[int, list[int]]:
    """The offset after the last record of a segment file, and the records' seqs; zeros
    after the records (written ahead) end the walk."""
    data = path.read_bytes()
    offset, seqs = HEADER, []
    while offset + FRAME.size <= len(data):
        length, _crc, seq = FRAME.unpack_from(data, offset)
        if seq == 0:
            break
        seqs.append(seq)
        offset += FRAME.size + length
    return offset, seqs
