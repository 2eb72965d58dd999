"""A/B two versions of the node on the closed loop or the burst, in alternated rounds.

Run from a checkout (not a test; reports only)::

    .venv/bin/python benchmarks/ab.py [--a REF] [--b REF] [--rounds 12]
        [--what latency|throughput|wire] [--journal group|off] [--orders 5000]

Why: on the machine of the README's figures one run's floors and figures move
by a tenth to a third from one minute to the next, more than most changes to
the order path move them, so one run of each version proves nothing. Here
the two versions take turns, round after round (A then B, then B then A, so
that drift falls on both alike), each round in a fresh process, and what is
reported is the mean of the paired differences (B - A) over the rounds with
its 95% interval (Student's t): an interval that holds 0 says the difference
is noise at that many rounds.

Each version runs from a checkout of its own: ``--a``/``--b`` take a git ref,
checked out with ``git worktree add --detach`` into a temporary directory
(removed after), or ``WORKTREE``, this checkout as it is, uncommitted changes
included (the default for ``--b``; ``--a`` defaults to ``HEAD``). A round's
process puts that checkout's ``src`` first on ``PYTHONPATH`` and runs this
checkout's benchmark harness against it (``bench_latency.node_latency`` or
``bench_throughput.node_throughput``), so both versions are measured by the
same code; it reports which ``tradenode`` it imported, and a round that
imported the wrong one stops the run.

Figures: latency, decision -> venue and fill -> strategy p50/p99 (us) and the
process's CPU per order (us); throughput, orders/s and CPU per order; wire, the
Binance adapter's submit -> ack p50 over REST and over the WebSocket API, each
with its bare client's and its ratio to it (``bench_wire``: ``--orders`` round
trips of each kind, against a local venue process of the round's own;
``--journal`` does not apply).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# This checkout's harness; the node it measures is the round's (``_round``: a
# fresh process whose ``PYTHONPATH`` starts with that version's ``src``).
import tradenode  # noqa: E402
from benchmarks import bench_latency, bench_throughput, bench_wire  # noqa: E402
from benchmarks._common import Options, percentile  # noqa: E402

WORKTREE = "WORKTREE"

#: Student's t, two-sided 95%, by degrees of freedom (1-30); 1.96 beyond.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def _t95(degrees: int) -> float:
    return _T95[degrees - 1] if degrees <= len(_T95) else 1.96


def paired_interval(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of ``b[i] - a[i]`` and the half-width of its 95% interval (inf for one pair)."""
    differences = [y - x for x, y in zip(a, b, strict=True)]
    mean = statistics.fmean(differences)
    if len(differences) < 2:
        return mean, math.inf
    spread = statistics.stdev(differences) / math.sqrt(len(differences))
    return mean, _t95(len(differences) - 1) * spread


# -- one round, in a process of its own ------------------------------------------------------


def _measure(what: str, orders: int, warmup: int, journal: str) -> dict[str, Any]:
    """The figures of one round, with the ``tradenode`` this process imported."""
    fsync = None if journal == "off" else journal
    figures: dict[str, float]
    if what == "latency":
        out, back, stats = bench_latency.node_latency(orders, warmup, fsync)
        out_sorted, back_sorted = sorted(out), sorted(back)
        figures = {
            "decision_to_venue.p50": statistics.median(out_sorted) / 1000,
            "decision_to_venue.p99": percentile(out_sorted, 0.99) / 1000,
            "fill_to_strategy.p50": statistics.median(back_sorted) / 1000,
            "fill_to_strategy.p99": percentile(back_sorted, 0.99) / 1000,
            "cpu_per_order": float(stats["cpu_per_order_us"]),
        }
    elif what == "wire":
        results = {row["name"]: row for row in bench_wire.run(Options(wire_requests=orders))}
        figures = {}
        for kind, name in (("rest", "wire.submit_to_ack.p50"), ("ws", "wire.ws_submit_to_ack.p50")):
            row = results[name]
            figures[f"{kind}.p50"] = float(row["value"])
            figures[f"{kind}.bare_p50"] = float(row["floor"])
            figures[f"{kind}.ratio"] = float(row["value"]) / float(row["floor"])
    else:
        rate, cpu_us = bench_throughput.node_throughput(orders, fsync)
        figures = {"orders_per_second": rate, "cpu_per_order": cpu_us}
    return {"tradenode": str(Path(tradenode.__file__).resolve()), "figures": figures}


