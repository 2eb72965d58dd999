"""A deterministic matching simulator for paper trading and local fake venues.

Pure by design (no I/O, threads, wall clock or global random state): the
paper broker actor drives it from its own mailbox and the fake Binance, OKX
and Coinbase venues put it behind their wire protocols, and both need a run
to be reproducible from a seed. See :class:`MatchingSimulator` for the
matching, accounting and commission rules.
"""

from tradenode.sim._book import SyntheticBook
from tradenode.sim._config import InstrumentSpec, SimConfig
from tradenode.sim._defaults import default_instruments, paper_sim_config
from tradenode.sim._events import (
    SimAccepted,
    SimAmended,
    SimBalance,
    SimCanceled,
    SimEvent,
    SimExpired,
    SimFill,
    SimOrder,
    SimOrderStatus,
    SimQuote,
    SimRejectCode,
    SimRejected,
    SimTriggered,
)
from tradenode.sim._simulator import (
    EXPIRED_BOOK_EXHAUSTED,
    EXPIRED_FOK_UNFILLABLE,
    EXPIRED_IOC_REMAINDER,
    EXPIRED_TIME_REACHED,
    EXPIRED_UNFUNDED_TRIGGER,
    MatchingSimulator,
)

__all__ = [
    "EXPIRED_BOOK_EXHAUSTED",
    "EXPIRED_FOK_UNFILLABLE",
    "EXPIRED_IOC_REMAINDER",
    "EXPIRED_TIME_REACHED",
    "EXPIRED_UNFUNDED_TRIGGER",
    "InstrumentSpec",
    "MatchingSimulator",
    "SimAccepted",
    "SimAmended",
    "SimBalance",
    "SimCanceled",
    "SimConfig",
    "SimEvent",
    "SimExpired",
    "SimFill",
    "SimOrder",
    "SimOrderStatus",
    "SimQuote",
    "SimRejectCode",
    "SimRejected",
    "SimTriggered",
    "SyntheticBook",
    "default_instruments",
    "paper_sim_config",
]
