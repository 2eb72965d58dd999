"""The bare floors under the system's default scheduling and under the node's, side by side.

Run from a checkout (not a test; reports only)::

    .venv/bin/python benchmarks/floor_scheduling.py [--rounds 10] [--orders 4000]

Why: every benchmark process runs its threads, the floors' included, under
the policy a node runs its own under (``SCHED_BATCH``, see
``_common.schedule_like_the_node``), and that policy makes a bare pykka hop
cheaper too. This says by how much: the latency benchmark's closed loops
through the bare floor (``_floor.floor_latency``: the bare pipeline, its
design floor with the node's messages, and that with the journal's commit)
in alternated rounds, each in a fresh process under one policy (default, then
batch; then batch, then default), reported as the mean of the paired
differences (batch - default) with its 95% interval, as ``ab.py`` reports.
How the node itself moves with the policy: ``ab.py`` between a version
before the policy and one with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._floor import floor_latency  # noqa: E402
from benchmarks.ab import paired_interval  # noqa: E402

POLICIES = ("default", "batch")


def _measure(policy: str, orders: int, warmup: int) -> dict[str, float]:
    """One round's figures (us), this process's threads under ``policy``."""
    wanted = os.SCHED_BATCH if policy == "batch" else os.SCHED_OTHER
    os.sched_setscheduler(0, wanted, os.sched_param(0))  # the actors started next inherit it
    figures: dict[str, float] = {}
    for label, design, commit in (
        ("bare", False, False),
        ("design", True, False),
        ("design_commit", True, True),
    ):
        cpu: list[float] = []
        out, back = floor_latency(orders, warmup, design=design, commit=commit, cpu=cpu)
        figures[f"{label}.decision_to_venue.p50"] = statistics.median(out) / 1000
        figures[f"{label}.fill_to_strategy.p50"] = statistics.median(back) / 1000
        figures[f"{label}.cpu_per_order"] = cpu[0]
    return figures


def _round(policy: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", policy]
    command += ["--orders", str(args.orders), "--warmup", str(args.warmup)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"a round failed ({policy}):\n{done.stderr[-4000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_measure(args.child, args.orders, args.warmup)))
        return
    if not hasattr(os, "SCHED_BATCH"):
        raise SystemExit("this platform has no SCHED_BATCH")
    began = time.monotonic()
    runs: dict[str, list[dict[str, float]]] = {policy: [] for policy in POLICIES}
    print(f"bare floors, {args.orders} orders a round, {args.rounds} rounds, alternated")
    for index in range(args.rounds):
        order = POLICIES if index % 2 == 0 else POLICIES[::-1]
        for policy in order:
            runs[policy].append(_round(policy, args))
        print(f"  round {index + 1}/{args.rounds} done", flush=True)
    print(f"({time.monotonic() - began:.0f} s)\n")
    print(f"{'figure':40s} {'default':>9s} {'batch':>9s} {'batch - default':>16s}  95% interval")
    first: dict[str, Any] = runs["default"][0]
    for name in first:
        default = [run[name] for run in runs["default"]]
        batch = [run[name] for run in runs["batch"]]
        mean, half = paired_interval(default, batch)
        noise = "  (noise)" if abs(mean) <= half else ""
        print(
            f"{name:40s} {statistics.fmean(default):9.1f} {statistics.fmean(batch):9.1f}"
            f" {mean:+16.1f}  +/- {half:.1f}{noise}"
        )


if __name__ == "__main__":
    main()
