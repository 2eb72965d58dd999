"""The journal's hot write path: fast encoders that must write the very bytes (and
raise the very errors) of the slow ones, queued writes under group commit, and
the OMS's write-ahead hold."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradenode.actors import EntryKind, JournalEntry, decode_entry, encode_entry

# The write path's encoder internals (message shapes, the fast path) are what is under test.
from tradenode.actors._oms_entries import _SHAPES, ENTRY_FIELDS, _encode_message, encode_call

# The OMS's write-ahead journal is what is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncPolicy, Journal, JournalError

# Storage internals: the tests reach the segment writer to count fsyncs.
from tradenode.journal import _storage as storage
from tradenode.messages import (
    Message,
    OrderAccepted,
    OrderFilled,
    OrderType,
    Side,
    SubmitOrder,
    encode,
)
from tradenode.supervision import ManualClock

from .test_codec import CLASSES, STRATEGIES, by_name
from .test_journal_entries import oms_call

D = Decimal
K = EntryKind


def order(client_order_id: str = "s1-1", **changes: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": client_order_id,
        "strategy_id": "s1",
        "venue": "paper",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D("0.001"),
        "ts_ns": 1,
    }
    fields.update(changes)
    return SubmitOrder(**fields)


def outcome(function: Callable[[], bytes]) -> bytes | tuple[type[BaseException], str]:
    """What a call returned, or the type and text of what it raised."""
    try:
        return function()
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


# -- message frames -----------------------------------------------------------------------------


@by_name
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_message_frames_are_the_codecs_bytes(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(STRATEGIES[cls])
    assert _encode_message(message) == encode(message)


def test_every_registered_message_type_has_a_fast_path() -> None:
    assert set(_SHAPES) == set(CLASSES)


@pytest.mark.parametrize(
    "message",
    [
        order(venue="paper\udc80"),  # not encodable as UTF-8
        order(ts_ns=2**64),  # beyond msgpack's integers
        order(quantity=D("1." + "1" * 100)),  # longer than the codec's decimal limit
    ],
    ids=["surrogate", "huge-int", "long-decimal"],
)
def test_what_the_codec_refuses_the_fast_path_refuses_alike(message: SubmitOrder) -> None:
    refused = outcome(lambda: encode(message))
    assert not isinstance(refused, bytes)
    assert outcome(lambda: _encode_message(message)) == refused


def test_decimals_keep_their_exact_text_whatever_was_encoded_before() -> None:
    for text in ("1.10", "1.1", "1.100", "1E+1", "10", "1.10"):
        message = order(quantity=D(text))
        assert _encode_message(message) == encode(message)


def test_a_subclassed_field_value_goes_down_the_codecs_path() -> None:
    class Text(str):
        pass

    message = order(symbol=Text("BTCUSDT"))
    assert outcome(lambda: _encode_message(message)) == outcome(lambda: encode(message))


def test_threads_encoding_at_once_never_mix_their_frames() -> None:
    messages = [
        order(f"t{n}-{i}", quantity=D(f"{n + 1}.{i}")) for n in range(4) for i in range(300)
    ]
    expected = {m.client_order_id: encode(m) for m in messages}
    wrong: list[str] = []
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        barrier.wait()
        for m in messages[n * 300 : (n + 1) * 300]:
            if _encode_message(m) != expected[m.client_order_id]:
                wrong.append(m.client_order_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []


# -- entries ------------------------------------------------------------------------------------


def fields_of(entry: JournalEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in ENTRY_FIELDS[entry.kind]}


@settings(max_examples=300, deadline=None)
@given(entry=oms_call(), ts_ns=st.integers(0, 2**64 - 1))
def test_encode_call_writes_what_encode_entry_writes(entry: JournalEntry, ts_ns: int) -> None:
    entry = dataclasses.replace(entry, ts_ns=ts_ns)
    payload = encode_call(entry.kind, ts_ns, fields_of(entry))
    assert payload == encode_entry(entry)
    assert decode_entry(payload) == entry


@pytest.mark.parametrize(
    ("kind", "ts_ns", "fields"),
    [
        (
            K.REGISTER,
            1,
            {"message": OrderAccepted(client_order_id="a", venue="v", venue_order_id="1")},
        ),
        (K.REGISTER, 1, {"message": None}),
        (K.REGISTER, 1, {"client_order_id": "a"}),
        (K.REGISTER, 1, {"message": order(), "client_order_id": "a"}),
        (K.REGISTER, -1, {"message": order()}),
        (K.REGISTER, 2**64, {"message": order()}),
        (K.REGISTER, True, {"message": order()}),
        (K.REGISTER, 1, {"message": order(venue="paper\udc80")}),
        (K.REPORT, 1, {"message": order()}),
        (K.SUBMITTED, 1, {"client_order_id": "not an id"}),
        (K.SUBMITTED, 1, {"client_order_id": "x" * 37}),
        (K.SUBMITTED, 1, {"client_order_id": 7}),
        (K.SUBMITTED, 1, {}),
        (K.PENDING_CANCEL, 1, {"client_order_id": "ok-1\n"}),
        (K.DENIED, 1, {"client_order_id": "a"}),
        (K.ARRIVAL, 1, {"client_order_id": "a", "price": D("0")}),
        (K.ARRIVAL, 1, {"client_order_id": "a", "price": D("-1")}),
        (K.ARRIVAL, 1, {"client_order_id": "a", "price": D("NaN")}),
        (K.ARRIVAL, 1, {"client_order_id": "a", "price": 1.5}),
        (K.ARRIVAL, 1, {"client_order_id": "not an id", "price": D("1")}),
        (K.ARRIVAL, 1, {"client_order_id": "a"}),
        (K.ARRIVAL, 1, {"client_order_id": "a", "price": D("1"), "venue": "v"}),
    ],
)
def test_encode_call_refuses_what_an_entry_refuses_with_its_words(
    kind: EntryKind, ts_ns: Any, fields: dict[str, Any]
) -> None:
    def slow() -> bytes:
        return encode_entry(JournalEntry(kind=kind, ts_ns=ts_ns, **fields))

    refused = outcome(slow)
    assert not isinstance(refused, bytes)
    assert outcome(lambda: encode_call(kind, ts_ns, fields)) == refused


# -- queued writes ------------------------------------------------------------------------------


class FailingWrites:
    """Makes the journal's writes fail from the ``fail_from``-th one on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_from: int) -> None:
        self.calls = 0
        self.fail_from = fail_from
        real = storage._write_all

        def write_all(fd: int, data: bytes, offset: int) -> None:
            self.calls += 1
            if self.calls >= self.fail_from:
                os.pwrite(fd, data[: len(data) // 2], offset)  # a torn write, then the error
                raise OSError(28, "No space left on device")
            real(fd, data, offset)

        monkeypatch.setattr(storage, "_write_all", write_all)


def payloads(count: int) -> list[bytes]:
    return [f"record-{i}".encode() for i in range(1, count + 1)]


def test_a_failed_write_is_fatal_and_leaves_only_whole_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "j"
    with Journal.open(directory, fsync=FsyncPolicy.NONE, fsync_function=lambda fd: None) as journal:
        journal.append_many(payloads(3))
        FailingWrites(monkeypatch, fail_from=1)
        with pytest.raises(JournalError, match="writing records failed"):
            journal.append(b"record-4")
        monkeypatch.undo()
        with pytest.raises(JournalError, match="must be reopened"):
            journal.append(b"record-5")
        with pytest.raises(JournalError, match="must be reopened"):
            journal.flush()
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as reopened:
        assert reopened.torn_tail is None  # the partial write was cut off at once
        assert [p for _, p in reopened.replay()] == payloads(3)
        assert reopened.append(b"again") == 4


def test_a_failed_group_write_is_logged_and_stops_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    seen: list[int] = []
    journal = Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.group(5, 100), fsync_function=lambda fd: None, clock=clock
    )
    journal.add_durability_listener(seen.append)
    journal.append_many(payloads(2))
    clock.advance(0.005)
    assert seen == [2]
    journal.append(b"record-3")
    FailingWrites(monkeypatch, fail_from=1)
    with caplog.at_level(logging.ERROR, logger="tradenode.journal"):
        clock.advance(0.005)
    assert "group commit failed" in caplog.text
    monkeypatch.undo()
    assert (journal.durable_seq, seen) == (2, [2])  # never reported durable
    with pytest.raises(JournalError, match="must be reopened"):
        journal.append(b"record-4")
    journal.close()
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.NONE) as reopened:
        assert [p for _, p in reopened.replay()] == payloads(2)


