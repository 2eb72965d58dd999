"""Construction-time checks shared by the message classes.

A message that exists is valid: every check raises ``ValueError`` naming the
class, the field and the value, so a bad order is refused where it is made
rather than where it is sent.

Every message of every order passes through here (about thirty checks per
order), so each check looks at the common valid shape first (an exact
``Decimal``, ``str`` or ``int``, type test before anything else) and only a
value that is not plainly valid takes the general path, which decides and
words the error exactly as before: the fast path only ever *returns* for a
value the general path accepts too. The ``check_*_decimal`` and
``check_optional_identifier`` variants take no keywords (a keyword call costs
more than the check itself) and are what the message classes call.
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
    "check_finite_decimal",
    "check_identifier",
    "check_non_negative_decimal",
    "check_optional_identifier",
    "check_optional_positive_decimal",
    "check_positive_decimal",
    "check_timestamp",
]

#: What a client order id may be inside the node: 1 to 36 printable
#: characters from a URL- and log-safe set. Each venue's own, often narrower,
#: rule (``VenueCapabilities.client_ids``) decides what ids are drawn for it,
#: and its adapter checks what it sends; the core names no venue.
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_client_order_id_match = CLIENT_ORDER_ID_PATTERN.fullmatch
_ZERO = Decimal(0)


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
    if type(value) is Decimal and value.is_finite():
        # The common case: the sign test is all that is left to decide.
        if positive:
            if value > _ZERO:
                return
        elif non_negative:
            if value >= _ZERO:
                return
        else:
            return
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
    if type(value) is int and value >= 0:
        return
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(owner, field, value, "must be integer nanoseconds")
    if value < 0:
        raise _fail(owner, field, value, "must not be negative")


def check_identifier(owner: object, field: str, value: Any, *, optional: bool = False) -> None:
    if type(value) is str and value and value == value.strip():
        return
    if value is None and optional:
        return
    if not isinstance(value, str) or not value or value != value.strip():
        raise _fail(owner, field, value, "must be a non-empty string without surrounding spaces")


def check_client_order_id(owner: object, field: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not _client_order_id_match(value):
        raise _fail(owner, field, value, "must match [.A-Z:/a-z0-9_-]{1,36}")


def check_enum(owner: object, field: str, value: Any, kind: type[enum.Enum]) -> None:
    if type(value) is kind:
        return  # implies isinstance: what the general test below decides
    if not isinstance(value, kind):
        raise _fail(owner, field, value, f"must be a {kind.__name__}")


# -- keyword-free variants, for the message classes ---------------------------


def check_finite_decimal(owner: object, field: str, value: Any) -> None:
    """``check_decimal(owner, field, value)``."""
    if type(value) is Decimal and value.is_finite():
        return
    check_decimal(owner, field, value)


def check_positive_decimal(owner: object, field: str, value: Any) -> None:
    """``check_decimal(owner, field, value, positive=True)``."""
    if type(value) is Decimal and value.is_finite() and value > _ZERO:
        return
    check_decimal(owner, field, value, positive=True)


def check_optional_positive_decimal(owner: object, field: str, value: Any) -> None:
    """``check_decimal(owner, field, value, positive=True, optional=True)``."""
    if value is None or (type(value) is Decimal and value.is_finite() and value > _ZERO):
        return
    check_decimal(owner, field, value, positive=True, optional=True)


def check_non_negative_decimal(owner: object, field: str, value: Any) -> None:
    """``check_decimal(owner, field, value, non_negative=True)``."""
    if type(value) is Decimal and value.is_finite() and value >= _ZERO:
        return
    check_decimal(owner, field, value, non_negative=True)


def check_optional_identifier(owner: object, field: str, value: Any) -> None:
    """``check_identifier(owner, field, value, optional=True)``."""
    if value is None or (type(value) is str and value and value == value.strip()):
        return
    check_identifier(owner, field, value, optional=True)
