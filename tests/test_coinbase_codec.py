"""The Coinbase codec and endpoint layer: pure functions, no network.

Orders out are compared with what Coinbase's own SDK (coinbase-advanced-py)
puts in the body of ``POST /orders`` for the same order; the endpoint layer's
paths and queries with the SDK's; frames and REST objects in are the shapes
of Coinbase's reference pages; malformed ones raise ``MalformedPayloadError``.
The cumulative-to-fill derivation is checked over every arrival order,
repeats included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
import trio
from coinbase.rest import RESTClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tradenode import MalformedPayloadError

# The codec and endpoint layer are internal (docs/architecture.md, public API tiers).
from tradenode.brokers.coinbase._codec import (
    BookEvent,
    CoinbaseProduct,
    CumulativeFills,
    ErrorKind,
    HeartbeatEvent,
    SubscriptionsEvent,
    TickerEvent,
    TopOfBook,
    UnsupportedOrderError,
    UserEvent,
    encode_edit,
    encode_order,
    format_time,
    map_status,
    parse_accounts_page,
    parse_cancel_answer,
    parse_create_answer,
    parse_edit_answer,
    parse_error,
    parse_fills_page,
    parse_frame,
    parse_order_answer,
    parse_orders_page,
    parse_product,
    parse_time_ns,
    status_report,
)
from tradenode.brokers.coinbase._endpoints import CoinbaseApi, RestResult  # the endpoint layer
from tradenode.messages import OrderStatus, OrderType, Side, SubmitOrder, TimeInForce

D = Decimal
BTC = CoinbaseProduct("BTC-USD", "BTC", "USD", D("0.00000001"), D("0.01"), D("0.00001"))
END = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


class CapturingClient(RESTClient):
    """The SDK with its transport replaced by a recorder: what it would send."""

    def __init__(self) -> None:
        super().__init__(api_key="organizations/o/apiKeys/k", api_secret="unused")
        self.sent: list[tuple[str, str, Any]] = []

    def post(
        self, url_path: str, params: Any = None, data: Any = None, public: bool = False, **kw: Any
    ) -> Any:
        self.sent.append(
            ("POST", url_path, {k: v for k, v in (data or {}).items() if v is not None})
        )
        return {"success": True, "success_response": {"order_id": "x"}, "results": []}

    def get(self, url_path: str, params: Any = None, public: bool = False, **kw: Any) -> Any:
        self.sent.append(
            ("GET", url_path, {k: v for k, v in (params or {}).items() if v is not None})
        )
        return {"orders": [], "fills": [], "has_next": False, "cursor": ""}


def order(kind: OrderType, tif: TimeInForce = TimeInForce.GTC, **kw: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": "cid-1",
        "strategy_id": "s",
        "venue": "coinbase",
        "symbol": "BTC-USD",
        "side": Side.BUY,
        "order_type": kind,
        "quantity": D("0.1"),
        "time_in_force": tif,
    }
    fields.update(kw)
    return SubmitOrder(**fields)


@pytest.mark.parametrize(
    ("ours", "sdk_call"),
    [
        (
            order(OrderType.MARKET),
            lambda c: c.market_order_buy("cid-1", "BTC-USD", base_size="0.1"),
        ),
        (
            order(OrderType.MARKET, side=Side.SELL, time_in_force=TimeInForce.IOC),
            lambda c: c.market_order_sell("cid-1", "BTC-USD", "0.1"),
        ),
        (
            order(OrderType.LIMIT, price=D("49000.50"), post_only=True),
            lambda c: c.limit_order_gtc_buy("cid-1", "BTC-USD", "0.1", "49000.5", post_only=True),
        ),
        (
            order(OrderType.LIMIT, TimeInForce.GTD, price=D("49000"), expire_time_ns=END),
            lambda c: c.limit_order_gtd_buy(
                "cid-1", "BTC-USD", "0.1", "49000", "2024-01-01T00:00:00Z", post_only=False
            ),
        ),
        (
            order(OrderType.LIMIT, TimeInForce.FOK, price=D("49000")),
            lambda c: c.limit_order_fok_buy("cid-1", "BTC-USD", "0.1", "49000"),
        ),
        (
            order(OrderType.LIMIT, TimeInForce.IOC, price=D("49000")),
            lambda c: c.limit_order_ioc_buy("cid-1", "BTC-USD", "0.1", "49000"),
        ),
        (
            order(OrderType.STOP_LIMIT, price=D("51000"), stop_price=D("50500")),
            lambda c: c.stop_limit_order_gtc_buy(
                "cid-1", "BTC-USD", "0.1", "51000", "50500", "STOP_DIRECTION_STOP_UP"
            ),
        ),
        (
            order(
                OrderType.STOP_LIMIT,
                TimeInForce.GTD,
                side=Side.SELL,
                price=D("48000"),
                stop_price=D("48500"),
                expire_time_ns=END,
            ),
            lambda c: c.stop_limit_order_gtd_sell(
                "cid-1",
                "BTC-USD",
                "0.1",
                "48000",
                "48500",
                "2024-01-01T00:00:00Z",
                "STOP_DIRECTION_STOP_DOWN",
            ),
        ),
    ],
)
def test_orders_out_are_what_coinbases_sdk_sends(ours: SubmitOrder, sdk_call: Any) -> None:
    client = CapturingClient()
    sdk_call(client)
    (method, path, body), *_ = client.sent
    assert (method, path) == ("POST", "/api/v3/brokerage/orders")
    assert encode_order(ours, BTC) == body


@pytest.mark.parametrize(
    ("ours", "code"),
    [
        (order(OrderType.STOP, stop_price=D("1")), "UNSUPPORTED_ORDER_CONFIGURATION"),
        (order(OrderType.TRAILING_STOP, trailing_offset=D("1")), "UNSUPPORTED_ORDER_CONFIGURATION"),
        (order(OrderType.LIMIT, TimeInForce.DAY, price=D("1")), "UNSUPPORTED_ORDER_CONFIGURATION"),
        (
            order(OrderType.STOP_LIMIT, TimeInForce.IOC, price=D("1"), stop_price=D("1")),
            "UNSUPPORTED_ORDER_CONFIGURATION",
        ),
        (order(OrderType.LIMIT, price=D("49000.001")), "INVALID_PRICE_PRECISION"),
        (order(OrderType.MARKET, quantity=D("0.000000001")), "INVALID_SIZE_PRECISION"),
        (order(OrderType.MARKET, quantity=D("0.000001")), "INVALID_SIZE_TOO_SMALL"),
        (order(OrderType.MARKET, reduce_only=True), "UNSUPPORTED_ORDER_CONFIGURATION"),
    ],
)
def test_orders_coinbase_cannot_take_are_refused_before_sending(
    ours: SubmitOrder, code: str
) -> None:
    with pytest.raises(UnsupportedOrderError) as raised:
        encode_order(ours, BTC)
    assert raised.value.code == code


def test_an_edit_is_the_sdks_body() -> None:
    client = CapturingClient()
    client.edit_order("oid", size="0.2", price="49001")
    assert encode_edit("oid", size=D("0.20"), price=D("49001.00"), product=BTC) == client.sent[0][2]
    assert client.sent[0][1] == "/api/v3/brokerage/orders/edit"


# -- the endpoint layer, against the SDK's paths and queries -------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[
            tuple[str, str, list[tuple[str, str]], Mapping[str, Any] | None, bool]
        ] = []

    async def __call__(
        self,
        method: str,
        path: str,
        query: Any = (),
        body: Mapping[str, Any] | None = None,
        *,
        public: bool = False,
    ) -> RestResult:
        self.calls.append((method, path, list(query), body, public))
        return RestResult(200, {})


def as_query(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """How ``requests`` encodes the SDK's params: lists as repeated keys."""
    pairs = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, str(item)))
    return sorted(pairs)


