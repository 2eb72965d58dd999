"""The OMS snapshot format: checked readers of plain data, and completed orders as records.

``OmsState.snapshot()`` is plain data (dicts with string keys, lists,
strings, ints, None and bytes) that packs as msgpack as it is; each piece
of the state writes and reads its own part (``PositionBook.to_plain`` /
``from_plain``, ``OmsState``'s orders and metrics) with the readers here,
which check every value and say where a malformed one sits.

Completed orders, the bulk of a busy node's state, are kept in version 2
snapshots as opaque records. A restart restores up to ``completed_capacity``
finished orders, and decoding and validating their messages used to be
nearly all of its time, although few of them are ever looked at again.
Each is one msgpack row of plain values (its messages are rows too, not
codec frames), restored as a :class:`StoredOrder` that ``OmsState`` keeps in
its completed-order LRU and decodes into an order the first time it looks
the order up. That trust is given only to records written with this
build's schema (the layouts and every enum's values); others are decoded at
restore, so a build mismatch fails there rather than in the middle of
trading.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import enum
import operator
import types
import typing
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Generic, NamedTuple, TypeVar, cast

import msgpack

from tradenode._exceptions import OmsSnapshotError
from tradenode.messages._codec import decode as _decode_message
from tradenode.messages._enums import DenialCode, OrderStatus
from tradenode.messages._messages import Message, OrderFilled, SubmitOrder

# The message codec's bytes (``tradenode.messages.encode``), written by the OMS's
# journal encoder: one C pack per message instead of the codec's walk of each
# field, ~5x less of the packer's GIL time per hot order's message, and pinned
# byte for byte against the codec for every registered type by that module's tests.
from ._oms_entries import _encode_message

__all__ = [
    "OMS_SNAPSHOT_VERSION",
    "READABLE_SNAPSHOT_VERSIONS",
    "RECORD_FIELDS",
    "RECORD_NAMES",
    "SCHEMA",
    "DeferredMessage",
    "DeferredRecord",
    "PackedEntry",
    "PackedMap",
    "RecordMemo",
    "StoredOrder",
    "checked_record",
    "completed_entry",
    "encode_record",
    "execution",
    "hot_entry",
    "kind_name",
    "memo_in_use",
    "message",
    "optional",
    "order_from_plain",
    "order_to_plain",
    "pack_default",
    "pack_item",
    "read_completed",
    "read_decimal",
    "read_fraction",
    "remembering",
    "strings",
    "typed",
]

#: The layout of ``OmsState.snapshot()``; ``OmsState.restore()`` also reads version 1
#: (completed orders as plain maps, decoded at restore) and refuses any other.
OMS_SNAPSHOT_VERSION: Final = 2
READABLE_SNAPSHOT_VERSIONS: Final = (1, OMS_SNAPSHOT_VERSION)


# Reading plain data -------------------------------------------------------------------

_T = TypeVar("_T")


def kind_name(value: object) -> str:
    return type(value).__name__


def typed(value: object, kind: type[_T], where: str) -> _T:
    # bool is an int subclass, and never what a count or a timestamp means.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where}: expected {kind.__name__}, got {kind_name(value)}")
    return value


def optional(value: object, kind: type[_T], where: str) -> _T | None:
    return None if value is None else typed(value, kind, where)


def strings(value: object, count: int, where: str) -> list[str]:
    items = typed(value, list, where)
    if len(items) != count:
        raise ValueError(f"{where}: expected {count} items, got {len(items)}")
    return [typed(item, str, where) for item in items]


def execution(item: object, index: int) -> tuple[str, str, str]:
    # One per retained fill: the common case is checked without building messages.
    if type(item) is list and len(item) == 3:
        venue, execution_id, owner = item
        if type(venue) is str and type(execution_id) is str and type(owner) is str:
            return venue, execution_id, owner
    venue, execution_id, owner = strings(item, 3, f"executions[{index}]")
    return venue, execution_id, owner


def read_decimal(value: object, where: str) -> Decimal:
    number = Decimal(typed(value, str, where))
    if not number.is_finite():
        raise ValueError(f"{where}: {value!r} is not a finite decimal")
    return number


def read_fraction(value: object, where: str) -> Fraction:
    return Fraction(typed(value, str, where))


def message(value: object, kind: type[_T], where: str) -> _T:
    message = _decode_message(typed(value, bytes, where))
    return typed(message, kind, where)


# Orders ---------------------------------------------------------------------------------

#: An order's state: every slot of ``OmsState``'s order record, in this order, with its
#: type. Both forms below list an order's values in this order.
RECORD_FIELDS: Final[tuple[tuple[str, object], ...]] = (
    ("order", SubmitOrder),
    ("status", OrderStatus),
    ("resume_status", OrderStatus | None),
    ("filled", Decimal),
    ("fill_notional", Decimal),
    ("commission", Decimal),
    ("fills", list[tuple[int, OrderFilled]]),
    ("venue_order_id", str | None),
    ("created_ns", int),
    ("submitted_ns", int | None),
    ("accepted_ns", int | None),
    ("first_fill_ns", int | None),
    ("last_update_ns", int),
    ("replacement_of", str | None),
    ("replaced_by", str | None),
    ("carried_at_link", Decimal),
    ("predecessors_filled", Decimal),
    ("denial_code", DenialCode | None),
    ("rejection_code", str | None),
    ("reason", str | None),
)
RECORD_NAMES: Final = tuple(name for name, _ in RECORD_FIELDS)


def order_to_plain(values: Sequence[Any]) -> dict[str, Any]:
    """An order's values (in ``RECORD_NAMES`` order) as a map: a hot order, or a version 1
    completed one. Messages are the bytes of the message codec."""
    return _order_map(
        values,
        _encode_message(values[_ORDER_AT]),
        [_encode_message(fill) for _, fill in values[_FILLS_AT]],
    )


def _order_map(
    values: Sequence[Any], order: object, fills: list[Any], kind: type[dict[str, Any]] = dict
) -> dict[str, Any]:
    """:func:`order_to_plain`'s map, with the order's and its fills' messages as given
    (their bytes, or :class:`DeferredMessage`s that pack as those bytes), as a ``kind``.

    One per order new or changed since an incremental snapshot, on the OMS's
    thread: the values are unpacked and converted in ``RECORD_NAMES`` order
    in one expression, and an enum's value read as ``_value_`` (what its
    ``value`` property returns, without the property's call).
    """
    (
        _,
        status,
        resume_status,
        filled,
        fill_notional,
        commission,
        order_fills,
        venue_order_id,
        created_ns,
        submitted_ns,
        accepted_ns,
        first_fill_ns,
        last_update_ns,
        replacement_of,
        replaced_by,
        carried_at_link,
        predecessors_filled,
        denial_code,
        rejection_code,
        reason,
    ) = values
    converted = (
        order,
        status._value_,
        None if resume_status is None else resume_status._value_,
        str(filled),
        str(fill_notional),
        str(commission),
        [[sequence, message] for (sequence, _), message in zip(order_fills, fills, strict=True)],
        venue_order_id,
        created_ns,
        submitted_ns,
        accepted_ns,
        first_fill_ns,
        last_update_ns,
        replacement_of,
        replaced_by,
        str(carried_at_link),
        str(predecessors_filled),
        None if denial_code is None else denial_code._value_,
        rejection_code,
        reason,
    )
    return kind(zip(RECORD_NAMES, converted, strict=True))


def order_from_plain(value: object, where: str) -> list[Any]:
    """The values (in ``RECORD_NAMES`` order) of an order written by :func:`order_to_plain`."""
    plain = typed(value, dict, where)
    resume = plain["resume_status"]
    denial = plain["denial_code"]
    # Read in this order, so the first of several faults is the one named.
    values = {
        "order": message(plain["order"], SubmitOrder, f"{where}.order"),
        "created_ns": typed(plain["created_ns"], int, f"{where}.created_ns"),
        "replacement_of": optional(plain["replacement_of"], str, f"{where}.replacement_of"),
        "carried_at_link": read_decimal(plain["carried_at_link"], f"{where}.carried_at_link"),
        "status": OrderStatus(plain["status"]),
        "resume_status": None if resume is None else OrderStatus(resume),
        "filled": read_decimal(plain["filled"], f"{where}.filled"),
        "fill_notional": read_decimal(plain["fill_notional"], f"{where}.fill_notional"),
        "commission": read_decimal(plain["commission"], f"{where}.commission"),
        "fills": _fills_from_plain(plain["fills"], f"{where}.fills"),
        "venue_order_id": optional(plain["venue_order_id"], str, f"{where}.venue_order_id"),
        "submitted_ns": optional(plain["submitted_ns"], int, f"{where}.submitted_ns"),
        "accepted_ns": optional(plain["accepted_ns"], int, f"{where}.accepted_ns"),
        "first_fill_ns": optional(plain["first_fill_ns"], int, f"{where}.first_fill_ns"),
        "last_update_ns": typed(plain["last_update_ns"], int, f"{where}.last_update_ns"),
        "replaced_by": optional(plain["replaced_by"], str, f"{where}.replaced_by"),
        "predecessors_filled": read_decimal(
            plain["predecessors_filled"], f"{where}.predecessors_filled"
        ),
        "denial_code": None if denial is None else DenialCode(denial),
        "rejection_code": optional(plain["rejection_code"], str, f"{where}.rejection_code"),
        "reason": optional(plain["reason"], str, f"{where}.reason"),
    }
    return [values[name] for name in RECORD_NAMES]


def _fills_from_plain(value: object, where: str) -> list[tuple[int, OrderFilled]]:
    fills = []
    for index, item in enumerate(typed(value, list, where)):
        at = f"{where}[{index}]"
        pair = typed(item, list, at)
        if len(pair) != 2:
            raise ValueError(f"{at}: expected [sequence, fill]")
        fills.append((typed(pair[0], int, at), message(pair[1], OrderFilled, at)))
    return fills


# Completed orders as records (version 2) ---------------------------------------------

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[Any], Any]
_M = TypeVar("_M", bound=Message)


def _same(value: Any) -> Any:
    return value


def _enum_value(member: enum.Enum) -> Any:
    return member.value


def _exactly(kind: type) -> _Decoder:
    def check(value: Any) -> Any:
        # type(), not isinstance(): a bool is never what an int field means.
        if type(value) is not kind:
            raise ValueError(f"expected {kind.__name__}, got {kind_name(value)}")
        return value

    return check


def _finite_decimal(value: Any) -> Decimal:
    if type(value) is not str:
        raise ValueError(f"expected a decimal string, got {kind_name(value)}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal")
    return number


def _or_none(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else convert(value)

    return optional


def _field_codec(hint: object) -> tuple[str, _Encoder, _Decoder]:
    """The kind a field is recorded as, and how its value becomes plain data and back."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        present = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(present) != 1 or len(typing.get_args(hint)) != 2:
            raise TypeError(f"cannot record fields of type {hint!r}")
        hint, optional = present[0], True
    kind: str
    encode: _Encoder
    decode: _Decoder
    if hint is Decimal:
        kind, encode, decode = "decimal", str, _finite_decimal
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        kind, encode, decode = f"enum {hint.__name__}", _enum_value, hint
    elif isinstance(hint, type) and hint in (str, int, bool):
        kind, encode, decode = hint.__name__, _same, _exactly(hint)
    else:
        raise TypeError(f"cannot record fields of type {hint!r}")
    if optional:
        return f"{kind}?", _or_none(encode), _or_none(decode)
    return kind, encode, decode


