"""The OANDA adapter's settings: the ``oanda:`` section of a venue config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from ..._config import VenueConfig, VenueSettings
from ..._exceptions import ConfigError

__all__ = ["OANDA_HOSTS", "OandaSettings"]

#: OANDA's published hosts (REST, streaming) per environment.
OANDA_HOSTS = {
    "practice": ("https://api-fxpractice.oanda.com", "https://stream-fxpractice.oanda.com"),
    "live": ("https://api-fxtrade.oanda.com", "https://stream-fxtrade.oanda.com"),
}


class OandaSettings(VenueSettings):
    """Where and how to reach one OANDA v20 account.

    ``environment`` picks OANDA's hosts (fxTrade Practice or fxTrade);
    ``custom`` takes ``rest_url`` and ``stream_url`` (the local fake, a proxy).
    ``token`` is the personal access token, a ``SecretStr`` (from
    ``${OANDA_TOKEN}`` in YAML) so no log, repr or status line prints it.
    ``instruments`` are the instruments to trade and stream prices for: each
    must be one the account may trade (checked at connect, a ``ConfigError``
    naming it otherwise).

    ``stream_timeout`` is how long a stream may stay silent (OANDA sends a
    heartbeat every 5 s) before the connection counts as lost;
    ``connection_spacing`` the least time between two new connections
    (OANDA allows 2 per second); ``rest_rate_limit`` the requests per second
    the broker reports to its breaker's limiter as OANDA's limit (120).
    """

    environment: Literal["practice", "live", "custom"] = "practice"
    token: SecretStr
    account_id: str = Field(min_length=1)
    rest_url: str | None = None
    stream_url: str | None = None
    instruments: tuple[str, ...] = Field((), description="instruments to trade and stream")
    request_timeout: float = Field(10.0, gt=0)
    stream_timeout: float = Field(15.0, gt=0)
    connection_spacing: float = Field(0.5, ge=0)
    rest_rate_limit: float = Field(120.0, gt=0)
    check_interval: float = Field(
        30.0, ge=0, description="seconds between periodic reconciliations; 0 turns them off"
    )

    @model_validator(mode="after")
    def _custom_needs_urls(self) -> OandaSettings:
        for name in ("rest_url", "stream_url"):
            url = getattr(self, name)
            if self.environment == "custom" and url is None:
                raise ConfigError("environment 'custom' needs rest_url and stream_url", key=name)
            if self.environment != "custom" and url is not None:
                raise ConfigError(
                    f"environment {self.environment!r} uses OANDA's own URLs; "
                    "set environment: custom to give your own",
                    key=name,
                )
            if url is not None and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{url!r}: expected an http(s) URL", key=name)
        return self

    def urls(self) -> tuple[str, str]:
        """The REST and streaming base URLs, without a trailing slash."""
        if self.environment == "custom":
            assert self.rest_url is not None and self.stream_url is not None
            return self.rest_url.rstrip("/"), self.stream_url.rstrip("/")
        return OANDA_HOSTS[self.environment]

    def known_symbols(self) -> tuple[str, ...] | None:
        return self.instruments or None

    def check_venue(self, venue: VenueConfig) -> None:
        if venue.breaker.rate_per_second > self.rest_rate_limit:
            raise ConfigError(
                f"venue {venue.name}: breaker.rate_per_second "
                f"({venue.breaker.rate_per_second:g}) is above OANDA's REST limit "
                f"({self.rest_rate_limit:g} requests per second): the venue would answer 429",
                key="breaker.rate_per_second",
            )
