"""The Alpaca codec, pure: orders out (checked against alpaca-py's own request models),
Alpaca's documented payloads in (the fact sheet's and the spec's examples), errors,
times and the execution ids that make a fill the same fill from the stream and REST."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tradenode import MalformedPayloadError
from tradenode.brokers.alpaca import alpaca_capabilities

# The codec is internal (no I/O): its tests import it from its private module.
from tradenode.brokers.alpaca._codec import (
    AlpacaAsset,
    Authorization,
    ErrorKind,
    Listening,
    TradeUpdate,
    UnknownStream,
    UnsupportedOrderError,
    encode_order,
    encode_replace,
    execution_id,
    format_time,
    map_status,
    parse_activities,
    parse_cancel_all,
    parse_clock,
    parse_data_frame,
    parse_error,
    parse_order,
    parse_positions,
    parse_rate_headers,
    parse_stream_message,
    parse_time_ns,
    status_report,
)
from tradenode.messages import (
    ModifyOrder,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
)

D = Decimal

AAPL = AlpacaAsset("AAPL", "us_equity", tradable=True, fractionable=True)
WHOLE = AlpacaAsset("BRK.A", "us_equity", tradable=True, fractionable=False)
BTC = AlpacaAsset(
    "BTC/USD",
    "crypto",
    tradable=True,
    fractionable=True,
    min_order_size=D("0.0001"),
    min_trade_increment=D("0.000000001"),
    price_increment=D("1"),
)

#: The spec's EquityOrderResponse example (fact sheet section 6).
ORDER: dict[str, Any] = {
    "id": "7b08df51-c1ac-453c-99f9-323a5f075f0d",
    "client_order_id": "5680c4bc-9ac1-4a12-a44c-df427ba53032",
    "created_at": "2023-12-12T22:31:24.668464435Z",
    "updated_at": "2023-12-12T22:31:24.668464435Z",
    "submitted_at": "2023-12-12T22:31:24.577215743Z",
    "filled_at": None,
    "expired_at": None,
    "canceled_at": None,
    "failed_at": None,
    "replaced_at": None,
    "replaced_by": None,
    "replaces": None,
    "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
    "symbol": "AAPL",
    "asset_class": "us_equity",
    "notional": None,
    "qty": "2",
    "filled_qty": "0",
    "filled_avg_price": None,
    "order_class": "",
    "order_type": "limit",
    "type": "limit",
    "side": "buy",
    "time_in_force": "gtc",
    "limit_price": "150",
    "stop_price": None,
    "status": "accepted",
    "extended_hours": False,
    "legs": None,
    "trail_percent": None,
    "trail_price": None,
    "hwm": None,
    "source": None,
    "subtag": None,
}

#: The documentation's verbatim ``fill`` example (fact sheet section 10).
FILL_EVENT = {
    "stream": "trade_updates",
    "data": {
        "event": "fill",
        "execution_id": "2f63ea93-423d-4169-b3f6-3fdafc10c418",
        "order": {
            "asset_class": "crypto",
            "asset_id": "1cf35270-99ee-44e2-a77f-6fab902c7f80",
            "cancel_requested_at": None,
            "canceled_at": None,
            "client_order_id": "4642fd68-d59a-47d7-a9ac-e22f536828d1",
            "created_at": "2022-04-19T13:45:04.981350886-04:00",
            "expired_at": None,
            "extended_hours": False,
            "failed_at": None,
            "filled_at": "2022-04-19T17:45:05.024916716Z",
            "filled_avg_price": "105.8988475",
            "filled_qty": "1790.86",
            "hwm": None,
            "id": "a5be8f5e-fdfa-41f5-a644-7a74fe947a8f",
            "legs": None,
            "limit_price": None,
            "notional": None,
            "order_class": "",
            "order_type": "market",
            "qty": "1790.86",
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "side": "sell",
            "status": "filled",
            "stop_price": None,
            "submitted_at": "2022-04-19T13:45:04.980944666-04:00",
            "symbol": "SOLUSD",
            "time_in_force": "gtc",
            "trail_percent": None,
            "trail_price": None,
            "type": "market",
            "updated_at": "2022-04-19T13:45:05.027690731-04:00",
        },
        "position_qty": "0",
        "price": "105.8988475",
        "qty": "1790.86",
        "timestamp": "2022-04-19T17:45:05.024916716Z",
    },
}


def submit(**fields: Any) -> SubmitOrder:
    base: dict[str, Any] = {
        "client_order_id": "node-42-1",
        "strategy_id": "s1",
        "venue": "alpaca",
        "symbol": "AAPL",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": D("2"),
        "price": D("150"),
        "time_in_force": TimeInForce.GTC,
    }
    base.update(fields)
    return SubmitOrder(**base)


# -- orders out ----------------------------------------------------------------------------


def test_a_limit_order_is_the_documented_example_body() -> None:
    body = encode_order(submit(), AAPL)
    assert body == {
        "symbol": "AAPL",
        "qty": "2",
        "side": "buy",
        "type": "limit",
        "limit_price": "150",
        "time_in_force": "gtc",
        "client_order_id": "node-42-1",
    }


def _sdk_fields(request: Any) -> dict[str, Any]:
    """alpaca-py's body, its floats read as decimals (it sends JSON numbers)."""
    fields = request.to_request_fields()
    return {
        key: D(str(value))
        if isinstance(value, float | int) and not isinstance(value, bool)
        else value
        for key, value in fields.items()
    }


