"""The wire format: lossless for every message, and a wall against bad bytes."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# The message modules and the exception tree are internal: checked here for completeness
# (nothing defined is left unexported; DecodeError is the tree's).
import tradenode.messages._enums as enums_module
import tradenode.messages._messages as messages_module
from tradenode import DecodeError, _exceptions, messages
from tradenode.messages import (
    CLIENT_ORDER_ID_PATTERN,
    DEFAULT_REGISTRY,
    FORMAT_VERSION,
    AlgoParams,
    CancelAllOrders,
    DecisionAction,
    ExecutionDecision,
    Message,
    MessageRegistry,
    ModifyOrder,
    OrderFilled,
    OrderStatus,
    OrderStatusReport,
    OrderType,
    ParentProfile,
    PositionSnapshot,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
    decode,
    encode,
)

# The codec's frame and decimal limits are internal: fuzzed right at them.
from tradenode.messages._codec import MAX_DECIMAL_CHARS, MAX_FRAME_BYTES

D = Decimal

# No example database: the suite must not write into the working tree.
PROPERTY = settings(deadline=None, max_examples=40, database=None)
FUZZ = settings(
    deadline=None,
    max_examples=300,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FEW = settings(deadline=None, max_examples=8, database=None)

# ---------------------------------------------------------------- strategies

IDENTIFIERS = st.text(min_size=1, max_size=12).filter(lambda s: s == s.strip())
CLIENT_ORDER_IDS = st.from_regex(CLIENT_ORDER_ID_PATTERN.pattern.strip("^$"), fullmatch=True)
TEXT = st.text(max_size=30)
TIMESTAMPS = st.one_of(st.just(0), st.integers(0, 2**63 - 1))

#: Coefficient and exponent drawn separately, so trailing zeros ("1.10") and
#: exponent notation ("1E+3") both occur; the codec must keep them exactly.
POSITIVE = st.one_of(
    st.builds(
        lambda coefficient, exponent: D(f"{coefficient}E{exponent}"),
        st.integers(1, 10**30),
        st.integers(-20, 10),
    ),
    st.sampled_from([D("1.10"), D("0.00000001"), D("1E+3"), D("100"), D("1.000")]),
)
NON_NEGATIVE = st.one_of(POSITIVE, st.sampled_from([D("0"), D("0.000"), D("-0"), D("0E+2")]))
SIGNED = st.one_of(NON_NEGATIVE, POSITIVE.map(lambda d: -d))

#: Decimal fields that may be zero or negative; every other one must be > 0.
DECIMAL_DOMAINS: dict[tuple[type[Message], str], st.SearchStrategy[Decimal]] = {
    (ExecutionDecision, "size"): NON_NEGATIVE,
    (OrderFilled, "commission"): NON_NEGATIVE,
    (OrderStatusReport, "filled_quantity"): NON_NEGATIVE,
    (PositionSnapshot, "quantity"): SIGNED,
    (PositionSnapshot, "avg_price"): NON_NEGATIVE,
    (PositionSnapshot, "realized_pnl"): SIGNED,
    (PositionSnapshot, "unrealized_pnl"): SIGNED,
}
FREE_TEXT_FIELDS = {"reason"}
CLIENT_ORDER_ID_FIELDS = {"client_order_id", "new_client_order_id", "parent_id"}


def strategy_for(cls: type[Message], name: str, hint: Any) -> st.SearchStrategy[Any]:
    """A field's values, derived from its type hint and what the class accepts."""
    if typing.get_origin(hint) in (typing.Union, type(int | None)):
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        return st.none() | strategy_for(cls, name, inner)
    if hint is Decimal:
        return DECIMAL_DOMAINS.get((cls, name), POSITIVE)
    if hint is str:
        if name in CLIENT_ORDER_ID_FIELDS:
            return CLIENT_ORDER_IDS
        return TEXT if name in FREE_TEXT_FIELDS else IDENTIFIERS
    if hint is int:
        return TIMESTAMPS
    if hint is float:
        return st.floats(0.0, 1.0)
    if hint is bool:
        return st.booleans()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return st.sampled_from(list(hint))
    if typing.get_origin(hint) is tuple:  # VwapParams.profile: a tuple of Decimals
        (item, _) = typing.get_args(hint)
        return st.lists(strategy_for(cls, name, item), max_size=4).map(tuple)
    if isinstance(hint, type) and issubclass(hint, Message):
        # A nested message (a parent's algorithm spec): any registered subclass.
        return st.deferred(
            lambda: st.one_of(*(STRATEGIES[c] for c in CLASSES if issubclass(c, hint)))
        )
    raise AssertionError(f"no strategy for {cls.__name__}.{name}: {hint!r}")


