"""A node's end-to-end order throughput with the journal off, with group commit,
and with an fsync per record, measured in the same run.

Each run starts a fresh node on the paper venue (no latency) with one
strategy that sends ``--orders`` market orders at once and counts their
fills; the figure is orders per second from the first submit to the last
fill. Group commit should stay within 20% of journaling off.

    python benchmarks/journal_throughput.py [--orders 3000] [--runs 3]
"""

from __future__ import annotations

import argparse
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
    latency_ms: 0
    tick_interval_ms: 1000000
    fill_probability: 1.0
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
    args = parser.parse_args()
    modes = {
        "off": "",
        "none": "none",
        "group": "group:2ms:256",
        "every_record": "every_record",
    }
    results: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.runs):
        for name, journal in modes.items():
            results[name].append(one_run(args.orders, journal))
    summary = {name: statistics.median(values) for name, values in results.items()}
    print(f"{args.orders} market orders, median of {args.runs} runs (orders/s, submit to fill):")
    for name, value in summary.items():
        ratio = value / summary["off"]
        print(f"  journal {name:<13} {value:10.0f}   {ratio:6.1%} of journal off")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"orders": args.orders, "runs": results, "median": summary}))


if __name__ == "__main__":
    main()
