"""Answers as JSON: any node object made plain, and no secret ever in it."""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, SecretStr

from ..messages import Message
from ..messages._codec import DEFAULT_REGISTRY

__all__ = ["Redactor", "plain"]

REDACTED = "<redacted>"
#: Keys whose values an answer never shows, whatever they hold.
_SECRET_KEY = re.compile(
    r"secret|passphrase|passw(?:or)?d|token|credential|private|signature|api_key|apikey",
    re.IGNORECASE,
)
_MIN_SCRUBBED = 6


def plain(value: Any) -> Any:
    """``value`` as JSON-able data: decimals as text, enums as values, messages tagged,
    dataclasses and pydantic models as objects, secrets as ``<redacted>``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Message):
        tag = DEFAULT_REGISTRY.tag_of(type(value))
        return {"type": tag, **_fields(value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, BaseModel):
        return {k: _keyed(k, getattr(value, k)) for k in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): _keyed(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return str(value)


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: _keyed(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)}


def _keyed(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and isinstance(value, str | SecretStr | bytes) and value:
        return REDACTED
    return plain(value)


class Redactor:
    """The safety net under :func:`plain`: every secret the node knows of (its venues'
    ``SecretStr`` settings, the control tokens) is cut out of an answer's text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def learn(self, source: Any) -> None:
        """Remember every ``SecretStr`` inside ``source`` (a config model, a mapping)."""
        for secret in _secrets_in(source, depth=0):
            if len(secret) >= _MIN_SCRUBBED:
                self._secrets.add(secret)

    def dumps(self, data: Any) -> str:
        text = json.dumps(plain(data), separators=(",", ":"))
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret and escaped in text:
                text = text.replace(escaped, REDACTED)
        return text

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


def _secrets_in(source: Any, depth: int) -> Iterable[str]:
    if depth > 12:
        return
    if isinstance(source, SecretStr):
        yield source.get_secret_value()
    elif isinstance(source, BaseModel):
        for name in type(source).model_fields:
            yield from _secrets_in(getattr(source, name), depth + 1)
    elif isinstance(source, dict):
        for item in source.values():
            yield from _secrets_in(item, depth + 1)
    elif isinstance(source, list | tuple):
        for item in source:
            yield from _secrets_in(item, depth + 1)
