"""OmsState.snapshot / OmsState.restore: a restored state behaves exactly like the original."""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode.actors import JournalEntry, OmsSnapshotError, OmsState

# The snapshot format's version number is what is under test.
from tradenode.actors._oms_state import OMS_SNAPSHOT_VERSION
from tradenode.messages import (
    DenialCode,
    OrderAccepted,
    OrderFilled,
    OrderType,
    Side,
    SubmitOrder,
)

from .test_journal_entries import call_directly, observe, oms_calls, quiet_oms, small_state

D = Decimal


def _order(
    coid: str, side: Side = Side.BUY, quantity: str = "3", strategy: str = "s1"
) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id=strategy,
        venue="BIN",
        symbol="BTCUSDT",
        side=side,
        order_type=OrderType.LIMIT,
        quantity=D(quantity),
        price=D("100"),
    )


def _fill(coid: str, xid: str, quantity: str, price: str, side: Side = Side.BUY) -> OrderFilled:
    return OrderFilled(
        client_order_id=coid,
        venue="BIN",
        venue_order_id=f"v-{coid}",
        execution_id=xid,
        symbol="BTCUSDT",
        side=side,
        last_quantity=D(quantity),
        last_price=D(price),
        commission=D("0.001"),
        commission_asset=None if xid.endswith("0") else "BNB",
    )


def busy_state() -> OmsState:
    """Hot and completed orders, a replace chain, a denial, thirds in the average price."""
    state = OmsState(completed_capacity=2, latency_window=3)
    for number in range(4):
        coid = f"o-{number}"
        state.register(_order(coid, strategy=f"s{number % 2}"), 10 * number)
        state.mark_submitted(coid, 10 * number + 1)
        state.apply(
            OrderAccepted(client_order_id=coid, venue="BIN", venue_order_id=f"v-{coid}"),
            10 * number + 2,
        )
    state.apply(_fill("o-0", "x0", "3", "100"), 50)  # o-0 filled and completed
    state.apply(_fill("o-1", "x1", "1", "101"), 51)
    state.apply(_fill("o-1", "x2", "2", "103"), 52)  # average 307/3
    state.apply(_fill("o-2", "x3", "1", "99"), 53)
    state.mark_pending_replace("o-2", 54)
    state.link_replacement("o-2", _order("o-2r", quantity="5", strategy="s0"), 54)
    state.mark_submitted("o-2r", 55)
    state.register(_order("o-9", side=Side.SELL), 56)
    state.mark_denied("o-9", DenialCode.MAX_POSITION, "too big", 56)
    state.mark("BIN", "BTCUSDT", D("104.10"))
    return state