def _round(src: Path, args: argparse.Namespace) -> dict[str, float]:
    """One round of one version: a fresh process with ``src`` first on its path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), str(ROOT), env.get("PYTHONPATH")]))
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--what",
        args.what,
        "--orders",
        str(args.orders),
        "--warmup",
        str(args.warmup),
        "--journal",
        args.journal,
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"a round failed ({src}):\n{done.stderr[-4000:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    imported = Path(answer["tradenode"])
    if src.resolve() not in imported.parents:
        raise SystemExit(f"a round meant for {src} imported {imported}")
    figures: dict[str, float] = answer["figures"]
    return figures


# -- the versions -----------------------------------------------------------------------------


@contextlib.contextmanager
def _checkout(ref: str, into: Path) -> Iterator[Path]:
    """The ``src`` of ``ref`` checked out into ``into`` (this checkout's for WORKTREE)."""
    if ref == WORKTREE:
        yield ROOT / "src"
        return
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(into), ref],
        cwd=ROOT,
        check=True,
    )
    try:
        yield into / "src"
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(into)], cwd=ROOT, check=False)


def _describe(ref: str) -> str:
    if ref == WORKTREE:
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        head = _describe("HEAD")
        return f"this checkout ({head}{', with uncommitted changes' if dirty else ''})"
    return subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="HEAD", help=f"a git ref, or {WORKTREE}")
    parser.add_argument("--b", default=WORKTREE, help=f"a git ref, or {WORKTREE}")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--what", choices=("latency", "throughput", "wire"), default="latency")
    parser.add_argument("--journal", default="group", help="off, or an fsync policy such as group")
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.what, args.orders, args.warmup, args.journal)))
        return
    if args.rounds < 2:
        raise SystemExit("--rounds: at least 2 (an interval needs two pairs)")
    labels = {"A": _describe(args.a), "B": _describe(args.b)}
    print(f"A: {labels['A']}\nB: {labels['B']}")
    print(
        f"{args.what}, journal {args.journal}, {args.orders} orders a round, "
        f"{args.rounds} rounds, alternated"
    )
    rounds: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="tradenode-ab-") as tmp,
        _checkout(args.a, Path(tmp) / "a") as src_a,
        _checkout(args.b, Path(tmp) / "b") as src_b,
    ):
        sources = {"A": src_a, "B": src_b}
        for index in range(args.rounds):
            for version in ("A", "B") if index % 2 == 0 else ("B", "A"):
                rounds[version].append(_round(sources[version], args))
            print(f"  round {index + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"({time.monotonic() - started:.0f} s)\n")
    print(f"{'figure':<26} {'A mean':>10} {'B mean':>10} {'B - A':>10} {'95% interval':>16}")
    for name in rounds["A"][0]:
        a = [figures[name] for figures in rounds["A"]]
        b = [figures[name] for figures in rounds["B"]]
        mean, half = paired_interval(a, b)
        verdict = "" if abs(mean) > half else "  (noise)"
        digits = 3 if name.endswith("ratio") else 1  # a ratio's tenth is most of the range
        print(
            f"{name:<26} {statistics.fmean(a):>10.{digits}f} {statistics.fmean(b):>10.{digits}f} "
            f"{mean:>+10.{digits}f} {f'+/- {half:.{digits}f}':>16}{verdict}"
        )


if __name__ == "__main__":
    main()
