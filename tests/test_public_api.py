"""Pins the public API in tiers, as trio does: a change here is a deliberate API change.

Three tiers, each a map of package -> names (a package's ``__all__`` is the
union of its names across the tiers, and a name is in one tier only):

- ``STRATEGY``: what strategy authors and node operators import: the node,
  its config and exceptions, the messages, the strategy base class and the
  questions a node answers, and how to configure each venue kind.
- ``ADAPTER``: what a venue adapter's author imports: the kit, the broker
  actor contract and capabilities, the simulator for fakes, the conformance
  suite, the local Binance venue, and the adapters' shareable pieces.
- ``RUNTIME``: the layers underneath, for tools and tests: the actor
  runtime, the journal, the order manager's pure state, the campaign.

Every public object is exported from exactly one place and defined in a
private module (as trio's ``test_exports`` checks): nothing is public twice.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

STRATEGY: dict[str, list[str]] = {
    "tradenode": [
        "BrokerConnectionError",
        "BrokerError",
        "BrokerRejectedError",
        "BrokerTimeoutError",
        "ConfigError",
        "DecodeError",
        "ExecutionEngine",
        "ExecutionMode",
        "KillSwitch",
        "MalformedPayloadError",
        "Node",
        "NodeConfig",
        "TradenodeError",
        "TradingStateTransitionError",
        "__version__",
        "load_config",
        "parse_config",
    ],
    "tradenode.messages": [
        "AlgoParams",
        "CLIENT_ORDER_ID_PATTERN",
        "CancelAllOrders",
        "CancelOrder",
        "CancelParentOrder",
        "CancelRejected",
        "DEFAULT_REGISTRY",
        "DecisionAction",
        "DenialCode",
        "ExecutionDecision",
        "FORMAT_VERSION",
        "IcebergParams",
        "LiquiditySide",
        "MarketTrade",
        "Message",
        "MessageRegistry",
        "ModifyOrder",
        "ModifyRejected",
        "OrderAccepted",
        "OrderCanceled",
        "OrderDenied",
        "OrderExpired",
        "OrderFilled",
        "OrderModified",
        "OrderRejected",
        "OrderStatus",
        "OrderStatusReport",
        "OrderSubmitted",
        "OrderType",
        "ParentAccepted",
        "ParentCanceled",
        "ParentDenied",
        "ParentFilled",
        "ParentProfile",
        "ParentProgress",
        "ParentState",
        "PositionSnapshot",
        "PovParams",
        "QueryOrder",
        "Quote",
        "Side",
        "SubmitOrder",
        "SubmitParentOrder",
        "TimeInForce",
        "TradingState",
        "TradingStateChanged",
        "TwapParams",
        "VwapParams",
        "child_number",
        "child_order_id",
        "decode",
        "encode",
    ],
    "tradenode.actors": [
        "AwaitingApproval",
        "BreakerStats",
        "CircuitState",
        "ExampleStrategy",
        "ExecutionQuality",
        "ExecutionQualityTotals",
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
        "InstrumentExposure",
        "KillSwitchReport",
        "LogicalOrderView",
        "ParentView",
        "PendingApproval",
        "PositionDrift",
        "ResearchEvent",
        "Routed",
        "RoutedAs",
        "SetTradingState",
        "Strategy",
        "StrategyContext",
        "Subscribe",
        "TrackedOrderView",
        "Unsubscribe",
        "VenueEntry",
        "VenueExposure",
        "VenueFailureStats",
    ],
    "tradenode.brokers.binance": [
        "BINANCE",
        "BinanceBroker",
        "BinanceEndpoints",
        "BinanceLink",
        "BinanceSettings",
        "DepthSnapshot",
        "GetMarketSnapshot",
        "MarketSnapshot",
    ],
    "tradenode.brokers.alpaca": [
        "ALPACA",
        "AlpacaLink",
        "AlpacaSettings",
        "OutsideSession",
    ],
    "tradenode.brokers.ccxt": [
        "CCXT",
        "CcxtLink",
        "CcxtSettings",
    ],
    "tradenode.brokers.coinbase": [
        "COINBASE",
        "CoinbaseLink",
        "CoinbaseSettings",
    ],
    "tradenode.brokers.ibkr": [
        "IBKR",
        "IbkrContractSpec",
        "IbkrLink",
        "IbkrSettings",
    ],
    "tradenode.brokers.oanda": [
        "OANDA",
        "OandaLink",
        "OandaSettings",
    ],
    "tradenode.brokers.okx": [
        "OKX",
        "OkxLink",
        "OkxSettings",
    ],
    "tradenode.brokers.paper": [
        "PAPER",
        "PaperLink",
        "PaperSession",
        "PaperSettings",
        "PaperVenue",
    ],
}

ADAPTER: dict[str, list[str]] = {
    "tradenode.brokers": [
        "Answer",
        "BrokerBase",
        "BrokerLink",
        "ENTRY_POINT_GROUP",
        "IN_FLIGHT",
        "INSTRUMENTS_KEY",
        "InFlight",
        "Increments",
        "JsonFields",
        "LearnedIncrements",
        "RecoveredVenue",
        "Rejection",
        "VenueBuild",
        "VenueConfig",
        "VenueContext",
        "VenueKind",
        "VenueKindError",
        "VenueSettings",
        "broken_venue_kinds",
        "decode_json",
        "get_venue_kind",
        "increments_entry",
        "installed_venue_kinds",
        "places_increment",
        "refuse_if_expired",
        "register_venue_kind",
        "reload_venue_kinds",
        "unregister_venue_kind",
    ],
    "tradenode.actors": [
        "AcceptanceWindow",
        "AmendMode",
        "BrokerCommand",
        "BrokerReply",
        "BrokerRequest",
        "CancelAllScope",
        "ClientIdRules",
        "ClientOrderIdFamily",
        "MarketDataKind",
        "Outcome",
        "QuoteSubscription",
        "RateObservation",
        "TradeSubscription",
        "VenueBalances",
        "VenueCapabilities",
        "VenueCursor",
    ],
    "tradenode.brokers.binance": [
        "ApiCredentials",
        "BinanceCredentials",
        "Ed25519Credentials",
        "binance_capabilities",
        "signed_query",
        "signed_ws_params",
    ],
    "tradenode.brokers.alpaca": [
        "alpaca_capabilities",
    ],
    "tradenode.brokers.ccxt": [
        "ccxt_capabilities",
    ],
    "tradenode.brokers.coinbase": [
        "CdpCredentials",
        "build_jwt",
        "coinbase_capabilities",
        "jwt_uri",
    ],
    "tradenode.brokers.ibkr": [
        "ibkr_capabilities",
    ],
    "tradenode.brokers.oanda": [
        "oanda_capabilities",
    ],
    "tradenode.brokers.okx": [
        "okx_capabilities",
    ],
    "tradenode.brokers.paper": [
        "PaperBroker",
        "paper_capabilities",
    ],
    "tradenode.sim": [
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
    ],
    "tradenode.testing.conformance": [
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
    ],
    "tradenode.testing.venues": [
        "AlpacaFillInfo",
        "AlpacaOrderInfo",
        "AlpacaVenue",
        "BinanceError",
        "BinanceExchange",
        "BinanceVenue",
        "CdpKey",
        "CoinbaseFillInfo",
        "CoinbaseOrderInfo",
        "CoinbaseVenue",
        "DEFAULT_ALPACA_API_KEY",
        "DEFAULT_ALPACA_CASH",
        "DEFAULT_ALPACA_SECRET",
        "DEFAULT_API_KEY",
        "DEFAULT_API_SECRET",
        "DEFAULT_BALANCES",
        "DEFAULT_COINBASE_BALANCES",
        "DEFAULT_IBKR_ACCOUNT",
        "DEFAULT_OANDA_ACCOUNT_ID",
        "DEFAULT_OANDA_TOKEN",
        "DEFAULT_OKX_API_KEY",
        "DEFAULT_OKX_PASSPHRASE",
        "DEFAULT_OKX_SECRET",
        "IbkrContract",
        "IbkrVenue",
        "OandaVenue",
        "OkxFillInfo",
        "OkxOrderInfo",
        "OkxVenue",
        "OrderInfo",
        "TradeInfo",
        "alpaca_sim_config",
        "default_alpaca_instruments",
        "default_binance_config",
        "default_coinbase_config",
        "default_ibkr_contracts",
        "default_okx_config",
        "generate_cdp_key",
        "rest_signature",
        "ws_signature",
        "ws_signature_payload",
    ],
}

RUNTIME: dict[str, list[str]] = {
    "tradenode.supervision": [
        "Actor",
        "ActorContext",
        "ActorStoppedError",
        "ActorSystem",
        "AddChild",
        "Address",
        "AskTimeoutError",
        "Backoff",
        "Cancellable",
        "CellState",
        "ChildInfo",
        "ChildSpec",
        "Clock",
        "DeadLetter",
        "DeadLetters",
        "EventBus",
        "EventRecorder",
        "Intensity",
        "ManualClock",
        "RemoveChild",
        "RestartIntensityExceeded",
        "RestartType",
        "Strategy",
        "SupervisionError",
        "SupervisionEvent",
        "SupervisionEventKind",
        "Supervisor",
        "SupervisorSpec",
        "SystemClock",
        "TRANSITIONS",
        "Terminated",
        "ThreadScheduling",
        "TreeNode",
        "TrioLoopClosed",
        "TrioThread",
        "WhichChildren",
        "add_child",
        "ask_async",
        "remove_child",
        "which_children",
    ],
    "tradenode.journal": [
        "CompactionResult",
        "CorruptJournalError",
        "DEFAULT_SEGMENT_BYTES",
        "FsyncMode",
        "FsyncPolicy",
        "Journal",
        "JournalError",
        "JournalReport",
        "JournalStats",
        "JournalVersionError",
        "SnapshotInfo",
        "TornTail",
        "verify_journal",
    ],
    "tradenode.actors": [
        "ApplyResult",
        "Drift",
        "DriftKind",
        "DuplicateOrderError",
        "EntryKind",
        "ExecutionReport",
        "IgnoreReason",
        "JournalEntry",
        "MetricValue",
        "OmsCounts",
        "OmsError",
        "OmsSnapshotError",
        "OmsState",
        "PositionBook",
        "PositionFill",
        "ReplaceRefusedError",
        "ReplayResult",
        "apply_entry",
        "decode_entry",
        "encode_entry",
        "entry_to_dict",
        "recover",
        "replay",
        "summarize",
    ],
    "tradenode.testing.campaign": [
        "BinanceCampaignVenue",
        "CRASH_POINTS",
        "CampaignSummary",
        "CampaignVenue",
        "Death",
        "FaultAction",
        "FaultStep",
        "INVARIANTS",
        "IncarnationPlan",
        "IncarnationRecord",
        "InvariantResult",
        "PLACEMENTS",
        "SCENARIOS",
        "VENUES",
        "VenueBooks",
        "VenueSettings",
        "journal_problems",
        "node_config",
        "plan_campaign",
        "replay_journal",
        "run_campaign",
    ],
    "tradenode.testing": [],
    # Algorithm authors: the framework, the algorithms, the node's execution subtree.
    "tradenode.execution": [
        "ALGORITHMS",
        "AlgorithmActor",
        "AlgorithmEnv",
        "ChildIntent",
        "Decision",
        "ExecutionCoordinator",
        "ExecutionRuntime",
        "IcebergAlgorithm",
        "IcebergChild",
        "IcebergPolicy",
        "MAX_FINAL_CHILDREN",
        "PovAlgorithm",
        "PovChild",
        "PovPolicy",
        "ResumeParents",
        "TapeAlgorithm",
        "TwapAlgorithm",
        "TwapSchedule",
        "VolumeProfile",
        "VwapAlgorithm",
        "VwapPolicy",
        "Wake",
        "execution_spec",
        "register_algorithm",
        "twap_decide",
        "twap_schedule",
    ],
    # Operators: the control API a node serves and the client `tradenode ctl` uses.
    "tradenode.control": [
        "AuditRecord",
        "ControlClient",
        "ControlConfig",
        "ControlServer",
        "resolve_control_url",
    ],
    # Operators: Prometheus metrics, structured logs, alerts and their config sections.
    "tradenode.observability": [
        "CONTEXT_FIELDS",
        "Alert",
        "AlertDispatcher",
        "AlertKind",
        "AlertRuleConfig",
        "AlertRules",
        "AlertsConfig",
        "ContextFilter",
        "DeliveryState",
        "JsonFormatter",
        "LatencyHistograms",
        "LogFormat",
        "LoggingConfig",
        "MetricsConfig",
        "MetricsServer",
        "NodeCollector",
        "Observability",
        "ObserverActor",
        "RedactingFilter",
        "WebhookConfig",
        "configure_logging",
        "secret_values",
    ],
}

TIERS = {"strategy": STRATEGY, "adapter": ADAPTER, "runtime": RUNTIME}
PACKAGES = sorted({package for tier in TIERS.values() for package in tier})

#: Different objects under one name in two packages: known, and not to grow.
#: ``Strategy``: the runtime's restart strategy (``ONE_FOR_ONE``...) and the
#: trading strategy base class; ``VenueSettings``: an adapter's settings model
#: and the campaign's per-incarnation venue settings.
SHARED_NAMES = {
    "Strategy": {"tradenode.supervision", "tradenode.actors"},
    "VenueSettings": {"tradenode.brokers", "tradenode.testing.campaign"},
}


def _tier_names(package: str) -> list[str]:
    return [name for tier in TIERS.values() for name in tier.get(package, [])]


def _exports() -> dict[tuple[str, str], object]:
    return {
        (package, name): getattr(importlib.import_module(package), name)
        for package in PACKAGES
        for name in importlib.import_module(package).__all__
    }


def _is_value(obj: object) -> bool:
    """Constants (numbers, strings, tuples, patterns) may be equal by chance: skip them."""
    return isinstance(obj, (int, float, str, bytes, tuple, frozenset, re.Pattern))


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(_tier_names(package))
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name


def test_a_name_is_in_one_tier_only() -> None:
    for package in PACKAGES:
        names = _tier_names(package)
        assert sorted(names) == sorted(set(names)), package


def test_every_public_object_is_exported_once() -> None:
    where: dict[int, list[str]] = {}
    for (package, name), obj in _exports().items():
        if not _is_value(obj):
            where.setdefault(id(obj), []).append(f"{package}.{name}")
    assert sorted(paths for paths in where.values() if len(paths) > 1) == []


def test_public_classes_and_functions_are_defined_in_private_modules() -> None:
    """Each private name is re-exported (once); no package re-exports another's."""
    for (package, name), obj in _exports().items():
        if inspect.isclass(obj) or inspect.isfunction(obj):
            defined_in = obj.__module__
            assert defined_in.startswith("tradenode."), (package, name, defined_in)
            assert any(part.startswith("_") for part in defined_in.split(".")), (
                package,
                name,
                defined_in,
            )


