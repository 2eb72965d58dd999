"""The conformance suite: one pytest class an adapter's test module subclasses.

The subclass provides a ``conformance_venue`` fixture returning a fresh,
not yet started :class:`ConformanceVenue`; every test method of the suite
then runs against it. ``campaign_seeds`` and ``campaign_incarnations``
bound the randomized campaign (CI runs the bounded set).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["ConformanceSuite"]


class ConformanceSuite:
    """Subclass as ``Test<Venue>Conformance`` and provide the ``conformance_venue`` fixture."""

    campaign_seeds: ClassVar[tuple[int, ...]] = (7,)
    """Seeds of the randomized exactly-once campaign (a bounded set)."""
    campaign_incarnations: ClassVar[int] = 3
    """Node incarnations per campaign seed."""
