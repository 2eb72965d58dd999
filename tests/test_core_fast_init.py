"""The messages' cheaper ``__init__`` builds exactly what the dataclass's built.

``with_fast_init`` replaces a frozen, slotted, keyword-only dataclass's
generated ``__init__`` by one that stores each field through its slot
descriptor. Same signature, same defaults and factories, same errors for a
bad call, same validation, same frozen instance.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError
from decimal import Decimal
from typing import Any

import pytest

from tradenode import messages
from tradenode.messages import (
    LiquiditySide,
    Message,
    OrderFilled,
    OrderType,
    PositionSnapshot,
    Side,
    SubmitOrder,
    TimeInForce,
)

# The decorator is internal: the message classes use it, users never do.
from tradenode.messages._fast_init import with_fast_init

D = Decimal


def _decorated() -> list[type[Any]]:
    """Every public message class built by ``with_fast_init``."""
    found = []
    for name in messages.__all__:
        cls = getattr(messages, name)
        if (
            isinstance(cls, type)
            and issubclass(cls, Message)
            and "_store_0" in getattr(cls.__init__, "__code__", compile("", "", "exec")).co_names
        ):
            found.append(cls)
    return found


DECORATED = _decorated()


def test_the_order_path_messages_use_it() -> None:
    names = {cls.__name__ for cls in DECORATED}
    assert {
        "ExecutionDecision",
        "SubmitOrder",
        "OrderSubmitted",
        "OrderAccepted",
        "OrderFilled",
        "PositionSnapshot",
        "MarketTrade",
        "Quote",
    } <= names


@pytest.mark.parametrize("cls", DECORATED, ids=lambda cls: cls.__name__)
def test_the_signature_is_the_fields_keyword_only_with_their_defaults(cls: type[Any]) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    for parameter, field in zip(parameters, fields, strict=True):
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            assert parameter.default is inspect.Parameter.empty
        elif field.default is not dataclasses.MISSING:
            assert parameter.default is field.default
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


def _as_the_dataclass_builds(cls: type[Any], **values: Any) -> Any:
    """What the generated dataclass ``__init__`` does, step by step."""
    instance = object.__new__(cls)
    for field in dataclasses.fields(cls):
        value = values.get(field.name, field.default)
        object.__setattr__(instance, field.name, value)
    instance.__post_init__()
    return instance


SAMPLES: list[tuple[type[Any], dict[str, Any]]] = [
    (
        SubmitOrder,
        {
            "client_order_id": "c-1",
            "strategy_id": "s",
            "venue": "paper",
            "symbol": "BTCUSDT",
            "side": Side.BUY,
            "order_type": OrderType.LIMIT,
            "quantity": D("0.5"),
            "price": D("100"),
            "time_in_force": TimeInForce.GTC,
            "display_quantity": D("0.1"),
            "ts_ns": 5,
        },
    ),
    (
        OrderFilled,
        {
            "client_order_id": "c-1",
            "venue": "paper",
            "venue_order_id": "v-1",
            "execution_id": "e-1",
            "symbol": "BTCUSDT",
            "side": Side.SELL,
            "last_quantity": D("0.5"),
            "last_price": D("100.5"),
            "liquidity": LiquiditySide.MAKER,
        },
    ),
    (PositionSnapshot, {"venue": "paper", "symbol": "BTCUSDT", "quantity": D("-2")}),
]


@pytest.mark.parametrize(("cls", "values"), SAMPLES, ids=lambda x: getattr(x, "__name__", ""))
def test_it_builds_what_the_dataclass_builds(cls: type[Any], values: dict[str, Any]) -> None:
    built = cls(**values)
    reference = _as_the_dataclass_builds(cls, **values)
    assert built == reference
    assert hash(built) == hash(reference)
    assert repr(built) == repr(reference)
    with pytest.raises(FrozenInstanceError):
        built.venue = "other"
    assert dataclasses.replace(built, venue="elsewhere").venue == "elsewhere"


def test_a_bad_call_fails_as_it_did() -> None:
    values = dict(SAMPLES[0][1])
    del values["venue"]
    with pytest.raises(
        TypeError,
        match=r"^SubmitOrder.__init__\(\) missing 1 required keyword-only argument: 'venue'$",
    ):
        SubmitOrder(**values)
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'colour'"):
        SubmitOrder(**SAMPLES[0][1], colour="red")
    with pytest.raises(TypeError, match=r"takes 1 positional argument but 2 were given"):
        PositionSnapshot("paper")  # type: ignore[misc]


def test_validation_still_runs_at_construction_and_through_replace() -> None:
    with pytest.raises(ValueError, match=r"SubmitOrder.quantity=Decimal\('0'\)"):
        SubmitOrder(**{**SAMPLES[0][1], "quantity": D(0)})
    built = SubmitOrder(**SAMPLES[0][1])
    with pytest.raises(ValueError, match="only LIMIT orders can be icebergs"):
        dataclasses.replace(built, order_type=OrderType.MARKET, price=None)


def test_default_factories_give_each_instance_its_own_value() -> None:
    @with_fast_init
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Basket:
        name: str
        items: list[int] = dataclasses.field(default_factory=list)
        size: int = 3

        def __post_init__(self) -> None:
            if self.size < 0:
                raise ValueError("size")

    first, second = Basket(name="a"), Basket(name="b", size=1)
    assert first.items == [] and first.items is not second.items
    given = [1]
    assert Basket(name="c", items=given).items is given
    assert first.size == 3
    with pytest.raises(ValueError, match="size"):
        Basket(name="d", size=-1)


def test_it_refuses_what_it_cannot_serve_exactly() -> None:
    with pytest.raises(TypeError, match="frozen, slotted"):

        @with_fast_init
        @dataclasses.dataclass(slots=True, kw_only=True)
        class Mutable:
            a: int

    with pytest.raises(TypeError, match="frozen, slotted"):

        @with_fast_init
        @dataclasses.dataclass(frozen=True, kw_only=True)
        class NoSlots:
            a: int

    with pytest.raises(TypeError, match="keyword-only"):

        @with_fast_init
        @dataclasses.dataclass(frozen=True, slots=True)
        class Positional:
            a: int

    with pytest.raises(TypeError, match="keyword-only init fields only"):

        @with_fast_init
        @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
        class Hidden:
            a: int = dataclasses.field(default=0, init=False)

    with pytest.raises(TypeError, match="keyword-only init fields only"):

        @with_fast_init
        @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
        class WithInitVar:
            a: dataclasses.InitVar[int]
