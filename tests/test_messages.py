"""A message that exists is valid: construction is where bad orders are refused."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any

import pytest

from tradenode import messages
from tradenode.messages import (
    AlgoParams,
    CancelAllOrders,
    CancelOrder,
    CancelParentOrder,
    CancelRejected,
    DecisionAction,
    DenialCode,
    ExecutionDecision,
    IcebergParams,
    LiquiditySide,
    MarketTrade,
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
    OrderStatus,
    OrderStatusReport,
    OrderSubmitted,
    OrderType,
    ParentAccepted,
    ParentCanceled,
    ParentDenied,
    ParentFilled,
    ParentProfile,
    ParentProgress,
    ParentState,
    PositionSnapshot,
    PovParams,
    QueryOrder,
    Quote,
    Side,
    SubmitOrder,
    SubmitParentOrder,
    TimeInForce,
    TradingState,
    TradingStateChanged,
    TwapParams,
    VwapParams,
)

D = Decimal

#: The smallest valid keyword arguments of every message class.
BASE: dict[type[Message], dict[str, Any]] = {
    Quote: {"venue": "binance", "symbol": "BTCUSDT", "bid": D("100.5"), "ask": D("100.6")},
    ExecutionDecision: {
        "strategy_id": "momo",
        "symbol": "BTCUSDT",
        "action": DecisionAction.LONG,
        "size": D("0.5"),
    },
    SubmitOrder: {
        "client_order_id": "momo-0001",
        "strategy_id": "momo",
        "venue": "binance",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": D("0.010"),
        "price": D("100.50"),
    },
    CancelOrder: {"client_order_id": "momo-0001", "venue": "binance", "symbol": "BTCUSDT"},
    ModifyOrder: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "symbol": "BTCUSDT",
        "price": D("101"),
    },
    QueryOrder: {"client_order_id": "momo-0001", "venue": "binance", "symbol": "BTCUSDT"},
    CancelAllOrders: {},
    OrderDenied: {
        "client_order_id": "momo-0001",
        "strategy_id": "momo",
        "code": DenialCode.MAX_POSITION,
        "reason": "position would exceed 2 BTC",
    },
    OrderSubmitted: {"client_order_id": "momo-0001", "venue": "binance"},
    OrderAccepted: {"client_order_id": "momo-0001", "venue": "binance", "venue_order_id": "42"},
    OrderRejected: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "code": "-2010",
        "reason": "insufficient balance",
    },
    OrderFilled: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "venue_order_id": "42",
        "execution_id": "e-1",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "last_quantity": D("0.004"),
        "last_price": D("100.50"),
    },
    OrderCanceled: {"client_order_id": "momo-0001", "venue": "binance"},
    OrderExpired: {"client_order_id": "momo-0001", "venue": "binance"},
    OrderModified: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "venue_order_id": "42",
        "quantity": D("0.02"),
    },
    CancelRejected: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "code": "-2011",
        "reason": "unknown order",
    },
    ModifyRejected: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "code": "-2013",
        "reason": "order does not exist",
    },
    OrderStatusReport: {
        "client_order_id": "momo-0001",
        "venue": "binance",
        "symbol": "BTCUSDT",
        "side": Side.SELL,
        "status": OrderStatus.PARTIALLY_FILLED,
        "quantity": D("1"),
        "filled_quantity": D("0.4"),
    },
    PositionSnapshot: {"venue": "binance", "symbol": "BTCUSDT", "quantity": D("-0.5")},
    TradingStateChanged: {"state": TradingState.REDUCING, "reason": "daily loss limit"},
    VwapParams: {"duration": 600.0, "profile": (D("1"), D("2"), D("1"))},
    IcebergParams: {"display_quantity": D("0.1"), "limit_price": D("100.5")},
    PovParams: {"participation": D("0.1")},
    ParentProfile: {"parent_id": "vwap-1", "weights": (D("3"), D("1")), "start_ns": 5},
    MarketTrade: {
        "venue": "binance",
        "symbol": "BTCUSDT",
        "trade_id": "12345",
        "price": D("100.5"),
        "quantity": D("0.25"),
    },
    TwapParams: {"duration": 600.0, "slices": 10},
    SubmitParentOrder: {
        "parent_id": "twap-1",
        "strategy_id": "momo",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "quantity": D("1"),
        "algorithm": TwapParams(duration=600.0, slices=10),
    },
    CancelParentOrder: {"parent_id": "twap-1"},
    ParentAccepted: {"parent_id": "twap-1", "strategy_id": "momo"},
    ParentDenied: {
        "parent_id": "twap-1",
        "strategy_id": "momo",
        "code": DenialCode.INVALID_ORDER,
        "reason": "TwapParams.slices=0: must be at least 1",
    },
    ParentProgress: {
        "parent_id": "twap-1",
        "strategy_id": "momo",
        "state": ParentState.WORKING,
        "target": D("1"),
        "filled": D("0.4"),
        "open_quantity": D("0.1"),
    },
    ParentFilled: {
        "parent_id": "twap-1",
        "strategy_id": "momo",
        "filled": D("1"),
        "avg_price": D("100.5"),
    },
    ParentCanceled: {
        "parent_id": "twap-1",
        "strategy_id": "momo",
        "state": ParentState.CANCELED,
        "filled": D("0.4"),
        "reason": "cancel requested",
    },
}

CLASSES = sorted(BASE, key=lambda cls: cls.__name__)
#: Every command and event is stamped; an algorithm's parameters are a value, not an event.
STAMPED = [cls for cls in CLASSES if not issubclass(cls, AlgoParams)]


def make(cls: type[Message], **overrides: Any) -> Message:
    return cls(**{**BASE[cls], **overrides})


def test_every_exported_message_class_has_a_sample() -> None:
    exported = {
        obj
        for name in messages.__all__
        if isinstance(obj := getattr(messages, name), type)
        and issubclass(obj, Message)
        and obj not in (Message, AlgoParams)
    }
    assert exported == set(BASE)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_valid_construction_keeps_every_value(cls: type[Message]) -> None:
    message = make(cls)
    for name, value in BASE[cls].items():
        assert getattr(message, name) == value
    assert message == make(cls)
    assert hash(message) == hash(make(cls))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_messages_are_frozen(cls: type[Message]) -> None:
    message = make(cls)
    for field in dataclasses.fields(message):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(message, field.name, getattr(message, field.name))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_messages_are_slotted(cls: type[Message]) -> None:
    message = make(cls)
    assert not hasattr(message, "__dict__")
    assert "__slots__" in vars(cls)
    with pytest.raises((AttributeError, TypeError)):
        object.__setattr__(message, "not_a_field", 1)


@pytest.mark.parametrize("cls", STAMPED, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("bad", [-1, -(10**20)])
def test_negative_timestamp_is_refused(cls: type[Message], bad: int) -> None:
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.ts_ns=.*must not be negative"):
        make(cls, ts_ns=bad)


@pytest.mark.parametrize("cls", STAMPED, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("bad", [True, False, 1.0, "1", None])
def test_timestamp_must_be_a_plain_int(cls: type[Message], bad: object) -> None:
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.ts_ns=.*integer nanoseconds"):
        make(cls, ts_ns=bad)


def test_boundary_values_are_accepted() -> None:
    assert make(SubmitOrder, client_order_id="a" * 36).client_order_id == "a" * 36
    assert make(SubmitOrder, client_order_id="A.b:c/d_e-9").client_order_id == "A.b:c/d_e-9"
    assert make(Quote, bid=D("1"), ask=D("1.00")).mid == D("1")
    filled = make(OrderStatusReport, filled_quantity=D("1"), status=OrderStatus.FILLED)
    assert isinstance(filled, OrderStatusReport)
    assert filled.filled_quantity == filled.quantity
    for confidence in (0.0, 1.0, 0, 1):
        assert make(ExecutionDecision, confidence=confidence)
    assert make(ExecutionDecision, action=DecisionAction.FLAT, size=D("0"))
    assert make(PositionSnapshot, quantity=D("0"), realized_pnl=D("-3.5"))
    assert make(OrderFilled, commission=D("0"), liquidity=LiquiditySide.MAKER)
    rebate = make(OrderFilled, commission=D("-0.0001"), liquidity=LiquiditySide.MAKER)
    assert isinstance(rebate, OrderFilled) and rebate.commission < 0
    as_float = make(ExecutionDecision, confidence=1)
    assert isinstance(as_float, ExecutionDecision) and type(as_float.confidence) is float
    assert make(CancelAllOrders, venue="binance", symbol="ETHUSDT", ts_ns=0)
    assert make(SubmitOrder, ts_ns=2**63 - 1)
    post_only = make(SubmitOrder, post_only=True, time_in_force=TimeInForce.GTC)
    assert isinstance(post_only, SubmitOrder)
    assert post_only.post_only


def test_if_touched_orders_take_a_trigger_like_stops() -> None:
    """MARKET_IF_TOUCHED carries a trigger only; LIMIT_IF_TOUCHED a trigger and a limit."""
    touched = make(
        SubmitOrder, order_type=OrderType.MARKET_IF_TOUCHED, price=None, stop_price=D("99")
    )
    assert isinstance(touched, SubmitOrder)
    assert touched.notional == D("0.010") * D("99")
    limit = make(SubmitOrder, order_type=OrderType.LIMIT_IF_TOUCHED, stop_price=D("99"))
    assert isinstance(limit, SubmitOrder)
    assert limit.notional == D("0.010") * D("100.50")


MARKET = {"order_type": OrderType.MARKET, "price": None}

# (class, overrides, text the ValueError must contain)
INVALID: list[tuple[type[Message], dict[str, Any], str]] = [
    # non-positive quantities
    (SubmitOrder, {"stop_price": D("9")}, "SubmitOrder.stop_price"),
    (SubmitOrder, {"trailing_offset": D("1")}, "SubmitOrder.trailing_offset"),
    (SubmitOrder, {"expire_time_ns": 5}, "SubmitOrder.expire_time_ns"),
    (SubmitOrder, {"quantity": D("-1")}, "SubmitOrder.quantity"),
    (SubmitOrder, {"quantity": D("0")}, "SubmitOrder.quantity"),
    (SubmitOrder, {"quantity": D("-0")}, "SubmitOrder.quantity"),
    (OrderFilled, {"last_quantity": D("0")}, "OrderFilled.last_quantity"),
    (OrderFilled, {"last_price": D("-100")}, "OrderFilled.last_price"),
    (OrderFilled, {"commission": D("NaN")}, "OrderFilled.commission"),
    (OrderModified, {"quantity": D("0")}, "OrderModified.quantity"),
    (
        OrderStatusReport,
        {"quantity": D("0"), "filled_quantity": D("0")},
        "OrderStatusReport.quantity",
    ),
    (OrderStatusReport, {"filled_quantity": D("-1")}, "OrderStatusReport.filled_quantity"),
    (ModifyOrder, {"quantity": D("-2")}, "ModifyOrder.quantity"),
    (ExecutionDecision, {"size": D("-1")}, "ExecutionDecision.size"),
    (ExecutionDecision, {"size": D("0")}, "ExecutionDecision.size"),
    (PositionSnapshot, {"avg_price": D("-1")}, "PositionSnapshot.avg_price"),
    (Quote, {"bid": D("0")}, "Quote.bid"),
    # NaN and infinities
    (SubmitOrder, {"price": D("NaN")}, "SubmitOrder.price"),
    (SubmitOrder, {"price": D("sNaN")}, "SubmitOrder.price"),
    (SubmitOrder, {"price": D("Infinity")}, "SubmitOrder.price"),
    (SubmitOrder, {"price": D("-Infinity")}, "SubmitOrder.price"),
    (SubmitOrder, {"quantity": D("NaN")}, "SubmitOrder.quantity"),
    (Quote, {"bid": D("NaN")}, "Quote.bid"),
    (Quote, {"ask": D("Infinity")}, "Quote.ask"),
    (Quote, {"last": D("NaN")}, "Quote.last"),
    (OrderFilled, {"last_price": D("Infinity")}, "OrderFilled.last_price"),
    (PositionSnapshot, {"quantity": D("NaN")}, "PositionSnapshot.quantity"),
    (PositionSnapshot, {"unrealized_pnl": D("-Infinity")}, "PositionSnapshot.unrealized_pnl"),
    (ExecutionDecision, {"limit_price": D("NaN")}, "ExecutionDecision.limit_price"),
    # floats (and other non-Decimals) where money goes
    (SubmitOrder, {"quantity": 0.1}, "SubmitOrder.quantity"),
    (SubmitOrder, {"price": 100.5}, "SubmitOrder.price"),
    (SubmitOrder, {"quantity": 1}, "SubmitOrder.quantity"),
    (SubmitOrder, {"quantity": True}, "SubmitOrder.quantity"),
    (SubmitOrder, {"quantity": "1.0"}, "SubmitOrder.quantity"),
    (Quote, {"bid": 100.5}, "Quote.bid"),
    (OrderFilled, {"last_price": 100.5}, "OrderFilled.last_price"),
    (PositionSnapshot, {"quantity": 1.0}, "PositionSnapshot.quantity"),
    (ExecutionDecision, {"size": 0.5}, "ExecutionDecision.size"),
    (OrderStatusReport, {"filled_quantity": 0.5}, "OrderStatusReport.filled_quantity"),
    # order-type rules
    (SubmitOrder, {"order_type": OrderType.LIMIT, "price": None}, "SubmitOrder.price=None"),
    (
        SubmitOrder,
        {"order_type": OrderType.STOP_LIMIT, "price": None, "stop_price": D("99")},
        "SubmitOrder.price=None",
    ),
    (
        SubmitOrder,
        {"order_type": OrderType.STOP_LIMIT, "price": D("99")},
        "SubmitOrder.stop_price=None",
    ),
    (SubmitOrder, {**MARKET, "order_type": OrderType.STOP}, "SubmitOrder.stop_price=None"),
    (
        SubmitOrder,
        {**MARKET, "order_type": OrderType.TRAILING_STOP},
        "SubmitOrder.trailing_offset=None",
    ),
    (
        SubmitOrder,
        {**MARKET, "order_type": OrderType.MARKET_IF_TOUCHED},
        "SubmitOrder.stop_price=None",
    ),
    (
        SubmitOrder,
        {"order_type": OrderType.LIMIT_IF_TOUCHED},
        "SubmitOrder.stop_price=None",
    ),
    (
        SubmitOrder,
        {"order_type": OrderType.LIMIT_IF_TOUCHED, "price": None, "stop_price": D("99")},
        "SubmitOrder.price=None",
    ),
    (
        SubmitOrder,
        {
            **MARKET,
            "order_type": OrderType.MARKET_IF_TOUCHED,
            "stop_price": D("99"),
            "trailing_offset": D("1"),
        },
        "SubmitOrder.trailing_offset",
    ),
    (
        ExecutionDecision,
        {"order_type": OrderType.LIMIT_IF_TOUCHED},
        "ExecutionDecision.limit_price=None",
    ),
    (SubmitOrder, {"time_in_force": TimeInForce.GTD}, "SubmitOrder.expire_time_ns=None"),
    (SubmitOrder, {**MARKET, "post_only": True}, "SubmitOrder.post_only=True"),
    (
        SubmitOrder,
        {**MARKET, "order_type": OrderType.STOP, "stop_price": D("1"), "post_only": True},
        "SubmitOrder.post_only=True",
    ),
    (
        SubmitOrder,
        {"post_only": True, "time_in_force": TimeInForce.IOC},
        "SubmitOrder.post_only=True",
    ),
    (
        SubmitOrder,
        {"post_only": True, "time_in_force": TimeInForce.FOK},
        "SubmitOrder.post_only=True",
    ),
    (SubmitOrder, {"order_type": OrderType.MARKET}, "SubmitOrder.price="),
    (SubmitOrder, {"post_only": 1}, "SubmitOrder.post_only"),
    (SubmitOrder, {"reduce_only": "yes"}, "SubmitOrder.reduce_only"),
    (SubmitOrder, {"expire_time_ns": -1}, "SubmitOrder.expire_time_ns"),
    (SubmitOrder, {"expire_time_ns": True}, "SubmitOrder.expire_time_ns"),
    (
        ExecutionDecision,
        {"order_type": OrderType.LIMIT},
        "ExecutionDecision.limit_price=None",
    ),
    # enums must be members, not their values
    (SubmitOrder, {"side": "BUY"}, "SubmitOrder.side"),
    (SubmitOrder, {"order_type": "LIMIT"}, "SubmitOrder.order_type"),
    (SubmitOrder, {"time_in_force": "GTC"}, "SubmitOrder.time_in_force"),
    (OrderStatusReport, {"status": "FILLED"}, "OrderStatusReport.status"),
    (OrderDenied, {"code": "MAX_POSITION"}, "OrderDenied.code"),
    (TradingStateChanged, {"state": "HALTED"}, "TradingStateChanged.state"),
    (ExecutionDecision, {"action": Side.BUY}, "ExecutionDecision.action"),
    # client order ids: charset and length
    (SubmitOrder, {"client_order_id": "a" * 37}, "SubmitOrder.client_order_id"),
    (SubmitOrder, {"client_order_id": ""}, "SubmitOrder.client_order_id"),
    (SubmitOrder, {"client_order_id": "has space"}, "SubmitOrder.client_order_id"),
    (SubmitOrder, {"client_order_id": "a*b"}, "SubmitOrder.client_order_id"),
    (SubmitOrder, {"client_order_id": "ordre-é"}, "SubmitOrder.client_order_id"),
    (SubmitOrder, {"client_order_id": "abc\n"}, "SubmitOrder.client_order_id"),
    (SubmitOrder, {"client_order_id": 1234}, "SubmitOrder.client_order_id"),
    (CancelOrder, {"client_order_id": "x" * 40}, "CancelOrder.client_order_id"),
    (OrderFilled, {"client_order_id": "a#1"}, "OrderFilled.client_order_id"),
    (ModifyOrder, {"new_client_order_id": "b" * 37}, "ModifyOrder.new_client_order_id"),
    (ModifyOrder, {"new_client_order_id": "momo-0001"}, "ModifyOrder.new_client_order_id"),
    # identifiers and free text
    (SubmitOrder, {"venue": ""}, "SubmitOrder.venue"),
    (SubmitOrder, {"symbol": " BTCUSDT"}, "SubmitOrder.symbol"),
    (Quote, {"venue": None}, "Quote.venue"),
    (OrderAccepted, {"venue_order_id": 42}, "OrderAccepted.venue_order_id"),
    (OrderDenied, {"reason": None}, "OrderDenied.reason"),
    (TradingStateChanged, {"reason": b"bytes"}, "TradingStateChanged.reason"),
    # cross-field rules
    (Quote, {"bid": D("101"), "ask": D("100")}, "Quote: bid 101 is above ask 100"),
    (
        OrderStatusReport,
        {"quantity": D("1"), "filled_quantity": D("1.01")},
        "OrderStatusReport.filled_quantity=1.01",
    ),
    (ModifyOrder, {"price": None}, "ModifyOrder: nothing to modify"),
    # confidence
    (ExecutionDecision, {"confidence": -0.01}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": 1.01}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": 2}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": float("nan")}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": float("inf")}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": True}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": "0.5"}, "ExecutionDecision.confidence"),
    (ExecutionDecision, {"confidence": D("0.5")}, "ExecutionDecision.confidence"),
]


@pytest.mark.parametrize(
    ("cls", "overrides", "expected"),
    INVALID,
    ids=[f"{cls.__name__}-{'-'.join(kw)}-{i}" for i, (cls, kw, _) in enumerate(INVALID)],
)
def test_invalid_values_are_refused_naming_the_field(
    cls: type[Message], overrides: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(expected)):
        make(cls, **overrides)


def test_required_fields_have_no_defaults() -> None:
    with pytest.raises(TypeError):
        SubmitOrder(client_order_id="a")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Quote("binance", "BTCUSDT", D("1"), D("2"))  # type: ignore[misc]
