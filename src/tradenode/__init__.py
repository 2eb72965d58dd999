"""tradenode: a supervised live-trading execution node.

Public API tiers, as trio has them (``tests/test_public_api.py`` pins each;
every public object is exported from exactly one place):

- **Strategy authors and node operators**: this package (:class:`Node`,
  the config, the seed API's ``ExecutionEngine``/``KillSwitch`` and the
  exceptions a node's user meets), :mod:`tradenode.messages` (every command
  and event), and from :mod:`tradenode.actors` the ``Strategy`` base class,
  its context and the questions a node answers.
- **Adapter authors**: the kit in :mod:`tradenode.brokers` (``BrokerBase``,
  ``VenueKind``, ``VenueSettings``, ``VenueContext``, ``VenueBuild``, the
  registry), the broker actor contract and capabilities in
  :mod:`tradenode.actors`, the conformance suite in
  :mod:`tradenode.testing.conformance`, the matching simulator in
  :mod:`tradenode.sim` for fakes, and the adapters' shareable helpers
  (``tradenode.brokers.binance``'s credentials and signing).
- **Runtime**: :mod:`tradenode.supervision` (the actor runtime, its clocks,
  its exceptions), :mod:`tradenode.journal` (the write-ahead log, its
  exceptions), the OMS's pure state and the local venues and campaign in
  :mod:`tradenode.testing`.

Exceptions form one tree (``_exceptions.py``); each is exported once: the
runtime's by :mod:`tradenode.supervision`, the journal's by
:mod:`tradenode.journal`, every other one here. Nothing else is public.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from ._config import ExecutionMode, NodeConfig, load_config, parse_config
from ._exceptions import (
    BrokerConnectionError,
    BrokerError,
    BrokerRejectedError,
    BrokerTimeoutError,
    ConfigError,
    DecodeError,
    MalformedPayloadError,
    TradenodeError,
    TradingStateTransitionError,
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
]
