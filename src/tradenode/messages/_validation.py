"""Construction-time checks shared by the message classes.

A message that exists is valid: every check raises ``ValueError`` naming the
class, the field and the value, so a bad order is refused where it is made
rather than where it is sent.
"""

from __future__ import annotations

import enum
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "CLIENT_ORDER_ID_PATTERN",
    "check_client_order_id",
    "check_decimal",
    "check_enum",
    "check_identifier",
    "check_timestamp",
]

#: What a client order id may be inside the node: 1 to 36 printable
#: characters from a URL- and log-safe set. Each venue's own, often narrower,
#: rule (``VenueCapabilities.client_ids``) decides what ids are drawn for it,
#: and its adapter checks what it sends; the core names no venue.
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")


def _fail(owner: object, field: str, value: Any, why: str) -> ValueError:
    return ValueError(f"{type(owner).__name__}.{field}={value!r}: {why}")


def check_decimal(
    owner: object,
    field: str,
    value: Any,
    *,
    positive: bool = False,
    non_negative: bool = False,
    optional: bool = False,
) -> None:
    if value is None:
        if optional:
            return
        raise _fail(owner, field, value, "is required")
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise _fail(owner, field, value, "must be a decimal.Decimal (floats round)")
    if not value.is_finite():
        raise _fail(owner, field, value, "must be finite")
    if positive and value <= 0:
        raise _fail(owner, field, value, "must be greater than zero")
    if non_negative and value < 0:
        raise _fail(owner, field, value, "must not be negative")


def check_timestamp(owner: object, field: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(owner, field, value, "must be integer nanoseconds")
    if value < 0:
        raise _fail(owner, field, value, "must not be negative")


def check_identifier(owner: object, field: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or value != value.strip():
        raise _fail(owner, field, value, "must be a non-empty string without surrounding spaces")


def check_client_order_id(owner: object, field: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(value):
        raise _fail(owner, field, value, "must match [.A-Z:/a-z0-9_-]{1,36}")


def check_enum(owner: object, field: str, value: Any, kind: type[enum.Enum]) -> None:
    if not isinstance(value, kind):
        raise _fail(owner, field, value, f"must be a {kind.__name__}")
