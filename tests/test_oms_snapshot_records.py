"""Version 2 snapshots: completed orders kept as records and decoded on first use.

A restored state must behave exactly like the original whatever touches a
completed order first (a query, a late report, being forgotten, the next
snapshot), and a damaged record must fail loudly, at restore when it can be
known there and when the order is first touched otherwise.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import EntryKind, JournalEntry, OmsError, OmsSnapshotError, OmsState, replay

# The snapshot's record layout and lazy records are what is under test.
from tradenode.actors._oms_snapshot import RECORD_NAMES, SCHEMA, StoredOrder, order_to_plain

# An order's internal record, to compare a restored one field by field.
from tradenode.actors._oms_state import _Order
from tradenode.messages import OrderCanceled, OrderFilled, OrderStatus, Side, SubmitOrder

from .test_journal_entries import call_directly, observe, oms_calls, quiet_oms, small_state
from .test_oms_snapshot import _fill, _order, _through_msgpack, busy_state, observe_busy


def _undecoded(state: OmsState) -> set[str]:
    return {coid for coid, tracked in state._completed.items() if isinstance(tracked, StoredOrder)}


def _restored() -> tuple[OmsState, OmsState, dict[str, Any]]:
    original = busy_state()
    plain = _through_msgpack(original.snapshot())
    return original, OmsState.restore(plain), plain


def _field_at(message: type[Any], name: str) -> int:
    return [field for field, _ in SCHEMA[message.__name__]].index(name)


def _rewrite_record(plain: dict[str, Any], index: int, change: Callable[[list[Any]], None]) -> None:
    """Changes one completed order's record as a buggy writer or another build could have."""
    client_order_id, status, record = plain["completed"][index]
    row = msgpack.unpackb(record)
    change(row)
    plain["completed"][index] = [client_order_id, status, msgpack.packb(row)]


def as_version_1(state: OmsState) -> dict[str, Any]:
    """What the previous build's snapshot() wrote: completed orders as maps like hot ones."""
    plain = state.snapshot()
    del plain["schema"]
    plain["version"] = 1
    plain["completed"] = [
        order_to_plain(tracked.values())
        for tracked in state._completed.values()
        if isinstance(tracked, _Order)
    ]
    assert len(plain["completed"]) == len(state._completed)
    return plain


# Decoded on first use ---------------------------------------------------------------------


def test_restore_keeps_completed_orders_as_records_and_snapshots_them_again_as_they_were() -> None:
    original, restored, plain = _restored()
    assert _undecoded(restored) == {"o-1", "o-9"}
    # Whatever does not look at a completed order leaves it alone.
    assert restored.counts() == original.counts()
    assert restored.metrics() == original.metrics()
    assert restored.open_orders() == original.open_orders()
    assert restored.positions(by_strategy=True) == original.positions(by_strategy=True)
    again = restored.snapshot()
    assert again == plain == original.snapshot()
    for before, after in zip(plain["completed"], again["completed"], strict=True):
        assert after[2] is before[2]  # the record itself, not an encoding of a decoded order
    assert _undecoded(restored) == {"o-1", "o-9"}


def test_get_decodes_one_order_into_a_plain_order() -> None:
    original, restored, plain = _restored()
    assert restored.get("o-9") == original.get("o-9")
    assert _undecoded(restored) == {"o-1"}
    assert type(restored._completed["o-9"]) is _Order
    assert restored.logical_order("o-1") == original.logical_order("o-1")
    assert _undecoded(restored) == set()
    assert restored.snapshot() == original.snapshot() == plain


def test_fills_of_one_order_decode_only_its_fills() -> None:
    original, restored, plain = _restored()
    assert restored.fills("o-1") == original.fills("o-1")
    tracked = restored._completed["o-1"]
    assert isinstance(tracked, StoredOrder) and tracked.fills_decoded
    handed_out = tracked.fills
    assert restored.snapshot() == plain
    assert restored.get("o-1") == original.get("o-1")
    # Decoding the rest keeps the very list the state may already have appended to.
    decoded = restored._completed["o-1"]
    assert type(decoded) is _Order
    assert decoded.fills is handed_out


def test_all_fills_in_order_from_restored_records() -> None:
    original, restored, _ = _restored()
    assert restored.fills() == original.fills()
    assert observe_busy(restored) == observe_busy(original)


def test_forgetting_an_undecoded_order_decodes_only_its_fills_and_drops_its_executions() -> None:
    original, restored, _ = _restored()
    least_recent = restored._completed["o-1"]
    for target in (original, restored):
        target.apply(_fill("o-3", "x7", "3", "100"), 70)  # completes o-3, forgets o-1
    assert "o-1" not in restored._completed
    assert isinstance(least_recent, StoredOrder) and least_recent.fills_decoded
    assert restored.counts() == original.counts()
    late = _fill("o-1", "x1", "1", "101")  # o-1's own execution, now an unknown order's
    assert restored.apply(late, 71) == original.apply(late, 71)
    assert restored.snapshot() == original.snapshot()


