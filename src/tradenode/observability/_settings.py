"""The ``metrics:``, ``logging:`` and ``alerts:`` config sections (pydantic, strict).

Kept here, not in ``_config``, so the operator plane's settings evolve with
its code; ``NodeConfig`` only names the three sections.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "AlertKind",
    "AlertRuleConfig",
    "AlertsConfig",
    "LogFormat",
    "LoggingConfig",
    "MetricsConfig",
    "WebhookConfig",
]


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class MetricsConfig(_Strict):
    """Serve Prometheus metrics at ``http://<host>:<port>/metrics`` (port 0: any free one)."""

    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)
    allow_remote: bool = False
    """A non-loopback ``host`` only when this says so explicitly (no TLS, no auth)."""

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> MetricsConfig:
        if self.host not in LOOPBACK_HOSTS and not self.allow_remote:
            raise ValueError(
                f"metrics.host {self.host!r} is not loopback: set allow_remote: true to serve "
                "metrics beyond this machine (plain HTTP, no authentication)"
            )
        return self


class LogFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"


class LoggingConfig(_Strict):
    format: LogFormat = LogFormat.TEXT
    level: str = "WARNING"


class AlertKind(enum.Enum):
    """What a rule watches for."""

    KILL_SWITCH = "kill_switch"
    BREAKER_OPEN = "breaker_open"
    DRIFT = "drift"
    ESCALATION = "escalation"
    """A supervisor gave up on a child (ESCALATED) or the root failed."""
    DAILY_LOSS = "daily_loss"
    ORDER_REJECTED = "order_rejected"


class AlertRuleConfig(_Strict):
    kind: AlertKind
    severity: str = Field("critical", min_length=1)
    venue: str | None = None
    """Only this venue's breaker/drift/rejections (None: every venue)."""


class WebhookConfig(_Strict):
    url: SecretStr
    """A secret: webhook URLs often carry a token (Slack, PagerDuty)."""
    timeout: float = Field(5.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    backoff_min: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)
    headers: dict[str, SecretStr] = {}


class AlertsConfig(_Strict):
    rules: tuple[AlertRuleConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    queue_size: int = Field(1000, ge=1)
    """Alerts waiting for delivery beyond this are dropped (counted), never blocking."""
    history: int = Field(200, ge=1, le=100_000)
    """The most recent alerts kept, with their delivery state, for the control API
    (``GET /v1/alerts``), ``tradenode ctl alerts`` and the dashboard."""
