"""Supervised actors on pykka, after Erlang/OTP supervisors and Akka supervision.

Knows nothing about trading or networks: it gives stable addresses whose
mailboxes survive restarts, one_for_one / one_for_all / rest_for_one
strategies with restart intensity and backoff, death watch, dead letters,
ordered shutdown and runtime membership.
"""

from .._exceptions import (
    ActorStoppedError,
    AskTimeoutError,
    RestartIntensityExceeded,
    SupervisionError,
)
from ._actor import Actor, ActorContext, Terminated
from ._address import Address
from ._cell import TRANSITIONS, CellState
from ._clock import Cancellable, Clock, ManualClock, SystemClock
from ._events import (
    DeadLetter,
    DeadLetters,
    EventBus,
    EventRecorder,
    SupervisionEvent,
    SupervisionEventKind,
)
from ._scheduling import ThreadScheduling
from ._spec import Backoff, ChildSpec, Intensity, RestartType, Strategy, SupervisorSpec
from ._supervisor import (
    AddChild,
    ChildInfo,
    RemoveChild,
    Supervisor,
    WhichChildren,
    add_child,
    remove_child,
    which_children,
)
from ._system import ActorSystem, TreeNode
from ._trio import TrioLoopClosed, TrioThread, ask_async

__all__ = [
    "TRANSITIONS",
    "Actor",
    "ActorContext",
    "ActorStoppedError",
    "ActorSystem",
    "AddChild",
    "Address",
    "AskTimeoutError",
    "Backoff",
    "Cancellable",
    "CellState",
    "ChildInfo",
    "ChildSpec",
    "Clock",
    "DeadLetter",
    "DeadLetters",
    "EventBus",
    "EventRecorder",
    "Intensity",
    "ManualClock",
    "RemoveChild",
    "RestartIntensityExceeded",
    "RestartType",
    "Strategy",
    "SupervisionError",
    "SupervisionEvent",
    "SupervisionEventKind",
    "Supervisor",
    "SupervisorSpec",
    "SystemClock",
    "Terminated",
    "ThreadScheduling",
    "TreeNode",
    "TrioLoopClosed",
    "TrioThread",
    "WhichChildren",
    "add_child",
    "ask_async",
    "remove_child",
    "which_children",
]
