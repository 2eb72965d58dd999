"""The OKX codec, signing, endpoints, settings and capabilities: no I/O.

Shapes from the fact sheet (``crypto.md`` section 2, the OKX v5 docs) and
checked against OKX's own Python SDK (python-okx: its signer must agree
with ours byte for byte).
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradenode import ConfigError, MalformedPayloadError, load_config, parse_config
from tradenode.actors import AmendMode, CancelAllScope
from tradenode.brokers.okx import OkxSettings, okx_capabilities

# The codec, signing and endpoint layer are private (the adapter's own); their tests
# import them directly.
from tradenode.brokers.okx._codec import (
    ErrorKind,
    OkxInstrument,
    Pong,
    UnsupportedOrderError,
    WsEvent,
    WsOpAnswer,
    WsPush,
    amend_args,
    check_order,
    classify,
    fill_from_order_push,
    fill_to_message,
    order_args,
    order_status,
    parse_acks,
    parse_answer,
    parse_fill,
    parse_instruments,
    parse_order,
    parse_quote,
    parse_ws_frame,
    status_report,
    ws_message,
)
from tradenode.brokers.okx._endpoints import AMEND, BATCH_PLACE, PLACE, OkxApi, RestResult
from tradenode.brokers.okx._signing import (
    OkxCredentials,
    iso_timestamp,
    rest_headers,
    sign,
    ws_login_args,
)
from tradenode.messages import (
    LiquiditySide,
    ModifyOrder,
    OrderStatus,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
)

D = Decimal
OKX_EXAMPLE_SECRET = "22582BD0CFF14C41EDBF1AB98506286D"  # OKX docs' example secret
BTC = OkxInstrument("BTC-USDT", "BTC", "USDT", D("0.1"), D("0.00000001"), D("0.00001"), "live")


def order(**changes: Any) -> SubmitOrder:
    fields: dict[str, Any] = {
        "client_order_id": "tnA1",
        "strategy_id": "s",
        "venue": "okx",
        "symbol": "BTC-USDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": D("0.01"),
        "price": D("50000.1"),
    }
    fields.update(changes)
    return SubmitOrder(**fields)


# -- signing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prehash", "expected"),
    [
        (
            "2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC",
            "HiZhvSfMtWJA3uUIVXV3a/bSXNPCWvYFXoGCVS8V4zY=",
        ),
        (
            '2020-12-08T09:08:57.715ZPOST/api/v5/trade/order{"instId":"BTC-USDT","tdMode":"cash",'
            '"clOrdId":"b15","side":"buy","ordType":"limit","px":"2.15","sz":"2"}',
            "dI6rrL9rXW/HdaPKJ/6LC1OgvH4/PYju6R3CqixMTNQ=",
        ),
        ("1538054050GET/users/self/verify", "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M="),
    ],
)
def test_signature_vectors_with_okxs_example_secret(prehash: str, expected: str) -> None:
    assert sign(OKX_EXAMPLE_SECRET, prehash) == expected


def test_rest_headers_agree_with_python_okx() -> None:
    okx_utils = pytest.importorskip("okx.utils")
    creds = OkxCredentials("key-123456789", OKX_EXAMPLE_SECRET, "pass phrase")
    body = json.dumps({"instId": "BTC-USDT", "sz": "1"})
    headers = rest_headers(
        creds,
        time_ms=1607418537715,
        method="post",
        request_path="/api/v5/trade/order",
        body=body,
        demo=True,
    )
    assert headers["OK-ACCESS-TIMESTAMP"] == "2020-12-08T09:08:57.715Z"
    theirs = okx_utils.signature(
        "2020-12-08T09:08:57.715Z", "POST", "/api/v5/trade/order", body, OKX_EXAMPLE_SECRET
    )
    assert headers["OK-ACCESS-SIGN"] == theirs.decode()
    assert headers["OK-ACCESS-KEY"] == "key-123456789"
    assert headers["OK-ACCESS-PASSPHRASE"] == "pass phrase"
    assert headers["x-simulated-trading"] == "1"
    live = rest_headers(creds, time_ms=0, method="GET", request_path="/api/v5/account/balance")
    assert "x-simulated-trading" not in live


def test_ws_login_signs_seconds_and_the_verify_path() -> None:
    creds = OkxCredentials("k", OKX_EXAMPLE_SECRET, "pp")
    args = ws_login_args(creds, time_s=1538054050)
    assert args == {
        "apiKey": "k",
        "passphrase": "pp",
        "timestamp": "1538054050",
        "sign": "+LdIr8lkkvhr5hoA3g9TMC0+uQJ849ftAcocA/ouu4M=",
    }
    assert base64.b64decode(args["sign"])  # base64, not hex


def test_iso_timestamp_pads_milliseconds() -> None:
    assert iso_timestamp(1607418537005) == "2020-12-08T09:08:57.005Z"


def test_credentials_never_print_their_secrets() -> None:
    creds = OkxCredentials("abcdefghijklmnop", "the-secret-value", "the-passphrase")
    text = repr(creds) + str(creds)
    assert "the-secret-value" not in text and "the-passphrase" not in text
    assert "abcdefghijklmnop" not in text
    with pytest.raises(ValueError, match="secret"):
        OkxCredentials("k", "", "p")


# -- orders out ------------------------------------------------------------------------------


def test_limit_order_args() -> None:
    assert order_args(order()) == {
        "instId": "BTC-USDT",
        "tdMode": "cash",
        "clOrdId": "tnA1",
        "side": "buy",
        "ordType": "limit",
        "sz": "0.01",
        "px": "50000.1",
    }


@pytest.mark.parametrize(
    ("changes", "ord_type"),
    [
        ({"time_in_force": TimeInForce.IOC}, "ioc"),
        ({"time_in_force": TimeInForce.FOK}, "fok"),
        ({"post_only": True}, "post_only"),
    ],
)
def test_time_in_force_is_the_ord_type(changes: dict[str, Any], ord_type: str) -> None:
    assert order_args(order(**changes))["ordType"] == ord_type


def test_market_order_is_sized_in_the_base_currency() -> None:
    args = order_args(order(order_type=OrderType.MARKET, price=None, side=Side.SELL))
    assert args["ordType"] == "market" and args["tgtCcy"] == "base_ccy"
    assert args["side"] == "sell" and "px" not in args


@pytest.mark.parametrize(
    "changes",
    [
        {"order_type": OrderType.STOP, "price": None, "stop_price": D("1")},
        {"time_in_force": TimeInForce.DAY},
        {"time_in_force": TimeInForce.GTD, "expire_time_ns": 10**18},
        {"order_type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.FOK},
    ],
)
def test_what_okx_spot_cannot_express_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedOrderError):
        order_args(order(**changes))


def test_instrument_rules_are_checked_before_sending() -> None:
    assert check_order(BTC, order()) is None
    tick = check_order(BTC, order(price=D("50000.15")))
    assert tick is not None and tick.code == "TICK_SIZE" and "tickSz" in tick.reason
    lot = check_order(BTC, order(quantity=D("0.000000001")))
    assert lot is not None and lot.code == "LOT_SIZE"
    small = check_order(BTC, order(quantity=D("0.000001")))
    assert small is not None and "minSz" in small.reason
    bounded = OkxInstrument(
        "BTC-USDT",
        "BTC",
        "USDT",
        D("0.1"),
        D("0.00000001"),
        D("0.00001"),
        "live",
        max_limit_size=D("100"),
        max_market_size=D("1000000"),
    )
    big = check_order(bounded, order(quantity=D("101")))
    assert big is not None and "maxLmtSz" in big.reason
    market_buy = order(order_type=OrderType.MARKET, price=None, quantity=D("21"))
    # maxMktSz is in USDT for spot: 21 BTC at 50,000 is 1,050,000 USDT.
    worth = check_order(bounded, market_buy, D("50000"))
    assert worth is not None and worth.code == "MAX_NOTIONAL" and "maxMktSz" in worth.reason
    assert check_order(bounded, market_buy, D("40000")) is None
    assert check_order(bounded, market_buy) is None  # no reference price: OKX judges
    suspended = OkxInstrument("BTC-USDT", "BTC", "USDT", D("0.1"), D("1"), D("1"), "suspend")
    halted = check_order(suspended, order(quantity=D("1")))
    assert halted is not None and halted.code == "TRADING_HALTED"


def test_amend_args_keep_the_ids_and_send_the_new_total() -> None:
    modify = ModifyOrder(
        client_order_id="tnA1", venue="okx", symbol="BTC-USDT", quantity=D("0.020"), price=D("1")
    )
    assert amend_args(modify, "tn7") == {
        "instId": "BTC-USDT",
        "clOrdId": "tnA1",
        "reqId": "tn7",
        "newSz": "0.02",
        "newPx": "1",
    }
    with pytest.raises(UnsupportedOrderError):
        amend_args(
            ModifyOrder(client_order_id="a", venue="okx", symbol="BTC-USDT", stop_price=D(1)), "r"
        )


# -- answers in ---------------------------------------------------------------------------------


def test_a_batch_answer_reads_each_orders_scode() -> None:
    answer = parse_answer(
        {
            "code": "2",
            "msg": "",
            "data": [
                {"clOrdId": "a1", "ordId": "11", "sCode": "0", "sMsg": "", "tag": "", "ts": "1"},
                {"clOrdId": "a2", "ordId": "", "sCode": "51008", "sMsg": "Insufficient balance"},
            ],
        }
    )
    first, second = parse_acks(answer)
    assert first.ok and first.order_id == "11" and first.kind is None
    assert not second.ok and second.kind is ErrorKind.REJECTED and second.code == "51008"


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("50011", 429, ErrorKind.RATE_LIMITED),
        ("50011", 200, ErrorKind.RATE_LIMITED),
        ("50061", 200, ErrorKind.RATE_LIMITED),
        ("50001", 503, ErrorKind.UNKNOWN_OUTCOME),
        ("51149", 500, ErrorKind.UNKNOWN_OUTCOME),
        ("50004", 400, ErrorKind.UNKNOWN_OUTCOME),
        ("50113", 401, ErrorKind.AUTH),
        ("51603", 200, ErrorKind.NOT_FOUND),
        ("51016", 200, ErrorKind.DUPLICATE),
        ("51008_1000", 200, ErrorKind.REJECTED),
        ("51400", 200, ErrorKind.REJECTED),
    ],
)
def test_error_codes_are_classified(code: str, status: int, kind: ErrorKind) -> None:
    assert classify(code, status) is kind


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"msg": ""},
        {"code": 0, "msg": "", "data": []},
        {"code": "0", "msg": "", "data": {"x": 1}},
        {"code": "0", "msg": "", "data": [1]},
    ],
)
def test_a_malformed_envelope_raises(body: object) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_answer(body)


def test_an_item_without_scode_is_malformed() -> None:
    with pytest.raises(MalformedPayloadError, match="sCode"):
        parse_acks(parse_answer({"code": "0", "msg": "", "data": [{"ordId": "1"}]}))


def test_instruments() -> None:
    rows: dict[str, Any] = {
        "code": "0",
        "msg": "",
        "data": [
            {
                "instType": "SPOT",
                "instId": "ETH-USDT",
                "baseCcy": "ETH",
                "quoteCcy": "USDT",
                "tickSz": "0.01",
                "lotSz": "0.000001",
                "minSz": "0.001",
                "state": "live",
            }
        ],
    }
    rows["data"][0]["instIdCode"] = 1000002
    (eth,) = parse_instruments(parse_answer(rows)).values()
    assert eth.code == 1000002
    assert (eth.inst_id, eth.tick_size, eth.lot_size, eth.min_size) == (
        "ETH-USDT",
        D("0.01"),
        D("0.000001"),
        D("0.001"),
    )
    rows["data"][0]["instIdCode"] = "x"
    with pytest.raises(MalformedPayloadError, match="instIdCode"):
        parse_instruments(parse_answer(rows))
    rows["data"][0]["instIdCode"] = "1000002"
    assert parse_instruments(parse_answer(rows))["ETH-USDT"].code == 1000002
    rows["data"][0]["tickSz"] = "x"
    with pytest.raises(MalformedPayloadError, match="tickSz"):
        parse_instruments(parse_answer(rows))


def order_row(**changes: str) -> dict[str, str]:
    row = {
        "instType": "SPOT",
        "instId": "BTC-USDT",
        "ordId": "3001",
        "clOrdId": "tnA1",
        "px": "50000.1",
        "sz": "0.02",
        "ordType": "limit",
        "side": "buy",
        "state": "live",
        "accFillSz": "0",
        "avgPx": "",
        "fillSz": "0",
        "fillPx": "",
        "tradeId": "",
        "cancelSource": "",
        "uTime": "1700000000123",
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, OrderStatus.ACCEPTED),
        ({"state": "partially_filled", "accFillSz": "0.01"}, OrderStatus.PARTIALLY_FILLED),
        ({"state": "filled", "accFillSz": "0.02"}, OrderStatus.FILLED),
        ({"state": "canceled", "cancelSource": "1"}, OrderStatus.CANCELED),
        ({"state": "mmp_canceled"}, OrderStatus.CANCELED),
        ({"state": "canceled", "ordType": "ioc", "cancelSource": "14"}, OrderStatus.EXPIRED),
        ({"state": "canceled", "ordType": "fok", "cancelSource": "13"}, OrderStatus.EXPIRED),
        ({"state": "canceled", "ordType": "ioc", "cancelSource": ""}, OrderStatus.EXPIRED),
        ({"state": "canceled", "ordType": "ioc", "cancelSource": "1"}, OrderStatus.CANCELED),
    ],
)
def test_order_states(changes: dict[str, str], status: OrderStatus) -> None:
    assert order_status(parse_order(order_row(**changes))) is status


def test_status_report_of_a_partly_filled_order() -> None:
    okx_order = parse_order(
        order_row(state="partially_filled", accFillSz="0.005", avgPx="50000", sz="0.02")
    )
    report = status_report("okx", okx_order, ts_ns=5)
    assert report.client_order_id == "tnA1" and report.venue_order_id == "3001"
    assert (report.quantity, report.filled_quantity) == (D("0.02"), D("0.005"))
    assert report.avg_fill_price == D("50000") and report.price == D("50000.1")
    assert report.ts_ns == 1700000000123 * 1_000_000


@pytest.mark.parametrize(
    "changes",
    [{"state": "rejected"}, {"side": "long"}, {"sz": "abc"}, {"uTime": "soon"}, {"ordId": 5}],
)
def test_a_malformed_order_raises(changes: dict[str, Any]) -> None:
    row: dict[str, Any] = order_row()
    row.update(changes)
    with pytest.raises(MalformedPayloadError):
        parse_order(row)


def test_the_fill_an_order_push_carries_is_our_order_filled() -> None:
    row = order_row(
        state="partially_filled",
        accFillSz="0.01",
        fillSz="0.01",
        fillPx="49999.9",
        tradeId="777",
        fillFee="-0.5",
        fillFeeCcy="USDT",
        execType="M",
        fillTime="1700000000200",
    )
    fill = fill_from_order_push(row)
    assert fill is not None
    message = fill_to_message("okx", fill, "tnA1")
    assert message.execution_id == "okx-BTC-USDT-777"
    assert (message.last_quantity, message.last_price) == (D("0.01"), D("49999.9"))
    assert message.commission == D("0.5") and message.commission_asset == "USDT"
    assert message.liquidity is LiquiditySide.MAKER and message.side is Side.BUY
    # No trade in the update (an accept, a cancel) or a spot market order's fillSz 0.
    assert fill_from_order_push(order_row()) is None
    assert fill_from_order_push(order_row(tradeId="9", fillSz="0", state="filled")) is None


def test_a_fills_row_gives_the_same_execution_id_as_the_push() -> None:
    row = {
        "instType": "SPOT",
        "instId": "BTC-USDT",
        "tradeId": "777",
        "ordId": "3001",
        "clOrdId": "tnA1",
        "billId": "90001",
        "fillPx": "49999.9",
        "fillSz": "0.01",
        "side": "buy",
        "execType": "T",
        "fee": "-0.5",
        "feeCcy": "USDT",
        "ts": "1700000000200",
    }
    fill = parse_fill(row)
    message = fill_to_message("okx", fill, "tnA1")
    assert message.execution_id == "okx-BTC-USDT-777" and fill.bill_id == "90001"
    assert message.liquidity is LiquiditySide.TAKER
    with pytest.raises(MalformedPayloadError):
        parse_fill({**row, "tradeId": ""})
    with pytest.raises(MalformedPayloadError):
        parse_fill({**row, "fillSz": "0"})


# -- WebSocket frames ------------------------------------------------------------------------------


def test_ws_frames() -> None:
    assert isinstance(parse_ws_frame("pong"), Pong)
    answer = parse_ws_frame(
        json.dumps(
            {
                "id": "tn1",
                "op": "order",
                "code": "0",
                "msg": "",
                "data": [{"clOrdId": "a", "ordId": "1", "sCode": "0", "sMsg": ""}],
                "inTime": "1",
                "outTime": "2",
            }
        )
    )
    assert isinstance(answer, WsOpAnswer) and answer.id == "tn1" and answer.answer.ok
    login = parse_ws_frame('{"event":"login","code":"0","msg":"","connId":"x"}')
    assert isinstance(login, WsEvent) and login.event == "login"
    error = parse_ws_frame('{"event":"error","code":"60009","msg":"Login failed."}')
    assert isinstance(error, WsEvent) and error.code == "60009"
    refused = parse_ws_frame('{"id":"tn4","event":"error","code":"60013","msg":"Invalid args"}')
    assert isinstance(refused, WsOpAnswer) and refused.id == "tn4"
    assert (refused.answer.code, refused.answer.data) == ("60013", ())
    push = parse_ws_frame(
        json.dumps({"arg": {"channel": "orders", "instType": "SPOT"}, "data": [order_row()]})
    )
    assert isinstance(push, WsPush) and push.channel == "orders" and len(push.data) == 1


@pytest.mark.parametrize(
    "text",
    ["not json", "[1]", '{"arg": {"channel": "orders"}, "data": [1]}', '{"foo": 1}', b"\xff"],
)
def test_malformed_ws_frames_raise(text: str | bytes) -> None:
    with pytest.raises(MalformedPayloadError):
        parse_ws_frame(text)


def test_ws_operation_frame() -> None:
    frame = json.loads(ws_message("order", [{"instId": "BTC-USDT"}], ident="tn3", exp_time_ms=17))
    assert frame == {"id": "tn3", "op": "order", "args": [{"instId": "BTC-USDT"}], "expTime": "17"}


def test_quotes_from_bbo_tbt_and_tickers() -> None:
    bbo = parse_ws_frame(
        json.dumps(
            {
                "arg": {"channel": "bbo-tbt", "instId": "BTC-USDT"},
                "data": [
                    {
                        "asks": [["50001.1", "2", "0", "3"]],
                        "bids": [["50000.9", "1", "0", "1"]],
                        "ts": "1700000000000",
                        "seqId": 5,
                    }
                ],
            }
        )
    )
    assert isinstance(bbo, WsPush)
    (quote,) = parse_quote("okx", bbo)
    assert (quote.symbol, quote.bid, quote.ask) == ("BTC-USDT", D("50000.9"), D("50001.1"))
    ticker = parse_ws_frame(
        json.dumps(
            {
                "arg": {"channel": "tickers", "instId": "ETH-USDT"},
                "data": [
                    {
                        "instId": "ETH-USDT",
                        "last": "3000",
                        "bidPx": "2999",
                        "askPx": "3001",
                        "ts": "1",
                    }
                ],
            }
        )
    )
    assert isinstance(ticker, WsPush)
    (quote,) = parse_quote("okx", ticker)
    assert quote.last == D("3000") and quote.bid == D("2999")
    empty = WsPush(
        "bbo-tbt",
        {"channel": "bbo-tbt", "instId": "BTC-USDT"},
        ({"asks": [], "bids": [], "ts": "1"},),
    )
    assert parse_quote("okx", empty) == []
    broken = WsPush(
        "bbo-tbt", {"channel": "bbo-tbt", "instId": "BTC-USDT"}, ({"asks": "x", "bids": []},)
    )
    with pytest.raises(MalformedPayloadError):
        parse_quote("okx", broken)


# -- endpoints ----------------------------------------------------------------------------------


class _Recorder:
    """A transport that records what the endpoint layer asks for."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def rest(self, method: str, path: str, **kwargs: Any) -> RestResult:
        self.calls.append((method, path, kwargs))
        return RestResult(200, parse_answer({"code": "0", "msg": "", "data": []}), {})

    async def ws_call(self, op: str, args: Any, *, exp_time_ms: int | None = None) -> WsOpAnswer:
        self.calls.append((op, args, exp_time_ms))
        return WsOpAnswer("x", op, parse_answer({"code": "0", "msg": "", "data": []}))

    @property
    def ws_ready(self) -> bool:
        return True


