"""What one actor hop costs on this machine, across CPUs and on one CPU.

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
from typing import Any

import pykka


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


if __name__ == "__main__":
    main()
