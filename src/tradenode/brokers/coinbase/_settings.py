"""The Coinbase adapter's settings: the ``coinbase:`` section of a venue config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from ..._config import VenueSettings
from ..._exceptions import ConfigError
from ._signing import CdpCredentials, load_private_key

__all__ = ["COINBASE_HOSTS", "CoinbaseSettings"]

#: Coinbase's published endpoints (REST base, market-data WebSocket, user-order
#: WebSocket) per environment (fact sheet 3.1; coinbase-advanced-py ``constants.py``).
#: The sandbox is REST only, static and unauthenticated: the adapter still signs
#: (harmless there) and has no WebSocket to read, so it serves the ``live`` tests only.
COINBASE_HOSTS = {
    "production": (
        "https://api.coinbase.com",
        "wss://advanced-trade-ws.coinbase.com",
        "wss://advanced-trade-ws-user.coinbase.com",
    ),
    "sandbox": (
        "https://api-sandbox.coinbase.com",
        "wss://advanced-trade-ws.coinbase.com",
        "wss://advanced-trade-ws-user.coinbase.com",
    ),
}


class CoinbaseSettings(VenueSettings):
    """Where and how to reach one Coinbase Advanced Trade account.

    ``environment`` picks Coinbase's hosts; ``custom`` takes ``rest_url``,
    ``ws_url`` (market data) and ``ws_user_url`` (the user channel), e.g. a
    local fake. Credentials are a CDP API key: ``api_key_name``
    (``organizations/{org}/apiKeys/{id}``) and its private key, as PEM text
    (``private_key``, e.g. ``${COINBASE_PRIVATE_KEY}``) or a file
    (``private_key_path``), never both; the key must load (EC P-256, or
    Ed25519), else the config is refused naming the setting. The key is a
    ``SecretStr`` (or a path): no log, repr or status line prints it.

    ``products`` are the product ids to trade and quote (``BTC-USD``), each
    checked at connect. ``stream_timeout`` is how long the user connection
    may stay silent (the heartbeats channel ticks every second) before it
    counts as lost; ``rest_rate_limit`` the requests per second the broker
    reports as Coinbase's private REST limit (30), which the breaker's limiter
    then keeps to (the breaker's own ``rate_per_second`` is not refused above
    it: the observation bounds it).
    """

    environment: Literal["production", "sandbox", "custom"] = "production"
    api_key_name: str = Field(min_length=1)
    private_key: SecretStr | None = None
    private_key_path: Path | None = None
    rest_url: str | None = None
    ws_url: str | None = None
    ws_user_url: str | None = None
    products: tuple[str, ...] = Field((), description="product ids to trade and quote")
    request_timeout: float = Field(10.0, gt=0)
    stream_timeout: float = Field(10.0, gt=0)
    rest_rate_limit: float = Field(30.0, gt=0)
    check_interval: float = Field(
        30.0, ge=0, description="seconds between periodic reconciliations; 0 turns them off"
    )
    fills_lookups: int = Field(
        3,
        ge=1,
        description="times the fills of an order are asked for before the periodic check takes over",
    )

    @model_validator(mode="after")
    def _check(self) -> CoinbaseSettings:
        for name in ("rest_url", "ws_url", "ws_user_url"):
            url = getattr(self, name)
            if self.environment == "custom" and url is None:
                raise ConfigError(
                    "environment 'custom' needs rest_url, ws_url and ws_user_url", key=name
                )
            if self.environment != "custom" and url is not None:
                raise ConfigError(
                    f"environment {self.environment!r} uses Coinbase's own URLs; "
                    "set environment: custom to give your own",
                    key=name,
                )
            schemes = ("http", "https") if name == "rest_url" else ("ws", "wss")
            if url is not None and urlsplit(url).scheme not in schemes:
                raise ConfigError(f"{url!r}: expected a {'/'.join(schemes)} URL", key=name)
        if (self.private_key is None) == (self.private_key_path is None):
            raise ConfigError(
                "give exactly one of private_key and private_key_path", key="private_key"
            )
        if not self.api_key_name.strip():
            raise ConfigError("must not be empty", key="api_key_name")
        self.credentials()  # a key that does not load is refused now, naming its setting
        return self

    def credentials(self) -> CdpCredentials:
        """The CDP key, loaded; ``ConfigError`` naming the setting if it does not load."""
        if self.private_key is not None:
            text, setting = self.private_key.get_secret_value(), "private_key"
        else:
            assert self.private_key_path is not None
            setting = "private_key_path"
            try:
                text = self.private_key_path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = getattr(error, "strerror", None) or type(error).__name__
                raise ConfigError(
                    f"cannot read the private key file ({reason})", key=setting
                ) from None
        return CdpCredentials(self.api_key_name.strip(), load_private_key(text, key=setting))

    def urls(self) -> tuple[str, str, str]:
        """The REST base URL and the market and user WebSocket URLs."""
        if self.environment == "custom":
            assert self.rest_url and self.ws_url and self.ws_user_url
            return self.rest_url.rstrip("/"), self.ws_url, self.ws_user_url
        return COINBASE_HOSTS[self.environment]

    def known_symbols(self) -> tuple[str, ...] | None:
        return self.products or None
