"""The OMS's event for a routed order skips the risk guard, which approved that very order."""

from __future__ import annotations

from pathlib import Path

from .test_messages_per_order import counting_node, one_order


def test_a_new_orders_routed_event_reaches_the_strategy_but_not_the_risk_guard(
    tmp_path: Path,
) -> None:
    with counting_node(None, tmp_path) as h:
        strategy = h.strategy()[0]
        one_order(h)
        _, counts = one_order(h)
        risk = h.node.directory.risk()
        assert counts[(risk.path, "SubmitOrder")] == 1
        assert counts[(risk.path, "Routed")] == 0
        assert counts[(strategy.path, "Routed")] == 1