def field_hints(cls: type[Message]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


Draw = Callable[[st.SearchStrategy[Any]], Any]


def _fix_quote(draw: Draw, kw: dict[str, Any]) -> None:
    if kw["bid"] > kw["ask"]:
        kw["bid"], kw["ask"] = kw["ask"], kw["bid"]


def _fix_decision(draw: Draw, kw: dict[str, Any]) -> None:
    if kw["action"] in (DecisionAction.LONG, DecisionAction.SHORT) and kw["size"] <= 0:
        kw["size"] = draw(POSITIVE)
    if kw["order_type"].needs_price and kw["limit_price"] is None:
        kw["limit_price"] = draw(POSITIVE)


def _fix_submit(draw: Draw, kw: dict[str, Any]) -> None:
    kind = kw["order_type"]
    if kind is OrderType.MARKET:
        kw["price"] = None
    elif kind.needs_price and kw["price"] is None:
        kw["price"] = draw(POSITIVE)
    if not kind.needs_stop_price:
        kw["stop_price"] = None
    elif kw["stop_price"] is None:
        kw["stop_price"] = draw(POSITIVE)
    if kind is not OrderType.TRAILING_STOP:
        kw["trailing_offset"] = None
    elif kw["trailing_offset"] is None:
        kw["trailing_offset"] = draw(POSITIVE)
    if kw["time_in_force"] is not TimeInForce.GTD:
        kw["expire_time_ns"] = None
    elif kw["expire_time_ns"] is None:
        kw["expire_time_ns"] = draw(TIMESTAMPS)
    if kind is not OrderType.LIMIT or kw["time_in_force"] in (TimeInForce.IOC, TimeInForce.FOK):
        kw["post_only"] = False
    display = kw["display_quantity"]
    if kind is not OrderType.LIMIT or kw["time_in_force"] is not TimeInForce.GTC:
        kw["display_quantity"] = None
    elif display is not None and display >= kw["quantity"]:
        if display == kw["quantity"]:
            kw["display_quantity"] = None
        else:
            kw["display_quantity"], kw["quantity"] = kw["quantity"], display


def _fix_modify(draw: Draw, kw: dict[str, Any]) -> None:
    if kw["quantity"] is None and kw["price"] is None and kw["stop_price"] is None:
        kw["quantity"] = draw(POSITIVE)
    if kw["new_client_order_id"] == kw["client_order_id"]:
        kw["new_client_order_id"] = None


def _fix_report(draw: Draw, kw: dict[str, Any]) -> None:
    if kw["filled_quantity"] > kw["quantity"]:
        kw["filled_quantity"], kw["quantity"] = kw["quantity"], kw["filled_quantity"]


def _fix_profile(draw: Draw, kw: dict[str, Any]) -> None:
    if not kw["weights"]:  # a profile has at least one bucket
        kw["weights"] = (draw(POSITIVE),)


#: Cross-field rules, repaired after drawing rather than filtered, so no
#: example is wasted.
FIXES: dict[type[Message], Callable[[Draw, dict[str, Any]], None]] = {
    Quote: _fix_quote,
    ExecutionDecision: _fix_decision,
    SubmitOrder: _fix_submit,
    ModifyOrder: _fix_modify,
    OrderStatusReport: _fix_report,
    ParentProfile: _fix_profile,
}


def messages_of(cls: type[Message]) -> st.SearchStrategy[Message]:
    fields = {name: strategy_for(cls, name, hint) for name, hint in field_hints(cls).items()}

    @st.composite
    def build(draw: Draw) -> Message:
        kw = draw(st.fixed_dictionaries(fields))
        FIXES.get(cls, lambda _draw, _kw: None)(draw, kw)
        return cls(**kw)

    return build()


CLASSES = sorted(DEFAULT_REGISTRY, key=lambda cls: cls.__name__)
STRATEGIES = {cls: messages_of(cls) for cls in CLASSES}
ANY_MESSAGE = st.one_of(*STRATEGIES.values())
by_name = pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)

# ------------------------------------------------------------------- helpers


def raw(message: Message) -> list[Any]:
    """A frame as plain msgpack values, Decimal exts left as ExtType."""
    frame: list[Any] = msgpack.unpackb(encode(message), raw=False)
    return frame


