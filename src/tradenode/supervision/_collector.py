"""Large structures built in one go, out of the cyclic garbage collector's way.

A node builds tens of thousands of live, acyclic containers at once in two
places: an OMS snapshot's plain data (on the OMS's thread, alive until the
journal's snapshot thread has packed it) and the state a restart recovers
from the journal. Left to the collector, their allocations set off
collections that walk all of it and free nothing. The runtime's, beside the
threads' scheduling policy (``_scheduling``): both are the process's, and the
node's own setting of the collector's thresholds is ``tradenode._gc``'s.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while the body builds; what it built is then moved to the
    oldest generation unwalked.

    Pausing alone is not enough: the young generation's count keeps rising
    while the collector is off, so the first allocation after ``gc.enable``
    sets off one collection of everything the body built, and ten such make
    a middle collection of it all. Measured on the OMS's snapshots: 6-16 ms
    of young collection per snapshot in a 12,000-order closed loop, 57 and
    115 ms at the longest in a 20,000-order burst; on a restart from a
    100,000-record journal, ~100 ms of young, middle and full collections.

    ``gc.freeze`` then ``gc.unfreeze`` moves every tracked object to the
    oldest generation and zeroes the young count in constant time (two list
    splices in CPython's collector), so none of it is walked until a full
    collection; a snapshot's containers are freed by reference counting once
    packed, before any. Objects young at that moment are promoted with them:
    a cycle among them waits for a full collection (an order leaves no
    cycles: ``tradenode._gc``). Skipped when the application keeps objects
    frozen itself (a pre-fork server does, to keep pages shared): unfreezing
    would hand its objects back. A collector the application turned off is
    left off, and nothing is promoted.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
