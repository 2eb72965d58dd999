"""The Binance adapter's settings: the ``binance:`` section of a venue config."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, model_validator

from ..._config import VenueConfig, VenueSettings
from ..._exceptions import ConfigError

__all__ = ["BinanceSettings"]


class BinanceSettings(VenueSettings):
    """Where and how to reach one Binance Spot account.

    ``environment`` picks Binance's published hosts (live or the spot
    testnet: they differ only by host); ``custom`` takes the three URLs, for
    the local venue (``tradenode venue binance``) or a proxy. Keys come from
    the environment through ``${VAR}`` and are ``SecretStr`` so that no log,
    repr or status line can print them.

    ``key_type`` is ``hmac`` (``api_secret``) or ``ed25519``: the private key
    as PEM text (``private_key``, e.g. ``${BINANCE_PRIVATE_KEY}``) or a PEM
    file (``private_key_path``), never both; an Ed25519 key also logs the
    WebSocket API session on (``session.logon``).

    ``order_entry: websocket`` (the default) places, cancels and replaces
    orders over that logged-on WebSocket API connection, which saves a
    round trip's worth of HTTP and signing per order; REST carries them when
    the connection is not logged on (an HMAC key) or with ``order_entry: rest``.
    """

    environment: Literal["live", "testnet", "custom"] = "testnet"
    api_key: SecretStr
    key_type: Literal["hmac", "ed25519"] = "hmac"
    api_secret: SecretStr | None = None
    private_key: SecretStr | None = None
    private_key_path: Path | None = None
    rest_url: str | None = None
    ws_api_url: str | None = None
    stream_url: str | None = None
    symbols: tuple[str, ...] = Field((), description="symbols to stream quotes for and trade")
    recv_window_ms: int = Field(5000, gt=0, le=60000)
    request_timeout: float = Field(10.0, gt=0)
    heartbeat_interval: float = Field(20.0, gt=0)
    heartbeat_timeout: float = Field(30.0, gt=0)
    check_interval: float = Field(
        30.0, ge=0, description="seconds between periodic reconciliations; 0 turns them off"
    )
    order_entry: Literal["websocket", "rest"] = Field(
        "websocket",
        description="where orders, cancels and replaces go: over the WebSocket API "
        "connection the session holds (when it is logged on: ed25519 keys) or REST",
    )

    @model_validator(mode="after")
    def _key_type_has_its_secret(self) -> BinanceSettings:
        if self.key_type == "hmac":
            if self.api_secret is None:
                raise ConfigError("key_type hmac needs api_secret", key="api_secret")
            for name in ("private_key", "private_key_path"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{name} is for key_type ed25519", key=name)
            return self
        if self.api_secret is not None:
            raise ConfigError(
                "key_type ed25519 signs with private_key or private_key_path, not api_secret",
                key="api_secret",
            )
        if (self.private_key is None) == (self.private_key_path is None):
            raise ConfigError(
                "key_type ed25519 needs exactly one of private_key and private_key_path",
                key="private_key",
            )
        _check_ed25519_private_key(self.private_key, self.private_key_path)
        return self

    @model_validator(mode="after")
    def _custom_needs_urls(self) -> BinanceSettings:
        urls = {
            "rest_url": self.rest_url,
            "ws_api_url": self.ws_api_url,
            "stream_url": self.stream_url,
        }
        for name, url in urls.items():
            if self.environment == "custom" and url is None:
                raise ConfigError(
                    "environment 'custom' needs rest_url, ws_api_url and stream_url", key=name
                )
            if self.environment != "custom" and url is not None:
                raise ConfigError(
                    f"environment {self.environment!r} uses Binance's own URLs; "
                    "set environment: custom to give your own",
                    key=name,
                )
        return self

    def known_symbols(self) -> tuple[str, ...] | None:
        """With ``symbols`` the adapter loads the filters of those only and rejects
        an order for any other as ``UNKNOWN_INSTRUMENT``; without, it trades
        whatever the exchange lists, which only the venue knows."""
        return self.symbols or None

    def check_venue(self, venue: VenueConfig) -> None:
        window = self.recv_window_ms / 1000
        if venue.breaker.request_timeout < window:
            # Safe (the breaker waits for the window before any re-send), but
            # every submit it gave up on early would be an order of unknown
            # outcome for the rest of the window: refuse it.
            raise ConfigError(
                f"venue {venue.name}: breaker.request_timeout "
                f"({venue.breaker.request_timeout:g} s) is shorter than "
                f"binance.recv_window_ms ({self.recv_window_ms} ms), the time "
                "the venue may still accept a request: the breaker would give up on "
                "orders the venue can still place",
                key="breaker.request_timeout",
            )


def _check_ed25519_private_key(text: SecretStr | None, path: Path | None) -> None:
    """The key must load as an unencrypted Ed25519 private key (PEM); errors never quote it."""
    name = "private_key" if text is not None else "private_key_path"
    if text is not None:
        pem = text.get_secret_value().encode("utf-8")
    else:
        assert path is not None
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise ConfigError(
                f"cannot read the private key file ({error.strerror or type(error).__name__})",
                key=name,
            ) from None
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError("not an unencrypted PEM (PKCS#8) private key", key=name) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"not an Ed25519 private key ({type(key).__name__})", key=name)
