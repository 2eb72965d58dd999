"""How a supervisor starts, restarts and stops its children (Erlang/OTP child specs)."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._actor import Actor

__all__ = [
    "Backoff",
    "ChildSpec",
    "Intensity",
    "RestartType",
    "Strategy",
    "SupervisorSpec",
]


class RestartType(enum.Enum):
    """OTP restart types: which exits bring a child back."""

    PERMANENT = "permanent"
    """Always restarted, even after a normal exit."""
    TRANSIENT = "transient"
    """Restarted only after a failure."""
    TEMPORARY = "temporary"
    """Never restarted, not even when a sibling's failure takes it down."""


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@dataclass(frozen=True, slots=True)
class Intensity:
    """More than ``max_restarts`` within ``within_seconds`` and the supervisor gives up."""

    max_restarts: int = 3
    within_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError(f"Intensity.max_restarts={self.max_restarts}: must be >= 0")
        if self.within_seconds <= 0:
            raise ValueError(f"Intensity.within_seconds={self.within_seconds}: must be > 0")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Akka's restartWithBackoff: min * 2**attempt capped at max, times (1 + rnd * random_factor).

    The attempt count resets once a child has run for ``reset_after`` seconds
    (default (min + max) / 2) without failing, so a venue that flaps once a
    day does not inherit yesterday's long delay.
    """

    min_seconds: float
    max_seconds: float
    random_factor: float = 0.2
    reset_after: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"Backoff: need 0 < min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )
        if self.random_factor < 0:
            raise ValueError(f"Backoff.random_factor={self.random_factor}: must be >= 0")

    @property
    def reset_seconds(self) -> float:
        if self.reset_after is not None:
            return self.reset_after
        return (self.min_seconds + self.max_seconds) / 2

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_seconds, self.min_seconds * (2.0 ** min(attempt, 62)))
        return base * (1.0 + rng.random() * self.random_factor)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One worker child. ``factory`` builds a fresh behaviour for every incarnation.

    ``shutdown_timeout`` is how long an orderly stop may take before the
    child's thread is abandoned (a thread cannot be killed); None waits
    forever, as OTP does for child supervisors.
    """

    name: str
    factory: Callable[[], Actor]
    restart: RestartType = RestartType.PERMANENT
    shutdown_timeout: float | None = 5.0
    backoff: Backoff | None = None
    stash_capacity: int = 100_000
    start_timeout: float | None = 30.0
    is_supervisor: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.stash_capacity < 1:
            raise ValueError(f"ChildSpec.stash_capacity={self.stash_capacity}: must be >= 1")


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """A supervisor and its static children, started in order and stopped in reverse."""

    name: str
    children: tuple[ChildSpec | SupervisorSpec, ...] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = field(default_factory=Intensity)
    restart: RestartType = RestartType.PERMANENT
    shutdown_timeout: float | None = None
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        names = [child.name for child in self.children]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"SupervisorSpec {self.name!r}: duplicate child names {duplicates}")

    def as_child(self) -> ChildSpec:
        from ._supervisor import Supervisor  # noqa: PLC0415 - _supervisor imports this module

        return ChildSpec(
            name=self.name,
            factory=lambda: Supervisor(self),
            restart=self.restart,
            shutdown_timeout=self.shutdown_timeout,
            backoff=self.backoff,
            start_timeout=None,
            is_supervisor=True,
        )


def as_child_spec(spec: ChildSpec | SupervisorSpec) -> ChildSpec:
    return spec.as_child() if isinstance(spec, SupervisorSpec) else spec


def _check_name(name: str) -> None:
    if not name or "/" in name or name != name.strip():
        raise ValueError(
            f"child name {name!r}: must be non-empty, without '/' or surrounding spaces"
        )
