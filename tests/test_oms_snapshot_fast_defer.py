"""A snapshot is not taken while the journal is still packing the last one: it would
only wait there, to be replaced by the next, and taking it costs the OMS's thread."""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import pytest

# The OMS's write-ahead journal and its deferral limit are what is under test.
from tradenode.actors._oms_journal import _DEFER_LIMIT, OmsJournal

from .test_oms_snapshot import busy_state


class Handed:
    """A journal that keeps what is handed to its snapshot thread, for the test to pack."""

    def __init__(self) -> None:
        self.jobs: list[tuple[int, Callable[[], bytes]]] = []

    def write_snapshot_later(
        self, seq: int, encode: Callable[[], bytes], *, compact: bool = False
    ) -> None:
        assert compact
        self.jobs.append((seq, encode))


def _writer(every: int) -> tuple[OmsJournal, Handed]:
    log = Handed()
    return OmsJournal(log, snapshot_every=every), log  # type: ignore[arg-type]


def test_the_next_snapshot_waits_until_the_last_is_packed() -> None:
    state = busy_state()
    writer, log = _writer(10)
    writer.last_seq = 10
    writer.snapshot_if_due(state.snapshot)
    assert [seq for seq, _ in log.jobs] == [10]
    writer.last_seq = 25
    writer.snapshot_if_due(state.snapshot)  # the one at 10 is not packed yet
    assert [seq for seq, _ in log.jobs] == [10] and writer.snapshots == 1
    payload = log.jobs[0][1]()  # the snapshot thread packs it
    assert payload == msgpack.packb(state.snapshot(), use_bin_type=True)
    writer.last_seq = 26
    writer.snapshot_if_due(state.snapshot)  # taken now, at the latest seq
    assert [seq for seq, _ in log.jobs] == [10, 26] and writer.snapshotted_at == 26


def test_a_failed_pack_does_not_hold_the_next_snapshot_back() -> None:
    writer, log = _writer(10)
    writer.last_seq = 10
    writer.snapshot_if_due(lambda: {"bad": object()})
    with pytest.raises(TypeError):
        log.jobs[0][1]()  # the journal logs and counts it; the next one must still come
    writer.last_seq = 20
    writer.snapshot_if_due(busy_state().snapshot)
    assert [seq for seq, _ in log.jobs] == [10, 20]


def test_past_the_limit_a_snapshot_is_taken_though_the_last_is_not_packed() -> None:
    state = busy_state()
    writer, log = _writer(10)
    writer.last_seq = 10
    writer.snapshot_if_due(state.snapshot)
    writer.last_seq = 10 + _DEFER_LIMIT * 10 - 1
    writer.snapshot_if_due(state.snapshot)
    assert len(log.jobs) == 1
    writer.last_seq += 1
    writer.snapshot_if_due(state.snapshot)
    assert [seq for seq, _ in log.jobs] == [10, 10 + _DEFER_LIMIT * 10]