def test_the_endpoint_layer_sends_what_the_sdk_sends() -> None:
    recorder, client = Recorder(), CapturingClient()
    api = CoinbaseApi(recorder)

    async def run() -> None:
        await api.list_orders(
            order_status=["OPEN"], product_ids=["BTC-USD", "ETH-USD"], cursor="c1"
        )
        await api.fills(order_ids=["o1", "o2"], start_sequence_timestamp="2024-01-01T00:00:00Z")
        await api.cancel_orders(["o1"])
        await api.order("o1")
        await api.server_time()

    trio.run(run)
    client.list_orders(
        order_status=["OPEN"], product_ids=["BTC-USD", "ETH-USD"], cursor="c1", limit=250
    )
    client.get_fills(
        order_ids=["o1", "o2"], start_sequence_timestamp="2024-01-01T00:00:00Z", limit=250
    )
    client.cancel_orders(["o1"])
    listed, fills, cancel, one, server_time = recorder.calls
    assert listed[:2] == ("GET", client.sent[0][1]) and sorted(listed[2]) == as_query(
        client.sent[0][2]
    )
    assert fills[:2] == ("GET", client.sent[1][1]) and sorted(fills[2]) == as_query(
        client.sent[1][2]
    )
    assert cancel[:2] == ("POST", client.sent[2][1]) and cancel[3] == client.sent[2][2]
    assert one[:2] == ("GET", "/api/v3/brokerage/orders/historical/o1")
    assert server_time[1] == "/api/v3/brokerage/time" and server_time[4] is True
    assert not any(call[4] for call in (listed, fills, cancel, one))


