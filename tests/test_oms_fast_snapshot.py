"""Hot orders in an incremental snapshot: an unchanged one's map is the previous
snapshot's, a changed one's messages are encoded once, off the OMS's thread."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack

from tradenode.actors import OmsState

# The OMS's packer and its snapshots' memo are what is under test.
from tradenode.actors._oms_journal import pack_snapshot
from tradenode.actors._oms_snapshot import DeferredMessage, RecordMemo, remembering
from tradenode.messages import OrderAccepted, OrderFilled, OrderType, Side, SubmitOrder


def _resting(state: OmsState, coid: str) -> None:
    state.track(
        SubmitOrder(
            client_order_id=coid,
            strategy_id="s1",
            venue="BIN",
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            quantity=Decimal(3),
            price=Decimal(100),
        ),
        1,
    )
    state.submitted(coid, 2)
    state.apply(OrderAccepted(client_order_id=coid, venue="BIN", venue_order_id=f"v-{coid}"), 3)


def _fill(state: OmsState, coid: str, execution_id: str) -> None:
    state.apply(
        OrderFilled(
            client_order_id=coid,
            venue="BIN",
            venue_order_id=f"v-{coid}",
            execution_id=execution_id,
            symbol="BTCUSDT",
            side=Side.BUY,
            last_quantity=Decimal(1),
            last_price=Decimal(100),
        ),
        4,
    )


def _take(state: OmsState, memo: RecordMemo) -> dict[str, Any]:
    with remembering(memo):
        plain = state.snapshot()
    assert pack_snapshot(plain) == msgpack.packb(state.snapshot(), use_bin_type=True)
    return plain


def test_an_unchanged_hot_order_reuses_its_map_and_a_changed_one_its_messages() -> None:
    state = OmsState()
    memo = RecordMemo()
    for coid in ("a", "b"):
        _resting(state, coid)
    _fill(state, "b", "x1")
    first = _take(state, memo)
    hot = {entry["venue_order_id"]: entry for entry in first["hot"]}
    assert set(hot) == {"v-a", "v-b"}
    assert all(type(entry["order"]) is DeferredMessage for entry in hot.values())

    _fill(state, "b", "x2")
    second = _take(state, memo)
    again = {entry["venue_order_id"]: entry for entry in second["hot"]}
    assert again["v-a"] is hot["v-a"]
    assert again["v-b"] is not hot["v-b"]
    assert again["v-b"]["order"] is hot["v-b"]["order"]
    assert again["v-b"]["fills"][0][1] is hot["v-b"]["fills"][0][1]
    assert len(again["v-b"]["fills"]) == 2
    assert again["v-b"]["filled"] == "2"


def test_a_hot_order_that_completed_leaves_the_hot_section() -> None:
    state = OmsState()
    memo = RecordMemo()
    _resting(state, "a")
    _take(state, memo)
    _fill(state, "a", "x1")
    _fill(state, "a", "x2")
    _fill(state, "a", "x3")
    plain = _take(state, memo)
    assert plain["hot"] == []
    assert [entry[0] for entry in plain["completed"]] == ["a"]