def _plain_only(value: object) -> None:
    """Snapshots hold only what msgpack packs as it is: no Decimal, Fraction or enum objects."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            _plain_only(item)
    elif isinstance(value, list):
        for item in value:
            _plain_only(item)
    else:
        assert value is None or type(value) in (str, int, bool, bytes), repr(value)


def _through_msgpack(plain: dict[str, Any]) -> Any:
    return msgpack.unpackb(msgpack.packb(plain))


def test_a_snapshot_is_plain_data_with_a_version() -> None:
    plain = busy_state().snapshot()
    _plain_only(plain)
    assert plain["version"] == OMS_SNAPSHOT_VERSION == 2
    assert _through_msgpack(plain) == plain
    assert len(plain["completed"]) == 2  # o-1 and the denied o-9; o-0 is forgotten
    average = plain["positions"]["by_strategy"]
    assert any(position[3]["average_price"] == "307/3" for position in average)


def test_restore_rebuilds_every_view_of_the_state() -> None:
    state = busy_state()
    restored = OmsState.restore(_through_msgpack(state.snapshot()))
    assert observe_busy(restored) == observe_busy(state)
    assert restored.snapshot() == state.snapshot()
    assert restored.counts() == state.counts()
    # The exact average survives: the next fill moves it the same way.
    for target in (state, restored):
        target.apply(_fill("o-1", "x9", "1", "100.5", side=Side.BUY), 60)
    assert restored.positions(by_strategy=True) == state.positions(by_strategy=True)


def observe_busy(state: OmsState) -> dict[str, Any]:
    ids = ("o-0", "o-1", "o-2", "o-2r", "o-3", "o-9")
    return {
        "views": [state.get(coid) for coid in ids],
        "logical": [state.logical_order(coid) for coid in ids],
        "fills": state.fills(),
        "open": state.open_orders(),
        "positions": state.positions(),
        "by_strategy": state.positions(by_strategy=True),
        "commissions": [state.commissions("BIN", "BTCUSDT", s) for s in (None, "s0", "s1")],
        "metrics": state.metrics(),
        "counts": state.counts(),
    }


def test_restore_keeps_the_capacity_and_the_lru_order() -> None:
    state = busy_state()
    restored = OmsState.restore(state.snapshot())
    # Completing o-3 pushes the least recently used completed order out of both.
    for target in (state, restored):
        target.apply(_fill("o-3", "x7", "3", "100"), 70)
        assert target.counts().completed == 2
        assert target.get("o-1") is None  # least recently used: forgotten
        assert target.get("o-9") is not None
        assert target.get("o-3") is not None
    assert restored.snapshot() == state.snapshot()
    restored_window = OmsState.restore(state.snapshot()).snapshot()
    assert (restored_window["completed_capacity"], restored_window["latency_window"]) == (2, 3)


def test_restore_refuses_other_versions() -> None:
    plain = busy_state().snapshot()
    for version in (0, 3, "1", "2", None, True):
        with pytest.raises(OmsSnapshotError, match="unsupported snapshot version"):
            OmsState.restore({**plain, "version": version})
    del plain["version"]
    with pytest.raises(ValueError, match=r"version None \(this code reads versions 1, 2\)"):
        OmsState.restore(plain)
    with pytest.raises(ValueError, match="is a mapping, not list"):
        OmsState.restore([])  # type: ignore[arg-type]


def _broken(change: Any) -> dict[str, Any]:
    plain = copy.deepcopy(busy_state().snapshot())
    change(plain)
    return plain


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda p: p.pop("hot"), "snapshot has no 'hot'"),
        (lambda p: p["hot"][0].pop("filled"), "snapshot has no 'filled'"),
        (lambda p: p.update(fill_sequence="3"), "fill_sequence: expected int, got str"),
        (lambda p: p.update(completed_capacity=-1), "completed_capacity"),
        (lambda p: p["hot"][0].update(status="LOST"), "'LOST' is not a valid OrderStatus"),
        (lambda p: p["hot"][0].update(filled="1.2.3"), "malformed snapshot"),
        (lambda p: p["hot"][0].update(filled="NaN"), r"hot\[0\]\.filled: 'NaN' is not a finite"),
        (lambda p: p["hot"][0].update(order=b"\x00"), "malformed snapshot"),
        (lambda p: p["hot"][0].update(created_ns=True), r"hot\[0\]\.created_ns: expected int"),
        (lambda p: p["hot"][0]["fills"][0].pop(), r"hot\[0\]\.fills\[0\]: expected \[sequence"),
        (lambda p: p["completed"].append(p["completed"][0]), r"completed\[2\]: o-1 appears twice"),
        (lambda p: p["completed"].append(["o-3", *p["completed"][0][1:]]), "o-3 appears twice"),
        (lambda p: p["completed"].append(p["hot"][0]), r"expected \[client_order_id, status, rec"),
        (lambda p: p["completed"][0].__setitem__(1, "LOST"), "'LOST' is not an order status"),
        (lambda p: p["completed"][0].__setitem__(2, "rec"), r"completed\[0\]: expected \[client"),
        (lambda p: p.pop("schema"), "snapshot has no 'schema'"),
        (lambda p: p["executions"][0].pop(), r"executions\[0\]: expected 3 items"),
        (lambda p: p["positions"]["net"][0][2].update(average_price="1/0"), "malformed"),
        (lambda p: p["positions"]["marks"][0].__setitem__(2, "-1"), "greater than zero"),
        (lambda p: p["metrics"].update(ack_latencies=[1, "2"]), "metrics.ack_latencies"),
        (lambda p: p["open_by_venue"].append(["BIN"]), r"expected \[venue, count\]"),
    ],
)
def test_restore_refuses_a_malformed_snapshot_with_value_error(change: Any, match: str) -> None:
    with pytest.raises(OmsSnapshotError, match=match):
        OmsState.restore(_broken(change))


def test_snapshot_does_not_change_the_state() -> None:
    state = busy_state()
    before = observe_busy(state)
    state.snapshot()
    assert observe_busy(state) == before
    assert OmsState().snapshot() == OmsState.restore(OmsState().snapshot()).snapshot()


def test_fractions_and_decimals_survive_exactly() -> None:
    state = OmsState()
    state.register(_order("a", quantity="3"), 1)
    state.mark_submitted("a", 2)
    for number, price in enumerate(("1", "1", "2")):
        state.apply(_fill("a", f"y{number}", "1", price), 3)
    plain = state.snapshot()
    net = plain["positions"]["net"][0][2]
    assert Fraction(net["average_price"]) == Fraction(4, 3)
    restored = OmsState.restore(plain)
    assert restored.position("BIN", "BTCUSDT") == state.position("BIN", "BTCUSDT")
    view = restored.get("a")
    assert view is not None and str(view.commission) == "0.003"


@settings(max_examples=120, deadline=None)
@given(calls=oms_calls(max_size=70), data=st.data())
def test_a_restored_state_behaves_like_the_original_for_every_later_call(
    calls: list[JournalEntry], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(calls)), label="snapshot after")
    with quiet_oms():
        original = small_state()
        for call in calls[:cut]:
            call_directly(original, call)
        plain = original.snapshot()
        restored = OmsState.restore(_through_msgpack(plain))
        assert restored.snapshot() == plain
        assert observe(restored) == observe(original)
        for call in calls[cut:]:
            assert call_directly(restored, call) == call_directly(original, call), call
        assert observe(restored) == observe(original)
        assert restored.snapshot() == original.snapshot()


def test_the_snapshot_covers_every_field_the_state_has() -> None:
    """A tripwire: a new field must be added to snapshot/restore (and may need a version bump)."""
    # The private fields of the state's pieces are what the tripwire watches.
    from tradenode.actors import _oms_state, _positions

    assert set(vars(OmsState())) == {
        "_completed_capacity",
        "_hot",
        "_completed",
        "_executions",
        "_open_by_venue",
        "_positions",
        "_metrics",
        "_fill_sequence",
        "_balance_baselines",
        "_fees_paid",
        "_venue_cursors",
        "_acceptance_windows",
        "_arrivals",
        "parents",
        # Not state: which orders the next incremental snapshot must compare (a
        # restored state has none, so its first one compares every order).
        "_looked_up",
    }
    plain = busy_state().snapshot()
    assert set(_oms_state._Order.__slots__) == set(plain["hot"][0])
    assert set(_oms_state._Metrics.__slots__) == set(plain["metrics"])
    assert set(_positions._Position.__slots__) == set(plain["positions"]["net"][0][2])
    assert set(_positions.PositionBook.__slots__) == {"_net", "_by_strategy", "_marks"}
    assert set(plain["positions"]) == {"net", "by_strategy", "marks"}


def test_balance_baselines_survive_a_snapshot_and_a_damaged_one_is_refused() -> None:
    state = OmsState()
    state.set_balance_baseline("binance", "BTC", Decimal("-0.25"))
    state.set_balance_baseline("binance", "ETH", Decimal("3"))
    plain = msgpack.unpackb(msgpack.packb(state.snapshot(), use_bin_type=True), raw=False)
    restored = OmsState.restore(plain)
    assert restored.balance_baseline("binance", "BTC") == Decimal("-0.25")
    assert restored.balance_baseline("binance", "ETH") == Decimal("3")
    assert restored.balance_baseline("binance", "SOL") is None
    older = {key: value for key, value in plain.items() if key != "balance_baselines"}
    assert OmsState.restore(older).balance_baseline("binance", "BTC") is None
    for damaged, match in (
        ([["binance", "BTC"]], "expected \\[venue, asset, quantity\\]"),
        ([["binance", "BTC", "NaN"]], "not a finite decimal"),
        ([["binance", "BTC", "lots"]], "malformed snapshot"),
    ):
        with pytest.raises(OmsSnapshotError, match=match):
            OmsState.restore({**plain, "balance_baselines": damaged})


def test_fees_paid_per_asset_add_up_and_survive_a_snapshot() -> None:
    state = busy_state()
    # busy_state's fills pay 0.001 each, in BNB but for execution ids ending in 0.
    paid = state.fees_paid("BIN", "BNB")
    assert paid > 0 and state.fees_paid("BIN", "BTC") == 0
    plain = msgpack.unpackb(msgpack.packb(state.snapshot(), use_bin_type=True), raw=False)
    assert OmsState.restore(plain).fees_paid("BIN", "BNB") == paid
    older = {key: value for key, value in plain.items() if key != "fees_paid"}
    assert OmsState.restore(older).fees_paid("BIN", "BNB") == 0
    with pytest.raises(OmsSnapshotError, match="not a finite decimal"):
        OmsState.restore({**plain, "fees_paid": [["BIN", "BNB", "Infinity"]]})
    # A repeated execution pays nothing twice.
    again = state.apply(_fill("o-1", "x1", "1", "101"), 90)
    assert again.ignored and state.fees_paid("BIN", "BNB") == paid


def test_venue_cursors_and_acceptance_windows_survive_a_snapshot() -> None:
    state = OmsState()
    state.set_venue_cursor("binance", "trades/BTCUSDT", "41")
    state.set_venue_cursor("binance", "trades/BTCUSDT", "42")
    state.set_venue_cursor("binance", "orders/ETHUSDT", "7")
    state.set_venue_cursor("okx", "fills", "abc")
    state.set_acceptance_window("binance", Decimal("6"))
    plain = msgpack.unpackb(msgpack.packb(state.snapshot(), use_bin_type=True), raw=False)
    restored = OmsState.restore(plain)
    assert restored.venue_cursors("binance") == {"trades/BTCUSDT": "42", "orders/ETHUSDT": "7"}
    assert restored.venue_cursors("okx") == {"fills": "abc"}
    assert restored.acceptance_window("binance") == Decimal("6")
    assert restored.acceptance_window("okx") is None
    older = {k: v for k, v in plain.items() if k not in ("venue_cursors", "acceptance_windows")}
    assert OmsState.restore(older).venue_cursors("binance") == {}
    for key, damaged, match in (
        ("venue_cursors", [["binance", "trades/X"]], "expected \\[venue, scope, cursor\\]"),
        ("venue_cursors", [["binance", "trades/X", 5]], "malformed snapshot"),
        ("acceptance_windows", [["binance", "-1"]], "finite decimal >= 0"),
        ("acceptance_windows", [["binance"]], "expected \\[venue, seconds\\]"),
    ):
        with pytest.raises(OmsSnapshotError, match=match):
            OmsState.restore({**plain, key: damaged})
