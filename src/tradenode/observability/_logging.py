"""Structured logs: JSON lines or readable text, context fields, secrets masked.

Every record leaving a handler passes ``ContextFilter`` (adds ``node``,
``venue``, ``strategy`` and ``client_order_id``, from ``extra=`` or the
logger's context when known; ``extra={"order": message}`` fills them from the
order message itself: its ``venue``, ``strategy_id``, ``client_order_id``) and ``RedactingFilter`` (masks every secret
value of the config wherever it appears: in the message, its arguments,
the exception text).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from ._settings import LogFormat, LoggingConfig

__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "RedactingFilter",
    "configure_logging",
    "secret_values",
]

CONTEXT_FIELDS = ("node", "venue", "strategy", "client_order_id")
"""Fields each line carries when known (``extra={"venue": ...}`` at the call site)."""

ORDER_KEY = "order"
"""``extra={"order": message}``: the context fields are read from the message."""

_FROM_ORDER = (
    ("venue", "venue"),
    ("strategy", "strategy_id"),
    ("client_order_id", "client_order_id"),
)

MASK = "***"

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


class ContextFilter(logging.Filter):
    """Adds the context fields to every record (None when unknown) and ``node``.

    A field the call site did not give is read from ``extra={"order": message}``
    where the message has it (a ``SubmitOrder``, a ``ModifyOrder``, an order
    event): one argument gives a log line its venue, strategy and order."""

    def __init__(self, node: str | None = None) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "node", None) is None:
            record.node = self.node
        order = getattr(record, ORDER_KEY, None)
        for name, attribute in _FROM_ORDER:
            if getattr(record, name, None) is None:
                value = getattr(order, attribute, None) if order is not None else None
                setattr(record, name, value if isinstance(value, str) and value else None)
        known = [f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS[1:]]
        shown = [item for item in known if not item.endswith("=None")]
        record.context = f" [{' '.join(shown)}]" if shown else ""
        return True


class RedactingFilter(logging.Filter):
    """Masks each secret value in the final text of a record.

    The message is formatted here once (arguments included) and the record
    keeps only the masked text, so no handler, formatter or later filter can
    see the secret; an exception's text is masked the same way.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first: a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({*self._secrets, *(s for s in secrets if s)}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.mask(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            line[name] = getattr(record, name, None)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str)


def _formatter(fmt: LogFormat) -> logging.Formatter:
    if fmt is LogFormat.JSON:
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = _gmtime
        return formatter
    return logging.Formatter(_TEXT_FORMAT)


def _gmtime(seconds: float | None) -> time.struct_time:
    return time.gmtime(seconds)


def configure_logging(
    config: LoggingConfig,
    *,
    node: str | None = None,
    secrets: Iterable[str] = (),
    handler: logging.Handler | None = None,
    level: str | None = None,
    replace_all: bool = False,
) -> logging.Handler:
    """Install one handler on the root logger with the format, context and redaction.

    Replaces the handlers ``configure_logging`` installed before (every root
    handler with ``replace_all``: the CLI owns its process's logging). Returns the handler (a ``StreamHandler`` on stderr unless one is given)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if replace_all or getattr(old, "_tradenode_observability", False):
            root.removeHandler(old)
    target = handler if handler is not None else logging.StreamHandler()
    target._tradenode_observability = True  # type: ignore[attr-defined]
    target.addFilter(ContextFilter(node))
    target.addFilter(RedactingFilter(secrets))
    target.setFormatter(_formatter(config.format))
    root.addHandler(target)
    root.setLevel((level or config.level).upper())
    return target


def secret_values(*models: object) -> list[str]:
    """Every ``SecretStr`` value reachable from these config models (venue settings,
    webhook URLs, tokens): what the redacting filter masks."""
    return sorted(set(_walk(models)))


def _walk(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name))
        extra = value.model_extra or {}
        for item in extra.values():
            yield from _walk(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item)
