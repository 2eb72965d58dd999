"""Snapshot packing that costs what changed: entries keep their packed bytes, and the
bytes of a snapshot stay those of ``msgpack.packb`` of its plain data."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import JournalEntry, OmsState

# The OMS's packer, its memo and the entries it keeps packed are what is under test.
from tradenode.actors._oms_journal import pack_snapshot
from tradenode.actors._oms_snapshot import PackedEntry, PackedMap, RecordMemo, remembering
from tradenode.messages import OrderAccepted, OrderFilled, OrderType, Side, SubmitOrder

from .test_journal_entries import oms_calls
from .test_oms_snapshot import busy_state
from .test_oms_snapshot_background import incremental_snapshots


def _order(coid: str) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue="BIN",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.001"),
    )


def _fill(state: OmsState, coid: str) -> None:
    state.apply(OrderAccepted(client_order_id=coid, venue="BIN", venue_order_id=f"v-{coid}"), 3)
    state.apply(
        OrderFilled(
            client_order_id=coid,
            venue="BIN",
            venue_order_id=f"v-{coid}",
            execution_id=f"x-{coid}",
            symbol="BTCUSDT",
            side=Side.BUY,
            last_quantity=Decimal("0.001"),
            last_price=Decimal(100),
        ),
        4,
    )


def _large_state(completed: int, hot: int) -> OmsState:
    """More completed and hot orders than the packer packs in one call (``_PACK_CHUNK``)."""
    state = OmsState()
    for number in range(completed + hot):
        coid = f"o-{number}"
        state.track(_order(coid), 1)
        state.submitted(coid, 2)
        if number < completed:
            _fill(state, coid)
    return state


def _full(state: Any) -> bytes:
    return msgpack.packb(state.snapshot(), use_bin_type=True)


def test_entries_keep_their_packed_bytes_and_the_next_snapshot_reuses_them() -> None:
    state = _large_state(400, 300)
    memo = RecordMemo()
    with remembering(memo):
        first = state.snapshot()
    assert first["completed"] and all(type(entry) is PackedEntry for entry in first["completed"])
    assert all(entry.packed is None for entry in first["completed"])
    assert pack_snapshot(first) == _full(state)
    packed = [entry.packed for entry in first["completed"]]
    assert all(type(piece) is bytes for piece in packed)
    with remembering(memo):
        second = state.snapshot()
    assert [entry.packed for entry in second["completed"]] == packed
    assert all(
        again is entry for again, entry in zip(second["completed"], first["completed"], strict=True)
    )
    assert pack_snapshot(second) == _full(state)
    assert all(type(entry) is PackedMap and entry.packed for entry in second["hot"])
    # A changed order gets a new entry, packed anew; the others keep theirs.
    _fill(state, "o-400")
    state.track(_order("new"), 5)
    with remembering(memo):
        third = state.snapshot()
    assert pack_snapshot(third) == _full(state)
    assert third["completed"][-1][0] == "o-400" and third["completed"][-1].packed
    assert third["completed"][:400] == second["completed"]
    assert all(
        again is entry
        for again, entry in zip(third["completed"][:400], second["completed"], strict=True)
    )


def test_packing_twice_gives_the_same_bytes() -> None:
    state = busy_state()
    with remembering(RecordMemo()):
        plain = state.snapshot()
    assert pack_snapshot(plain) == pack_snapshot(plain) == _full(state)


def test_large_sections_of_any_mix_of_items_pack_like_packb() -> None:
    # The packer picks its way per run of items by the first one: any mix gives packb's bytes.
    kept = PackedEntry(["o-1", "filled", b"\x01\x02"])
    mapped = PackedMap({"a": 1, "b": [1, 2]})
    rows: list[Any] = []
    for index in range(2_000):
        rows.append(
            (kept, mapped, [index, str(index)], index, None)[index % 5 if index < 1_000 else 2]
        )
    plain = {"completed": rows, "hot": [mapped] * 300, "small": [kept, mapped]}
    expected = msgpack.packb(plain, use_bin_type=True)
    assert pack_snapshot(plain) == expected
    assert pack_snapshot(plain) == expected  # with the kept bytes
    assert kept.packed == msgpack.packb(["o-1", "filled", b"\x01\x02"], use_bin_type=True)


@settings(max_examples=40, deadline=None)
@given(calls=oms_calls(max_size=150), cuts=st.lists(st.floats(0.0, 1.0), max_size=5))
def test_incremental_snapshots_packed_with_kept_bytes_are_full_ones(
    calls: list[JournalEntry], cuts: list[float]
) -> None:
    """Every snapshot packed (so entries keep their bytes) before the next is taken:
    a kept entry's bytes are reused only while its order is unchanged."""
    for state, incremental in incremental_snapshots(calls, cuts):
        assert pack_snapshot(incremental) == _full(state)
