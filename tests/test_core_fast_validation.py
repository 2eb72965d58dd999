"""The message checks' fast paths decide exactly what the general checks decide.

Each check looks at the common valid shape first and only falls back to the
general test for anything else; these tests hold every keyword-free variant
and every fast path to the general answer (accepted, or the same
``ValueError`` word for word) over ordinary, edge and wrong values, and the
enums' identity hash to what equality says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tradenode.messages import (
    DecisionAction,
    DenialCode,
    ExecutionDecision,
    LiquiditySide,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
)

# The checks themselves are internal: the messages call them, users never do.
from tradenode.messages._validation import (
    check_client_order_id,
    check_decimal,
    check_enum,
    check_finite_decimal,
    check_identifier,
    check_non_negative_decimal,
    check_optional_identifier,
    check_optional_positive_decimal,
    check_positive_decimal,
    check_timestamp,
)


class _Owner:
    """Stands for the message whose field is checked (the error names its class)."""


class _SubDecimal(Decimal):
    """A Decimal subclass: not the fast path's exact type, accepted by the general test."""


class _SubStr(str):
    pass


OWNER = _Owner()


def _param_id(value: object) -> str:
    """A test id that is the same in every process (pytest-xdist compares them):
    a bare ``object()``'s repr carries its address."""
    return "object()" if type(value) is object else repr(value)


