"""Node configuration: YAML with ``${ENV}`` interpolation, validated by pydantic.

Every error names the offending key and value in one line, because the
person reading it is starting a node and wants to fix the file, not read a
traceback. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from ._exceptions import ConfigError

__all__ = [
    "BackoffConfig",
    "BinanceSettings",
    "BreakerConfig",
    "IntensityConfig",
    "JournalConfig",
    "NodeConfig",
    "NodeSection",
    "OmsConfig",
    "RiskConfig",
    "StrategyConfig",
    "VenueConfig",
    "default_config_text",
    "load_config",
    "parse_config",
]

#: Keys whose values never appear in an error message, even when invalid.
_SECRET_KEYS = frozenset({"api_key", "api_secret"})

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntensityConfig(_Strict):
    max_restarts: int = Field(5, ge=0)
    within_seconds: float = Field(30.0, gt=0)


class BackoffConfig(_Strict):
    min_seconds: float = Field(0.5, gt=0)
    max_seconds: float = Field(30.0, gt=0)
    random_factor: float = Field(0.2, ge=0)


class NodeSection(_Strict):
    name: str = Field("tradenode", min_length=1)
    seed: int = 0
    shutdown_timeout: float = Field(10.0, gt=0)
    intensity: IntensityConfig = IntensityConfig()


class BreakerConfig(_Strict):
    failure_threshold: int = Field(5, ge=1)
    open_timeout: float = Field(10.0, gt=0)
    half_open_max_probes: int = Field(1, ge=1)
    request_timeout: float = Field(5.0, gt=0)
    rate_per_second: float = Field(50.0, gt=0)
    burst: float = Field(100.0, gt=0)
    when_open: Literal["refuse", "park"] = "refuse"
    dlq_capacity: int = Field(1000, ge=1)
    max_retries: int = Field(3, ge=0)


class BinanceSettings(_Strict):
    """Where and how to reach one Binance Spot account.

    ``environment`` picks Binance's published hosts (live or the spot
    testnet: they differ only by host); ``custom`` takes the three URLs, for
    the local venue (``tradenode venue binance``) or a proxy. Keys come from
    the environment through ``${VAR}`` and are ``SecretStr`` so that no log,
    repr or status line can print them.
    """

    environment: Literal["live", "testnet", "custom"] = "testnet"
    api_key: SecretStr
    api_secret: SecretStr
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

    @model_validator(mode="after")
    def _custom_needs_urls(self) -> BinanceSettings:
        urls = (self.rest_url, self.ws_api_url, self.stream_url)
        if self.environment == "custom" and None in urls:
            raise ValueError("environment 'custom' needs rest_url, ws_api_url and stream_url")
        if self.environment != "custom" and any(url is not None for url in urls):
            raise ValueError(
                f"environment {self.environment!r} uses Binance's own URLs; "
                "set environment: custom to give your own"
            )
        return self


class VenueConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_-]+$")
    kind: Literal["paper", "binance"] = "paper"
    binance: BinanceSettings | None = None
    seed: int | None = None
    latency_ms: float = Field(0.0, ge=0)
    tick_interval_ms: float = Field(250.0, gt=0)
    quote_balance: Decimal = Field(Decimal("1000000"), gt=0)
    fill_probability: float = Field(1.0, ge=0, le=1)
    taker_commission_bps: Decimal = Field(Decimal("10"), ge=0)
    maker_commission_bps: Decimal = Field(Decimal("2"), ge=0)
    slippage_bps: Decimal = Field(Decimal("0"), ge=0)
    allow_short: bool = True
    amend: Literal["native", "cancel_replace"] = "native"
    breaker: BreakerConfig = BreakerConfig()
    backoff: BackoffConfig | None = None

    @model_validator(mode="after")
    def _kind_has_its_settings(self) -> VenueConfig:
        if self.kind == "binance" and self.binance is None:
            raise ValueError(f"venue {self.name}: kind binance needs a binance: section")
        if self.kind != "binance" and self.binance is not None:
            raise ValueError(f"venue {self.name}: a binance: section needs kind: binance")
        return self


class InstrumentRulesConfig(_Strict):
    tick_size: Decimal = Field(gt=0)
    lot_size: Decimal = Field(gt=0)
    min_quantity: Decimal = Field(Decimal(0), ge=0)
    min_notional: Decimal = Field(Decimal(0), ge=0)


class RiskConfig(_Strict):
    max_order_quantity: Decimal | None = Field(None, gt=0)
    max_order_notional: Decimal | None = Field(None, gt=0)
    max_position_quantity: Decimal | None = Field(None, gt=0)
    max_symbol_exposure: Decimal | None = Field(None, gt=0)
    max_total_exposure: Decimal | None = Field(None, gt=0)
    max_open_orders: int | None = Field(None, ge=1)
    max_orders_per_second: float | None = Field(None, gt=0)
    order_burst: int | None = Field(None, ge=1)
    daily_loss_limit: Decimal | None = Field(None, gt=0)
    max_drawdown: Decimal | None = Field(None, gt=0)
    price_collar_bps: Decimal | None = Field(None, gt=0)
    duplicate_window_ms: float | None = Field(None, gt=0)
    on_loss_breach: Literal["REDUCING", "HALTED"] = "REDUCING"
    on_drift: Literal["REDUCING", "HALTED", "NONE"] = "REDUCING"
    instruments: dict[str, InstrumentRulesConfig] = {}


class JournalConfig(_Strict):
    """The OMS's write-ahead journal: where, how durable, how often to snapshot."""

    path: str = Field(min_length=1)
    fsync: str = Field(
        "group:2ms:256", description="every_record | group[:<interval>[:<records>]] | none"
    )
    snapshot_every: int = Field(5_000, ge=100, description="records between snapshots")
    segment_mb: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _fsync_parses(self) -> JournalConfig:
        # The journal package loads the trading core, which loads this module.
        from .journal._policy import FsyncPolicy  # noqa: PLC0415

        FsyncPolicy.parse(self.fsync)
        return self


