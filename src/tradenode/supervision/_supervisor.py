"""Supervisor behaviour: OTP strategies, restart intensity and Akka-style backoff."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from typing import Any

from .._exceptions import RestartIntensityExceeded, SupervisionError
from ._actor import Actor
from ._address import Address
from ._cell import Cell, CellState, ChildDown, ChildRecord, stop_cell, suspend_cell
from ._events import SupervisionEvent, SupervisionEventKind
from ._mail import Incarnate
from ._spec import ChildSpec, RestartType, Strategy, SupervisorSpec, as_child_spec

__all__ = [
    "AddChild",
    "ChildInfo",
    "RemoveChild",
    "Supervisor",
    "WhichChildren",
    "add_child",
    "remove_child",
    "which_children",
]

logger = logging.getLogger("tradenode.supervision")


@dataclass(frozen=True, slots=True)
class AddChild:
    spec: ChildSpec | SupervisorSpec


@dataclass(frozen=True, slots=True)
class RemoveChild:
    name: str


@dataclass(frozen=True, slots=True)
class WhichChildren:
    pass


@dataclass(frozen=True, slots=True)
class ChildInfo:
    name: str
    path: str
    state: str
    generation: int
    restarts: int
    restart: RestartType
    is_supervisor: bool


@dataclass(frozen=True, slots=True)
class _Refused:
    error: Exception


class _RestartDue:
    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names


class Supervisor(Actor):
    """Starts its children in order, restarts them by strategy, stops them in reverse.

    Its bookkeeping lives in its cell, not in this instance, so when the
    supervisor itself is restarted by its parent it brings back the same
    children at the same addresses, including those added at runtime.
    """

    def __init__(self, spec: SupervisorSpec) -> None:
        self.spec = spec
        self._restart_times: collections.deque[float] = collections.deque()

    @property
    def _records(self) -> dict[str, ChildRecord]:
        return self.context._cell.children

    def on_start(self) -> None:
        if not self._records:
            for child in self.spec.children:
                spec = as_child_spec(child)
                self._records[spec.name] = ChildRecord(spec)
        if self.context.generation > 1:
            # Children paused when the previous incarnation failed end now, in
            # reverse order, before any starts again (a no-op for suspended ones).
            self._suspend_children()
        for record in list(self._records.values()):
            self._start_child(record)

    def on_stop(self) -> None:
        """Pause the children if this incarnation failed, end them if it is being
        restarted by its parent's decision, leave them to the cell on a final stop.

        As in Akka, a supervisor that fails only pauses its subordinates (they stash
        what arrives): whether they restart or stop is known only once its parent
        has decided, and each child's ``on_stop`` then runs once, with
        ``context.is_stopping`` saying which (True when the tree is stopped because
        the root gave up)."""
        records = list(self._records.values())
        for record in records:
            if record.pending_restart is not None:
                record.pending_restart.cancel()
                record.pending_restart = None
        if self.context._cell.failing:
            for record in reversed(records):
                if record.cell is not None:
                    record.cell.request_suspend()
            return
        if self.context.is_stopping:
            return
        self._suspend_children()

    def _suspend_children(self) -> None:
        for record in reversed(list(self._records.values())):
            if record.cell is not None:
                suspend_cell(record.cell, record.spec.shutdown_timeout)

    def receive(self, message: Any) -> Any:
        if isinstance(message, ChildDown):
            self._on_child_down(message)
        elif isinstance(message, _RestartDue):
            self._on_restart_due(message)
        elif isinstance(message, AddChild):
            return self._add_child(message.spec)
        elif isinstance(message, RemoveChild):
            return self._remove_child(message.name)
        elif isinstance(message, WhichChildren):
            return self._which_children()
        else:
            self.context.system.dead_letters.record(
                self.context.path, message, "supervisors take no user messages"
            )
        return None

    # -- starting ------------------------------------------------------------

    def _start_child(self, record: ChildRecord) -> None:
        if record.cell is not None and not record.cell.terminated.is_set():
            record.expected_generation += 1
        self._incarnate(record)

    def _restart_child(self, record: ChildRecord) -> None:
        record.restarts += 1
        self._incarnate(record)

    def _incarnate(self, record: ChildRecord) -> None:
        """Start the child's next incarnation and wait for its ``on_start``, like OTP."""
        record.last_started_at = self.context.system.clock.monotonic()
        if record.cell is None or record.cell.terminated.is_set():
            record.expected_generation = 1
            record.cell = self.context.system._spawn(
                record.spec,
                parent=self.context._cell,
                path=f"{self.context.path}/{record.spec.name}",
            )
            order = record.cell.first_start
        else:
            order = Incarnate(record.expected_generation)
            record.cell.address.system_tell(order)
        if not order.started.wait(record.spec.start_timeout):
            logger.warning(
                "%s: %s has not finished starting after %ss; carrying on with its siblings",
                self.context.path,
                record.spec.name,
                record.spec.start_timeout,
            )

    # -- failures ------------------------------------------------------------

    def _on_child_down(self, notice: ChildDown) -> None:
        record = self._record_of(notice.cell)
        if record is None or notice.generation != record.expected_generation:
            logger.debug("%s: stale notice %r", self.context.path, notice)
            return
        spec = record.spec
        if spec.restart is RestartType.TEMPORARY or (
            spec.restart is RestartType.TRANSIENT and notice.error is None
        ):
            self._stop_and_forget(record)
            return
        self._count_restart(record, notice.error)
        group = self._restart_group(record)
        for sibling in reversed(group):
            if sibling is not record and sibling.cell is not None:
                suspend_cell(sibling.cell, sibling.spec.shutdown_timeout)
        survivors = []
        for member in group:
            if member is not record and member.spec.restart is RestartType.TEMPORARY:
                self._stop_and_forget(member)
                continue
            if member.pending_restart is not None:
                member.pending_restart.cancel()
                member.pending_restart = None
            member.expected_generation += 1
            survivors.append(member)
        delay = self._backoff_delay(record, notice.error)
        if delay is None:
            for member in survivors:
                self._restart_child(member)
            return
        names = tuple(member.spec.name for member in survivors)
        record.pending_restart = self.context.schedule_once(delay, _RestartDue(names))
        self.context.system.events.publish(
            SupervisionEvent(
                SupervisionEventKind.RESTART_SCHEDULED,
                f"{self.context.path}/{spec.name}",
                record.expected_generation,
                delay=delay,
                detail=f"attempt {record.attempts}",
            )
        )

    def _on_restart_due(self, due: _RestartDue) -> None:
        for name in due.names:
            record = self._records.get(name)
            if record is None:
                continue
            record.pending_restart = None
            self._restart_child(record)

    def _count_restart(self, record: ChildRecord, error: BaseException | None) -> None:
        intensity = self.spec.intensity
        now = self.context.system.clock.monotonic()
        self._restart_times.append(now)
        while self._restart_times and self._restart_times[0] < now - intensity.within_seconds:
            self._restart_times.popleft()
        if len(self._restart_times) <= intensity.max_restarts:
            return
        detail = (
            f"{len(self._restart_times)} restarts within {intensity.within_seconds}s "
            f"(limit {intensity.max_restarts}); last failure in {record.spec.name}: {error!r}"
        )
        self.context.system.events.publish(
            SupervisionEvent(
                SupervisionEventKind.ESCALATED,
                self.context.path,
                self.context.generation,
                error=error,
                detail=detail,
            )
        )
        raise RestartIntensityExceeded(f"supervisor {self.context.path}: {detail}") from error

    def _restart_group(self, record: ChildRecord) -> list[ChildRecord]:
        records = list(self._records.values())
        if self.spec.strategy is Strategy.ONE_FOR_ONE:
            return [record]
        if self.spec.strategy is Strategy.ONE_FOR_ALL:
            return records
        return records[records.index(record) :]

    def _backoff_delay(self, record: ChildRecord, error: BaseException | None) -> float | None:
        """The spec's backoff, stretched to what the failure itself says.

        A venue that answers 429 or 418 names the seconds before it will talk
        again (Retry-After); an error that carries them as ``retry_after``
        gets a restart no earlier, since restarting sooner only deepens a
        rate-limit breach into a ban.
        """
        asked = _retry_after(error)
        backoff = record.spec.backoff
        if backoff is None:
            return asked
        now = self.context.system.clock.monotonic()
        if (
            record.last_started_at is not None
            and now - record.last_started_at >= backoff.reset_seconds
        ):
            record.attempts = 0
        delay = backoff.delay(record.attempts, self.context.rng)
        record.attempts += 1
        return delay if asked is None else max(delay, asked)

    # -- runtime membership ----------------------------------------------------

    def _add_child(self, spec: ChildSpec | SupervisorSpec) -> Address | _Refused:
        child = as_child_spec(spec)
        if child.name in self._records:
            return _Refused(ValueError(f"{self.context.path} already has a child {child.name!r}"))
        record = ChildRecord(child)
        self._records[child.name] = record
        self._start_child(record)
        assert record.cell is not None
        return record.cell.address

    def _remove_child(self, name: str) -> bool:
        record = self._records.get(name)
        if record is None:
            return False
        self._stop_and_forget(record)
        return True

    def _stop_and_forget(self, record: ChildRecord) -> None:
        if record.pending_restart is not None:
            record.pending_restart.cancel()
        if record.cell is not None:
            stop_cell(record.cell, record.spec.shutdown_timeout)
        self._records.pop(record.spec.name, None)

    def _which_children(self) -> tuple[ChildInfo, ...]:
        return tuple(_info(record) for record in self._records.values())

    def _record_of(self, cell: Cell) -> ChildRecord | None:
        for record in self._records.values():
            if record.cell is cell:
                return record
        return None


