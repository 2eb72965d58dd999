"""Where an order's wall-clock time goes: what runs, and when, on its two paths.

Run from a checkout (not a test; reports only)::

    .venv/bin/python benchmarks/order_timeline.py [--orders 4000] [--journal group|off]

The latency benchmark's closed loop (``bench_latency``: one strategy, one
paper venue, one order in flight, the next decision made in the fill's
callback) with every actor handler's start and end stamped
(``Cell._invoke``, labelled ``actor:Message>`` and ``actor:Message<``), and
with a journal the commit's write and sync (``write>``, ``sync>``, ...).
For each of the benchmark's two windows:

- decision -> venue: from the strategy's decision to the broker calling the
  venue (``~venue``);
- report -> strategy: from the venue handing its fill to the broker's
  connection to the strategy's callback (``~strategy``);

it prints, per label, how many windows held it and the median offset (us)
of its first occurrence from the window's start, in order. What runs in a
window is whatever ran then, the previous order's tail included (the risk
guard's ``FillAndPosition``, say): under the GIL it takes its turn on the
path all the same. ``cpu_per_order.py`` gives the handlers' CPU; this gives
their place in time, the waits between them included (a thread's wake-up,
a turn at the GIL, the disk).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_latency
from benchmarks._instrument import StampedVenue

# Private seams, wrapped for the run and put back: the runtime's handler call (every
# actor's handlers and nothing else, as ``cpu_per_order.py`` times them) and the
# journal's write and sync of a commit.
from tradenode.journal._storage import Journal
from tradenode.supervision._cell import Cell

Stamp = tuple[int, str]


class _Captured:
    """The benchmark's strategy and venue of the last run, caught as they are built."""

    def __init__(self) -> None:
        self.strategy: Any = None
        self.venue: Any = None


def measure(orders: int, warmup: int, journal: str) -> tuple[list[Stamp], _Captured]:
    """Every stamp of one closed loop (sorted), and the loop's strategy and venue."""
    stamps: list[Stamp] = []
    stamp = stamps.append
    clock = time.perf_counter_ns
    captured = _Captured()
    originals: dict[tuple[Any, str], Any] = {}

    def patch(owner: Any, name: str, wrapper: Any) -> None:
        originals[(owner, name)] = owner.__dict__[name]
        setattr(owner, name, wrapper)

    invoke = Cell._invoke

    def stamped_invoke(cell: Cell, message: Any, reply_to: Any) -> None:
        label = f"{cell.address.path.rsplit('/', 1)[-1]}:{type(message).__name__}"
        stamp((clock(), label + ">"))
        try:
            invoke(cell, message, reply_to)
        finally:
            stamp((clock(), label + "<"))

    patch(Cell, "_invoke", stamped_invoke)
    for name, label in (("_write", "write"), ("_counted_fsync", "sync")):
        original = Journal.__dict__[name]

        def stamped(*args: Any, _original: Any = original, _label: str = label) -> Any:
            stamp((clock(), _label + ">"))
            try:
                return _original(*args)
            finally:
                stamp((clock(), _label + "<"))

        patch(Journal, name, stamped)
    venue_init = StampedVenue.__init__
    strategy_init = bench_latency.ClosedLoop.__init__

    def catch_venue(venue: Any, *args: Any, **kwargs: Any) -> None:
        venue_init(venue, *args, **kwargs)
        captured.venue = venue

    def catch_strategy(strategy: Any, *args: Any, **kwargs: Any) -> None:
        strategy_init(strategy, *args, **kwargs)
        captured.strategy = strategy

    patch(StampedVenue, "__init__", catch_venue)
    patch(bench_latency.ClosedLoop, "__init__", catch_strategy)
    try:
        bench_latency.node_latency(orders, warmup, None if journal == "off" else journal)
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
    stamps.sort()
    return stamps, captured


def timeline(
    stamps: list[Stamp], windows: list[tuple[int, int]], end_label: str
) -> list[tuple[str, int, float]]:
    """(label, windows holding it, p50 us of its first offset), by p50; the window's
    end as ``end_label``."""
    times = [at for at, _ in stamps]
    offsets: dict[str, list[float]] = collections.defaultdict(list)
    for start, end in windows:
        seen: set[str] = set()
        for at, label in stamps[bisect.bisect_left(times, start) : bisect.bisect_right(times, end)]:
            if label not in seen:
                seen.add(label)
                offsets[label].append((at - start) / 1000)
        offsets[end_label].append((end - start) / 1000)
    rows = [(label, len(values), statistics.median(values)) for label, values in offsets.items()]
    return sorted(rows, key=lambda row: row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--journal", default="group", help="off, or an fsync policy such as group")
    parser.add_argument(
        "--min-share", type=float, default=0.25, help="leave out labels in fewer of the windows"
    )
    args = parser.parse_args()
    stamps, captured = measure(args.orders, args.warmup, args.journal)
    strategy, venue = captured.strategy, captured.venue
    paths = (
        (
            "decision -> venue",
            [(t, venue.left[c]) for c, t in strategy.decided.items() if c in venue.left],
            "~venue",
        ),
        (
            "venue report at broker -> strategy callback",
            [(venue.arrived[c], t) for c, t in strategy.callback.items() if c in venue.arrived],
            "~strategy",
        ),
    )
    print(f"journal {args.journal}: {args.orders} stamped orders")
    for title, windows, end_label in paths:
        print(f"\n{title} ({len(windows)} windows): first occurrence, p50 us from the start")
        for label, count, p50 in timeline(stamps, windows, end_label):
            if count >= args.min_share * len(windows):
                print(f"  {p50:8.1f}  {label:<36} in {count / len(windows):4.0%}")


if __name__ == "__main__":
    main()