DECIMALS: list[Any] = [
    Decimal("0.01"),
    Decimal("50000.5"),
    Decimal(0),
    Decimal("-0"),
    Decimal("0E-8"),
    Decimal(-1),
    Decimal("-0.0001"),
    Decimal("1E+30"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    _SubDecimal("2"),
    _SubDecimal("-2"),
    _SubDecimal(0),
    None,
    True,
    False,
    1,
    0,
    -1,
    1.5,
    float("nan"),
    "1",
    object(),
]

TEXTS: list[Any] = [
    "BTCUSDT",
    "lat-000001",
    "a",
    "",
    " ",
    " padded",
    "padded ",
    "\tx",
    "x\n",
    "with space",
    "x" * 36,
    "x" * 37,
    "bad id!",
    "ü",
    _SubStr("sub"),
    _SubStr(" sub"),
    None,
    1,
    b"bytes",
    True,
]

TIMESTAMPS: list[Any] = [0, 1, 1_700_000_000_000_000_000, -1, True, False, None, 1.0, "1", 2**70]


def _outcome(check: Callable[..., None], *args: Any, **kwargs: Any) -> str | None:
    """None when ``check`` accepts; the error's type and text when it refuses."""
    try:
        check(*args, **kwargs)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize("value", DECIMALS, ids=_param_id)
@pytest.mark.parametrize(
    ("variant", "flags"),
    [
        (check_finite_decimal, {}),
        (check_positive_decimal, {"positive": True}),
        (check_optional_positive_decimal, {"positive": True, "optional": True}),
        (check_non_negative_decimal, {"non_negative": True}),
    ],
    ids=["finite", "positive", "optional_positive", "non_negative"],
)
def test_each_decimal_variant_decides_as_check_decimal_with_its_flags(
    variant: Callable[[object, str, Any], None], flags: dict[str, bool], value: Any
) -> None:
    expected = _outcome(check_decimal, OWNER, "field", value, **flags)
    assert _outcome(variant, OWNER, "field", value) == expected


def _reference_decimal(
    value: Any, *, positive: bool, non_negative: bool, optional: bool
) -> str | None:
    """The general test as it was written before the fast path, for comparison."""
    why = None
    if value is None:
        why = None if optional else "is required"
    elif isinstance(value, bool) or not isinstance(value, Decimal):
        why = "must be a decimal.Decimal (floats round)"
    elif not value.is_finite():
        why = "must be finite"
    elif positive and value <= 0:
        why = "must be greater than zero"
    elif non_negative and value < 0:
        why = "must not be negative"
    return None if why is None else f"ValueError: _Owner.field={value!r}: {why}"


@pytest.mark.parametrize("value", DECIMALS, ids=_param_id)
@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("non_negative", [False, True])
@pytest.mark.parametrize("optional", [False, True])
def test_check_decimal_with_its_fast_path_decides_as_the_general_test(
    value: Any, positive: bool, non_negative: bool, optional: bool
) -> None:
    flags = {"positive": positive, "non_negative": non_negative, "optional": optional}
    assert _outcome(check_decimal, OWNER, "field", value, **flags) == _reference_decimal(
        value, **flags
    )


def _reference_identifier(value: Any, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or value != value.strip():
        return (
            f"ValueError: _Owner.field={value!r}: "
            "must be a non-empty string without surrounding spaces"
        )
    return None


@pytest.mark.parametrize("value", TEXTS, ids=_param_id)
def test_identifier_checks_decide_as_the_general_test(value: Any) -> None:
    assert _outcome(check_identifier, OWNER, "field", value) == _reference_identifier(
        value, optional=False
    )
    optional = _reference_identifier(value, optional=True)
    assert _outcome(check_identifier, OWNER, "field", value, optional=True) == optional
    assert _outcome(check_optional_identifier, OWNER, "field", value) == optional


@pytest.mark.parametrize("value", TEXTS, ids=_param_id)
def test_client_order_id_check_is_unchanged(value: Any) -> None:
    valid = isinstance(value, str) and re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", value) is not None
    refused = f"ValueError: _Owner.field={value!r}: must match [.A-Z:/a-z0-9_-]{{1,36}}"
    assert _outcome(check_client_order_id, OWNER, "field", value) == (None if valid else refused)


@pytest.mark.parametrize("value", TIMESTAMPS, ids=_param_id)
@pytest.mark.parametrize("optional", [False, True])
def test_timestamp_check_decides_as_the_general_test(value: Any, optional: bool) -> None:
    if value is None and optional:
        expected = None
    elif isinstance(value, bool) or not isinstance(value, int):
        expected = f"ValueError: _Owner.field={value!r}: must be integer nanoseconds"
    elif value < 0:
        expected = f"ValueError: _Owner.field={value!r}: must not be negative"
    else:
        expected = None
    assert _outcome(check_timestamp, OWNER, "field", value, optional=optional) == expected


@pytest.mark.parametrize("value", [Side.BUY, Side.SELL, OrderType.LIMIT, "BUY", None, 1])
def test_enum_check_accepts_members_of_the_kind_only(value: Any) -> None:
    expected = (
        None if isinstance(value, Side) else f"ValueError: _Owner.field={value!r}: must be a Side"
    )
    assert _outcome(check_enum, OWNER, "field", value, Side) == expected


ENUMS = [
    Side,
    OrderType,
    TimeInForce,
    OrderStatus,
    LiquiditySide,
    DecisionAction,
    TradingState,
    DenialCode,
]


@pytest.mark.parametrize("kind", ENUMS, ids=lambda kind: kind.__name__)
def test_enum_members_hash_consistently_with_equality(kind: type[Any]) -> None:
    members = list(kind)
    assert {member: member.value for member in members} == {m: m.value for m in kind}
    for member in members:
        assert hash(member) == hash(kind(member.value)) == hash(kind[member.name])
        assert member in set(members)
    assert len({hash(member) for member in members}) == len(members)


def test_the_order_type_and_status_properties_keep_their_truth_tables() -> None:
    assert {t for t in OrderType if t.needs_price} == {
        OrderType.LIMIT,
        OrderType.STOP_LIMIT,
        OrderType.LIMIT_IF_TOUCHED,
    }
    assert {t for t in OrderType if t.needs_stop_price} == {
        OrderType.STOP,
        OrderType.STOP_LIMIT,
        OrderType.MARKET_IF_TOUCHED,
        OrderType.LIMIT_IF_TOUCHED,
    }
    assert {t for t in OrderType if t.triggers_on_touch} == {
        OrderType.MARKET_IF_TOUCHED,
        OrderType.LIMIT_IF_TOUCHED,
    }
    terminal = {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
    }
    assert {s for s in OrderStatus if s.is_terminal} == terminal
    assert {s for s in OrderStatus if s.is_open} == set(OrderStatus) - terminal - {
        OrderStatus.INITIALIZED
    }


class _SubFloat(float):
    """As numpy's float64 is: a float subclass, stored as a plain float."""


@pytest.mark.parametrize("confidence", [0.5, 1, 0, _SubFloat(0.25), 1.0])
def test_a_decision_stores_its_confidence_as_a_plain_float(confidence: Any) -> None:
    decision = ExecutionDecision(
        strategy_id="s",
        symbol="BTCUSDT",
        action=DecisionAction.LONG,
        size=Decimal(1),
        confidence=confidence,
    )
    assert type(decision.confidence) is float
    assert decision.confidence == float(confidence)


@pytest.mark.parametrize("confidence", [True, False, "0.5", None, Decimal("0.5"), 1.5, -0.0001])
def test_a_decision_refuses_a_confidence_that_is_no_number_in_range(confidence: Any) -> None:
    with pytest.raises(ValueError, match=r"^ExecutionDecision\.confidence="):
        ExecutionDecision(
            strategy_id="s",
            symbol="BTCUSDT",
            action=DecisionAction.LONG,
            size=Decimal(1),
            confidence=confidence,
        )
