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

With each rate, the CPU per order (``*.cpu_per_order``): the process's CPU time
over the burst (``time.process_time``: every thread, the paper venue's
matching included) over its orders, against the bare pipeline's. Under the GIL
a node's threads take turns, so one over it bounds the rate: it says whether a
rate is held back by the work per order or by waiting (wake-ups, the disk).
"""

from __future__ import annotations

import tempfile
import threading
import time
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


def node_throughput(count: int, fsync: str | None) -> tuple[float, float]:
    """Orders per second of one burst on a fresh node, and its CPU per order (us)."""
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal" if fsync is not None else None
        node = start_node(paper_config_text(journal_dir=journal, fsync=fsync or GROUP_COMMIT))
        try:
            address = node.add_strategy("burst", Burst)
            run_burst(address, min(count, 500))  # warm up
            cpu_before = time.process_time()
            seconds = run_burst(address, count)
            cpu_us = (time.process_time() - cpu_before) * 1e6 / count
            return count / seconds, cpu_us
        finally:
            stop_node(node)


def run(options: Options) -> list[dict[str, Any]]:
    count = options.throughput_orders
    measured: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    floors: list[float] = []
    floor_cpu: list[float] = []
    for _ in range(options.throughput_runs):
        rate, cpu_us = floor_throughput(count)
        floors.append(rate)
        floor_cpu.append(cpu_us)
        for mode, fsync in MODES.items():
            rate, cpu_us = node_throughput(count, fsync)
            measured[mode].append(rate)
            cpu[mode].append(cpu_us)
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
        results.append(
            result(
                f"{NAME}.{mode}.cpu_per_order",
                f"CPU per order, {journal_label(fsync)} (the same bursts)",
                value=median(cpu[mode]),
                unit="us",
                floor=median(floor_cpu),
                notes="process CPU time over the burst (every thread) / orders;"
                " floor: the bare pipeline's",
                details={"runs": cpu[mode], "floor_runs": floor_cpu},
            )
        )
    return results
