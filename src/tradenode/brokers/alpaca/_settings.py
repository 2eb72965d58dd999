"""The Alpaca adapter's settings: the ``alpaca:`` section of a venue config."""

from __future__ import annotations

import enum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from ..._config import VenueSettings
from ..._exceptions import ConfigError

__all__ = ["ALPACA_HOSTS", "AlpacaSettings", "OutsideSession"]

#: Alpaca's published endpoints per environment (fact sheet section 1): trading
#: REST, the ``trade_updates`` stream, and the stock market-data stream (whose
#: feed is appended: ``/v2/iex``).
ALPACA_HOSTS = {
    "paper": (
        "https://paper-api.alpaca.markets",
        "wss://paper-api.alpaca.markets/stream",
        "wss://stream.data.alpaca.markets",
    ),
    "live": (
        "https://api.alpaca.markets",
        "wss://api.alpaca.markets/stream",
        "wss://stream.data.alpaca.markets",
    ),
}


class OutsideSession(enum.Enum):
    """What a DAY order placed while the regular session is closed does."""

    DENY = "deny"
    """Refused before it is sent (``OrderRejected``, code ``MARKET_CLOSED``)."""
    QUEUE = "queue"
    """Sent: Alpaca holds it (status ``accepted``) for the next session."""


class AlpacaSettings(VenueSettings):
    """Where and how to reach one Alpaca trading account.

    ``environment`` picks Alpaca's hosts (``paper`` or ``live``: each has its
    own key pair); ``custom`` takes ``rest_url``, ``stream_url`` (the
    ``trade_updates`` WebSocket) and ``data_url`` (the market-data WebSocket
    base, the feed is appended), e.g. the local fake. ``key_id`` and
    ``secret_key`` travel as the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY``
    headers; the secret is a ``SecretStr`` (from ``${ALPACA_API_SECRET_KEY}``),
    so no log, repr or status line prints it.

    ``symbols`` are the symbols to trade and quote, each checked at connect
    (``GET /v2/assets/{symbol}``: one Alpaca does not know, or that is not
    tradable, is a ``ConfigError`` naming it). ``feed`` is the stock quotes
    feed (``iex`` on the free plan). ``outside_session`` says what a DAY order
    does while the market clock says the regular session is closed: ``deny``
    refuses it before it is sent (code ``MARKET_CLOSED``), ``queue`` sends it
    and Alpaca holds it for the next open. ``extended_hours`` marks DAY limit
    orders eligible for the pre- and after-market sessions (then never denied).
    ``rest_rate_limit`` is the Trading API's requests per minute (200), what the
    broker reports when Alpaca's ``X-Ratelimit-*`` headers are missing; the
    breaker's limiter keeps to the observations (its own ``rate_per_second``
    is not refused above it).
    """

    environment: Literal["paper", "live", "custom"] = "paper"
    key_id: str = Field(min_length=1)
    secret_key: SecretStr
    rest_url: str | None = None
    stream_url: str | None = None
    data_url: str | None = None
    feed: str = Field("iex", pattern=r"^[a-z_]+$")
    symbols: tuple[str, ...] = Field((), description="symbols to trade and quote")
    outside_session: OutsideSession = OutsideSession.DENY
    extended_hours: bool = False
    request_timeout: float = Field(10.0, gt=0)
    ping_interval: float = Field(10.0, gt=0)
    ping_timeout: float = Field(20.0, gt=0)
    rest_rate_limit: float = Field(200.0, gt=0)
    check_interval: float = Field(
        30.0, ge=0, description="seconds between periodic reconciliations; 0 turns them off"
    )

    @model_validator(mode="after")
    def _check(self) -> AlpacaSettings:
        for name in ("rest_url", "stream_url", "data_url"):
            url = getattr(self, name)
            if self.environment == "custom" and url is None:
                raise ConfigError(
                    "environment 'custom' needs rest_url, stream_url and data_url", key=name
                )
            if self.environment != "custom" and url is not None:
                raise ConfigError(
                    f"environment {self.environment!r} uses Alpaca's own URLs; "
                    "set environment: custom to give your own",
                    key=name,
                )
            schemes = ("http", "https") if name == "rest_url" else ("ws", "wss")
            if url is not None and urlsplit(url).scheme not in schemes:
                raise ConfigError(f"{url!r}: expected a {'/'.join(schemes)} URL", key=name)
        if not self.key_id.strip():
            raise ConfigError("must not be empty", key="key_id")
        if not self.secret_key.get_secret_value():
            raise ConfigError("must not be empty", key="secret_key")
        return self

    def urls(self) -> tuple[str, str, str]:
        """The REST base URL, the ``trade_updates`` URL and the market-data URL (feed included)."""
        if self.environment == "custom":
            assert self.rest_url and self.stream_url and self.data_url
            rest, stream, data = self.rest_url, self.stream_url, self.data_url
        else:
            rest, stream, data = ALPACA_HOSTS[self.environment]
        return rest.rstrip("/"), stream, f"{data.rstrip('/')}/v2/{self.feed}"

    def known_symbols(self) -> tuple[str, ...] | None:
        return self.symbols or None