def _info(record: ChildRecord) -> ChildInfo:
    cell = record.cell
    return ChildInfo(
        name=record.spec.name,
        path=cell.address.path if cell is not None else "",
        state=cell.state.value if cell is not None else CellState.CREATED.value,
        generation=cell.generation if cell is not None else 0,
        restarts=record.restarts,
        restart=record.spec.restart,
        is_supervisor=record.spec.is_supervisor,
    )


def add_child(
    supervisor: Address, spec: ChildSpec | SupervisorSpec, timeout: float | None = 10.0
) -> Address:
    """Start a new child under a running supervisor and return its address."""
    result = supervisor.ask(AddChild(spec), timeout=timeout)
    if isinstance(result, _Refused):
        raise result.error
    if not isinstance(result, Address):
        raise SupervisionError(f"{supervisor.path} answered AddChild with {result!r}")
    return result


def remove_child(supervisor: Address, name: str, timeout: float | None = 30.0) -> bool:
    """Stop a child for good and forget it; False if there was no such child."""
    return bool(supervisor.ask(RemoveChild(name), timeout=timeout))


def which_children(supervisor: Address, timeout: float | None = 10.0) -> tuple[ChildInfo, ...]:
    result = supervisor.ask(WhichChildren(), timeout=timeout)
    assert isinstance(result, tuple)
    return result


def _retry_after(error: BaseException | None) -> float | None:
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
