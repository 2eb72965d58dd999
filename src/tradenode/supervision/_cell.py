"""The pykka actor that hosts every incarnation of one supervised child.

pykka cannot restart an actor, and a stopped pykka actor silently drops the
messages still in its inbox. So a restart here never stops the pykka actor:
the cell keeps its thread, inbox and address, and swaps the behaviour
instance inside it. While no behaviour is running the cell stashes user
messages in arrival order and replays them into the next incarnation; only
the message whose handling raised is dropped, to dead letters with its
exception. Every failure path (``receive`` for tells and asks, the factory,
``on_start``, even ``BaseException`` such as ``SystemExit`` or
``trio.Cancelled``) is caught at this boundary and reported to the parent,
so pykka never sees it and never calls ``ActorRegistry.stop_all()``.
"""

from __future__ import annotations

import collections
import enum
import itertools
import logging
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pykka

# pykka's envelope type, private to it: the loop tells what pykka queued itself
# apart from what ``Address`` queues, bare (see ``Cell._actor_loop_running``).
from pykka._envelope import Envelope as PykkaEnvelope

from .._exceptions import ActorStoppedError, SupervisionError
from ._actor import Actor, ActorContext, Terminated
from ._address import Address
from ._clock import Cancellable
from ._events import SupervisionEvent, SupervisionEventKind
from ._mail import (
    RUNTIME_ITEM_TYPES,
    USER_ITEM_TYPES,
    Envelope,
    Incarnate,
    Stop,
    Suspend,
    TimerFired,
    WatchNotice,
)
from ._scheduling import apply_thread_scheduling
from ._turns import turns as _turns

if TYPE_CHECKING:
    from types import TracebackType

    from pykka._actor import ActorInbox

    from ._spec import ChildSpec
    from ._system import ActorSystem

__all__ = ["TRANSITIONS", "Cell", "CellState", "ChildRecord", "stop_cell", "suspend_cell"]

logger = logging.getLogger("tradenode.supervision")


class CellState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    SUSPENDED = "suspended"
    """No behaviour: failed and awaiting its supervisor, or paused for a restart."""
    STOPPED = "stopped"


_RUNNING = CellState.RUNNING
"""Read per message by ``Cell.on_receive``: a member read off an enum class costs a
Python-level ``__getattr__`` hook (3.11's ``EnumType``), a module global does not."""

TRANSITIONS: dict[CellState, frozenset[CellState]] = {
    CellState.CREATED: frozenset({CellState.RUNNING, CellState.SUSPENDED, CellState.STOPPED}),
    CellState.RUNNING: frozenset({CellState.SUSPENDED, CellState.STOPPED}),
    CellState.SUSPENDED: frozenset({CellState.RUNNING, CellState.STOPPED}),
    CellState.STOPPED: frozenset(),
}


class ChildDown:
    """Child to supervisor: incarnation ``generation`` ended; ``error`` None means a normal exit."""

    __slots__ = ("cell", "error", "generation")

    def __init__(self, cell: Cell, generation: int, error: BaseException | None) -> None:
        self.cell = cell
        self.generation = generation
        self.error = error

    def __repr__(self) -> str:
        return f"ChildDown({self.cell.address.path!r}, {self.generation}, {self.error!r})"


@dataclass(slots=True)
class ChildRecord:
    """A supervisor's bookkeeping for one child; kept by the supervisor's cell so it
    survives the supervisor's own restarts (children added at runtime included)."""

    spec: ChildSpec
    cell: Cell | None = None
    expected_generation: int = 0
    attempts: int = 0
    restarts: int = 0
    last_started_at: float | None = None
    pending_restart: Cancellable | None = field(default=None, repr=False)


class _Timer:
    """A cancellable schedule for one incarnation; re-arms itself when repeating."""

    def __init__(self, cell: Cell, delay: float, message: Any, repeat: bool) -> None:
        self._cell = cell
        self._delay = delay
        self._message = message
        self._repeat = repeat
        self._generation = cell.generation
        self._cancelled = False
        cell.keep_timer(self)  # before arming: a zero delay may fire at once
        self._handle = cell.system.clock.call_later(delay, self._fire)

    def _fire(self) -> None:
        if self._cancelled:
            return
        self._cell.address.system_tell(TimerFired(self._generation, self._message))
        if self._repeat and not self._cancelled:
            self._handle = self._cell.system.clock.call_later(self._delay, self._fire)
        elif not self._repeat:
            # A one-shot that fired is done: the cell must not hold it (and its
            # message) until the incarnation ends, or every order's timeout stays.
            self._cell.forget_timer(self)

    def cancel(self) -> None:
        self._cancelled = True
        self._handle.cancel()
        self._cell.forget_timer(self)