def pack(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def decode_error(data: bytes, registry: MessageRegistry = DEFAULT_REGISTRY) -> str:
    with pytest.raises(DecodeError) as caught:
        decode(data, registry)
    return str(caught.value)


def same_message(decoded: Message, original: Message) -> None:
    assert type(decoded) is type(original)
    assert decoded == original
    # Equality alone would accept Decimal("1.1") for Decimal("1.10").
    assert repr(decoded) == repr(original)
    for field in dataclasses.fields(original):
        before, after = getattr(original, field.name), getattr(decoded, field.name)
        assert type(after) is type(before)
        if isinstance(before, Decimal):
            assert after.as_tuple() == before.as_tuple()


# ------------------------------------------------------------------ registry


def test_every_message_class_is_registered() -> None:
    def subclasses(cls: type[Message]) -> set[type[Message]]:
        found = set(cls.__subclasses__())
        for sub in list(found):
            found |= subclasses(sub)
        return found

    # By name: ``slots=True`` rebuilds each class, and the discarded original
    # lingers in ``__subclasses__`` until the garbage collector runs.
    ours = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in subclasses(Message)
        if cls.__module__.startswith("tradenode.")
    }
    exported = {
        obj
        for name in messages.__all__
        if isinstance(obj := getattr(messages, name), type)
        and issubclass(obj, Message)
        and obj not in (Message, AlgoParams)  # AlgoParams: the algorithms' abstract base
    }
    assert ours == {f"{cls.__module__}.{cls.__qualname__}" for cls in exported} | {
        f"{AlgoParams.__module__}.{AlgoParams.__qualname__}"
    }
    assert set(DEFAULT_REGISTRY) == exported
    assert len(DEFAULT_REGISTRY) == len(exported) == 33


def test_default_tags_are_pinned() -> None:
    # Tags are written into journals: changing one orphans every old frame.
    assert {cls.__name__: DEFAULT_REGISTRY.tag_of(cls) for cls in DEFAULT_REGISTRY} == {
        "Quote": "quote",
        "ExecutionDecision": "execution_decision",
        "SubmitOrder": "submit_order",
        "CancelOrder": "cancel_order",
        "ModifyOrder": "modify_order",
        "QueryOrder": "query_order",
        "CancelAllOrders": "cancel_all_orders",
        "OrderDenied": "order_denied",
        "OrderSubmitted": "order_submitted",
        "OrderAccepted": "order_accepted",
        "OrderRejected": "order_rejected",
        "OrderFilled": "order_filled",
        "OrderCanceled": "order_canceled",
        "OrderExpired": "order_expired",
        "OrderModified": "order_modified",
        "CancelRejected": "cancel_rejected",
        "ModifyRejected": "modify_rejected",
        "OrderStatusReport": "order_status_report",
        "PositionSnapshot": "position_snapshot",
        "TradingStateChanged": "trading_state_changed",
        "TwapParams": "twap_params",
        "SubmitParentOrder": "submit_parent_order",
        "CancelParentOrder": "cancel_parent_order",
        "ParentAccepted": "parent_accepted",
        "ParentDenied": "parent_denied",
        "ParentProgress": "parent_progress",
        "ParentFilled": "parent_filled",
        "ParentCanceled": "parent_canceled",
        "VwapParams": "vwap_params",
        "IcebergParams": "iceberg_params",
        "PovParams": "pov_params",
        "MarketTrade": "market_trade",
        "ParentProfile": "parent_profile",
    }
    assert {DEFAULT_REGISTRY.version_of(cls) for cls in DEFAULT_REGISTRY} == {1}
    assert FORMAT_VERSION == 1


def test_registry_lookups() -> None:
    assert DEFAULT_REGISTRY.class_of("submit_order") is SubmitOrder
    assert DEFAULT_REGISTRY.tag_of(SubmitOrder) == "submit_order"
    assert SubmitOrder in DEFAULT_REGISTRY
    assert Message not in DEFAULT_REGISTRY
    with pytest.raises(KeyError, match="nope"):
        DEFAULT_REGISTRY.class_of("nope")
    with pytest.raises(KeyError, match="Message"):
        DEFAULT_REGISTRY.tag_of(Message)


def test_registry_refuses_duplicates_and_nonsense() -> None:
    registry = MessageRegistry()
    registry.register(Quote, tag="quote", version=2)
    assert list(registry) == [Quote]
    assert len(registry) == 1
    assert registry.version_of(Quote) == 2
    with pytest.raises(ValueError, match="Quote is already registered as 'quote'"):
        registry.register(Quote, tag="quote_again")
    with pytest.raises(ValueError, match="tag 'quote' is already taken by Quote"):
        registry.register(SubmitOrder, tag="quote")
    for bad_tag in ("", "Quote", "has space", "9lives", "x" * 65):
        with pytest.raises(ValueError, match="must match"):
            registry.register(SubmitOrder, tag=bad_tag)
    for bad_version in (0, -1, True, 1.0):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            registry.register(SubmitOrder, tag="submit_order", version=bad_version)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Message is not a dataclass"):
        registry.register(Message, tag="message")
    with pytest.raises(TypeError, match="not a Message subclass"):
        registry.register(int, tag="int")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a dataclass"):
        registry.register(_NotADataclass, tag="plain")
    with pytest.raises(TypeError, match=r"_Unsupported\.numbers"):
        registry.register(_Unsupported, tag="unsupported")
    assert list(registry) == [Quote]


class _NotADataclass(Message):
    __slots__ = ()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Unsupported(Message):
    numbers: list[int]


# ----------------------------------------------------------------- roundtrip


def test_every_registered_class_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(DEFAULT_REGISTRY)


