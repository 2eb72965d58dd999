"""Floors: bare pykka ThreadingActors doing nothing, wired like the node's actors.

The node's order path (see docs/architecture.md, "Message flow", and
``_node.py``) has one actor per role, each a pykka ThreadingActor under the
supervision runtime's cell:

    strategy -> risk -> oms -> breaker -> broker      (the order leaves for the venue)
    broker -(venue's report, to its own mailbox)-> broker -> oms -> strategy

So the floor of "decision to the venue" is 4 mailbox hops over 5 threads,
the floor of "report at the broker to the strategy" is 3 hops (the broker's
own mailbox, the OMS, the strategy), and the floor of the round trip is the
7 hops in one pipeline. These are the issue's floors and stay so: since lent
turns (``docs/architecture.md``) the node itself runs an idle paper order's
path on the strategy's thread, without those hops, so its decision -> venue
with the journal off can be under this floor. The same five bare actors (plus a second breaker and
broker for the kill switch's two venues) route a plain object along those
hops and do nothing else: no supervision cell, no envelope, no state.

``BarePipeline(design=True)`` is the design's floor on the paper venue: the
same actors sending the messages the node sends per order on those paths,
still with no work in them. The OMS tells the strategy the order went
(``Routed``) after the breaker the order; the venue answers a market order
with an accept and a fill, both through the broker's mailbox to the OMS;
the OMS tells the strategy the accept, then the risk guard the fill (with
its position) and the strategy the fill. What the node adds over it is its
own work; what it adds over the bare floor is the node's messages (each a
tell, and a wake-up when its recipient sleeps) and that work.

``floor_latency(..., design=True, commit=True)`` adds the journal's commit to
that: the OMS writes each order's 100-byte record over zeros written ahead in a
file of the run's temporary directory and syncs it as the journal does
(``fdatasync``), on its own thread, before
it tells the breaker (as the node's OMS leads its commit when idle). It is the
least this design can do with group commit, tail included: a reference for the
p99 target, which a floor without the disk cannot be.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pykka

from ._common import journal_sync, perf_ns, rss_mb, wait_event


class _Numbered:
    """A plain object carrying an order's number along the hops."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n


class _Order(_Numbered):
    __slots__ = ()


class _Report(_Numbered):
    __slots__ = ()


class _Reply(_Numbered):
    __slots__ = ()


class _Accept(_Numbered):
    __slots__ = ()


class _Routed(_Numbered):
    __slots__ = ()


class _FillAndPosition(_Numbered):
    __slots__ = ()


class _Go:
    __slots__ = ("count",)

    def __init__(self, count: int) -> None:
        self.count = count


class _Forward(pykka.ThreadingActor):
    """risk / breaker: pass orders on; the breaker also swallows the broker's reply."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.next: pykka.ActorRef[Any] | None = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Order):
            assert self.next is not None
            self.next.tell(message)
        return None


class _Commit:
    """One record's commit as the journal makes it: 100 bytes written where the file
    already has durable bytes (zeros written ahead the first time round a 1 MiB file,
    earlier records after), then the journal's sync (``fdatasync``): no new size or
    block to make durable."""

    RECORD = b"x" * 100
    SIZE = 1 << 20

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(self.fd, bytes(self.SIZE))
        os.fsync(self.fd)
        self.at = 0

    def record(self) -> None:
        os.pwrite(self.fd, self.RECORD, self.at)
        journal_sync(self.fd)
        self.at = (self.at + len(self.RECORD)) % (self.SIZE - len(self.RECORD))

    def close(self) -> None:
        os.close(self.fd)


class _Oms(pykka.ThreadingActor):
    """Orders to a breaker (alternating over the venues), reports to the strategy."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.breakers: list[pykka.ActorRef[Any]] = []
        self.strategy: pykka.ActorRef[Any] | None = None
        self.risk: pykka.ActorRef[Any] | None = None
        self.design = False
        self.commit: _Commit | None = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Order):
            if self.commit is not None:
                self.commit.record()
            self.breakers[message.n % len(self.breakers)].tell(message)
            if self.design:
                assert self.strategy is not None
                self.strategy.tell(_Routed(message.n))
        elif isinstance(message, _Report):
            assert self.strategy is not None
            if self.design:
                assert self.risk is not None
                self.risk.tell(_FillAndPosition(message.n))
            self.strategy.tell(message)
        elif isinstance(message, _Accept):
            assert self.strategy is not None
            self.strategy.tell(message)
        return None


