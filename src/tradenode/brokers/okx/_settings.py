"""The OKX adapter's settings: the ``okx:`` section of a venue config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from ..._config import VenueConfig, VenueSettings
from ..._exceptions import ConfigError

__all__ = ["OKX_HOSTS", "OkxSettings"]

#: OKX's published hosts (REST, private WebSocket, public WebSocket) per environment.
#: Demo trading uses the production REST host with ``x-simulated-trading: 1`` and
#: its own WebSocket host (OKX docs, "Demo trading services"; python-okx ``consts.py``).
OKX_HOSTS = {
    "live": (
        "https://www.okx.com",
        "wss://ws.okx.com:8443/ws/v5/private",
        "wss://ws.okx.com:8443/ws/v5/public",
    ),
    "demo": (
        "https://www.okx.com",
        "wss://wspap.okx.com:8443/ws/v5/private",
        "wss://wspap.okx.com:8443/ws/v5/public",
    ),
}


class OkxSettings(VenueSettings):
    """Where and how to reach one OKX account (spot, ``tdMode: cash``).

    ``environment`` picks OKX's hosts: ``live`` or ``demo`` (demo trading:
    its own API keys, the header ``x-simulated-trading: 1``); ``custom``
    takes ``rest_url``, ``ws_private_url`` and ``ws_public_url`` (the local
    fake, a proxy) and sends the demo header when ``demo`` is true. The API
    key, its secret and passphrase are ``SecretStr`` (from ``${OKX_...}`` in
    YAML), so no log, repr or status line prints them.

    ``symbols`` are the instruments to trade and stream quotes for (each must
    be a listed SPOT instrument, checked at connect). ``ws_orders`` sends
    orders, cancels and amends over the private WebSocket (the fast path);
    REST is used when it is off or the socket is not logged in.
    ``ping_interval`` stays under OKX's 30 s idle limit.
    """

    environment: Literal["live", "demo", "custom"] = "demo"
    api_key: SecretStr
    api_secret: SecretStr
    passphrase: SecretStr
    rest_url: str | None = None
    ws_private_url: str | None = None
    ws_public_url: str | None = None
    demo: bool = False
    symbols: tuple[str, ...] = Field((), description="instruments to trade and stream")
    ws_orders: bool = True
    request_timeout: float = Field(10.0, gt=0)
    ping_interval: float = Field(20.0, gt=0, lt=30)
    ping_timeout: float = Field(10.0, gt=0)
    check_interval: float = Field(
        30.0, ge=0, description="seconds between periodic reconciliations; 0 turns them off"
    )

    @model_validator(mode="after")
    def _custom_needs_urls(self) -> OkxSettings:
        for name in ("rest_url", "ws_private_url", "ws_public_url"):
            url = getattr(self, name)
            if self.environment == "custom" and url is None:
                raise ConfigError(
                    "environment 'custom' needs rest_url, ws_private_url and ws_public_url",
                    key=name,
                )
            if self.environment != "custom" and url is not None:
                raise ConfigError(
                    f"environment {self.environment!r} uses OKX's own URLs; "
                    "set environment: custom to give your own",
                    key=name,
                )
            schemes = ("http://", "https://") if name == "rest_url" else ("ws://", "wss://")
            if url is not None and not url.startswith(schemes):
                raise ConfigError(f"{url!r}: expected a {schemes[0][:-3]}(s) URL", key=name)
        if self.environment != "custom" and self.demo:
            raise ConfigError("demo is for environment custom; use environment: demo", key="demo")
        for symbol in self.symbols:
            if symbol.count("-") != 1:
                raise ConfigError(
                    f"{symbol!r}: OKX spot instruments are BASE-QUOTE (BTC-USDT)", key="symbols"
                )
        return self

    def urls(self) -> tuple[str, str, str]:
        """The REST, private and public WebSocket URLs, without a trailing slash."""
        if self.environment == "custom":
            assert self.rest_url and self.ws_private_url and self.ws_public_url
            return self.rest_url.rstrip("/"), self.ws_private_url, self.ws_public_url
        return OKX_HOSTS[self.environment]

    @property
    def sends_demo_header(self) -> bool:
        return self.environment == "demo" or (self.environment == "custom" and self.demo)

    def known_symbols(self) -> tuple[str, ...] | None:
        return self.symbols or None

    def check_venue(self, venue: VenueConfig) -> None:
        if venue.breaker.request_timeout < self.request_timeout:
            raise ConfigError(
                f"venue {venue.name}: breaker.request_timeout "
                f"({venue.breaker.request_timeout:g} s) is shorter than okx.request_timeout "
                f"({self.request_timeout:g} s): the breaker would give up on requests "
                "the broker still waits for",
                key="breaker.request_timeout",
            )
