"""The trading core as supervised actors, and the pure state machines they wrap.

Public API tiers (``tests/test_public_api.py`` pins each):

- **Strategy authors and node operators**: :class:`Strategy` and its
  :class:`StrategyContext` (:class:`ExampleStrategy` shows both); the
  questions a node's OMS, risk guard and breakers answer (``GetFills``,
  ``GetPositions``, ``GetOpenOrders``, ``GetOrder``, ``GetOrders``, ``GetMetrics``,
  ``GetRiskStatus``, ``GetBreakerStats``, ``Subscribe``/``Unsubscribe``,
  ``SetTradingState``) and their answers and broadcasts
  (``TrackedOrderView``, ``LogicalOrderView``, ``Routed``,
  ``PositionDrift``, ``KillSwitchReport``, ``VenueEntry``,
  ``VenueFailureStats``, ``BreakerStats``, ``CircuitState``); execution
  quality (``GetExecutionQuality``: ``ExecutionQuality``,
  ``ExecutionQualityTotals``) and positions per instrument across venues
  (``GetExposure``: ``Exposure``, ``InstrumentExposure``, ``VenueExposure``).
- **Adapter authors**: the broker actor contract (``BrokerRequest``,
  ``BrokerCommand``, ``BrokerReply``, ``Outcome``, ``RateObservation``,
  ``QuoteSubscription``, ``TradeSubscription``, ``AcceptanceWindow``), what a broker reports
  besides orders (``VenueBalances``, ``VenueCursor``) and the capabilities
  it declares (``VenueCapabilities``, ``AmendMode``, ``CancelAllScope``,
  ``ClientIdRules``, ``ClientOrderIdFamily``, ``MarketDataKind``). The
  rest of the kit is in :mod:`tradenode.brokers`.
- **Runtime** (tools that read a node's books): the order manager's pure
  state, ``OmsState``, with its results, errors and position book; what
  it writes into the journal (``JournalEntry``, ``EntryKind`` and their
  codec) and how its state comes back from a journal (``recover``:
  snapshot plus tail; ``replay`` of entries; ``summarize``).

The actors themselves (OMS, risk guard, circuit breaker, strategy host), the
risk engine, the breaker's state machine, limiters and retry policy are the
node's internals: the node builds them, and their tests import them from
their private modules.
"""

from .._exceptions import OmsSnapshotError
from ._approvals import PendingApproval
from ._breaker import GetBreakerStats, VenueFailureStats
from ._breaker_state import BreakerStats, CircuitState
from ._capabilities import (
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
    VenueCapabilities,
)
from ._client_ids import ClientOrderIdFamily
from ._contract import (
    AcceptanceWindow,
    BrokerCommand,
    BrokerReply,
    BrokerRequest,
    Outcome,
    QuoteSubscription,
    RateObservation,
    TradeSubscription,
)
from ._control import (
    GetFills,
    GetMetrics,
    GetOpenOrders,
    GetOrder,
    GetOrders,
    GetPositions,
    GetRiskStatus,
    PositionDrift,
    Routed,
    SetTradingState,
    Subscribe,
    Unsubscribe,
    VenueBalances,
    VenueCursor,
)
from ._directory import VenueEntry
from ._example import ExampleStrategy
from ._execution_modes import ResearchEvent
from ._execution_quality import ExecutionQuality, ExecutionQualityTotals, GetExecutionQuality
from ._exposure import Exposure, GetExposure, InstrumentExposure, VenueExposure
from ._oms import KillSwitchReport
from ._oms_entries import EntryKind, JournalEntry, decode_entry, encode_entry, entry_to_dict
from ._oms_parents import GetParent, GetParents, ParentView
from ._oms_replay import ReplayResult, apply_entry, recover, replay, summarize
from ._oms_state import (
    ApplyResult,
    Drift,
    DriftKind,
    DuplicateOrderError,
    ExecutionReport,
    IgnoreReason,
    LogicalOrderView,
    MetricValue,
    OmsCounts,
    OmsError,
    OmsState,
    ReplaceRefusedError,
    TrackedOrderView,
)
from ._positions import (
    PositionBook,
    PositionFill,
)
from ._routing import AwaitingApproval, FailedOver, RoutedAs
from ._strategy import Strategy, StrategyContext

__all__ = [
    "AcceptanceWindow",
    "AmendMode",
    "ApplyResult",
    "AwaitingApproval",
    "BreakerStats",
    "BrokerCommand",
    "BrokerReply",
    "BrokerRequest",
    "CancelAllScope",
    "CircuitState",
    "ClientIdRules",
    "ClientOrderIdFamily",
    "Drift",
    "DriftKind",
    "DuplicateOrderError",
    "EntryKind",
    "ExampleStrategy",
    "ExecutionQuality",
    "ExecutionQualityTotals",
    "ExecutionReport",
    "Exposure",
    "FailedOver",
    "GetBreakerStats",
    "GetExecutionQuality",
    "GetExposure",
    "GetFills",
    "GetMetrics",
    "GetOpenOrders",
    "GetOrder",
    "GetOrders",
    "GetParent",
    "GetParents",
    "GetPositions",
    "GetRiskStatus",
    "IgnoreReason",
    "InstrumentExposure",
    "JournalEntry",
    "KillSwitchReport",
    "LogicalOrderView",
    "MarketDataKind",
    "MetricValue",
    "OmsCounts",
    "OmsError",
    "OmsSnapshotError",
    "OmsState",
    "Outcome",
    "ParentView",
    "PendingApproval",
    "PositionBook",
    "PositionDrift",
    "PositionFill",
    "QuoteSubscription",
    "RateObservation",
    "ReplaceRefusedError",
    "ReplayResult",
    "ResearchEvent",
    "Routed",
    "RoutedAs",
    "SetTradingState",
    "Strategy",
    "StrategyContext",
    "Subscribe",
    "TrackedOrderView",
    "TradeSubscription",
    "Unsubscribe",
    "VenueBalances",
    "VenueCapabilities",
    "VenueCursor",
    "VenueEntry",
    "VenueExposure",
    "VenueFailureStats",
    "apply_entry",
    "decode_entry",
    "encode_entry",
    "entry_to_dict",
    "recover",
    "replay",
    "summarize",
]
