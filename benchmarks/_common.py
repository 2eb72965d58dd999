"""What every benchmark shares: result records, percentiles, RSS, node configs."""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tradenode import Node, parse_config
from tradenode.supervision import SystemClock

perf_ns = time.perf_counter_ns

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# -- options ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The counts every benchmark reads; ``--quick`` shrinks them for a smoke run."""

    quick: bool = False
    latency_orders: int = 100_000
    latency_warmup: int = 2_000
    latency_off_orders: int = 20_000
    throughput_orders: int = 20_000
    throughput_runs: int = 3
    wire_requests: int = 2_000
    recovery_trials: int = 5
    restart_events: int = 100_000
    restart_runs: int = 5
    kill_orders: int = 1_000
    kill_runs: int = 5
    memory_orders: int = 1_000_000
    memory_chunk: int = 2_000

    @classmethod
    def quick_defaults(cls) -> Options:
        return cls(
            quick=True,
            latency_orders=5_000,
            latency_warmup=500,
            latency_off_orders=2_000,
            throughput_orders=2_000,
            throughput_runs=1,
            wire_requests=200,
            recovery_trials=2,
            restart_events=20_000,
            restart_runs=2,
            kill_orders=1_000,
            kill_runs=2,
            # RSS swings ~15 MB with the OMS's snapshots (every 5,000 records): over
            # 50,000 orders that swing alone extrapolates to hundreds of MB a million.
            # And RSS settles for its first ~150,000-250,000 orders past the warm-up
            # (the allocator's arenas; the Python objects traced stay flat), so a
            # second half inside that still rises: the first 200,000 orders of seven
            # full runs extrapolate to -3 ... 125 MB a million where the same runs
            # measured 4 ... 53, their first 400,000 to -8 ... 63.
            memory_orders=400_000,
            memory_chunk=2_000,
        )


# -- results ------------------------------------------------------------------------------


