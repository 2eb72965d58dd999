"""An order answer read on its quick path (a placement's answer is read on the
WebSocket reader before the breaker hears the order is accepted): every payload
gives exactly what the full field-by-field reading gives, the same order or the
same typed error. A read-only mapping (not a ``dict``) always goes the full way,
so each case is read both ways and compared."""

from __future__ import annotations

import itertools
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from tests._quick_path_cases import ODD_VALUES, PAIR_VALUES, with_field
from tradenode import MalformedPayloadError

# Private: the order codec is internal to the adapter; its public face is the broker.
from tradenode.brokers.binance import _codec

BROKER = "binance"

FILLED_MARKET: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "orderId": 12345,
    "orderListId": -1,
    "clientOrderId": "wireW12",
    "transactTime": 1733270000000,
    "price": "0.00000000",
    "origQty": "0.00100000",
    "executedQty": "0.00100000",
    "cummulativeQuoteQty": "65.43210000",
    "status": "FILLED",
    "timeInForce": "GTC",
    "type": "MARKET",
    "side": "BUY",
    "workingTime": 1733270000000,
    "fills": [{"price": "65432.1", "qty": "0.001", "commission": "0", "tradeId": 7}],
}
NEW_LIMIT: dict[str, Any] = {
    "symbol": "ETHUSDT",
    "orderId": 9,
    "clientOrderId": "abc-1",
    "updateTime": 1733270000001,
    "time": 1733270000000,
    "price": "2500.50",
    "stopPrice": "0.00000000",
    "origQty": "1.5",
    "executedQty": "0",
    "cummulativeQuoteQty": "-1.00000000",
    "status": "NEW",
    "timeInForce": "IOC",
    "type": "LIMIT_MAKER",
    "side": "SELL",
}
CANCELED_STOP: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "origClientOrderId": "own-7",
    "clientOrderId": "cancel-8",
    "orderId": 77,
    "transactTime": 0,
    "workingTime": 1733270000002,
    "price": "60000",
    "stopPrice": "61000.1",
    "origQty": "0.01",
    "executedQty": "0.00000000",
    "cummulativeQuoteQty": "0",
    "status": "CANCELED",
    "timeInForce": "FOK",
    "type": "STOP_LOSS_LIMIT",
    "side": "BUY",
}
BASES = (FILLED_MARKET, NEW_LIMIT, CANCELED_STOP)
KEYS = sorted({key for base in BASES for key in base} - {"fills", "orderListId"})


def _read(payload: object) -> tuple[str, object]:
    try:
        return "order", _codec.parse_order(payload, broker=BROKER)
    except MalformedPayloadError as exc:
        return "error", (str(exc), exc.broker)


def _both_ways(payload: dict[str, Any]) -> None:
    assert _read(payload) == _read(MappingProxyType(payload))


def test_well_formed_orders_are_read_without_the_field_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = [_codec.parse_order(MappingProxyType(base), broker=BROKER) for base in BASES]

    def no_field_reader(*args: object, **kwargs: object) -> None:
        raise AssertionError("the quick path should have read this order")

    monkeypatch.setattr(_codec, "_Fields", no_field_reader)
    assert [_codec.parse_order(base, broker=BROKER) for base in BASES] == expected


def test_well_formed_orders_read_as_the_full_reading_does() -> None:
    for base in BASES:
        _both_ways(base)
    order = _codec.parse_order(CANCELED_STOP, broker=BROKER)
    assert order.client_order_id == "own-7"
    assert order.update_time_ms == 1733270000002
    assert order.stop_price == Decimal("61000.1")
    limit = _codec.parse_order(NEW_LIMIT, broker=BROKER)
    assert limit.post_only is True
    assert limit.stop_price is None
    assert limit.cumulative_quote_qty == Decimal("-1")


@pytest.mark.parametrize("base", BASES, ids=("filled_market", "new_limit", "canceled_stop"))
@pytest.mark.parametrize("key", KEYS)
def test_any_one_field_changed_reads_as_the_full_reading_does(
    base: dict[str, Any], key: str
) -> None:
    for value in ODD_VALUES:
        _both_ways(with_field(base, key, value))


def test_two_fields_changed_read_as_the_full_reading_does() -> None:
    for key, other in itertools.combinations(KEYS, 2):
        for value, second in itertools.product(PAIR_VALUES, repeat=2):
            _both_ways(with_field(with_field(FILLED_MARKET, key, value), other, second))


@pytest.mark.parametrize("payload", [None, [], "order", 5, [FILLED_MARKET]])
def test_what_is_not_an_object_is_refused_as_before(payload: object) -> None:
    with pytest.raises(MalformedPayloadError, match="order: expected a JSON object"):
        _codec.parse_order(payload, broker=BROKER)


# The FULL answer's ``fills`` rows, read on their quick path the same way.
ROW: dict[str, Any] = {
    "price": "65432.10000000",
    "qty": "0.00100000",
    "commission": "-0.00000100",
    "commissionAsset": "BNB",
    "tradeId": 777,
}
ROW_KEYS = ("price", "qty", "commission", "commissionAsset", "tradeId")


def _fills(rows: list[object]) -> tuple[str, object]:
    order = _codec.parse_order(FILLED_MARKET, broker=BROKER)
    try:
        return "fills", _codec.placement_fills(BROKER, order, {**FILLED_MARKET, "fills": rows})
    except MalformedPayloadError as exc:
        return "error", (str(exc), exc.broker, exc.client_order_id)


def _rows_both_ways(*rows: dict[str, Any]) -> None:
    quick = _fills(list(rows))
    assert quick == _fills([MappingProxyType(row) for row in rows])


def test_well_formed_fill_rows_read_as_the_full_reading_does() -> None:
    _rows_both_ways(ROW)
    _rows_both_ways(ROW, {**ROW, "tradeId": 778, "commissionAsset": None})
    _rows_both_ways({**ROW, "commissionAsset": ""})
    kind, fills = _fills([ROW])
    assert kind == "fills"
    assert isinstance(fills, list)
    ((trade_id, fill),) = fills
    assert trade_id == 777
    assert fill.commission == Decimal("-0.000001")
    assert fill.commission_asset == "BNB"


@pytest.mark.parametrize("key", ROW_KEYS)
def test_any_one_fill_field_changed_reads_as_the_full_reading_does(key: str) -> None:
    for value in ODD_VALUES:
        _rows_both_ways(with_field(ROW, key, value))
        _rows_both_ways(ROW, with_field(ROW, key, value))