# -- REST objects in ----------------------------------------------------------------------------

ORDER = {
    "order_id": "0000-000000-000000",
    "product_id": "BTC-USD",
    "user_id": "2222-000000-000000",
    "order_configuration": {
        "limit_limit_gtc": {"base_size": "0.5", "limit_price": "49000.00", "post_only": False}
    },
    "side": "BUY",
    "client_order_id": "11111-000000-000000",
    "status": "OPEN",
    "time_in_force": "GOOD_UNTIL_CANCELLED",
    "created_time": "2021-05-31T09:59:59.123456789Z",
    "completion_percentage": "50",
    "filled_size": "0.25",
    "average_filled_price": "48990.5",
    "fee": "",
    "number_of_fills": "2",
    "filled_value": "12247.625",
    "pending_cancel": False,
    "size_in_quote": False,
    "total_fees": "5.00",
    "size_inclusive_of_fees": False,
    "total_value_after_fees": "string",
    "trigger_status": "UNKNOWN_TRIGGER_STATUS",
    "order_type": "LIMIT",
    "reject_reason": "",
    "settled": False,
    "product_type": "SPOT",
    "reject_message": "",
    "cancel_message": "",
}

FILL = {
    "entry_id": "22222-2222222-22222222",
    "trade_id": "1111-11111-111111",
    "order_id": "0000-000000-000000",
    "trade_time": "2021-05-31T09:59:59.000Z",
    "trade_type": "FILL",
    "price": "48990.50",
    "size": "0.125",
    "commission": "1.25",
    "product_id": "BTC-USD",
    "sequence_timestamp": "2021-05-31T09:58:59.000123Z",
    "liquidity_indicator": "MAKER",
    "size_in_quote": False,
    "user_id": "3333-333333-3333333",
    "side": "BUY",
}