def _ours(body: dict[str, Any]) -> dict[str, Any]:
    keys = ("qty", "limit_price", "stop_price", "trail_price")
    return {key: D(value) if key in keys else value for key, value in body.items()}


@pytest.mark.parametrize(
    ("command", "sdk"),
    [
        (
            submit(order_type=OrderType.MARKET, price=None, time_in_force=TimeInForce.DAY),
            ("MarketOrderRequest", {"time_in_force": "day"}),
        ),
        (
            submit(time_in_force=TimeInForce.IOC, price=D("150.25")),
            ("LimitOrderRequest", {"time_in_force": "ioc", "limit_price": 150.25}),
        ),
        (
            submit(order_type=OrderType.STOP, price=None, stop_price=D("155"), quantity=D("3")),
            ("StopOrderRequest", {"stop_price": 155, "qty": 3}),
        ),
        (
            submit(
                order_type=OrderType.STOP_LIMIT,
                price=D("156"),
                stop_price=D("155.5"),
                time_in_force=TimeInForce.FOK,
            ),
            (
                "StopLimitOrderRequest",
                {"time_in_force": "fok", "limit_price": 156, "stop_price": 155.5},
            ),
        ),
        (
            submit(
                order_type=OrderType.TRAILING_STOP,
                price=None,
                trailing_offset=D("6.15"),
                side=Side.SELL,
                time_in_force=TimeInForce.DAY,
            ),
            (
                "TrailingStopOrderRequest",
                {"time_in_force": "day", "trail_price": 6.15, "side": "sell"},
            ),
        ),
        (
            submit(order_type=OrderType.MARKET, price=None, time_in_force=TimeInForce.OPG),
            ("MarketOrderRequest", {"time_in_force": "opg"}),
        ),
        (
            submit(order_type=OrderType.MARKET, price=None, time_in_force=TimeInForce.CLS),
            ("MarketOrderRequest", {"time_in_force": "cls"}),
        ),
    ],
    ids=["market-day", "limit-ioc", "stop", "stop-limit-fok", "trailing-stop", "opg", "cls"],
)
def test_every_order_type_is_what_alpaca_py_would_send(
    command: SubmitOrder, sdk: tuple[str, dict[str, Any]]
) -> None:
    requests = pytest.importorskip("alpaca.trading.requests")
    name, overrides = sdk
    fields: dict[str, Any] = {
        "symbol": "AAPL",
        "qty": 2,
        "side": "buy",
        "time_in_force": "gtc",
        "client_order_id": "node-42-1",
    }
    fields.update(overrides)
    expected = _sdk_fields(getattr(requests, name)(**fields))
    assert _ours(encode_order(command, AAPL)) == expected


def test_fractional_quantities_only_where_the_asset_allows_and_only_for_day() -> None:
    day = submit(quantity=D("0.5"), time_in_force=TimeInForce.DAY)
    assert encode_order(day, AAPL)["qty"] == "0.5"
    with pytest.raises(UnsupportedOrderError, match="not fractionable") as refused:
        encode_order(day, WHOLE)
    assert refused.value.code == "NOT_FRACTIONABLE"
    with pytest.raises(UnsupportedOrderError) as gtc:
        encode_order(submit(quantity=D("0.5")), AAPL)
    assert gtc.value.code == "FRACTIONAL_TIME_IN_FORCE"
    with pytest.raises(UnsupportedOrderError, match="9 decimals"):
        encode_order(submit(quantity=D("0.0000000001"), time_in_force=TimeInForce.DAY), AAPL)


