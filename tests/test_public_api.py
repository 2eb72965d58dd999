"""Pins each package's public API: a change here is a deliberate API change."""

from __future__ import annotations

import importlib

import pytest

EXPECTED = {
    "tradenode": [
        "ActorStoppedError",
        "AskTimeoutError",
        "BrokerConnectionError",
        "BrokerError",
        "BrokerRejectedError",
        "BrokerTimeoutError",
        "ConfigError",
        "DecodeError",
        "ExecutionEngine",
        "KillSwitch",
        "MalformedPayloadError",
        "Node",
        "NodeConfig",
        "RestartIntensityExceeded",
        "SupervisionError",
        "TradenodeError",
        "__version__",
        "load_config",
        "parse_config",
    ],
    "tradenode.supervision": [
        "TRANSITIONS",
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
        "Terminated",
        "TreeNode",
        "TrioLoopClosed",
        "TrioThread",
        "WhichChildren",
        "add_child",
        "ask_async",
        "remove_child",
        "which_children",
    ],
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_api_is_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(EXPECTED[module_name])
    for name in module.__all__:
        assert hasattr(module, name), name


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