class Cell(pykka.ThreadingActor):
    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        # pykka's default ``queue.Queue`` takes a Python-level lock and condition
        # on every put and get; ``SimpleQueue`` does both in C. Every message of
        # every order passes here (pykka needs only put, get and empty).
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        return inbox

    def __init__(
        self,
        system: ActorSystem,
        path: str,
        spec: ChildSpec,
        parent: Cell | None,
        holder: list[Cell],
    ) -> None:
        super().__init__()
        self.system = system
        self.spec = spec
        self.parent = parent
        self.tally = system.quiescence.tally(path)
        self._quiescence = system.quiescence
        self._count_left = self.tally.left.add
        """``Quiescence.leave`` is this and a look at ``waiters``; inlined in
        ``on_receive``, through which every message passes."""
        self.address = Address(self, path)
        self.context = ActorContext(self)
        self.rng = system.rng_for(path)
        self.generation = 0
        self.state = CellState.CREATED
        self.is_stopping = False
        self.terminated = threading.Event()
        self.children: dict[str, ChildRecord] = {}
        self._behaviour: Actor | None = None
        self._stash: collections.deque[object] = collections.deque()
        self._suspend_requested = False
        self._normal_exit_requested = False
        self._timers: set[_Timer] = set()
        self._watching: dict[Address, Any] = {}
        self._watchers: set[Address] = set()
        self._watch_lock = threading.Lock()
        self._io: dict[int, Callable[[], None]] = {}
        self._io_keys = itertools.count()
        self.failing = False
        """True while the incarnation that just failed ends (its ``on_stop`` runs)."""
        self.first_start = Incarnate(1)
        self.turn = threading.Lock()
        """Held by whichever thread runs this cell's behaviour: its own, for each item
        it takes, or a sender's it is lent to (``Address._lend``)."""
        self.taken = 0
        """Items ``Address`` counted into the inbox (``Address.queued``) that this
        cell's thread has taken out; written under ``turn``."""
        self.deferred: collections.deque[object] = collections.deque()
        """Tells to this cell made on the thread its turn is lent to, while one of its
        handlers runs there: handled on that thread next (``handle_lent``)."""
        self.lends_turn = False
        """Whether the running incarnation's behaviour lends its turn
        (``Actor.lends_turn``); False between incarnations."""
        self.handled: collections.Counter[type] = collections.Counter()
        """User messages (tells, asks, timer messages, watch notices) handed to a
        behaviour, by type (named only when read, by ``messages_handled``): what
        one order costs in messages is read here. Written under ``turn``."""
        system._register(self)
        system.quiescence.enter(self.tally)  # until the first on_start has returned
        holder.append(self)

    # -- pykka hooks -------------------------------------------------------

    def _actor_loop_setup(self) -> None:
        """pykka's setup (``on_start``), on a thread under the system's scheduling
        policy (``_scheduling``): set before the first incarnation starts, so that
        the threads an actor starts (a broker's trio loop) inherit it."""
        apply_thread_scheduling(self.system.thread_scheduling)
        super()._actor_loop_setup()

    def _actor_loop_running(self) -> None:
        """pykka's loop, less pykka's envelope for what ``Address`` queues.

        ``Address._put`` puts each item in this inbox as itself, without pykka's
        ``Envelope`` around it or pykka's ``ActorRef.tell`` (which reads the
        stopped flag, as ``_put`` does, and builds the envelope), and this loop
        hands it straight to ``on_receive``, skipping pykka's
        ``_handle_receive`` (four ``isinstance`` tests for its stop and proxy
        calls, which an item queued by ``Address`` never is: a tell that could
        be taken for one travels inside the runtime's ``Envelope``, see
        ``_mail``). What pykka queues itself (its stop, the asks ``_order``
        makes through the actor ref) arrives in pykka's envelope and takes
        pykka's own path. A failure escaping ``on_receive`` is handled as
        pykka's loop handles it. Each item is handled under the cell's ``turn``,
        which a sender may hold instead while the inbox is empty
        (``Address._lend``), and each item ``Address`` queued is counted out
        (``taken``). Every message of every order passes here."""
        get = self.actor_inbox.get
        is_stopped = self.actor_stopped.is_set
        on_receive = self.on_receive
        turn = self.turn
        _turns.cells = [self]
        while not is_stopped():
            item = get()
            with turn:
                if type(item) is PykkaEnvelope:
                    self._on_pykka_envelope(item)
                    continue
                self.taken += 1
                try:
                    on_receive(item)
                except Exception:  # noqa: BLE001 - as pykka's loop does
                    self._fail_as_pykka_does()
                except BaseException:  # noqa: BLE001 - as pykka's loop does
                    self._stop_as_pykka_does()

    def ready_to_lend(self) -> bool:
        """Whether a running behaviour that lends its turn takes a tell now: not
        being suspended, nothing stashed for it (read under ``turn``)."""
        return self.lends_turn and not self._suspend_requested and not self._stash

    def handle_lent(self, message: object, cells: list[Cell]) -> None:
        """Handle a tell on the sender's thread, whose ``Address._lend`` holds ``turn``,
        then what was told to this cell meanwhile on this thread (``deferred``).

        As this cell's own loop would: a failure is this cell's (its supervisor
        decides), never the sender's. ``cells``: the turns this thread holds
        (``_turns``), to which this cell's is added while it runs here."""
        cells.append(self)
        deferred = self.deferred
        try:
            self._receive_lent(message)
            while deferred:
                self._receive_lent(deferred.popleft())
        finally:
            cells.pop()

    def _receive_lent(self, message: object) -> None:
        try:
            self.on_receive(message)
        except Exception:  # noqa: BLE001 - as the cell's own loop does
            self._fail_as_pykka_does()
        except BaseException:  # noqa: BLE001 - as the cell's own loop does
            self._stop_as_pykka_does()

    def _actor_loop_teardown(self) -> None:
        """pykka's teardown (pykka 4), for the items ``Address`` queued bare too.

        What is left in the inbox once pykka's actor has stopped is never handled.
        Normally nothing is: a final stop closes the address before pykka's stop
        is queued. It can be when pykka's actor is stopped behind the runtime's
        back (``ActorRegistry.stop_all``, which pykka calls when a ``BaseException``
        escapes an actor's loop): what pykka queued gets pykka's answer, and
        every other item is dead-lettered, an ask failing with
        ``ActorStoppedError``, as at a final stop (an order to start is
        answered as a stopped cell answers it)."""
        inbox = self.actor_inbox
        while not inbox.empty():
            item: object = inbox.get()  # pykka types its inbox as holding its envelopes only
            if type(item) is Incarnate:
                item.started.set()  # as ``_on_incarnate`` answers a stopped cell
            elif type(item) is not PykkaEnvelope:
                self._dead_letter(item, "actor stopped")
            else:
                if item.reply_to is None:
                    continue
                if isinstance(item.message, pykka.messages._ActorStop):
                    item.reply_to.set(None)
                else:
                    error = pykka.ActorDeadError(
                        f"{self.actor_ref} stopped before handling the message"
                    )
                    item.reply_to.set_exception((pykka.ActorDeadError, error, None))

    def _on_pykka_envelope(self, envelope: PykkaEnvelope[Any]) -> None:
        """One turn of pykka's own loop (pykka 4), for an item pykka queued."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                logger.info("Exception returned from %s to caller:", self, exc_info=True)
                envelope.reply_to.set_exception()
            else:
                self._fail_as_pykka_does()
        except BaseException:  # noqa: BLE001 - as pykka's loop does
            self._stop_as_pykka_does()

    def _fail_as_pykka_does(self) -> None:
        self._handle_failure(*sys.exc_info())
        try:
            self.on_failure(*sys.exc_info())
        except Exception:  # noqa: BLE001 - as pykka's loop does
            self._handle_failure(*sys.exc_info())

    def _stop_as_pykka_does(self) -> None:
        logger.debug("%r in %s. Stopping all actors.", sys.exc_info()[1], self)
        self._stop()
        pykka.ActorRegistry.stop_all()

    def on_start(self) -> None:
        try:
            with self.turn:  # a sender may take the turn once the behaviour runs
                self._incarnate(self.first_start)
        finally:
            self.system.quiescence.leave(self.tally)

    def on_receive(self, message: Any) -> Any:
        try:
            if self.state is _RUNNING and not self._suspend_requested:
                kind = type(message)
                if kind not in RUNTIME_ITEM_TYPES:
                    # Nearly every message: a tell, queued bare, for a running
                    # behaviour (what ``_on_runtime_item`` -> ``_on_user_item`` ->
                    # ``_deliver`` do).
                    self._invoke(message, None)
                elif kind is Envelope:
                    self._invoke(message.message, message.reply_to)
                else:
                    self._on_runtime_item(message)
            else:
                self._on_runtime_item(message)
        finally:
            # Counted since before it was queued (``Address._put``, ``_order``):
            # ``Quiescence.leave``, inlined.
            self._count_left()
            if self._quiescence.waiters:
                self._quiescence.wake()
        return None

    def on_stop(self) -> None:
        # pykka's hook: what is still in the inbox will never reach on_receive.
        self.system.quiescence.forget(self.tally)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.system.quiescence.forget(self.tally)

    def _on_runtime_item(self, message: Any) -> None:
        # By exact type, as ``Address.tell`` decides what it wraps (see ``_mail``).
        kind = type(message)
        if kind not in RUNTIME_ITEM_TYPES or kind in USER_ITEM_TYPES:
            self._on_user_item(message)
        elif kind is Incarnate:
            self._on_incarnate(message)
        elif kind is Suspend:
            self._end_incarnation()
            self._set_state(CellState.SUSPENDED)
        else:  # Stop, the last of the runtime's own items
            self._stop_for_good()

    # -- lifecycle ---------------------------------------------------------

    def _set_state(self, new: CellState) -> None:
        if self.state is CellState.STOPPED or new is self.state:
            return
        if new not in TRANSITIONS[self.state]:
            raise SupervisionError(
                f"{self.address.path}: illegal cell transition {self.state.value} -> {new.value}"
            )
        self.state = new

    def _on_incarnate(self, order: Incarnate) -> None:
        if self.state is CellState.STOPPED:
            order.started.set()
            return
        if self.state is CellState.RUNNING:
            self._end_incarnation()
            self._set_state(CellState.SUSPENDED)
        self._incarnate(order)

    def _incarnate(self, order: Incarnate) -> None:
        generation = self.generation = order.generation
        self._suspend_requested = False
        self._normal_exit_requested = False
        try:
            behaviour = self.spec.factory()
            if not isinstance(behaviour, Actor):
                raise TypeError(
                    f"factory of {self.address.path} returned {type(behaviour).__name__}, not an Actor"
                )
            behaviour.context = self.context
            self._behaviour = behaviour
            behaviour.on_start()
        except BaseException as exc:
            logger.error(
                "%s failed to start (incarnation %d)", self.address.path, generation, exc_info=exc
            )
            self._end_failed_incarnation()
            self._set_state(CellState.SUSPENDED)
            order.started.set()
            self._report_down(exc)
            return
        self._set_state(CellState.RUNNING)
        self.lends_turn = behaviour.lends_turn
        order.started.set()
        kind = SupervisionEventKind.STARTED if generation == 1 else SupervisionEventKind.RESTARTED
        self.system.events.publish(SupervisionEvent(kind, self.address.path, generation))
        self._drain_stash()

    def _end_incarnation(self) -> None:
        self.lends_turn = False
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        for done in list(self._io.values()):
            done()
        self._io.clear()
        behaviour, self._behaviour = self._behaviour, None
        if behaviour is None:
            return
        try:
            behaviour.on_stop()
        except BaseException as exc:
            logger.error("%s: on_stop raised", self.address.path, exc_info=exc)

    def _fail(self, error: BaseException) -> None:
        logger.error(
            "%s failed (incarnation %d)", self.address.path, self.generation, exc_info=error
        )
        self._end_failed_incarnation()
        self._set_state(CellState.SUSPENDED)
        self._report_down(error)

    def _end_failed_incarnation(self) -> None:
        """End the incarnation that failed, at once (its resources go now), before its
        supervisor has decided whether it restarts: ``failing`` tells a supervisor's
        ``on_stop`` to pause its children, not end them, until that decision. The
        root's failure is final (nobody restarts it): it ends as a final stop."""
        if self.parent is None:
            self.is_stopping = True
        self.failing = True
        try:
            self._end_incarnation()
        finally:
            self.failing = False

    def _report_down(self, error: BaseException | None) -> None:
        if error is not None:
            self.system.events.publish(
                SupervisionEvent(
                    SupervisionEventKind.FAILED, self.address.path, self.generation, error=error
                )
            )
        notice = ChildDown(self, self.generation, error)
        if self.parent is None:
            self.system._on_root_down(notice)
        else:
            self.parent.address.tell(notice)

    def _stop_for_good(self) -> None:
        if self.state is CellState.STOPPED:
            return
        self.is_stopping = True
        self.address.close()
        self._end_incarnation()
        for record in reversed(list(self.children.values())):
            if record.pending_restart is not None:
                record.pending_restart.cancel()
            if record.cell is not None:
                stop_cell(record.cell, record.spec.shutdown_timeout)
        self._set_state(CellState.STOPPED)
        stashed, self._stash = self._stash, collections.deque()
        for item in stashed:
            self._dead_letter(item, "actor stopped")
        self._finish_termination(detail="")
        self.stop()

    def _finish_termination(self, detail: str) -> None:
        with self._watch_lock:
            if self.terminated.is_set():
                return
            self.terminated.set()
            watchers, self._watchers = self._watchers, set()
        for watcher in watchers:
            watcher.system_tell(WatchNotice(self.address))
        self.system.events.publish(
            SupervisionEvent(
                SupervisionEventKind.STOPPED, self.address.path, self.generation, detail=detail
            )
        )
        self.system._unregister(self)

    def abandon(self) -> None:
        """Give up on a thread stuck past its shutdown timeout; it cannot be killed."""
        self.is_stopping = True
        self.address.close()
        self.system.quiescence.forget(self.tally)
        self._finish_termination(detail="abandoned after shutdown timeout")

    # -- user messages -----------------------------------------------------

    def _on_user_item(self, item: object) -> None:
        if self.state is CellState.STOPPED:
            self._dead_letter(item, "actor stopped")
        elif self.state is not CellState.RUNNING or self._suspend_requested:
            self._stash_item(item)
        else:
            self._deliver(item)

    def _stash_item(self, item: object) -> None:
        if len(self._stash) >= self.spec.stash_capacity:
            self._dead_letter(item, f"stash overflow (capacity {self.spec.stash_capacity})")
        else:
            self._stash.append(item)

    def _drain_stash(self) -> None:
        while self._stash and self.state is CellState.RUNNING and not self._suspend_requested:
            self._deliver(self._stash.popleft())

    def _deliver(self, item: object) -> None:
        kind = type(item)
        if kind not in RUNTIME_ITEM_TYPES:
            self._invoke(item, None)  # a tell, queued bare
        elif isinstance(item, Envelope):
            self._invoke(item.message, item.reply_to)
        elif isinstance(item, TimerFired):
            if item.generation == self.generation:
                self._invoke(item.message, None)
        elif isinstance(item, WatchNotice) and item.target in self._watching:
            custom = self._watching.pop(item.target)
            self._invoke(Terminated(item.target) if custom is None else custom, None)

    def _invoke(self, message: Any, reply_to: pykka.Future[Any] | None) -> None:
        behaviour = self._behaviour
        assert behaviour is not None
        self.handled[type(message)] += 1
        try:
            result = behaviour.receive(message)
        except BaseException as exc:  # noqa: BLE001 - contain everything, see module doc
            self.system.dead_letters.record(self.address.path, message, "handler raised", exc)
            if reply_to is not None:
                _reply_failure(reply_to, exc, self.address.path)
            self._fail(exc)
            return
        if reply_to is not None:
            reply_to.set(result)
        if self._normal_exit_requested:
            if self.parent is None:
                self.is_stopping = True  # the root's exit stops the tree
            self._end_incarnation()
            self._set_state(CellState.SUSPENDED)
            self._report_down(None)

    def _dead_letter(self, item: object, reason: str) -> None:
        if type(item) not in RUNTIME_ITEM_TYPES:
            self.system.dead_letters.record(self.address.path, item, reason)  # a bare tell
        elif isinstance(item, Envelope):
            self.system.dead_letters.record(self.address.path, item.message, reason)
            if item.reply_to is not None:
                error = ActorStoppedError(f"{self.address.path}: {reason}")
                item.reply_to.set_exception((ActorStoppedError, error, None))
        elif isinstance(item, TimerFired):
            self.system.dead_letters.record(self.address.path, item.message, reason)

    # -- services for ActorContext -----------------------------------------

    def request_suspend(self) -> None:
        """Called from the supervisor's thread: stash from the next message on.

        On its own (no ``Suspend`` after it) this pauses the actor: its incarnation
        goes on but handles nothing until it is re-incarnated or stopped."""
        self._suspend_requested = True

    def request_normal_exit(self) -> None:
        self._normal_exit_requested = True

    def schedule(self, delay: float, message: Any, *, repeat: bool) -> Cancellable:
        return _Timer(self, delay, message, repeat)

    def begin_io(self, what: str) -> Callable[[], None]:
        """Count outside work towards the system's quiescence until ``done()``, or
        until this incarnation ends, whichever comes first."""
        key = next(self._io_keys)
        release = self.system.quiescence.begin_io(f"{self.address.path}: {what}")

        def done() -> None:
            self._io.pop(key, None)
            release()

        self._io[key] = done
        return done

    def keep_timer(self, timer: _Timer) -> None:
        self._timers.add(timer)

    def forget_timer(self, timer: _Timer) -> None:
        self._timers.discard(timer)

    @property
    def live_timers(self) -> int:
        """Timers this incarnation still holds (fired one-shots and cancelled ones are gone)."""
        return len(self._timers)

    def watch(self, target: Address, message: Any) -> None:
        self._watching[target] = message
        target.cell.add_watcher(self.address)

    def unwatch(self, target: Address) -> None:
        self._watching.pop(target, None)
        target.cell.remove_watcher(self.address)

    def add_watcher(self, watcher: Address) -> None:
        with self._watch_lock:
            if not self.terminated.is_set():
                self._watchers.add(watcher)
                return
        watcher.system_tell(WatchNotice(self.address))

    def remove_watcher(self, watcher: Address) -> None:
        with self._watch_lock:
            self._watchers.discard(watcher)


