"""The operator plane's observability: Prometheus metrics, structured logs, alerts.

Metrics are read from the node at scrape time (``NodeCollector``) and served
on their own loopback port (``metrics: {port}``); logs are JSON lines or
readable text with node/venue/strategy/client-order-id fields and every
configured secret masked (``configure_logging``); alerts from the rules in
``alerts:`` go to the log and, off the trading path, to webhooks.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._alerts import Alert, AlertDispatcher, AlertRules, DeliveryState
from ._logging import (
    CONTEXT_FIELDS,
    ContextFilter,
    JsonFormatter,
    RedactingFilter,
    configure_logging,
    secret_values,
)
from ._settings import (
    AlertKind,
    AlertRuleConfig,
    AlertsConfig,
    LogFormat,
    LoggingConfig,
    MetricsConfig,
    WebhookConfig,
)

if TYPE_CHECKING:
    from ._metrics import LatencyHistograms, MetricsServer, NodeCollector
    from ._observer import Observability, ObserverActor

_LAZY = {
    "LatencyHistograms": "._metrics",
    "MetricsServer": "._metrics",
    "NodeCollector": "._metrics",
    "Observability": "._observer",
    "ObserverActor": "._observer",
}


def __getattr__(name: str) -> Any:
    # The node-facing parts import the actors, and ``tradenode._config`` imports
    # this package's settings: loading them on first use keeps that import acyclic.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
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
]
