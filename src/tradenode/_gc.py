"""Python's cyclic garbage collector while nodes run: fewer collections of nothing.

Why: an order leaves no cycles behind (reference counting frees what it
allocated), yet with Python's settings (a collection of the youngest
generation whenever tracked allocations outrun deallocations by 700) the
collector ran every ~60 orders, each run walking the young objects to
find no garbage. Measured on the throughput benchmark's burst of 20,000
orders with group commit (2 cores): 320 young, 29 middle and 3 full
collections, which freed 10 objects between
them. Throughput with group commit, three alternated rounds of three
bursts: ~6,620 orders/s with Python's threshold, ~7,160 with 20,000. A
sweep in one series (medians of three, noisy): 700 ~6,630, 2,000 ~6,920,
5,000 ~7,050, 20,000 ~7,100, 50,000 ~7,240, 100,000 ~7,320; past 20,000
the gain is small and each young collection walks more live objects, a
pause on whichever order is in flight.

Tried and left out: ``gc.freeze`` once the node has started (the
imported libraries and the node's long-lived structures out of every
full collection). It added ~2% to the burst's rate, but the memory
benchmark's RSS growth per million orders went from 27-57 MB over five
runs to 48-234 MB over seven.

The collector is the process's, not the node's, so the setting is held by
reference: the first node to ``engage`` saves the thresholds it finds and
applies its ``GcConfig``, later ones only count, and the last ``release``
puts the saved thresholds back. An application that tunes the collector
itself sets ``node.gc.young_threshold`` to null.
"""

from __future__ import annotations

import gc
import logging
import threading

from ._config import GcConfig

__all__ = ["PROCESS_COLLECTOR", "Collector", "GcHold"]

logger = logging.getLogger("tradenode.node")


class Collector:
    """Who holds the collector's settings: how many, and what to put back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved_thresholds: tuple[int, int, int] | None = None

    @property
    def holders(self) -> int:
        return self._holders

    def hold(self, config: GcConfig) -> None:
        with self._lock:
            self._holders += 1
            if self._holders == 1 and config.young_threshold is not None:
                self._saved_thresholds = gc.get_threshold()
                _, middle, old = self._saved_thresholds
                gc.set_threshold(config.young_threshold, middle, old)
                logger.debug("collector thresholds now %s", gc.get_threshold())

    def let_go(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._saved_thresholds is not None:
                gc.set_threshold(*self._saved_thresholds)
                self._saved_thresholds = None


#: The process's: every node holds it while it runs.
PROCESS_COLLECTOR = Collector()


class GcHold:
    """One node's hold on the collector's settings: ``engage`` once started, ``release``
    when stopped (both idempotent)."""

    def __init__(self, config: GcConfig, collector: Collector = PROCESS_COLLECTOR) -> None:
        self.config = config
        self._collector = collector
        self._engaged = False

    @property
    def engaged(self) -> bool:
        return self._engaged

    def engage(self) -> None:
        """Apply the settings when no other node holds them."""
        if not self._engaged:
            self._engaged = True
            self._collector.hold(self.config)

    def release(self) -> None:
        """Give the hold back; the last one puts the saved thresholds back."""
        if self._engaged:
            self._engaged = False
            self._collector.let_go()
