"""How long a node takes to rebuild its order book from a 100k-event journal.

Builds a journal the way the OMS writes it (intent, submitted, accepted,
fill per order; a snapshot every ``--snapshot-every`` records, older
segments compacted), then times what ``Node`` does on start: open the
journal (checking every checksum), restore the latest snapshot, replay
the tail. The full replay from the first record (no snapshot) is measured
alongside, as the floor snapshots improve on.

    python benchmarks/journal_restart.py [--events 100000] [--snapshot-every 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import msgpack

from tradenode.actors._oms_state import OmsState
from tradenode.journal import (
    EntryKind,
    FsyncPolicy,
    Journal,
    JournalEntry,
    decode_entry,
    encode_entry,
    replay,
)
from tradenode.messages import (
    LiquiditySide,
    OrderAccepted,
    OrderFilled,
    OrderType,
    Side,
    SubmitOrder,
)


def build(
    directory: Path, events: int, snapshot_every: int, keep: list[bytes], retained: int
) -> int:
    state = OmsState(completed_capacity=retained)
    written = 0
    last_snapshot = 0
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as journal:
        n = 0
        while written < events:
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
            entries = [
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
            for entry in entries:
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


def restart(directory: Path) -> tuple[float, int, int]:
    """What Node does on start; returns seconds, the snapshot's seq, records replayed."""
    started = time.perf_counter()
    with Journal.open(directory, fsync=FsyncPolicy.NONE) as journal:
        snapshot = journal.latest_snapshot()
        after = 0
        state = OmsState()
        if snapshot is not None:
            after, payload = snapshot
            state = OmsState.restore(msgpack.unpackb(payload, raw=False))
        result = replay(
            (decode_entry(payload) for _, payload in journal.replay(after)), state=state
        )
    replayed = sum(result.counts.values())
    return time.perf_counter() - started, after, replayed


def full_replay(entries: list[bytes]) -> float:
    started = time.perf_counter()
    replay(decode_entry(payload) for payload in entries)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--snapshot-every", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--retained",
        type=int,
        default=10_000,
        help="completed orders the OMS keeps in memory (oms.completed_capacity)",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/journal_restart.json")
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "journal"
        payloads: list[bytes] = []
        written = build(directory, args.events, args.snapshot_every, payloads, args.retained)
        restarts = [restart(directory) for _ in range(args.runs)]
        floor = full_replay(payloads)
    seconds = [run[0] for run in restarts]
    result = {
        "events": written,
        "snapshot_every": args.snapshot_every,
        "retained_completed_orders": args.retained,
        "restart_seconds_median": statistics.median(seconds),
        "restart_seconds_max": max(seconds),
        "snapshot_seq": restarts[0][1],
        "tail_records_replayed": restarts[0][2],
        "full_replay_seconds": floor,
    }
    print(
        f"journal of {written} events, snapshot every {args.snapshot_every}, "
        f"{args.retained} completed orders retained"
    )
    print(
        f"  restart (open + verify + snapshot + tail): median {result['restart_seconds_median']:.3f}s, max {result['restart_seconds_max']:.3f}s"
    )
    print(f"  full replay from record 1 (no snapshot):   {floor:.3f}s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
