"""The paper venue's settings: the ``paper:`` section of a venue config."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from ..._config import VenueSettings
from ...sim._defaults import default_instruments

__all__ = ["PaperSettings"]


class PaperSettings(VenueSettings):
    """How the embedded simulator behaves: latency, market ticks, balance, fills, fees.

    ``seed`` defaults to the node's; ``tick_interval_ms`` is how often the
    simulated market moves (and quotes reach the node); ``fill_probability``
    is the chance a marketable order fills when it reaches the book;
    ``allow_short: false`` makes it a spot account (selling needs a held
    balance); ``amend`` says whether a modify is a native amend or a
    cancel/replace.
    """

    seed: int | None = None
    latency_ms: float = Field(0.0, ge=0)
    tick_interval_ms: float = Field(250.0, gt=0)
    quote_balance: Decimal = Field(Decimal("1000000"), gt=0)
    fill_probability: float = Field(1.0, ge=0, le=1)
    taker_commission_bps: Decimal = Field(Decimal("10"), ge=0)
    maker_commission_bps: Decimal = Field(Decimal("2"), ge=0)
    slippage_bps: Decimal = Field(Decimal("0"), ge=0)
    allow_short: bool = True
    amend: Literal["native", "cancel_replace"] = "native"

    def known_symbols(self) -> tuple[str, ...]:
        """A paper venue built from a config runs the simulator's default
        instruments (BTCUSDT, ETHUSDT, SOLUSDT): the config has no key to change
        them; only Python code can attach a ``PaperVenue`` of other instruments
        (``Node.add_venue(config, venue=...)``)."""
        return tuple(spec.symbol for spec in default_instruments())
