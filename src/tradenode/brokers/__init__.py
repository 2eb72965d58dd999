"""The adapter kit, and the venue adapters in subpackages (``paper``, ``binance``).

A venue plugs in as a :class:`VenueKind`: its settings model (a
:class:`VenueSettings`, the YAML section named after the kind) and a factory
that turns a :class:`VenueContext` into a :class:`VenueBuild` (the broker's
child spec, its capabilities, its runtime object and status). Kinds are
registered through the ``tradenode.venues`` entry point group
(:data:`ENTRY_POINT_GROUP`) or :func:`register_venue_kind`; the node looks
them up by the ``kind`` of a venue config and knows none by name.

Every adapter's actor builds on :class:`BrokerBase`, the venue-independent
half of the broker actor contract (deadlines, one request at a time per
order, reject plus reply, quote fan-out, rate observations, the link's
counters in :class:`BrokerLink`), and implements the venue's half.
See docs/architecture.md, "How to add a venue".
"""

from .._config import VenueConfig, VenueSettings
from .._registry import (
    ENTRY_POINT_GROUP,
    VenueKind,
    VenueKindError,
    broken_venue_kinds,
    get_venue_kind,
    installed_venue_kinds,
    register_venue_kind,
    reload_venue_kinds,
    unregister_venue_kind,
)
from ._base import (
    IN_FLIGHT,
    Answer,
    BrokerBase,
    BrokerLink,
    InFlight,
    Rejection,
    refuse_if_expired,
)
from ._factory import RecoveredVenue, VenueBuild, VenueContext
from ._fields import JsonFields, decode_json
from ._increments import (
    INSTRUMENTS_KEY,
    Increments,
    LearnedIncrements,
    increments_entry,
    places_increment,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "INSTRUMENTS_KEY",
    "IN_FLIGHT",
    "Answer",
    "BrokerBase",
    "BrokerLink",
    "InFlight",
    "Increments",
    "JsonFields",
    "LearnedIncrements",
    "RecoveredVenue",
    "Rejection",
    "VenueBuild",
    "VenueConfig",
    "VenueContext",
    "VenueKind",
    "VenueKindError",
    "VenueSettings",
    "broken_venue_kinds",
    "decode_json",
    "get_venue_kind",
    "increments_entry",
    "installed_venue_kinds",
    "places_increment",
    "refuse_if_expired",
    "register_venue_kind",
    "reload_venue_kinds",
    "unregister_venue_kind",
]
