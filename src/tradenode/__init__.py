"""tradenode: a supervised live-trading execution node.

The public API is re-exported here; subpackages: ``messages`` (immutable
commands and events, and their msgpack codec), ``supervision`` (the actor
runtime), ``actors`` (the trading core), ``brokers`` (venue adapters),
``testing`` (fakes and helpers for users' own tests).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._config import NodeConfig, load_config, parse_config
from ._exceptions import (
    ActorStoppedError,
    AskTimeoutError,
    BrokerConnectionError,
    BrokerError,
    BrokerRejectedError,
    BrokerTimeoutError,
    ConfigError,
    CorruptJournalError,
    DecodeError,
    JournalError,
    JournalVersionError,
    MalformedPayloadError,
    RestartIntensityExceeded,
    SupervisionError,
    TradenodeError,
)

if TYPE_CHECKING:
    from ._facade import ExecutionEngine, KillSwitch
    from ._node import Node

# The node and the facade pull in the trading actors and the paper broker;
# importing ``tradenode.supervision`` or ``tradenode.messages`` must not.
_LAZY = {"Node": "._node", "ExecutionEngine": "._facade", "KillSwitch": "._facade"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'tradenode' has no attribute {name!r}")


try:
    __version__ = version("tradenode")
except PackageNotFoundError:
    __version__ = "0.0.0+unknown"

__all__ = [
    "ActorStoppedError",
    "AskTimeoutError",
    "BrokerConnectionError",
    "BrokerError",
    "BrokerRejectedError",
    "BrokerTimeoutError",
    "ConfigError",
    "CorruptJournalError",
    "DecodeError",
    "ExecutionEngine",
    "JournalError",
    "JournalVersionError",
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
]
