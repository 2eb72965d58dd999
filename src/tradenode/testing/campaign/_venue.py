"""What the campaign needs from a venue: a process to start, faults to inject, books to read.

The campaign itself knows no venue. A venue plugs in by implementing
:class:`CampaignVenue` (the Binance one is
:class:`~tradenode.testing.campaign.BinanceCampaignVenue`): it starts its
local venue in another process, writes the venue section of the node's
config, offers a menu of faults, and reads its own books back as a third
party, in the neutral :class:`VenueBooks`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CampaignVenue",
    "FaultAction",
    "VenueBooks",
    "VenueFill",
    "VenueOrder",
    "VenueSettings",
]

FaultAction = Callable[[random.Random], str]
"""Injects one fault, drawing its parameters from the generator; returns what it did."""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order in the venue's books."""

    client_order_id: str
    order_id: str
    symbol: str
    side: str
    status: str
    """The venue's own word (``NEW``, ``FILLED``, ...)."""
    is_open: bool
    """Resting at the venue: it may still fill or be canceled."""
    quantity: Decimal
    filled_quantity: Decimal


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One execution in the venue's books, named by the execution id the node journals."""

    execution_id: str
    client_order_id: str
    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class VenueBooks:
    """The venue's books as a third party reads them after the drill."""

    orders: tuple[VenueOrder, ...]
    fills: tuple[VenueFill, ...]
    balances: Mapping[str, Decimal]
    """Per asset: everything the account holds (free and locked)."""
    submissions: Mapping[str, int]
    """Per client order id: how many placement requests named it (refused ones included)."""
    calls: Mapping[str, int] = field(default_factory=dict)
    """Requests per endpoint, when the venue counts them."""

    def orders_of(self, client_order_id: str) -> list[VenueOrder]:
        return [order for order in self.orders if order.client_order_id == client_order_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": [_plain(order) for order in self.orders],
            "fills": [_plain(fill) for fill in self.fills],
            "balances": {asset: str(amount) for asset, amount in self.balances.items()},
            "submissions": dict(self.submissions),
            "calls": dict(self.calls),
        }


def _plain(record: VenueOrder | VenueFill) -> dict[str, Any]:
    return {
        name: str(value) if isinstance(value, Decimal) else value
        for name, value in ((name, getattr(record, name)) for name in record.__slots__)
    }


@dataclass(frozen=True, slots=True)
class VenueSettings:
    """Per-incarnation connection settings of the venue section, drawn from the seed."""

    acceptance_window: float
    """Seconds after sending during which the venue may still act on a request
    (Binance: ``recvWindow``). The node's breaker timeout is kept above it."""
    fields: Mapping[str, Any]
    """The venue-specific settings as they go into the node's config."""

    def describe(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.fields.items())


class CampaignVenue(Protocol):
    """A venue the campaign can drill; every call is made from the campaign's thread."""

    @property
    def name(self) -> str:
        """The venue's name: the drill command's word and the node config's venue name."""
        ...

    @property
    def symbols(self) -> Mapping[str, str]:
        """The symbols the node trades, each with its base asset."""
        ...

    @property
    def initial_balances(self) -> Mapping[str, Decimal]:
        """The account's balances when the venue starts."""
        ...

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that no file the drill produces may contain (API secrets)."""
        ...

    def start(self, workdir: Path, seed: int) -> Mapping[str, str]:
        """Start the local venue in another process (its log in ``workdir``); its URLs."""
        ...

    def stop(self) -> None:
        """Stop the venue process (idempotent)."""
        ...

    def node_environment(self) -> Mapping[str, str]:
        """Environment variables the node needs (the credentials its config refers to)."""
        ...

    def draw_settings(self, rng: random.Random | None) -> VenueSettings:
        """Connection settings for one incarnation; the venue's defaults when ``rng`` is None."""
        ...

    def held_placement_settings(self) -> VenueSettings:
        """The settings of the directed held-placement case (Binance: recvWindow 5000)."""
        ...

    def venue_config(self, settings: VenueSettings) -> dict[str, Any]:
        """The node config's entry in ``venues:`` (without ``breaker``), as plain data.

        Secrets appear only as ``${ENV}`` references to :meth:`node_environment`.
        """
        ...

    def faults(self) -> Mapping[str, FaultAction]:
        """The menu of faults the venue can inject, by name."""
        ...

    def hold_placements(self, seconds: float) -> str:
        """Hold the next order placement ``seconds`` before the venue acts on it."""
        ...

    def placements_held(self) -> tuple[str, ...]:
        """The client order ids of the placements the venue is holding right now (not yet
        acted on); ``""`` for a held placement that names none."""
        ...

    def clear_faults(self) -> None:
        """Forget every pending fault (and deliver events held back for reordering)."""
        ...

    def freeze_prices(self) -> None:
        """Stop prices moving by themselves, so resting orders stop filling."""
        ...

    def books(self) -> VenueBooks:
        """The venue's orders, fills, balances and submission counts."""
        ...
