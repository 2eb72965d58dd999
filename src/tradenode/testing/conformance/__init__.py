"""The venue conformance suite: what every venue adapter must do, checked through a running node.

An adapter's tests implement :class:`ConformanceVenue` for the adapter's
local fake venue and subclass :class:`ConformanceSuite`; the test module is
a few lines::

    import pytest
    from tradenode.testing.conformance import ConformanceSuite, ConformanceVenue

    class ToyConformanceVenue(ConformanceVenue):
        ...  # start/stop the fake, its venue config, its books, its faults

    class TestToyConformance(ConformanceSuite):
        @pytest.fixture
        def conformance_venue(self) -> ConformanceVenue:
            return ToyConformanceVenue()

Each test starts a fresh fake and a node (journal in ``tmp_path``, a
:class:`~tradenode.supervision.ManualClock` shared with the fake), attaches
the venue from :meth:`ConformanceVenue.venue_config` and drives it through
public APIs: the lifecycle of every order type the venue declares, partial
fills, cancel, modify, cancel-all, the kill switch with flatten (checked
against the venue's own account), a stream dropped mid-fill with the
broker restarted (every fill exactly once), a submit of unknown outcome
resolved by query and never sent twice, 429 with Retry-After honoured, a
malformed payload logged, counted and never fatal, a restart from the
journal with reconciliation (orders and fills the venue has and the
journal lacks adopted), secrets never in logs, reprs, status or journal,
and the randomized exactly-once campaign with a bounded seed set.

A hook the venue cannot offer raises :class:`NotSupported`; the checks
that need it are skipped with the reason, never passed. This package
imports no adapter: it reaches a venue only through the node and the
adapter's :class:`ConformanceVenue`. It needs pytest (``pip install
'tradenode[test]'``).
"""

from ._driver import Driver, Rig
from ._suite import ConformanceSuite, assert_books_agree
from ._venue import (
    ConformanceVenue,
    Instrument,
    NotSupported,
    OrderRecipe,
    VenueFill,
    VenueOrder,
    default_recipe,
)

__all__ = [
    "ConformanceSuite",
    "ConformanceVenue",
    "Driver",
    "Instrument",
    "NotSupported",
    "OrderRecipe",
    "Rig",
    "VenueFill",
    "VenueOrder",
    "assert_books_agree",
    "default_recipe",
]
