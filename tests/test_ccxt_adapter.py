"""The CCXT adapter's pure parts and its config errors (no network).

The error table is checked against ccxt's real exception classes; the
capabilities against ccxt's real ``has`` flags; the config errors through
the node's own config parser.
"""

from __future__ import annotations

from decimal import Decimal

import ccxt  # type: ignore[import-untyped]
import pytest

from tradenode import ConfigError, MalformedPayloadError, parse_config
from tradenode.actors import AcceptanceWindow, AmendMode, CancelAllScope, ClientIdRules
from tradenode.brokers.ccxt import ccxt_capabilities

# The codec is internal: its error table and parsers are what these tests pin.
from tradenode.brokers.ccxt._codec import ErrorKind, classify, parse_order, retry_after_seconds
from tradenode.brokers.ccxt._settings import exchange_has  # internal: ccxt's has flags, cached

D = Decimal


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ccxt.InsufficientFunds("binance -2010"), ErrorKind.REJECTED),
        (ccxt.InvalidOrder("Duplicate order sent."), ErrorKind.REJECTED),
        (ccxt.DuplicateOrderId("dup"), ErrorKind.REJECTED),
        (ccxt.BadSymbol("no such market"), ErrorKind.REJECTED),
        (ccxt.AuthenticationError("-2015"), ErrorKind.REJECTED),
        (ccxt.OrderNotFound("-2013"), ErrorKind.NOT_FOUND),
        # A NetworkError by class, a definite refusal by meaning: timestamp/nonce refused.
        (ccxt.InvalidNonce("-1021"), ErrorKind.REJECTED),
        (ccxt.RateLimitExceeded("429"), ErrorKind.RATE_LIMITED),
        (ccxt.DDoSProtection("binance 429 Too Many Requests"), ErrorKind.RATE_LIMITED),
        (ccxt.DDoSProtection("binance 418 I'm a teapot"), ErrorKind.BANNED),
        (ccxt.RequestTimeout("-1007"), ErrorKind.TIMEOUT),
        (ccxt.ExchangeNotAvailable("503"), ErrorKind.UNKNOWN),
        (ccxt.OnMaintenance("maintenance"), ErrorKind.UNKNOWN),
        (ccxt.NetworkError("reset"), ErrorKind.UNKNOWN),
        (ccxt.OperationFailed("-1000"), ErrorKind.UNKNOWN),
        (ccxt.BadResponse("not json"), ErrorKind.UNKNOWN),
        (ccxt.CancelPending("pending"), ErrorKind.UNKNOWN),
        # Unmapped venue error: unknown until a query says otherwise.
        (ccxt.ExchangeError("something"), ErrorKind.UNKNOWN),
        (TimeoutError(), ErrorKind.TIMEOUT),
        (RuntimeError("aiohttp leak"), ErrorKind.UNKNOWN),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.value,
)
def test_ccxt_errors_map_to_what_they_mean_for_the_order(
    error: BaseException, kind: ErrorKind
) -> None:
    assert classify(error) is kind


def test_retry_after_is_read_from_the_answers_headers() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "x"}) is None
    assert retry_after_seconds(None) is None


def test_a_market_order_has_no_price_and_a_malformed_order_is_typed() -> None:
    order = parse_order(
        {
            "id": "1",
            "clientOrderId": "c1",
            "symbol": "BTC/USDT",
            "side": "buy",
            "status": "closed",
            "type": "market",
            "amount": 0.1,
            "filled": 0.1,
            "price": 50005.0,
        }
    )
    assert (order.price, order.amount, order.filled) == (None, D("0.1"), D("0.1"))

    with pytest.raises(MalformedPayloadError):
        parse_order({"id": "1", "symbol": "BTC/USDT", "side": "buy", "status": "open"})
    with pytest.raises(MalformedPayloadError):
        parse_order("not an order")


def test_capabilities_come_from_ccxts_has_flags() -> None:
    binance = ccxt_capabilities("binance", exchange_has("binance"), {})
    assert binance.cancel_all is CancelAllScope.SYMBOL
    assert binance.post_only is True
    assert binance.amend is AmendMode.CANCEL_REPLACE
    assert binance.acceptance == AcceptanceWindow(10.0, 1.0)
    assert binance.client_ids == ClientIdRules()
    okx = ccxt_capabilities("okx", exchange_has("okx"), {})
    assert okx.cancel_all is CancelAllScope.NONE  # has['cancelAllOrders'] is False
    assert okx.acceptance is None
    assert okx.client_ids == ClientIdRules.alphanumeric(32)
    kraken = ccxt_capabilities("kraken", exchange_has("kraken"), {})
    assert kraken.post_only is False  # has['createPostOnlyOrder'] is None


def _config(section: str) -> str:
    return f"""
node: {{name: n, seed: 1}}
venues:
  - name: ex
    kind: ccxt
    ccxt: {section}
"""


def test_an_unknown_exchange_id_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="nosuchexchange"):
        parse_config(_config("{exchange: nosuchexchange, symbols: [BTC/USDT]}"))


def test_an_exchange_without_a_needed_capability_is_a_config_error_naming_both() -> None:
    # ccxt's coinbase has no watchMyTrades (ccxt 4.5.90).
    with pytest.raises(ConfigError, match=r"coinbase.*watchMyTrades"):
        parse_config(_config("{exchange: coinbase, symbols: [BTC/USD], requires: [watchMyTrades]}"))


def test_ccxts_own_retries_are_refused() -> None:
    with pytest.raises(ConfigError, match="maxRetriesOnFailure"):
        parse_config(
            _config("{exchange: binance, symbols: [BTC/USDT], options: {maxRetriesOnFailure: 2}}")
        )
