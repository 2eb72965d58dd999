"""The WebSocket API frames read and written on every order, on their quick paths:
``rateLimits`` entries read without a field reader each must keep every check of
the full reading (an entry it cannot vouch for goes the slow way and is refused
with the same typed error), and a request frame is the same compact JSON."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from tradenode import MalformedPayloadError

# Private: the frame codec is internal to the adapter; its public face is the broker.
from tradenode.brokers.binance._codec import WsRateLimit, WsResponse, parse_ws_frame, ws_request

BROKER = "binance"
ENTRY = {
    "rateLimitType": "ORDERS",
    "interval": "SECOND",
    "intervalNum": 10,
    "limit": 50,
    "count": 3,
}


def _frame(*limits: object) -> str:
    return json.dumps({"id": "tn1", "status": 200, "result": {}, "rateLimits": list(limits)})


def test_well_formed_entries_are_read_as_before() -> None:
    other = {**ENTRY, "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}
    frame = parse_ws_frame(_frame(ENTRY, other), broker=BROKER)
    assert isinstance(frame, WsResponse)
    assert frame.rate_limits == (
        WsRateLimit("ORDERS", "SECOND", 10, 50, 3),
        WsRateLimit("REQUEST_WEIGHT", "MINUTE", 1, 50, 3),
    )


def test_extra_keys_in_an_entry_are_ignored_as_before() -> None:
    frame = parse_ws_frame(_frame({**ENTRY, "note": "x"}), broker=BROKER)
    assert isinstance(frame, WsResponse)
    assert frame.rate_limits == (WsRateLimit("ORDERS", "SECOND", 10, 50, 3),)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rateLimitType", ""),
        ("rateLimitType", 1),
        ("interval", None),
        ("intervalNum", True),
        ("intervalNum", "10"),
        ("limit", 50.5),
        ("count", False),
        ("count", None),
    ],
)
def test_an_entry_of_the_wrong_type_is_still_refused(key: str, value: Any) -> None:
    with pytest.raises(MalformedPayloadError, match=rf"rateLimits\[1\]: {key}=") as info:
        parse_ws_frame(_frame(ENTRY, {**ENTRY, key: value}), broker=BROKER)
    assert info.value.broker == BROKER


@pytest.mark.parametrize("key", sorted(ENTRY))
def test_an_entry_missing_a_field_is_still_refused(key: str) -> None:
    entry = {k: v for k, v in ENTRY.items() if k != key}
    with pytest.raises(MalformedPayloadError, match=f"missing field '{key}'"):
        parse_ws_frame(_frame(entry), broker=BROKER)


def test_an_entry_that_is_not_an_object_is_still_refused() -> None:
    with pytest.raises(MalformedPayloadError, match="expected a JSON object"):
        parse_ws_frame(_frame([1, 2]), broker=BROKER)


def test_a_request_frame_is_compact_json_of_its_params() -> None:
    params = {"symbol": "BTCUSDT", "newClientOrderId": 'c-é"1'}
    text = ws_request("tn7", "order.place", params)
    assert text == json.dumps(
        {"id": "tn7", "method": "order.place", "params": params},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert ws_request("tn8", "ping", None) == '{"id":"tn8","method":"ping"}'
    # A mapping other than a dict is copied into one and encoded the same.
    proxy = MappingProxyType({"a": "1"})
    assert ws_request("tn9", "x", proxy) == '{"id":"tn9","method":"x","params":{"a":"1"}}'