@pytest.mark.trio
async def test_endpoints_name_okxs_paths_and_operations() -> None:
    recorder = _Recorder()
    api = OkxApi(recorder)
    await api.place({"instId": "BTC-USDT"}, exp_time_ms=5)
    await api.ws_place({"instId": "BTC-USDT"}, exp_time_ms=6)
    await api.place_batch([{"a": "1"}, {"a": "2"}], exp_time_ms=None)
    await api.order("BTC-USDT", client_order_id="tnA1")
    await api.fills(before="77")
    assert recorder.calls[0] == (
        "POST",
        "/api/v5/trade/order",
        {"body": {"instId": "BTC-USDT"}, "exp_time_ms": 5},
    )
    assert recorder.calls[1] == ("order", [{"instId": "BTC-USDT"}], 6)
    api.inst_codes = {"BTC-USDT": 1000000}
    await api.ws_cancel({"instId": "BTC-USDT", "clOrdId": "tnA1"})
    # OKX's WebSocket trade operations name the instrument by its instIdCode.
    assert recorder.calls[-1] == (
        "cancel-order",
        [{"clOrdId": "tnA1", "instIdCode": 1000000}],
        None,
    )
    recorder.calls.pop()
    assert recorder.calls[2][1] == "/api/v5/trade/batch-orders"
    assert recorder.calls[2][2]["body"] == [{"a": "1"}, {"a": "2"}]
    assert recorder.calls[3][2]["params"] == (("instId", "BTC-USDT"), ("clOrdId", "tnA1"))
    assert dict(recorder.calls[4][2]["params"]) == {
        "instType": "SPOT",
        "before": "77",
        "limit": "100",
    }
    assert (PLACE.limit, PLACE.window, PLACE.per_instrument) == (60, 2.0, True)
    assert BATCH_PLACE.op == "batch-orders" and AMEND.op == "amend-order"


