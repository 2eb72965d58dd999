"""What a node builds in one go stays out of the cyclic collector's young generations.

Two places build tens of thousands of live, acyclic containers at once: an OMS
snapshot's plain data (on the OMS's thread, alive until the journal's snapshot thread
has packed it) and the state a restart recovers from the journal. Left young, they
were walked by collections that freed nothing: 6-16 ms per snapshot in the closed
loop (57 and 115 ms at the longest in a burst), ~100 ms per restart from a
100,000-record journal. These tests look at the collector itself (its generations,
its collections), not at any time.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import parse_config

# The recovery a node runs on start is under test; the node runs it.
from tradenode._recovery import recover_node
from tradenode.actors import EntryKind, JournalEntry, encode_entry

# The OMS's write-ahead journal is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import OrderAccepted, OrderType, Side, SubmitOrder
from tradenode.supervision import ManualClock


class CapturingLog:
    """A journal that keeps the snapshot handed to it, unpacked."""

    durable_seq = 0

    def __init__(self) -> None:
        self.encoders: list[Callable[[], bytes]] = []

    def write_snapshot_later(
        self, seq: int, encode: Callable[[], bytes], *, compact: bool = False
    ) -> None:
        self.encoders.append(encode)


def _young_ids() -> set[int]:
    return {id(obj) for generation in (0, 1) for obj in gc.get_objects(generation=generation)}


@pytest.fixture
def collector_restored() -> Iterator[None]:
    """Whatever a test does to the process's collector is undone after it."""
    enabled = gc.isenabled()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    if enabled:
        gc.enable()
    else:
        gc.disable()


def _taken(built: list[Any]) -> OmsJournal:
    """A due snapshot of a state whose plain data is fresh containers, kept in ``built``."""

    def state() -> dict[str, Any]:
        rows = [[f"order-{index}", {"fills": [index]}] for index in range(2_000)]
        built.extend(rows)
        return {"completed": rows}

    journal = OmsJournal(CapturingLog(), snapshot_every=1)  # type: ignore[arg-type]
    journal.last_seq = 1
    journal.snapshot_if_due(state)
    return journal


@pytest.mark.usefixtures("collector_restored")
def test_a_snapshots_containers_are_not_left_for_a_young_collection() -> None:
    gc.enable()
    built: list[Any] = []
    journal = _taken(built)
    assert journal.snapshots == 1
    young = _young_ids()
    left_young = [row for row in built if id(row) in young or id(row[1]) in young]
    assert left_young == []
    assert all(gc.is_tracked(row) for row in built)  # still collectable, in the oldest generation
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("collector_restored")
def test_objects_the_application_froze_stay_frozen() -> None:
    gc.enable()
    kept_shared = [[index] for index in range(100)]
    gc.freeze()
    assert gc.get_freeze_count() >= len(kept_shared)
    built: list[Any] = []
    _taken(built)
    # Still in the permanent generation: in none of the three the collector walks (the
    # count itself moves as the test's own frozen garbage is freed).
    walked = {id(obj) for generation in (0, 1, 2) for obj in gc.get_objects(generation=generation)}
    assert [item for item in kept_shared if id(item) in walked] == []
    assert gc.get_freeze_count() >= len(kept_shared)
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_restored")
def test_a_collector_the_application_turned_off_stays_off() -> None:
    gc.disable()
    built: list[Any] = []
    _taken(built)
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def _journal_of(directory: Path, orders: int) -> None:
    """A journal of ``orders`` accepted limit orders, as the OMS writes one."""
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as journal:
        for number in range(orders):
            client_order_id = f"o-{number}"
            order = SubmitOrder(
                client_order_id=client_order_id,
                strategy_id="s1",
                venue="paper",
                symbol="BTCUSDT",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                quantity=Decimal("1"),
                price=Decimal("100"),
            )
            accepted = OrderAccepted(
                client_order_id=client_order_id, venue="paper", venue_order_id=f"v-{number}"
            )
            for entry in (
                JournalEntry(kind=EntryKind.REGISTER, ts_ns=number, message=order),
                JournalEntry(
                    kind=EntryKind.SUBMITTED, ts_ns=number, client_order_id=client_order_id
                ),
                JournalEntry(kind=EntryKind.REPORT, ts_ns=number, message=accepted),
            ):
                journal.append(encode_entry(entry))


@pytest.mark.usefixtures("collector_restored")
def test_a_restart_recovers_its_state_without_a_collection_and_leaves_it_old(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "journal"
    _journal_of(directory, 2_000)
    gc.enable()
    gc.set_threshold(700, 10, 10)  # Python's own: a node engages its setting after recovery
    collections: list[int] = []
    recovering = threading.current_thread()

    def count(phase: str, info: dict[str, Any]) -> None:
        # This thread's only: another test's leftover thread may allocate meanwhile.
        if phase == "start" and threading.current_thread() is recovering:
            collections.append(info["generation"])

    config = parse_config(f"node: {{name: t}}\njournal: {{path: '{directory}', fsync: group}}\n")
    gc.callbacks.append(count)
    try:
        recovered = recover_node(config, ManualClock())
    finally:
        gc.callbacks.remove(count)
    try:
        assert recovered.report is not None and recovered.report.replayed == 6_000
        assert len(recovered.state.open_orders()) == 2_000
        assert collections == []
        young = _young_ids()
        orders = [view.order for view in recovered.state.open_orders()]
        assert [order for order in orders if id(order) in young] == []
        assert gc.isenabled()
    finally:
        assert recovered.journal is not None
        recovered.journal.close()
