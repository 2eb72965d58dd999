"""The behaviour a user writes, and the context the runtime gives it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._clock import Cancellable
from ._turns import turns

if TYPE_CHECKING:
    import random

    from ._address import Address
    from ._cell import Cell
    from ._system import ActorSystem

__all__ = ["Actor", "ActorContext", "Terminated"]


class Terminated:
    """Told to a watcher when a watched actor has stopped for good (not on restart)."""

    __slots__ = ("address",)

    def __init__(self, address: Address) -> None:
        self.address = address

    def __repr__(self) -> str:
        return f"Terminated({self.address!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Terminated) and other.address is self.address

    def __hash__(self) -> int:
        return hash(("Terminated", id(self.address)))


class Actor:
    """One incarnation of an actor's behaviour.

    A supervisor builds a fresh instance for each incarnation, so state kept
    on ``self`` is lost on restart by design: what must survive a crash
    lives in a journal or is re-fetched from the venue in ``on_start``.
    ``receive`` runs one message at a time, on the actor's own thread (or, with
    ``lends_turn``, on a sender's); its return value answers an ``ask``.
    Raising from any hook is a failure handled by the supervisor, never a
    silent death.
    """

    context: ActorContext

    lends_turn: bool = False
    """Whether a tell made in another actor's handler may be handled at once on that
    actor's thread, when this one is idle with nothing queued
    (``Address._lend``): no wake-up of this actor's thread, whose cost dominates
    a short handler's. Still one thread at a time in the behaviour, in the order
    told. Set it only for an actor whose handlers never wait (no blocking I/O,
    no ``ask(...).get()``, no user code): the sender waits for them, and a
    handler that waited on the sender's own actor would wait for ever."""

    def on_start(self) -> None:
        """Called before the first message of this incarnation.

        Raising is a failure like any other: ``on_stop`` runs, ``FAILED`` is
        published and no ``STARTED``/``RESTARTED`` event is (those mean that
        ``on_start`` returned)."""

    def receive(self, message: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message).__name__}")

    def on_stop(self) -> None:
        """Called once when this incarnation ends: before a restart, and on a final
        stop; ``context.is_stopping`` says which."""


class ActorContext:
    """The runtime as seen from inside an actor; outlives incarnations."""

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def self(self) -> Address:
        return self._cell.address

    @property
    def path(self) -> str:
        return self._cell.address.path

    @property
    def parent(self) -> Address | None:
        return None if self._cell.parent is None else self._cell.parent.address

    @property
    def system(self) -> ActorSystem:
        return self._cell.system

    @property
    def generation(self) -> int:
        """Which incarnation this is: 1 on first start, +1 per restart."""
        return self._cell.generation

    @property
    def is_stopping(self) -> bool:
        """True inside ``on_stop`` when the actor stops for good rather than restarts.

        That includes the children of a root that gave up: a failing supervisor
        only pauses its children, and they end once its fate is known. The one
        ``on_stop`` that runs before any decision is the failing incarnation's own
        (its resources go at once): False there, unless the actor is the root,
        whose failure always stops the tree."""
        return self._cell.is_stopping

    @property
    def rng(self) -> random.Random:
        """Seeded from the system seed and this path: deterministic per actor."""
        return self._cell.rng

    def now_ns(self) -> int:
        return self._cell.system.clock.time_ns()

    def mailbox_empty(self) -> bool:
        """Whether nothing waits in this actor's mailbox (the message being handled
        aside): a hint that the actor would go idle after this message, for work that
        is better done now than handed to another thread. Another thread may tell it
        something the moment after. On a thread this actor's turn is lent to
        (``lends_turn``), whether nothing waits for any actor whose turn that thread
        holds: the thread goes idle after this message only if so."""
        cell = self._cell
        cells = turns.cells
        if cells is None or cells[0] is cell:
            return cell.actor_inbox.empty()
        return all(held.actor_inbox.empty() and not held.deferred for held in cells)

    def watch(self, target: Address, message: Any = None) -> None:
        """Be told ``message`` (default ``Terminated(target)``) when ``target`` stops for good.

        If ``target`` is already dead the notice comes at once.
        """
        self._cell.watch(target, message)

    def unwatch(self, target: Address) -> None:
        """Stop watching; a notice already queued is not delivered."""
        self._cell.unwatch(target)

    def schedule_once(self, delay: float, message: Any) -> Cancellable:
        """Tell ``message`` to self after ``delay`` seconds of this system's clock.

        The timer belongs to the current incarnation: a restart cancels it.
        """
        return self._cell.schedule(delay, message, repeat=False)

    def schedule_repeating(self, interval: float, message: Any) -> Cancellable:
        return self._cell.schedule(interval, message, repeat=True)

    def begin_io(self, what: str = "") -> Callable[[], None]:
        """Say that work this actor handed elsewhere (a request on the wire, a job on
        its own thread) is outstanding; call the returned ``done`` (idempotent)
        once its answer has been handled, normally inside the handler of the
        message that brought it. Until then ``ActorSystem.wait_quiescent`` waits
        for it. The end of this incarnation ends whatever it still had open.
        """
        return self._cell.begin_io(what)

    def stop_self(self) -> None:
        """Exit normally after this message; a permanent child is restarted, others are not."""
        self._cell.request_normal_exit()