def test_an_order_its_fills_and_its_status_report() -> None:
    parsed = parse_order_answer({"order": ORDER})
    assert parsed.size == D("0.5") and parsed.limit_price == D("49000.00") and parsed.editable
    assert parsed.ts_ns == parse_time_ns("2021-05-31T09:59:59Z") + 123_456_789
    report = status_report("coinbase", parsed, "cid", filled=D("0.125"), ts_ns=1)
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert report.filled_quantity == D("0.125"), "never more than was forwarded"
    (fill,), cursor = parse_fills_page({"fills": [FILL], "cursor": ""})
    assert cursor is None
    assert fill.execution_id == "coinbase-1111-11111-111111"
    assert (fill.size, fill.price, fill.commission) == (D("0.125"), D("48990.50"), D("1.25"))
    orders, next_page = parse_orders_page({"orders": [ORDER], "has_next": True, "cursor": "abc"})
    assert next_page == "abc" and orders[0].order_id == ORDER["order_id"]
    assert parse_orders_page({"orders": [], "has_next": False, "cursor": "abc"})[1] is None


def test_accounts_products_and_answers() -> None:
    accounts, cursor = parse_accounts_page(
        {
            "accounts": [
                {
                    "uuid": "u",
                    "name": "BTC Wallet",
                    "currency": "BTC",
                    "available_balance": {"value": "1.5", "currency": "BTC"},
                    "hold": {"value": "0.5", "currency": "BTC"},
                }
            ],
            "has_next": False,
            "cursor": "",
            "size": 1,
        }
    )
    assert accounts[0].total == 2 and cursor is None
    product = parse_product(
        {
            "product_id": "ETH-USD",
            "base_increment": "0.00000001",
            "quote_increment": "0.01",
            "price_increment": "0.01",
            "base_min_size": "0.0001",
            "base_currency_id": "ETH",
            "quote_currency_id": "USD",
        }
    )
    assert (product.base_currency, product.price_increment) == ("ETH", D("0.01"))
    placed = parse_create_answer(
        {
            "success": True,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "o",
            "success_response": {
                "order_id": "o",
                "product_id": "BTC-USD",
                "side": "BUY",
                "client_order_id": "c",
            },
            "order_configuration": {},
        }
    )
    assert placed.success and placed.order_id == "o"
    refused = parse_create_answer(
        {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "error_response": {
                "error": "INSUFFICIENT_FUND",
                "message": "Insufficient balance in source account",
                "error_details": "",
                "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND",
                "new_order_failure_reason": "UNKNOWN_FAILURE_REASON",
            },
        }
    )
    assert not refused.success and refused.code in (
        "INSUFFICIENT_FUND",
        "PREVIEW_INSUFFICIENT_FUND",
    )
    (cancel,) = parse_cancel_answer(
        {"results": [{"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": "o"}]}
    )
    assert (cancel.success, cancel.failure_reason) == (False, "UNKNOWN_CANCEL_ORDER")
    assert parse_edit_answer({"success": True, "errors": []}).success
    edit = parse_edit_answer(
        {
            "success": False,
            "errors": [
                {
                    "edit_failure_reason": "ORDER_NOT_FOUND",
                    "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON",
                }
            ],
        }
    )
    assert edit.code == "ORDER_NOT_FOUND"


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            429,
            b'{"errors":[{"id":"rate_limit_exceeded","message":"Too many requests"}]}',
            ErrorKind.RATE_LIMITED,
            "RATE_LIMIT_EXCEEDED",
        ),
        (401, b"Unauthorized\n", ErrorKind.UNAUTHORIZED, "HTTP_401"),
        (
            403,
            b'{"error":"PERMISSION_DENIED","error_details":"Missing required scopes","message":"Missing required scopes"}',
            ErrorKind.UNAUTHORIZED,
            "PERMISSION_DENIED",
        ),
        (
            404,
            b'{"error":"NOT_FOUND","message":"order with this orderID was not found"}',
            ErrorKind.NOT_FOUND,
            "NOT_FOUND",
        ),
        (503, b"<html>busy</html>", ErrorKind.UNKNOWN_OUTCOME, "HTTP_503"),
        (
            400,
            b'{"error":"INVALID_ARGUMENT","message":"bad"}',
            ErrorKind.REFUSED,
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_errors_by_meaning(status: int, body: bytes, kind: ErrorKind, code: str) -> None:
    answer = parse_error(status, body)
    assert (answer.kind, answer.code) == (kind, code)


@pytest.mark.parametrize(
    ("status", "filled", "ours"),
    [
        ("OPEN", D(0), OrderStatus.ACCEPTED),
        ("OPEN", D("0.1"), OrderStatus.PARTIALLY_FILLED),
        ("FILLED", D(1), OrderStatus.FILLED),
        ("CANCELLED", D("0.1"), OrderStatus.CANCELED),
        ("EXPIRED", D(0), OrderStatus.EXPIRED),
        ("FAILED", D(0), OrderStatus.REJECTED),
        ("CANCEL_QUEUED", D(0), OrderStatus.PENDING_CANCEL),
        ("UNKNOWN_ORDER_STATUS", D(0), None),
    ],
)
def test_status_mapping(status: str, filled: Decimal, ours: OrderStatus | None) -> None:
    assert map_status(status, filled) is ours


def test_times() -> None:
    assert parse_time_ns("2023-02-09T20:33:57.609931463Z") == 1_675_974_837_609_931_463
    assert parse_time_ns("2023-02-09T21:33:57+01:00") == 1_675_974_837_000_000_000
    assert format_time(END) == "2024-01-01T00:00:00Z"
    assert parse_time_ns(format_time(END + 5_000_000)) == END + 5_000_000
    with pytest.raises(ValueError):
        parse_time_ns("yesterday")


# -- WebSocket frames --------------------------------------------------------------------------


def user_frame(sequence: int, *orders: Mapping[str, Any], kind: str = "update") -> str:
    return json.dumps(
        {
            "channel": "user",
            "client_id": "",
            "timestamp": "2023-02-09T20:33:57.609931463Z",
            "sequence_num": sequence,
            "events": [{"type": kind, "orders": list(orders)}],
        }
    )


USER_ORDER = {
    "avg_price": "50000",
    "cancel_reason": "",
    "client_order_id": "XXX",
    "completion_percentage": "0.00",
    "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
    "cumulative_quantity": "0.25",
    "filled_value": "12500",
    "leaves_quantity": "0.75",
    "limit_price": "50000",
    "number_of_fills": "1",
    "order_id": "YYY",
    "order_side": "BUY",
    "order_type": "Limit",
    "outstanding_hold_amount": "0",
    "post_only": "false",
    "product_id": "BTC-USD",
    "product_type": "SPOT",
    "reject_reason": "",
    "retail_portfolio_id": "",
    "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
    "status": "OPEN",
    "stop_price": "",
    "time_in_force": "GOOD_UNTIL_CANCELLED",
    "total_fees": "0.5",
    "total_value_after_fees": "12500.5",
    "trigger_status": "INVALID_ORDER_TYPE",
    "creation_time": "2022-12-07T19:42:18.719312Z",
    "end_time": "0001-01-01T00:00:00Z",
    "start_time": "0001-01-01T00:00:00Z",
}


def test_user_heartbeat_ticker_and_subscriptions_frames() -> None:
    frame = parse_frame(user_frame(7, USER_ORDER, kind="snapshot"), venue="coinbase")
    assert (frame.channel, frame.sequence_num) == ("user", 7)
    (event,) = frame.events
    assert isinstance(event, UserEvent) and event.kind == "snapshot"
    (update,) = event.orders
    assert (update.cumulative_quantity, update.avg_price, update.order_type) == (
        D("0.25"),
        D("50000"),
        OrderType.LIMIT,
    )
    assert update.client_order_id == "XXX" and update.side is Side.BUY
    beat = parse_frame(
        '{"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z",'
        '"sequence_num":0,"events":[{"current_time":"2023-06-23 20:31:56.121961769 +0000 UTC '
        'm=+91717.525857105","heartbeat_counter":"3049"}]}',
        venue="coinbase",
    )
    assert beat.events == (HeartbeatEvent(3049),)
    ticker = parse_frame(
        json.dumps(
            {
                "channel": "ticker",
                "client_id": "",
                "timestamp": "2023-02-09T20:30:37.167359596Z",
                "sequence_num": 0,
                "events": [
                    {
                        "type": "snapshot",
                        "tickers": [
                            {
                                "type": "ticker",
                                "product_id": "BTC-USD",
                                "price": "21932.98",
                                "volume_24_h": "16038.28770938",
                                "best_bid": "21931.01",
                                "best_bid_quantity": "0.1",
                                "best_ask": "21932.99",
                                "best_ask_quantity": "0.2",
                            }
                        ],
                    }
                ],
            }
        ),
        venue="coinbase",
    )
    (tick,) = ticker.events
    assert isinstance(tick, TickerEvent)
    (quote,) = tick.quotes
    assert (quote.bid, quote.ask, quote.last, quote.venue) == (
        D("21931.01"),
        D("21932.99"),
        D("21932.98"),
        "coinbase",
    )
    subs = parse_frame(
        '{"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:59.029466949Z",'
        '"sequence_num":1,"events":[{"subscriptions":{"user":["BTC-USD"]}}]}',
        venue="coinbase",
    )
    assert subs.events == (SubscriptionsEvent({"user": ("BTC-USD",)}),)
    refused = parse_frame('{"type":"error","message":"authentication failure"}', venue="coinbase")
    assert refused.error is not None and "authentication" in refused.error.message
    other = parse_frame(
        '{"channel":"market_trades","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":3,"events":[{"type":"update","trades":[]}]}',
        venue="coinbase",
    )
    assert other.events == () and other.ignored == 1


def l2_frame(kind: str, *rows: tuple[str, str, str]) -> str:
    """An ``l2_data`` message as the WebSocket channels page shows it."""
    updates = [
        {
            "side": side,
            "event_time": "2023-02-09T20:32:50.714964855Z",
            "price_level": price,
            "new_quantity": quantity,
        }
        for side, price, quantity in rows
    ]
    return json.dumps(
        {
            "channel": "l2_data",
            "client_id": "",
            "timestamp": "2023-02-09T20:32:50.714964855Z",
            "sequence_num": 4,
            "events": [{"type": kind, "product_id": "BTC-USD", "updates": updates}],
        }
    )


def book_event(text: str) -> BookEvent:
    (event,) = parse_frame(text, venue="coinbase").events
    assert isinstance(event, BookEvent)
    return event


def test_the_top_of_the_level2_book() -> None:
    book = TopOfBook()
    early = book_event(l2_frame("update", ("bid", "100", "1")))
    assert book.apply(early) is None, "an update before the snapshot is ignored"
    snapshot = book_event(
        l2_frame("snapshot", ("bid", "99.5", "2"), ("bid", "99", "1"), ("offer", "100.5", "3"))
    )
    assert snapshot.snapshot and not book.has("BTC-USD")
    assert book.apply(snapshot) == (D("99.5"), D("100.5"))
    assert book.has("BTC-USD")
    assert book.apply(book_event(l2_frame("update", ("bid", "99.5", "0")))) == (D("99"), D("100.5"))
    assert book.apply(book_event(l2_frame("update", ("offer", "100.25", "1")))) == (
        D("99"),
        D("100.25"),
    )
    assert book.apply(book_event(l2_frame("update", ("bid", "99", "0")))) is None, "no bid left"
    book.forget()
    assert not book.has("BTC-USD")
    with pytest.raises(MalformedPayloadError):
        parse_frame(l2_frame("update", ("sideways", "1", "1")), venue="coinbase")
    with pytest.raises(MalformedPayloadError):
        parse_frame(l2_frame("update", ("bid", "1", "-1")), venue="coinbase")


@pytest.mark.parametrize(
    "text",
    [
        '{"channel":"user","sequence_num":1,"events":[{"type":"upd',  # cut off
        "[1, 2]",
        '{"sequence_num":1,"events":[]}',  # no channel
        '{"channel":"user","sequence_num":"one","events":[]}',
        '{"channel":"user","sequence_num":1,"events":{}}',
        user_frame(1, {**USER_ORDER, "cumulative_quantity": "lots"}),
        user_frame(1, {**USER_ORDER, "order_side": "SIDEWAYS"}),
        user_frame(1, {k: v for k, v in USER_ORDER.items() if k != "order_id"}),
        '{"channel":"heartbeats","sequence_num":1,"events":[{"heartbeat_counter":null}]}',
        '{"channel":"user","sequence_num":1,"events":[],"timestamp":"noon"}',
        '{"channel":"user","sequence_num":1,"events":[{"type":"update","orders":[{"cumulative_quantity":NaN}]}]}',
    ],
)
def test_malformed_frames_raise_a_typed_error(text: str) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_frame(text, venue="coinbase")


@pytest.mark.parametrize(
    "body",
    [
        {"orders": "none", "has_next": False},
        {"orders": [{**ORDER, "side": "UP"}], "has_next": False},
        {"orders": [{**ORDER, "filled_size": "1e"}], "has_next": False},
    ],
)
def test_malformed_rest_objects_raise_a_typed_error(body: object) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_orders_page(body)


def test_malformed_fills_raise_a_typed_error() -> None:
    for bad in (
        {**FILL, "size": "0"},
        {**FILL, "price": None},
        {k: v for k, v in FILL.items() if k != "trade_id"},
    ):
        with pytest.raises(MalformedPayloadError):
            parse_fills_page({"fills": [bad], "cursor": ""})


# -- fills from cumulative states ------------------------------------------------------------


def test_each_growth_of_the_cumulative_size_is_one_derived_fill_at_its_own_price() -> None:
    fills = CumulativeFills()
    first = fills.observe("o", D("0.1"), D("100"))
    assert first is not None and (first.quantity, first.price) == (D("0.1"), D("100"))
    second = fills.observe("o", D("0.3"), D("110"))
    assert second is not None
    assert second.quantity == D("0.2") and second.price == D("115")  # (33 - 10) / 0.2
    assert fills.observe("o", D("0.3"), D("110")) is None, "the same update again"
    assert fills.observe("o", D("0.1"), D("100")) is None, "an older update, late"
    fills.start_at("p", D("1"), D("5"))
    assert fills.observe("p", D("1"), D("5")) is None
    grown = fills.observe("p", D("1.5"), D("6"))
    assert grown is not None and grown.quantity == D("0.5") and grown.price == D("8")


@st.composite
def arrivals(
    draw: st.DrawFn,
) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """An order's cumulative states (sizes and prices of its executions), then the
    same states as they may arrive: any order, any of them repeated."""
    executions = draw(
        st.lists(st.tuples(st.integers(1, 1000), st.integers(1, 10_000)), min_size=1, max_size=8)
    )
    states, size, notional = [], D(0), D(0)
    for quantity, price in executions:
        size += D(quantity) / 1000
        notional += D(quantity) / 1000 * price
        states.append((size, notional / size))
    repeated = draw(st.lists(st.sampled_from(states), max_size=8))
    arrived = draw(st.permutations(states + repeated))
    return states, arrived


@settings(max_examples=300, deadline=None)
@given(arrivals())
def test_no_arrival_order_or_repeat_ever_doubles_a_fill(
    case: tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]],
) -> None:
    states, arrived = case
    fills = CumulativeFills()
    derived = [d for size, avg in arrived if (d := fills.observe("o", size, avg)) is not None]
    total = sum((d.quantity for d in derived), D(0))
    final_size, final_avg = states[-1]
    assert total == final_size, "exactly the venue's cumulative size, never more"
    assert all(d.quantity > 0 for d in derived)
    assert fills.seen("o") == final_size
    notional = sum((d.quantity * d.price for d in derived), D(0))
    assert abs(notional - final_size * final_avg) < D("1e-18") * max(D(1), notional)
    # Replaying everything again derives nothing more.
    assert all(fills.observe("o", size, avg) is None for size, avg in arrived)
