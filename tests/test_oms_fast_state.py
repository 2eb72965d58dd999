"""The OMS state's quiet commands: the same state changes as the ones that answer with views."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from tradenode.actors import DuplicateOrderError, OmsState
from tradenode.messages import OrderAccepted, OrderType, Side, SubmitOrder


def _order(coid: str) -> SubmitOrder:
    return SubmitOrder(
        client_order_id=coid,
        strategy_id="s1",
        venue="BIN",
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        quantity=Decimal(1),
    )


def test_track_and_submitted_leave_the_state_register_and_mark_submitted_leave() -> None:
    loud, quiet = OmsState(), OmsState()
    for number in range(3):
        coid = f"o-{number}"
        loud.register(_order(coid), 10 + number)
        quiet.track(_order(coid), 10 + number)
        assert loud.mark_submitted(coid, 20 + number).applied
        assert quiet.submitted(coid, 20 + number)
    accepted = OrderAccepted(client_order_id="o-1", venue="BIN", venue_order_id="v-1")
    loud.apply(accepted, 30)
    quiet.apply(accepted, 30)
    assert quiet.snapshot() == loud.snapshot()
    assert quiet.get("o-1") == loud.get("o-1")


def test_the_quiet_commands_refuse_and_log_as_the_loud_ones_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = OmsState()
    state.track(_order("o-1"), 1)
    with pytest.raises(DuplicateOrderError):
        state.track(_order("o-1"), 2)
    with caplog.at_level(logging.DEBUG, logger="tradenode.oms"):
        assert not state.submitted("o-2", 3)
        assert state.submitted("o-1", 3)
        assert not state.submitted("o-1", 4)
    assert [record.getMessage() for record in caplog.records] == [
        "mark_submitted o-2 ignored: unknown_order",
        "mark_submitted o-1 ignored: duplicate_report (already SUBMITTED)",
    ]
    view = state.get("o-1")
    assert view is not None
    assert (view.status.value, view.submitted_ns, view.last_update_ns) == ("SUBMITTED", 3, 3)