class OmsConfig(_Strict):
    ack_timeout: float = Field(5.0, gt=0)
    completed_capacity: int = Field(10_000, ge=1)


class StrategyConfig(_Strict):
    id: str = Field(min_length=1, max_length=10, pattern=r"^[A-Za-z0-9]+$")
    kind: str = Field("example", description="'example' or an import path 'package.module:Class'")
    venue: str = "paper"
    symbols: tuple[str, ...] = ()
    cycle_time_ms: int | None = Field(None, ge=1)
    params: dict[str, str | int | float | bool] = {}


class NodeConfig(_Strict):
    node: NodeSection = NodeSection()
    broker_backoff: BackoffConfig = BackoffConfig()
    venues: tuple[VenueConfig, ...] = ()
    risk: RiskConfig = RiskConfig()
    oms: OmsConfig = OmsConfig()
    journal: JournalConfig | None = None
    strategies: tuple[StrategyConfig, ...] = ()
    status_interval: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _names_are_unique_and_known(self) -> NodeConfig:
        venues = [venue.name for venue in self.venues]
        if len(set(venues)) != len(venues):
            raise ValueError(f"venue names must be unique, got {venues}")
        ids = [strategy.id for strategy in self.strategies]
        if len(set(ids)) != len(ids):
            raise ValueError(f"strategy ids must be unique, got {ids}")
        for strategy in self.strategies:
            if strategy.venue not in venues:
                raise ValueError(
                    f"strategy {strategy.id} trades on unknown venue {strategy.venue!r}"
                )
        return self


def _interpolate(value: Any, path: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"config key {path or '<root>'}: environment variable {name} is not set", key=path
            )

        return _ENV_PATTERN.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, f"{path}.{k}" if path else str(k), environ) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", environ) for i, v in enumerate(value)]
    return value


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> NodeConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}".replace("\n", " ")) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    raw = _interpolate(raw, "", os.environ if environ is None else environ)
    try:
        return NodeConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        value = first.get("input")
        secret = any(part in _SECRET_KEYS for part in first["loc"])
        shown = "" if first["type"] == "missing" or secret else f" (got {value!r})"
        raise ConfigError(f"{source}: config key {key}: {first['msg']}{shown}", key=key) from exc


def load_config(
    path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Load a node config; None means the embedded paper-venue default."""
    if path is None:
        return parse_config(default_config_text(), source="embedded paper.yaml", environ=environ)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config: {exc.strerror}") from exc
    return parse_config(text, source=str(file), environ=environ)


def default_config_text() -> str:
    return (
        resources.files("tradenode").joinpath("_resources/paper.yaml").read_text(encoding="utf-8")
    )