def test_the_sub_penny_rule_is_checked_before_sending() -> None:
    assert encode_order(submit(price=D("150.12")), AAPL)["limit_price"] == "150.12"
    assert encode_order(submit(price=D("0.1234")), AAPL)["limit_price"] == "0.1234"
    with pytest.raises(UnsupportedOrderError) as refused:
        encode_order(submit(price=D("290.123")), AAPL)
    assert refused.value.code == "SUB_PENNY_PRICE"
    with pytest.raises(UnsupportedOrderError):
        encode_order(submit(price=D("0.12345")), AAPL)


def test_extended_hours_marks_day_limit_orders_only() -> None:
    day = submit(time_in_force=TimeInForce.DAY)
    assert encode_order(day, AAPL, extended_hours=True)["extended_hours"] is True
    assert "extended_hours" not in encode_order(day, AAPL)
    assert "extended_hours" not in encode_order(submit(), AAPL, extended_hours=True)
    market = submit(order_type=OrderType.MARKET, price=None, time_in_force=TimeInForce.DAY)
    assert "extended_hours" not in encode_order(market, AAPL, extended_hours=True)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"post_only": True}, "UNSUPPORTED_POST_ONLY"),
        ({"reduce_only": True}, "UNSUPPORTED_REDUCE_ONLY"),
        ({"time_in_force": TimeInForce.GTD, "expire_time_ns": 10**18}, "UNSUPPORTED_TIME_IN_FORCE"),
        (
            {"order_type": OrderType.MARKET_IF_TOUCHED, "price": None, "stop_price": D("140")},
            "UNSUPPORTED_ORDER_TYPE",
        ),
        (
            {
                "order_type": OrderType.TRAILING_STOP,
                "price": None,
                "trailing_offset": D("1"),
                "time_in_force": TimeInForce.IOC,
            },
            "UNSUPPORTED_TIME_IN_FORCE",
        ),
    ],
)
def test_what_alpaca_cannot_express_is_refused_with_a_code(
    fields: dict[str, Any], code: str
) -> None:
    with pytest.raises(UnsupportedOrderError) as refused:
        encode_order(submit(**fields), AAPL)
    assert refused.value.code == code


def test_crypto_takes_gtc_and_ioc_and_its_increments() -> None:
    order = submit(symbol="BTC/USD", quantity=D("0.02"), price=D("2100"))
    assert encode_order(order, BTC)["qty"] == "0.02"
    with pytest.raises(UnsupportedOrderError):
        encode_order(
            submit(symbol="BTC/USD", quantity=D("0.02"), time_in_force=TimeInForce.DAY), BTC
        )
    with pytest.raises(UnsupportedOrderError):
        encode_order(submit(symbol="BTC/USD", quantity=D("0.00001")), BTC)
    with pytest.raises(UnsupportedOrderError):
        encode_order(submit(symbol="BTC/USD", quantity=D("0.02"), price=D("2100.5")), BTC)


def test_the_declared_capabilities_are_what_the_codec_expresses() -> None:
    capabilities = alpaca_capabilities()
    for order_type in capabilities.order_types:
        fields: dict[str, Any] = {"order_type": order_type, "price": None}
        if order_type.needs_price:
            fields["price"] = D("150")
        if order_type.needs_stop_price:
            fields["stop_price"] = D("151")
        if order_type is OrderType.TRAILING_STOP:
            fields["trailing_offset"] = D("1")
        encode_order(submit(**fields, time_in_force=TimeInForce.DAY), AAPL)
    for tif in capabilities.time_in_force:
        encode_order(submit(order_type=OrderType.MARKET, price=None, time_in_force=tif), AAPL)
    assert not capabilities.post_only and not capabilities.reduce_only