@by_name
@PROPERTY
@given(data=st.data())
def test_roundtrip_is_lossless(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(STRATEGIES[cls])
    frame = encode(message)
    assert isinstance(frame, bytes)
    same_message(decode(frame), message)
    same_message(decode(bytearray(frame)), message)
    same_message(decode(memoryview(frame)), message)


@pytest.mark.parametrize(
    "text",
    ["1.10", "1E+3", "0.000", "-0", "-0.0010", "1.000000000000000000000000000000000000001", "0E-8"],
)
def test_decimal_text_survives_exactly(text: str) -> None:
    message = PositionSnapshot(venue="v", symbol="s", quantity=D(text), realized_pnl=D(text))
    decoded = decode(encode(message))
    assert isinstance(decoded, PositionSnapshot)
    assert str(decoded.quantity) == text
    assert str(decoded.realized_pnl) == text


def test_frame_layout_is_the_documented_one() -> None:
    order = SubmitOrder(
        client_order_id="c-1",
        strategy_id="s",
        venue="v",
        symbol="BTC",
        side=Side.SELL,
        order_type=OrderType.LIMIT,
        quantity=D("1.10"),
        price=D("2E+3"),
    )
    frame = raw(order)
    assert frame[:3] == [1, "submit_order", 1]
    fields = frame[3]
    assert list(fields) == [f.name for f in dataclasses.fields(SubmitOrder)]
    assert fields["quantity"] == msgpack.ExtType(1, b"1.10")
    assert fields["price"] == msgpack.ExtType(1, b"2E+3")
    assert fields["side"] == "SELL"
    assert fields["stop_price"] is None
    assert fields["post_only"] is False
    assert fields["ts_ns"] == 0


def test_a_display_quantity_roundtrips_and_a_frame_written_before_it_decodes() -> None:
    """``SubmitOrder.display_quantity`` (native iceberg, issue #18) is a defaulted last
    field: a frame without it, as journals written before it hold, decodes to None."""
    order = SubmitOrder(
        client_order_id="c-1",
        strategy_id="s",
        venue="v",
        symbol="BTC",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        quantity=D("2.0"),
        price=D("100"),
        display_quantity=D("0.5"),
    )
    same_message(decode(encode(order)), order)
    frame = raw(order)
    assert frame[3]["display_quantity"] == msgpack.ExtType(1, b"0.5")
    del frame[3]["display_quantity"]
    old = decode(pack(frame))
    assert isinstance(old, SubmitOrder) and old.display_quantity is None
    assert old == dataclasses.replace(order, display_quantity=None)


@pytest.mark.parametrize(
    ("order_type", "price"),
    [(OrderType.MARKET_IF_TOUCHED, None), (OrderType.LIMIT_IF_TOUCHED, D("98.50"))],
)
def test_if_touched_order_types_roundtrip_as_their_value(
    order_type: OrderType, price: Decimal | None
) -> None:
    order = SubmitOrder(
        client_order_id="c-1",
        strategy_id="s",
        venue="v",
        symbol="BTC",
        side=Side.BUY,
        order_type=order_type,
        quantity=D("1"),
        price=price,
        stop_price=D("99.00"),
    )
    assert raw(order)[3]["order_type"] == order_type.value
    same_message(decode(encode(order)), order)
    report = OrderStatusReport(
        client_order_id="c-1",
        venue="v",
        symbol="BTC",
        side=Side.BUY,
        status=OrderStatus.ACCEPTED,
        quantity=D("1"),
        filled_quantity=D("0"),
        order_type=order_type,
        price=price,
    )
    same_message(decode(encode(report)), report)


def test_decoded_float_is_a_float() -> None:
    frame = raw(
        ExecutionDecision(strategy_id="s", symbol="x", action=DecisionAction.HOLD, size=D(0))
    )
    frame[3]["confidence"] = 1
    decoded = decode(pack(frame))
    assert isinstance(decoded, ExecutionDecision)
    assert type(decoded.confidence) is float
    assert decoded.confidence == 1.0


# ---------------------------------------------------------- hostile input


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert isinstance(decode(data), Message)


MSGPACK_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=10),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=12)),
    st.builds(msgpack.Timestamp, st.integers(0, 2**34), st.integers(0, 999_999_999)),
    st.builds(
        msgpack.ExtType,
        st.just(1),
        st.sampled_from([b"1", b"NaN", b"-inf", b"1.5e3", b"abc", b"", b"\xff", b" 1"]),
    ),
)
MSGPACK_VALUES = st.recursive(
    MSGPACK_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted({f.name for cls in CLASSES for f in dataclasses.fields(cls)})
FRAME_LIKE = st.tuples(
    st.sampled_from([FORMAT_VERSION, FORMAT_VERSION, 0, 2]),
    st.sampled_from([DEFAULT_REGISTRY.tag_of(cls) for cls in CLASSES] + ["nope"]),
    st.sampled_from([1, 1, 0, 2]),
    st.dictionaries(st.sampled_from([*FIELD_NAMES, "bogus"]), MSGPACK_VALUES, max_size=16),
).map(list)


@FUZZ
@given(st.one_of(MSGPACK_VALUES, FRAME_LIKE))
def test_arbitrary_msgpack_decodes_or_raises_decode_error(value: Any) -> None:
    with contextlib.suppress(DecodeError):
        assert isinstance(decode(pack(value)), Message)


@PROPERTY
@given(ANY_MESSAGE)
def test_every_strict_prefix_is_refused(message: Message) -> None:
    frame = encode(message)
    assert "empty input" in decode_error(frame[:0])
    for end in range(1, len(frame)):
        assert "truncated" in decode_error(frame[:end])


@FEW
@given(ANY_MESSAGE, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(message: Message, extra: bytes) -> None:
    frame = encode(message)
    assert f"{len(extra)} trailing byte(s)" in decode_error(frame + extra)
    assert "trailing byte(s)" in decode_error(frame + frame)


#: One of each msgpack type, and a Decimal ext, to substitute into fields.
CANDIDATES: list[Any] = [
    None,
    True,
    7,
    1.5,
    "text",
    b"bin",
    [1],
    {"a": 1},
    msgpack.ExtType(1, b"1.5"),
    msgpack.ExtType(9, b""),
]


def fits(hint: Any, value: Any) -> bool:
    """Whether the codec should accept this wire value's *type* for a hint."""
    if typing.get_origin(hint) in (typing.Union, type(int | None)):
        return value is None or any(
            fits(arg, value) for arg in typing.get_args(hint) if arg is not type(None)
        )
    if hint is Decimal:
        return isinstance(value, msgpack.ExtType) and value.code == 1
    if hint is float:
        return type(value) in (int, float)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return False  # no candidate above is a member's value
    return type(value) is hint


@by_name
@FEW
@given(data=st.data())
def test_wrong_field_types_are_refused_naming_the_field(
    cls: type[Message], data: st.DataObject
) -> None:
    message = data.draw(STRATEGIES[cls])
    tag = DEFAULT_REGISTRY.tag_of(cls)
    for name, hint in field_hints(cls).items():
        for candidate in CANDIDATES:
            if fits(hint, candidate):
                continue
            frame = raw(message)
            frame[3][name] = candidate
            text = decode_error(pack(frame))
            assert text.startswith(f"{tag}: {cls.__name__}.{name}: "), text


@by_name
@FEW
@given(data=st.data())
def test_missing_fields(cls: type[Message], data: st.DataObject) -> None:
    message = data.draw(STRATEGIES[cls])
    tag = DEFAULT_REGISTRY.tag_of(cls)
    for field in dataclasses.fields(cls):
        frame = raw(message)
        del frame[3][field.name]
        if field.default is dataclasses.MISSING:
            text = decode_error(pack(frame))
            assert text == f"{tag}: missing required field(s) {cls.__name__}.{field.name}"
            continue
        # An absent field takes its default, which is how versions add fields.
        try:
            expected = dataclasses.replace(message, **{field.name: field.default})
        except ValueError as exc:
            # The default breaks a cross-field rule, so decoding must refuse too.
            assert f"{tag}: invalid {cls.__name__}: {exc}" == decode_error(pack(frame))
        else:
            same_message(decode(pack(frame)), expected)


def test_missing_fields_that_break_a_rule_are_refused() -> None:
    frame = raw(SubmitOrder(**{**_ORDER, "time_in_force": TimeInForce.GTD, "expire_time_ns": 5}))
    del frame[3]["expire_time_ns"]
    text = decode_error(pack(frame))
    assert text.startswith("submit_order: invalid SubmitOrder: SubmitOrder.expire_time_ns=None")


def test_all_required_missing_fields_are_listed() -> None:
    text = decode_error(pack([1, "quote", 1, {"venue": "v"}]))
    assert text == "quote: missing required field(s) Quote.ask, Quote.bid, Quote.symbol"


_ORDER: dict[str, Any] = {
    "client_order_id": "c-1",
    "strategy_id": "s",
    "venue": "v",
    "symbol": "BTC",
    "side": Side.BUY,
    "order_type": OrderType.LIMIT,
    "quantity": D("1.10"),
    "price": D("100"),
}


def order_frame() -> list[Any]:
    return raw(SubmitOrder(**_ORDER))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda f: f.__setitem__(1, "no_such_message"), "unknown message tag 'no_such_message'"),
        (lambda f: f.__setitem__(1, 7), "message tag must be a string, got int"),
        (lambda f: f.__setitem__(1, b"submit_order"), "message tag must be a string, got bin"),
        (
            lambda f: f.__setitem__(0, 2),
            "unsupported format version 2 (this decoder reads version 1)",
        ),
        (lambda f: f.__setitem__(0, 0), "unsupported format version 0"),
        (lambda f: f.__setitem__(0, "1"), "unsupported format version '1'"),
        (lambda f: f.__setitem__(0, True), "unsupported format version True"),
        (lambda f: f.__setitem__(0, 1.0), "unsupported format version 1.0"),
        (
            lambda f: f.__setitem__(2, 2),
            "submit_order: type version 2 of SubmitOrder is newer than the registered version 1",
        ),
        (lambda f: f.__setitem__(2, 0), "submit_order: type version must be a positive int, got 0"),
        (lambda f: f.__setitem__(2, True), "submit_order: type version must be a positive int"),
        (lambda f: f.__setitem__(2, "1"), "submit_order: type version must be a positive int"),
        (
            lambda f: f.__setitem__(3, [1]),
            "submit_order: SubmitOrder fields must be a map, got array",
        ),
        (
            lambda f: f.__setitem__(3, None),
            "submit_order: SubmitOrder fields must be a map, got nil",
        ),
        (lambda f: f[3].__setitem__("bogus", 1), "submit_order: unknown field SubmitOrder.bogus"),
        (lambda f: f[3].__setitem__("", 1), "submit_order: unknown field SubmitOrder.''"),
        (
            lambda f: f[3].__setitem__(b"price", 1),
            "SubmitOrder field names must be strings, got b'price'",
        ),
        (lambda f: f.append(None), "a frame is a 4-element array"),
        (lambda f: f.pop(), "a frame is a 4-element array"),
        (lambda f: f[3].__setitem__("side", "buy"), "SubmitOrder.side: 'buy' is not a Side value"),
        (lambda f: f[3].__setitem__("ts_ns", True), "SubmitOrder.ts_ns: expected an int, got bool"),
        (lambda f: f[3].__setitem__("ts_ns", 1.0), "SubmitOrder.ts_ns: expected an int, got float"),
        (lambda f: f[3].__setitem__("ts_ns", -1), "invalid SubmitOrder: SubmitOrder.ts_ns=-1"),
        (
            lambda f: f[3].__setitem__("post_only", 1),
            "SubmitOrder.post_only: expected a bool, got int",
        ),
        (lambda f: f[3].__setitem__("venue", None), "SubmitOrder.venue: expected a str, got nil"),
        (
            lambda f: f[3].__setitem__("price", "100"),
            "SubmitOrder.price: expected a Decimal ext, got str",
        ),
        (
            lambda f: f[3].__setitem__("price", 100.0),
            "SubmitOrder.price: expected a Decimal ext, got float",
        ),
        (
            lambda f: f[3].__setitem__("price", 100),
            "SubmitOrder.price: expected a Decimal ext, got int",
        ),
        (
            lambda f: f[3].__setitem__("price", msgpack.ExtType(2, b"100")),
            "SubmitOrder.price: expected a Decimal ext, got ext type 2",
        ),
        (
            lambda f: f[3].__setitem__("price", msgpack.Timestamp(1, 0)),
            "SubmitOrder.price: expected a Decimal ext, got Timestamp",
        ),
        (
            lambda f: f[3].__setitem__("quantity", None),
            "SubmitOrder.quantity: expected a Decimal ext, got nil",
        ),
        (
            lambda f: f[3].__setitem__("client_order_id", "x" * 37),
            "submit_order: invalid SubmitOrder: SubmitOrder.client_order_id=",
        ),
        (
            lambda f: f[3].__setitem__("order_type", "MARKET"),
            "submit_order: invalid SubmitOrder: SubmitOrder.price=Decimal('100'): a MARKET order",
        ),
        (lambda f: f[3].__setitem__("price", None), "invalid SubmitOrder: SubmitOrder.price=None"),
    ],
)
def test_mutated_frames_are_refused_naming_the_problem(
    mutate: Callable[[list[Any]], None], expected: str
) -> None:
    frame = order_frame()
    mutate(frame)
    assert expected in decode_error(pack(frame))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"NaN", "Decimal ext 'NaN' is not finite"),
        (b"-nan", "is not finite"),
        (b"sNaN", "is not finite"),
        (b"NaN123", "is not finite"),
        (b"Infinity", "Decimal ext 'Infinity' is not finite"),
        (b"-Inf", "is not finite"),
        (b"abc", "Decimal ext 'abc' is not a decimal number"),
        (b"", "Decimal ext '' is not a decimal number"),
        (b" 1", "is not a decimal number"),
        (b"1_000", "is not a decimal number"),
        (b"1.2.3", "is not a decimal number"),
        (b"0x10", "is not a decimal number"),
        (b"1e", "is not a decimal number"),
        ("\u0661".encode(), "is not ASCII"),  # ARABIC-INDIC DIGIT ONE
        (b"\xff", "is not ASCII"),
        (b"1" * (MAX_DECIMAL_CHARS + 1), f"exceeds {MAX_DECIMAL_CHARS}"),
    ],
)
def test_bad_decimal_ext_is_refused_naming_the_field(payload: bytes, expected: str) -> None:
    frame = order_frame()
    frame[3]["price"] = msgpack.ExtType(1, payload)
    text = decode_error(pack(frame))
    assert text.startswith("submit_order: SubmitOrder.price: ")
    assert expected in text


