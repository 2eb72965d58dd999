"""An ``executionReport`` read on its quick path (the account's events for an order
arrive right behind its answer, while the OMS and the strategy handle the fill):
every event gives exactly what the full field-by-field reading gives, the same
report or the same typed error. A read-only mapping (not a ``dict``) always goes
the full way, so each case is read both ways and compared."""

from __future__ import annotations

import itertools
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from tests._quick_path_cases import ODD_VALUES, PAIR_VALUES, with_field
from tradenode import MalformedPayloadError

# Private: the event codec is internal to the adapter; its public face is the broker.
from tradenode.brokers.binance import _codec

BROKER = "binance"

TRADE: dict[str, Any] = {
    "e": "executionReport",
    "E": 1733270000001,
    "s": "BTCUSDT",
    "c": "wireW12",
    "S": "BUY",
    "o": "MARKET",
    "f": "GTC",
    "q": "0.00100000",
    "p": "0.00000000",
    "P": "0.00000000",
    "F": "0.00000000",
    "g": -1,
    "C": "",
    "x": "TRADE",
    "X": "FILLED",
    "r": "NONE",
    "i": 12345,
    "l": "0.00100000",
    "z": "0.00100000",
    "L": "65432.10000000",
    "n": "0.00000000",
    "N": "BNB",
    "T": 1733270000000,
    "t": 777,
    "I": 99,
    "w": False,
    "m": False,
    "M": True,
    "O": 1733270000000,
    "Z": "65.43210000",
    "Y": "65.43210000",
    "Q": "0.00000000",
    "W": 1733270000000,
    "V": "EXPIRE_MAKER",
}
CANCELED: dict[str, Any] = {
    **TRADE,
    "c": "cancel-9",
    "C": "own-7",
    "o": "LIMIT_MAKER",
    "f": "IOC",
    "p": "60000.5",
    "P": "1e-8",
    "x": "CANCELED",
    "X": "CANCELED",
    "l": "0",
    "L": "0",
    "n": "-0.1",
    "N": None,
    "t": -1,
    "m": True,
    "Z": "-1",
    "eR": "STP",
}
NO_TIF: dict[str, Any] = {k: v for k, v in TRADE.items() if k not in ("f", "N")}
BASES = (TRADE, CANCELED, NO_TIF)
READ = frozenset(
    [
        "E",
        "s",
        "c",
        "C",
        "S",
        "o",
        "f",
        "q",
        "p",
        "P",
        "x",
        "X",
        "r",
        "i",
        "l",
        "z",
        "L",
        "n",
        "N",
        "T",
        "t",
        "m",
        "Z",
        "eR",
    ]
)
"""The fields ``_execution_report`` reads (the others are ignored either way)."""
KEYS = sorted({key for base in BASES for key in base} - {"e"})


def _read(payload: object) -> tuple[str, object]:
    try:
        return "event", _codec.parse_user_event(BROKER, payload)
    except MalformedPayloadError as exc:
        return "error", (str(exc), exc.broker)


def _both_ways(event: dict[str, Any]) -> None:
    assert _read(event) == _read(MappingProxyType(event))
    # In its WebSocket API envelope, the same.
    envelope = {"subscriptionId": 0, "event": event}
    assert _read(envelope) == _read(MappingProxyType(event))


def test_well_formed_reports_are_read_without_the_field_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = [_codec.parse_user_event(BROKER, MappingProxyType(base)) for base in BASES]

    def no_field_reader(*args: object, **kwargs: object) -> None:
        raise AssertionError("the quick path should have read this event")

    monkeypatch.setattr(_codec, "_Fields", no_field_reader)
    assert [_codec.parse_user_event(BROKER, base) for base in BASES] == expected


def test_well_formed_reports_read_as_the_full_reading_does() -> None:
    for base in BASES:
        _both_ways(base)
    report = _codec.parse_user_event(BROKER, CANCELED)
    assert isinstance(report, _codec.BinanceExecutionReport)
    assert report.original_client_order_id == "own-7"
    assert report.commission_asset is None
    assert report.commission == Decimal("-0.1")
    assert report.post_only is True
    assert report.expiry_reason == "STP"
    trade = _codec.parse_user_event(BROKER, TRADE)
    assert isinstance(trade, _codec.BinanceExecutionReport)
    assert trade.original_client_order_id == ""
    assert trade.expiry_reason is None


@pytest.mark.parametrize("base", BASES, ids=("trade", "canceled", "no_tif"))
@pytest.mark.parametrize("key", KEYS)
def test_any_one_field_changed_reads_as_the_full_reading_does(
    base: dict[str, Any], key: str
) -> None:
    for value in ODD_VALUES:
        _both_ways(with_field(base, key, value))


def test_two_fields_changed_read_as_the_full_reading_does() -> None:
    keys = [key for key in KEYS if key in READ]
    for key, other in itertools.combinations(keys, 2):
        for value, second in itertools.product(PAIR_VALUES, repeat=2):
            _both_ways(with_field(with_field(TRADE, key, value), other, second))


@pytest.mark.parametrize("kind", ["", None, 5, "executionreport", "outboundAccountPosition"])
def test_other_kinds_are_read_as_before(kind: object) -> None:
    _both_ways(with_field(TRADE, "e", kind))