def test_records_queued_during_a_commit_get_a_timer_when_it_ends(tmp_path: Path) -> None:
    clock = ManualClock()
    slow, in_fsync, disk_done = threading.Event(), threading.Event(), threading.Event()

    def slow_fsync(fd: int) -> None:
        if slow.is_set():
            in_fsync.set()
            assert disk_done.wait(10)

    journal = Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.group(5, 100), fsync_function=slow_fsync, clock=clock
    )
    slow.set()
    journal.append(b"1")
    committer = threading.Thread(target=clock.advance, args=(0.005,))
    committer.start()
    try:
        assert in_fsync.wait(10)
        journal.append(b"2")  # the committing thread will arm the timer for it, not this one
        assert clock.pending_delays() == [] and journal.durable_seq == 0
    finally:
        disk_done.set()
        committer.join(10)
    assert journal.durable_seq == 1
    assert clock.pending_delays() == [pytest.approx(0.005)]
    clock.advance(0.005)
    assert journal.durable_seq == 2
    journal.close()


def test_none_and_every_record_put_each_record_in_the_file_before_append_returns(
    tmp_path: Path,
) -> None:
    for policy in (FsyncPolicy.NONE, FsyncPolicy.EVERY_RECORD):
        directory = tmp_path / policy.mode.value
        with Journal.open(directory, fsync=policy, segment_bytes=64) as journal:
            for i, payload in enumerate(payloads(6), start=1):
                assert journal.append(payload) == i
                with Journal.open_read_only(directory) as reader:  # what another process sees
                    assert [seq for seq, _ in reader.replay()] == list(range(1, i + 1))


