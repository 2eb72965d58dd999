"""A TWAP node SIGKILLed after slice 4 finishes on its journal (issue #18 acceptance).

Out of process, as the exactly-once drill runs (``tradenode.testing.campaign``):
the local Binance venue in a process of its own; a ``tradenode run`` process
whose strategy submits a TWAP parent of 10 slices two seconds apart; SIGKILL
as soon as the venue shows slice 4 filled; a new process on the same journal
resumes the parent (its algorithm reads the children from the OMS, which has
them from the journal and the venue's reconciliation) and sends slices 5-10.
Checked against the venue's own books, read as a third party: one placement
per child id (slices 1-4 never sent again), the total executed equal to the
target, never more, and the journal agreeing with the venue fill for fill.
"""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tradenode.messages import ParentState, child_order_id
from tradenode.testing.campaign import (
    BinanceCampaignVenue,
    VenueBooks,
    journal_problems,
    node_config,
    replay_journal,
)

# The campaign's node process handle (stdout watched for "running", SIGKILL, logs):
# the drill reuses it rather than copying it.
from tradenode.testing.campaign._runner import _Node

D = Decimal
REPO = Path(__file__).resolve().parent.parent
PARENT = "drilltwap"
SYMBOL = "BTCUSDT"
TARGET = D("10")
SLICES = 10
SPACING = 2.0  # seconds between slices: room to kill after slice 4 and before slice 5


def _children(books: VenueBooks) -> dict[str, tuple[str, Decimal]]:
    """The parent's children at the venue: client id -> (status, executed quantity)."""
    return {
        order.client_order_id: (order.status, order.filled_quantity)
        for order in books.orders
        if order.client_order_id.startswith(f"{PARENT}-")
    }


def _wait_for(venue: BinanceCampaignVenue, done: str, timeout: float = 60.0) -> VenueBooks:
    """Poll the venue's books (as a third party would) until ``done`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        books = venue.books()
        children = _children(books)
        if done == "slice 4 filled":
            reached = children.get(child_order_id(PARENT, 4), ("", D(0)))[0] == "FILLED"
        else:
            reached = sum(executed for _, executed in children.values()) >= TARGET
        if reached:
            return books
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout}s for {done}; venue has {children}")
        time.sleep(0.05)  # sleep-ok: polls another process's books (no event to wait on), bounded


@pytest.mark.crash
@pytest.mark.timeout(240)
def test_a_twap_node_sigkilled_after_slice_4_finishes_slices_5_to_10(tmp_path: Path) -> None:
    venue = BinanceCampaignVenue(symbols={SYMBOL: "BTC"})
    venue.start(tmp_path, seed=18)
    try:
        journal = tmp_path / "journal"
        config = node_config(venue, venue.draw_settings(None), 15.0, journal, trading=False)
        config["risk"] = {"max_open_orders": 40}
        config["strategies"] = [
            {
                "id": "twap",
                "kind": "tests._execution_helpers:SubmitTwapOnce",
                "venue": venue.name,
                "symbols": [SYMBOL],
                "params": {
                    "parent_id": PARENT,
                    "quantity": str(TARGET),
                    "duration": SPACING * SLICES,
                    "slices": SLICES,
                },
            }
        ]
        path = tmp_path / "node.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        # The node process imports its strategy from this repository's tests package.
        paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        environment = {**venue.node_environment(), "PYTHONPATH": os.pathsep.join(paths)}

        first = _Node(path, "first", environment)
        assert first.wait_ready(60), (tmp_path / "first.log").read_text()
        before = _wait_for(venue, "slice 4 filled")
        first.kill()
        assert first.finish(30) == -signal.SIGKILL
        sent_before = _children(venue.books())
        # Slices 1-4 (slice 5 is due two seconds after slice 4: on a machine stalled
        # that long it may have left too, which changes nothing below).
        assert sorted(sent_before) == sorted(
            child_order_id(PARENT, k) for k in range(1, len(sent_before) + 1)
        ), sent_before
        assert len(sent_before) >= 4
        assert journal_problems(journal) == []
        dead = replay_journal(journal).parents.get(PARENT)
        assert dead is not None and dead.state is ParentState.WORKING
        # The journal holds every child that left (it records one before sending it),
        # perhaps one more that the kill stopped on its way: the next process asks the
        # venue for it before anything is sent again.
        assert dead.children[: len(sent_before)] == [
            child_order_id(PARENT, k) for k in range(1, len(sent_before) + 1)
        ]

        second = _Node(path, "second", environment)
        try:
            assert second.wait_ready(60), (tmp_path / "second.log").read_text()
            _wait_for(venue, "target executed")
            # Let the node hear its last fill and journal the parent's end.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                record = replay_journal(journal).parents.get(PARENT)
                if record is not None and record.state is ParentState.FILLED:
                    break
                time.sleep(0.1)  # sleep-ok: polls the journal file another process writes, bounded
        finally:
            second.process.send_signal(signal.SIGTERM)
            assert second.finish(60) == 0, (tmp_path / "second.log").read_text()

        books = venue.books()
        children = _children(books)
        expected = [child_order_id(PARENT, k) for k in range(1, SLICES + 1)]
        assert sorted(children) == sorted(expected), children
        # One placement per child id: slices 1-4 were never sent again.
        assert {cid: books.submissions[cid] for cid in expected} == dict.fromkeys(expected, 1)
        assert all(status == "FILLED" for status, _ in children.values()), children
        assert sum(executed for _, executed in children.values()) == TARGET
        assert {f.client_order_id for f in before.fills if f.client_order_id in sent_before}
        venue_fills = {
            f.execution_id: f.quantity for f in books.fills if f.client_order_id in children
        }
        assert sum(venue_fills.values()) == TARGET

        state = replay_journal(journal)
        record = state.parents.get(PARENT)
        assert record is not None
        assert record.state is ParentState.FILLED and record.filled == TARGET
        assert record.children == expected
        journaled = {
            f.execution_id: f.last_quantity for f in state.fills() if f.client_order_id in children
        }
        assert journaled == venue_fills  # every venue fill once, nothing extra
        assert journal_problems(journal) == []
    finally:
        venue.stop()
