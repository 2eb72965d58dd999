"""The generic CCXT adapter's settings: the ``ccxt:`` section of a venue config.

Any exchange ccxt knows, by its ccxt id::

    venues:
      - name: kraken-main
        kind: ccxt
        ccxt:
          exchange: kraken
          api_key: "${KRAKEN_KEY}"
          secret: "${KRAKEN_SECRET}"
          symbols: [BTC/USD]
          requires: [watchOrders]

An id ccxt does not have, or an exchange whose ccxt class lacks a feature the
adapter (or ``requires``) needs, is a ``ConfigError`` naming it, before
anything connects. ccxt is imported only to check that (and by the broker).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..._config import VenueSettings
from ..._exceptions import ConfigError

__all__ = ["NEEDED", "CcxtSettings", "exchange_has", "redirect_urls"]

#: What the adapter itself cannot work without (``exchange.has``).
NEEDED = ("createOrder", "cancelOrder", "fetchOpenOrders", "fetchMyTrades")

#: Options the adapter owns: ccxt's own retry would re-send an order whose answer was lost.
_OWNED_OPTIONS = ("maxRetriesOnFailure",)


@functools.cache
def exchange_has(exchange: str) -> Mapping[str, Any]:
    """ccxt's ``has`` flags for ``exchange`` (its ccxt.pro class where there is one:
    the WebSocket flags live there), or ConfigError if ccxt has no such exchange."""
    import ccxt  # type: ignore[import-untyped]  # noqa: PLC0415 (0.5 s: only when a ccxt venue is configured)
    import ccxt.pro  # type: ignore[import-untyped]  # noqa: PLC0415

    if exchange not in ccxt.exchanges:
        raise ConfigError(
            f"ccxt {ccxt.__version__} has no exchange {exchange!r} (see ccxt.exchanges)",
            key="exchange",
        )
    cls = getattr(ccxt.pro, exchange, None) or getattr(ccxt, exchange)
    return dict(cls().has)


def redirect_urls(urls: Any, http_base: str | None, ws_base: str | None) -> Any:
    """Every leaf of ccxt's ``urls['api']`` with its scheme and host replaced
    (``ccxt.md`` 3.1): paths are kept, so the venue sees its real ones."""
    if isinstance(urls, str):
        if re.match(r"^wss?://", urls):
            return re.sub(r"^wss?://[^/]+", ws_base, urls) if ws_base else urls
        return re.sub(r"^https?://[^/]+", http_base, urls) if http_base else urls
    if isinstance(urls, dict):
        return {k: redirect_urls(v, http_base, ws_base) for k, v in urls.items()}
    if isinstance(urls, list):
        return [redirect_urls(v, http_base, ws_base) for v in urls]
    return urls


class CcxtSettings(VenueSettings):
    """One account at one exchange, through ccxt.

    ``exchange`` is ccxt's id (``binance``, ``okx``, ``kraken``, ...).
    ``api_key``/``secret``/``password`` (OKX's passphrase)/``uid`` are the
    credentials ccxt's class asks for. ``sandbox`` switches to the exchange's
    test URLs (``set_sandbox_mode``; an exchange without any is a config
    error). ``options`` are merged into ccxt's ``options`` (not
    ``maxRetriesOnFailure``: ccxt would re-send an order whose answer was lost).
    ``rest_url``/``ws_url`` point every REST / WebSocket URL of the class at
    another host (a local venue; paths kept), ``api_urls`` replaces entries of
    ``urls['api']`` outright. ``symbols`` are ccxt's unified symbols
    (``BTC/USDT``); each must be a market of the exchange. ``requires`` lists
    further ``has`` flags a strategy needs (``editOrder``, ``watchOrders``).

    ``streaming``: ``auto`` watches orders and trades with ccxt.pro where the
    class has both ``watchOrders`` and ``watchMyTrades``, else polls every
    ``poll_interval`` seconds (node clock); ``off`` always polls.
    ``request_timeout`` is ccxt's ``timeout``. ``check_interval`` runs a full
    reconciliation periodically (0: off). ``client_id_param`` overrides the
    create-order parameter the client order id travels in.
    """

    exchange: str = Field(min_length=1)
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    uid: str = ""
    sandbox: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
    rest_url: str | None = None
    ws_url: str | None = None
    api_urls: dict[str, Any] = Field(default_factory=dict)
    symbols: list[str] = Field(min_length=1)
    requires: list[str] = Field(default_factory=list)
    streaming: Literal["auto", "off"] = "auto"
    poll_interval: float = Field(1.0, gt=0)
    request_timeout: float = Field(10.0, gt=0)
    check_interval: float = Field(0.0, ge=0)
    client_id_param: str | None = None

    @field_validator("symbols")
    @classmethod
    def _unified(cls, symbols: list[str]) -> list[str]:
        for symbol in symbols:
            if not symbol or symbol != symbol.strip() or "/" not in symbol:
                raise ConfigError(
                    f"symbol {symbol!r}: expected ccxt's unified form, e.g. BTC/USDT",
                    key="symbols",
                )
        return symbols

    @field_validator("options")
    @classmethod
    def _no_retries(cls, options: dict[str, Any]) -> dict[str, Any]:
        for key in _OWNED_OPTIONS:
            if options.get(key):
                raise ConfigError(
                    f"options.{key}: ccxt would re-send a request whose answer was lost "
                    "(a duplicate order); the node's breaker decides what is sent again",
                    key=f"options.{key}",
                )
        return options

    @model_validator(mode="after")
    def _exchange_can(self) -> CcxtSettings:
        has = exchange_has(self.exchange)
        for flag in (*NEEDED, *self.requires):
            if not has.get(flag):
                raise ConfigError(
                    f"ccxt's {self.exchange} has no {flag} (has[{flag!r}] is "
                    f"{has.get(flag)!r}): the venue cannot be traded through this adapter",
                    key="requires" if flag in self.requires else "exchange",
                )
        if not (has.get("fetchOrder") or has.get("fetchOpenOrders")):
            raise ConfigError(
                f"ccxt's {self.exchange} can look up no order", key="exchange"
            )  # pragma: no cover - every exchange with fetchOpenOrders passes
        return self

    def known_symbols(self) -> tuple[str, ...] | None:
        return tuple(self.symbols)
