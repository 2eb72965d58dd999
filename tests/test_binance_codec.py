"""The Binance Spot codec layer: signing, symbol rules and payload mapping.

Recorded payloads are the examples of Binance's own docs
(github.com/binance/binance-spot-api-docs: rest-api.md, web-socket-api.md,
user-data-stream.md, web-socket-streams.md, filters.md, errors.md), copied
as published; a payload marked "derived" is a doc example with the named
fields changed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradenode import BrokerRejectedError, MalformedPayloadError
from tradenode.brokers.binance import BinanceCredentials, signed_query, signed_ws_params

# The codec, the symbol rules and the raw signing are private: this file tests them directly.
from tradenode.brokers.binance._codec import (
    AccountPosition,
    Balance,
    BalanceUpdate,
    BinanceErrorAnswer,
    BinanceExecutionReport,
    ErrorKind,
    ExternalLockUpdate,
    ListStatus,
    ServerShutdown,
    StreamTerminated,
    UnsupportedOrderError,
    WsEvent,
    WsResponse,
    cancel_params,
    cancel_replace_params,
    execution_id,
    execution_report_to_messages,
    market_stream_name,
    new_order_params,
    parse_account,
    parse_book_ticker,
    parse_error,
    parse_market_message,
    parse_order,
    parse_rate_headers,
    parse_ticker_price,
    parse_trade,
    parse_user_event,
    parse_ws_frame,
    query_params,
    retry_after_seconds,
    to_status_report,
    trade_to_fill,
    ws_request,
    ws_retry_after_seconds,
)
from tradenode.brokers.binance._rules import (
    SymbolRules,
    check_order,
    format_decimal,
    parse_exchange_info,
)
from tradenode.brokers.binance._signing import (
    encode_params,
    sign_rest,
    sign_ws,
    ws_signature_payload,
)
from tradenode.messages import (
    DenialCode,
    LiquiditySide,
    ModifyOrder,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderModified,
    OrderRejected,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    SubmitOrder,
    TimeInForce,
)

BROKER = "binance"
MS = 1_000_000

# -- signing: rest-api.md "SIGNED Endpoint Examples", web-socket-api.md "SIGNED request example (HMAC)"

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
CREDS = BinanceCredentials(api_key=API_KEY, api_secret=SECRET)
FULLWIDTH = "\uff11\uff12\uff13\uff14\uff15\uff16"  # full-width digits 1-6, as in the docs
REST_PARAMS = [
    ("symbol", "LTCBTC"),
    ("side", "BUY"),
    ("type", "LIMIT"),
    ("timeInForce", "GTC"),
    ("quantity", "1"),
    ("price", "0.1"),
]
REST_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
REST_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
REST_PAYLOAD_NON_ASCII = (
    "symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
    "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
REST_SIGNATURE_NON_ASCII = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"


def test_rest_signature_ascii_vector() -> None:
    assert sign_rest(SECRET, REST_PAYLOAD) == REST_SIGNATURE
    query = signed_query(CREDS, REST_PARAMS, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert query == f"{REST_PAYLOAD}&signature={REST_SIGNATURE}"


def test_rest_signature_non_ascii_vector() -> None:
    params = [("symbol", FULLWIDTH), *REST_PARAMS[1:]]
    extra = [("recvWindow", "5000"), ("timestamp", "1499827319559")]
    assert encode_params([*params, *extra]) == REST_PAYLOAD_NON_ASCII
    assert sign_rest(SECRET, REST_PAYLOAD_NON_ASCII) == REST_SIGNATURE_NON_ASCII
    query = signed_query(CREDS, params, timestamp_ms=1499827319559, recv_window_ms=5000)
    assert query == f"{REST_PAYLOAD_NON_ASCII}&signature={REST_SIGNATURE_NON_ASCII}"


def test_signed_query_without_recv_window_puts_timestamp_then_signature_last() -> None:
    query = signed_query(CREDS, [("symbol", "BTCUSDT")], timestamp_ms=1, recv_window_ms=None)
    payload = "symbol=BTCUSDT&timestamp=1"
    assert query == f"{payload}&signature={sign_rest(SECRET, payload)}"


def test_encode_params_keeps_order_and_encodes_reserved_characters() -> None:
    assert encode_params([("b", "x y"), ("a", "1&2=3"), ("c", "-_.~")]) == (
        "b=x%20y&a=1%262%3D3&c=-_.~"
    )


# web-socket-api.md (current): the order.place example carries newOrderRespType=ACK.
WS_PARAMS = {
    "symbol": "BTCUSDT",
    "side": "SELL",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01000000",
    "price": "52000.00",
    "newOrderRespType": "ACK",
}
WS_PAYLOAD = (
    f"apiKey={API_KEY}&newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100"
    "&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
)
WS_SIGNATURE = "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


def test_ws_signature_vector() -> None:
    full = {**WS_PARAMS, "recvWindow": "100", "timestamp": "1645423376532", "apiKey": API_KEY}
    assert ws_signature_payload(full) == WS_PAYLOAD
    assert ws_signature_payload({**full, "signature": "ignored"}) == WS_PAYLOAD
    assert sign_ws(SECRET, full) == WS_SIGNATURE
    signed = signed_ws_params(CREDS, WS_PARAMS, timestamp_ms=1645423376532, recv_window_ms=100)
    assert signed == {**full, "signature": WS_SIGNATURE}


def test_ws_signature_vector_of_the_reference_sheet() -> None:
    # The older doc example (no newOrderRespType), as quoted in crypto.md section 1.3.
    params = {key: value for key, value in WS_PARAMS.items() if key != "newOrderRespType"}
    signed = signed_ws_params(CREDS, params, timestamp_ms=1645423376532, recv_window_ms=100)
    assert signed["signature"] == (
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )


def test_ws_signature_non_ascii_vector_is_not_percent_encoded() -> None:
    params = {
        "symbol": FULLWIDTH,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1.00000000",
        "price": "0.10000000",
    }
    signed = signed_ws_params(CREDS, params, timestamp_ms=1645423376532, recv_window_ms=5000)
    assert f"symbol={FULLWIDTH}&" in ws_signature_payload(signed)
    assert signed["signature"] == (
        "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"
    )


def test_credentials_repr_hides_the_secret_and_most_of_the_key() -> None:
    for text in (repr(CREDS), str(CREDS), f"{CREDS}", repr([CREDS])):
        assert SECRET not in text
        assert API_KEY not in text
    assert repr(CREDS) == "BinanceCredentials(api_key='vmPU…h8A')"
    assert SECRET not in repr(BinanceCredentials(api_key="short", api_secret=SECRET))


@pytest.mark.parametrize(("key", "secret"), [("", "s"), ("k", ""), ("  ", "s"), ("k", None)])
def test_credentials_must_be_non_empty(key: str, secret: Any) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        BinanceCredentials(api_key=key, api_secret=secret)


def test_signed_requests_refuse_reserved_params() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        signed_query(CREDS, [("timestamp", "1")], timestamp_ms=2, recv_window_ms=None)
    with pytest.raises(ValueError, match="signature"):
        signed_ws_params(CREDS, {"signature": "x"}, timestamp_ms=2, recv_window_ms=None)
    with pytest.raises(ValueError, match="recv_window_ms"):
        signed_query(CREDS, [], timestamp_ms=2, recv_window_ms=60_001)


# -- format_decimal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1E+1", "10"),
        ("0.00010000", "0.0001"),
        ("0", "0"),
        ("-0", "0"),
        ("0E-8", "0"),
        ("52000.00", "52000"),
        ("0.01000000", "0.01"),
        ("1.5E-9", "0.0000000015"),
        ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
    ],
)
def test_format_decimal(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text


def test_format_decimal_refuses_non_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        format_decimal(Decimal("NaN"))


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_format_decimal_is_plain_and_exact(value: Decimal) -> None:
    text = format_decimal(value)
    assert "e" not in text.lower()
    assert Decimal(text) == value
    if "." in text:
        assert not text.endswith("0")
        assert not text.endswith(".")


# -- exchangeInfo and filters ------------------------------------------------------------------

# rest-api.md "Exchange information" (ETHBTC) with the filters.md examples as its filters.
EXCHANGE_INFO: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1565246363776,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "ETHBTC",
            "status": "TRADING",
            "baseAsset": "ETH",
            "baseAssetPrecision": 8,
            "quoteAsset": "BTC",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "opoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.00000100",
                    "maxPrice": "100000.00000000",
                    "tickSize": "0.00000100",
                },
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.3000",
                    "multiplierDown": "0.7000",
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00100000",
                    "maxQty": "100000.00000000",
                    "stepSize": "0.00100000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "10.00000000",
                    "applyMinToMarket": False,
                    "maxNotional": "10000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00100000",
                    "maxQty": "100000.00000000",
                    "stepSize": "0.00100000",
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 25},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        },
        # web-socket-api.md "Exchange information" (BNBBTC) with the legacy MIN_NOTIONAL
        # filter of filters.md added.
        {
            "symbol": "BNBBTC",
            "status": "TRADING",
            "baseAsset": "BNB",
            "baseAssetPrecision": 8,
            "quoteAsset": "BTC",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.00000100",
                    "maxPrice": "100000.00000000",
                    "tickSize": "0.00000100",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00100000",
                    "maxQty": "100000.00000000",
                    "stepSize": "0.00100000",
                },
                {
                    "filterType": "MIN_NOTIONAL",
                    "minNotional": "0.00100000",
                    "applyToMarket": True,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN", "TRD_GRP_004"]],
            "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        },
    ],
}
RULES = parse_exchange_info(EXCHANGE_INFO, broker=BROKER)
ETHBTC = RULES["ETHBTC"]


def test_parse_exchange_info_reads_every_filter() -> None:
    assert set(RULES) == {"ETHBTC", "BNBBTC"}
    expected = SymbolRules(
        symbol="ETHBTC",
        status="TRADING",
        base_asset="ETH",
        quote_asset="BTC",
        base_precision=8,
        quote_precision=8,
        order_types=frozenset(EXCHANGE_INFO["symbols"][0]["orderTypes"]),
        cancel_replace_allowed=False,
        tick_size=Decimal("0.000001"),
        min_price=Decimal("0.000001"),
        max_price=Decimal("100000"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("100000"),
        market_step_size=Decimal("0.001"),
        market_min_qty=Decimal("0.001"),
        market_max_qty=Decimal("100000"),
        min_notional=Decimal("10"),
        apply_min_to_market=False,
        max_notional=Decimal("10000"),
        apply_max_to_market=False,
    )
    assert expected == ETHBTC
    legacy = RULES["BNBBTC"]
    assert legacy.min_notional == Decimal("0.001")
    assert legacy.apply_min_to_market is True
    assert legacy.max_notional == 0
    assert legacy.market_step_size == 0  # no MARKET_LOT_SIZE: disabled
    assert legacy.cancel_replace_allowed is True


def _broken_info(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    info = copy.deepcopy(EXCHANGE_INFO)
    target: Any = info
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return info


_DELETE = object()


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "exchangeInfo",
        {"symbols": None},
        _broken_info(("symbols", 0, "status"), _DELETE),
        _broken_info(("symbols", 0, "baseAssetPrecision"), "8"),
        _broken_info(("symbols", 0, "baseAssetPrecision"), True),
        _broken_info(("symbols", 0, "orderTypes"), [1]),
        _broken_info(("symbols", 0, "filters", 0, "tickSize"), "abc"),
        _broken_info(("symbols", 0, "filters", 0, "tickSize"), "-1"),
        _broken_info(("symbols", 0, "filters", 0, "tickSize"), 0.01),
        _broken_info(("symbols", 0, "filters", 2, "minQty"), _DELETE),
        _broken_info(("symbols", 0, "filters", 3, "applyMinToMarket"), "false"),
        _broken_info(("symbols", 0, "filters", 0, "filterType"), _DELETE),
        _broken_info(("symbols", 1), "BNBBTC"),
    ],
)
def test_parse_exchange_info_refuses_bad_shapes(payload: Any) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_exchange_info(payload, broker=BROKER)
    assert info.value.broker == BROKER


def _order(**changes: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": "tn-1",
        "strategy_id": "s1",
        "venue": BROKER,
        "symbol": "ETHBTC",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": Decimal("1.000"),
        "price": Decimal("20"),
    }
    fields.update(changes)
    return SubmitOrder(**fields)


def test_check_order_passes_a_valid_order() -> None:
    assert check_order(ETHBTC, _order(), None) is None
    assert (
        check_order(ETHBTC, _order(quantity=Decimal("0.5"), price=Decimal("20.000001")), None)
        is None
    )


@pytest.mark.parametrize(
    ("changes", "filter_name", "denial"),
    [
        ({"price": Decimal("20.0000005")}, "PRICE_FILTER", DenialCode.TICK_SIZE),
        (
            {"price": Decimal("100001"), "quantity": Decimal("0.001")},
            "PRICE_FILTER",
            DenialCode.INVALID_ORDER,
        ),
        ({"price": Decimal("0.0000001")}, "PRICE_FILTER", DenialCode.INVALID_ORDER),
        (
            {"order_type": OrderType.STOP_LIMIT, "stop_price": Decimal("19.9999995")},
            "PRICE_FILTER",
            DenialCode.TICK_SIZE,
        ),
        ({"quantity": Decimal("0.0001")}, "LOT_SIZE", DenialCode.LOT_SIZE),
        ({"quantity": Decimal("1.0005")}, "LOT_SIZE", DenialCode.LOT_SIZE),
        (
            {"quantity": Decimal("100001"), "price": Decimal("0.0001")},
            "LOT_SIZE",
            DenialCode.LOT_SIZE,
        ),
        ({"quantity": Decimal("0.001")}, "NOTIONAL", DenialCode.MIN_NOTIONAL),
        ({"quantity": Decimal("1000")}, "NOTIONAL", DenialCode.MAX_ORDER_NOTIONAL),
        ({"symbol": "BTCUSDT"}, "SYMBOL", DenialCode.UNKNOWN_INSTRUMENT),
        ({"time_in_force": TimeInForce.DAY}, "TIME_IN_FORCE", DenialCode.INVALID_ORDER),
        ({"reduce_only": True}, "REDUCE_ONLY", DenialCode.INVALID_ORDER),
        (
            {"order_type": OrderType.TRAILING_STOP, "price": None, "trailing_offset": Decimal("1")},
            "ORDER_TYPES",
            DenialCode.INVALID_ORDER,
        ),
    ],
)
def test_check_order_finds_the_broken_filter(
    changes: dict[str, Any], filter_name: str, denial: DenialCode
) -> None:
    violation = check_order(ETHBTC, _order(**changes), None)
    assert violation is not None
    assert (violation.filter, violation.denial) == (filter_name, denial)
    assert violation.reason


def test_check_order_symbol_status_and_order_types() -> None:
    halted = dataclasses.replace(ETHBTC, status="HALT")
    violation = check_order(halted, _order(), None)
    assert violation is not None and violation.denial is DenialCode.TRADING_HALTED
    bnb = RULES["BNBBTC"]
    stop = _order(symbol="BNBBTC", order_type=OrderType.STOP, price=None, stop_price=Decimal("20"))
    violation = check_order(bnb, stop, None)
    assert violation is not None and violation.filter == "ORDER_TYPES"
    no_maker = dataclasses.replace(ETHBTC, order_types=frozenset({"LIMIT"}))
    violation = check_order(no_maker, _order(post_only=True), None)
    assert violation is not None and "LIMIT_MAKER" in violation.reason


def test_check_order_market_notional_uses_the_reference_price_only_when_applied() -> None:
    market = _order(order_type=OrderType.MARKET, price=None, quantity=Decimal("0.001"))
    assert check_order(ETHBTC, market, Decimal("20")) is None  # applyMinToMarket false
    applied = dataclasses.replace(ETHBTC, apply_min_to_market=True, apply_max_to_market=True)
    violation = check_order(applied, market, Decimal("20"))
    assert violation is not None and violation.denial is DenialCode.MIN_NOTIONAL
    assert check_order(applied, market, None) is None  # no reference price: skipped
    big = _order(order_type=OrderType.MARKET, price=None, quantity=Decimal("1000"))
    violation = check_order(applied, big, Decimal("20"))
    assert violation is not None and violation.denial is DenialCode.MAX_ORDER_NOTIONAL
    legacy = RULES["BNBBTC"]
    tiny = _order(
        symbol="BNBBTC", order_type=OrderType.MARKET, price=None, quantity=Decimal("0.001")
    )
    violation = check_order(legacy, tiny, Decimal("0.5"))
    assert violation is not None and violation.denial is DenialCode.MIN_NOTIONAL


def test_check_order_market_lot_size() -> None:
    rules = dataclasses.replace(ETHBTC, market_max_qty=Decimal("10"), market_step_size=Decimal("1"))
    market = _order(order_type=OrderType.MARKET, price=None, quantity=Decimal("11"))
    violation = check_order(rules, market, None)
    assert violation is not None and violation.filter == "MARKET_LOT_SIZE"
    violation = check_order(rules, dataclasses.replace(market, quantity=Decimal("1.5")), None)
    assert violation is not None and violation.filter == "MARKET_LOT_SIZE"
    assert check_order(rules, _order(quantity=Decimal("11")), None) is None  # LIMIT: not applied


def test_check_order_zero_disables_and_precision_still_applies() -> None:
    open_rules = dataclasses.replace(
        ETHBTC,
        tick_size=Decimal(0),
        min_price=Decimal(0),
        max_price=Decimal(0),
        step_size=Decimal(0),
        min_qty=Decimal(0),
        max_qty=Decimal(0),
        min_notional=Decimal(0),
        max_notional=Decimal(0),
        quote_precision=2,
        base_precision=3,
    )
    assert (
        check_order(open_rules, _order(price=Decimal("123456.78"), quantity=Decimal("0.123")), None)
        is None
    )
    violation = check_order(open_rules, _order(price=Decimal("1.234")), None)
    assert violation is not None and (violation.filter, violation.denial) == (
        "PRECISION",
        DenialCode.TICK_SIZE,
    )
    violation = check_order(open_rules, _order(quantity=Decimal("0.1234")), None)
    assert violation is not None and (violation.filter, violation.denial) == (
        "PRECISION",
        DenialCode.LOT_SIZE,
    )


@given(
    ticks=st.integers(min_value=1, max_value=10**9),
    steps=st.integers(min_value=1, max_value=10**6),
)
def test_check_order_multiples_of_tick_and_step_pass(ticks: int, steps: int) -> None:
    rules = dataclasses.replace(ETHBTC, min_notional=Decimal(0), max_notional=Decimal(0))
    price = ticks * rules.tick_size
    quantity = steps * rules.step_size
    assert check_order(rules, _order(price=price, quantity=quantity), None) is None
    off_tick = _order(price=price + rules.tick_size / 2, quantity=quantity)
    violation = check_order(rules, off_tick, None)
    assert violation is not None and violation.denial is DenialCode.TICK_SIZE
    off_step = _order(price=price, quantity=quantity + rules.step_size / 2)
    violation = check_order(rules, off_step, None)
    assert violation is not None and violation.denial is DenialCode.LOT_SIZE


# -- order parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"order_type": OrderType.MARKET, "price": None},
            [("type", "MARKET"), ("quantity", "1")],
        ),
        (
            {"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.IOC},
            [("type", "MARKET"), ("quantity", "1")],
        ),
        (
            {"price": Decimal("20.00")},
            [("type", "LIMIT"), ("timeInForce", "GTC"), ("quantity", "1"), ("price", "20")],
        ),
        (
            {"time_in_force": TimeInForce.FOK},
            [("type", "LIMIT"), ("timeInForce", "FOK"), ("quantity", "1"), ("price", "20")],
        ),
        (
            {"post_only": True},
            [("type", "LIMIT_MAKER"), ("quantity", "1"), ("price", "20")],
        ),
        (
            {"order_type": OrderType.STOP, "price": None, "stop_price": Decimal("19.5")},
            [("type", "STOP_LOSS"), ("quantity", "1"), ("stopPrice", "19.5")],
        ),
        (
            {
                "order_type": OrderType.STOP_LIMIT,
                "stop_price": Decimal("19.5"),
                "time_in_force": TimeInForce.IOC,
            },
            [
                ("type", "STOP_LOSS_LIMIT"),
                ("timeInForce", "IOC"),
                ("quantity", "1"),
                ("price", "20"),
                ("stopPrice", "19.5"),
            ],
        ),
        (
            {"order_type": OrderType.MARKET_IF_TOUCHED, "price": None, "stop_price": Decimal("19")},
            [("type", "TAKE_PROFIT"), ("quantity", "1"), ("stopPrice", "19")],
        ),
        (
            {"order_type": OrderType.LIMIT_IF_TOUCHED, "stop_price": Decimal("19")},
            [
                ("type", "TAKE_PROFIT_LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "1"),
                ("price", "20"),
                ("stopPrice", "19"),
            ],
        ),
    ],
)
def test_new_order_params_map_every_supported_type(
    changes: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    params = new_order_params(_order(**changes))
    assert params == [
        ("symbol", "ETHBTC"),
        ("side", "BUY"),
        *expected,
        ("newClientOrderId", "tn-1"),
        ("newOrderRespType", "RESULT"),
    ]


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (
            {"order_type": OrderType.TRAILING_STOP, "price": None, "trailing_offset": Decimal("1")},
            "TRAILING_STOP",
        ),
        ({"time_in_force": TimeInForce.DAY}, "DAY"),
        ({"time_in_force": TimeInForce.GTD, "expire_time_ns": 10**18}, "GTD"),
        ({"time_in_force": TimeInForce.OPG}, "OPG"),
        ({"time_in_force": TimeInForce.CLS}, "CLS"),
        ({"reduce_only": True}, "reduce_only"),
        ({"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.FOK}, "FOK"),
        (
            {
                "order_type": OrderType.STOP,
                "price": None,
                "stop_price": Decimal("1"),
                "time_in_force": TimeInForce.IOC,
            },
            "IOC",
        ),
        ({"order_type": OrderType.STOP, "stop_price": Decimal("1")}, "price"),
        ({"client_order_id": "tn.1"}, "client order id"),
        ({"client_order_id": "tn:1/2"}, "client order id"),
    ],
)
def test_new_order_params_refuse_what_binance_spot_cannot_do(
    changes: dict[str, Any], why: str
) -> None:
    with pytest.raises(UnsupportedOrderError, match=why) as info:
        new_order_params(_order(**changes))
    assert isinstance(info.value, BrokerRejectedError)
    assert info.value.broker == BROKER
    assert info.value.client_order_id == changes.get("client_order_id", "tn-1")


def test_cancel_and_query_params() -> None:
    assert cancel_params("ETHBTC", "tn-1") == [("symbol", "ETHBTC"), ("origClientOrderId", "tn-1")]
    assert query_params("ETHBTC", "tn-1") == [("symbol", "ETHBTC"), ("origClientOrderId", "tn-1")]


# -- order responses: rest-api.md "New order", "Query order", "Cancel order", cancelReplace --

ORDER_ACK = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
    "transactTime": 1507725176595,
}
ORDER_RESULT = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "6gCrw2kRUAF9CvJDGP16IP",
    "transactTime": 1507725176595,
    "price": "0.00000000",
    "origQty": "10.00000000",
    "executedQty": "10.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "10.00000000",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "SELL",
    "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
}
ORDER_FULL = {
    **ORDER_RESULT,
    "fills": [
        {
            "price": "4000.00000000",
            "qty": "1.00000000",
            "commission": "4.00000000",
            "commissionAsset": "USDT",
            "tradeId": 56,
        },
        {
            "price": "3999.00000000",
            "qty": "5.00000000",
            "commission": "19.99500000",
            "commissionAsset": "USDT",
            "tradeId": 57,
        },
        {
            "price": "3998.00000000",
            "qty": "2.00000000",
            "commission": "7.99600000",
            "commissionAsset": "USDT",
            "tradeId": 58,
        },
        {
            "price": "3997.00000000",
            "qty": "1.00000000",
            "commission": "3.99700000",
            "commissionAsset": "USDT",
            "tradeId": 59,
        },
        {
            "price": "3995.00000000",
            "qty": "1.00000000",
            "commission": "3.99500000",
            "commissionAsset": "USDT",
            "tradeId": 60,
        },
    ],
}
ORDER_QUERY = {
    "symbol": "LTCBTC",
    "orderId": 1,
    "orderListId": -1,
    "clientOrderId": "myOrder1",
    "price": "0.1",
    "origQty": "1.0",
    "executedQty": "0.0",
    "cummulativeQuoteQty": "0.0",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "stopPrice": "0.0",
    "icebergQty": "0.0",
    "time": 1499827319559,
    "updateTime": 1499827319559,
    "isWorking": True,
    "workingTime": 1499827319559,
    "origQuoteOrderQty": "0.000000",
    "selfTradePreventionMode": "NONE",
}
CANCEL_RESPONSE = {
    "symbol": "LTCBTC",
    "origClientOrderId": "myOrder1",
    "orderId": 4,
    "orderListId": -1,
    "clientOrderId": "cancelMyOrder1",
    "transactTime": 1684804350068,
    "price": "2.00000000",
    "origQty": "1.00000000",
    "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "CANCELED",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "selfTradePreventionMode": "NONE",
}
CANCEL_REPLACE_NEW_ORDER = {
    "symbol": "BTCUSDT",
    "orderId": 10,
    "orderListId": -1,
    "clientOrderId": "wOceeeOzNORyLiQfw7jd8S",
    "transactTime": 1652928801803,
    "price": "0.02000000",
    "origQty": "0.040000",
    "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "NEW",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "side": "BUY",
    "workingTime": 1669277163808,
    "fills": [],
    "selfTradePreventionMode": "NONE",
}
# An OTO leg (rest-api.md "New Order list - OTO"): pending, workingTime -1.
OTO_PENDING_LEG = {
    "symbol": "LTCBTC",
    "orderId": 7,
    "orderListId": 1,
    "clientOrderId": "6pcQbFIzTXGZQ1e2MkGDq4",
    "transactTime": 1712291372842,
    "price": "1.00000000",
    "origQty": "5.00000000",
    "executedQty": "0.00000000",
    "origQuoteOrderQty": "0.000000",
    "cummulativeQuoteQty": "0.00000000",
    "status": "PENDING_NEW",
    "timeInForce": "IOC",
    "type": "STOP_LOSS_LIMIT",
    "side": "BUY",
    "stopPrice": "6.00000000",
    "workingTime": -1,
    "selfTradePreventionMode": "NONE",
}


def test_parse_order_result_and_full_responses() -> None:
    for payload in (ORDER_RESULT, ORDER_FULL):
        order = parse_order(payload, broker=BROKER)
        assert order.symbol == "BTCUSDT"
        assert order.order_id == 28
        assert order.client_order_id == "6gCrw2kRUAF9CvJDGP16IP"
        assert (order.side, order.binance_type, order.order_type) == (
            Side.SELL,
            "MARKET",
            OrderType.MARKET,
        )
        assert order.price is None  # "0.00000000" on a MARKET order
        assert order.stop_price is None
        assert (order.orig_qty, order.executed_qty, order.cumulative_quote_qty) == (10, 10, 10)
        assert order.status == "FILLED"
        assert order.time_in_force is TimeInForce.GTC
        assert order.update_time_ms == 1507725176595
        report = to_status_report(BROKER, order)
        assert report.status is OrderStatus.FILLED
        assert report.quantity == report.filled_quantity == Decimal(10)
        assert report.avg_fill_price == Decimal(1)
        assert report.venue_order_id == "28"
        assert report.venue == BROKER
        assert report.ts_ns == 1507725176595 * MS


def test_an_ack_answer_is_not_an_order_state() -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_order(ORDER_ACK, broker=BROKER)
    assert info.value.broker == BROKER


def test_parse_order_query_and_open_orders_row() -> None:
    order = parse_order(ORDER_QUERY, broker=BROKER)
    assert (order.price, order.stop_price, order.orig_qty, order.executed_qty) == (
        Decimal("0.1"),
        None,
        Decimal("1.0"),
        Decimal(0),
    )
    assert order.update_time_ms == 1499827319559
    report = to_status_report(BROKER, order)
    assert report == dataclasses.replace(
        report,
        client_order_id="myOrder1",
        symbol="LTCBTC",
        side=Side.BUY,
        status=OrderStatus.ACCEPTED,
        quantity=Decimal("1.0"),
        filled_quantity=Decimal(0),
        venue_order_id="1",
        order_type=OrderType.LIMIT,
        price=Decimal("0.1"),
        avg_fill_price=None,
    )


def test_parse_cancel_response_names_the_order_not_the_cancel() -> None:
    order = parse_order(CANCEL_RESPONSE, broker=BROKER)
    assert order.client_order_id == "myOrder1"
    assert to_status_report(BROKER, order).status is OrderStatus.CANCELED


def test_parse_cancel_replace_new_order_and_pending_oto_leg() -> None:
    order = parse_order(CANCEL_REPLACE_NEW_ORDER, broker=BROKER)
    assert (order.client_order_id, order.price, order.orig_qty, order.status) == (
        "wOceeeOzNORyLiQfw7jd8S",
        Decimal("0.02"),
        Decimal("0.04"),
        "NEW",
    )
    leg = parse_order(OTO_PENDING_LEG, broker=BROKER)
    assert (leg.order_type, leg.stop_price, leg.time_in_force) == (
        OrderType.STOP_LIMIT,
        Decimal(6),
        TimeInForce.IOC,
    )
    assert leg.update_time_ms == 1712291372842  # transactTime: workingTime is -1
    assert to_status_report(BROKER, leg).status is OrderStatus.ACCEPTED


@pytest.mark.parametrize(
    ("binance_type", "order_type", "post_only"),
    [
        ("LIMIT_MAKER", OrderType.LIMIT, True),
        ("STOP_LOSS", OrderType.STOP, False),
        ("TAKE_PROFIT", OrderType.MARKET_IF_TOUCHED, False),
        ("TAKE_PROFIT_LIMIT", OrderType.LIMIT_IF_TOUCHED, False),
    ],
)
def test_parse_order_maps_types_back(
    binance_type: str, order_type: OrderType, post_only: bool
) -> None:
    order = parse_order({**ORDER_QUERY, "type": binance_type}, broker=BROKER)
    assert (order.order_type, order.post_only, order.binance_type) == (
        order_type,
        post_only,
        binance_type,
    )


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("NEW", OrderStatus.ACCEPTED),
        ("PENDING_NEW", OrderStatus.ACCEPTED),
        ("PARTIALLY_FILLED", OrderStatus.PARTIALLY_FILLED),
        ("FILLED", OrderStatus.FILLED),
        ("CANCELED", OrderStatus.CANCELED),
        ("PENDING_CANCEL", OrderStatus.PENDING_CANCEL),
        ("REJECTED", OrderStatus.REJECTED),
        ("EXPIRED", OrderStatus.EXPIRED),
        ("EXPIRED_IN_MATCH", OrderStatus.EXPIRED),
    ],
)
def test_status_mapping(status: str, ours: OrderStatus) -> None:
    order = parse_order({**ORDER_QUERY, "status": status}, broker=BROKER)
    assert to_status_report(BROKER, order).status is ours


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "DONE"},
        {"type": "OCO"},
        {"side": "buy"},
        {"timeInForce": "GTX"},
        {"orderId": "1"},
        {"orderId": True},
        {"origQty": "1,0"},
        {"origQty": "NaN"},
        {"origQty": 1.0},
        {"executedQty": "-1"},
        {"price": None, "symbol": None},
        {"clientOrderId": 5},
        {"updateTime": None, "time": None, "workingTime": None},
    ],
)
def test_parse_order_refuses_bad_fields(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_order({**ORDER_QUERY, **changes}, broker=BROKER)
    assert info.value.broker == BROKER


@pytest.mark.parametrize(
    "key", ["symbol", "orderId", "side", "type", "origQty", "executedQty", "status"]
)
def test_parse_order_refuses_missing_fields(key: str) -> None:
    payload = {k: v for k, v in ORDER_QUERY.items() if k != key}
    with pytest.raises(MalformedPayloadError, match=key):
        parse_order(payload, broker=BROKER)


def test_to_status_report_turns_impossible_values_into_malformed_payload() -> None:
    order = parse_order({**ORDER_QUERY, "origQty": "0"}, broker=BROKER)
    with pytest.raises(MalformedPayloadError) as info:
        to_status_report(BROKER, order)
    assert info.value.broker == BROKER
    assert info.value.client_order_id == "myOrder1"


# -- cancel/replace ------------------------------------------------------------------------------


def _modify(**changes: Any) -> ModifyOrder:
    fields: dict[str, Any] = {
        "client_order_id": "myOrder1",
        "venue": BROKER,
        "symbol": "LTCBTC",
        "new_client_order_id": "myOrder2",
    }
    fields.update(changes)
    return ModifyOrder(**fields)


def test_cancel_replace_params_for_a_new_price() -> None:
    original = parse_order(ORDER_QUERY, broker=BROKER)
    assert cancel_replace_params(original, _modify(price=Decimal("0.2"))) == [
        ("symbol", "LTCBTC"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("cancelReplaceMode", "STOP_ON_FAILURE"),
        ("timeInForce", "GTC"),
        ("quantity", "1"),
        ("price", "0.2"),
        ("cancelOrigClientOrderId", "myOrder1"),
        ("newClientOrderId", "myOrder2"),
        ("newOrderRespType", "RESULT"),
    ]


def test_cancel_replace_carries_only_the_open_quantity() -> None:
    partly = parse_order(
        {**ORDER_QUERY, "origQty": "10", "executedQty": "4", "status": "PARTIALLY_FILLED"},
        broker=BROKER,
    )
    params = dict(cancel_replace_params(partly, _modify(quantity=Decimal("12"))))
    assert params["quantity"] == "8"
    assert params["price"] == "0.1"
    params = dict(cancel_replace_params(partly, _modify(price=Decimal("0.3"))))
    assert params["quantity"] == "6"
    with pytest.raises(UnsupportedOrderError, match="nothing left to replace"):
        cancel_replace_params(partly, _modify(quantity=Decimal("4")))


def test_cancel_replace_keeps_type_tif_and_stop_price() -> None:
    original = parse_order(OTO_PENDING_LEG, broker=BROKER)
    modify = _modify(client_order_id="6pcQbFIzTXGZQ1e2MkGDq4", stop_price=Decimal("6.5"))
    assert cancel_replace_params(original, modify) == [
        ("symbol", "LTCBTC"),
        ("side", "BUY"),
        ("type", "STOP_LOSS_LIMIT"),
        ("cancelReplaceMode", "STOP_ON_FAILURE"),
        ("timeInForce", "IOC"),
        ("quantity", "5"),
        ("price", "1"),
        ("stopPrice", "6.5"),
        ("cancelOrigClientOrderId", "6pcQbFIzTXGZQ1e2MkGDq4"),
        ("newClientOrderId", "myOrder2"),
        ("newOrderRespType", "RESULT"),
    ]


@pytest.mark.parametrize(
    ("payload", "modify", "why"),
    [
        (ORDER_QUERY, {"new_client_order_id": None, "price": Decimal("1")}, "new_client_order_id"),
        (
            ORDER_QUERY,
            {"new_client_order_id": "my.order", "price": Decimal("1")},
            "client order id",
        ),
        (ORDER_QUERY, {"stop_price": Decimal("1")}, "stop price"),
        (ORDER_QUERY, {"symbol": "ETHBTC", "price": Decimal("1")}, "LTCBTC"),
        ({**ORDER_QUERY, "type": "STOP_LOSS"}, {"price": Decimal("1")}, "price"),
        ({**ORDER_QUERY, "type": "MARKET"}, {"quantity": Decimal("1")}, "MARKET"),
    ],
)
def test_cancel_replace_refuses(payload: dict[str, Any], modify: dict[str, Any], why: str) -> None:
    with pytest.raises(UnsupportedOrderError, match=why) as info:
        cancel_replace_params(parse_order(payload, broker=BROKER), _modify(**modify))
    assert info.value.broker == BROKER


# -- myTrades (rest-api.md "Account trade list") -------------------------------------------------

MY_TRADE = {
    "symbol": "BNBBTC",
    "id": 28457,
    "orderId": 100234,
    "orderListId": -1,
    "price": "4.00000100",
    "qty": "12.00000000",
    "quoteQty": "48.000012",
    "commission": "10.10000000",
    "commissionAsset": "BNB",
    "time": 1499865549590,
    "isBuyer": True,
    "isMaker": False,
    "isBestMatch": True,
}


def test_parse_trade_and_fill() -> None:
    trade = parse_trade(MY_TRADE, broker=BROKER)
    assert (trade.symbol, trade.trade_id, trade.order_id) == ("BNBBTC", 28457, 100234)
    assert (trade.price, trade.qty, trade.quote_qty) == (
        Decimal("4.000001"),
        Decimal(12),
        Decimal("48.000012"),
    )
    assert (trade.commission, trade.commission_asset, trade.time_ms) == (
        Decimal("10.1"),
        "BNB",
        1499865549590,
    )
    assert (trade.is_buyer, trade.is_maker) == (True, False)
    fill = trade_to_fill(BROKER, trade, "tn-7")
    assert fill == OrderFilled(
        client_order_id="tn-7",
        venue=BROKER,
        venue_order_id="100234",
        execution_id="binance-BNBBTC-28457",
        symbol="BNBBTC",
        side=Side.BUY,
        last_quantity=Decimal(12),
        last_price=Decimal("4.000001"),
        commission=Decimal("10.1"),
        commission_asset="BNB",
        liquidity=LiquiditySide.TAKER,
        ts_ns=1499865549590 * MS,
    )
    seller = trade_to_fill(
        BROKER, dataclasses.replace(trade, is_buyer=False, is_maker=True), "tn-7"
    )
    assert (seller.side, seller.liquidity) == (Side.SELL, LiquiditySide.MAKER)


@pytest.mark.parametrize(
    "changes",
    [{"id": "28457"}, {"isMaker": "false"}, {"qty": "twelve"}, {"time": None}, {"symbol": ""}],
)
def test_parse_trade_refuses_bad_rows(changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_trade({**MY_TRADE, **changes}, broker=BROKER)
    assert info.value.broker == BROKER


# -- account (rest-api.md "Account information") -------------------------------------------------

ACCOUNT = {
    "makerCommission": 15,
    "takerCommission": 15,
    "buyerCommission": 0,
    "sellerCommission": 0,
    "commissionRates": {
        "maker": "0.00150000",
        "taker": "0.00150000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    },
    "canTrade": True,
    "canWithdraw": True,
    "canDeposit": True,
    "brokered": False,
    "requireSelfTradePrevention": False,
    "preventSor": False,
    "updateTime": 123456789,
    "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "4723846.89208129", "locked": "0.00000000"},
        {"asset": "LTC", "free": "4763368.68006011", "locked": "0.00000000"},
    ],
    "permissions": ["SPOT"],
    "uid": 354937868,
}


def test_parse_account() -> None:
    assert parse_account(ACCOUNT, broker=BROKER) == (
        Balance("BTC", Decimal("4723846.89208129"), Decimal(0)),
        Balance("LTC", Decimal("4763368.68006011"), Decimal(0)),
    )


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"balances": {}},
        {"balances": [{"asset": "BTC", "free": "x", "locked": "0"}]},
        {"balances": [{"asset": "BTC", "free": "1"}]},
        {"balances": ["BTC"]},
    ],
)
def test_parse_account_refuses_bad_shapes(payload: Any) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_account(payload, broker=BROKER)
    assert info.value.broker == BROKER


# -- user data stream (user-data-stream.md) ----------------------------------------------------

EXECUTION_REPORT: dict[str, Any] = {
    "e": "executionReport",
    "E": 1499405658658,
    "s": "ETHBTC",
    "c": "mUvoqJxFIILMdfAW5iGSOW",
    "S": "BUY",
    "o": "LIMIT",
    "f": "GTC",
    "q": "1.00000000",
    "p": "0.10264410",
    "P": "0.00000000",
    "F": "0.00000000",
    "g": -1,
    "C": "",
    "x": "NEW",
    "X": "NEW",
    "r": "NONE",
    "i": 4293153,
    "l": "0.00000000",
    "z": "0.00000000",
    "L": "0.00000000",
    "n": "0",
    "N": None,
    "T": 1499405658657,
    "t": -1,
    "v": 3,
    "I": 8641984,
    "w": True,
    "m": False,
    "M": False,
    "O": 1499405658657,
    "Z": "0.00000000",
    "Y": "0.00000000",
    "Q": "0.00000000",
    "W": 1499405658657,
    "V": "NONE",
}


def test_parse_execution_report_doc_example() -> None:
    for event in (EXECUTION_REPORT, {"subscriptionId": 0, "event": EXECUTION_REPORT}):
        report = parse_user_event(BROKER, event)
        assert isinstance(report, BinanceExecutionReport)
        assert report == BinanceExecutionReport(
            event_time_ms=1499405658658,
            symbol="ETHBTC",
            client_order_id="mUvoqJxFIILMdfAW5iGSOW",
            original_client_order_id="",
            side=Side.BUY,
            binance_type="LIMIT",
            order_type=OrderType.LIMIT,
            post_only=False,
            time_in_force=TimeInForce.GTC,
            quantity=Decimal(1),
            price=Decimal("0.1026441"),
            stop_price=Decimal(0),
            execution_type="NEW",
            status="NEW",
            reject_reason="NONE",
            order_id=4293153,
            last_qty=Decimal(0),
            cumulative_qty=Decimal(0),
            last_price=Decimal(0),
            commission=Decimal(0),
            commission_asset=None,
            transaction_time_ms=1499405658657,
            trade_id=-1,
            is_maker=False,
            cumulative_quote_qty=Decimal(0),
        )
    assert execution_report_to_messages(BROKER, report) == [
        OrderAccepted(
            client_order_id="mUvoqJxFIILMdfAW5iGSOW",
            venue=BROKER,
            venue_order_id="4293153",
            ts_ns=1499405658657 * MS,
        )
    ]


def _report(**changes: Any) -> BinanceExecutionReport:
    event = parse_user_event(BROKER, {**EXECUTION_REPORT, **changes})
    assert isinstance(event, BinanceExecutionReport)
    return event


def test_trade_report_and_mytrades_row_give_the_same_fill() -> None:
    # Derived: the doc executionReport turned into the fill of the doc myTrades row.
    report = _report(
        s="BNBBTC",
        c="tn-7",
        x="TRADE",
        X="FILLED",
        i=100234,
        q="12.00000000",
        p="4.00000100",
        l="12.00000000",
        z="12.00000000",
        L="4.00000100",
        n="10.10000000",
        N="BNB",
        T=1499865549590,
        t=28457,
        m=False,
        Z="48.00001200",
    )
    [from_stream] = execution_report_to_messages(BROKER, report)
    from_rest = trade_to_fill(BROKER, parse_trade(MY_TRADE, broker=BROKER), "tn-7")
    assert from_stream == from_rest
    assert isinstance(from_stream, OrderFilled)
    assert (
        from_stream.execution_id == execution_id(BROKER, "BNBBTC", 28457) == "binance-BNBBTC-28457"
    )


def test_execution_report_lifecycle_messages() -> None:
    ts = 1499405658657 * MS
    [canceled] = execution_report_to_messages(
        BROKER, _report(x="CANCELED", X="CANCELED", c="cancel-1", C="mUvoqJxFIILMdfAW5iGSOW")
    )
    assert canceled == OrderCanceled(
        client_order_id="mUvoqJxFIILMdfAW5iGSOW", venue=BROKER, venue_order_id="4293153", ts_ns=ts
    )
    [own_cancel] = execution_report_to_messages(BROKER, _report(x="CANCELED", X="CANCELED"))
    assert isinstance(own_cancel, OrderCanceled)
    assert own_cancel.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"
    [rejected] = execution_report_to_messages(
        BROKER, _report(x="REJECTED", X="REJECTED", r="INSUFFICIENT_BALANCES")
    )
    assert isinstance(rejected, OrderRejected)
    assert (rejected.client_order_id, rejected.code) == (
        "mUvoqJxFIILMdfAW5iGSOW",
        "INSUFFICIENT_BALANCES",
    )
    [expired] = execution_report_to_messages(
        BROKER, _report(x="EXPIRED", X="EXPIRED", f="IOC", eR="UNFILLED_IOC_QUANTITY_EXPIRED")
    )
    assert expired == OrderExpired(
        client_order_id="mUvoqJxFIILMdfAW5iGSOW", venue=BROKER, venue_order_id="4293153", ts_ns=ts
    )
    [stp] = execution_report_to_messages(
        BROKER, _report(x="TRADE_PREVENTION", X="EXPIRED_IN_MATCH")
    )
    assert isinstance(stp, OrderExpired)
    assert (
        execution_report_to_messages(BROKER, _report(x="TRADE_PREVENTION", X="PARTIALLY_FILLED"))
        == []
    )
    [modified] = execution_report_to_messages(
        BROKER,
        _report(x="REPLACED", X="NEW", q="0.50000000", c="amend-1", C="mUvoqJxFIILMdfAW5iGSOW"),
    )
    assert modified == OrderModified(
        client_order_id="mUvoqJxFIILMdfAW5iGSOW",
        venue=BROKER,
        venue_order_id="4293153",
        quantity=Decimal("0.5"),
        price=Decimal("0.1026441"),
        stop_price=None,
        ts_ns=ts,
    )
    [maker_fill] = execution_report_to_messages(
        BROKER,
        _report(x="TRADE", X="PARTIALLY_FILLED", l="0.5", L="0.1", t=9, m=True, o="LIMIT_MAKER"),
    )
    assert isinstance(maker_fill, OrderFilled)
    assert (maker_fill.liquidity, maker_fill.commission_asset) == (LiquiditySide.MAKER, None)


def test_parse_other_user_events() -> None:
    # user-data-stream.md examples, in their {"subscriptionId", "event"} envelopes.
    position = parse_user_event(
        BROKER,
        {
            "subscriptionId": 0,
            "event": {
                "e": "outboundAccountPosition",
                "E": 1564034571105,
                "u": 1564034571073,
                "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}],
            },
        },
    )
    assert position == AccountPosition(
        event_time_ms=1564034571105,
        update_time_ms=1564034571073,
        balances=(Balance("ETH", Decimal(10000), Decimal(0)),),
    )
    update = parse_user_event(
        BROKER,
        {
            "e": "balanceUpdate",
            "E": 1573200697110,
            "a": "BTC",
            "d": "100.00000000",
            "T": 1573200697068,
        },
    )
    assert update == BalanceUpdate(1573200697110, "BTC", Decimal(100), 1573200697068)
    withdrawal = parse_user_event(
        BROKER,
        {"e": "balanceUpdate", "E": 1573200697110, "a": "BTC", "d": "-1.5", "T": 1573200697068},
    )
    assert isinstance(withdrawal, BalanceUpdate) and withdrawal.delta == Decimal("-1.5")
    lock = parse_user_event(
        BROKER,
        {
            "e": "externalLockUpdate",
            "E": 1581557507324,
            "a": "NEO",
            "d": "10.00000000",
            "T": 1581557507268,
        },
    )
    assert lock == ExternalLockUpdate(1581557507324, "NEO", Decimal(10), 1581557507268)
    terminated = parse_user_event(
        BROKER, {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1728973001334}}
    )
    assert terminated == StreamTerminated(1728973001334)
    status = parse_user_event(
        BROKER,
        {
            "e": "listStatus",
            "E": 1564035303637,
            "s": "ETHBTC",
            "g": 2,
            "c": "OCO",
            "l": "EXEC_STARTED",
            "L": "EXECUTING",
            "r": "NONE",
            "C": "F4QN4G8DlFATFlIUQ0cjdD",
            "T": 1564035303625,
            "O": [
                {"s": "ETHBTC", "i": 17, "c": "AJYsMjErWJesZvqlJCTUgL"},
                {"s": "ETHBTC", "i": 18, "c": "bfYPSQdLoqAJeNrOr9adzq"},
            ],
        },
    )
    assert isinstance(status, ListStatus)
    assert (status.order_list_id, status.list_client_order_id) == (2, "F4QN4G8DlFATFlIUQ0cjdD")
    assert [leg.order_id for leg in status.orders] == [17, 18]


@pytest.mark.parametrize(
    "event",
    [
        {**EXECUTION_REPORT, "e": "listenKeyExpired"},
        {**EXECUTION_REPORT, "e": None},
        {k: v for k, v in EXECUTION_REPORT.items() if k != "i"},
        {k: v for k, v in EXECUTION_REPORT.items() if k != "e"},
        {**EXECUTION_REPORT, "i": "4293153"},
        {**EXECUTION_REPORT, "i": 4293153.0},
        {**EXECUTION_REPORT, "q": "abc"},
        {**EXECUTION_REPORT, "q": 1.5},
        {**EXECUTION_REPORT, "q": "1e"},
        {**EXECUTION_REPORT, "q": "Infinity"},
        {**EXECUTION_REPORT, "N": 5},
        {**EXECUTION_REPORT, "m": "false"},
        {**EXECUTION_REPORT, "x": "AMENDED"},
        {**EXECUTION_REPORT, "X": "OPEN"},
        {**EXECUTION_REPORT, "S": "SHORT"},
        {**EXECUTION_REPORT, "o": "ICEBERG"},
        {**EXECUTION_REPORT, "f": "DAY"},
        {"e": "outboundAccountPosition", "E": 1, "u": 1, "B": [{"a": "ETH", "f": "1"}]},
        {
            "e": "listStatus",
            "E": 1,
            "s": "ETHBTC",
            "g": 2,
            "c": "OCO",
            "l": "x",
            "L": "y",
            "r": "NONE",
            "C": "z",
            "T": 1,
            "O": {},
        },
        {"subscriptionId": 0, "event": None},
        "executionReport",
        None,
        [EXECUTION_REPORT],
    ],
)
def test_parse_user_event_refuses_malformed_events(event: Any) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_user_event(BROKER, event)
    assert info.value.broker == BROKER


def test_execution_report_that_our_messages_refuse_is_malformed() -> None:
    report = _report(x="TRADE", X="FILLED", l="0", L="0", t=5)  # a fill of nothing
    with pytest.raises(MalformedPayloadError) as info:
        execution_report_to_messages(BROKER, report)
    assert (info.value.broker, info.value.client_order_id) == (BROKER, "mUvoqJxFIILMdfAW5iGSOW")


# -- WebSocket API frames (web-socket-api.md) ----------------------------------------------------

WS_SUCCESS = {
    "id": "e2a85d9f-07a5-4f94-8d5f-789dc3deb097",
    "status": 200,
    "result": {
        "symbol": "BTCUSDT",
        "orderId": 12510053279,
        "orderListId": -1,
        "clientOrderId": "a097fe6304b20a7e4fc436",
        "transactTime": 1655716096505,
        "price": "0.10000000",
        "origQty": "10.00000000",
        "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "NEW",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "workingTime": 1655716096505,
        "selfTradePreventionMode": "NONE",
    },
    "rateLimits": [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 50,
            "count": 12,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": 160000,
            "count": 4043,
        },
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
            "count": 321,
        },
    ],
}
WS_FAILURE = {
    "id": "e2a85d9f-07a5-4f94-8d5f-789dc3deb097",
    "status": 400,
    "error": {"code": -2010, "msg": "Account has insufficient balance for requested action."},
    "rateLimits": [
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 50,
            "count": 13,
        },
    ],
}
WS_BANNED = {
    "id": "fc93a61a-a192-4cf4-bb2a-a8f0f0c51e06",
    "status": 418,
    "error": {
        "code": -1003,
        "msg": "Way too much request weight used; IP banned until 1659146400000. Please use WebSocket Streams for live updates to avoid bans.",
        "data": {"serverTime": 1659142907531, "retryAfter": 1659146400000},
    },
    "rateLimits": [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
            "count": 2411,
        },
    ],
}


def test_parse_ws_success_response() -> None:
    frame = parse_ws_frame(json.dumps(WS_SUCCESS), broker=BROKER)
    assert isinstance(frame, WsResponse)
    assert (frame.id, frame.status, frame.error) == (WS_SUCCESS["id"], 200, None)
    assert [
        (limit.rate_limit_type, limit.interval_num, limit.interval, limit.count)
        for limit in frame.rate_limits
    ] == [
        ("ORDERS", 10, "SECOND", 12),
        ("ORDERS", 1, "DAY", 4043),
        ("REQUEST_WEIGHT", 1, "MINUTE", 321),
    ]
    order = parse_order(frame.result, broker=BROKER)
    assert (order.order_id, order.client_order_id, order.status) == (
        12510053279,
        "a097fe6304b20a7e4fc436",
        "NEW",
    )
    same = parse_ws_frame(json.dumps(WS_SUCCESS).encode(), broker=BROKER)
    assert same == frame


def test_parse_ws_error_responses() -> None:
    frame = parse_ws_frame(json.dumps(WS_FAILURE), broker=BROKER)
    assert isinstance(frame, WsResponse)
    assert frame.error == BinanceErrorAnswer(
        400, -2010, "Account has insufficient balance for requested action."
    )
    assert frame.result is None
    assert frame.error.kind is ErrorKind.REJECTED
    banned = parse_ws_frame(json.dumps(WS_BANNED), broker=BROKER)
    assert isinstance(banned, WsResponse) and banned.error is not None
    assert banned.error.kind is ErrorKind.BANNED
    assert banned.error.data == {"serverTime": 1659142907531, "retryAfter": 1659146400000}
    revoked = parse_ws_frame(
        '{"id": null, "status": 401, "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}}',
        broker=BROKER,
    )
    assert isinstance(revoked, WsResponse) and revoked.id is None and revoked.error is not None
    assert revoked.error.kind is ErrorKind.AUTH


def test_parse_ws_events_and_server_shutdown() -> None:
    frame = parse_ws_frame(
        json.dumps({"subscriptionId": 0, "event": EXECUTION_REPORT}), broker=BROKER
    )
    assert isinstance(frame, WsEvent)
    assert frame.subscription_id == 0
    assert isinstance(parse_user_event(BROKER, frame.event), BinanceExecutionReport)
    shutdown = parse_ws_frame(
        '{"event": {"e": "serverShutdown", "E": 1770123456789}}', broker=BROKER
    )
    assert shutdown == ServerShutdown(1770123456789)
    ping = parse_ws_frame('{"id": 7, "status": 200, "result": {}}', broker=BROKER)
    assert isinstance(ping, WsResponse) and ping.id == 7 and ping.rate_limits == ()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        "null",
        '{"id": 1}',
        '{"id": true, "status": 200, "result": {}}',
        '{"id": 1, "status": "200", "result": {}}',
        '{"id": 1, "status": 400}',
        '{"id": 1, "status": 400, "error": {"code": "-1", "msg": "x"}}',
        '{"id": 1, "status": 200, "result": {}, "rateLimits": [{"rateLimitType": "ORDERS"}]}',
        '{"subscriptionId": "0", "event": {}}',
        '{"subscriptionId": 0, "event": []}',
        '{"event": {"e": "executionReport"}}',
        '{"id": 1, "status": 200, "result": NaN}',
    ],
)
def test_parse_ws_frame_refuses_malformed_frames(text: str | bytes) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_ws_frame(text, broker=BROKER)
    assert info.value.broker == BROKER


def test_ws_request_is_compact_json() -> None:
    text = ws_request("tn1", "order.status", {"symbol": "BTCUSDT", "origClientOrderId": "tn-1"})
    assert json.loads(text) == {
        "id": "tn1",
        "method": "order.status",
        "params": {"symbol": "BTCUSDT", "origClientOrderId": "tn-1"},
    }
    assert " " not in text
    assert json.loads(ws_request("tn2", "ping", None)) == {"id": "tn2", "method": "ping"}


# -- market data (web-socket-streams.md, rest-api.md "Symbol price ticker") ----------------------

BOOK_TICKER = {
    "u": 400900217,
    "s": "BNBUSDT",
    "b": "25.35190000",
    "B": "31.21000000",
    "a": "25.36520000",
    "A": "40.66000000",
}


def test_parse_book_ticker_raw_combined_and_text() -> None:
    expected = Quote(
        venue=BROKER, symbol="BNBUSDT", bid=Decimal("25.3519"), ask=Decimal("25.3652"), ts_ns=42
    )
    combined = {"stream": "bnbusdt@bookTicker", "data": BOOK_TICKER}
    for payload in (BOOK_TICKER, combined, json.dumps(combined), json.dumps(BOOK_TICKER).encode()):
        assert parse_book_ticker(BROKER, payload, ts_ns=42) == expected
    assert parse_market_message(BROKER, json.dumps(combined), ts_ns=42) == expected
    assert parse_market_message(BROKER, '{"result": null, "id": 3}', ts_ns=42) is None
    assert market_stream_name("BNBUSDT") == "bnbusdt@bookTicker"


@pytest.mark.parametrize(
    "payload",
    [
        {**BOOK_TICKER, "b": "x"},
        {**BOOK_TICKER, "b": "30"},  # crossed: bid above ask
        {**BOOK_TICKER, "a": "0.00000000"},
        {k: v for k, v in BOOK_TICKER.items() if k != "s"},
        {"stream": "bnbusdt@bookTicker", "data": None},
        "{",
        42,
    ],
)
def test_parse_book_ticker_refuses_bad_payloads(payload: Any) -> None:
    with pytest.raises(MalformedPayloadError) as info:
        parse_book_ticker(BROKER, payload, ts_ns=0)
    assert info.value.broker == BROKER


def test_parse_ticker_price() -> None:
    assert parse_ticker_price({"symbol": "LTCBTC", "price": "4.00000200"}) == Decimal("4.000002")
    for bad in ({"symbol": "LTCBTC"}, {"price": "0"}, {"price": 4.0}, ["4"]):
        with pytest.raises(MalformedPayloadError):
            parse_ticker_price(bad, broker=BROKER)


# -- errors and rate limits (errors.md, rest-api.md "LIMITS") ------------------------------------


def test_parse_error_bodies() -> None:
    assert parse_error(400, b'{"code": -1121, "msg": "Invalid symbol."}') == BinanceErrorAnswer(
        400, -1121, "Invalid symbol."
    )
    partial = parse_error(
        409,
        json.dumps(
            {
                "code": -2021,
                "msg": "Order cancel-replace partially failed.",
                "data": {
                    "cancelResult": "SUCCESS",
                    "newOrderResult": "FAILURE",
                    "cancelResponse": CANCEL_RESPONSE,
                    "newOrderResponse": {
                        "code": -2010,
                        "msg": "Order would immediately match and take.",
                    },
                },
            }
        ),
    )
    assert (partial.code, partial.http_status) == (-2021, 409)
    assert isinstance(partial.data, dict) and partial.data["cancelResult"] == "SUCCESS"
    html = parse_error(502, "<html><body>" + "Bad gateway " * 50 + "</body></html>")
    assert html.code == 0 and html.http_status == 502
    assert html.msg.startswith("<html><body>Bad gateway") and len(html.msg) <= 201
    assert parse_error(503, b"").msg == "HTTP 503 with an empty body"
    assert parse_error(400, b"\xff{not json").code == 0
    assert parse_error(400, '{"code": "x", "msg": 1}').code == 0


@pytest.mark.parametrize(
    ("status", "code", "msg", "kind"),
    [
        (400, -2010, "Account has insufficient balance for requested action.", ErrorKind.REJECTED),
        (400, -1013, "Filter failure: LOT_SIZE", ErrorKind.REJECTED),
        (400, -1111, "Precision is over the maximum defined for this asset.", ErrorKind.REJECTED),
        (400, -2011, "Order was not canceled due to cancel restrictions.", ErrorKind.REJECTED),
        (400, -2022, "Order cancel-replace failed.", ErrorKind.REJECTED),
        (403, 0, "WAF", ErrorKind.REJECTED),
        (400, -2011, "Unknown order sent.", ErrorKind.NOT_FOUND),
        (400, -2013, "Order does not exist.", ErrorKind.NOT_FOUND),
        (
            429,
            -1003,
            "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.",
            ErrorKind.RATE_LIMITED,
        ),
        (
            429,
            -1015,
            "Too many new orders; current limit is 50 orders per 10 SECOND.",
            ErrorKind.RATE_LIMITED,
        ),
        (400, -1015, "Too many new orders.", ErrorKind.RATE_LIMITED),
        (
            418,
            -1003,
            "Way too much request weight used; IP banned until 1659146400000.",
            ErrorKind.BANNED,
        ),
        (500, 0, "Internal Server Error", ErrorKind.UNKNOWN_OUTCOME),
        (
            503,
            -1001,
            "Internal error; unable to process your request. Please try again.",
            ErrorKind.UNKNOWN_OUTCOME,
        ),
        (
            408,
            -1007,
            "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
            ErrorKind.UNKNOWN_OUTCOME,
        ),
        (
            400,
            -1006,
            "An unexpected response was received from the message bus. Execution status unknown.",
            ErrorKind.UNKNOWN_OUTCOME,
        ),
        (400, -1021, "Timestamp for this request is outside of the recvWindow.", ErrorKind.CLOCK),
        (400, -1022, "Signature for this request is not valid.", ErrorKind.AUTH),
        (401, -2014, "API-key format invalid.", ErrorKind.AUTH),
        (401, -2015, "Invalid API-key, IP, or permissions for action.", ErrorKind.AUTH),
    ],
)
def test_error_kind(status: int, code: int, msg: str, kind: ErrorKind) -> None:
    assert BinanceErrorAnswer(status, code, msg).kind is kind


def test_parse_rate_headers() -> None:
    usage = parse_rate_headers(
        {
            "x-mbx-used-weight-1m": "321",
            "X-MBX-USED-WEIGHT-1S": "5",
            "X-MBX-ORDER-COUNT-10S": "12",
            "x-mbx-order-count-1d": "4043",
            "X-MBX-USED-WEIGHT": "321",  # no interval: ignored
            "X-MBX-ORDER-COUNT-1X": "1",  # not an interval: ignored
            "X-MBX-USED-WEIGHT-1H": "lots",  # not a number: ignored
            "Content-Type": "application/json",
        }
    )
    assert usage.used_weight == {"1M": 321, "1S": 5}
    assert usage.order_count == {"10S": 12, "1D": 4043}


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": " 2.5 "}, 2.5),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "inf"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers) == seconds


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        ({"serverTime": 1659596466000, "retryAfter": 1659596468230}, 2.23),
        ({"serverTime": 1659596470000, "retryAfter": 1659596468230}, 0.0),
        ({"retryAfter": 1659596468230}, None),
        ({"serverTime": 1, "retryAfter": "2"}, None),
        (None, None),
    ],
)
def test_ws_retry_after_is_the_wait_until_the_named_instant(
    data: object, seconds: float | None
) -> None:
    error = BinanceErrorAnswer(429, -1003, "Too much request weight used", data)
    assert ws_retry_after_seconds(error) == seconds


def test_rest_book_ticker_row_from_the_docs() -> None:
    # The codec is private: tested directly.
    from tradenode.brokers.binance._codec import parse_rest_book_ticker

    row = {
        "symbol": "LTCBTC",
        "bidPrice": "4.00000000",
        "bidQty": "431.00000000",
        "askPrice": "4.00000200",
        "askQty": "9.00000000",
    }
    quote = parse_rest_book_ticker("binance", row, ts_ns=7)
    assert (quote.symbol, quote.bid, quote.ask, quote.ts_ns) == (
        "LTCBTC",
        Decimal("4.00000000"),
        Decimal("4.00000200"),
        7,
    )
    with pytest.raises(MalformedPayloadError):
        parse_rest_book_ticker("binance", {"symbol": "LTCBTC", "bidPrice": "x"}, ts_ns=7)


def test_depth_snapshot_from_the_docs() -> None:
    # The codec is private: tested directly.
    from tradenode.brokers.binance._codec import parse_depth

    payload = {
        "lastUpdateId": 1027024,
        "bids": [["4.00000000", "431.00000000"]],
        "asks": [["4.00000200", "12.00000000"]],
    }
    depth = parse_depth(payload, broker="binance")
    assert depth.last_update_id == 1027024
    assert depth.bids == ((Decimal("4.00000000"), Decimal("431.00000000")),)
    assert depth.asks == ((Decimal("4.00000200"), Decimal("12.00000000")),)
    for bad in (
        {"lastUpdateId": 1, "bids": [["x", "1"]], "asks": []},
        {"lastUpdateId": 1, "bids": [["1"]], "asks": []},
        {"lastUpdateId": 1, "bids": "no", "asks": []},
        {"bids": [], "asks": []},
    ):
        with pytest.raises(MalformedPayloadError):
            parse_depth(bad, broker="binance")
