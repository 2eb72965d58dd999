"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...]``.

Each benchmark runs in a fresh Python process of its own (so one's threads,
garbage and RSS never leak into the next) and measures its floor in that same
process. The runner prints a table of every figure (target, measured, floor,
ratio, met or missed by how much) and writes ``benchmarks/results/<stamp>.json``
(with the machine's cpu count, python version and load) and
``benchmarks/results/<stamp>.png``.

Benchmarks (``--only`` takes these names): latency (items 1 and 2),
throughput (3), wire (4), recovery (5), killswitch (6), memory (7).

Every benchmark process runs its threads under the scheduling policy a node
runs its own under (``SCHED_BATCH`` by default, ``_common.schedule_like_the_node``),
floors and bare clients included; the venue processes keep the system's default.

``--cpus 1`` runs every benchmark process (the node, its floor, the bare
clients) on those CPUs only, as ``taskset -c 1 tradenode run`` runs a node;
the venue processes stay on every CPU, as an exchange is on other machines.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime
import importlib
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._common import (
    RESULTS_DIR,
    VENUE_CPUS_ENV,
    Options,
    describe_cpu_idle,
    describe_journal_disk,
    error_result,
    machine_info,
    quiet_logging,
    schedule_like_the_node,
)
from ._report import markdown_table, table, write_chart, write_json

BENCHMARKS = ("latency", "throughput", "wire", "binance_ws", "recovery", "killswitch", "memory")

# command-line flag -> Options field
_COUNTS = {
    "latency_orders": "orders in the closed latency loop (journal on); the issue asks >= 100k",
    "latency_off_orders": "orders in the closed loop with the journal off (comparison)",
    "throughput_orders": "market orders per throughput burst",
    "throughput_runs": "throughput runs per journal mode (median reported)",
    "wire_requests": "adapter and bare-httpx round trips each",
    "recovery_trials": "venue outages (and as many bare-client outages)",
    "restart_events": "journal events to restart from",
    "kill_orders": "resting orders the kill switch cancels (over two venues)",
    "kill_runs": "kill switch runs (median reported)",
    "memory_orders": "orders for the RSS growth figure (alias --orders)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts: a smoke run in a few minutes"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these (repeat or comma-separate): {', '.join(BENCHMARKS)}",
    )
    for field, text in _COUNTS.items():
        flags = [f"--{field.replace('_', '-')}"]
        if field == "memory_orders":
            flags.append("--orders")
        parser.add_argument(*flags, dest=field, type=int, default=None, help=text)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile every thread of each benchmark (slows everything: figures are then"
        " only for attribution); writes <stamp>-<name>-profile.txt next to the JSON",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the benchmarks in this process, one after another (for debugging)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one benchmark may take before it is killed and reported failed"
        " (default 900 with --quick, 7200 otherwise)",
    )
    parser.add_argument(
        "--cpus",
        type=_cpu_list,
        default=None,
        metavar="LIST",
        help="pin each benchmark process (node, floor, bare clients; not the venue"
        " processes) to these CPUs, comma-separated (e.g. 1 or 0,1): what a node run"
        " under taskset gets, floor included",
    )
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stamp", help=argparse.SUPPRESS)
    return parser


def _cpu_list(text: str) -> frozenset[int]:
    """``--cpus``: CPUs this process may run on, comma-separated."""
    try:
        cpus = frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated CPU list: {text!r}") from None
    allowed = os.sched_getaffinity(0)
    if not cpus or not cpus <= allowed:
        raise argparse.ArgumentTypeError(
            f"CPUs {sorted(cpus)} are not a non-empty subset of this process's {sorted(allowed)}"
        )
    return cpus


def pin_benchmark_process(cpus: frozenset[int]) -> None:
    """Run this process, and every thread it starts from now on, on ``cpus`` only.

    The CPUs it had are left in ``VENUE_CPUS_ENV`` for the venue processes it
    starts (``_venue_process``), which go back to them; the first pinning's, when
    ``--in-process`` pins once per benchmark.
    """
    had = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
    os.environ.setdefault(VENUE_CPUS_ENV, had)
    os.sched_setaffinity(0, cpus)


def _options(args: argparse.Namespace) -> Options:
    options = Options.quick_defaults() if args.quick else Options()
    overrides = {
        field: getattr(args, field) for field in _COUNTS if getattr(args, field) is not None
    }
    return dataclasses.replace(options, **overrides)


def _selected(args: argparse.Namespace) -> list[str]:
    names = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    return [name for name in BENCHMARKS if not names or name in names]


# -- one benchmark ------------------------------------------------------------------------


def _run_one(name: str, options: Options, profile_to: Path | None) -> list[dict[str, Any]]:
    quiet_logging()
    module = importlib.import_module(f"benchmarks.bench_{name}")
    if profile_to is None:
        return list(module.run(options))
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def profile_thread(*_: Any) -> None:
        # Runs as the new thread's first profile event; enabling replaces it.
        profiler = cProfile.Profile()
        with lock:
            profiles.append(profiler)
        profiler.enable()

    threading.setprofile(profile_thread)
    main = cProfile.Profile()
    main.enable()
    try:
        return list(module.run(options))
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(main)
        with lock:
            others = list(profiles)
        for profiler in others:
            stats.add(profiler)
        text = io.StringIO()
        stats.stream = text  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        profile_to.write_text(
            f"cProfile of benchmark {name!r} over {1 + len(others)} threads "
            "(times inflated by profiling)\n" + text.getvalue(),
            encoding="utf-8",
        )
        stats.dump_stats(str(profile_to.with_suffix(".pstats")))


def _child_command(args: argparse.Namespace, name: str, output: Path, stamp: str) -> list[str]:
    command = [sys.executable, "-m", "benchmarks", "--child", name]
    command += ["--child-output", str(output), "--stamp", stamp]
    command += ["--output-dir", str(args.output_dir)]
    if args.quick:
        command.append("--quick")
    if args.profile:
        command.append("--profile")
    if args.cpus is not None:
        command += ["--cpus", ",".join(str(cpu) for cpu in sorted(args.cpus))]
    for field in _COUNTS:
        value = getattr(args, field)
        if value is not None:
            command += [f"--{field.replace('_', '-')}", str(value)]
    return command


def _run_child(args: argparse.Namespace, name: str, stamp: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "results.json"
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        timeout = args.timeout or (900.0 if args.quick else 7200.0)
        try:
            completed = subprocess.run(
                _child_command(args, name, output, stamp),
                check=False,
                env=env,
                cwd=root,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return [error_result(name, f"did not finish within {timeout:.0f} s (killed)")]
        if completed.returncode != 0 or not output.exists():
            return [error_result(name, f"exit code {completed.returncode}")]
        loaded: list[dict[str, Any]] = json.loads(output.read_text(encoding="utf-8"))
        return loaded


# -- the whole run ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = _options(args)
    schedule_like_the_node()  # before any thread starts: the floors' inherit it
    if args.child:
        if args.cpus is not None:
            pin_benchmark_process(args.cpus)
        profile_to = (
            args.output_dir / f"{args.stamp}-{args.child}-profile.txt" if args.profile else None
        )
        if profile_to is not None:
            profile_to.parent.mkdir(parents=True, exist_ok=True)
        results = _run_one(args.child, options, profile_to)
        args.child_output.write_text(json.dumps(results, default=str), encoding="utf-8")
        return 0

    names = _selected(args)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    started = datetime.datetime.now(datetime.UTC)
    machine = machine_info()
    if args.cpus is not None:
        machine["pinned_to_cpus"] = sorted(args.cpus)
    pinned = f" pinned to cpu(s) {sorted(args.cpus)}" if args.cpus is not None else ""
    print(
        f"tradenode benchmarks {'(quick) ' if args.quick else ''}on {machine['cpu_count']} cpu(s)"
        f"{pinned},"
        f" python {machine['python']}, load {machine.get('load_average')},"
        f" {describe_cpu_idle(machine.get('cpuidle', {}))}, {describe_journal_disk(machine)},"
        f" threads (node and floors) under {machine['thread_scheduling']}:"
        f" {', '.join(names)}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    durations: dict[str, float] = {}
    for name in names:
        print(f"-- {name} ...", flush=True)
        began = time.monotonic()
        if args.in_process:
            if args.cpus is not None:
                pin_benchmark_process(args.cpus)
            try:
                profile_to = (
                    args.output_dir / f"{stamp}-{name}-profile.txt" if args.profile else None
                )
                batch = _run_one(name, options, profile_to)
            except Exception as exc:  # noqa: BLE001 - one failure must not lose the others
                batch = [error_result(name, f"{type(exc).__name__}: {exc}")]
        else:
            batch = _run_child(args, name, stamp)
        durations[name] = time.monotonic() - began
        for record in batch:
            record.setdefault("benchmark", name)
        results.extend(batch)
        print(table(batch), flush=True)
        print(f"   ({durations[name]:.0f} s)", flush=True)

    print("\nAll figures:\n" + table(results))
    document = {
        "started": started.isoformat(),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(),
        "command": [sys.executable, "-m", "benchmarks", *(argv or sys.argv[1:])],
        "quick": args.quick,
        "options": dataclasses.asdict(options),
        "machine": machine,
        "machine_after": {"load_average": os.getloadavg()},
        "durations_seconds": durations,
        "results": results,
        "markdown": markdown_table(results),
    }
    json_path = args.output_dir / f"{stamp}.json"
    write_json(json_path, document)
    chart_path = args.output_dir / f"{stamp}.png"
    title = (
        f"tradenode benchmarks {stamp}{' (quick)' if args.quick else ''}: "
        f"{machine['cpu_count']} cpu{pinned}, python {machine['python']}"
    )
    charted = write_chart(chart_path, results, title)
    print(f"\nwrote {json_path}" + (f" and {chart_path}" if charted else ""))
    return 0 if all(r.get("value") is not None for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