def result(
    name: str,
    title: str,
    *,
    value: float,
    unit: str,
    floor: float | None,
    better: str = "lower",
    target: tuple[str, float, str] | None = None,
    target_text: str = "",
    notes: str = "",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One reported figure.

    ``target`` is ``(op, bound, of)``: ``op`` is ``"<="`` or ``">="``, ``of`` is
    ``"value"`` (the measured figure, in ``unit``) or ``"ratio"`` (measured /
    floor). ``ratio`` is always measured / floor, so for a throughput (higher
    is better) a ratio below 1 is the slowdown against the floor.
    """
    ratio = value / floor if floor not in (None, 0) and floor is not None else None
    record: dict[str, Any] = {
        "name": name,
        "title": title,
        "value": value,
        "unit": unit,
        "floor": floor,
        "ratio": ratio,
        "better": better,
        "target": None,
        "met": None,
        "miss": "",
        "notes": notes,
        "details": details or {},
    }
    if target is not None:
        op, bound, of = target
        subject = value if of == "value" else ratio
        record["target"] = {"op": op, "bound": bound, "of": of, "text": target_text}
        if subject is not None:
            met = subject <= bound if op == "<=" else subject >= bound
            record["met"] = bool(met)
            # How many times the target: > 1 means missed, whichever direction is good.
            record["target_fraction"] = subject / bound if op == "<=" else bound / subject
            if not met:
                record["miss"] = _miss_text(subject, bound, op, of, unit)
    return record


def _miss_text(subject: float, bound: float, op: str, of: str, unit: str) -> str:
    shown_unit = "x floor" if of == "ratio" else f" {unit}"
    got, limit = f"{fmt(subject)}{shown_unit}", f"{fmt(bound)}{shown_unit}"
    if op == "<=":
        return f"{got} vs <= {limit}: {subject / bound:.2f}x the target"
    return f"{got} vs >= {limit}: {subject / bound:.0%} of the target"


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def error_result(name: str, error: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": f"{name} (failed)",
        "value": None,
        "unit": "",
        "floor": None,
        "ratio": None,
        "better": "lower",
        "target": None,
        "met": False,
        "miss": f"benchmark failed: {error}",
        "notes": "",
        "details": {"error": error},
    }


# -- statistics ---------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return float(sorted_values[rank - 1])


def summarize_ns(samples_ns: Iterable[int]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max/mean of nanosecond samples, in microseconds."""
    values = sorted(samples_ns)
    micro = [v / 1000 for v in values]
    return {
        "count": len(micro),
        "p50": percentile(micro, 0.50),
        "p90": percentile(micro, 0.90),
        "p99": percentile(micro, 0.99),
        "p99.9": percentile(micro, 0.999),
        "max": micro[-1],
        "mean": sum(micro) / len(micro),
    }


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


# -- the machine --------------------------------------------------------------------------


def rss_mb() -> float:
    """This process's resident set size now, from /proc (no psutil)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def schedule_like_the_node() -> bool:
    """Put this thread, and so every thread it starts from now on, under the scheduling
    policy a node runs its threads under by default (``SCHED_BATCH``: see
    ``tradenode.supervision._scheduling``); whether it is under it now.

    Called first in every benchmark process, so that the floors (bare pykka actors,
    bare clients and their trio threads) run under the same policy as the node they
    are the floor of: it makes hops cheaper for them too, and a floor left under the
    system's default would flatter the node. The venue processes go back to the
    system's default (``_venue_process``): an exchange runs on other machines.

    Imported here, not at the top: ``ab.py`` runs this harness against versions
    of the node from before the policy, which never call this.
    """
    # The node's default policy, and how the runtime applies it to a thread.
    from tradenode._config import NodeSection  # noqa: PLC0415 - see above
    from tradenode.supervision._scheduling import apply_thread_scheduling  # noqa: PLC0415

    return apply_thread_scheduling(NodeSection().thread_scheduling)


def thread_scheduling_name() -> str:
    """The calling thread's scheduling policy as Linux names it (``SCHED_BATCH``), for the
    run's record; "unknown" where the platform does not say."""
    try:
        policy = os.sched_getscheduler(0)
    except (AttributeError, OSError):
        return "unknown"
    for name in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_FIFO", "SCHED_RR"):
        if getattr(os, name, None) == policy:
            return name
    return f"policy {policy}"


#: Where a benchmark process pinned with ``--cpus`` leaves the CPUs it had, for the
#: venue processes it starts (``_venue_process``), which run on them.
VENUE_CPUS_ENV = "TRADENODE_BENCHMARK_VENUE_CPUS"


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
    info["temp_dir"] = tempfile.gettempdir()
    fs_type, mount_options = _mount(Path(tempfile.gettempdir()))
    info["temp_dir_fs"] = fs_type
    info["temp_dir_mount_options"] = mount_options
    try:
        info["load_average"] = os.getloadavg()
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            info["mem_total_mb"] = int(meminfo.readline().split()[1]) // 1024
    except OSError:
        pass
    idle = cpu_idle_info()
    if idle:
        info["cpuidle"] = idle
    info["thread_scheduling"] = thread_scheduling_name()
    return info


#: Where Linux says how an idle CPU waits, and (a KVM guest's ``haltpoll``) how long it
#: polls before it halts. The kernel's default poll is 200,000 ns; 0 halts at once.
_CPUIDLE_FILES: Final[dict[str, str]] = {
    "driver": "/sys/devices/system/cpu/cpuidle/current_driver",
    "governor": "/sys/devices/system/cpu/cpuidle/current_governor_ro",
    "guest_halt_poll_ns": "/sys/module/haltpoll/parameters/guest_halt_poll_ns",
}


def cpu_idle_info() -> dict[str, str]:
    """How this machine's idle CPUs wait (what of it Linux shows; {} elsewhere).

    On a virtual machine a thread woken on an idle CPU that has halted costs
    a trip through the hypervisor (``benchmarks/wake_cost.py``: ~37 us a hop
    with ``guest_halt_poll_ns`` 0, ~9 us with the kernel's default 200,000),
    and every floor here is made of such hops: runs on machines that differ
    in this are not comparable.
    """
    info: dict[str, str] = {}
    for key, path in _CPUIDLE_FILES.items():
        try:
            with open(path, encoding="ascii") as file:
                info[key] = file.read().strip()
        except OSError:
            continue
    return info


def describe_cpu_idle(info: dict[str, str]) -> str:
    """One phrase for a run's header: the idle driver, and the guest's halt polling."""
    if not info:
        return "cpuidle unknown"
    text = f"cpuidle {info.get('driver', '?')}"
    poll = info.get("guest_halt_poll_ns")
    if poll is not None:
        text += f" (guest_halt_poll_ns {poll})"
    return text


def _mount(path: Path) -> tuple[str, str]:
    """The type and mount options of the file system ``path`` is on (journals live in
    the temp dir: tmpfs would make fsync free, and with ext4's online ``discard`` the
    blocks a compaction frees go to the disk as TRIM beside the commits, which measured
    a little slower at their tail; README)."""
    best, kind, options = "", "unknown", ""
    resolved = str(path.resolve())
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                mount_point, fs_type = fields[1], fields[2]
                inside = resolved == mount_point or resolved.startswith(
                    mount_point.rstrip("/") + "/"
                )
                if inside and len(mount_point) > len(best):
                    best, kind, options = mount_point, fs_type, fields[3]
    except (OSError, IndexError):
        pass
    return kind, options


def describe_journal_disk(machine: dict[str, Any]) -> str:
    """One phrase for a run's header: where the journals are written, and whether that
    file system discards freed blocks online (``discard``), which can move the commits' tail."""
    options = machine.get("temp_dir_mount_options", "").split(",")
    discard = "discard" if "discard" in options else "no online discard"
    return f"journal on {machine.get('temp_dir_fs', 'unknown')} ({discard})"


def quiet_logging() -> None:
    """The node logs warnings a benchmark provokes on purpose (outages, kill switch)."""
    logging.getLogger("tradenode").setLevel(logging.CRITICAL)
    logging.getLogger("hypercorn").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.CRITICAL)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.001)


