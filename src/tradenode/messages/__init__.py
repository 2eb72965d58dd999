"""Every message tradenode's actors exchange, and their one wire format.

Strategy tier: every command and event a strategy or an adapter sends or
receives. A malformed frame raises :class:`tradenode.DecodeError`.
"""

from __future__ import annotations

from ._codec import DEFAULT_REGISTRY, FORMAT_VERSION, MessageRegistry, decode, encode
from ._enums import (
    DecisionAction,
    DenialCode,
    LiquiditySide,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
)
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
from ._validation import CLIENT_ORDER_ID_PATTERN

__all__ = [
    "CLIENT_ORDER_ID_PATTERN",
    "DEFAULT_REGISTRY",
    "FORMAT_VERSION",
    "CancelAllOrders",
    "CancelOrder",
    "CancelRejected",
    "DecisionAction",
    "DenialCode",
    "ExecutionDecision",
    "LiquiditySide",
    "Message",
    "MessageRegistry",
    "ModifyOrder",
    "ModifyRejected",
    "OrderAccepted",
    "OrderCanceled",
    "OrderDenied",
    "OrderExpired",
    "OrderFilled",
    "OrderModified",
    "OrderRejected",
    "OrderStatus",
    "OrderStatusReport",
    "OrderSubmitted",
    "OrderType",
    "PositionSnapshot",
    "QueryOrder",
    "Quote",
    "Side",
    "SubmitOrder",
    "TimeInForce",
    "TradingState",
    "TradingStateChanged",
    "decode",
    "encode",
]