@pytest.mark.parametrize("text", ["1", "+1.5", "-1.5", ".5", "5.", "1e3", "1E-3", "00.10"])
def test_decimal_ext_accepts_plain_notation(text: str) -> None:
    frame = raw(PositionSnapshot(venue="v", symbol="s", quantity=D("1")))
    frame[3]["quantity"] = msgpack.ExtType(1, text.encode())
    decoded = decode(pack(frame))
    assert isinstance(decoded, PositionSnapshot)
    assert decoded.quantity.as_tuple() == D(text).as_tuple()


def test_constructor_errors_become_decode_errors_with_the_cause() -> None:
    frame = raw(Quote(venue="v", symbol="s", bid=D("1"), ask=D("2")))
    frame[3]["bid"] = msgpack.ExtType(1, b"3")
    with pytest.raises(
        DecodeError, match="quote: invalid Quote: Quote: bid 3 is above ask 2"
    ) as caught:
        decode(pack(frame))
    assert type(caught.value.__cause__) is ValueError


def test_malformed_msgpack_is_refused() -> None:
    assert "not msgpack" in decode_error(b"\xc1")
    assert "not valid UTF-8" in decode_error(b"\xa2\xff\xfe")
    assert "nesting is too deep" in decode_error(b"\x91" * 5000)
    assert "not allowed for map key" in decode_error(pack({1: 2}))
    assert "4-element array" in decode_error(pack({"a": 1}))
    assert "4-element array [format, tag, type_version, fields], got nil" in decode_error(
        pack(None)
    )
    assert "invalid timestamp" in decode_error(b"\xd5\xff\x00\x00")
    assert "empty input" in decode_error(b"")


