"""Item 7: RSS growth over 1,000,000 orders.

A node on one paper venue with the journal on (group commit) and the OMS's
defaults (``ack_timeout`` 5 s, 10,000 completed orders retained) takes
``--orders`` market orders (default 1,000,000) in bursts of 2,000
(``Options.memory_chunk``); RSS (``VmRSS`` from /proc) is read after every burst.
The figure is the growth from after a warm-up (twice the retained orders:
``WARM_UP_ORDERS``) to the end, per million
orders: measured as is when a million or more were run, otherwise the
measured growth plus the rest of the million at the slope of the run's
second half, fitted by least squares over its samples (the result says
``extrapolated``).

The paper venue runs inside the node's process and, like an exchange's
database, keeps every order and fill it ever saw: its share is measured
alone (the same orders straight into a ``PaperVenue``, in a process of its
own) and reported next to the node's figure less that share.

Floor: the RSS growth of the bare pykka pipeline (7 hops) passing the same
number of orders in the same bursts, in the same process, before the node.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

# The warm-up is sized from the OMS's default retention, not a copy of it.
from tradenode._config import OmsConfig
from tradenode.brokers.paper import PaperVenue
from tradenode.messages import OrderType, Side, SubmitOrder
from tradenode.sim import paper_sim_config
from tradenode.supervision import SystemClock

from ._common import (
    GROUP_COMMIT,
    Options,
    paper_config_text,
    result,
    rss_mb,
    start_node,
    stop_node,
)
from ._floor import floor_memory
from .bench_throughput import Burst, run_burst

NAME = "memory"
MILLION = 1_000_000
#: Orders before the first reading: the OMS's completed-order LRU (``oms.
#: completed_capacity``, 10,000 by default) twice over, with the threads, caches
#: and first snapshots that come with it. What a node keeps by configuration
#: is bounded; the figure is what grows beyond it. A quick run of 50,000 orders
#: starting after one burst measured the LRU still filling (its second half
#: still rising) and extrapolated that to a million.
WARM_UP_ORDERS = 2 * OmsConfig().completed_capacity


def per_million(samples: list[tuple[int, float]]) -> tuple[float, bool, float]:
    """(growth per million orders in MB, extrapolated?, measured growth in MB)."""
    (_, first), (last_n, last) = samples[0], samples[-1]
    growth = last - first
    if last_n >= MILLION:
        return growth * MILLION / last_n, False, growth
    slope = second_half_slope(samples)
    return growth + max(0.0, slope) * (MILLION - last_n), True, growth


def second_half_slope(samples: list[tuple[int, float]]) -> float:
    """MB per order over the run's second half, by least squares over every sample
    there: RSS read after a burst swings by several MB (the allocator's free lists,
    the collector's timing), so a line through all of them, not through two
    readings, is the slope a longer run would follow."""
    last_n = samples[-1][0]
    half = [(n, mb) for n, mb in samples if n >= last_n / 2] or samples[-2:]
    if len(half) < 2:
        return 0.0
    mean_n = sum(n for n, _ in half) / len(half)
    mean_mb = sum(mb for _, mb in half) / len(half)
    spread = sum((n - mean_n) ** 2 for n, _ in half)
    if spread == 0:
        return 0.0
    return sum((n - mean_n) * (mb - mean_mb) for n, mb in half) / spread


def node_memory(count: int, chunk: int) -> tuple[list[tuple[int, float]], str | None]:
    """RSS after each burst; and why the node stopped taking orders early, if it did
    (a rejection, e.g. the breaker opened after requests went unanswered for 60 s)."""
    with tempfile.TemporaryDirectory() as tmp:
        text = paper_config_text(journal_dir=Path(tmp) / "journal", ack_timeout=5.0)
        node = start_node(text)
        try:
            address = node.add_strategy("mem", Burst)
            for _ in range(max(1, WARM_UP_ORDERS // chunk)):
                run_burst(address, chunk)
            samples = [(0, rss_mb())]
            done = 0
            while done < count:
                n = min(chunk, count - done)
                try:
                    run_burst(address, n)
                except (RuntimeError, TimeoutError) as exc:
                    return samples, f"after {done:,} orders: {exc}"
                done += n
                samples.append((done, rss_mb()))
            return samples, None
        finally:
            stop_node(node)


def growth_sites(orders: int, chunk: int, top: int = 15) -> list[dict[str, Any]]:
    """Where the memory that stays goes: tracemalloc over ``orders`` orders, after enough
    orders that the OMS's completed-order list is full, grouped by allocating line."""
    with tempfile.TemporaryDirectory() as tmp:
        text = paper_config_text(journal_dir=Path(tmp) / "journal", ack_timeout=5.0)
        node = start_node(text)
        try:
            address = node.add_strategy("mem", Burst)
            for _ in range(max(1, 12_000 // chunk)):  # past the 10,000 retained orders
                run_burst(address, chunk)
            gc.collect()
            tracemalloc.start(1)
            try:
                before = tracemalloc.take_snapshot()
                done = 0
                while done < orders:
                    run_burst(address, min(chunk, orders - done))
                    done += chunk
                time.sleep(6)  # every ack timeout (5 s) of those orders has fired
                gc.collect()
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
        finally:
            stop_node(node)
    stats = after.compare_to(before, "lineno")
    return [
        {
            "bytes_per_order": round(stat.size_diff / orders, 1),
            "objects": stat.count_diff,
            "where": str(stat.traceback[0]).replace(str(Path.cwd()) + "/", ""),
        }
        for stat in stats[:top]
    ]


def venue_only(count: int, chunk: int) -> list[tuple[int, float]]:
    """The paper venue's own books: the same market orders straight into a PaperVenue."""
    venue = PaperVenue("paper", paper_sim_config(), seed=1, clock=SystemClock())
    session = venue.connect(lambda events: None)
    n = 0

    def submit(k: int) -> None:
        nonlocal n
        for _ in range(k):
            n += 1
            session.submit(
                SubmitOrder(
                    client_order_id=f"venue-only-{n}",
                    strategy_id="mem",
                    venue="paper",
                    symbol="BTCUSDT",
                    side=Side.BUY if n % 2 else Side.SELL,
                    order_type=OrderType.MARKET,
                    quantity=Decimal("0.001"),
                )
            )

    submit(chunk)
    samples = [(0, rss_mb())]
    done = 0
    while done < count:
        k = min(chunk, count - done)
        submit(k)
        done += k
        samples.append((done, rss_mb()))
    return samples


def _venue_only_in_subprocess(count: int, chunk: int) -> list[tuple[int, float]]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_memory", str(count), str(chunk)],
        check=True,
        capture_output=True,
        text=True,
    )
    return [(int(n), float(mb)) for n, mb in json.loads(completed.stdout)]


def run(options: Options) -> list[dict[str, Any]]:
    count, chunk = options.memory_orders, options.memory_chunk
    floor_growth, floor_samples = floor_memory(count, chunk)
    samples, stalled = node_memory(count, chunk)
    venue_samples = _venue_only_in_subprocess(max(chunk, samples[-1][0]), chunk)
    try:
        sites = growth_sites(min(count, 10_000), chunk)
    except (RuntimeError, TimeoutError) as exc:
        # tracemalloc slows the node several times over: on a loaded machine its
        # requests can outlive their deadlines. The sites are a diagnosis, not the figure.
        sites = [{"error": f"growth sites not measured: {exc}"}]
    node_pm, extrapolated, growth = per_million(samples)
    floor_pm, _, _ = per_million(floor_samples)
    venue_pm, _, venue_growth = per_million(venue_samples)
    reached = samples[-1][0]
    how = (
        f"extrapolated from {reached:,} orders (measured growth + second-half least-squares slope)"
        if extrapolated
        else f"measured over {reached:,} orders"
    )
    if stalled is not None:
        how += f"; THE NODE STOPPED TAKING ORDERS {stalled}"
    details = {
        "orders": reached,
        "orders_asked": count,
        "stalled": stalled,
        "chunk": chunk,
        "extrapolated": extrapolated,
        "measured_growth_mb": growth,
        "rss_start_mb": samples[0][1],
        "rss_end_mb": samples[-1][1],
        "samples": samples,
        "floor_growth_mb": floor_growth,
        "floor_samples": floor_samples,
        "paper_venue_alone_growth_mb": venue_growth,
        "paper_venue_alone_samples": venue_samples,
        "journal": GROUP_COMMIT,
        "growth_sites_tracemalloc": sites,
    }
    floor_value = max(floor_pm, 0.0)
    return [
        result(
            f"{NAME}.rss_growth_per_million",
            "RSS growth per million orders, whole process (node + in-process paper venue)",
            value=node_pm,
            unit="MB",
            floor=floor_value if floor_value >= 1.0 else None,
            target=("<=", 100.0, "value"),
            target_text="<= 100 MB / 1M orders",
            notes=f"{how}; floor: bare pykka pipeline grew {floor_pm:.1f} MB per million"
            " (no ratio when under 1 MB)",
            details=details,
        ),
        result(
            f"{NAME}.paper_venue_books_per_million",
            "of which the paper venue's own books (measured alone)",
            value=venue_pm,
            unit="MB",
            floor=None,
            notes="a PaperVenue taking the same orders directly, in a process of its own:"
            " the simulated exchange keeps every order and fill",
        ),
        result(
            f"{NAME}.node_excluding_venue_per_million",
            "RSS growth per million orders, node less the paper venue's books",
            value=node_pm - venue_pm,
            unit="MB",
            floor=floor_value if floor_value >= 1.0 else None,
            notes="the whole-process figure minus the venue-alone figure (an estimate)",
        ),
    ]


if __name__ == "__main__":
    # ``python -m benchmarks.bench_memory COUNT CHUNK``: the venue-alone figure, in a
    # process of its own so the node's freed memory cannot hide its growth.
    print(json.dumps(venue_only(int(sys.argv[1]), int(sys.argv[2]))))
