"""Venue adapters: each a codec, a trio session and a broker actor.

Every adapter's actor builds on :class:`BrokerBase`, the venue-independent
half of the broker actor contract (deadlines, one request at a time per
order, reject plus reply, quote fan-out, rate observations, the link's
counters in :class:`BrokerLink`), and implements the venue's half.
"""

from ._base import IN_FLIGHT, Answer, BrokerBase, BrokerLink, InFlight, refuse_if_expired

__all__ = [
    "IN_FLIGHT",
    "Answer",
    "BrokerBase",
    "BrokerLink",
    "InFlight",
    "refuse_if_expired",
]