def _enums_in(hints: Iterable[object]) -> set[type[enum.Enum]]:
    return {
        arg
        for hint in hints
        for arg in (hint, *typing.get_args(hint))
        if isinstance(arg, type) and issubclass(arg, enum.Enum)
    }


def _row_function(layout: Sequence[Sequence[str]]) -> Callable[[Any], list[Any]]:
    """A row of a message with these ``[field, kind]``\\s, as one list expression.

    Packing a snapshot encodes every order completed since the last one,
    its order's row and its fills', on the packer's thread and holding the
    GIL; a call per field (``_MessageRows.checked_row``) was half of that.
    Written here per class (as ``dataclasses`` writes ``__init__``): plain
    attribute reads, ``str`` of a decimal, an enum member's ``_value_`` (what
    its ``value`` property returns), ``None`` kept where the kind allows it.
    """
    items = []
    for name, kind in layout:
        if not name.isidentifier():  # a dataclass field always is; the source relies on it
            raise TypeError(f"cannot record a field named {name!r}")
        base = kind.removesuffix("?")
        if base == "decimal":
            item = f"str(message.{name})"
        elif base.startswith("enum "):
            item = f"message.{name}._value_"
        elif base in ("str", "int", "bool"):
            item = f"message.{name}"
        else:
            raise TypeError(f"cannot record fields of kind {kind!r}")
        if kind.endswith("?") and item != f"message.{name}":
            item = f"None if message.{name} is None else {item}"
        items.append(item)
    namespace: dict[str, Any] = {}
    exec(f"def row(message):\n    return [{', '.join(items)}]\n", namespace)
    row: Callable[[Any], list[Any]] = namespace["row"]
    return row


