"""How the operating system schedules the runtime's threads: ``SCHED_BATCH`` by default.

An actor system's threads take turns at one GIL. When a handler tells an
actor whose thread sleeps, Linux's fair scheduler lets the woken thread
preempt the teller if they share a CPU; the woken thread runs only to find
the GIL held, sleeps again, and the teller resumes: two context switches and
the teller's cache lost, per tell, for nothing. ``SCHED_BATCH`` is the fair
policy without that: "Batch and idle tasks do not preempt non-idle tasks
(their preemption is driven by the tick)" (``kernel/sched/fair.c``). A batch
thread woken while its CPU is busy waits for the running thread to sleep
(which a GIL holder soon does: it blocks on its inbox, a system call or the
GIL) or for the next tick; on an idle CPU it runs at once. It keeps its nice
value and its fair share of CPU time, and needs no privilege.

Measured in the closed loop of ``bench_latency`` (one order in flight, group
commit, a 2-CPU virtual machine): the node's involuntary context switches fell
from ~8 to ~0.2 per order and its voluntary ones from ~19 to ~14 (a probe
reading ``/proc``); in 16 alternated rounds of the node before and with it
(``benchmarks/ab.py``), decision -> venue p50 -37.5 us (+/- 20.1), fill ->
strategy p50 -23.9 us (+/- 14.9), CPU per order -53.1 us (+/- 31.0). Bursts,
whose threads seldom sleep, did not move.

The price: against other processes' threads on a busy CPU, a woken batch
thread waits for the tick (a few milliseconds at most) where a normal one
might preempt them at once. On a host shared with CPU-bound work, a node can
say ``thread_scheduling: default`` (``ActorSystem(thread_scheduling=...)``).
A thread the operator started under another policy (``chrt``: real-time,
idle, deadline) is left as it is: only the operating system's default,
``SCHED_OTHER``, is changed. Elsewhere than Linux there is no such policy and
nothing changes.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from collections.abc import Callable

__all__ = ["ThreadScheduling", "apply_thread_scheduling"]

logger = logging.getLogger("tradenode.supervision")


class ThreadScheduling(enum.Enum):
    """The scheduling policy of the threads an actor system (a node) runs."""

    BATCH = "batch"
    """``SCHED_BATCH`` (Linux): no wake-up preemption between threads that take turns at
    the GIL anyway. The default."""
    DEFAULT = "default"
    """As the threads were started: the operating system's default unless the operator
    chose otherwise."""


_refusal_logged = threading.Event()


def apply_thread_scheduling(
    scheduling: ThreadScheduling,
    *,
    _set_policy: Callable[[int, int, os.sched_param], None] | None = None,
) -> bool:
    """Put the calling thread under ``scheduling``; whether it is under it now.

    Called first thing on each thread the runtime owns (threads inherit their
    creator's policy, so what an actor starts runs under it too). Never
    raises: a platform without the policy, a thread under a policy the
    operator chose, or a refusal by the system leave the thread as it is
    (a refusal is logged once per process). ``_set_policy`` stands in for
    ``os.sched_setscheduler`` in tests.
    """
    if scheduling is ThreadScheduling.DEFAULT:
        return True
    batch = getattr(os, "SCHED_BATCH", None)
    other = getattr(os, "SCHED_OTHER", None)
    if batch is None or other is None or not hasattr(os, "sched_getscheduler"):
        return False
    try:
        current = os.sched_getscheduler(0)
    except OSError:
        return False
    if current == batch:
        return True
    if current != other:
        return False  # an operator's choice (chrt): theirs to make
    set_policy = os.sched_setscheduler if _set_policy is None else _set_policy
    try:
        set_policy(0, batch, os.sched_param(0))
    except OSError as exc:
        if not _refusal_logged.is_set():
            _refusal_logged.set()
            logger.warning(
                "thread scheduling %s refused (%s); threads keep the system's default",
                scheduling.value,
                exc,
            )
        return False
    return True
