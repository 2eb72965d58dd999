"""Where the node's actors find each other.

Addresses are stable across restarts, so a directory owned by the node (not
by any actor) can hand them out once; venues come and go at runtime.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .._config import InstrumentMap
from ..messages import SubmitOrder
from ..supervision import ActorSystem, Address
from ._capabilities import VenueCapabilities

__all__ = ["Directory", "VenueEntry"]


@dataclass(frozen=True, slots=True)
class VenueEntry:
    name: str
    breaker: Address
    broker: Address
    capabilities: VenueCapabilities = field(default_factory=VenueCapabilities)

    def amends_natively(self, order: SubmitOrder) -> bool:
        """A modify of ``order`` keeps its id (native amend) rather than replacing
        it with a new order under a new id (cancel/replace)."""
        return self.capabilities.amends_natively(order.order_type, order.time_in_force)


class Directory:
    def __init__(
        self, system: ActorSystem, node_name: str, instruments: InstrumentMap | None = None
    ) -> None:
        self.system = system
        self.node_name = node_name
        self.instruments = instruments or InstrumentMap({})
        """Instruments listed on several venues (``instruments:``): where an order or a
        strategy on venue ``auto`` trades."""
        self._venues: dict[str, VenueEntry] = {}
        """Copy on write: replaced whole under ``_lock``, never changed in place, so
        readers (every order asks for its venue) take it without the lock."""
        self._lock = threading.Lock()

    def path(self, *parts: str) -> str:
        return "/" + "/".join((self.node_name, *parts))

    def _required(self, *parts: str) -> Address:
        address = self.system.lookup(self.path(*parts))
        if address is None:
            raise LookupError(f"no actor at {self.path(*parts)}")
        return address

    def oms(self) -> Address:
        return self._required("core", "oms")

    def risk(self) -> Address:
        return self._required("core", "risk")

    def router(self) -> Address:
        """Where strategies send orders: the router (execution mode, routing), or the
        risk guard in a tree built without one."""
        address = self.system.lookup(self.path("core", "router"))
        return address if address is not None else self.risk()

    def register_venue(self, entry: VenueEntry) -> None:
        with self._lock:
            self._venues = {**self._venues, entry.name: entry}

    def unregister_venue(self, name: str) -> None:
        with self._lock:
            venues = dict(self._venues)
            venues.pop(name, None)
            self._venues = venues

    def venue(self, name: str) -> VenueEntry | None:
        entry = self._venues.get(name)
        if entry is not None and not entry.breaker.is_alive:
            return None
        return entry

    def venues(self) -> list[VenueEntry]:
        return list(self._venues.values())
