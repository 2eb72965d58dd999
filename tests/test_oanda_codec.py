"""The OANDA codec: order requests out, transactions/orders/positions/prices in.

Shapes from the fact sheet (venues/oanda-ibkr.md part A: v20 spec 3.0.25 as
oandapyV20 0.7.2 exchanges it). No I/O.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tradenode import MalformedPayloadError
from tradenode.actors import AmendMode, CancelAllScope
from tradenode.brokers.oanda import oanda_capabilities

# The codec is private (no I/O, the adapter's own); its tests import it directly.
from tradenode.brokers.oanda._codec import (
    Heartbeat,
    OandaInstrument,
    OrderCancelled,
    OrderCancelRejected,
    OrderCreated,
    OrderFill,
    OrderRejectedTxn,
    OtherTransaction,
    UnknownTransaction,
    UnsupportedOrderError,
    encode_order,
    encode_replace,
    format_time,
    parse_account_summary,
    parse_error_answer,
    parse_instruments,
    parse_line,
    parse_order,
    parse_positions,
    parse_price,
    parse_time_ns,
    parse_transaction,
    parse_transactions,
    status_report,
)
from tradenode.messages import (
    ModifyOrder,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
)

D = Decimal
EUR_USD = OandaInstrument("EUR_USD", units_precision=0, price_precision=5, minimum_units=D(1))
USD_JPY = OandaInstrument("USD_JPY", units_precision=0, price_precision=3, minimum_units=D(1))
T = "2024-03-01T10:00:00.123456789Z"
T_NS = 1709287200123456789


def order(**kw: Any) -> SubmitOrder:
    base: dict[str, Any] = {
        "client_order_id": "s1-0001",
        "strategy_id": "s1",
        "venue": "oanda",
        "symbol": "EUR_USD",
        "side": Side.BUY,
        "order_type": OrderType.MARKET,
        "quantity": D(1000),
    }
    base.update(kw)
    return SubmitOrder(**base)


# -- times -------------------------------------------------------------------------------


def test_times_rfc3339_with_nanoseconds_and_unix() -> None:
    assert parse_time_ns(T) == T_NS
    assert parse_time_ns("2024-03-01T10:00:00Z") == T_NS - 123456789
    assert parse_time_ns("2024-03-01T11:00:00.5+01:00") == T_NS - 123456789 + 500_000_000
    assert parse_time_ns("1709287200.123456789") == T_NS
    assert format_time(T_NS) == T
    with pytest.raises(ValueError, match="not a time"):
        parse_time_ns("yesterday")


# -- order requests ---------------------------------------------------------------------------


def test_market_order_is_signed_units_fok_with_client_extensions() -> None:
    body = encode_order(order(side=Side.SELL), EUR_USD)
    assert body == {
        "order": {
            "type": "MARKET",
            "instrument": "EUR_USD",
            "units": "-1000",
            "timeInForce": "FOK",
            "positionFill": "DEFAULT",
            "clientExtensions": {"id": "s1-0001", "tag": "s1"},
        }
    }


def test_market_ioc_reduce_only_and_price_bound() -> None:
    body = encode_order(
        order(time_in_force=TimeInForce.IOC, reduce_only=True), EUR_USD, price_bound=D("1.1")
    )["order"]
    assert body["timeInForce"] == "IOC"
    assert body["positionFill"] == "REDUCE_ONLY"
    assert body["priceBound"] == "1.10000"


def test_limit_gtd_carries_gtd_time_and_price_at_display_precision() -> None:
    body = encode_order(
        order(
            order_type=OrderType.LIMIT,
            price=D("1.085"),
            time_in_force=TimeInForce.GTD,
            expire_time_ns=T_NS,
        ),
        EUR_USD,
    )["order"]
    assert body["type"] == "LIMIT"
    assert body["price"] == "1.08500"
    assert body["timeInForce"] == "GTD"
    assert body["gtdTime"] == T


@pytest.mark.parametrize(
    ("kind", "oanda"),
    [(OrderType.STOP, "STOP"), (OrderType.MARKET_IF_TOUCHED, "MARKET_IF_TOUCHED")],
)
def test_triggered_orders_send_the_trigger_as_price(kind: OrderType, oanda: str) -> None:
    body = encode_order(
        order(
            order_type=kind, stop_price=D("151.25"), symbol="USD_JPY", time_in_force=TimeInForce.DAY
        ),
        USD_JPY,
    )["order"]
    assert body["type"] == oanda
    assert body["price"] == "151.250"
    assert body["timeInForce"] == "GFD"


def test_what_oanda_cannot_express_is_refused_before_sending() -> None:
    with pytest.raises(UnsupportedOrderError, match="STOP_LIMIT"):
        encode_order(order(order_type=OrderType.STOP_LIMIT, price=D(1), stop_price=D(1)), EUR_USD)
    with pytest.raises(UnsupportedOrderError, match="OPG"):
        encode_order(order(time_in_force=TimeInForce.OPG), EUR_USD)
    with pytest.raises(UnsupportedOrderError, match="post-only"):
        encode_order(order(order_type=OrderType.LIMIT, price=D(1), post_only=True), EUR_USD)
    with pytest.raises(UnsupportedOrderError, match="decimals") as units:
        encode_order(order(quantity=D("10.5")), EUR_USD)
    assert units.value.code == "UNITS_PRECISION_EXCEEDED"
    with pytest.raises(UnsupportedOrderError, match="decimals") as price:
        encode_order(order(order_type=OrderType.LIMIT, price=D("1.123456")), EUR_USD)
    assert price.value.code == "PRICE_PRECISION_EXCEEDED"
    # A whole quantity written with decimals is fine.
    assert encode_order(order(quantity=D("10.00")), EUR_USD)["order"]["units"] == "10"


def test_replace_keeps_the_venue_order_and_changes_what_was_asked() -> None:
    current = {
        "id": "7",
        "type": "LIMIT",
        "instrument": "EUR_USD",
        "units": "-500",
        "price": "1.20000",
        "timeInForce": "GTC",
        "positionFill": "DEFAULT",
        "triggerCondition": "DEFAULT",
        "state": "PENDING",
        "clientExtensions": {"id": "s1-0001", "tag": "s1"},
        "createTime": T,
    }
    modify = ModifyOrder(
        client_order_id="s1-0001",
        venue="oanda",
        symbol="EUR_USD",
        quantity=D(300),
        price=D("1.19"),
        new_client_order_id="s1-0002",
    )
    body = encode_replace(current, modify, EUR_USD)["order"]
    assert body["units"] == "-300"
    assert body["price"] == "1.19000"
    assert body["clientExtensions"] == {"id": "s1-0002", "tag": "s1"}
    assert "state" not in body and "id" not in body
    stop = dict(current, type="STOP")
    with pytest.raises(UnsupportedOrderError, match="trigger"):
        encode_replace(stop, modify, EUR_USD)
    with pytest.raises(UnsupportedOrderError, match="cannot be replaced"):
        encode_replace(dict(current, type="MARKET"), modify, EUR_USD)


# -- transactions ---------------------------------------------------------------------------


def fill(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "6373",
        "batchID": "6372",
        "time": T,
        "type": "ORDER_FILL",
        "orderID": "6372",
        "clientOrderID": "s1-0001",
        "instrument": "EUR_USD",
        "units": "-1000",
        "price": "1.08400",
        "fullVWAP": "1.08412",
        "reason": "MARKET_ORDER",
        "pl": "0.0000",
        "financing": "-0.2500",
        "commission": "1.5000",
        "guaranteedExecutionFee": "0.0000",
        "accountBalance": "100000.0000",
        "tradeOpened": {"tradeID": "6373", "units": "-1000", "price": "1.08412"},
    }
    base.update(kw)
    return base


def test_order_fill_side_price_and_fee() -> None:
    parsed = parse_transaction(fill())
    assert parsed == OrderFill(
        txn_id="6373",
        order_id="6372",
        client_order_id="s1-0001",
        instrument="EUR_USD",
        units=D(-1000),
        price=D("1.08412"),
        fee=D("1.7500"),
        ts_ns=T_NS,
    )
    assert isinstance(parsed, OrderFill) and parsed.side is Side.SELL
    # fullVWAP missing: the deprecated price; no fees at all: zero.
    bare = fill(fullVWAP=None, financing=None, commission=None, guaranteedExecutionFee=None)
    parsed = parse_transaction(bare)
    assert isinstance(parsed, OrderFill)
    assert parsed.price == D("1.084") and parsed.fee == 0


def test_create_cancel_reject_and_other_transactions() -> None:
    created = parse_transaction(
        {
            "id": "8",
            "time": T,
            "type": "LIMIT_ORDER",
            "instrument": "EUR_USD",
            "units": "100",
            "price": "1.1",
            "reason": "REPLACEMENT",
            "replacesOrderID": "7",
            "clientExtensions": {"id": "s1-0002"},
        }
    )
    assert created == OrderCreated(
        "8", "s1-0002", "EUR_USD", "LIMIT", D(100), "REPLACEMENT", "7", T_NS, price=D("1.1")
    )
    cancelled = parse_transaction(
        {
            "id": "9",
            "time": T,
            "type": "ORDER_CANCEL",
            "orderID": "8",
            "clientOrderID": "s1-0002",
            "reason": "TIME_IN_FORCE_EXPIRED",
        }
    )
    assert isinstance(cancelled, OrderCancelled) and cancelled.expired
    rejected = parse_transaction(
        {
            "id": "10",
            "time": T,
            "type": "MARKET_IF_TOUCHED_ORDER_REJECT",
            "instrument": "EUR_USD",
            "units": "1",
            "rejectReason": "PRICE_PRECISION_EXCEEDED",
            "clientExtensions": {"id": "s1-0003"},
        }
    )
    assert rejected == OrderRejectedTxn(
        "10", "s1-0003", "EUR_USD", "PRICE_PRECISION_EXCEEDED", T_NS
    )
    cancel_rejected = parse_transaction(
        {
            "id": "11",
            "time": T,
            "type": "ORDER_CANCEL_REJECT",
            "orderID": "8",
            "rejectReason": "ORDER_DOESNT_EXIST",
        }
    )
    assert isinstance(cancel_rejected, OrderCancelRejected)
    assert parse_transaction(
        {"id": "12", "time": T, "type": "DAILY_FINANCING"}
    ) == OtherTransaction("12", "DAILY_FINANCING")
    assert parse_transaction(
        {"id": "13", "time": T, "type": "DIVIDEND_ADJUSTMENT"}
    ) == UnknownTransaction("13", "DIVIDEND_ADJUSTMENT")
    assert parse_transaction(
        {"type": "HEARTBEAT", "lastTransactionID": "13", "time": T}
    ) == Heartbeat("13")


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"type": "ORDER_FILL"},
        fill(id="x1"),
        fill(units="lots"),
        fill(units="0"),
        fill(time="noon"),
        fill(orderID=None),
        {"id": "1", "time": T, "type": 5},
    ],
)
def test_unreadable_transactions_are_typed_errors(bad: object) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_transaction(bad, broker="oanda")


def test_lines_and_sinceid() -> None:
    assert parse_line(b'{"type": "HEARTBEAT"}') == {"type": "HEARTBEAT"}
    for bad in (b'{"type": "ORD', b"[1]", b"NaN", b"\xff"):
        with pytest.raises(MalformedPayloadError):
            parse_line(bad)
    raw, last = parse_transactions({"transactions": [fill()], "lastTransactionID": "6373"})
    assert last == "6373" and len(raw) == 1
    with pytest.raises(MalformedPayloadError):
        parse_transactions({"transactions": {}, "lastTransactionID": "1"})


# -- orders, positions, account, instruments ---------------------------------------------------------


def venue_order(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "7",
        "createTime": T,
        "type": "LIMIT",
        "instrument": "EUR_USD",
        "units": "-500",
        "price": "1.20000",
        "timeInForce": "GTC",
        "state": "PENDING",
        "clientExtensions": {"id": "s1-0001"},
    }
    base.update(kw)
    return base


def test_order_state_to_status_report() -> None:
    pending = parse_order(venue_order())
    assert pending.is_open and pending.side is Side.SELL
    report = status_report("oanda", pending, "s1-0001", filled=D(0), ts_ns=5)
    assert report.status is OrderStatus.ACCEPTED
    assert report.quantity == 500 and report.price == D("1.2") and report.venue_order_id == "7"
    filled = parse_order(venue_order(state="FILLED"))
    assert status_report("oanda", filled, "s1-0001", filled=D(0), ts_ns=5).filled_quantity == 500
    cancelled = parse_order(venue_order(state="CANCELLED"))
    partly = status_report("oanda", cancelled, "s1-0001", filled=D(200), ts_ns=5)
    assert partly.status is OrderStatus.CANCELED and partly.filled_quantity == 200
    expired = parse_order(venue_order(state="CANCELLED", timeInForce="GTD"))
    assert status_report("oanda", expired, "x", filled=D(0), ts_ns=5).status is OrderStatus.EXPIRED
    with pytest.raises(MalformedPayloadError, match="state"):
        parse_order(venue_order(state="SLEEPING"))
    assert parse_order(venue_order(clientExtensions=None)).client_order_id is None


def test_positions_are_net_units() -> None:
    positions = parse_positions(
        {
            "positions": [
                {
                    "instrument": "EUR_USD",
                    "long": {"units": "0"},
                    "short": {"units": "-100", "averagePrice": "1.1"},
                },
                {
                    "instrument": "USD_JPY",
                    "long": {"units": "30", "averagePrice": "150"},
                    "short": {"units": "0"},
                },
            ],
            "lastTransactionID": "9",
        }
    )
    assert positions["EUR_USD"].units == -100 and positions["EUR_USD"].average_price == D("1.1")
    assert positions["USD_JPY"].units == 30


def test_account_summary_and_instruments() -> None:
    summary = parse_account_summary(
        {
            "account": {"currency": "USD", "balance": "100000.0000", "lastTransactionID": "9"},
            "lastTransactionID": "9",
        }
    )
    assert (summary.currency, summary.balance, summary.last_transaction_id) == (
        "USD",
        D(100000),
        "9",
    )
    listed = parse_instruments(
        {
            "instruments": [
                {
                    "name": "EUR_USD",
                    "type": "CURRENCY",
                    "displayPrecision": 5,
                    "tradeUnitsPrecision": 0,
                    "minimumTradeSize": "1",
                }
            ]
        }
    )
    assert listed == {"EUR_USD": EUR_USD}
    with pytest.raises(MalformedPayloadError):
        parse_instruments({"instruments": [{"name": "EUR_USD"}]})


# -- prices, errors ----------------------------------------------------------------------------


def test_prices_become_quotes() -> None:
    line = {
        "type": "PRICE",
        "instrument": "EUR_USD",
        "time": T,
        "tradeable": True,
        "bids": [{"price": "1.08398", "liquidity": 10000000}, {"price": "1.08397", "liquidity": 1}],
        "asks": [{"price": "1.08412", "liquidity": 10000000}],
        "closeoutBid": "1.08398",
        "closeoutAsk": "1.08412",
    }
    quote = parse_price(line, venue="oanda")
    assert quote is not None
    assert (quote.symbol, quote.bid, quote.ask, quote.ts_ns) == (
        "EUR_USD",
        D("1.08398"),
        D("1.08412"),
        T_NS,
    )
    assert parse_price({"type": "HEARTBEAT", "time": T}, venue="oanda") is None
    assert parse_price(dict(line, bids=[]), venue="oanda") is None
    with pytest.raises(MalformedPayloadError):
        parse_price(dict(line, asks=[{"price": "-1"}]), venue="oanda")


def test_error_answers() -> None:
    reject = {
        "id": "5",
        "time": T,
        "type": "MARKET_ORDER_REJECT",
        "rejectReason": "INSUFFICIENT_MARGIN",
        "clientExtensions": {"id": "s1-0001"},
    }
    body = {
        "orderRejectTransaction": reject,
        "relatedTransactionIDs": ["5"],
        "lastTransactionID": "5",
        "errorCode": "INSUFFICIENT_MARGIN",
        "errorMessage": "not enough margin",
    }
    answer = parse_error_answer(400, json.dumps(body))
    assert answer.code == "INSUFFICIENT_MARGIN" and answer.message == "not enough margin"
    assert isinstance(answer.reject, OrderRejectedTxn)
    cancel_reject = {
        "id": "6",
        "time": T,
        "type": "ORDER_CANCEL_REJECT",
        "rejectReason": "ORDER_DOESNT_EXIST",
    }
    no_code = parse_error_answer(404, json.dumps({"orderCancelRejectTransaction": cancel_reject}))
    assert no_code.code == "ORDER_DOESNT_EXIST" and no_code.not_found
    assert parse_error_answer(429, "").rate_limited
    assert parse_error_answer(503, "<html>busy</html>").unknown_outcome
    assert parse_error_answer(401, '{"errorMessage": "Insufficient authorization"}').unauthorized


def test_capabilities_declare_what_the_codec_expresses() -> None:
    capabilities = oanda_capabilities()
    assert capabilities.amend is AmendMode.CANCEL_REPLACE
    assert capabilities.cancel_all is CancelAllScope.SYMBOL
    assert capabilities.reduce_only and not capabilities.post_only
    assert capabilities.acceptance is None
    assert capabilities.order_types == {
        OrderType.MARKET,
        OrderType.LIMIT,
        OrderType.STOP,
        OrderType.MARKET_IF_TOUCHED,
    }
    for kind in capabilities.order_types:
        for tif in capabilities.time_in_force:
            kw: dict[str, Any] = {"order_type": kind, "time_in_force": tif}
            if kind is OrderType.LIMIT:
                kw["price"] = D("1.1")
            if kind.needs_stop_price:
                kw["stop_price"] = D("1.1")
            if tif is TimeInForce.GTD:
                kw["expire_time_ns"] = T_NS
            encode_order(order(**kw), EUR_USD)  # every declared pair is expressible
    assert capabilities.client_ids.allows("s1-0001.a_b")
    assert not capabilities.client_ids.allows("s1/0001")
