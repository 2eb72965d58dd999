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
After an ``order.place`` answer the reader stays off longer (``CASCADE_SECONDS``):
the threads it woke wake others in turn, and the whole cascade should run first.
"""

from __future__ import annotations

import time

__all__ = ["CASCADE_SECONDS", "hand_over_gil"]

#: How long the WebSocket API's reader stays off the GIL once it has told an accepted
#: ``order.place`` to the breaker and the OMS: long enough for the cascade those tells
#: start (the breaker's reply, the OMS's acceptance and fills, the strategy's callback,
#: each a thread to wake on this kind of machine) to run before the reader parses the
#: account's events queued behind the answer. With ``time.sleep(0)`` (50-75 us) the
#: reader took the GIL back in the middle of that cascade. Through a node on the local
#: Binance (``benchmarks/bench_binance_ws``, 4 alternated rounds of 120 orders per
#: kind, ratio to the bare WebSocket client, p50): submit -> accepted 1.543x -> 1.371x
#: and submit -> fill 1.604x -> 1.381x with the journal off, 1.718x -> 1.595x and
#: 1.750x -> 1.551x with group commit; 200 us gave about half of that for the fill.
#: The price: frames behind the answer (the account's events, and the market stream,
#: which the same trio thread reads) wait that much longer after each placement the
#: reader answers; Binance's order rate limits keep that far from the reader's share of
#: time.
CASCADE_SECONDS = 0.0004


def hand_over_gil(seconds: float = 0.0) -> None:
    """Let a thread waiting for the GIL (one a tell just woke) run before we go on:
    ``seconds`` off it, at least the thread's timer slack (``time.sleep(0)``)."""
    time.sleep(seconds)