def test_one_name_means_one_thing() -> None:
    packages_by_name: dict[str, set[str]] = {}
    for (package, name), obj in _exports().items():
        if not _is_value(obj):
            packages_by_name.setdefault(name, set()).add(package)
    shared = {name: packages for name, packages in packages_by_name.items() if len(packages) > 1}
    assert shared == SHARED_NAMES


def _imports(source: str) -> list[tuple[str, str]]:
    """``(module, name)`` for every ``from tradenode... import name`` in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tradenode"):
            assert node.module is not None
            found += [(node.module, alias.name) for alias in node.names]
    return found


def test_the_readme_strategy_imports_only_the_strategy_tier() -> None:
    readme = (REPO / "README.md").read_text()
    examples = "\n".join(re.findall(r"```python\n(.*?)```", readme, re.S))
    imported = _imports(examples)
    assert imported
    for module, name in imported:
        assert name in STRATEGY.get(module, []), f"{module}.{name}"


def test_a_third_party_adapter_needs_only_public_names() -> None:
    """``tests/toyvenue`` is an adapter written outside ``src/``: the public kit suffices."""
    for path in sorted((TESTS / "toyvenue").glob("*.py")):
        for module, name in _imports(path.read_text()):
            tiers = (STRATEGY, ADAPTER, RUNTIME)
            assert any(name in tier.get(module, []) for tier in tiers), (
                f"{path.name}: {module}.{name}"
            )


def _private(module: str, names: list[str]) -> bool:
    return any(part.startswith("_") for part in module.split(".")) or any(
        name.startswith("_") for name in names
    )


def _private_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    private: list[ast.Import | ast.ImportFrom] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tradenode"):
            assert node.module is not None
            if _private(node.module, [alias.name for alias in node.names]):
                private.append(node)
        elif isinstance(node, ast.Import) and any(
            alias.name.startswith("tradenode") and _private(alias.name, []) for alias in node.names
        ):
            private.append(node)
    return private


def test_tests_import_internals_only_saying_why() -> None:
    """Tests and benchmarks are the first examples users read: they import what users
    import, and an import of internals has a comment right above it (or above its
    group) saying why."""
    unexplained = []
    for path in sorted([*TESTS.rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]):
        source = path.read_text()
        lines = source.splitlines()
        private = _private_imports(ast.parse(source))
        covered = {
            line for node in private for line in range(node.lineno - 1, node.end_lineno or 0)
        }
        for node in private:
            above = node.lineno - 2
            while above in covered:
                above -= 1
            if above < 0 or not lines[above].strip().startswith("#"):
                unexplained.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert unexplained == []


def test_core_imports_nothing_broker_or_network_specific() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, tradenode.supervision, tradenode.messages;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'httpx', 'trio_websocket', 'ib_async', 'ib_insync', 'oandapyV20', 'requests'}"
        " or m.startswith('tradenode.brokers'));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
