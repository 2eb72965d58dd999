"""An appender with nothing else to do commits its own group (``append(lead=True)``).

Leader/follower group commit as databases do it: when no commit is in flight the
appender that needs its record durable writes and fsyncs the group itself, rather
than wake the journal's commit thread and go idle while that thread waits for the
GIL. The OMS leads when its mailbox is empty (``OmsJournal.idle``), so a lone
order's intent is durable, and the order sent, without a thread hop; with more
messages waiting it goes on to them and the commit thread commits, as before.

Deterministic as ``test_journal_group_commit``: an injected fsync counts its calls
and can hold one in flight on an Event; nothing waits for time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import Node, parse_config
from tradenode.actors import EntryKind, decode_entry

# The OMS's write-ahead journal is what is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncPolicy, Journal

# Storage internals: a test lengthens the lazy wait of records nobody waits for.
from tradenode.journal import _storage as storage
from tradenode.messages import OrderStatus, Side
from tradenode.supervision import ManualClock

from .test_journal_group_commit import Durable, GatedFsync, Mailbox
from .test_messages_per_order import CONFIG, Harness

K = EntryKind
WAIT = 10.0  # seconds: only a bound on a hung test, never a measure of anything


def _wait_until_the_commit_thread_sleeps(journal: Journal) -> None:
    """The commit thread goes to sleep a moment after it told its listeners; wait
    for it (its private flag, read under the journal's lock), never for time."""
    deadline = threading.Event()
    timer = threading.Timer(WAIT, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            # Journal internals: whether the commit thread sleeps is not public.
            with journal._lock:
                if journal._leader_asleep and not journal._committing:
                    return
            threading.Event().wait(0)  # give the GIL to the commit thread
        raise AssertionError("the commit thread never went to sleep")
    finally:
        timer.cancel()


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[tuple[Journal, GatedFsync, Durable]]:
    fsync = GatedFsync()
    journal = Journal.open(
        tmp_path / "j", fsync=FsyncPolicy.GROUP, fsync_function=fsync, clock=ManualClock()
    )
    durable = Durable()
    journal.add_durability_listener(durable)
    yield journal, fsync, durable
    journal.close()


def test_a_leading_append_on_an_idle_journal_is_durable_when_it_returns(
    opened: tuple[Journal, GatedFsync, Durable], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Records nobody waits for wait (practically) forever for one that someone does.
    monkeypatch.setattr(storage, "_LAZY_SECONDS", 3600.0)
    journal, fsync, durable = opened
    _wait_until_the_commit_thread_sleeps(journal)
    before = fsync.count
    journal.append(b"nobody waits", urgent=False)  # wakes it for a lazy wait of its own
    _wait_until_the_commit_thread_sleeps(journal)
    seq = journal.append_many([b"intent", b"submitted"], lead=True)
    # Committed before ``append_many`` returned, with the record queued before it, in
    # one fsync, and the listener was told on this very thread.
    assert (seq, journal.durable_seq, fsync.count - before) == (3, 3, 1)
    assert durable.seen == [3] and durable.threads == {threading.current_thread().name}
    _wait_until_the_commit_thread_sleeps(journal)
    assert journal.append(b"alone", lead=True) == journal.durable_seq == 4
    assert fsync.count - before == 2 and durable.seen == [3, 4]
    assert [s for s, _ in journal.replay()] == [1, 2, 3, 4]


def test_a_leading_append_during_a_commit_in_flight_is_left_to_the_commit_thread(
    opened: tuple[Journal, GatedFsync, Durable],
) -> None:
    journal, fsync, durable = opened
    _wait_until_the_commit_thread_sleeps(journal)
    gate = fsync.hold_next()
    journal.append(b"first")  # not leading: the commit thread commits it
    assert fsync.entered.wait(WAIT)  # ...and its fsync is in flight, held there
    seq = journal.append(b"second", lead=True)
    # The appender did not wait for the disk: its record queues behind the fsync.
    assert (seq, journal.durable_seq) == (2, 0)
    gate.set()
    assert durable.wait_for(2)[-1] == 2
    assert threading.current_thread().name not in durable.threads


def test_lead_changes_nothing_but_under_leader_follower_group_commit(tmp_path: Path) -> None:
    fsync = GatedFsync()
    with Journal.open(
        tmp_path / "timed",
        fsync=FsyncPolicy.parse("group:2ms"),
        fsync_function=fsync,
        clock=ManualClock(),
    ) as timed:
        assert timed.append(b"x", lead=True) == 1
        assert timed.durable_seq == 0  # its timer commits it, on the journal's clock
    with Journal.open(tmp_path / "none", fsync=FsyncPolicy.NONE, fsync_function=fsync) as none:
        before = fsync.count
        none.append(b"x", lead=True)
        assert fsync.count == before


def test_an_idle_oms_sends_the_order_itself_once_durable(
    opened: tuple[Journal, GatedFsync, Durable],
) -> None:
    journal, fsync, _ = opened
    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    breaker = Mailbox("breaker", inbox)
    idle = [True]
    writer = OmsJournal(journal, idle=lambda: idle[0])
    writer.attach()
    _wait_until_the_commit_thread_sleeps(journal)
    writer.record_with_next(K.SUBMITTED, 1, client_order_id="a-0")
    seq = writer.record_to_send(K.SUBMITTED, 1, client_order_id="a-1")
    assert journal.durable_seq == seq == 2  # led: durable before the message is held
    writer.send_when_durable(seq, breaker, "order a-1")  # type: ignore[arg-type]
    assert inbox.get_nowait() == ("breaker", "order a-1") and not writer.held
    # With messages waiting for the OMS it leaves the commit to the commit thread,
    # and the message is held until that thread has made the record durable.
    idle[0] = False
    gate = fsync.hold_next()
    seq = writer.record_to_send(K.SUBMITTED, 2, client_order_id="a-2")
    writer.send_when_durable(seq, breaker, "order a-2")  # type: ignore[arg-type]
    assert fsync.entered.wait(WAIT)
    assert journal.durable_seq < seq and len(writer.held) == 1 and inbox.empty()
    gate.set()
    assert inbox.get(timeout=WAIT) == ("breaker", "order a-2")
    assert journal.durable_seq >= seq and not writer.held


def test_the_node_commits_a_lone_orders_intent_on_the_oms_thread(tmp_path: Path) -> None:
    text = CONFIG + f"journal: {{path: '{tmp_path / 'journal'}', fsync: 'group'}}\n"
    clock = ManualClock()
    node = Node(parse_config(text), clock=clock)
    node.start()
    try:
        h = Harness(node, clock)
        assert node.journal is not None and node.oms_store.journal is not None
        committed: list[tuple[int, str]] = []
        node.journal.add_durability_listener(
            lambda seq: committed.append((seq, threading.current_thread().name))
        )
        h.strategy()  # started, and its first messages handled, before the order
        h.sync()
        node.journal.flush()
        _wait_until_the_commit_thread_sleeps(node.journal)
        coid = h.do(
            lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal("0.001"), venue="paper")
        )
        h.sync()
        while h.order(coid).status is not OrderStatus.FILLED:
            clock.advance(0.005)  # as ``one_order`` does; leader/follower needs no timer
            h.sync()
        submitted = [
            seq
            for seq, payload in node.journal.replay()
            if (entry := decode_entry(payload)).kind is K.SUBMITTED
            and entry.client_order_id == coid
        ]
        assert len(submitted) == 1
        # Nothing else was queued for the thread the OMS ran on (its own, or the
        # strategy's, which the OMS lends its turn to): it committed the order's
        # records itself.
        first = next(name for seq, name in committed if seq >= submitted[0])
        assert not first.startswith("tradenode-journal-")
    finally:
        node.stop(timeout=10)
