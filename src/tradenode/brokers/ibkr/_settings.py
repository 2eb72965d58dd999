"""The Interactive Brokers adapter's settings: the ``ibkr:`` section of a venue config."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..._config import VenueConfig, VenueSettings
from ..._exceptions import ConfigError

__all__ = ["IbkrContractSpec", "IbkrSettings", "SecType"]

SecType = Literal["STK", "CASH", "FUT", "OPT"]


class IbkrContractSpec(BaseModel):
    """One instrument as IB names it; qualified with contract details at connect.

    ``STK``: ``symbol``, ``exchange`` (``SMART`` routing by default) and
    ``primary_exchange`` (which tells IB's smart router which listing is meant);
    ``CASH``: an IDEALPRO currency pair, ``symbol`` the base and ``currency`` the
    quote currency (``EUR`` / ``USD`` is EUR.USD); ``FUT``: ``expiry``
    (``YYYYMM`` or ``YYYYMMDD``, IB's lastTradeDateOrContractMonth), its
    ``exchange`` and ``multiplier``; ``OPT``: ``expiry``, ``right`` (``C``/``P``),
    ``strike`` and ``multiplier``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    sec_type: SecType
    symbol: str = Field(min_length=1)
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    expiry: str = ""
    multiplier: str = ""
    right: Literal["", "C", "P"] = ""
    strike: Decimal | None = None
    local_symbol: str = ""
    trading_class: str = ""

    @model_validator(mode="after")
    def _complete(self) -> IbkrContractSpec:
        kind = self.sec_type
        if kind == "CASH" and self.exchange == "SMART":
            raise ConfigError(
                "a CASH (FX) contract trades on IDEALPRO: set exchange: IDEALPRO", key="exchange"
            )
        if kind in ("FUT", "OPT"):
            if not self.expiry:
                raise ConfigError(f"a {kind} contract needs its expiry", key="expiry")
            if not self.expiry.isdigit() or len(self.expiry) not in (6, 8):
                raise ConfigError(
                    f"expiry {self.expiry!r}: expected YYYYMM or YYYYMMDD", key="expiry"
                )
        if kind == "OPT":
            if not self.right:
                raise ConfigError("an OPT contract needs its right (C or P)", key="right")
            if self.strike is None or self.strike <= 0:
                raise ConfigError("an OPT contract needs a positive strike", key="strike")
        elif self.right or self.strike is not None:
            raise ConfigError(f"a {kind} contract takes no right or strike", key="right")
        if self.multiplier and not self.multiplier.replace(".", "", 1).isdigit():
            raise ConfigError(
                f"multiplier {self.multiplier!r}: expected a number", key="multiplier"
            )
        return self


class IbkrSettings(VenueSettings):
    """Where and how to reach one TWS or IB Gateway, and what to trade there.

    ``host``/``port``/``client_id`` are the TWS API socket (paper TWS 7497,
    live TWS 7496, paper Gateway 4002, live Gateway 4001); ``client_id`` must
    stay the same across restarts: IB lists a client's own open orders, and
    executions are filtered by it. ``account`` is the account orders go to (a
    login with one account may leave it empty). ``instruments`` maps our
    symbol names to IB contracts; each is qualified at connect (contract
    details: conId, minimum tick, size increment), and one IB does not know is
    a ``ConfigError`` naming it.

    ``connect_timeout`` bounds the handshake and each startup request (the node
    waits for a venue's broker to connect and reconcile for at most 10 s when it
    attaches it). ``message_rate_limit`` is IB's limit on API messages per second (50; ib_async
    throttles itself below it too) that the broker reports to its breaker;
    ``pacing_backoff`` the seconds the breaker waits after IB's pacing
    violation (error 100). ``outside_rth`` lets orders fill outside regular
    trading hours. ``market_data_type`` is IB's reqMarketDataType (1 live,
    2 frozen, 3 delayed, 4 delayed frozen).
    """

    host: str = "127.0.0.1"
    port: int = Field(7497, ge=1, le=65535)
    client_id: int = Field(1, ge=0)
    account: str = ""
    instruments: dict[str, IbkrContractSpec] = Field(default_factory=dict)
    connect_timeout: float = Field(5.0, gt=0)
    request_timeout: float = Field(10.0, gt=0)
    message_rate_limit: float = Field(50.0, gt=0)
    pacing_backoff: float = Field(1.0, gt=0)
    outside_rth: bool = False
    market_data_type: Literal[1, 2, 3, 4] = 1
    check_interval: float = Field(
        0.0, ge=0, description="seconds between periodic reconciliations; 0 turns them off"
    )

    @model_validator(mode="after")
    def _symbols(self) -> IbkrSettings:
        for name in self.instruments:
            if not name or name != name.strip():
                raise ConfigError(f"instrument name {name!r}: must be non-empty", key="instruments")
        return self

    def known_symbols(self) -> tuple[str, ...] | None:
        return tuple(self.instruments) or None

    def check_venue(self, venue: VenueConfig) -> None:
        if venue.breaker.rate_per_second > self.message_rate_limit:
            raise ConfigError(
                f"venue {venue.name}: breaker.rate_per_second "
                f"({venue.breaker.rate_per_second:g}) is above IB's API message limit "
                f"({self.message_rate_limit:g} per second): TWS would answer pacing violations",
                key="breaker.rate_per_second",
            )
