"""How a node attaches the embedded paper venue: the ``paper`` venue kind."""

from __future__ import annotations

from typing import Any

from ..._registry import VenueKind
from ...sim._defaults import paper_sim_config
from ...supervision import ChildSpec, SupervisorSpec
from .._factory import VenueBuild, VenueContext
from .._increments import INSTRUMENTS_KEY, increments_entry
from ._actor import PaperBroker, PaperLink
from ._capabilities import paper_capabilities
from ._market import PaperMarket
from ._settings import PaperSettings
from ._venue import PaperVenue

__all__ = ["PAPER", "build_paper"]


def build_paper(context: VenueContext[PaperSettings]) -> VenueBuild:
    """The simulator (kept across re-attachments: its book and balances are the
    venue's own state), a broker in front of it, and a market ticker.

    ``Node.add_venue(config, venue=PaperVenue(...))`` attaches a simulator the
    caller built (other instruments, a chosen price path) instead."""
    settings, name = context.settings, context.name
    venue: PaperVenue
    if isinstance(context.provided, PaperVenue):
        venue = context.provided
    elif isinstance(context.previous, PaperVenue):
        venue = context.previous
    elif context.provided is not None:
        raise TypeError(
            f"venue {name}: kind paper attaches a PaperVenue, not {type(context.provided).__name__}"
        )
    else:
        venue = PaperVenue(
            name,
            paper_sim_config(
                quote_balance=settings.quote_balance,
                fill_probability=settings.fill_probability,
                allow_short=settings.allow_short,
                taker_commission_bps=settings.taker_commission_bps,
                maker_commission_bps=settings.maker_commission_bps,
                slippage_bps=settings.slippage_bps,
            ),
            seed=settings.seed if settings.seed is not None else context.seed,
            clock=context.clock,
            latency=settings.latency_ms / 1000,
        )
    oms = context.reports_to
    link = PaperLink()
    amend_natively = settings.amend == "native"
    extra: list[ChildSpec | SupervisorSpec] = []
    if settings.tick_interval_ms:
        interval = settings.tick_interval_ms / 1000
        extra.append(ChildSpec("market", lambda: PaperMarket(venue, interval)))

    def status() -> dict[str, Any]:
        return {
            "reconciliations": link.reconciliations,
            "malformed_payloads": link.malformed_payloads,
            "in_flight": len(link.in_flight),
            # The simulator's own tick and lot sizes (a provided venue's, not the defaults').
            INSTRUMENTS_KEY: {
                spec.symbol: increments_entry(spec.tick_size, spec.lot_size)
                for spec in venue.instruments
            },
        }

    return VenueBuild(
        broker=context.broker_spec(
            lambda: PaperBroker(venue, reports_to=oms, link=link, amend_natively=amend_natively)
        ),
        capabilities=paper_capabilities(
            amend_natively=amend_natively,
            allow_short=settings.allow_short,
            latency=venue.latency,
        ),
        runtime=venue,
        extra=tuple(extra),
        status=status,
    )


PAPER = VenueKind(
    "paper",
    settings=PaperSettings,
    factory=build_paper,
    description="the embedded paper venue: a simulated exchange inside the node",
)
