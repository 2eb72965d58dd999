"""Group commit and OMS snapshots, measured where they happen (not a test; reports only).

Run from a checkout::

    .venv/bin/python benchmarks/journal_group_commit.py [--lone 300] [--orders 10000]

1. A lone record: append one ~200-byte record, wait for the durability
   listener, repeat (what the OMS waits before an order may leave). Per fsync
   policy, p50/p99 of append -> durable, against the floor measured in the same
   run: a bare ``os.write`` + ``os.fsync`` of the same bytes. Leader/follower
   group commit (``group``) should cost about one fsync; the timed one
   (``group:2ms:256``) the interval on top.
2. A burst: ``--burst`` records appended at once by one thread; fsyncs used
   and time to the last durable (group commit shares fsyncs).
3. OMS snapshots: a state of ``--orders`` completed orders; the time the OMS
   thread is stopped by a snapshot the old way (build, pack, write, fsync,
   compact on its thread) and the new way (incremental build on its thread,
   the rest on the journal's snapshot thread), cold (first snapshot) and warm
   (after 1,250 more orders, the 5,000 records between two snapshots), and the
   lateness of another thread's 1 ms sleeps while the snapshot ran (old: the
   OMS thread itself is stopped; new: its wait for the GIL while the snapshot
   thread works).

The journals live next to the checkout (``benchmarks/results/*.tmp``, removed
afterwards): tmpfs would make fsync free. The machine's load is printed: on a
shared machine compare figures of one run only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import msgpack

from tradenode.actors import OmsState

# The OMS's snapshot path is what is measured; the node builds its OmsJournal.
from tradenode.actors._oms_journal import OmsJournal
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import OrderAccepted, OrderFilled, OrderType, Side, SubmitOrder

RESULTS = Path(__file__).resolve().parent / "results"
PAYLOAD = b"x" * 200


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bare_fsync(directory: Path, count: int) -> list[float]:
    """Seconds for os.write + os.fsync of one record: the floor of one commit."""
    path = directory / "bare.tmp"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    samples = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            os.write(fd, PAYLOAD)
            os.fsync(fd)
            samples.append(time.perf_counter() - began)
    finally:
        os.close(fd)
    return samples


def lone_records(directory: Path, policy: str, count: int) -> tuple[list[float], int]:
    """Seconds from append to durable, one record at a time; and the fsyncs used."""
    durable = threading.Condition()
    reached = [0]

    def on_durable(seq: int) -> None:
        with durable:
            reached[0] = seq
            durable.notify_all()

    samples = []
    with Journal.open(directory, fsync=FsyncPolicy.parse(policy)) as journal:
        journal.add_durability_listener(on_durable)
        before = journal.stats().fsyncs
        for _ in range(count):
            began = time.perf_counter()
            seq = journal.append(PAYLOAD)
            with durable:
                durable.wait_for(lambda seq=seq: reached[0] >= seq or journal.durable_seq >= seq)
            samples.append(time.perf_counter() - began)
        fsyncs = journal.stats().fsyncs - before
    return samples, fsyncs


def burst(directory: Path, policy: str, count: int) -> tuple[float, int]:
    """Seconds from the first append of a burst to its last record durable; fsyncs used."""
    done = threading.Event()

    def on_durable(seq: int) -> None:
        if seq >= count:
            done.set()

    with Journal.open(directory, fsync=FsyncPolicy.parse(policy)) as journal:
        journal.add_durability_listener(on_durable)
        before = journal.stats().fsyncs
        began = time.perf_counter()
        for _ in range(count):
            journal.append(PAYLOAD)
        if journal.durable_seq < count:
            done.wait(60)
        elapsed = time.perf_counter() - began
        return elapsed, journal.stats().fsyncs - before


# -- snapshots ------------------------------------------------------------------------------


def trade(state: OmsState, first: int, count: int, ts: list[int]) -> list[bytes]:
    """``count`` market orders, each registered, submitted, accepted and filled."""
    records = []
    for number in range(first, first + count):
        coid = f"s1-{number}"
        side = Side.BUY if number % 2 else Side.SELL
        order = SubmitOrder(
            client_order_id=coid,
            strategy_id="s1",
            venue="paper",
            symbol="BTCUSDT",
            side=side,
            order_type=OrderType.MARKET,
            quantity=Decimal("0.001"),
        )
        for step in range(4):
            ts[0] += 1
            if step == 0:
                state.register(order, ts[0])
            elif step == 1:
                state.mark_submitted(coid, ts[0])
            elif step == 2:
                state.apply(
                    OrderAccepted(client_order_id=coid, venue="paper", venue_order_id=f"v{number}"),
                    ts[0],
                )
            else:
                state.apply(
                    OrderFilled(
                        client_order_id=coid,
                        venue="paper",
                        venue_order_id=f"v{number}",
                        execution_id=f"x{number}",
                        symbol="BTCUSDT",
                        side=side,
                        last_quantity=Decimal("0.001"),
                        last_price=Decimal("50000.1"),
                        commission=Decimal("0.01"),
                        commission_asset="USDT",
                    ),
                    ts[0],
                )
            records.append(b"r" * 120)
    return records


def old_snapshot(journal: Journal, seq: int, state: OmsState) -> float:
    """The previous OMS path, all on the calling thread; seconds it took."""
    began = time.perf_counter()
    journal.write_snapshot(seq, msgpack.packb(state.snapshot(), use_bin_type=True))
    journal.compact()
    return time.perf_counter() - began


class Probe:
    """An idle actor's view of the GIL: sleeps 1 ms, and notes how late it woke up (its
    wait for the GIL once the sleep is over, as a message's thread waits)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.late: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            began = time.perf_counter()
            time.sleep(0.001)
            self.late.append(time.perf_counter() - began - 0.001)


