"""The randomized exactly-once campaign: a node killed again and again against a venue process.

Per seed (everything drawn from ``random.Random(seed)``, the seed printed
first): the local venue starts in another process; node incarnations
(``tradenode run`` with the example strategy, journal with group commit)
trade on it and die by SIGKILL at seeded moments, at crash points
(``TRADENODE_CRASH_AT``), or while the venue holds one of their
placements; the venue's faults (dropped streams, downtime, failed or
delayed requests, 429/418, duplicated, reordered or corrupted events) land
before and during incarnations; each incarnation draws its own timing
settings (for Binance ``recv_window_ms`` and an HTTP ``request_timeout``
that is often shorter than it, with the breaker's ``request_timeout``
always above the acceptance window). After each death the journal is
verified read-only. Two settle runs with no strategy follow (faults
cleared; then prices frozen), and the venue's books, read as a third
party, are compared with the journal replayed as a node would:

- ``deaths_as_planned``: each process ended the way the plan said;
- ``journal_sound``: the journal reads back sound after every death;
- ``fills_exactly_once``: every venue fill journaled once, nothing extra;
- ``one_order_per_client_id``: one placement, one venue order per client id;
- ``logical_orders_not_overfilled``: no cancel/replace chain filled beyond what
  the strategy asked (a replacement placed after its predecessor filled);
- ``positions_match_balances``: positions equal each base asset's change;
- ``open_orders_agree``: open orders agree both ways;
- ``held_placements_once``: a placement held past its node's death ends as
  exactly one order;
- ``no_secret_in_files``: no file produced holds the API secret.

From the command line: ``tradenode drill binance --seed S`` (``--seeds
A-B``, ``--incarnations N``, ``--scenario random|kills|held-placement``,
``--workdir DIR``). From Python::

    summary = run_campaign(BinanceCampaignVenue(), seed=7, workdir=Path("drill"))
    assert summary.passed, summary.failed

A venue plugs in by implementing :class:`CampaignVenue`; its
:class:`VenueBooks` hold the conformance suite's
:class:`~tradenode.testing.conformance.VenueOrder` and
:class:`~tradenode.testing.conformance.VenueFill` (exported there). Nothing here
imports a broker adapter: the drill drives processes and talks HTTP to the
venue's admin port.
"""

from collections.abc import Callable, Mapping

from ._binance import PLACEMENTS, BinanceCampaignVenue
from ._invariants import INVARIANTS, Death, InvariantResult, journal_problems, replay_journal
from ._runner import (
    CRASH_POINTS,
    SCENARIOS,
    CampaignSummary,
    FaultStep,
    IncarnationPlan,
    IncarnationRecord,
    node_config,
    plan_campaign,
    run_campaign,
)
from ._venue import CampaignVenue, FaultAction, VenueBooks, VenueSettings

VENUES: Mapping[str, Callable[[], CampaignVenue]] = {"binance": BinanceCampaignVenue}
"""The venues ``tradenode drill`` knows, by name: each a factory of a :class:`CampaignVenue`."""

__all__ = [
    "CRASH_POINTS",
    "INVARIANTS",
    "PLACEMENTS",
    "SCENARIOS",
    "VENUES",
    "BinanceCampaignVenue",
    "CampaignSummary",
    "CampaignVenue",
    "Death",
    "FaultAction",
    "FaultStep",
    "IncarnationPlan",
    "IncarnationRecord",
    "InvariantResult",
    "VenueBooks",
    "VenueSettings",
    "journal_problems",
    "node_config",
    "plan_campaign",
    "replay_journal",
    "run_campaign",
]
