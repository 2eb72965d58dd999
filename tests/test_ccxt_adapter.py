"""The CCXT adapter's pure parts and its config errors (no network).

The error table is checked against ccxt's real exception classes; the
capabilities against ccxt's real ``has`` flags; the config errors through
the node's own config parser.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import ccxt  # type: ignore[import-untyped]
import pytest

from tradenode import ConfigError, MalformedPayloadError, load_config, parse_config
from tradenode.actors import (
    AcceptanceWindow,
    AmendMode,
    CancelAllScope,
    ClientIdRules,
    MarketDataKind,
)
from tradenode.brokers.ccxt import CcxtSettings, ccxt_capabilities

# Internals: the codec's error table, parsers and checks are what these tests pin,
# and the settings' reading of ccxt's has flags.
from tradenode.brokers.ccxt._codec import (
    ErrorKind,
    check_order,
    classify,
    parse_order,
    parse_placement,
    retry_after_seconds,
)
from tradenode.brokers.ccxt._settings import exchange_has
from tradenode.messages import OrderType, Side, SubmitOrder

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
        # ccxt's own refusal after close(), not the venue's: never an OrderRejected.
        (ccxt.ExchangeClosedByUser("closed by user"), ErrorKind.UNKNOWN),
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
    # Quotes where ccxt.pro streams the top of book, and only while streams are on.
    assert MarketDataKind.QUOTES in binance.market_data  # has['watchBidsAsks']
    polled = ccxt_capabilities("binance", exchange_has("binance"), {}, streaming=False)
    assert polled.market_data == frozenset()
    no_watch = {**exchange_has("binance"), "watchBidsAsks": None}
    assert ccxt_capabilities("binance", no_watch, {}).market_data == frozenset()


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


def test_an_acknowledgement_only_answer_is_a_placement() -> None:
    # ccxt's okx answers a create with the ids only (OKX's sCode 0 answer).
    placed = parse_placement({"id": "6001", "clientOrderId": "c2", "amount": None, "status": None})
    assert (placed.id, placed.client_order_id) == ("6001", "c2")


_MARKET = {
    "precision": {"amount": 0.0001, "price": 0.01},
    "limits": {"amount": {"min": 0.0001, "max": 9000.0}, "cost": {"min": 5.0, "max": None}},
}


def _order(**terms: object) -> SubmitOrder:
    fields: dict[str, object] = {
        "client_order_id": "c1",
        "strategy_id": "s",
        "venue": "v",
        "symbol": "BTC/USDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "quantity": D("0.1"),
        "price": D("50000.00"),
    }
    fields.update(terms)
    return SubmitOrder(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("terms", "code"),
    [
        ({"quantity": D("0.00015")}, "LOT_SIZE"),
        ({"quantity": D("9000.1")}, "LOT_SIZE"),
        ({"price": D("50000.005")}, "PRICE_FILTER"),
        ({"quantity": D("0.0001"), "price": D("100.00")}, "NOTIONAL"),
    ],
)
def test_the_markets_precision_and_limits_are_checked_before_sending(
    terms: dict[str, object], code: str
) -> None:
    check_order(_order(), _MARKET)
    with pytest.raises(ValueError) as refused:  # UnsupportedOrderError, internal
        check_order(_order(**terms), _MARKET)
    assert getattr(refused.value, "code", None) == code


def test_the_shipped_config_parses_and_keeps_its_keys_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CCXT_API_KEY", "key-from-the-environment")
    monkeypatch.setenv("CCXT_SECRET", "secret-from-the-environment")
    root = Path(__file__).resolve().parent.parent
    config = load_config(root / "config" / "ccxt-binance-testnet.yaml")
    settings = config.venues[0].settings
    assert isinstance(settings, CcxtSettings)
    assert (settings.exchange, settings.sandbox, settings.symbols) == (
        "binance",
        True,
        ["BTC/USDT", "ETH/USDT"],
    )
    assert "secret-from-the-environment" not in repr(config) + str(config)
