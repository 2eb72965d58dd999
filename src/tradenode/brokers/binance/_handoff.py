"""Giving the GIL to the thread a tell has just woken, once, on the latency path.

A tell to a sleeping actor wakes its thread, which then needs the GIL to run.
CPython hands the GIL over only when its holder blocks (or after the 5 ms
switch interval): a thread that keeps running Python code keeps it. The
session's trio thread answers an ``order.place`` from its reader and then goes
on reading the frames the venue sent right behind the answer (the account's
events for the same order), a few hundred microseconds of work during which the
breaker and the OMS, the threads waiting for this answer, cannot run. A REST
placement's answer is the same case: the same events arrive on the user-data
stream while the answer is read.

:func:`hand_over_gil` releases the GIL and blocks for a moment: ``time.sleep(0)``
is a ``clock_nanosleep`` that, on Linux, returns only after the thread's timer
slack (50 µs by default; 50-75 µs measured on the benchmark VM), long enough for a
thread that is waiting for the GIL to wake and take it. A bare release (``sched_yield``,
a zero-timeout ``select``) is retaken before the woken thread is running. It changes
no order of messages and no state, only who runs first; the price is that pause
on the calling thread even when nobody is waiting, so it belongs only where the
thread has just told what others wait for and has nothing urgent of its own left.
"""

from __future__ import annotations

import time

__all__ = ["hand_over_gil"]


def hand_over_gil() -> None:
    """Let a thread waiting for the GIL (one a tell just woke) run before we go on."""
    time.sleep(0)
