"""``tradenode journal show / export / verify`` on real journals, through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import msgpack
import pytest
from click.testing import CliRunner, Result

# The command line's entry point: the CLI is what is under test, called in-process.
from tradenode._cli import main
from tradenode.actors import EntryKind, JournalEntry, OmsState, encode_entry, replay, summarize
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import (
    OrderAccepted,
    OrderFilled,
    OrderType,
    Side,
    SubmitOrder,
)

TS = 1_700_000_000_123_456_789
D = Decimal


def order_entries(number: int) -> list[JournalEntry]:
    """The OMS calls of one limit order that is accepted and filled."""
    coid = f"s1-{number:x}"
    ts = TS + number * 1_000_000
    return [
        JournalEntry(
            kind=EntryKind.REGISTER,
            ts_ns=ts,
            message=SubmitOrder(
                client_order_id=coid,
                strategy_id="s1",
                venue="PAPER",
                symbol="BTCUSDT",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                quantity=D("0.5"),
                price=D("100.25"),
            ),
        ),
        JournalEntry(kind=EntryKind.COUNTER, ts_ns=ts, strategy_id="s1", counter=number + 1),
        JournalEntry(kind=EntryKind.SUBMITTED, ts_ns=ts + 1, client_order_id=coid),
        JournalEntry(
            kind=EntryKind.REPORT,
            ts_ns=ts + 2,
            message=OrderAccepted(client_order_id=coid, venue="PAPER", venue_order_id=f"v{number}"),
        ),
        JournalEntry(
            kind=EntryKind.REPORT,
            ts_ns=ts + 3,
            message=OrderFilled(
                client_order_id=coid,
                venue="PAPER",
                venue_order_id=f"v{number}",
                execution_id=f"x{number}",
                symbol="BTCUSDT",
                side=Side.BUY,
                last_quantity=D("0.5"),
                last_price=D("100.25"),
            ),
        ),
    ]


def all_entries(orders: int) -> list[JournalEntry]:
    entries = [entry for n in range(orders) for entry in order_entries(n)]
    entries.append(
        JournalEntry(kind=EntryKind.MARK, ts_ns=TS, venue="PAPER", symbol="BTCUSDT", price=D("101"))
    )
    return entries


def write_journal(directory: Path, entries: list[JournalEntry], segment_bytes: int = 2048) -> None:
    with Journal.open(directory, fsync=FsyncPolicy.NONE, segment_bytes=segment_bytes) as journal:
        journal.append_many(encode_entry(entry) for entry in entries)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["journal", *args], catch_exceptions=False)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("segment-*.tnj"))


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "journal"
    write_journal(directory, all_entries(10))
    return directory


# -- show -------------------------------------------------------------------------------------


def test_show_prints_one_line_per_record(journal_dir: Path) -> None:
    result = invoke("show", str(journal_dir))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 51
    first = lines[0].split()
    assert first[:3] == ["1", "2023-11-14T22:13:20.123456Z", "register"]
    assert "submit_order client_order_id=s1-0" in lines[0]
    assert "price=100.25" in lines[0]
    assert lines[4].split()[2] == "report" and "execution_id=x0" in lines[4]
    assert lines[-1].split()[2:] == ["mark", "venue=PAPER", "symbol=BTCUSDT", "price=101"]


def test_show_from_and_limit(journal_dir: Path) -> None:
    result = invoke("show", str(journal_dir), "--from", "7", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["7", "8", "9"]
    assert invoke("show", str(journal_dir), "--from", "999").stdout == ""
    assert invoke("show", str(journal_dir), "--limit", "0").stdout == ""


def test_show_marks_an_undecodable_record(tmp_path: Path) -> None:
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE) as journal:
        journal.append(encode_entry(order_entries(0)[0]))
        journal.append(b"\xc1 not msgpack")
    result = invoke("show", str(tmp_path))
    assert result.exit_code == 0
    assert "UNDECODABLE" in result.stdout.splitlines()[1]


# -- export -----------------------------------------------------------------------------------


def test_export_jsonl_to_stdout(journal_dir: Path) -> None:
    result = invoke("export", str(journal_dir), "--format", "jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["seq"] for row in rows] == list(range(1, 52))
    assert rows[0]["kind"] == "register" and rows[0]["ts_ns"] == TS
    assert rows[0]["message"]["type"] and rows[0]["message"]["price"] == "100.25"
    assert rows[1] == {
        "seq": 2,
        "kind": "counter",
        "ts_ns": TS,
        "strategy_id": "s1",
        "counter": 1,
    }


def test_export_csv_to_a_file(journal_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    result = invoke("export", str(journal_dir), "--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "exported 51 records" in result.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 51
    assert rows[2]["kind"] == "submitted" and rows[2]["client_order_id"] == "s1-0"
    assert rows[0]["message_type"] and json.loads(rows[0]["message"])["quantity"] == "0.5"
    assert rows[-1]["price"] == "101" and rows[-1]["message"] == ""


def test_export_reports_an_undecodable_record(tmp_path: Path) -> None:
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE) as journal:
        journal.append(b"\x93\x09")
    result = invoke("export", str(tmp_path), "--format", "jsonl")
    row = json.loads(result.stdout)
    assert row["seq"] == 1 and "error" in row and row["payload_hex"] == "9309"


# -- verify -----------------------------------------------------------------------------------


def test_verify_a_sound_journal(journal_dir: Path) -> None:
    before = {path.name: path.read_bytes() for path in journal_dir.iterdir()}
    result = invoke("verify", str(journal_dir))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "sound" in out.splitlines()[0]
    segments = len(segment_files(journal_dir))
    assert segments > 1
    assert f"segments: {segments}, records: 51 (seq 1..51)" in out
    assert "last seq 51" in out
    assert "orders=10 open=0 fills=10" in out
    assert "position PAPER:BTCUSDT qty=5.0" in out
    assert "next client order id counter s1: 10" in out
    assert {path.name: path.read_bytes() for path in journal_dir.iterdir()} == before


def test_verify_json(journal_dir: Path) -> None:
    result = invoke("verify", str(journal_dir), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["sound"], report["records"], report["last_seq"]) == (True, 51, 51)
    assert report["state"] == summarize(replay(all_entries(10)).state)
    assert report["problems"] == []


def test_verify_reports_corruption_with_segment_and_offset(journal_dir: Path) -> None:
    target = segment_files(journal_dir)[0]
    data = bytearray(target.read_bytes())
    length = int.from_bytes(data[8:12], "little")
    second = 8 + 16 + length
    data[second + 20] ^= 0xFF
    target.write_bytes(bytes(data))
    result = invoke("verify", str(journal_dir))
    assert result.exit_code == 1
    assert "CORRUPT" in result.stdout
    assert target.name in result.stdout and f"byte offset {second}" in result.stdout
    as_json = json.loads(invoke("verify", str(journal_dir), "--json").stdout)
    assert (as_json["sound"], as_json["segment"], as_json["offset"]) == (False, str(target), second)
    shown = invoke("show", str(journal_dir))
    assert shown.exit_code == 1 and target.name in shown.stderr


def test_verify_a_torn_tail_is_sound_and_left_alone(journal_dir: Path) -> None:
    last = segment_files(journal_dir)[-1]
    with last.open("ab") as file:
        file.write(b"\x40\x00\x00\x00\x01\x02")
    torn = last.read_bytes()
    result = invoke("verify", str(journal_dir))
    assert result.exit_code == 0, result.output
    assert "torn tail of 6 byte(s)" in result.stdout
    assert last.read_bytes() == torn


def test_verify_a_damaged_snapshot(journal_dir: Path) -> None:
    with Journal.open(journal_dir, fsync=FsyncPolicy.NONE) as journal:
        path = journal.write_snapshot(51, b"state")
    path.write_bytes(path.read_bytes()[:-1])
    result = invoke("verify", str(journal_dir))
    assert result.exit_code == 1
    assert f"snapshot {path.name} is damaged" in result.stdout


def test_verify_an_undecodable_record(tmp_path: Path) -> None:
    write_journal(tmp_path, order_entries(0))
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE) as journal:
        journal.append(b"garbage")
    result = invoke("verify", str(tmp_path))
    assert result.exit_code == 1
    assert "record 6 cannot be decoded" in result.stdout


def test_verify_a_compacted_journal_replays_from_the_snapshot(tmp_path: Path) -> None:
    entries = all_entries(10)
    write_journal(tmp_path, entries[:30], segment_bytes=1024)
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE, segment_bytes=1024) as journal:
        state = replay(entries[:30]).state
        journal.write_snapshot(30, msgpack.packb(state.snapshot(), use_bin_type=True))
        journal.append_many(encode_entry(entry) for entry in entries[30:])
        assert journal.compact().segments_removed
        assert journal.first_seq > 1
    result = invoke("verify", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["replayed_from_snapshot"] == 30
    assert report["entries_replayed"] == len(entries) - 30
    expected = summarize(replay(entries[30:], state=OmsState.restore(state.snapshot())).state)
    assert report["state"] == expected == summarize(replay(entries).state)
    shown = invoke("show", str(tmp_path), "--from", "1", "--limit", "1")
    assert int(shown.stdout.split()[0]) == json.loads(result.stdout)["first_seq"]


def test_verify_decodes_every_completed_order_of_the_snapshot(tmp_path: Path) -> None:
    entries = all_entries(10)
    write_journal(tmp_path, entries[:30], segment_bytes=1024)
    plain = replay(entries[:30]).state.snapshot()
    assert plain["completed"], "the snapshot needs a completed order to damage"
    client_order_id = plain["completed"][0][0]
    plain["completed"][0][2] = msgpack.packb(["not", "an", "order"], use_bin_type=True)
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE, segment_bytes=1024) as journal:
        journal.write_snapshot(30, msgpack.packb(plain, use_bin_type=True))
        journal.append_many(encode_entry(entry) for entry in entries[30:])
        assert journal.compact().segments_removed
    result = invoke("verify", str(tmp_path), "--json")
    assert result.exit_code != 0
    problems = json.loads(result.stdout)["problems"]
    assert any("cannot be restored" in p and client_order_id in p for p in problems), problems


def test_verify_a_journal_of_another_format_version(journal_dir: Path) -> None:
    target = segment_files(journal_dir)[0]
    data = bytearray(target.read_bytes())
    data[4] = 9
    target.write_bytes(bytes(data))
    result = invoke("verify", str(journal_dir))
    assert result.exit_code == 1
    assert "version 9" in result.stdout + result.stderr


# -- usage errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("show", "{missing}"),
        ("show", "{file}"),
        ("show", "{empty}"),
        ("verify", "{empty}"),
        ("export", "{journal}"),
        ("export", "{journal}", "--format", "xml"),
        ("show", "{journal}", "--limit", "-1"),
        ("show", "{journal}", "--from", "0"),
        ("show",),
    ],
)
def test_usage_errors_exit_2(journal_dir: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty").mkdir()
    paths = {
        "missing": str(tmp_path / "nope"),
        "file": str(tmp_path / "a-file"),
        "empty": str(tmp_path / "empty"),
        "journal": str(journal_dir),
    }
    result = invoke(*(arg.format(**paths) for arg in args))
    assert result.exit_code == 2, result.output


def test_help_lists_the_journal_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("show", "export", "verify"):
        assert command in result.stdout
