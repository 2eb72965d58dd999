"""The commit-latency histogram counts each commit once, in the buckets the definition puts it.

``Journal._observe_commit_locked`` runs after every fsync, before the records'
messages are released, so it finds the commit's bucket by bisection and keeps
one count per bucket; ``commit_latency`` adds them up into the cumulative
buckets ``CommitLatency`` documents (``buckets[i]`` = commits at or below
``bounds[i]``). These tests hold that sum to the definition, bounds included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tradenode.journal import FsyncPolicy, Journal

# Not in the package's __all__: the bucket bounds the histogram is defined on.
from tradenode.journal._storage import COMMIT_LATENCY_BOUNDS
from tradenode.supervision import ManualClock


def _cumulative(latencies: list[float]) -> tuple[int, ...]:
    return tuple(sum(1 for x in latencies if x <= bound) for bound in COMMIT_LATENCY_BOUNDS)


def test_every_commit_lands_in_the_buckets_its_latency_defines(tmp_path: Path) -> None:
    steps = [0.0, 0.0001, *COMMIT_LATENCY_BOUNDS]
    steps += [bound * 1.5 for bound in COMMIT_LATENCY_BOUNDS] + [100.0]
    clock = ManualClock()
    latencies: list[float] = []
    with Journal.open(tmp_path, fsync=FsyncPolicy.NONE, clock=clock) as journal:
        for step in steps:
            journal.append(b"r")  # written at once, durable at the flush
            since = clock.monotonic()
            clock.advance(step)
            latencies.append(max(0.0, clock.monotonic() - since))  # as the journal reckons it
            journal.flush()
            latency = journal.commit_latency()
            assert latency.count == len(latencies)
            assert latency.buckets == _cumulative(latencies)
    assert latency.sum == pytest.approx(sum(latencies))
    assert latency.bounds == COMMIT_LATENCY_BOUNDS
    # The slowest commits (above every bound) count only in ``count``.
    assert latency.buckets[-1] == sum(1 for x in latencies if x <= COMMIT_LATENCY_BOUNDS[-1])
    assert latency.buckets[-1] < latency.count


def test_a_commit_exactly_at_a_bound_counts_in_that_bound(tmp_path: Path) -> None:
    for index, bound in enumerate(COMMIT_LATENCY_BOUNDS):
        clock = ManualClock()
        with Journal.open(tmp_path / str(index), fsync=FsyncPolicy.NONE, clock=clock) as journal:
            journal.append(b"r")
            since = clock.monotonic()
            clock.advance(bound)
            exact = clock.monotonic() - since
            journal.flush()
            buckets = journal.commit_latency().buckets
        assert buckets == _cumulative([exact])
        if exact == bound:
            assert buckets[index] == 1 and (index == 0 or buckets[index - 1] == 0)
