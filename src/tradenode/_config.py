"""Node configuration: YAML with ``${ENV}`` interpolation, validated by pydantic.

Every error is one line naming the offending key (``venues[0].binance.rest_url``),
because the person reading it is starting a node and wants to fix the file,
not read a traceback. It shows the offending value only when that value
cannot be a secret: see ``_shown_input``. Secrets are ``SecretStr`` so they
never print once validated, and every model hides its input from pydantic's
own error text, so not even a chained ``ValidationError`` prints them.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from ._exceptions import ConfigError
from ._execution_config import (
    AUTO_VENUE,
    ApprovalConfig,
    ExecutionMode,
    InstrumentConfig,
    InstrumentMap,
    RoutingConfig,
    RoutingPolicy,
    check_execution_config,
)
from ._registry import VenueKindError, get_venue_kind, installed_venue_kinds
from .control._config import ControlConfig
from .journal._policy import FsyncPolicy
from .observability._settings import AlertsConfig, LoggingConfig, MetricsConfig
from .supervision._scheduling import ThreadScheduling

__all__ = [
    "AUTO_VENUE",
    "ApprovalConfig",
    "BackoffConfig",
    "BreakerConfig",
    "ExecutionMode",
    "GcConfig",
    "InstrumentConfig",
    "InstrumentMap",
    "IntensityConfig",
    "JournalConfig",
    "NodeConfig",
    "NodeSection",
    "OmsConfig",
    "RiskConfig",
    "RoutingConfig",
    "RoutingPolicy",
    "StrategyConfig",
    "VenueConfig",
    "VenueSettings",
    "default_config_text",
    "load_config",
    "parse_config",
]

#: Key names whose values never appear in an error message, even when invalid:
#: today's ``api_key``/``api_secret`` and whatever credential a later venue
#: brings (``passphrase``, ``private_key``, ``*_token``, ``*_password``, ...).
_SECRET_NAME = re.compile(
    r"secret|passphrase|passw(?:or)?d|token|credential|private|signature|mnemonic"
    r"|(?:^|_)(?:pem|cert)$|keys?$",
    re.IGNORECASE,
)
#: A scalar that mentions one of these may be a ``key: secret`` pair that lost
#: its space after the colon (``api_secret:abc`` is one string to YAML).
_SECRET_WORD = re.compile(
    r"secret|passphrase|passw(?:or)?d|token|credential|private|key", re.IGNORECASE
)
#: Shorter values from the environment are not redacted from free text: they
#: carry no secret and would blank out digits and words of the message.
_MIN_REDACTED = 4
_MAX_SHOWN = 80

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    # hide_input_in_errors: a model-level error's input is the whole section,
    # secrets from the environment included; the ValidationError is chained
    # to our ConfigError, so an uncaught one would print it in the traceback.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class IntensityConfig(_Strict):
    max_restarts: int = Field(5, ge=0)
    within_seconds: float = Field(30.0, gt=0)


class BackoffConfig(_Strict):
    min_seconds: float = Field(0.5, gt=0)
    max_seconds: float = Field(30.0, gt=0)
    random_factor: float = Field(0.2, ge=0)


class GcConfig(_Strict):
    """Python's cyclic garbage collector while the node runs (``tradenode._gc``).

    ``young_threshold``: allocations between two collections of the
    youngest generation (Python's is 700), None to leave the collector
    as it is. Process-wide: the first node to start sets it, the last to
    stop puts back what it found.
    """

    young_threshold: int | None = Field(20_000, ge=1)


class NodeSection(_Strict):
    name: str = Field("tradenode", min_length=1)
    seed: int = 0
    shutdown_timeout: float = Field(10.0, gt=0)
    intensity: IntensityConfig = IntensityConfig()
    gc: GcConfig = GcConfig()
    thread_scheduling: ThreadScheduling = ThreadScheduling.BATCH
    """``batch``: the actors' threads (and the threads they start, and the journal's)
    run under ``SCHED_BATCH`` on Linux, so that a thread woken by a tell does not
    preempt the GIL's holder only to wait for it (``supervision._scheduling``);
    ``default``: as the process was started (for a host shared with CPU-bound work)."""


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
    unknown_outcome_timeout: float = Field(60.0, gt=0)
    """For a venue that names no acceptance window: seconds after it was sent
    when an order of unknown outcome the venue still does not have is reported
    not placed (REJECTED, code NOT_PLACED). It is never re-sent; should it
    reach the venue later after all, its fills still count (as drift)."""


class VenueSettings(BaseModel):
    """Base of an adapter's own settings: the YAML section named after its kind.

    ``kind: binance`` reads its settings from ``binance:``, ``kind: paper``
    from ``paper:``. The model is the adapter's (``BinanceSettings``,
    ``PaperSettings``, a user's own); errors in it name the key as the file
    spells it (``venues[0].binance.rest_url``). Hold secrets as ``SecretStr``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    def known_symbols(self) -> tuple[str, ...] | None:
        """The symbols this venue trades, or None where only the venue knows them:
        a strategy configured for any other symbol is a config error."""
        return None

    def check_venue(self, venue: VenueConfig) -> None:
        """Cross-check these settings with the venue's generic sections (``breaker``,
        ``backoff``); raise ``ConfigError`` with ``key`` relative to the venue."""