def test_a_replace_sends_what_is_left_of_the_logical_total_in_whole_shares() -> None:
    partly = parse_order(ORDER | {"qty": "10", "filled_qty": "4", "status": "partially_filled"})
    modify = ModifyOrder(
        client_order_id="node-42-1",
        venue="alpaca",
        symbol="AAPL",
        quantity=D("12"),
        price=D("149.5"),
        new_client_order_id="node-42-2",
    )
    body = encode_replace(partly, modify, "node-42-2", AAPL, filled_before=D("1"))
    assert body == {"qty": "7", "limit_price": "149.5", "client_order_id": "node-42-2"}
    price_only = ModifyOrder(
        client_order_id="node-42-1", venue="alpaca", symbol="AAPL", price=D("149")
    )
    assert encode_replace(partly, price_only, "n2", AAPL)["qty"] == "6"
    with pytest.raises(UnsupportedOrderError) as nothing:
        encode_replace(partly, modify, "n2", AAPL, filled_before=D("8"))
    assert nothing.value.code == "NOTHING_LEFT"
    fractional = ModifyOrder(
        client_order_id="node-42-1", venue="alpaca", symbol="AAPL", quantity=D("10.5")
    )
    with pytest.raises(UnsupportedOrderError) as whole:
        encode_replace(partly, fractional, "n2", AAPL)
    assert whole.value.code == "FRACTIONAL_REPLACE"
    stop = ModifyOrder(
        client_order_id="node-42-1", venue="alpaca", symbol="AAPL", stop_price=D("1")
    )
    with pytest.raises(UnsupportedOrderError, match="no stop price"):
        encode_replace(partly, stop, "n2", AAPL)


def test_alpaca_py_accepts_a_replace_body_of_that_shape() -> None:
    requests = pytest.importorskip("alpaca.trading.requests")
    sdk = requests.ReplaceOrderRequest(qty=7, limit_price=149.5, client_order_id="node-42-2")
    assert set(sdk.to_request_fields()) == {"qty", "limit_price", "client_order_id"}


# -- answers in ------------------------------------------------------------------------------


def test_the_spec_order_example_parses_with_exact_decimals() -> None:
    order = parse_order(ORDER)
    assert order.order_id == ORDER["id"]
    assert order.order_type is OrderType.LIMIT
    assert order.time_in_force is TimeInForce.GTC
    assert (order.qty, order.filled_qty, order.limit_price) == (D("2"), D("0"), D("150"))
    assert order.ts_ns == parse_time_ns("2023-12-12T22:31:24.668464435Z")
    assert not order.terminal
    report = status_report("alpaca", order, "cid-1", filled=D(0), ts_ns=1)
    assert (report.status, report.quantity, report.price) == (OrderStatus.ACCEPTED, D(2), D(150))


def test_alpaca_py_reads_the_same_order_example() -> None:
    models = pytest.importorskip("alpaca.trading.models")
    sdk = models.Order(**ORDER)
    assert str(sdk.id) == parse_order(ORDER).order_id


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("new", "0", OrderStatus.ACCEPTED),
        ("accepted", "0", OrderStatus.ACCEPTED),
        ("pending_new", "0", OrderStatus.ACCEPTED),
        ("held", "0", OrderStatus.ACCEPTED),
        ("done_for_day", "3", OrderStatus.PARTIALLY_FILLED),
        ("pending_cancel", "0", OrderStatus.ACCEPTED),
        ("partially_filled", "3", OrderStatus.PARTIALLY_FILLED),
        ("filled", "10", OrderStatus.FILLED),
        ("canceled", "0", OrderStatus.CANCELED),
        ("expired", "0", OrderStatus.EXPIRED),
        ("replaced", "0", OrderStatus.CANCELED),
        ("rejected", "0", OrderStatus.REJECTED),
    ],
)
def test_statuses_map(status: str, filled: str, expected: OrderStatus) -> None:
    assert map_status(status, D(filled)) is expected


def test_a_report_never_claims_more_fills_than_were_forwarded() -> None:
    filled = parse_order(ORDER | {"qty": "10", "filled_qty": "10", "status": "filled"})
    report = status_report("alpaca", filled, "c", filled=D("4"), ts_ns=1)
    assert (report.status, report.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, D(4))


