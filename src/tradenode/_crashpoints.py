"""Named places where a test may kill the process, to prove recovery from there.

Random SIGKILLs rarely land in the narrowest windows (after an order's
intent is journaled but before it is sent; after a fill is applied but
before it is journaled). ``TRADENODE_CRASH_AT=<point>:<n>`` makes the
process exit abruptly (``os._exit``, no cleanup, like SIGKILL) the ``n``-th
time it passes ``<point>``. Unset, each check is one dictionary lookup.
"""

from __future__ import annotations

import os
import threading

__all__ = ["POINTS", "crash_point"]

POINTS = frozenset({"after_intent", "after_send", "before_fill_journaled"})
CRASH_EXIT_CODE = 86

_lock = threading.Lock()
_armed: dict[str, int] = {}
_counts: dict[str, int] = {}


def _arm(spec: str | None) -> None:
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"TRADENODE_CRASH_AT={spec!r}: unknown point (one of {sorted(POINTS)})")
    _armed[point] = int(count or "1")


_arm(os.environ.get("TRADENODE_CRASH_AT"))


def crash_point(point: str) -> None:
    if point not in _armed:
        return
    with _lock:
        _counts[point] = _counts.get(point, 0) + 1
        if _counts[point] == _armed[point]:
            os._exit(CRASH_EXIT_CODE)