def _reply_failure(reply_to: pykka.Future[Any], error: BaseException, path: str) -> None:
    if not isinstance(error, Exception):
        wrapped = SupervisionError(f"{path}: handler raised {type(error).__name__}")
        wrapped.__cause__ = error
        error = wrapped
    reply_to.set_exception((type(error), error, error.__traceback__))


def _order(cell: Cell, order: Suspend | Stop) -> pykka.Future[Any]:
    """Send a runtime order past the address (it must reach a closed one too),
    counted towards quiescence like any message."""
    quiescence = cell.system.quiescence
    counted = quiescence.enter(cell.tally)
    try:
        return cell.actor_ref.ask(order, block=False)
    except pykka.ActorDeadError:
        if counted:
            quiescence.leave(cell.tally)
        raise


def suspend_cell(cell: Cell, timeout: float | None) -> None:
    """End a child's incarnation but keep its mailbox, waiting up to ``timeout``."""
    if cell.terminated.is_set():
        return
    cell.request_suspend()
    try:
        _order(cell, Suspend()).get(timeout=timeout)
    except pykka.ActorDeadError:
        return
    except pykka.Timeout:
        logger.warning(
            "%s did not suspend within %ss; it will when its handler returns",
            cell.address.path,
            timeout,
        )


def stop_cell(cell: Cell, timeout: float | None) -> bool:
    """Stop a child for good; False if it had to be abandoned after ``timeout``."""
    if cell.terminated.is_set():
        return True
    try:
        future = _order(cell, Stop())
    except pykka.ActorDeadError:
        cell.abandon()
        return True
    try:
        future.get(timeout=timeout)
    except pykka.ActorDeadError:
        cell.abandon()
    except pykka.Timeout:
        logger.error(
            "%s did not stop within %ss: abandoning its thread", cell.address.path, timeout
        )
        cell.abandon()
        return False
    return True
