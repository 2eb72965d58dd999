"""What a venue factory gets from the node and what it gives back.

A venue's factory (``VenueKind.factory``) is called each time the node
attaches the venue. It gets a :class:`VenueContext`: the venue's name and
validated settings, the node's clock and seed, the OMS address its broker
reports to, the restart backoff for its broker, what the journal says about
this venue (:class:`RecoveredVenue`), and the runtime object of an earlier
attachment of the same venue (state that must outlive a removal, like a
paper venue's book or a link's cursors). It returns a :class:`VenueBuild`:
the broker's child spec and any feeds, its capabilities, the runtime object
for the node to keep, and a status function.

The node puts the circuit breaker in front of the broker itself: every
venue gets one, and no factory can forget it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..actors._capabilities import VenueCapabilities
from ..actors._oms_state import TrackedOrderView
from ..messages._enums import OrderStatus
from ..supervision import Address, Backoff, ChildSpec, Clock, SupervisorSpec

if TYPE_CHECKING:
    from .._config import VenueConfig, VenueSettings

__all__ = ["RecoveredVenue", "VenueBuild", "VenueContext"]

SettingsT = TypeVar("SettingsT", bound="VenueSettings")

_UNKNOWN_OUTCOME = frozenset({OrderStatus.INITIALIZED, OrderStatus.SUBMITTED})


@dataclass(frozen=True, slots=True)
class RecoveredVenue:
    """What the journal of an earlier run knows about one venue.

    ``open_orders`` are the orders it left open there; the node itself
    resolves those whose submission had an unknown outcome (looked up at the
    venue before anything is re-sent), so a factory cares about the
    ``live`` ones: orders the venue acknowledged, to look for first when it
    reconciles. ``cursors`` are the venue cursors the adapter journaled
    (``VenueCursor`` messages), by scope; ``executions`` the fills it has
    for each open order, by execution id.
    """

    open_orders: tuple[TrackedOrderView, ...] = ()
    cursors: Mapping[str, str] = field(default_factory=dict)
    executions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Client order id -> execution ids of the fills the journal has for each
    open order: an adapter that counts fills per order seeds its count with
    these, so a venue's replay of the same executions is known as a repeat."""

    @property
    def live(self) -> tuple[TrackedOrderView, ...]:
        """Open orders the venue had acknowledged (past any unknown outcome)."""
        return tuple(o for o in self.open_orders if o.status not in _UNKNOWN_OUTCOME)


@dataclass(frozen=True, slots=True)
class VenueContext(Generic[SettingsT]):
    """Everything the node hands a venue factory."""

    name: str
    settings: SettingsT
    config: VenueConfig
    clock: Clock
    reports_to: Address
    """The OMS: where the broker sends execution events and status reports."""
    seed: int
    """The node's seed, for venues that simulate (``paper``)."""
    backoff: Backoff
    """The restart backoff configured for this venue's broker."""
    recovered: RecoveredVenue = RecoveredVenue()
    previous: object | None = None
    """The runtime object this venue's factory returned when it was attached
    before (removed and added again): reuse what must outlive an attachment."""
    provided: object | None = None
    """An object the caller of ``Node.add_venue(config, venue=...)`` built
    (a ``PaperVenue`` of other instruments, say); the factory decides what it accepts."""

    def broker_spec(self, factory: Callable[[], Any]) -> ChildSpec:
        """The broker's child spec under the name the node expects, with its backoff."""
        return ChildSpec("broker", factory, backoff=self.backoff)


def _no_status() -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class VenueBuild:
    """A venue's subtree, as the factory built it.

    ``broker`` must be the child named ``broker`` (``VenueContext.broker_spec``);
    ``extra`` children (a market-data feed, say) are started after it, under
    the same rest_for_one supervisor, so they restart when the broker does.
    ``runtime`` is kept by the node as ``Node.venues[name]`` and handed back
    as ``VenueContext.previous``; ``status`` is this venue's section of
    ``Node.status()["connections"]`` and must never raise or print a secret.
    """

    broker: ChildSpec
    capabilities: VenueCapabilities
    runtime: object = None
    extra: tuple[ChildSpec | SupervisorSpec, ...] = ()
    status: Callable[[], dict[str, Any]] = _no_status

    def __post_init__(self) -> None:
        if self.broker.name != "broker":
            raise ValueError(
                f"VenueBuild.broker is named {self.broker.name!r}: the broker child must be "
                "named 'broker' (use VenueContext.broker_spec)"
            )
