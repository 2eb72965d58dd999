"""What each journal fsync policy costs: appends/s, append latency, time to durability, replay.

Not a test. Run from a checkout::

    .venv/bin/python benchmarks/journal_fsync.py [--records 100000] [--dir DIR]

It appends ~200-byte records with each policy into a fresh journal on the
same file system as the checkout (``benchmarks/results/*.tmp``, removed
afterwards; tmpfs would make fsync free), prints a table and writes
``benchmarks/results/journal_fsync.json``. EVERY_RECORD runs fewer records
(``--every-record-records``) because each one waits for the disk.

"durable p50/p99" is the time from the start of an ``append`` until a
durability listener reports that record fsynced: what the order manager
waits before it may send an order.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tradenode.journal import FsyncPolicy, Journal

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD_BYTES = 200


def percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return float(sorted_values[index])


def payloads(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [
        f"intent:{i}:".encode() + rng.randbytes(PAYLOAD_BYTES - len(f"intent:{i}:"))
        for i in range(count)
    ]


def run_policy(
    name: str, policy: FsyncPolicy, records: list[bytes], directory: Path
) -> dict[str, Any]:
    starts = [0] * (len(records) + 1)
    durable_at: list[tuple[int, int]] = []  # (perf_counter_ns, durable seq)
    lock = threading.Lock()

    def on_durable(seq: int) -> None:
        now = time.perf_counter_ns()
        with lock:
            durable_at.append((now, seq))

    latencies = []
    with Journal.open(directory, fsync=policy) as journal:
        journal.add_durability_listener(on_durable)
        began = time.perf_counter_ns()
        for index, data in enumerate(records, start=1):
            start = time.perf_counter_ns()
            starts[index] = start
            journal.append(data)
            latencies.append(time.perf_counter_ns() - start)
        appended = time.perf_counter_ns()
        journal.flush()
        flushed = time.perf_counter_ns()
        stats = journal.stats()

    durable_latencies = []
    if policy != FsyncPolicy.NONE:  # with NONE only the final flush makes records durable
        durable_at.sort()
        next_seq = 1
        for when, seq in durable_at:
            while next_seq <= seq:
                durable_latencies.append(when - starts[next_seq])
                next_seq += 1
    latencies.sort()
    durable_latencies.sort()
    elapsed = (appended - began) / 1e9
    return {
        "policy": name,
        "config": str(policy),
        "records": len(records),
        "payload_bytes": PAYLOAD_BYTES,
        "appends_per_s": len(records) / elapsed,
        "append_p50_us": percentile(latencies, 0.50) / 1e3,
        "append_p99_us": percentile(latencies, 0.99) / 1e3,
        "append_max_us": latencies[-1] / 1e3,
        "append_mean_us": statistics.fmean(latencies) / 1e3,
        "durable_p50_us": percentile(durable_latencies, 0.50) / 1e3 if durable_latencies else None,
        "durable_p99_us": percentile(durable_latencies, 0.99) / 1e3 if durable_latencies else None,
        "final_flush_ms": (flushed - appended) / 1e6,
        "fsyncs": stats.fsyncs,
        "segments": stats.segments,
        "bytes": stats.bytes,
    }


def run_replay(directory: Path, expected: int) -> dict[str, Any]:
    began = time.perf_counter_ns()
    journal = Journal.open_read_only(directory)
    opened = time.perf_counter_ns()
    count = 0
    total = 0
    for _seq, data in journal.replay():
        count += 1
        total += len(data)
    replayed = time.perf_counter_ns()
    journal.close()
    assert count == expected, (count, expected)
    open_s, replay_s = (opened - began) / 1e9, (replayed - opened) / 1e9
    return {
        "records": count,
        "payload_bytes_total": total,
        "open_scan_s": open_s,
        "replay_s": replay_s,
        "replay_records_per_s": count / replay_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--every-record-records", type=int, default=5_000)
    parser.add_argument("--group", default="group:2ms:256", help="the GROUP policy to measure")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the journals")
    parser.add_argument("--output", type=Path, default=RESULTS / "journal_fsync.json")
    args = parser.parse_args()

    base = args.dir or RESULTS
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="journal-bench-", suffix=".tmp", dir=base))
    records = payloads(args.records)
    plan = [
        ("EVERY_RECORD", FsyncPolicy.EVERY_RECORD, records[: args.every_record_records]),
        ("GROUP", FsyncPolicy.parse(args.group), records),
        ("NONE", FsyncPolicy.NONE, records),
    ]
    results = []
    try:
        for name, policy, batch in plan:
            print(f"... {name} ({policy}) x {len(batch)}", file=sys.stderr, flush=True)
            results.append(run_policy(name, policy, batch, workdir / name))
        print("... replay", file=sys.stderr, flush=True)
        replay = run_replay(workdir / "NONE", len(records))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def cell(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    header = (
        f"{'policy':<13} {'config':<16} {'records':>8} {'appends/s':>11} {'p50 us':>8} "
        f"{'p99 us':>8} {'max us':>9} {'durable p50 us':>15} {'durable p99 us':>15} {'fsyncs':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['policy']:<13} {row['config']:<16} {row['records']:>8} "
            f"{row['appends_per_s']:>11,.0f} {cell(row['append_p50_us']):>8} "
            f"{cell(row['append_p99_us']):>8} {cell(row['append_max_us']):>9} "
            f"{cell(row['durable_p50_us']):>15} {cell(row['durable_p99_us']):>15} "
            f"{row['fsyncs']:>7}"
        )
    print(
        f"replay: {replay['records']:,} records in {replay['replay_s'] * 1e3:,.0f} ms "
        f"({replay['replay_records_per_s']:,.0f} records/s); open + full scan "
        f"{replay['open_scan_s'] * 1e3:,.0f} ms"
    )
    document = {
        "benchmark": "journal_fsync",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "directory_base": str(base),
        "policies": results,
        "replay": replay,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
