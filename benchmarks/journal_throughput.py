"""A node's end-to-end order throughput with the journal off, with group commit,
and with an fsync per record, measured in the same run.

Each run starts a fresh node on the paper venue (no latency) with one
strategy that sends ``--orders`` market orders at once and counts their
fills; the figure is orders per second from the first submit to the last
fill. Group commit should stay within 20% of journaling off. The modes
take turns within each round, so compare them within one run of this
script, over several rounds: on a shared machine single runs vary by 2x.

    python benchmarks/journal_throughput.py [--orders 3000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradenode import Node, parse_config
from tradenode.actors import Strategy
from tradenode.messages import Message, OrderFilled, Side
from tradenode.supervision import SystemClock

CONFIG = """
node: {{name: bench, seed: 1}}
venues:
  - name: paper
    paper: {{latency_ms: 0, tick_interval_ms: 1000000, fill_probability: 1.0}}
    breaker: {{rate_per_second: 1000000, burst: 1000000, request_timeout: 60}}
oms: {{ack_timeout: 120}}
status_interval: 1000
{journal}
"""


class Burst(Strategy):
    def __init__(self, orders: int, done: threading.Event) -> None:
        self.strategy_id = "burst"
        self.venue = "paper"
        self.orders = orders
        self.done = done
        self.filled: set[str] = set()

    def on_message(self, message: Any) -> Any:
        for n in range(self.orders):
            side = Side.BUY if n % 2 == 0 else Side.SELL
            self.ctx.submit_order("BTCUSDT", side, Decimal("0.001"))
        return None

    def on_order_update(self, event: Message) -> None:
        if isinstance(event, OrderFilled):
            self.filled.add(event.client_order_id)
            if len(self.filled) == self.orders:
                self.done.set()


def one_run(orders: int, journal: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        section = f"journal: {{path: '{Path(tmp) / 'j'}', fsync: '{journal}'}}" if journal else ""
        node = Node(parse_config(CONFIG.format(journal=section)), clock=SystemClock())
        node.start()
        try:
            done = threading.Event()
            address = node.add_strategy("burst", lambda: Burst(orders, done))
            started = time.perf_counter()
            address.tell("go")
            if not done.wait(300):
                raise RuntimeError(f"{journal or 'off'}: not every order filled")
            return orders / (time.perf_counter() - started)
        finally:
            node.stop(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/journal_throughput.json")
    )
    parser.add_argument(
        "--modes",
        default="off,none,group,every_record",
        help="which of off, none, group, every_record to run (off is always run)",
    )
    args = parser.parse_args()
    known = {
        "off": "",
        "none": "none",
        "group": "group:2ms:256",
        "every_record": "every_record",
    }
    wanted = {"off", *args.modes.split(",")}
    if not wanted <= set(known):
        parser.error(f"--modes takes {', '.join(known)}")
    modes = {name: policy for name, policy in known.items() if name in wanted}
    names = list(modes)
    results: dict[str, list[float]] = {name: [] for name in modes}
    for round_number in range(args.runs):
        # Each round runs every mode once, starting one mode later than the round
        # before: on a shared machine the load drifts, and a fixed order would
        # give the same mode the same share of it every round.
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            results[name].append(one_run(args.orders, modes[name]))
    summary = {name: statistics.median(values) for name, values in results.items()}
    # Within one round the modes ran seconds apart, under nearly the same load:
    # the median of per-round ratios is steadier than a ratio of medians.
    ratios = {
        name: statistics.median(v / off for v, off in zip(values, results["off"], strict=True))
        for name, values in results.items()
    }
    print(f"{args.orders} market orders, median of {args.runs} runs (orders/s, submit to fill):")
    for name, value in summary.items():
        print(
            f"  journal {name:<13} {value:10.0f}   {value / summary['off']:6.1%} of journal off"
            f"   (per-round ratio median {ratios[name]:6.1%})"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "orders": args.orders,
                "policies": modes,
                "runs": results,
                "median": summary,
                "ratio_to_off_median": ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