def wait_event(event: threading.Event, timeout: float, what: str) -> None:
    if not event.wait(timeout):
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# -- nodes on the paper venue -------------------------------------------------------------

# A quiet market (no price ticks during a run), every market order filled at
# once, and breaker limits far above what a run sends: the figures are the
# engine's, not a rate limiter's. ``ack_timeout`` is long because a burst
# queues thousands of orders at once; with the default 5 s the tail of a
# 20k-order burst would trigger status queries that a real flow never sees.
_PAPER_VENUE = (
    "  - {{name: {name}, paper: {{latency_ms: 0, tick_interval_ms: 100000000, fill_probability: 1.0}},"
    " breaker: {{rate_per_second: 1000000000, burst: 1000000000, request_timeout: 60}}}}\n"
)

GROUP_COMMIT = "group"
"""The journal's default policy (``journal.fsync`` in the config, and the README's)."""

#: How the journal makes a commit's records durable (``tradenode.journal``'s
#: ``sync_data``): ``fdatasync``, or ``fsync`` where there is none. The design
#: floors commit their record the same way, so they stay the least this design pays.
journal_sync: Final[Callable[[int], None]] = getattr(os, "fdatasync", os.fsync)


def paper_config_text(
    venues: Sequence[str] = ("paper",),
    *,
    journal_dir: Path | None = None,
    fsync: str = GROUP_COMMIT,
    completed_capacity: int | None = None,
    ack_timeout: float = 120.0,
) -> str:
    text = "node: {name: bench, seed: 1, intensity: {max_restarts: 100, within_seconds: 10}}\n"
    text += "venues:\n" + "".join(_PAPER_VENUE.format(name=name) for name in venues)
    oms = f"oms: {{ack_timeout: {ack_timeout}"
    if completed_capacity is not None:
        oms += f", completed_capacity: {completed_capacity}"
    text += oms + "}\nstatus_interval: 1000\n"
    if journal_dir is not None:
        text += f"journal: {{path: '{journal_dir}', fsync: '{fsync}'}}\n"
    return text


def journal_label(fsync: str | None) -> str:
    return "journal off" if fsync is None else f"journal {fsync}"


def start_node(text: str, *, start_venues: bool = True) -> Node:
    config = parse_config(text)
    if not start_venues:
        config = config.model_copy(update={"venues": ()})
    node = Node(config, clock=SystemClock())
    node.start()
    return node


def stop_node(node: Node) -> None:
    node.stop(timeout=30)
