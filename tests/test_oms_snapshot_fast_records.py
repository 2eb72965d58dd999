"""Completed orders' records written by one expression (``encode_record``, and the
message rows ``_row_function`` writes) are the bytes of the field-by-field encoders."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from tradenode.actors import JournalEntry, OmsState

# The record encoders and their field-by-field references are what is under test.
from tradenode.actors._oms_snapshot import (
    _FILL_ROWS,
    _ORDER_ROWS,
    RECORD_NAMES,
    SCHEMA,
    StoredOrder,
    checked_record,
    encode_record,
)
from tradenode.messages import LiquiditySide, OrderFilled, OrderType, Side, SubmitOrder, TimeInForce

from .test_journal_entries import call_directly, oms_calls, quiet_oms


def _orders(state: OmsState) -> list[Any]:
    orders = [*state._hot.values(), *state._completed.values()]
    return [order for order in orders if not isinstance(order, StoredOrder)]


@settings(max_examples=80, deadline=None)
@given(calls=oms_calls(max_size=120), capacity=st.sampled_from((0, 3, 50)))
def test_records_and_rows_are_the_field_by_field_bytes(
    calls: list[JournalEntry], capacity: int
) -> None:
    state = OmsState(completed_capacity=capacity, latency_window=4)
    with quiet_oms():
        for call in calls:
            call_directly(state, call)
            for order in _orders(state):
                values = order.values()
                assert encode_record(values) == checked_record(values)
                assert _ORDER_ROWS.row(values[0]) == _ORDER_ROWS.checked_row(values[0])
                for _, fill in values[RECORD_NAMES.index("fills")]:
                    assert _FILL_ROWS.row(fill) == _FILL_ROWS.checked_row(fill)


def test_encode_record_is_written_for_these_field_kinds() -> None:
    """A tripwire: ``encode_record`` converts each value by hand, for these kinds; a
    field added, moved or retyped must be written into it (and the schema's version)."""
    assert SCHEMA["order"] == [
        ["order", "row SubmitOrder"],
        ["status", "enum OrderStatus"],
        ["resume_status", "enum OrderStatus?"],
        ["filled", "decimal"],
        ["fill_notional", "decimal"],
        ["commission", "decimal"],
        ["fills", "[int, row OrderFilled] list"],
        ["venue_order_id", "str?"],
        ["created_ns", "int"],
        ["submitted_ns", "int?"],
        ["accepted_ns", "int?"],
        ["first_fill_ns", "int?"],
        ["last_update_ns", "int"],
        ["replacement_of", "str?"],
        ["replaced_by", "str?"],
        ["carried_at_link", "decimal"],
        ["predecessors_filled", "decimal"],
        ["denial_code", "enum DenialCode?"],
        ["rejection_code", "str?"],
        ["reason", "str?"],
    ]


_positive = st.sampled_from((D("0.001"), D("1.10"), D("100"), D("2E+3")))


@st.composite
def _any_submit_order(draw: st.DrawFn) -> SubmitOrder:
    """Orders with any of the optional fields set (the OMS's own runs set few), each
    where its order type and time in force take it."""
    order_type = draw(st.sampled_from(OrderType))
    time_in_force = draw(st.sampled_from(TimeInForce))
    quantity = draw(st.sampled_from((D("0.001"), D("3"), D("1.50"))))
    limit_gtc = order_type is OrderType.LIMIT and time_in_force is TimeInForce.GTC
    try:
        return SubmitOrder(
            client_order_id=draw(st.sampled_from(("a-1", "b-2", "x" * 30))),
            strategy_id="s1",
            venue="BIN",
            symbol="BTCUSDT",
            side=draw(st.sampled_from(Side)),
            order_type=order_type,
            quantity=quantity,
            price=None
            if order_type is OrderType.MARKET
            else draw(_positive)
            if order_type.needs_price
            else draw(st.none() | _positive),
            stop_price=draw(_positive) if order_type.needs_stop_price else None,
            trailing_offset=draw(_positive) if order_type is OrderType.TRAILING_STOP else None,
            time_in_force=time_in_force,
            expire_time_ns=draw(st.integers(1, 2**62))
            if time_in_force is TimeInForce.GTD
            else None,
            post_only=order_type is OrderType.LIMIT and draw(st.booleans()),
            reduce_only=draw(st.booleans()),
            parent_id=draw(st.none() | st.just("p-1")),
            route=draw(st.none() | st.just("best: BIN")),
            display_quantity=quantity / 2 if limit_gtc and draw(st.booleans()) else None,
        )
    except ValueError:
        reject()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    order=_any_submit_order(),
    liquidity=st.sampled_from(LiquiditySide),
    asset=st.none() | st.just("BNB"),
)
def test_rows_of_messages_with_any_optional_field_are_the_field_by_field_ones(
    order: SubmitOrder, liquidity: LiquiditySide, asset: str | None
) -> None:
    assert _ORDER_ROWS.row(order) == _ORDER_ROWS.checked_row(order)
    fill = OrderFilled(
        client_order_id=order.client_order_id,
        venue="BIN",
        venue_order_id="v-1",
        execution_id="x-1",
        symbol="BTCUSDT",
        side=order.side,
        last_quantity=order.quantity,
        last_price=D("101.5"),
        commission=D("0.01"),
        commission_asset=asset,
        liquidity=liquidity,
    )
    assert _FILL_ROWS.row(fill) == _FILL_ROWS.checked_row(fill)