# -- settings and capabilities ----------------------------------------------------------------------


def settings(**changes: Any) -> OkxSettings:
    fields: dict[str, Any] = {
        "api_key": "key",
        "api_secret": "sekrit-value",
        "passphrase": "pass-value",
    }
    fields.update(changes)
    return OkxSettings(**fields)


def test_settings_hosts_and_the_demo_header() -> None:
    demo = settings()
    assert demo.urls()[1] == "wss://wspap.okx.com:8443/ws/v5/private"
    assert demo.sends_demo_header
    live = settings(environment="live")
    assert live.urls()[2] == "wss://ws.okx.com:8443/ws/v5/public" and not live.sends_demo_header
    custom = settings(
        environment="custom",
        rest_url="http://127.0.0.1:1/",
        ws_private_url="ws://127.0.0.1:2/ws/v5/private",
        ws_public_url="ws://127.0.0.1:2/ws/v5/public",
        demo=True,
    )
    assert custom.urls()[0] == "http://127.0.0.1:1" and custom.sends_demo_header
    text = repr(custom) + str(custom) + custom.model_dump_json()
    assert "sekrit-value" not in text and "pass-value" not in text


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("environment: custom", "rest_url"),
        ("rest_url: 'http://x'", "rest_url"),
        ("demo: true", "demo"),
        ("symbols: [BTCUSDT]", "symbols"),
        (
            "{environment: custom, rest_url: 'http://x', ws_private_url: 'http://x', "
            "ws_public_url: 'ws://x'}",
            "ws_private_url",
        ),
    ],
)
def test_broken_settings_name_the_key(section: str, key: str) -> None:
    if not section.startswith("{"):
        section = "{" + section + "}"
    extra = section[1:-1]
    text = (
        "venues:\n  - name: okx\n    kind: okx\n    okx: {api_key: k, api_secret: sekrit-value, "
        f"passphrase: pass-value, {extra}}}\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert raised.value.key == f"venues[0].okx.{key}"
    assert "sekrit-value" not in str(raised.value)


def test_capabilities() -> None:
    caps = okx_capabilities()
    assert caps.amend is AmendMode.NATIVE and caps.cancel_all is CancelAllScope.SYMBOL
    assert caps.positions_are_balances and not caps.reduce_only
    assert caps.order_types == frozenset({OrderType.MARKET, OrderType.LIMIT})
    assert caps.client_ids.allows("tnA1b2" + "9" * 26) and not caps.client_ids.allows("tn-1")
    assert not caps.client_ids.allows("x" * 33)
    assert caps.acceptance is not None and caps.acceptance.seconds == 0


def test_the_demo_example_config_loads_with_credentials_from_the_environment() -> None:
    path = Path(__file__).resolve().parents[1] / "config" / "okx-demo.yaml"
    environ = {"OKX_API_KEY": "k" * 36, "OKX_API_SECRET": "s" * 32, "OKX_PASSPHRASE": "p" * 12}
    config = load_config(path, environ=environ)
    (venue,) = config.venues
    assert venue.kind == "okx" and isinstance(venue.settings, OkxSettings)
    assert venue.settings.environment == "demo" and venue.settings.sends_demo_header
    assert venue.settings.passphrase.get_secret_value() == "p" * 12
    assert "s" * 32 not in repr(config) and "p" * 12 not in repr(config)
    with pytest.raises(ConfigError) as missing:
        load_config(path, environ={})
    assert "OKX_API_KEY" in str(missing.value)


class _Ready:
    def __init__(self, ready: bool) -> None:
        self.ws_ready = ready


def _op_answer(body: dict[str, Any]) -> WsOpAnswer:
    return WsOpAnswer("tn1", "order", parse_answer(body))


@pytest.mark.trio
async def test_the_websocket_fast_path_and_when_rest_takes_over() -> None:
    # The decision is private (the actor's); it is exercised here without a venue.
    from tradenode.brokers.okx._actor import _send

    sent: list[str] = []

    def ws(body: dict[str, Any]) -> Any:
        async def call() -> WsOpAnswer:
            sent.append("ws")
            return _op_answer(body)

        return call

    async def rest() -> RestResult:
        sent.append("rest")
        return RestResult(200, parse_answer({"code": "0", "msg": "", "data": []}), {})

    accepted = {"code": "0", "msg": "", "data": [{"clOrdId": "a", "ordId": "1", "sCode": "0"}]}
    placed = await _send(_Ready(True), True, ws(accepted), rest)  # type: ignore[arg-type]
    assert placed.ws and sent == ["ws"]
    # Refused by the WebSocket itself (never reached trading): REST takes it.
    sent.clear()
    invalid = {"code": "60013", "msg": "Invalid args", "data": []}
    placed = await _send(_Ready(True), True, ws(invalid), rest)  # type: ignore[arg-type]
    assert not placed.ws and sent == ["ws", "rest"]
    # A business refusal, an unknown outcome or a rate limit never goes again over REST.
    for body in (
        {"code": "1", "msg": "", "data": [{"clOrdId": "a", "ordId": "", "sCode": "51008"}]},
        {"code": "50001", "msg": "busy", "data": []},
        {"code": "60014", "msg": "Requests too frequent", "data": []},
        {"code": "50011", "msg": "Too Many Requests", "data": []},
    ):
        sent.clear()
        placed = await _send(_Ready(True), True, ws(body), rest)  # type: ignore[arg-type]
        assert placed.ws and sent == ["ws"], body
    # The socket not logged in, or WebSocket orders off: REST.
    sent.clear()
    await _send(_Ready(False), True, ws(accepted), rest)  # type: ignore[arg-type]
    await _send(_Ready(True), False, ws(accepted), rest)  # type: ignore[arg-type]
    assert sent == ["rest", "rest"]
