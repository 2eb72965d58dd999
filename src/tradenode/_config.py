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
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

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

    ``key_type`` is ``hmac`` (``api_secret``) or ``ed25519``: the private key
    as PEM text (``private_key``, e.g. ``${BINANCE_PRIVATE_KEY}``) or a PEM
    file (``private_key_path``), never both; an Ed25519 key also logs the
    WebSocket API session on (``session.logon``).
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


def _check_ed25519_private_key(text: SecretStr | None, path: Path | None) -> None:
    """The key must load as an unencrypted Ed25519 private key (PEM); errors never quote it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        load_pem_private_key,
    )

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
            raise ConfigError(
                f"venue {self.name}: kind binance needs a binance: section", key="binance"
            )
        if self.kind != "binance" and self.binance is not None:
            raise ConfigError(
                f"venue {self.name}: a binance: section needs kind: binance", key="binance"
            )
        if self.binance is not None:
            window = self.binance.recv_window_ms / 1000
            if self.breaker.request_timeout < window:
                # Safe (the breaker waits for the window before any re-send),
                # but every submit it gave up on early would be an order of
                # unknown outcome for the rest of the window: refuse it.
                raise ConfigError(
                    f"venue {self.name}: breaker.request_timeout "
                    f"({self.breaker.request_timeout:g} s) is shorter than "
                    f"binance.recv_window_ms ({self.binance.recv_window_ms} ms), the time "
                    "the venue may still accept a request: the breaker would give up on "
                    "orders the venue can still place",
                    key="breaker.request_timeout",
                )
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
        for index, strategy in enumerate(self.strategies):
            where = venues.get(strategy.venue)
            if where is None:
                raise ConfigError(
                    f"strategy {strategy.id} trades on unknown venue {strategy.venue!r} "
                    f"(venues: {', '.join(venues) or 'none'})",
                    key=f"strategies[{index}].venue",
                )
            known = _venue_symbols(where)
            unknown = [symbol for symbol in strategy.symbols if known and symbol not in known]
            if unknown:
                raise ConfigError(
                    f"venue {where.name} does not trade {', '.join(unknown)} "
                    f"(it trades {', '.join(known or ())})",
                    key=f"strategies[{index}].symbols",
                )
        return self


def _venue_symbols(venue: VenueConfig) -> tuple[str, ...] | None:
    """The symbols this venue trades, or None where the config cannot know them.

    A paper venue built from a config always runs the simulator's default
    instruments (``tradenode.testing.default_instruments``: BTCUSDT, ETHUSDT,
    SOLUSDT): the config has no key to change them, and only Python code can
    give a node a ``PaperVenue`` of other instruments (``Node.add_venue``). A
    Binance venue with ``symbols`` loads the filters of those symbols only
    and rejects an order for any other as ``UNKNOWN_INSTRUMENT``; without
    ``symbols`` it trades whatever the exchange lists, which only the venue
    knows (None).
    """
    if venue.kind == "binance":
        assert venue.binance is not None
        return venue.binance.symbols or None
    # The testing package loads the simulator, which this module must not load at import.
    from .testing._paper import default_instruments  # noqa: PLC0415

    return tuple(spec.symbol for spec in default_instruments())


@dataclass
class _FromEnvironment:
    """What ``${ENV}`` interpolation put into a config: where, and which values."""

    locs: set[_Loc] = field(default_factory=set)
    values: set[str] = field(default_factory=set)

    def produced(self, loc: Sequence[str | int]) -> bool:
        """Whether the value at ``loc`` (or a string holding it) came from the environment."""
        return any(tuple(loc[:n]) in self.locs for n in range(len(loc) + 1))

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


def _config_error(exc: ValidationError, source: str, found: _FromEnvironment) -> ConfigError:
    """The first validation error as one line naming its key, with no secret in it.

    A validator that knows which nested key is wrong raises ``ConfigError``
    with ``key`` relative to its model; pydantic reports it at the model.
    """
    first = exc.errors()[0]
    key = _key(first["loc"])
    raised = first.get("ctx", {}).get("error")
    if isinstance(raised, ConfigError):
        key = _join_key(key, raised.key)
        detail, shown = str(raised), ""
    else:
        detail, shown = first["msg"], _shown_input(first, found)
    line = found.redact(f"config key {key or '<root>'}: {detail}{shown}")
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
        return NodeConfig.model_validate(raw)
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