def test_oversized_input_is_refused_before_parsing() -> None:
    text = decode_error(b"\x00" * (MAX_FRAME_BYTES + 1))
    assert f"exceeds the {MAX_FRAME_BYTES}-byte frame limit" in text


def test_duplicate_map_keys_are_refused() -> None:
    fields = b"\x82" + pack("ts_ns") + pack(1) + pack("ts_ns") + pack(2)
    data = b"\x94\x01" + pack("cancel_all_orders") + b"\x01" + fields
    assert "duplicate map key 'ts_ns'" in decode_error(data)
    unique = b"\x94\x01" + pack("cancel_all_orders") + b"\x01" + b"\x81" + pack("ts_ns") + pack(2)
    assert decode(unique) == CancelAllOrders(ts_ns=2)


def test_decode_needs_bytes() -> None:
    with pytest.raises(TypeError, match="needs bytes, not str"):
        decode("not bytes")  # type: ignore[arg-type]


# ------------------------------------------------------------------ encoding


def test_encode_refuses_what_decode_could_not_read() -> None:
    with pytest.raises(ValueError, match=r"SubmitOrder\.expire_time_ns=18446744073709551616"):
        encode(SubmitOrder(**_ORDER, time_in_force=TimeInForce.GTD, expire_time_ns=2**64))
    with pytest.raises(ValueError, match=r"SubmitOrder\.symbol: string is not encodable"):
        encode(SubmitOrder(**{**_ORDER, "symbol": "\ud800"}))
    with pytest.raises(ValueError, match=r"PositionSnapshot\.quantity: decimal text exceeds"):
        encode(PositionSnapshot(venue="v", symbol="s", quantity=D("1" * (MAX_DECIMAL_CHARS + 1))))
    with pytest.raises(ValueError, match="exceeds"):
        encode(CancelAllOrders(symbol="x" * MAX_FRAME_BYTES))
    with pytest.raises(TypeError, match="_Envelope is not registered"):
        encode(_Envelope(quote=Quote(venue="v", symbol="s", bid=D(1), ask=D(1))))
    assert encode(SubmitOrder(**_ORDER, time_in_force=TimeInForce.GTD, expire_time_ns=2**64 - 1))


