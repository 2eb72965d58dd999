"""Item 6: the kill switch, 1,000 open orders over two venues, until every cancel is acked.

A node with two venues and the journal on (group commit) rests 1,000 limit
buys 10% under the market, alternating venues, and waits until every one is
accepted. Then ``node.kill_switch()`` (risk guard HALTED, the OMS sends a
cancel per open order, each waits for its journal record to be durable, and
the switch returns when the venue has confirmed every cancel). Figure: wall
time around ``node.kill_switch()``, median of ``--kill-runs`` fresh nodes;
the node's own ``KillSwitchReport.cancel_seconds`` is in the details.

Two scenarios: two paper venues (the headline), and a paper venue plus the
local Binance venue in a process of its own (one ``DELETE /api/v3/openOrders``
per symbol over the wire; paper: one cancel-all per venue). Floor: bare pykka actors doing the same fan-out (an ask to a "risk" actor,
then an "OMS" actor sends 1,000 cancels alternating over two breaker ->
broker pairs; each broker answers its breaker and reports through its own
mailbox to the OMS, which counts the acks); for the Binance scenario, the
larger of that and a bare httpx client cancelling as many resting orders at
the same venue with 32 requests in flight (the adapter's connection pool).
"""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradenode import Node, parse_config
from tradenode.messages import Side
from tradenode.supervision import SystemClock

from ._binance import bare_cancels, binance_venue_yaml, local_venue
from ._common import GROUP_COMMIT, Options, median, paper_config_text, result, wait_until
from ._floor import BareKillSwitch
from ._instrument import Place, add_placer

NAME = "killswitch"
PRICE = Decimal("45000.00")  # 10% under BTCUSDT's 50,000: the orders rest
QUANTITY = Decimal("0.001")


def _kill(node: Node, venues: tuple[str, str], count: int) -> dict[str, Any]:
    address, placer = add_placer(node, "ks")
    orders = [(venues[n % 2], Side.BUY, QUANTITY, PRICE) for n in range(count)]
    for start in range(0, count, 250):
        place = Place(orders[start : start + 250])
        address.tell(place)
        place.placed.wait(60)
        placer.wait_for("OrderAccepted", place.coids, 120)
    started = time.perf_counter()
    report = node.kill_switch(timeout=120)
    seconds = time.perf_counter() - started
    if report.cancels_confirmed != count or not report.complete:
        raise RuntimeError(f"kill switch incomplete: {report}")
    return {
        "seconds": seconds,
        "report_cancel_seconds": report.cancel_seconds,
        "report_total_seconds": report.total_seconds,
        "open_orders_found": report.open_orders_found,
        "cancels_confirmed": report.cancels_confirmed,
    }


def paper_run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        text = paper_config_text(("paper", "paper2"), journal_dir=Path(tmp) / "journal")
        node = Node(parse_config(text), clock=SystemClock())
        node.start()
        try:
            return _kill(node, ("paper", "paper2"), count)
        finally:
            node.stop(timeout=30)


def paper_binance_run(count: int) -> dict[str, Any]:
    """The node's kill switch over paper + the local Binance, then in the same venue the
    floor of the wire half: a bare client cancelling as many resting orders."""
    with tempfile.TemporaryDirectory() as tmp, local_venue() as venue:
        text = paper_config_text(("paper",), journal_dir=Path(tmp) / "journal")
        text = text.replace("venues:\n", "venues:\n" + binance_venue_yaml(venue), 1)
        node = Node(parse_config(text), clock=SystemClock())
        node.start()
        try:
            link = node.venues["binance"]
            wait_until(lambda: link.reconciliations >= 1, 30, "the Binance broker to connect")
            figures = _kill(node, ("paper", "binance"), count)
        finally:
            node.stop(timeout=30)
        figures["bare_wire_cancel_all_s"] = bare_cancels(venue, count // 2, cancel_all=True)
        figures["bare_wire_cancels_s"] = bare_cancels(venue, count // 2)
        return figures


def run(options: Options) -> list[dict[str, Any]]:
    count = options.kill_orders
    bare = BareKillSwitch()
    try:
        bare.run(count)  # warm up
        floors = []
        paper = []
        for _ in range(options.kill_runs):
            floors.append(bare.run(count))
            paper.append(paper_run(count))
        mixed = [paper_binance_run(count) for _ in range(max(1, options.kill_runs // 2))]
        floors.append(bare.run(count))
    finally:
        bare.stop()
    floor_ms = median(floors) * 1000
    notes = (
        f"{count} resting limit orders, half on each venue; journal {GROUP_COMMIT};"
        " wall time of node.kill_switch(); floor: the same fan-out through bare pykka actors"
    )
    return [
        result(
            f"{NAME}.two_paper_venues",
            f"kill switch, {count} open orders over two paper venues (median)",
            value=median([r["seconds"] for r in paper]) * 1000,
            unit="ms",
            floor=floor_ms,
            target=("<=", 250.0, "value"),
            target_text="<= 250 ms",
            notes=notes,
            details={"runs": paper, "floor_runs_s": floors},
        ),
        result(
            f"{NAME}.paper_and_binance",
            f"kill switch, {count} open orders over paper + local Binance (median)",
            value=median([r["seconds"] for r in mixed]) * 1000,
            unit="ms",
            floor=max(floor_ms, median([r["bare_wire_cancel_all_s"] for r in mixed]) * 1000),
            target=("<=", 250.0, "value"),
            target_text="<= 250 ms",
            notes=f"{count} resting limit orders, half on each venue; journal {GROUP_COMMIT};"
            f" the {count // 2} Binance orders are cancelled with one DELETE /api/v3/openOrders"
            " (the venue's cancel-all per symbol) and confirmed order by order from its answer;"
            " floor: the larger of the bare pykka fan-out and a bare httpx client sending that"
            f" one cancel-all for {count // 2} resting orders at the same venue (details also"
            " give a bare client cancelling them one by one, 32 in flight)",
            details={"runs": mixed},
        ),
    ]
