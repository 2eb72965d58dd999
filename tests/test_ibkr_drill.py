"""A node SIGKILLed while TWS holds its placement (issue #14 acceptance).

The out-of-process drill (``tradenode.testing.campaign``) against a local TWS
in a process of its own: the node places an order, TWS holds the message
(``delay_orders``: nothing on that connection is read past it, as TWS reads
a connection in order), the node is SIGKILLed, and the placement reaches
the account only afterwards. The next process maps IB order ids back from
its journal, asks TWS by ``orderRef`` before anything else, and ends with
one order per client id, every execution once and positions equal to the
account's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tradenode.testing.campaign import run_campaign

from ._ibkr_helpers import IbkrCampaignVenue


@pytest.mark.crash
@pytest.mark.timeout(300)
def test_a_placement_held_past_the_nodes_death_ends_as_one_order(tmp_path: Path) -> None:
    summary = run_campaign(
        IbkrCampaignVenue(), seed=11, workdir=tmp_path, scenario="held-placement"
    )
    killed = [record for record in summary.incarnations if record.held_at_kill]
    assert killed, [record.injected for record in summary.incarnations]
    for record in killed:
        assert record.returncode == -9
        for held in record.held_at_kill:
            assert held in record.in_flight  # the dead node's journal left it pending
    report = "\n".join(result.line() for result in summary.invariants)
    for name in (
        "held_placements_once",
        "one_order_per_client_id",
        "fills_exactly_once",
        "open_orders_agree",
        "positions_match_balances",
        "journal_sound",
        "deaths_as_planned",
    ):
        assert summary.result(name).passed, report