# ------------------------------------------------------------ nested frames


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Envelope(Message):
    quote: Quote
    order: SubmitOrder | None = None
    anything: Message | None = None
    prices: tuple[Decimal, ...] = ()
    sides: tuple[Side, ...] = ()
    weight: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Chain(Message):
    link: _Chain | None = None


def nested_registry() -> MessageRegistry:
    registry = MessageRegistry()
    for cls in DEFAULT_REGISTRY:
        registry.register(cls, tag=DEFAULT_REGISTRY.tag_of(cls))
    registry.register(_Envelope, tag="envelope")
    registry.register(_Chain, tag="chain")
    return registry


NESTED = nested_registry()
ENVELOPES = st.builds(
    _Envelope,
    quote=STRATEGIES[Quote],
    order=st.none() | STRATEGIES[SubmitOrder],
    anything=st.none() | ANY_MESSAGE,
    prices=st.lists(SIGNED, max_size=4).map(tuple),
    sides=st.lists(st.sampled_from(Side), max_size=4).map(tuple),
    weight=st.floats(allow_nan=False),
)


@PROPERTY
@given(ENVELOPES)
def test_nested_messages_and_tuples_roundtrip(envelope: _Envelope) -> None:
    same_message(decode(encode(envelope, NESTED), NESTED), envelope)