def snapshots(directory: Path, orders: int, rounds: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        "old cold": [],
        "old warm": [],
        "new cold": [],
        "new warm": [],
        "probe p99 late old": [],
        "probe p99 late new": [],
        "probe max late old": [],
        "probe max late new": [],
    }
    for round_number in range(rounds):
        for way in ("old", "new"):
            where = directory / f"snap-{way}-{round_number}"
            state, ts = OmsState(completed_capacity=10_000), [0]
            with Journal.open(where, fsync=FsyncPolicy.GROUP) as journal:
                writer = OmsJournal(journal, snapshot_every=1)
                for phase, count in (("cold", orders), ("warm", 1_250)):
                    first = 0 if phase == "cold" else orders
                    for payload in trade(state, first, count, ts):
                        writer.last_seq = journal.append(payload)
                    journal.flush()
                    probe = Probe()
                    probe.thread.start()
                    if way == "old":
                        stalled = old_snapshot(journal, writer.last_seq, state)
                    else:
                        began = time.perf_counter()
                        writer.snapshot_if_due(state.snapshot)
                        stalled = time.perf_counter() - began
                        journal.latest_snapshot()  # waits for the background write
                    probe.stop.set()
                    probe.thread.join()
                    figures[f"{way} {phase}"].append(stalled)
                    figures[f"probe p99 late {way}"].append(pct(probe.late or [0.0], 0.99))
                    figures[f"probe max late {way}"].append(max(probe.late, default=0.0))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lone", type=int, default=300, help="lone records per policy")
    parser.add_argument("--burst", type=int, default=2_000)
    parser.add_argument("--orders", type=int, default=10_000, help="completed orders")
    parser.add_argument("--rounds", type=int, default=3, help="snapshot rounds (median)")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    base = args.dir or RESULTS
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="journal-gc-", suffix=".tmp", dir=base))
    print(f"load {os.getloadavg()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}")
    try:
        floor = bare_fsync(work, args.lone)
        f50, f99 = pct(floor, 0.5) * 1e6, pct(floor, 0.99) * 1e6
        print(
            f"\n1. lone record, append -> durable (floor: bare write+fsync p50 {f50:,.0f} us,"
            f" p99 {f99:,.0f} us)"
        )
        print(f"{'policy':<16} {'p50 us':>9} {'p99 us':>9} {'p50/floor':>10} {'fsyncs/rec':>11}")
        for policy in ("every_record", "group:2ms:256", "group"):
            samples, fsyncs = lone_records(work / policy.replace(":", "_"), policy, args.lone)
            p50, p99 = pct(samples, 0.5) * 1e6, pct(samples, 0.99) * 1e6
            print(
                f"{policy:<16} {p50:>9,.0f} {p99:>9,.0f} {p50 / f50:>9.2f}x"
                f" {fsyncs / args.lone:>11.2f}"
            )
        print(f"\n2. burst of {args.burst} records from one thread")
        print(f"{'policy':<16} {'ms to last durable':>19} {'fsyncs':>7}")
        for policy in ("group:2ms:256", "group"):
            elapsed, fsyncs = burst(work / f"burst-{policy.replace(':', '_')}", policy, args.burst)
            print(f"{policy:<16} {elapsed * 1e3:>19,.1f} {fsyncs:>7}")
        print(
            f"\n3. OMS snapshot of {args.orders:,} completed orders (+1,250 for warm),"
            f" median of {args.rounds}: time the OMS thread is stopped"
        )
        figures = snapshots(work, args.orders, args.rounds)
        for name, values in figures.items():
            print(
                f"{name:<20} median {statistics.median(values) * 1e3:>8.1f} ms"
                f"   max {max(values) * 1e3:>8.1f} ms"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