class _MessageRows(Generic[_M]):
    """One message class recorded as a row of plain values, in its fields' order."""

    __slots__ = ("_decoders", "_encoders", "_get", "_required", "cls", "enums", "layout", "row")

    def __init__(self, cls: type[_M]) -> None:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cast(Any, cls))
        names = tuple(field.name for field in fields)
        codecs = [_field_codec(hints[name]) for name in names]
        self.cls = cls
        self.layout = [[name, kind] for name, (kind, _, _) in zip(names, codecs, strict=True)]
        self.enums = _enums_in(hints[name] for name in names)
        self._encoders = tuple(encode for _, encode, _ in codecs)
        self._decoders = {name: decode for name, (_, _, decode) in zip(names, codecs, strict=True)}
        self._get = operator.attrgetter(*names)
        self.row: Callable[[_M], list[Any]] = _row_function(self.layout)
        """The message's row: one expression written for the class's own fields."""
        self._required = frozenset(
            field.name
            for field in fields
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )

    def checked_row(self, message: _M) -> list[Any]:
        """The row, field by field through each field's encoder: what :attr:`row` is
        written from (and tested against)."""
        return [
            encode(value) for encode, value in zip(self._encoders, self._get(message), strict=True)
        ]

    def reader(self, layout: object, where: str) -> Callable[[Any], _M]:
        """Reads rows recorded with ``layout`` (``[[field, kind], ...]``, maybe another build's)."""
        cls = self.cls
        names: list[str] = []
        for item in typed(layout, list, where):
            pair = typed(item, list, where)
            if len(pair) != 2:
                raise ValueError(f"{where}: expected [field, kind]")
            name = typed(pair[0], str, where)
            if name not in self._decoders:
                raise ValueError(f"{where}: {cls.__name__} has no field {name!r} to read")
            if name in names:
                raise ValueError(f"{where}: {cls.__name__}.{name} appears twice")
            names.append(name)
        missing = sorted(self._required.difference(names))
        if missing:
            raise ValueError(f"{where}: {cls.__name__} rows lack {', '.join(missing)}")
        fields = tuple((name, self._decoders[name]) for name in names)
        count = len(fields)

        def read(row: Any) -> _M:
            if type(row) is not list or len(row) != count:
                raise ValueError(f"a {cls.__name__} is a row of {count} values")
            values: dict[str, Any] = {}
            for (name, decode), value in zip(fields, row, strict=True):
                try:
                    values[name] = decode(value)
                except (ValueError, TypeError, ArithmeticError) as exc:
                    raise ValueError(f"{cls.__name__}.{name}: {exc}") from exc
            # The constructor validates every field, as it does for any message.
            return cls(**values)

        return read