def test_nested_frames_are_arrays_and_tuples_are_arrays() -> None:
    quote = Quote(venue="v", symbol="s", bid=D("1.0"), ask=D("2.0"))
    envelope = _Envelope(quote=quote, prices=(D("1.10"),), sides=(Side.BUY, Side.SELL))
    fields = msgpack.unpackb(encode(envelope, NESTED))[3]
    assert fields["quote"][:3] == [1, "quote", 1]
    assert fields["prices"] == [msgpack.ExtType(1, b"1.10")]
    assert fields["sides"] == ["BUY", "SELL"]


def envelope_frame() -> list[Any]:
    quote = Quote(venue="v", symbol="s", bid=D("1"), ask=D("2"))
    frame: list[Any] = msgpack.unpackb(encode(_Envelope(quote=quote), NESTED))
    return frame


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda f: f[3]["quote"][3].__setitem__("bid", "1"),
            "envelope: _Envelope.quote: nested frame: quote: Quote.bid: expected a Decimal ext",
        ),
        (
            lambda f: f[3]["quote"].__setitem__(1, "order_denied"),
            "envelope: _Envelope.quote: nested frame: order_denied: "
            "unknown field OrderDenied.venue",
        ),
        (
            lambda f: f[3].__setitem__("quote", raw(CancelAllOrders())),
            "envelope: _Envelope.quote: expected a Quote frame, got CancelAllOrders",
        ),
        (
            lambda f: f[3].__setitem__("anything", 5),
            "envelope: _Envelope.anything: nested frame: a frame is a 4-element array "
            "[format, tag, type_version, fields], got int",
        ),
        (
            lambda f: f[3].__setitem__("prices", [msgpack.ExtType(1, b"1"), "2"]),
            "envelope: _Envelope.prices: item 1: expected a Decimal ext, got str",
        ),
        (
            lambda f: f[3].__setitem__("prices", [msgpack.ExtType(1, b"NaN")]),
            "envelope: _Envelope.prices: item 0: Decimal ext 'NaN' is not finite",
        ),
        (
            lambda f: f[3].__setitem__("sides", "BUY"),
            "envelope: _Envelope.sides: expected an array, got str",
        ),
        (
            lambda f: f[3].__setitem__("weight", True),
            "envelope: _Envelope.weight: expected a float, got bool",
        ),
        (
            lambda f: f[3].__setitem__("weight", "1"),
            "envelope: _Envelope.weight: expected a float, got str",
        ),
    ],
)
def test_nested_problems_name_the_path(mutate: Callable[[list[Any]], None], expected: str) -> None:
    frame = envelope_frame()
    mutate(frame)
    assert decode_error(pack(frame), NESTED).startswith(expected)


def test_nested_message_of_any_registered_type() -> None:
    quote = Quote(venue="v", symbol="s", bid=D("1"), ask=D("2"))
    envelope = _Envelope(quote=quote, anything=_Chain(link=_Chain()))
    same_message(decode(encode(envelope, NESTED), NESTED), envelope)
    # The default registry has never heard of envelopes, inside or out.
    assert "unknown message tag 'envelope'" in decode_error(encode(envelope, NESTED))


def test_nesting_depth_is_bounded() -> None:
    chain = _Chain()
    for _ in range(32):
        chain = _Chain(link=chain)
    same_message(decode(encode(chain, NESTED), NESTED), chain)
    with pytest.raises(ValueError, match="nest deeper than 32"):
        encode(_Chain(link=chain), NESTED)
    frame: list[Any] = [1, "chain", 1, {}]
    for _ in range(40):
        frame = [1, "chain", 1, {"link": frame}]
    assert "nest deeper than 32" in decode_error(pack(frame), NESTED)


# --------------------------------------------------------------- public API


def test_every_message_and_enum_is_re_exported() -> None:
    """The exact list is pinned in test_public_api; here: nothing defined is left out."""
    assert len(set(messages.__all__)) == len(messages.__all__)
    assert set(enums_module.__all__) | set(messages_module.__all__) <= set(messages.__all__)


def test_decode_error_is_the_shared_one() -> None:
    assert DecodeError is _exceptions.DecodeError
    assert issubclass(DecodeError, _exceptions.TradenodeError)
    assert issubclass(DecodeError, ValueError)