class _Broker(pykka.ThreadingActor):
    """Stamps when the order "leaves", answers its breaker, and sends the venue's
    report through its own mailbox before passing it to the OMS, as the paper
    broker does."""

    use_daemon_thread = True

    def __init__(self, stamps: _Stamps) -> None:
        super().__init__()
        self.stamps = stamps
        self.breaker: pykka.ActorRef[Any] | None = None
        self.oms: pykka.ActorRef[Any] | None = None
        self.design = False

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Order):
            now = perf_ns()
            if self.stamps.enabled:
                self.stamps.left[message.n] = now
                self.stamps.arrived[message.n] = now
            if self.design:
                self.actor_ref.tell(_Accept(message.n))
            self.actor_ref.tell(_Report(message.n))
            assert self.breaker is not None
            self.breaker.tell(_Reply(message.n))
        elif isinstance(message, _Report | _Accept):
            assert self.oms is not None
            self.oms.tell(message)
        return None


class _Strategy(pykka.ThreadingActor):
    """Closed loop (one order in flight) or a burst; counts the reports back."""

    use_daemon_thread = True

    def __init__(self, stamps: _Stamps) -> None:
        super().__init__()
        self.stamps = stamps
        self.risk: pykka.ActorRef[Any] | None = None
        self.closed_loop = False
        self.sent = 0
        self.back = 0
        self.total = 0
        self.done = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Go):
            self.sent = self.back = 0
            self.total = message.count
            self.done = threading.Event()
            if self.closed_loop:
                self._decide()
            else:
                for _ in range(message.count):
                    self._decide()
            return self.done
        if isinstance(message, _Report):
            if self.stamps.enabled:
                self.stamps.callback[message.n] = perf_ns()
            self.back += 1
            if self.back >= self.total:
                self.done.set()
            elif self.closed_loop:
                self._decide()
        return None

    def _decide(self) -> None:
        n = self.sent
        self.sent += 1
        if self.stamps.enabled:
            self.stamps.decided[n] = perf_ns()
        assert self.risk is not None
        self.risk.tell(_Order(n))


@dataclass
class _Stamps:
    enabled: bool = False
    decided: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    arrived: list[int] = field(default_factory=list)
    callback: list[int] = field(default_factory=list)

    def reset(self, count: int) -> None:
        self.decided = [0] * count
        self.left = [0] * count
        self.arrived = [0] * count
        self.callback = [0] * count


class BarePipeline:
    """strategy -> risk -> oms -> breaker[i] -> broker[i] -> broker[i] -> oms -> strategy.

    ``design``: with the node's messages on those paths (see the module's docstring).
    """

    def __init__(
        self, venues: int = 1, *, design: bool = False, commit: _Commit | None = None
    ) -> None:
        self.stamps = _Stamps()
        self.cpu_per_order_us = 0.0
        """Set by ``latency``: the process's CPU per stamped order (us)."""
        self.strategy = _Strategy.start(self.stamps)
        self.risk = _Forward.start()
        self.oms = _Oms.start()
        self.breakers = [_Forward.start() for _ in range(venues)]
        self.brokers = [_Broker.start(self.stamps) for _ in range(venues)]
        strategy: Any = self.strategy.proxy()
        strategy.risk = self.risk
        self.risk.proxy().next = self.oms
        oms: Any = self.oms.proxy()
        oms.breakers = self.breakers
        oms.strategy = self.strategy
        oms.risk = self.risk
        oms.design = design
        oms.commit = commit
        for breaker, broker in zip(self.breakers, self.brokers, strict=True):
            breaker.proxy().next = broker
            proxy: Any = broker.proxy()
            proxy.breaker = breaker
            proxy.oms = self.oms
            proxy.design = design
        # Proxy attribute sets are asynchronous: make sure every one has landed.
        for ref in (self.strategy, self.risk, self.oms, *self.breakers, *self.brokers):
            ref.ask(None)

    def run(self, count: int, *, closed_loop: bool, timeout: float = 600) -> float:
        """Send ``count`` orders round the loop; seconds from the first decision to the last report."""
        strategy: Any = self.strategy.proxy()
        strategy.closed_loop = closed_loop
        started = perf_ns()
        done = self.strategy.ask(_Go(count))
        wait_event(done, timeout, "the bare pipeline")
        return (perf_ns() - started) / 1e9

    def latency(self, count: int, warmup: int) -> tuple[list[int], list[int]]:
        """Closed loop; per order: decision -> leaves the broker, report -> strategy (ns).

        Also sets ``cpu_per_order_us``: the process's CPU (every thread,
        ``time.process_time``) per order over the stamped orders."""
        self.stamps.enabled = False
        self.run(warmup, closed_loop=True)
        self.stamps.reset(count)
        self.stamps.enabled = True
        cpu_before = time.process_time()
        self.run(count, closed_loop=True)
        self.cpu_per_order_us = (time.process_time() - cpu_before) * 1e6 / count
        self.stamps.enabled = False
        s = self.stamps
        out = [s.left[i] - s.decided[i] for i in range(count)]
        back = [s.callback[i] - s.arrived[i] for i in range(count)]
        return out, back

    def stop(self) -> None:
        for ref in (self.strategy, self.risk, self.oms, *self.breakers, *self.brokers):
            ref.stop()


