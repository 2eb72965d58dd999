"""An order's intent and its submission reach the journal in one append.

``OmsJournal.record_with_next`` encodes a record at once (a bad entry raises
there) and appends it with the next ``record`` or at ``flush`` (the OMS flushes
after every message): the same records, in call order, with one trip through
the journal's lock and group scheduling instead of two.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tradenode.actors import EntryKind, decode_entry

# The OMS's write-ahead journal is what is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncPolicy, Journal

# Storage internals: a test lengthens the lazy wait of records nobody waits for.
from tradenode.journal import _storage as storage
from tradenode.messages import OrderType, Side, SubmitOrder

K = EntryKind


class CountingJournal(Journal):
    """A real journal that counts the appends it is asked for."""

    appends: list[int]

    def append(self, payload: bytes, *, urgent: bool = True, lead: bool = False) -> int:
        self.appends.append(1)
        return super().append(payload, urgent=urgent, lead=lead)

    def append_many(
        self, payloads: Iterable[bytes], *, urgent: bool = True, lead: bool = False
    ) -> int:
        batch = list(payloads)
        self.appends.append(len(batch))
        return super().append_many(batch, urgent=urgent, lead=lead)


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[CountingJournal]:
    journal = CountingJournal.open(tmp_path / "j", fsync=FsyncPolicy.NONE)
    assert isinstance(journal, CountingJournal)
    journal.appends = []
    yield journal
    journal.close()


def _order() -> SubmitOrder:
    return SubmitOrder(
        client_order_id="s-1",
        strategy_id="s",
        venue="paper",
        symbol="BTC-USDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=Decimal("1"),
        price=Decimal("100"),
        ts_ns=1,
    )


def _kinds(journal: Journal) -> list[tuple[int, EntryKind]]:
    return [(seq, decode_entry(payload).kind) for seq, payload in journal.replay()]


def test_the_intent_is_appended_with_the_submission(opened: CountingJournal) -> None:
    writer = OmsJournal(opened, write_ahead=False)
    writer.record_with_next(K.REGISTER, 5, message=_order())
    assert opened.appends == [] and opened.last_seq == 0  # deferred
    seq = writer.record(K.SUBMITTED, 5, client_order_id="s-1")
    assert seq == 2 and opened.appends == [2]
    assert (writer.records, writer.last_seq) == (2, 2)
    assert _kinds(opened) == [(1, K.REGISTER), (2, K.SUBMITTED)]
    writer.flush()  # nothing left
    assert opened.appends == [2]


def test_flush_appends_what_no_record_followed(opened: CountingJournal) -> None:
    writer = OmsJournal(opened, write_ahead=False)
    writer.record_with_next(K.REGISTER, 5, message=_order())
    writer.flush()
    assert opened.appends == [1] and (writer.records, writer.last_seq) == (1, 1)
    assert writer.record(K.SUBMITTED, 6, client_order_id="s-1") == 2
    assert opened.appends == [1, 1]
    assert _kinds(opened) == [(1, K.REGISTER), (2, K.SUBMITTED)]


def test_a_bad_entry_raises_when_recorded_and_defers_nothing(opened: CountingJournal) -> None:
    writer = OmsJournal(opened, write_ahead=False)
    with pytest.raises((TypeError, ValueError)):
        writer.record_with_next(K.SUBMITTED, -1, client_order_id="s-1")
    writer.flush()
    assert opened.appends == [] and opened.last_seq == 0


def test_the_oms_appends_an_orders_intent_and_submission_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_messages_per_order import counting_node, one_order

    batches: list[int] = []
    real_append, real_many = Journal.append, Journal.append_many

    def append(self: Journal, payload: bytes, *, urgent: bool = True, lead: bool = False) -> int:
        batches.append(1)
        return real_append(self, payload, urgent=urgent, lead=lead)

    def append_many(
        self: Journal, payloads: Iterable[bytes], *, urgent: bool = True, lead: bool = False
    ) -> int:
        batch = list(payloads)
        batches.append(len(batch))
        return real_many(self, batch, urgent=urgent, lead=lead)

    monkeypatch.setattr(Journal, "append", append)
    monkeypatch.setattr(Journal, "append_many", append_many)
    with counting_node("group", tmp_path) as h:
        one_order(h)
        h.sync()
        batches.clear()
        coid, _ = one_order(h)
        h.sync()
        # REGISTER + SUBMITTED, then the venue's accept and fill.
        assert batches[:3] == [2, 1, 1]
    with Journal.open_read_only(tmp_path / "journal") as journal:
        entries = [decode_entry(payload) for _, payload in journal.replay()]
    mine = [
        entry.kind
        for entry in entries
        if coid
        in (
            getattr(entry, "client_order_id", None),
            getattr(entry.message, "client_order_id", None),
        )
    ]
    assert mine[:2] == [K.REGISTER, K.SUBMITTED]
    assert mine.count(K.REPORT) >= 2


class Mailbox:
    def __init__(self) -> None:
        self.told: queue.SimpleQueue[object] = queue.SimpleQueue()

    def tell(self, message: object) -> None:
        self.told.put(message)


def test_a_submission_is_committed_unurged_and_its_message_sent_once_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records nobody waits for wait (practically) forever: only urgency commits them.
    monkeypatch.setattr(storage, "_LAZY_SECONDS", 3600.0)
    urged: list[int] = []
    with Journal.open(tmp_path / "j", fsync=FsyncPolicy.GROUP) as opened:
        monkeypatch.setattr(opened, "urge", urged.append)
        writer = OmsJournal(opened)
        writer.attach()
        breaker = Mailbox()
        writer.record_with_next(K.REGISTER, 5, message=_order())
        seq = writer.record_to_send(K.SUBMITTED, 5, client_order_id="s-1")
        writer.send_when_durable(seq, breaker, "order s-1")  # type: ignore[arg-type]
        assert breaker.told.get(timeout=10.0) == "order s-1"
        assert opened.durable_seq >= seq == 2 and urged == []
        # A record appended not urgent is still urged by the message held for it.
        later = writer.record(K.SUBMITTED, 6, client_order_id="s-2")
        writer.send_when_durable(later, breaker, "order s-2")  # type: ignore[arg-type]
        assert urged == [later]
