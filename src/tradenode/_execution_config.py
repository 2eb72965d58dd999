"""The config of smart execution: instruments across venues, routing, execution modes, approvals.

An instrument (``BTC-USD``) may be listed on several venues, each under its
own symbol (``BTCUSDT`` on one, ``BTC-USD`` on another). An order or a
decision that names no venue (``venue: auto`` for a strategy) names the
instrument instead, and the router picks the venue by the routing policy.

The execution mode says what happens to an order before the risk guard sees
it: sent (``FULL_AUTO``), held for a person's approval above thresholds
(``SEMI_AUTO``) or always (``MANUAL``), simulated and never sent
(``RESEARCH``), or refused because the node is in an emergency
(``EMERGENCY``). It is node-wide, and a strategy may override it.

This module is pydantic and stdlib only: the config model imports it, and
the core (``actors``) reads the validated models.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._exceptions import ConfigError

__all__ = [
    "AUTO_VENUE",
    "ApprovalConfig",
    "ExecutionMode",
    "InstrumentConfig",
    "InstrumentMap",
    "RoutingConfig",
    "RoutingPolicy",
]

AUTO_VENUE = "auto"
"""The venue of an order (or a strategy) that the router places: its symbol is
an instrument of the config's ``instruments:``."""

_VENUE_NAME = r"^[a-z0-9_-]+$"


class ExecutionMode(enum.Enum):
    """What happens to an order before it reaches the risk guard."""

    FULL_AUTO = "FULL_AUTO"
    """Sent at once (the node's behaviour before execution modes)."""
    SEMI_AUTO = "SEMI_AUTO"
    """Orders above the approval thresholds wait for a person's approval."""
    MANUAL = "MANUAL"
    """Every order waits for a person's approval."""
    RESEARCH = "RESEARCH"
    """Orders are recorded and simulated against live quotes; nothing is sent."""
    EMERGENCY = "EMERGENCY"
    """Kill switch with flatten on every venue; every order is refused until an
    operator resumes."""


class RoutingPolicy(enum.Enum):
    PREFERRED = "preferred"
    """The first venue of the preference order that can take the order."""
    BEST_PRICE = "best_price"
    """The venue whose quote, net of its taker fee, is best for the order's side."""
    SPLIT = "split"
    """Split across venues by the size each shows at the top of its book."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class InstrumentConfig(_Strict):
    """One instrument: the venues that list it and its symbol at each.

    The mapping's order is the default preference order."""

    venues: dict[str, str] = Field(min_length=1)
    policy: RoutingPolicy | None = None
    """Overrides ``routing.policy`` for this instrument."""

    @field_validator("venues")
    @classmethod
    def _names(cls, venues: dict[str, str]) -> dict[str, str]:
        for venue, symbol in venues.items():
            if venue == AUTO_VENUE or not _matches_venue_name(venue):
                raise ConfigError(f"{venue!r} is not a venue name", key=venue)
            if not symbol or not symbol.strip() or symbol != symbol.strip():
                raise ConfigError(f"symbol {symbol!r} is empty or padded", key=venue)
        return venues

    def symbol_at(self, venue: str) -> str | None:
        return self.venues.get(venue)


class RoutingConfig(_Strict):
    policy: RoutingPolicy = RoutingPolicy.PREFERRED
    venues: tuple[str, ...] = ()
    """Preference order across instruments; venues an instrument lists and this
    does not name come after, in the instrument's order."""
    taker_fee_bps: dict[str, Decimal] = {}
    """Each venue's taker fee, for ``best_price`` (0 for a venue not named)."""
    failover: bool = True
    """Send to the next venue when the chosen one's breaker is open, it is absent,
    or it refuses for a transport reason; never on a business refusal."""
    min_split_quantity: Decimal = Field(Decimal(0), ge=0)
    """``split``: a venue's share below this goes to the others instead."""

    @field_validator("taker_fee_bps")
    @classmethod
    def _fees(cls, fees: dict[str, Decimal]) -> dict[str, Decimal]:
        for venue, fee in fees.items():
            if not Decimal(0) <= fee < Decimal(10_000):
                raise ConfigError(f"{fee} bps is not within [0, 10000)", key=venue)
        return fees


class ApprovalConfig(_Strict):
    notional_threshold: Decimal | None = Field(None, gt=0)
    """SEMI_AUTO: an order whose notional (at its price, or the last quote for a
    market order) is above this waits for approval."""
    quantity_threshold: Decimal | None = Field(None, gt=0)
    """SEMI_AUTO: an order whose quantity is above this waits for approval."""
    timeout: float = Field(300.0, gt=0)
    """Seconds (node clock) a pending approval waits before it is denied
    ``APPROVAL_TIMEOUT``."""
    capacity: int = Field(1000, ge=1)
    """Pending approvals at most; one more is denied at once."""


class InstrumentMap:
    """Instrument <-> (venue, symbol), from ``instruments:``: pure, for routing and
    for aggregating positions across venues."""

    def __init__(self, instruments: Mapping[str, InstrumentConfig]) -> None:
        self._instruments = dict(instruments)
        self._by_listing: dict[tuple[str, str], str] = {}
        for name, config in self._instruments.items():
            for venue, symbol in config.venues.items():
                self._by_listing.setdefault((venue, symbol), name)

    def __contains__(self, instrument: object) -> bool:
        return instrument in self._instruments

    def get(self, instrument: str) -> InstrumentConfig | None:
        return self._instruments.get(instrument)

    def instruments(self) -> tuple[str, ...]:
        return tuple(self._instruments)

    def listings(self, instrument: str) -> tuple[tuple[str, str], ...]:
        """(venue, symbol) of every listing, in the instrument's order."""
        config = self._instruments.get(instrument)
        return () if config is None else tuple(config.venues.items())

    def instrument_of(self, venue: str, symbol: str) -> str | None:
        """The instrument listed as ``symbol`` on ``venue``, or None."""
        return self._by_listing.get((venue, symbol))


def _matches_venue_name(name: str) -> bool:
    return re.fullmatch(_VENUE_NAME, name) is not None


def check_execution_config(
    *,
    instruments: Mapping[str, InstrumentConfig],
    routing: RoutingConfig,
    venue_names: tuple[str, ...],
) -> None:
    """Cross-checks the node config makes: every venue named is configured."""
    known = set(venue_names)
    for name, instrument in instruments.items():
        for venue in instrument.venues:
            if known and venue not in known:
                raise ConfigError(
                    f"instrument {name} is listed on unknown venue {venue!r} "
                    f"(venues: {', '.join(venue_names)})",
                    key=f"instruments.{name}.venues.{venue}",
                )
    for index, venue in enumerate(routing.venues):
        if known and venue not in known:
            raise ConfigError(
                f"routing prefers unknown venue {venue!r} (venues: {', '.join(venue_names)})",
                key=f"routing.venues[{index}]",
            )
