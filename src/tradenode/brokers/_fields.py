"""Reading a venue's JSON: typed fields whose every failure is a ``MalformedPayloadError``.

An adapter's codec reads each payload through :class:`JsonFields` (or a
subclass adding the venue's own kinds of field: Binance's order types,
OANDA's transaction ids), so a missing key, a number where a string should
be or a price that is not a decimal is one typed error naming where it was
(``executionReport.q``), never a ``KeyError`` deep in the actor.
:func:`decode_json` reads the text itself: decimals stay exact and the
non-JSON constants (``NaN``, ``Infinity``) are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import ClassVar, NoReturn, Self

from .._exceptions import MalformedPayloadError

__all__ = ["DECIMAL_TEXT", "JsonFields", "decode_json"]

DECIMAL_TEXT = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
"""A decimal as venues write them in JSON strings (``"0.00100000"``, ``"-1.5"``, ``"1e-8"``)."""


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"JSON constant {name} is not allowed")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constants)
"""One decoder for every frame of every venue. ``json.loads`` with ``parse_float`` or
``parse_constant`` builds a new decoder (and its scanner) per call, ~1.4 us of a
~6 us read of a 700-byte order answer; a decoder keeps no state between calls
(the scanner's key memo is cleared after each), so one is shared by all threads."""


def decode_json(text: str | bytes, broker: str | None, what: str) -> object:
    """``text`` as JSON with exact decimals; anything else is a ``MalformedPayloadError``.

    What ``json.loads`` does before decoding is done here the same way: bytes are
    decoded from the encoding ``json.detect_encoding`` finds (UTF-8, -16 or -32), a
    str starting with a byte-order mark and any other type are refused."""
    try:
        if isinstance(text, str):
            if text.startswith("\ufeff"):
                raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
            document = text
        elif isinstance(text, bytes | bytearray):
            document = text.decode(json.detect_encoding(text), "surrogatepass")
        else:
            raise TypeError(
                f"the JSON object must be str, bytes or bytearray, not {type(text).__name__}"
            )
        return _DECODER.decode(document)
    except (ValueError, TypeError, RecursionError) as exc:
        shown = text[:120] if isinstance(text, str | bytes) else type(text).__name__
        raise MalformedPayloadError(f"{what}: not JSON ({exc}): {shown!r}", broker=broker) from exc


class JsonFields:
    """Typed access to one JSON object; every failure is a ``MalformedPayloadError``.

    Venues differ in small ways, set per subclass: whether an integer may come
    as a string of digits (:attr:`INTEGER_TEXT`) and whether an empty string
    means "absent" for the optional fields (:attr:`EMPTY_IS_NONE`).
    """

    __slots__ = ("broker", "obj", "where")

    INTEGER_TEXT: ClassVar[bool] = False
    """An integer field may be a string of digits (``"42"``)."""
    EMPTY_IS_NONE: ClassVar[bool] = False
    """An optional field holding ``""`` is absent."""

    def __init__(self, obj: object, broker: str | None, where: str) -> None:
        if not isinstance(obj, Mapping):
            raise MalformedPayloadError(
                f"{where}: expected a JSON object, got {type(obj).__name__}", broker=broker
            )
        self.obj: Mapping[str, object] = obj
        self.broker = broker
        self.where = where

    def fail(self, what: str) -> NoReturn:
        raise MalformedPayloadError(f"{self.where}: {what}", broker=self.broker)

    def has(self, key: str) -> bool:
        return key in self.obj

    def child(self, key: str) -> Self:
        """The JSON object under ``key``, read the same way."""
        return type(self)(self.raw(key), self.broker, f"{self.where}.{key}")

    def _absent(self, key: str) -> bool:
        value = self.obj.get(key)
        return value is None or (self.EMPTY_IS_NONE and value == "")

    def raw(self, key: str) -> object:
        if key not in self.obj:
            self.fail(f"missing field {key!r}")
        return self.obj[key]

    def text(self, key: str, *, empty: bool = False) -> str:
        value = self.raw(key)
        if not isinstance(value, str) or (not empty and not value):
            self.fail(f"{key}={value!r}: expected a non-empty string")
        return value

    def opt_text(self, key: str) -> str | None:
        if self._absent(key):
            return None
        value = self.obj[key]
        if not isinstance(value, str):
            self.fail(f"{key}={value!r}: expected a string or null")
        return value

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if self.INTEGER_TEXT and isinstance(value, str) and value.isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{key}={value!r}: expected an integer")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            self.fail(f"{key}={value!r}: expected true or false")
        return value

    def decimal(self, key: str, *, non_negative: bool = False) -> Decimal:
        value = self.raw(key)
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int) and not isinstance(value, bool):
            number = Decimal(value)
        elif isinstance(value, str) and DECIMAL_TEXT.match(value):
            try:
                number = Decimal(value)
            except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
                self.fail(f"{key}={value!r}: not a decimal")
        else:
            self.fail(f"{key}={value!r}: expected a decimal string")
        if not number.is_finite():
            self.fail(f"{key}={value!r}: expected a finite decimal")
        if non_negative and number < 0:
            self.fail(f"{key}={value!r}: expected a finite, non-negative decimal")
        return number

    def opt_decimal(self, key: str, *, non_negative: bool = False) -> Decimal | None:
        return None if self._absent(key) else self.decimal(key, non_negative=non_negative)