@pytest.mark.parametrize(
    "change",
    [
        {"status": "bogus"},
        {"qty": "two"},
        {"side": "short"},
        {"id": None},
        {"updated_at": "yesterday"},
        {"qty": None, "notional": None},
        {"filled_qty": "-1"},
    ],
)
def test_a_malformed_order_is_a_typed_error(change: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_order(ORDER | change, broker="alpaca")


def test_the_documented_fill_event_parses_with_its_cumulative_quantity() -> None:
    update = parse_stream_message(json.dumps(FILL_EVENT))
    assert isinstance(update, TradeUpdate)
    assert update.event == "fill" and update.fill is not None
    assert update.fill.qty == D("1790.86") and update.fill.price == D("105.8988475")
    assert update.fill.cumulative == D("1790.86")
    assert update.venue_execution_id == "2f63ea93-423d-4169-b3f6-3fdafc10c418"
    assert update.position_qty == D(0)
    assert update.fill.execution_id == "alpaca-a5be8f5e-fdfa-41f5-a644-7a74fe947a8f-1790.86"
    # Binary frames carry the same JSON on paper.
    assert parse_stream_message(json.dumps(FILL_EVENT).encode()) == update


def test_alpaca_py_reads_the_same_fill_event() -> None:
    models = pytest.importorskip("alpaca.trading.models")
    sdk = models.TradeUpdate(**FILL_EVENT["data"])
    assert str(sdk.execution_id) == FILL_EVENT["data"]["execution_id"]


def test_a_fill_from_the_stream_and_from_the_activities_is_one_execution() -> None:
    partial = {
        "stream": "trade_updates",
        "data": {
            "event": "partial_fill",
            "execution_id": "7d1c2b7e-0a51-4a0f-9a65-1b7c2d8e4f10",
            "order": ORDER | {"qty": "10", "filled_qty": "4.000", "status": "partially_filled"},
            "price": "150.01",
            "qty": "4",
            "position_qty": "4",
            "timestamp": "2026-01-02T14:30:00.25Z",
        },
    }
    update = parse_stream_message(json.dumps(partial))
    assert isinstance(update, TradeUpdate) and update.fill is not None
    page = parse_activities(
        [
            {
                "id": "20260102143000250::88b5f678-fef5-447b-af15-f21e367e6d8c",
                "activity_type": "FILL",
                "transaction_time": "2026-01-02T14:30:00.25Z",
                "type": "partial_fill",
                "price": "150.01",
                "qty": "4",
                "side": "buy",
                "symbol": "AAPL",
                "leaves_qty": "6",
                "order_id": ORDER["id"],
                "cum_qty": "4",
                "order_status": "partially_filled",
            }
        ]
    )
    (swept,) = page.fills
    assert swept.execution_id == update.fill.execution_id == execution_id(ORDER["id"], D(4))
    assert page.last_id == "20260102143000250::88b5f678-fef5-447b-af15-f21e367e6d8c"
    assert page.last_time == "2026-01-02T14:30:00.25Z"


def test_the_handshake_messages_parse() -> None:
    assert parse_stream_message(
        '{"stream":"authorization","data":{"status":"authorized","action":"authenticate"}}'
    ) == Authorization(True, "authenticate")
    assert parse_stream_message(
        '{"stream":"authorization","data":{"status":"unauthorized","action":"listen"}}'
    ) == Authorization(False, "listen")
    assert parse_stream_message(
        '{"stream":"listening","data":{"streams":["trade_updates"]}}'
    ) == Listening(("trade_updates",))
    assert parse_stream_message('{"stream":"news","data":{}}') == UnknownStream("news")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"stream": "trade_updates"}',
        '{"stream":"trade_updates","data":{"event":"fill","order":{}}}',
        json.dumps(
            FILL_EVENT
            | {"data": FILL_EVENT["data"] | {"qty": "9999"}}  # more than the order filled
        ),
        json.dumps(FILL_EVENT | {"data": FILL_EVENT["data"] | {"price": "NaN"}}),
        '{"stream":"trade_updates","data":{"event":"fill","order":null}}',
    ],
)
def test_a_malformed_stream_message_is_a_typed_error(text: str) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_stream_message(text, broker="alpaca")


def test_cancel_all_207_items_say_which_cancels_failed() -> None:
    items = parse_cancel_all(
        [
            {"id": "d56ba3ea-6d04-48ce-8175-817e242ee608", "status": 200},
            {
                "id": "e56ba3ea-6d04-48ce-8175-817e242ee609",
                "status": 500,
                "body": {"code": 50010000, "message": "internal error"},
            },
        ]
    )
    assert [item.ok for item in items] == [True, False]
    assert (items[1].code, items[1].message) == ("50010000", "internal error")
    with pytest.raises(MalformedPayloadError):
        parse_cancel_all({"id": "x"})


def test_positions_are_signed() -> None:
    long = {"symbol": "AAPL", "qty": "5", "side": "long", "asset_id": "x"}
    short = {"symbol": "TSLA", "qty": "-3", "side": "short", "asset_id": "y"}
    assert parse_positions([long, short]) == {"AAPL": D(5), "TSLA": D(-3)}
    assert parse_positions([short | {"qty": "3"}]) == {"TSLA": D(-3)}


