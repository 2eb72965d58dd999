"""The node's ``execution`` subtree: a coordinator and one algorithm actor per working parent.

::

    execution            one_for_one, beside ``core``
    ├── coordinator      ExecutionCoordinator: follows the OMS's parent events
    └── algos            one_for_one, generous intensity, children added at runtime
        └── <parent id>  the parent's AlgorithmActor (TwapAlgorithm, ...), restarted with backoff

Beside ``core`` rather than inside it: an algorithm holds nothing the
OMS needs, and reaches the OMS and the risk guard through their stable
addresses, so nothing in ``core`` must restart with it, and a failing
algorithm (or a whole ``execution`` subtree giving up) never restarts the
OMS, the risk guard or the strategies.

The coordinator starts an algorithm when the OMS accepts a parent
(``ParentAccepted``) and, once the venues are attached, for every parent
the OMS (its journal) shows still working (:class:`ResumeParents`, which
the node sends after it attached its venues, and which a restarted
coordinator does by itself). It forwards each ``ParentProgress`` to its
parent's algorithm and removes the algorithm when its parent is done.
Adding and removing go to the ``algos`` supervisor as tells, so the
coordinator never waits on an algorithm's start.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from ..actors._control import Subscribe, Unsubscribe
from ..actors._directory import Directory
from ..actors._oms_parents import GetParents, ParentView
from ..messages._execution import (
    ParentAccepted,
    ParentCanceled,
    ParentFilled,
    ParentProgress,
    SubmitParentOrder,
)
from ..supervision import (
    Actor,
    AddChild,
    Backoff,
    ChildSpec,
    Intensity,
    RemoveChild,
    SupervisorSpec,
)
from ..supervision import Strategy as SupervisionStrategy
from ._algorithm import ALGORITHMS, AlgorithmEnv

__all__ = ["ExecutionCoordinator", "ExecutionRuntime", "ResumeParents", "execution_spec"]

logger = logging.getLogger("tradenode.execution")


@dataclass(frozen=True, slots=True)
class ResumeParents:
    """Start an algorithm for every parent the OMS shows still working."""


@dataclass
class ExecutionRuntime:
    """Node-owned: what the coordinator is built with, and whether venues are attached."""

    env: AlgorithmEnv
    ready: threading.Event = field(default_factory=threading.Event)
    """Set once the node attached its configured venues: algorithms resumed before
    that would see their venue absent and have their children refused."""
    backoff: Backoff = field(default_factory=lambda: Backoff(0.05, 5.0, 0.2))


class ExecutionCoordinator(Actor):
    def __init__(self, runtime: ExecutionRuntime) -> None:
        self.runtime = runtime
        self.directory: Directory = runtime.env.directory

    def on_start(self) -> None:
        self.directory.oms().tell(
            Subscribe(
                self.context.self,
                kinds=(ParentAccepted, ParentProgress, ParentFilled, ParentCanceled),
            )
        )
        if self.runtime.ready.is_set():
            self.context.self.tell(ResumeParents())

    def on_stop(self) -> None:
        if self.context.is_stopping:
            self.directory.oms().tell(Unsubscribe(self.context.self))

    def receive(self, message: Any) -> Any:
        if isinstance(message, ResumeParents):
            self._resume()
        elif isinstance(message, ParentAccepted):
            self._start_parent(message.parent_id)
        elif isinstance(message, ParentProgress):
            algo = self._algorithm(message.parent_id)
            if algo is not None:
                algo.tell(message)
        elif isinstance(message, ParentFilled | ParentCanceled):
            self._stop_parent(message.parent_id)
        return None

    # -- algorithms ------------------------------------------------------------------

    def _algos(self) -> Any:
        return self.context.system.lookup(self.directory.path("execution", "algos"))

    def _algorithm(self, parent_id: str) -> Any:
        return self.context.system.lookup(self.directory.path("execution", "algos", parent_id))

    def _resume(self) -> None:
        parents = self.directory.oms().ask(GetParents(working_only=True), timeout=10.0)
        for view in parents:
            assert isinstance(view, ParentView)
            self._start_parent(view.parent_id, view.order)

    def _start_parent(self, parent_id: str, order: SubmitParentOrder | None = None) -> None:
        if self._algorithm(parent_id) is not None:
            return
        if order is None:
            views = self.directory.oms().ask(GetParents(working_only=True), timeout=10.0)
            order = next((v.order for v in views if v.parent_id == parent_id), None)
            if order is None:
                return
        factory = ALGORITHMS.get(type(order.algorithm))
        if factory is None:
            logger.error(
                "execution: no algorithm for %s (parent %s)", order.algorithm.name, parent_id
            )
            return
        env = self.runtime.env
        algos = self._algos()
        if algos is None:
            return
        logger.info("execution: starting %s for parent %s", order.algorithm.name, parent_id)
        algos.tell(
            AddChild(
                ChildSpec(
                    parent_id,
                    lambda: factory(parent_id, env),
                    backoff=self.runtime.backoff,
                )
            )
        )

    def _stop_parent(self, parent_id: str) -> None:
        algos = self._algos()
        if algos is not None and self._algorithm(parent_id) is not None:
            logger.info("execution: parent %s done; stopping its algorithm", parent_id)
            algos.tell(RemoveChild(parent_id))


def execution_spec(runtime: ExecutionRuntime, *, intensity: Intensity) -> SupervisorSpec:
    """The ``execution`` subtree for the node's tree (see the module docstring)."""
    return SupervisorSpec(
        "execution",
        strategy=SupervisionStrategy.ONE_FOR_ONE,
        intensity=intensity,
        children=(
            ChildSpec("coordinator", lambda: ExecutionCoordinator(runtime)),
            # An algorithm that keeps failing is restarted with backoff; the
            # intensity is generous so one bad parent does not take the node down.
            SupervisorSpec(
                "algos", strategy=SupervisionStrategy.ONE_FOR_ONE, intensity=Intensity(100, 60)
            ),
        ),
    )
