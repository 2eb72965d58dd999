"""The wire and journal format of every message.

Frames cross process boundaries and outlive the code that wrote them, so the
format is deliberately boring and closed:

* msgpack, never pickle: unpickling runs code chosen by whoever wrote the bytes.
* An explicit registry maps short, stable tags to classes. Nothing is imported
  by name, so a frame can only ever become a class we chose to register, and
  renaming or moving a class does not break old journals.
* A frame is ``[FORMAT_VERSION, tag, type_version, {field: value}]``. The outer
  version guards the framing itself; the per-type version lets one message
  evolve without touching the others.
* Decimals travel as the text of ``str(decimal)`` in an ext type, because
  floats round and because ``Decimal("1.10")`` and ``Decimal("1.1")`` are
  equal but not interchangeable (the exponent carries the venue's precision).
* Decoding is driven by each class's type hints, never by what the bytes claim
  to be: a frame cannot smuggle a float into a price or a string into a
  timestamp, and every refusal is a ``DecodeError`` naming the tag and field.

Versioning rule: an older ``type_version`` is decoded with today's schema, so
a version bump must only add fields that have defaults. Anything else needs a
new tag.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Final

import msgpack

from .._exceptions import DecodeError
from ._algos import ALGO_MESSAGES
from ._execution import EXECUTION_MESSAGES
from ._market import MARKET_MESSAGES
from ._messages import (
    CancelAllOrders,
    CancelOrder,
    CancelRejected,
    ExecutionDecision,
    Message,
    ModifyOrder,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatusReport,
    OrderSubmitted,
    PositionSnapshot,
    QueryOrder,
    Quote,
    SubmitOrder,
    TradingStateChanged,
)

__all__ = [
    "DECIMAL_EXT_CODE",
    "DEFAULT_REGISTRY",
    "FORMAT_VERSION",
    "MAX_DECIMAL_CHARS",
    "MAX_FRAME_BYTES",
    "MessageRegistry",
    "decode",
    "encode",
]

FORMAT_VERSION: Final = 1
DECIMAL_EXT_CODE: Final = 1

#: Messages are small; a larger input is an attack or a framing bug, and
#: refusing it up front bounds the work a hostile peer can make us do.
MAX_FRAME_BYTES: Final = 1 << 20

#: Generous for any price or quantity, and bounds the cost of parsing one.
MAX_DECIMAL_CHARS: Final = 100

#: Nested frames recurse through Python; a cap keeps a crafted frame from
#: turning into a RecursionError instead of a DecodeError.
_MAX_NESTING: Final = 32

_TAG_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DECIMAL_SYNTAX: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NON_FINITE_SYNTAX: Final = re.compile(r"[+-]?(?:s?nan\d*|inf|infinity)", re.ASCII | re.IGNORECASE)
_MSGPACK_INT_MIN: Final = -(1 << 63)
_MSGPACK_INT_MAX: Final = (1 << 64) - 1

_Converter = Callable[[object, int], object]


class _Invalid(Exception):
    """A field value was refused; the frame decoder adds the tag and field name."""


@dataclasses.dataclass(frozen=True, slots=True)
class _BadDecimal:
    """Stands in for a Decimal ext that did not parse.

    The ext hook cannot know which field it is decoding, so it defers the
    refusal to the field's converter, which can name the field.
    """

    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    cls: type[Message]
    tag: str
    version: int
    construct: Callable[..., Message]
    field_names: tuple[str, ...]
    converters: Mapping[str, _Converter]
    required: frozenset[str]


class MessageRegistry:
    """The closed set of classes a peer may name, each under one tag and version.

    Registration compiles every field's decoder up front, so an unsupported
    annotation fails at import time rather than on the first frame at runtime.
    """

    __slots__ = ("_by_class", "_by_tag")

    def __init__(self) -> None:
        self._by_class: dict[type[Message], _Entry] = {}
        self._by_tag: dict[str, _Entry] = {}

    def register(self, cls: type[Message], *, tag: str, version: int = 1) -> None:
        _check_registration(cls, tag, version)
        if cls in self._by_class:
            raise ValueError(f"{cls.__name__} is already registered as {self._by_class[cls].tag!r}")
        if tag in self._by_tag:
            raise ValueError(f"tag {tag!r} is already taken by {self._by_tag[tag].cls.__name__}")
        entry = self._compile(cls, tag, version)
        self._by_class[cls] = entry
        self._by_tag[tag] = entry

    def tag_of(self, cls: type[Message]) -> str:
        return self._entry_of(cls).tag

    def version_of(self, cls: type[Message]) -> int:
        return self._entry_of(cls).version

    def class_of(self, tag: str) -> type[Message]:
        try:
            return self._by_tag[tag].cls
        except KeyError:
            raise KeyError(f"no message is registered under tag {tag!r}") from None

    def __contains__(self, item: object) -> bool:
        return item in self._by_class

    def __iter__(self) -> Iterator[type[Message]]:
        return iter(self._by_class)

    def __len__(self) -> int:
        return len(self._by_class)

    def __repr__(self) -> str:
        return f"<MessageRegistry of {len(self)} message types>"

    def _entry_of(self, cls: type[Message]) -> _Entry:
        try:
            return self._by_class[cls]
        except (KeyError, TypeError):
            raise KeyError(f"{cls!r} is not registered") from None

    def _entry_for_tag(self, tag: str) -> _Entry | None:
        return self._by_tag.get(tag)

    def _compile(self, cls: type[Message], tag: str, version: int) -> _Entry:
        shape: object = cls
        if not (isinstance(shape, type) and dataclasses.is_dataclass(shape)):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError) as exc:
            raise TypeError(f"{cls.__name__}: cannot resolve field annotations: {exc}") from exc
        converters: dict[str, _Converter] = {}
        required: set[str] = set()
        for field in dataclasses.fields(shape):
            if not field.init:
                continue
            try:
                converters[field.name] = _compile_hint(hints[field.name], self)
            except TypeError as exc:
                raise TypeError(f"{cls.__name__}.{field.name}: {exc}") from exc
            no_default = field.default is dataclasses.MISSING
            if no_default and field.default_factory is dataclasses.MISSING:
                required.add(field.name)
        return _Entry(
            cls=cls,
            tag=tag,
            version=version,
            construct=cls,
            field_names=tuple(converters),
            converters=converters,
            required=frozenset(required),
        )


def _check_registration(cls: object, tag: object, version: object) -> None:
    # Typed as object: registration is where a caller's mistake must surface,
    # whatever the annotations promised.
    if not (isinstance(cls, type) and issubclass(cls, Message)):
        raise TypeError(f"{cls!r} is not a Message subclass")
    if not isinstance(tag, str) or not _TAG_PATTERN.fullmatch(tag):
        raise ValueError(f"tag {tag!r} must match {_TAG_PATTERN.pattern}")
    if type(version) is not int or version < 1:
        raise ValueError(f"{cls.__name__}: version {version!r} must be an int >= 1")


def _frame_of(message: Message, registry: MessageRegistry, depth: int) -> list[object]:
    cls = type(message)
    if depth > _MAX_NESTING:
        raise ValueError(f"{cls.__name__}: messages nest deeper than {_MAX_NESTING}")
    try:
        entry = registry._entry_of(cls)
    except KeyError:
        raise TypeError(f"{cls.__name__} is not registered with this registry") from None
    fields = {
        name: _to_wire(getattr(message, name), f"{cls.__name__}.{name}", registry, depth)
        for name in entry.field_names
    }
    return [FORMAT_VERSION, entry.tag, entry.version, fields]


def _to_wire(value: object, where: str, registry: MessageRegistry, depth: int) -> object:
    # Enum before int/str: IntEnum and StrEnum members are ints and strs too.
    if isinstance(value, enum.Enum):
        return _to_wire(value.value, where, registry, depth)
    if value is None or type(value) in (bool, float):
        return value
    if type(value) is int:
        if not _MSGPACK_INT_MIN <= value <= _MSGPACK_INT_MAX:
            raise ValueError(f"{where}={value}: outside msgpack's 64-bit integer range")
        return value
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{where}: string is not encodable as UTF-8: {exc.reason}") from exc
        return value
    if isinstance(value, Decimal):
        text = str(value)
        if not value.is_finite():
            raise ValueError(f"{where}={text}: only finite decimals can be encoded")
        if len(text) > MAX_DECIMAL_CHARS:
            raise ValueError(f"{where}: decimal text exceeds {MAX_DECIMAL_CHARS} characters")
        return msgpack.ExtType(DECIMAL_EXT_CODE, text.encode("ascii"))
    if isinstance(value, Message):
        return _frame_of(value, registry, depth + 1)
    if isinstance(value, tuple):
        return [_to_wire(item, f"{where}[{i}]", registry, depth) for i, item in enumerate(value)]
    raise TypeError(f"{where}: cannot encode a {type(value).__name__}")


def _decode_frame(frame: object, registry: MessageRegistry, depth: int) -> Message:
    if not isinstance(frame, list) or len(frame) != 4:
        raise DecodeError(
            f"a frame is a 4-element array [format, tag, type_version, fields], "
            f"got {_describe(frame)}"
        )
    format_version, tag, type_version, fields = frame
    if type(format_version) is not int or format_version != FORMAT_VERSION:
        raise DecodeError(
            f"unsupported format version {_show(format_version)} "
            f"(this decoder reads version {FORMAT_VERSION})"
        )
    if type(tag) is not str:
        raise DecodeError(f"message tag must be a string, got {_describe(tag)}")
    entry = registry._entry_for_tag(tag)
    if entry is None:
        raise DecodeError(f"unknown message tag {_show(tag)}")
    name = entry.cls.__name__
    if type(type_version) is not int or type_version < 1:
        raise DecodeError(f"{tag}: type version must be a positive int, got {_show(type_version)}")
    if type_version > entry.version:
        raise DecodeError(
            f"{tag}: type version {type_version} of {name} is newer than "
            f"the registered version {entry.version}"
        )
    if not isinstance(fields, dict):
        raise DecodeError(f"{tag}: {name} fields must be a map, got {_describe(fields)}")
    kwargs: dict[str, object] = {}
    for field, raw in fields.items():
        if type(field) is not str:
            raise DecodeError(f"{tag}: {name} field names must be strings, got {_show(field)}")
        converter = entry.converters.get(field)
        if converter is None:
            raise DecodeError(f"{tag}: unknown field {name}.{_show_name(field)}")
        try:
            kwargs[field] = converter(raw, depth)
        except _Invalid as exc:
            raise DecodeError(f"{tag}: {name}.{field}: {exc}") from exc
    missing = sorted(entry.required.difference(kwargs))
    if missing:
        listed = ", ".join(f"{name}.{field}" for field in missing)
        raise DecodeError(f"{tag}: missing required field(s) {listed}")
    try:
        return entry.construct(**kwargs)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise DecodeError(f"{tag}: invalid {name}: {exc}") from exc


def _compile_hint(hint: object, registry: MessageRegistry) -> _Converter:
    if hint is Decimal:
        return _to_decimal
    if hint is bool:
        return _to_bool
    if hint is int:
        return _to_int
    if hint is float:
        return _to_float
    if hint is str:
        return _to_str
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_converter(hint)
    if isinstance(hint, type) and issubclass(hint, Message):
        return _message_converter(hint, registry)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [arg for arg in args if arg is not type(None)]
        if len(args) == 2 and len(present) == 1:
            return _optional_converter(_compile_hint(present[0], registry))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _tuple_converter(_compile_hint(args[0], registry))
    raise TypeError(f"the codec cannot decode fields of type {hint!r}")


def _to_decimal(value: object, depth: int) -> object:
    if type(value) is Decimal:
        return value
    if isinstance(value, _BadDecimal):
        raise _Invalid(value.reason)
    raise _Invalid(f"expected a Decimal ext, got {_describe(value)}")


def _to_bool(value: object, depth: int) -> object:
    if type(value) is bool:
        return value
    raise _Invalid(f"expected a bool, got {_describe(value)}")


def _to_int(value: object, depth: int) -> object:
    if type(value) is int:
        return value
    raise _Invalid(f"expected an int, got {_describe(value)}")


def _to_float(value: object, depth: int) -> object:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _Invalid(f"expected a float, got {_describe(value)}")


def _to_str(value: object, depth: int) -> object:
    if type(value) is str:
        return value
    raise _Invalid(f"expected a str, got {_describe(value)}")


def _enum_converter(kind: type[enum.Enum]) -> _Converter:
    members = {(type(member.value), member.value): member for member in kind}

    def to_enum(value: object, depth: int) -> object:
        try:
            return members[type(value), value]
        except (KeyError, TypeError):
            raise _Invalid(f"{_show(value)} is not a {kind.__name__} value") from None

    return to_enum


def _optional_converter(inner: _Converter) -> _Converter:
    def to_optional(value: object, depth: int) -> object:
        return None if value is None else inner(value, depth)

    return to_optional


def _tuple_converter(item: _Converter) -> _Converter:
    def to_tuple(value: object, depth: int) -> object:
        if not isinstance(value, list):
            raise _Invalid(f"expected an array, got {_describe(value)}")
        converted = []
        for index, element in enumerate(value):
            try:
                converted.append(item(element, depth))
            except _Invalid as exc:
                raise _Invalid(f"item {index}: {exc}") from exc
        return tuple(converted)

    return to_tuple


def _message_converter(kind: type[Message], registry: MessageRegistry) -> _Converter:
    def to_message(value: object, depth: int) -> object:
        if depth >= _MAX_NESTING:
            raise _Invalid(f"messages nest deeper than {_MAX_NESTING}")
        try:
            message = _decode_frame(value, registry, depth + 1)
        except DecodeError as exc:
            raise _Invalid(f"nested frame: {exc}") from exc
        if not isinstance(message, kind):
            raise _Invalid(f"expected a {kind.__name__} frame, got {type(message).__name__}")
        return message

    return to_message


def _ext_hook(code: int, data: bytes) -> object:
    if code != DECIMAL_EXT_CODE:
        return msgpack.ExtType(code, data)
    if len(data) > MAX_DECIMAL_CHARS:
        return _BadDecimal(f"Decimal ext of {len(data)} bytes exceeds {MAX_DECIMAL_CHARS}")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return _BadDecimal(f"Decimal ext {_show(data)} is not ASCII")
    if _DECIMAL_SYNTAX.fullmatch(text):
        return Decimal(text)
    if _NON_FINITE_SYNTAX.fullmatch(text):
        return _BadDecimal(f"Decimal ext {text!r} is not finite")
    return _BadDecimal(f"Decimal ext {_show(text)} is not a decimal number")


def _unique_map(pairs: list[tuple[object, object]]) -> dict[object, object]:
    # msgpack keeps the last of duplicate keys; two readers disagreeing about
    # which one counts is how smuggling bugs start, so refuse them outright.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[object] = set()
        for key, _ in pairs:
            if key in seen:
                raise DecodeError(f"duplicate map key {_show(key)}")
            seen.add(key)
    return result


_WIRE_NAMES: Final[Mapping[type, str]] = {
    type(None): "nil",
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    bytes: "bin",
    list: "array",
    dict: "map",
    Decimal: "Decimal ext",
    _BadDecimal: "invalid Decimal ext",
}


def _describe(value: object) -> str:
    if isinstance(value, msgpack.ExtType):
        return f"ext type {value.code}"
    if isinstance(value, list):
        return f"array of {len(value)}"
    return _WIRE_NAMES.get(type(value), type(value).__name__)


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show_name(name: str) -> str:
    return name if name.isidentifier() else _show(name)


def _default_registry() -> MessageRegistry:
    registry = MessageRegistry()
    # Tags are part of the wire format: never change one, only add new ones.
    for cls, tag in (
        (Quote, "quote"),
        (ExecutionDecision, "execution_decision"),
        (SubmitOrder, "submit_order"),
        (CancelOrder, "cancel_order"),
        (ModifyOrder, "modify_order"),
        (QueryOrder, "query_order"),
        (CancelAllOrders, "cancel_all_orders"),
        (OrderDenied, "order_denied"),
        (OrderSubmitted, "order_submitted"),
        (OrderAccepted, "order_accepted"),
        (OrderRejected, "order_rejected"),
        (OrderFilled, "order_filled"),
        (OrderCanceled, "order_canceled"),
        (OrderExpired, "order_expired"),
        (OrderModified, "order_modified"),
        (CancelRejected, "cancel_rejected"),
        (ModifyRejected, "modify_rejected"),
        (OrderStatusReport, "order_status_report"),
        (PositionSnapshot, "position_snapshot"),
        (TradingStateChanged, "trading_state_changed"),
        *EXECUTION_MESSAGES,
        *ALGO_MESSAGES,
        *MARKET_MESSAGES,
    ):
        registry.register(cls, tag=tag)
    return registry


DEFAULT_REGISTRY: Final = _default_registry()


def encode(message: Message, registry: MessageRegistry = DEFAULT_REGISTRY) -> bytes:
    """Refuses (TypeError/ValueError) anything ``decode`` would not read back.

    Checking on the way out means a journal never holds a frame that cannot
    be replayed, and the error names the field while the sender still knows it.
    """
    data: bytes = msgpack.packb(_frame_of(message, registry, 0), use_bin_type=True)
    if len(data) > MAX_FRAME_BYTES:
        raise ValueError(
            f"{type(message).__name__}: frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}"
        )
    return data


def decode(
    data: bytes | bytearray | memoryview,
    registry: MessageRegistry = DEFAULT_REGISTRY,
) -> Message:
    """Treats ``data`` as hostile: every flaw is a ``DecodeError``, nothing else.

    One exception type lets a reader drop a bad frame with a single clause
    instead of guessing which of msgpack's, Decimal's or a constructor's
    errors might escape. Exactly one frame is read; leftover bytes are an
    error because they mean the framing around us is broken.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode() needs bytes, not {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size == 0:
        raise DecodeError("empty input: expected one msgpack frame")
    if size > MAX_FRAME_BYTES:
        raise DecodeError(f"input of {size} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit")
    try:
        frame = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            use_list=True,
            ext_hook=_ext_hook,
            object_pairs_hook=_unique_map,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError(f"{len(exc.extra)} trailing byte(s) after one complete frame") from exc
    except msgpack.StackError as exc:
        raise DecodeError("msgpack nesting is too deep") from exc
    except msgpack.FormatError as exc:
        raise DecodeError("not msgpack: reserved or invalid type byte") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError(f"a msgpack string is not valid UTF-8: {exc.reason}") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError(f"truncated or malformed msgpack: {exc}") from exc
    return _decode_frame(frame, registry, 0)