def test_the_clock_reads_eastern_offsets_and_knows_when_to_read_again() -> None:
    clock = parse_clock(
        {
            "timestamp": "2026-09-21T11:00:00.123456789-04:00",
            "is_open": True,
            "next_open": "2026-09-22T09:30:00-04:00",
            "next_close": "2026-09-21T16:00:00-04:00",
        }
    )
    assert clock.ts_ns == parse_time_ns("2026-09-21T15:00:00.123456789Z")
    assert clock.open_at(clock.ts_ns) is True
    assert clock.open_at(parse_time_ns("2026-09-21T20:00:00Z")) is None  # past the close


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            403,
            b'{"code":40310000,"message":"insufficient buying power","buying_power":"0"}',
            ErrorKind.REFUSED,
        ),
        (422, b'{"code":42210000,"message":"invalid limit_price 290.123"}', ErrorKind.REFUSED),
        (
            422,
            b'{"code":40010001,"message":"client_order_id must be unique"}',
            ErrorKind.DUPLICATE_CLIENT_ID,
        ),
        (404, b'{"code":40410000,"message":"order not found"}', ErrorKind.NOT_FOUND),
        (429, b'{"code":42910000,"message":"rate limit exceeded"}', ErrorKind.RATE_LIMITED),
        (500, b'{"code":50010000,"message":"internal server error"}', ErrorKind.UNKNOWN_OUTCOME),
        (504, b"", ErrorKind.UNKNOWN_OUTCOME),
        (502, b"<html>bad gateway</html>", ErrorKind.UNKNOWN_OUTCOME),
        (401, b'{"message": "unauthorized."}', ErrorKind.UNAUTHORIZED),
    ],
)
def test_errors_classify_by_status_first(status: int, body: bytes, kind: ErrorKind) -> None:
    error = parse_error(status, body)
    assert error.kind is kind
    assert error.code and error.message


def test_rate_headers() -> None:
    headers = {
        "x-ratelimit-limit": "200",
        "x-ratelimit-remaining": "150",
        "x-ratelimit-reset": "1700000060",
    }
    rates = parse_rate_headers(headers)
    assert rates is not None and (rates.limit, rates.remaining, rates.reset_s) == (
        200,
        150,
        1700000060,
    )
    assert parse_rate_headers({"x-ratelimit-limit": "x"}) is None


def test_times_round_trip_with_nanoseconds() -> None:
    ns = parse_time_ns("2022-04-19T13:45:04.981350886-04:00")
    assert format_time(ns) == "2022-04-19T17:45:04.981350886Z"
    assert parse_time_ns(format_time(ns)) == ns
    for bad in ("2022-04-19", "2022-13-19T00:00:00Z", "2022-04-19T25:00:00Z"):
        with pytest.raises(MalformedPayloadError):
            parse_time_ns(bad)


def test_market_data_quotes_and_control_messages() -> None:
    frame = json.dumps(
        [
            {"T": "success", "msg": "authenticated"},
            {
                "T": "q",
                "S": "AMD",
                "bx": "U",
                "bp": 87.66,
                "bs": 1,
                "ax": "Q",
                "ap": 87.68,
                "as": 4,
                "t": "2021-02-22T15:51:45.335689322Z",
                "c": ["R"],
                "z": "C",
            },
            {
                "T": "t",
                "S": "AAPL",
                "i": 96921,
                "x": "D",
                "p": 126.55,
                "s": 1,
                "t": "2021-02-22T15:51:44.208Z",
            },
            {"T": "error", "code": 406, "msg": "connection limit exceeded"},
        ]
    )
    control, quote, error = parse_data_frame(frame, venue="alpaca")
    assert isinstance(quote, Quote)
    assert (quote.symbol, quote.bid, quote.ask) == ("AMD", D("87.66"), D("87.68"))
    assert quote.ts_ns == parse_time_ns("2021-02-22T15:51:45.335689322Z")
    assert getattr(control, "kind", None) == "success"
    assert getattr(error, "code", None) == 406
    with pytest.raises(MalformedPayloadError):
        parse_data_frame('{"T": "q"}', venue="alpaca")
    with pytest.raises(MalformedPayloadError):
        parse_data_frame(
            '[{"T": "q", "S": "AMD", "bp": 2, "ap": 1, "t": "2021-02-22T15:51:45Z"}]',
            venue="alpaca",
        )
