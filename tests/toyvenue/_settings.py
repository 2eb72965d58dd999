"""The toy adapter's settings: the ``toy:`` section of a venue config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, SecretStr

from tradenode import ConfigError
from tradenode.brokers import VenueSettings

if TYPE_CHECKING:
    from tradenode.brokers import VenueConfig

__all__ = ["ToySettings"]


class ToySettings(VenueSettings):
    """Where the toy venue listens and how to log on.

    ``api_key`` is a ``SecretStr`` (from ``${ENV}`` in YAML): no log, repr or
    status line prints it. ``recv_window_ms`` is how long after its stamp the
    venue still accepts an order request (the acceptance window);
    ``request_timeout`` how long the session waits for an answer;
    ``check_interval`` the seconds between periodic reconciliations (0: none).
    """

    host: str = "127.0.0.1"
    port: int = Field(gt=0, lt=65536)
    api_key: SecretStr
    recv_window_ms: int = Field(5000, gt=0, le=60000)
    request_timeout: float = Field(5.0, gt=0)
    check_interval: float = Field(0.0, ge=0)
    symbols: tuple[str, ...] = ()

    def known_symbols(self) -> tuple[str, ...] | None:
        return self.symbols or None

    def check_venue(self, venue: VenueConfig) -> None:
        if venue.breaker.request_timeout < self.recv_window_ms / 1000:
            raise ConfigError(
                f"venue {venue.name}: breaker.request_timeout is shorter than "
                "toy.recv_window_ms: the breaker would give up on orders the venue can still place",
                key="breaker.request_timeout",
            )
