"""Where an order's CPU goes: thread CPU per (actor, message) handler, per order.

Run from a checkout (not a test; reports only)::

    .venv/bin/python benchmarks/cpu_per_order.py [--orders 3000] [--journal off|group]

The latency benchmark's closed loop (``bench_latency``: one strategy, one
paper venue, one order in flight, the next decision made in the fill's
callback) with every actor handler timed by ``time.thread_time_ns``: the CPU
the handler's own thread spent in it, so the figures hold on a loaded machine
where wall-clock ones do not. Printed per (actor, message type): how many per
order, CPU p50 and mean, CPU per order; then the total and the messages per
order.

The throughput a node can reach is about one over the total (the node runs on
one core: the GIL), and the latency path pays the handlers on it: strategy ->
router -> risk -> OMS -> breaker -> broker out, broker -> OMS -> strategy
back. What the total leaves out: the runtime's own per-message work between
handlers (queue, wake-up), the journal's threads, and the venue's.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_latency

# What is timed is the runtime's handler call: ``Cell._invoke`` hands one message to
# one behaviour, so wrapping it times every actor's handlers and nothing else.
from tradenode.supervision._cell import Cell


def measure(orders: int, warmup: int, journal: str) -> tuple[dict[tuple[str, str], list[int]], int]:
    """CPU samples (ns) per (actor name, message type), and the orders they cover."""
    samples: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    original = Cell._invoke
    clock = time.thread_time_ns

    def timed(cell: Cell, message: Any, reply_to: Any) -> None:
        began = clock()
        original(cell, message, reply_to)
        spent = clock() - began
        samples[(cell.address.path.rsplit("/", 1)[-1], type(message).__name__)].append(spent)

    Cell._invoke = timed  # type: ignore[method-assign]
    try:
        bench_latency.node_latency(orders, warmup, None if journal == "off" else journal)
    finally:
        Cell._invoke = original  # type: ignore[method-assign]
    return samples, orders + warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--journal", default="off", help="off, or an fsync policy such as group")
    args = parser.parse_args()
    samples, covered = measure(args.orders, args.warmup, args.journal)
    total = sum(sum(values) for values in samples.values())
    messages = sum(len(values) for values in samples.values())
    print(f"journal {args.journal}: {covered} orders (warm-up included)")
    print(
        f"{'actor':>12} {'message':<24} {'per order':>9} {'p50 us':>8} {'mean us':>8} {'us/order':>9}"
    )
    for key, values in sorted(samples.items(), key=lambda item: -sum(item[1])):
        per_order = len(values) / covered
        if per_order < 0.5:
            continue
        print(
            f"{key[0]:>12} {key[1]:<24} {per_order:>9.1f} "
            f"{statistics.median(values) / 1000:>8.1f} {sum(values) / len(values) / 1000:>8.1f} "
            f"{sum(values) / covered / 1000:>9.1f}"
        )
    print(
        f"handler CPU per order: {total / covered / 1000:.1f} us over {messages / covered:.1f} messages"
    )


if __name__ == "__main__":
    main()