def test_a_late_report_for_an_undecoded_order_is_handled_like_the_original() -> None:
    original, restored, _ = _restored()
    duplicate = _fill("o-1", "x2", "2", "103")
    cancel = OrderCanceled(client_order_id="o-9", venue="BIN")
    for report in (duplicate, cancel):
        assert restored.apply(report, 80) == original.apply(report, 80)
    assert restored.snapshot() == original.snapshot()
    assert observe_busy(restored) == observe_busy(original)


@pytest.mark.parametrize("lazy", [True, False])
@settings(max_examples=100, deadline=None)
@given(calls=oms_calls(max_size=70), data=st.data())
def test_later_calls_on_untouched_records_match_the_original(
    lazy: bool, calls: list[JournalEntry], data: st.DataObject
) -> None:
    """Unlike the snapshot property test, nothing looks at the restored state before the calls."""
    cut = data.draw(st.integers(0, len(calls)), label="snapshot after")
    with quiet_oms():
        original = small_state()
        for call in calls[:cut]:
            call_directly(original, call)
        restored = OmsState.restore(_through_msgpack(original.snapshot()), lazy=lazy)
        if not lazy:
            assert _undecoded(restored) == set()
        for call in calls[cut:]:
            assert call_directly(restored, call) == call_directly(original, call), call
        assert restored.snapshot() == original.snapshot()
        assert observe(restored) == observe(original)


# Damaged records -----------------------------------------------------------------------------


def _quantity(value: str) -> Callable[[list[Any]], None]:
    def change(row: list[Any]) -> None:
        row[0][_field_at(SubmitOrder, "quantity")] = value

    return change


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda p: p["completed"][0].__setitem__(2, b"\xc1"), "the record is not msgpack"),
        (lambda p: p["completed"][0].__setitem__(2, msgpack.packb([1, 2])), "a row of 20 values"),
        (lambda p: p["completed"][0].__setitem__(0, "o-9x"), "the record is of order 'o-1'"),
        (lambda p: p["completed"][0].__setitem__(1, "CANCELED"), "the record says 'FILLED'"),
        (lambda p: _rewrite_record(p, 0, _quantity("-1")), "quantity.*greater than zero"),
        (lambda p: _rewrite_record(p, 0, _quantity("NaN")), "quantity: 'NaN' is not a finite"),
        (lambda p: _rewrite_record(p, 0, lambda row: row.__setitem__(1, 7)), "the record says 7"),
        (
            lambda p: _rewrite_record(p, 0, lambda row: row.__setitem__(3, 1.5)),
            "filled: expected a decimal string, got float",
        ),
        (
            lambda p: _rewrite_record(p, 0, lambda row: row[6][0].pop()),
            r"fills: a fill is \[sequence, row\]",
        ),
        (
            lambda p: _rewrite_record(p, 0, lambda row: row[6][0][1].pop()),
            "fills: a OrderFilled is a row of 12 values",
        ),
    ],
)
def test_a_damaged_record_fails_when_touched_or_at_an_eager_restore(
    change: Callable[[dict[str, Any]], None], detail: str
) -> None:
    plain = copy.deepcopy(busy_state().snapshot())
    change(plain)
    client_order_id = plain["completed"][0][0]
    restored = OmsState.restore(plain)
    message = f"completed order {client_order_id} restored from a snapshot is damaged: .*{detail}"
    for _ in range(2):  # a failed decode leaves nothing half done
        with pytest.raises(OmsSnapshotError, match=message):
            restored.get(client_order_id)
    assert restored.get("o-9") is not None  # the others still read
    with pytest.raises(
        OmsSnapshotError, match=rf"completed\[0\] \({client_order_id}\): .*{detail}"
    ):
        OmsState.restore(plain, lazy=False)


def test_a_damaged_record_stops_replay_instead_of_counting_as_refused() -> None:
    plain = copy.deepcopy(busy_state().snapshot())
    plain["completed"][0][2] = b"\xc1"
    assert not issubclass(OmsSnapshotError, OmsError)  # replay swallows those
    assert issubclass(OmsSnapshotError, ValueError)
    replace = JournalEntry(
        kind=EntryKind.LINK_REPLACEMENT,
        ts_ns=90,
        client_order_id="o-1",
        message=_order("o-1r", quantity="5"),
    )
    report = JournalEntry(
        kind=EntryKind.REPORT, ts_ns=90, message=OrderCanceled(client_order_id="o-1", venue="BIN")
    )
    for entry in (replace, report):
        with pytest.raises(OmsSnapshotError, match="completed order o-1"):
            replay([entry], state=OmsState.restore(plain))


# Snapshots from other builds -------------------------------------------------------------


