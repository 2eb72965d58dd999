"""A REST query's params joined as they are when none needs percent-encoding (the
quick path of ``encode_params``) must be byte for byte what encoding each key and
value gives: the signature is made over it and the venue checks it over the bytes
it receives."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

# Private: the query encoding is internal to the adapter (its signing module).
from tradenode.brokers.binance._signing import encode_params


def _one_by_one(params: list[tuple[str, str]]) -> str:
    return "&".join(
        f"{quote(key, safe='', encoding='utf-8')}={quote(value, safe='', encoding='utf-8')}"
        for key, value in params
    )


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_plain = st.text(alphabet=_UNRESERVED, max_size=12)
_any = st.text(alphabet=_UNRESERVED + "&= +%/éＡ\u00a0!*'()", max_size=12)


@given(st.lists(st.tuples(_plain, _plain), max_size=12))
def test_plain_params_are_joined_as_encoding_them_would(params: list[tuple[str, str]]) -> None:
    assert encode_params(params) == _one_by_one(params)


@given(st.lists(st.tuples(_any, _any), max_size=12))
def test_any_params_are_encoded_as_before(params: list[tuple[str, str]]) -> None:
    assert encode_params(params) == _one_by_one(params)


def test_a_reserved_character_in_one_value_encodes_that_value() -> None:
    params = [("symbol", "BTCUSDT"), ("newClientOrderId", "a&b=c"), ("quantity", "0.001")]
    assert encode_params(params) == "symbol=BTCUSDT&newClientOrderId=a%26b%3Dc&quantity=0.001"
    assert encode_params([]) == ""
