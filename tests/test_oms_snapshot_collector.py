"""A snapshot's plain data stays out of the cyclic collector's young generations.

Taking a snapshot builds tens of thousands of containers on the OMS's thread, all
alive until the journal's snapshot thread has packed them. Left young, the first
collection after the snapshot walked every one of them on the OMS's thread (6-16 ms
per snapshot in the closed loop, 57 and 115 ms at the longest in a burst), collecting
nothing. These tests look at the generations themselves, not at any time.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The OMS's write-ahead journal is what is under test; the node builds it.
from tradenode.actors._oms_journal import OmsJournal


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
    yield
    gc.unfreeze()
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