def test_concurrent_every_record_appends_are_each_durable_on_return(tmp_path: Path) -> None:
    late: list[int] = []
    with Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.EVERY_RECORD, fsync_function=lambda fd: None
    ) as journal:

        def work(n: int) -> None:
            for i in range(100):
                seq = journal.append(f"{n}:{i}".encode())
                if journal.durable_seq < seq:
                    late.append(seq)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        assert late == []
        assert [seq for seq, _ in journal.replay()] == list(range(1, 401))


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 40)),
        st.tuples(st.just("append_many"), st.lists(st.integers(1, 40), max_size=6)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.001, 0.003, 0.01])),
        st.tuples(st.just("flush"), st.none()),
        st.tuples(st.just("replay"), st.none()),
        st.tuples(st.just("stats"), st.none()),
        st.tuples(st.just("snapshot"), st.none()),
    ),
    max_size=40,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations=OPERATIONS)
def test_group_commit_keeps_every_record_in_order_through_anything(
    tmp_path_factory: pytest.TempPathFactory, operations: list[tuple[str, Any]]
) -> None:
    directory = tmp_path_factory.mktemp("group") / "j"
    clock = ManualClock()
    written: list[bytes] = []
    durable: list[int] = []
    snapshot_at = 0

    def make(size: int) -> bytes:
        return f"{len(written) + 1}:".encode().ljust(size, b"x")

    with Journal.open(
        directory,
        fsync=FsyncPolicy.group(2, 5),
        segment_bytes=96,
        clock=clock,
        fsync_function=lambda fd: None,
    ) as journal:
        journal.add_durability_listener(durable.append)
        for name, argument in operations:
            if name == "append":
                payload = make(argument)
                written.append(payload)
                assert journal.append(payload) == len(written)
            elif name == "append_many":
                batch = []
                for size in argument:
                    batch.append(make(size))
                    written.append(batch[-1])
                assert journal.append_many(batch) == len(written)
            elif name == "advance":
                clock.advance(argument)
            elif name == "flush":
                assert journal.flush() == len(written)
            elif name == "replay":
                replayed = list(journal.replay(snapshot_at))
                assert replayed == list(enumerate(written, start=1))[snapshot_at:]
            elif name == "stats":
                stats = journal.stats()
                assert stats.last_seq == len(written)
                assert stats.records == len(written) - stats.first_seq + 1
            else:
                journal.write_snapshot(len(written), b"state")
                journal.compact()
                snapshot_at = len(written)
            assert journal.last_seq == len(written)
            assert journal.durable_seq <= len(written)
    assert durable == sorted(set(durable))
    if written:
        assert durable[-1] == len(written)  # close made everything durable
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as reopened:
        assert list(reopened.replay(snapshot_at)) == list(enumerate(written, start=1))[snapshot_at:]