_ORDER_ROWS: Final = _MessageRows(SubmitOrder)
_FILL_ROWS: Final = _MessageRows(OrderFilled)

_ROW_KINDS: Final = {"order": "row SubmitOrder", "fills": "[int, row OrderFilled] list"}
_SCALAR_CODECS: Final = {
    name: _field_codec(hint) for name, hint in RECORD_FIELDS if name not in _ROW_KINDS
}


def _fill_rows(fills: list[tuple[int, OrderFilled]]) -> list[list[Any]]:
    return [[sequence, _FILL_ROWS.checked_row(fill)] for sequence, fill in fills]


def _record_encoder(name: str) -> _Encoder:
    if name == "order":
        return _ORDER_ROWS.checked_row
    if name == "fills":
        return _fill_rows
    return _SCALAR_CODECS[name][1]


_CHECKED_ENCODERS: Final = tuple(_record_encoder(name) for name in RECORD_NAMES)


def encode_record(values: Sequence[Any]) -> bytes:
    """A completed order's record: its values (in ``RECORD_NAMES`` order) as one msgpack row.

    One expression, as :func:`_row_function` writes a message's row and for
    the same reason (the packer encodes every order completed since the
    last snapshot); :func:`checked_record` is what it is written from, each
    value through its field's encoder (``_SCALAR_CODECS``), and the tests
    hold the two to the same bytes.
    """
    (
        order,
        status,
        resume_status,
        filled,
        fill_notional,
        commission,
        fills,
        venue_order_id,
        created_ns,
        submitted_ns,
        accepted_ns,
        first_fill_ns,
        last_update_ns,
        replacement_of,
        replaced_by,
        carried_at_link,
        predecessors_filled,
        denial_code,
        rejection_code,
        reason,
    ) = values
    fill_row = _FILL_ROWS.row
    record: bytes = msgpack.packb(
        [
            _ORDER_ROWS.row(order),
            status._value_,
            None if resume_status is None else resume_status._value_,
            str(filled),
            str(fill_notional),
            str(commission),
            [[sequence, fill_row(fill)] for sequence, fill in fills],
            venue_order_id,
            created_ns,
            submitted_ns,
            accepted_ns,
            first_fill_ns,
            last_update_ns,
            replacement_of,
            replaced_by,
            str(carried_at_link),
            str(predecessors_filled),
            None if denial_code is None else denial_code._value_,
            rejection_code,
            reason,
        ]
    )
    return record


def checked_record(values: Sequence[Any]) -> bytes:
    """:func:`encode_record`'s bytes, each value through its field's own encoder."""
    row = [encode(value) for encode, value in zip(_CHECKED_ENCODERS, values, strict=True)]
    record: bytes = msgpack.packb(row, use_bin_type=True)
    return record


def _schema() -> dict[str, Any]:
    enums: set[type[enum.Enum]] = {OrderStatus, DenialCode, *_ORDER_ROWS.enums, *_FILL_ROWS.enums}
    return {
        "order": [
            [name, _SCALAR_CODECS[name][0] if name in _SCALAR_CODECS else _ROW_KINDS[name]]
            for name in RECORD_NAMES
        ],
        SubmitOrder.__name__: _ORDER_ROWS.layout,
        OrderFilled.__name__: _FILL_ROWS.layout,
        "enums": {
            kind.__name__: [member.value for member in kind]
            for kind in sorted(enums, key=lambda kind: kind.__name__)
        },
    }


#: What decides how a record reads back; written into every snapshot, compared on restore.
SCHEMA: Final = _schema()


