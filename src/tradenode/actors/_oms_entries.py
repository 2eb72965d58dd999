"""What the order manager writes to its journal, and the bytes each entry becomes.

One :class:`JournalEntry` is one call the OMS made on its ``OmsState``
(``register``, ``mark_submitted``, ``apply`` ...) with the arguments it
passed, plus ``COUNTER`` entries for the client-order-id counters, which
live outside the state but must survive a restart so ids never repeat.
Replaying the entries in order through a fresh ``OmsState`` rebuilds the
same state (see ``_oms_replay``) if the journal records every *call*, in call
order and with the very ``ts_ns`` the call was given, whatever it returned:
an ignored report still moves its order in the completed-order LRU, and a
second reading of the clock puts other timestamps and latencies in the
replayed state. (A call that raised changed nothing and may be recorded or
not; replay ignores it the same way.)

Payloads are msgpack arrays ``[ENTRY_FORMAT_VERSION, kind, ts_ns, *fields]``
whose fields are fixed per kind (:data:`ENTRY_FIELDS`), so an entry is a
few bytes around its message and decoding needs no field names. Messages
are embedded as the bytes of the message codec (``tradenode.messages``),
which keeps its own versioning and its closed registry of classes. Prices
and counters travel as text: decimals must not round, and a counter can
reach 2**64, one past msgpack's largest integer.

Versioning rule: a reader refuses any ``ENTRY_FORMAT_VERSION`` it does not
know; a new version may change layouts, and the reader then decodes each
version it supports explicitly.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import threading
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgpack

from tradenode._exceptions import DecodeError
from tradenode.messages._algos import ParentProfile
from tradenode.messages._codec import (
    DECIMAL_EXT_CODE,
    DEFAULT_REGISTRY,
    MAX_DECIMAL_CHARS,
    MAX_FRAME_BYTES,
)
from tradenode.messages._codec import FORMAT_VERSION as MESSAGE_FORMAT_VERSION
from tradenode.messages._codec import decode as decode_message
from tradenode.messages._codec import encode as encode_message
from tradenode.messages._enums import DenialCode
from tradenode.messages._execution import CancelParentOrder, ParentCanceled, SubmitParentOrder
from tradenode.messages._messages import (
    CancelRejected,
    Message,
    ModifyRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatusReport,
    SubmitOrder,
)
from tradenode.messages._validation import (
    CLIENT_ORDER_ID_PATTERN,
    check_client_order_id,
    check_decimal,
    check_identifier,
)

from ._client_ids import MAX_COUNTER

__all__ = [
    "ENTRY_FIELDS",
    "ENTRY_FORMAT_VERSION",
    "MAX_ENTRY_BYTES",
    "EntryKind",
    "JournalEntry",
    "decode_entry",
    "encode_call",
    "encode_entry",
    "encode_message_call",
    "entry_to_dict",
    "message_to_dict",
]

ENTRY_FORMAT_VERSION: Final = 1

#: One message frame at most, plus the few identifiers and the reason around it.
MAX_ENTRY_BYTES: Final = MAX_FRAME_BYTES + 64 * 1024

_MAX_TS_NS: Final = (1 << 64) - 1
_COUNTER_TEXT: Final = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

#: The venue reports ``OmsState.apply`` acts on; anything else it would ignore.
_REPORT_TYPES: Final = (
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCanceled,
    OrderExpired,
    OrderModified,
    CancelRejected,
    ModifyRejected,
    OrderStatusReport,
)


#: What a PARENT entry may carry (see ``EntryKind.PARENT``).
_PARENT_TYPES: Final = (SubmitParentOrder, CancelParentOrder, ParentCanceled, ParentProfile)


class EntryKind(enum.Enum):
    """One kind per ``OmsState`` call the OMS makes, plus the id counter.

    Values are written to the journal: renaming a member is free, changing a
    value is a format change.
    """

    REGISTER = "register"
    """``register(order, ts_ns)``: the order intent, a ``SubmitOrder``."""
    DENIED = "denied"
    """``mark_denied(client_order_id, code, reason, ts_ns)``."""
    SUBMITTED = "submitted"
    """``mark_submitted(client_order_id, ts_ns)``."""
    PENDING_CANCEL = "pending_cancel"
    """``mark_pending_cancel(client_order_id, ts_ns)``."""
    PENDING_REPLACE = "pending_replace"
    """``mark_pending_replace(client_order_id, ts_ns)``."""
    LINK_REPLACEMENT = "link_replacement"
    """``link_replacement(client_order_id, message, ts_ns)``: old id, replacement order."""
    REPORT = "report"
    """``apply(message, ts_ns)``: an execution report from a venue."""
    MARK = "mark"
    """``mark(venue, symbol, price)``: the price unrealized PnL is measured against."""
    COUNTER = "counter"
    """The next client-order-id counter of ``strategy_id``; not a state call."""
    BALANCE_BASELINE = "balance_baseline"
    """``set_balance_baseline(venue, asset, quantity)``: what the venue account holds
    of ``asset`` that our fills do not explain (the position check's reference)."""
    VENUE_CURSOR = "venue_cursor"
    """``set_venue_cursor(venue, scope, cursor)``: how far the venue's history
    (executions, orders) has been read into the OMS."""
    ACCEPTANCE_WINDOW = "acceptance_window"
    """``set_acceptance_window(venue, seconds)``: how long after its deadline a
    request may still be accepted by the venue."""
    ARRIVAL = "arrival"
    """``set_arrival(client_order_id, price, ts_ns)``: the order's arrival price (the
    mid of the quote the OMS held when it registered the order), for execution
    quality; quotes are not journaled, so the price is."""
    PARENT = "parent"
    """A parent order's lifecycle, told by its message: ``SubmitParentOrder``
    (``register_parent``), ``CancelParentOrder`` (``move_parent`` to
    PENDING_CANCEL), ``ParentCanceled`` (``move_parent`` to its state),
    ``ParentProfile`` (``parents.learn``: the profile its algorithm learned)."""
    AUDIT = "audit"
    """An operator's action through the control API: ``who`` (the token's name,
    never the token), ``action``, ``detail`` (its arguments, JSON) and ``result``.
    No state call: replay counts it and changes nothing."""


#: The fields each kind carries, in payload order after ``[version, kind, ts_ns]``;
#: every other field of the entry is None.
ENTRY_FIELDS: Final[Mapping[EntryKind, tuple[str, ...]]] = {
    EntryKind.REGISTER: ("message",),
    EntryKind.DENIED: ("client_order_id", "code", "reason"),
    EntryKind.SUBMITTED: ("client_order_id",),
    EntryKind.PENDING_CANCEL: ("client_order_id",),
    EntryKind.PENDING_REPLACE: ("client_order_id",),
    EntryKind.LINK_REPLACEMENT: ("client_order_id", "message"),
    EntryKind.REPORT: ("message",),
    EntryKind.MARK: ("venue", "symbol", "price"),
    EntryKind.BALANCE_BASELINE: ("venue", "asset", "quantity"),
    EntryKind.COUNTER: ("strategy_id", "counter"),
    EntryKind.VENUE_CURSOR: ("venue", "scope", "cursor"),
    EntryKind.ACCEPTANCE_WINDOW: ("venue", "seconds"),
    EntryKind.ARRIVAL: ("client_order_id", "price"),
    EntryKind.PARENT: ("message",),
    EntryKind.AUDIT: ("who", "action", "detail", "result"),
}

_OPTIONAL_FIELDS: Final = (
    "message",
    "client_order_id",
    "code",
    "reason",
    "venue",
    "symbol",
    "asset",
    "quantity",
    "price",
    "strategy_id",
    "counter",
    "scope",
    "cursor",
    "seconds",
    "who",
    "action",
    "detail",
    "result",
)

#: A cursor's scope and value are an adapter's own text; bounded so an entry stays small.
MAX_CURSOR_CHARS: Final = 256

_KINDS_BY_VALUE: Final = {kind.value: kind for kind in EntryKind}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class JournalEntry:
    """One OMS state call; which fields are set depends on ``kind`` (:data:`ENTRY_FIELDS`).

    ``ts_ns`` is the ``ts_ns`` the OMS passed to the call (for ``MARK`` and
    ``COUNTER``, which take none, when the OMS made it). Construction
    refuses a missing, extra or ill-typed field with a ``ValueError``, so an
    entry that exists can be encoded and replayed.
    """

    kind: EntryKind
    ts_ns: int
    message: Message | None = None
    """REGISTER and LINK_REPLACEMENT: a ``SubmitOrder``; REPORT: an execution report."""
    client_order_id: str | None = None
    """The order a DENIED / SUBMITTED / PENDING_* entry marks; the replaced order of a link."""
    code: DenialCode | None = None
    reason: str | None = None
    venue: str | None = None
    symbol: str | None = None
    price: Decimal | None = None
    strategy_id: str | None = None
    counter: int | None = None
    asset: str | None = None
    quantity: Decimal | None = None
    """BALANCE_BASELINE: any sign (an account may hold less than our fills made)."""
    scope: str | None = None
    """VENUE_CURSOR: which of the venue's histories, in the adapter's words."""
    cursor: str | None = None
    """VENUE_CURSOR: the adapter's opaque position in that history."""
    seconds: Decimal | None = None
    """ACCEPTANCE_WINDOW: finite and >= 0."""
    who: str | None = None
    """AUDIT: the name of the token that authorised the action."""
    action: str | None = None
    """AUDIT: what was asked (``kill-switch``, ``add-venue``, ...)."""
    detail: str | None = None
    """AUDIT: the action's arguments as JSON text (secrets redacted)."""
    result: str | None = None
    """AUDIT: how it ended (``ok: ...`` or ``error: ...``)."""

    def __post_init__(self) -> None:
        # Hot on replay and on every journaled call: one lookup, then only this kind's fields.
        try:
            wanted, unwanted = _SPECS[self.kind]
        except (KeyError, TypeError):
            raise ValueError(f"JournalEntry.kind={self.kind!r}: must be an EntryKind") from None
        ts_ns = self.ts_ns
        if type(ts_ns) is not int or not 0 <= ts_ns <= _MAX_TS_NS:
            raise ValueError(
                f"JournalEntry({self.kind.value}).ts_ns={ts_ns!r}: must be integer "
                f"nanoseconds in [0, 2**64)"
            )
        for name in unwanted:
            if getattr(self, name) is not None:
                kind = self.kind.value
                raise ValueError(
                    f"JournalEntry({kind}).{name}={getattr(self, name)!r}: "
                    f"a {kind} entry has no {name}"
                )
        for name, check in wanted:
            value = getattr(self, name)
            if value is None:
                kind = self.kind.value
                raise ValueError(f"JournalEntry({kind}).{name}=None: a {kind} entry needs it")
            check(self, value)

    @property
    def order(self) -> SubmitOrder:
        """The ``SubmitOrder`` of a REGISTER or LINK_REPLACEMENT entry."""
        if not isinstance(self.message, SubmitOrder):
            raise TypeError(f"a {self.kind.value} entry carries no SubmitOrder")
        return self.message


def _check_message(entry: JournalEntry, value: object) -> None:
    if entry.kind is EntryKind.PARENT:
        if not isinstance(value, _PARENT_TYPES):
            raise ValueError(
                f"JournalEntry(parent).message: {type(value).__name__} is not a parent record"
            )
    elif entry.kind is EntryKind.REPORT:
        if not isinstance(value, _REPORT_TYPES):
            raise ValueError(
                f"JournalEntry(report).message: {type(value).__name__} is not an execution report"
            )
    elif not isinstance(value, SubmitOrder):
        raise ValueError(
            f"JournalEntry({entry.kind.value}).message: must be a SubmitOrder, "
            f"not {type(value).__name__}"
        )


def _check_code(entry: JournalEntry, value: object) -> None:
    if not isinstance(value, DenialCode):
        raise ValueError(f"JournalEntry({entry.kind.value}).code={value!r}: must be a DenialCode")


def _check_reason(entry: JournalEntry, value: object) -> None:
    if not isinstance(value, str):
        raise ValueError(f"JournalEntry({entry.kind.value}).reason={value!r}: must be a string")


def _check_counter(entry: JournalEntry, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNTER + 1:
        raise ValueError(
            f"JournalEntry({entry.kind.value}).counter={value!r}: must be an int in "
            f"[0, {MAX_COUNTER + 1}]"
        )


def _check_cursor_text(name: str) -> Callable[[JournalEntry, Any], None]:
    def check(entry: JournalEntry, value: object) -> None:
        if not isinstance(value, str) or not 0 < len(value) <= MAX_CURSOR_CHARS:
            raise ValueError(
                f"JournalEntry({entry.kind.value}).{name}={value!r:.80}: must be a string of "
                f"1 to {MAX_CURSOR_CHARS} characters"
            )

    return check


#: An audit entry's text fields, bounded so one entry stays far below an entry's limit.
MAX_AUDIT_CHARS: Final = 16 * 1024


def _check_audit_text(name: str, limit: int) -> Callable[[JournalEntry, Any], None]:
    def check(entry: JournalEntry, value: object) -> None:
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise ValueError(
                f"JournalEntry({entry.kind.value}).{name}={value!r:.80}: must be a string of "
                f"1 to {limit} characters"
            )

    return check


def _check_seconds(entry: JournalEntry, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise ValueError(
            f"JournalEntry({entry.kind.value}).seconds={value!r}: must be a finite Decimal >= 0"
        )


_FIELD_CHECKS: Final[Mapping[str, Callable[[JournalEntry, Any], None]]] = {
    "message": _check_message,
    "client_order_id": lambda entry, value: check_client_order_id(entry, "client_order_id", value),
    "code": _check_code,
    "reason": _check_reason,
    "venue": lambda entry, value: check_identifier(entry, "venue", value),
    "symbol": lambda entry, value: check_identifier(entry, "symbol", value),
    # OmsState.mark refuses anything else, so an entry must not hold it.
    "price": lambda entry, value: check_decimal(entry, "price", value, positive=True),
    "strategy_id": lambda entry, value: check_identifier(entry, "strategy_id", value),
    "counter": _check_counter,
    "asset": lambda entry, value: check_identifier(entry, "asset", value),
    "quantity": lambda entry, value: check_decimal(entry, "quantity", value),
    "scope": _check_cursor_text("scope"),
    "cursor": _check_cursor_text("cursor"),
    "seconds": _check_seconds,
    "who": _check_audit_text("who", 64),
    "action": _check_audit_text("action", 64),
    "detail": _check_audit_text("detail", MAX_AUDIT_CHARS),
    "result": _check_audit_text("result", MAX_AUDIT_CHARS),
}

_SPECS: Final[
    Mapping[
        EntryKind,
        tuple[tuple[tuple[str, Callable[[JournalEntry, Any], None]], ...], tuple[str, ...]],
    ]
] = {
    kind: (
        tuple((name, _FIELD_CHECKS[name]) for name in names),
        tuple(name for name in _OPTIONAL_FIELDS if name not in names),
    )
    for kind, names in ENTRY_FIELDS.items()
}


# Encoding ---------------------------------------------------------------------------
#
# Every journaled call carries a message, so the message codec's encoder is the
# OMS's largest journaling cost. It walks each field in Python, re-checking what
# construction already checked. ``_encode_message`` writes the very same bytes
# with one expression per message class (``_shape_of``) reading the fields and
# msgpack's C packer writing them; only decimal and enum fields are converted in
# Python. Anything the packer cannot write exactly as the codec would (a
# subclass, a nested message, a string that is not UTF-8, an integer out of
# range) sends the message down the codec's own path, which refuses it naming
# the field. A test pins equal bytes for every registered message type.


def _decimal_ext(value: object) -> msgpack.ExtType:
    if not isinstance(value, Decimal):
        raise TypeError(f"left to the codec: {type(value).__name__}")
    text = str(value)
    ext = _DECIMAL_EXTS.get(text)
    if ext is None:
        if not value.is_finite() or len(text) > MAX_DECIMAL_CHARS:
            raise ValueError(f"the codec refuses the decimal {text[:60]!r}")
        if len(_DECIMAL_EXTS) >= _DECIMAL_EXTS_LIMIT:
            _DECIMAL_EXTS.clear()
        ext = _DECIMAL_EXTS[text] = msgpack.ExtType(DECIMAL_EXT_CODE, text.encode("ascii"))
    return ext


def _wire_default(value: object) -> object:
    """What the strict packer hands back from a field of no planned kind."""
    if isinstance(value, enum.Enum):
        return value.value
    return _decimal_ext(value)


#: Ext objects by decimal text: building one costs more than packing it, and
#: quantities and prices repeat. Keyed by text, never by value: 1.10 == 1.1.
_DECIMAL_EXTS: Final[dict[str, msgpack.ExtType]] = {}
_DECIMAL_EXTS_LIMIT: Final = 4096


class _Packers(threading.local):
    """A packer per thread: reusing one saves building it per call, and one must
    never be shared between threads (nodes in one process journal concurrently)."""

    def __init__(self) -> None:
        packer = msgpack.Packer(use_bin_type=True, strict_types=True, default=_wire_default)
        self.pack: Callable[[object], bytes] = packer.pack


_PACKERS: Final = _Packers()


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """How to write one message class: ``encode`` (see ``_shape_of``).

    The frame ``[format, tag, version, {field: value, ...}]`` is written as a
    fixed ``prefix`` (everything up to and including the map's header) and
    then the keys and values, packed as one array of alternating keys and
    values whose own header is cut off (``skip`` bytes): a map is its
    header followed by exactly those bytes, so no dict is built per message.
    """

    prefix: bytes
    skip: int
    encode: Callable[[Any], bytes]
    """The message's frame, or an exception where the packer cannot write a
    field as it is (``_encode_message`` then takes the codec's own path)."""


def _shape_of(cls: type[Message]) -> _Shape:
    """The class's ``_Shape``, its ``encode`` written for the class's own fields.

    ``encode`` is one expression built per class (as ``dataclasses`` builds
    ``__init__``): the array of keys and values, each value read by plain
    attribute access, a decimal field's through ``_decimal_ext`` and an enum
    field's as its ``_value_`` (``None`` kept where the field may be
    ``None``), packed by one C call. A loop over the fields (slot lists,
    ``attrgetter``, an index loop per converted kind) cost ~50% more per
    message, and every order's records encode three messages. A value of the
    wrong kind raises here (an enum without ``_value_``, a decimal that is
    not one) and the codec's path says what is wrong.
    """
    hints = typing.get_type_hints(cls)
    shape: Any = cls
    names = tuple(field.name for field in dataclasses.fields(shape) if field.init)
    items = []
    for name in names:
        if not name.isidentifier():  # never for a dataclass field; the source below relies on it
            raise ValueError(f"{cls.__name__}: field name {name!r}")
        hint = hints[name]
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)] or [hint]
        kind = options[0] if len(options) == 1 else None
        value = f"m.{name}"
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            value = f"m.{name}._value_"
        elif kind is Decimal:
            value = f"_decimal_ext(m.{name})"
        if value != f"m.{name}" and type(None) in typing.get_args(hint):
            value = f"(None if m.{name} is None else {value})"
        items.append(f"{name!r}, {value}")
    pairs = tuple(item for name in names for item in (name, None))
    # The array's header is what packing Nones (one byte each) adds to their count.
    skip = len(msgpack.packb([None] * len(pairs))) - len(pairs)
    body = msgpack.packb(list(pairs))[skip:]
    as_map = msgpack.packb(dict.fromkeys(names))
    assert as_map.endswith(body)
    tag, version = DEFAULT_REGISTRY.tag_of(cls), DEFAULT_REGISTRY.version_of(cls)
    frame_head = msgpack.packb([MESSAGE_FORMAT_VERSION, tag, version, {}])[:-1]  # less the {}
    prefix = frame_head + as_map[: len(as_map) - len(body)]
    source = f"def encode(m):\n    return _prefix + _PACKERS.pack([{', '.join(items)}])[_skip:]\n"
    scope: dict[str, Any] = {
        "_prefix": prefix,
        "_skip": skip,
        "_PACKERS": _PACKERS,
        "_decimal_ext": _decimal_ext,
    }
    exec(source, scope)  # source built above from the class's own field names
    return _Shape(prefix=prefix, skip=skip, encode=scope["encode"])


_SHAPES: Final[dict[type[Message], _Shape]] = {cls: _shape_of(cls) for cls in DEFAULT_REGISTRY}


def _encode_message(message: Message) -> bytes:
    """``tradenode.messages.encode(message)``, the same bytes, faster (see above)."""
    shape = _SHAPES.get(type(message))
    if shape is not None:
        try:
            data = shape.encode(message)
        except (AttributeError, TypeError, ValueError, OverflowError):
            pass  # the codec's own path says what is wrong, naming the field
        else:
            if len(data) <= MAX_FRAME_BYTES:
                return data
    return encode_message(message)


def _decimal_to_wire(value: Decimal) -> str:
    text = str(value)
    if len(text) > MAX_DECIMAL_CHARS:
        raise ValueError(f"decimal text exceeds {MAX_DECIMAL_CHARS} characters")
    return text


_TO_WIRE: Final[Mapping[str, Callable[[Any], object]]] = {
    "message": _encode_message,
    "client_order_id": str,
    "code": lambda code: code.value,
    "reason": str,
    "venue": str,
    "symbol": str,
    "price": _decimal_to_wire,
    "strategy_id": str,
    "counter": str,
    "asset": str,
    "quantity": _decimal_to_wire,
    "scope": str,
    "cursor": str,
    "seconds": _decimal_to_wire,
    "who": str,
    "action": str,
    "detail": str,
    "result": str,
}


def encode_entry(entry: JournalEntry) -> bytes:
    """The entry as one msgpack payload; ``ValueError`` for what :func:`decode_entry` would refuse."""
    if not isinstance(entry, JournalEntry):
        raise TypeError(f"encode_entry() needs a JournalEntry, not {type(entry).__name__}")
    kind = entry.kind
    frame: list[object] = [ENTRY_FORMAT_VERSION, kind.value, entry.ts_ns]
    for name in ENTRY_FIELDS[kind]:
        try:
            frame.append(_TO_WIRE[name](getattr(entry, name)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"journal entry ({kind.value}).{name}: {exc}") from exc
    data = _PACKERS.pack(frame)
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(
            f"journal entry ({kind.value}): {len(data)} bytes exceeds {MAX_ENTRY_BYTES}"
        )
    return data


def encode_call(kind: EntryKind, ts_ns: int, fields: Mapping[str, Any]) -> bytes:
    """``encode_entry(JournalEntry(kind=kind, ts_ns=ts_ns, **fields))``, the same bytes and
    the same errors, without building the entry for the OMS's hottest kinds.

    Every order costs the OMS a ``REGISTER``, a ``SUBMITTED`` and its
    ``REPORT``s, and building a frozen, slotted entry per call (each field
    set through ``object.__setattr__``, then checked) costs about as much as
    encoding it. These kinds are checked here by the rules the entry's
    constructor applies; whatever those quick checks do not accept, and every
    other kind, goes through ``JournalEntry``, which raises its usual errors.
    """
    # By value: an enum member hashes through a Python-level __hash__.
    fast, count = (
        _FAST_CALLS.get(kind._value_, _NO_FAST_CALL) if type(kind) is EntryKind else _NO_FAST_CALL
    )
    if (
        fast is not None
        and type(ts_ns) is int
        and 0 <= ts_ns <= _MAX_TS_NS
        and len(fields) == count
    ):
        try:
            data = fast(ts_ns, fields)
        except (TypeError, ValueError):
            data = None  # the full path raises the error, naming the field
        if data is not None and len(data) <= MAX_ENTRY_BYTES:
            return data
    return encode_entry(JournalEntry(kind=kind, ts_ns=ts_ns, **fields))


def encode_message_call(kind: EntryKind, ts_ns: int, message: Message) -> bytes:
    """``encode_call(kind, ts_ns, {"message": message})``: the same bytes and the same errors.

    For the records of every order that carry a message (its intent's
    ``REGISTER``, each venue ``REPORT``): the OMS calls this directly rather
    than through keyword arguments, which built two mappings per record (the
    OMS's and the journal's) only for ``encode_call`` to look the kind and the
    field up again. It checks what ``encode_call``'s quick path checks (the
    kind takes this exact message type, a timestamp in range, the size);
    anything else goes through ``encode_call``, which raises its usual errors.
    """
    accepted = _MESSAGE_CALLS.get(kind._value_) if type(kind) is EntryKind else None
    if (
        accepted is not None
        and type(message) in accepted
        and type(ts_ns) is int
        and 0 <= ts_ns <= _MAX_TS_NS
    ):
        try:
            data: bytes | None = _PACKERS.pack(
                [ENTRY_FORMAT_VERSION, kind._value_, ts_ns, _encode_message(message)]
            )
        except (TypeError, ValueError):
            data = None  # the full path raises the error, naming the field
        if data is not None and len(data) <= MAX_ENTRY_BYTES:
            return data
    return encode_call(kind, ts_ns, {"message": message})


def _fast_message_call(
    kind: EntryKind, accepted: frozenset[type[Message]]
) -> Callable[[int, Mapping[str, Any]], bytes | None]:
    value = kind.value

    def encode(ts_ns: int, fields: Mapping[str, Any]) -> bytes | None:
        message: Any = fields.get("message")
        if type(message) not in accepted:
            return None
        return _PACKERS.pack([ENTRY_FORMAT_VERSION, value, ts_ns, _encode_message(message)])

    return encode


def _fast_order_call(kind: EntryKind) -> Callable[[int, Mapping[str, Any]], bytes | None]:
    value = kind.value

    def encode(ts_ns: int, fields: Mapping[str, Any]) -> bytes | None:
        client_order_id = fields.get("client_order_id")
        if type(client_order_id) is not str or not CLIENT_ORDER_ID_PATTERN.fullmatch(
            client_order_id
        ):
            return None
        return _PACKERS.pack([ENTRY_FORMAT_VERSION, value, ts_ns, client_order_id])

    return encode


def _fast_arrival_call(ts_ns: int, fields: Mapping[str, Any]) -> bytes | None:
    client_order_id = fields.get("client_order_id")
    price = fields.get("price")
    if type(client_order_id) is not str or not CLIENT_ORDER_ID_PATTERN.fullmatch(client_order_id):
        return None
    if type(price) is not Decimal or not price.is_finite() or price <= 0:
        return None
    return _PACKERS.pack(
        [
            ENTRY_FORMAT_VERSION,
            EntryKind.ARRIVAL.value,
            ts_ns,
            client_order_id,
            _decimal_to_wire(price),
        ]
    )


_FastCall = Callable[[int, Mapping[str, Any]], bytes | None]
_REGISTER_TYPES: Final[frozenset[type[Message]]] = frozenset({SubmitOrder})
_REPORT_TYPE_SET: Final[frozenset[type[Message]]] = frozenset(_REPORT_TYPES)

#: Per kind's value: its quick encoder and how many fields a call of it has.
_FAST_CALLS: Final[Mapping[str, tuple[_FastCall, int]]] = {
    EntryKind.REGISTER.value: (
        _fast_message_call(EntryKind.REGISTER, _REGISTER_TYPES),
        1,
    ),
    EntryKind.REPORT.value: (_fast_message_call(EntryKind.REPORT, _REPORT_TYPE_SET), 1),
    EntryKind.SUBMITTED.value: (_fast_order_call(EntryKind.SUBMITTED), 1),
    EntryKind.PENDING_CANCEL.value: (_fast_order_call(EntryKind.PENDING_CANCEL), 1),
    EntryKind.PENDING_REPLACE.value: (_fast_order_call(EntryKind.PENDING_REPLACE), 1),
    # One per order registered while its venue quotes (execution quality's arrival price).
    EntryKind.ARRIVAL.value: (_fast_arrival_call, 2),
}
_NO_FAST_CALL: Final[tuple[None, int]] = (None, 0)

#: Per kind's value: the message types ``encode_message_call`` writes itself (as
#: ``_FAST_CALLS`` does for a call of that kind).
_MESSAGE_CALLS: Final[Mapping[str, frozenset[type[Message]]]] = {
    EntryKind.REGISTER.value: _REGISTER_TYPES,
    EntryKind.REPORT.value: _REPORT_TYPE_SET,
}


# Decoding ---------------------------------------------------------------------------


class _Invalid(Exception):
    """A field was refused; :func:`decode_entry` adds the kind and the field name."""


def _message_from_wire(value: object) -> Message:
    if not isinstance(value, bytes):
        raise _Invalid(f"expected the bytes of a message frame, got {_describe(value)}")
    try:
        return decode_message(value)
    except DecodeError as exc:
        raise _Invalid(str(exc)) from exc


def _text_from_wire(value: object) -> str:
    if type(value) is not str:
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _code_from_wire(value: object) -> DenialCode:
    text = _text_from_wire(value)
    try:
        return DenialCode(text)
    except ValueError:
        raise _Invalid(f"{text[:60]!r} is not a DenialCode value") from None


def _price_from_wire(value: object) -> Decimal:
    text = _text_from_wire(value)
    if len(text) > MAX_DECIMAL_CHARS or not _DECIMAL_TEXT.fullmatch(text):
        raise _Invalid(f"{text[:60]!r} is not a decimal number")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid text
        raise _Invalid(f"{text[:60]!r} is not a decimal number") from None


def _counter_from_wire(value: object) -> int:
    text = _text_from_wire(value)
    if not _COUNTER_TEXT.fullmatch(text):
        raise _Invalid(f"{text[:60]!r} is not a counter (decimal digits)")
    return int(text)


_FROM_WIRE: Final[Mapping[str, Callable[[object], object]]] = {
    "message": _message_from_wire,
    "client_order_id": _text_from_wire,
    "code": _code_from_wire,
    "reason": _text_from_wire,
    "venue": _text_from_wire,
    "symbol": _text_from_wire,
    "price": _price_from_wire,
    "strategy_id": _text_from_wire,
    "counter": _counter_from_wire,
    "asset": _text_from_wire,
    "quantity": _price_from_wire,
    "scope": _text_from_wire,
    "cursor": _text_from_wire,
    "seconds": _price_from_wire,
    "who": _text_from_wire,
    "action": _text_from_wire,
    "detail": _text_from_wire,
    "result": _text_from_wire,
}


def decode_entry(payload: bytes | bytearray | memoryview) -> JournalEntry:
    """Reads one payload back; every flaw in it is a ``DecodeError`` that says what is wrong."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise TypeError(f"decode_entry() needs bytes, not {type(payload).__name__}")
    size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    if size == 0:
        raise DecodeError("journal entry: empty payload")
    if size > MAX_ENTRY_BYTES:
        raise DecodeError(f"journal entry: {size} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit")
    try:
        frame = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    except msgpack.ExtraData as exc:
        raise DecodeError(
            f"journal entry: {len(exc.extra)} trailing byte(s) after one complete entry"
        ) from exc
    except msgpack.StackError as exc:
        raise DecodeError("journal entry: msgpack nesting is too deep") from exc
    except msgpack.FormatError as exc:
        raise DecodeError("journal entry: not msgpack (reserved or invalid type byte)") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError(f"journal entry: a string is not valid UTF-8: {exc.reason}") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError(f"journal entry: truncated or malformed msgpack: {exc}") from exc
    if not isinstance(frame, list) or len(frame) < 3:
        raise DecodeError(
            f"journal entry: expected an array [version, kind, ts_ns, ...], got {_describe(frame)}"
        )
    version, kind_value, ts_ns, *fields = frame
    if type(version) is not int or version != ENTRY_FORMAT_VERSION:
        raise DecodeError(
            f"journal entry: unsupported format version {_show(version)} "
            f"(this reader knows version {ENTRY_FORMAT_VERSION})"
        )
    kind = _KINDS_BY_VALUE.get(kind_value) if type(kind_value) is str else None
    if kind is None:
        raise DecodeError(f"journal entry: unknown kind {_show(kind_value)}")
    if type(ts_ns) is not int:
        raise DecodeError(f"journal entry ({kind.value}): ts_ns must be an int, got {_show(ts_ns)}")
    names = ENTRY_FIELDS[kind]
    if len(fields) != len(names):
        raise DecodeError(
            f"journal entry ({kind.value}): expected {len(names)} field(s) "
            f"({', '.join(names)}), got {len(fields)}"
        )
    values: dict[str, Any] = {}
    for name, raw in zip(names, fields, strict=True):
        try:
            values[name] = _FROM_WIRE[name](raw)
        except _Invalid as exc:
            raise DecodeError(f"journal entry ({kind.value}).{name}: {exc}") from exc
    try:
        return JournalEntry(kind=kind, ts_ns=ts_ns, **values)
    except ValueError as exc:
        raise DecodeError(f"journal entry ({kind.value}): {exc}") from exc


def _describe(value: object) -> str:
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, msgpack.ExtType):
        return f"ext type {value.code}"
    return {
        type(None): "nil",
        bool: "a bool",
        int: "an int",
        float: "a float",
        str: "a string",
        bytes: "bytes",
        dict: "a map",
    }.get(type(value), type(value).__name__)


def _show(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Export -----------------------------------------------------------------------------


def entry_to_dict(entry: JournalEntry) -> dict[str, Any]:
    """The entry as JSON-able data for ``journal export``: decimals as strings, enums as values.

    Only the kind's own fields appear; a message becomes ``{"type": <codec
    tag>, <field>: <value>, ...}``.
    """
    result: dict[str, Any] = {"kind": entry.kind.value, "ts_ns": entry.ts_ns}
    for name in ENTRY_FIELDS[entry.kind]:
        result[name] = _plain(getattr(entry, name))
    return result


def message_to_dict(message: Message) -> dict[str, Any]:
    """Any registered message as JSON-able data, tagged with its codec tag."""
    plain: dict[str, Any] = {"type": DEFAULT_REGISTRY.tag_of(type(message))}
    shape: Any = message
    for field in dataclasses.fields(shape):
        plain[field.name] = _plain(getattr(message, field.name))
    return plain


def _plain(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Message):
        return message_to_dict(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value