class VenueConfig(_Strict):
    """One venue: its name, its kind, the kind's settings, its breaker and backoff.

    In YAML the settings are the section named after the kind; in Python,
    ``VenueConfig(name="b", kind="binance", binance={...})`` or
    ``settings=BinanceSettings(...)``. A kind whose settings all have
    defaults (``paper``) needs no section.
    """

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_-]+$")
    kind: str = "paper"
    settings: VenueSettings
    breaker: BreakerConfig = BreakerConfig()
    backoff: BackoffConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _settings_of_the_kind(cls, data: Any, info: ValidationInfo) -> Any:
        """Validate the section named after ``kind`` with the kind's own model."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        kind_name = data.setdefault("kind", "paper")
        if not isinstance(kind_name, str):
            raise ConfigError("must be the name of a venue kind", key="kind")
        try:
            kind = get_venue_kind(kind_name)
        except VenueKindError as exc:
            raise ConfigError(str(exc), key="kind") from None
        model = kind.settings
        section = data.pop(kind_name, None) if kind_name not in _VENUE_KEYS else None
        settings = data.get("settings")
        if section is not None and settings is not None:
            raise ConfigError(f"give either {kind_name}: or settings:, not both", key=kind_name)
        raw = settings if settings is not None else section
        if raw is None:
            if any(field.is_required() for field in model.model_fields.values()):
                raise ConfigError(
                    f"venue {data.get('name')}: kind {kind_name} needs a {kind_name}: section",
                    key=kind_name,
                )
            raw = {}
        for key in data:
            if key not in _VENUE_KEYS and key in installed_venue_kinds():
                raise ConfigError(
                    f"venue {data.get('name')}: a {key}: section needs kind: {key}", key=key
                )
        misplaced = sorted(
            key for key in data if key not in _VENUE_KEYS and key in model.model_fields
        )
        if misplaced:
            raise ConfigError(
                f"{misplaced[0]} is a setting of kind {kind_name}: put it under {kind_name}:",
                key=misplaced[0],
            )
        if isinstance(raw, VenueSettings):
            if not isinstance(raw, model):
                raise ConfigError(
                    f"kind {kind_name} takes {model.__name__}, not {type(raw).__name__}",
                    key="settings",
                )
            data["settings"] = raw
            return data
        where = kind_name if settings is None else "settings"
        if not isinstance(raw, dict):
            raise ConfigError(f"must be a mapping, got {type(raw).__name__}", key=where)
        found = (info.context or {}).get("from_environment", _FromEnvironment())
        found = found.venue_section(where)
        try:
            data["settings"] = model.model_validate(raw, context=info.context)
        except ValidationError as exc:
            key, detail = _first_error(exc, found)
            raise ConfigError(detail, key=_join_key(where, key)) from None
        return data

    @model_validator(mode="after")
    def _settings_fit_the_venue(self) -> VenueConfig:
        self.settings.check_venue(self)
        return self


#: The keys every venue config has; anything else belongs to the kind's section.
_VENUE_KEYS = frozenset(VenueConfig.model_fields)


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
    max_position_pct: Decimal | None = Field(None, gt=0)
    """One instrument's |value| (summed across the venues that list it) as a
    fraction of equity: ``capital`` plus the node's PnL."""
    capital: Decimal | None = Field(None, gt=0)
    """The account's equity (quote currency) when the node's PnL is zero."""

    @model_validator(mode="after")
    def _pct_needs_capital(self) -> RiskConfig:
        if self.max_position_pct is not None and self.capital is None:
            raise ConfigError(
                "max_position_pct needs capital: the equity it is a fraction of",
                key="capital",
            )
        return self


class JournalConfig(_Strict):
    """The OMS's write-ahead journal: where, how durable, how often to snapshot."""

    path: str = Field(min_length=1)
    fsync: str = Field(
        "group",
        description=(
            "every_record | group[:<extra wait>[:<records>]] | none; group commits a lone"
            " record at once and batches what arrives while an fsync is in flight"
        ),
    )
    snapshot_every: int = Field(
        20_000,
        ge=100,
        description=(
            "records between snapshots (an order makes four); while the previous snapshot"
            " is still being written the next waits for it, up to 2x this many records."
            " Fewer is a shorter replay on restart (~25 us a record), more is fewer"
            " snapshots, whose packing slows the orders in flight meanwhile"
        ),
    )
    segment_mb: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _fsync_parses(self) -> JournalConfig:
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
    execution_mode: ExecutionMode | None = None
    """Overrides the node's ``execution_mode`` for this strategy's orders."""

    @field_validator("kind")
    @classmethod
    def _kind_resolves(cls, kind: str) -> str:
        """Import a strategy class when the config is read, not when the node starts it.

        A typo then stops the node before it connects to any venue, as a
        config error naming the key, instead of a traceback from a half-started
        node. The node imports the same module again (from ``sys.modules``).
        """
        if kind != "example":
            _check_strategy_kind(kind)
        return kind


