"""Item 3: sustained throughput, orders per second end to end.

A fresh node per run on one paper venue, one strategy that submits
``--throughput-orders`` market orders at once (``ctx.submit_order``; an
``ExecutionDecision`` per order would re-scan every order in flight, which
measures the strategy, not the engine) and counts their fills: decision ->
risk -> OMS -> breaker -> paper venue -> fills -> strategy. The figure is
orders per second from the first submit to the last fill, median of
``--throughput-runs`` runs, with the journal off, with group commit
(``group``, leader/follower) and with an fsync per record. Floor: the same burst
through bare pykka actors of the same depth (7 hops: strategy -> risk -> OMS
-> breaker -> broker -> broker's own mailbox -> OMS -> strategy), once per
run, interleaved with the node's runs.
"""

from __future__ import annotations

import tempfile
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradenode.actors import Strategy
from tradenode.messages import Message, OrderDenied, OrderFilled, OrderRejected, Side

from ._common import (
    GROUP_COMMIT,
    Options,
    journal_label,
    median,
    paper_config_text,
    perf_ns,
    result,
    start_node,
    stop_node,
    wait_event,
)
from ._floor import floor_throughput

NAME = "throughput"
MODES: dict[str, str | None] = {
    "off": None,
    "group": GROUP_COMMIT,
    "every_record": "every_record",
}


class _Burst:
    def __init__(self, count: int) -> None:
        self.count = count
        self.done = threading.Event()
        self.error: str | None = None


class Burst(Strategy):
    """Submits every order of a burst at once, then counts the fills."""

    def __init__(self) -> None:
        self.burst: _Burst | None = None
        self.filled: set[str] = set()

    def on_message(self, message: Any) -> Any:
        if isinstance(message, _Burst):
            self.burst = message
            self.filled = set()
            for n in range(message.count):
                side = Side.BUY if n % 2 == 0 else Side.SELL
                self.ctx.submit_order("BTCUSDT", side, Decimal("0.001"))
        return None

    def on_order_update(self, event: Message) -> None:
        burst = self.burst
        if burst is None:
            return
        if isinstance(event, OrderFilled):
            self.filled.add(event.client_order_id)
            if len(self.filled) == burst.count:
                burst.done.set()
        elif isinstance(event, OrderDenied | OrderRejected):
            burst.error = f"{type(event).__name__}: {event}"
            burst.done.set()


def run_burst(address: Any, count: int, timeout: float = 3600) -> float:
    """Seconds from the first submit to the last fill of a burst of ``count`` orders."""
    burst = _Burst(count)
    started = perf_ns()
    address.tell(burst)
    wait_event(burst.done, timeout, f"{count} fills")
    if burst.error is not None:
        raise RuntimeError(burst.error)
    return (perf_ns() - started) / 1e9


def node_throughput(count: int, fsync: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal" if fsync is not None else None
        node = start_node(paper_config_text(journal_dir=journal, fsync=fsync or GROUP_COMMIT))
        try:
            address = node.add_strategy("burst", Burst)
            run_burst(address, min(count, 500))  # warm up
            return count / run_burst(address, count)
        finally:
            stop_node(node)


def run(options: Options) -> list[dict[str, Any]]:
    count = options.throughput_orders
    measured: dict[str, list[float]] = {mode: [] for mode in MODES}
    floors: list[float] = []
    for _ in range(options.throughput_runs):
        floors.append(floor_throughput(count))
        for mode, fsync in MODES.items():
            measured[mode].append(node_throughput(count, fsync))
    floor = median(floors)
    results = []
    for mode, fsync in MODES.items():
        targeted = mode == "group"
        results.append(
            result(
                f"{NAME}.{mode}",
                f"throughput, {journal_label(fsync)} (burst of {count} market orders)",
                value=median(measured[mode]),
                unit="orders/s",
                floor=floor,
                better="higher",
                target=(">=", 10_000.0, "value") if targeted else None,
                target_text=">= 10,000 orders/s" if targeted else "",
                notes="decision -> risk -> OMS -> breaker -> paper venue -> fills -> strategy;"
                " floor: the same burst through 7 bare pykka hops",
                details={
                    "orders": count,
                    "runs": measured[mode],
                    "floor_runs": floors,
                },
            )
        )
    return results
