"""How long a node takes to rebuild its order book from a 100k-event journal.

Builds a journal the way the OMS writes it (intent, submitted, accepted,
fill per order; a snapshot every ``--snapshot-every`` records, older
segments compacted), then times what ``Node`` does on start: open the
journal (checking every checksum), restore the latest snapshot, replay
the tail. The full replay from the first record (no snapshot) is measured
alongside, as the floor snapshots improve on.

The defaults are the node's own (``journal.snapshot_every``,
``oms.completed_capacity``) with the worst tail they allow: the journal
ends one order short of the next snapshot, so the restart replays almost
``snapshot_every`` records after restoring a full completed-order LRU.

    python benchmarks/journal_restart.py                       # the node's defaults
    python benchmarks/journal_restart.py --snapshot-every 10000 --tail 0
    python benchmarks/journal_restart.py --retained 2000 --output results/x.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import msgpack

# The journal's and the OMS's config sections, built directly without a node.
from tradenode._config import JournalConfig, OmsConfig
from tradenode.actors import (
    EntryKind,
    JournalEntry,
    OmsState,
    decode_entry,
    encode_entry,
    recover,
    replay,
)

# The snapshot decoder alone, timed apart from the replay.
from tradenode.actors._oms_replay import state_from_snapshot
from tradenode.journal import FsyncPolicy, Journal
from tradenode.messages import (
    LiquiditySide,
    OrderAccepted,
    OrderFilled,
    OrderType,
    Side,
    SubmitOrder,
)

NODE_SNAPSHOT_EVERY: int = JournalConfig.model_fields["snapshot_every"].default
NODE_RETAINED: int = OmsConfig.model_fields["completed_capacity"].default
RECORDS_PER_ORDER = 4


def order_entries(n: int) -> list[JournalEntry]:
    client_order_id = f"bench-{n:x}"
    side = Side.BUY if n % 2 == 0 else Side.SELL
    order = SubmitOrder(
        client_order_id=client_order_id,
        strategy_id="bench",
        venue="binance",
        symbol="BTCUSDT",
        side=side,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.01"),
    )
    ts = 1_000_000 + n * 10
    return [
        JournalEntry(kind=EntryKind.REGISTER, ts_ns=ts, message=order),
        JournalEntry(kind=EntryKind.SUBMITTED, ts_ns=ts, client_order_id=client_order_id),
        JournalEntry(
            kind=EntryKind.REPORT,
            ts_ns=ts + 1,
            message=OrderAccepted(
                client_order_id=client_order_id,
                venue="binance",
                venue_order_id=str(n),
                ts_ns=ts + 1,
            ),
        ),
        JournalEntry(
            kind=EntryKind.REPORT,
            ts_ns=ts + 2,
            message=OrderFilled(
                client_order_id=client_order_id,
                venue="binance",
                venue_order_id=str(n),
                execution_id=f"binance-BTCUSDT-{n}",
                symbol="BTCUSDT",
                side=side,
                last_quantity=Decimal("0.01"),
                last_price=Decimal("50000.00") + n % 100,
                commission=Decimal("0.5"),
                commission_asset="USDT",
                liquidity=LiquiditySide.TAKER,
                ts_ns=ts + 2,
            ),
        ),
    ]


def journal_length(events: int, snapshot_every: int, tail: int) -> int:
    """Records to write so the last snapshot is followed by ``tail`` (whole orders' worth)."""
    if tail == 0:
        return events - events % snapshot_every
    last_snapshot = max(events - events % snapshot_every - snapshot_every, snapshot_every)
    return last_snapshot + tail - tail % RECORDS_PER_ORDER


def build(
    directory: Path, events: int, snapshot_every: int, keep: list[bytes], retained: int
) -> int:
    state = OmsState(completed_capacity=retained)
    written = 0
    last_snapshot = 0
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as journal:
        n = 0
        while written < events:
            for entry in order_entries(n):
                payload = encode_entry(entry)
                keep.append(payload)
                seq = journal.append(payload)
                replay([entry], state=state)
                written += 1
            if seq - last_snapshot >= snapshot_every:
                journal.write_snapshot(seq, msgpack.packb(state.snapshot(), use_bin_type=True))
                journal.compact()
                last_snapshot = seq
            n += 1
        journal.flush()
    return written


@dataclass(frozen=True)
class Restart:
    seconds: float
    cpu_seconds: float
    """This process's CPU time for the whole restart: steadier than wall time on a shared machine."""
    open_seconds: float
    """Open the journal: scan and checksum every segment."""
    restore_seconds: float
    """Unpack the snapshot and ``OmsState.restore`` it (timed again on its own, after)."""
    tail_seconds: float
    """Decode and replay the records after the snapshot: ``recover`` less the restore."""
    snapshot_seq: int
    replayed: int


def restart(directory: Path, retained: int) -> Restart:
    """What Node does on start (``tradenode._recovery.recover_node``): open the journal,
    then ``recover``; the restore's share is timed again on its own afterwards."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as journal:
        opened = time.perf_counter()
        result = recover(journal, completed_capacity=retained)
        finished = time.perf_counter()
        cpu_seconds = time.process_time() - cpu_started
        snapshot = journal.latest_snapshot()
        restore_seconds = 0.0
        if snapshot is not None:
            before_restore = time.perf_counter()
            state_from_snapshot(snapshot[1])
            restore_seconds = time.perf_counter() - before_restore
    return Restart(
        seconds=finished - started,
        cpu_seconds=cpu_seconds,
        open_seconds=opened - started,
        restore_seconds=restore_seconds,
        tail_seconds=max(0.0, finished - opened - restore_seconds),
        snapshot_seq=result.snapshot_seq,
        replayed=result.entries,
    )


def full_replay(entries: list[bytes], retained: int) -> float:
    started = time.perf_counter()
    replay(
        (decode_entry(payload) for payload in entries), state=OmsState(completed_capacity=retained)
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=NODE_SNAPSHOT_EVERY,
        help=f"records between snapshots (journal.snapshot_every, node default {NODE_SNAPSHOT_EVERY})",
    )
    parser.add_argument(
        "--tail",
        type=int,
        default=None,
        help="records after the last snapshot (default: snapshot_every - 1, the worst case)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--retained",
        type=int,
        default=NODE_RETAINED,
        help=f"completed orders the OMS keeps (oms.completed_capacity, node default {NODE_RETAINED})",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/journal_restart.json")
    )
    args = parser.parse_args()
    every = args.snapshot_every
    tail = every - 1 if args.tail is None else args.tail
    if not 0 <= tail < every:
        parser.error(f"--tail must be in [0, {every})")
    events = journal_length(args.events, every, tail)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "journal"
        payloads: list[bytes] = []
        written = build(directory, events, every, payloads, args.retained)
        restarts = [restart(directory, args.retained) for _ in range(args.runs)]
        floor = full_replay(payloads, args.retained)

    def median(name: str) -> float:
        return statistics.median(getattr(run, name) for run in restarts)

    seconds = [run.seconds for run in restarts]
    result = {
        "events": written,
        "snapshot_every": every,
        "retained_completed_orders": args.retained,
        "runs": args.runs,
        "restart_seconds_median": statistics.median(seconds),
        "restart_seconds_max": max(seconds),
        "restart_cpu_seconds_median": median("cpu_seconds"),
        "open_seconds_median": median("open_seconds"),
        "restore_seconds_median": median("restore_seconds"),
        "tail_seconds_median": median("tail_seconds"),
        "snapshot_seq": restarts[0].snapshot_seq,
        "tail_records_replayed": restarts[0].replayed,
        "full_replay_seconds": floor,
    }
    print(
        f"journal of {written} events, snapshot every {every} (last at "
        f"{result['snapshot_seq']}, {result['tail_records_replayed']} records after it), "
        f"{args.retained} completed orders retained, {args.runs} restarts"
    )
    print(
        f"  restart (open + verify + snapshot + tail): median {result['restart_seconds_median']:.3f}s, "
        f"max {result['restart_seconds_max']:.3f}s (CPU time median "
        f"{result['restart_cpu_seconds_median']:.3f}s)"
    )
    print(
        f"    open + verify {result['open_seconds_median']:.3f}s, "
        f"snapshot restore {result['restore_seconds_median']:.3f}s, "
        f"tail replay {result['tail_seconds_median']:.3f}s (medians)"
    )
    print(f"  full replay from record 1 (no snapshot):   {floor:.3f}s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