def _check_strategy_kind(kind: str) -> None:
    module_name, colon, attribute = kind.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(
            f"{kind!r} is neither 'example' nor an import path 'package.module:Class'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the import raises, the node could not run the strategy
        raise ConfigError(
            f"cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    target = getattr(module, attribute, None)
    if target is None:
        raise ConfigError(f"module {module_name!r} has no attribute {attribute!r}")
    # The trading core loads this module; import it only once the config is read.
    from .actors._strategy import Strategy  # noqa: PLC0415

    # A factory function returning a Strategy is fine too: the node checks the instance.
    if not callable(target) or (isinstance(target, type) and not issubclass(target, Strategy)):
        raise ConfigError(f"{kind} is not a tradenode Strategy class")


class NodeConfig(_Strict):
    node: NodeSection = NodeSection()
    broker_backoff: BackoffConfig = BackoffConfig()
    venues: tuple[VenueConfig, ...] = ()
    risk: RiskConfig = RiskConfig()
    oms: OmsConfig = OmsConfig()
    journal: JournalConfig | None = None
    strategies: tuple[StrategyConfig, ...] = ()
    status_interval: float = Field(2.0, gt=0)
    metrics: MetricsConfig | None = None
    """Prometheus ``/metrics`` on its own loopback port (off when absent)."""
    logging: LoggingConfig = LoggingConfig()
    alerts: AlertsConfig | None = None
    """Alert rules and webhooks (off when absent)."""
    instruments: dict[str, InstrumentConfig] = {}
    """Instruments listed on several venues, each under its own symbol there."""
    routing: RoutingConfig = RoutingConfig()
    execution_mode: ExecutionMode = ExecutionMode.FULL_AUTO
    approval: ApprovalConfig = ApprovalConfig()
    control: ControlConfig = ControlConfig()
    """The control API (``tradenode ctl``): off unless ``enabled``."""

    @model_validator(mode="after")
    def _names_are_unique_and_known(self) -> NodeConfig:
        venues: dict[str, VenueConfig] = {}
        for index, venue in enumerate(self.venues):
            if venue.name in venues:
                raise ConfigError(
                    f"venue name {venue.name!r} is used twice", key=f"venues[{index}].name"
                )
            venues[venue.name] = venue
        ids: set[str] = set()
        for index, strategy in enumerate(self.strategies):
            if strategy.id in ids:
                raise ConfigError(
                    f"strategy id {strategy.id!r} is used twice", key=f"strategies[{index}].id"
                )
            ids.add(strategy.id)
        check_execution_config(
            instruments=self.instruments, routing=self.routing, venue_names=tuple(venues)
        )
        for index, strategy in enumerate(self.strategies):
            if strategy.venue == AUTO_VENUE:
                unknown = [symbol for symbol in strategy.symbols if symbol not in self.instruments]
                if unknown or not self.instruments:
                    where_key = "symbols" if unknown else "venue"
                    raise ConfigError(
                        f"strategy {strategy.id} routes (venue: auto) {', '.join(unknown)}, "
                        f"which instruments: does not list",
                        key=f"strategies[{index}].{where_key}",
                    )
                continue
            where = venues.get(strategy.venue)
            if where is None:
                raise ConfigError(
                    f"strategy {strategy.id} trades on unknown venue {strategy.venue!r} "
                    f"(venues: {', '.join(venues) or 'none'})",
                    key=f"strategies[{index}].venue",
                )
            known = where.settings.known_symbols()
            unknown = [symbol for symbol in strategy.symbols if known and symbol not in known]
            if unknown:
                raise ConfigError(
                    f"venue {where.name} does not trade {', '.join(unknown)} "
                    f"(it trades {', '.join(known or ())})",
                    key=f"strategies[{index}].symbols",
                )
        return self


@dataclass
class _FromEnvironment:
    """What ``${ENV}`` interpolation put into a config: where, and which values."""

    locs: set[_Loc] = field(default_factory=set)
    values: set[str] = field(default_factory=set)

    def produced(self, loc: Sequence[str | int]) -> bool:
        """Whether the value at ``loc`` (or a string holding it) came from the environment."""
        return any(tuple(loc[:n]) in self.locs for n in range(len(loc) + 1))

    def venue_section(self, section: str) -> _FromEnvironment:
        """The same, with locations relative to a section of a venue: ``venues[i].<section>``
        (of any venue: a value from the environment in one venue's section keeps
        the same key in every venue's section out of error messages)."""
        locs = {
            loc[3:]
            for loc in self.locs
            if len(loc) >= 3 and loc[0] == "venues" and loc[2] == section
        }
        return _FromEnvironment(locs, self.values)

    def redact(self, text: str) -> str:
        """``text`` without any value from the environment: the safety net for free text
        (a validator's message may name a venue, a symbol or a path)."""
        for value in sorted(self.values, key=len, reverse=True):
            if len(value) >= _MIN_REDACTED:
                text = text.replace(value, "<from environment>")
        return text


def _key(loc: Sequence[str | int]) -> str:
    """A config key as the file spells it: ``venues[0].binance.rest_url``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _join_key(base: str, relative: str | None) -> str:
    if not relative:
        return base
    if not base or relative.startswith("["):
        return base + relative
    return f"{base}.{relative}"


def _interpolate(
    value: Any, loc: _Loc, environ: Mapping[str, str], found: _FromEnvironment, source: str
) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                found.locs.add(loc)
                found.values.add(environ[name])
                return environ[name]
            if default is not None:
                return default
            key = _key(loc) or "<root>"
            raise ConfigError(
                f"{source}: config key {key}: environment variable {name} is not set", key=key
            )

        return _ENV_PATTERN.sub(replace, value)
    if isinstance(value, dict):
        return {
            k: _interpolate(v, (*loc, k if isinstance(k, int) else str(k)), environ, found, source)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), environ, found, source) for i, v in enumerate(value)]
    return value


def _shown_input(error: ErrorDetails, found: _FromEnvironment) -> str:
    """`` (got <value>)`` when the offending value cannot be a secret, else nothing.

    Shown only for a scalar (a model-level error's input is the whole
    section or config, secrets and all) that no secret-looking key holds
    (``api_secret``, ``passphrase``, ``*_token``, ...), that is no unknown
    key's value (a misspelled ``api_secrett`` still holds the secret), that
    does not come from the environment (``${ENV}`` is where secrets live)
    and that does not look like a ``key: secret`` pair itself.
    """
    loc = error["loc"]
    value = error.get("input")
    if error["type"] in {"missing", "extra_forbidden"} or found.produced(loc):
        return ""
    if value is not None and not isinstance(value, str | int | float | Decimal):
        return ""
    if any(isinstance(part, str) and _SECRET_NAME.search(part) for part in loc):
        return ""
    if isinstance(value, str) and _SECRET_WORD.search(value):
        return ""
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return f" (got {shown})"


def _first_error(exc: ValidationError, found: _FromEnvironment) -> tuple[str, str]:
    """The first validation error's key and text, with no secret in the text.

    A validator that knows which nested key is wrong raises ``ConfigError``
    with ``key`` relative to its model; pydantic reports it at the model.
    """
    first = exc.errors()[0]
    key = _key(first["loc"])
    raised = first.get("ctx", {}).get("error")
    if isinstance(raised, ConfigError):
        return _join_key(key, raised.key), str(raised)
    return key, f"{first['msg']}{_shown_input(first, found)}"


def _config_error(exc: ValidationError, source: str, found: _FromEnvironment) -> ConfigError:
    """The first validation error as one line naming its key, with no secret in it."""
    key, detail = _first_error(exc, found)
    line = found.redact(f"config key {key or '<root>'}: {detail}")
    return ConfigError(f"{source}: {' '.join(line.splitlines())}", key=key)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    """What is wrong and where, without PyYAML's snippet of the offending line:
    that line may hold a secret."""
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = []
        for what, mark in ((exc.context, exc.context_mark), (exc.problem, exc.problem_mark)):
            if what:
                at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                parts.append(f"{what}{at}")
        detail = ": ".join(parts) or type(exc).__name__
    else:
        detail = " ".join(str(exc).split())
    return ConfigError(f"{source}: not valid YAML: {detail}")


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> NodeConfig:
    """Parse and validate a YAML node config; every problem is a one-line ``ConfigError``."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Not chained: PyYAML's own message quotes the offending line, which may hold a secret.
        raise _yaml_error(exc, source) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")
    found = _FromEnvironment()
    raw = _interpolate(raw, (), os.environ if environ is None else environ, found, source)
    try:
        return NodeConfig.model_validate(raw, context={"from_environment": found})
    except ValidationError as exc:
        error = _config_error(exc, source, found)
        # Chained for every error, not just the first, unless a validator's
        # message in it would echo a value from the environment.
        if found.redact(str(exc)) != str(exc):
            raise error from None
        raise error from exc


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