def _schema(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    plain = copy.deepcopy(busy_state().snapshot())
    change(plain["schema"])
    return plain


def _reorder_order_rows(plain: dict[str, Any]) -> None:
    """As if SubmitOrder declared its fields in reverse: layout and every record."""
    plain["schema"]["SubmitOrder"].reverse()
    for index in range(len(plain["completed"])):
        _rewrite_record(plain, index, lambda row: row[0].reverse())


def _without_post_only(plain: dict[str, Any]) -> None:
    """As if a build before SubmitOrder.post_only (it has a default) wrote the snapshot."""
    at = _field_at(SubmitOrder, "post_only")
    del plain["schema"]["SubmitOrder"][at]
    for index in range(len(plain["completed"])):
        _rewrite_record(plain, index, lambda row: row[0].pop(at))


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["schema"]["enums"]["Side"].append("SHORT"),
        lambda p: p["schema"]["enums"].pop("TimeInForce"),
        lambda p: p["schema"]["OrderFilled"][0].__setitem__(1, "text"),
        _reorder_order_rows,
        _without_post_only,
    ],
)
def test_records_of_a_build_with_another_schema_are_decoded_at_restore(
    change: Callable[[dict[str, Any]], None],
) -> None:
    original = busy_state()
    plain = copy.deepcopy(original.snapshot())
    change(plain)
    restored = OmsState.restore(plain)
    assert _undecoded(restored) == set()
    assert observe_busy(restored) == observe_busy(original)
    assert restored.snapshot() == original.snapshot()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            lambda s: s["SubmitOrder"].append(["colour", "str"]),
            r"schema\.SubmitOrder: SubmitOrder has no field 'colour'",
        ),
        (lambda s: s["OrderFilled"].pop(0), "OrderFilled rows lack client_order_id"),
        (
            lambda s: s["SubmitOrder"].append(s["SubmitOrder"][1]),
            r"SubmitOrder\.strategy_id appears twice",
        ),
        (lambda s: s["order"].reverse(), "schema.order: completed orders were recorded as"),
        (lambda s: s.pop("OrderFilled"), "snapshot has no 'OrderFilled'"),
        (lambda s: s.__setitem__("SubmitOrder", "row"), "schema.SubmitOrder: expected list"),
    ],
)
def test_a_schema_this_build_cannot_read_is_refused_at_restore(
    change: Callable[[dict[str, Any]], None], match: str
) -> None:
    with pytest.raises(OmsSnapshotError, match=match):
        OmsState.restore(_schema(change))


def test_another_builds_record_this_build_cannot_read_fails_at_restore_not_later() -> None:
    plain = _schema(lambda s: s["enums"]["Side"].append("SHORT"))
    at = _field_at(SubmitOrder, "side")
    _rewrite_record(plain, 1, lambda row: row[0].__setitem__(at, "SHORT"))
    with pytest.raises(OmsSnapshotError, match=r"completed\[1\] \(o-9\): order: SubmitOrder.side"):
        OmsState.restore(plain)


# Version 1 ------------------------------------------------------------------------------


def test_a_version_1_snapshot_still_restores() -> None:
    original = busy_state()
    plain = _through_msgpack(as_version_1(original))
    assert plain["version"] == 1 and isinstance(plain["completed"][0], dict)
    restored = OmsState.restore(plain)
    assert _undecoded(restored) == set()
    assert observe_busy(restored) == observe_busy(original)
    assert restored.snapshot() == original.snapshot()


def test_a_malformed_version_1_snapshot_is_refused_at_restore() -> None:
    plain = as_version_1(busy_state())
    plain["completed"][0]["order"] = b"\x00"
    with pytest.raises(OmsSnapshotError, match="malformed snapshot: a frame is a 4-element array"):
        OmsState.restore(plain)


# Tripwires ------------------------------------------------------------------------------


def test_a_record_covers_every_slot_and_the_schema_every_message_field() -> None:
    """A new field must reach the record layout (and then needs a version bump)."""
    assert sorted(RECORD_NAMES) == sorted(_Order.__slots__)
    assert [name for name, _ in SCHEMA["order"]] == list(RECORD_NAMES)
    for message in (SubmitOrder, OrderFilled):
        fields = [field.name for field in dataclasses.fields(message)]
        assert [name for name, _ in SCHEMA[message.__name__]] == fields
    kinds = {
        kind for section in ("order", "SubmitOrder", "OrderFilled") for _, kind in SCHEMA[section]
    }
    enums = {kind.removeprefix("enum ").rstrip("?") for kind in kinds if kind.startswith("enum ")}
    assert enums == set(SCHEMA["enums"]) >= {"OrderStatus", "DenialCode", "Side"}
    assert SCHEMA["enums"]["OrderStatus"] == [status.value for status in OrderStatus]
    assert SCHEMA["enums"]["Side"] == [side.value for side in Side]


def test_damaged_fills_fail_when_only_the_fills_are_asked_for() -> None:
    plain = copy.deepcopy(busy_state().snapshot())
    _rewrite_record(plain, 0, lambda row: row[6][0][1].__setitem__(0, 3))
    restored = OmsState.restore(plain)
    match = "completed order o-1 restored from a snapshot is damaged: fills: OrderFilled.client"
    with pytest.raises(OmsSnapshotError, match=match):
        restored.fills("o-1")
    with pytest.raises(OmsSnapshotError, match=match):
        restored.fills()
