"""What ``tradenode journal show / export / verify`` do, apart from parsing the command line.

Everything here opens the journal read-only: inspecting a node's journal,
even while the node runs, never changes a byte of it (a torn tail is
reported, not truncated).

The two places that know what the storage's opaque payloads mean are
:func:`decode_payload` (one record) and ``state_from_snapshot`` (one
snapshot, in ``_oms_replay``); everything else works on their results, and
``verify`` rebuilds the state with ``recover`` as a node does.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._exceptions import DecodeError, OmsSnapshotError
from ..journal import Journal, JournalReport, verify_journal
from ._oms_entries import ENTRY_FIELDS, JournalEntry, decode_entry, entry_to_dict
from ._oms_replay import recover, state_from_snapshot, summarize

__all__ = [
    "CSV_COLUMNS",
    "Verification",
    "decode_payload",
    "export",
    "export_csv",
    "export_jsonl",
    "iter_records",
    "render_all",
    "render_line",
    "state_from_snapshot",
    "verify",
]


def decode_payload(payload: bytes) -> JournalEntry:
    """The one place that turns a record's payload into a journal entry (``DecodeError`` if not)."""
    return decode_entry(payload)


def iter_records(journal: Journal, from_seq: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Records from ``from_seq`` on (from the oldest still kept when None or compacted)."""
    oldest = journal.first_seq
    start = oldest if from_seq is None else max(from_seq, oldest)
    return journal.replay(after_seq=start - 1)


def _timestamp(ts_ns: int) -> str:
    seconds, nanos = divmod(ts_ns, 10**9)
    try:
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"ts_ns={ts_ns}"
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos // 1000:06d}Z"


def _flatten(value: object) -> str:
    if isinstance(value, dict):
        parts = [str(value.get("type", ""))] if "type" in value else []
        parts.extend(
            f"{key}={_flatten(item)}"
            for key, item in value.items()
            if key not in {"type", "ts_ns"} and item is not None
        )
        return " ".join(parts)
    if isinstance(value, list):
        return "[" + ", ".join(_flatten(item) for item in value) + "]"
    return str(value)


def render_line(seq: int, payload: bytes) -> str:
    """One human line for a record: seq, time, kind and what it says."""
    try:
        entry = decode_payload(payload)
    except DecodeError as exc:
        return f"{seq:>10}  {'?':<27}  {'UNDECODABLE':<16}  {exc} ({len(payload)} bytes)"
    plain = entry_to_dict(entry)
    details = []
    for name in ENTRY_FIELDS[entry.kind]:
        value = plain[name]
        details.append(_flatten(value) if name == "message" else f"{name}={_flatten(value)}")
    return f"{seq:>10}  {_timestamp(entry.ts_ns):<27}  {entry.kind.value:<16}  {' '.join(details)}"


def _row(seq: int, payload: bytes) -> dict[str, Any]:
    try:
        return {"seq": seq, **entry_to_dict(decode_payload(payload))}
    except DecodeError as exc:
        return {"seq": seq, "error": str(exc), "payload_hex": payload.hex()}


def export_jsonl(journal: Journal, out: IO[str]) -> int:
    """One JSON object per record (``seq`` plus the entry's fields); returns the count."""
    count = 0
    for seq, payload in iter_records(journal):
        out.write(json.dumps(_row(seq, payload), separators=(",", ":"), default=str) + "\n")
        count += 1
    return count


_SCALAR_FIELDS = tuple(
    dict.fromkeys(name for names in ENTRY_FIELDS.values() for name in names if name != "message")
)
CSV_COLUMNS = ("seq", "ts_ns", "kind", *_SCALAR_FIELDS, "message_type", "message", "error")


def export_csv(journal: Journal, out: IO[str]) -> int:
    """One CSV row per record; a message is its type plus its fields as JSON. Returns the count."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for seq, payload in iter_records(journal):
        row = _row(seq, payload)
        message = row.pop("message", None)
        if isinstance(message, dict):
            row["message_type"] = message.get("type")
            row["message"] = json.dumps(message, separators=(",", ":"), default=str)
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
        count += 1
    return count


def export(journal: Journal, out: IO[str], output_format: str) -> int:
    """``export_jsonl`` or ``export_csv`` by name (``jsonl`` / ``csv``)."""
    if output_format == "csv":
        return export_csv(journal, out)
    if output_format == "jsonl":
        return export_jsonl(journal, out)
    raise ValueError(f"unknown export format {output_format!r}")


@dataclass
class Verification:
    """``journal verify``'s findings: the storage report plus what replaying the entries gave."""

    report: JournalReport
    entries: int = 0
    replayed_from_snapshot: int | None = None
    summary: dict[str, Any] | None = None
    counters: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "directory": str(report.directory),
            "sound": self.sound,
            "segments": report.segments,
            "records": report.records,
            "bytes": report.bytes,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "torn_tail": None if report.torn_tail is None else report.torn_tail.describe(),
            "snapshots": [
                {"seq": info.seq, "file": info.path.name, "problem": info.problem}
                for info in report.snapshots
            ],
            "replayed_from_snapshot": self.replayed_from_snapshot,
            "entries_replayed": self.entries,
            "counters": self.counters,
            "state": self.summary,
            "problems": self.problems,
        }

    def render(self) -> str:
        report = self.report
        lines = [
            f"journal {report.directory}: {'sound' if self.sound else 'NOT SOUND'}",
            f"  segments: {report.segments}, records: {report.records}"
            + (f" (seq {report.first_seq}..{report.last_seq})" if report.records else "")
            + f", {report.bytes} bytes, last seq {report.last_seq}",
        ]
        damaged = sum(1 for info in report.snapshots if info.problem is not None)
        latest = report.latest_snapshot_seq
        lines.append(
            f"  snapshots: {len(report.snapshots)}"
            + (f" (latest intact at seq {latest})" if latest is not None else "")
            + (f", {damaged} damaged" if damaged else "")
        )
        if report.torn_tail is not None:
            lines.append(
                f"  note: {report.torn_tail.describe()}: an unfinished write, truncated "
                "by the next writable open"
            )
        if self.summary is not None:
            origin = (
                "from the start"
                if self.replayed_from_snapshot is None
                else f"from snapshot {self.replayed_from_snapshot}"
            )
            summary = self.summary
            lines.append(f"  state ({origin} + {self.entries} entries):")
            lines.append(
                f"    orders={summary['orders']} open={summary['open_orders']} "
                f"fills={summary['fills']} by status: "
                + (", ".join(f"{k}={v}" for k, v in summary["orders_by_status"].items()) or "none")
            )
            for position in summary["positions"]:
                lines.append(
                    f"    position {position['venue']}:{position['symbol']} "
                    f"qty={position['quantity']} avg={position['avg_price']} "
                    f"rpnl={position['realized_pnl']}"
                )
            for strategy_id, counter in sorted(self.counters.items()):
                lines.append(f"    next client order id counter {strategy_id}: {counter}")
        lines.extend(f"  PROBLEM: {problem}" for problem in self.problems)
        return "\n".join(lines)


def verify(directory: Path, *, format_version: int = 1) -> Verification:
    """Check every checksum and snapshot, then replay the entries into an OMS state.

    Raises ``CorruptJournalError`` / ``JournalVersionError`` for damaged or
    foreign segments; everything else wrong is in ``problems``.
    """
    result = Verification(verify_journal(directory, format_version=format_version))
    result.problems.extend(result.report.problems)

    def undecodable(seq: int, exc: DecodeError) -> None:
        result.problems.append(f"record {seq} cannot be decoded: {exc}")

    with Journal.open_read_only(directory, format_version=format_version) as journal:
        # Every record from the first while the journal has them all; once
        # compacted, the state starts at a snapshot. Every completed order of
        # the snapshot is decoded: a damaged one would otherwise only fail when
        # first touched.
        compacted = journal.first_seq > 1
        if compacted and result.report.latest_snapshot_seq is None:
            return result  # verify_journal already reported the missing records
        try:
            replayed = recover(
                journal, lazy=False, from_snapshot=compacted, on_undecodable=undecodable
            )
        except OmsSnapshotError as exc:
            result.problems.append(str(exc))
            return result
    if compacted:
        result.replayed_from_snapshot = replayed.snapshot_seq
    if result.problems:
        return result
    result.entries = replayed.entries
    result.counters = dict(replayed.counters)
    result.summary = summarize(replayed.state)
    return result


def render_all(journal: Journal, from_seq: int | None, limit: int | None) -> Iterator[str]:
    """``journal show``'s lines."""
    for count, (seq, payload) in enumerate(iter_records(journal, from_seq)):
        if limit is not None and count >= limit:
            return
        yield render_line(seq, payload)