def floor_latency(
    count: int,
    warmup: int,
    *,
    design: bool = False,
    commit: bool = False,
    cpu: list[float] | None = None,
) -> tuple[list[int], list[int]]:
    """Closed loop through the bare pipeline; ``commit``: the OMS commits each order's
    record (``_Commit``, in the system's temporary directory, as the node's journal) first.
    ``cpu``, if given, gets the process's CPU per stamped order (us) appended."""
    if not commit:
        return _closed_loop(BarePipeline(design=design), count, warmup, cpu)
    with tempfile.TemporaryDirectory() as tmp:
        committer = _Commit(Path(tmp) / "commit")
        try:
            return _closed_loop(BarePipeline(design=design, commit=committer), count, warmup, cpu)
        finally:
            committer.close()


def _closed_loop(
    pipeline: BarePipeline, count: int, warmup: int, cpu: list[float] | None
) -> tuple[list[int], list[int]]:
    try:
        samples = pipeline.latency(count, warmup)
        if cpu is not None:
            cpu.append(pipeline.cpu_per_order_us)
        return samples
    finally:
        pipeline.stop()


def floor_throughput(count: int) -> tuple[float, float]:
    """Orders per second through the bare pipeline of the node's depth, in one burst,
    and the process's CPU per order in it (us, every thread: ``time.process_time``)."""
    pipeline = BarePipeline()
    try:
        pipeline.run(min(count, 1000), closed_loop=False)
        cpu_before = time.process_time()
        seconds = pipeline.run(count, closed_loop=False)
        cpu_us = (time.process_time() - cpu_before) * 1e6 / count
        return count / seconds, cpu_us
    finally:
        pipeline.stop()


def floor_memory(count: int, chunk: int) -> tuple[float, list[tuple[int, float]]]:
    """RSS growth (MB) while ``count`` orders pass the bare pipeline in bursts of ``chunk``."""
    pipeline = BarePipeline()
    try:
        pipeline.run(chunk, closed_loop=False)
        before = rss_mb()
        samples = [(0, before)]
        done = 0
        while done < count:
            n = min(chunk, count - done)
            pipeline.run(n, closed_loop=False)
            done += n
            samples.append((done, rss_mb()))
        return rss_mb() - before, samples
    finally:
        pipeline.stop()


# -- the kill switch's floor ------------------------------------------------------------


class _Halt:
    __slots__ = ()


class _Risk(pykka.ThreadingActor):
    use_daemon_thread = True

    def on_receive(self, message: Any) -> Any:
        return None  # answers the ask: trading halted


class _Canceller(pykka.ThreadingActor):
    """The OMS's part: a cancel per open order, alternating over two venues; counts acks."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.breakers: list[pykka.ActorRef[Any]] = []
        self.waiting = 0
        self.done = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Go):
            self.waiting = message.count
            self.done = threading.Event()
            for n in range(message.count):
                self.breakers[n % len(self.breakers)].tell(_Order(n))
            return self.done
        if isinstance(message, _Report):
            self.waiting -= 1
            if self.waiting == 0:
                self.done.set()
        return None


class BareKillSwitch:
    """risk (ask) -> oms -> breaker[i] -> broker[i] -> broker[i] (report) -> oms, per order."""

    def __init__(self, venues: int = 2) -> None:
        self.stamps = _Stamps()
        self.risk = _Risk.start()
        self.oms = _Canceller.start()
        self.breakers = [_Forward.start() for _ in range(venues)]
        self.brokers = [_Broker.start(self.stamps) for _ in range(venues)]
        self.oms.proxy().breakers = self.breakers
        for breaker, broker in zip(self.breakers, self.brokers, strict=True):
            breaker.proxy().next = broker
            proxy: Any = broker.proxy()
            proxy.breaker = breaker
            proxy.oms = self.oms
        for ref in (self.risk, self.oms, *self.breakers, *self.brokers):
            ref.ask(None)

    def run(self, count: int) -> float:
        started = perf_ns()
        self.risk.ask(_Halt())
        done = self.oms.ask(_Go(count))
        wait_event(done, 60, "the bare kill switch")
        return (perf_ns() - started) / 1e9

    def stop(self) -> None:
        for ref in (self.risk, self.oms, *self.breakers, *self.brokers):
            ref.stop()