class _RecordReader:
    """Decodes the completed-order records of snapshots written with one schema."""

    __slots__ = ("_decoders", "_id_at")

    def __init__(self, schema: object) -> None:
        plain = typed(schema, dict, "schema")
        names = []
        for item in typed(plain["order"], list, "schema.order"):
            pair = typed(item, list, "schema.order")
            if len(pair) != 2:
                raise ValueError("schema.order: expected [field, kind]")
            names.append(pair[0])
        if names != list(RECORD_NAMES):
            raise ValueError(
                f"schema.order: completed orders were recorded as {names}, "
                f"this build reads {list(RECORD_NAMES)}"
            )
        order_layout = plain[SubmitOrder.__name__]
        read_order = _ORDER_ROWS.reader(order_layout, "schema.SubmitOrder")
        read_fill = _FILL_ROWS.reader(plain[OrderFilled.__name__], "schema.OrderFilled")
        # reader() has checked the layout, and that it has this required field.
        self._id_at = [name for name, _ in order_layout].index("client_order_id")

        def read_fills(value: Any) -> list[tuple[int, OrderFilled]]:
            fills = []
            for item in typed(value, list, "fills"):
                if type(item) is not list or len(item) != 2 or type(item[0]) is not int:
                    raise ValueError("a fill is [sequence, row]")
                fills.append((item[0], read_fill(item[1])))
            return fills

        special: dict[str, _Decoder] = {"order": read_order, "fills": read_fills}
        self._decoders = tuple(
            (name, special[name] if name in special else _SCALAR_CODECS[name][2])
            for name in RECORD_NAMES
        )

    def row(self, client_order_id: str, status: str, record: bytes) -> list[Any]:
        """The record unpacked, once it is known to be its entry's; ``ValueError`` if not."""
        try:
            row = msgpack.unpackb(record, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ValueError(f"the record is not msgpack: {exc}") from exc
        if type(row) is not list or len(row) != len(self._decoders):
            raise ValueError(f"a record is a row of {len(self._decoders)} values")
        order = row[0]
        if type(order) is not list or len(order) <= self._id_at:
            raise ValueError("order: not a SubmitOrder row")
        if order[self._id_at] != client_order_id:
            raise ValueError(f"the record is of order {order[self._id_at]!r:.60}")
        if row[1] != status:
            raise ValueError(f"the record says {row[1]!r:.60}, its entry {status}")
        return row

    def value(self, row: list[Any], index: int) -> Any:
        name, decode = self._decoders[index]
        try:
            return decode(row[index])
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValueError(f"{name}: {exc}") from exc

    def values(self, client_order_id: str, status: str, record: bytes) -> list[Any]:
        """The order's values in ``RECORD_NAMES`` order; ``ValueError`` if damaged."""
        row = self.row(client_order_id, status, record)
        return [self.value(row, index) for index in range(len(row))]


_READER: Final = _RecordReader(SCHEMA)
_STATUS_VALUES: Final = frozenset(status.value for status in OrderStatus)
_FILLS_AT: Final = RECORD_NAMES.index("fills")
_ORDER_AT: Final = RECORD_NAMES.index("order")


class StoredOrder:
    """A completed order restored from a snapshot, still as its record.

    ``OmsState`` keeps it in its completed-order LRU in the order's place
    and decodes it (:meth:`values`) into an order the first time it looks
    the order up. :attr:`fills` decodes only the fills: forgetting the
    least recently used order, which every newly completed one does once
    the LRU is full, needs nothing else. Nothing changes a stored order,
    so its record stays what encoding it again would give (:meth:`entry`).
    """

    __slots__ = ("_fills", "client_order_id", "record", "status")

    def __init__(self, client_order_id: str, status: str, record: bytes) -> None:
        self.client_order_id = client_order_id
        self.status = status
        """The status's value, as the snapshot's entry gave it."""
        self.record = record
        self._fills: list[tuple[int, OrderFilled]] | None = None

    @property
    def fills_decoded(self) -> bool:
        return self._fills is not None

    @property
    def fills(self) -> list[tuple[int, OrderFilled]]:
        """The order's fills, decoded on first use; :class:`OmsSnapshotError` if damaged."""
        fills = self._fills
        if fills is None:
            try:
                row = _READER.row(self.client_order_id, self.status, self.record)
                fills = self._fills = _READER.value(row, _FILLS_AT)
            except ValueError as exc:
                raise self._damaged(exc) from exc
        return fills

    def values(self) -> list[Any]:
        """The order's values in ``RECORD_NAMES`` order; :class:`OmsSnapshotError` if damaged.

        Fills already decoded stay the very list they were decoded into.
        """
        try:
            row = _READER.row(self.client_order_id, self.status, self.record)
            return [
                self._fills
                if index == _FILLS_AT and self._fills is not None
                else _READER.value(row, index)
                for index in range(len(row))
            ]
        except ValueError as exc:
            raise self._damaged(exc) from exc

    def entry(self) -> list[Any]:
        """The snapshot entry it was restored from: ``[client_order_id, status, record]``."""
        return [self.client_order_id, self.status, self.record]

    def _damaged(self, exc: ValueError) -> OmsSnapshotError:
        return OmsSnapshotError(
            f"completed order {self.client_order_id} restored from a snapshot is damaged: {exc}"
        )


def hot_entry(client_order_id: str, values: Sequence[Any]) -> dict[str, Any]:
    """A hot order's snapshot entry: :func:`order_to_plain` of its values (a snapshot
    taken inside :func:`remembering` has :meth:`RecordMemo.hot_entries` make them)."""
    return order_to_plain(values)


def completed_entry(client_order_id: str, values: Sequence[Any]) -> list[Any]:
    """A decoded completed order's snapshot entry: ``[client_order_id, status, record]``
    (inside :func:`remembering`, :meth:`RecordMemo.completed_entries` makes them)."""
    return [client_order_id, values[1].value, encode_record(values)]


class DeferredRecord:
    """A completed order's record, encoded only when the snapshot is packed.

    Inside :func:`remembering` a changed completed order's entry holds one
    of these instead of its record's bytes: its values (immutable, the
    fills as a tuple) are taken on the OMS's thread, the encoding, the
    costly part, waits for :func:`pack_default` on the thread that packs,
    and is kept for the snapshots after (their entry is the same).
    """

    __slots__ = ("_record", "_values")

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = values
        self._record: bytes | None = None

    def encode(self) -> bytes:
        record = self._record
        if record is None:  # two packers may both encode it: the same bytes
            record = self._record = encode_record(self._values)
        return record


class DeferredMessage:
    """A hot order's message (the order, or one of its fills), encoded only when the
    snapshot is packed, once: the messages are immutable, and a hot order's entry
    that changed reuses those of its messages that did not (:class:`RecordMemo`)."""

    __slots__ = ("_encoded", "_message")

    def __init__(self, message: Message) -> None:
        self._message = message
        self._encoded: bytes | None = None

    def encode(self) -> bytes:
        encoded = self._encoded
        if encoded is None:  # two packers may both encode it: the same bytes
            encoded = self._encoded = _encode_message(self._message)
        return encoded


def pack_default(value: object) -> bytes:
    """msgpack's ``default`` for a snapshot taken inside :func:`remembering`: a
    :class:`DeferredRecord` packs as its record's bytes, a :class:`DeferredMessage`
    as its message's."""
    if type(value) is DeferredRecord or type(value) is DeferredMessage:
        return value.encode()
    raise TypeError(f"can not serialize {type(value).__name__!r} object")


class PackedEntry(list[Any]):
    """A completed order's entry made by :class:`RecordMemo`, which keeps its packed bytes.

    A plain list to anything that reads or packs it; :func:`pack_item` packs it
    once and keeps the bytes, so an entry shared by the next snapshots (an
    order unchanged since) costs their packer a lookup, not a packing. Safe
    because nothing changes an entry once made (the memo's rule), and the
    bytes are what ``msgpack`` gives for it: a snapshot is the same bytes.
    """

    __slots__ = ("packed",)

    def __init__(self, items: Iterable[Any]) -> None:
        super().__init__(items)
        self.packed: bytes | None = None


class PackedMap(dict[str, Any]):
    """A hot order's map made by :class:`RecordMemo`, which keeps its packed bytes
    (as :class:`PackedEntry` does, for the same reasons)."""

    __slots__ = ("packed",)

    def __init__(self, items: Iterable[tuple[str, Any]]) -> None:
        super().__init__(items)
        self.packed: bytes | None = None


def pack_item(packer: msgpack.Packer, item: Any) -> bytes:
    """``packer.pack(item)`` (an ``autoreset`` packer with ``default=pack_default``), kept
    on a :class:`PackedEntry` or :class:`PackedMap` and reused from there: what makes
    packing a snapshot cost the orders changed since the last one, not all of them."""
    kind = type(item)
    if kind is PackedEntry or kind is PackedMap:
        kept: bytes | None = item.packed
        if kept is None:  # two packers may both pack it: the same bytes
            kept = item.packed = packer.pack(item)
        return kept
    packed: bytes = packer.pack(item)
    return packed


_ValuesOf = Callable[[Any], Sequence[Any]]


class RecordMemo:
    """Orders' entries from one snapshot to the next: an incremental snapshot.

    Encoding every completed order's record was nearly all of a snapshot's
    time, on the OMS's thread, although a completed order seldom changes
    again. The memo keeps, per order, the values its entry was made from
    and hands the entry back while the order's values are the very same
    objects (identity, not equality: ``Decimal("1.0") == Decimal("1.00")``
    yet they encode differently); every value is immutable but the list of
    fills, whose items are compared too. A new or changed order's record is
    a :class:`DeferredRecord`, encoded when the snapshot is packed (with
    :func:`pack_default`), off the OMS's thread. The memo holds only what
    the latest snapshot used, so it never outgrows the completed-order LRU.
    Entries are shared between snapshots: what is built with it is only to
    be packed, never changed; they keep their packed bytes (:func:`pack_item`).

    :meth:`completed_entries` and :meth:`hot_entries` take a whole section
    at once: a snapshot looks at every order it holds (tens of thousands in
    a burst), and one loop without a call per order is what that look costs.

    Comparing an order's values still costs ~1 us per order, every order,
    every snapshot. A state that marks the ids of the orders it looks up
    (``looked_up``, see :meth:`marks`) lets the memo skip that for the rest:
    an order can change only through the order object a lookup returned
    (or a new object, which ``is`` tells apart), so one that is the same
    object and was not looked up since the last snapshot is unchanged.
    """

    __slots__ = (
        "_current",
        "_current_hot",
        "_marks",
        "_previous",
        "_previous_hot",
        "hits",
        "misses",
    )

    def __init__(self) -> None:
        # Per order: its object, the values its entry was made from (None for a
        # ``StoredOrder``), its fills' items then, and the entry.
        self._previous: dict[str, _Seen] = {}
        self._current: dict[str, _Seen] = {}
        self._previous_hot: dict[str, _HotSeen] = {}
        self._current_hot: dict[str, _HotSeen] = {}
        self._marks: set[str] | None = None
        self.hits = 0
        self.misses = 0

    def marks(self) -> set[str]:
        """A new set for the state to add the id of every order it looks up to, from the end
        of this snapshot to the next; handed back to :meth:`hot_entries` and
        :meth:`completed_entries` as ``looked_up``, it spares them the unmarked orders."""
        marks = self._marks = set()
        return marks

    def _trusted(self, looked_up: Container[str] | None) -> Container[str]:
        # Only the set this memo handed out after its previous snapshot covers the
        # whole time since (a state restored meanwhile, or marked for another memo,
        # gives another set or none): anything else, every order is compared.
        marks = self._marks
        if marks is not None and looked_up is marks:
            return marks
        return _EVERY_ORDER

    def hot_entries(
        self,
        orders: Iterable[tuple[str, Any]],
        values_of: _ValuesOf,
        looked_up: Container[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every hot order's map, in ``orders``' order: the previous snapshot's while the
        order's values are the same objects (as for a completed order's entry); else a new
        map whose messages are :class:`DeferredMessage`\\s, the previous ones where they
        are the same messages (an order in flight changes its status and fills, seldom its
        terms)."""
        previous = self._previous_hot.get
        current = self._current_hot
        marked = self._trusted(looked_up)
        is_ = operator.is_
        entries: list[dict[str, Any]] = []
        append = entries.append
        for client_order_id, tracked in orders:
            seen = previous(client_order_id)
            if seen is not None and seen[0] is tracked:
                if client_order_id not in marked:  # not looked up since
                    current[client_order_id] = seen
                    append(seen[3])
                    continue
                values = values_of(tracked)
                fills = values[_FILLS_AT]
                if (
                    len(seen.fills) == len(fills)
                    and all(map(is_, seen.values, values))
                    and all(map(is_, seen.fills, fills))
                ):
                    current[client_order_id] = seen
                    append(seen.plain)
                    continue
            else:
                values = values_of(tracked)
            append(self._new_hot(client_order_id, tracked, values, seen))
        return entries

    def _new_hot(
        self, client_order_id: str, tracked: object, values: Sequence[Any], seen: _HotSeen | None
    ) -> dict[str, Any]:
        fills = values[_FILLS_AT]
        order = values[_ORDER_AT]
        if seen is not None and seen.values[_ORDER_AT] is order:
            deferred_order = seen.order
        else:
            deferred_order = DeferredMessage(order)
        deferred_fills: list[DeferredMessage] = []
        for index, item in enumerate(fills):
            if seen is not None and index < len(seen.fills) and seen.fills[index] is item:
                deferred_fills.append(seen.deferred_fills[index])
            else:
                deferred_fills.append(DeferredMessage(item[1]))
        kept = tuple(values)
        plain = _order_map(kept, deferred_order, deferred_fills, PackedMap)
        self._current_hot[client_order_id] = _HotSeen(
            tracked, kept, tuple(fills), plain, deferred_order, tuple(deferred_fills)
        )
        return plain

    def completed_entries(
        self,
        orders: Iterable[tuple[str, Any]],
        values_of: _ValuesOf,
        looked_up: Container[str] | None = None,
    ) -> list[list[Any]]:
        """Every completed order's entry, in ``orders``' order: the previous snapshot's
        while the order's values are the same objects, else a new one whose record is a
        :class:`DeferredRecord`; a :class:`StoredOrder`'s is the one it was restored from
        (nothing changes it)."""
        previous = self._previous.get
        current = self._current
        marked = self._trusted(looked_up)
        is_ = operator.is_
        entries: list[list[Any]] = []
        append = entries.append
        made = 0  # entries not the previous snapshot's
        for client_order_id, tracked in orders:
            seen = previous(client_order_id)
            if seen is not None and seen[0] is tracked:
                if client_order_id not in marked or seen[1] is None:
                    # Not looked up since, or a stored order (nothing changes one).
                    current[client_order_id] = seen
                    append(seen[3])
                    continue
                values = values_of(tracked)
                kept_fills = seen[2]
                fills = values[_FILLS_AT]
                if (
                    len(kept_fills) == len(fills)
                    and all(map(is_, seen[1], values))
                    and all(map(is_, kept_fills, fills))
                ):
                    current[client_order_id] = seen
                    append(seen[3])
                    continue
                append(self._new_completed(client_order_id, tracked, values))
            elif type(tracked) is StoredOrder:
                seen = current[client_order_id] = (
                    tracked,
                    None,
                    (),
                    PackedEntry(tracked.entry()),
                )
                append(seen[3])
            else:
                append(self._new_completed(client_order_id, tracked, values_of(tracked)))
            made += 1
        self.hits += len(entries) - made
        return entries

    def _new_completed(
        self, client_order_id: str, tracked: object, values: Sequence[Any]
    ) -> list[Any]:
        self.misses += 1
        kept = tuple(values)
        frozen_fills = tuple(values[_FILLS_AT])
        frozen = (*kept[:_FILLS_AT], frozen_fills, *kept[_FILLS_AT + 1 :])
        entry = PackedEntry((client_order_id, values[1].value, DeferredRecord(frozen)))
        self._current[client_order_id] = (tracked, kept, frozen_fills, entry)
        return entry

    def turn(self) -> None:
        """A snapshot is done: keep what it used, forget the rest."""
        self._previous, self._current = self._current, {}
        self._previous_hot, self._current_hot = self._current_hot, {}


#: What :meth:`RecordMemo.completed_entries` made an order's entry from: the order
#: object, its values (None: a ``StoredOrder``), its fills' items then, the entry.
_Seen = tuple[object, tuple[Any, ...] | None, tuple[Any, ...], list[Any]]


class _HotSeen(NamedTuple):
    """What :meth:`RecordMemo.hot_entries` made a hot order's map from, and the map."""

    tracked: object
    values: tuple[Any, ...]
    fills: tuple[Any, ...]
    """The fills list's items when the map was made (the list itself changes)."""
    plain: dict[str, Any]
    order: DeferredMessage
    deferred_fills: tuple[DeferredMessage, ...]


def memo_in_use() -> RecordMemo | None:
    """The memo of the :func:`remembering` this thread is in, if any (``OmsState.snapshot``
    hands it whole sections)."""
    return _MEMO.get()


class _EveryOrder:
    """Marks that hold every id: ``RecordMemo`` compares every order's values."""

    __slots__ = ()

    def __contains__(self, client_order_id: object) -> bool:
        return True


_EVERY_ORDER: Final = _EveryOrder()


_MEMO: Final[contextvars.ContextVar[RecordMemo | None]] = contextvars.ContextVar(
    "tradenode_oms_record_memo", default=None
)


@contextlib.contextmanager
def remembering(memo: RecordMemo) -> Iterator[None]:
    """Within it (on this thread), snapshots reuse ``memo``'s entries of unchanged orders
    and leave the others' records to the packer (``msgpack``'s ``default=pack_default``)."""
    token = _MEMO.set(memo)
    try:
        yield
    finally:
        _MEMO.reset(token)
        memo.turn()


def read_completed(
    plain: Mapping[str, Any], *, lazy: bool, known: Callable[[str], bool]
) -> Iterator[tuple[str, StoredOrder | list[Any]]]:
    """A version 2 snapshot's completed orders, least recently used first: each a
    :class:`StoredOrder` when ``lazy`` and written with this build's schema, else its
    values decoded now (``ValueError`` naming the entry if one is damaged). ``known``
    says whether an id is already restored, which a snapshot must not repeat."""
    schema = plain["schema"]
    ours = schema == SCHEMA
    reader = _READER if ours else _RecordReader(schema)
    seen: set[str] = set()
    for index, item in enumerate(typed(plain["completed"], list, "completed")):
        where = f"completed[{index}]"
        if type(item) is not list or len(item) != 3:
            raise ValueError(f"{where}: expected [client_order_id, status, record]")
        client_order_id, status, record = item
        if type(client_order_id) is not str or type(record) is not bytes:
            raise ValueError(f"{where}: expected [client_order_id, status, record]")
        if type(status) is not str or status not in _STATUS_VALUES:
            raise ValueError(f"{where}: {status!r:.60} is not an order status")
        if client_order_id in seen or known(client_order_id):
            raise ValueError(f"{where}: {client_order_id} appears twice")
        seen.add(client_order_id)
        if lazy and ours:
            yield client_order_id, StoredOrder(client_order_id, status, record)
        else:
            try:
                values = reader.values(client_order_id, status, record)
            except ValueError as exc:
                raise ValueError(f"{where} ({client_order_id}): {exc}") from exc
            yield client_order_id, values
