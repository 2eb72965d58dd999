"""Giving the GIL to the thread a tell has just woken, once, on the latency path.

A tell to a sleeping actor wakes its thread, which then needs the GIL to run.
CPython hands the GIL over only when its holder blocks (or after the 5 ms
switch interval): a thread that keeps running Python code keeps it. The
session's trio thread answers an ``order.place`` from its reader and then goes
on reading the frames the venue sent right behind the answer (the account's
events for the same order), a few hundred microseconds of work during which the
breaker, the one thread that was waiting for this answer, cannot run.

:func:`hand_over_gil` releases the GIL for a moment (``time.sleep(0)``: a
syscall that returns at once, with the GIL released around it), so a thread
already waiting for it can take it; the caller carries on once it has the GIL
back. It changes no order of messages and no state: only who runs first. It
costs the caller about a microsecond when nobody is waiting.
"""

from __future__ import annotations

import time

__all__ = ["hand_over_gil"]


def hand_over_gil() -> None:
    """Let a thread waiting for the GIL (one a tell just woke) run before we go on."""
    time.sleep(0)
