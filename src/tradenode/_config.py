"""Node configuration: YAML with ``${ENV}`` interpolation, validated by pydantic.

Every error names the offending key and value in one line, because the
person reading it is starting a node and wants to fix the file, not read a
traceback. Secrets are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._exceptions import ConfigError

__all__ = [
    "BackoffConfig",
    "IntensityConfig",
    "NodeConfig",
    "NodeSection",
    "default_config_text",
    "load_config",
    "parse_config",
]

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


class NodeConfig(_Strict):
    node: NodeSection = NodeSection()
    broker_backoff: BackoffConfig = BackoffConfig()


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
        shown = "" if first["type"] == "missing" else f" (got {value!r})"
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
