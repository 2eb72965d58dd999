"""tradenode: a supervised live-trading execution node.

The public API is re-exported here; subpackages: ``messages`` (immutable
commands and events, and their msgpack codec), ``supervision`` (the actor
runtime), ``actors`` (the trading core), ``brokers`` (venue adapters),
``testing`` (fakes and helpers for users' own tests).
"""

from importlib.metadata import PackageNotFoundError, version

from ._config import NodeConfig, load_config, parse_config
from ._exceptions import (
    ActorStoppedError,
    AskTimeoutError,
    BrokerConnectionError,
    BrokerError,
    BrokerRejectedError,
    BrokerTimeoutError,
    ConfigError,
    DecodeError,
    MalformedPayloadError,
    RestartIntensityExceeded,
    SupervisionError,
    TradenodeError,
)
from ._node import Node

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
    "DecodeError",
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
