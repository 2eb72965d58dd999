"""What one actor hop costs on this machine, across CPUs and on one CPU; and what an
idle spell costs the work after it.

Run from a checkout (not a test; reports only)::

    .venv/bin/python benchmarks/wake_cost.py [--hops 20000] [--cpu 1]

Two bare pykka ThreadingActors play ping-pong: each handler tells the other
actor the next ball, so every tell finds its recipient asleep on its mailbox
(under the GIL the teller runs only once the other thread has blocked), as
most tells on a node's order path do when one order is in flight. Printed
for each placement:

- hop p50 / p99: from ``tell`` to the recipient's handler, wall clock (half
  a round trip would hide which way is slower; both ways are one sample);
- tell CPU p50: the teller's own thread CPU inside ``tell``
  (``time.thread_time_ns``), the part of a wake-up its sender pays before it
  can go on with its handler.

First with the threads free to run on every CPU the process may use (the
default: the scheduler wakes the recipient on another CPU), then with the
process pinned to one CPU (``--cpu``, as ``taskset -c 1`` pins a node), which
turns every wake-up into a switch on the same CPU. On a virtual machine a
wake-up on another CPU is an inter-processor interrupt through the
hypervisor; the difference between the two placements is what the node's
order path pays per hop for it, and the floors pay it too.

Last, what an idle spell costs the work that follows it: one order's worth of
the node's own code (``tradenode.messages``: a ``SubmitOrder`` built and
validated, encoded and decoded), timed back to back, after the thread slept
(``time.sleep``: its CPU may halt), and after it spun for as long (its CPU
never idle). One run on this machine (halt polling off), p50: 25.6 us back to
back; after 0.2 / 1 / 5 ms asleep 35.6 / 48.2 / 115 us, after spinning as long
27.3 / 31.4 / 47.2 us. What the work touches goes cold while its CPU idles (the
caches, and on a virtual machine whatever else the host puts on that CPU
meanwhile), and the longer the idle spell the colder.

One order in flight leaves every thread of a node idle between its messages,
so each handler runs so; a burst keeps them busy. The latency benchmark's
``latency.cpu_per_order*`` (the closed loop's CPU per order, the floor's
beside it) and the throughput benchmark's ``throughput.*.cpu_per_order``
(the burst's) show the same difference on the node as a whole.

First line: how the machine's idle CPUs wait. A KVM guest's ``haltpoll``
idle driver polls ``guest_halt_poll_ns`` before it halts the virtual CPU (the
kernel's default: 200,000); a wake-up within that window needs no
interrupt through the hypervisor. With it at 0 every wake-up of an idle CPU
does. As root, for one experiment: ``echo 200000 >
/sys/module/haltpoll/parameters/guest_halt_poll_ns`` (and back).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from decimal import Decimal
from typing import Any

import pykka

from tradenode.messages import OrderType, Side, SubmitOrder, decode, encode


class _Ball:
    __slots__ = ("remaining", "told_ns")

    def __init__(self, remaining: int, told_ns: int) -> None:
        self.remaining = remaining
        self.told_ns = told_ns


class _Meet:
    __slots__ = ("other",)

    def __init__(self, other: pykka.ActorRef[Any]) -> None:
        self.other = other


class _Player(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, done: threading.Event) -> None:
        super().__init__()
        self.other: pykka.ActorRef[Any] | None = None
        self.done = done
        self.hops_ns: list[int] = []
        self.tell_cpu_ns: list[int] = []

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Meet):
            self.other = message.other
            return None
        if not isinstance(message, _Ball):
            return None
        self.hops_ns.append(time.perf_counter_ns() - message.told_ns)
        if message.remaining == 0:
            self.done.set()
            return None
        assert self.other is not None
        began = time.thread_time_ns()
        self.other.tell(_Ball(message.remaining - 1, time.perf_counter_ns()))
        self.tell_cpu_ns.append(time.thread_time_ns() - began)
        return None


def measure(hops: int) -> tuple[list[int], list[int]]:
    """Hop latencies and tell CPU (ns) over ``hops`` hops between two fresh actors."""
    done = threading.Event()
    first = _Player.start(done)
    second = _Player.start(done)
    try:
        first.ask(_Meet(second))
        second.ask(_Meet(first))
        first.tell(_Ball(hops, time.perf_counter_ns()))
        if not done.wait(600):
            raise RuntimeError(f"{hops} hops did not finish within 600 s")
        players = [first.proxy(), second.proxy()]
        latencies = [n for player in players for n in player.hops_ns.get()]
        cpu = [n for player in players for n in player.tell_cpu_ns.get()]
        return latencies[1:], cpu  # the first hop is the main thread's tell
    finally:
        first.stop()
        second.stop()


def _percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] / 1000


def _report(label: str, latencies: list[int], cpu: list[int]) -> None:
    print(
        f"{label:34s} hop p50 {statistics.median(latencies) / 1000:7.1f} us"
        f"  p99 {_percentile(latencies, 0.99):7.1f} us"
        f"  tell CPU p50 {statistics.median(cpu) / 1000:6.1f} us"
    )


def _order_work(index: int) -> None:
    """One order's worth of the node's code: an intent built (and validated), and
    encoded and decoded as the wire codec does."""
    order = SubmitOrder(
        client_order_id=f"cold{index}",
        strategy_id="wake",
        venue="paper",
        symbol="BTCUSDT",
        side=Side.BUY if index % 2 else Side.SELL,
        order_type=OrderType.MARKET,
        quantity=Decimal("0.001"),
    )
    decode(encode(order))


def work_after(gap_s: float, *, spin: bool, samples: int) -> float:
    """p50 us of ``_order_work`` after each gap of ``gap_s``: slept (``spin`` False)
    or spun on the clock (True); back to back for a gap of 0."""
    timings: list[int] = []
    for index in range(samples):
        if spin:
            until = time.perf_counter() + gap_s
            while time.perf_counter() < until:
                pass
        elif gap_s:
            time.sleep(gap_s)
        began = time.perf_counter_ns()
        _order_work(index)
        timings.append(time.perf_counter_ns() - began)
    return statistics.median(timings) / 1000


def _report_work(samples: int) -> None:
    for index in range(samples):  # warm up
        _order_work(index)
    cells = [f"back to back {work_after(0.0, spin=False, samples=samples):.1f}"]
    for gap_ms in (0.2, 1.0, 5.0):
        slept = work_after(gap_ms / 1000, spin=False, samples=samples)
        spun = work_after(gap_ms / 1000, spin=True, samples=samples)
        cells.append(f"after {gap_ms:g} ms asleep {slept:.1f} / spinning {spun:.1f}")
    print("one order's node work p50 (us): " + "; ".join(cells))


def _idle_setting() -> str:
    """The idle driver and the guest's halt polling, as far as Linux shows them."""
    shown = []
    for label, path in (
        ("cpuidle driver", "/sys/devices/system/cpu/cpuidle/current_driver"),
        ("guest_halt_poll_ns", "/sys/module/haltpoll/parameters/guest_halt_poll_ns"),
    ):
        try:
            with open(path, encoding="ascii") as file:
                shown.append(f"{label} {file.read().strip()}")
        except OSError:
            shown.append(f"{label} unknown")
    return ", ".join(shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hops", type=int, default=20_000)
    parser.add_argument(
        "--work-samples", type=int, default=1_000, help="timings per gap of the order work"
    )
    allowed = sorted(os.sched_getaffinity(0))
    parser.add_argument("--cpu", type=int, default=allowed[-1], help="the CPU to pin to")
    args = parser.parse_args()
    if args.cpu not in allowed:
        raise SystemExit(f"--cpu {args.cpu}: this process may run on {allowed} only")
    print(_idle_setting())
    measure(1_000)  # warm up
    _report(f"free on cpus {allowed}", *measure(args.hops))
    os.sched_setaffinity(0, {args.cpu})  # the actors started next inherit it
    measure(1_000)
    _report(f"pinned to cpu {args.cpu}", *measure(args.hops))
    os.sched_setaffinity(0, set(allowed))
    _report_work(args.work_samples)


if __name__ == "__main__":
    main()