# -- the OMS's write-ahead hold -----------------------------------------------------------------


class Recorder:
    def __init__(self, sent: list[tuple[str, Any]], name: str) -> None:
        self.sent, self.name = sent, name

    def tell(self, message: Any) -> None:
        self.sent.append((self.name, message))


@pytest.fixture
def oms_journal(tmp_path: Path) -> Iterator[tuple[OmsJournal, Journal, ManualClock]]:
    clock = ManualClock()
    journal = Journal.open(
        tmp_path / "j",
        fsync=FsyncPolicy.group(5, 1000),
        fsync_function=lambda fd: None,
        clock=clock,
    )
    writer = OmsJournal(journal)
    journal.add_durability_listener(writer.release)  # the node tells the OMS; the same call
    yield writer, journal, clock
    journal.close()


def test_messages_wait_for_their_records_and_leave_in_order(
    oms_journal: tuple[OmsJournal, Journal, ManualClock],
) -> None:
    writer, journal, clock = oms_journal
    sent: list[tuple[str, Any]] = []
    breaker = Recorder(sent, "breaker")
    first, second = order("a-1"), order("a-2")
    writer.record(K.REGISTER, 5, message=first)
    seq = writer.record(K.SUBMITTED, 5, client_order_id="a-1")
    writer.send_when_durable(seq, breaker, first)  # type: ignore[arg-type]
    writer.record(K.REGISTER, 6, message=second)
    seq = writer.record(K.SUBMITTED, 6, client_order_id="a-2")
    writer.send_when_durable(seq, breaker, second)  # type: ignore[arg-type]
    assert sent == [] and len(writer.held) == 2
    clock.advance(0.005)
    assert sent == [("breaker", first), ("breaker", second)] and not writer.held
    late = writer.record(K.PENDING_CANCEL, 7, client_order_id="a-1")
    journal.flush()
    writer.send_when_durable(late, breaker, "cancel")  # type: ignore[arg-type]
    assert sent[-1] == ("breaker", "cancel")  # already durable, nothing held: at once
    assert [decode_entry(p).kind for _, p in journal.replay()] == [
        K.REGISTER,
        K.SUBMITTED,
        K.REGISTER,
        K.SUBMITTED,
        K.PENDING_CANCEL,
    ]
    assert decode_entry(next(iter(journal.replay()))[1]).message == first


def test_a_durable_message_never_overtakes_a_held_one(tmp_path: Path) -> None:
    with Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.group(5, 1000), clock=ManualClock()
    ) as journal:
        writer = OmsJournal(journal)  # no listener: the WriteAhead is still on its way
        sent: list[tuple[str, Any]] = []
        first = writer.record(K.SUBMITTED, 1, client_order_id="a-1")
        writer.send_when_durable(first, Recorder(sent, "venue-1"), "one")  # type: ignore[arg-type]
        second = writer.record(K.SUBMITTED, 2, client_order_id="a-2")
        journal.flush()
        assert sent == [] and journal.durable_seq == second
        writer.send_when_durable(second, Recorder(sent, "venue-2"), "two")  # type: ignore[arg-type]
        assert sent == [("venue-1", "one"), ("venue-2", "two")] and not writer.held


def test_without_write_ahead_nothing_waits(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.NONE) as journal:
        writer = OmsJournal(journal, write_ahead=False)
        sent: list[tuple[str, Any]] = []
        seq = writer.record(
            K.REPORT,
            1,
            message=OrderFilled(
                client_order_id="a-1",
                venue="paper",
                venue_order_id="1",
                execution_id="paper-1",
                symbol="BTCUSDT",
                side=Side.BUY,
                last_quantity=D("0.001"),
                last_price=D("50000.10"),
            ),
        )
        writer.send_when_durable(seq, Recorder(sent, "breaker"), "now")  # type: ignore[arg-type]
        assert sent == [("breaker", "now")] and journal.durable_seq == 0
