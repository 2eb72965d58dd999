"""The container of one supervision tree: clock, seed, events, dead letters."""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

from .._exceptions import SupervisionError
from ._address import Address
from ._cell import Cell, ChildDown, stop_cell
from ._clock import Clock, SystemClock
from ._events import DeadLetters, EventBus
from ._quiescence import Quiescence
from ._scheduling import ThreadScheduling
from ._spec import ChildSpec, SupervisorSpec, as_child_spec

__all__ = ["ActorSystem", "TreeNode"]

logger = logging.getLogger("tradenode.supervision")


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A point-in-time view of one actor and its children, for status output."""

    name: str
    path: str
    state: str
    generation: int
    restarts: int
    children: tuple[TreeNode, ...] = ()


class ActorSystem:
    """Owns one supervision tree and what its actors share.

    The clock is injectable (``ManualClock`` in tests) and every actor's
    random source is seeded from ``seed`` and its path, so backoff jitter is
    reproducible. When the root gives up, the system stops the whole tree in
    order and records why in ``termination_reason``. Every actor's thread runs
    under ``thread_scheduling`` (``SCHED_BATCH`` by default, see
    ``ThreadScheduling``), and so does every thread an actor starts.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        name: str = "tradenode",
        thread_scheduling: ThreadScheduling = ThreadScheduling.BATCH,
    ) -> None:
        self.name = name
        self.seed = seed
        self.thread_scheduling = thread_scheduling
        self._owned_clock = SystemClock() if clock is None else None
        self.clock: Clock = clock if clock is not None else self._owned_clock  # type: ignore[assignment]
        self.events = EventBus()
        self.dead_letters = DeadLetters()
        self.quiescence = Quiescence()
        self._cells: dict[str, Cell] = {}
        self._lock = threading.Lock()
        self._root: Cell | None = None
        self._terminated = threading.Event()
        self.termination_reason: str | None = None
        self.failed = False

    def start(self, spec: SupervisorSpec | ChildSpec) -> Address:
        """Start the root of the tree; returns once its cell exists (children start async)."""
        if self._root is not None:
            raise SupervisionError(f"system {self.name!r} already has a root")
        child = as_child_spec(spec)
        self._root = self._spawn(child, parent=None, path=f"/{child.name}")
        return self._root.address

    @property
    def root(self) -> Address | None:
        return None if self._root is None else self._root.address

    def lookup(self, path: str) -> Address | None:
        with self._lock:
            cell = self._cells.get(path)
        return None if cell is None else cell.address

    def rng_for(self, path: str) -> random.Random:
        return random.Random(f"{self.seed}:{path}")

    def shutdown(self, timeout: float | None = None, *, reason: str = "shutdown requested") -> None:
        """Stop the tree: children before parents, each in reverse start order."""
        root = self._root
        if root is not None:
            stop_cell(root, timeout)
        if self.termination_reason is None:
            self.termination_reason = reason
        if self._owned_clock is not None:
            self._owned_clock.close()
        self._terminated.set()

    def wait_terminated(self, timeout: float | None = None) -> bool:
        return self._terminated.wait(timeout)

    def wait_quiescent(self, timeout: float | None = 30.0) -> None:
        """Block until every mailbox is empty, no handler is running and no actor has
        I/O in flight (``ActorContext.begin_io``): the moment a test may move a
        ``ManualClock`` or read state, as trio's ``wait_all_tasks_blocked``.

        Exact, not sampled: a message counts from before it is queued until its
        handler returned, so one actor telling another never looks idle in
        between. Timers waiting for the clock and messages stashed while an
        actor awaits its restart are not work. Raises ``TimeoutError`` naming
        what is still busy after ``timeout`` real seconds. Work started outside
        any actor (a venue pushing an unsolicited event) is not seen: wait for
        its effect instead.
        """
        self.quiescence.wait(timeout)

    def messages_handled(self) -> dict[tuple[str, str], int]:
        """(actor path, message type name) -> user messages its behaviours have handled
        (tells, asks, timer messages, watch notices), over the system's life.

        For counting what a piece of work costs in messages (tests, benchmarks):
        read it while the system is quiescent, take the difference of two reads.
        """
        with self._lock:
            cells = list(self._cells.values())
        counts: dict[tuple[str, str], int] = {}
        for cell in cells:
            while True:
                try:
                    items = list(cell.handled.items())
                    break
                except RuntimeError:  # resized by its own thread meanwhile: read again
                    continue
            for kind, count in items:
                # Two types of one name (from two modules) count as one, as they
                # always have: callers name message types by their names.
                key = (cell.address.path, kind.__name__)
                counts[key] = counts.get(key, 0) + count
        return counts

    @property
    def is_quiescent(self) -> bool:
        """Nothing queued, nothing being handled, no I/O in flight, right now."""
        return self.quiescence.is_quiescent

    @property
    def is_terminated(self) -> bool:
        return self._terminated.is_set()

    def tree(self) -> TreeNode | None:
        root = self._root
        return None if root is None else _snapshot(root, restarts=0)

    def _spawn(self, spec: ChildSpec, *, parent: Cell | None, path: str) -> Cell:
        holder: list[Cell] = []
        Cell.start(self, path, spec, parent, holder)
        return holder[0]

    def _register(self, cell: Cell) -> None:
        with self._lock:
            if cell.address.path in self._cells:
                raise SupervisionError(f"an actor already lives at {cell.address.path}")
            self._cells[cell.address.path] = cell

    def _unregister(self, cell: Cell) -> None:
        with self._lock:
            if self._cells.get(cell.address.path) is cell:
                del self._cells[cell.address.path]

    def _on_root_down(self, notice: ChildDown) -> None:
        if notice.error is None:
            reason = f"root {notice.cell.address.path} exited normally"
            logger.info("tradenode: %s; stopping the node", reason)
        else:
            self.failed = True
            reason = (
                f"root {notice.cell.address.path} gave up: "
                f"{type(notice.error).__name__}: {notice.error}"
            )
            logger.critical("tradenode: %s; stopping the node", reason)
        self.termination_reason = reason
        threading.Thread(
            target=self.shutdown, kwargs={"reason": reason}, name="tradenode-root-down", daemon=True
        ).start()


def _snapshot(cell: Cell, *, restarts: int) -> TreeNode:
    children = tuple(
        _snapshot(record.cell, restarts=record.restarts)
        for record in list(cell.children.values())
        if record.cell is not None
    )
    return TreeNode(
        name=cell.address.name,
        path=cell.address.path,
        state=cell.state.value,
        generation=cell.generation,
        restarts=restarts,
        children=children,
    )
